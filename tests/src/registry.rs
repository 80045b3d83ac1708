//! The registry front-end under test: CNCF distribution (`docker-registry`) as the hosted
//! registry and as the proxied upstream, stock nginx with `nginx-conf/registry-*.conf`, the
//! sidecar deciding, and the docker CLI and skopeo as clients. Each piece runs on free
//! loopback ports in a temp dir and stops on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use dockgate_nginxconf::{NginxConf, RegistryFrontend, RegistryServer};

use crate::nginx::{spawn_nginx, spawn_sidecar, stop_within};
use crate::{free_port, repo_root, running_as_root, unique_name, wait_until, TempDir};

/// Debian's build of CNCF distribution 2.8.
pub const DISTRIBUTION: &str = "/usr/bin/docker-registry";

/// The token of user `alice` (pushes to `team-a`, pulls `team-a` and `team-b`).
pub const ALICE_TOKEN: &str = "alice-secret-token";
/// The token of user `bob` (pushes to `team-b`).
pub const BOB_TOKEN: &str = "bob-secret-token";

// === impl Distribution ===

/// A `docker-registry serve` on a loopback port, storage in its own temp dir. Its access log
/// (one line per request) tells what reached it.
pub struct Distribution {
    pub dir: TempDir,
    pub port: u16,
    child: Option<Child>,
    starts: u32,
    /// More of its configuration (YAML at the top level, e.g. an `auth:` section).
    extra: String,
}

impl Distribution {
    pub fn start(tag: &str) -> Distribution {
        Distribution::start_with(tag, |_| String::new())
    }

    /// With more configuration, written once its directory is known.
    pub fn start_with(tag: &str, extra: impl FnOnce(&Path) -> String) -> Distribution {
        let dir = TempDir::new(&format!("registry-{tag}")).expect("registry dir");
        let extra = extra(dir.path());
        let mut d = Distribution {
            dir,
            port: free_port(),
            child: None,
            starts: 0,
            extra,
        };
        d.resume();
        d
    }

