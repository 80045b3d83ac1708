//! The questions the sidecar asks dockerd itself: inspects for reach and tenant admission,
//! image lookups, tags and removals around pulls. `GET`s go over kept-alive connections: a
//! lookup takes an idle one (or opens one) and puts it back once the answer is read, so a
//! request the sidecar decides does not pay for a new connection per lookup.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;

use crate::forward::connect;

/// Idle connections kept, over all dockerd sockets.
const IDLE_MAX: usize = 16;

type Sender = SendRequest<Full<Bytes>>;

/// Connections whose last answer was read whole, ready for the next `GET`.
static IDLE: Mutex<Vec<(PathBuf, Sender)>> = Mutex::new(Vec::new());

fn take_idle(dockerd: &Path) -> Option<Sender> {
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    while let Some(i) = idle.iter().rposition(|(p, _)| p == dockerd) {
        let (_, sender) = idle.swap_remove(i);
        if !sender.is_closed() {
            return Some(sender);
        }
    }
    None
}

fn put_idle(dockerd: &Path, sender: Sender) {
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    if idle.len() < IDLE_MAX && !sender.is_closed() {
        idle.push((dockerd.to_path_buf(), sender));
    }
}

/// Asks dockerd a question of its own (`GET path`): the status and the JSON answer
/// (`null` when the answer is not JSON).
pub async fn get_json(dockerd: &Path, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    call_json(dockerd, Method::GET, path).await
}

/// As [`get_json`], with another method (and no body). Only `GET`s reuse connections: one
/// that fails on a kept connection (dockerd closed it meanwhile) is asked again on a new
/// one, which is safe for a read only.
pub async fn call_json(
    dockerd: &Path,
    method: Method,
    path: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let reuse = method == Method::GET;
    if let Some(sender) = reuse.then(|| take_idle(dockerd)).flatten() {
        if let Ok((answer, sender)) = ask(sender, Method::GET, path).await {
            put_idle(dockerd, sender);
            return Ok(answer);
        }
    }
    let (answer, sender) = ask(connect(dockerd).await?, method, path).await?;
    if reuse {
        put_idle(dockerd, sender);
    }
    Ok(answer)
}

/// One request on `sender`; the answer is read whole, so the connection can be reused.
async fn ask(
    mut sender: Sender,
    method: Method,
    path: &str,
) -> anyhow::Result<((u16, serde_json::Value), Sender)> {
    sender.ready().await.context("connection to dockerd")?;
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", HeaderValue::from_static("docker"))
        .body(Full::new(Bytes::new()))
        .context("build the request to dockerd")?;
    let resp = sender
        .send_request(req)
        .await
        .context("request to dockerd")?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .context("read dockerd's answer")?
        .to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or_default();
    Ok(((status, json), sender))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    /// A dockerd stand-in answering `{}` to every request; `per_connection` answers, then it
    /// closes. Returns its socket and the count of connections accepted.
    fn engine(tag: &str, per_connection: usize) -> (PathBuf, Arc<AtomicUsize>) {
        let path =
            std::env::temp_dir().join(format!("dockgate-lookups-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    for _ in 0..per_connection {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                        buf.drain(..end);
                        let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                      Content-Length: 2\r\n\r\n{}";
                        if conn.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (path, accepted)
    }

    #[tokio::test]
    async fn lookups_reuse_one_connection() {
        let (path, accepted) = engine("reuse", usize::MAX);
        for _ in 0..5 {
            let (status, json) = get_json(&path, "/containers/x/json").await.unwrap();
            assert_eq!((status, json), (200, serde_json::json!({})));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // Not a read: a connection of its own, not kept.
        call_json(&path, Method::POST, "/images/x/tag")
            .await
            .unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn a_connection_dockerd_closed_is_replaced() {
        let (path, accepted) = engine("closed", 1);
        for _ in 0..3 {
            let (status, _) = get_json(&path, "/containers/x/json").await.unwrap();
            assert_eq!(status, 200);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        let _ = std::fs::remove_file(&path);
    }
}
