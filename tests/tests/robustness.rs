//! The gateway under stress: reloads, vanishing clients, a restarting engine, and hundreds
//! of concurrent streams.

use std::io::{Read, Write};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use dockgate_tests::docker::Container;
use dockgate_tests::engine::PrivateDockerd;
use dockgate_tests::nginx::{Flavor, Gateway, GatewayOptions, SYSTEM_DOCKERD};
use dockgate_tests::raw::{demux, exec_create, exec_start, Conn, Target};
use dockgate_tests::wait_until;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn active(gw: &Gateway) -> u64 {
    gw.metric("dockgate_hijacked_streams_active")
}

#[test]
fn reload_during_an_open_exec_stream_keeps_it_intact() {
    for flavor in Flavor::ALL {
        let gw = Gateway::start(flavor);
        let c = Container::start("reload");
        let target = Target::Tcp(gw.port);
        let id = exec_create(
            &target,
            &c.name,
            &[
                "sh",
                "-c",
                "for i in $(seq 1 30); do echo $i; sleep 0.1; done",
            ],
            false,
        );
        let workers_before = gw.worker_pids();
        let (mut conn, head) = exec_start(&target, &id, false);
        assert_eq!(head.status, 200);
        thread::sleep(Duration::from_millis(500));
        gw.signal("HUP");
        let body = conn.read_all().unwrap();
        let (stdout, _) = demux(&body);
        let expected: String = (1..=30).map(|i| format!("{i}\n")).collect();
        assert_eq!(String::from_utf8_lossy(&stdout), expected, "{flavor}");
        // dockerd's close reached us as a half-close; closing our side ends the stream, and
        // the old worker, now idle, exits.
        drop(conn);
        // New workers took over, and they serve.
        assert!(wait_until(Duration::from_secs(10), || {
            let now = gw.worker_pids();
            !now.is_empty() && now.iter().all(|p| !workers_before.contains(p))
        }));
        let (status, _) = dockgate_tests::raw::call(&target, "GET", "/_ping", "").unwrap();
        assert_eq!(status, 200);
    }
}

#[test]
fn clients_killed_mid_stream_leave_no_descriptor_behind() {
    let gw = Gateway::start_with(GatewayOptions {
        workers: 1,
        ..GatewayOptions::new(Flavor::Debian)
    });
    // A container that never stops writing; no log driver, so nothing piles up on disk.
    let c = Container::start_with(
        SYSTEM_DOCKERD,
        "flood",
        &["--log-driver", "none"],
        &["yes", "tick"],
    );
    let target = Target::Tcp(gw.port);
    let attach = format!(
        "/v1.41/containers/{}/attach?stream=1&stdout=1&stdin=1",
        c.id
    );
    let stream_and_vanish = |upgrade: bool| {
        let mut conn = Conn::connect(&target).unwrap();
        let headers: &[&str] = if upgrade {
            &["Connection: Upgrade", "Upgrade: tcp"]
        } else {
            &[]
        };
        conn.send_request("POST", &attach, headers, "").unwrap();
        let head = conn.read_head().unwrap();
        assert!(head.status == 200 || head.status == 101, "{}", head.raw);
        let mut buf = [0u8; 4096];
        conn.read_exact(&mut buf).unwrap();
        // Dropped with unread data: the kernel answers with a reset, as for a killed client.
    };
    for i in 0..20 {
        stream_and_vanish(i % 2 == 0);
    }
    let worker = gw.worker_pids()[0];
    assert!(wait_until(Duration::from_secs(10), || active(&gw) == 0));
    let before = open_fds(worker);

    let streams = 1000;
    thread::scope(|s| {
        for t in 0..4 {
            let stream_and_vanish = &stream_and_vanish;
            s.spawn(move || {
                for i in 0..streams / 4 {
                    stream_and_vanish((t + i) % 2 == 0);
                }
            });
        }
    });

    assert!(
        wait_until(Duration::from_secs(30), || active(&gw) == 0),
        "streams still active: {}",
        gw.metrics()
    );
    assert!(
        wait_until(Duration::from_secs(10), || open_fds(worker) <= before),
        "worker {worker} holds {} descriptors, {before} before {streams} streams",
        open_fds(worker)
    );
    assert_eq!(gw.worker_pids(), vec![worker], "the worker was replaced");
    let total: u64 = ["upgrade", "multiplexed-stream", "raw-stream"]
        .iter()
        .map(|k| gw.metric(&format!("dockgate_hijacked_streams_total{{kind=\"{k}\"}}")))
        .sum();
    assert_eq!(total, streams as u64 + 20);
}

#[test]
fn engine_restart_mid_stream_closes_the_client_and_spares_the_worker() {
    let mut engine = PrivateDockerd::start();
    let gw = Gateway::start_with(GatewayOptions {
        dockerd: engine.socket.clone(),
        ..GatewayOptions::new(Flavor::Debian)
    });
    let c = Container::start_with(&engine.socket_str(), "restart", &[], &["sleep", "3600"]);
    let target = Target::Tcp(gw.port);
    let id = exec_create(
        &target,
        &c.name,
        &["sh", "-c", "while true; do echo tick; sleep 0.1; done"],
        false,
    );
    let workers = gw.worker_pids();
    let (mut conn, head) = exec_start(&target, &id, false);
    assert_eq!(head.status, 200);
    let mut first = [0u8; 8];
    conn.read_exact(&mut first).unwrap();

    let stopped = Instant::now();
    engine.stop();
    conn.set_timeout(Some(Duration::from_secs(20))).unwrap();
    let rest = conn.read_all();
    assert!(
        rest.is_ok(),
        "the client did not see the stream end: {rest:?} after {:?}",
        stopped.elapsed()
    );
    drop(conn);
    assert!(wait_until(Duration::from_secs(10), || active(&gw) == 0));
    assert_eq!(gw.worker_pids(), workers, "a worker died");

    engine.restart();
    let up = wait_until(Duration::from_secs(20), || {
        dockgate_tests::raw::call(&target, "GET", "/_ping", "").is_ok_and(|(s, _)| s == 200)
    });
    assert!(
        up,
        "no answer through the gateway after the engine restarted"
    );
    drop(c);
}

#[test]
fn three_hundred_concurrent_exec_streams_all_complete() {
    let gw = Gateway::start(Flavor::Debian);
    let c = Container::start("concurrent");
    let n = 300;
    let target = Target::Tcp(gw.port);
    let ids: Vec<String> = (0..n)
        .map(|_| exec_create(&target, &c.name, &["sh", "-c", "read x; echo got-$x"], true))
        .collect();
    let opened = Arc::new(Barrier::new(n + 1));
    let release = Arc::new(Barrier::new(n + 1));
    let handles: Vec<_> = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let (target, opened, release) = (target.clone(), opened.clone(), release.clone());
            thread::spawn(move || {
                let (mut conn, head) = exec_start(&target, &id, i % 2 == 0);
                opened.wait();
                release.wait();
                assert!(head.status == 200 || head.status == 101, "{}", head.raw);
                conn.write_all(format!("{i}\n").as_bytes()).unwrap();
                conn.shutdown_write().unwrap();
                let (stdout, _) = demux(&conn.read_all().unwrap());
                String::from_utf8_lossy(&stdout).into_owned()
            })
        })
        .collect();
    opened.wait();
    let concurrent = active(&gw);
    release.wait();
    let outputs: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, out) in outputs.iter().enumerate() {
        assert_eq!(out, &format!("got-{i}\n"), "stream {i}");
    }
    assert_eq!(concurrent, n as u64, "streams open at once");
    assert!(wait_until(Duration::from_secs(10), || active(&gw) == 0));
}
