//! Registry API paths (`/v2/...`, distribution spec) parsed into what they address, with the
//! spec's grammar for repository names, tags and digests (pure, no I/O).
//!
//! Only the raw request URI is parsed, and anything outside the grammar is refused: no
//! percent-encoding, no empty or dot segments, lowercase name components. So the path nginx
//! routes on and the one the sidecar approved cannot differ.

use std::fmt;

/// The longest repository name the spec allows (with the team prefix applied).
pub const MAX_NAME_LEN: usize = 255;

/// What a `/v2/` request addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/v2/`: the API version check (`docker login` starts here).
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags { name: String },
    /// `/v2/<name>/manifests/<tag or digest>`.
    Manifest { name: String, reference: Reference },
    /// `/v2/<name>/blobs/<digest>`.
    Blob { name: String, digest: String },
    /// `/v2/<name>/blobs/uploads/`: start an upload (or mount a blob).
    UploadStart { name: String },
    /// `/v2/<name>/blobs/uploads/<uuid>`: continue, finish, query or cancel an upload.
    Upload { name: String, uuid: String },
}

/// A manifest reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

/// Why a path is refused, with the registry error code a client understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathError {
    /// `NAME_INVALID`, `DIGEST_INVALID`, `TAG_INVALID`, `BLOB_UPLOAD_INVALID`, `UNSUPPORTED`.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn error(code: &'static str, message: impl Into<String>) -> PathError {
    PathError {
        code,
        message: message.into(),
    }
}

/// Splits a raw request URI into path and query and parses the path.
pub fn parse(raw_uri: &str) -> Result<(Target, Option<&str>), PathError> {
    let (path, query) = match raw_uri.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw_uri, None),
    };
    if path.contains('%') {
        return Err(error(
            "NAME_INVALID",
            "percent-encoded characters are not part of registry paths",
        ));
    }
    if query.is_some_and(|q| q.contains('#') || q.bytes().any(|b| b <= b' ' || b >= 0x7f)) {
        return Err(error("UNSUPPORTED", "malformed query string"));
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Err(error("UNSUPPORTED", "not a registry API path (/v2/...)"));
    };
    if rest.is_empty() {
        return Ok((Target::Base, query));
    }
    if rest == "_catalog" {
        return Ok((Target::Catalog, query));
    }
    let segments: Vec<&str> = rest.split('/').collect();
    Ok((parse_segments(&segments)?, query))
}

fn parse_segments(s: &[&str]) -> Result<Target, PathError> {
    let n = s.len();
    let name_of = |k: usize| -> Result<String, PathError> {
        let name = s[..k].join("/");
        check_name(&name)?;
        Ok(name)
    };
    // From the end, since names may contain "blobs", "manifests" or "tags" components.
    if n >= 3 && s[n - 2] == "tags" && s[n - 1] == "list" {
        return Ok(Target::Tags {
            name: name_of(n - 2)?,
        });
    }
    if n >= 3 && s[n - 2] == "manifests" {
        let r = s[n - 1];
        let reference = if r.contains(':') {
            check_digest(r)?;
            Reference::Digest(r.to_string())
        } else {
            check_tag(r)?;
            Reference::Tag(r.to_string())
        };
        return Ok(Target::Manifest {
            name: name_of(n - 2)?,
            reference,
        });
    }
    if n >= 4 && s[n - 3] == "blobs" && s[n - 2] == "uploads" {
        let uuid = s[n - 1];
        if uuid.is_empty() {
            return Ok(Target::UploadStart {
                name: name_of(n - 3)?,
            });
        }
        check_uuid(uuid)?;
        return Ok(Target::Upload {
            name: name_of(n - 3)?,
            uuid: uuid.to_string(),
        });
    }
    if n >= 3 && s[n - 2] == "blobs" {
        if s[n - 1] == "uploads" {
            return Ok(Target::UploadStart {
                name: name_of(n - 2)?,
            });
        }
        check_digest(s[n - 1])?;
        return Ok(Target::Blob {
            name: name_of(n - 2)?,
            digest: s[n - 1].to_string(),
        });
    }
    Err(error(
        "UNSUPPORTED",
        format!("/v2/{} is not a registry API path", s.join("/")),
    ))
}

/// A repository name: `component(/component)*`, each `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`,
/// at most 255 characters in all.
pub fn check_name(name: &str) -> Result<(), PathError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(error(
            "NAME_INVALID",
            format!("repository names have 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    for c in name.split('/') {
        if !is_component(c) {
            return Err(error(
                "NAME_INVALID",
                format!("invalid repository name component {c:?} (lowercase letters, digits and single separators . _ __ -)"),
            ));
        }
    }
    Ok(())
}

fn is_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__" or a run of "-", then an alphanumeric.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || !b.get(i).copied().is_some_and(alnum) {
            return false;
        }
    }
    true
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), PathError> {
    let b = tag.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let ok = !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-');
    if ok {
        Ok(())
    } else {
        Err(error(
            "TAG_INVALID",
            format!("invalid tag {tag:?} (letters, digits, _ . -; at most 128)"),
        ))
    }
}

/// A digest this gateway accepts: `sha256:` + 64 or `sha512:` + 128 lowercase hex digits.
pub fn check_digest(digest: &str) -> Result<(), PathError> {
    let hex_len = |h: &str| {
        h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            .then_some(h.len())
    };
    let ok = match digest.split_once(':') {
        Some(("sha256", h)) => hex_len(h) == Some(64),
        Some(("sha512", h)) => hex_len(h) == Some(128),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(error(
            "DIGEST_INVALID",
            format!("invalid digest {digest:?} (sha256:<64 hex> or sha512:<128 hex>)"),
        ))
    }
}

/// An upload id as distribution hands them out (a UUID; letters, digits, `-_.=`).
fn check_uuid(uuid: &str) -> Result<(), PathError> {
    let ok = uuid.len() <= 128
        && uuid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.=".contains(&b))
        && uuid.bytes().any(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(error(
            "BLOB_UPLOAD_INVALID",
            format!("invalid upload id {uuid:?}"),
        ))
    }
}

impl Target {
    /// The repository the request is about, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Target::Base | Target::Catalog => None,
            Target::Tags { name }
            | Target::Manifest { name, .. }
            | Target::Blob { name, .. }
            | Target::UploadStart { name }
            | Target::Upload { name, .. } => Some(name),
        }
    }

    /// The same request's path for repository `name` instead.
    pub fn path_for(&self, name: &str) -> String {
        match self {
            Target::Base => "/v2/".into(),
            Target::Catalog => "/v2/_catalog".into(),
            Target::Tags { .. } => format!("/v2/{name}/tags/list"),
            Target::Manifest { reference, .. } => match reference {
                Reference::Tag(t) => format!("/v2/{name}/manifests/{t}"),
                Reference::Digest(d) => format!("/v2/{name}/manifests/{d}"),
            },
            Target::Blob { digest, .. } => format!("/v2/{name}/blobs/{digest}"),
            Target::UploadStart { .. } => format!("/v2/{name}/blobs/uploads/"),
            Target::Upload { uuid, .. } => format!("/v2/{name}/blobs/uploads/{uuid}"),
        }
    }
}

#[cfg(test)]
mod tests;
