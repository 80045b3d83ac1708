//! Harness for the package cache suite: package origins on loopback (a stock nginx serving a
//! real signed apt repository and a PyPI-style simple index over TLS from a test CA), the
//! package cache (stock nginx with `nginx-conf/package-cache*.conf` on an address of its
//! own in 127/8, ports 80 and 443), and the full gateway whose sidecar runs `[package_cache]`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dockgate_nginxconf::{NginxConf, PackageCacheServer};

use crate::nginx::{
    http_get_unix, sidecar_binary, spawn_nginx, stop_within, token_sha256, Flavor, Gateway,
    GatewayOptions,
};
use crate::{free_port, repo_root, running_as_root, wait_until, TempDir};

/// The offline Debian image built from the host's own files (`scripts/test-debian-image.sh`).
pub const DEBIAN_IMAGE: &str = "dockgate-test/debian:host";

/// The names the suite caches (and their rule sets).
pub const APT_HOST: &str = "deb.test";
pub const PYPI_HOST: &str = "pypi.test";
/// Hosts of the other rule sets (checked over plain HTTP with curl, no container needed).
pub const OTHER_HOSTS: &[(&str, &str)] = &[
    ("alpine.test", "alpine"),
    ("npm.test", "npm"),
    ("maven.test", "maven"),
];

/// The token of the `ci` user in [`gateway`]'s configuration.
pub const CI_TOKEN: &str = "ci-token";

/// Builds the Debian test image once per engine.
pub fn debian_image() -> &'static str {
    static ONCE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let status = Command::new(repo_root().join("scripts/test-debian-image.sh"))
            .env("DOCKER_HOST", "unix:///var/run/docker.sock")
            .status()
            .expect("run scripts/test-debian-image.sh");
        assert!(status.success(), "test-debian-image.sh failed");
    });
    DEBIAN_IMAGE
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256_hex(path: &Path) -> String {
    run(Command::new("sha256sum").arg(path))
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A free address in 127/8 (random, so parallel tests and other users of :80/:443 on
/// 127.0.0.1 do not clash).
pub fn free_loopback_address() -> String {
    loop {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            ^ std::process::id().wrapping_mul(2654435761);
        let addr = format!(
            "127.{}.{}.{}",
            100 + n % 100,
            (n >> 8) % 250 + 1,
            (n >> 16) % 250 + 1
        );
        let free = ["80", "443"]
            .iter()
            .all(|p| std::net::TcpListener::bind(format!("{addr}:{p}")).is_ok());
        if free {
            return addr;
        }
    }
}

// === impl OriginTls ===

/// A CA for the origins (what the cache trusts upstream) and one server certificate for
/// every origin name.
pub struct OriginTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl OriginTls {
    pub fn new(dir: &Path, names: &[&str]) -> OriginTls {
        fs::create_dir_all(dir).unwrap();
        let ca = dir.join("origin-ca.pem");
        let ca_key = dir.join("origin-ca.key");
        let cert = dir.join("origin.pem");
        let key = dir.join("origin.key");
        let csr = dir.join("origin.csr");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=dockgate test origin CA",
            ])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca));
        run(Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args(["-subj", "/CN=origin"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        let ext = dir.join("origin.ext");
        let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        fs::write(
            &ext,
            format!(
                "subjectAltName={}\nextendedKeyUsage=serverAuth\n",
                sans.join(",")
            ),
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert));
        OriginTls { ca, cert, key }
    }
}

// === impl AptRepo ===

/// A real apt repository: `.deb`s built with `dpkg-deb`, indexed with `dpkg-scanpackages`,
/// `InRelease` clear-signed with a throwaway GnuPG key.
pub struct AptRepo {
    /// The directory served as `/debian`.
    pub root: PathBuf,
    gnupg: PathBuf,
    work: PathBuf,
    /// The public key, base64 of `gpg --export` (for `/etc/apt/trusted.gpg.d/`).
    pub key_b64: String,
}

