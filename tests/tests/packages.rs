//! The Debian packages (`make deb`, packaging/deb/build.sh), installed on this machine the way
//! an operator would: lintian finds no error, the unit passes `systemd-analyze verify` and
//! `security`, `dpkg -i` enables the module for Debian's nginx and `nginx -t` accepts the
//! packaged site; the sidecar runs as the unit starts it (its user, its runtime directory)
//! and nginx with the system's configuration, and the docker CLIs work through the installed
//! gateway's unix socket (a hijacked stream with stdin, exec, a refusal with its reason).
//! `dpkg --purge` then leaves nothing: no file, no user, no module link.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use dockgate_tests::docker::{deployed_gateway_failures, Endpoint};
use dockgate_tests::scenarios::conformance_failures;
use dockgate_tests::{bash, repo_root, running_as_root, wait_until, TempDir};

const PACKAGES: [&str; 2] = ["dockgate", "libnginx-mod-http-dockgate"];

fn sh(script: &str) -> (bool, String) {
    bash(script, &[])
}

fn must(script: &str) -> String {
    let (ok, out) = sh(script);
    assert!(ok, "{script}\n{out}");
    out
}

/// Undoes the installation however the test ends.
struct Installed {
    tls: bool,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = sh("nginx -s quit 2>/dev/null; sleep 0.5; pkill -f '^/usr/bin/dockgate serve --config /etc/dockgate/dockgate.toml' || true");
        let _ = sh("rm -f /etc/nginx/sites-enabled/dockgate /var/log/nginx/docker-api.log");
        if self.tls {
            let _ = sh("rm -rf /etc/nginx/dockgate/tls");
        }
        let _ = sh(&format!(
            "dpkg --purge {} >/dev/null 2>&1",
            PACKAGES.join(" ")
        ));
    }
}

