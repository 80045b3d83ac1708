//! Registry metrics: approved requests by action and kind (counted when deciding), and the
//! cache's answers by kind and cache status with their bytes, which nginx reports once each
//! answer is complete: its `access_log` writes one line per answer of the cache locations to
//! `syslog:server=unix:<stats_socket>`, a datagram socket the sidecar reads. No log file
//! is written or tailed; a datagram lost while the sidecar restarts is a sample lost.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::app::AppState;
use dockgate_registry::access::Action;
use dockgate_registry::decide::KINDS;

/// The marker that starts the message of each line nginx sends.
pub const MARKER: &str = "dockgate-registry-v1 ";

/// The cache statuses nginx's `$upstream_cache_status` takes.
const CACHE_STATUSES: [&str; 7] = [
    "MISS",
    "BYPASS",
    "EXPIRED",
    "STALE",
    "UPDATING",
    "REVALIDATED",
    "HIT",
];

#[derive(Default)]
pub struct RegistryStats {
    /// (action, kind) -> approved requests.
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Registry error code -> refusals.
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    /// (kind, cache status) -> (answers, bytes).
    cache: Mutex<BTreeMap<(&'static str, &'static str), Answers>>,
}

/// (answers, bytes) of one kind and cache status.
type Answers = (u64, u64);

/// One cache answer as nginx reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheAnswer {
    pub kind: &'static str,
    pub status: &'static str,
    pub bytes: u64,
}

/// Reads `... dockgate-registry-v1 kind=blob cache=HIT bytes=123` (syslog framing before
/// the marker is ignored). Unknown kinds and statuses are dropped, so nothing a client
/// sends can grow the label sets.
pub fn parse_line(line: &str) -> Option<CacheAnswer> {
    let (_, msg) = line.split_once(MARKER)?;
    let (mut kind, mut status, mut bytes) = (None, None, None);
    for field in msg.split_whitespace() {
        match field.split_once('=')? {
            ("kind", k) => kind = KINDS.iter().find(|&&x| x == k).copied(),
            ("cache", s) => status = CACHE_STATUSES.iter().find(|&&x| x == s).copied(),
            ("bytes", b) => bytes = b.parse().ok(),
            _ => {}
        }
    }
    Some(CacheAnswer {
        kind: kind?,
        status: status?,
        bytes: bytes?,
    })
}

impl RegistryStats {
    pub fn approved(&self, action: Action, kind: &'static str) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((action.as_str(), kind)).or_default() += 1;
        }
    }

    pub fn refused(&self, code: &'static str) {
        if let Ok(mut m) = self.refusals.lock() {
            *m.entry(code).or_default() += 1;
        }
    }

    pub fn cache_answer(&self, a: &CacheAnswer) {
        if let Ok(mut m) = self.cache.lock() {
            let e = m.entry((a.kind, a.status)).or_default();
            e.0 += 1;
            e.1 += a.bytes;
        }
    }

    pub fn render(&self, out: &mut String) {
        let requests = self.requests.lock().map(|m| m.clone()).unwrap_or_default();
        let count = |pred: &dyn Fn(&(&str, &str)) -> bool| -> u64 {
            requests
                .iter()
                .filter(|(k, _)| pred(k))
                .map(|(_, n)| n)
                .sum()
        };
        *out += "# HELP dockgate_registry_pulls_total Manifests fetched (GET or HEAD) through the registry front-end.\n";
        *out += "# TYPE dockgate_registry_pulls_total counter\n";
        let pulls = count(&|(a, k)| *a == "pull" && k.starts_with("manifest_"));
        let _ = writeln!(out, "dockgate_registry_pulls_total {pulls}");
        *out += "# HELP dockgate_registry_pushes_total Manifests stored or deleted through the registry front-end.\n";
        *out += "# TYPE dockgate_registry_pushes_total counter\n";
        let pushes = count(&|(a, k)| *a == "push" && *k == "manifest");
        let _ = writeln!(out, "dockgate_registry_pushes_total {pushes}");
        *out += "# HELP dockgate_registry_requests_total Approved registry requests by action and kind.\n";
        *out += "# TYPE dockgate_registry_requests_total counter\n";
        for ((action, kind), n) in &requests {
            let _ = writeln!(
                out,
                "dockgate_registry_requests_total{{action=\"{action}\",kind=\"{kind}\"}} {n}"
            );
        }
        *out +=
            "# HELP dockgate_registry_refusals_total Refused registry requests by error code.\n";
        *out += "# TYPE dockgate_registry_refusals_total counter\n";
        if let Ok(m) = self.refusals.lock() {
            for (code, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "dockgate_registry_refusals_total{{code=\"{code}\"}} {n}"
                );
            }
        }
        *out += "# HELP dockgate_registry_cache_answers_total Answers of the pull-through cache by kind and cache status.\n";
        *out += "# TYPE dockgate_registry_cache_answers_total counter\n";
        let cache = self.cache.lock().map(|m| m.clone()).unwrap_or_default();
        for ((kind, status), (n, _)) in &cache {
            let _ = writeln!(
                out,
                "dockgate_registry_cache_answers_total{{kind=\"{kind}\",cache=\"{status}\"}} {n}"
            );
        }
        *out += "# HELP dockgate_registry_cache_bytes_total Body bytes the pull-through cache sent, by kind and cache status.\n";
        *out += "# TYPE dockgate_registry_cache_bytes_total counter\n";
        for ((kind, status), (_, b)) in &cache {
            let _ = writeln!(
                out,
                "dockgate_registry_cache_bytes_total{{kind=\"{kind}\",cache=\"{status}\"}} {b}"
            );
        }
    }
}

/// Binds the datagram socket nginx reports cache answers to, and counts them until the
/// process ends.
pub fn listen_stats(path: &Path, state: Arc<AppState>) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let socket = tokio::net::UnixDatagram::bind(path)?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            match socket.recv(&mut buf).await {
                Ok(n) => {
                    if let Some(a) = parse_line(&String::from_utf8_lossy(&buf[..n])) {
                        state.metrics.registry.cache_answer(&a);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "registry stats socket");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests;
