//! nginx builds under test, and a gateway process configured from `nginx-conf/`.

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use dockgate_nginxconf::{ApiServer, DockerApi, Listen, NginxConf, TlsFiles};

use crate::{free_port, repo_root, running_as_root, wait_until, TempDir};

/// The socket of the system dockerd that most tests front.
pub const SYSTEM_DOCKERD: &str = "/var/run/docker.sock";

/// Which nginx runs the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Debian's `nginx` package (`/usr/sbin/nginx`), module built against `nginx-dev`.
    Debian,
    /// nginx.org's stable built by the `nginx-src` crate, module built `vendored`.
    Vendored,
}

impl Flavor {
    pub const ALL: [Flavor; 2] = [Flavor::Debian, Flavor::Vendored];

    fn dir(self) -> PathBuf {
        repo_root().join("build").join(match self {
            Flavor::Debian => "debian",
            Flavor::Vendored => "vendored",
        })
    }

    /// The nginx binary.
    pub fn nginx(self) -> PathBuf {
        let path = match self {
            Flavor::Debian => PathBuf::from("/usr/sbin/nginx"),
            Flavor::Vendored => self.dir().join("nginx"),
        };
        assert!(
            path.exists(),
            "{} missing: run `make modules` (or `make test`)",
            path.display()
        );
        path
    }

    /// The module built for this nginx.
    pub fn module(self) -> PathBuf {
        let path = self.dir().join("ngx_http_dockgate_module.so");
        assert!(
            path.exists(),
            "{} missing: run `make modules` (or `make test`)",
            path.display()
        );
        path
    }

    /// `nginx -v`'s version string, e.g. `nginx/1.22.1`.
    pub fn version(self) -> String {
        let out = Command::new(self.nginx())
            .arg("-v")
            .output()
            .expect("nginx -v");
        String::from_utf8_lossy(&out.stderr)
            .trim()
            .trim_start_matches("nginx version: ")
            .to_string()
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::Debian => "debian",
            Flavor::Vendored => "vendored",
        })
    }
}

/// TLS material shared by the gateways of one test process (see `scripts/gen-certs.sh`).
pub struct Tls {
    _dir: TempDir,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub ca: PathBuf,
    /// `DOCKER_CERT_PATH` for the docker CLI: `ca.pem`, `cert.pem`, `key.pem`.
    pub client_dir: PathBuf,
    /// SHA-1 fingerprint of the client certificate, as nginx's `$ssl_client_fingerprint`.
    pub client_fingerprint: String,
}

pub fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        let dir = TempDir::new("tls").expect("tls dir");
        let status = Command::new(repo_root().join("scripts/gen-certs.sh"))
            .arg(dir.path())
            .status()
            .expect("run scripts/gen-certs.sh");
        assert!(status.success(), "gen-certs.sh failed");
        let p = dir.path().to_path_buf();
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha1", "-in"])
            .arg(p.join("client/cert.pem"))
            .output()
            .expect("openssl x509 -fingerprint");
        let text = String::from_utf8_lossy(&out.stdout);
        let client_fingerprint = text
            .trim()
            .rsplit('=')
            .next()
            .unwrap_or("")
            .replace(':', "")
            .to_ascii_lowercase();
        Tls {
            client_fingerprint,
            server_cert: p.join("server-cert.pem"),
            server_key: p.join("server-key.pem"),
            ca: p.join("ca.pem"),
            client_dir: p.join("client"),
            _dir: dir,
        }
    })
}

/// How a gateway is set up.
#[derive(Clone, Debug)]
pub struct GatewayOptions {
    pub flavor: Flavor,
    /// Load the module and keep `dockgate` directives (false: the same config, stock nginx).
    pub module: bool,
    pub workers: u32,
    /// The dockerd socket behind the gateway.
    pub dockerd: PathBuf,
    /// Decide every request with the sidecar (`docker-api-policy.conf`): its configuration is
    /// the built-in default plus this TOML (and a `tester` user for the test client
    /// certificate).
    pub policy: Option<String>,
    /// Replacements made in the built-in sidecar configuration before `policy` is appended
    /// (to change a key the default sets).
    pub sidecar_edits: Vec<(&'static str, &'static str)>,
    /// More of the `http {}` block (a registry front-end beside the Docker API).
    pub extra_http: String,
}

