//! Mirrors: other registries the front-end serves through nginx's cache, each under a
//! namespace of its own. `[registry.mirrors.ghcr]` with `registry = "ghcr.io"` serves
//! `ghcr.io/acme/app` as `FRONT-END/ghcr/acme/app`; the Docker API gateway pulls
//! `ghcr.io/acme/app:1` that way when `[registry] pull_through` names the front-end, and
//! tags the result `ghcr.io/acme/app:1` (see the sidecar's `pull_through`).
//!
//! A mirror's namespace is a top-level name on every front-end: no team prefix applies, and
//! nothing is pushed there. Rights are on the namespaced name (`ghcr/acme/app`).

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::path::check_name;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMirror {
    registry: Spanned<String>,
    url: Spanned<String>,
    nginx_upstream: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    ca: Option<Spanned<String>>,
}

/// Where the upstream is, as nginx and the sidecar reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `host[:port]`, as in the `Host` header.
    pub authority: String,
    /// The host alone (TLS server name).
    pub host: String,
}

impl Origin {
    /// `scheme://host[:port]` with no path; `None` for anything else.
    pub fn parse(url: &str) -> Option<Origin> {
        let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
            ("https", r)
        } else if let Some(r) = url.strip_prefix("http://") {
            ("http", r)
        } else {
            return None;
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if !h.ends_with(']') || h.starts_with('[') => {
                if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                h
            }
            _ => authority,
        };
        let host_ok = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':')
            });
        host_ok.then(|| Origin {
            scheme,
            authority: authority.to_ascii_lowercase(),
            host: host.to_ascii_lowercase(),
        })
    }

    /// `scheme://authority`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

/// Where a mirror's password is: in the configuration, or in a file of its own (read when it
/// is used, so it can be rotated without a restart; a trailing newline is not part of it).
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    Inline(String),
    File(String),
}

/// The credentials the sidecar fetches with (Basic, or to ask the token endpoint).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Password,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.password {
            Password::Inline(_) => write!(f, "Credentials({:?}, <password>)", self.username),
            Password::File(p) => write!(f, "Credentials({:?}, <password in {p}>)", self.username),
        }
    }
}

impl Credentials {
    /// The `Authorization: Basic` value, with the password as read.
    pub fn basic(&self, password: &str) -> String {
        let pair = format!("{}:{password}", self.username);
        format!("Basic {}", dockgate_api::base64::encode(pair.as_bytes()))
    }
}

/// A password file's content as the password: without its trailing line end.
pub fn password_of_file(content: &str) -> &str {
    content.trim_end_matches(['\n', '\r'])
}

/// One mirrored registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// The front-end's top-level name for it (the table's key).
    pub namespace: String,
    /// The registry as image references name it (`ghcr.io`, `docker.io`, `host:port`).
    pub registry: String,
    /// Where it is: nginx's `Host` and TLS name, the sidecar's token requests.
    pub origin: Origin,
    /// The `upstream {}` block nginx fetches from.
    pub nginx_upstream: String,
    pub credentials: Option<Credentials>,
    /// A PEM bundle the sidecar trusts for this upstream and its token endpoint, instead of
    /// the public roots (a private registry's CA).
    pub ca: Option<String>,
}

impl Mirror {
    /// What nginx's `proxy_pass` takes: `scheme://nginx_upstream`.
    pub fn proxy_pass(&self) -> String {
        format!("{}://{}", self.origin.scheme, self.nginx_upstream)
    }

    /// Content fetched with credentials may be what only they unlock: the cache keeps it per
    /// repository, so it is only served to callers who may pull that repository.
    pub fn private(&self) -> bool {
        self.credentials.is_some()
    }
}

/// The mirrors by namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirrors(pub BTreeMap<String, Mirror>);

impl Mirrors {
    /// The mirror a front-end name is in, and the name at the upstream
    /// (`ghcr/acme/app` → (ghcr's mirror, `acme/app`)).
    pub fn split<'n>(&self, name: &'n str) -> Option<(&Mirror, &'n str)> {
        let (first, rest) = name.split_once('/')?;
        self.0.get(first).map(|m| (m, rest))
    }

    /// The mirror of registry `domain` (as references name it: `docker.io` for Docker Hub).
    pub fn of_registry(&self, domain: &str) -> Option<&Mirror> {
        self.0.values().find(|m| m.registry == domain)
    }
}

fn valid_upstream_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A registry domain as references write it: lowercase host, optional port.
fn valid_registry(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let host_ok = !host.is_empty()
        && !host.starts_with(['.', '-'])
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'));
    let port_ok = port.map_or(true, |p| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
    });
    host_ok && port_ok
}

