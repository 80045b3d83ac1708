//! Harmless CLI commands that the gateway once refused work through it, with both CLIs, and
//! answer as dockerd answers; and `dockgate explain` prints what `serve` answers.

use std::process::Command;

use dockgate_tests::docker::{
    docker_direct, docker_direct_quiet, run_script, Cli, Endpoint, Transport,
};
use dockgate_tests::nginx::{sidecar_binary, Flavor, Gateway, GatewayOptions, SYSTEM_DOCKERD};
use dockgate_tests::raw::{self, Target};
use dockgate_tests::{unique_name, TempDir};

#[test]
fn list_parameters_work_with_both_clis() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let gateway = Endpoint::gateway(&gw, Transport::Tcp);
    for cli in Cli::ALL {
        let ctx = TempDir::new("ctx").unwrap();
        let id = unique_name("id");
        std::fs::write(ctx.path().join("id"), &id).unwrap();
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "FROM busybox\nCOPY id /id\nRUN grep -q 127.0.0.2 /etc/hosts && grep -q 127.0.0.3 /etc/hosts\n",
        )
        .unwrap();
        let (a, b, c, img) = (
            unique_name("tag-a"),
            unique_name("tag-b"),
            unique_name("commit"),
            unique_name("committed"),
        );
        let vars = [
            ("CTX", ctx.path().display().to_string()),
            ("A", a.clone()),
            ("B", b.clone()),
            ("C", c.clone()),
            ("I", img.clone()),
        ];
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let script = "set -e
            DOCKER_BUILDKIT=0 docker build -q -t $A -t $B \
                --add-host a.test:127.0.0.2 --add-host b.test:127.0.0.3 $CTX >/dev/null
            [ \"$(docker image inspect -f '{{.Id}}' $A)\" = \"$(docker image inspect -f '{{.Id}}' $B)\" ]
            docker create --name $C --network none busybox true >/dev/null
            docker commit -c 'ENV ONE=1' -c 'ENV TWO=2' $C $I >/dev/null
            docker image inspect -f '{{.Config.Env}}' $I
            docker save $A $I | tar -t | grep -c manifest.json";
        let out = run_script(cli, &gateway, script, &vars, None);
        for name in [&a, &b, &img] {
            docker_direct_quiet(&["image", "rm", "-f", name]);
        }
        docker_direct_quiet(&["rm", "-f", &c]);
        assert_eq!(out.code, 0, "{cli}: {out}\n{}", gw.sidecar_log());
        assert!(
            out.stdout.contains("ONE=1") && out.stdout.contains("TWO=2"),
            "{out}"
        );
        assert!(out.stdout.trim_end().ends_with('1'), "{out}");
    }
}

#[test]
fn removing_a_link_answers_as_dockerd_does() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let web = unique_name("web");
    docker_direct(&[
        "create",
        "--name",
        &web,
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    // `docker rm --link web/db`: the link name has a slash.
    let path = format!("/v1.41/containers/{web}/db?link=1");
    let direct = raw::call(&Target::Unix(SYSTEM_DOCKERD.into()), "DELETE", &path, "").unwrap();
    let through = raw::call(&Target::Tcp(gw.port), "DELETE", &path, "").unwrap();
    docker_direct_quiet(&["rm", "-f", &web]);
    assert_eq!(through, direct, "dockerd answered {direct:?}");
    for cli in Cli::ALL {
        let out = run_script(
            cli,
            &Endpoint::gateway(&gw, Transport::Tcp),
            "docker rm --link $W/db",
            &[("W", &web)],
            None,
        );
        assert!(!out.stderr.contains("dockgate"), "{cli}: {out}");
    }
}

#[test]
fn explain_prints_what_serve_answers() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let config = gw.dir.path().join("sidecar.toml");
    let c = unique_name("explained");
    docker_direct(&[
        "create",
        "--name",
        &c,
        "--network",
        "none",
        "-v",
        "/etc:/hostetc",
        "busybox",
        "true",
    ]);
    let body = TempDir::new("body").unwrap();
    let privileged = body.path().join("privileged.json");
    std::fs::write(
        &privileged,
        r#"{"Image":"busybox","HostConfig":{"Privileged":true}}"#,
    )
    .unwrap();
    let plain = body.path().join("plain.json");
    std::fs::write(&plain, r#"{"Image":"busybox","Cmd":["true"]}"#).unwrap();
    let cases: Vec<(&str, String, Option<&std::path::Path>)> = vec![
        ("GET", "/v1.41/containers/json".into(), None),
        ("GET", "/v1.41/containers/json?all=1&all=0".into(), None),
        ("POST", "/v1.41/swarm/init".into(), None),
        ("POST", format!("/v1.41/containers/{c}/kill"), None),
        (
            "POST",
            "/v1.41/containers/create".into(),
            Some(privileged.as_path()),
        ),
        (
            "POST",
            "/v1.41/containers/create".into(),
            Some(plain.as_path()),
        ),
    ];
    let mut failures = Vec::new();
    for (method, uri, body) in cases {
        let mut cmd = Command::new(sidecar_binary());
        cmd.args(["explain", "--config"]).arg(&config).args([
            "--as",
            "anonymous@loopback",
            method,
            &uri,
        ]);
        if let Some(b) = body {
            cmd.arg("--body").arg(b);
        }
        let out = cmd.output().unwrap();
        let printed = String::from_utf8_lossy(&out.stdout).into_owned();
        let text = body
            .map(|b| std::fs::read_to_string(b).unwrap())
            .unwrap_or_default();
        // `explain` checks only: a create it allows is not made (dry run of the answer).
        let (status, answer) =
            if method == "POST" && uri.ends_with("/create") && out.status.success() {
                (201, String::new())
            } else {
                raw::call(&Target::Tcp(gw.port), method, &uri, &text).unwrap()
            };
        let allowed = printed.contains("verdict:  allow");
        if allowed != (status < 400) {
            failures.push(format!(
                "{method} {uri}: explain said\n{printed}serve answered {status} {answer}"
            ));
        }
        if !allowed {
            let message = answer.trim();
            if !printed.contains(message) {
                failures.push(format!(
                    "{method} {uri}: explain printed\n{printed}serve: {message}"
                ));
            }
        }
    }
    docker_direct_quiet(&["rm", "-f", &c]);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
