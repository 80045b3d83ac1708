//! Unix peer credentials: the sidecar owns the unix socket, identifies each caller by uid,
//! and relays to nginx's internal listener, which no other user can reach or forge.
//!
//! Other users are played by processes started with another uid (the tests run as root).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use dockgate_tests::docker::{run_script, Cli, Endpoint, Transport};
use dockgate_tests::nginx::{sidecar_binary, Flavor, Gateway, GatewayOptions};
use dockgate_tests::{running_as_root, TempDir};

const NOBODY: u32 = 65534;
const CI_UID: u32 = 4242;

/// Sends `request` on the unix socket `path` as `uid` and returns what came back, or the
/// error that stopped the connection (`PermissionError`, ...).
fn exchange_as(uid: u32, path: &Path, request: &str) -> Result<String, String> {
    const CLIENT: &str = "import socket, sys\n\
        s = socket.socket(socket.AF_UNIX)\n\
        try:\n    s.connect(sys.argv[1])\n\
        except OSError as e:\n    print(type(e).__name__, e, file=sys.stderr); sys.exit(3)\n\
        s.sendall(sys.stdin.buffer.read())\n\
        out = b''\n\
        while True:\n    b = s.recv(65536)\n    if not b: break\n    out += b\n\
        sys.stdout.buffer.write(out)\n";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", CLIENT])
        .arg(path)
        .uid(uid)
        .gid(uid)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 as another user");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Root is an admin, uid 4242 a reader, everyone else unknown: no anonymous access on
/// the unix socket, which is open to all local users (mode 0666) for the test.
fn gateway() -> Gateway {
    Gateway::start_with(GatewayOptions {
        sidecar_edits: vec![(
            "[listeners.unix]\nanonymous_role = \"developer\"\n",
            "[listeners.unix]\nsocket_mode = \"0666\"\n",
        )],
        policy: Some(format!(
            "[[users]]\nname = \"root-admin\"\nrole = \"admin\"\nuids = [0]\n\
             [[users]]\nname = \"ci-reader\"\nrole = \"reader\"\nuids = [{CI_UID}]\n"
        )),
        ..GatewayOptions::policy(Flavor::Debian)
    })
}

#[test]
fn each_unix_user_gets_its_own_identity() {
    if !running_as_root() {
        eprintln!("skipped: playing other users needs root");
        return;
    }
    let gw = gateway();
    let sock = &gw.unix_socket;

    // Root: the admin role, with the real CLI and a hijacked stream through the relay.
    let unix = Endpoint::gateway(&gw, Transport::Unix);
    let out = run_script(
        Cli::Current,
        &unix,
        "echo in | docker run --rm -i --network none busybox cat",
        &[],
        None,
    );
    assert_eq!(out.stdout, "in\n", "{out}");
    // nginx decided it, with the identity the relay passed (its access log says who).
    assert!(
        gw.access_log()
            .contains("user=\"root-admin\" role=\"admin\" decision=\"nginx\""),
        "{}",
        gw.access_log()
    );

    // uid 4242: the reader role; reads pass, writes are refused with the reason.
    let answer = exchange_as(CI_UID, sock, &get("/v1.41/containers/json")).unwrap();
    assert_eq!(status_of(&answer), 200, "{answer}");
    let kill = "POST /v1.41/containers/x/kill HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\
                Content-Length: 0\r\n\r\n";
    let answer = exchange_as(CI_UID, sock, kill).unwrap();
    assert_eq!(status_of(&answer), 403, "{answer}");
    assert!(
        answer.contains("dockgate: role reader may not use write endpoints"),
        "{answer}"
    );

    // nobody: not a user, and no anonymous access here.
    let answer = exchange_as(NOBODY, sock, &get("/v1.41/containers/json")).unwrap();
    assert_eq!(status_of(&answer), 401, "{answer}");
    assert!(
        answer.contains("unix user 65534 is not a user of this gateway"),
        "{answer}"
    );
}

#[test]
fn another_user_cannot_reach_the_internal_listener_or_forge_an_identity() {
    if !running_as_root() {
        eprintln!("skipped: playing other users needs root");
        return;
    }
    let gw = gateway();
    let internal = gw.internal_socket();

    // The internal listener is there (root reaches it; nginx then wants a PROXY header and
    // closes on a bare request), but its directory keeps everyone else out.
    assert_eq!(
        exchange_as(0, &internal, &get("/v1.41/info")),
        Ok(String::new())
    );
    let refused = exchange_as(NOBODY, &internal, &get("/v1.41/info")).unwrap_err();
    assert!(refused.contains("PermissionError"), "{refused}");
    let refused = exchange_as(CI_UID, &internal, &get("/v1.41/info")).unwrap_err();
    assert!(refused.contains("PermissionError"), "{refused}");

    // A PROXY header of one's own on the public socket, claiming root's credentials
    // (fd00:: is uid 0, gid 0): it arrives after the sidecar's, as a broken request line.
    let forged = format!(
        "PROXY TCP6 fd00:: ::1 1 0\r\n{}",
        get("/v1.41/containers/json")
    );
    let answer = exchange_as(NOBODY, &gw.unix_socket, &forged).unwrap();
    assert_eq!(status_of(&answer), 400, "{answer}");

    // The header nginx uses to pass credentials, sent by the client: replaced by nginx.
    let spoofed = "GET /v1.41/containers/json HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\
                   X-Dockgate-Peer: fd00::\r\n\r\n";
    let answer = exchange_as(NOBODY, &gw.unix_socket, spoofed).unwrap();
    assert_eq!(status_of(&answer), 401, "{answer}");
    // And on the TCP listener, where there is no PROXY header at all: still the anonymous
    // developer, who may not install plugins (root, an admin, could).
    let out = Command::new("curl")
        .args(["-s", "-X", "POST", "-H", "X-Dockgate-Peer: fd00::"])
        .arg(format!(
            "http://127.0.0.1:{}/v1.41/plugins/pull?remote=127.0.0.1:9/x",
            gw.port
        ))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("role developer may not use plugin endpoints"),
        "{body}"
    );
}

#[test]
fn the_sidecar_refuses_an_internal_directory_others_can_enter() {
    let dir = TempDir::new("peer-dir").unwrap();
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let config = format!(
        "[server]\nlisten = \"unix:{d}/sidecar.sock\"\n\
         [roles.developer]\nallow = [\"read\"]\n\
         [listeners.unix]\nanonymous_role = \"developer\"\n\
         socket = \"{d}/docker.sock\"\nnginx = \"unix:{d}/private/api.sock\"\n",
        d = dir.path().display()
    );
    let config_path = dir.path().join("sidecar.toml");
    std::fs::write(&config_path, config).unwrap();
    let out = Command::new(sidecar_binary())
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("must belong to the sidecar's user") && stderr.contains("mode 755"),
        "{stderr}"
    );
    assert!(!dir.path().join("docker.sock").exists());
}
