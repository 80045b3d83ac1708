//! The mangled forms of tenant-owned names (no I/O).
//!
//! A tenant's object named `web` is `alpha.web` on the engine, and carries the label
//! `dockgate.tenant=alpha`. Tenant names are `[a-z0-9]` only, so the first `.` ends the
//! tenant and an admin reading the raw socket sees at once whose object it is.

use serde_json::Value as Json;

/// The label that records the owner of containers, volumes and networks.
pub const LABEL: &str = dockgate_policy::labels::TENANT;

/// The label that records the memory a tenant's container was created with (for
/// `max_memory`, summed from one container list).
pub const MEMORY_LABEL: &str = dockgate_policy::labels::MEMORY;

/// Labels whose values are names in the tenant's namespace (compose's project), mangled
/// on the way in and in filters, demangled on the way out.
pub const NAME_LABELS: [&str; 1] = ["com.docker.compose.project"];

/// Networks every engine has; they belong to no tenant and are never mangled.
const BUILTIN_NETWORKS: [&str; 4] = ["default", "bridge", "host", "none"];

/// Whether `name` can be a tenant's name.
pub fn valid_tenant(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The engine's name for a tenant's `name`.
pub fn mangle(tenant: &str, name: &str) -> String {
    format!("{tenant}.{name}")
}

/// The tenant's name for the engine's `name`, if the tenant owns that name.
pub fn demangle<'a>(tenant: &str, name: &'a str) -> Option<&'a str> {
    name.strip_prefix(tenant)?.strip_prefix('.')
}

/// As [`demangle`], for container names as dockerd prints them (`/alpha.web`).
pub fn demangle_container(tenant: &str, name: &str) -> Option<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    demangle(tenant, bare).map(|n| format!("/{n}"))
}

pub fn builtin_network(name: &str) -> bool {
    BUILTIN_NETWORKS.contains(&name)
}

/// A name for an object the tenant left unnamed (dockerd would pick one outside the
/// namespace).
pub fn generated(tenant: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{tenant}.{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// Adds `label=dockgate.tenant=TENANT` to a `filters` query value (Docker's JSON map of
/// filter name to values, as a list or as the older `{"value": true}` map). Filters of one
/// name must all match, so the answer is limited to the tenant's objects.
pub fn with_tenant_filter(filters: Option<&str>, tenant: &str) -> Result<String, String> {
    with_label_filter(filters, &format!("{LABEL}={tenant}"))
}

/// `filters` (the query's JSON, or none) with `label=KEY=VALUE` added: dockerd matches
/// objects that have every label filter.
pub fn with_label_filter(filters: Option<&str>, label: &str) -> Result<String, String> {
    let label = label.to_string();
    let mut map = match filters {
        None | Some("") => serde_json::Map::new(),
        Some(text) => match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(map)) => map,
            _ => return Err(format!("invalid filters: {text}")),
        },
    };
    // dockerd reads all filters in one format: the list, or (older clients) the map.
    let map_format = map.values().any(Json::is_object);
    match map.get_mut("label") {
        None if map_format => {
            let values = serde_json::Map::from_iter([(label, Json::Bool(true))]);
            map.insert("label".into(), Json::Object(values));
        }
        None => {
            map.insert("label".into(), Json::Array(vec![Json::String(label)]));
        }
        Some(Json::Array(values)) => values.push(Json::String(label)),
        Some(Json::Object(values)) => {
            values.insert(label, Json::Bool(true));
        }
        Some(_) => return Err("invalid filters: label must be a list".into()),
    }
    Ok(Json::Object(map).to_string())
}

/// Mangles the values of `label=KEY=VALUE` filters whose key is one of [`NAME_LABELS`].
pub fn with_mangled_label_filters(filters: &str, tenant: &str) -> String {
    let Ok(Json::Object(mut map)) = serde_json::from_str::<Json>(filters) else {
        return filters.to_string();
    };
    let mangled = |v: &str| match v.split_once('=') {
        Some((key, value)) if NAME_LABELS.contains(&key) => {
            format!("{key}={}", mangle(tenant, value))
        }
        _ => v.to_string(),
    };
    match map.get_mut("label") {
        Some(Json::Array(values)) => {
            for v in values.iter_mut() {
                if let Some(text) = v.as_str() {
                    *v = Json::String(mangled(text));
                }
            }
        }
        Some(Json::Object(values)) => {
            let old = std::mem::take(values);
            *values = old.into_iter().map(|(k, v)| (mangled(&k), v)).collect();
        }
        _ => {}
    }
    Json::Object(map).to_string()
}

