//! How an upstream registry wants to be asked (pure): its `WWW-Authenticate` challenge on
//! `/v2/`, the token request the bearer flow makes (distribution's token spec, as Docker Hub,
//! GHCR and distribution with `auth: token` serve it) and the token endpoint's answer.

use std::time::Duration;

/// What `/v2/` answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// 200: pulls need nothing.
    Anonymous,
    /// `Basic realm=...`.
    Basic,
    /// `Bearer realm=...,service=...`: a token per repository scope, from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// The challenge of a 401's `WWW-Authenticate` value; `None` for schemes nobody uses.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(params);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let realm = get("realm").filter(|r| r.starts_with("http://") || r.starts_with("https://"))?;
    Some(Challenge::Bearer {
        realm,
        service: get("service"),
    })
}

/// `k="v",k2=v2` (RFC 7235 auth-params, quoted strings with `\` escapes).
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name.trim().to_string(), value.trim().to_string()));
    }
    out
}

/// The pull scope of a repository at the upstream.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The token request's URL: `realm?service=...&scope=...`.
pub fn token_url(realm: &str, service: Option<&str>, scope: &str) -> String {
    let mut url = realm.to_string();
    let mut sep = if realm.contains('?') { '&' } else { '?' };
    if let Some(s) = service {
        url.push(sep);
        url.push_str("service=");
        url.push_str(&query_escape(s));
        sep = '&';
    }
    url.push(sep);
    url.push_str("scope=");
    url.push_str(&query_escape(scope));
    url
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A token, and for how long it may be used.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub token: String,
    pub lifetime: Duration,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Token(<{} bytes>, {:?})",
            self.token.len(),
            self.lifetime
        )
    }
}

/// The spec's minimum and default lifetime.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// The token endpoint's JSON: `token` (or `access_token`), `expires_in` seconds (60 when
/// absent or smaller, as the spec says).
pub fn parse_token_answer(body: &[u8]) -> Option<Token> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = v
        .get("token")
        .or_else(|| v.get("access_token"))
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))?;
    let lifetime = v
        .get("expires_in")
        .and_then(|e| e.as_u64())
        .map(Duration::from_secs)
        .filter(|d| *d >= DEFAULT_LIFETIME)
        .unwrap_or(DEFAULT_LIFETIME);
    Some(Token {
        token: token.to_string(),
        lifetime,
    })
}

/// How long before it expires a token is no longer handed out (a pull must have time to
/// use it: nginx fetches right after the decision, but a blob may take a while to start).
pub fn usable_for(lifetime: Duration) -> Duration {
    lifetime
        .saturating_sub(lifetime / 4)
        .max(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_of_the_registries_in_use() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm="http://127.0.0.1:9/token""#),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:9/token".into(),
                service: None
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        // A realm that is not a URL cannot be asked.
        assert_eq!(
            parse_challenge(r#"Bearer realm="file:///etc/passwd""#),
            None
        );
        assert_eq!(
            parse_params(r#" a="x\"y", b=z ,c="""#),
            vec![
                ("a".into(), "x\"y".into()),
                ("b".into(), "z".into()),
                ("c".into(), "".into())
            ]
        );
    }

    #[test]
    fn token_requests_and_answers() {
        assert_eq!(
            token_url("http://h/token", Some("reg istry"), &pull_scope("a/b")),
            "http://h/token?service=reg%20istry&scope=repository%3Aa%2Fb%3Apull"
        );
        assert_eq!(
            token_url("http://h/token?x=1", None, "s"),
            "http://h/token?x=1&scope=s"
        );
        let t = parse_token_answer(br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!((t.token.as_str(), t.lifetime.as_secs()), ("abc", 300));
        let t = parse_token_answer(br#"{"access_token":"abc","expires_in":5}"#).unwrap();
        assert_eq!(t.lifetime.as_secs(), 60);
        assert_eq!(parse_token_answer(br#"{"token":"a b"}"#), None);
        assert_eq!(parse_token_answer(b"nope"), None);
        assert_eq!(usable_for(Duration::from_secs(300)).as_secs(), 225);
        assert_eq!(usable_for(Duration::from_secs(60)).as_secs(), 45);
    }
}
