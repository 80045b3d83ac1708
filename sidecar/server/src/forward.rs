//! Forwarding an approved mediated request to dockerd over its unix socket.

use std::path::Path;

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request};
use axum::response::Response;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// Headers that belong to one hop (RFC 9110 §7.6.1), or to nginx and the sidecar.
fn forwardable(name: &str) -> bool {
    !matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
            | "authorization"
    ) && !name.starts_with("x-dockgate-")
}

/// Sends `method uri` with `body` to dockerd and streams its answer back.
pub async fn forward(
    dockerd: &Path,
    method: Method,
    uri: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> anyhow::Result<Response> {
    let stream = UnixStream::connect(dockerd)
        .await
        .with_context(|| format!("connect to {}", dockerd.display()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake with dockerd")?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "dockerd connection ended");
        }
    });

    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        if forwardable(name.as_str()) {
            req = req.header(name, value);
        }
    }
    let req = req
        .header("host", HeaderValue::from_static("docker"))
        .body(Full::new(body))
        .context("build the request to dockerd")?;
    let resp = sender
        .send_request(req)
        .await
        .context("request to dockerd")?;
    let (mut parts, incoming) = resp.into_parts();
    for name in ["connection", "keep-alive", "transfer-encoding"] {
        parts.headers.remove(name);
    }
    Ok(Response::from_parts(parts, Body::new(incoming)))
}
