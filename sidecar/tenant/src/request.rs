//! A tenant's request on its way in: references resolved to the tenant's own objects, names
//! mangled, lists and prunes limited to the tenant, create bodies labelled.

use dockgate_api::endpoints::{Endpoint, Resource};
use dockgate_api::uri::CanonicalUri;

use crate::engine::Engine;
use dockgate_policy::gojson::Value;

use crate::images::{mangle_image, with_mangled_reference_filter};
use crate::lookup::{self, ImageUse};
use crate::names::{
    builtin_network, generated, mangle, with_mangled_filter, with_mangled_label_filters,
    with_tenant_filter, LABEL, MEMORY_LABEL, NAME_LABELS,
};
use crate::Tenant;
use dockgate_api::refusal::{Refusal, Status};

/// What becomes of a tenant's request after [`admit`].
#[derive(Debug)]
pub struct Admitted {
    /// The URI to forward: the tenant's references replaced by the engine's.
    pub uri: CanonicalUri,
    /// The answer names the tenant's objects, so the sidecar must demangle it.
    pub mediate: bool,
}

/// Endpoints that would show or change other tenants' objects and have no tenant form yet.
fn unavailable(template: &str) -> Option<&'static str> {
    Some(match template {
        "/build/prune" => {
            "a tenant's builds keep no build cache apart from its images: remove those with \
             docker image prune or docker rmi"
        }
        "/session" | "/grpc" => {
            "tenants build with the classic builder (BuildKit's cache and Dockerfile are out of \
             the gateway's reach): build with DOCKER_BUILDKIT=0"
        }
        "/images/load" => {
            "docker load is not available to tenants: loaded images keep the names in the \
             archive, outside the tenant's namespace"
        }
        _ => return None,
    })
}

