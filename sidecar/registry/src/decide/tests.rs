use super::*;
use crate::access::RawRegistry;

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn registry(extra: &str) -> RegistryConfig {
    let text = format!(
        r#"
realm = "test registry"
anonymous = {{ pull = ["public"] }}
{extra}
[users.alice]
pull = ["library"]
push = ["team-a"]

[users.bob]
pull = ["*"]
"#
    );
    let raw: RawRegistry = toml::from_str(&text).unwrap();
    raw.check(&["alice", "bob"], &mut |_, key, message| {
        panic!("{key}: {message}")
    })
}

fn config() -> RegistryConfig {
    registry("")
}

/// alice (tenant alpha) and bob, by token; `grant-G` is a one-pull credential of bob's for
/// `hub/library/busybox`.
struct Users;

impl Identities for Users {
    fn basic(&self, user: &str, secret: &str) -> Option<Caller> {
        let caller = |tenant: Option<&str>, only: Option<&str>| Caller {
            name: user.to_string(),
            tenant: tenant.map(str::to_string),
            only: only.map(str::to_string),
            anonymous: user == "anonymous",
        };
        match (user, secret) {
            ("alice", "alice-token") => Some(caller(Some("alpha"), None)),
            ("bob", "bob-token") => Some(caller(None, None)),
            ("bob", "grant-G") => Some(caller(None, Some("hub/library/busybox"))),
            ("anonymous", "grant-A") => Some(caller(None, Some("public/app"))),
            _ => None,
        }
    }
}

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!("Basic {}", dockgate_api::base64::encode(pair.as_bytes()))
}

fn ask(method: &str, uri: &str, team: &str, auth: Option<&str>) -> Result<Approved, Refused> {
    ask_in(&config(), method, uri, team, auth)
}

fn ask_in(
    reg: &RegistryConfig,
    method: &str,
    uri: &str,
    team: &str,
    auth: Option<&str>,
) -> Result<Approved, Refused> {
    decide(
        reg,
        &Users,
        &Ask {
            method,
            uri,
            team,
            authorization: auth,
        },
    )
}

#[test]
fn a_team_push_lands_under_the_team_prefix() {
    let alice = basic("alice", "alice-token");
    let a = ask("PUT", "/v2/app/manifests/v1", "team-a", Some(&alice)).unwrap();
    assert_eq!(a.user, "alice");
    assert_eq!(a.action, Action::Push);
    assert_eq!(a.name, "team-a/app");
    assert_eq!(a.hosted_uri, "/v2/team-a/app/manifests/v1");
    assert_eq!(a.upstream_uri, None);
    let a = ask(
        "PATCH",
        "/v2/app/blobs/uploads/u-1?_state=xyz",
        "team-a",
        Some(&alice),
    )
    .unwrap();
    assert_eq!(a.hosted_uri, "/v2/team-a/app/blobs/uploads/u-1?_state=xyz");
    assert_eq!(a.kind, "upload");
}

#[test]
fn a_tenants_engine_names_lose_the_tenant_for_its_own_users_only() {
    let alice = basic("alice", "alice-token");
    let a = ask(
        "PUT",
        "/v2/dockgate-alpha/app/manifests/v1",
        "team-a",
        Some(&alice),
    )
    .unwrap();
    assert_eq!(a.hosted_uri, "/v2/team-a/app/manifests/v1");
    let a = ask(
        "POST",
        "/v2/dockgate-alpha/app/blobs/uploads/",
        "team-a",
        Some(&alice),
    )
    .unwrap();
    assert_eq!(a.hosted_uri, "/v2/team-a/app/blobs/uploads/");
    let bob = basic("bob", "bob-token");
    let r = ask(
        "GET",
        "/v2/dockgate-alpha/app/manifests/v1",
        "team-a",
        Some(&bob),
    )
    .unwrap_err();
    assert_eq!((r.status, r.code), (403, "DENIED"));
    assert!(
        r.message.contains("tenant alpha's namespace"),
        "{}",
        r.message
    );
}