impl GatewayOptions {
    pub fn new(flavor: Flavor) -> Self {
        GatewayOptions {
            flavor,
            module: true,
            workers: 2,
            dockerd: PathBuf::from(SYSTEM_DOCKERD),
            policy: None,
            sidecar_edits: Vec::new(),
            extra_http: String::new(),
        }
    }

    /// The full gateway: module, sidecar with its default configuration.
    pub fn policy(flavor: Flavor) -> Self {
        GatewayOptions {
            policy: Some(String::new()),
            ..GatewayOptions::new(flavor)
        }
    }
}

/// A running nginx serving the Docker API includes of `nginx-conf/` on TCP, a unix socket and
/// TLS, with the sidecar in front when the options ask for a policy.
pub struct Gateway {
    pub opts: GatewayOptions,
    pub dir: TempDir,
    pub port: u16,
    pub tls_port: u16,
    pub unix_socket: PathBuf,
    child: Option<Child>,
    sidecar: Option<Child>,
}

impl Gateway {
    pub fn start(flavor: Flavor) -> Gateway {
        Gateway::start_with(GatewayOptions::new(flavor))
    }

    pub fn start_with(opts: GatewayOptions) -> Gateway {
        let mut last_error = String::new();
        for _ in 0..5 {
            match Gateway::try_start(opts.clone()) {
                Ok(gw) => return gw,
                Err(e) => last_error = e,
            }
        }
        panic!("nginx ({}) did not start: {last_error}", opts.flavor);
    }