/// Rewrites the URI of a request by `tenant` (decided on already).
pub async fn admit<E: Engine>(
    engine: &E,
    tenant: &Tenant,
    endpoint: &Endpoint,
    param: Option<&str>,
    mut uri: CanonicalUri,
) -> Result<Admitted, Refusal> {
    let t = tenant.name.as_str();
    if let Some(why) = unavailable(endpoint.template) {
        return Err(Refusal::new(Status::Forbidden, why));
    }
    // Bodies name objects too (creates, connects): the sidecar reads every one.
    let mut mediate = endpoint.route == dockgate_api::endpoints::Route::Mediated;
    match endpoint.template {
        "/containers/json" | "/networks" => {
            if endpoint.template == "/containers/json" {
                order_filters(engine, tenant, &mut uri, Resource::Container).await?;
                ancestor_filter(engine, tenant, &mut uri).await?;
                if let Some(f) = uri.query_value("filters").map(str::to_string) {
                    // Names are looked for under the tenant's too (the list holds only the
                    // tenant's containers either way).
                    let f = with_mangled_filter(&f, "volume", t);
                    set_query(&mut uri, "filters", with_mangled_filter(&f, "network", t));
                }
            }
            filter(&mut uri, t)?;
            mediate = true;
        }
        // Volumes dockerd makes for `-v name:/path` have no label: the answer is filtered
        // by name instead.
        "/volumes" => {
            if let Some(f) = uri.query_value("filters") {
                let f = with_mangled_label_filters(f, t);
                set_query(&mut uri, "filters", f);
            }
            mediate = true;
        }
        "/containers/prune" | "/volumes/prune" | "/networks/prune" => filter(&mut uri, t)?,
        "/events" => {
            mediate = true;
            filter(&mut uri, t)?;
            if let Some(f) = uri.query_value("filters") {
                let f = with_mangled_filter(f, "container", t);
                set_query(&mut uri, "filters", f);
            }
        }
        "/containers/create" => {
            let name = match uri.query_value("name") {
                Some(n) if !n.is_empty() => mangle(t, n),
                _ => generated(t),
            };
            set_query(&mut uri, "name", name);
        }
        "/commit" => {
            if let Some(c) = uri.query_value("container").map(str::to_string) {
                let id = lookup::container(engine, t, &c).await?;
                set_query(&mut uri, "container", id);
            }
            mangle_repo(&mut uri, t, "repo")?;
        }
        "/images/json" => {
            order_filters(engine, tenant, &mut uri, Resource::Image).await?;
            if let Some(f) = uri.query_value("filters").map(str::to_string) {
                set_query(&mut uri, "filters", with_mangled_reference_filter(&f, t));
            }
            mediate = true;
        }
        "/system/df" | "/info" => mediate = true,
        "/images/create" => {
            if uri.query_value("fromImage").is_some() {
                if uri.query_value("tag").is_some_and(|tag| tag.contains(':')) {
                    return Err(Refusal::new(
                        Status::Forbidden,
                        "pulls by digest are not available to tenants yet: pull a tag",
                    ));
                }
                // Pulled under the registry's name, then tagged into the namespace.
                mediate = true;
            } else {
                mangle_repo(&mut uri, t, "repo")?;
            }
        }
        "/images/prune" => {
            // Dangling images only: an unused tagged image may carry a shared tag an admin
            // gave it.
            let dangling_only = uri.query_value("filters").map_or(true, |f| {
                let map: serde_json::Value = serde_json::from_str(f).unwrap_or_default();
                let values = &map["dangling"];
                !(values
                    .as_array()
                    .is_some_and(|v| v.iter().any(|x| x == "false" || x == "0"))
                    || values.get("false").is_some()
                    || values.get("0").is_some())
            });
            if !dangling_only {
                return Err(Refusal::new(
                    Status::Forbidden,
                    "docker image prune -a is not available to tenants: remove unused images by \
                     name with docker rmi (docker image prune removes the dangling ones)",
                ));
            }
            filter(&mut uri, t)?;
            mediate = true;
        }
        "/build" => {
            if uri.query_value("version") == Some("2") {
                return Err(Refusal::new(
                    Status::Forbidden,
                    "tenants build with the classic builder (BuildKit's cache and Dockerfile are \
                     out of the gateway's reach): build with DOCKER_BUILDKIT=0",
                ));
            }
            if uri.query_value("remote").is_some_and(|r| !r.is_empty()) {
                return Err(Refusal::new(
                    Status::Forbidden,
                    "a tenant's build sends its context: builds from a URL or git repository are \
                     not available to tenants",
                ));
            }
            // The context streams through the sidecar, which rewrites its Dockerfile.
            mediate = true;
            cache_from(engine, tenant, &mut uri).await?;
            mangle_repo(&mut uri, t, "t")?;
            // Images built by a tenant are its own, tagged or not.
            let labels = match uri.query_value("labels") {
                None | Some("") => serde_json::Map::new(),
                Some(text) => match serde_json::from_str(text) {
                    Ok(serde_json::Value::Object(map)) => map,
                    _ => {
                        return Err(Refusal::new(
                            Status::BadRequest,
                            format!("invalid labels: {text}"),
                        ))
                    }
                },
            };
            let mut labels = labels;
            labels.insert(LABEL.into(), serde_json::Value::String(t.into()));
            set_query(
                &mut uri,
                "labels",
                serde_json::Value::Object(labels).to_string(),
            );
        }
        "/images/{name*}/tag" => mangle_repo(&mut uri, t, "repo")?,
        // `docker save a b`: every name is the tenant's, or missing.
        "/images/get" => {
            for (k, v) in uri.query.iter_mut() {
                if k == "names" {
                    *v = lookup::image(engine, tenant, v, ImageUse::Read).await?;
                }
            }
        }
        _ => {}
    }
    if let Some(param) = param {
        let engine_ref = match endpoint.resource {
            Resource::Container => Some(lookup::container(engine, t, param).await?),
            Resource::Exec => {
                lookup::exec(engine, t, param).await?;
                None
            }
            Resource::Volume => Some(lookup::volume(engine, t, param).await?),
            Resource::Network => Some(lookup::network(engine, t, param).await?),
            // A push names the repository in the path and the tag in the query: the tag
            // must be the tenant's own; the path becomes the engine's repository.
            Resource::Image if endpoint.template == "/images/{name*}/push" => {
                let tag = uri.query_value("tag").filter(|t| !t.is_empty());
                if let Some(tag) = tag {
                    let reference = format!("{param}:{tag}");
                    lookup::image(engine, tenant, &reference, ImageUse::Own).await?;
                }
                let repo = mangle_image(t, param).ok_or_else(|| {
                    Refusal::new(
                        Status::BadRequest,
                        format!("invalid reference format: {param}"),
                    )
                })?;
                Some(repo)
            }
            Resource::Image if endpoint.template.starts_with("/images/") => {
                let usage = if endpoint.method == dockgate_api::endpoints::Method::Delete
                    || endpoint.template.ends_with("/push")
                {
                    ImageUse::Own
                } else {
                    ImageUse::Read
                };
                Some(lookup::image(engine, tenant, param, usage).await?)
            }
            _ => None,
        };
        if let Some(engine_ref) = engine_ref {
            replace_param(&mut uri, endpoint.template, &engine_ref);
        }
        let shows_names = endpoint.template == "/containers/{id}/stats"
            || matches!(
                endpoint.template,
                "/containers/{id}/json"
                    | "/volumes/{name}"
                    | "/networks/{id}"
                    | "/images/{name*}/json"
                    | "/images/{name*}/history"
            ) && endpoint.method == dockgate_api::endpoints::Method::Get;
        let body_names = matches!(
            endpoint.template,
            "/networks/{id}/connect" | "/networks/{id}/disconnect"
        );
        // Built-in networks too: `network inspect none` lists everyone's containers on it.
        mediate |= shows_names || (body_names && !builtin_network(param));
    }
    if endpoint.template == "/containers/{id}/rename" {
        if let Some(n) = uri.query_value("name").map(str::to_string) {
            set_query(&mut uri, "name", mangle(t, n.trim_start_matches('/')));
        }
    }
    Ok(Admitted { uri, mediate })
}

