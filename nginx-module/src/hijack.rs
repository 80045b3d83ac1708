//! Which upstream answers are Docker hijacks (pure: no nginx types, unit-tested).
//!
//! dockerd takes over the connection ("hijacks" it) in two shapes:
//! - `101 Switching Protocols` with `Upgrade: tcp` (attach, exec start) or `Upgrade: h2c`
//!   (BuildKit `/session`, `/grpc`), when the client asked for an upgrade;
//! - `200 OK` with `Content-Type: application/vnd.docker.raw-stream` or
//!   `application/vnd.docker.multiplexed-stream` and neither `Content-Length` nor
//!   `Transfer-Encoding`, for clients that did not ask (older SDKs, curl scripts).
//!
//! `docker logs -f` answers carry the same media types but are ordinary chunked responses:
//! they are not hijacks, and the endpoint check below keeps them so even if chunking were off.

/// How a response hijacked its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hijack {
    /// `101` answer to a client `Upgrade` request (nginx itself enters upgraded mode).
    Upgrade,
    /// `200` with `application/vnd.docker.raw-stream` (TTY streams).
    RawStream,
    /// `200` with `application/vnd.docker.multiplexed-stream` (stdout/stderr framed).
    MultiplexedStream,
}

impl Hijack {
    /// All kinds, in the order used for metrics.
    pub const ALL: [Hijack; 3] = [
        Hijack::Upgrade,
        Hijack::RawStream,
        Hijack::MultiplexedStream,
    ];

    /// The value of `$dockgate_hijack` and of the `kind` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Hijack::Upgrade => "upgrade",
            Hijack::RawStream => "raw-stream",
            Hijack::MultiplexedStream => "multiplexed-stream",
        }
    }

    /// Index into [`Hijack::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What the header filter knows about an upstream answer.
#[derive(Clone, Copy, Debug)]
pub struct Response<'a> {
    pub status: usize,
    /// nginx already set `u->upgrade` (a `101` to a client that sent `Upgrade`).
    pub upgrade_accepted: bool,
    pub content_type: &'a [u8],
    pub has_content_length: bool,
    pub chunked: bool,
    /// The request path as nginx normalised it (`r->uri`).
    pub path: &'a [u8],
}

const RAW_STREAM: &[u8] = b"application/vnd.docker.raw-stream";
const MULTIPLEXED_STREAM: &[u8] = b"application/vnd.docker.multiplexed-stream";

/// Classifies an upstream answer; `None` means "an ordinary HTTP response, leave it alone".
pub fn classify(resp: &Response<'_>) -> Option<Hijack> {
    match resp.status {
        101 if resp.upgrade_accepted => Some(Hijack::Upgrade),
        200 if !resp.has_content_length && !resp.chunked && is_hijacking_endpoint(resp.path) => {
            match media_type(resp.content_type) {
                t if t.eq_ignore_ascii_case(RAW_STREAM) => Some(Hijack::RawStream),
                t if t.eq_ignore_ascii_case(MULTIPLEXED_STREAM) => Some(Hijack::MultiplexedStream),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The media type without parameters or surrounding blanks.
fn media_type(content_type: &[u8]) -> &[u8] {
    let end = content_type
        .iter()
        .position(|&b| b == b';')
        .unwrap_or(content_type.len());
    content_type[..end].trim_ascii()
}

/// `…/containers/{id}/attach` or `…/exec/{id}/start`, with or without `/vX.Y` or a location
/// prefix in front. A trailing slash is tolerated, as dockerd's router does.
pub fn is_hijacking_endpoint(path: &[u8]) -> bool {
    let path = path.strip_suffix(b"/").unwrap_or(path);
    let mut segments = path.rsplit(|&b| b == b'/');
    let (Some(action), Some(id), Some(collection)) =
        (segments.next(), segments.next(), segments.next())
    else {
        return false;
    };
    !id.is_empty()
        && matches!(
            (collection, action),
            (b"containers", b"attach") | (b"exec", b"start")
        )
}

#[cfg(test)]
mod tests;
