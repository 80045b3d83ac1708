//! The full gateway (nginx + module + sidecar + dockerd): escapes refused with Docker-shaped
//! reasons while the same requests succeed on dockerd's own socket, identities, and failing
//! closed when the sidecar is down.

use std::io::Write;
use std::time::Duration;

use dockgate_tests::docker::{
    docker_direct, docker_direct_quiet, run_script, Cli, Endpoint, Transport,
};
use dockgate_tests::nginx::{Flavor, Gateway, GatewayOptions, SYSTEM_DOCKERD};
use dockgate_tests::raw::{self, Conn, Target};
use dockgate_tests::{unique_name, wait_until};

/// One attempt: a raw request that creates something named `name` if it gets through.
struct Attempt {
    what: &'static str,
    method: &'static str,
    /// `{name}` is replaced by a fresh container name.
    path: &'static str,
    body: &'static str,
    status: u16,
    message: &'static str,
}

const fn attempt(
    what: &'static str,
    path: &'static str,
    body: &'static str,
    status: u16,
    message: &'static str,
) -> Attempt {
    Attempt {
        what,
        method: "POST",
        path,
        body,
        status,
        message,
    }
}

const CREATE: &str = "/v1.41/containers/create?name={name}";

/// Container creates that escape to the host on a bare dockerd.
const ESCAPES: &[Attempt] = &[
    attempt(
        "privileged",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"Privileged":true}}"#,
        403,
        "privileged containers are not allowed",
    ),
    attempt(
        "privileged, lowercase keys",
        CREATE,
        r#"{"image":"busybox","hostconfig":{"privileged":true}}"#,
        403,
        "privileged containers are not allowed",
    ),
    attempt(
        "privileged, upper-case keys",
        CREATE,
        r#"{"IMAGE":"busybox","HOSTCONFIG":{"PRIVILEGED":true}}"#,
        403,
        "privileged containers are not allowed",
    ),
    attempt(
        "privileged, unicode-escaped key",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"\u0050rivileged":true}}"#,
        403,
        "privileged containers are not allowed",
    ),
    attempt(
        "privileged, duplicate key (last wins in Go)",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"Privileged":false,"Privileged":true}}"#,
        400,
        "more than once",
    ),
    attempt(
        "privileged, case-variant duplicate",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"Privileged":false,"privileged":true}}"#,
        400,
        "more than once",
    ),
    attempt(
        "privileged, duplicate HostConfig",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{},"hostConfig":{"Privileged":true}}"#,
        400,
        "more than once",
    ),
    attempt(
        "privileged, encoded version prefix",
        "/v%31.41/containers/create?name={name}",
        r#"{"Image":"busybox","HostConfig":{"Privileged":true}}"#,
        403,
        "privileged containers are not allowed",
    ),
    attempt(
        "privileged, no version prefix",
        "/containers/create?name={name}",
        r#"{"Image":"busybox","HostConfig":{"Privileged":true}}"#,
        403,
        "privileged containers are not allowed",
    ),
    attempt(
        "privileged, encoded path",
        "/v1.41/containers/%63reate?name={name}",
        r#"{"Image":"busybox","HostConfig":{"Privileged":true}}"#,
        403,
        "privileged containers are not allowed",
    ),
    attempt(
        "cap-add SYS_ADMIN",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"CapAdd":["SYS_ADMIN"]}}"#,
        403,
        "adding capability SYS_ADMIN is not allowed",
    ),
    attempt(
        "cap-add ALL",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"CapAdd":["ALL"]}}"#,
        403,
        "adding capability ALL",
    ),
    attempt(
        "cap-add lowercase cap_sys_module",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"capadd":["cap_sys_module"]}}"#,
        403,
        "adding capability SYS_MODULE",
    ),
    attempt(
        "Capabilities field",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"Capabilities":["CAP_SYS_ADMIN"]}}"#,
        403,
        "Capabilities",
    ),
    attempt(
        "device /dev/sda",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/x","CgroupPermissions":"rwm"}]}}"#,
        403,
        "host devices",
    ),
    attempt(
        "device cgroup rule",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"DeviceCgroupRules":["a *:* rwm"]}}"#,
        403,
        "device cgroup rules",
    ),
    attempt(
        "network host",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"NetworkMode":"host"}}"#,
        403,
        "--network host is not allowed",
    ),
    attempt(
        "pid host",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"PidMode":"host"}}"#,
        403,
        "--pid host",
    ),
    attempt(
        "ipc host",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"IpcMode":"host"}}"#,
        403,
        "--ipc host",
    ),
    attempt(
        "uts host",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"UTSMode":"host"}}"#,
        403,
        "--uts host",
    ),
    attempt(
        "userns host",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"UsernsMode":"host"}}"#,
        403,
        "--userns host",
    ),
    attempt(
        "cgroupns host",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"CgroupnsMode":"host"}}"#,
        403,
        "--cgroupns host",
    ),
    attempt(
        "seccomp unconfined",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"SecurityOpt":["seccomp=unconfined"]}}"#,
        403,
        "seccomp=unconfined",
    ),
    attempt(
        "apparmor unconfined",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"SecurityOpt":["apparmor=unconfined"]}}"#,
        403,
        "apparmor=unconfined",
    ),
    attempt(
        "label disable",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"SecurityOpt":["label=disable"]}}"#,
        403,
        "label=disable",
    ),
    attempt(
        "masked paths emptied",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"MaskedPaths":[]}}"#,
        403,
        "MaskedPaths",
    ),
    attempt(
        "readonly paths emptied",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"ReadonlyPaths":[]}}"#,
        403,
        "ReadonlyPaths",
    ),
    attempt(
        "bind /",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"Binds":["/:/host"]}}"#,
        403,
        "bind mounting host path / is not allowed",
    ),
    attempt(
        "bind /etc read-only",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"Binds":["/etc:/x:ro"]}}"#,
        403,
        "bind mounting host path /etc",
    ),
    attempt(
        "bind the docker socket",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"Binds":["/var/run/docker.sock:/var/run/docker.sock"]}}"#,
        403,
        "Docker socket",
    ),
    attempt(
        "bind with dot segments",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"Binds":["/tmp/../etc:/x"]}}"#,
        403,
        "without '..'",
    ),
    attempt(
        "mount bind /",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"/","Target":"/host"}]}}"#,
        403,
        "bind mounting host path /",
    ),
    attempt(
        "mount bind, lowercase keys",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"mounts":[{"type":"bind","source":"/etc","target":"/x"}]}}"#,
        403,
        "bind mounting host path /etc",
    ),
    attempt(
        "inline volume with bind options",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Target":"/x","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/etc"}}}}]}}"#,
        403,
        "bind driver options",
    ),
    attempt(
        "cgroup parent",
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"CgroupParent":"/"}}"#,
        403,
        "--cgroup-parent",
    ),
    attempt(
        "privileged in a chunked body",
        CREATE,
        "CHUNKED",
        403,
        "privileged containers are not allowed",
    ),
];

