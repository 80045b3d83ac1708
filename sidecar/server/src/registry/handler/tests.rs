use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use super::*;
use crate::app::app;
use dockgate_decision::config::{token_hash, Config, DEFAULT};

fn test_app(registry: bool) -> axum::Router {
    let mut text = format!(
        "{DEFAULT}\n[[users]]\nname = \"alice\"\nrole = \"reader\"\ntoken_sha256 = [\"{}\"]\n",
        token_hash("t")
    );
    if registry {
        text += "[registry]\n[registry.users.alice]\npush = [\"team-a\"]\n";
    }
    app(Arc::new(AppState {
        config: Config::parse("test", &text).unwrap(),
        metrics: Default::default(),
        bodies: Default::default(),
        registry: Default::default(),
        jobs: None,
    }))
}

fn ask(method: &str, uri: &str, team: &str, auth: Option<&str>) -> Request<Body> {
    let mut r = Request::get("/_dockgate/registry-auth")
        .header("x-original-method", method)
        .header("x-original-uri", uri)
        .header("x-dockgate-registry-team", team);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    r.body(Body::empty()).unwrap()
}

fn h<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

// "alice:t"
const ALICE: &str = "Basic YWxpY2U6dA==";

#[tokio::test]
async fn an_approved_push_names_the_hosted_uri() {
    let r = test_app(true)
        .oneshot(ask("PUT", "/v2/app/manifests/v1", "team-a", Some(ALICE)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(h(&r, "x-dockgate-uri"), Some("/v2/team-a/app/manifests/v1"));
    assert_eq!(h(&r, "x-dockgate-registry-kind"), Some("manifest"));
    assert_eq!(h(&r, "x-dockgate-user"), Some("alice"));
    assert_eq!(h(&r, "x-dockgate-upstream-uri"), None);
}

#[tokio::test]
async fn refusals_carry_status_body_and_challenge_for_nginx() {
    let r = test_app(true)
        .oneshot(ask("GET", "/v2/", "team-a", None))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(h(&r, "x-dockgate-status"), Some("401"));
    assert_eq!(
        h(&r, "x-dockgate-challenge"),
        Some("Basic realm=\"dockgate registry\"")
    );
    let r = test_app(true)
        .oneshot(ask("GET", "/v2/a/blobs/sha256:1", "", Some(ALICE)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(h(&r, "x-dockgate-status"), Some("400"));
    assert!(h(&r, "x-dockgate-error")
        .unwrap()
        .contains("DIGEST_INVALID"));
}

#[tokio::test]
async fn without_a_registry_table_everything_is_refused() {
    let r = test_app(false)
        .oneshot(ask("GET", "/v2/", "", Some(ALICE)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(h(&r, "x-dockgate-error")
        .unwrap()
        .contains("not configured"));
}

#[tokio::test]
async fn the_manifest_class_comes_from_every_accept_line() {
    // dockerd 20.10 sends one media type per line, in no set order.
    let lines = [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/json",
    ];
    for rotation in 0..lines.len() {
        let mut r = ask("GET", "/v2/app/manifests/v1", "team-a", Some(ALICE));
        for line in lines.iter().cycle().skip(rotation).take(lines.len()) {
            r.headers_mut()
                .append("accept", axum::http::HeaderValue::from_static(line));
        }
        let r = test_app(true).oneshot(r).await.unwrap();
        assert_eq!(
            h(&r, "x-dockgate-registry-accept"),
            Some("list"),
            "{rotation}"
        );
    }
    let mut r = ask("GET", "/v2/app/manifests/v1", "team-a", Some(ALICE));
    r.headers_mut().append(
        "accept",
        axum::http::HeaderValue::from_static(
            "application/vnd.docker.distribution.manifest.v2+json",
        ),
    );
    let r = test_app(true).oneshot(r).await.unwrap();
    assert_eq!(h(&r, "x-dockgate-registry-accept"), Some("one"));
}

#[tokio::test]
async fn a_mirror_pull_names_its_upstream_and_an_unreachable_one_gets_no_authorization() {
    let text = format!(
        "{DEFAULT}\n[[users]]\nname = \"alice\"\nrole = \"reader\"\ntoken_sha256 = [\"{}\"]\n\
         [registry]\n[registry.users.alice]\npull = [\"up\"]\n\
         [registry.mirrors.up]\nregistry = \"up.test\"\nurl = \"http://127.0.0.1:9\"\n\
         username = \"robot\"\npassword = \"pw\"\n",
        token_hash("t")
    );
    let app = app(Arc::new(AppState {
        config: Config::parse("test", &text).unwrap(),
        metrics: Default::default(),
        bodies: Default::default(),
        registry: Default::default(),
        jobs: None,
    }));
    let r = app
        .oneshot(ask(
            "GET",
            "/v2/up/acme/app/manifests/1",
            "team-a",
            Some(ALICE),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(h(&r, "x-dockgate-first"), Some("group_manifest_tag"));
    assert_eq!(
        h(&r, "x-dockgate-origin"),
        Some("http://dockgate_mirror_up")
    );
    assert_eq!(h(&r, "x-dockgate-origin-host"), Some("127.0.0.1:9"));
    assert_eq!(
        h(&r, "x-dockgate-upstream-uri"),
        Some("/v2/acme/app/manifests/1")
    );
    assert_eq!(h(&r, "x-dockgate-cache-key"), Some("mirror up acme/app:1"));
    // Nothing answers on the discard port: no challenge, so nothing is sent upstream (what
    // the cache has is still served).
    assert_eq!(h(&r, "x-dockgate-upstream-authorization"), None);
}
