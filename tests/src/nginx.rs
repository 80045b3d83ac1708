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
        Tls {
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
}

impl GatewayOptions {
    pub fn new(flavor: Flavor) -> Self {
        GatewayOptions {
            flavor,
            module: true,
            workers: 2,
            dockerd: PathBuf::from(SYSTEM_DOCKERD),
        }
    }
}

/// A running nginx serving `nginx-conf/docker-api.conf` on TCP, a unix socket and TLS.
pub struct Gateway {
    pub opts: GatewayOptions,
    pub dir: TempDir,
    pub port: u16,
    pub tls_port: u16,
    pub unix_socket: PathBuf,
    child: Option<Child>,
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
        };
        let conf = gw.render_config();
        let conf_path = gw.dir.path().join("nginx.conf");
        fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let child = Command::new(gw.opts.flavor.nginx())
            .arg("-p")
            .arg(gw.dir.path())
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn nginx: {e}"))?;
        gw.child = Some(child);
        let up = wait_until(Duration::from_secs(10), || {
            gw.exited() || ping_tcp(gw.port) && gw.unix_socket.exists()
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

    /// The top-level config: the repository's includes, with this test's paths and ports.
    fn render_config(&self) -> String {
        let repo = repo_root();
        let conf = repo.join("nginx-conf");
        let dir = self.dir.path().display();
        let api_conf = self.api_conf();
        let tls = tls();
        let mut c = String::new();
        if self.opts.module {
            c += &format!("load_module {};\n", self.opts.flavor.module().display());
        }
        if running_as_root() {
            c += "user root root;\n";
        }
        c += &format!(
            "daemon off;\nworker_processes {workers};\npid {dir}/nginx.pid;\n\
             error_log {dir}/logs/error.log info;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
             client_body_temp_path {dir}/tmp_body;\nproxy_temp_path {dir}/tmp_proxy;\n\
             fastcgi_temp_path {dir}/tmp_fastcgi;\nuwsgi_temp_path {dir}/tmp_uwsgi;\n\
             scgi_temp_path {dir}/tmp_scgi;\n\
             include {http_conf};\n\
             access_log {dir}/logs/dockgate-access.log dockgate;\n\
             upstream dockerd {{ server unix:{dockerd}; keepalive 32; }}\n\
             server {{\n  listen 127.0.0.1:{port};\n  listen unix:{sock};\n  include {api};\n}}\n\
             server {{\n  listen 127.0.0.1:{tls_port} ssl;\n\
             ssl_certificate {cert};\n  ssl_certificate_key {key};\n\
             ssl_client_certificate {ca};\n  include {tls_conf};\n  include {api};\n}}\n\
             }}\n",
            workers = self.opts.workers,
            http_conf = self.http_conf(&conf).display(),
            dockerd = self.opts.dockerd.display(),
            port = self.port,
            sock = self.unix_socket.display(),
            api = api_conf.display(),
            tls_port = self.tls_port,
            cert = tls.server_cert.display(),
            key = tls.server_key.display(),
            ca = tls.ca.display(),
            tls_conf = conf.join("tls.conf").display(),
        );
        c
    }

    /// `docker-api.conf` as shipped, or, for stock nginx, a copy without the module's
    /// directives (and the variables only the module defines).
    fn api_conf(&self) -> PathBuf {
        let shipped = repo_root().join("nginx-conf/docker-api.conf");
        if self.opts.module {
            return shipped;
        }
        let text = fs::read_to_string(&shipped).expect("read docker-api.conf");
        let stock = strip_module_directives(&text);
        let path = self.dir.path().join("docker-api-stock.conf");
        fs::write(&path, stock).expect("write stock docker-api.conf");
        path
    }

    fn http_conf(&self, conf: &Path) -> PathBuf {
        let shipped = conf.join("dockgate-http.conf");
        if self.opts.module {
            return shipped;
        }
        let text = fs::read_to_string(&shipped).expect("read dockgate-http.conf");
        let stock = text
            .replace("$dockgate_hijack", "-")
            .replace("$dockgate_half_close", "-");
        let path = self.dir.path().join("dockgate-http-stock.conf");
        fs::write(&path, stock).expect("write stock dockgate-http.conf");
        path
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

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
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
        let Some(mut child) = self.child.take() else {
            return;
        };
        // TERM: fast shutdown of master and workers (a KILL would orphan the workers).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let done = wait_until(Duration::from_secs(10), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if !done {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Removes `dockgate`/`dockgate_status` lines (the module's directives).
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
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: dockgate\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    if s.write_all(req.as_bytes()).is_ok() {
        let _ = s.read_to_string(&mut out);
    }
    out
}

/// A one-shot `GET` over a unix socket; empty on error.
pub fn http_get_unix(sock: &Path, path: &str) -> String {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: dockgate\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    if s.write_all(req.as_bytes()).is_ok() {
        let _ = s.read_to_string(&mut out);
    }
    out
}
