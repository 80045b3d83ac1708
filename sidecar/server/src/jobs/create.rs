//! A job container's create: before dockerd sees it, a new key, the job's socket open, its
//! directory mounted read-only at `/run/dockgate` and the key in the `dockgate.job` label;
//! after, `/var/run/docker.sock` made a symlink to the socket in the job's file system. Also
//! the symlinks of a job's own creates (see `binds`), and the memory they get by default.

use std::path::Path;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::Response;
use http_body_util::{BodyExt, Limited};

use dockgate_api::refusal::{Refusal, Status};
use dockgate_decision::jobs::{JobKey, DOCKER_SOCK, LABEL, SOCKET_DIR, SOCKET_NAME};
use dockgate_policy::gojson::Value;

use super::sockets::{nonce, Jobs};
use crate::forward::forward;

/// Opens the socket of a new job of role `job_role` and writes its mount and label into the
/// create body.
pub fn prepare(jobs: &Jobs, job_role: &str, body: &mut Value) -> Result<JobKey, Refusal> {
    let failed = |e: anyhow::Error| {
        tracing::error!(error = %format!("{e:#}"), "opening a job socket failed");
        Refusal::new(
            Status::Internal,
            format!("could not open the CI job's Docker socket: {e:#}"),
        )
    };
    let key = JobKey::new(job_role, nonce().map_err(failed)?);
    let dir = jobs.open(key).map_err(failed)?;
    let s = |v: &str| Value::String(v.to_string());
    let host = body.object_field("HostConfig");
    let mut mounts: Vec<Value> = host
        .field("Mounts")
        .map(|m| m.items().to_vec())
        .unwrap_or_default();
    mounts.push(Value::Object(vec![
        ("Type".into(), s("bind")),
        ("Source".into(), s(&dir.to_string_lossy())),
        ("Target".into(), s(SOCKET_DIR)),
        ("ReadOnly".into(), Value::Bool(true)),
    ]));
    host.set_field("Mounts", Value::Array(mounts));
    body.object_field("Labels")
        .set_map_key(LABEL, Value::String(key.hex()));
    Ok(key)
}

/// Gives a job's container `memory` bytes if it asks for no limit (before the job's
/// `max_memory` is checked).
pub fn default_memory(body: &mut Value, memory: i64) {
    let host = body.object_field("HostConfig");
    let asked = host
        .field("Memory")
        .and_then(|m| match m {
            Value::Number(n) => n.as_i64(),
            _ => None,
        })
        .unwrap_or(0);
    if asked <= 0 {
        host.set_field("Memory", Value::Number(memory.into()));
    }
}

/// dockerd's answer to a job container's create: on success the socket's symlink is written
/// (else the container is removed again); on any failure the socket is closed.
pub async fn finish(dockerd: &Path, jobs: &Jobs, key: JobKey, resp: Response) -> Response {
    if !resp.status().is_success() {
        jobs.close(&key);
        return resp;
    }
    let target = format!("{SOCKET_DIR}/{SOCKET_NAME}");
    let link = (DOCKER_SOCK.trim_start_matches('/').to_string(), target);
    let (resp, written) = with_symlinks(dockerd, resp, &[link]).await;
    match written {
        Ok(id) => jobs.set_container(&key, &id),
        Err(()) => jobs.close(&key),
    }
    resp
}

/// After a create that needs `links` in the new container: writes them, or removes the
/// container and answers why. Returns the answer to send and, if the links are there, the
/// container's ID.
pub async fn with_symlinks(
    dockerd: &Path,
    resp: Response,
    links: &[(String, String)],
) -> (Response, Result<String, ()>) {
    if links.is_empty() || !resp.status().is_success() {
        return (resp, Ok(String::new()));
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match Limited::new(body, 1 << 20).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            let r = Refusal::new(Status::BadGateway, format!("reading dockerd's answer: {e}"));
            return (refused(&r), Err(()));
        }
    };
    let id = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["Id"].as_str().map(str::to_string));
    let Some(id) = id else {
        let r = Refusal::new(Status::BadGateway, "dockerd's create answer has no Id");
        return (refused(&r), Err(()));
    };
    if let Err(message) = write_symlinks(dockerd, &id, links).await {
        let _ = crate::lookups::call_json(
            dockerd,
            Method::DELETE,
            &format!("/containers/{id}?force=1&v=1"),
        )
        .await;
        let r = Refusal::new(
            Status::Internal,
            format!("the container could not be prepared, so it was removed: {message}"),
        );
        return (refused(&r), Err(()));
    }
    parts.headers.remove("content-length");
    (Response::from_parts(parts, Body::from(bytes)), Ok(id))
}

/// `PUT /containers/{id}/archive?path=/` with the symlinks.
async fn write_symlinks(
    dockerd: &Path,
    id: &str,
    links: &[(String, String)],
) -> Result<(), String> {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-tar"),
    );
    let tar = Bytes::from(super::tar::symlinks(links));
    // dockerd replaces what is at a link's place (the image's own files, which a bind there
    // would have hidden); `binds::apply` keeps links out of every mount, where that would
    // remove the mount's files.
    let uri = format!("/containers/{id}/archive?path=%2F");
    let resp = forward(dockerd, Method::PUT, &uri, &headers, tar)
        .await
        .map_err(|e| format!("{e:#}"))?;
    if resp.status().is_success() {
        return Ok(());
    }
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    Err(format!("writing its symlinks: {status}: {message}"))
}

fn refused(r: &Refusal) -> Response {
    let status = axum::http::StatusCode::from_u16(r.status.code())
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = Response::new(Body::from(format!("{}\n", r.json())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}
