//! A job's namespace emptied: its containers (stopped first, then removed with their
//! anonymous volumes), networks, volumes, and images (each of its tags untagged; dockerd
//! removes an image with its last tag, and the classic builder's steps with it).

use std::path::{Path, PathBuf};

use anyhow::Context;
use hyper::Method;
use serde_json::Value as Json;

use dockgate_tenant::images::demangle_image;
use dockgate_tenant::lookup::{image_path, segment};
use dockgate_tenant::names::LABEL;

use crate::lookups::call_json;

/// What one clean-up removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
    pub images: usize,
}

impl Removed {
    pub fn total(&self) -> usize {
        self.containers + self.networks + self.volumes + self.images
    }
}

/// Seconds a job's container gets to stop before it is killed.
const STOP_SECONDS: u32 = 2;

/// Removes everything of tenant `tenant` from the engine.
pub async fn empty(dockerd: &Path, tenant: &str) -> anyhow::Result<Removed> {
    let filter = segment(&format!(r#"{{"label":["{LABEL}={tenant}"]}}"#));
    let mut removed = Removed::default();

    let containers = list(dockerd, &format!("/containers/json?all=1&filters={filter}")).await?;
    let mut stopping = tokio::task::JoinSet::new();
    for c in containers {
        let Some(id) = c["Id"].as_str().map(str::to_string) else {
            continue;
        };
        let dockerd: PathBuf = dockerd.to_path_buf();
        stopping.spawn(async move {
            if c["State"] == "running" || c["State"] == "paused" || c["State"] == "restarting" {
                let _ = call_json(
                    &dockerd,
                    Method::POST,
                    &format!("/containers/{id}/stop?t={STOP_SECONDS}"),
                )
                .await;
            }
            call_json(
                &dockerd,
                Method::DELETE,
                &format!("/containers/{id}?force=1&v=1"),
            )
            .await
            .map(|(status, _)| status)
        });
    }
    while let Some(done) = stopping.join_next().await {
        if let Ok(Ok(status)) = done {
            removed.containers += usize::from(status < 300);
        }
    }

    for n in list(dockerd, &format!("/networks?filters={filter}")).await? {
        if let Some(id) = n["Id"].as_str() {
            let (status, _) =
                call_json(dockerd, Method::DELETE, &format!("/networks/{id}")).await?;
            removed.networks += usize::from(status < 300);
        }
    }

    let (_, volumes) = call_json(dockerd, Method::GET, &format!("/volumes?filters={filter}"))
        .await
        .context("list the job's volumes")?;
    for v in volumes["Volumes"].as_array().into_iter().flatten() {
        if let Some(name) = v["Name"].as_str() {
            let path = format!("/volumes/{}?force=1", segment(name));
            let (status, _) = call_json(dockerd, Method::DELETE, &path).await?;
            removed.volumes += usize::from(status < 300);
        }
    }

    for image in list(dockerd, "/images/json").await? {
        let tags = image["RepoTags"].as_array().into_iter().flatten();
        for tag in tags.filter_map(Json::as_str) {
            if demangle_image(tenant, tag).is_some() {
                let path = format!("/images/{}", image_path(tag));
                let (status, _) = call_json(dockerd, Method::DELETE, &path).await?;
                removed.images += usize::from(status < 300);
            }
        }
    }
    // What its builds left untagged (an image built again under the same tag): the
    // tenant's label, and no tag of anyone's.
    let untagged = format!("/images/json?all=1&filters={filter}");
    for image in list(dockerd, &untagged).await? {
        let tagged = image["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .any(|t| t != "<none>:<none>");
        if let (false, Some(id)) = (tagged, image["Id"].as_str()) {
            let (status, _) = call_json(dockerd, Method::DELETE, &format!("/images/{id}")).await?;
            removed.images += usize::from(status < 300);
        }
    }
    Ok(removed)
}

/// A JSON list dockerd answers with.
async fn list(dockerd: &Path, path: &str) -> anyhow::Result<Vec<Json>> {
    let (status, answer) = call_json(dockerd, Method::GET, path)
        .await
        .with_context(|| format!("GET {path}"))?;
    match answer {
        Json::Array(items) => Ok(items),
        other => anyhow::bail!("GET {path}: {status} {other}"),
    }
}
