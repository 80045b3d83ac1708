//! The gateway image (docker/Dockerfile) and its compose file, built offline: the base image
//! the Dockerfile's `FROM` names is made from the host's own Debian files
//! (scripts/test-debian-image.sh, with nginx), the image from `make deb`'s packages with the
//! network off. Started the one-line way (`docker run` with dockerd's socket mounted, the
//! host's network: tests never leave loopback; TLS files and a configuration mounted) and
//! with docker-compose, it serves both CLIs: run, `run -i`, exec, and a refusal with its
//! reason, and over TLS with the test client's certificate; then it is taken down.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use dockgate_tests::docker::{
    deployed_gateway_failures, docker_direct_quiet, run_script, Cli, Endpoint,
};
use dockgate_tests::nginx::tls;
use dockgate_tests::{free_port, repo_root, unique_name, wait_until, TempDir};

const IMAGE: &str = "dockgate:local";

fn sh(script: &str) -> (bool, String) {
    let out = Command::new("bash")
        .args(["-c", script])
        .current_dir(repo_root())
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .output()
        .expect("bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The base image under the Dockerfile's `FROM` name, the packages, the gateway image.
fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let (ok, out) = sh(
            "set -e\n\
             scripts/test-debian-image.sh debian:bookworm-slim nginx adduser passwd perl-base\n\
             packaging/deb/build.sh target/deb >/dev/null\n\
             DOCKER_BUILDKIT=0 docker build -q --network none -f docker/Dockerfile -t dockgate:local . >/dev/null",
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
        serves(port)
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

#[test]
fn the_compose_stack_comes_up_serves_and_goes_down() {
    image();
    let project = unique_name("compose").replace('-', "");
    let port = free_port();
    let compose = format!(
        "DOCKGATE_PORT={port} DOCKGATE_TLS_PORT={} docker-compose -p {project} -f docker/compose.yml",
        free_port()
    );
    let (ok, out) = sh(&format!("{compose} up -d --no-build 2>&1"));
    assert!(ok, "{out}");
    let up = wait_until(Duration::from_secs(20), || ping(port));
    let logs = sh(&format!("{compose} logs --no-color 2>&1")).1;
    let failures = if up {
        serves(port)
    } else {
        vec![format!("not up: {logs}")]
    };
    let (down, out) = sh(&format!("{compose} down 2>&1"));
    assert!(failures.is_empty(), "{}\n{logs}", failures.join("\n"));
    assert!(down, "{out}");
    assert!(!ping(port), "still listening after down");
}
