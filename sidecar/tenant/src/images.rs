//! The mangled form of a tenant's image references (no I/O).
//!
//! A tenant's `app:1` is `dockgate-alpha/library/app:1` on the engine, and its
//! `127.0.0.1:5000/team/app:1` is `127.0.0.1:5000/dockgate-alpha/team/app:1`: the registry
//! stays the one the tenant named, and the tenant is the first path component, so a push
//! of a tenant's image reaches the registry under the tenant's own prefix (where the
//! registry front-end can check it, or remove it). The component has no `.` or `:`, so
//! dockerd's short form (`dockgate-alpha/library/app:1`) reads back as the same reference.
//! Images under plain names (an admin's) are shared by every tenant, read-only.

/// The registry of references without one.
const DEFAULT_DOMAIN: &str = "docker.io";

/// A reference split as the distribution spec splits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    /// `:tag` or `@digest`, with its sign; empty when the reference has neither.
    pub suffix: String,
}

impl Reference {
    pub fn parse(text: &str) -> Option<Reference> {
        if text.is_empty() || text.len() > 512 || text.contains(char::is_whitespace) {
            return None;
        }
        let (name, digest) = match text.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (text, None),
        };
        let (name, tag) = match name.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t)),
            _ => (name, None),
        };
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let valid_component = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        };
        if !path.split('/').all(valid_component) {
            return None;
        }
        let suffix = match (tag, digest) {
            (_, Some(d)) => format!("@{d}"),
            (Some(t), None) => format!(":{t}"),
            (None, None) => String::new(),
        };
        Some(Reference {
            domain,
            path,
            suffix,
        })
    }

    /// The tenant that owns this reference on the engine, if it is a tenant's.
    pub fn owner(&self) -> Option<&str> {
        self.path
            .split('/')
            .next()?
            .strip_prefix("dockgate-")
            .filter(|t| crate::names::valid_tenant(t))
    }

    /// dockerd's short form: no `docker.io/`, no `library/`.
    pub fn familiar(&self) -> String {
        let path = if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            format!("{}/{}", self.domain, self.path)
        };
        format!("{path}{}", self.suffix)
    }
}

/// The engine's reference for a tenant's image reference (`None`: not a reference).
pub fn mangle_image(tenant: &str, reference: &str) -> Option<String> {
    let mut r = Reference::parse(reference)?;
    r.path = format!("dockgate-{tenant}/{}", r.path);
    Some(r.familiar())
}

/// The tenant's reference for one of its engine references; `None` for anything else.
pub fn demangle_image(tenant: &str, engine: &str) -> Option<String> {
    let mut r = Reference::parse(engine)?;
    if r.owner() != Some(tenant) {
        return None;
    }
    r.path = r.path.split_once('/')?.1.to_string();
    Some(r.familiar())
}

/// Whether an engine reference is shared (an admin's plain name) rather than a tenant's.
pub fn shared_image(engine: &str) -> bool {
    Reference::parse(engine).is_some_and(|r| r.owner().is_none())
}

/// Whether a shared (plain) engine reference is one the tenant may use: `patterns` are
/// references (`busybox` covers every tag of it), prefixes ending in `*`, or `*`.
pub fn shared_for(patterns: &[String], engine: &str) -> bool {
    shared_image(engine)
        && engine != "<none>:<none>"
        && patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => engine.starts_with(prefix),
            None => {
                engine == p
                    || engine
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('@'))
            }
        })
}

/// What a tenant sees of an engine reference: its own, demangled, or a shared one it may
/// use (`shared`: the tenant's `shared_images`), as is.
pub fn visible_image(tenant: &str, shared: &[String], engine: &str) -> Option<String> {
    match demangle_image(tenant, engine) {
        Some(own) => Some(own),
        None if shared_for(shared, engine) => Some(engine.to_string()),
        None => None,
    }
}

/// Whether an image is the tenant's: one of its tags is in the tenant's namespace, or it has
/// no tag at all and the tenant's label (an image the tenant built: steps, dangling ones).
/// A tagged image is owned by its tags only: a label came with the image's configuration,
/// which a registry, an admin or a commit may have written.
pub fn owns<'a>(
    tenant: &str,
    tags: impl IntoIterator<Item = &'a str>,
    label: Option<&str>,
) -> bool {
    let mut tagged = false;
    for tag in tags {
        if tag == "<none>:<none>" || tag == "<none>@<none>" {
            continue;
        }
        if demangle_image(tenant, tag).is_some() {
            return true;
        }
        tagged = true;
    }
    !tagged && label == Some(tenant)
}

/// `reference=PATTERN` filters of an image list (`docker images app`, `app:*`) also looked
/// for in the tenant's namespace; the answer keeps only what the tenant may see.
pub fn with_mangled_reference_filter(filters: &str, tenant: &str) -> String {
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str::<serde_json::Value>(filters)
    else {
        return filters.to_string();
    };
    let mangled = |pattern: &str| -> String {
        if let Some(m) = mangle_image(tenant, pattern) {
            return m;
        }
        // A pattern (`app*`, `team/*:1`): the tenant's component goes first, as in
        // `mangle_image`, after any registry.
        match pattern.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') => {
                format!("{first}/dockgate-{tenant}/{rest}")
            }
            Some(_) => format!("dockgate-{tenant}/{pattern}"),
            None => format!("dockgate-{tenant}/library/{pattern}"),
        }
    };
    match map.get_mut("reference") {
        Some(serde_json::Value::Array(values)) => {
            let old: Vec<String> = values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            *values = old
                .iter()
                .flat_map(|v| [v.clone(), mangled(v)])
                .map(serde_json::Value::String)
                .collect();
        }
        Some(serde_json::Value::Object(values)) => {
            let old: Vec<String> = values.keys().cloned().collect();
            *values = old
                .iter()
                .flat_map(|v| [v.clone(), mangled(v)])
                .map(|v| (v, serde_json::Value::Bool(true)))
                .collect();
        }
        _ => {}
    }
    serde_json::Value::Object(map).to_string()
}

