//! Who is calling, and what they may do: the decision for one request (no I/O).

use dockgate_api::endpoints::{self, Endpoint, Method, Route};
use dockgate_api::uri::{canonicalize, CanonicalUri};
use dockgate_policy::gojson::Value;
use dockgate_policy::rules::{conservative, Request};

use crate::config::{token_hash, Config, Role};
use crate::relay::parse_peer_address;

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
    /// credentials, as [`crate::relay::peer_address`] wrote them.
    pub peer: Option<&'a str>,
}

/// A refused request, with the status dockerd's clients expect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
    /// The policy rule that refused, if one did.
    pub rule: Option<&'static str>,
}

impl Refusal {
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: format!("dockgate: {}", message.into()),
            rule: None,
        }
    }

    /// A refusal worded exactly as dockerd words it (no `dockgate:`): another tenant's
    /// object must look missing, not forbidden.
    pub(crate) fn new_plain(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            rule: None,
        }
    }

    /// The Docker-shaped error body: `{"message": "dockgate: ..."}`, ASCII only so it can
    /// travel in a header.
    pub fn json(&self) -> String {
        let text = serde_json::to_string(&serde_json::json!({ "message": self.message }))
            .unwrap_or_else(|_| "{\"message\":\"dockgate: refused\"}".into());
        text.chars()
            .map(|c| {
                if c.is_ascii() {
                    c.to_string()
                } else {
                    let mut buf = [0u16; 2];
                    c.encode_utf16(&mut buf)
                        .iter()
                        .map(|u| format!("\\u{u:04x}"))
                        .collect()
                }
            })
            .collect()
    }
}

/// An allowed request: where nginx sends it, and with which URI.
#[derive(Debug)]
pub struct Allowed {
    pub uri: CanonicalUri,
    pub endpoint: &'static Endpoint,
    /// The endpoint's `{id}`/`{name*}` value.
    pub param: Option<String>,
    /// Through the sidecar (which reads the body) rather than straight to dockerd.
    pub mediated: bool,
    /// The `[policy.inject]` settings go into this request's body (a create by an `inject`
    /// role).
    pub inject: bool,
    /// The package cache is injected into this request's body (a create by a `package-cache`
    /// role).
    pub package_cache: bool,
}

/// Establishes the caller: a verified client certificate, then a token, then (on a listener
/// the sidecar relays) the unix user, then the listener's anonymous role.
pub fn identify(config: &Config, t: &Transport<'_>) -> Result<Identity, Refusal> {
    let Some(listener) = config.listeners.get(t.listener) else {
        return Err(Refusal::new(
            403,
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
                403,
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
            None => Err(Refusal::new(401, "invalid token")),
        };
    }
    let mut anonymous = "anonymous".to_string();
    if listener.relay.is_some() {
        let Some(peer) = t.peer.and_then(parse_peer_address) else {
            return Err(Refusal::new(
                403,
                format!(
                    "listener {:?} is relayed by the sidecar, but nginx passed no peer \
                     credentials (its internal listener needs `proxy_protocol`)",
                    t.listener
                ),
            ));
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
                401,
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
            401,
            "authentication required: use a client certificate or a token",
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
        let decoded = base64_decode(value.trim())?;
        let text = String::from_utf8(decoded).ok()?;
        return text.split_once(':').map(|(_, p)| p.to_string());
    }
    None
}

pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// Decides on a request. `body` is `None` when deciding from the head alone (nginx's
/// `auth_request`), and the parsed body on the mediated route.
pub fn decide(
    config: &Config,
    who: &Identity,
    method: &str,
    raw_uri: &str,
    body: Option<&Value>,
) -> Result<Allowed, Refusal> {
    let uri = canonicalize(raw_uri).map_err(|e| Refusal::new(400, e.to_string()))?;
    let found = Method::parse(method).and_then(|m| endpoints::find(m, &uri));
    let Some(found) = found else {
        return Err(Refusal::new(
            403,
            format!(
                "{method} {} is not an allowed Docker API endpoint",
                uri.path()
            ),
        ));
    };
    let endpoint = found.endpoint;
    let Some(role) = config.roles.get(&who.role) else {
        return Err(Refusal::new(
            403,
            format!("role {:?} is not configured", who.role),
        ));
    };
    if !role.kinds.contains(&endpoint.kind) {
        return Err(Refusal::new(
            403,
            format!(
                "role {} may not use {} endpoints ({method} {})",
                role.name,
                endpoint.kind.as_str(),
                endpoint.template
            ),
        ));
    }
    let mediated = endpoint.route == Route::Mediated && role_reads_bodies(role);
    let null = Value::Null;
    // Query rules apply from the head; body rules once the body is there.
    if role.conservative && (body.is_some() || !mediated) {
        let req = Request {
            template: endpoint.template,
            query: &uri.query,
            body: body.unwrap_or(&null),
        };
        let role_settings;
        let settings = if role.allow_host_network {
            role_settings = dockgate_policy::rules::Conservative {
                allow_host_network: true,
                ..config.conservative.clone()
            };
            &role_settings
        } else {
            &config.conservative
        };
        conservative(&req, settings).map_err(|r| Refusal {
            status: 403,
            message: format!("dockgate: {}", r.message),
            rule: Some(r.rule),
        })?;
    }
    Ok(Allowed {
        uri,
        endpoint,
        param: found.param,
        mediated,
        inject: role.inject && endpoint.template == "/containers/create",
        package_cache: role.package_cache && endpoint.template == "/containers/create",
    })
}

/// Whether a role has body policies (then its privilege-carrying requests are mediated).
fn role_reads_bodies(role: &Role) -> bool {
    role.conservative || role.inject || role.package_cache
}

#[cfg(test)]
mod tests;
