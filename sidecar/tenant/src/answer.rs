//! A tenant's answer on its way out: the engine's names turned back into the tenant's
//! (no I/O).

use serde_json::Value as Json;

use crate::images::{demangle_image, demangle_image_text, owns, visible_image};
use crate::lookup::Counts;
use crate::names::{demangle, demangle_container, demangle_text, NAME_LABELS};
use crate::Tenant;

/// The answer to a tenant's mediated request, rewritten; `None` when it is not JSON (then
/// it goes out as dockerd sent it).
pub fn rewrite(tenant_of: &Tenant, template: &str, status: u16, body: &[u8]) -> Option<Vec<u8>> {
    rewrite_with(tenant_of, &|_| false, template, status, body)
}

/// As [`rewrite`]; `pulling` says which shared names are a tenant's pull under way (not
/// shown: see [`crate::engine::Engine::pulling`]).
pub fn rewrite_with(
    tenant_of: &Tenant,
    pulling: &dyn Fn(&str) -> bool,
    template: &str,
    status: u16,
    body: &[u8],
) -> Option<Vec<u8>> {
    let (tenant, shared) = (tenant_of.name.as_str(), tenant_of.shared_images.as_slice());
    // What the tenant sees of an engine reference: its own, demangled, or a shared one.
    let see = |engine: &str| match demangle_image(tenant, engine) {
        Some(own) => Some(own),
        None if pulling(engine) => None,
        None => visible_image(tenant, shared, engine),
    };
    let mut json: Json = serde_json::from_slice(body).ok()?;
    if status >= 400 {
        if let Some(Json::String(m)) = json.get_mut("message") {
            *m = demangle_text(tenant, m);
        }
    } else {
        match template {
            "/containers/json" => {
                for c in json.as_array_mut()?.iter_mut() {
                    if let Some(Json::Array(names)) = c.get_mut("Names") {
                        names.retain_mut(|n| demangle_json(n, |s| demangle_container(tenant, s)));
                    }
                    if let Some(image) = c.get_mut("Image") {
                        demangle_json(image, |s| demangle_image(tenant, s));
                    }
                    name_labels(tenant, c.get_mut("Labels"));
                }
            }
            "/containers/{id}/json" => {
                json.get_mut("Name")
                    .map(|n| demangle_json(n, |s| demangle_container(tenant, s)));
                name_labels(tenant, json.pointer_mut("/Config/Labels"));
                if let Some(image) = json.pointer_mut("/Config/Image") {
                    demangle_json(image, |s| demangle_image(tenant, s));
                }
            }
            "/images/json" => {
                json.as_array_mut()?
                    .retain_mut(|image| visible(tenant, &see, image));
            }
            "/system/df" => {
                if let Some(Json::Array(images)) = json.get_mut("Images") {
                    images.retain_mut(|image| visible(tenant, &see, image));
                }
                let layers: i64 = json["Images"]
                    .as_array()
                    .map(|i| i.iter().filter_map(|i| i["Size"].as_i64()).sum())
                    .unwrap_or(0);
                json["LayersSize"] = Json::from(layers);
                if let Some(Json::Array(containers)) = json.get_mut("Containers") {
                    containers.retain(|c| {
                        c.pointer("/Labels/dockgate.tenant").and_then(Json::as_str) == Some(tenant)
                    });
                    for c in containers.iter_mut() {
                        if let Some(Json::Array(names)) = c.get_mut("Names") {
                            names.retain_mut(|n| {
                                demangle_json(n, |s| demangle_container(tenant, s))
                            });
                        }
                        if let Some(image) = c.get_mut("Image") {
                            demangle_json(image, |s| demangle_image(tenant, s));
                        }
                    }
                }
                if let Some(Json::Array(volumes)) = json.get_mut("Volumes") {
                    volumes.retain_mut(|v| {
                        v.get_mut("Name")
                            .is_some_and(|n| demangle_json(n, |s| plain(tenant, s)))
                    });
                }
                // The build cache is the engine's, not the tenant's.
                json["BuildCache"] = Json::Array(Vec::new());
            }
            "/images/{name*}/json" => {
                visible(tenant, &see, &mut json);
            }
            "/images/{name*}/history" => {
                for layer in json.as_array_mut()?.iter_mut() {
                    if let Some(Json::Array(tags)) = layer.get_mut("Tags") {
                        tags.retain_mut(|t| demangle_json(t, see));
                    }
                }
            }
            "/events" => {
                let kind = json
                    .get("Type")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string();
                if let Some(Json::Object(attrs)) = json.pointer_mut("/Actor/Attributes") {
                    for (key, value) in attrs.iter_mut() {
                        match (kind.as_str(), key.as_str()) {
                            ("container", "image") | ("image", "name") => {
                                demangle_json(value, |s| demangle_image(tenant, s));
                            }
                            ("container" | "volume" | "network", "name") => {
                                demangle_json(value, |s| plain(tenant, s));
                            }
                            _ => {}
                        }
                    }
                }
                if let Some(from) = json.get_mut("from") {
                    demangle_json(from, |s| demangle_image(tenant, s));
                }
            }
            "/images/prune" => {
                if let Some(Json::Array(items)) = json.get_mut("ImagesDeleted") {
                    for item in items.iter_mut() {
                        if let Some(untagged) = item.get_mut("Untagged") {
                            demangle_json(untagged, |s| demangle_image(tenant, s));
                        }
                    }
                }
            }
            "/containers/{id}/stats" => {
                json.get_mut("name")
                    .map(|n| demangle_json(n, |s| demangle_container(tenant, s)));
            }
            "/volumes" => {
                if let Some(Json::Array(volumes)) = json.get_mut("Volumes") {
                    volumes.retain_mut(|v| {
                        name_labels(tenant, v.get_mut("Labels"));
                        v.get_mut("Name")
                            .is_some_and(|n| demangle_json(n, |s| plain(tenant, s)))
                    });
                }
            }
            "/volumes/{name}" | "/volumes/create" => {
                json.get_mut("Name")
                    .map(|n| demangle_json(n, |s| plain(tenant, s)));
                name_labels(tenant, json.get_mut("Labels"));
            }
            "/networks" => {
                for n in json.as_array_mut()?.iter_mut() {
                    network(tenant, n);
                }
            }
            "/networks/{id}" => network(tenant, &mut json),
            _ => return None,
        }
    }
    serde_json::to_vec(&json).ok()
}