    /// Starts (again) on the same port and storage.
    pub fn resume(&mut self) {
        let dir = self.dir.path();
        let config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {dir}/data\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: dockgate-test-secret\n{extra}",
            dir = dir.display(),
            port = self.port,
            extra = self.extra,
        );
        fs::write(dir.join("config.yml"), config).expect("write registry config");
        self.starts += 1;
        let log = fs::File::create(dir.join(format!("registry-{}.log", self.starts)))
            .expect("registry log");
        let child = Command::new(DISTRIBUTION)
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        self.child = Some(child);
        let url = format!("http://127.0.0.1:{}/v2/", self.port);
        assert!(
            wait_until(Duration::from_secs(15), || matches!(
                &curl(&["-o", "/dev/null", "-w", "%{http_code}", &url]).stdout[..],
                b"200" | b"401"
            )),
            "docker-registry did not start:\n{}",
            self.log()
        );
    }

    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            stop_within(c, Duration::from_secs(10));
        }
    }

    /// Whether `/v2/` answers at all (any status).
    pub fn up(&self) -> bool {
        let url = format!("http://127.0.0.1:{}/v2/", self.port);
        curl(&["-o", "/dev/null", "-w", "%{http_code}", &url]).stdout != b"000"
    }

    pub fn url(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Everything it logged, over all its starts.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                fs::read_to_string(self.dir.path().join(format!("registry-{i}.log")))
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Access-log lines of requests `METHOD PATH...` (a prefix of the request line).
    pub fn requests(&self, method: &str, path_prefix: &str) -> usize {
        let needle = format!("\"{method} {path_prefix}");
        self.log().lines().filter(|l| l.contains(&needle)).count()
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}

// === impl Frontend ===

/// Settings of a front-end.
#[derive(Clone, Debug)]
pub struct FrontendOptions {
    /// How long a tag is served from the cache (nginx time, e.g. `2s`).
    pub tag_ttl: String,
    /// The nginx binary: Debian's by default, or nginx.org's (`Flavor::Vendored.nginx()`).
    pub nginx: PathBuf,
    /// alice's tenant on the Docker API gateway, if she has one.
    pub alice_tenant: Option<String>,
}

impl Default for FrontendOptions {
    fn default() -> Self {
        FrontendOptions {
            tag_ttl: "1m".into(),
            nginx: crate::nginx::Flavor::Debian.nginx(),
            alice_tenant: None,
        }
    }
}

/// Stock nginx (Debian's) serving `registry-frontend.conf` in front of a hosted and an
/// upstream registry, and the sidecar deciding. Host mapping on `host_port` (`localhost` is
/// team-a, `127.0.0.1` team-b); port mapping: `team_a_port` and `team_b_port`.
pub struct Frontend {
    pub dir: TempDir,
    pub host_port: u16,
    pub team_a_port: u16,
    pub team_b_port: u16,
    pub hosted: u16,
    pub upstream: u16,
    pub opts: FrontendOptions,
    nginx: Option<Child>,
    sidecar: Option<Child>,
}

impl Frontend {
    pub fn start(hosted: &Distribution, upstream: u16, opts: FrontendOptions) -> Frontend {
        let dir = TempDir::new("registry-frontend").expect("frontend dir");
        fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
        let mut f = Frontend {
            dir,
            host_port: free_port(),
            team_a_port: free_port(),
            team_b_port: free_port(),
            hosted: hosted.port,
            upstream,
            opts,
            nginx: None,
            sidecar: None,
        };
        f.start_sidecar();
        let mut last = String::new();
        for _ in 0..5 {
            match f.start_nginx() {
                Ok(()) => return f,
                Err(e) => {
                    last = e;
                    f.host_port = free_port();
                    f.team_a_port = free_port();
                    f.team_b_port = free_port();
                }
            }
        }
        panic!("nginx did not start: {last}");
    }

    fn start_sidecar(&mut self) {
        let dir = self.dir.path();
        let config = format!(
            "[server]\nlisten = \"unix:{dir}/sidecar.sock\"\n\
             [roles.none]\nallow = []\n\
             [listeners.loopback]\n\
             {alice_tenant}\
             [[users]]\nname = \"alice\"\nrole = \"none\"\ntoken_sha256 = [\"{alice}\"]\n{alice_of}\
             [[users]]\nname = \"bob\"\nrole = \"none\"\ntoken_sha256 = [\"{bob}\"]\n\
             [registry]\nrealm = \"dockgate test registry\"\n\
             stats_socket = \"{dir}/registry-stats.sock\"\n\
             [registry.users.alice]\npull = [\"team-b\"]\npush = [\"team-a\"]\n\
             [registry.users.bob]\npush = [\"team-b\"]\n",
            dir = dir.display(),
            alice = sha256_hex(ALICE_TOKEN),
            bob = sha256_hex(BOB_TOKEN),
            alice_tenant = self
                .opts
                .alice_tenant
                .as_ref()
                .map(|t| format!("[tenants.{t}]\n"))
                .unwrap_or_default(),
            alice_of = self
                .opts
                .alice_tenant
                .as_ref()
                .map(|t| format!("tenant = \"{t}\"\n"))
                .unwrap_or_default(),
        );
        let path = dir.join("sidecar.toml");
        fs::write(&path, config).expect("write sidecar config");
        let child = spawn_sidecar(
            &path,
            &dir.join("logs/sidecar.log"),
            &dir.join("sidecar.sock"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        self.sidecar = Some(child);
    }

    /// nginx.conf from the one renderer: the front-end's servers, host and port mapping.
    fn render(&self) -> String {
        let dir = self.dir.path();
        let server = |port: u16, name: &str, team: &str| RegistryServer {
            listen: format!("127.0.0.1:{port}"),
            server_name: Some(name.to_string()),
            team: team.to_string(),
        };
        let mut c = NginxConf::new(repo_root().join("nginx-conf")).in_prefix(dir);
        c.user = running_as_root().then(|| "root root".to_string());
        c.workers = "2".into();
        c.worker_connections = 1024;
        c.error_log = format!("{}/logs/error.log info", dir.display());
        c.sidecar = Some(format!("unix:{}/sidecar.sock", dir.display()));
        c.registry = Some(RegistryFrontend {
            hosted: format!("127.0.0.1:{}", self.hosted),
            upstream: format!("127.0.0.1:{}", self.upstream),
            cache: dir.join("cache"),
            inactive: "30d".into(),
            max_size: None,
            tag_ttl: self.opts.tag_ttl.to_string(),
            access_log: Some(dir.join("logs/registry.log")),
            stats_socket: Some(dir.join("registry-stats.sock")),
            servers: vec![
                server(self.host_port, "localhost", "team-a"),
                server(self.host_port, "127.0.0.1", "team-b"),
                server(self.team_a_port, "", "team-a"),
                server(self.team_b_port, "", "team-b"),
            ],
        });
        dockgate_nginxconf::render(&c)
    }

    fn start_nginx(&mut self) -> Result<(), String> {
        let conf = self.dir.path().join("nginx.conf");
        fs::write(&conf, self.render()).map_err(|e| e.to_string())?;
        let child = spawn_nginx(&self.opts.nginx, self.dir.path(), &conf)?;
        self.nginx = Some(child);
        let url = format!("http://127.0.0.1:{}/v2/", self.team_a_port);
        let up = wait_until(Duration::from_secs(10), || {
            self.nginx_exited()
                || curl(&["-o", "/dev/null", "-w", "%{http_code}", &url]).stdout == b"401"
        });
        if !up || self.nginx_exited() {
            self.stop_nginx();
            return Err(self.error_log());
        }
        Ok(())
    }

    fn nginx_exited(&mut self) -> bool {
        self.nginx
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    fn stop_nginx(&mut self) {
        if let Some(c) = self.nginx.take() {
            stop_within(c, Duration::from_secs(10));
        }
    }

    /// Stops nginx and starts it again on the same ports and cache.
    pub fn restart_nginx(&mut self) {
        self.stop_nginx();
        self.start_nginx().expect("nginx restarts");
    }

    /// nginx's error log (lossy: it quotes what clients sent, TLS hellos to a plain port too).
    pub fn error_log(&self) -> String {
        String::from_utf8_lossy(
            &fs::read(self.dir.path().join("logs/error.log")).unwrap_or_default(),
        )
        .into_owned()
    }

    /// Stops the sidecar (nginx must then refuse everything).
    pub fn stop_sidecar(&mut self) {
        if let Some(c) = self.sidecar.take() {
            stop_within(c, Duration::from_secs(10));
        }
    }

    pub fn access_log(&self) -> String {
        String::from_utf8_lossy(
            &fs::read(self.dir.path().join("logs/registry.log")).unwrap_or_default(),
        )
        .into_owned()
    }

    pub fn sidecar_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("logs/sidecar.log")).unwrap_or_default()
    }

    /// The sidecar's Prometheus text.
    pub fn metrics(&self) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--unix-socket"])
            .arg(self.dir.path().join("sidecar.sock"))
            .arg("http://sidecar/_dockgate/metrics")
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One sample of the metrics (0 when absent).
    pub fn metric(&self, series: &str) -> u64 {
        self.metrics()
            .lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    }
}

impl Drop for Frontend {
    fn drop(&mut self) {
        for child in [self.nginx.take(), self.sidecar.take()]
            .into_iter()
            .flatten()
        {
            stop_within(child, Duration::from_secs(10));
        }
    }
}

// === clients ===

/// `curl` with `args`; never fails (look at the output).
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "120"])
        .args(args)
        .output()
        .expect("run curl")
}