impl AptRepo {
    pub fn new(dir: &Path) -> AptRepo {
        let root = dir.join("www/debian");
        let gnupg = dir.join("gnupg");
        let work = dir.join("debs");
        fs::create_dir_all(root.join("dists/stable/main/binary-amd64")).unwrap();
        fs::create_dir_all(&gnupg).unwrap();
        fs::create_dir_all(&work).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&gnupg, fs::Permissions::from_mode(0o700)).unwrap();
        run(Command::new("gpg")
            .env("GNUPGHOME", &gnupg)
            .args(["--batch", "--quiet", "--passphrase", "", "--quick-gen-key"])
            .args([
                "dockgate test repository <repo@deb.test>",
                "ed25519",
                "sign",
                "never",
            ]));
        let out = Command::new("gpg")
            .env("GNUPGHOME", &gnupg)
            .args(["--batch", "--export"])
            .output()
            .expect("gpg --export");
        let key_b64 = run(Command::new("base64").arg("-w0").arg({
            let p = dir.join("repo.gpg");
            fs::write(&p, &out.stdout).unwrap();
            p
        }));
        AptRepo {
            root,
            gnupg,
            work,
            key_b64,
        }
    }

    /// Builds `name_version_all.deb` installing `/usr/share/NAME/VERSION` and `size` bytes of
    /// incompressible data, into the pool.
    pub fn add_package(&self, name: &str, version: &str, size: usize) {
        let src = self.work.join(format!("{name}-{version}"));
        let _ = fs::remove_dir_all(&src);
        fs::create_dir_all(src.join("DEBIAN")).unwrap();
        fs::create_dir_all(src.join(format!("usr/share/{name}"))).unwrap();
        fs::write(
            src.join("DEBIAN/control"),
            format!(
                "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: dockgate <t@deb.test>\n\
                 Description: dockgate test package\n"
            ),
        )
        .unwrap();
        fs::write(
            src.join(format!("usr/share/{name}/VERSION")),
            format!("{version}\n"),
        )
        .unwrap();
        if size > 0 {
            run(Command::new("head")
                .arg("-c")
                .arg(size.to_string())
                .arg("/dev/urandom")
                .stdout(fs::File::create(src.join(format!("usr/share/{name}/data"))).unwrap()));
        }
        let pool = self.root.join(format!("pool/main/{}/{name}", &name[..1]));
        fs::create_dir_all(&pool).unwrap();
        run(Command::new("dpkg-deb")
            .args(["-Zgzip", "-z1", "--root-owner-group", "--build"])
            .arg(&src)
            .arg(pool.join(format!("{name}_{version}_all.deb"))));
        let _ = fs::remove_dir_all(&src);
    }

    /// Removes every version of `name` but `version` from the pool.
    pub fn keep_only(&self, name: &str, version: &str) {
        let pool = self.root.join(format!("pool/main/{}/{name}", &name[..1]));
        for e in fs::read_dir(&pool).unwrap().flatten() {
            if e.file_name().to_string_lossy() != format!("{name}_{version}_all.deb") {
                fs::remove_file(e.path()).unwrap();
            }
        }
    }

    /// Writes `Packages`, `Packages.gz`, `Release` and a signed `InRelease`.
    pub fn publish(&self) {
        let packages = run(Command::new("dpkg-scanpackages")
            .args(["-m", "pool", "/dev/null"])
            .current_dir(&self.root)
            .stderr(Stdio::null()));
        let bin = self.root.join("dists/stable/main/binary-amd64");
        fs::write(bin.join("Packages"), &packages).unwrap();
        run(Command::new("sh")
            .arg("-c")
            .arg("gzip -9n -c Packages > Packages.gz.tmp && mv Packages.gz.tmp Packages.gz")
            .current_dir(&bin));
        let date = run(Command::new("date").args(["-u", "-R"]));
        let mut release = format!(
            "Origin: dockgate\nLabel: dockgate test\nSuite: stable\nCodename: stable\n\
             Date: {}\nArchitectures: amd64\nComponents: main\nSHA256:\n",
            date.trim()
        );
        for f in ["Packages", "Packages.gz"] {
            let p = bin.join(f);
            let _ = writeln!(
                release,
                " {} {} main/binary-amd64/{f}",
                sha256_hex(&p),
                fs::metadata(&p).unwrap().len()
            );
        }
        let dists = self.root.join("dists/stable");
        fs::write(dists.join("Release.tmp"), &release).unwrap();
        let _ = fs::remove_file(dists.join("InRelease.tmp"));
        run(Command::new("gpg")
            .env("GNUPGHOME", &self.gnupg)
            .args(["--batch", "--quiet", "--yes", "--clearsign", "-o"])
            .arg(dists.join("InRelease.tmp"))
            .arg(dists.join("Release.tmp")));
        fs::rename(dists.join("InRelease.tmp"), dists.join("InRelease")).unwrap();
        fs::rename(dists.join("Release.tmp"), dists.join("Release")).unwrap();
    }
}

