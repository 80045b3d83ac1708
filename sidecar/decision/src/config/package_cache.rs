//! `[package_cache]`: the settings of the transparent package cache (the sidecar writes its
//! nginx includes and keeps its CA from them).

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use dockgate_policy::package_cache::PackageCache;
use serde::Deserialize;
use toml::Spanned;

use dockgate_policy::package_cache::CaSettings;

/// The rule sets of `nginx-conf/package-cache-http.conf`.
pub const RULE_SETS: &[&str] = &["apt", "alpine", "pypi", "npm", "maven"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPackageCache {
    dir: Option<String>,
    address: Option<Spanned<String>>,
    ca_lifetime: Option<Spanned<String>>,
    system_bundle: Option<String>,
    nginx_pid_file: Option<String>,
    log_socket: Option<String>,
    opt_out_label: Option<String>,
    #[serde(default)]
    hosts: Vec<RawHost>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    rules: Spanned<String>,
    origin: Option<String>,
    origin_http: Option<String>,
    #[serde(default)]
    cache_credentials: bool,
}

/// One cached hostname.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub rules: String,
    /// Where HTTPS requests go (`host:port`; default `name:443`).
    pub origin: String,
    /// Where plain HTTP requests go (default `name:80`).
    pub origin_http: String,
    /// Requests with an `Authorization` header are cached too (default: never).
    pub cache_credentials: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub ca: CaSettings,
    pub address: String,
    pub nginx_pid_file: Option<PathBuf>,
    pub log_socket: Option<PathBuf>,
    pub opt_out_label: String,
    pub hosts: Vec<Host>,
}

impl Settings {
    /// What the `package-cache` policy writes into creates.
    pub fn policy(&self) -> PackageCache {
        PackageCache {
            hosts: self.hosts.iter().map(|h| h.name.clone()).collect(),
            address: self.address.clone(),
            bundle: self.ca.dir.join("bundle.pem").display().to_string(),
            opt_out_label: self.opt_out_label.clone(),
        }
    }
}

/// `30s`, `90m`, `24h`, `7d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        })
}

/// Checks `[package_cache]`; `err(span, key, message)` collects problems.
pub fn parse(raw: &RawPackageCache, err: &mut dyn FnMut(Range<usize>, &str, String)) -> Settings {
    let lifetime = match &raw.ca_lifetime {
        None => Duration::from_secs(24 * 3600),
        Some(l) => match parse_duration(l.get_ref()) {
            // Shorter lifetimes are for tests; the CA is meant to live hours to days.
            Some(d) if d >= Duration::from_secs(60) => d,
            _ => {
                err(
                    l.span(),
                    "package_cache.ca_lifetime",
                    format!(
                        "{:?} is not a duration of 1m or more (30m, 24h, 3d)",
                        l.get_ref()
                    ),
                );
                Duration::from_secs(24 * 3600)
            }
        },
    };
    let address = match &raw.address {
        None => "127.0.0.1".to_string(),
        Some(a) => {
            if a.get_ref().parse::<std::net::IpAddr>().is_err() {
                err(
                    a.span(),
                    "package_cache.address",
                    format!("{:?} is not an IP address", a.get_ref()),
                );
            }
            a.get_ref().clone()
        }
    };
    let mut hosts: Vec<Host> = Vec::new();
    for (i, h) in raw.hosts.iter().enumerate() {
        let name = h.name.get_ref().to_ascii_lowercase();
        if !valid_hostname(&name) {
            err(
                h.name.span(),
                &format!("package_cache.hosts[{i}].name"),
                format!("{:?} is not a hostname", h.name.get_ref()),
            );
        } else if hosts.iter().any(|o| o.name == name) {
            err(
                h.name.span(),
                &format!("package_cache.hosts[{i}].name"),
                format!("{name:?} is listed twice"),
            );
        }
        if !RULE_SETS.contains(&h.rules.get_ref().as_str()) {
            err(
                h.rules.span(),
                &format!("package_cache.hosts[{i}].rules"),
                format!(
                    "unknown rule set {:?} (known: {})",
                    h.rules.get_ref(),
                    RULE_SETS.join(", ")
                ),
            );
        }
        hosts.push(Host {
            origin: h.origin.clone().unwrap_or_else(|| format!("{name}:443")),
            origin_http: h
                .origin_http
                .clone()
                .unwrap_or_else(|| format!("{name}:80")),
            name,
            rules: h.rules.get_ref().clone(),
            cache_credentials: h.cache_credentials,
        });
    }
    let dir = PathBuf::from(
        raw.dir
            .clone()
            .unwrap_or_else(|| "/var/lib/dockgate/package-cache".into()),
    );
    Settings {
        ca: CaSettings {
            dir,
            lifetime,
            hosts: hosts.iter().map(|h| h.name.clone()).collect(),
            system_bundle: PathBuf::from(
                raw.system_bundle
                    .clone()
                    .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into()),
            ),
        },
        address,
        nginx_pid_file: raw.nginx_pid_file.clone().map(PathBuf::from),
        log_socket: raw.log_socket.clone().map(PathBuf::from),
        opt_out_label: raw
            .opt_out_label
            .clone()
            .unwrap_or_else(|| "dockgate.package-cache".into()),
        hosts,
    }
}

/// Parses a `[package_cache]` table given on its own (its keys at the top level); problems
/// come as `key: message`.
pub fn parse_table(text: &str) -> Result<(Settings, Vec<String>), toml::de::Error> {
    let raw: RawPackageCache = toml::from_str(text)?;
    let mut errors = Vec::new();
    let settings = parse(&raw, &mut |_, key, msg| {
        errors.push(format!("{key}: {msg}"))
    });
    Ok((settings, errors))
}

#[cfg(test)]
mod tests;