#[test]
fn pulls_name_the_group_leg_and_the_cache_key() {
    let alice = basic("alice", "alice-token");
    let a = ask(
        "GET",
        &format!("/v2/busybox/blobs/{D}"),
        "library",
        Some(&alice),
    )
    .unwrap();
    assert_eq!(a.hosted_uri, format!("/v2/library/busybox/blobs/{D}"));
    assert_eq!(
        a.upstream_uri.as_deref(),
        Some(&*format!("/v2/busybox/blobs/{D}"))
    );
    assert_eq!(a.cache_key, D);
    assert_eq!(a.kind, "blob");
    let a = ask(
        "HEAD",
        "/v2/busybox/manifests/1.36",
        "library",
        Some(&alice),
    )
    .unwrap();
    assert_eq!(a.kind, "manifest_tag");
    assert_eq!(a.cache_key, "busybox:1.36");
    let a = ask(
        "GET",
        &format!("/v2/busybox/manifests/{D}"),
        "library",
        Some(&alice),
    )
    .unwrap();
    assert_eq!((a.kind, a.cache_key.as_str()), ("manifest_digest", D));
    let a = ask("GET", "/v2/busybox/tags/list?n=2", "library", Some(&alice)).unwrap();
    assert_eq!(a.upstream_uri.as_deref(), Some("/v2/busybox/tags/list?n=2"));
}

#[test]
fn a_push_outside_ones_prefix_is_denied_with_the_reason() {
    let alice = basic("alice", "alice-token");
    let r = ask("POST", "/v2/app/blobs/uploads/", "team-b", Some(&alice)).unwrap_err();
    assert_eq!((r.status, r.code), (403, "DENIED"));
    assert_eq!(
        r.message,
        "dockgate: user alice may not push team-b/app (push rights: team-a/)"
    );
    assert_eq!(
        r.json(),
        r#"{"errors":[{"code":"DENIED","message":"dockgate: user alice may not push team-b/app (push rights: team-a/)"}]}"#
    );
    // Read-only everywhere: bob may pull anything and push nothing.
    let bob = basic("bob", "bob-token");
    assert!(ask("GET", "/v2/x/manifests/v1", "team-b", Some(&bob)).is_ok());
    let r = ask("PUT", "/v2/x/manifests/v1", "", Some(&bob)).unwrap_err();
    assert!(r.message.ends_with("(no push rights)"), "{}", r.message);
}

#[test]
fn anonymous_callers_get_a_basic_challenge() {
    let r = ask("GET", "/v2/", "team-a", None).unwrap_err();
    assert_eq!(r.status, 401);
    assert_eq!(
        r.challenge.as_deref(),
        Some("Basic realm=\"test registry\"")
    );
    let r = ask("POST", "/v2/app/blobs/uploads/", "team-a", None).unwrap_err();
    assert_eq!((r.status, r.code), (401, "UNAUTHORIZED"));
    // ... but may pull what [registry.anonymous] allows.
    assert!(ask("GET", "/v2/x/manifests/v1", "public", None).is_ok());
    assert!(ask("GET", "/v2/", "", Some(&basic("alice", "alice-token"))).is_ok());
}

#[test]
fn wrong_credentials_are_refused_whatever_the_path() {
    for auth in [
        basic("alice", "bob-token"),
        basic("mallory", "alice-token"),
        "Bearer alice-token".into(),
        "Basic !!!".into(),
    ] {
        let r = ask("GET", "/v2/", "", Some(&auth)).unwrap_err();
        assert_eq!((r.status, r.code), (401, "UNAUTHORIZED"), "{auth}");
    }
}

#[test]
fn malformed_paths_are_client_errors() {
    let bob = basic("bob", "bob-token");
    let r = ask("GET", "/v2/a/../b/manifests/x", "", Some(&bob)).unwrap_err();
    assert_eq!((r.status, r.code), (400, "NAME_INVALID"));
    let r = ask("GET", "/v2/a/blobs/sha256:00", "", Some(&bob)).unwrap_err();
    assert_eq!((r.status, r.code), (400, "DIGEST_INVALID"));
    let r = ask("GET", "/v2/_catalog", "", Some(&bob)).unwrap_err();
    assert_eq!(r.status, 403);
    let r = ask("POST", "/v2/a/manifests/x", "", Some(&bob)).unwrap_err();
    assert_eq!((r.status, r.code), (405, "UNSUPPORTED"));
    let long = format!("/v2/{}/manifests/x", "a".repeat(250));
    let r = ask("GET", &long, "team-a", Some(&bob)).unwrap_err();
    assert_eq!((r.status, r.code), (400, "NAME_INVALID"));
}

