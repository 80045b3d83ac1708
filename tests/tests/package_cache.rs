//! The transparent package cache, end to end and offline: containers created through the full
//! gateway (sidecar `package-cache` policy) run real `apt-get update && apt-get install` and
//! `pip download` against local origins, reaching them only through the injected names and
//! CA bundle; the sidecar's CA rotates mid-run; the origin changes and goes down.

use std::path::Path;
use std::time::{Duration, Instant};

use dockgate_tests::docker::{docker_direct, run_script, Cli, Endpoint, Outcome, Transport};
use dockgate_tests::package_cache::{
    debian_image, job_script, job_script_from, metric_sum, Source, Stack, StackOptions, APT_HOST,
    PYPI_HOST,
};
use dockgate_tests::{unique_name, wait_until};

const DEBS: &[&str] = &["dg-hello", "dg-big", "dg-lib"];
const WHEELS: &[&str] = &["dg-tool"];

fn populate(stack: &Stack) {
    stack.apt.add_package("dg-hello", "1.0", 0);
    stack.apt.add_package("dg-big", "1.0", 8 << 20);
    stack.apt.add_package("dg-lib", "1.0", 256 << 10);
    stack.apt.publish();
    stack.pypi.add_wheel("dg-tool", "1.0", 1 << 20);
}

/// `docker SUBCOMMAND...` through the gateway as the `ci` user.
fn docker_ci(stack: &Stack, script: &str, vars: &[(&str, &str)]) -> Outcome {
    let config = stack.ci_docker_config();
    let config = config.to_string_lossy().into_owned();
    let mut all = vec![
        ("DOCKER_CONFIG", config.as_str()),
        ("IMAGE", debian_image()),
    ];
    all.extend_from_slice(vars);
    run_script(
        Cli::Current,
        &Endpoint::gateway(&stack.gateway, Transport::Tcp),
        script,
        &all,
        None,
    )
}

/// One CI job in a fresh container on the host network.
fn job(stack: &Stack, debs: &[&str], wheels: &[&str]) -> Outcome {
    let script = job_script(&stack.apt.key_b64, debs, wheels);
    docker_ci(
        stack,
        "docker run --rm --network host \"$IMAGE\" bash -c \"$JOB\"",
        &[("JOB", &script)],
    )
}

fn assert_ok(o: &Outcome, stack: &Stack, what: &str) {
    assert_eq!(
        o.code,
        0,
        "{what}:\n{o}\n--- cache error log\n{}\n--- sidecar\n{}",
        stack.cache.error_log(),
        stack.gateway.sidecar_log()
    );
}

/// Requests the origin saw for paths containing `needle`.
fn origin_requests(stack: &Stack, needle: &str) -> usize {
    stack
        .origin
        .access_log()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// [`origin_requests`] once the origin's log has settled: nginx writes a request's line after
/// the answer has left, so a count read right after a client's request can miss it.
fn settled_origin_requests(stack: &Stack, needle: &str) -> usize {
    let mut last = origin_requests(stack, needle);
    let mut stable_since = std::time::Instant::now();
    let deadline = stable_since + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < deadline
        && stable_since.elapsed() < std::time::Duration::from_millis(300)
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let now = origin_requests(stack, needle);
        if now != last {
            last = now;
            stable_since = std::time::Instant::now();
        }
    }
    last
}

