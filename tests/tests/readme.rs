//! The recipes of the README and of docs/, followed as written: the registry front-end's
//! complete setup is run verbatim (its fixed ports and `/tmp/dockgate-registry`, as root), and
//! the package cache's configuration snippets are used with only their placeholders filled in
//! (host names, origins and paths of this test), under the `user` the snippet names.

use std::fs;
use std::process::Command;
use std::time::Duration;

use dockgate_tests::package_cache::{Stack, StackOptions, APT_HOST};
use dockgate_tests::registry::DockerClient;
use dockgate_tests::{bash, repo_root, running_as_root, wait_until, TempDir};

/// The fenced block of language `lang` that first follows the line containing `marker`.
fn readme_block(marker: &str, lang: &str) -> String {
    // The README and the reference it links, in docs/.
    let mut readme = fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let mut docs: Vec<_> = fs::read_dir(repo_root().join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    for doc in docs {
        readme += &fs::read_to_string(doc).expect("a docs/ page");
    }
    let start = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README has no {marker:?}"));
    let fence = format!("```{lang}\n");
    let open = start + readme[start..].find(&fence).expect("a fenced block") + fence.len();
    let close = open + readme[open..].find("\n```").expect("the block's end");
    readme[open..=close].to_string()
}

/// What the registry recipe leaves running, stopped however the test ends.
struct RegistryRecipe;

const RECIPE_DIR: &str = "/tmp/dockgate-registry";

impl Drop for RegistryRecipe {
    fn drop(&mut self) {
        let _ = Command::new("nginx")
            .args(["-p", RECIPE_DIR, "-c"])
            .arg(format!("{RECIPE_DIR}/nginx.conf"))
            .args(["-s", "quit"])
            .output();
        for pattern in [
            format!("docker-registry serve {RECIPE_DIR}/"),
            format!("dockgate serve --config {RECIPE_DIR}/"),
        ] {
            let _ = Command::new("pkill").args(["-f", &pattern]).output();
        }
        let d = DockerClient::new();
        for tag in ["localhost:5000/tools/busybox:1", "127.0.0.1:5010/x:1"] {
            let _ = d.run(&["rmi", tag]);
        }
        std::thread::sleep(Duration::from_millis(500));
        let _ = fs::remove_dir_all(RECIPE_DIR);
    }
}

#[test]
fn the_registry_front_end_recipe_works_as_written() {
    if !running_as_root() {
        eprintln!("skipped: the recipe runs as root");
        return;
    }
    for port in [5000, 5001, 5002, 5010] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "the recipe's port {port} is taken on this machine"
        );
    }
    let script = readme_block("A complete setup on one machine", "sh");
    let _ = fs::remove_dir_all(RECIPE_DIR);
    let _running = RegistryRecipe;
    // Logins stay in the test (the recipe's `docker login` would write root's config).
    let config = TempDir::new("recipe-docker-config").expect("config dir");
    // To files, not pipes: what the recipe starts in the background keeps its output open.
    let (out_path, err_path) = (
        config.path().join("recipe.out"),
        config.path().join("recipe.err"),
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(repo_root())
        .env("DOCKER_CONFIG", config.path())
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(&out_path).expect("stdout file"))
        .stderr(fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("bash");
    let finished = wait_until(Duration::from_secs(300), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !finished {
        let _ = child.kill();
    }
    let _ = child.wait();
    let (stdout, stderr) = (
        fs::read_to_string(&out_path).unwrap_or_default(),
        fs::read_to_string(&err_path).unwrap_or_default(),
    );
    assert!(
        finished,
        "the recipe did not finish in 300 s:\n{stdout}\n{stderr}"
    );
    let all = format!("{stdout}\n--- stderr\n{stderr}");
    assert!(all.contains("Login Succeeded"), "{all}");
    assert!(
        stderr
            .contains("denied: dockgate: user alice may not push team-b/x (push rights: team-a/)"),
        "the refused push says why:\n{all}"
    );
    assert!(
        stdout.contains("localhost:5000/tools/busybox:1"),
        "the push and the pull went through:\n{all}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("dockgate_registry_pushes_total") && !l.ends_with(" 0")),
        "the metrics count the push:\n{all}"
    );
    let error_log = fs::read_to_string(format!("{RECIPE_DIR}/error.log")).unwrap_or_default();
    assert!(
        !error_log.contains("Permission denied"),
        "the workers reach the sidecar's sockets:\n{error_log}"
    );
}

#[test]
fn the_package_cache_snippets_work_as_written_with_the_places_filled_in() {
    if !running_as_root() {
        eprintln!("skipped: nginx's `user` line needs root");
        return;
    }
    // The origins, the gateway and its sidecar (which writes the CA and the includes).
    let stack = Stack::start(StackOptions {
        index_max_age: None,
        ca_lifetime: "24h",
        origin_rate: None,
    });
    stack.apt.add_package("readme-recipe", "1.0", 20_000);
    stack.apt.publish();
    let state_dir = stack.dir.path().join("package-cache");

    // The README's TOML, its places filled in, is a valid configuration.
    let toml = readme_block("Sidecar configuration:", "toml")
        .replace(
            "/var/lib/dockgate/package-cache",
            &state_dir.display().to_string(),
        )
        .replace("deb.example.org", APT_HOST)
        .replace(
            "# origin = \"deb.example.org:443\"",
            &format!("origin = \"127.0.0.1:{}\"", stack.origin_port),
        );
    assert!(toml.contains("[package_cache]"), "{toml}");
    check_config(&toml, "the README's configuration is valid");
    let dir = TempDir::new("readme-pkgcache").expect("dir");

    // The README's nginx snippet, as written but for its paths, under its own `user` line:
    // the workers must reach the sidecar's log socket (0660, the Docker socket's group).
    let address = dockgate_tests::package_cache::free_loopback_address();
    let http = readme_block("nginx (the sidecar writes", "nginx")
        .replace(
            "/etc/nginx/dockgate/",
            &format!("{}/", repo_root().join("nginx-conf").display()),
        )
        .replace(
            "/var/lib/dockgate/package-cache",
            &state_dir.display().to_string(),
        )
        .replace(
            "/var/cache/dockgate/packages",
            &dir.path().join("store").display().to_string(),
        )
        .replace("127.0.0.1:80", &format!("{address}:80"))
        .replace("127.0.0.1:443", &format!("{address}:443"))
        .replace(
            "/etc/ssl/certs/ca-certificates.crt;   # origins' CAs",
            &format!("{};", stack.origin_ca.display()),
        );
    assert!(http.starts_with("user www-data docker;"), "{http}");
    let d = dir.path().display();
    let conf = format!(
        "pid {d}/nginx.pid;\nerror_log {d}/error.log info;\nevents {{}}\n{}",
        http.replacen(
            "http {",
            &format!(
                "http {{\n    access_log {d}/access.log;\n    client_body_temp_path {d}/tmp_body;\n    \
                 proxy_temp_path {d}/tmp_proxy;\n    fastcgi_temp_path {d}/tmp_fastcgi;\n    \
                 uwsgi_temp_path {d}/tmp_uwsgi;\n    scgi_temp_path {d}/tmp_scgi;"
            ),
            1
        )
    );
    fs::write(dir.path().join("nginx.conf"), &conf).unwrap();
    let started = Command::new("nginx")
        .args(["-p"])
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .output()
        .expect("nginx");
    assert!(
        started.status.success(),
        "nginx starts with the snippet:\n{}\n{conf}",
        String::from_utf8_lossy(&started.stderr)
    );
    let stop = || {
        let _ = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-s", "quit"])
            .output();
    };
    let before = metric_sum(&stack.metrics(), "dockgate_pkgcache_requests_total");
    let bundle = state_dir.join("bundle.pem");
    let url = format!("https://{APT_HOST}/debian/dists/stable/InRelease");
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "30",
        ])
        .args([
            "--resolve",
            &format!("{APT_HOST}:443:{address}"),
            "--cacert",
        ])
        .arg(&bundle)
        .arg(&url)
        .output()
        .expect("curl");
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    let counted = wait_until(Duration::from_secs(10), || {
        metric_sum(&stack.metrics(), "dockgate_pkgcache_requests_total") > before
    });
    let error_log = fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    stop();
    assert_eq!(
        status,
        "200",
        "{}\n{error_log}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !error_log.contains("Permission denied"),
        "the workers reach the log socket:\n{error_log}"
    );
    assert!(
        counted,
        "the metrics count the request:\n{error_log}\n{}",
        stack.metrics()
    );
}

