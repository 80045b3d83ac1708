use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use dockgate_decision::config::{Config, DEFAULT};

fn test_app() -> Router {
    let mut text = DEFAULT.to_string();
    // No dockerd behind: forwarding tests live in tests/ with the real engine.
    text = text.replace("/var/run/docker.sock", "/nonexistent/docker.sock");
    app(Arc::new(AppState {
        config: Config::parse("test", &text).unwrap(),
        metrics: Default::default(),
        bodies: Default::default(),
        registry: Default::default(),
        jobs: None,
    }))
}

fn auth_request(method: &str, uri: &str, listener: &str) -> Request<Body> {
    Request::get("/_dockgate/auth")
        .header("x-original-method", method)
        .header("x-original-uri", uri)
        .header("x-dockgate-listener", listener)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn auth_allows_with_the_canonical_uri_and_route() {
    let r = test_app()
        .oneshot(auth_request(
            "POST",
            "/v%31.41/containers/create?name=a",
            "loopback",
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        r.headers()["x-dockgate-uri"],
        "/v1.41/containers/create?name=a"
    );
    assert_eq!(r.headers()["x-dockgate-upstream"], "dockgate_sidecar");
    assert_eq!(r.headers()["x-dockgate-user"], "anonymous");
    // On the unix listener the sidecar relays, the caller's credentials come with the head.
    let mut request = auth_request("GET", "/v1.41/containers/json", "unix");
    let peer = dockgate_decision::peer::peer_address(1000, 1000).to_string();
    request
        .headers_mut()
        .insert("x-dockgate-peer", peer.parse().unwrap());
    let r = test_app().oneshot(request).await.unwrap();
    assert_eq!(r.headers()["x-dockgate-upstream"], "dockerd");
    assert_eq!(r.headers()["x-dockgate-user"], "anonymous (uid 1000)");
}

#[tokio::test]
async fn auth_refusals_follow_the_auth_request_contract() {
    let r = test_app()
        .oneshot(auth_request("POST", "/v1.41/swarm/init", "loopback"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.headers()["x-dockgate-status"], "403");
    let error = r.headers()["x-dockgate-error"].to_str().unwrap();
    assert!(
        error.starts_with("{\"message\":\"dockgate: role developer may not use swarm"),
        "{error}"
    );

    let r = test_app()
        .oneshot(auth_request("GET", "/v1.41/containers//json", "loopback"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.headers()["x-dockgate-status"], "400");

    let r = test_app()
        .oneshot(auth_request("GET", "/v1.41/info", "tls"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
}

fn mediated_request(body: &'static str) -> Request<Body> {
    Request::post("/v1.41/containers/create")
        .header("x-dockgate-user", "anonymous")
        .header("x-dockgate-role", "developer")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

async fn json_message(r: Response) -> String {
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn mediated_bodies_are_checked_before_anything_is_forwarded() {
    let r = test_app()
        .oneshot(mediated_request(
            r#"{"Image":"busybox","HostConfig":{"privileged":true}}"#,
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        json_message(r).await,
        "dockgate: privileged containers are not allowed"
    );

    let r = test_app()
        .oneshot(mediated_request(
            r#"{"HostConfig":{"Privileged":false,"privileged":true}}"#,
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = test_app()
        .oneshot(mediated_request("{not json"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let big: &'static str =
        Box::leak(format!("{{\"Image\":\"{}\"}}", "x".repeat(2 << 20)).into_boxed_str());
    let r = test_app().oneshot(mediated_request(big)).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Without nginx's identity headers, nothing passes.
    let r = test_app()
        .oneshot(
            Request::post("/v1.41/containers/create")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Allowed, but no engine behind this test app: a Docker-shaped 502.
    let r = test_app()
        .oneshot(mediated_request(r#"{"Image":"busybox"}"#))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn metrics_count_decisions() {
    let app = test_app();
    let _ = app
        .clone()
        .oneshot(auth_request("GET", "/v1.41/info", "loopback"))
        .await
        .unwrap();
    let r = app
        .oneshot(
            Request::get("/_dockgate/metrics")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let text =
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        text.contains(
            "dockgate_decisions_total{verdict=\"allow\",kind=\"read\",role=\"developer\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("dockgate_decision_seconds_count 1"), "{text}");
}
