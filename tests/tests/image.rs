//! The gateway image (docker/Dockerfile) and its compose file, built offline: the base image
//! the Dockerfile's `FROM` names is made from the host's own Debian files
//! (scripts/test-debian-image.sh, with nginx), the image from `make deb`'s packages with the
//! network off. Started the one-line way (`docker run` with dockerd's socket mounted, the
//! host's network: tests never leave loopback; TLS files and a configuration mounted) and
//! with docker-compose, it serves both CLIs: run, `run -i`, exec, and a refusal with its
//! reason, and over TLS with the test client's certificate; then it is taken down.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use dockgate_tests::docker::{
    deployed_gateway_failures, docker_direct_quiet, run_script, Cli, Endpoint,
};
use dockgate_tests::nginx::tls;
use dockgate_tests::package_cache::{debian_image, free_loopback_address, Nginx, OriginTls};
use dockgate_tests::registry::{sha256_hex, skopeo, Distribution};
use dockgate_tests::scenarios::conformance_failures;
use dockgate_tests::{bash, free_port, repo_root, unique_name, wait_until, TempDir};

const IMAGE: &str = "dockgate:local";

fn sh(script: &str) -> (bool, String) {
    bash(script, &[("DOCKER_HOST", "unix:///var/run/docker.sock")])
}

/// The base image under the Dockerfile's `FROM` name, the packages, the gateway image.
fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let (ok, out) = sh(
            "set -e\n\
             scripts/test-debian-image.sh debian:bookworm-slim nginx adduser passwd perl-base \
               ca-certificates docker-registry\n\
             packaging/deb/build.sh target/deb >/dev/null\n\
             DOCKER_BUILDKIT=0 docker build -q --network none -f docker/Dockerfile -t dockgate:local . >/dev/null\n\
             DOCKER_BUILDKIT=0 docker build -q --network none -f docker/registry.Dockerfile \
               -t dockgate/registry:local . >/dev/null",
        );
        assert!(ok, "building the gateway image: {out}");
    });
    IMAGE
}

/// The CLIs through the gateway on `port`.
fn serves(port: u16) -> Vec<String> {
    deployed_gateway_failures(&Endpoint {
        label: "image".into(),
        env: vec![("DOCKER_HOST".into(), format!("tcp://127.0.0.1:{port}"))],
    })
}

fn ping(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        && sh(&format!("curl -sf http://127.0.0.1:{port}/_ping")).0
}

#[test]
fn the_image_started_the_one_line_way_serves_the_clis() {
    let image = image();
    let name = unique_name("gateway");
    let (port, tls_port) = (free_port(), free_port());
    // TLS too: the files mounted where the entrypoint looks, and a configuration naming the
    // test client's certificate (the built-in one plus a user).
    let t = tls();
    let dir = TempDir::new("image-config").unwrap();
    let config = dir.path().join("dockgate.toml");
    let default =
        std::fs::read_to_string(repo_root().join("sidecar/decision/src/default.toml")).unwrap();
    let user = format!(
        "\n[[users]]\nname = \"tester\"\nrole = \"developer\"\ncert_fingerprints = [\"{}\"]\n",
        t.client_fingerprint
    );
    std::fs::write(&config, default + &user).unwrap();
    let (ok, out) = sh(&format!(
        "docker run -d --name {name} --network host -e DOCKGATE_LISTEN=127.0.0.1:{port} \
         -e DOCKGATE_TLS=127.0.0.1:{tls_port} -v {config}:/etc/dockgate/dockgate.toml:ro \
         -v {cert}:/etc/dockgate/tls/server-cert.pem:ro \
         -v {key}:/etc/dockgate/tls/server-key.pem:ro -v {ca}:/etc/dockgate/tls/ca.pem:ro \
         -v /var/run/docker.sock:/var/run/docker.sock {image}",
        config = config.display(),
        cert = t.server_cert.display(),
        key = t.server_key.display(),
        ca = t.ca.display(),
    ));
    assert!(ok, "{out}");
    let up = wait_until(Duration::from_secs(20), || ping(port));
    let logs = sh(&format!("docker logs {name}")).1;
    let mut failures = if up {
        let mut f = serves(port);
        f.extend(conformance_failures(&Endpoint {
            label: "image".into(),
            env: vec![("DOCKER_HOST".into(), format!("tcp://127.0.0.1:{port}"))],
        }));
        f
    } else {
        vec![format!("not up: {logs}")]
    };
    let over_tls = Endpoint {
        label: "image-tls".into(),
        env: vec![
            ("DOCKER_HOST".into(), format!("tcp://127.0.0.1:{tls_port}")),
            ("DOCKER_TLS_VERIFY".into(), "1".into()),
            (
                "DOCKER_CERT_PATH".into(),
                t.client_dir.display().to_string(),
            ),
        ],
    };
    for cli in Cli::ALL {
        let script = "docker run --rm --pull never --network none busybox echo over-tls";
        let o = run_script(cli, &over_tls, script, &[], None);
        if o.code != 0 || o.stdout.trim() != "over-tls" {
            failures.push(format!("{cli} over TLS: {o}"));
        }
    }
    docker_direct_quiet(&["rm", "-f", &name]);
    assert!(failures.is_empty(), "{}\n{logs}", failures.join("\n"));
}