/// `since` and `before` name a container or image the list is ordered around (in `filters`,
/// and as plain query keys for containers): resolved among the tenant's own and shared
/// objects, so another tenant's answers as missing, in dockerd's words, and not as a list.
async fn order_filters<E: Engine>(
    engine: &E,
    tenant: &Tenant,
    uri: &mut CanonicalUri,
    kind: Resource,
) -> Result<(), Refusal> {
    let resolve = |reference: String| async move {
        match kind {
            Resource::Image => lookup::image(engine, tenant, &reference, ImageUse::Read).await,
            _ => lookup::container(engine, &tenant.name, &reference).await,
        }
    };
    for (key, value) in uri.query.iter_mut() {
        if kind == Resource::Container && (key == "since" || key == "before") && !value.is_empty() {
            *value = resolve(value.clone()).await?;
        }
    }
    let Some(text) = uri.query_value("filters").map(str::to_string) else {
        return Ok(());
    };
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(&text) else {
        return Ok(());
    };
    let mut changed = false;
    for key in ["since", "before"] {
        let Some(values) = map.get_mut(key) else {
            continue;
        };
        // dockerd reads filters as lists, or (older clients) as maps of value to true.
        match values {
            serde_json::Value::Array(items) => {
                for item in items.iter_mut() {
                    if let Some(reference) = item.as_str() {
                        *item = serde_json::Value::String(resolve(reference.to_string()).await?);
                        changed = true;
                    }
                }
            }
            serde_json::Value::Object(set) => {
                let mut resolved = serde_json::Map::new();
                for (reference, v) in std::mem::take(set) {
                    resolved.insert(resolve(reference).await?, v);
                }
                *set = resolved;
                changed = true;
            }
            _ => {}
        }
    }
    if changed {
        set_query(uri, "filters", serde_json::Value::Object(map).to_string());
    }
    Ok(())
}

