//! The lookups behind `dockgate_policy::reach`: for a conservative role, every existing
//! object a request acts through (the path's container, exec, volume or network; a commit's
//! container) and every one a create or connect borrows from (`--volumes-from`, `--link`,
//! named volumes, networks by name or ID) is looked up on the engine and must be one the role
//! could have created itself. A missing object is left to dockerd, which answers for it in
//! its own words.

use std::path::Path;

use dockgate_api::endpoints::{Endpoint, Resource, Through};
use dockgate_policy::gojson::Value;
use dockgate_policy::reach;
use dockgate_policy::rules::{Conservative, Refusal as RuleRefusal};
use serde_json::Value as Json;

use crate::tenant::ask;
use crate::tenant::lookup::segment;
use dockgate_api::refusal::{Refusal, Status};

/// Networks every engine has, which nobody created.
const BUILTIN: &[&str] = &["bridge", "none", "default", ""];

/// The object `endpoint` acts through (`target`, as `dockgate_decision::head::reach_target`
/// names it) must be within reach.
pub async fn head(
    dockerd: &Path,
    settings: &Conservative,
    endpoint: &Endpoint,
    target: &str,
) -> Result<(), Refusal> {
    match (endpoint.through, endpoint.resource) {
        (Through::Query(_), _) | (_, Resource::Container) => {
            // `DELETE /containers/web/db?link=1` removes a link of container `web`.
            let container = target.split('/').next().unwrap_or(target);
            container_in_reach(dockerd, settings, container).await
        }
        (_, Resource::Exec) => {
            let Some(exec) = found(dockerd, &format!("/exec/{}/json", segment(target))).await?
            else {
                return Ok(());
            };
            reach::exec(&exec).map_err(refusal)?;
            match exec.get("ContainerID").and_then(Json::as_str) {
                Some(id) => container_in_reach(dockerd, settings, id).await,
                None => Ok(()),
            }
        }
        (_, Resource::Volume) => volume_in_reach(dockerd, settings, target).await,
        (_, Resource::Network) => network_in_reach(dockerd, settings, target).await,
        _ => Ok(()),
    }
}

/// What a create borrows, and the container a network connect or disconnect changes, must be
/// within reach.
pub async fn body(
    dockerd: &Path,
    settings: &Conservative,
    endpoint: &Endpoint,
    value: &Value,
) -> Result<(), Refusal> {
    use dockgate_api::endpoints::Body;
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(v) => v
                .items()
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            None => Vec::new(),
        }
    };
    match endpoint.body {
        Body::ContainerCreate => {
            let Some(host) = value.field("HostConfig") else {
                return endpoints_in_reach(dockerd, settings, value).await;
            };
            // `ref[:ro]` and `ref:alias`: a name (with or without `/`) or an ID.
            for item in strings(host.field("VolumesFrom"))
                .into_iter()
                .chain(strings(host.field("Links")))
            {
                let reference = item.split(':').next().unwrap_or("").trim_start_matches('/');
                container_in_reach(dockerd, settings, reference).await?;
            }
            for bind in strings(host.field("Binds")) {
                let source = bind.split(':').next().unwrap_or("");
                if !source.is_empty() && !source.starts_with('/') && bind.contains(':') {
                    volume_in_reach(dockerd, settings, source).await?;
                }
            }
            for m in host.field("Mounts").map(Value::items).unwrap_or_default() {
                let kind = m.field("Type").and_then(Value::as_str).unwrap_or("");
                let source = m.field("Source").and_then(Value::as_str).unwrap_or("");
                if kind == "volume" && !source.is_empty() {
                    volume_in_reach(dockerd, settings, source).await?;
                }
            }
            let mode = host
                .field("NetworkMode")
                .and_then(Value::as_str)
                .unwrap_or("");
            match mode.strip_prefix("container:") {
                // Its network is the one it joins: a container the role could have made.
                Some(reference) => container_in_reach(dockerd, settings, reference).await?,
                None if !BUILTIN.contains(&mode) && mode != "host" => {
                    network_in_reach(dockerd, settings, mode).await?
                }
                None => {}
            }
            endpoints_in_reach(dockerd, settings, value).await
        }
        Body::NetworkConnect | Body::NetworkDisconnect => {
            if let Some(c) = value.field("Container").and_then(Value::as_str) {
                container_in_reach(dockerd, settings, c).await?;
            }
            if let Some(id) = value
                .path(&["EndpointConfig", "NetworkID"])
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
            {
                network_in_reach(dockerd, settings, id).await?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The networks a create's `EndpointsConfig` names, by key and by `NetworkID`.
async fn endpoints_in_reach(
    dockerd: &Path,
    settings: &Conservative,
    value: &Value,
) -> Result<(), Refusal> {
    let endpoints = value.path(&["NetworkingConfig", "EndpointsConfig"]);
    for (name, settings_of) in endpoints.map(Value::members).unwrap_or_default() {
        if !BUILTIN.contains(&name.as_str()) {
            network_in_reach(dockerd, settings, name).await?;
        }
        if let Some(id) = settings_of
            .field("NetworkID")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
        {
            network_in_reach(dockerd, settings, id).await?;
        }
    }
    Ok(())
}

async fn container_in_reach(
    dockerd: &Path,
    settings: &Conservative,
    reference: &str,
) -> Result<(), Refusal> {
    // A container that joined another's network leads to that one: followed, a few deep.
    let mut reference = reference.to_string();
    for _ in 0..MAX_JOINED {
        let path = format!("/containers/{}/json", segment(&reference));
        let Some(inspect) = found(dockerd, &path).await? else {
            return Ok(());
        };
        let uses = reach::container(&inspect, settings).map_err(refusal)?;
        for v in &uses.volumes {
            volume_in_reach(dockerd, settings, v).await?;
        }
        for n in &uses.networks {
            network_in_reach(dockerd, settings, n).await?;
        }
        match uses.containers.first() {
            Some(joined) => reference = joined.clone(),
            None => return Ok(()),
        }
    }
    Err(Refusal::new(
        Status::Forbidden,
        format!("dockgate: containers joined network namespaces more than {MAX_JOINED} deep"),
    ))
}

/// How long a chain of `--network container:` joins the reach check follows.
const MAX_JOINED: usize = 8;

async fn volume_in_reach(
    dockerd: &Path,
    settings: &Conservative,
    name: &str,
) -> Result<(), Refusal> {
    match found(dockerd, &format!("/volumes/{}", segment(name))).await? {
        Some(v) => reach::volume(&v, settings).map_err(refusal),
        None => Ok(()),
    }
}

async fn network_in_reach(
    dockerd: &Path,
    settings: &Conservative,
    reference: &str,
) -> Result<(), Refusal> {
    if BUILTIN.contains(&reference) {
        return Ok(());
    }
    match found(dockerd, &format!("/networks/{}", segment(reference))).await? {
        Some(n) => reach::network(&n, settings).map_err(refusal),
        None => Ok(()),
    }
}

/// dockerd's inspect answer, or `None` when it has no such object (it will say so itself).
async fn found(dockerd: &Path, path: &str) -> Result<Option<Json>, Refusal> {
    let (status, json) = ask(dockerd, path).await?;
    Ok((status == 200).then_some(json))
}

fn refusal(r: RuleRefusal) -> Refusal {
    Refusal {
        status: Status::Forbidden,
        message: format!("dockgate: {}", r.message),
        rule: Some(r.rule),
    }
}