impl Drop for AptRepo {
    fn drop(&mut self) {
        // gpg started an agent for this home: stop it.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.gnupg)
            .args(["--kill", "all"])
            .status();
    }
}

// === impl PypiIndex ===

/// A PEP 503 simple index with wheels built by Python's `zipfile` (real, installable).
pub struct PypiIndex {
    pub root: PathBuf,
}

impl PypiIndex {
    pub fn new(www: &Path) -> PypiIndex {
        fs::create_dir_all(www.join("simple")).unwrap();
        fs::create_dir_all(www.join("packages")).unwrap();
        PypiIndex {
            root: www.to_path_buf(),
        }
    }

    /// Adds a pure-Python wheel of `size` extra bytes and rewrites the project's index page.
    pub fn add_wheel(&self, project: &str, version: &str, size: usize) {
        let module = project.replace('-', "_");
        let file = format!("{module}-{version}-py3-none-any.whl");
        let script = r#"
import base64, hashlib, os, sys, zipfile
path, module, version, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
dist = f"{module}-{version}.dist-info"
files = {
    f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
    f"{module}/data.bin": os.urandom(size),
    f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: {version}\n".encode(),
    f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: dockgate-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for name, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{name},sha256={digest},{len(data)}")
record.append(f"{dist}/RECORD,,")
files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
    for name, data in files.items():
        z.writestr(name, data)
"#;
        let path = self.root.join("packages").join(&file);
        run(Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .arg(&path)
            .arg(&module)
            .arg(version)
            .arg(size.to_string()));
        let dir = self.root.join("simple").join(project);
        fs::create_dir_all(&dir).unwrap();
        let mut links = String::new();
        let mut wheels: Vec<_> = fs::read_dir(self.root.join("packages"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.starts_with(&format!("{module}-")))
            .collect();
        wheels.sort();
        for w in wheels {
            let hash = sha256_hex(&self.root.join("packages").join(&w));
            let _ = writeln!(
                links,
                "<a href=\"../../packages/{w}#sha256={hash}\">{w}</a><br/>"
            );
        }
        fs::write(
            dir.join("index.html"),
            format!("<!DOCTYPE html><html><body>\n{links}</body></html>\n"),
        )
        .unwrap();
    }
}

// === impl Nginx ===

/// A stock (Debian) nginx process with a config of its own, stopped on drop.
pub struct Nginx {
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Nginx {
    /// Starts nginx with `http_body` inside `http {}`; `ready` says when it serves.
    pub fn start(dir: &Path, http_body: &str, ready: impl Fn() -> bool) -> Nginx {
        Nginx::start_with(dir, |c| c.http_extra = http_body.to_string(), ready)
    }

    /// Starts nginx with the renderer's configuration for `dir`, as `setup` completes it.
    pub fn start_with(
        dir: &Path,
        setup: impl FnOnce(&mut NginxConf),
        ready: impl Fn() -> bool,
    ) -> Nginx {
        fs::create_dir_all(dir.join("logs")).unwrap();
        let d = dir.display();
        let mut c = NginxConf::new(repo_root().join("nginx-conf")).in_prefix(dir);
        c.user = running_as_root().then(|| "root root".to_string());
        c.workers = "2".into();
        c.worker_connections = 1024;
        c.error_log = format!("{d}/logs/error.log notice");
        setup(&mut c);
        // A fixture's static files: the types it serves and where it logs.
        c.http_extra = format!(
            "access_log {d}/logs/access.log;\n\
             types {{ text/html html; application/octet-stream deb whl gz; }}\n\
             default_type application/octet-stream;\n{}",
            c.http_extra
        );
        let conf = dockgate_nginxconf::render(&c);
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).unwrap();
        let child = spawn_nginx(&Flavor::Debian.nginx(), dir, &conf_path).expect("spawn nginx");
        let mut n = Nginx {
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        let up = wait_until(Duration::from_secs(10), || {
            n.exited() || (dir.join("nginx.pid").exists() && ready())
        });
        assert!(
            up && !n.exited(),
            "nginx in {} did not start:\n{}",
            dir.display(),
            n.error_log()
        );
        n
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("nginx.pid")
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }

    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.join("logs/access.log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_within(child, Duration::from_secs(10));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tcp_open(addr: &str, port: u16) -> bool {
    std::net::TcpStream::connect((addr, port)).is_ok()
}

// === impl Stack ===

/// Origins, cache and gateway for one test. Fields drop in order: the gateway, the cache and
/// the origin stop, gpg's agent is stopped, then the directory goes.
pub struct Stack {
    pub gateway: Gateway,
    pub cache: Nginx,
    pub origin: Nginx,
    pub apt: AptRepo,
    pub pypi: PypiIndex,
    pub origin_port: u16,
    pub origin_http_port: u16,
    /// Where the cache listens (80 and 443) and what the cached names resolve to.
    pub cache_address: String,
    /// The origins' CA (PEM file).
    pub origin_ca: PathBuf,
    pub dir: TempDir,
}

/// How a [`Stack`] is set up.
pub struct StackOptions {
    /// `Cache-Control: max-age` the origin sends with index files (`None`: no header).
    pub index_max_age: Option<u32>,
    pub ca_lifetime: &'static str,
    /// nginx `limit_rate` of the origin (per connection), to stand in for a remote mirror.
    pub origin_rate: Option<String>,
}

impl Stack {
    pub fn start(opts: StackOptions) -> Stack {
        let dir = TempDir::new("pkgcache").unwrap();
        let d = dir.path().to_path_buf();
        let mut names = vec![APT_HOST, PYPI_HOST];
        names.extend(OTHER_HOSTS.iter().map(|(n, _)| *n));
        let tls = OriginTls::new(&d.join("origin-tls"), &names);
        let apt = AptRepo::new(&d);
        let pypi = PypiIndex::new(&d.join("www"));

        let (origin_port, origin_http_port) = (free_port(), free_port());
        let www = d.join("www");
        let cache_control = opts
            .index_max_age
            .map(|s| format!("add_header Cache-Control \"max-age={s}\";"))
            .unwrap_or_default();
        let origin_conf = format!(
            "server {{\n  listen 127.0.0.1:{origin_port} ssl;\n  listen 127.0.0.1:{origin_http_port};\n\
             server_name {APT_HOST} {PYPI_HOST};\n\
             ssl_certificate {cert};\n  ssl_certificate_key {key};\n  root {www};\n  {rate}\n\
             location ~ /(InRelease|Release|Packages(\\.gz)?)$ {{ {cache_control} }}\n\
             location /simple/ {{ index index.html; {cache_control} }}\n\
             location ~ nocache {{ add_header Cache-Control \"no-store, max-age=0\"; }}\n}}\n",
            cert = tls.cert.display(),
            key = tls.key.display(),
            www = www.display(),
            rate = opts
                .origin_rate
                .as_deref()
                .map(|r| format!("limit_rate {r};"))
                .unwrap_or_default(),
        );
        let origin = Nginx::start(&d.join("origin"), &origin_conf, || {
            tcp_open("127.0.0.1", origin_port)
        });

        let cache_address = free_loopback_address();
        let state = d.join("package-cache");
        let extra = format!(
            "\n[package_cache]\ndir = \"{state}\"\naddress = \"{cache_address}\"\n\
             ca_lifetime = \"{lifetime}\"\nnginx_pid_file = \"{pid}\"\n\
             log_socket = \"{state}/log.sock\"\n\
             [[package_cache.hosts]]\nname = \"{APT_HOST}\"\nrules = \"apt\"\n\
             origin = \"127.0.0.1:{origin_port}\"\norigin_http = \"127.0.0.1:{origin_http_port}\"\n\
             [[package_cache.hosts]]\nname = \"{PYPI_HOST}\"\nrules = \"pypi\"\n\
             origin = \"127.0.0.1:{origin_port}\"\norigin_http = \"127.0.0.1:{origin_http_port}\"\n\
             {others}\
             [roles.ci]\nallow = [\"read\", \"write\", \"exec\", \"image\"]\n\
             policies = [\"conservative\", \"package-cache\"]\nallow_host_network = true\n\
             [[users]]\nname = \"runner\"\nrole = \"ci\"\ntoken_sha256 = [\"{token}\"]\n",
            state = state.display(),
            lifetime = opts.ca_lifetime,
            pid = d.join("cache/nginx.pid").display(),
            token = token_sha256(CI_TOKEN),
            others = OTHER_HOSTS
                .iter()
                .map(|(name, rules)| format!(
                    "[[package_cache.hosts]]\nname = \"{name}\"\nrules = \"{rules}\"\n\
                     origin = \"127.0.0.1:{origin_port}\"\norigin_http = \"127.0.0.1:{origin_http_port}\"\n"
                ))
                .collect::<String>(),
        );
        let gateway = Gateway::start_with(GatewayOptions {
            policy: Some(extra),
            ..GatewayOptions::new(Flavor::Debian)
        });
        assert!(
            state.join("server.pem").exists(),
            "{}",
            gateway.sidecar_log()
        );

        let cache_server = PackageCacheServer {
            address: cache_address.clone(),
            state: state.clone(),
            cache: d.join("cache/store"),
            max_size: "2g".into(),
            inactive: "1d".into(),
            origin_cas: tls.ca.clone(),
        };
        let addr = cache_address.clone();
        let cache = Nginx::start_with(
            &d.join("cache"),
            |c| c.package_cache = Some(cache_server),
            || tcp_open(&addr, 443),
        );
        Stack {
            origin_ca: tls.ca.clone(),
            dir,
            apt,
            pypi,
            origin,
            origin_port,
            origin_http_port,
            cache_address,
            cache,
            gateway,
        }
    }

    /// The sidecar's configuration file (for `dockgate ca ...`).
    pub fn sidecar_config(&self) -> PathBuf {
        self.gateway.dir.path().join("sidecar.toml")
    }

    /// `dockgate ca ARGS --config ...`, its stdout.
    pub fn ca(&self, args: &[&str]) -> String {
        run(Command::new(sidecar_binary())
            .arg("ca")
            .args(args)
            .arg("--config")
            .arg(self.sidecar_config()))
    }

    /// The subject CN of the CA that issued the certificate the cache serves for `name`.
    pub fn served_issuer(&self, name: &str) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(
                "openssl s_client -connect \"$ADDR:443\" -servername \"$NAME\" </dev/null 2>/dev/null \
                 | openssl x509 -noout -issuer",
            )
            .env("ADDR", &self.cache_address)
            .env("NAME", name)
            .output()
            .expect("openssl s_client");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The id of the current CA, from `dockgate ca show`.
    pub fn current_ca(&self) -> String {
        let show = self.ca(&["show"]);
        show.lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or_default()
            .to_string()
    }

    /// A plain-HTTP GET through the cache for `host`: (status, `X-Dockgate-Cache` value).
    pub fn http_through_cache(&self, host: &str, path: &str, headers: &[&str]) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-o", "/dev/null", "-D", "-", "-H"])
            .arg(format!("Host: {host}"));
        for h in headers {
            cmd.arg("-H").arg(h);
        }
        let out = cmd
            .arg(format!("http://{}{path}", self.cache_address))
            .output()
            .expect("curl");
        let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let cache = head
            .lines()
            .find_map(|l| l.strip_prefix("x-dockgate-cache:"))
            .unwrap_or("")
            .trim()
            .to_string();
        (status, cache)
    }

    /// The sidecar's metrics (Prometheus text).
    pub fn metrics(&self) -> String {
        let text = http_get_unix(
            &self.gateway.dir.path().join("sidecar.sock"),
            "/_dockgate/metrics",
        );
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or(text)
    }

    /// A DOCKER_CONFIG directory whose CLI sends the `ci` token.
    pub fn ci_docker_config(&self) -> PathBuf {
        let dir = self.dir.path().join("docker-config");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("config.json"),
            format!("{{\"HttpHeaders\":{{\"Authorization\":\"Bearer {CI_TOKEN}\"}}}}"),
        )
        .unwrap();
        dir
    }
}

/// Sums `series{labels}` samples whose labels contain every one of `must`.
pub fn metric_sum(text: &str, series: &str, must: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{series}{{")))
        .filter(|l| must.iter().all(|m| l.contains(m)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Where a job gets its packages: through the cache (the injected names and CA), or straight
/// from an origin URL with that origin's CA (the bench's "without cache" runs).
pub enum Source<'a> {
    Cache,
    Origin { port: u16, ca_pem: &'a str },
}

/// A CI-like job: configure apt and pip for the cached hosts, install, download.
pub fn job_script(key_b64: &str, debs: &[&str], wheels: &[&str]) -> String {
    job_script_from(&Source::Cache, key_b64, debs, wheels)
}

/// [`job_script`] from a given [`Source`].
pub fn job_script_from(
    source: &Source<'_>,
    key_b64: &str,
    debs: &[&str],
    wheels: &[&str],
) -> String {
    let (port, ca_setup, apt_ca, pip_ca) = match source {
        Source::Cache => (String::new(), String::new(), "", ""),
        Source::Origin { port, ca_pem } => (
            format!(":{port}"),
            format!("cat > /tmp/origin-ca.pem <<'PEM'\n{}PEM\n", ca_pem),
            " -o Acquire::https::CaInfo=/tmp/origin-ca.pem",
            " --cert /tmp/origin-ca.pem",
        ),
    };
    format!(
        "set -e\n{ca_setup}\
         echo {key_b64} | base64 -d > /etc/apt/trusted.gpg.d/dockgate-test.gpg\n\
         echo 'deb https://{APT_HOST}{port}/debian stable main' > /etc/apt/sources.list\n\
         apt-get -q -o Acquire::Retries=0{apt_ca} update >/tmp/apt.log 2>&1 || {{ cat /tmp/apt.log; exit 1; }}\n\
         apt-get -q -y{apt_ca} install {debs} >>/tmp/apt.log 2>&1 || {{ cat /tmp/apt.log; exit 1; }}\n\
         for p in {debs}; do echo \"$p $(cat /usr/share/$p/VERSION)\"; done\n\
         {pip}",
        debs = debs.join(" "),
        pip = if wheels.is_empty() {
            String::new()
        } else {
            format!(
                "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip download -q --no-deps -d /tmp/dl \
                 --index-url https://{PYPI_HOST}{port}/simple{pip_ca} {}\nls /tmp/dl\n",
                wheels.join(" ")
            )
        }
    )
}
