//! `/_dockgate/registry-auth`: nginx's `auth_request` target for the registry front-end.
//!
//! Contract: 204 allows, with `X-Dockgate-Uri` (path and query on the hosted registry),
//! `X-Dockgate-Upstream-Uri` (on the proxied upstream, for pulls the group may answer from
//! there), `X-Dockgate-Registry-Kind`, `X-Dockgate-Fallback` (the named location for a
//! hosted 404), `X-Dockgate-Cache-Key`, `X-Dockgate-Registry-Accept` (the manifest class
//! of all the client's `Accept` lines), `X-Dockgate-User`, `X-Dockgate-First` (`hosted`,
//! or the group location a mirror goes to directly), `X-Dockgate-Origin`,
//! `X-Dockgate-Origin-Host` and `X-Dockgate-Origin-Tls-Name` (the upstream nginx fetches
//! from) and `X-Dockgate-Upstream-Authorization` (what it sends there). 401 and
//! 403 refuse, with the real status in `X-Dockgate-Status`, the registry error body in
//! `X-Dockgate-Error` and, for 401, the Basic challenge in `X-Dockgate-Challenge`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use dockgate_registry::decide::{accept_class, decide, Ask, Caller, Identities, Refused};

use crate::app::AppState;
use dockgate_decision::config::{token_hash, User};

/// Callers: `[[users]]` by token, and the gateway's one-pull credentials.
struct Callers<'a> {
    users: &'a [User],
    grants: &'a super::Grants,
}

impl Identities for Callers<'_> {
    fn basic(&self, user: &str, secret: &str) -> Option<Caller> {
        if let Some(c) = self.grants.caller(user, secret) {
            return Some(c);
        }
        let hash = token_hash(secret);
        self.users
            .iter()
            .find(|u| u.name == user && u.token_sha256.contains(&hash))
            .map(|u| Caller {
                name: u.name.clone(),
                tenant: u.tenant.clone(),
                only: None,
                anonymous: false,
            })
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

pub async fn registry_auth(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let ask = Ask {
        method: header(&headers, "x-original-method").unwrap_or(""),
        uri: header(&headers, "x-original-uri").unwrap_or(""),
        team: header(&headers, "x-dockgate-registry-team").unwrap_or(""),
        authorization: header(&headers, "authorization"),
    };
    let decision = match &s.config.registry {
        Some(reg) => decide(
            reg,
            &Callers {
                users: &s.config.users,
                grants: &s.registry.grants,
            },
            &ask,
        ),
        None => Err(Refused {
            status: 403,
            code: "DENIED",
            message: "dockgate: the registry front-end is not configured ([registry] table)".into(),
            challenge: None,
        }),
    };
    match decision {
        Ok(a) => {
            tracing::info!(
                target: "dockgate::audit",
                user = %a.user,
                team = ask.team,
                method = ask.method,
                uri = ask.uri,
                repository = %a.name,
                action = a.action.as_str(),
                verdict = "allow",
                "registry decision"
            );
            s.metrics.registry.approved(a.action, a.kind);
            let upstream_authorization = match (&a.mirror, &a.upstream_name, &s.config.registry) {
                (Some(ns), Some(name), Some(reg)) => match reg.mirrors.0.get(ns) {
                    Some(m) => s.registry.upstream_auth.authorization(m, name).await,
                    None => None,
                },
                _ => None,
            };
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            set(h, "x-dockgate-uri", &a.hosted_uri);
            if let Some(u) = &a.upstream_uri {
                set(h, "x-dockgate-upstream-uri", u);
            }
            set(h, "x-dockgate-registry-kind", a.kind);
            set(h, "x-dockgate-fallback", a.fallback);
            set(h, "x-dockgate-cache-key", &a.cache_key);
            let accepts = headers
                .get_all("accept")
                .iter()
                .filter_map(|v| v.to_str().ok());
            set(h, "x-dockgate-registry-accept", accept_class(accepts));
            set(h, "x-dockgate-user", &a.user);
            set(h, "x-dockgate-first", &a.first);
            set(h, "x-dockgate-origin", &a.origin);
            set(h, "x-dockgate-origin-host", &a.origin_host);
            set(h, "x-dockgate-origin-tls-name", &a.origin_tls_name);
            if let Some(auth) = &upstream_authorization {
                set(h, "x-dockgate-upstream-authorization", auth);
            }
            r
        }
        Err(refused) => {
            tracing::info!(
                target: "dockgate::audit",
                team = ask.team,
                method = ask.method,
                uri = ask.uri,
                verdict = "refuse",
                status = refused.status,
                code = refused.code,
                message = %refused.message,
                "registry decision"
            );
            s.metrics.registry.refused(refused.code);
            let status = if refused.status == 401 {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            let mut r = status.into_response();
            let h = r.headers_mut();
            set(h, "x-dockgate-status", &refused.status.to_string());
            set(h, "x-dockgate-error", &refused.json());
            if let Some(c) = &refused.challenge {
                set(h, "x-dockgate-challenge", c);
            }
            r
        }
    }
}

#[cfg(test)]
mod tests;
