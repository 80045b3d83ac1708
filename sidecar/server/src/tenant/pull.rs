//! A tenant's `docker pull`: dockerd pulls under the registry's name, the progress streams
//! to the client as it comes, and once the pull succeeded the image is tagged into the
//! tenant's namespace. The registry's name is then put back as it was (untagged, or on the
//! admin's shared image it named before), so what a tenant pulled, perhaps with its own
//! credentials, is neither left for the others nor put in place of their shared image.
//! While it is under way, the name does not pass for a shared image ([`pulling`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::stream::ChannelBody;
use crate::forward::{call_json, forward};
use dockgate_tenant::images::{mangle_image, Reference};

/// The reference pulled: `fromImage` with its tag (the `tag` parameter, or `latest`).
fn pulled(from: &str, tag: Option<&str>) -> String {
    match tag.filter(|t| !t.is_empty()) {
        Some(tag) => format!("{from}:{tag}"),
        None if from.rsplit_once(':').is_some_and(|(_, t)| !t.contains('/')) => from.into(),
        None => format!("{from}:latest"),
    }
}

/// A progress line the docker CLI prints as the pull's error.
fn error_line(message: &str) -> Bytes {
    let text = serde_json::json!({ "errorDetail": { "message": message }, "error": message });
    Bytes::from(format!("{text}\r\n"))
}

/// References tenants are pulling through this sidecar right now. Between dockerd's pull and
/// the gateway's moving the image into the tenant's namespace, the registry's name is on the
/// engine: it must not pass for a shared image meanwhile ([`pulling`]).
static PULLING: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

/// The familiar form of a pulled reference, with its tag (`busybox` → `busybox:latest`).
fn familiar(reference: &str) -> String {
    match Reference::parse(reference) {
        Some(r) if r.suffix.is_empty() => format!("{}:latest", r.familiar()),
        Some(r) => r.familiar(),
        None => reference.to_string(),
    }
}

/// Whether a tenant's pull of `reference` is under way on this sidecar.
pub fn pulling(reference: &str) -> bool {
    let key = familiar(reference);
    PULLING
        .lock()
        .map(|set| set.contains_key(&key))
        .unwrap_or(true)
}

/// A pull in [`PULLING`] for as long as it lives.
struct InFlight(String);

impl InFlight {
    fn new(reference: &str) -> InFlight {
        let key = familiar(reference);
        if let Ok(mut set) = PULLING.lock() {
            *set.entry(key.clone()).or_default() += 1;
        }
        InFlight(key)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut set) = PULLING.lock() {
            if let Some(n) = set.get_mut(&self.0) {
                *n -= 1;
                if *n == 0 {
                    set.remove(&self.0);
                }
            }
        }
    }
}

fn path(r: &str) -> String {
    r.replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23")
}

/// The engine's image ID for `reference`, if it has one.
async fn image_id(dockerd: &Path, reference: &str) -> Option<String> {
    match call_json(
        dockerd,
        Method::GET,
        &format!("/images/{}/json", path(reference)),
    )
    .await
    {
        Ok((200, json)) => json["Id"].as_str().map(str::to_string),
        _ => None,
    }
}

/// Tags image `id` as `reference` (`repo:tag`, moving the tag if another image had it).
async fn tag(
    dockerd: &Path,
    id: &str,
    reference: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
    call_json(
        dockerd,
        Method::POST,
        &format!(
            "/images/{}/tag?repo={}&tag={}",
            path(id),
            path(repo).replace('&', "%26"),
            path(tag)
        ),
    )
    .await
}

