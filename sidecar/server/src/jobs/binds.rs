//! `docker run -v $PWD:/src` in a CI job: the path is the job container's, not the host's.
//! A bind source that lies in one of the job container's volumes becomes a mount of that
//! volume; anything else stays a host path, for the `binds` rule to refuse (or allow, if
//! the job role's allow-list has it).
//!
//! The volume is mounted whole, never a host path below it: the job can write into its
//! volume while the child is created, and a host path checked now could be a symlink to `/`
//! when runc mounts it (see `host_paths`). A source at the volume's root is mounted at the
//! target directly; a source below it is reached through a symlink: the volume is mounted at
//! a hidden path in the child (`/.dockgate/volumes/N`) and the target is made a symlink into
//! it, written into the child's own file system. A symlink the job plants in its volume is
//! then resolved inside the child, where it can only lead to the child's own files.
//!
//! Pure: [`extract`] takes the job's binds out of a create body before the rules see it (they
//! are not host paths), [`apply`] puts the mounts in after the gateway's own additions.

use std::path::PathBuf;

use dockgate_policy::gojson::Value;

/// Where the child sees the job's volumes it reaches through symlinks.
pub const HIDDEN: &str = "/.dockgate/volumes";

/// A volume the job container has, from `GET /containers/json` (`Mounts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobVolume {
    /// The engine's name of the volume.
    pub name: String,
    /// Where the job container has it, as components.
    pub destination: Vec<String>,
    pub read_write: bool,
}

/// The volumes among a container's `Mounts` (as `GET /containers/{id}/json` shows them).
/// A volume mounted with a sub-path (engines from API 1.45) is left out: the child would
/// get the whole volume, more than the job has.
pub fn job_volumes(container: &serde_json::Value) -> Vec<JobVolume> {
    let mounts = container["Mounts"].as_array().cloned().unwrap_or_default();
    let sub_paths: Vec<&str> = container["HostConfig"]["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            m["VolumeOptions"]["Subpath"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        })
        .filter_map(|m| m["Target"].as_str())
        .collect();
    mounts
        .iter()
        .filter(|m| m["Type"] == "volume")
        .filter(|m| {
            let destination = m["Destination"].as_str().map(components);
            !sub_paths.iter().any(|s| Some(components(s)) == destination)
        })
        .filter_map(|m| {
            Some(JobVolume {
                name: m["Name"].as_str()?.to_string(),
                destination: components(m["Destination"].as_str()?)?,
                read_write: m["RW"].as_bool().unwrap_or(false),
            })
        })
        .collect()
}

/// A job's bind, to become a mount of one of its volumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translated {
    pub volume: String,
    /// The source's path inside the volume, as components (empty: the volume's root).
    pub inside: Vec<String>,
    /// The target in the child, as components.
    pub target: Vec<String>,
    pub read_only: bool,
}

/// An absolute path's components; `None` for a relative path or one with `..`.
fn components(path: &str) -> Option<Vec<String>> {
    if !path.starts_with('/') {
        return None;
    }
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => out.push(c.to_string()),
        }
    }
    Some(out)
}

fn joined(components: &[String]) -> String {
    format!("/{}", components.join("/"))
}

/// Takes the binds whose sources lie in the job's volumes out of `body` (a create body with
/// its host config hoisted), returning what they become. A source in no volume is left in
/// place if `allowlist` covers it, and refused otherwise.
pub fn extract(
    body: &mut Value,
    volumes: &[JobVolume],
    allowlist: &[PathBuf],
) -> Result<Vec<Translated>, String> {
    let Some(host) = body.field_mut("HostConfig") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if let Some(Value::Array(items)) = host.field_mut("Binds") {
        let mut kept = Vec::new();
        for item in std::mem::take(items) {
            match item.as_str().map(|b| bind(b, volumes, allowlist)) {
                Some(Ok(Some(t))) => out.push(t),
                Some(Err(e)) => return Err(e),
                _ => kept.push(item),
            }
        }
        *items = kept;
    }
    if let Some(Value::Array(items)) = host.field_mut("Mounts") {
        let mut kept = Vec::new();
        for item in std::mem::take(items) {
            match mount(&item, volumes, allowlist)? {
                Some(t) => out.push(t),
                None => kept.push(item),
            }
        }
        *items = kept;
    }
    Ok(out)
}