fn metric_sum(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn the_registry_mirrors_configuration_is_valid_as_written() {
    // The README's mirror table, with the user it names; its nginx lines name public hosts,
    // which nginx would resolve: not started here (the mirrors suite runs the same on loopback).
    let toml = readme_block("## Registry mirrors", "toml");
    assert!(toml.contains("[registry.mirrors.ghcr]"), "{toml}");
    check_config(
        &format!("[[users]]\nname = \"alice\"\nrole = \"developer\"\n\n{toml}"),
        "the README's mirror configuration is valid",
    );
}

/// `dockgate check-config` on the built-in configuration followed by `toml`, which must pass.
fn check_config(toml: &str, what: &str) {
    let dir = TempDir::new("readme-config").expect("dir");
    let config = dir.path().join("dockgate.toml");
    let default =
        fs::read_to_string(repo_root().join("sidecar/decision/src/default.toml")).expect("default");
    fs::write(&config, format!("{default}\n{toml}")).expect("write the config");
    let check = Command::new(dockgate_tests::nginx::sidecar_binary())
        .arg("check-config")
        .arg(&config)
        .output()
        .expect("dockgate check-config");
    assert!(
        check.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn the_ci_runner_configurations_are_valid_as_written() {
    // The gateway's side, through `dockgate check-config`; GitLab Runner's config.toml as
    // TOML with the keys its docker executor reads (no gitlab-runner here to start).
    let toml = readme_block("# CI runners", "toml");
    assert!(toml.contains("job_socket = \"ci-job\""), "{toml}");
    check_config(&toml, "the README's CI runner configuration is valid");
    let marker = "**GitLab Runner** (docker executor)";
    let runner = readme_block(marker, "toml");
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import sys, tomllib; c = tomllib.loads(sys.stdin.read()); \
             d = c['runners'][0]['docker']; \
             assert c['runners'][0]['executor'] == 'docker'; \
             assert d['host'].startswith('tcp://') and d['tls_verify'] is True; \
             assert not any('docker.sock' in v for v in d.get('volumes', [])); \
             print('ok')",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(runner.as_bytes())?;
            child.wait_with_output()
        })
        .expect("python3 tomllib");
    assert!(
        parsed.status.success(),
        "GitLab Runner's config.toml in the README: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
}

/// `make run`'s gateway (scripts/run-gateway.sh, what `make run` starts once the module and
/// the sidecar are built: `make test` built them), stopped however the test ends.
struct MakeRun(std::process::Child);

impl Drop for MakeRun {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = wait_until(Duration::from_secs(15), || {
            matches!(self.0.try_wait(), Ok(Some(_)))
        });
        let _ = self.0.kill();
        let _ = self.0.wait();
        // The tour's one named container.
        let _ = DockerClient::new().run(&["rm", "-f", "tour"]);
    }
}

#[test]
fn the_quick_tour_works_as_written_through_make_runs_gateway() {
    if !running_as_root() {
        eprintln!("skipped: make run as root");
        return;
    }
    for port in [2375, 2376] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "make run's port {port} is taken on this machine"
        );
    }
    let exists = DockerClient::new().run(&["inspect", "--type", "container", "tour"]);
    assert!(
        !exists.status.success(),
        "a container named tour exists: the tour would fail on it"
    );
    let log = TempDir::new("make-run").expect("dir");
    let child = Command::new(repo_root().join("scripts/run-gateway.sh"))
        .current_dir(repo_root())
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(log.path().join("out")).unwrap())
        .stderr(fs::File::create(log.path().join("err")).unwrap())
        .spawn()
        .expect("scripts/run-gateway.sh");
    let mut running = MakeRun(child);
    let up = wait_until(Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", 2375)).is_ok()
            && repo_root().join("run/docker.sock").exists()
    });
    let run_log = || fs::read_to_string(log.path().join("err")).unwrap_or_default();
    assert!(up, "make run's gateway did not come up:\n{}", run_log());

    // The tour as written, but for the interactive shell (no terminal here), with each
    // command's output after a marker, and a reader's pause before the access log (written
    // in 64k buffers, flushed within a second).
    let tour: String = readme_block("With `make run` going, in another shell:", "sh")
        .lines()
        .filter(|l| !l.contains(" -it "))
        .map(|l| {
            let pause = if l.starts_with("tail ") {
                "sleep 2\n"
            } else {
                ""
            };
            format!(
                "echo '>>> {}'\n{pause}{{\n{l}\n}} 2>&1\n",
                l.replace('\'', "")
            )
        })
        .collect();
    let tls = readme_block("(made by `make run` in `run/tls/`):", "sh");
    let script = format!(
        "{tour}echo '>>> unix'\n\
         DOCKER_HOST=unix://$PWD/run/docker.sock docker run --rm --pull never busybox echo over-unix 2>&1\n\
         echo '>>> tls'\nunset DOCKER_HOST\n{tls}"
    );
    let (_, text) = bash(&script, &[]);
    let after = |marker: &str| -> String {
        text.split(&format!(">>> {marker}"))
            .nth(1)
            .and_then(|rest| rest.split_once('\n'))
            .map(|(_, rest)| rest.split(">>> ").next().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    let checks = [
        ("docker run --rm busybox echo hi", "hi"),
        (
            "docker run --rm --privileged busybox true",
            "dockgate: privileged containers are not allowed",
        ),
        ("docker exec tour sh -c exit 7; echo $?", "7"),
        ("echo piped | docker exec -i tour cat", "piped"),
        (
            "curl -s http://127.0.0.1:2375/_dockgate/metrics",
            "dockgate_",
        ),
        (
            "tail run/logs/dockgate-access.log",
            "hijack=upgrade half_close=to_upstream",
        ),
        ("unix", "over-unix"),
        ("tls", "CONTAINER ID"),
    ];
    let failed: Vec<String> = checks
        .iter()
        .filter(|(marker, want)| !after(marker).contains(want))
        .map(|(marker, want)| format!("{marker:?} should print {want:?}: {:?}", after(marker)))
        .collect();
    drop(running.0.stdin.take());
    drop(running);
    assert!(
        failed.is_empty(),
        "{}\n--- the tour's output:\n{text}\n--- make run:\n{}",
        failed.join("\n"),
        fs::read_to_string(log.path().join("err")).unwrap_or_default()
    );
    // SIGTERM stopped everything it started.
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", 2375)).is_ok(),
        "2375 still served after SIGTERM"
    );
}
