//! Bind sources as the host resolves them. The `binds` rule checks them lexically, but dockerd
//! and runc resolve them on the host when the container *starts*, following symlinks, and a
//! container that mounts an allowed tree can write symlinks into it (`ln -s / /t/x`, then
//! `-v /srv/ci/x:/host`). The sidecar runs on the host, in dockerd's mount namespace, so it
//! looks for itself:
//!
//! - Allow-list entries and their ancestors are the operator's; below an entry everything is
//!   container-writable. Sources under an entry are resolved component by component from
//!   `/`, as the kernel will (`lstat`, `readlink`): the operator's symlinks are followed, but
//!   a symlink in an allowed tree (the entries as they resolve now) is refused, whether in
//!   the middle, at the end, dangling or pointing back into the tree. An entry inside another
//!   is container-writable ground too. A missing component is allowed: for `-v` dockerd
//!   creates it as a directory at start, inside the tree; for `--mount` it refuses it itself.
//! - The check is made at create and the mount at start; in between, a container that mounts
//!   the tree can swap a checked directory for a symlink, and no check of the sidecar's can
//!   close that window. The kernel can: on a `nosymfollow` mount (Linux 5.10) every path walk
//!   that meets a symlink stored on it fails with ELOOP, whenever the symlink was made
//!   (dockerd's stat and mkdir of the source at start, runc's stat and mount(2)). Containers
//!   cannot add mounts on the host (removing a mount point's directory only bares the mount
//!   below, which is checked too), so the table read at create still holds at start. A
//!   source strictly below an entry is therefore allowed only if every directory the walk
//!   looks into, from the entry down, is on a `nosymfollow` mount (per-mount options in
//!   `/proc/self/mountinfo`); the entry itself can always be bound (its parent is the
//!   operator's). To allow sub-paths: `mount --bind -o nosymfollow DIR DIR`, or the fstab
//!   line `DIR DIR none bind,nosymfollow 0 0`.
//! - Bind mounts copy the flag: containers that bind the tree read-write cannot follow
//!   symlinks in it either (runc's remount of a read-only bind drops it, harmlessly: the
//!   flag matters where the host resolves sources).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use dockgate_api::endpoints::{Body, Endpoint};
use dockgate_policy::gojson::Value;
use dockgate_policy::rules::{normalize_host_path, Conservative};

use dockgate_api::refusal::{Refusal, Status};

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The pipeline's hook: a container create's bind sources, refused as the `binds` rule
/// refuses.
pub fn check(settings: &Conservative, endpoint: &Endpoint, body: &Value) -> Result<(), Refusal> {
    if endpoint.body != Body::ContainerCreate {
        return Ok(());
    }
    check_create(&settings.bind_allowlist, body).map_err(|message| Refusal {
        status: Status::Forbidden,
        message: format!("dockgate: {message}"),
        rule: Some("binds"),
    })
}

/// The host bind sources of a create body (`HostConfig.Binds` sources starting with `/`,
/// `HostConfig.Mounts` of type `bind`), checked by [`check_sources`].
pub fn check_create(allowlist: &[PathBuf], body: &Value) -> Result<(), String> {
    let Some(host) = body.field("HostConfig") else {
        return Ok(());
    };
    let mut sources = Vec::new();
    let binds = match host.field("Binds") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(v) => v.items().iter().filter_map(Value::as_str).collect(),
        None => Vec::new(),
    };
    for bind in binds {
        // `source:target[:options]`; a source not starting with `/` names a volume.
        let source = bind.split(':').next().unwrap_or("");
        if source.starts_with('/') {
            sources.push(source.to_string());
        }
    }
    for mount in host.field("Mounts").map(Value::items).unwrap_or_default() {
        if mount.field("Type").and_then(Value::as_str) == Some("bind") {
            let source = mount.field("Source").and_then(Value::as_str).unwrap_or("");
            sources.push(source.to_string());
        }
    }
    check_sources(allowlist, &sources)
}