#[test]
fn replay_of_20_ci_jobs_is_served_by_the_cache_across_a_ca_rotation() {
    let stack = Stack::start(StackOptions {
        index_max_age: None,
        ca_lifetime: "24h",
        origin_rate: None,
    });
    populate(&stack);
    let ca_before = stack.ca(&["show"]);
    assert!(ca_before.contains("BEGIN CERTIFICATE"), "{ca_before}");

    // A long job started before the rotation: its bundle holds the CAs of that moment.
    let long = unique_name("pkg-long");
    let started = docker_ci(
        &stack,
        "docker run -d --name \"$NAME\" --network host \"$IMAGE\" sleep 600",
        &[("NAME", &long)],
    );
    assert_ok(&started, &stack, "long-running container");

    let t0 = Instant::now();
    let mut outcomes = Vec::new();
    for i in 0..20 {
        if i == 10 {
            let before = stack.current_ca();
            assert!(stack.served_issuer(APT_HOST).ends_with(&before));
            let rotated = stack.ca(&["rotate"]);
            assert!(rotated.contains("rotated"), "{rotated}");
            let after = stack.current_ca();
            assert_ne!(after, before);
            // nginx reloaded gracefully (SIGHUP from the sidecar): the new certificate is served.
            assert!(
                wait_until(Duration::from_secs(10), || stack
                    .served_issuer(APT_HOST)
                    .ends_with(&after)),
                "served: {}, current: {after}",
                stack.served_issuer(APT_HOST)
            );
        }
        let o = job(&stack, DEBS, WHEELS);
        assert_ok(&o, &stack, &format!("job {i}"));
        outcomes.push(o);
    }
    let replay = t0.elapsed();
    for o in &outcomes {
        assert!(o.stdout.contains("dg-hello 1.0"), "{o}");
        assert!(o.stdout.contains("dg_tool-1.0-py3-none-any.whl"), "{o}");
    }
    // The container from before the rotation still trusts the cache.
    let script = job_script(&stack.apt.key_b64, &["dg-hello"], WHEELS);
    let old = docker_ci(
        &stack,
        "docker exec \"$NAME\" bash -c \"$JOB\"",
        &[("NAME", &long), ("JOB", &script)],
    );
    let _ = docker_direct(&["rm", "-f", &long]);
    assert_ok(&old, &stack, "container created before the rotation");

    // Every artifact came from the origin once; the cache answered the rest.
    for deb in DEBS {
        assert_eq!(
            origin_requests(&stack, &format!("/{deb}_1.0_all.deb")),
            1,
            "{deb}"
        );
    }
    assert_eq!(origin_requests(&stack, "/packages/dg_tool-1.0"), 1);
    let metrics = stack.metrics();
    let hits: f64 = ["HIT", "REVALIDATED", "STALE", "UPDATING"]
        .iter()
        .map(|s| {
            metric_sum(
                &metrics,
                "dockgate_pkgcache_requests_total",
                &[&format!("status=\"{s}\"")],
            )
        })
        .sum();
    let all = metric_sum(&metrics, "dockgate_pkgcache_requests_total", &[]);
    let ratio = hits / all;
    let from_cache = metric_sum(
        &metrics,
        "dockgate_pkgcache_bytes_total",
        &["source=\"cache\""],
    );
    let from_origin = metric_sum(
        &metrics,
        "dockgate_pkgcache_bytes_total",
        &["source=\"upstream\""],
    );
    println!(
        "package-cache replay: 20 jobs in {:.1} s, {all} cache requests, hit ratio {ratio:.4}, \
         {:.1} MB from cache, {:.1} MB from origin",
        replay.as_secs_f64(),
        from_cache / 1e6,
        from_origin / 1e6
    );
    assert!(ratio >= 0.95, "hit ratio {ratio}\n{metrics}");
    assert!(from_cache > 15.0 * from_origin, "{metrics}");
    assert!(metrics.contains("dockgate_pkgcache_hit_ratio{rules=\"apt\",host=\"deb.test\"}"));
    assert!(metrics.contains("dockgate_pkgcache_hit_ratio{rules=\"pypi\",host=\"pypi.test\"}"));
}

#[test]
fn updated_packages_appear_after_the_index_lifetime_and_stale_indexes_outlive_the_origin() {
    let mut stack = Stack::start(StackOptions {
        index_max_age: Some(3),
        ca_lifetime: "24h",
        origin_rate: None,
    });
    stack.apt.add_package("dg-hello", "1.0", 0);
    stack.apt.publish();
    let o = job(&stack, &["dg-hello"], &[]);
    assert_ok(&o, &stack, "first job");
    assert!(o.stdout.contains("dg-hello 1.0"), "{o}");

    stack.apt.add_package("dg-hello", "1.1", 0);
    stack.apt.keep_only("dg-hello", "1.1");
    stack.apt.publish();
    std::thread::sleep(Duration::from_secs(4));
    let o = job(&stack, &["dg-hello"], &[]);
    assert_ok(&o, &stack, "after the index lifetime");
    assert!(o.stdout.contains("dg-hello 1.1"), "{o}");

    // The origin goes down; the indexes expire; the cache serves them stale.
    stack.origin.stop();
    std::thread::sleep(Duration::from_secs(4));
    let o = job(&stack, &["dg-hello"], &[]);
    assert_ok(&o, &stack, "origin down");
    assert!(o.stdout.contains("dg-hello 1.1"), "{o}");
    let metrics = stack.metrics();
    assert!(
        metric_sum(
            &metrics,
            "dockgate_pkgcache_requests_total",
            &["status=\"STALE\""]
        ) >= 1.0,
        "{metrics}"
    );
}

