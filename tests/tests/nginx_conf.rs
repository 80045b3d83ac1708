//! The module loads into both nginx builds, refuses bad configuration with nginx's own clear
//! messages, and the shipped example configuration is valid.

use std::fs;
use std::process::Command;

use dockgate_tests::nginx::{tls, Flavor};
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

#[test]
fn shipped_example_configuration_is_valid() {
    let repo = repo_root();
    let dir = TempDir::new("example").unwrap();
    let d = dir.path().display().to_string();
    let tls = tls();
    let example = fs::read_to_string(repo.join("nginx-conf/nginx.conf")).unwrap();
    let conf = example
        .replace(
            "/usr/lib/nginx/modules/ngx_http_dockgate_module.so",
            &Flavor::Debian.module().display().to_string(),
        )
        .replace(
            "/etc/nginx/dockgate/tls/server-cert.pem",
            &tls.server_cert.display().to_string(),
        )
        .replace(
            "/etc/nginx/dockgate/tls/server-key.pem",
            &tls.server_key.display().to_string(),
        )
        .replace(
            "/etc/nginx/dockgate/tls/ca.pem",
            &tls.ca.display().to_string(),
        )
        .replace(
            "/etc/nginx/dockgate/",
            &format!("{}/", repo.join("nginx-conf").display()),
        )
        .replace("/run/dockgate/", &format!("{d}/"))
        .replace("/var/log/nginx/", &format!("{d}/"))
        .replace("/run/nginx.pid", &format!("{d}/nginx.pid"))
        .replace("/etc/dockgate/dockgate.toml", &format!("{d}/dockgate.toml"));
    fs::write(
        dir.path().join("dockgate.toml"),
        fs::read_to_string(repo.join("sidecar/decision/src/default.toml")).unwrap(),
    )
    .unwrap();
    let unreplaced = conf
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .any(|l| l.contains("/etc/nginx"));
    assert!(!unreplaced, "unreplaced path in:\n{conf}");
    // The sidecar makes this directory (mode 0700) before nginx starts.
    fs::create_dir(dir.path().join("private")).unwrap();
    let (ok, err) = nginx_t(Flavor::Debian, &conf);
    assert!(ok, "example nginx.conf: {err}");
}
