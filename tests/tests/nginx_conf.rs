//! The module loads into both nginx builds, refuses bad configuration with nginx's own clear
//! messages, and what the one renderer (`dockgate nginx-conf`) writes is valid.

use std::fs;
use std::process::Command;

use dockgate_tests::nginx::{sidecar_binary, tls, Flavor};
use dockgate_tests::{repo_root, TempDir};

/// `nginx -t` on `conf` (placed in a fresh prefix); returns (success, stderr).
fn nginx_t(flavor: Flavor, conf: &str) -> (bool, String) {
    let dir = TempDir::new("conf-test").unwrap();
    let path = dir.path().join("nginx.conf");
    fs::create_dir_all(dir.path().join("logs")).unwrap();
    fs::write(&path, conf).unwrap();
    let out = Command::new(flavor.nginx())
        .arg("-t")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .output()
        .expect("nginx -t");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn minimal(module: &str, location_body: &str) -> String {
    format!(
        "load_module {module};\nerror_log stderr;\npid nginx.pid;\nevents {{}}\n\
         http {{\n  client_body_temp_path tmp;\n  proxy_temp_path tmp;\n\
         server {{\n    listen 127.0.0.1:1;\n    location / {{\n{location_body}\n    }}\n  }}\n}}\n"
    )
}

#[test]
fn module_loads_into_both_builds() {
    for flavor in Flavor::ALL {
        let module = flavor.module().display().to_string();
        let (ok, err) = nginx_t(flavor, &minimal(&module, "dockgate on;"));
        assert!(ok, "{flavor} ({}): {err}", flavor.version());
        let (ok, err) = nginx_t(flavor, &minimal(&module, "dockgate_status;"));
        assert!(ok, "{flavor}: {err}");
    }
}

#[test]
fn module_built_for_another_version_is_refused_clearly() {
    let debian_module = Flavor::Debian.module().display().to_string();
    let (ok, err) = nginx_t(Flavor::Vendored, &minimal(&debian_module, ""));
    assert!(!ok);
    assert!(
        err.contains("version 1022001 instead of"),
        "unexpected message: {err}"
    );
    let vendored_module = Flavor::Vendored.module().display().to_string();
    let (ok, err) = nginx_t(Flavor::Debian, &minimal(&vendored_module, ""));
    assert!(!ok);
    assert!(
        err.contains("instead of 1022001"),
        "unexpected message: {err}"
    );
}

#[test]
fn bad_directives_name_the_value_and_line() {
    let module = Flavor::Debian.module().display().to_string();
    let cases = [
        ("dockgate maybe;", "invalid value"),
        ("dockgate on;\ndockgate off;", "is duplicate"),
        ("dockgate on off;", "invalid number of arguments"),
        ("dockgate_status on;", "invalid number of arguments"),
    ];
    for (body, message) in cases {
        let (ok, err) = nginx_t(Flavor::Debian, &minimal(&module, body));
        assert!(!ok, "{body:?} was accepted");
        assert!(err.contains(message), "{body:?}: {err}");
        assert!(err.contains("nginx.conf:"), "{body:?} names no line: {err}");
    }
}

/// `dockgate_policy` reads the sidecar's TOML: a bad file fails `nginx -t` with the file's
/// line and key (as `dockgate check-config` names them) and the nginx.conf line; a location
/// that decides needs the policy; a good file and a named hand-over pass.
#[test]
fn the_policy_file_is_checked_when_nginx_loads() {
    let module = Flavor::Debian.module().display().to_string();
    let dir = TempDir::new("policy-conf").unwrap();
    let good = dir.path().join("good.toml");
    fs::write(
        &good,
        fs::read_to_string(repo_root().join("sidecar/decision/src/default.toml")).unwrap(),
    )
    .unwrap();
    let bad = dir.path().join("bad.toml");
    fs::write(
        &bad,
        "[roles.dev]\nallow = [\"read\"]\n[[users]]\nname = \"a\"\nrole = \"nosuch\"\n\
         [listeners.loopback]\n",
    )
    .unwrap();
    let conf = |policy: &str, body: &str| {
        minimal(&module, body).replace(
            "http {\n",
            &format!("http {{\n  {policy}\n  upstream dockerd {{ server 127.0.0.1:1; }}\n"),
        )
    };
    let decide = "dockgate_decide @ask;\n    proxy_pass http://dockerd;\n    }\n    \
                  location @ask {\n    return 204;";
    let (ok, err) = nginx_t(
        Flavor::Debian,
        &conf(&format!("dockgate_policy {};", good.display()), decide),
    );
    assert!(ok, "{err}");
    let (ok, err) = nginx_t(
        Flavor::Debian,
        &conf(&format!("dockgate_policy {};", bad.display()), decide),
    );
    assert!(!ok);
    assert!(
        err.contains("line 5: users[0].role") && err.contains("nosuch"),
        "names no line and key: {err}"
    );
    assert!(
        err.contains("nginx.conf:"),
        "names no nginx.conf line: {err}"
    );
    let (ok, err) = nginx_t(
        Flavor::Debian,
        &conf("dockgate_policy /nonexistent.toml;", ""),
    );
    assert!(
        !ok && err.contains("cannot read /nonexistent.toml"),
        "{err}"
    );
    let (ok, err) = nginx_t(Flavor::Debian, &conf("", decide));
    assert!(
        !ok && err.contains("needs \"dockgate_policy\" earlier in the http block"),
        "{err}"
    );
    let (ok, err) = nginx_t(
        Flavor::Debian,
        &conf(
            &format!("dockgate_policy {};", good.display()),
            "dockgate_decide /ask;",
        ),
    );
    assert!(!ok && err.contains("it must name a location"), "{err}");
}

/// `dockgate nginx-conf ARGS`: the renderer as the scripts, the image and the package use it.
fn rendered(args: &[&str]) -> String {
    let out = Command::new(sidecar_binary())
        .arg("nginx-conf")
        .args(args)
        .output()
        .expect("dockgate nginx-conf");
    assert!(
        out.status.success(),
        "dockgate nginx-conf {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_rendered_configuration_is_valid_for_both_builds_with_every_part() {
    let repo = repo_root();
    let dir = TempDir::new("rendered").unwrap();
    let d = dir.path().display().to_string();
    let tls = tls();
    // The built-in configuration with this test's sockets and a registry table.
    let config = fs::read_to_string(repo.join("sidecar/decision/src/default.toml"))
        .unwrap()
        .replace("/run/dockgate/", &format!("{d}/"))
        + "\n[registry]\nrealm = \"test\"\n";
    let config_path = dir.path().join("dockgate.toml");
    fs::write(&config_path, config).unwrap();
    // The sidecar makes this directory (mode 0700) before nginx starts.
    fs::create_dir(dir.path().join("private")).unwrap();
    let includes = repo.join("nginx-conf");
    for flavor in Flavor::ALL {
        let module = flavor.module();
        let conf = rendered(&[
            "--config",
            &config_path.display().to_string(),
            "--includes",
            &includes.display().to_string(),
            "--module",
            &module.display().to_string(),
            "--prefix",
            &d,
            "--error-log",
            "stderr",
            "--access-log",
            &format!("{d}/access.log dockgate"),
            "--listen",
            "loopback=127.0.0.1:1",
            "--tls",
            "tls=127.0.0.1:2",
            "--tls-dir",
            &tls.ca.parent().unwrap().display().to_string(),
            "--registry",
            "127.0.0.1:3,team=team-a,name=localhost",
            "--registry",
            "127.0.0.1:4",
            "--registry-hosted",
            "127.0.0.1:5",
            "--registry-upstream",
            "127.0.0.1:6",
            "--registry-cache",
            &format!("{d}/registry-cache"),
        ]);
        assert!(
            !conf.contains("/etc/nginx"),
            "an installed path in:\n{conf}"
        );
        let (ok, err) = nginx_t(flavor, &conf);
        assert!(ok, "{flavor}: rendered nginx.conf: {err}\n{conf}");
    }
}

#[test]
fn the_debian_site_is_the_renderers_http_block() {
    let site = rendered(&[
        "--config",
        &repo_root()
            .join("sidecar/decision/src/default.toml")
            .display()
            .to_string(),
        "--policy-path",
        "/etc/dockgate/dockgate.toml",
        "--site",
        "--tls",
        "tls=2376",
    ]);
    assert!(site.contains("dockgate_policy /etc/dockgate/dockgate.toml;"));
    assert!(site.contains("listen unix:/run/dockgate/private/docker-api.sock proxy_protocol;"));
    assert!(!site.contains("load_module") && !site.contains("events"));
    let err = Command::new(sidecar_binary())
        .args(["nginx-conf", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("/nonexistent.toml"));
}