#[test]
fn without_the_injection_the_names_and_the_ca_are_missing() {
    let stack = Stack::start(StackOptions {
        index_max_age: None,
        ca_lifetime: "24h",
        origin_rate: None,
    });
    stack.apt.add_package("dg-hello", "1.0", 0);
    stack.apt.publish();
    let script = job_script(&stack.apt.key_b64, &["dg-hello"], &[]);

    // Opted out: the name does not resolve.
    let o = docker_ci(
        &stack,
        "docker run --rm --network host --label dockgate.package-cache=off \"$IMAGE\" bash -c \"$JOB\"",
        &[("JOB", &script)],
    );
    assert_ne!(o.code, 0, "{o}");
    assert!(o.stdout.contains(APT_HOST), "{o}");
    // Opted out, but the name added by hand: the cache's certificate is not trusted.
    let o = docker_ci(
        &stack,
        "docker run --rm --network host --label dockgate.package-cache=off \
         --add-host \"$HOST:$ADDR\" \"$IMAGE\" bash -c \"$JOB\"",
        &[
            ("JOB", &script),
            ("HOST", APT_HOST),
            ("ADDR", &stack.cache_address),
        ],
    );
    assert_ne!(o.code, 0, "{o}");
    assert!(
        o.stdout.to_lowercase().contains("certificate"),
        "a TLS failure, not something else: {o}"
    );
    // With the injection: works, and docker inspect shows what was added.
    let name = unique_name("pkg-inspect");
    let o = docker_ci(
        &stack,
        "docker create --name \"$NAME\" --network host \"$IMAGE\" true >/dev/null",
        &[("NAME", &name)],
    );
    let inspect = |f: &str| docker_direct(&["inspect", "-f", f, &name]);
    let seen = (o.code == 0).then(|| {
        (
            inspect("{{.HostConfig.ExtraHosts}}"),
            inspect("{{.HostConfig.Binds}}"),
            inspect("{{.Config.Env}}"),
        )
    });
    let _ = docker_direct(&["rm", "-f", &name]);
    assert_ok(&o, &stack, "create");
    let (hosts, binds, env) = seen.unwrap();
    assert!(
        hosts.contains(&format!("{APT_HOST}:{}", stack.cache_address)),
        "{hosts}"
    );
    assert!(
        binds.contains("bundle.pem:/etc/ssl/certs/ca-certificates.crt:ro"),
        "{binds}"
    );
    assert!(
        binds.contains(":/etc/pki/tls/certs/ca-bundle.crt:ro"),
        "{binds}"
    );
    assert!(
        env.contains("REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"),
        "{env}"
    );
    assert!(env.contains("NODE_EXTRA_CA_CERTS="), "{env}");
    let o = job(&stack, &["dg-hello"], &[]);
    assert_ok(&o, &stack, "injected job");

    // Credentials are not cached (the host has no cache_credentials); other names are refused.
    let in_release = "/debian/dists/stable/InRelease";
    let seen_before = settled_origin_requests(&stack, in_release);
    let bundle = stack.dir.path().join("package-cache/bundle.pem");
    let fetch = |host: &str, headers: &[&str]| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-sS", "-o", "/dev/null", "-D", "-", "--cacert"])
            .arg(&bundle)
            .arg("--resolve")
            .arg(format!("{host}:443:{}", stack.cache_address));
        for h in headers {
            cmd.arg("-H").arg(h);
        }
        let out = cmd
            .arg(format!("https://{host}{in_release}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
    };
    for _ in 0..2 {
        let head = fetch(APT_HOST, &["Authorization: Bearer secret"]);
        assert!(head.contains("x-dockgate-cache: bypass"), "{head}");
    }
    assert_eq!(settled_origin_requests(&stack, in_release), seen_before + 2);
    let head = fetch(APT_HOST, &[]);
    assert!(head.contains("x-dockgate-cache: hit"), "{head}");
    assert_eq!(settled_origin_requests(&stack, in_release), seen_before + 2);

    // Plain HTTP is cached under its own key (scheme in the key): a miss, then a hit.
    let http = |host: &str| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-D", "-", "-H"])
            .arg(format!("Host: {host}"))
            .arg(format!("http://{}{in_release}", stack.cache_address))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
    };
    assert!(http(APT_HOST).contains("x-dockgate-cache: miss"));
    assert!(http(APT_HOST).contains("x-dockgate-cache: hit"));
    // A name the cache does not serve is misdirected.
    assert!(http("other.test").starts_with("http/1.1 421"));

    // allow_host_network is the role's: the anonymous developer is still refused.
    let o = run_script(
        Cli::Current,
        &Endpoint::gateway(&stack.gateway, Transport::Tcp),
        "docker run --rm --network host \"$IMAGE\" true",
        &[("IMAGE", debian_image())],
        None,
    );
    assert_ne!(o.code, 0, "{o}");
    assert!(o.stderr.contains("--network host is not allowed"), "{o}");
    // The ci role may not smuggle in other host namespaces with it.
    let o = docker_ci(
        &stack,
        "docker run --rm --network host --pid host \"$IMAGE\" true",
        &[],
    );
    assert!(o.stderr.contains("--pid host is not allowed"), "{o}");
    // Nor bind the sidecar's state (keys) under cover of the injected bind.
    let state = stack.dir.path().join("package-cache");
    let o = docker_ci(
        &stack,
        "docker run --rm --network host -v \"$STATE:/s:ro\" \"$IMAGE\" true",
        &[("STATE", &state.display().to_string())],
    );
    assert!(o.stderr.contains("not allowed"), "{o}");
}

