/*!
The one nginx.conf renderer. `make run`, the Debian package's site, the image's entrypoint,
the test harnesses and the bench scripts all describe the nginx they want as a [`NginxConf`]
(the shell ones through `dockgate nginx-conf`) and get the same skeleton around the includes
of `nginx-conf/`, so a new include or directive is added here, once.

The renderer is pure: it knows nginx's syntax and the includes' contract (which upstreams,
variables and paths each expects), nothing about the sidecar's configuration file, which the
`dockgate nginx-conf` command reads to fill in the sidecar's side.
*/
#![forbid(unsafe_code)]

mod render;

use std::path::PathBuf;

pub use render::{quote, render, render_http};

/// A whole nginx.conf: the main context, the events block, and `http {}` with the servers.
#[derive(Clone, Debug)]
pub struct NginxConf {
    /// `load_module`: the dockgate module; `None` for stock nginx (no Docker API servers that
    /// need it).
    pub module: Option<PathBuf>,
    /// `user USER GROUP` for the workers; `None` leaves nginx's default.
    pub user: Option<String>,
    /// `worker_processes`: a number or `auto`.
    pub workers: String,
    pub worker_connections: u32,
    /// `daemon off;` unless set: every dockgate nginx but the system service runs in the
    /// foreground under a supervisor (the run script, the container, a test).
    pub daemon: bool,
    /// The pid file; `None`: nginx's compiled-in one.
    pub pid: Option<PathBuf>,
    /// `error_log` arguments, e.g. `stderr notice`.
    pub error_log: String,
    /// Where the five temporary directories go (`client_body_temp_path` and the rest);
    /// `None`: nginx's compiled-in ones.
    pub temp: Option<PathBuf>,
    /// The directory holding `nginx-conf/`'s includes (`/etc/nginx/dockgate` when installed).
    pub includes: PathBuf,
    /// `upstream dockgate_sidecar`: `unix:/path` or `host:port`. Needed by the Docker API
    /// with a policy and by the registry front-end.
    pub sidecar: Option<String>,
    pub docker_api: Option<DockerApi>,
    pub registry: Option<RegistryFrontend>,
    pub package_cache: Option<PackageCacheServer>,
    /// More text for `http {}` (test fixtures, a peer's proxy): appended as given.
    pub http_extra: String,
}

/// The Docker API gateway: `dockgate-http.conf`, the dockerd upstream and one server per
/// listener, each with `docker-api-common.conf` and the policy or transport-only include.
#[derive(Clone, Debug)]
pub struct DockerApi {
    /// dockerd's unix socket (`upstream dockerd`).
    pub dockerd: PathBuf,
    /// The sidecar's configuration file (`dockgate_policy`): servers decide through the
    /// sidecar (`docker-api-policy.conf`). `None`: the transport alone (`docker-api.conf`).
    pub policy: Option<PathBuf>,
    /// `access_log` arguments for the API's servers (`PATH dockgate ...` or `off`).
    pub access_log: String,
    pub servers: Vec<ApiServer>,
}

/// One Docker API server. `listener` is the `[listeners.NAME]` of the sidecar's
/// configuration its callers are anonymous on (`$dockgate_listener`); `None` sets nothing
/// (transport-only servers).
#[derive(Clone, Debug)]
pub struct ApiServer {
    pub listener: Option<String>,
    pub listen: Listen,
}

#[derive(Clone, Debug)]
pub enum Listen {
    /// `listen ADDR;` (`127.0.0.1:2375`, `[::1]:2375`, `2375`).
    Tcp(String),
    /// `listen unix:PATH;`: a unix socket nginx owns (no caller credentials).
    Unix(PathBuf),
    /// `listen unix:PATH proxy_protocol;`: the internal end of a socket the sidecar owns and
    /// relays with each caller's credentials.
    Relay(PathBuf),
    /// `listen ADDR ssl;` with client certificates and `tls.conf`.
    Tls { addr: String, files: TlsFiles },
}

/// The TLS listener's files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that signs the clients' certificates.
    pub client_ca: PathBuf,
}

impl TlsFiles {
    /// `server-cert.pem`, `server-key.pem` and `ca.pem` in `dir` (what `scripts/gen-certs.sh`
    /// writes and the image mounts).
    pub fn in_dir(dir: impl Into<PathBuf>) -> TlsFiles {
        let dir = dir.into();
        TlsFiles {
            cert: dir.join("server-cert.pem"),
            key: dir.join("server-key.pem"),
            client_ca: dir.join("ca.pem"),
        }
    }
}

/// The registry front-end (`registry-http.conf`, `registry-frontend.conf`): a hosted
/// registry and a proxied upstream, through nginx's cache, the sidecar deciding.
#[derive(Clone, Debug)]
pub struct RegistryFrontend {
    /// `host:port` of the hosted registry and of the proxied upstream.
    pub hosted: String,
    pub upstream: String,
    /// `proxy_cache_path` of the `dockgate_registry` zone.
    pub cache: PathBuf,
    /// How long cached entries live unused (`inactive=`), and the most the cache holds
    /// (`max_size=`; `None`: the disk).
    pub inactive: String,
    pub max_size: Option<String>,
    /// How long an answer by tag is reused (`proxy_cache_valid 200`).
    pub tag_ttl: String,
    /// One request line per request (`dockgate_registry` format); `None`: no log.
    pub access_log: Option<PathBuf>,
    /// The sidecar's `[registry] stats_socket`: one datagram per cache answer.
    pub stats_socket: Option<PathBuf>,
    pub servers: Vec<RegistryServer>,
}

/// One front-end server: where it listens, the host name it answers for (`None`: any) and
/// the team whose namespace it maps names into (`""`: names as given).
#[derive(Clone, Debug)]
pub struct RegistryServer {
    pub listen: String,
    pub server_name: Option<String>,
    pub team: String,
}

/// The package cache (`package-cache-http.conf`, `package-cache.conf`) on the address the
/// sidecar's `[package_cache]` points containers at, with the files the sidecar writes in
/// its state directory (`nginx-http.conf`, `nginx-server.conf`).
#[derive(Clone, Debug)]
pub struct PackageCacheServer {
    /// `[package_cache] address`: the cache listens on port 80 and 443 there.
    pub address: String,
    /// The sidecar's CA directory, where it writes the two includes.
    pub state: PathBuf,
    /// `proxy_cache_path` of the `dockgate_pkgcache` zone, and its bounds.
    pub cache: PathBuf,
    pub max_size: String,
    pub inactive: String,
    /// The CAs the origins' certificates are checked against.
    pub origin_cas: PathBuf,
}

impl NginxConf {
    /// A foreground nginx with the includes in `includes` and nothing to serve yet.
    pub fn new(includes: impl Into<PathBuf>) -> NginxConf {
        NginxConf {
            module: None,
            user: None,
            workers: "auto".into(),
            worker_connections: 4096,
            daemon: false,
            pid: None,
            error_log: "stderr notice".into(),
            temp: None,
            includes: includes.into(),
            sidecar: None,
            docker_api: None,
            registry: None,
            package_cache: None,
            http_extra: String::new(),
        }
    }

    /// Pid file, temporary directories and (unless set otherwise) the error log under
    /// `prefix`, as every harness and script that runs its own nginx wants.
    pub fn in_prefix(mut self, prefix: impl Into<PathBuf>) -> NginxConf {
        let prefix = prefix.into();
        self.pid = Some(prefix.join("nginx.pid"));
        self.temp = Some(prefix.clone());
        self
    }
}