    fn try_start(opts: GatewayOptions) -> Result<Gateway, String> {
        let dir = TempDir::new(&format!("nginx-{}", opts.flavor)).map_err(|e| e.to_string())?;
        fs::create_dir_all(dir.path().join("logs")).map_err(|e| e.to_string())?;
        let mut gw = Gateway {
            port: free_port(),
            tls_port: free_port(),
            unix_socket: dir.path().join("docker.sock"),
            dir,
            opts,
            child: None,
            sidecar: None,
        };
        if gw.opts.policy.is_some() {
            gw.start_sidecar()?;
        }
        let conf = gw.render_config();
        let conf_path = gw.dir.path().join("nginx.conf");
        fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let child = spawn_nginx(&gw.opts.flavor.nginx(), gw.dir.path(), &conf_path)?;
        gw.child = Some(child);
        let up = wait_until(Duration::from_secs(10), || {
            gw.exited()
                || ping_tcp(gw.port)
                    && gw.unix_socket.exists()
                    && (gw.opts.policy.is_none() || gw.internal_socket().exists())
        });
        if !up || gw.exited() {
            return Err(gw.error_log());
        }
        Ok(gw)
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// The top-level config, from the one renderer: the repository's includes, with this
    /// test's paths and ports.
    fn render_config(&self) -> String {
        let dir = self.dir.path();
        let tls = tls();
        let policy = self.opts.policy.is_some();
        let listener = |name: &str| policy.then(|| name.to_string());
        let mut servers = vec![ApiServer {
            listener: listener("loopback"),
            listen: Listen::Tcp(format!("127.0.0.1:{}", self.port)),
        }];
        // With the sidecar, the unix socket is the sidecar's: it relays to an internal
        // listener with the caller's credentials in a PROXY protocol header.
        servers.push(if policy {
            ApiServer {
                listener: listener("unix"),
                listen: Listen::Relay(self.internal_socket()),
            }
        } else {
            ApiServer {
                listener: None,
                listen: Listen::Unix(self.unix_socket.clone()),
            }
        });
        servers.push(ApiServer {
            listener: listener("tls"),
            listen: Listen::Tls {
                addr: format!("127.0.0.1:{}", self.tls_port),
                files: TlsFiles {
                    cert: tls.server_cert.clone(),
                    key: tls.server_key.clone(),
                    client_ca: tls.ca.clone(),
                },
            },
        });
        let mut c = NginxConf::new(self.includes()).in_prefix(dir);
        c.module = self.opts.module.then(|| self.opts.flavor.module());
        c.user = running_as_root().then(|| "root root".to_string());
        c.workers = self.opts.workers.to_string();
        c.error_log = format!("{}/logs/error.log info", dir.display());
        c.sidecar = policy.then(|| format!("unix:{}/sidecar.sock", dir.display()));
        c.docker_api = Some(DockerApi {
            dockerd: self.opts.dockerd.clone(),
            policy: policy.then(|| dir.join("sidecar.toml")),
            access_log: format!("{}/logs/dockgate-access.log dockgate", dir.display()),
            servers,
        });
        c.http_extra = self.opts.extra_http.clone();
        dockgate_nginxconf::render(&c)
    }

    /// The includes of `nginx-conf/` as shipped, or, for stock nginx, copies without the
    /// module's directives and variables.
    fn includes(&self) -> PathBuf {
        let shipped = repo_root().join("nginx-conf");
        if self.opts.module {
            return shipped;
        }
        let stock = self.dir.path().join("stock-conf");
        fs::create_dir_all(&stock).expect("a directory for stock includes");
        for entry in fs::read_dir(&shipped).expect("read nginx-conf/") {
            let path = entry.expect("an nginx-conf entry").path();
            let text = fs::read_to_string(&path).expect("read an nginx-conf include");
            let mut text = strip_module_directives(&text);
            for var in MODULE_VARIABLES {
                text = text.replace(var, "-");
            }
            fs::write(stock.join(path.file_name().unwrap()), text).expect("write a stock include");
        }
        stock
    }

    /// Starts the sidecar with the built-in configuration adapted to this gateway.
    fn start_sidecar(&mut self) -> Result<(), String> {
        let dir = self.dir.path();
        let mut default = fs::read_to_string(repo_root().join("sidecar/decision/src/default.toml"))
            .map_err(|e| e.to_string())?;
        for (from, to) in &self.opts.sidecar_edits {
            if !default.contains(from) {
                return Err(format!(
                    "the default sidecar config has no {from:?} to edit"
                ));
            }
            default = default.replace(from, to);
        }
        let config = default
            .replace(
                "listen = \"unix:/run/dockgate/sidecar.sock\"",
                &format!("listen = \"unix:{}/sidecar.sock\"", dir.display()),
            )
            .replace(
                "dockerd = \"/var/run/docker.sock\"",
                &format!("dockerd = \"{}\"", self.opts.dockerd.display()),
            )
            .replace(
                "socket = \"/run/dockgate/docker.sock\"",
                &format!("socket = \"{}\"", self.unix_socket.display()),
            )
            .replace(
                "nginx = \"unix:/run/dockgate/private/docker-api.sock\"",
                &format!("nginx = \"unix:{}\"", self.internal_socket().display()),
            )
            + &format!(
                "\n[[users]]\nname = \"tester\"\nrole = \"developer\"\n\
                 cert_fingerprints = [\"{}\"]\n",
                tls().client_fingerprint
            )
            + &self
                .opts
                .policy
                .as_deref()
                .unwrap_or("")
                .replace("@DIR@", &dir.display().to_string());
        let config_path = dir.join("sidecar.toml");
        fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let child = spawn_sidecar(
            &config_path,
            &dir.join("logs/sidecar.log"),
            &dir.join("sidecar.sock"),
        )?;
        self.sidecar = Some(child);
        Ok(())
    }

    /// nginx's internal listener behind the sidecar's unix socket.
    pub fn internal_socket(&self) -> PathBuf {
        self.dir.path().join("private/docker-api.sock")
    }

    pub fn sidecar_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("logs/sidecar.log")).unwrap_or_default()
    }

    /// Stops the sidecar (to check that nginx then fails closed).
    pub fn stop_sidecar(&mut self) {
        if let Some(child) = self.sidecar.take() {
            stop_within(child, Duration::from_secs(10));
        }
    }

    /// Stops the sidecar and starts it again with the same configuration.
    pub fn restart_sidecar(&mut self) {
        self.stop_sidecar();
        self.resume_sidecar();
    }

    /// Starts the sidecar again after [`Gateway::stop_sidecar`].
    pub fn resume_sidecar(&mut self) {
        self.start_sidecar().expect("start the sidecar again");
    }

    /// Kills the sidecar with SIGKILL (no clean-up of its own) and starts it again.
    pub fn kill_and_restart_sidecar(&mut self) {
        if let Some(mut child) = self.sidecar.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // What it left: the start-up waits for the new one's socket.
        let _ = fs::remove_file(self.dir.path().join("sidecar.sock"));
        self.resume_sidecar();
    }

    /// The master's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("nginx running").id()
    }

    /// Pids of the worker processes.
    pub fn worker_pids(&self) -> Vec<u32> {
        let master = self.pid().to_string();
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...
            let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
                continue;
            };
            if rest.split(' ').nth(1) == Some(master.as_str()) {
                if let Ok(pid) = entry.file_name().to_string_lossy().parse() {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// Sends a signal (by name: HUP, QUIT, TERM, ...) to the master.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} nginx");
    }

    /// nginx's error log (lossy: it quotes what clients sent, TLS hellos to a plain port too).
    pub fn error_log(&self) -> String {
        String::from_utf8_lossy(
            &fs::read(self.dir.path().join("logs/error.log")).unwrap_or_default(),
        )
        .into_owned()
    }

    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("logs/dockgate-access.log")).unwrap_or_default()
    }

    /// `GET /_dockgate/metrics` over TCP.
    pub fn metrics(&self) -> String {
        http_get_tcp(self.port, "/_dockgate/metrics")
    }

    /// One sample of the metrics, e.g. `dockgate_half_closes_total{direction="to_upstream"}`.
    pub fn metric(&self, series: &str) -> u64 {
        let text = self.metrics();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in metrics:\n{text}"))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // TERM: fast shutdown of master and workers (a KILL would orphan the workers).
        for child in [self.child.take(), self.sidecar.take()]
            .into_iter()
            .flatten()
        {
            stop_within(child, Duration::from_secs(10));
        }
    }
}