/// `text` with the tenant's engine references written as the tenant's (`Successfully tagged
/// dockgate-alpha/library/app:1` → `app:1`).
pub fn demangle_image_text(tenant: &str, text: &str) -> String {
    text.replace(&format!("dockgate-{tenant}/library/"), "")
        .replace(&format!("dockgate-{tenant}/"), "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        vec!["*".into()]
    }

    #[test]
    fn shared_images_can_be_limited_by_pattern() {
        let p = vec!["busybox".to_string(), "127.0.0.1:5000/base/*".to_string()];
        assert!(shared_for(&p, "busybox:latest"));
        assert!(shared_for(&p, "busybox:1.36"));
        assert!(!shared_for(&p, "busyboxplus:latest"));
        assert!(shared_for(&p, "127.0.0.1:5000/base/debian:12"));
        assert!(!shared_for(&p, "127.0.0.1:5000/other:1"));
        assert!(!shared_for(&p, "dockgate-beta/library/busybox:latest"));
        assert!(!shared_for(&[], "busybox:latest"));
        assert!(shared_for(&all(), "anything:1"));
    }

    #[test]
    fn references_keep_their_registry_and_gain_the_tenant() {
        for (tenant_ref, engine) in [
            ("busybox", "dockgate-alpha/library/busybox"),
            ("busybox:1.36", "dockgate-alpha/library/busybox:1.36"),
            ("team/app:1", "dockgate-alpha/team/app:1"),
            (
                "docker.io/library/busybox",
                "dockgate-alpha/library/busybox",
            ),
            (
                "127.0.0.1:5000/team/app:1",
                "127.0.0.1:5000/dockgate-alpha/team/app:1",
            ),
            ("localhost/app", "localhost/dockgate-alpha/app"),
            (
                "reg.example/app@sha256:0123",
                "reg.example/dockgate-alpha/app@sha256:0123",
            ),
        ] {
            assert_eq!(mangle_image("alpha", tenant_ref).as_deref(), Some(engine));
        }
    }

    #[test]
    fn engine_references_read_back_as_the_tenants() {
        for (engine, tenant_ref) in [
            ("dockgate-alpha/library/busybox:latest", "busybox:latest"),
            ("docker.io/dockgate-alpha/team/app:1", "team/app:1"),
            (
                "127.0.0.1:5000/dockgate-alpha/team/app:1",
                "127.0.0.1:5000/team/app:1",
            ),
        ] {
            assert_eq!(demangle_image("alpha", engine).as_deref(), Some(tenant_ref));
            assert_eq!(
                visible_image("alpha", &all(), engine).as_deref(),
                Some(tenant_ref)
            );
            assert_eq!(demangle_image("beta", engine), None);
            assert_eq!(visible_image("beta", &all(), engine), None);
        }
        // Plain names are shared; another tenant's are not, however they are spelled.
        assert_eq!(
            visible_image("alpha", &all(), "busybox:latest").as_deref(),
            Some("busybox:latest")
        );
        assert!(shared_image("127.0.0.1:5000/app:1"));
        assert!(!shared_image("dockgate-beta/library/app:1"));
        assert_eq!(visible_image("alpha", &all(), "<none>:<none>"), None);
        // A tenant naming another tenant's image gets its own namespace, not beta's.
        let m = mangle_image("alpha", "dockgate-beta/library/app:1").unwrap();
        assert_eq!(Reference::parse(&m).unwrap().owner(), Some("alpha"));
    }

    #[test]
    fn reference_filters_look_in_the_namespace_too() {
        assert_eq!(
            with_mangled_reference_filter(r#"{"reference":{"app":true}}"#, "alpha"),
            r#"{"reference":{"app":true,"dockgate-alpha/library/app":true}}"#
        );
        assert_eq!(
            with_mangled_reference_filter(
                r#"{"reference":["app*","team/*:1","127.0.0.1:5000/x*"]}"#,
                "alpha"
            ),
            r#"{"reference":["app*","dockgate-alpha/library/app*","team/*:1","dockgate-alpha/team/*:1","127.0.0.1:5000/x*","127.0.0.1:5000/dockgate-alpha/x*"]}"#
        );
    }

    #[test]
    fn images_are_owned_by_their_tags_then_by_the_label() {
        let mine = "dockgate-alpha/library/app:1";
        assert!(owns("alpha", [mine], None));
        assert!(owns("alpha", [mine, "busybox:latest"], Some("beta")));
        assert!(owns("alpha", [], Some("alpha")));
        assert!(owns("alpha", ["<none>:<none>"], Some("alpha")));
        // A label that came with a tagged image is not ownership.
        assert!(!owns("beta", [mine], Some("beta")));
        assert!(!owns("alpha", ["busybox:latest"], Some("alpha")));
        assert!(!owns("alpha", [], Some("beta")));
        assert!(!owns("alpha", [], None));
    }

    #[test]
    fn malformed_references_are_not_references() {
        for bad in ["", "Busybox", "a b", "a//b", "/a", "a/"] {
            assert_eq!(mangle_image("alpha", bad), None, "{bad}");
        }
    }
}
