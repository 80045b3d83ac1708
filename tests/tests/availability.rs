//! Availability under hostile bodies: while 16 attackers send the costliest create bodies the
//! sidecar accepts to read (just under `max_body_bytes`: over a hundred thousand distinct
//! top-level keys, a Labels map as large, arrays nested to the sidecar's depth limit, one
//! byte over the limit) or trickle bodies slowly, every other client keeps being served:
//! `GET /_ping` answers within a second and never with 5xx, an ordinary `docker run` through
//! the gateway completes in a few seconds, and the sidecar's memory stays bounded.
//!
//! Four attacks: the costly bodies from one caller (anonymous, as the victim is: on the
//! loopback listener every local client without a token is that caller) and from 16 callers
//! (one token each); then slow senders as many as one caller may have bodies in flight (with
//! the costly bodies from the same caller), and as many as all callers together may (each
//! its own caller).
//!
//! Every create the attackers send names an image that does not exist, so a body that passes
//! the policy ends as dockerd's cheap 404: the Engine API's create never pulls (checked on
//! dockerd's socket first, and no image event for it afterwards) and nothing is created.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use dockgate_tests::docker::{docker_direct, run_script, Cli, Endpoint, Transport};
use dockgate_tests::nginx::{token_sha256, Flavor, Gateway, GatewayOptions, SYSTEM_DOCKERD};
use dockgate_tests::raw::{self, Conn, Target};
use dockgate_tests::{repo_root, unique_name, wait_until};

/// An image no test makes: creates naming it are answered 404 by dockerd, without a pull.
const MISSING_IMAGE: &str = "dg-no-such-image:never";
/// Attacker threads.
const ATTACKERS: usize = 16;
/// How long the attack lasts at least; it goes on until the victim's `docker run`s are done,
/// but never longer than [`ATTACK_CAP`].
const ATTACK: Duration = Duration::from_secs(8);
const ATTACK_CAP: Duration = Duration::from_secs(40);
/// The victim's `docker run`s under attack, at least.
const VICTIM_RUNS: usize = 2;
/// `GET /_ping` every so often, each under this.
const PING_EVERY: Duration = Duration::from_millis(50);
const PING_BOUND: Duration = Duration::from_secs(1);
/// An ordinary `docker run` under attack: under max(this, 3x its unloaded time).
const RUN_BOUND: Duration = Duration::from_secs(5);
/// The sidecar's resident memory, at most. The body gate (`body_gate.rs`) lets 4 bodies be
/// parsed at once, on at most 4 blocking threads; each thread's allocator arena keeps the
/// largest body it has built (text, tree, duplicate-check set, re-serialised text: up to
/// ~70 MiB for the bodies below), bodies still arriving cost their text only (16 × 1 MiB),
/// and the sidecar holds ~80 MiB after one body of each kind: about 400 MiB measured at
/// most, whatever the number of attackers (1 or 16). The bound leaves a quarter for noise.
const RSS_BOUND_KIB: u64 = 512 * 1024;
/// The sidecar's nesting limit (`gojson::MAX_DEPTH`, 32 levels): the body object and Cmd's
/// array are two of them.
const DEPTH: usize = 30;
/// A slow sender's pace: a piece every so often, so that a body at the limit takes about 20 s
/// (a real one can be far slower: nothing bounds it); it hangs up when the attack ends.
const TRICKLE_PIECES: usize = 200;
const TRICKLE_EVERY: Duration = Duration::from_millis(100);

/// `max_body_bytes` of the built-in configuration the harness starts the sidecar with.
fn body_limit() -> usize {
    let text = fs::read_to_string(repo_root().join("sidecar/decision/src/default.toml"))
        .expect("read default.toml");
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "max_body_bytes").then(|| v.trim().parse().ok())?
        })
        .expect("max_body_bytes in default.toml")
}