fn body_for(a: &Attempt) -> String {
    if a.body == "CHUNKED" {
        r#"{"Image":"busybox","HostConfig":{"Privileged":true}}"#.to_string()
    } else {
        a.body.to_string()
    }
}

/// Sends an attempt; returns (status, body).
fn send(target: &Target, a: &Attempt, name: &str) -> (u16, String) {
    let path = a.path.replace("{name}", name);
    let body = body_for(a);
    let mut c = Conn::connect(target).unwrap();
    let req = if a.body == "CHUNKED" {
        let (first, rest) = body.split_at(10);
        format!(
            "{} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             {:x}\r\n{first}\r\n{:x}\r\n{rest}\r\n0\r\n\r\n",
            a.method,
            first.len(),
            rest.len()
        )
    } else {
        format!(
            "{} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            a.method,
            body.len()
        )
    };
    c.write_all(req.as_bytes()).unwrap();
    let head = c.read_head().unwrap();
    let rest = c.read_all().unwrap();
    let text = if head.header("transfer-encoding") == Some("chunked") {
        raw::dechunk(&rest)
    } else {
        rest
    };
    (head.status, String::from_utf8_lossy(&text).into_owned())
}

fn exists(name: &str) -> bool {
    std::process::Command::new(Cli::Current.path())
        .args(["container", "inspect", name])
        .env("DOCKER_HOST", format!("unix://{SYSTEM_DOCKERD}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn escape_corpus_is_refused_by_the_gateway_and_accepted_by_dockerd() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let direct = Target::Unix(SYSTEM_DOCKERD.into());
    let mut failures = Vec::new();
    for a in ESCAPES {
        let name = unique_name("escape");
        let (status, body) = send(&Target::Tcp(gw.port), a, &name);
        let message_ok = body.contains(a.message) && body.starts_with("{\"message\":\"dockgate: ");
        if status != a.status || !message_ok || exists(&name) {
            failures.push(format!(
                "{}: gateway answered {status} {body:?} (container created: {})",
                a.what,
                exists(&name)
            ));
        }
        // The same request on dockerd's socket: a real escape is accepted there.
        let (direct_status, direct_body) = send(&direct, a, &name);
        let created = exists(&name);
        let _ = docker_direct_quiet(&["rm", "-f", "-v", &name]);
        if direct_status != 201 || !created {
            failures.push(format!(
                "{}: dockerd itself answered {direct_status} {direct_body:?}: not an escape",
                a.what
            ));
        }
    }
    assert!(ESCAPES.len() >= 35);
    assert!(
        failures.is_empty(),
        "{}\nsidecar log:\n{}",
        failures.join("\n"),
        gw.sidecar_log()
    );
}

#[test]
fn cli_escapes_print_the_reason() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let c = dockgate_tests::docker::Container::start("cliescape");
    let endpoint = Endpoint::gateway(&gw, Transport::Tcp);
    for (script, reason) in [
        (
            "docker run --rm --network none --privileged busybox true",
            "dockgate: privileged containers are not allowed",
        ),
        (
            "docker run --rm --network none -v /:/host busybox true",
            "dockgate: bind mounting host path / is not allowed",
        ),
        (
            "docker run --rm --network none --pid host busybox true",
            "dockgate: --pid host is not allowed",
        ),
        (
            "docker run --rm --network host busybox true",
            "dockgate: --network host is not allowed",
        ),
        (
            "docker run --rm --network none --cap-add SYS_ADMIN busybox true",
            "dockgate: adding capability SYS_ADMIN is not allowed",
        ),
        (
            "docker run --rm --network none --device /dev/null:/dev/x busybox true",
            "dockgate: host devices (--device) are not allowed",
        ),
        (
            "docker run --rm --network none --security-opt seccomp=unconfined busybox true",
            "dockgate: --security-opt seccomp=unconfined is not allowed",
        ),
        (
            "docker run --rm --network none --security-opt systempaths=unconfined busybox true",
            "(--security-opt systempaths=unconfined) is not allowed",
        ),
        (
            "docker exec --privileged $C true",
            "dockgate: privileged exec is not allowed",
        ),
        (
            "docker volume create -o type=none -o o=bind -o device=/etc $N",
            "dockgate: volumes with bind driver options",
        ),
        (
            "docker swarm init",
            "dockgate: role developer may not use swarm endpoints",
        ),
        (
            "docker plugin install vieux/sshfs",
            "dockgate: role developer may not use plugin endpoints",
        ),
    ] {
        for cli in Cli::ALL {
            let name = unique_name("cli");
            let out = run_script(
                cli,
                &endpoint,
                script,
                &[("C", &c.name), ("N", &name)],
                None,
            );
            assert_ne!(out.code, 0, "{script} with {cli} passed:\n{out}");
            assert!(
                out.stderr.contains(reason),
                "{script} with {cli}: the reason is not shown:\n{out}"
            );
            let _ = docker_direct_quiet(&["volume", "rm", &name]);
        }
    }
}

#[test]
fn identities_are_checked_on_every_listener() {
    let token_user = "[[users]]\nname = \"ci\"\nrole = \"reader\"\ntoken_sha256 = [\"2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\"]\n";
    let gw = Gateway::start_with(GatewayOptions {
        policy: Some(token_user.into()),
        ..GatewayOptions::new(Flavor::Debian)
    });
    // TLS with the test client certificate: user tester (developer).
    let tls = Endpoint::gateway(&gw, Transport::Tls);
    let out = run_script(
        Cli::Current,
        &tls,
        "docker ps -q >/dev/null && echo ok",
        &[],
        None,
    );
    assert_eq!(out.stdout, "ok\n", "{out}");
    // nginx logs a request once its answer is sent: the client can be quicker.
    assert!(
        wait_until(Duration::from_secs(5), || gw
            .access_log()
            .contains("GET /v1.")),
        "nothing logged"
    );
    // A token on the loopback listener: its role (reader) applies, not the anonymous one.
    let tcp = Target::Tcp(gw.port);
    let call = |auth: &str, method: &str, path: &str| {
        raw::call_with(&tcp, method, path, &[auth], "").unwrap()
    };
    assert_eq!(
        call(
            "Authorization: Bearer secret",
            "GET",
            "/v1.41/containers/json"
        )
        .0,
        200
    );
    let (status, body) = call(
        "Authorization: Bearer secret",
        "POST",
        "/v1.41/containers/x/kill",
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("role reader may not use write endpoints"),
        "{body}"
    );
    // A wrong (or revoked: removed from the config) token is refused, not downgraded.
    let (status, body) = call(
        "Authorization: Bearer revoked",
        "GET",
        "/v1.41/containers/json",
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("dockgate: invalid token"), "{body}");
    // No anonymous access over TLS without a known certificate: curl with no client cert
    // is stopped by nginx itself (ssl_verify_client on).
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&dockgate_tests::nginx::tls().ca)
        .arg(format!("https://127.0.0.1:{}/v1.41/info", gw.tls_port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "400");
}

#[test]
fn sidecar_down_means_nothing_it_decides_gets_through() {
    let mut gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let tcp = Target::Tcp(gw.port);
    assert_eq!(raw::call(&tcp, "GET", "/v1.41/info", "").unwrap().0, 200);
    gw.stop_sidecar();
    let name = unique_name("failclosed");
    let (status, body) = raw::call(
        &tcp,
        "POST",
        &format!("/v1.41/containers/create?name={name}"),
        r#"{"Image":"busybox"}"#,
    )
    .unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("dockgate: the policy service is unavailable"),
        "{body}"
    );
    assert!(!exists(&name));
    // What needs the engine (the container a conservative role acts through) is the
    // sidecar's to decide: refused too.
    let (status, body) =
        raw::call(&tcp, "POST", &format!("/v1.41/containers/{name}/kill"), "").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("the policy service is unavailable"), "{body}");
    // What nginx decides alone, with the sidecar's configuration, keeps working.
    let (status, body) = raw::call(&tcp, "GET", "/v1.41/containers/json", "").unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw::call(&tcp, "POST", "/v1.41/swarm/init", "{}").unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("role developer may not use"), "{body}");
}

