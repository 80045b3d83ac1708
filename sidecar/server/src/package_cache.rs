//! `[package_cache]`: the nginx includes the sidecar writes from its settings (parsed with
//! the configuration, in `dockgate-decision`), and the cache's hit/miss counters.
//!
//! Metrics design: nginx logs each cache request (`access_log syslog:server=unix:...`) as one
//! datagram to a unix socket the sidecar owns; the sidecar counts them by rule set, host and
//! `$upstream_cache_status` and serves the totals with its other metrics. No file is tailed,
//! nothing is stored, and a sidecar that is down only loses counts (nginx never blocks on a
//! syslog send).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use dockgate_ca as ca;
pub use dockgate_decision::config::package_cache::Settings;

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
