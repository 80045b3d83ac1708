//! Finding a tenant's objects on the engine from the names, IDs and ID prefixes the tenant
//! uses. Another tenant's object is answered exactly like a missing one, with dockerd's own
//! 404 message, so tenants cannot probe each other.
//!
//! Ownership lives on the engine (the mangled name and the `dockgate.tenant` label), so a
//! restarted sidecar, or a second gateway, sees the same world.

use serde_json::Value as Json;

use super::images::{mangle_image, owns, shared_for};
use super::names::{builtin_network, mangle, LABEL};
use crate::engine::Engine;
use crate::Tenant;
use dockgate_api::refusal::{Refusal, Status};

/// Percent-encodes a reference for one path segment.
pub fn segment(reference: &str) -> String {
    encode(reference, b"-._")
}

/// Percent-encodes an image reference for the path (dockerd's image routes take `/`).
pub fn image_path(reference: &str) -> String {
    encode(reference, b"-._/:@")
}

fn encode(reference: &str, keep: &[u8]) -> String {
    reference
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || keep.contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Could dockerd read `reference` as a full ID or an ID prefix?
fn id_like(reference: &str) -> bool {
    (1..=64).contains(&reference.len()) && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether an entry of dockerd's image list is one the tenant sees: its own, or shared with
/// it (an admin's tag the `shared_images` patterns cover, not being pulled by a tenant).
fn visible_in_list<E: Engine>(engine: &E, tenant: &str, shared: &[String], image: &Json) -> bool {
    let tags = || {
        image["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
    };
    owns(tenant, tags(), owner(image.get("Labels")))
        || tags().any(|t| shared_for(shared, t) && !engine.pulling(t))
}

fn owner(labels: Option<&Json>) -> Option<&str> {
    labels?.get(LABEL)?.as_str()
}

/// The full ID of the tenant's container `reference` (name, ID or ID prefix).
pub async fn container<E: Engine>(
    engine: &E,
    tenant: &str,
    reference: &str,
) -> Result<String, Refusal> {
    let missing =
        || Refusal::new_plain(Status::NotFound, format!("No such container: {reference}"));
    let by_name = format!("/containers/{}/json", segment(&mangle(tenant, reference)));
    let (status, json) = engine.get(&by_name).await?;
    if status == 200 && owner(json.pointer("/Config/Labels")) == Some(tenant) {
        if let Some(id) = json.get("Id").and_then(Json::as_str) {
            return Ok(id.to_string());
        }
    }
    if !id_like(reference) {
        return Err(missing());
    }
    // Prefixes are matched among the tenant's own containers only: asking dockerd would
    // tell apart "nobody's" from "ambiguous with another tenant's".
    let filters = super::names::with_tenant_filter(None, tenant).unwrap_or_default();
    let list = format!("/containers/json?all=1&filters={}", segment(&filters));
    let ids = listed(engine, &list, "/Id").await?;
    by_prefix(&ids, reference)?.ok_or_else(missing)
}

/// The values at `pointer` in each element of the JSON list dockerd answers at `path`.
async fn listed<E: Engine>(engine: &E, path: &str, pointer: &str) -> Result<Vec<String>, Refusal> {
    let (status, json) = engine.get(path).await?;
    match json.as_array() {
        Some(items) if status == 200 => Ok(items
            .iter()
            .filter_map(|i| i.pointer(pointer)?.as_str().map(str::to_string))
            .collect()),
        _ => Err(Refusal::new(
            Status::BadGateway,
            "the Docker engine's list could not be read",
        )),
    }
}

/// The one ID among `ids` that starts with `prefix` (`sha256:` ignored), as dockerd
/// resolves prefixes; two or more is dockerd's ambiguity error.
fn by_prefix(ids: &[String], prefix: &str) -> Result<Option<String>, Refusal> {
    let bare = |s: &str| s.strip_prefix("sha256:").unwrap_or(s).to_string();
    let want = bare(prefix);
    let mut found = ids.iter().filter(|id| bare(id).starts_with(&want));
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some(id), None) => Ok(Some(id.clone())),
        (Some(_), Some(_)) => Err(Refusal::new_plain(
            Status::BadRequest,
            format!("multiple IDs found with provided prefix: {prefix}"),
        )),
    }
}

/// Checks that exec instance `id` runs in one of the tenant's containers.
pub async fn exec<E: Engine>(engine: &E, tenant: &str, id: &str) -> Result<(), Refusal> {
    let missing = || Refusal::new_plain(Status::NotFound, format!("No such exec instance: {id}"));
    let (status, json) = engine.get(&format!("/exec/{}/json", segment(id))).await?;
    let Some(container_id) = json.get("ContainerID").and_then(Json::as_str) else {
        return Err(missing());
    };
    if status != 200 {
        return Err(missing());
    }
    container(engine, tenant, container_id)
        .await
        .map(|_| ())
        .map_err(|_| missing())
}

/// The engine's name of the tenant's volume `name`. Volumes have no IDs, and the ones
/// dockerd makes for `-v name:/path` have no labels: the mangled name alone says whose
/// they are (only its tenant can make a name with that prefix).
pub async fn volume<E: Engine>(engine: &E, tenant: &str, name: &str) -> Result<String, Refusal> {
    let mangled = mangle(tenant, name);
    let (status, _) = engine
        .get(&format!("/volumes/{}", segment(&mangled)))
        .await?;
    if status == 200 {
        return Ok(mangled);
    }
    Err(Refusal::new_plain(
        Status::NotFound,
        format!("get {name}: no such volume"),
    ))
}

/// The engine's name for the tenant's network `reference` (name, ID or ID prefix); the
/// engine's built-in networks are everyone's and keep their names.
pub async fn network<E: Engine>(
    engine: &E,
    tenant: &str,
    reference: &str,
) -> Result<String, Refusal> {
    if builtin_network(reference) {
        return Ok(reference.to_string());
    }
    let missing = || Refusal::new_plain(Status::NotFound, format!("network {reference} not found"));
    let mangled = mangle(tenant, reference);
    let (status, json) = engine
        .get(&format!("/networks/{}", segment(&mangled)))
        .await?;
    if status == 200 && owner(json.get("Labels")) == Some(tenant) {
        return Ok(mangled);
    }
    if !id_like(reference) {
        return Err(missing());
    }
    // Prefixes are matched among the tenant's networks and the engine's built-in ones
    // (everyone's), so another tenant's network cannot make one ambiguous.
    let filters = super::names::with_tenant_filter(None, tenant).unwrap_or_default();
    let mut networks: Vec<Json> = Vec::new();
    for filters in [filters.as_str(), r#"{"type":["builtin"]}"#] {
        let path = format!("/networks?filters={}", segment(filters));
        let (status, json) = engine.get(&path).await?;
        if let Some(list) = json.as_array().filter(|_| status == 200) {
            networks.extend(list.iter().cloned());
        }
    }
    let ids: Vec<String> = networks
        .iter()
        .filter_map(|n| n["Id"].as_str().map(str::to_string))
        .collect();
    let id = by_prefix(&ids, reference)?.ok_or_else(missing)?;
    let name = networks
        .iter()
        .find(|n| n["Id"].as_str() == Some(id.as_str()))
        .and_then(|n| n["Name"].as_str())
        .unwrap_or(&id);
    Ok(name.to_string())
}

/// What a tenant may do with an image it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageUse {
    /// Run, inspect, tag from, save: its own images and shared ones.
    Read,
    /// Remove, push: its own images only.
    Own,
}

