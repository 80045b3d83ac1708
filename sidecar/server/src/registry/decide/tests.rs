use super::*;
use crate::config::{token_hash, Config, DEFAULT};

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn config() -> Config {
    let extra = format!(
        r#"
[tenants.alpha]

[[users]]
name = "alice"
role = "reader"
tenant = "alpha"
token_sha256 = ["{}"]

[[users]]
name = "bob"
role = "reader"
token_sha256 = ["{}"]

[registry]
realm = "test registry"
anonymous = {{ pull = ["public"] }}

[registry.users.alice]
pull = ["library"]
push = ["team-a"]

[registry.users.bob]
pull = ["*"]
"#,
        token_hash("alice-token"),
        token_hash("bob-token")
    );
    Config::parse("test", &format!("{DEFAULT}{extra}")).unwrap()
}

fn basic(user: &str, password: &str) -> String {
    // A tiny encoder for tests: standard alphabet, padded.
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

fn ask(method: &str, uri: &str, team: &str, auth: Option<&str>) -> Result<Approved, Refused> {
    let c = config();
    decide(
        c.registry.as_ref().unwrap(),
        &c.users,
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