#[test]
fn unknown_endpoints_and_ambiguous_uris_are_refused() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let tcp = Target::Tcp(gw.port);
    for (method, path, status, message) in [
        (
            "GET",
            "/v1.41/debug/pprof/heap",
            403,
            "is not an allowed Docker API endpoint",
        ),
        ("GET", "/v1.41/containers/../info", 400, ""),
        ("GET", "/v1.41/containers//json", 400, "empty, '.' or '..'"),
        (
            "GET",
            "/v1.41/containers/json?all=1&all=0",
            400,
            "given twice",
        ),
        ("GET", "/v1.41/containers/json?all=1;x=2", 400, "';'"),
    ] {
        let (got, body) = raw::call(&tcp, method, path, "").unwrap();
        assert_eq!(got, status, "{method} {path}: {body}");
        assert!(body.contains(message), "{method} {path}: {body}");
    }
    let _ = docker_direct(&["version", "--format", "{{.Server.Version}}"]);
}

#[test]
fn the_inject_policy_shows_in_docker_inspect() {
    // A role with both policies, reached with a token (hash of "inject-token").
    let extra = "\n[policy.inject]\nlabels = { \"dockgate.injected\" = \"yes\" }\nmemory = 268435456\n\
        pids_limit = 128\nulimits = [\"nofile=1024:2048\"]\nextra_hosts = [\"cache.test:127.0.0.1\"]\n\
        dns = [\"127.0.0.53\"]\nenv = [\"DOCKGATE_INJECTED=1\"]\n\
        [roles.ci]\nallow = [\"read\", \"write\", \"exec\"]\npolicies = [\"conservative\", \"inject\"]\n\
        [[users]]\nname = \"runner\"\nrole = \"ci\"\n\
        token_sha256 = [\"8d66517311dfddbb0006a8fad7266b054acea9d3654ce99fca9850419c6a026d\"]\n";
    let gw = Gateway::start_with(GatewayOptions {
        policy: Some(extra.into()),
        ..GatewayOptions::new(Flavor::Debian)
    });
    let name = unique_name("inject");
    let (status, body) = raw::call_with(
        &Target::Tcp(gw.port),
        "POST",
        &format!("/v1.41/containers/create?name={name}"),
        &["Authorization: Bearer inject-token"],
        r#"{"Image":"busybox","Cmd":["true"],"Env":["A=1"],"HostConfig":{"NetworkMode":"none","Memory":1073741824}}"#,
    )
    .unwrap();
    let inspect = |format: &str| docker_direct(&["inspect", "-f", format, &name]);
    let seen = (status == 201).then(|| {
        (
            inspect("{{index .Config.Labels \"dockgate.injected\"}}"),
            inspect("{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}"),
            inspect("{{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}}{{end}}"),
            inspect("{{.HostConfig.ExtraHosts}} {{.HostConfig.Dns}}"),
            inspect("{{.Config.Env}}"),
        )
    });
    let _ = docker_direct_quiet(&["rm", "-f", "-v", &name]);
    assert_eq!(status, 201, "{body}\n{}", gw.sidecar_log());
    let (label, limits, ulimits, hosts, env) = seen.unwrap();
    assert_eq!(label, "yes");
    assert_eq!(
        limits, "268435456 128",
        "the asked 1 GiB was lowered to the maximum"
    );
    assert_eq!(ulimits, "nofile=1024:2048");
    assert_eq!(hosts, "[cache.test:127.0.0.1] [127.0.0.53]");
    assert!(
        env.contains("A=1") && env.contains("DOCKGATE_INJECTED=1"),
        "{env}"
    );
}

