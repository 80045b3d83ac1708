//! Decision counters and a latency histogram, in Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 8] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1];

#[derive(Default)]
pub struct Metrics {
    /// (verdict, kind, role) -> count.
    decisions: Mutex<BTreeMap<(&'static str, String, String), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
    /// The registry front-end's counters.
    pub registry: crate::registry::RegistryStats,
    /// The package cache's counters, fed by nginx's log datagrams.
    pub package_cache: crate::package_cache::Stats,
}

impl Metrics {
    pub fn decision(&self, verdict: &'static str, kind: &str, role: &str, took: Duration) {
        if let Ok(mut d) = self.decisions.lock() {
            *d.entry((verdict, kind.to_string(), role.to_string()))
                .or_default() += 1;
        }
        let secs = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(took.as_nanos() as u64, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out += "# HELP dockgate_decisions_total Decisions by verdict, endpoint kind and role.\n";
        out += "# TYPE dockgate_decisions_total counter\n";
        if let Ok(d) = self.decisions.lock() {
            for ((verdict, kind, role), n) in d.iter() {
                let _ = writeln!(
                    out,
                    "dockgate_decisions_total{{verdict=\"{verdict}\",kind=\"{kind}\",role=\"{role}\"}} {n}"
                );
            }
        }
        out += "# HELP dockgate_decision_seconds Time to decide on a request.\n";
        out += "# TYPE dockgate_decision_seconds histogram\n";
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "dockgate_decision_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(
            out,
            "dockgate_decision_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "dockgate_decision_seconds_sum {}",
            self.sum_nanos.load(Relaxed) as f64 / 1e9
        );
        let _ = writeln!(out, "dockgate_decision_seconds_count {count}");
        self.registry.render(&mut out);
        out += &self.package_cache.render();
        out
    }
}