/// Sources under an allow-list entry must not go through a symlink in an allowed tree, and
/// may lie below an entry only on `nosymfollow` mounts. Other sources are the `binds` rule's.
pub fn check_sources(allowlist: &[PathBuf], sources: &[String]) -> Result<(), String> {
    check_with(allowlist, sources, &|| fs::read(MOUNTINFO))
}

/// [`check_sources`] with the mount table read by `mountinfo` (once, if needed).
fn check_with(
    allowlist: &[PathBuf],
    sources: &[String],
    mountinfo: &dyn Fn() -> io::Result<Vec<u8>>,
) -> Result<(), String> {
    if sources.is_empty() || allowlist.is_empty() {
        return Ok(());
    }
    let mut table = Table {
        read: mountinfo,
        text: None,
    };
    // Where containers can write: the allowed trees, as the kernel reaches them now.
    // An entry that cannot be resolved counts as written.
    let roots: Vec<PathBuf> = allowlist
        .iter()
        .map(|e| resolve_entry(e).unwrap_or_else(|| e.clone()))
        .collect();
    for source in sources {
        let Some(lexical) = normalize_host_path(source) else {
            return Err(format!(
                "bind mount source {source:?} must be an absolute path without '..'"
            ));
        };
        if allowlist.iter().any(|e| lexical.starts_with(e)) {
            resolve(source, &lexical, &roots, &mut table)?;
        }
    }
    Ok(())
}

/// The mount table, read on first use.
struct Table<'a> {
    read: &'a dyn Fn() -> io::Result<Vec<u8>>,
    text: Option<Result<Vec<u8>, String>>,
}

impl Table<'_> {
    /// Whether symlinks in directory `dir` cannot be followed (`Err`: the table is unreadable).
    fn nosymfollow(&mut self, dir: &Path) -> Result<bool, String> {
        let read = self.read;
        let text = self
            .text
            .get_or_insert_with(|| read().map_err(|e| format!("read {MOUNTINFO}: {e}")));
        match text {
            Ok(t) => Ok(tree_is_nosymfollow(t, dir)),
            Err(e) => Err(e.clone()),
        }
    }
}

/// Resolves `path` as the kernel will, component by component. The operator's symlinks are
/// followed; in an allowed tree (at or below one of `roots`) a symlink is refused, and each
/// directory looked into must be on a `nosymfollow` mount. A missing component ends the
/// `lstat`s (dockerd creates the rest) but not the mount checks.
fn resolve(
    source: &str,
    path: &Path,
    roots: &[PathBuf],
    table: &mut Table<'_>,
) -> Result<(), String> {
    // Symlinks followed, as the kernel counts them (`MAXSYMLINKS`).
    const MAX_LINKS: usize = 40;
    let mut pending: Vec<PathBuf> = path.iter().rev().map(PathBuf::from).collect();
    let mut dir = PathBuf::from("/");
    let mut links = 0;
    let mut missing = false;
    while let Some(name) = pending.pop() {
        match Path::new(&name).components().next() {
            Some(Component::Normal(_)) => {}
            Some(Component::ParentDir) => {
                dir.pop();
                continue;
            }
            Some(Component::RootDir) => {
                dir = PathBuf::from("/");
                continue;
            }
            _ => continue,
        }
        let root = roots
            .iter()
            .filter(|r| dir.starts_with(r))
            .min_by_key(|r| r.components().count());
        let next = dir.join(&name);
        let meta = match fs::symlink_metadata(&next) {
            _ if missing => None,
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing = true;
                None
            }
            Err(e) => {
                return Err(format!(
                    "bind mount source {source}: cannot check {}: {e}",
                    next.display()
                ))
            }
        };
        let link = match meta {
            Some(m) if m.file_type().is_symlink() => Some(fs::read_link(&next).map_err(|e| {
                format!(
                    "bind mount source {source}: cannot read {}: {e}",
                    next.display()
                )
            })?),
            _ => None,
        };
        if let Some(root) = root {
            if let Some(target) = &link {
                return Err(format!(
                    "bind mount source {source} goes through the symlink {} (to {}): symlinks \
                     in the allowed host path {} are refused (containers can write them)",
                    next.display(),
                    target.display(),
                    root.display()
                ));
            }
            let stops = table.nosymfollow(&dir);
            if !stops.as_ref().is_ok_and(|s| *s) {
                let why = stops.err().map(|e| format!(" ({e})")).unwrap_or_default();
                let place = if dir == *root {
                    "which is not a nosymfollow mount".to_string()
                } else {
                    format!("and {} is not on a nosymfollow mount", dir.display())
                };
                return Err(format!(
                    "bind mount source {source} lies below the allowed host path {}, \
                     {place}{why}: a container could swap a directory there for a symlink \
                     before this one starts. Bind {} itself, or make {d} a nosymfollow mount \
                     to allow paths below it (`mount --bind -o nosymfollow {d} {d}`, or in \
                     fstab `{d} {d} none bind,nosymfollow 0 0`)",
                    root.display(),
                    root.display(),
                    d = dir.display(),
                ));
            }
        }
        match link {
            // The operator's symlink: followed, as the kernel will.
            Some(target) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(format!(
                        "bind mount source {source}: too many levels of symbolic links"
                    ));
                }
                pending.extend(target.iter().rev().map(PathBuf::from));
            }
            None => dir = next,
        }
    }
    Ok(())
}