#[test]
fn the_packages_install_serve_and_purge_cleanly() {
    if !running_as_root() {
        eprintln!("skipped: installing packages needs root");
        return;
    }
    let out = TempDir::new("debs").unwrap();
    let dir = out.path().display().to_string();
    must(&format!(
        "{}/packaging/deb/build.sh {dir}",
        repo_root().display()
    ));
    let debs = format!("{dir}/*.deb");

    // lintian: no error.
    let (_, lint) = sh(&format!("lintian --tag-display-limit 0 {debs} 2>&1"));
    let errors: Vec<&str> = lint.lines().filter(|l| l.starts_with("E: ")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{lint}");

    let www_data_in_docker = sh("id -nG www-data | grep -qw docker").0;
    let before_users = must("getent passwd | cut -d: -f1 | sort");
    let installed = Installed { tls: true };
    must(&format!("dpkg -i {debs}"));
    // The files the packages own, to check again after the purge.
    let owned = must(&format!("dpkg -L {}", PACKAGES.join(" ")));

    // The module is enabled the Debian way, for the ABI it was built against.
    let link = fs::read_link("/etc/nginx/modules-enabled/50-mod-http-dockgate.conf").unwrap();
    assert_eq!(
        link,
        Path::new("/usr/share/nginx/modules-available/mod-http-dockgate.conf")
    );
    let depends = must("dpkg-query -W -f='${Depends}' libnginx-mod-http-dockgate");
    let abi = must("dpkg-query -W -f='${Provides}' nginx");
    let abi = abi
        .split(',')
        .map(str::trim)
        .find(|p| p.starts_with("nginx-abi-"))
        .unwrap();
    assert!(depends.contains(abi), "{depends} does not name {abi}");
    let conffiles = must("dpkg-query -W -f='${Conffiles}' dockgate");
    assert!(
        conffiles.contains("/etc/dockgate/dockgate.toml"),
        "{conffiles}"
    );

    // The unit, as systemd reads it.
    let verify = must("systemd-analyze verify /lib/systemd/system/dockgate.service 2>&1");
    assert!(!verify.contains("rror"), "{verify}");
    let security =
        must("systemd-analyze security --offline=yes /lib/systemd/system/dockgate.service 2>&1");
    let exposure: f64 = security
        .lines()
        .find_map(|l| l.split("exposure level for dockgate.service: ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(99.0);
    assert!(exposure < 2.0, "exposure {exposure}:\n{security}");

    // The site, with TLS files in place, as the site's comment says.
    must(&format!(
        "{}/scripts/gen-certs.sh /etc/nginx/dockgate/tls",
        repo_root().display()
    ));
    must("ln -sf /etc/nginx/sites-available/dockgate /etc/nginx/sites-enabled/dockgate");

    // The sidecar as the unit starts it: its user and groups, /run/dockgate made for it.
    let unit = fs::read_to_string("/lib/systemd/system/dockgate.service").unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart")
        .to_string();
    must("install -d -o dockgate -g dockgate -m 0755 /run/dockgate");
    let log = out.path().join("sidecar.log");
    let sidecar = Command::new("setpriv")
        .args([
            "--reuid",
            "dockgate",
            "--regid",
            "dockgate",
            "--init-groups",
            "--",
        ])
        .args(exec.split_whitespace())
        .stdout(fs::File::create(&log).unwrap())
        .stderr(fs::File::create(out.path().join("sidecar.err")).unwrap())
        .spawn()
        .expect("start the sidecar as the unit would");
    assert!(
        wait_until(Duration::from_secs(10), || Path::new(
            "/run/dockgate/sidecar.sock"
        )
        .exists()),
        "the sidecar did not start: {}",
        fs::read_to_string(out.path().join("sidecar.err")).unwrap_or_default()
    );
    // nginx after the sidecar, as the unit orders them (its private listener directory is
    // the sidecar's to make).
    must("nginx -t 2>&1");
    rendered_as_documented(out.path());
    must("nginx 2>&1");
    let socket = Path::new("/run/dockgate/docker.sock");
    let endpoint = Endpoint::unix("installed", socket);
    let mut failures = deployed_gateway_failures(&endpoint);
    failures.extend(conformance_failures(&endpoint));
    let error_log = fs::read_to_string("/var/log/nginx/error.log").unwrap_or_default();
    must("nginx -s quit");
    let mut sidecar = sidecar;
    let _ = Command::new("kill").arg(sidecar.id().to_string()).status();
    let _ = sidecar.wait();
    assert!(failures.is_empty(), "{}\n{error_log}", failures.join("\n"));

    // Purge: what the packages owned, their user, the module link: gone.
    drop(installed);
    let mut left: Vec<&str> = owned
        .lines()
        .filter(|p| p.starts_with('/') && Path::new(p).is_file())
        .collect();
    for p in [
        "/etc/dockgate",
        "/etc/nginx/dockgate",
        "/var/lib/dockgate",
        "/run/dockgate",
    ] {
        if Path::new(p).exists() {
            left.push(p);
        }
    }
    assert!(left.is_empty(), "left after the purge: {left:?}");
    assert!(!Path::new("/etc/nginx/modules-enabled/50-mod-http-dockgate.conf").exists());
    assert_eq!(
        must("getent passwd | cut -d: -f1 | sort"),
        before_users,
        "users after the purge"
    );
    assert_eq!(
        sh("id -nG www-data | grep -qw docker").0,
        www_data_in_docker,
        "www-data's docker membership after the purge"
    );
}

/// docs/nginx.md's `dockgate nginx-conf` example on the installed packages, into a file of
/// the test's instead of /etc/nginx/nginx.conf (Debian nginx's own), then `nginx -t` on it.
fn rendered_as_documented(dir: &Path) {
    let doc = fs::read_to_string(repo_root().join("docs/nginx.md")).unwrap();
    let block = doc
        .split("On a Debian host with the packages installed:")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("docs/nginx.md's example");
    let conf = dir.join("rendered-nginx.conf");
    let script = block
        .replace(">/etc/nginx/nginx.conf", &format!(">{}", conf.display()))
        .replace("nginx -t", &format!("nginx -t -c {}", conf.display()));
    assert!(!script.contains("/etc/nginx/nginx.conf"), "{script}");
    must(&format!("set -e\n{script} 2>&1"));
}