/// One `source:target[:options]` of `HostConfig.Binds`.
fn bind(
    text: &str,
    volumes: &[JobVolume],
    allowlist: &[PathBuf],
) -> Result<Option<Translated>, String> {
    let mut parts = text.splitn(3, ':');
    let source = parts.next().unwrap_or("");
    if !source.starts_with('/') {
        return Ok(None); // a named volume: the tenant's
    }
    let target = parts.next().unwrap_or("");
    let options = parts.next().unwrap_or("");
    let mut read_only = false;
    for option in options.split(',') {
        match option {
            "ro" => read_only = true,
            "rw" => read_only = false,
            // dockerd ignores these on Linux (`nocopy` applies to named volumes only).
            "" | "consistent" | "cached" | "delegated" | "nocopy" => {}
            other => {
                return Err(format!(
                    "bind mount {text:?}: option {other:?} is not available for a CI job's \
                     binds (they become mounts of the job's volumes)"
                ))
            }
        }
    }
    translate(source, target, read_only, volumes, allowlist)
}

/// One `HostConfig.Mounts` entry (only `bind` ones are the job's paths).
fn mount(
    item: &Value,
    volumes: &[JobVolume],
    allowlist: &[PathBuf],
) -> Result<Option<Translated>, String> {
    if item.field("Type").and_then(Value::as_str) != Some("bind") {
        return Ok(None);
    }
    let source = item.field("Source").and_then(Value::as_str).unwrap_or("");
    let target = item.field("Target").and_then(Value::as_str).unwrap_or("");
    let read_only = item.field("ReadOnly").is_some_and(Value::is_true);
    let translated = translate(source, target, read_only, volumes, allowlist)?;
    if translated.is_some() {
        let options = item.field("BindOptions").map(Value::members).unwrap_or(&[]);
        let set = options.iter().find(|(_, v)| {
            !matches!(v, Value::Null | Value::Bool(false)) && v.as_str() != Some("")
        });
        if let Some((key, _)) = set {
            return Err(format!(
                "--mount source={source}: BindOptions.{key} is not available for a CI job's \
                 binds (they become mounts of the job's volumes)"
            ));
        }
    }
    Ok(translated)
}

fn translate(
    source: &str,
    target: &str,
    read_only: bool,
    volumes: &[JobVolume],
    allowlist: &[PathBuf],
) -> Result<Option<Translated>, String> {
    let Some(path) = components(source) else {
        return Err(format!(
            "bind mount source {source:?} must be an absolute path without '..'"
        ));
    };
    let found = volumes
        .iter()
        .filter(|v| path.starts_with(&v.destination))
        .max_by_key(|v| v.destination.len());
    let Some(volume) = found else {
        if allowlist
            .iter()
            .any(|e| PathBuf::from(joined(&path)).starts_with(e))
        {
            return Ok(None);
        }
        let mut list: Vec<String> = volumes.iter().map(|v| joined(&v.destination)).collect();
        list.sort();
        return Err(format!(
            "bind mount source {source:?} is not in one of this CI job's volumes ({}): a job \
             may mount only what lies in them",
            if list.is_empty() {
                "it has none".to_string()
            } else {
                list.join(", ")
            }
        ));
    };
    let Some(target) = components(target).filter(|t| !t.is_empty()) else {
        return Err(format!(
            "bind mount target {target:?} must be an absolute path (not /) without '..'"
        ));
    };
    Ok(Some(Translated {
        volume: volume.name.clone(),
        inside: path[volume.destination.len()..].to_vec(),
        target,
        read_only: read_only || !volume.read_write,
    }))
}

