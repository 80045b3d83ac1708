//! `dockgate nginx-conf`: the nginx.conf for a sidecar configuration, from the one renderer
//! (`dockgate-nginxconf`). What the sidecar's file already says (where the sidecar listens,
//! dockerd's socket, the unix sockets it relays, the registry's stats socket, the package
//! cache's address and state) comes from it, so nginx and the sidecar cannot disagree; the
//! flags say what only nginx knows (its listeners, files, user).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use dockgate_decision::config::{Config, Listen as SidecarListen};
use dockgate_nginxconf::{
    render, render_http, ApiServer, DockerApi, Listen, NginxConf, PackageCacheServer,
    RegistryFrontend, RegistryServer, TlsFiles,
};

pub const USAGE: &str = "usage: dockgate nginx-conf [--config FILE | --transport-only] [OPTIONS]
  --config FILE          the sidecar's configuration: the sidecar's address, dockerd, the
                         unix sockets it relays, the registry and package cache settings
  --policy-path PATH     where nginx finds that file (default: --config's path; for a
                         package built elsewhere)
  --transport-only       no sidecar: the Docker API transport alone (docker-api.conf)
  --includes DIR         nginx-conf/'s includes (default /etc/nginx/dockgate)
  --module PATH|none     load_module (default /usr/lib/nginx/modules/ngx_http_dockgate_module.so)
  --prefix DIR           pid file and temporary files in DIR (default: nginx's own)
  --user 'USER GROUP'    the workers' user and group
  --workers N|auto       worker_processes (default auto)
  --error-log 'ARGS'     error_log (default 'stderr notice')
  --access-log 'ARGS'    the Docker API's access_log (default
                         '/var/log/nginx/docker-api.log dockgate buffer=64k flush=1s'; off)
  --daemon               let nginx detach (default: daemon off)
  --dockerd SOCKET       dockerd's socket (default: the configuration's [server] dockerd)
  --docker-api           the Docker API servers even without --listen or --tls: the
                         configuration's relayed unix sockets alone
  --listen NAME=ADDR     a Docker API listener for [listeners.NAME] on ADDR (repeatable);
                         with --transport-only NAME may be empty and ADDR unix:PATH
  --tls NAME=ADDR        a TLS listener with client certificates (repeatable)
  --tls-dir DIR          server-cert.pem, server-key.pem, ca.pem (default /etc/nginx/dockgate/tls)
  --registry ADDR[,team=T][,name=HOST]
                         a registry front-end server (repeatable)
  --registry-hosted ADDR --registry-upstream ADDR
                         the hosted registry and the proxied upstream (host:port)
  --registry-cache DIR   the front-end's cache (default /var/cache/dockgate/registry)
  --registry-cache-size S  the most that cache holds (max_size, e.g. 50g; default: the disk)
  --registry-tag-ttl D   how long a tag's answer is reused (default 1m)
  --registry-log FILE    the front-end's access log
  --package-cache DIR    serve the configuration's [package_cache], caching in DIR
  --origin-cas FILE      the CAs the package cache checks origins with
                         (default /etc/ssl/certs/ca-certificates.crt)
  --http FILE            one more include inside http {} (repeatable)
  --site                 only what goes inside http {} (a Debian site)
";

/// The parsed command line.
#[derive(Default)]
struct Args {
    values: Vec<(String, String)>,
    switches: Vec<String>,
}

const SWITCHES: &[&str] = &["--transport-only", "--daemon", "--site", "--docker-api"];
const VALUED: &[&str] = &[
    "--config",
    "--policy-path",
    "--includes",
    "--module",
    "--prefix",
    "--user",
    "--workers",
    "--error-log",
    "--access-log",
    "--dockerd",
    "--listen",
    "--tls",
    "--tls-dir",
    "--registry",
    "--registry-hosted",
    "--registry-upstream",
    "--registry-cache",
    "--registry-tag-ttl",
    "--registry-cache-size",
    "--registry-log",
    "--package-cache",
    "--origin-cas",
    "--http",
];

impl Args {
    fn parse(args: &[String]) -> anyhow::Result<Args> {
        let mut parsed = Args::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if SWITCHES.contains(&a.as_str()) {
                parsed.switches.push(a.clone());
            } else if VALUED.contains(&a.as_str()) {
                let v = it.next().with_context(|| format!("{a} needs a value"))?;
                parsed.values.push((a.clone(), v.clone()));
            } else {
                bail!("unknown option {a:?}\n{USAGE}");
            }
        }
        Ok(parsed)
    }

    fn one(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }
}

pub fn run(
    args: &[String],
    load: impl Fn(Option<String>) -> anyhow::Result<Config>,
) -> anyhow::Result<ExitCode> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let args = Args::parse(args)?;
    let conf = build(&args, &load)?;
    if args.has("--site") {
        print!("{}", render_http(&conf));
    } else {
        print!("{}", render(&conf));
    }
    Ok(ExitCode::SUCCESS)
}

