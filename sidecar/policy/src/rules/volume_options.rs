//! `volume_options`: the `local` volume driver mounts whatever its options say (`type=none,
//! o=bind` binds a host path, `type=ext4,device=/dev/vda` the host's disk, `type=proc` the
//! host's view of /proc), and other drivers are plugins. Drivers and mount types are
//! allow-listed, and a `local` volume's mount options too.

use super::{listed, Conservative, Refusal, Request, Rule};
use crate::gojson::Value;

pub static RULE: Rule = Rule {
    name: "volume_options",
    doc: "Refuses volume drivers outside the allowlist (local), local volumes of filesystem types outside the allowlist (tmpfs), and mount options other than tmpfs sizing and permissions, in volume creates, --mount volume options and --volume-driver.",
    check,
};

/// Mount options a `tmpfs`-like local volume may carry (`o=size=64m,mode=1777`).
const MOUNT_OPTIONS: &[&str] = &[
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "noexec",
    "nosuid",
    "nodev",
    "ro",
    "rw",
];

fn check(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    match req.template() {
        "/volumes/create" => {
            let driver = req.body.field("Driver").and_then(Value::as_str);
            check_driver(driver.unwrap_or(""), req.body.field("DriverOpts"), settings)
        }
        "/containers/create" => {
            let Some(host) = req.create_host_config() else {
                return Ok(());
            };
            let default = host.field("VolumeDriver").and_then(Value::as_str);
            if let Some(d) = default.filter(|d| !d.is_empty()) {
                check_driver(d, None, settings)?;
            }
            for mount in host.field("Mounts").map(Value::items).unwrap_or_default() {
                let Some(config) = mount.path(&["VolumeOptions", "DriverConfig"]) else {
                    continue;
                };
                let name = config.field("Name").and_then(Value::as_str);
                check_driver(
                    name.or(default).unwrap_or(""),
                    config.field("Options"),
                    settings,
                )?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_driver(
    driver: &str,
    options: Option<&Value>,
    settings: &Conservative,
) -> Result<(), Refusal> {
    let driver = if driver.is_empty() { "local" } else { driver };
    if !listed(&settings.volume_drivers, driver) {
        return Err(RULE.refuse(format!(
            "volume driver {driver:?} is not allowed (allowed: {})",
            settings.volume_drivers.join(", ")
        )));
    }
    let members = options.map(Value::members).unwrap_or_default();
    if driver != "local" || members.is_empty() {
        return Ok(());
    }
    // Map keys: dockerd matches them exactly.
    let get = |key: &str| {
        members
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_str())
    };
    for (key, _) in members {
        if !matches!(key.as_str(), "type" | "device" | "o" | "size") {
            return Err(RULE.refuse(format!("local volume option {key:?} is not allowed")));
        }
    }
    let kind = get("type").unwrap_or("");
    if get("o").is_some_and(|o| o.split(',').any(|opt| opt.trim() == "bind"))
        || (kind == "none" && get("device").is_some())
    {
        return Err(RULE.refuse(format!(
            "volumes with bind driver options ({}) are not allowed",
            describe(members)
        )));
    }
    if !listed(&settings.volume_types, kind) {
        return Err(RULE.refuse(format!(
            "local volumes of type {kind:?} are not allowed (allowed: {})",
            settings.volume_types.join(", ")
        )));
    }
    // A tmpfs has no device: its name is free text, but it must not pose as a path.
    if let Some(device) = get("device").filter(|d| d.starts_with('/')) {
        return Err(RULE.refuse(format!(
            "a {kind} volume's device must not be a path ({device})"
        )));
    }
    for opt in get("o").unwrap_or("").split(',') {
        let name = opt.split('=').next().unwrap_or("").trim();
        if !name.is_empty() && !MOUNT_OPTIONS.contains(&name) {
            return Err(RULE.refuse(format!(
                "mount option {name:?} of a local volume is not allowed (allowed: {})",
                MOUNT_OPTIONS.join(", ")
            )));
        }
    }
    Ok(())
}

fn describe(members: &[(String, Value)]) -> String {
    members
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
        .collect::<Vec<_>>()
        .join(", ")
}
