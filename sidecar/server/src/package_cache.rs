//! `[package_cache]`: the settings of the transparent package cache, the nginx includes the
//! sidecar writes from them, and the cache's hit/miss counters.
//!
//! Metrics design: nginx logs each cache request (`access_log syslog:server=unix:...`) as one
//! datagram to a unix socket the sidecar owns; the sidecar counts them by rule set, host and
//! `$upstream_cache_status` and serves the totals with its other metrics. No file is tailed,
//! nothing is stored, and a sidecar that is down only loses counts (nginx never blocks on a
//! syslog send).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use dockgate_policy::package_cache::PackageCache;
use serde::Deserialize;
use toml::Spanned;

use dockgate_ca::{self as ca, CaSettings};

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

// === nginx includes ===

/// `nginx-http.conf` (http context): which rule set and origin each hostname uses.
pub fn nginx_http_conf(s: &Settings) -> String {
    let mut c = String::from(
        "# Written by dockgate from [package_cache]; do not edit (it is rewritten at start).\n",
    );
    c += "map $host $dockgate_pkgcache_rules {\n    default \"\";\n";
    for h in &s.hosts {
        let _ = writeln!(c, "    {} {};", h.name, h.rules);
    }
    c += "}\nmap $host $dockgate_pkgcache_credentials {\n    default 0;\n";
    for h in s.hosts.iter().filter(|h| h.cache_credentials) {
        let _ = writeln!(c, "    {} 1;", h.name);
    }
    c += "}\nmap \"$scheme://$host\" $dockgate_pkgcache_upstream {\n    default \"\";\n";
    for (i, h) in s.hosts.iter().enumerate() {
        let _ = writeln!(c, "    \"https://{}\" dockgate_pkgcache_{i}_https;", h.name);
        let _ = writeln!(c, "    \"http://{}\" dockgate_pkgcache_{i}_http;", h.name);
    }
    c += "}\n";
    for (i, h) in s.hosts.iter().enumerate() {
        for (scheme, origin) in [("https", &h.origin), ("http", &h.origin_http)] {
            let _ = writeln!(
                c,
                "upstream dockgate_pkgcache_{i}_{scheme} {{ server {origin}; keepalive 16; }}"
            );
        }
    }
    c
}

/// `nginx-server.conf` (server context): the certificate to serve and where to log.
pub fn nginx_server_conf(s: &Settings) -> String {
    let mut c = String::from(
        "# Written by dockgate from [package_cache]; do not edit (it is rewritten at start).\n",
    );
    let _ = writeln!(
        c,
        "ssl_certificate {};\nssl_certificate_key {};",
        s.ca.dir.join("server.pem").display(),
        s.ca.dir.join("server.key").display()
    );
    if let Some(sock) = &s.log_socket {
        let _ = writeln!(
            c,
            "access_log syslog:server=unix:{},nohostname,tag=dockgate_pkgcache dockgate_pkgcache;",
            sock.display()
        );
    }
    c
}

/// Makes sure the CA, certificates, bundle and nginx includes exist and are current.
/// Returns whether nginx must reload.
pub fn prepare(s: &Settings, force_rotate: bool) -> anyhow::Result<bool> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut changed = ca::ensure(&s.ca, now, force_rotate)?;
    for (name, text) in [
        ("nginx-http.conf", nginx_http_conf(s)),
        ("nginx-server.conf", nginx_server_conf(s)),
    ] {
        let path = s.ca.dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            ca::write_file(&path, text.as_bytes(), 0o644)?;
            changed = true;
        }
    }
    Ok(changed)
}

/// [`prepare`], then a graceful nginx reload if something changed and nginx is known.
pub fn prepare_and_reload(s: &Settings, force_rotate: bool) -> anyhow::Result<bool> {
    let changed = prepare(s, force_rotate)?;
    if changed {
        if let Some(pid_file) = &s.nginx_pid_file {
            if pid_file.exists() {
                ca::reload_nginx(pid_file)?;
            }
        }
    }
    Ok(changed)
}