fn build(
    args: &Args,
    load: &impl Fn(Option<String>) -> anyhow::Result<Config>,
) -> anyhow::Result<NginxConf> {
    let transport_only = args.has("--transport-only");
    let config_file = args.one("--config");
    if transport_only == config_file.is_some() {
        bail!("give one of --config FILE and --transport-only\n{USAGE}");
    }
    let config = match config_file {
        Some(f) => Some(load(Some(f.to_string()))?),
        None => None,
    };
    let mut c = NginxConf::new(args.one("--includes").unwrap_or("/etc/nginx/dockgate"));
    c.module = match args
        .one("--module")
        .unwrap_or("/usr/lib/nginx/modules/ngx_http_dockgate_module.so")
    {
        "none" => None,
        m => Some(m.into()),
    };
    if let Some(prefix) = args.one("--prefix") {
        c = c.in_prefix(prefix);
    }
    c.user = args.one("--user").map(str::to_string);
    if let Some(w) = args.one("--workers") {
        c.workers = w.to_string();
    }
    if let Some(e) = args.one("--error-log") {
        c.error_log = e.to_string();
    }
    c.daemon = args.has("--daemon");
    if let Some(cfg) = &config {
        c.sidecar = Some(match &cfg.listen {
            SidecarListen::Unix(p) => format!("unix:{}", p.display()),
            SidecarListen::Tcp(a) => a.to_string(),
        });
    }

    let tls_files = TlsFiles::in_dir(args.one("--tls-dir").unwrap_or("/etc/nginx/dockgate/tls"));
    let mut servers = Vec::new();
    for spec in args.all("--listen") {
        let (name, addr) = listener_spec("--listen", spec)?;
        let listen = match addr.strip_prefix("unix:") {
            Some(p) if transport_only => Listen::Unix(p.into()),
            Some(_) => bail!(
                "--listen {spec}: with a sidecar, unix sockets are the sidecar's \
                 ([listeners.NAME] socket and nginx); this one would have no caller credentials"
            ),
            None => Listen::Tcp(addr.to_string()),
        };
        servers.push(server(&config, name, listen, spec)?);
    }
    for spec in args.all("--tls") {
        let (name, addr) = listener_spec("--tls", spec)?;
        let listen = Listen::Tls {
            addr: addr.to_string(),
            files: tls_files.clone(),
        };
        servers.push(server(&config, name, listen, spec)?);
    }
    // The Docker API when asked for: its listeners, or --docker-api (the relays alone); a
    // registry-only or cache-only nginx has none.
    let docker_api = !servers.is_empty() || args.has("--docker-api");
    if let (true, Some(cfg)) = (docker_api, &config) {
        for (name, l) in &cfg.listeners {
            if let Some(relay) = &l.relay {
                servers.push(ApiServer {
                    listener: Some(name.clone()),
                    listen: Listen::Relay(relay.nginx.clone()),
                });
            }
        }
    }
    if docker_api {
        let dockerd = match (args.one("--dockerd"), &config) {
            (Some(d), _) => PathBuf::from(d),
            (None, Some(cfg)) => cfg.dockerd.clone(),
            (None, None) => PathBuf::from("/var/run/docker.sock"),
        };
        c.docker_api = Some(DockerApi {
            dockerd,
            policy: args
                .one("--policy-path")
                .or(config_file)
                .map(|f| absolute(Path::new(f))),
            access_log: args
                .one("--access-log")
                .unwrap_or("/var/log/nginx/docker-api.log dockgate buffer=64k flush=1s")
                .to_string(),
            servers,
        });
    }

    let registry_servers = args
        .all("--registry")
        .map(registry_server)
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !registry_servers.is_empty() {
        let cfg = config
            .as_ref()
            .context("--registry needs --config: the sidecar decides the registry's requests")?;
        let registry = cfg
            .registry
            .as_ref()
            .context("--registry: the configuration has no [registry] table")?;
        c.registry = Some(RegistryFrontend {
            hosted: args
                .one("--registry-hosted")
                .context("--registry needs --registry-hosted HOST:PORT")?
                .to_string(),
            upstream: args
                .one("--registry-upstream")
                .context("--registry needs --registry-upstream HOST:PORT")?
                .to_string(),
            cache: args
                .one("--registry-cache")
                .unwrap_or("/var/cache/dockgate/registry")
                .into(),
            inactive: "30d".into(),
            max_size: args.one("--registry-cache-size").map(str::to_string),
            tag_ttl: args.one("--registry-tag-ttl").unwrap_or("1m").to_string(),
            access_log: args.one("--registry-log").map(PathBuf::from),
            stats_socket: registry.stats_socket.as_ref().map(PathBuf::from),
            servers: registry_servers,
        });
    }

    if let Some(cache) = args.one("--package-cache") {
        let pc = config
            .as_ref()
            .and_then(|cfg| cfg.package_cache.as_ref())
            .context("--package-cache needs --config with a [package_cache] table")?;
        c.package_cache = Some(PackageCacheServer {
            address: pc.address.clone(),
            state: pc.ca.dir.clone(),
            cache: cache.into(),
            max_size: "20g".into(),
            inactive: "60d".into(),
            origin_cas: args
                .one("--origin-cas")
                .unwrap_or("/etc/ssl/certs/ca-certificates.crt")
                .into(),
        });
    }
    for file in args.all("--http") {
        c.http_extra += &format!("include {};\n", dockgate_nginxconf::quote(file));
    }
    Ok(c)
}