#[test]
fn mounts_move_under_the_prefix_or_are_dropped() {
    let alice = basic("alice", "alice-token");
    let uri = format!("/v2/app/blobs/uploads/?mount={D}&from=base");
    let a = ask("POST", &uri, "team-a", Some(&alice)).unwrap();
    assert_eq!(
        a.hosted_uri,
        format!("/v2/team-a/app/blobs/uploads/?mount={D}&from=team-a/base")
    );
    // alice may not pull team-b: no mount from there, a plain upload instead.
    let a = ask(
        "POST",
        &format!("/v2/app/blobs/uploads/?mount={D}&from=../team-b/secret"),
        "team-a",
        Some(&alice),
    )
    .unwrap();
    assert_eq!(a.hosted_uri, "/v2/team-a/app/blobs/uploads/");
}

const MIRRORS: &str = r#"
pull_through = "127.0.0.1:5000"

[mirrors.hub]
registry = "docker.io"
url = "https://registry-1.docker.io"

[mirrors.ghcr]
registry = "ghcr.io"
url = "https://ghcr.io"
nginx_upstream = "ghcr_upstream"
username = "robot"
password = "s3cret"
"#;

fn ask_mirrors(
    method: &str,
    uri: &str,
    team: &str,
    auth: Option<&str>,
) -> Result<Approved, Refused> {
    ask_in(&registry(MIRRORS), method, uri, team, auth)
}

#[test]
fn a_mirror_namespace_goes_straight_to_its_upstream_on_every_front_end() {
    let bob = basic("bob", "bob-token");
    for team in ["", "team-a"] {
        let a = ask_mirrors(
            "GET",
            "/v2/hub/library/busybox/manifests/1.36",
            team,
            Some(&bob),
        )
        .unwrap();
        assert_eq!(a.name, "hub/library/busybox", "no team prefix");
        assert_eq!(a.first, "group_manifest_tag");
        assert_eq!(a.origin, "https://dockgate_mirror_hub");
        assert_eq!(a.origin_host, "registry-1.docker.io");
        assert_eq!(a.origin_tls_name, "registry-1.docker.io");
        assert_eq!(
            a.upstream_uri.as_deref(),
            Some("/v2/library/busybox/manifests/1.36")
        );
        assert_eq!(a.cache_key, "mirror hub library/busybox:1.36");
        assert_eq!(a.mirror.as_deref(), Some("hub"));
        assert_eq!(a.upstream_name.as_deref(), Some("library/busybox"));
    }
    // Anonymous upstream: blobs by digest alone; HEAD goes to the mirror too.
    let a = ask_mirrors(
        "HEAD",
        &format!("/v2/hub/library/busybox/blobs/{D}"),
        "",
        Some(&bob),
    )
    .unwrap();
    assert_eq!((a.first.as_str(), a.fallback), ("group_blob", "blob"));
    assert_eq!(a.cache_key, format!("mirror hub {D}"));
    // Hosted names keep the group: hosted first, the default upstream anonymously.
    let a = ask_mirrors("GET", "/v2/app/manifests/1", "team-a", Some(&bob)).unwrap();
    assert_eq!(a.first, "hosted");
    assert_eq!(a.origin, "http://dockgate_registry_upstream");
    assert_eq!(a.mirror, None);
}

#[test]
fn what_credentials_fetched_is_cached_per_repository() {
    let bob = basic("bob", "bob-token");
    let a = ask_mirrors(
        "GET",
        &format!("/v2/ghcr/acme/app/blobs/{D}"),
        "",
        Some(&bob),
    )
    .unwrap();
    assert_eq!(a.cache_key, format!("mirror ghcr acme/app {D}"));
    assert_eq!(a.origin, "https://ghcr_upstream");
    let b = ask_mirrors(
        "GET",
        &format!("/v2/ghcr/acme/other/blobs/{D}"),
        "",
        Some(&bob),
    )
    .unwrap();
    assert_ne!(
        a.cache_key, b.cache_key,
        "another repository never hits the first's copy"
    );
    let m = ask_mirrors(
        "GET",
        &format!("/v2/ghcr/acme/app/manifests/{D}"),
        "",
        Some(&bob),
    )
    .unwrap();
    assert_eq!(m.cache_key, format!("mirror ghcr acme/app {D}"));
}