/// The engine's reference (or full ID) of the image a tenant names: its own name first,
/// then an ID or ID prefix of an image it built or tagged, then a shared image.
pub async fn image<E: Engine>(
    engine: &E,
    tenant_of: &Tenant,
    reference: &str,
    usage: ImageUse,
) -> Result<String, Refusal> {
    let (tenant, shared) = (tenant_of.name.as_str(), &tenant_of.shared_images);
    let missing = || Refusal::new_plain(Status::NotFound, format!("No such image: {reference}"));
    if let Some(own) = mangle_image(tenant, reference) {
        let (status, _) = engine
            .get(&format!("/images/{}/json", image_path(&own)))
            .await?;
        if status == 200 {
            return Ok(own);
        }
    }
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    let id_like = id_like(hex);
    let path = if id_like {
        // Prefixes are matched among the images the tenant may see, as for containers.
        let (status, list) = engine.get("/images/json?all=1").await?;
        let Some(images) = list.as_array().filter(|_| status == 200) else {
            return Err(Refusal::new(
                Status::BadGateway,
                "the Docker engine's list could not be read",
            ));
        };
        let ids: Vec<String> = images
            .iter()
            .filter(|i| visible_in_list(engine, tenant, shared, i))
            .filter_map(|i| i["Id"].as_str().map(str::to_string))
            .collect();
        match by_prefix(&ids, reference)? {
            Some(id) => format!("/images/{}/json", image_path(&id)),
            // Perhaps a name that looks like hex (dockerd tries names first); what it
            // finds is checked below like any name.
            None => format!("/images/{}/json", image_path(reference)),
        }
    } else {
        format!("/images/{}/json", image_path(reference))
    };
    let (status, json) = engine.get(&path).await?;
    if status != 200 {
        return Err(missing());
    }
    let tags: Vec<&str> = json
        .get("RepoTags")
        .and_then(Json::as_array)
        .map(|t| t.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let owned = owns(
        tenant,
        tags.iter().copied(),
        owner(json.pointer("/Config/Labels")),
    );
    // Shared: the image has a plain (admin's) tag. A digest reference left behind by a
    // tenant's pull names an image only that tenant tagged: not shared.
    let shared_now = |t: &str| shared_for(shared, t) && !engine.pulling(t);
    let is_shared = tags.iter().any(|t| shared_now(t))
        && (id_like || shared_now(reference) || shared_now(&format!("{reference}:latest")));
    // By ID, a remove or push acts on every tag of the image: an admin's shared tag on the
    // tenant's image is not the tenant's to remove.
    let foreign_tag = tags
        .iter()
        .any(|t| *t != "<none>:<none>" && crate::images::demangle_image(tenant, t).is_none());
    if owned && id_like && usage == ImageUse::Own && foreign_tag {
        return Err(Refusal::new(
            Status::Forbidden,
            format!(
                "{reference} is also tagged as an image shared by all tenants: remove your \
                 tags by name (docker rmi NAME:TAG), only an admin can remove the image"
            ),
        ));
    }
    match (owned && id_like, is_shared, usage) {
        (true, _, _) => Ok(json
            .get("Id")
            .and_then(Json::as_str)
            .unwrap_or(hex)
            .to_string()),
        (false, true, ImageUse::Read) => Ok(if id_like {
            json.get("Id")
                .and_then(Json::as_str)
                .unwrap_or(hex)
                .to_string()
        } else {
            reference.to_string()
        }),
        (false, true, ImageUse::Own) => Err(Refusal::new(
            Status::Forbidden,
            format!("{reference} is shared by all tenants: only an admin can change it"),
        )),
        (false, false, _) => Err(missing()),
    }
}

/// The tenant's containers (running or not) and the memory they were created with.
pub async fn usage<E: Engine>(engine: &E, tenant: &str) -> Result<(usize, i64), Refusal> {
    let filters = super::names::with_tenant_filter(None, tenant).unwrap_or_default();
    let (status, json) = engine
        .get(&format!(
            "/containers/json?all=1&filters={}",
            segment(&filters)
        ))
        .await?;
    let Some(list) = json.as_array().filter(|_| status == 200) else {
        return Err(Refusal::new(
            Status::BadGateway,
            "could not list the tenant's containers",
        ));
    };
    let memory = list
        .iter()
        .filter_map(|c| {
            c.get("Labels")?
                .get(super::names::MEMORY_LABEL)?
                .as_str()?
                .parse::<i64>()
                .ok()
        })
        .sum();
    Ok((list.len(), memory))
}

/// What `docker info` counts, for one tenant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub containers: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
    /// The tenant's images and the shared ones.
    pub images: usize,
}