// === bench (bench/package-cache.sh runs it) ===

/// (requests answered from the cache, all requests, bytes from cache, bytes from origin).
fn cache_counts(stack: &Stack) -> (f64, f64, f64, f64) {
    let m = stack.metrics();
    let series = "dockgate_pkgcache_requests_total";
    let hits = ["HIT", "REVALIDATED", "STALE", "UPDATING"]
        .iter()
        .map(|s| metric_sum(&m, series, &[&format!("status=\"{s}\"")]))
        .sum();
    (
        hits,
        metric_sum(&m, series, &[]),
        metric_sum(&m, "dockgate_pkgcache_bytes_total", &["source=\"cache\""]),
        metric_sum(
            &m,
            "dockgate_pkgcache_bytes_total",
            &["source=\"upstream\""],
        ),
    )
}

/// `curl`'s download speed (bytes/s) for `url`, resolving its host to `addr`.
fn curl_speed(url: &str, resolve: &str, ca: &Path) -> f64 {
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{speed_download} %{http_code}",
        ])
        .arg("--resolve")
        .arg(resolve)
        .arg("--cacert")
        .arg(ca)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text.split_whitespace();
    let speed: f64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    assert_eq!(parts.next(), Some("200"), "{url}: {text}");
    speed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One job from `source`, its wall time in seconds.
fn timed_job(stack: &Stack, source: &Source<'_>, i: usize) -> f64 {
    let t0 = Instant::now();
    let o = match source {
        Source::Cache => job(stack, DEBS, WHEELS),
        Source::Origin { .. } => {
            let script = job_script_from(source, &stack.apt.key_b64, DEBS, WHEELS);
            docker_ci(
                stack,
                "docker run --rm --network host --label dockgate.package-cache=off \
                 --add-host \"$APT:127.0.0.1\" --add-host \"$PYPI:127.0.0.1\" \"$IMAGE\" bash -c \"$JOB\"",
                &[("JOB", &script), ("APT", APT_HOST), ("PYPI", PYPI_HOST)],
            )
        }
    };
    assert_ok(&o, stack, &format!("bench job {i}"));
    t0.elapsed().as_secs_f64()
}