/// The package cache's origin in the compose test: one file, over HTTP and HTTPS.
const PKG_HOST: &str = "deb.stack.test";
const PKG_PATH: &str = "/debian/pool/main/s/stack/stack_1.0_all.deb";

/// docker/stack.toml for this test: the package cache's state and address, its host at a
/// loopback origin, and a registry user `ci` who may push `ci/...`.
fn stack_config(state: &Path, address: &str, origin: u16, origin_http: u16) -> String {
    let shipped = std::fs::read_to_string(repo_root().join("docker/stack.toml")).unwrap();
    let hosts = shipped.find("[[package_cache.hosts]]").expect("hosts");
    let config = shipped[..hosts]
        .replace(
            "dir = \"/var/lib/dockgate/package-cache\"",
            &format!("dir = \"{}/package-cache\"", state.display()),
        )
        .replace(
            "address = \"127.0.0.1\"",
            &format!("address = \"{address}\""),
        );
    assert!(config.contains(&state.display().to_string()), "{config}");
    format!(
        "{config}[[package_cache.hosts]]\nname = \"{PKG_HOST}\"\nrules = \"apt\"\n\
         origin = \"127.0.0.1:{origin}\"\norigin_http = \"127.0.0.1:{origin_http}\"\n\n\
         [[users]]\nname = \"ci\"\nrole = \"developer\"\ntoken_sha256 = [\"{}\"]\n\n\
         [registry.users.ci]\npull = [\"*\"]\npush = [\"ci\"]\n",
        sha256_hex("stack-token")
    )
}

/// The stack (docker/compose.yml: gateway, hosted registry, pull-through upstream) comes up,
/// serves the Docker API (both CLIs, a refusal with its reason), the registry front-end
/// (a pull that only the upstream's remote can answer, a push and its pull, a refused push)
/// and the package cache (an HTTPS download in a container, twice, one origin fetch), and
/// goes down with its volumes.
#[test]
fn the_compose_stack_serves_the_api_the_registry_and_the_package_cache() {
    image();
    let dir = TempDir::new("stack").unwrap();
    let d = dir.path();
    // The upstream's remote: a loopback registry with an image nobody else has.
    let remote = Distribution::start("stack-remote");
    let probe = format!("127.0.0.1:{}/library/stack-probe:1", remote.port);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "docker-daemon:busybox:latest",
        &format!("docker://{probe}"),
    ]);
    // The package cache's origin.
    let tls = OriginTls::new(&d.join("origin-tls"), &[PKG_HOST]);
    let www = d.join("www");
    let payload: String = (0..20_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    std::fs::create_dir_all(www.join(PKG_PATH.trim_start_matches('/')).parent().unwrap()).unwrap();
    std::fs::write(www.join(PKG_PATH.trim_start_matches('/')), &payload).unwrap();
    let (origin_port, origin_http_port) = (free_port(), free_port());
    let origin = Nginx::start(
        &d.join("origin"),
        &format!(
            "server {{\n  listen 127.0.0.1:{origin_port} ssl;\n  listen 127.0.0.1:{origin_http_port};\n  \
             server_name {PKG_HOST};\n  ssl_certificate {};\n  ssl_certificate_key {};\n  root {};\n}}\n",
            tls.cert.display(),
            tls.key.display(),
            www.display()
        ),
        || std::net::TcpStream::connect(("127.0.0.1", origin_port)).is_ok(),
    );
    let address = free_loopback_address();
    let config = d.join("stack.toml");
    std::fs::write(
        &config,
        stack_config(d, &address, origin_port, origin_http_port),
    )
    .unwrap();

    let project = unique_name("stack").replace('-', "");
    let (port, registry_port) = (free_port(), free_port());
    let compose = format!(
        "DOCKGATE_PORT={port} DOCKGATE_TLS_PORT={tls_port} DOCKGATE_REGISTRY_PORT={registry_port} \
         DOCKGATE_CONFIG={config} DOCKGATE_STATE={state} DOCKGATE_ORIGIN_CAS={ca} \
         DOCKGATE_UPSTREAM_URL=http://127.0.0.1:{remote} \
         docker-compose -p {project} -f docker/compose.yml",
        tls_port = free_port(),
        config = config.display(),
        state = d.display(),
        ca = tls.ca.display(),
        remote = remote.port,
    );
    let (ok, out) = sh(&format!("{compose} up -d --no-build 2>&1"));
    let down = || sh(&format!("{compose} down -v 2>&1"));
    if !ok {
        let logs = sh(&format!("{compose} logs --no-color 2>&1")).1;
        down();
        panic!("{out}\n{logs}");
    }
    let registry = format!("127.0.0.1:{registry_port}");
    let up = wait_until(Duration::from_secs(30), || {
        ping(port)
            && sh(&format!(
                "curl -s -o /dev/null -w %{{http_code}} http://{registry}/v2/ | grep -q 401"
            ))
            .0
    });
    let mut failures = if up {
        serves(port)
    } else {
        vec!["not up".to_string()]
    };
    if up {
        failures.extend(registry_failures(port, &registry, &probe));
        failures.extend(package_cache_failures(port, &origin));
    }
    let logs = sh(&format!("{compose} logs --no-color 2>&1")).1;
    let (down_ok, down_out) = down();
    assert!(failures.is_empty(), "{}\n{logs}", failures.join("\n"));
    assert!(down_ok, "{down_out}");
    assert!(!ping(port), "still listening after down");
}

