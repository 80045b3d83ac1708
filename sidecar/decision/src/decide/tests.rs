use super::*;
use crate::config::{token_hash, Config, DEFAULT};
use crate::identity::{identify, Transport};

/// The decision on a JSON request (or a bodiless one), as the sidecar makes it.
fn decide(
    c: &Config,
    who: &Identity,
    method: &str,
    uri: &str,
    body: Option<&Value>,
) -> Result<Allowed, Refusal> {
    let head = Head {
        method,
        uri,
        content_type: body.map(|_| "application/json"),
        has_body: body.is_some(),
    };
    super::decide(c, who, &head, body)
}

fn config() -> Config {
    let mut text = DEFAULT.to_string();
    text += &format!(
        "\n[[users]]\nname = \"alice\"\nrole = \"admin\"\ncert_fingerprints = [\"AA:BB:CC\"]\ntoken_sha256 = [\"{}\"]\n",
        token_hash("s3cret")
    );
    Config::parse("test.toml", &text).unwrap()
}

fn anon() -> Identity {
    identify(
        &config(),
        &Transport {
            listener: "loopback",
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn identity_comes_from_certificate_token_or_listener() {
    let c = config();
    let who = |t: Transport<'_>| identify(&c, &t);
    assert_eq!(anon().user, "anonymous");
    assert_eq!(
        who(Transport {
            listener: "tls",
            client_verify: Some("SUCCESS"),
            client_fingerprint: Some("aabbcc"),
            ..Default::default()
        })
        .unwrap()
        .user,
        "alice"
    );
    let r = who(Transport {
        listener: "tls",
        client_verify: Some("SUCCESS"),
        client_fingerprint: Some("ffff"),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(r.status.code(), 403);
    // A certificate nginx did not verify does not count.
    let r = who(Transport {
        listener: "tls",
        client_verify: Some("FAILED:unable to verify"),
        client_fingerprint: Some("aabbcc"),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(r.status.code(), 401);
    assert_eq!(
        who(Transport {
            listener: "tls",
            authorization: Some("Bearer s3cret"),
            ..Default::default()
        })
        .unwrap()
        .role,
        "admin"
    );
    // Basic with the token as password (docker's HttpHeaders or a proxy user).
    assert_eq!(
        who(Transport {
            listener: "tls",
            authorization: Some("Basic YWxpY2U6czNjcmV0"),
            ..Default::default()
        })
        .unwrap()
        .user,
        "alice"
    );
    let r = who(Transport {
        listener: "loopback",
        authorization: Some("Bearer wrong"),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(r.status.code(), 401);
    assert_eq!(
        who(Transport {
            listener: "nope",
            ..Default::default()
        })
        .unwrap_err()
        .status,
        Status::Forbidden
    );
}

#[test]
fn unix_users_are_identified_by_the_relayed_credentials() {
    let mut text = DEFAULT.replace(
        "[listeners.unix]\nanonymous_role = \"developer\"\n",
        "[listeners.unix]\n",
    );
    text += "\n[[users]]\nname = \"ops\"\nrole = \"admin\"\nuids = [0, 1001]\n";
    let c = Config::parse("test.toml", &text).unwrap();
    let peer = |addr: &'static str| {
        identify(
            &c,
            &Transport {
                listener: "unix",
                peer: Some(addr),
                ..Default::default()
            },
        )
    };
    let addr = |uid, gid| crate::peer::peer_address(uid, gid).to_string().leak() as &str;
    assert_eq!(peer(addr(1001, 100)).unwrap().user, "ops");
    assert_eq!(peer(addr(0, 0)).unwrap().role, "admin");
    let r = peer(addr(1002, 1002)).unwrap_err();
    assert_eq!(r.status.code(), 401);
    assert!(r.message.contains("unix user 1002"), "{}", r.message);
    // nginx passed nothing (its listener lacks proxy_protocol) or something else: refused.
    for bad in ["", "127.0.0.1", "::1"] {
        assert_eq!(peer(bad).unwrap_err().status.code(), 403, "{bad}");
    }
    // The credentials only count on a relayed listener.
    let on_loopback = identify(
        &c,
        &Transport {
            listener: "loopback",
            peer: Some(addr(0, 0)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(on_loopback.role, "developer");
    // With an anonymous role, unknown uids get it, and the audit line says who they were.
    let c = config();
    let who = identify(
        &c,
        &Transport {
            listener: "unix",
            peer: Some(addr(1002, 1002)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        (who.user.as_str(), who.role.as_str()),
        ("anonymous (uid 1002)", "developer")
    );
}

#[test]
fn roles_allow_kinds_and_unknown_endpoints_are_refused() {
    let c = config();
    let ok = decide(&c, &anon(), "GET", "/v1.41/containers/json", None).unwrap();
    assert_eq!(ok.uri.to_string(), "/v1.41/containers/json");
    assert!(!ok.mediated);
    let r = decide(&c, &anon(), "POST", "/v1.41/swarm/init", None).unwrap_err();
    assert_eq!(r.status.code(), 403);
    assert!(
        r.message
            .contains("role developer may not use swarm endpoints"),
        "{}",
        r.message
    );
    let r = decide(&c, &anon(), "GET", "/v1.41/debug/pprof", None).unwrap_err();
    assert_eq!(
        r.message,
        "dockgate: GET /debug/pprof is not an allowed Docker API endpoint"
    );
    let r = decide(&c, &anon(), "GET", "/v1.41/containers/../json", None).unwrap_err();
    assert_eq!(r.status.code(), 400);
    let admin = Identity {
        user: "alice".into(),
        role: "admin".into(),
    };
    let ok = decide(&c, &admin, "POST", "/v1.41/containers/create", None).unwrap();
    assert!(
        !ok.mediated,
        "admin has no body policy: straight to dockerd"
    );
}

#[test]
fn privilege_carrying_bodies_are_mediated_and_checked() {
    let c = config();
    let ok = decide(
        &c,
        &anon(),
        "POST",
        "/v%31.41/containers/create?name=x",
        None,
    )
    .unwrap();
    assert!(ok.mediated);
    assert_eq!(ok.uri.to_string(), "/v1.41/containers/create?name=x");
    let body = dockgate_policy::gojson::parse(br#"{"HostConfig": {"Privileged": true}}"#).unwrap();
    let r = decide(&c, &anon(), "POST", "/v1.41/containers/create", Some(&body)).unwrap_err();
    assert_eq!(r.rule, Some("privileged"));
    assert_eq!(
        r.json(),
        r#"{"message":"dockgate: privileged containers are not allowed"}"#
    );
    // Query rules apply at the head.
    let r = decide(&c, &anon(), "POST", "/v1.41/build?networkmode=host", None).unwrap_err();
    assert_eq!(r.rule, Some("build"));
}

#[test]
fn refusal_json_is_header_safe() {
    let r = Refusal::new(Status::Forbidden, "nom \"é\"\n");
    assert!(r.json().is_ascii());
    assert!(!r.json().contains('\n'));
    let back: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
    assert_eq!(back["message"], "dockgate: nom \"é\"\n");
}

#[test]
fn host_network_and_package_cache_are_per_role() {
    let text = format!(
        "{DEFAULT}\n[package_cache]\ndir = \"/tmp/dockgate-unused\"\n\
         [[package_cache.hosts]]\nname = \"deb.test\"\nrules = \"apt\"\n\
         [roles.ci]\nallow = [\"write\"]\npolicies = [\"conservative\", \"package-cache\"]\n\
         allow_host_network = true\n"
    );
    let c = Config::parse("test.toml", &text).unwrap();
    let body = dockgate_policy::gojson::parse(
        br#"{"Image":"busybox","HostConfig":{"NetworkMode":"host"}}"#,
    )
    .unwrap();
    let as_role = |role: &str| Identity {
        user: "u".into(),
        role: role.into(),
    };
    let create = "/v1.41/containers/create";
    let ci = decide(&c, &as_role("ci"), "POST", create, Some(&body)).unwrap();
    assert!(ci.mediated && ci.package_cache && !ci.inject);
    let dev = decide(&c, &as_role("developer"), "POST", create, Some(&body)).unwrap_err();
    assert_eq!(dev.rule, Some("namespaces"));
    // Only creates are injected.
    let start = decide(
        &c,
        &as_role("ci"),
        "POST",
        "/v1.41/containers/x/start",
        None,
    )
    .unwrap();
    assert!(!start.package_cache);
}

#[test]
fn parameters_dockerd_could_read_another_way_are_refused_for_every_role() {
    let c = config();
    let admin = Identity {
        user: "alice".into(),
        role: "admin".into(),
    };
    let form = Head {
        method: "POST",
        uri: "/v1.41/images/busybox/tag?repo=mine",
        content_type: Some("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
        has_body: true,
    };
    let r = super::decide(&c, &admin, &form, None).unwrap_err();
    assert_eq!(r.status.code(), 400);
    assert!(r.message.contains("form-encoded"), "{}", r.message);
    let start = Head {
        method: "POST",
        uri: "/v1.23/containers/web/start",
        content_type: Some("application/json"),
        has_body: true,
    };
    let r = super::decide(&c, &admin, &start, None).unwrap_err();
    assert!(
        r.message.contains("a body on a container start"),
        "{}",
        r.message
    );
    // From 1.24 on dockerd refuses the body itself; an empty start is the CLI's.
    for (uri, has_body) in [
        ("/v1.24/containers/web/start", true),
        ("/v1.23/containers/web/start", false),
        ("/containers/web/start", true),
    ] {
        let head = Head {
            method: "POST",
            uri,
            content_type: None,
            has_body,
        };
        assert!(super::decide(&c, &admin, &head, None).is_ok(), "{uri}");
    }
    // Keys dockerd reads as lists may repeat; others may not.
    let ok = decide(
        &c,
        &anon(),
        "POST",
        "/v1.41/build?t=a&t=b&extrahosts=x:1&extrahosts=y:2",
        None,
    );
    assert!(ok.is_ok(), "{ok:?}");
    assert!(decide(
        &c,
        &anon(),
        "GET",
        "/v1.41/images/get?names=a&names=b",
        None
    )
    .is_ok());
    let r = decide(
        &c,
        &anon(),
        "GET",
        "/v1.41/containers/json?all=1&all=0",
        None,
    )
    .unwrap_err();
    assert!(r.message.contains("\"all\" given twice"), "{}", r.message);
    let r = decide(
        &c,
        &anon(),
        "POST",
        "/v1.41/containers/create?name=a&name=b",
        None,
    )
    .unwrap_err();
    assert_eq!(r.status.code(), 400);
    // A link's name has a slash.
    let ok = decide(
        &c,
        &anon(),
        "DELETE",
        "/v1.41/containers/web/db?link=1",
        None,
    )
    .unwrap();
    assert_eq!(ok.param.as_deref(), Some("web/db"));
}

#[test]
fn docker_py_s_out_of_context_dockerfile_is_read_as_dockerd_reads_it() {
    let c = config();
    // Its name in the archive, then its text: dockerd reads the first value.
    let py = "/v1.41/build?t=x&dockerfile=.dockerfile.1f&dockerfile=FROM+busybox%0ARUN+true%0A";
    let ok = decide(&c, &anon(), "POST", py, None).unwrap();
    assert_eq!(ok.uri.query_value("dockerfile"), Some(".dockerfile.1f"));
    assert!(
        ok.mediated,
        "a conservative role's classic build is read by the sidecar"
    );
    let kit = decide(
        &c,
        &anon(),
        "POST",
        "/v1.41/build?version=2&remote=client-session",
        None,
    );
    assert!(!kit.unwrap().mediated);
}

#[test]
fn a_role_without_buildkit_builds_the_classic_way_only() {
    let mut text = DEFAULT.to_string();
    text = text.replace(
        "policies = [\"conservative\"]",
        "policies = [\"conservative\"]\nbuildkit = false",
    );
    let c = Config::parse("test.toml", &text).unwrap();
    for (method, uri) in [
        ("POST", "/v1.41/build?version=2&remote=client-session"),
        ("POST", "/v1.41/session"),
        ("POST", "/v1.41/grpc"),
    ] {
        let r = decide(&c, &anon(), method, uri, None).unwrap_err();
        assert!(
            r.message.contains("may not use BuildKit"),
            "{uri}: {}",
            r.message
        );
    }
    assert!(decide(&c, &anon(), "POST", "/v1.41/build?t=x", None).is_ok());
}