pub async fn counts<E: Engine>(engine: &E, tenant_of: &Tenant) -> Result<Counts, Refusal> {
    let (tenant, shared) = (tenant_of.name.as_str(), &tenant_of.shared_images);
    let filters = super::names::with_tenant_filter(None, tenant).unwrap_or_default();
    let list = format!("/containers/json?all=1&filters={}", segment(&filters));
    let states = listed(engine, &list, "/State").await?;
    let (status, images) = engine.get("/images/json").await?;
    let images = images
        .as_array()
        .filter(|_| status == 200)
        .map(|all| {
            all.iter()
                .filter(|i| visible_in_list(engine, tenant, shared, i))
                .count()
        })
        .unwrap_or(0);
    let running = states.iter().filter(|s| *s == "running").count();
    let paused = states.iter().filter(|s| *s == "paused").count();
    Ok(Counts {
        containers: states.len(),
        running,
        paused,
        stopped: states.len() - running - paused,
        images,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_resolve_as_dockerd_resolves_them() {
        let ids = [
            "sha256:abc1".to_string(),
            "abd2".to_string(),
            "ffff".to_string(),
        ];
        assert_eq!(
            by_prefix(&ids, "abc").unwrap().as_deref(),
            Some("sha256:abc1")
        );
        assert_eq!(
            by_prefix(&ids, "sha256:abd").unwrap().as_deref(),
            Some("abd2")
        );
        assert_eq!(by_prefix(&ids, "0").unwrap(), None);
        let e = by_prefix(&ids, "ab").unwrap_err();
        assert_eq!(
            (e.status.code(), e.message.as_str()),
            (400, "multiple IDs found with provided prefix: ab")
        );
    }
}
