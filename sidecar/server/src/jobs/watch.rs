//! Jobs end when their containers go: dockerd's events say so at once, and a look at the
//! engine (at start, after the event stream broke, and every minute) catches what the events
//! did not: jobs that ended while the sidecar was down, objects a job was still creating as
//! its namespace was emptied.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method};
use http_body_util::BodyExt;
use serde_json::Value as Json;

use std::path::{Path, PathBuf};

use dockgate_decision::jobs::{Cleanup, JobKey, LABEL, SOCKET_DIR};
use dockgate_tenant::images::Reference;
use dockgate_tenant::names::LABEL as TENANT_LABEL;

use super::cleanup::empty;
use super::Jobs;
use crate::forward::forward;
use crate::lookups::get_json;
use dockgate_tenant::lookup::segment;

/// How long a new job's socket may wait for its container.
const BEING_CREATED: Duration = Duration::from_secs(120);

/// How often the engine is looked at without an event.
const RECONCILE_EVERY: Duration = Duration::from_secs(60);

/// Follows the engine for as long as the sidecar runs.
pub async fn watch(dockerd: PathBuf, jobs: Arc<Jobs>) {
    loop {
        if let Err(e) = follow(&dockerd, &jobs).await {
            tracing::warn!(error = %format!("{e:#}"), "dockerd's event stream ended");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Reads dockerd's events about job containers; returns when the stream ends. The engine is
/// looked at once the stream is open, so that no job ends unseen in between.
async fn follow(dockerd: &Path, jobs: &Arc<Jobs>) -> anyhow::Result<()> {
    let filters = segment(&format!(
        r#"{{"type":["container"],"label":["{LABEL}"],"event":["die","destroy"]}}"#
    ));
    let resp = forward(
        dockerd,
        Method::GET,
        &format!("/events?filters={filters}"),
        &HeaderMap::new(),
        Default::default(),
    )
    .await?;
    anyhow::ensure!(resp.status().is_success(), "GET /events: {}", resp.status());
    let mut body = resp.into_body();
    if let Err(e) = reconcile(dockerd, jobs).await {
        tracing::warn!(error = %format!("{e:#}"), "looking at the jobs on the engine failed");
    }
    let mut pending = Vec::new();
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    tick.tick().await;
    loop {
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = tick.tick() => {
                if let Err(e) = reconcile(dockerd, jobs).await {
                    tracing::warn!(error = %format!("{e:#}"), "looking at the jobs failed");
                }
                continue;
            }
        };
        let Some(frame) = frame else {
            return Ok(());
        };
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let Ok(event) = serde_json::from_slice::<Json>(&line) else {
                continue;
            };
            let attributes = &event["Actor"]["Attributes"];
            let Some(key) = attributes[LABEL].as_str().and_then(JobKey::parse_hex) else {
                continue;
            };
            // Only the container the sidecar made for the job ends it: another one with the
            // label (an image's labels come with it) or another gateway's job is not this one.
            let id = event["Actor"]["ID"].as_str().or(event["id"].as_str());
            if id.is_none() || jobs.container_of(&key).as_deref() != id {
                continue;
            }
            // Each clean-up on a task of its own: a big one holds up no other.
            let (dockerd, jobs) = (dockerd.to_path_buf(), jobs.clone());
            match event["Action"].as_str() {
                Some("destroy") => {
                    tokio::spawn(async move { end_job(&dockerd, &jobs, &key).await });
                }
                Some("die") if jobs.settings.cleanup == Cleanup::Stop => {
                    tokio::spawn(async move { empty_namespace(&dockerd, &jobs, &key).await });
                }
                _ => {}
            }
        }
    }
}

/// The job container is gone: its socket closes, then its namespace is emptied.
pub async fn end_job(dockerd: &Path, jobs: &Jobs, key: &JobKey) {
    jobs.close(key);
    empty_namespace(dockerd, jobs, key).await;
    jobs.ended
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

async fn empty_namespace(dockerd: &Path, jobs: &Jobs, key: &JobKey) {
    let tenant = key.tenant();
    // A create in flight when the socket closed may land after the first pass.
    for pass in 0..2 {
        match empty(dockerd, &tenant).await {
            Ok(removed) if removed.total() > 0 || pass == 0 => {
                jobs.count_removed(&removed);
                tracing::info!(job = %key.hex(), pass, containers = removed.containers,
                    networks = removed.networks, volumes = removed.volumes,
                    images = removed.images, "job namespace emptied");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(job = %key.hex(), error = %format!("{e:#}"),
                "emptying a job's namespace failed"),
        }
        if pass == 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Sockets for the running jobs, and clean-up after the jobs that ended.
pub async fn reconcile(dockerd: &Path, jobs: &Jobs) -> anyhow::Result<()> {
    let filters = segment(&format!(r#"{{"label":["{LABEL}"]}}"#));
    let (_, listed) = get_json(
        dockerd,
        &format!("/containers/json?all=1&filters={filters}"),
    )
    .await?;
    // Every job container on the engine, and this gateway's (its socket directory in
    // `jobs.dir`) with whether it runs.
    // A job container has the label and the gateway's mount of the job's directory (which
    // no client can add); the label alone may have come with an image.
    let mut live: HashSet<JobKey> = HashSet::new();
    let mut ours: HashMap<JobKey, (bool, String)> = HashMap::new();
    for c in listed.as_array().into_iter().flatten() {
        let Some(key) = c["Labels"][LABEL].as_str().and_then(JobKey::parse_hex) else {
            continue;
        };
        let Some(source) = socket_mount(c, &key) else {
            continue;
        };
        let running = c["State"] == "running" || c["State"] == "restarting";
        live.insert(key);
        if source == jobs.settings.job_dir(&key) {
            if let Some(id) = c["Id"].as_str() {
                ours.insert(key, (running, id.to_string()));
            }
        }
    }
    for (key, (running, id)) in &ours {
        if !jobs.is_open(key) {
            match jobs.open_for(*key, Some(id.clone())) {
                Ok(_) => tracing::info!(job = %key.hex(), "job socket made again"),
                Err(e) => tracing::warn!(job = %key.hex(), error = %format!("{e:#}"),
                    "making a job socket again failed"),
            }
        } else if jobs.container_of(key).is_none() {
            jobs.set_container(key, id);
        }
        if !running && jobs.settings.cleanup == Cleanup::Stop {
            empty_namespace(dockerd, jobs, key).await;
        }
    }
    // Jobs whose containers are gone: their directories, and their objects.
    let mut ended: BTreeSet<String> = BTreeSet::new();
    for key in jobs.dirs() {
        if !ours.contains_key(&key) {
            ended.insert(key.hex());
        }
    }
    for tenant in job_tenants(dockerd).await? {
        if let Some(key) = JobKey::from_tenant(&tenant) {
            if !live.contains(&key) {
                ended.insert(key.hex());
            }
        }
    }
    for hex in ended {
        let key = JobKey::parse_hex(&hex);
        // A job whose create is still on its way to dockerd has a socket and no container.
        if let Some(key) = key.filter(|k| !jobs.opened_within(k, BEING_CREATED)) {
            tracing::info!(job = %hex, "cleaning up after a job that ended");
            end_job(dockerd, jobs, &key).await;
        }
    }
    Ok(())
}

/// Where a listed container's job socket directory for `key` comes from: its bind at
/// `/run/dockgate` of a directory named after the key (this gateway's or another's).
fn socket_mount(container: &Json, key: &JobKey) -> Option<PathBuf> {
    let mounts = container["Mounts"].as_array().into_iter().flatten();
    mounts
        .filter(|m| m["Type"] == "bind" && m["Destination"] == SOCKET_DIR)
        .filter_map(|m| m["Source"].as_str().map(PathBuf::from))
        .find(|source| source.file_name().and_then(|n| n.to_str()) == Some(&key.hex()))
}

/// The job namespaces that have objects on the engine.
async fn job_tenants(dockerd: &Path) -> anyhow::Result<BTreeSet<String>> {
    let filters = segment(&format!(r#"{{"label":["{TENANT_LABEL}"]}}"#));
    let mut out = BTreeSet::new();
    let mut add = |labels: &Json| {
        if let Some(t) = labels[TENANT_LABEL].as_str() {
            if JobKey::from_tenant(t).is_some() {
                out.insert(t.to_string());
            }
        }
    };
    let (_, containers) = get_json(
        dockerd,
        &format!("/containers/json?all=1&filters={filters}"),
    )
    .await?;
    containers
        .as_array()
        .into_iter()
        .flatten()
        .for_each(|c| add(&c["Labels"]));
    let (_, networks) = get_json(dockerd, &format!("/networks?filters={filters}")).await?;
    networks
        .as_array()
        .into_iter()
        .flatten()
        .for_each(|n| add(&n["Labels"]));
    let (_, volumes) = get_json(dockerd, &format!("/volumes?filters={filters}")).await?;
    volumes["Volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .for_each(|v| add(&v["Labels"]));
    let (_, images) = get_json(dockerd, "/images/json").await?;
    for image in images.as_array().into_iter().flatten() {
        for tag in image["RepoTags"].as_array().into_iter().flatten() {
            let owner = tag.as_str().and_then(Reference::parse);
            if let Some(t) = owner.as_ref().and_then(Reference::owner) {
                if JobKey::from_tenant(t).is_some() {
                    out.insert(t.to_string());
                }
            }
        }
    }
    Ok(out)
}