/// Adds the mounts `translated` needs to `body` and returns the symlinks to write into the
/// child once it exists (`(path relative to /, target)`). A link is written into the
/// child's own file system only: one whose place lies in another mount of the child (a
/// bind, a volume, a tmpfs, another translated bind, or one of `image_volumes`, the image's
/// `VOLUME`s) is refused, since writing it would replace that mount's files, unless it
/// names the very place the outer translated bind already shows there (then it is dropped).
pub fn apply(
    body: &mut Value,
    translated: &[Translated],
    image_volumes: &[String],
) -> Result<Vec<(String, String)>, String> {
    if translated.is_empty() {
        return Ok(Vec::new());
    }
    // A client's `Volumes` entry for a bind's target (compose writes one per bind) would be
    // an anonymous volume once the bind is gone: the translation takes the bind's place.
    if let Some(Value::Object(volumes)) = body.field_mut("Volumes") {
        volumes.retain(|(path, _)| {
            components(path).map_or(true, |p| !translated.iter().any(|t| t.target == p))
        });
    }
    let others = mount_targets(body);
    let host = body.object_field("HostConfig");
    let mut mounts: Vec<Value> = host
        .field("Mounts")
        .map(|m| m.items().to_vec())
        .unwrap_or_default();
    let mut hidden: Vec<(String, bool)> = Vec::new();
    let mut links = Vec::new();
    for (i, t) in translated.iter().enumerate() {
        let target = joined(&t.target);
        if translated[..i].iter().any(|u| u.target == t.target) {
            return Err(format!("bind mount target {target:?} is given twice"));
        }
        // Inside another translated bind: the same place seen through it, or a conflict.
        if let Some(outer) = translated
            .iter()
            .filter(|u| u.target.len() < t.target.len() && t.target.starts_with(&u.target))
            .max_by_key(|u| u.target.len())
        {
            let rest = &t.target[outer.target.len()..];
            let same = outer.volume == t.volume
                && outer.read_only == t.read_only
                && t.inside.len() == outer.inside.len() + rest.len()
                && t.inside.starts_with(&outer.inside)
                && t.inside.ends_with(rest);
            if same {
                continue;
            }
            return Err(format!(
                "bind mount target {target:?} lies in the bind at {:?}: a CI job's binds \
                 become mounts of its volumes, and this one cannot be placed inside that one",
                joined(&outer.target)
            ));
        }
        if t.inside.is_empty() {
            mounts.push(volume_mount(&t.volume, &target, t.read_only));
            continue;
        }
        if let Some(other) = others.iter().find(|o| t.target.starts_with(o)) {
            return Err(format!(
                "bind mount target {target:?} lies in the mount at {:?}, which would hide it",
                joined(other)
            ));
        }
        if image_volumes
            .iter()
            .any(|v| components(v).as_ref() == Some(&t.target))
        {
            return Err(format!(
                "bind mount target {target:?} is a VOLUME of the image: there a CI job can \
                 mount only a volume, or the root of one of its own volumes"
            ));
        }
        let index = match hidden
            .iter()
            .position(|h| h == &(t.volume.clone(), t.read_only))
        {
            Some(i) => i,
            None => {
                let i = hidden.len();
                hidden.push((t.volume.clone(), t.read_only));
                mounts.push(volume_mount(
                    &t.volume,
                    &format!("{HIDDEN}/{i}"),
                    t.read_only,
                ));
                i
            }
        };
        let link = (
            t.target.join("/"),
            format!("{HIDDEN}/{index}/{}", t.inside.join("/")),
        );
        if !super::tar::fits(&link.0, &link.1) {
            return Err(format!("bind mount target {target:?} is too long"));
        }
        links.push(link);
    }
    host.set_field("Mounts", Value::Array(mounts));
    Ok(links)
}

fn volume_mount(volume: &str, target: &str, read_only: bool) -> Value {
    let s = |v: &str| Value::String(v.to_string());
    Value::Object(vec![
        ("Type".into(), s("volume")),
        ("Source".into(), s(volume)),
        ("Target".into(), s(target)),
        ("ReadOnly".into(), Value::Bool(read_only)),
        // A bind never copies the image's files into its source; neither does this.
        (
            "VolumeOptions".into(),
            Value::Object(vec![("NoCopy".into(), Value::Bool(true))]),
        ),
    ])
}

/// The targets of the body's other mounts: binds, mounts, anonymous volumes and tmpfs.
fn mount_targets(body: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let host = body.field("HostConfig");
    for b in host
        .and_then(|h| h.field("Binds"))
        .map(Value::items)
        .unwrap_or_default()
    {
        if let Some(t) = b.as_str().and_then(|b| b.split(':').nth(1)) {
            out.extend(components(t));
        }
    }
    for m in host
        .and_then(|h| h.field("Mounts"))
        .map(Value::items)
        .unwrap_or_default()
    {
        if let Some(t) = m.field("Target").and_then(Value::as_str) {
            out.extend(components(t));
        }
    }
    let maps = [body.field("Volumes"), host.and_then(|h| h.field("Tmpfs"))];
    for (key, _) in maps.into_iter().flatten().flat_map(Value::members) {
        out.extend(components(key));
    }
    out.retain(|t| !t.is_empty());
    out
}

#[cfg(test)]
mod tests;