/// Short names over `alphabet`, shortest first: "a", "b", ..., "aa", "ab", ...
fn short_names(alphabet: &'static str) -> impl Iterator<Item = String> {
    let chars: Vec<char> = alphabet.chars().collect();
    (1u32..).flat_map(move |len| {
        let chars = chars.clone();
        let k = chars.len();
        (0..k.pow(len)).map(move |mut i| {
            let mut name = vec![' '; len as usize];
            for slot in name.iter_mut().rev() {
                *slot = chars[i % k];
                i /= k;
            }
            name.into_iter().collect()
        })
    })
}

/// `prefix`, then as many `items` as fit under `limit` bytes joined by commas, then `suffix`;
/// and how many items went in.
fn fill(
    limit: usize,
    prefix: &str,
    suffix: &str,
    items: impl Iterator<Item = String>,
) -> (String, usize) {
    let mut body = prefix.to_string();
    let mut n = 0;
    for item in items {
        let extra = item.len() + usize::from(n > 0);
        if body.len() + extra + suffix.len() >= limit {
            break;
        }
        if n > 0 {
            body.push(',');
        }
        body += &item;
        n += 1;
    }
    body += suffix;
    (body, n)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Distinct short keys at the top level (refused by the model, after the whole parse).
    Keys,
    /// A Labels map as large as fits (allowed: dockerd answers 404 for the image).
    Labels,
    /// Cmd made of arrays nested to the depth limit, as many as fit.
    Nested,
    /// One byte over the limit (413).
    Over,
    /// The Labels body, trickled.
    Slow,
}

/// The bodies that cost the most to read and check, each sent whole at once.
const COSTLY: [Kind; 4] = [Kind::Keys, Kind::Labels, Kind::Nested, Kind::Over];
/// With slow senders: a quarter of the attackers trickle (as many as one caller may have
/// bodies in flight), the others send the costly bodies.
const WITH_SLOW_SENDERS: [Kind; 4] = [Kind::Slow, Kind::Keys, Kind::Labels, Kind::Nested];
/// Half the attackers trickle, each as its own caller: as many as all callers together may
/// have bodies in flight.
const HALF_SLOW: [Kind; 8] = [
    Kind::Slow,
    Kind::Keys,
    Kind::Slow,
    Kind::Labels,
    Kind::Slow,
    Kind::Nested,
    Kind::Slow,
    Kind::Over,
];

/// The attack bodies, each just under the limit (`over` just over it).
struct Bodies {
    keys: String,
    labels: String,
    nested: String,
    over: String,
    counts: String,
}

impl Bodies {
    fn new(limit: usize) -> Bodies {
        // Struct fields match case-insensitively: lower-case keys are distinct fields. None
        // of them names a real field (those are refused or checked differently).
        let (keys, n_keys) = fill(
            limit,
            &format!("{{\"Image\":\"{MISSING_IMAGE}\","),
            "}",
            short_names("abcdefghijklmnopqrstuvwxyz0123456789_-.$@!#%&*+/:;<=>?^`|~ ")
                .filter(|k| !["cmd", "env", "tty"].contains(&k.as_str()))
                .map(|k| format!("\"{k}\":0")),
        );
        // Map keys match exactly: upper and lower case are distinct keys.
        let (labels, n_labels) = fill(
            limit,
            &format!("{{\"Image\":\"{MISSING_IMAGE}\",\"Cmd\":[\"true\"],\"Labels\":{{"),
            "}}",
            short_names(
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.$@!#%&*+/:;<=>?^`|~ ",
            )
            .map(|k| format!("\"{k}\":\"\"")),
        );
        let deep = "[".repeat(DEPTH) + &"]".repeat(DEPTH);
        let (nested, n_nested) = fill(
            limit,
            &format!("{{\"Image\":\"{MISSING_IMAGE}\",\"Cmd\":["),
            "]}",
            std::iter::repeat(deep),
        );
        let over = labels.clone() + &" ".repeat(limit + 1 - labels.len());
        let counts = format!(
            "keys: {n_keys} in {} bytes; labels: {n_labels} in {} bytes; nested: {n_nested} \
             arrays {DEPTH} deep in {} bytes; over: {} bytes",
            keys.len(),
            labels.len(),
            nested.len(),
            over.len()
        );
        Bodies {
            keys,
            labels,
            nested,
            over,
            counts,
        }
    }

