//! A tenant's request on its way in: references in the path and the query resolved to the
//! tenant's own objects, names mangled, lists and prunes limited to the tenant, builds
//! labelled. Bodies are [`crate::body`]'s.

use dockgate_api::endpoints::{Endpoint, Resource};
use dockgate_api::refusal::{Refusal, Status};
use dockgate_api::uri::CanonicalUri;

use crate::engine::Engine;
use crate::images::{mangle_image, with_mangled_reference_filter};
use crate::lookup::{self, ImageUse};
use crate::names::{
    builtin_network, generated, mangle, with_mangled_filter, with_mangled_label_filters,
    with_tenant_filter, LABEL,
};
use crate::Tenant;

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
                // An import is the tenant's, tagged or not (as its builds are).
                uri.query
                    .push(("changes".into(), format!("LABEL {LABEL}={t}")));
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
            // `--pull` makes dockerd pull every base again, under its plain name: a shared
            // name moved to what the registry gives this tenant (as dockerd reads the flag).
            if uri.query_value("pull").is_some_and(go_bool) {
                return Err(Refusal::new(
                    Status::Forbidden,
                    "docker build --pull is not available to tenants (it would pull the base \
                     images under their shared names): docker pull them first, then build",
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

/// A boolean query value as dockerd reads it (`httputils.BoolValue`): anything but empty,
/// `0`, `no`, `false` and `none` is true.
fn go_bool(value: &str) -> bool {
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "no" | "false" | "none"
    )
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

#[cfg(test)]
mod tests;