/// `NAME=ADDR`.
fn listener_spec<'a>(flag: &str, spec: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    spec.split_once('=')
        .filter(|(_, addr)| !addr.is_empty())
        .with_context(|| format!("{flag} {spec}: expected NAME=ADDR, e.g. loopback=127.0.0.1:2375"))
}

/// A server for `[listeners.NAME]`, which the configuration must have.
fn server(
    config: &Option<Config>,
    name: &str,
    listen: Listen,
    spec: &str,
) -> anyhow::Result<ApiServer> {
    let listener = match config {
        Some(cfg) => {
            if !cfg.listeners.contains_key(name) {
                let known: Vec<&str> = cfg.listeners.keys().map(String::as_str).collect();
                bail!(
                    "{spec}: the configuration has no [listeners.{name}] (it has {})",
                    known.join(", ")
                );
            }
            Some(name.to_string())
        }
        None => (!name.is_empty()).then(|| name.to_string()),
    };
    Ok(ApiServer { listener, listen })
}

/// `ADDR[,team=T][,name=HOST]`.
fn registry_server(spec: &str) -> anyhow::Result<RegistryServer> {
    let mut parts = spec.split(',');
    let listen = parts.next().unwrap_or_default().to_string();
    if listen.is_empty() {
        bail!("--registry {spec}: expected ADDR[,team=T][,name=HOST]");
    }
    let mut s = RegistryServer {
        listen,
        server_name: None,
        team: String::new(),
    };
    for part in parts {
        match part.split_once('=') {
            Some(("team", t)) => s.team = t.to_string(),
            Some(("name", n)) => s.server_name = Some(n.to_string()),
            _ => bail!("--registry {spec}: unknown part {part:?} (team=T or name=HOST)"),
        }
    }
    Ok(s)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockgate_decision::config::DEFAULT;

    fn conf(args: &[&str]) -> anyhow::Result<NginxConf> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        build(&Args::parse(&args)?, &|_| {
            Ok(Config::parse("test", DEFAULT)?)
        })
    }

    #[test]
    fn the_built_in_configuration_gives_the_relay_and_the_listeners_asked_for() {
        let c = conf(&[
            "--config",
            "/etc/dockgate/dockgate.toml",
            "--listen",
            "loopback=127.0.0.1:2375",
            "--tls",
            "tls=2376",
        ])
        .unwrap();
        let text = render(&c);
        assert!(text.contains("server unix:/run/dockgate/sidecar.sock;"));
        assert!(text.contains("dockgate_policy /etc/dockgate/dockgate.toml;"));
        assert!(text.contains("listen unix:/run/dockgate/private/docker-api.sock proxy_protocol;"));
        assert!(text.contains("ssl_certificate /etc/nginx/dockgate/tls/server-cert.pem;"));
        assert!(text.contains("server unix:/var/run/docker.sock;"));
    }

    #[test]
    fn the_docker_api_is_there_only_when_asked_for() {
        let none = render(&conf(&["--config", "x"]).unwrap());
        assert!(!none.contains("upstream dockerd") && !none.contains("proxy_protocol"));
        let relays = render(&conf(&["--config", "x", "--docker-api"]).unwrap());
        assert!(relays.contains("proxy_protocol") && !relays.contains("listen 127.0.0.1"));
    }

    #[test]
    fn a_listener_the_configuration_lacks_is_refused_by_name() {
        let e = conf(&["--config", "x.toml", "--listen", "lan=0.0.0.0:2375"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no [listeners.lan]"), "{e}");
        assert!(e.contains("loopback"), "{e}");
    }

    #[test]
    fn exactly_one_of_config_and_transport_only() {
        assert!(conf(&["--listen", "a=1"]).is_err());
        assert!(conf(&["--transport-only", "--config", "x"]).is_err());
        let c = conf(&["--transport-only", "--listen", "=unix:/tmp/d.sock"]).unwrap();
        let text = render(&c);
        assert!(text.contains("listen unix:/tmp/d.sock;"));
        assert!(!text.contains("dockgate_listener"));
        assert!(!text.contains("dockgate_sidecar"));
    }

    #[test]
    fn a_unix_listener_beside_the_sidecar_is_refused() {
        let e = conf(&["--config", "x", "--listen", "unix=unix:/tmp/d.sock"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("caller credentials"), "{e}");
    }

    #[test]
    fn registry_servers_need_the_registry_table_and_addresses() {
        let e = conf(&["--config", "x", "--registry", "127.0.0.1:5000,team=a"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("[registry]"), "{e}");
        assert!(registry_server("127.0.0.1:1,team=t,name=h").is_ok());
        assert!(registry_server("127.0.0.1:1,colour=red").is_err());
    }
}