/// SIGTERM, then SIGKILL if the process is still there after `patience`.
pub(crate) fn stop_within(mut child: Child, patience: Duration) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let done = wait_until(patience, || matches!(child.try_wait(), Ok(Some(_))));
    if !done {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Starts `BINARY -p PREFIX -c CONF` (the config says `daemon off`), its output discarded:
/// logs go where the config says.
pub fn spawn_nginx(binary: &Path, prefix: &Path, conf: &Path) -> Result<Child, String> {
    Command::new(binary)
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn nginx: {e}"))
}

/// Starts `dockgate serve --config CONFIG`, logging to LOG, and waits until it listens on
/// SOCKET; on failure the error holds the log.
pub fn spawn_sidecar(config: &Path, log: &Path, socket: &Path) -> Result<Child, String> {
    // Appended: a restarted sidecar's log follows the earlier one's.
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new(sidecar_binary())
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(|e| e.to_string())?)
        .stderr(file)
        .spawn()
        .map_err(|e| format!("spawn the sidecar: {e}"))?;
    if !wait_until(Duration::from_secs(10), || socket.exists()) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "the sidecar did not start:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        ));
    }
    Ok(child)
}

/// The SHA-256 of a token, as the sidecar's configuration holds it (`dockgate hash-token`).
pub fn token_sha256(token: &str) -> String {
    let out = Command::new(sidecar_binary())
        .args(["hash-token", token])
        .output()
        .expect("run dockgate hash-token");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The sidecar binary `make test` builds (`target/release/dockgate`).
pub fn sidecar_binary() -> PathBuf {
    let path = std::env::var_os("DOCKGATE_SIDECAR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release/dockgate"));
    assert!(
        path.exists(),
        "{} missing: run `cargo build --release -p dockgate-sidecar` (or `make test`)",
        path.display()
    );
    path
}

/// Removes `dockgate`/`dockgate_status` lines (the module's directives).
/// The variables the module defines that the shipped includes log.
const MODULE_VARIABLES: &[&str] = &[
    "$dockgate_hijack",
    "$dockgate_half_close",
    "$dockgate_user",
    "$dockgate_role",
    "$dockgate_decision",
    "$dockgate_upstream$dockgate_uri",
];

pub fn strip_module_directives(conf: &str) -> String {
    conf.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("dockgate ") || t.starts_with("dockgate_status"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

fn ping_tcp(port: u16) -> bool {
    http_get_tcp(port, "/_ping").starts_with("HTTP/1.1 200")
        || http_get_tcp(port, "/_dockgate/metrics").starts_with("HTTP/1.1 200")
}

/// A one-shot `GET` over TCP, returning the whole answer (headers and body); empty on error.
pub fn http_get_tcp(port: u16, path: &str) -> String {
    TcpStream::connect(("127.0.0.1", port))
        .and_then(|s| {
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map(|()| s)
        })
        .map(|s| http_get(s, path))
        .unwrap_or_default()
}

/// A one-shot `GET` over a unix socket; empty on error.
pub fn http_get_unix(sock: &Path, path: &str) -> String {
    UnixStream::connect(sock)
        .and_then(|s| {
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map(|()| s)
        })
        .map(|s| http_get(s, path))
        .unwrap_or_default()
}

fn http_get(mut s: impl Read + Write, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: dockgate\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    if s.write_all(req.as_bytes()).is_ok() {
        let _ = s.read_to_string(&mut out);
    }
    out
}
