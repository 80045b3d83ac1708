//! Stream counters shared by all workers, and their Prometheus text rendering.
//!
//! The FFI layer places one [`Counters`] in an nginx shared memory zone; workers update it with
//! relaxed atomics (each counter is independent), and `dockgate_status` renders a snapshot.

use core::fmt::Write;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::hijack::Hijack;
use crate::tunnel::Dir;

/// Counters of hijacked streams. `repr(C)` and atomics only: it lives in shared memory.
#[repr(C)]
#[derive(Default)]
pub struct Counters {
    active: AtomicI64,
    streams: [AtomicU64; 3],
    bytes: [AtomicU64; 2],
    half_closes: [AtomicU64; 2],
    decisions: [AtomicU64; 3],
}

/// What became of a request the worker decided on (`dockgate_decide`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed = 0,
    Refused = 1,
    /// Handed to the sidecar, which asks the engine.
    Sidecar = 2,
}

impl Decision {
    pub const ALL: [Decision; 3] = [Decision::Allowed, Decision::Refused, Decision::Sidecar];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Refused => "refused",
            Decision::Sidecar => "sidecar",
        }
    }
}

impl Counters {
    pub fn stream_started(&self, kind: Hijack) {
        self.active.fetch_add(1, Relaxed);
        self.streams[kind.index()].fetch_add(1, Relaxed);
    }

    pub fn stream_ended(&self) {
        self.active.fetch_sub(1, Relaxed);
    }

    pub fn bytes(&self, dir: Dir, n: usize) {
        self.bytes[dir as usize].fetch_add(n as u64, Relaxed);
    }

    pub fn half_closed(&self, dir: Dir) {
        self.half_closes[dir as usize].fetch_add(1, Relaxed);
    }

    pub fn decided(&self, d: Decision) {
        self.decisions[d as usize].fetch_add(1, Relaxed);
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(1024);
        family(
            &mut out,
            "dockgate_hijacked_streams_active",
            "gauge",
            "Hijacked Docker streams being relayed now.",
            "",
            [("", self.active.load(Relaxed).max(0) as u64)],
        );
        family(
            &mut out,
            "dockgate_hijacked_streams_total",
            "counter",
            "Hijacked Docker streams switched to full-duplex relay, by kind.",
            "kind",
            Hijack::ALL.map(|k| (k.as_str(), self.streams[k.index()].load(Relaxed))),
        );
        family(
            &mut out,
            "dockgate_hijacked_bytes_total",
            "counter",
            "Bytes relayed on hijacked streams, by direction.",
            "direction",
            Dir::BOTH.map(|d| (d.as_str(), self.bytes[d as usize].load(Relaxed))),
        );
        family(
            &mut out,
            "dockgate_half_closes_total",
            "counter",
            "Write sides shut after an EOF was relayed, by direction.",
            "direction",
            Dir::BOTH.map(|d| (d.as_str(), self.half_closes[d as usize].load(Relaxed))),
        );
        family(
            &mut out,
            "dockgate_worker_decisions_total",
            "counter",
            "Requests nginx's workers decided on (dockgate_decide), by outcome; \"sidecar\": \
             handed to the sidecar, which needs the engine for them.",
            "outcome",
            Decision::ALL.map(|d| (d.as_str(), self.decisions[d as usize].load(Relaxed))),
        );
        out
    }
}

/// One metric family, split by `label` (no label when it is empty).
fn family<const N: usize>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    samples: [(&str, u64); N],
) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    for (value, n) in samples {
        if label.is_empty() {
            let _ = writeln!(out, "{name} {n}");
        } else {
            let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series() {
        let c = Counters::default();
        c.stream_started(Hijack::MultiplexedStream);
        c.stream_started(Hijack::Upgrade);
        c.stream_ended();
        c.bytes(Dir::ToClient, 100);
        c.bytes(Dir::ToUpstream, 7);
        c.half_closed(Dir::ToUpstream);
        c.decided(Decision::Allowed);
        c.decided(Decision::Sidecar);
        let text = c.render();
        for line in [
            "dockgate_hijacked_streams_active 1",
            "dockgate_hijacked_streams_total{kind=\"upgrade\"} 1",
            "dockgate_hijacked_streams_total{kind=\"raw-stream\"} 0",
            "dockgate_hijacked_streams_total{kind=\"multiplexed-stream\"} 1",
            "dockgate_hijacked_bytes_total{direction=\"to_client\"} 100",
            "dockgate_hijacked_bytes_total{direction=\"to_upstream\"} 7",
            "dockgate_half_closes_total{direction=\"to_upstream\"} 1",
            "dockgate_half_closes_total{direction=\"to_client\"} 0",
            "# TYPE dockgate_hijacked_streams_active gauge",
            "dockgate_worker_decisions_total{outcome=\"allowed\"} 1",
            "dockgate_worker_decisions_total{outcome=\"refused\"} 0",
            "dockgate_worker_decisions_total{outcome=\"sidecar\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with('\n'));
    }
}
