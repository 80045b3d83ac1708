//! A tenant's `docker pull`: dockerd pulls under the registry's name, the progress streams
//! to the client as it comes, and once the pull succeeded the image is tagged into the
//! tenant's namespace. The registry's name is untagged again unless it was there before
//! (an admin's shared image), so what a tenant pulled, perhaps with its own credentials,
//! is not left for the others.

use std::path::Path;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::stream::ChannelBody;
use crate::forward::{call_json, forward};
use dockgate_tenant::images::mangle_image;

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

pub async fn pull(
    dockerd: &Path,
    tenant: &str,
    uri: &str,
    from: &str,
    tag: Option<&str>,
    headers: &HeaderMap,
) -> anyhow::Result<Response> {
    let plain = pulled(from, tag);
    let engine = mangle_image(tenant, &plain)
        .ok_or_else(|| anyhow::anyhow!("invalid reference format: {plain}"))?;
    let path = |r: &str| {
        r.replace('%', "%25")
            .replace('?', "%3F")
            .replace('#', "%23")
    };
    let (before, _) = call_json(
        dockerd,
        Method::GET,
        &format!("/images/{}/json", path(&plain)),
    )
    .await?;
    let resp = forward(dockerd, Method::POST, uri, headers, Bytes::new()).await?;
    if !resp.status().is_success() {
        return Ok(resp);
    }
    let (parts, mut upstream) = resp.into_parts();
    let (tx, rx) = mpsc::channel(16);
    let dockerd = dockerd.to_path_buf();
    let tenant = tenant.to_string();
    tokio::spawn(async move {
        let mut failed = false;
        while let Some(frame) = upstream.frame().await {
            let Ok(frame) = frame else {
                failed = true;
                break;
            };
            if let Ok(data) = frame.into_data() {
                failed |= data.windows(8).any(|w| w == b"\"error\":");
                if tx.send(data).await.is_err() {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            return;
        }
        // An image whose configuration names another tenant (built or committed elsewhere)
        // would pass for that tenant's once untagged. Its own name is the tenant's commits,
        // pushed and pulled back.
        let inspected = call_json(
            &dockerd,
            Method::GET,
            &format!("/images/{}/json", path(&plain)),
        )
        .await;
        let reserved = inspected.ok().and_then(|(_, json)| {
            let owner = json
                .pointer("/Config/Labels")?
                .get(dockgate_tenant::names::LABEL)?
                .as_str()?;
            (owner != tenant).then(|| format!("{}={owner}", dockgate_tenant::names::LABEL))
        });
        if let Some(label) = reserved {
            if before != 200 {
                let remove = format!("/images/{}", path(&plain));
                let _ = call_json(&dockerd, Method::DELETE, &remove).await;
            }
            let line = error_line(&format!(
                "dockgate: {plain} carries the label {label}, which only the gateway sets: it is \
                 not taken into the tenant's namespace"
            ));
            let _ = tx.send(line).await;
            return;
        }
        let (repo, tag) = engine.rsplit_once(':').unwrap_or((&engine, "latest"));
        let tagged = call_json(
            &dockerd,
            Method::POST,
            &format!(
                "/images/{}/tag?repo={}&tag={}",
                path(&plain),
                path(repo).replace('&', "%26"),
                path(tag)
            ),
        )
        .await;
        match tagged {
            Ok((201, _)) if before != 200 => {
                let untag = format!("/images/{}?noprune=1", path(&plain));
                if let Err(e) = call_json(&dockerd, Method::DELETE, &untag).await {
                    tracing::warn!(error = %e, image = %plain, "untagging a tenant's pull failed");
                }
            }
            Ok((201, _)) => {}
            Ok((status, answer)) => {
                let message = answer["message"].as_str().unwrap_or("").to_string();
                let line = error_line(&format!(
                    "dockgate: the pull succeeded but tagging it into the tenant's namespace \
                     failed ({status}): {message}"
                ));
                let _ = tx.send(line).await;
            }
            Err(e) => {
                let _ = tx.send(error_line(&format!("dockgate: {e:#}"))).await;
            }
        }
    });
    let mut resp = Response::from_parts(parts, Body::new(ChannelBody(rx)));
    resp.headers_mut().remove("content-length");
    Ok(resp)
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