pub async fn pull(
    dockerd: &Path,
    tenant: &str,
    uri: &str,
    from: &str,
    tag_param: Option<&str>,
    headers: &HeaderMap,
) -> anyhow::Result<Response> {
    let plain = pulled(from, tag_param);
    let engine = mangle_image(tenant, &plain)
        .ok_or_else(|| anyhow::anyhow!("invalid reference format: {plain}"))?;
    let in_flight = InFlight::new(&plain);
    // What the registry's name was before (an admin's shared image, or nothing): it is put
    // back as it was, whatever the pull does.
    let before = image_id(dockerd, &plain).await;
    let resp = forward(dockerd, Method::POST, uri, headers, Bytes::new()).await?;
    if !resp.status().is_success() {
        return Ok(resp);
    }
    let (parts, mut upstream) = resp.into_parts();
    let (tx, rx) = mpsc::channel(16);
    let dockerd = dockerd.to_path_buf();
    let tenant = tenant.to_string();
    tokio::spawn(async move {
        let _in_flight = in_flight;
        // Read to the end even when the client has gone: dockerd may finish the pull.
        let mut failed = false;
        let mut listening = true;
        while let Some(frame) = upstream.frame().await {
            let Ok(frame) = frame else {
                failed = true;
                break;
            };
            if let Ok(data) = frame.into_data() {
                failed |= data.windows(8).any(|w| w == b"\"error\":");
                if listening && tx.send(data).await.is_err() {
                    listening = false;
                }
            }
        }
        let current = image_id(&dockerd, &plain).await;
        // The image this pull brought that was not there under the name before.
        let pulled_id = current.clone().filter(|id| Some(id) != before.as_ref());
        let mut taken = false;
        if let (false, Some(id)) = (failed, &current) {
            match take_in(&dockerd, &tenant, &plain, id, &engine).await {
                Ok(()) => taken = true,
                Err(message) => {
                    let _ = tx.send(error_line(&message)).await;
                }
            }
        }
        // The registry's name as it was; the pulled image, if the tenant did not get it, gone.
        match &before {
            Some(old) => {
                if pulled_id.is_some() {
                    if let Err(e) = tag(&dockerd, old, &plain).await {
                        tracing::warn!(error = %e, image = %plain, "restoring a shared tag failed");
                    }
                }
            }
            None => {
                let untag = format!("/images/{}?noprune=1", path(&plain));
                let _ = call_json(&dockerd, Method::DELETE, &untag).await;
            }
        }
        if let (false, Some(id)) = (taken, &pulled_id) {
            let _ = call_json(&dockerd, Method::DELETE, &format!("/images/{}", path(id))).await;
        }
    });
    let mut resp = Response::from_parts(parts, Body::new(ChannelBody(rx)));
    resp.headers_mut().remove("content-length");
    Ok(resp)
}

/// Tags a tenant's pulled image into its namespace, unless its configuration names another
/// tenant (built or committed elsewhere: once untagged it would pass for that tenant's).
/// The tenant's own name is its commits, pushed and pulled back.
async fn take_in(
    dockerd: &Path,
    tenant: &str,
    plain: &str,
    id: &str,
    engine: &str,
) -> Result<(), String> {
    let labels = match call_json(dockerd, Method::GET, &format!("/images/{}/json", path(id))).await
    {
        Ok((200, json)) => json.pointer("/Config/Labels").cloned(),
        _ => None,
    };
    let owner = labels
        .as_ref()
        .and_then(|l| l.get(dockgate_tenant::names::LABEL))
        .and_then(|o| o.as_str());
    if let Some(owner) = owner.filter(|o| *o != tenant) {
        return Err(format!(
            "dockgate: {plain} carries the label {}={owner}, which only the gateway sets: it is \
             not taken into the tenant's namespace",
            dockgate_tenant::names::LABEL
        ));
    }
    match tag(dockerd, id, engine).await {
        Ok((201, _)) => Ok(()),
        Ok((status, answer)) => Err(format!(
            "dockgate: the pull succeeded but tagging it into the tenant's namespace failed \
             ({status}): {}",
            answer["message"].as_str().unwrap_or("")
        )),
        Err(e) => Err(format!("dockgate: {e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pulled_reference_has_a_tag() {
        assert_eq!(pulled("busybox", None), "busybox:latest");
        assert_eq!(pulled("busybox", Some("")), "busybox:latest");
        assert_eq!(pulled("busybox", Some("1.36")), "busybox:1.36");
        assert_eq!(
            pulled("127.0.0.1:5000/app", None),
            "127.0.0.1:5000/app:latest"
        );
        assert_eq!(pulled("127.0.0.1:5000/app:2", None), "127.0.0.1:5000/app:2");
    }
}