/// How often the serving sidecar checks whether a rotation is due.
pub fn check_interval(s: &Settings) -> Duration {
    (s.ca.lifetime / 50).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

// === impl Stats ===

/// (rule set, host, `$upstream_cache_status`).
type Series = (String, String, String);

/// Cache outcomes by series: (requests, body bytes).
#[derive(Default)]
pub struct Stats {
    counts: Mutex<BTreeMap<Series, (u64, u64)>>,
}

/// Statuses whose body came from the cache.
const FROM_CACHE: &[&str] = &["HIT", "STALE", "UPDATING", "REVALIDATED"];

impl Stats {
    /// Counts one syslog line: `... dockgate_pkgcache: RULES HOST STATUS BYTES`.
    pub fn record_line(&self, line: &str) -> bool {
        let Some((_, msg)) = line.split_once("dockgate_pkgcache: ") else {
            return false;
        };
        let f: Vec<&str> = msg.split_whitespace().collect();
        let [rules, host, status, bytes] = f.as_slice() else {
            return false;
        };
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 253
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        };
        let Ok(bytes) = bytes.parse::<u64>() else {
            return false;
        };
        if !ok(rules) || !ok(host) || !ok(status) {
            return false;
        }
        // Requests that never reached the cache logic (no upstream) log `-`.
        let status = if *status == "-" { "NONE" } else { status };
        if let Ok(mut c) = self.counts.lock() {
            let e = c
                .entry((rules.to_string(), host.to_string(), status.to_string()))
                .or_default();
            e.0 += 1;
            e.1 += bytes;
        }
        true
    }

    pub fn render(&self) -> String {
        let Ok(c) = self.counts.lock() else {
            return String::new();
        };
        if c.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        out += "# HELP dockgate_pkgcache_requests_total Package cache requests by rule set, host and nginx cache status.\n";
        out += "# TYPE dockgate_pkgcache_requests_total counter\n";
        for ((r, h, s), (n, _)) in c.iter() {
            let _ = writeln!(
                out,
                "dockgate_pkgcache_requests_total{{rules=\"{r}\",host=\"{h}\",status=\"{s}\"}} {n}"
            );
        }
        out += "# HELP dockgate_pkgcache_bytes_total Body bytes served, from the cache or from the origin.\n";
        out += "# TYPE dockgate_pkgcache_bytes_total counter\n";
        let mut by_source: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
        let mut ratio: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
        for ((r, h, s), (n, b)) in c.iter() {
            let cached = FROM_CACHE.contains(&s.as_str());
            let source = if cached { "cache" } else { "upstream" };
            *by_source.entry((r, h, source)).or_default() += b;
            let e = ratio.entry((r, h)).or_default();
            if cached {
                e.0 += n;
            }
            if s != "NONE" && s != "BYPASS" {
                e.1 += n;
            }
        }
        for ((r, h, source), b) in &by_source {
            let _ = writeln!(
                out,
                "dockgate_pkgcache_bytes_total{{rules=\"{r}\",host=\"{h}\",source=\"{source}\"}} {b}"
            );
        }
        out += "# HELP dockgate_pkgcache_hit_ratio Cacheable requests answered from the cache (HIT, STALE, UPDATING, REVALIDATED).\n";
        out += "# TYPE dockgate_pkgcache_hit_ratio gauge\n";
        for ((r, h), (hits, all)) in &ratio {
            if *all > 0 {
                let _ = writeln!(
                    out,
                    "dockgate_pkgcache_hit_ratio{{rules=\"{r}\",host=\"{h}\"}} {:.4}",
                    *hits as f64 / *all as f64
                );
            }
        }
        out
    }
}

/// Receives nginx's syslog datagrams on `path` until the process ends. Like the sidecar's
/// socket, it is for its owner and the group of the Docker socket (nginx's workers).
pub async fn receive_logs(path: PathBuf, dockerd: &Path, stats: &Stats) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(&path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let sock = tokio::net::UnixDatagram::bind(&path)?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o660))?;
    if let Ok(meta) = std::fs::metadata(dockerd) {
        // Best effort, as for the sidecar's own socket.
        let _ = std::os::unix::fs::chown(
            &path,
            None,
            Some(std::os::unix::fs::MetadataExt::gid(&meta)),
        );
    }
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).await?;
        let line = String::from_utf8_lossy(&buf[..n]);
        if !stats.record_line(&line) {
            tracing::debug!(line = %line, "package cache: unreadable log datagram");
        }
    }
}

/// The settings' directory for messages.
pub fn describe(s: &Settings) -> String {
    format!(
        "package cache: {} host(s), CA in {}, lifetime {} s",
        s.hosts.len(),
        s.ca.dir.display(),
        s.ca.lifetime.as_secs()
    )
}

#[cfg(test)]
mod tests;
