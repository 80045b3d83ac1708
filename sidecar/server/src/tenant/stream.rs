//! Streamed answers to a tenant (events, stats): passed on line by line as dockerd writes
//! them, each JSON line rewritten into the tenant's names.

use axum::body::{Body, Bytes};
use axum::response::Response;
use http_body_util::BodyExt;

use tokio::sync::mpsc;

use crate::channel_body::ChannelBody;

/// The answer with each complete line passed through `rewrite` (which gets the line
/// without its newline); a line longer than 16 MiB ends the stream.
pub fn rewrite_lines<F>(resp: Response, rewrite: F) -> Response
where
    F: Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
{
    const MAX_LINE: usize = 16 << 20;
    let (mut parts, mut upstream) = resp.into_parts();
    parts.headers.remove("content-length");
    let (tx, rx) = mpsc::channel(16);
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
            if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
                return;
            }
        }
        if !pending.is_empty() {
            let _ = tx
                .send(Ok(Bytes::from(rewrite(&pending).unwrap_or(pending))))
                .await;
        }
    });
    Response::from_parts(
        parts,
        Body::new(ChannelBody::<std::convert::Infallible>(rx)),
    )
}