/// The replay with and without the cache, job by job alternately (the machine is shared:
/// both series see the same load). Returns one table row.
fn replay_row(stack: &Stack, jobs: usize, label: &str) -> String {
    let pem = std::fs::read_to_string(&stack.origin_ca).unwrap();
    let origin = Source::Origin {
        port: stack.origin_port,
        ca_pem: &pem,
    };
    let before = cache_counts(stack);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for i in 0..jobs {
        with.push(timed_job(stack, &Source::Cache, i));
        without.push(timed_job(stack, &origin, i));
    }
    let after = cache_counts(stack);
    let (w, wo): (f64, f64) = (with.iter().sum(), without.iter().sum());
    format!(
        "| {label} | {wo:.1} s (median job {:.2} s) | {w:.1} s (median job {:.2} s), {:.2}x | {:.4} | {:.1} MB / {:.1} MB |\n",
        median(without),
        median(with),
        w / wo,
        (after.0 - before.0) / (after.1 - before.1),
        (after.2 - before.2) / 1e6,
        (after.3 - before.3) / 1e6
    )
}

#[test]
#[ignore = "benchmark: bench/package-cache.sh"]
fn bench_package_cache() {
    let jobs: usize = std::env::var("BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let huge_mb: usize = std::env::var("BENCH_FILE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    let rate = std::env::var("BENCH_ORIGIN_RATE").unwrap_or_else(|_| "10m".into());
    let mut report = String::new();

    // 1. Throughput of one large file: origin vs warm cache (both TLS, curl on the host).
    let stack = Stack::start(StackOptions {
        index_max_age: None,
        ca_lifetime: "24h",
        origin_rate: None,
    });
    populate(&stack);
    stack.apt.add_package("dg-huge", "1.0", huge_mb << 20);
    let path = "/debian/pool/main/d/dg-huge/dg-huge_1.0_all.deb";
    let origin_url = format!("https://{APT_HOST}:{}{path}", stack.origin_port);
    let origin_resolve = format!("{APT_HOST}:{}:127.0.0.1", stack.origin_port);
    let cache_url = format!("https://{APT_HOST}{path}");
    let cache_resolve = format!("{APT_HOST}:443:{}", stack.cache_address);
    // The cache's CA alone, as the origin's: curl parsing the whole system bundle per run
    // would cost more time than a 128 MiB transfer's few percent.
    let bundle = stack
        .dir
        .path()
        .join(format!("package-cache/ca-{}.pem", stack.current_ca()));
    let cold = curl_speed(&cache_url, &cache_resolve, &bundle);
    // Alternately, so both see the same load on this shared machine.
    let (mut origin, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        origin.push(curl_speed(&origin_url, &origin_resolve, &stack.origin_ca));
        warm.push(curl_speed(&cache_url, &cache_resolve, &bundle));
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max) / 1e6;
    let (ob, wb) = (best(&origin), best(&warm));
    let (o, w) = (median(origin) / 1e6, median(warm) / 1e6);
    report += &format!(
        "**1. One {huge_mb} MiB .deb over HTTPS** (curl on the host; origin and warm cache \
         alternately, 7 each; the best is the run least disturbed by other work on the \
         machine):\n\n\
         | | origin (local nginx) | cache, warm (hit) | cache, cold (miss) |\n|---|---|---|---|\n\
         | median | {o:.0} MB/s | {w:.0} MB/s ({:.2}x origin) | {:.0} MB/s |\n\
         | best | {ob:.0} MB/s | {wb:.0} MB/s ({:.2}x origin) | |\n\n",
        w / o,
        cold / 1e6,
        wb / ob
    );

    // 2. The replay: fresh containers, apt-get update + install 3 .debs + pip download.
    let mut rows = replay_row(&stack, jobs, "local origin, unthrottled");
    drop(stack);
    let stack = Stack::start(StackOptions {
        index_max_age: None,
        ca_lifetime: "24h",
        origin_rate: Some(rate.clone()),
    });
    populate(&stack);
    rows += &replay_row(
        &stack,
        jobs,
        &format!("origin with nginx `limit_rate {rate}` (per connection)"),
    );
    report += &format!(
        "**2. Replay of {jobs} CI-like jobs**, one after another, each a fresh container created \
         through the full gateway (`apt-get update`, `apt-get install` of 3 .debs (8.3 MB), \
         `pip download` of a 1 MB wheel); the cached and uncached jobs alternate, the cache \
         starts cold; hit ratio and bytes are the sidecar's counts for the cached jobs:\n\n\
         | origin | without cache (total) | with cache (total) | hit ratio | bytes from cache / origin |\n\
         |---|---|---|---|---|\n{rows}\n"
    );
    println!("{report}");
    if let Ok(out) = std::env::var("DOCKGATE_BENCH_OUT") {
        std::fs::write(out, &report).unwrap();
    }
}

#[test]
fn every_rule_set_keeps_immutable_files_and_lets_indexes_follow_the_origin() {
    let stack = Stack::start(StackOptions {
        index_max_age: None,
        ca_lifetime: "24h",
        origin_rate: None,
    });
    // For paths with `nocache` the origin answers `Cache-Control: no-store`: an immutable class keeps
    // the file anyway, an index class obeys the origin.
    let www = stack.dir.path().join("www");
    let files = [
        (
            "alpine.test",
            "/nocache/v3.20/main/x86_64/tool-1.0-r0.apk",
            "hit",
        ),
        (
            "alpine.test",
            "/nocache/v3.20/main/x86_64/APKINDEX.tar.gz",
            "miss",
        ),
        (
            "alpine.test",
            "/alpine/v3.20/main/x86_64/APKINDEX.tar.gz",
            "hit",
        ),
        ("npm.test", "/nocache/-/nocache-1.0.0.tgz", "hit"),
        ("npm.test", "/nocache-doc", "miss"),
        ("npm.test", "/left-pad", "hit"),
        ("maven.test", "/nocache/org/x/1.0/x-1.0.jar", "hit"),
        ("maven.test", "/nocache/org/x/1.0/x-1.0.pom.sha1", "hit"),
        ("maven.test", "/nocache/org/x/maven-metadata.xml", "miss"),
        (
            "maven.test",
            "/nocache/org/x/1.1-SNAPSHOT/x-1.1-20260101.120000-1.jar",
            "miss",
        ),
        ("maven.test", "/maven2/org/x/maven-metadata.xml", "hit"),
        (
            "deb.test",
            "/nocache/pool/main/t/tool/tool_1.0_all.deb",
            "hit",
        ),
        (
            "deb.test",
            "/nocache/dists/stable/main/binary-amd64/Packages.xz",
            "miss",
        ),
        ("pypi.test", "/packages/ab/cd/nocache-1.0.tar.gz", "hit"),
        ("pypi.test", "/simple/nocache/", "miss"),
        ("pypi.test", "/debian/README", "pass"),
        ("deb.test", "/debian/README", "pass"),
    ];
    for (_, path, _) in &files {
        let mut file = www.join(path.trim_start_matches('/'));
        if path.ends_with('/') {
            file = file.join("index.html");
        }
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, path.as_bytes()).unwrap();
    }
    for (host, path, second) in files {
        let (status, first) = stack.http_through_cache(host, path, &[]);
        assert_eq!(status, 200, "{host}{path}");
        let (_, again) = stack.http_through_cache(host, path, &[]);
        if second == "pass" {
            assert_eq!(
                (first.as_str(), again.as_str()),
                ("pass", "pass"),
                "{host}{path}"
            );
        } else {
            assert_eq!(first, "miss", "{host}{path}");
            assert_eq!(again, second, "{host}{path}");
        }
    }
    // Package documents are kept per Accept (abbreviated vs full npm metadata).
    let abbreviated = "Accept: application/vnd.npm.install-v1+json";
    assert_eq!(
        stack
            .http_through_cache("npm.test", "/left-pad", &[abbreviated])
            .1,
        "miss"
    );
    assert_eq!(
        stack
            .http_through_cache("npm.test", "/left-pad", &[abbreviated])
            .1,
        "hit"
    );
    let m = stack.metrics();
    for (host, rules) in [
        ("alpine.test", "alpine"),
        ("npm.test", "npm"),
        ("maven.test", "maven"),
    ] {
        assert!(
            m.contains(&format!(
                "dockgate_pkgcache_hit_ratio{{rules=\"{rules}\",host=\"{host}\"}}"
            )),
            "{m}"
        );
    }
}
