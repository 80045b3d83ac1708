//! A conservative role's classic build: its context streams to dockerd through
//! [`dockgate_policy::context::Scanner`], which reads the Dockerfile as it passes. A refused
//! Dockerfile ends the upload before dockerd has the whole context (the classic builder
//! extracts all of it before it runs a step), and the client gets the reason instead of
//! dockerd's answer. Nothing is buffered beyond the scanner's bounds.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use dockgate_policy::context::Scanner;
use http_body::Frame;
use tokio::sync::oneshot;

use crate::decision::{Refusal, Status};
use crate::forward::forward_body;

/// The request body, read through the scanner. On a refusal, the reason and the rest of the
/// client's body go back to [`forward`], which reads the rest before it answers: nginx is
/// still sending it, and an upstream that hangs up mid-body is a 502 to nginx.
struct Scanned {
    inner: Option<Body>,
    scanner: Scanner,
    refused: Option<oneshot::Sender<(String, Body)>>,
}

#[derive(Debug)]
struct RefusedContext;

impl std::fmt::Display for RefusedContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the build context was refused")
    }
}

impl std::error::Error for RefusedContext {}

impl Scanned {
    fn refuse(&mut self, why: String) -> Poll<Option<Result<Frame<Bytes>, RefusedContext>>> {
        if let (Some(tx), Some(rest)) = (self.refused.take(), self.inner.take()) {
            let _ = tx.send((why, rest));
        }
        Poll::Ready(Some(Err(RefusedContext)))
    }
}

impl http_body::Body for Scanned {
    type Data = Bytes;
    type Error = RefusedContext;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RefusedContext>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Some(Err(RefusedContext)));
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => match this.scanner.finish() {
                Ok(()) => Poll::Ready(None),
                Err(why) => this.refuse(why),
            },
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!(error = %e, "reading a build context failed");
                Poll::Ready(Some(Err(RefusedContext)))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if let Err(why) = this.scanner.feed(data) {
                        return this.refuse(why);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }
}

/// Forwards a build, its context checked on the way; `Err` is the refusal to answer with.
pub async fn forward(
    dockerd: &std::path::Path,
    method: Method,
    uri: &str,
    dockerfile: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let (tx, mut rx) = oneshot::channel();
    let scanned = Scanned {
        inner: Some(body),
        scanner: Scanner::new(dockerfile),
        refused: Some(tx),
    };
    let answer = forward_body(dockerd, method, uri, headers, scanned).await;
    // A refusal ends the upload, which fails the forwarding: wait a moment for its reason
    // (it is sent before the error reaches here, but from the connection's task).
    let refusal = match &answer {
        Ok(_) => rx.try_recv().ok(),
        Err(_) => tokio::time::timeout(std::time::Duration::from_secs(1), &mut rx)
            .await
            .ok()
            .and_then(Result::ok),
    };
    if let Some((why, rest)) = refusal {
        drain(rest).await;
        return Err(Refusal {
            status: Status::Forbidden,
            message: format!("dockgate: {why}"),
            rule: Some("remote_fetch"),
        });
    }
    answer.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "forwarding a build to dockerd failed");
        Refusal::new(
            Status::BadGateway,
            "the Docker engine behind this gateway is unreachable",
        )
    })
}

/// Reads and drops the rest of a refused context, for as long as nginx sends it in time.
async fn drain(mut rest: Body) {
    use http_body_util::BodyExt;
    let read = async { while let Some(Ok(_)) = rest.frame().await {} };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), read).await;
}