    fn of(&self, kind: Kind) -> &str {
        match kind {
            Kind::Keys => &self.keys,
            Kind::Labels | Kind::Slow => &self.labels,
            Kind::Nested => &self.nested,
            Kind::Over => &self.over,
        }
    }
}

/// One create on its own connection: status and answer body. A slow sender sends the body in
/// [`TRICKLE_PIECES`] pieces and hangs up (an error) once `stop` is set.
fn post(
    target: &Target,
    token: Option<&str>,
    path: &str,
    body: &str,
    trickle: Option<&AtomicBool>,
) -> io::Result<(u16, String)> {
    let mut c = Conn::connect(target)?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(token) = token {
        head += &format!("Authorization: Bearer {token}\r\n");
    }
    head += "\r\n";
    c.write_all(head.as_bytes())?;
    match trickle {
        None => match c.write_all(body.as_bytes()) {
            // Answered (413) and closed before the last bytes: the answer is still there.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => other?,
        },
        Some(stop) => {
            let piece = body.len().div_ceil(TRICKLE_PIECES);
            for chunk in body.as_bytes().chunks(piece) {
                if stop.load(Ordering::Relaxed) {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "hung up"));
                }
                c.write_all(chunk)?;
                thread::sleep(TRICKLE_EVERY);
            }
        }
    }
    let head = c.read_head()?;
    let rest = c.read_all()?;
    let text = if head.header("transfer-encoding") == Some("chunked") {
        raw::dechunk(&rest)
    } else {
        rest
    };
    Ok((head.status, String::from_utf8_lossy(&text).into_owned()))
}

/// The sidecar's pid: the `dockgate serve --config <gateway dir>/sidecar.toml` process.
fn sidecar_pid(gw: &Gateway) -> u32 {
    let config = gw.dir.path().join("sidecar.toml");
    let config = config.to_string_lossy();
    let found = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_string_lossy().parse().ok()?;
            let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let serves = args.iter().any(|a| a == "serve")
                && args
                    .windows(2)
                    .any(|w| w[0] == "--config" && w[1] == config);
            serves.then_some(pid)
        })
        .collect::<Vec<_>>();
    assert_eq!(found.len(), 1, "sidecar processes for {config}: {found:?}");
    found[0]
}

/// A `VmRSS:`/`VmHWM:` line of /proc/PID/status, in KiB (0 once the process is gone).
fn status_kib(pid: u32, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// `docker run --rm` of busybox through the gateway (never pulling): its exit and wall time.
fn docker_run(gw: &Gateway, name: &str) -> (bool, Duration, String) {
    let endpoint = Endpoint::gateway(gw, Transport::Tcp);
    let started = Instant::now();
    let out = run_script(
        Cli::Current,
        &endpoint,
        "docker run --rm --pull never --network none --name \"$N\" busybox true",
        &[("N", name)],
        None,
    );
    (out.code == 0, started.elapsed(), out.to_string())
}

/// CPU seconds (user + system) a process has used: all its threads, and its main thread
/// alone (the sidecar's event loop: a current-thread runtime blocked on in `main`).
fn cpu_seconds(pid: u32) -> (f64, f64) {
    let ticks = |stat: String| -> f64 {
        // pid (comm) state ... utime is field 14, stime 15: 12th and 13th after the comm.
        let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
        let f: Vec<f64> = rest
            .split(' ')
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse().ok())
            .collect();
        f.iter().sum()
    };
    let hz: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    let read = |path: String| fs::read_to_string(path).unwrap_or_default();
    (
        ticks(read(format!("/proc/{pid}/stat"))) / hz,
        ticks(read(format!("/proc/{pid}/task/{pid}/stat"))) / hz,
    )
}

