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
    forward_body(dockerd, method, uri, headers, Full::new(body)).await
}

/// As [`forward`], with a body that streams (a build context).
pub async fn forward_body<B>(
    dockerd: &Path,
    method: Method,
    uri: &str,
    headers: &HeaderMap,
    body: B,
) -> anyhow::Result<Response>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut sender = connect::<B>(dockerd).await?;
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        if forwardable(name.as_str()) {
            req = req.header(name, value);
        }
    }
    let req = req
        .header("host", HeaderValue::from_static("docker"))
        .body(body)
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

/// A new HTTP/1.1 connection to dockerd's socket, driven on its own task.
pub(crate) async fn connect<B>(
    dockerd: &Path,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<B>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // A busy engine's accept queue can be full for a moment (EAGAIN on a unix socket).
    let stream = match UnixStream::connect(dockerd).await {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            UnixStream::connect(dockerd).await
        }
        other => other,
    }
    .with_context(|| format!("connect to {}", dockerd.display()))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake with dockerd")?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "dockerd connection ended");
        }
    });
    Ok(sender)
}
