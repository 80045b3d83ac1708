//! A conservative role's classic build: its context streams to dockerd through
//! [`dockgate_policy::context::Scanner`], which reads the Dockerfile as it passes. A refused
//! Dockerfile ends the upload before dockerd has the whole context (the classic builder
//! extracts all of it before it runs a step), and the client gets the reason instead of
//! dockerd's answer. Nothing is buffered beyond the scanner's bounds.
//!
//! A tenant's build goes through [`forward_tenant`]: the context reaches dockerd as a plain
//! tar archive with its Dockerfile rewritten ([`crate::tenant::build`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use dockgate_policy::context::{entry, Piece, Scanner};
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::sync::{mpsc, oneshot};

use crate::channel_body::ChannelBody;
use crate::forward::forward_body;
use crate::tenant::build::rewrite_dockerfile;
use crate::tenant::stream::rewrite_lines;
use dockgate_api::refusal::{Refusal, Status};
use dockgate_decision::config::Tenant;

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

/// The refusal that ended an upload, if one did. A refusal fails the forwarding: wait a
/// moment for its reason (it is sent before the error reaches here, but from the
/// connection's task).
async fn refusal_of<T>(forwarded: bool, rx: &mut oneshot::Receiver<T>) -> Option<T> {
    if forwarded {
        return rx.try_recv().ok();
    }
    tokio::time::timeout(std::time::Duration::from_secs(1), rx)
        .await
        .ok()
        .and_then(Result::ok)
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
    if let Some((why, rest)) = refusal_of(answer.is_ok(), &mut rx).await {
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

/// How much of a decompressed context is read before what it became is sent on (bounds the
/// memory a gzip bomb can take to one slice's expansion).
const SLICE: usize = 16 << 10;

/// Forwards a tenant's build: the context decompressed and each Dockerfile in it rewritten
/// on the way; the answer's image names put back in the tenant's. `checks`: the role is
/// conservative (the Dockerfile checks of [`forward`] apply too).
pub async fn forward_tenant(
    dockerd: &std::path::Path,
    tenant: &Tenant,
    method: Method,
    uri: &str,
    headers: &HeaderMap,
    body: Body,
    checks: bool,
) -> Result<Response, Refusal> {
    let canonical = dockgate_api::uri::canonicalize(uri)
        .map_err(|e| Refusal::new(Status::BadRequest, e.to_string()))?;
    let args = dockgate_tenant::build::build_args(canonical.query_value("buildargs"))
        .map_err(|e| Refusal::new_plain(Status::BadRequest, e))?;
    let dockerfile = canonical.query_value("dockerfile").map(str::to_string);
    let (tx, rx) = mpsc::channel(4);
    let (refused_tx, mut refused_rx) = oneshot::channel::<(Refusal, Body)>();
    {
        let (dockerd, tenant) = (dockerd.to_path_buf(), tenant.clone());
        tokio::spawn(async move {
            let mut body = body;
            let mut scanner = Scanner::rewriting(dockerfile.as_deref(), checks);
            let outcome = async {
                loop {
                    let frame = body.frame().await;
                    let data = match frame {
                        None => {
                            scanner.finish().map_err(context_refusal)?;
                            send(&dockerd, &tenant, &args, checks, &mut scanner, &tx).await?;
                            return Ok(true);
                        }
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "reading a build context failed");
                            return Ok(false);
                        }
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(data) => data,
                            Err(_) => continue,
                        },
                    };
                    for slice in data.chunks(SLICE) {
                        scanner.feed(slice).map_err(context_refusal)?;
                        if !send(&dockerd, &tenant, &args, checks, &mut scanner, &tx).await? {
                            return Ok(false);
                        }
                    }
                }
            }
            .await;
            match outcome {
                Ok(true) => {}
                Ok(false) => {
                    let _ = tx.send(Err(RefusedContext)).await;
                }
                Err(refusal) => {
                    let _ = refused_tx.send((refusal, body));
                    let _ = tx.send(Err(RefusedContext)).await;
                }
            }
        });
    }
    // The context goes on as a plain tar archive, of another length.
    let mut headers = headers.clone();
    headers.remove("content-length");
    headers.remove("content-encoding");
    let answer = forward_body(dockerd, method, uri, &headers, ChannelBody(rx)).await;
    if let Some((refusal, rest)) = refusal_of(answer.is_ok(), &mut refused_rx).await {
        drain(rest).await;
        return Err(refusal);
    }
    match answer {
        Ok(resp) => {
            let name = tenant.name.clone();
            Ok(rewrite_lines(resp, move |line| {
                crate::tenant::answer::build_line(&name, line)
            }))
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "forwarding a build to dockerd failed");
            Err(Refusal::new(
                Status::BadGateway,
                "the Docker engine behind this gateway is unreachable",
            ))
        }
    }
}

/// A refused context, in the client's terms.
fn context_refusal(why: String) -> Refusal {
    Refusal {
        status: Status::Forbidden,
        message: format!("dockgate: {why}"),
        rule: Some("remote_fetch"),
    }
}

/// Sends on what the scanner has read, each Dockerfile rewritten; false when dockerd is gone.
async fn send(
    dockerd: &std::path::Path,
    tenant: &Tenant,
    args: &std::collections::BTreeMap<String, Option<String>>,
    checks: bool,
    scanner: &mut Scanner,
    tx: &mpsc::Sender<Result<Bytes, RefusedContext>>,
) -> Result<bool, Refusal> {
    for piece in scanner.take_pieces() {
        let bytes = match piece {
            Piece::Bytes(b) => b,
            Piece::Dockerfile { name, text } => {
                let engine = crate::tenant::Dockerd(dockerd);
                let new = rewrite_dockerfile(&engine, tenant, args, &text, checks).await?;
                entry(&name, new.as_bytes())
            }
        };
        if tx.send(Ok(Bytes::from(bytes))).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads and drops the rest of a refused context, for as long as nginx sends it in time.
async fn drain(mut rest: Body) {
    let read = async { while let Some(Ok(_)) = rest.frame().await {} };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), read).await;
}
