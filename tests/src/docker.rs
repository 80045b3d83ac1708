//! docker CLIs under test, the endpoints they talk to, and shell scripts that drive them.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::nginx::{tls, Gateway, SYSTEM_DOCKERD};
use crate::{repo_root, TempDir};

/// Which docker CLI runs a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cli {
    /// The current client the machine image ships (28.x), first in PATH.
    Current,
    /// Debian's `docker.io` client (20.10), `/usr/bin/docker`.
    Debian,
}

impl Cli {
    pub const ALL: [Cli; 2] = [Cli::Current, Cli::Debian];

    pub fn path(self) -> PathBuf {
        let (var, default) = match self {
            Cli::Current => ("DOCKGATE_CLI_CURRENT", "/usr/local/bin/docker"),
            Cli::Debian => ("DOCKGATE_CLI_DEBIAN", "/usr/bin/docker"),
        };
        let path = std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default));
        assert!(
            path.exists(),
            "docker CLI {} missing (set {var})",
            path.display()
        );
        path
    }

    /// The client's version, e.g. `28.2.2`.
    pub fn version(self) -> String {
        let out = Command::new(self.path())
            .args(["version", "--format", "{{.Client.Version}}"])
            .env("DOCKER_HOST", format!("unix://{SYSTEM_DOCKERD}"))
            .output()
            .expect("docker version");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A directory whose `docker` is this CLI, to put first in PATH.
    fn bin_dir(self) -> &'static Path {
        static DIRS: OnceLock<[TempDir; 2]> = OnceLock::new();
        let dirs = DIRS.get_or_init(|| {
            Cli::ALL.map(|cli| {
                let dir = TempDir::new("cli").expect("cli dir");
                std::os::unix::fs::symlink(cli.path(), dir.path().join("docker"))
                    .expect("symlink docker");
                dir
            })
        });
        dirs[self as usize].path()
    }
}

impl fmt::Display for Cli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cli::Current => "cli-current",
            Cli::Debian => "cli-debian",
        })
    }
}

/// How a client reaches the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Unix,
    Tls,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Tcp, Transport::Unix, Transport::Tls];
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Unix => "unix",
            Transport::Tls => "tls",
        })
    }
}

/// The environment that points a docker CLI at an API endpoint.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub label: String,
    pub env: Vec<(String, String)>,
}

impl Endpoint {
    /// dockerd's own socket: the reference every gateway result is compared with.
    pub fn direct() -> Endpoint {
        Endpoint::unix("direct", Path::new(SYSTEM_DOCKERD))
    }

    pub fn unix(label: &str, sock: &Path) -> Endpoint {
        Endpoint {
            label: label.to_string(),
            env: vec![("DOCKER_HOST".into(), format!("unix://{}", sock.display()))],
        }
    }

    pub fn gateway(gw: &Gateway, transport: Transport) -> Endpoint {
        let label = format!("gateway-{}-{transport}", gw.opts.flavor);
        match transport {
            Transport::Tcp => Endpoint {
                label,
                env: vec![("DOCKER_HOST".into(), format!("tcp://127.0.0.1:{}", gw.port))],
            },
            Transport::Unix => Endpoint::unix(&label, &gw.unix_socket),
            Transport::Tls => Endpoint {
                label,
                env: vec![
                    (
                        "DOCKER_HOST".into(),
                        format!("tcp://127.0.0.1:{}", gw.tls_port),
                    ),
                    ("DOCKER_TLS_VERIFY".into(), "1".into()),
                    (
                        "DOCKER_CERT_PATH".into(),
                        tls().client_dir.display().to_string(),
                    ),
                ],
            },
        }
    }
}

