//! Raw API clients, byte for byte: hijacks with and without `Upgrade`, half-closes in both
//! directions, and follow streams that must stay ordinary chunked responses.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dockgate_tests::docker::Container;
use dockgate_tests::nginx::{tls, Flavor, Gateway, SYSTEM_DOCKERD};
use dockgate_tests::raw::{self, demux, exec_create, exec_start, Conn, Head, Target};
use dockgate_tests::wait_until;

fn direct() -> Target {
    Target::Unix(PathBuf::from(SYSTEM_DOCKERD))
}

/// Every way in: dockerd itself, and the gateway over TCP and unix socket on both builds.
fn targets(gateways: &[Gateway]) -> Vec<(String, Target)> {
    let mut t = vec![("direct".to_string(), direct())];
    for gw in gateways {
        let f = gw.opts.flavor;
        t.push((format!("{f}-tcp"), Target::Tcp(gw.port)));
        t.push((format!("{f}-unix"), Target::Unix(gw.unix_socket.clone())));
    }
    t
}

fn gateways() -> Vec<Gateway> {
    Flavor::ALL.into_iter().map(Gateway::start).collect()
}

/// Exec `sh -c 'cat; sleep 0.3; echo done'`: stdin, half-close, output after the half-close.
fn exec_with_stdin(target: &Target, container: &str, upgrade: bool) -> (Head, Vec<u8>) {
    let id = exec_create(
        target,
        container,
        &["sh", "-c", "cat; sleep 0.3; echo done"],
        true,
    );
    let (mut conn, head) = exec_start(target, &id, upgrade);
    conn.write_all(b"hello-stdin\n").unwrap();
    conn.shutdown_write().unwrap();
    let body = conn.read_all().unwrap();
    (head, body)
}

#[test]
fn exec_without_upgrade_is_a_200_hijack_with_half_close() {
    let gws = gateways();
    let c = Container::start("raw200");
    for (label, target) in targets(&gws) {
        let (head, body) = exec_with_stdin(&target, &c.name, false);
        assert_eq!(head.status, 200, "{label}: {}", head.raw);
        assert_eq!(
            head.header("content-type"),
            Some("application/vnd.docker.raw-stream"),
            "{label}: {}",
            head.raw
        );
        assert_eq!(
            head.header("transfer-encoding"),
            None,
            "{label}: {}",
            head.raw
        );
        assert_eq!(head.header("content-length"), None, "{label}: {}", head.raw);
        assert_ne!(head.header("connection"), Some("keep-alive"), "{label}");
        let (stdout, stderr) = demux(&body);
        assert_eq!(
            String::from_utf8_lossy(&stdout),
            "hello-stdin\ndone\n",
            "{label}"
        );
        assert!(stderr.is_empty(), "{label}");
    }
    for gw in &gws {
        let log = gw.access_log();
        assert!(
            log.contains("hijack=raw-stream half_close=to_upstream"),
            "{}: {log}",
            gw.opts.flavor
        );
    }
}

#[test]
fn exec_with_upgrade_is_a_101_with_half_close() {
    let gws = gateways();
    let c = Container::start("raw101");
    for (label, target) in targets(&gws) {
        let (head, body) = exec_with_stdin(&target, &c.name, true);
        assert_eq!(head.status, 101, "{label}: {}", head.raw);
        assert_eq!(head.header("upgrade"), Some("tcp"), "{label}: {}", head.raw);
        let (stdout, _) = demux(&body);
        assert_eq!(
            String::from_utf8_lossy(&stdout),
            "hello-stdin\ndone\n",
            "{label}"
        );
    }
    for gw in &gws {
        assert!(gw
            .access_log()
            .contains("hijack=upgrade half_close=to_upstream"));
    }
}

#[test]
fn attach_without_upgrade_relays_both_ways_before_any_close() {
    let gws = gateways();
    let c = Container::start_on(SYSTEM_DOCKERD, "rawattach", &["cat"]);
    for (label, target) in targets(&gws) {
        let mut conn = Conn::connect(&target).unwrap();
        conn.send_request(
            "POST",
            &format!(
                "/v1.41/containers/{}/attach?stream=1&stdin=1&stdout=1&stderr=1",
                c.id
            ),
            &[],
            "",
        )
        .unwrap();
        let head = conn.read_head().unwrap();
        assert_eq!(head.status, 200, "{label}: {}", head.raw);
        assert_eq!(
            head.header("content-type"),
            Some("application/vnd.docker.raw-stream"),
            "{label}"
        );
        for word in ["ping", "pong"] {
            conn.write_all(format!("{word}\n").as_bytes()).unwrap();
            let mut frame = vec![0u8; 8 + word.len() + 1];
            conn.read_exact(&mut frame).unwrap();
            let (stdout, _) = demux(&frame);
            assert_eq!(
                String::from_utf8_lossy(&stdout),
                format!("{word}\n"),
                "{label}"
            );
        }
        // Closing stdin ends the attach session (dockerd's rule): we must see EOF.
        conn.shutdown_write().unwrap();
        assert!(conn.read_all().unwrap().is_empty(), "{label}");
    }
}