#[test]
fn imports_from_a_url_are_refused_where_dockerd_would_fetch_them() {
    // A loopback web server with an image archive: what dockerd could reach on its own.
    let dir = dockgate_tests::TempDir::new("fetch").unwrap();
    std::fs::write(dir.path().join("secret"), "host-only data").unwrap();
    let tar = std::process::Command::new("tar")
        .arg("-cf")
        .arg(dir.path().join("secret.tar"))
        .arg("-C")
        .arg(dir.path())
        .arg("secret")
        .status()
        .unwrap();
    assert!(tar.success());
    let port = dockgate_tests::free_port();
    let log = std::fs::File::create(dir.path().join("http.log")).unwrap();
    let mut server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    dockgate_tests::wait_until(std::time::Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let fetches = || {
        std::fs::read_to_string(dir.path().join("http.log"))
            .unwrap_or_default()
            .matches("GET /secret.tar")
            .count()
    };
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let repo = unique_name("fetched");
    let path =
        format!("/v1.41/images/create?fromSrc=http://127.0.0.1:{port}/secret.tar&repo={repo}");
    let (status, body) = raw::call(&Target::Tcp(gw.port), "POST", &path, "").unwrap();
    let before = fetches();
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("dockgate: docker import from a URL is not allowed"),
        "{body}"
    );
    assert_eq!(before, 0, "the gateway let dockerd fetch the URL");
    // dockerd alone fetches it: a real way to read what only the host can reach.
    let (status, body) =
        raw::call(&Target::Unix(SYSTEM_DOCKERD.into()), "POST", &path, "").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(fetches(), 1);
    assert!(docker_direct_quiet(&["image", "rm", &repo]));
    let _ = server.kill();
    let _ = server.wait();
}