/// One HTTP exchange: status, lowercased headers and body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An HTTP request with curl (`--path-as-is`: the path is sent exactly as given).
pub fn http(method: &str, url: &str, extra: &[&str]) -> Reply {
    let tmp = std::env::temp_dir().join(unique_name("reply"));
    let mut args = vec!["--path-as-is", "-D", "-", "-o"];
    let body_path = tmp.display().to_string();
    args.push(&body_path);
    if method == "HEAD" {
        args.push("-I");
    } else {
        args.extend(["-X", method]);
    }
    args.extend_from_slice(extra);
    args.push(url);
    let out = curl(&args);
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    let body = fs::read(&tmp).unwrap_or_default();
    let _ = fs::remove_file(&tmp);
    // The last response head (after any 100 Continue).
    let last = head
        .split("\r\n\r\n")
        .filter(|h| h.starts_with("HTTP/"))
        .last()
        .unwrap_or("")
        .to_string();
    let mut lines = last.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body,
    }
}

/// `user:token` for curl's `-u`.
pub fn alice() -> String {
    format!("alice:{ALICE_TOKEN}")
}

pub fn bob() -> String {
    format!("bob:{BOB_TOKEN}")
}

/// `skopeo ARGS` (plain HTTP on both sides); panics with its output on failure.
pub fn skopeo(args: &[&str]) -> String {
    let out = skopeo_output(args);
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn skopeo_output(args: &[&str]) -> Output {
    let (cmd, rest) = args.split_first().expect("a skopeo command");
    let mut c = Command::new("skopeo");
    c.args(["--command-timeout", "300s", cmd]);
    if *cmd == "copy" {
        c.args(["--src-tls-verify=false", "--dest-tls-verify=false"]);
    } else {
        c.arg("--tls-verify=false");
    }
    c.args(rest).output().expect("run skopeo")
}

/// A docker CLI with its own config dir (logins stay in the test), talking to the system
/// dockerd.
pub struct DockerClient {
    pub config: TempDir,
}

impl DockerClient {
    pub fn new() -> DockerClient {
        DockerClient {
            config: TempDir::new("docker-config").expect("docker config dir"),
        }
    }

    /// Runs docker (killed after [`DOCKER_PATIENCE`]: a test fails, it never hangs).
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new("/usr/bin/docker");
        c.args(args)
            .env("DOCKER_CONFIG", self.config.path())
            .env("DOCKER_HOST", "unix:///var/run/docker.sock");
        output_within(&mut c, None, DOCKER_PATIENCE)
    }

    /// Runs docker, panicking with its output on failure; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn login(&self, registry: &str, user: &str, token: &str) {
        let mut c = Command::new("/usr/bin/docker");
        c.args(["login", "--username", user, "--password-stdin", registry])
            .env("DOCKER_CONFIG", self.config.path())
            .env("DOCKER_HOST", "unix:///var/run/docker.sock");
        let out = output_within(&mut c, Some(token.as_bytes()), DOCKER_PATIENCE);
        assert!(
            out.status.success(),
            "docker login {registry} as {user} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// How long one docker CLI command may take here (a 120 MB push takes seconds).
pub const DOCKER_PATIENCE: Duration = Duration::from_secs(300);

/// Runs `cmd` with `stdin`, collecting its output; kills it after `patience` (then the
/// status is a failure and stderr says so).
pub fn output_within(cmd: &mut Command, stdin: Option<&[u8]>, patience: Duration) -> Output {
    use std::io::{Read, Write};
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a command");
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(data);
    }
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let finished = wait_until(patience, || matches!(child.try_wait(), Ok(Some(_))));
    if !finished {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for a command");
    let mut stderr = err.join().unwrap_or_default();
    if !finished {
        stderr.extend_from_slice(
            format!("\n(killed after {} s: {cmd:?})\n", patience.as_secs()).as_bytes(),
        );
    }
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr,
    }
}

impl Default for DockerClient {
    fn default() -> Self {
        DockerClient::new()
    }
}

// === test images ===

/// A multi-layer image of about `mb` MB (three layers of random bytes on busybox), built
/// offline once and kept in the system dockerd under a fixed tag across runs.
pub fn test_image(mb: u32) -> String {
    let _guard = image_lock();
    let tag = format!("dockgate-test/registry-{mb}m:v1");
    let docker = DockerClient::new();
    if docker.run(&["image", "inspect", &tag]).status.success() {
        return tag;
    }
    let ctx = TempDir::new("image-context").expect("context dir");
    let per_layer = (mb as usize * 1_000_000) / 3;
    let mut dockerfile = String::from("FROM busybox:latest\n");
    for i in 0..3 {
        let data = random_bytes(per_layer, (mb as u64) << 8 | i as u64);
        fs::write(ctx.path().join(format!("layer{i}.bin")), data).expect("write layer");
        dockerfile += &format!("COPY layer{i}.bin /data/layer{i}.bin\n");
    }
    fs::write(ctx.path().join("Dockerfile"), dockerfile).expect("Dockerfile");
    let out = output_within(
        Command::new("/usr/bin/docker")
            .args(["build", "-q", "-t", &tag])
            .arg(ctx.path())
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", docker.config.path()),
        None,
        DOCKER_PATIENCE,
    );
    assert!(
        out.status.success(),
        "docker build {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    tag
}

/// `docker save` of [`test_image`], cached next to the build output (for seeding registries
/// with skopeo without the layers passing through dockerd).
pub fn test_archive(mb: u32) -> PathBuf {
    static SAVED: OnceLock<std::sync::Mutex<()>> = OnceLock::new();
    let _guard = SAVED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let path = repo_root()
        .join("target")
        .join("registry-images")
        .join(format!("registry-{mb}m.tar"));
    if path.exists() {
        return path;
    }
    let tag = test_image(mb);
    fs::create_dir_all(path.parent().expect("parent")).expect("archive dir");
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    DockerClient::new().ok(&["save", "-o", &tmp.display().to_string(), &tag]);
    fs::rename(&tmp, &path).expect("archive in place");
    path
}

/// Serialises image builds of this process.
fn image_lock() -> std::sync::MutexGuard<'static, ()> {
    static BUILDS: OnceLock<std::sync::Mutex<()>> = OnceLock::new();
    BUILDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// A small image only this call has: busybox plus one layer of `kb` KB of fresh random
/// bytes, under `tag`. Returns the sha256 of the file it holds (`/data/unique.bin`).
pub fn unique_image(tag: &str, kb: usize) -> String {
    let _guard = image_lock();
    let ctx = TempDir::new("image-context").expect("context dir");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ u64::from(std::process::id());
    let data = random_bytes(kb * 1000, seed);
    fs::write(ctx.path().join("unique.bin"), &data).expect("write layer");
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox:latest\nCOPY unique.bin /data/unique.bin\n",
    )
    .expect("Dockerfile");
    let out = output_within(
        Command::new("/usr/bin/docker")
            .args(["build", "-q", "-t", tag])
            .arg(ctx.path())
            .env("DOCKER_BUILDKIT", "0"),
        None,
        DOCKER_PATIENCE,
    );
    assert!(
        out.status.success(),
        "docker build {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    sha256_file_or_bytes(&data)
}

/// Deterministic pseudo-random bytes (xorshift), incompressible enough for a registry.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// SHA-256 in hex, with the system's `sha256sum` (the tests crate has no dependencies).
pub fn sha256_hex(text: &str) -> String {
    sha256_file_or_bytes(text.as_bytes())
}

pub fn sha256_file_or_bytes(data: &[u8]) -> String {
    use std::io::Write;
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    let out = c.wait_with_output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// The digests of the layers of an image copied to a skopeo `dir:` directory.
pub fn dir_layers(dir: &Path) -> Vec<String> {
    let manifest = fs::read_to_string(dir.join("manifest.json")).expect("manifest.json");
    manifest
        .split("\"digest\"")
        .skip(1)
        .filter_map(|s| s.split('"').nth(1).map(str::to_string))
        .collect()
}

/// The head of one HTTP request on `conn` (what arrived before the blank line, or before the
/// peer stopped sending; 5 s at most per read), for the tests' small servers.
pub fn read_request_head(conn: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 8192];
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}

// === impl StandIn ===

/// A stand-in for a failing upstream: answers every request on `port` with `status`, and
/// counts them.
pub struct StandIn {
    pub port: u16,
    pub hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    pub fn start(port: u16, status: u16) -> StandIn {
        use std::io::Write;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        // The port was the upstream's, which may take a moment to let go of it.
        let mut bound = std::net::TcpListener::bind(("127.0.0.1", port));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while bound.is_err() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
            bound = std::net::TcpListener::bind(("127.0.0.1", port));
        }
        let listener = bound.expect("bind stand-in");
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let head = read_request_head(&mut conn);
                if head.is_empty() {
                    continue;
                }
                h.fetch_add(1, Ordering::SeqCst);
                let body = "{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"stand-in failure\"}]}";
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} Failing\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        StandIn {
            port,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The Accept header of current clients: single manifests and lists, Docker and OCI.
pub const ACCEPT_MANIFESTS: &str = "Accept: application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Uploads `data` as a blob of `name` straight to a registry (POST, then a monolithic PUT);
/// returns its digest.
pub fn upload_blob(registry: &str, name: &str, data: &[u8]) -> String {
    let digest = format!("sha256:{}", sha256_file_or_bytes(data));
    let r = http(
        "POST",
        &format!("http://{registry}/v2/{name}/blobs/uploads/"),
        &[],
    );
    assert_eq!(r.status, 202, "start upload: {}", r.text());
    let location = r.header("location").expect("upload location").to_string();
    let url = if location.starts_with('/') {
        format!("http://{registry}{location}")
    } else {
        location
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let file = std::env::temp_dir().join(unique_name("blob"));
    fs::write(&file, data).expect("blob file");
    let r = http(
        "PUT",
        &format!("{url}{sep}digest={digest}"),
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
    );
    let _ = fs::remove_file(&file);
    assert_eq!(r.status, 201, "finish upload: {}", r.text());
    digest
}
