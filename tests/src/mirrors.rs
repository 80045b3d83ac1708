//! Mirrors under test: the full Docker API gateway and a registry front-end in one nginx
//! with one sidecar (the gateway hands dockerd one-pull credentials the front-end checks),
//! upstream registries that are anonymous, behind HTTP Basic (nginx's `auth_basic` in front
//! of distribution) or on distribution's token auth with a token issuer of the tests' own.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::docker::{run_script, Cli, Endpoint, Outcome, Transport};
use crate::nginx::{token_sha256, Flavor, Gateway, GatewayOptions};
use crate::registry::{read_request_head, skopeo, Distribution};
use crate::{free_port, repo_root, unique_name, TempDir};

/// The upstreams' one account (the mirrors' credentials in the sidecar's config).
pub const ROBOT: (&str, &str) = ("robot", "robot-pass");
/// The `service` and `issuer` of the token-auth upstream.
pub const SERVICE: &str = "dockgate-test-upstream";
pub const ISSUER: &str = "dockgate-test-issuer";

// === impl TokenIssuer ===

/// A token endpoint as distribution's token spec describes it: `GET /token?service=&scope=`
/// with HTTP Basic; tokens are RS256 JWTs signed (with `openssl`) by a self-signed
/// certificate the registry trusts (`rootcertbundle`), naming it in `x5c`. The robot gets
/// what it asks for; anyone else an empty grant. Every request is recorded.
pub struct TokenIssuer {
    pub port: u16,
    pub dir: TempDir,
    pub requests: Arc<Mutex<Vec<IssuerRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// One request the issuer saw.
#[derive(Clone, Debug)]
pub struct IssuerRequest {
    pub target: String,
    pub robot: bool,
}

impl TokenIssuer {
    pub fn start() -> TokenIssuer {
        let dir = TempDir::new("token-issuer").expect("issuer dir");
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", &format!("/CN={ISSUER}"), "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl req");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .expect("openssl x509");
        let x5c = base64(&der.stdout, true);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind issuer");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let head = String::from_utf8_lossy(&read_request_head(&mut conn)).into_owned();
                let target = head
                    .lines()
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or("")
                    .to_string();
                let robot_basic = format!(
                    "authorization: basic {}",
                    base64(format!("{}:{}", ROBOT.0, ROBOT.1).as_bytes(), true)
                )
                .to_ascii_lowercase();
                let robot = head
                    .lines()
                    .any(|l| l.trim().to_ascii_lowercase() == robot_basic);
                seen.lock().unwrap().push(IssuerRequest {
                    target: target.clone(),
                    robot,
                });
                let scope = query_param(&target, "scope").unwrap_or_default();
                let body = match sign(&key, &x5c, robot, &scope) {
                    Ok(jwt) => format!("{{\"token\":\"{jwt}\",\"expires_in\":300}}"),
                    Err(e) => format!("{{\"error\":{e:?}}}"),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenIssuer {
            port,
            dir,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// distribution's `auth:` section for this issuer.
    pub fn registry_auth_yaml(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {SERVICE}\n    \
             issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.port,
            self.cert().display()
        )
    }

    pub fn requests(&self) -> Vec<IssuerRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Stops answering (the port refuses connections).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn query_param(target: &str, key: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Ok(v) = u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or(""), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Base64 with `openssl` (the tests crate has no dependencies): standard and padded, or
/// JWT's URL-safe alphabet without padding.
pub fn base64(data: &[u8], standard: bool) -> String {
    let mut c = Command::new("openssl")
        .args(["base64", "-A"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl base64");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    let out = c.wait_with_output().expect("openssl base64");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if standard {
        text
    } else {
        text.trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_")
    }
}

/// A JWT granting `scope` (`repository:NAME:ACTIONS`) to the robot, nothing to others.
fn sign(key: &Path, x5c: &str, robot: bool, scope: &str) -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let access = match scope.split(':').collect::<Vec<_>>()[..] {
        ["repository", name, actions] if robot => {
            let actions: Vec<String> = actions.split(',').map(|a| format!("{a:?}")).collect();
            format!(
                "[{{\"type\":\"repository\",\"name\":{name:?},\"actions\":[{}]}}]",
                actions.join(",")
            )
        }
        _ => "[]".into(),
    };
    let header = format!("{{\"typ\":\"JWT\",\"alg\":\"RS256\",\"x5c\":[\"{x5c}\"]}}");
    let claims = format!(
        "{{\"iss\":\"{ISSUER}\",\"sub\":\"{}\",\"aud\":\"{SERVICE}\",\"exp\":{},\"nbf\":{},\
         \"iat\":{now},\"jti\":\"{}\",\"access\":{access}}}",
        if robot { ROBOT.0 } else { "" },
        now + 300,
        now - 10,
        unique_name("jti"),
    );
    let input = format!(
        "{}.{}",
        base64(header.as_bytes(), false),
        base64(claims.as_bytes(), false)
    );
    let mut c = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    c.stdin
        .take()
        .ok_or("stdin")?
        .write_all(input.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = c.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err("openssl dgst failed".into());
    }
    Ok(format!("{input}.{}", base64(&out.stdout, false)))
}

// === impl ApiUser ===

/// A Docker API user of the gateway with a token (sent from the CLI's `HttpHeaders`), in a
/// tenant or not.
pub struct ApiUser {
    pub name: String,
    pub token: String,
    pub tenant: Option<String>,
    pub config: TempDir,
}

impl ApiUser {
    pub fn new(tag: &str, tenant: Option<String>) -> ApiUser {
        let name = unique_name(tag);
        let token = format!("token-{name}");
        let config = TempDir::new("api-user-cli").expect("cli dir");
        fs::write(
            config.path().join("config.json"),
            format!("{{\"HttpHeaders\":{{\"Authorization\":\"Bearer {token}\"}}}}"),
        )
        .expect("cli config");
        ApiUser {
            name,
            token,
            tenant,
            config,
        }
    }

    fn toml(&self) -> String {
        let tenant = match &self.tenant {
            Some(t) => format!("tenant = \"{t}\"\n"),
            None => String::new(),
        };
        let table = match &self.tenant {
            Some(t) => format!("[tenants.{t}]\n"),
            None => String::new(),
        };
        format!(
            "{table}[[users]]\nname = \"{}\"\nrole = \"developer\"\n{tenant}token_sha256 = [\"{}\"]\n",
            self.name,
            token_sha256(&self.token)
        )
    }

    /// Runs `script` with the docker CLI `cli` against the gateway as this user.
    pub fn docker(&self, cli: Cli, gw: &Gateway, script: &str) -> Outcome {
        let config = self.config.path().display().to_string();
        run_script(
            cli,
            &Endpoint::gateway(gw, Transport::Tcp),
            script,
            &[("DOCKER_CONFIG", &config)],
            None,
        )
    }
}

// === impl MirrorSetup ===

/// A mirror of the front-end: its namespace, the upstream's port, and its credentials.
#[derive(Clone, Debug, Default)]
pub struct MirrorSpec {
    pub namespace: String,
    pub port: u16,
    pub credentials: bool,
    /// The password in a file of its own (`password_file`) rather than in the config.
    pub password_file: bool,
    /// An https upstream: the CA bundle nginx and the sidecar trust for it, and the host
    /// name in its URL (`127.0.0.1` when `None`).
    pub tls: Option<(PathBuf, String)>,
}

impl MirrorSpec {
    /// The registry as image references name it: `HOST:PORT`, so a direct pull on dockerd's
    /// socket reaches the same upstream.
    pub fn registry(&self) -> String {
        let host = self.tls.as_ref().map_or("127.0.0.1", |(_, h)| h.as_str());
        format!("{host}:{}", self.port)
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.registry())
    }
}

/// The gateway and the front-end (team `""`, on `front_port`), and the hosted registry.
pub struct MirrorSetup {
    pub gw: Gateway,
    pub front_port: u16,
    pub hosted: Distribution,
    /// The front-end's cache and access log (removed after nginx stopped).
    pub cache: TempDir,
}

/// An upstream behind HTTP Basic: an nginx `server` with `auth_basic` (the robot's password
/// in nginx's `{PLAIN}` form) proxying to `upstream`, on TLS with `tls` (certificate and
/// key); put into the gateway's nginx.
pub fn basic_auth_upstream(
    dir: &Path,
    listen: u16,
    upstream: u16,
    tls: Option<(&Path, &Path)>,
) -> String {
    let users = dir.join(format!("htpasswd-{listen}"));
    fs::write(&users, format!("{}:{{PLAIN}}{}\n", ROBOT.0, ROBOT.1)).expect("htpasswd");
    let (ssl, certs) = match tls {
        Some((cert, key)) => (
            " ssl",
            format!(
                "  ssl_certificate {};\n  ssl_certificate_key {};\n",
                cert.display(),
                key.display()
            ),
        ),
        None => ("", String::new()),
    };
    format!(
        "server {{\n  listen 127.0.0.1:{listen}{ssl};\n{certs}  client_max_body_size 0;\n  \
         auth_basic \"basic upstream\";\n  auth_basic_user_file {};\n  \
         location / {{ proxy_pass http://127.0.0.1:{upstream}; proxy_set_header Host $http_host; }}\n}}\n",
        users.display()
    )
}

impl MirrorSetup {
    /// `users`: who uses the Docker API, with the mirror namespaces each may pull;
    /// `anonymous`: what the gateway's anonymous callers may pull;
    /// `extra_servers`: nginx text for more upstreams (see [`basic_auth_upstream`]).
    pub fn start(
        mirrors: &[MirrorSpec],
        users: &[(&ApiUser, &[&str])],
        anonymous: &[&str],
        extra_servers: &dyn Fn(&Path) -> String,
    ) -> MirrorSetup {
        let hosted = Distribution::start("mirror-hosted");
        let front_port = free_port();
        let conf = |name: &str| {
            repo_root()
                .join("nginx-conf")
                .join(name)
                .display()
                .to_string()
        };
        let mut policy = String::new();
        for (u, _) in users {
            policy += &u.toml();
        }
        let anonymous: Vec<String> = anonymous.iter().map(|p| format!("{p:?}")).collect();
        policy += &format!(
            "[registry]\npull_through = \"127.0.0.1:{front_port}\"\nanonymous = {{ pull = [{}] }}\n",
            anonymous.join(", ")
        );
        for (u, pulls) in users {
            let list: Vec<String> = pulls.iter().map(|p| format!("{p:?}")).collect();
            policy += &format!(
                "[registry.users.{}]\npull = [{}]\n",
                u.name,
                list.join(", ")
            );
        }
        let cache = TempDir::new("mirror-cache").expect("cache dir");
        let cache_dir = cache.path().to_path_buf();
        let mut upstreams = String::new();
        for m in mirrors {
            policy += &format!(
                "[registry.mirrors.{ns}]\nregistry = \"{reg}\"\nurl = \"{url}\"\n",
                ns = m.namespace,
                reg = m.registry(),
                url = m.url(),
            );
            if let Some((ca, _)) = &m.tls {
                policy += &format!("ca = \"{}\"\n", ca.display());
            }
            if m.credentials && m.password_file {
                let file = cache_dir.join(format!("{}.password", m.namespace));
                fs::write(&file, format!("{}\n", ROBOT.1)).expect("password file");
                policy += &format!(
                    "username = \"{}\"\npassword_file = \"{}\"\n",
                    ROBOT.0,
                    file.display()
                );
            } else if m.credentials {
                policy += &format!("username = \"{}\"\npassword = \"{}\"\n", ROBOT.0, ROBOT.1);
            }
            upstreams += &format!(
                "upstream dockgate_mirror_{} {{ server 127.0.0.1:{}; keepalive 8; }}\n",
                m.namespace, m.port
            );
        }
        let extra = extra_servers(&cache_dir);
        // A private CA for the https upstreams, in the front-end's server.
        let trusted = mirrors
            .iter()
            .find_map(|m| m.tls.as_ref())
            .map(|(ca, _)| format!("  proxy_ssl_trusted_certificate {};\n", ca.display()))
            .unwrap_or_default();
        let extra_http = format!(
            "include {http};\n\
             proxy_cache_path {cache}/cache levels=1:2 keys_zone=dockgate_registry:8m inactive=30d use_temp_path=off;\n\
             upstream dockgate_registry_hosted {{ server 127.0.0.1:{hosted}; keepalive 8; }}\n\
             {upstreams}\
             server {{\n  listen 127.0.0.1:{front_port};\n  set $dockgate_registry_team \"\";\n  \
             proxy_cache_valid 200 1m;\n{trusted}  \
             access_log {cache}/registry.log dockgate_registry;\n  include {frontend};\n}}\n\
             {extra}",
            http = conf("registry-http.conf"),
            cache = cache_dir.display(),
            hosted = hosted.port,
            frontend = conf("registry-frontend.conf"),
        );
        let gw = Gateway::start_with(GatewayOptions {
            policy: Some(policy),
            extra_http,
            ..GatewayOptions::policy(Flavor::Debian)
        });
        MirrorSetup {
            gw,
            front_port,
            hosted,
            cache,
        }
    }

    /// The front-end's access log (one line per answer, with kind and cache status).
    pub fn front_log(&self) -> String {
        String::from_utf8_lossy(
            &fs::read(self.cache.path().join("registry.log")).unwrap_or_default(),
        )
        .into_owned()
    }
}

/// Puts a fresh image (busybox and `kb` KB of random bytes) in `registry` as `name_tag`
/// with skopeo, straight from dockerd, and removes it from dockerd. Returns the digest of
/// its own layer (the one no other image has).
pub fn seed_unique(
    registry: &str,
    name_tag: &str,
    creds: Option<(&str, &str)>,
    kb: usize,
) -> String {
    let local = format!("dockgate-test/{}:v1", unique_name("mirror-seed"));
    crate::registry::unique_image(&local, kb);
    let dest = format!("docker://{registry}/{name_tag}");
    let creds = creds.map(|(u, p)| format!("{u}:{p}"));
    let mut args = vec!["copy"];
    if let Some(c) = &creds {
        args.extend(["--dest-creds", c]);
    }
    let src = format!("docker-daemon:{local}");
    args.extend([src.as_str(), dest.as_str()]);
    skopeo(&args);
    crate::registry::DockerClient::new().ok(&["rmi", &local]);
    // The registry's layer digests are of the compressed layers: ask it.
    let mut m = vec!["inspect", "--raw"];
    if let Some(c) = &creds {
        m.extend(["--creds", c]);
    }
    m.push(&dest);
    let manifest = skopeo(&m);
    let layers: Vec<String> = manifest
        .split("\"digest\"")
        .skip(1)
        .filter_map(|s| s.split('"').nth(1).map(str::to_string))
        .collect();
    layers.last().cloned().expect("a layer")
}