/// An allow-list entry as the kernel reaches it now: the longest existing prefix
/// canonicalized, the missing rest appended as written; `None` if it cannot be resolved.
fn resolve_entry(entry: &Path) -> Option<PathBuf> {
    let mut existing = entry;
    let mut missing = Vec::new();
    loop {
        match fs::canonicalize(existing) {
            Ok(mut path) => {
                path.extend(missing.iter().rev());
                return Some(path);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(existing.file_name()?);
                existing = existing.parent()?;
            }
            Err(_) => return None,
        }
    }
}

/// Whether the mount holding the entries of directory `dir` (the top one on the longest
/// mount point that is a prefix of `dir`) has `nosymfollow` among its per-mount options, in
/// the `/proc/PID/mountinfo` text `mountinfo`.
pub fn tree_is_nosymfollow(mountinfo: &[u8], dir: &Path) -> bool {
    let mut best: Vec<Mount<'_>> = Vec::new();
    let mut depth = 0;
    for mount in mountinfo.split(|b| *b == b'\n').filter_map(Mount::parse) {
        if !dir.starts_with(&mount.point) {
            continue;
        }
        let d = mount.point.components().count();
        if d > depth {
            best.clear();
            depth = d;
        }
        if d == depth {
            best.push(mount);
        }
    }
    // Mounts stacked on one mount point: the top one is nobody's parent.
    let top = best
        .iter()
        .find(|m| !best.iter().any(|o| o.parent == m.id))
        .or(best.last());
    top.is_some_and(|m| m.options.split(|b| *b == b',').any(|o| o == b"nosymfollow"))
}

/// One line of mountinfo: `ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS ... - TYPE SOURCE
/// SUPER-OPTIONS`.
struct Mount<'a> {
    id: &'a [u8],
    parent: &'a [u8],
    point: PathBuf,
    options: &'a [u8],
}

impl<'a> Mount<'a> {
    fn parse(line: &'a [u8]) -> Option<Mount<'a>> {
        let mut fields = line.split(|b| *b == b' ');
        let id = fields.next()?;
        let parent = fields.next()?;
        let point = fields.nth(2)?;
        let options = fields.next()?;
        Some(Mount {
            id,
            parent,
            point: PathBuf::from(OsStr::from_bytes(&unescape(point))),
            options,
        })
    }
}

/// Undoes the kernel's octal escapes (`\040` for a space, `\134` for `\`).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field.get(i + 1..i + 4).filter(|d| {
            field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
