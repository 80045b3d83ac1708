//! `binds` and `volume_binds`: a bind mount of a host path (`-v /:/host`, the Docker socket)
//! hands the host's files to the container; a `local` volume with bind options is the same
//! thing by another name.

use super::{normalize_host_path, strings, Conservative, Refusal, Request, Rule};
use crate::gojson::Value;

pub static RULE: Rule = Rule {
    name: "binds",
    doc: "Refuses bind mounts (Binds and Mounts) outside the allowlist of host paths, the Docker socket always, and inline volumes with bind options.",
    check,
};

pub static VOLUME_RULE: Rule = Rule {
    name: "volume_binds",
    doc: "Refuses volumes created with bind driver options (o=bind, type=none with a device).",
    check: check_volume,
};

/// The sockets that give control of the engine itself.
const ENGINE_SOCKETS: &[&str] = &["/var/run/docker.sock", "/run/docker.sock"];

fn check(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    let Some(host) = req.create_host_config() else {
        return Ok(());
    };
    for bind in strings(host.field("Binds")) {
        // `source:target[:options]`; a source not starting with `/` names a volume.
        let source = bind.split(':').next().unwrap_or("");
        if source.starts_with('/') {
            check_host_path(source, settings)?;
        }
    }
    for mount in host.field("Mounts").map(Value::items).unwrap_or_default() {
        let kind = mount.field("Type").and_then(Value::as_str).unwrap_or("");
        match kind.to_ascii_lowercase().as_str() {
            "bind" => {
                let source = mount.field("Source").and_then(Value::as_str).unwrap_or("");
                check_host_path(source, settings)?;
            }
            "volume" => {
                let options = mount.path(&["VolumeOptions", "DriverConfig", "Options"]);
                if let Some(why) = options.and_then(bind_options) {
                    return Err(RULE.refuse(format!(
                        "volume mounts with bind driver options ({why}) are not allowed"
                    )));
                }
            }
            "tmpfs" | "image" => {}
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

/// Why `local` driver options make a bind mount, if they do.
fn bind_options(options: &Value) -> Option<String> {
    let get = |key: &str| {
        options
            .members()
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_str())
    };
    if let Some(o) = get("o") {
        if o.split(',').any(|opt| {
            let opt = opt.trim().to_ascii_lowercase();
            opt == "bind" || opt == "rbind"
        }) {
            return Some(format!("o={o}"));
        }
    }
    match (get("type"), get("device")) {
        (Some(t), Some(d)) if t.trim().eq_ignore_ascii_case("none") && !d.is_empty() => {
            Some(format!("type=none, device={d}"))
        }
        _ => None,
    }
}

fn check_volume(req: &Request<'_>, _: &Conservative) -> Result<(), Refusal> {
    if req.template != "/volumes/create" {
        return Ok(());
    }
    let driver = req
        .body
        .field("Driver")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !(driver.is_empty() || driver == "local") {
        return Ok(());
    }
    match req.body.field("DriverOpts").and_then(bind_options) {
        Some(why) => Err(VOLUME_RULE.refuse(format!(
            "volumes with bind driver options ({why}) are not allowed"
        ))),
        None => Ok(()),
    }
}
