//! `binds`: a bind mount of a host path (`-v /:/host`, the Docker socket) hands the host's
//! files to the container. Sources must lie in the operator's allow-list; mount types are
//! allow-listed (bind, volume, tmpfs); propagation may not share mounts with the host.

use super::{normalize_host_path, strings, Conservative, Refusal, Request, Rule};
use crate::gojson::Value;

pub static RULE: Rule = Rule {
    name: "binds",
    doc: "Refuses bind mounts (Binds and Mounts) outside the allowlist of host paths, the Docker socket always, mount types other than bind, volume and tmpfs, and shared propagation.",
    check,
};

/// The sockets that give control of the engine itself.
const ENGINE_SOCKETS: &[&str] = &["/var/run/docker.sock", "/run/docker.sock"];

/// Propagation modes that keep the container's mounts to itself.
const PRIVATE_PROPAGATION: &[&str] = &["", "private", "rprivate", "slave", "rslave"];

fn check(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    let Some(host) = req.create_host_config() else {
        return Ok(());
    };
    for bind in strings(host.field("Binds")) {
        // `source:target[:options]`; a source not starting with `/` names a volume.
        let mut parts = bind.split(':');
        let source = parts.next().unwrap_or("");
        if source.starts_with('/') {
            check_host_path(source, settings)?;
        }
        if let Some(options) = parts.nth(1) {
            for opt in options.split(',') {
                let opt = opt.trim().to_ascii_lowercase();
                if opt.contains("shared") {
                    return Err(RULE.refuse(format!(
                        "bind propagation {opt:?} shares mounts with the host and is not allowed"
                    )));
                }
            }
        }
    }
    for mount in host.field("Mounts").map(Value::items).unwrap_or_default() {
        let kind = mount.field("Type").and_then(Value::as_str).unwrap_or("");
        // dockerd matches mount types exactly.
        match kind {
            "bind" => {
                let source = mount.field("Source").and_then(Value::as_str).unwrap_or("");
                check_host_path(source, settings)?;
                let propagation = mount
                    .path(&["BindOptions", "Propagation"])
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !PRIVATE_PROPAGATION.contains(&propagation) {
                    return Err(RULE.refuse(format!(
                        "bind propagation {propagation:?} shares mounts with the host and is not \
                         allowed"
                    )));
                }
            }
            // Volume drivers and options are `volume_options`'.
            "volume" | "tmpfs" => {}
            other => {
                return Err(RULE.refuse(format!("mounts of type {other:?} are not allowed")));
            }
        }
    }
    Ok(())
}

fn check_host_path(source: &str, settings: &Conservative) -> Result<(), Refusal> {
    let Some(path) = normalize_host_path(source) else {
        return Err(RULE.refuse(format!(
            "bind mount source {source:?} must be an absolute path without '..'"
        )));
    };
    let exactly_allowed = settings.bind_allowlist.contains(&path);
    if ENGINE_SOCKETS
        .iter()
        .any(|s| path == std::path::Path::new(s))
        && !exactly_allowed
    {
        return Err(RULE.refuse(format!(
            "bind mounting the Docker socket ({source}) is not allowed"
        )));
    }
    if !settings.bind_allowlist.iter().any(|a| path.starts_with(a)) {
        return Err(RULE.refuse(format!(
            "bind mounting host path {source} is not allowed (allowed: {})",
            allowlist_text(settings)
        )));
    }
    Ok(())
}

fn allowlist_text(settings: &Conservative) -> String {
    if settings.bind_allowlist.is_empty() {
        return "none".into();
    }
    settings
        .bind_allowlist
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