/// p50, p99 and max.
fn spread(mut xs: Vec<Duration>) -> (Duration, Duration, Duration) {
    xs.sort();
    let at = |q: usize| xs.get(xs.len() * q / 100).copied().unwrap_or_default();
    (at(50), at(99), xs.last().copied().unwrap_or_default())
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

/// Containers whose name starts with `prefix`, on dockerd's socket.
fn containers_named(prefix: &str) -> Vec<String> {
    docker_direct(&["ps", "-aq", "--filter", &format!("name=^/{prefix}")])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Before anything goes through the gateway: a create naming the missing image is answered
/// 404 by dockerd itself, with nothing pulled or created.
fn missing_image_is_a_cheap_404_on_the_socket() {
    let name = unique_name("nosuch");
    let direct = Target::Unix(SYSTEM_DOCKERD.into());
    let started = Instant::now();
    let (status, body) = raw::call(
        &direct,
        "POST",
        &format!("/v1.41/containers/create?name={name}"),
        &format!("{{\"Image\":\"{MISSING_IMAGE}\",\"Cmd\":[\"true\"]}}"),
    )
    .expect("create on dockerd's socket");
    let took = started.elapsed();
    assert_eq!(status, 404, "dockerd: {body}");
    assert!(body.contains("No such image"), "dockerd: {body}");
    assert!(took < Duration::from_secs(2), "the 404 took {took:?}");
    assert!(containers_named(&name).is_empty(), "{name} was created");
    let (status, _) = raw::call(
        &direct,
        "GET",
        &format!("/v1.41/images/{MISSING_IMAGE}/json"),
        "",
    )
    .expect("image inspect");
    assert_eq!(status, 404, "{MISSING_IMAGE} exists on dockerd");
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// dockerd logged no image event for the missing image since `since` (no pull was tried),
/// and the image still does not exist.
fn nothing_was_pulled(since: u64) {
    let events = docker_direct(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &(unix_now() + 1).to_string(),
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    let ours: Vec<&str> = events
        .lines()
        .filter(|l| l.contains(MISSING_IMAGE.split(':').next().unwrap_or(MISSING_IMAGE)))
        .collect();
    assert!(
        ours.is_empty(),
        "image events for {MISSING_IMAGE}: {ours:?}"
    );
    let (status, _) = raw::call(
        &Target::Unix(SYSTEM_DOCKERD.into()),
        "GET",
        &format!("/v1.41/images/{MISSING_IMAGE}/json"),
        "",
    )
    .expect("image inspect");
    assert_eq!(status, 404, "{MISSING_IMAGE} exists on dockerd");
}

/// Each body once, unloaded: it is read to its end (answered after the whole parse, not cut
/// short), and the level past the depth limit is refused, so the nested body is at the limit.
fn bodies_are_parsed_whole(gw: &Gateway, bodies: &Bodies, token: Option<&str>, limit: usize) {
    let target = Target::Tcp(gw.port);
    let path = "/v1.41/containers/create";
    for (kind, want, text) in [
        (Kind::Keys, 403, "unknown field"),
        (Kind::Labels, 404, "No such image"),
        // The policy passes it and dockerd refuses it (500 on 20.10); a policy refusing it
        // after the parse would do as well.
        (Kind::Nested, 0, ""),
        (Kind::Over, 413, "larger than"),
    ] {
        let started = Instant::now();
        let (status, answer) =
            post(&target, token, path, bodies.of(kind), None).expect("send an attack body");
        println!(
            "unloaded {kind:?}: {status} in {:?}: {}",
            started.elapsed(),
            answer.trim()
        );
        assert!(
            (want == 0 || status == want)
                && answer.contains(text)
                && !answer.contains("malformed JSON"),
            "{kind:?}: {status} {answer}"
        );
    }
    assert!(bodies.keys.len() < limit && bodies.labels.len() < limit);
    assert!(bodies.nested.len() < limit && bodies.over.len() == limit + 1);
    let too_deep = format!(
        "{{\"Image\":\"{MISSING_IMAGE}\",\"Cmd\":[{}{}]}}",
        "[".repeat(DEPTH + 1),
        "]".repeat(DEPTH + 1)
    );
    let (status, answer) = post(&target, token, path, &too_deep, None).expect("too deep");
    assert!(
        status == 400 && answer.contains("deeper than 32 levels"),
        "{} levels: {status} {answer}",
        DEPTH + 3
    );
}

/// What the attackers got, per kind: answers by status, errors, the slowest answer.
#[derive(Default, Debug)]
struct Tally {
    statuses: BTreeMap<u16, u32>,
    errors: u32,
    slowest: Duration,
}

/// The attack: attacker `i` sends `kinds[i % kinds.len()]` bodies, calling with
/// `tokens[i % tokens.len()]` (None: anonymous, as the victim is).
/// One attack at a time: each measures what the others would disturb (the test runner starts
/// this file's tests in parallel).
static ONE_ATTACK_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn attack_leaves_others_served(gw: &Gateway, tokens: &[Option<String>], kinds: &[Kind]) {
    let _alone = ONE_ATTACK_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let limit = body_limit();
    let since = unix_now();
    let pid = sidecar_pid(gw);
    let rss_idle = status_kib(pid, "VmRSS:");
    missing_image_is_a_cheap_404_on_the_socket();
    let bodies = Bodies::new(limit);
    println!("bodies: {}", bodies.counts);
    bodies_are_parsed_whole(gw, &bodies, tokens[0].as_deref(), limit);

    let victim = unique_name("victim");
    let attack_names = unique_name("atk");
    let unloaded: Vec<Duration> = (0..3)
        .map(|i| {
            let (ok, took, out) = docker_run(gw, &format!("{victim}-u{i}"));
            assert!(ok, "docker run, unloaded: {out}");
            took
        })
        .collect();
    let run_bound = RUN_BOUND.max(median(unloaded.clone()) * 3);
    let rss_before = status_kib(pid, "VmRSS:");
    println!(
        "unloaded docker run: {unloaded:?}; bound under attack {run_bound:?}; sidecar RSS \
         {rss_idle} KiB idle, {rss_before} KiB after one body of each kind"
    );

    let stop = AtomicBool::new(false);
    let tallies: Mutex<BTreeMap<Kind, Tally>> = Mutex::default();
    let pings: Mutex<Vec<(Duration, Result<u16, String>)>> = Mutex::default();
    // Controls, not asserted on: dockerd's own /_ping on its socket (how busy the machine
    // is), and the sidecar's auth decision for a /_ping asked on its socket (its event loop).
    let direct_pings: Mutex<Vec<Duration>> = Mutex::default();
    let auth_probes: Mutex<Vec<Duration>> = Mutex::default();
    let probe_failures: Mutex<Vec<String>> = Mutex::default();
    let peak_rss = Mutex::new(rss_before);
    let mut runs = Vec::new();
    let cpu_before = cpu_seconds(pid);
    let attack_started = Instant::now();
    thread::scope(|s| {
        for i in 0..ATTACKERS {
            let (stop, tallies, bodies) = (&stop, &tallies, &bodies);
            let token = tokens[i % tokens.len()].as_deref();
            let kind = kinds[i % kinds.len()];
            let target = Target::Tcp(gw.port);
            let names = &attack_names;
            s.spawn(move || {
                let trickle = (kind == Kind::Slow).then_some(stop);
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let path = format!("/v1.41/containers/create?name={names}-{i}-{n}");
                    let started = Instant::now();
                    let answer = post(&target, token, &path, bodies.of(kind), trickle);
                    let took = started.elapsed();
                    let mut t = tallies.lock().unwrap();
                    let tally = t.entry(kind).or_default();
                    match answer {
                        Ok((status, _)) => {
                            *tally.statuses.entry(status).or_default() += 1;
                            tally.slowest = tally.slowest.max(took);
                        }
                        Err(_) => tally.errors += 1,
                    }
                }
            });
        }
        s.spawn(|| {
            let target = Target::Tcp(gw.port);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answer = raw::call(&target, "GET", "/_ping", "")
                    .map(|(status, _)| status)
                    .map_err(|e| e.to_string());
                pings.lock().unwrap().push((started.elapsed(), answer));
                thread::sleep(PING_EVERY);
            }
        });
        for (probe, target, path, headers, times) in [
            (
                "dockerd",
                Target::Unix(SYSTEM_DOCKERD.into()),
                "/_ping",
                &[][..],
                &direct_pings,
            ),
            (
                "sidecar",
                Target::Unix(gw.dir.path().join("sidecar.sock")),
                "/_dockgate/auth",
                &[
                    "X-Original-Method: GET",
                    "X-Original-URI: /_ping",
                    "X-Dockgate-Listener: loopback",
                ][..],
                &auth_probes,
            ),
        ] {
            let (stop, failures) = (&stop, &probe_failures);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    match raw::call_with(&target, "GET", path, headers, "") {
                        Ok((200 | 204, _)) => times.lock().unwrap().push(started.elapsed()),
                        other => failures.lock().unwrap().push(format!("{probe}: {other:?}")),
                    }
                    thread::sleep(PING_EVERY);
                }
            });
        }
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let rss = status_kib(pid, "VmRSS:");
                let mut peak = peak_rss.lock().unwrap();
                *peak = (*peak).max(rss);
                drop(peak);
                thread::sleep(Duration::from_millis(20));
            }
        });
        // The victim: ordinary docker runs for as long as the attack lasts, at least two.
        thread::sleep(Duration::from_secs(1));
        while runs.len() < VICTIM_RUNS || attack_started.elapsed() < ATTACK {
            if attack_started.elapsed() > ATTACK_CAP {
                break;
            }
            let name = format!("{victim}-{}", runs.len());
            runs.push(docker_run(gw, &name));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let attack_took = attack_started.elapsed();
    let cpu_after = cpu_seconds(pid);
    let (cpu_all, cpu_loop) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    let hwm = status_kib(pid, "VmHWM:");
    let rss_after = status_kib(pid, "VmRSS:");
    let sidecar_alive = fs::metadata(format!("/proc/{pid}")).is_ok();

    // Nothing the attack or the victim made stays behind.
    let leftover_attack = containers_named(&attack_names);
    for id in containers_named(&victim).iter().chain(&leftover_attack) {
        let _ = docker_direct(&["rm", "-f", id]);
    }
    // The last runs' --rm may still be under way.
    wait_until(Duration::from_secs(10), || {
        containers_named(&victim).is_empty()
    });

    let pings = pings.into_inner().unwrap();
    let tallies = tallies.into_inner().unwrap();
    let peak = peak_rss.into_inner().unwrap();
    let latencies: Vec<Duration> = pings.iter().map(|(d, _)| *d).collect();
    let (p50, p99, max) = spread(latencies);
    let direct = spread(direct_pings.into_inner().unwrap());
    let auth = spread(auth_probes.into_inner().unwrap());
    let bad_pings: Vec<_> = pings
        .iter()
        .filter(|(d, a)| *d >= PING_BOUND || *a != Ok(200))
        .collect();
    let run_times: Vec<Duration> = runs.iter().map(|(_, d, _)| *d).collect();
    println!(
        "attack: {attack_took:?}, {ATTACKERS} attackers as {} caller(s)\n\
         pings: {} (p50 {p50:?}, p99 {p99:?}, max {max:?}); {} over {PING_BOUND:?} or not 200\n\
         controls (p50, p99, max): dockerd's /_ping {direct:?}; the sidecar's auth {auth:?}; \
         failed: {:?}\n\
         docker runs under attack: {run_times:?} (bound {run_bound:?})\n\
         sidecar RSS: {rss_before} KiB before, peak sampled {peak} KiB, VmHWM {hwm} KiB, \
         {rss_after} KiB after; alive: {sidecar_alive}\n\
         sidecar CPU during the attack: {cpu_all:.1} s, {cpu_loop:.1} s of it on the event \
         loop\n\
         attackers: {tallies:?}",
        tokens.len(),
        pings.len(),
        bad_pings.len(),
        probe_failures.lock().unwrap(),
    );

    assert!(sidecar_alive, "the sidecar died:\n{}", gw.sidecar_log());
    nothing_was_pulled(since);
    assert!(
        leftover_attack.is_empty(),
        "the attack created containers: {leftover_attack:?}"
    );
    // The attack happened: every kind was sent, the whole bodies were answered.
    for kind in kinds.iter().filter(|k| **k != Kind::Slow) {
        let answered: u32 = tallies
            .get(kind)
            .map(|t| t.statuses.values().sum())
            .unwrap_or(0);
        assert!(answered > 0, "no {kind:?} body was answered: {tallies:?}");
    }
    assert!(
        pings.len() as u128 >= ATTACK.as_millis() / 1000,
        "only {} pings",
        pings.len()
    );
    assert!(
        bad_pings.is_empty(),
        "{} of {} pings over {PING_BOUND:?} or not 200 (p50 {p50:?}, max {max:?}): {:?}",
        bad_pings.len(),
        pings.len(),
        bad_pings.iter().take(20).collect::<Vec<_>>()
    );
    assert!(runs.len() >= VICTIM_RUNS, "only {} docker runs", runs.len());
    for (ok, took, out) in &runs {
        assert!(
            *ok && *took < run_bound,
            "docker run under attack: {took:?} (bound {run_bound:?}; all: {run_times:?}): {out}"
        );
    }
    assert!(
        peak.max(hwm) < RSS_BOUND_KIB,
        "sidecar RSS peaked at {} KiB (bound {RSS_BOUND_KIB} KiB)",
        peak.max(hwm)
    );
}

