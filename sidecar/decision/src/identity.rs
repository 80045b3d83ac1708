//! Who is calling: the identity nginx's transport establishes (a verified client
//! certificate, a token, the unix user a relayed listener passes, or the listener's
//! anonymous role). No I/O.

use dockgate_api::refusal::{Refusal, Status};

use crate::config::{token_hash, Config};
use crate::jobs::JobKey;
use crate::peer::parse_peer_address;

/// The caller, as established from the transport (nginx passes what it verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub role: String,
}

/// What nginx tells the sidecar about the connection a request came on.
#[derive(Clone, Debug, Default)]
pub struct Transport<'a> {
    /// The `X-Dockgate-Listener` name the server block sets.
    pub listener: &'a str,
    /// nginx's `$ssl_client_verify` (`SUCCESS` when a client certificate was verified).
    pub client_verify: Option<&'a str>,
    /// nginx's `$ssl_client_fingerprint` (SHA-1, hex).
    pub client_fingerprint: Option<&'a str>,
    /// The `Authorization` header (`Bearer TOKEN`, or `Basic` with the token as password).
    pub authorization: Option<&'a str>,
    /// nginx's `$proxy_protocol_addr` on a listener the sidecar relays: the caller's unix
    /// credentials, as [`crate::peer::peer_address`] wrote them.
    pub peer: Option<&'a str>,
}

/// Establishes the caller: a verified client certificate, then a token, then (on a listener
/// the sidecar relays) the unix user, then the listener's anonymous role.
pub fn identify(config: &Config, t: &Transport<'_>) -> Result<Identity, Refusal> {
    let Some(listener) = config.listeners.get(t.listener) else {
        return Err(Refusal::new(
            Status::Forbidden,
            format!(
                "unknown listener {:?} (the gateway is misconfigured)",
                t.listener
            ),
        ));
    };
    if t.client_verify == Some("SUCCESS") {
        if let Some(fp) = t.client_fingerprint {
            let fp = fp.replace(':', "").to_ascii_lowercase();
            if let Some(u) = config
                .users
                .iter()
                .find(|u| u.cert_fingerprints.contains(&fp))
            {
                return Ok(Identity {
                    user: u.name.clone(),
                    role: u.role.clone(),
                });
            }
            return Err(Refusal::new(
                Status::Forbidden,
                "this client certificate belongs to no user of this gateway",
            ));
        }
    }
    if let Some(token) = t.authorization.and_then(token_of) {
        let hash = token_hash(&token);
        return match config.users.iter().find(|u| u.token_sha256.contains(&hash)) {
            Some(u) => Ok(Identity {
                user: u.name.clone(),
                role: u.role.clone(),
            }),
            None => Err(Refusal::new(Status::Unauthorized, "invalid token")),
        };
    }
    let mut anonymous = "anonymous".to_string();
    if listener.relay.is_some() {
        let Some(peer) = t.peer.and_then(parse_peer) else {
            return Err(Refusal::new(
                Status::Forbidden,
                format!(
                    "listener {:?} is relayed by the sidecar, but nginx passed no peer \
                     credentials (its internal listener needs `proxy_protocol`)",
                    t.listener
                ),
            ));
        };
        let peer = match peer {
            Peer::Unix(peer) => peer,
            Peer::Job(key) => return job_identity(config, &key),
        };
        if let Some(u) = config.users.iter().find(|u| u.uids.contains(&peer.uid)) {
            return Ok(Identity {
                user: u.name.clone(),
                role: u.role.clone(),
            });
        }
        anonymous = format!("anonymous (uid {})", peer.uid);
        if listener.anonymous_role.is_none() {
            return Err(Refusal::new(
                Status::Unauthorized,
                format!(
                    "unix user {} is not a user of this gateway (add the uid to a user's \
                     `uids`), and listener {:?} allows no anonymous access",
                    peer.uid, t.listener
                ),
            ));
        }
    }
    match &listener.anonymous_role {
        Some(role) => Ok(Identity {
            user: anonymous,
            role: role.clone(),
        }),
        None => Err(Refusal::new(
            Status::Unauthorized,
            "authentication required: use a client certificate or a token",
        )),
    }
}

/// A relayed connection's caller: a unix user, or a CI job's socket.
enum Peer {
    Unix(crate::peer::PeerAddress),
    Job(JobKey),
}

fn parse_peer(text: &str) -> Option<Peer> {
    match JobKey::from_peer_address(text) {
        Some(key) => Some(Peer::Job(key)),
        None => parse_peer_address(text).map(Peer::Unix),
    }
}

/// A CI job: its socket's role, in its own namespace (`Config::tenant_of` knows the user).
fn job_identity(config: &Config, key: &JobKey) -> Result<Identity, Refusal> {
    match config.job_role(key) {
        Some(role) => Ok(Identity {
            user: key.user(),
            role: role.name.clone(),
        }),
        None => Err(Refusal::new(
            Status::Forbidden,
            "this CI job's role is no longer configured (the gateway's job_socket roles \
             changed since the job started)",
        )),
    }
}

/// The token of a `Bearer` header, or the password of a `Basic` one.
fn token_of(header: &str) -> Option<String> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(value.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = dockgate_api::base64::decode(value.trim())?;
        let text = String::from_utf8(decoded).ok()?;
        return text.split_once(':').map(|(_, p)| p.to_string());
    }
    None
}
