//! A tenant's request body on its way in: creates labelled and named in the tenant's
//! namespace, and every object a body names (images, volumes, containers, networks, network
//! IDs) resolved among the tenant's own, or answered as dockerd answers a missing one.

use dockgate_api::refusal::{Refusal, Status};
use dockgate_policy::gojson::Value;

use crate::engine::Engine;
use crate::lookup::{self, ImageUse};
use crate::names::{builtin_network, generated, mangle, LABEL, MEMORY_LABEL, NAME_LABELS};
use crate::Tenant;

/// Names carried in labels (compose's project) go into the tenant's namespace too.
fn mangle_name_labels(body: &mut Value, tenant: &str) {
    let labels = body.object_field("Labels");
    for key in NAME_LABELS {
        if let Some(Value::String(v)) = labels.field_mut(key) {
            *v = mangle(tenant, v);
        }
    }
}

/// Rewrites the body of a tenant's mediated request: labels and names on creates, and the
/// references inside bodies. `template` is the endpoint's.
pub async fn rewrite_body<E: Engine>(
    engine: &E,
    tenant: &Tenant,
    template: &str,
    body: &mut Value,
) -> Result<(), Refusal> {
    let t = tenant.name.as_str();
    match template {
        "/containers/create" => {
            container_create(engine, tenant, body).await?;
        }
        "/volumes/create" | "/networks/create" => {
            let name = match body.field("Name").and_then(Value::as_str) {
                Some(n) if !n.is_empty() => mangle(t, n),
                _ => generated(t),
            };
            body.set_field("Name", Value::String(name));
            mangle_name_labels(body, t);
            body.object_field("Labels")
                .set_map_key(LABEL, Value::String(t.into()));
        }
        "/networks/{id}/connect" | "/networks/{id}/disconnect" => {
            if let Some(c) = body.field("Container").and_then(Value::as_str) {
                let id = lookup::container(engine, t, c).await?;
                body.set_field("Container", Value::String(id));
            }
            if let Some(settings) = body.field_mut("EndpointConfig") {
                network_id(engine, t, settings).await?;
            }
        }
        "/containers/{id}/update" if tenant.max_memory.is_some() => {
            let memory = body.field("Memory").is_some() || body.field("MemorySwap").is_some();
            if memory {
                return Err(Refusal::new(
                    Status::Forbidden,
                    format!(
                        "tenant {t} has a memory limit: a container's memory is set when it is \
                         created, not updated"
                    ),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

async fn container_create<E: Engine>(
    engine: &E,
    tenant: &Tenant,
    body: &mut Value,
) -> Result<(), Refusal> {
    let t = tenant.name.as_str();
    let memory = match body.path(&["HostConfig", "Memory"]) {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    };
    limits(engine, tenant, memory).await?;
    if let Some(image) = body
        .field("Image")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        let engine = lookup::image(engine, tenant, &image, ImageUse::Read).await?;
        body.set_field("Image", Value::String(engine));
    }
    mangle_name_labels(body, t);
    let labels = body.object_field("Labels");
    labels.set_map_key(LABEL, Value::String(t.into()));
    labels.set_map_key(MEMORY_LABEL, Value::String(memory.to_string()));

    let host = body.object_field("HostConfig");
    // Named volumes in `-v name:/path` (paths start with `/`).
    if let Some(Value::Array(binds)) = host.field_mut("Binds") {
        for bind in binds.iter_mut() {
            if let Value::String(b) = bind {
                if !b.starts_with('/') && b.contains(':') {
                    *b = mangle(t, b);
                }
            }
        }
    }
    if let Some(Value::Array(mounts)) = host.field_mut("Mounts") {
        for m in mounts.iter_mut() {
            let is_volume = m
                .field("Type")
                .and_then(Value::as_str)
                .map_or(true, |ty| ty == "volume");
            let source = m
                .field("Source")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let (true, Some(src)) = (is_volume, source) {
                if !src.is_empty() && !src.starts_with('/') {
                    m.set_field("Source", Value::String(mangle(t, &src)));
                }
            }
        }
    }
    // `--volumes-from ref[:ro]`, `--link ref[:alias]`: other containers, by the tenant's
    // names; dockerd takes IDs too.
    for field in ["VolumesFrom", "Links"] {
        let Some(Value::Array(items)) = host.field(field) else {
            continue;
        };
        let mut resolved = Vec::new();
        for item in items.clone() {
            let Some(text) = item.as_str() else {
                resolved.push(item);
                continue;
            };
            let (reference, rest) = match text.split_once(':') {
                Some((r, rest)) => (r, format!(":{rest}")),
                None => (text, String::new()),
            };
            let reference = reference.trim_start_matches('/');
            // dockerd answers a missing one with 400, in these words (a 404 would make the
            // CLI take it for a missing image and try to pull it).
            let id = lookup::container(engine, t, reference).await.map_err(|r| {
                if r.status != Status::NotFound {
                    return r;
                }
                let message = if field == "Links" {
                    format!("could not get container for {reference}: {}", r.message)
                } else {
                    r.message
                };
                Refusal::new_plain(Status::BadRequest, message)
            })?;
            resolved.push(Value::String(format!("{id}{rest}")));
        }
        host.set_field(field, Value::Array(resolved));
    }
    // `--network NAME|container:REF`, `--pid/--ipc container:REF`.
    for field in ["NetworkMode", "PidMode", "IpcMode"] {
        let Some(mode) = host
            .field(field)
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            continue;
        };
        let new = if let Some(reference) = mode.strip_prefix("container:") {
            let id = lookup::container(engine, t, reference)
                .await
                .map_err(missing_at_create)?;
            format!("container:{id}")
        } else if field == "NetworkMode" && !mode.is_empty() && !builtin_network(&mode) {
            lookup::network(engine, t, &mode)
                .await
                .map_err(missing_at_create)?
        } else {
            continue;
        };
        host.set_field(field, Value::String(new));
    }
    // `--network` for user networks also names them in EndpointsConfig.
    if let Some(Value::Object(endpoints)) = body
        .field_mut("NetworkingConfig")
        .and_then(|n| n.field_mut("EndpointsConfig"))
    {
        for (name, settings) in endpoints.iter_mut() {
            if !builtin_network(name) {
                *name = lookup::network(engine, t, name)
                    .await
                    .map_err(missing_at_create)?;
            }
            // dockerd prefers the endpoint's `NetworkID` to the key: it is the tenant's too.
            network_id(engine, t, settings)
                .await
                .map_err(missing_at_create)?;
        }
    }
    Ok(())
}

/// A create naming a missing container or network (`--network`, `--pid`/`--ipc
/// container:`) is answered 400 in dockerd's words, as dockerd answers `--pid container:` (a
/// missing network it finds only at start). A 404 to a create makes the CLI take it for a
/// missing image and pull it.
fn missing_at_create(r: Refusal) -> Refusal {
    if r.status == Status::NotFound {
        Refusal::new_plain(Status::BadRequest, r.message)
    } else {
        r
    }
}

/// An endpoint's `NetworkID`, resolved among the tenant's networks (another tenant's looks
/// missing).
async fn network_id<E: Engine>(
    engine: &E,
    tenant: &str,
    settings: &mut Value,
) -> Result<(), Refusal> {
    let Some(id) = settings
        .field("NetworkID")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && !builtin_network(id))
        .map(str::to_string)
    else {
        return Ok(());
    };
    let engine = lookup::network(engine, tenant, &id).await?;
    settings.set_field("NetworkID", Value::String(engine));
    Ok(())
}

/// The tenant's limits, checked before a create.
async fn limits<E: Engine>(engine: &E, tenant: &Tenant, memory: i64) -> Result<(), Refusal> {
    if tenant.max_containers.is_none() && tenant.max_memory.is_none() {
        return Ok(());
    }
    let t = &tenant.name;
    let (count, used) = lookup::usage(engine, t).await?;
    if let Some(max) = tenant.max_containers {
        if count >= max {
            return Err(Refusal::new(
                Status::Forbidden,
                format!("tenant {t} has reached its limit of {max} containers (max_containers)"),
            ));
        }
    }
    if let Some(max) = tenant.max_memory {
        if memory <= 0 {
            return Err(Refusal::new(
                Status::Forbidden,
                format!(
                    "tenant {t} has a memory limit ({max} bytes, max_memory): give the \
                     container one with --memory"
                ),
            ));
        }
        if used.saturating_add(memory) > max {
            return Err(Refusal::new(
                Status::Forbidden,
                format!(
                    "tenant {t} would exceed its memory limit of {max} bytes (max_memory): \
                     {used} bytes are taken by its containers, this one asks for {memory}"
                ),
            ));
        }
    }
    Ok(())
}