/// What a script printed and how it exited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}---",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs a bash script (with `pipefail`) where `docker` is `cli` talking to `endpoint`.
/// `vars` are exported to the script; `stdin` is fed to it.
pub fn run_script(
    cli: Cli,
    endpoint: &Endpoint,
    script: &str,
    vars: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> Outcome {
    let config = TempDir::new("docker-config").expect("docker config dir");
    let path = format!(
        "{}:{}",
        cli.bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.arg("-o")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .env("PATH", path)
        .env("DOCKER_CONFIG", config.path())
        .env("DOCKER_CLI_HINTS", "false")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_CONTEXT")
        .env("DOCKGATE_REPO", repo_root())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &endpoint.env {
        cmd.env(k, v);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn bash");
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let out = child.wait_with_output().expect("wait for script");
    if let Some(w) = writer {
        let _ = w.join();
    }
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a docker command on the direct socket with the current CLI, its output discarded:
/// whether it succeeded (for clean-ups and existence checks).
pub fn docker_direct_quiet(args: &[&str]) -> bool {
    Command::new(Cli::Current.path())
        .args(args)
        .env("DOCKER_HOST", format!("unix://{SYSTEM_DOCKERD}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs a docker command on the direct socket with the current CLI; panics on failure.
pub fn docker_direct(args: &[&str]) -> String {
    let out = Command::new(Cli::Current.path())
        .args(args)
        .env("DOCKER_HOST", format!("unix://{SYSTEM_DOCKERD}"))
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A long-running `busybox sleep` container, removed on drop.
pub struct Container {
    pub name: String,
    pub id: String,
    dockerd: String,
}

impl Container {
    pub fn start(tag: &str) -> Container {
        Container::start_on(SYSTEM_DOCKERD, tag, &["sleep", "3600"])
    }

    /// Starts `busybox <cmd>` detached with stdin open, on the dockerd at `sock`.
    pub fn start_on(sock: &str, tag: &str, cmd: &[&str]) -> Container {
        Container::start_with(sock, tag, &[], cmd)
    }

    /// As [`Container::start_on`], with extra `docker run` options.
    pub fn start_with(sock: &str, tag: &str, options: &[&str], cmd: &[&str]) -> Container {
        Container::start_named(sock, &crate::unique_name(tag), options, cmd)
    }

    /// As [`Container::start_with`], under exactly `name`.
    pub fn start_named(sock: &str, name: &str, options: &[&str], cmd: &[&str]) -> Container {
        let name = name.to_string();
        let mut args = vec!["run", "-d", "-i", "--network", "none", "--name", &name];
        args.extend(options);
        args.push("busybox");
        args.extend(cmd);
        let out = Command::new(Cli::Current.path())
            .args(&args)
            .env("DOCKER_HOST", format!("unix://{sock}"))
            .output()
            .expect("docker run");
        assert!(
            out.status.success(),
            "docker run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Container {
            id: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            name,
            dockerd: sock.to_string(),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new(Cli::Current.path())
            .args(["rm", "-f", &self.name])
            .env("DOCKER_HOST", format!("unix://{}", self.dockerd))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// What an installed or deployed gateway must do for both CLIs at `endpoint`: `run`, `run -i`
/// (a hijacked stream with stdin), `exec`, and refuse `--privileged` with its reason. The
/// failures, each with what the CLI printed.
pub fn deployed_gateway_failures(endpoint: &Endpoint) -> Vec<String> {
    let mut failures = Vec::new();
    for cli in Cli::ALL {
        for (script, expect) in [
            (
                "docker run --rm --pull never --network none busybox echo hi",
                "hi",
            ),
            (
                "echo through | docker run --rm -i --pull never --network none busybox cat",
                "through",
            ),
            (
                "c=$(docker run -d --pull never --network none busybox sleep 60); \
                 docker exec $c echo in-exec; docker rm -f $c >/dev/null",
                "in-exec",
            ),
        ] {
            let o = run_script(cli, endpoint, script, &[], None);
            if o.code != 0 || o.stdout.trim() != expect {
                failures.push(format!("{cli}: {script}: {o}"));
            }
        }
        let o = run_script(
            cli,
            endpoint,
            "docker run --rm --pull never --privileged --network none busybox true",
            &[],
            None,
        );
        if o.code == 0 || !o.stderr.contains("dockgate: ") {
            failures.push(format!(
                "{cli}: --privileged was not refused with the reason: {o}"
            ));
        }
    }
    failures
}