/// One line of a build's progress, with the tenant's image names; `None` when unchanged.
pub fn build_line(tenant: &str, line: &[u8]) -> Option<Vec<u8>> {
    let mut json: Json = serde_json::from_slice(line).ok()?;
    let mut changed = false;
    for pointer in ["/stream", "/status", "/error", "/errorDetail/message"] {
        if let Some(Json::String(text)) = json.pointer_mut(pointer) {
            let plain = demangle_image_text(tenant, text);
            if plain != *text {
                *text = plain;
                changed = true;
            }
        }
    }
    if changed {
        serde_json::to_vec(&json).ok()
    } else {
        None
    }
}

/// Keeps an image's tags and digests the tenant may see (its own, demangled, and shared
/// ones); false when the tenant may see nothing of it (not its build, no visible tag).
fn visible(tenant: &str, see: &dyn Fn(&str) -> Option<String>, image: &mut Json) -> bool {
    let tags: Vec<String> = image
        .get("RepoTags")
        .and_then(Json::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Json::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let label = image
        .pointer("/Labels/dockgate.tenant")
        .or_else(|| image.pointer("/Config/Labels/dockgate.tenant"))
        .and_then(Json::as_str);
    let built = owns(tenant, tags.iter().map(String::as_str), label);
    // Tags make an image visible; digests only show on one that is (a pull leaves the
    // registry's digest under its plain name on what the puller took into its namespace).
    let mut tagged = false;
    if let Some(Json::Array(refs)) = image.get_mut("RepoTags") {
        refs.retain_mut(|r| demangle_json(r, see));
        tagged = !refs.is_empty();
    }
    if let Some(Json::Array(refs)) = image.get_mut("RepoDigests") {
        refs.retain_mut(|r| demangle_json(r, see));
    }
    tagged || built
}

/// `docker info` with the tenant's counts instead of the engine's.
pub fn info(body: &[u8], counts: &Counts) -> Option<Vec<u8>> {
    let mut json: Json = serde_json::from_slice(body).ok()?;
    for (key, value) in [
        ("Containers", counts.containers),
        ("ContainersRunning", counts.running),
        ("ContainersPaused", counts.paused),
        ("ContainersStopped", counts.stopped),
        ("Images", counts.images),
    ] {
        if let Some(field) = json.get_mut(key) {
            *field = Json::from(value);
        }
    }
    serde_json::to_vec(&json).ok()
}

fn plain(tenant: &str, name: &str) -> Option<String> {
    demangle(tenant, name).map(str::to_string)
}

/// Replaces a JSON string by its demangled form; false when it is not the tenant's.
fn demangle_json(value: &mut Json, f: impl Fn(&str) -> Option<String>) -> bool {
    match value.as_str().and_then(f) {
        Some(name) => {
            *value = Json::String(name);
            true
        }
        None => false,
    }
}

/// Demangles the values of the labels that carry names (compose's project).
fn name_labels(tenant: &str, labels: Option<&mut Json>) {
    let Some(Json::Object(labels)) = labels else {
        return;
    };
    for key in NAME_LABELS {
        if let Some(value) = labels.get_mut(key) {
            demangle_json(value, |s| plain(tenant, s));
        }
    }
}

fn network(tenant: &str, n: &mut Json) {
    name_labels(tenant, n.get_mut("Labels"));
    if let Some(name) = n.get_mut("Name") {
        demangle_json(name, |s| plain(tenant, s));
    }
    // A network lists the containers on it: the built-in ones (`none`, `host`) everyone's.
    if let Some(Json::Object(containers)) = n.get_mut("Containers") {
        containers.retain(|_, c| {
            c.get_mut("Name")
                .is_some_and(|name| demangle_json(name, |s| plain(tenant, s)))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alpha() -> Tenant {
        Tenant {
            name: "alpha".into(),
            max_containers: None,
            max_memory: None,
            shared_images: vec!["*".into()],
        }
    }

    fn rw(template: &str, status: u16, body: &str) -> String {
        String::from_utf8(rewrite(&alpha(), template, status, body.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn lists_and_inspects_show_the_tenants_names() {
        assert_eq!(
            rw(
                "/containers/json",
                200,
                r#"[{"Id":"1","Names":["/alpha.web","/beta.x/alias"]}]"#
            ),
            r#"[{"Id":"1","Names":["/web"]}]"#
        );
        assert_eq!(
            rw("/containers/{id}/json", 200, r#"{"Name":"/alpha.web"}"#),
            r#"{"Name":"/web"}"#
        );
        assert_eq!(
            rw(
                "/volumes",
                200,
                r#"{"Volumes":[{"Name":"alpha.data"},{"Name":"beta.data"},{"Name":"raw"}],"Warnings":null}"#
            ),
            r#"{"Volumes":[{"Name":"data"}],"Warnings":null}"#
        );
        assert_eq!(
            rw(
                "/networks/{id}",
                200,
                r#"{"Name":"alpha.net","Containers":{"1":{"Name":"alpha.web"}}}"#
            ),
            r#"{"Containers":{"1":{"Name":"web"}},"Name":"net"}"#
        );
        assert_eq!(
            rw(
                "/networks/{id}",
                200,
                r#"{"Name":"none","Containers":{"1":{"Name":"alpha.web"},"2":{"Name":"beta.db"},"3":{"Name":"raw"}}}"#
            ),
            r#"{"Containers":{"1":{"Name":"web"}},"Name":"none"}"#
        );
    }

    #[test]
    fn images_show_the_tenants_tags_and_the_shared_ones() {
        assert_eq!(
            rw(
                "/images/json",
                200,
                r#"[{"Id":"1","RepoTags":["dockgate-alpha/library/app:1","busybox:latest"]},
                    {"Id":"2","RepoTags":["dockgate-beta/library/app:1"]},
                    {"Id":"3","RepoTags":[],"Labels":{"dockgate.tenant":"alpha"}},
                    {"Id":"4","RepoTags":[],"Labels":{"dockgate.tenant":"beta"}}]"#
            ),
            r#"[{"Id":"1","RepoTags":["app:1","busybox:latest"]},{"Id":"3","Labels":{"dockgate.tenant":"alpha"},"RepoTags":[]}]"#
        );
        assert_eq!(
            rw(
                "/containers/json",
                200,
                r#"[{"Image":"dockgate-alpha/library/app:1","Names":["/alpha.web"]}]"#
            ),
            r#"[{"Image":"app:1","Names":["/web"]}]"#
        );
    }

    #[test]
    fn a_digest_alone_does_not_make_an_image_shared() {
        assert_eq!(
            rw(
                "/images/json",
                200,
                r#"[{"Id":"1","RepoTags":[],"RepoDigests":["127.0.0.1:5000/app@sha256:00"]},
                    {"Id":"2","RepoTags":["dockgate-alpha/library/app:1"],"RepoDigests":["127.0.0.1:5000/app@sha256:11"]}]"#
            ),
            r#"[{"Id":"2","RepoDigests":["127.0.0.1:5000/app@sha256:11"],"RepoTags":["app:1"]}]"#
        );
    }

    #[test]
    fn a_name_being_pulled_by_a_tenant_is_not_shown_as_shared() {
        let pulling = |r: &str| r == "127.0.0.1:5000/private:1";
        let out = rewrite_with(
            &alpha(),
            &pulling,
            "/images/json",
            200,
            br#"[{"Id":"1","RepoTags":["127.0.0.1:5000/private:1"]},
                 {"Id":"2","RepoTags":["127.0.0.1:5000/private:1","dockgate-alpha/library/p:1"]}]"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"[{"Id":"2","RepoTags":["p:1"]}]"#
        );
    }

    #[test]
    fn disk_usage_counts_the_tenants_objects_only() {
        assert_eq!(
            rw(
                "/system/df",
                200,
                r#"{"LayersSize":999,"Images":[{"RepoTags":["busybox:latest"],"Size":2},{"RepoTags":["dockgate-beta/library/x:1"],"Size":5}],
                    "Containers":[{"Names":["/alpha.web"],"Labels":{"dockgate.tenant":"alpha"}},{"Names":["/beta.web"],"Labels":{"dockgate.tenant":"beta"}}],
                    "Volumes":[{"Name":"alpha.data"},{"Name":"beta.data"}],"BuildCache":[{"ID":"x"}]}"#
            ),
            r#"{"BuildCache":[],"Containers":[{"Labels":{"dockgate.tenant":"alpha"},"Names":["/web"]}],"Images":[{"RepoTags":["busybox:latest"],"Size":2}],"LayersSize":2,"Volumes":[{"Name":"data"}]}"#
        );
    }

    #[test]
    fn info_counts_the_tenants_objects() {
        let counts = Counts {
            containers: 3,
            running: 1,
            paused: 0,
            stopped: 2,
            images: 4,
        };
        let out = info(
            br#"{"Containers":1000,"ContainersRunning":500,"ContainersPaused":0,"ContainersStopped":500,"Images":70,"Name":"host"}"#,
            &counts,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"Containers":3,"ContainersPaused":0,"ContainersRunning":1,"ContainersStopped":2,"Images":4,"Name":"host"}"#
        );
    }

    #[test]
    fn events_name_the_tenants_objects() {
        assert_eq!(
            rw(
                "/events",
                200,
                r#"{"Type":"container","Action":"start","Actor":{"ID":"1","Attributes":{"name":"alpha.web","image":"dockgate-alpha/library/app:1","dockgate.tenant":"alpha"}},"from":"dockgate-alpha/library/app:1"}"#
            ),
            r#"{"Action":"start","Actor":{"Attributes":{"dockgate.tenant":"alpha","image":"app:1","name":"web"},"ID":"1"},"Type":"container","from":"app:1"}"#
        );
    }

    #[test]
    fn errors_lose_the_prefix_and_other_bodies_pass() {
        assert_eq!(
            rw(
                "/containers/create",
                409,
                r#"{"message":"Conflict. The container name \"/alpha.web\" is already in use"}"#
            ),
            r#"{"message":"Conflict. The container name \"/web\" is already in use"}"#
        );
        assert_eq!(rewrite(&alpha(), "/containers/create", 201, b"{}"), None);
        assert_eq!(
            rewrite(&alpha(), "/containers/json", 200, b"not json"),
            None
        );
    }
}