#[test]
fn upstream_close_first_is_relayed_as_a_half_close_to_the_client() {
    let gws = gateways();
    let c = Container::start("rawmirror");
    for (label, target) in targets(&gws) {
        let id = exec_create(&target, &c.name, &["sh", "-c", "echo bye"], true);
        let (mut conn, head) = exec_start(&target, &id, false);
        assert_eq!(head.status, 200, "{label}");
        // Our write side stays open: the output and then EOF must still arrive.
        let body = conn.read_all().unwrap();
        let (stdout, _) = demux(&body);
        assert_eq!(String::from_utf8_lossy(&stdout), "bye\n", "{label}");
        drop(conn);
    }
    for gw in &gws {
        assert!(wait_until(Duration::from_secs(5), || gw
            .metric("dockgate_hijacked_streams_active")
            == 0));
        assert!(gw.metric("dockgate_half_closes_total{direction=\"to_client\"}") >= 1);
        assert!(wait_until(Duration::from_secs(5), || gw
            .access_log()
            .contains("half_close=to_client")));
    }
}

#[test]
fn logs_follow_stays_a_chunked_response() {
    let gws = gateways();
    let c = Container::start_on(
        SYSTEM_DOCKERD,
        "rawlogs",
        &["sh", "-c", "for i in 1 2 3; do echo log$i; sleep 0.2; done"],
    );
    for gw in &gws {
        let target = Target::Tcp(gw.port);
        let before = gw.metrics();
        let mut conn = Conn::connect(&target).unwrap();
        conn.send_request(
            "GET",
            &format!("/v1.41/containers/{}/logs?follow=1&stdout=1", c.id),
            &["Connection: close"],
            "",
        )
        .unwrap();
        let head = conn.read_head().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(
            head.header("transfer-encoding"),
            Some("chunked"),
            "{}",
            head.raw
        );
        let body = raw::dechunk(&conn.read_all().unwrap());
        let (stdout, _) = demux(&body);
        assert_eq!(String::from_utf8_lossy(&stdout), "log1\nlog2\nlog3\n");
        // Not counted as a hijack.
        let after = gw.metrics();
        let total = |m: &str| {
            m.lines()
                .filter(|l| l.starts_with("dockgate_hijacked_streams_total"))
                .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
                .sum::<u64>()
        };
        assert_eq!(total(&before), total(&after));
        assert!(gw
            .access_log()
            .contains("/logs?follow=1&stdout=1 HTTP/1.1\" 200"));
    }
}

#[test]
fn engine_down_is_a_docker_shaped_error() {
    let dir = dockgate_tests::TempDir::new("nodockerd").unwrap();
    let gw = Gateway::start_with(dockgate_tests::nginx::GatewayOptions {
        dockerd: dir.path().join("missing.sock"),
        ..dockgate_tests::nginx::GatewayOptions::new(Flavor::Debian)
    });
    let (status, body) = raw::call(&Target::Tcp(gw.port), "GET", "/v1.41/info", "").unwrap();
    assert_eq!(status, 502);
    assert!(
        body.starts_with(
            "{\"message\":\"dockgate: the Docker engine behind this gateway is unreachable"
        ),
        "{body}"
    );
}

#[test]
fn empty_host_is_accepted_on_unix_sockets_only() {
    // Docker's Go clients send `Host:` empty on hijack requests over unix sockets.
    let gws = gateways();
    let c = Container::start("emptyhost");
    for gw in &gws {
        for (label, target, status) in [
            ("unix", Target::Unix(gw.unix_socket.clone()), 201),
            ("tcp", Target::Tcp(gw.port), 400),
        ] {
            let mut conn = Conn::connect(&target).unwrap();
            let body = "{\"Cmd\":[\"true\"]}";
            let req = format!(
                "POST /v1.41/containers/{}/exec HTTP/1.1\r\nHost: \r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                c.name,
                body.len()
            );
            conn.write_all(req.as_bytes()).unwrap();
            let head = conn.read_head().unwrap();
            assert_eq!(
                head.status, status,
                "{} {label}: {}",
                gw.opts.flavor, head.raw
            );
        }
    }
}

#[test]
fn tls_upstream_close_first_reaches_the_client_as_close_notify() {
    // openssl s_client keeps reading while its stdin (our pipe) stays open: only the
    // gateway's close_notify, relaying dockerd's close, can end it.
    let gws = gateways();
    let c = Container::start("tlsmirror");
    let tls = tls();
    for gw in &gws {
        let id = exec_create(
            &Target::Tcp(gw.port),
            &c.name,
            &["sh", "-c", "echo bye"],
            true,
        );
        let body = "{\"Detach\":false,\"Tty\":false}";
        let req = format!(
            "POST /v1.41/exec/{id}/start HTTP/1.1\r\nHost: docker\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut client = Command::new("openssl")
            .args(["s_client", "-quiet", "-connect"])
            .arg(format!("127.0.0.1:{}", gw.tls_port))
            .arg("-cert")
            .arg(tls.client_dir.join("cert.pem"))
            .arg("-key")
            .arg(tls.client_dir.join("key.pem"))
            .arg("-CAfile")
            .arg(&tls.ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client");
        let mut stdin = client.stdin.take().unwrap();
        stdin.write_all(req.as_bytes()).unwrap();
        let started = Instant::now();
        let ended = wait_until(Duration::from_secs(10), || {
            matches!(client.try_wait(), Ok(Some(_)))
        });
        if !ended {
            let _ = client.kill();
        }
        let mut out = Vec::new();
        client.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        drop(stdin);
        let _ = client.wait();
        assert!(
            ended,
            "{}: the TLS client was not told the stream ended ({:?})",
            gw.opts.flavor,
            started.elapsed()
        );
        let (stdout, _) = demux(&out[out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..]);
        assert_eq!(
            String::from_utf8_lossy(&stdout),
            "bye\n",
            "{}",
            gw.opts.flavor
        );
        assert!(gw.metric("dockgate_half_closes_total{direction=\"to_client\"}") >= 1);
    }
}
