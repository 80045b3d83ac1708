//! The pull a pull of a mirrored registry becomes: `ghcr.io/acme/app:1` is pulled as
//! `FRONT/ghcr/acme/app:1` through the registry front-end's cache (`[registry] pull_through`)
//! and lands under the registry's own name. Pulls by digest go to the registry itself.

use dockgate_api::uri::CanonicalUri;
use dockgate_registry::access::RegistryConfig;
use dockgate_tenant::images::Reference;

use crate::config::Config;

/// The reference pulled: `fromImage` with its tag (the `tag` parameter, or `latest`).
pub fn pulled(from: &str, tag: Option<&str>) -> String {
    match tag.filter(|t| !t.is_empty()) {
        Some(tag) => format!("{from}:{tag}"),
        None if from.rsplit_once(':').is_some_and(|(_, t)| !t.contains('/')) => from.into(),
        None => format!("{from}:latest"),
    }
}

/// A pull of a mirrored registry through the front-end, planned (pure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorPull {
    /// What dockerd pulls: `FRONT/NS/PATH:TAG`.
    pub engine: String,
    /// `fromImage` and `tag` for it.
    pub from_image: String,
    pub tag: String,
    /// The registry's name, familiar, with its tag: where the image lands.
    pub plain: String,
    /// The front-end's repository (what the one-pull credential is for): `NS/PATH`.
    pub repository: String,
    /// Progress text: the engine's repository and the registry's.
    pub engine_repo: String,
    pub plain_repo: String,
    /// `Pulling from NS/PATH` is dockerd's; `Pulling from PATH` the registry's.
    pub engine_path: String,
    pub plain_path: String,
}

/// The mirror pull of `fromImage` (and `tag`), if its registry is mirrored and pulls go
/// through a front-end; `None` pulls as the client asked.
pub fn mirror_pull(reg: &RegistryConfig, from: &str, tag: Option<&str>) -> Option<MirrorPull> {
    let front = reg.pull_through.as_deref()?;
    let reference = Reference::parse(&pulled(from, tag))?;
    let tag = reference.suffix.strip_prefix(':')?.to_string();
    let mirror = reg.mirrors.of_registry(&reference.domain)?;
    let repository = format!("{}/{}", mirror.namespace, reference.path);
    let from_image = format!("{front}/{repository}");
    let mut plain_ref = reference.clone();
    plain_ref.suffix = String::new();
    Some(MirrorPull {
        engine: format!("{from_image}:{tag}"),
        plain: reference.familiar(),
        engine_repo: from_image.clone(),
        plain_repo: plain_ref.familiar(),
        engine_path: repository.clone(),
        plain_path: reference.path.clone(),
        from_image,
        tag,
        repository,
    })
}

impl MirrorPull {
    /// A progress line in the registry's names.
    pub fn rename(&self, line: &str) -> String {
        line.replace(&self.engine_repo, &self.plain_repo).replace(
            &format!("Pulling from {}", self.engine_path),
            &format!("Pulling from {}", self.plain_path),
        )
    }
}

/// Whether an approved `/images/create` is a pull the sidecar mediates through a mirror.
pub fn through_mirror(config: &Config, uri: &CanonicalUri) -> bool {
    let Some(reg) = &config.registry else {
        return false;
    };
    uri.query_value("fromImage")
        .is_some_and(|from| mirror_pull(reg, from, uri.query_value("tag")).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pulled_reference_has_a_tag() {
        assert_eq!(pulled("busybox", None), "busybox:latest");
        assert_eq!(pulled("busybox", Some("")), "busybox:latest");
        assert_eq!(pulled("busybox", Some("1.36")), "busybox:1.36");
        assert_eq!(
            pulled("127.0.0.1:5000/app", None),
            "127.0.0.1:5000/app:latest"
        );
        assert_eq!(pulled("127.0.0.1:5000/app:2", None), "127.0.0.1:5000/app:2");
    }

    fn registry() -> RegistryConfig {
        let raw: dockgate_registry::access::RawRegistry = toml::from_str(
            r#"
pull_through = "127.0.0.1:5000"
[mirrors.hub]
registry = "docker.io"
url = "https://registry-1.docker.io"
[mirrors.ghcr]
registry = "ghcr.io"
url = "https://ghcr.io"
"#,
        )
        .unwrap();
        raw.check(&[], &mut |_, k, m| panic!("{k}: {m}"))
    }

    #[test]
    fn mirrored_registries_are_pulled_through_the_front_end() {
        let reg = registry();
        let p = mirror_pull(&reg, "busybox", Some("1.36")).unwrap();
        assert_eq!(p.engine, "127.0.0.1:5000/hub/library/busybox:1.36");
        assert_eq!(
            (p.from_image.as_str(), p.tag.as_str()),
            ("127.0.0.1:5000/hub/library/busybox", "1.36")
        );
        assert_eq!(p.plain, "busybox:1.36");
        assert_eq!(p.repository, "hub/library/busybox");
        assert_eq!(
            p.rename(
                r#"{"status":"Pulling from hub/library/busybox","id":"1.36"}
{"status":"Status: Downloaded newer image for 127.0.0.1:5000/hub/library/busybox:1.36"}"#
            ),
            r#"{"status":"Pulling from library/busybox","id":"1.36"}
{"status":"Status: Downloaded newer image for busybox:1.36"}"#
        );
        let p = mirror_pull(&reg, "ghcr.io/acme/app:2", None).unwrap();
        assert_eq!(p.engine, "127.0.0.1:5000/ghcr/acme/app:2");
        assert_eq!(p.plain, "ghcr.io/acme/app:2");
        assert_eq!(
            mirror_pull(&reg, "ghcr.io/acme/app", None).unwrap().tag,
            "latest"
        );
        // Not mirrored, by digest, or no front-end: as the client asked.
        assert_eq!(mirror_pull(&reg, "quay.io/x/y", Some("1")), None);
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            mirror_pull(&reg, &format!("ghcr.io/acme/app@{digest}"), None),
            None
        );
        assert_eq!(mirror_pull(&reg, "ghcr.io/acme/app", Some(digest)), None);
        let mut off = reg.clone();
        off.pull_through = None;
        assert_eq!(mirror_pull(&off, "busybox", None), None);
    }
}
