//! Streamed answers to a tenant (events, stats): passed on line by line as dockerd writes
//! them, each JSON line rewritten into the tenant's names.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::response::Response;
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

/// A response body fed from a channel.
pub struct ChannelBody(pub mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// The answer with each complete line passed through `rewrite` (which gets the line
/// without its newline); a line longer than 16 MiB ends the stream.
pub fn rewrite_lines<F>(resp: Response, rewrite: F) -> Response
where
    F: Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
{
    const MAX_LINE: usize = 16 << 20;
    let (mut parts, mut upstream) = resp.into_parts();
    parts.headers.remove("content-length");
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let mut pending: Vec<u8> = Vec::new();
        while let Some(Ok(frame)) = upstream.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            let mut out = Vec::new();
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let body = &line[..line.len() - 1];
                match rewrite(body) {
                    Some(new) => out.extend_from_slice(&new),
                    None => out.extend_from_slice(body),
                }
                out.push(b'\n');
            }
            if pending.len() > MAX_LINE {
                break;
            }
            if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                return;
            }
        }
        if !pending.is_empty() {
            let _ = tx
                .send(Bytes::from(rewrite(&pending).unwrap_or(pending)))
                .await;
        }
    });
    Response::from_parts(parts, Body::new(ChannelBody(rx)))
}