/// `--cache-from`: each image resolved among the tenant's and the shared ones; the others are
/// left out, as dockerd leaves out those it cannot find.
async fn cache_from<E: Engine>(
    engine: &E,
    tenant: &Tenant,
    uri: &mut CanonicalUri,
) -> Result<(), Refusal> {
    let Some(text) = uri.query_value("cachefrom").filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let refs: Vec<String> = serde_json::from_str(text).map_err(|_| {
        Refusal::new_plain(Status::BadRequest, format!("invalid cachefrom: {text}"))
    })?;
    let mut resolved = Vec::new();
    for r in refs {
        match lookup::image(engine, tenant, &r, ImageUse::Read).await {
            Ok(e) => resolved.push(serde_json::Value::String(e)),
            Err(e) if e.status == Status::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    set_query(
        uri,
        "cachefrom",
        serde_json::Value::Array(resolved).to_string(),
    );
    Ok(())
}

/// `ancestor=IMAGE` in a container list: the image as the tenant names it (its own, or a
/// shared one). One dockerd cannot find matches no container, as in dockerd; another
/// tenant's is made one of those.
async fn ancestor_filter<E: Engine>(
    engine: &E,
    tenant: &Tenant,
    uri: &mut CanonicalUri,
) -> Result<(), Refusal> {
    let Some(text) = uri.query_value("filters").map(str::to_string) else {
        return Ok(());
    };
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(&text) else {
        return Ok(());
    };
    let Some(values) = map.get_mut("ancestor") else {
        return Ok(());
    };
    let resolve = |reference: String| async move {
        match lookup::image(engine, tenant, &reference, ImageUse::Read).await {
            Ok(engine) => Ok(engine),
            Err(r) if r.status == Status::NotFound => {
                Ok(mangle_image(&tenant.name, &reference).unwrap_or(reference))
            }
            Err(r) => Err(r),
        }
    };
    match values {
        serde_json::Value::Array(items) => {
            for item in items.iter_mut() {
                if let Some(reference) = item.as_str() {
                    *item = serde_json::Value::String(resolve(reference.to_string()).await?);
                }
            }
        }
        serde_json::Value::Object(set) => {
            let mut resolved = serde_json::Map::new();
            for (reference, v) in std::mem::take(set) {
                resolved.insert(resolve(reference).await?, v);
            }
            *set = resolved;
        }
        _ => {}
    }
    set_query(uri, "filters", serde_json::Value::Object(map).to_string());
    Ok(())
}

/// Limits a list to the tenant's objects (label filter), with compose's project filter
/// in the tenant's namespace.
fn filter(uri: &mut CanonicalUri, tenant: &str) -> Result<(), Refusal> {
    let filters = with_tenant_filter(uri.query_value("filters"), tenant)
        .map_err(|e| Refusal::new(Status::BadRequest, e))?;
    set_query(uri, "filters", with_mangled_label_filters(&filters, tenant));
    Ok(())
}

/// Names carried in labels (compose's project) go into the tenant's namespace too.
fn mangle_name_labels(body: &mut Value, tenant: &str) {
    let labels = body.object_field("Labels");
    for key in NAME_LABELS {
        if let Some(Value::String(v)) = labels.field_mut(key) {
            *v = mangle(tenant, v);
        }
    }
}

pub fn set_query(uri: &mut CanonicalUri, key: &str, value: String) {
    match uri.query.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => uri.query.push((key.to_string(), value)),
    }
}

/// Puts the engine's reference where the template has `{id}`, `{name}` or `{name*}`
/// (which spans segments).
fn replace_param(uri: &mut CanonicalUri, template: &str, value: &str) {
    let parts: Vec<&str> = template[1..].split('/').collect();
    if let Some(star) = parts.iter().position(|p| *p == "{name*}") {
        let tail = parts.len() - star - 1;
        let end = uri.segments.len().saturating_sub(tail);
        if end > star {
            uri.segments
                .splice(star..end, value.split('/').map(str::to_string));
        }
        return;
    }
    let at = parts.iter().position(|p| *p == "{id}" || *p == "{name}");
    if let Some(segment) = at.and_then(|i| uri.segments.get_mut(i)) {
        *segment = value.to_string();
    }
}

/// Mangles the image repository in every value of query parameter `key` (`t` of a build may
/// carry a tag, and repeat: `docker build -t a -t b`).
fn mangle_repo(uri: &mut CanonicalUri, tenant: &str, key: &str) -> Result<(), Refusal> {
    for (k, repo) in uri.query.iter_mut() {
        if k != key || repo.is_empty() {
            continue;
        }
        *repo = mangle_image(tenant, repo).ok_or_else(|| {
            Refusal::new(
                Status::BadRequest,
                format!("invalid reference format: {repo}"),
            )
        })?;
    }
    Ok(())
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

#[cfg(test)]
mod tests;