/// 16 tokens, each a user of the developer role (the victim stays anonymous).
fn gateway_with_attacker_tokens() -> (Gateway, Vec<Option<String>>) {
    let tokens: Vec<String> = (0..ATTACKERS)
        .map(|i| format!("attacker-token-{i}"))
        .collect();
    let users: String = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "\n[[users]]\nname = \"attacker-{i}\"\nrole = \"developer\"\n\
                 token_sha256 = [\"{}\"]\n",
                token_sha256(t)
            )
        })
        .collect();
    let gw = Gateway::start_with(GatewayOptions {
        policy: Some(users),
        ..GatewayOptions::policy(Flavor::Debian)
    });
    (gw, tokens.into_iter().map(Some).collect())
}

#[test]
fn costly_bodies_from_one_caller_leave_others_served() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    attack_leaves_others_served(&gw, &[None], &COSTLY);
}

#[test]
fn costly_bodies_from_many_callers_leave_others_served() {
    let (gw, tokens) = gateway_with_attacker_tokens();
    attack_leaves_others_served(&gw, &tokens, &COSTLY);
}

/// The victim is anonymous like the attackers: on the loopback listener every local client
/// without a token is that one caller.
#[test]
fn slow_senders_of_one_caller_leave_others_served() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    attack_leaves_others_served(&gw, &[None], &WITH_SLOW_SENDERS);
}

#[test]
fn slow_senders_of_many_callers_leave_others_served() {
    let (gw, tokens) = gateway_with_attacker_tokens();
    attack_leaves_others_served(&gw, &tokens, &HALF_SLOW);
}