/// The front-end through the stack's Docker API, as a user would use it.
fn registry_failures(port: u16, registry: &str, probe: &str) -> Vec<String> {
    let client = TempDir::new("stack-client").unwrap();
    let gateway = Endpoint {
        label: "stack".into(),
        env: vec![
            ("DOCKER_HOST".into(), format!("tcp://127.0.0.1:{port}")),
            ("DOCKER_CONFIG".into(), client.path().display().to_string()),
        ],
    };
    let mut failures = Vec::new();
    let probe_path = probe.split_once('/').unwrap().1;
    let ours = [
        format!("{registry}/{probe_path}"),
        format!("{registry}/ci/stack-app:1"),
        format!("{registry}/other/stack-app:1"),
    ];
    // dockerd pulls what only the upstream's remote has: front-end, hosted miss, upstream
    // (docker logs in: the front-end's /v2/ asks every plain-HTTP client to). The push goes
    // to the hosted registry, and pulls back after the local copy is gone.
    let script = format!(
        "set -e\n\
         echo stack-token | docker login -u ci --password-stdin {registry} >/dev/null\n\
         docker pull -q {pulled}\n\
         docker tag busybox:latest {app}\n\
         docker push -q {app} >/dev/null\n\
         docker rmi -f {app} >/dev/null\n\
         docker pull -q {app}\n\
         docker tag busybox:latest {other}\n\
         docker push {other} 2>&1 || true",
        pulled = ours[0],
        app = ours[1],
        other = ours[2],
    );
    let o = run_script(Cli::Current, &gateway, &script, &[], None);
    if o.code != 0 || !o.stdout.contains(&ours[0]) || !o.stdout.contains(&ours[1]) {
        failures.push(format!("registry through the stack: {o}"));
    }
    if !o
        .stdout
        .contains("denied: dockgate: user ci may not push other/stack-app (push rights: ci/)")
    {
        failures.push(format!("the refused push does not say why: {o}"));
    }
    for image in &ours {
        docker_direct_quiet(&["rmi", "-f", image]);
    }
    failures
}

/// Two containers created through the stack download one file over HTTPS from the cached
/// name: both get it, the origin sees one request.
fn package_cache_failures(port: u16, origin: &Nginx) -> Vec<String> {
    let image = debian_image();
    let gateway = Endpoint {
        label: "stack".into(),
        env: vec![("DOCKER_HOST".into(), format!("tcp://127.0.0.1:{port}"))],
    };
    let fetch = format!(
        "import urllib.request as u; print(len(u.urlopen('https://{PKG_HOST}{PKG_PATH}', timeout=30).read()))"
    );
    let mut failures = Vec::new();
    for round in 1..=2 {
        let o = run_script(
            Cli::Current,
            &gateway,
            &format!("docker run --rm --pull never --network host {image} python3 -c \"{fetch}\""),
            &[],
            None,
        );
        if o.code != 0 || o.stdout.trim() != "20000" {
            failures.push(format!("download {round} through the package cache: {o}"));
        }
    }
    let fetched = origin
        .access_log()
        .lines()
        .filter(|l| l.contains(PKG_PATH))
        .count();
    if fetched != 1 {
        failures.push(format!(
            "the origin served {fetched} requests for two downloads:\n{}",
            origin.access_log()
        ));
    }
    failures
}
