//! The `Authorization` nginx sends a mirror's upstream: none, Basic with the mirror's
//! credentials, or a bearer token for the repository's pull scope, fetched from the realm of
//! the upstream's challenge (with the credentials, or anonymously as Docker Hub allows) and
//! kept until shortly before it expires. The challenge is learnt from the upstream's `/v2/`
//! and kept for a while.
//!
//! Failures are not refusals: the decision goes out without an `Authorization`, so what the
//! cache holds is still served while the upstream or its token endpoint is down (and an
//! upstream that is up answers 401, which nginx reports in the registry's shape).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dockgate_registry::mirror::{password_of_file, Credentials, Mirror, Password};
use dockgate_registry::upstream::{
    parse_challenge, parse_token_answer, pull_scope, token_url, usable_for, Challenge,
};

/// How long one request to an upstream or its token endpoint may take (nginx waits 10 s
/// for the whole decision).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a learnt challenge is trusted; a failed probe is retried after `RETRY`.
const CHALLENGE_TTL: Duration = Duration::from_secs(600);
const RETRY: Duration = Duration::from_secs(5);
/// Tokens kept, at most (one per mirror and repository).
const MAX_TOKENS: usize = 4096;

#[derive(Default)]
pub struct UpstreamAuth {
    challenges: Mutex<HashMap<String, (Option<Challenge>, Instant)>>,
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
}

/// Token endpoints' answers and registries' `/v2/` are small.
const MAX_ANSWER: u64 = 1 << 20;

/// An HTTP client trusting the public roots, or the mirror's own CA bundle.
fn agent(ca: Option<&str>) -> Result<ureq::Agent, String> {
    let mut config = ureq::Agent::config_builder()
        .timeout_global(Some(REQUEST_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(3);
    if let Some(path) = ca {
        let pem = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(format!("{path}: no certificate in it"));
        }
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
                .build(),
        );
    }
    Ok(config.build().new_agent())
}

/// GET `url` with `authorization`: status, `WWW-Authenticate`, body.
fn get(
    url: &str,
    authorization: Option<&str>,
    ca: Option<&str>,
) -> Result<(u16, Option<String>, Vec<u8>), String> {
    let mut req = agent(ca)?.get(url);
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    let mut resp = req.call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok((status, challenge, body))
}

/// The mirror's password, from its configuration or read from its file now.
fn password(m: &Mirror, c: &Credentials) -> Option<String> {
    match &c.password {
        Password::Inline(p) => Some(p.clone()),
        Password::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some(password_of_file(&text).to_string()),
            Err(e) => {
                tracing::warn!(mirror = %m.namespace, file = %path, error = %e, "the mirror's password file cannot be read");
                None
            }
        },
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())?
}

impl UpstreamAuth {
    /// The `Authorization` for pulling `repository` (its name at the upstream) from `m`.
    pub async fn authorization(&self, m: &Mirror, repository: &str) -> Option<String> {
        let challenge = self.challenge(m).await?;
        match challenge {
            Challenge::Anonymous => None,
            Challenge::Basic => {
                let c = m.credentials.as_ref()?;
                Some(c.basic(&password(m, c)?))
            }
            Challenge::Bearer { realm, service } => {
                self.token(m, repository, &realm, service.as_deref()).await
            }
        }
    }

    async fn challenge(&self, m: &Mirror) -> Option<Challenge> {
        let now = Instant::now();
        if let Ok(known) = self.challenges.lock() {
            if let Some((c, at)) = known.get(&m.namespace) {
                let ttl = if c.is_some() { CHALLENGE_TTL } else { RETRY };
                if now.duration_since(*at) < ttl {
                    return c.clone();
                }
            }
        }
        let url = format!("{}/v2/", m.origin.url());
        let ca = m.ca.clone();
        let probed = blocking(move || get(&url, None, ca.as_deref())).await;
        let learnt = match &probed {
            Ok((200, _, _)) => Some(Challenge::Anonymous),
            Ok((401, Some(h), _)) => parse_challenge(h),
            _ => None,
        };
        if learnt.is_none() {
            tracing::warn!(mirror = %m.namespace, answer = ?probed.map(|(s, c, _)| (s, c)), "the upstream's /v2/ gave no usable challenge");
        }
        if let Ok(mut known) = self.challenges.lock() {
            known.insert(m.namespace.clone(), (learnt.clone(), now));
        }
        learnt
    }

    async fn token(
        &self,
        m: &Mirror,
        repository: &str,
        realm: &str,
        service: Option<&str>,
    ) -> Option<String> {
        let key = (m.namespace.clone(), repository.to_string());
        let now = Instant::now();
        if let Ok(tokens) = self.tokens.lock() {
            if let Some((t, until)) = tokens.get(&key) {
                if *until > now {
                    return Some(format!("Bearer {t}"));
                }
            }
        }
        let url = token_url(realm, service, &pull_scope(repository));
        let basic = match &m.credentials {
            Some(c) => Some(c.basic(&password(m, c)?)),
            None => None,
        };
        let ca = m.ca.clone();
        let answer = blocking(move || get(&url, basic.as_deref(), ca.as_deref())).await;
        let token = match &answer {
            Ok((200, _, body)) => parse_token_answer(body),
            _ => None,
        };
        let Some(token) = token else {
            tracing::warn!(
                mirror = %m.namespace,
                repository,
                answer = ?answer.map(|(s, _, b)| (s, String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned())),
                "the upstream's token endpoint gave no token"
            );
            // The challenge may have moved: learn it again next time.
            if let Ok(mut known) = self.challenges.lock() {
                known.remove(&m.namespace);
            }
            return None;
        };
        if let Ok(mut tokens) = self.tokens.lock() {
            if tokens.len() >= MAX_TOKENS {
                tokens.retain(|_, (_, until)| *until > now);
                if tokens.len() >= MAX_TOKENS {
                    tokens.clear();
                }
            }
            tokens.insert(key, (token.token.clone(), now + usable_for(token.lifetime)));
        }
        Some(format!("Bearer {}", token.token))
    }
}