/// Mangles the values of the `key` filter (e.g. `container` in events, which matches names
/// and IDs): each value is also looked for under the tenant's name. ID-like values stay
/// too; the tenant filter keeps other tenants' objects out either way.
pub fn with_mangled_filter(filters: &str, key: &str, tenant: &str) -> String {
    let Ok(Json::Object(mut map)) = serde_json::from_str::<Json>(filters) else {
        return filters.to_string();
    };
    let both = |v: &str| [v.to_string(), mangle(tenant, v)];
    match map.get_mut(key) {
        Some(Json::Array(values)) => {
            let old: Vec<String> = values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            *values = old.iter().flat_map(|v| both(v)).map(Json::String).collect();
        }
        Some(Json::Object(values)) => {
            let old: Vec<String> = values.keys().cloned().collect();
            *values = old
                .iter()
                .flat_map(|v| both(v))
                .map(|v| (v, Json::Bool(true)))
                .collect();
        }
        _ => {}
    }
    Json::Object(map).to_string()
}

/// Removes the tenant's prefix from names quoted in dockerd's messages
/// (`The container name "/alpha.web" is already in use` → `"/web"`).
pub fn demangle_text(tenant: &str, text: &str) -> String {
    let needle = format!("{tenant}.");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&needle) {
        let before = rest[..i].chars().next_back();
        let at_boundary =
            !before.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        out.push_str(&rest[..i]);
        if !at_boundary {
            out.push_str(&needle);
        }
        rest = &rest[i + needle.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_stay_in_their_namespace() {
        assert_eq!(mangle("alpha", "web"), "alpha.web");
        assert_eq!(demangle("alpha", "alpha.web"), Some("web"));
        // A tenant may use dots; the prefix is still only its own.
        assert_eq!(demangle("alpha", "alpha.beta.web"), Some("beta.web"));
        assert_eq!(demangle("alpha", "beta.web"), None);
        assert_eq!(demangle("alpha", "alphabet.web"), None);
        assert_eq!(demangle("alpha", "web"), None);
        assert_eq!(
            demangle_container("alpha", "/alpha.web").as_deref(),
            Some("/web")
        );
        assert_eq!(demangle_container("alpha", "/beta.web"), None);
    }

    #[test]
    fn tenant_names_cannot_contain_the_separator() {
        assert!(valid_tenant("alpha") && valid_tenant("ci42"));
        for bad in ["", "Alpha", "a.b", "a-b", "a_b", &"x".repeat(33)] {
            assert!(!valid_tenant(bad), "{bad}");
        }
    }

    #[test]
    fn generated_names_are_in_the_namespace() {
        let a = generated("alpha");
        assert_eq!(demangle("alpha", &a).map(str::len), Some(12));
        assert_ne!(a, generated("alpha"));
    }

    #[test]
    fn the_tenant_filter_joins_the_client_filters() {
        let label = "\"dockgate.tenant=alpha\"";
        assert_eq!(
            with_tenant_filter(None, "alpha").unwrap(),
            format!("{{\"label\":[{label}]}}")
        );
        let f =
            with_tenant_filter(Some(r#"{"status":["exited"],"label":["x=1"]}"#), "alpha").unwrap();
        assert_eq!(
            f,
            format!("{{\"label\":[\"x=1\",{label}],\"status\":[\"exited\"]}}")
        );
        let f = with_tenant_filter(Some(r#"{"label":{"x=1":true}}"#), "alpha").unwrap();
        assert_eq!(f, format!("{{\"label\":{{{label}:true,\"x=1\":true}}}}"));
        let f = with_tenant_filter(Some(r#"{"name":{"web":true}}"#), "alpha").unwrap();
        assert_eq!(
            f,
            format!("{{\"label\":{{{label}:true}},\"name\":{{\"web\":true}}}}")
        );
        assert!(with_tenant_filter(Some("[1]"), "alpha").is_err());
        assert!(with_tenant_filter(Some(r#"{"label":"x"}"#), "alpha").is_err());
    }

    #[test]
    fn container_filters_look_in_the_namespace() {
        assert_eq!(
            with_mangled_filter(
                r#"{"container":["web"],"type":["container"]}"#,
                "container",
                "alpha"
            ),
            r#"{"container":["web","alpha.web"],"type":["container"]}"#
        );
        assert_eq!(
            with_mangled_filter(r#"{"container":{"web":true}}"#, "container", "alpha"),
            r#"{"container":{"alpha.web":true,"web":true}}"#
        );
    }

    #[test]
    fn compose_project_filters_look_in_the_namespace() {
        assert_eq!(
            with_mangled_label_filters(
                r#"{"label":["com.docker.compose.project=demo","other=x"]}"#,
                "alpha"
            ),
            r#"{"label":["com.docker.compose.project=alpha.demo","other=x"]}"#
        );
        assert_eq!(
            with_mangled_label_filters(
                r#"{"label":{"com.docker.compose.project=demo":true}}"#,
                "alpha"
            ),
            r#"{"label":{"com.docker.compose.project=alpha.demo":true}}"#
        );
    }

    #[test]
    fn messages_lose_the_prefix() {
        assert_eq!(
            demangle_text(
                "alpha",
                "Conflict. The container name \"/alpha.web\" is already in use"
            ),
            "Conflict. The container name \"/web\" is already in use"
        );
        assert_eq!(
            demangle_text("alpha", "volume alpha.data in use; alphabet.x, xalpha.y"),
            "volume data in use; alphabet.x, xalpha.y"
        );
    }
}
