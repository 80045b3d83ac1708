//! The canonical form of a Docker API request URI.
//!
//! The sidecar decides on the URI it canonicalises and hands the canonical string back to
//! nginx, which forwards exactly that string to dockerd. So the canonical form must mean one
//! thing to everyone: the path is percent-decoded once (as Go's `URL.Path` is, `%2F`
//! included), split on `/`, and re-encoded segment by segment; the query is decoded as Go's
//! `url.ParseQuery` does and re-encoded. Anything two parsers could read differently is
//! refused rather than guessed at.

use std::fmt;

/// Longest raw request target accepted.
pub const MAX_URI_LEN: usize = 16 * 1024;

/// An API version prefix, `/v1.41`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)
    }
}

/// A request URI in canonical form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonicalUri {
    pub version: Option<Version>,
    /// Decoded path segments after the version prefix (never empty strings, `.` or `..`).
    pub segments: Vec<String>,
    /// Decoded query parameters in request order. A key may repeat: dockerd reads some keys
    /// as lists (`t`, `names`, ...) and the first value of any other (`FormValue`); which keys
    /// may repeat is the endpoint's business (`Endpoint::lists`), checked by the decision.
    pub query: Vec<(String, String)>,
}

/// Why a request target has no canonical form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UriError {
    TooLong,
    /// Not `/path[?query]`: absolute-form (`http://host/...`), `*`, or empty.
    NotOriginForm,
    /// A `%` not followed by two hex digits.
    BadPercentEncoding,
    /// Decoded bytes that are not UTF-8, or control characters (NUL, CR, LF, ...).
    BadCharacter,
    /// `//`, a trailing `/`, or a `.`/`..` segment, encoded or not.
    NonCanonicalPath,
    /// A `;` in the query (Go refuses it as a separator).
    SemicolonInQuery,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UriError::TooLong => write!(f, "request URI longer than {MAX_URI_LEN} bytes"),
            UriError::NotOriginForm => f.write_str("request target must be a path"),
            UriError::BadPercentEncoding => f.write_str("invalid percent-encoding"),
            UriError::BadCharacter => f.write_str("invalid character in the request URI"),
            UriError::NonCanonicalPath => {
                f.write_str("empty, '.' or '..' path segments are not allowed")
            }
            UriError::SemicolonInQuery => f.write_str("';' is not allowed in the query"),
        }
    }
}

impl std::error::Error for UriError {}

/// Canonicalises a raw request target (nginx's `$request_uri`).
pub fn canonicalize(raw: &str) -> Result<CanonicalUri, UriError> {
    if raw.len() > MAX_URI_LEN {
        return Err(UriError::TooLong);
    }
    if !raw.starts_with('/') {
        return Err(UriError::NotOriginForm);
    }
    let (raw_path, raw_query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    // A fragment never reaches a server; a `#` here is a client bug or a trick.
    if raw.contains('#') {
        return Err(UriError::BadCharacter);
    }

    let path = decode(raw_path, false)?;
    let mut segments: Vec<String> = path[1..].split('/').map(str::to_owned).collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        // `/` alone splits into one empty segment: that is the root, not an endpoint.
        return Err(UriError::NonCanonicalPath);
    }
    let version = segments.first().and_then(|s| parse_version(s));
    if version.is_some() {
        segments.remove(0);
    }

    let mut query: Vec<(String, String)> = Vec::new();
    if let Some(q) = raw_query {
        if q.contains(';') {
            return Err(UriError::SemicolonInQuery);
        }
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            // A value may hold any text (docker-py sends a Dockerfile's lines in one); it is
            // re-encoded before it is forwarded, so it cannot break the request line.
            query.push((decode(k, true)?, decode_value(v)?));
        }
    }
    Ok(CanonicalUri {
        version,
        segments,
        query,
    })
}

/// `v<major>.<minor>` with plain decimal numbers.
fn parse_version(segment: &str) -> Option<Version> {
    let (major, minor) = segment.strip_prefix('v')?.split_once('.')?;
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some(Version {
        major: number(major)?,
        minor: number(minor)?,
    })
}

/// A query value, percent-decoded as Go's `QueryUnescape` does: control characters are
/// allowed (NUL too: Go keeps it), valid UTF-8 is required.
fn decode_value(s: &str) -> Result<String, UriError> {
    let bytes = percent_decode(s, true)?;
    String::from_utf8(bytes).map_err(|_| UriError::BadCharacter)
}

/// Percent-decodes once; `+` is a space in query components (as Go's `QueryUnescape`).
fn decode(s: &str, query: bool) -> Result<String, UriError> {
    let out = percent_decode(s, query)?;
    let decoded = String::from_utf8(out).map_err(|_| UriError::BadCharacter)?;
    if decoded.chars().any(char::is_control) {
        return Err(UriError::BadCharacter);
    }
    Ok(decoded)
}

fn percent_decode(s: &str, query: bool) -> Result<Vec<u8>, UriError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .ok_or(UriError::BadPercentEncoding)?;
                let hex_value = |b: u8| (b as char).to_digit(16);
                let (Some(hi), Some(lo)) = (hex_value(hex[0]), hex_value(hex[1])) else {
                    return Err(UriError::BadPercentEncoding);
                };
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if query => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Percent-encodes everything but RFC 3986's unreserved characters (and, in paths, the
/// sub-delimiters and `:`/`@` that Docker names and references use).
fn encode(s: &str, out: &mut String, path: bool) {
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (path
                && matches!(
                    b,
                    b':' | b'@' | b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b','
                ));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

impl CanonicalUri {
    /// The path after the version prefix, decoded: `/containers/abc/json`.
    pub fn path(&self) -> String {
        let mut p = String::new();
        for s in &self.segments {
            p.push('/');
            p.push_str(s);
        }
        p
    }

    /// The value of a query parameter as dockerd's `r.FormValue` reads it: the first.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a query parameter, in order, as dockerd's `r.Form[key]` reads them.
    pub fn query_values<'a, 'k: 'a>(&'a self, key: &'k str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first key given more than once that is not in `lists` (the keys dockerd reads as
    /// lists for this endpoint).
    pub fn repeated_key(&self, lists: &[&str]) -> Option<&str> {
        let mut seen = std::collections::HashSet::with_capacity(self.query.len());
        self.query
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| !seen.insert(*k) && !lists.contains(k))
    }
}

/// The canonical string: what nginx forwards to dockerd.
impl fmt::Display for CanonicalUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        if let Some(v) = self.version {
            out.push('/');
            out.push_str(&v.to_string());
        }
        for s in &self.segments {
            out.push('/');
            encode(s, &mut out, true);
        }
        if out.is_empty() {
            out.push('/');
        }
        for (i, (k, v)) in self.query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            encode(k, &mut out, false);
            out.push('=');
            encode(v, &mut out, false);
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests;