/// Checks the `[registry.mirrors]` tables; `err(span, key, message)` collects problems.
pub fn check(
    raw: &BTreeMap<String, Spanned<RawMirror>>,
    err: &mut dyn FnMut(Range<usize>, &str, String),
) -> Mirrors {
    let mut out = BTreeMap::new();
    for (namespace, spanned) in raw {
        let m = spanned.get_ref();
        let key = format!("registry.mirrors.{namespace}");
        if namespace.contains('/') || check_name(namespace).is_err() {
            let span = spanned.span();
            err(
                span.start + 1..span.end,
                &key,
                format!(
                    "{namespace:?} is not a namespace: one lowercase name component (like ghcr)"
                ),
            );
        }
        let registry = m.registry.get_ref().to_string();
        if !valid_registry(&registry) {
            err(
                m.registry.span(),
                &format!("{key}.registry"),
                format!("{registry:?} is not a registry as image references name it (host or host:port, lowercase)"),
            );
        }
        if let Some((other, _)) = out
            .iter()
            .find(|(_, o): &(&String, &Mirror)| o.registry == registry)
        {
            err(
                m.registry.span(),
                &format!("{key}.registry"),
                format!("{registry} is already mirrored by registry.mirrors.{other}"),
            );
        }
        let origin = Origin::parse(m.url.get_ref()).unwrap_or_else(|| {
            err(
                m.url.span(),
                &format!("{key}.url"),
                format!(
                    "{:?} is not http:// or https:// and a host, with no path",
                    m.url.get_ref()
                ),
            );
            Origin {
                scheme: "http",
                authority: String::new(),
                host: String::new(),
            }
        });
        let nginx_upstream = match &m.nginx_upstream {
            Some(u) => {
                if !valid_upstream_name(u.get_ref()) {
                    err(
                        u.span(),
                        &format!("{key}.nginx_upstream"),
                        format!(
                            "{:?} is not an nginx upstream name (letters, digits, _)",
                            u.get_ref()
                        ),
                    );
                }
                u.get_ref().clone()
            }
            None => format!("dockgate_mirror_{}", namespace.replace(['-', '.'], "_")),
        };
        let password = match (&m.password, &m.password_file) {
            (Some(p), None) => Some(Password::Inline(p.get_ref().clone())),
            (None, Some(f)) => {
                if !f.get_ref().starts_with('/') {
                    err(
                        f.span(),
                        &format!("{key}.password_file"),
                        format!("{:?} is not an absolute path", f.get_ref()),
                    );
                }
                Some(Password::File(f.get_ref().clone()))
            }
            (None, None) => None,
            (Some(_), Some(f)) => {
                err(
                    f.span(),
                    &format!("{key}.password_file"),
                    "give the password or a password file, not both".into(),
                );
                None
            }
        };
        let credentials = match (&m.username, password) {
            (Some(u), Some(password)) => Some(Credentials {
                username: u.get_ref().clone(),
                password,
            }),
            (None, None) => None,
            (Some(u), None) => {
                err(
                    u.span(),
                    &format!("{key}.username"),
                    "a username needs its password (key password or password_file)".into(),
                );
                None
            }
            (None, Some(_)) => {
                let span = m
                    .password
                    .as_ref()
                    .or(m.password_file.as_ref())
                    .map(|p| p.span())
                    .unwrap_or_default();
                err(
                    span,
                    &format!("{key}.password"),
                    "a password needs its username (key username)".into(),
                );
                None
            }
        };
        let ca = m.ca.as_ref().map(|c| {
            if !c.get_ref().starts_with('/') {
                err(
                    c.span(),
                    &format!("{key}.ca"),
                    format!("{:?} is not an absolute path (a PEM bundle)", c.get_ref()),
                );
            }
            c.get_ref().clone()
        });
        out.insert(
            namespace.clone(),
            Mirror {
                namespace: namespace.clone(),
                registry,
                origin,
                nginx_upstream,
                credentials,
                ca,
            },
        );
    }
    Mirrors(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_a_scheme_and_a_host() {
        let o = Origin::parse("https://GHCR.io/").unwrap();
        assert_eq!(
            (o.scheme, o.authority.as_str(), o.host.as_str()),
            ("https", "ghcr.io", "ghcr.io")
        );
        let o = Origin::parse("http://127.0.0.1:5002").unwrap();
        assert_eq!(
            (o.authority.as_str(), o.host.as_str()),
            ("127.0.0.1:5002", "127.0.0.1")
        );
        for bad in [
            "ftp://x",
            "https://",
            "https://x/v2/",
            "http://x:",
            "http://x:80a",
            "x.io",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_password_file_holds_the_password_without_its_line_end() {
        assert_eq!(password_of_file("s3cret\n"), "s3cret");
        assert_eq!(password_of_file("s3cret\r\n"), "s3cret");
        assert_eq!(password_of_file("with space \n"), "with space ");
        let c = Credentials {
            username: "robot".into(),
            password: Password::File("/run/secrets/p".into()),
        };
        assert_eq!(
            format!("{c:?}"),
            "Credentials(\"robot\", <password in /run/secrets/p>)"
        );
        assert_eq!(c.basic("pw"), "Basic cm9ib3Q6cHc=");
    }

    #[test]
    fn registries_are_hosts_with_an_optional_port() {
        for ok in [
            "ghcr.io",
            "docker.io",
            "127.0.0.1:5002",
            "localhost:5000",
            "a-b.c",
        ] {
            assert!(valid_registry(ok), "{ok}");
        }
        for bad in ["", "GHCR.io", "ghcr.io/x", "x:", "-x", "x:y"] {
            assert!(!valid_registry(bad), "{bad}");
        }
    }
}