#[test]
fn mirrors_take_no_pushes_and_rights_are_on_the_namespaced_name() {
    let bob = basic("bob", "bob-token");
    for (method, uri) in [
        ("PUT", "/v2/hub/library/busybox/manifests/1"),
        ("POST", "/v2/hub/library/busybox/blobs/uploads/"),
        ("DELETE", "/v2/hub/library/busybox/manifests/1"),
    ] {
        let r = ask_mirrors(method, uri, "", Some(&bob)).unwrap_err();
        assert_eq!(r.status, 403, "{method} {uri}");
        assert!(
            r.message.contains("read-only mirror of docker.io"),
            "{}",
            r.message
        );
    }
    // alice may pull library/ only: not hub/library/...
    let alice = basic("alice", "alice-token");
    let r = ask_mirrors(
        "GET",
        "/v2/hub/library/busybox/manifests/1",
        "",
        Some(&alice),
    )
    .unwrap_err();
    assert_eq!(r.status, 403);
    assert!(
        r.message.contains("may not pull hub/library/busybox"),
        "{}",
        r.message
    );
}

#[test]
fn a_one_pull_credential_pulls_its_repository_only() {
    let grant = basic("bob", "grant-G");
    assert!(ask_mirrors(
        "GET",
        "/v2/hub/library/busybox/manifests/1",
        "",
        Some(&grant)
    )
    .is_ok());
    assert!(ask_mirrors(
        "GET",
        &format!("/v2/hub/library/busybox/blobs/{D}"),
        "",
        Some(&grant)
    )
    .is_ok());
    for uri in [
        "/v2/hub/library/alpine/manifests/1".to_string(),
        "/v2/hub/library/busybox/x/manifests/1".to_string(),
        "/v2/library/busybox/manifests/1".to_string(),
    ] {
        let r = ask_mirrors("GET", &uri, "", Some(&grant)).unwrap_err();
        assert_eq!(r.status, 403, "{uri}");
        assert!(
            r.message.contains("pulls of hub/library/busybox only"),
            "{}",
            r.message
        );
    }
    let r = ask_mirrors(
        "PUT",
        "/v2/hub/library/busybox/manifests/1",
        "",
        Some(&grant),
    )
    .unwrap_err();
    assert_eq!(r.status, 403);
}

#[test]
fn mirror_tables_are_checked() {
    let raw: RawRegistry = toml::from_str(
        r#"
pull_through = "not a host"
[mirrors."Bad/ns"]
registry = "GHCR.io"
url = "ftp://x"
nginx_upstream = "a-b"
username = "u"
password = "p"
password_file = "relative"
[mirrors.two]
registry = "quay.io"
url = "https://quay.io"
[mirrors.three]
registry = "quay.io"
url = "https://quay.io"
[mirrors.four]
registry = "four.example"
url = "https://four.example"
username = "u"
password_file = "relative"
"#,
    )
    .unwrap();
    let mut keys = Vec::new();
    raw.check(&[], &mut |_, key, message| {
        keys.push(format!("{key}: {message}"))
    });
    let all = keys.join("\n");
    for want in [
        "registry.mirrors.Bad/ns: ",
        "registry.mirrors.Bad/ns.registry: ",
        "registry.mirrors.Bad/ns.url: ",
        "registry.mirrors.Bad/ns.nginx_upstream: ",
        "registry.mirrors.Bad/ns.password_file: give the password or a password file, not both",
        "registry.mirrors.Bad/ns.username: a username needs its password",
        "registry.mirrors.four.password_file: \"relative\" is not an absolute path",
        "registry.mirrors.two.registry: quay.io is already mirrored by registry.mirrors.three",
        "registry.pull_through: ",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
}

#[test]
fn a_one_pull_credential_of_the_gateways_anonymous_access_has_the_anonymous_rights() {
    let grant = basic("anonymous", "grant-A");
    let a = ask("GET", "/v2/public/app/manifests/1", "", Some(&grant)).unwrap();
    assert_eq!(a.user, "anonymous");
    // Rights are the anonymous ones: `public` only (and the credential, that one repository).
    let r = ask("GET", "/v2/library/app/manifests/1", "", Some(&grant)).unwrap_err();
    assert_eq!(r.status, 403);
}
