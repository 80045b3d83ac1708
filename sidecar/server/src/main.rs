/*!
`dockgate`: the sidecar nginx consults for every Docker API request.

    dockgate serve [--config FILE]          decide for nginx (auth_request) and mediate bodies
    dockgate check-config FILE              validate a configuration; errors name line and key
    dockgate explain [--config FILE] --as WHO METHOD URI [--body FILE]
                                            print the decision `serve` would make
    dockgate hash-token TOKEN               the token_sha256 value to put in the config
    dockgate ca show|rotate --config FILE   the package cache's CA: print it, or rotate it now
    dockgate nginx-conf --config FILE ...   the nginx.conf for this configuration

WHO is a user name from the configuration, or `anonymous@LISTENER`.
Without --config, the built-in default configuration is used.
*/
#![forbid(unsafe_code)]

mod app;
mod body_gate;
mod build_context;
mod channel_body;

mod forward;
mod host_paths;
mod jobs;
mod lookups;
mod metrics;
mod nginx_conf_command;
mod package_cache;
mod pipeline;
mod pull;
mod reach;
mod registry;
mod relay;
mod tenant;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use dockgate_ca as ca;
use dockgate_policy::gojson;
use tracing_subscriber::EnvFilter;

use crate::app::{app, AppState};
use dockgate_decision::config::{self, Config, Listen, LogFormat, DEFAULT};
use dockgate_decision::decide::Head;
use dockgate_decision::head::Next;
use dockgate_decision::identity::Identity;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dockgate: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        print!("{}", USAGE);
        return Ok(ExitCode::from(2));
    };
    match command.as_str() {
        "serve" => serve(load(flag(rest, "--config")?)?),
        "check-config" => {
            let [file] = rest else {
                bail!("usage: dockgate check-config FILE");
            };
            load(Some(file.clone()))?;
            println!("{file}: ok");
            Ok(ExitCode::SUCCESS)
        }
        "explain" => explain(rest),
        "ca" => ca_command(rest),
        "nginx-conf" => nginx_conf_command::run(rest, load),
        "hash-token" => {
            let [token] = rest else {
                bail!("usage: dockgate hash-token TOKEN");
            };
            println!("{}", config::token_hash(token));
            Ok(ExitCode::SUCCESS)
        }
        "-h" | "--help" | "help" => {
            print!("{}", USAGE);
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

const USAGE: &str = "usage:
  dockgate serve [--config FILE]
  dockgate check-config FILE
  dockgate explain [--config FILE] --as WHO METHOD URI [--body FILE]
  dockgate hash-token TOKEN
  dockgate ca show|rotate --config FILE
  dockgate nginx-conf [--config FILE | --transport-only] [OPTIONS]   (--help for the options)
";

/// `dockgate ca show` prints the package cache's CA and when it expires and rotates;
/// `dockgate ca rotate` rotates it now (and reloads nginx when `nginx_pid_file` is set).
fn ca_command(args: &[String]) -> anyhow::Result<ExitCode> {
    let usage = "usage: dockgate ca show|rotate --config FILE";
    let config = load(Some(flag(args, "--config")?.context(usage)?))?;
    let pc = config
        .package_cache
        .as_ref()
        .context("the configuration has no [package_cache] section")?;
    match args.first().map(String::as_str) {
        Some("show") => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            print!("{}", ca::show(&pc.ca, now)?);
        }
        Some("rotate") => {
            package_cache::prepare_and_reload(pc, true)?;
            let st = ca::load(&pc.ca.dir)?.context("no CA state after rotating")?;
            println!(
                "rotated: current CA {}, next CA {}",
                st.current.id, st.next.id
            );
        }
        _ => bail!(usage),
    }
    Ok(ExitCode::SUCCESS)
}

/// The value of `--name VALUE` in `args`.
fn flag(args: &[String], name: &str) -> anyhow::Result<Option<String>> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => match args.get(i + 1) {
            Some(v) => Ok(Some(v.clone())),
            None => bail!("{name} needs a value"),
        },
    }
}

fn load(file: Option<String>) -> anyhow::Result<Config> {
    let (name, text) = match file {
        None => ("built-in default".to_string(), DEFAULT.to_string()),
        Some(f) => {
            let text = std::fs::read_to_string(&f).with_context(|| format!("read {f}"))?;
            (f, text)
        }
    };
    Ok(Config::parse(&name, &text)?)
}

fn explain(args: &[String]) -> anyhow::Result<ExitCode> {
    let config = load(flag(args, "--config")?)?;
    let who = flag(args, "--as")?.context("--as WHO is required")?;
    let body_file = flag(args, "--body")?;
    let positional: Vec<&String> = {
        let mut skip = false;
        args.iter()
            .filter(|a| {
                if skip {
                    skip = false;
                    return false;
                }
                if a.starts_with("--") {
                    skip = true;
                    return false;
                }
                true
            })
            .collect()
    };
    let [method, uri] = positional.as_slice() else {
        bail!("usage: dockgate explain [--config FILE] --as WHO METHOD URI [--body FILE]");
    };
    let identity = match who.strip_prefix("anonymous@") {
        Some(listener) => {
            let l = config
                .listeners
                .get(listener)
                .with_context(|| format!("no listener {listener:?}"))?;
            let role = l
                .anonymous_role
                .clone()
                .with_context(|| format!("listener {listener:?} allows no anonymous access"))?;
            Identity {
                user: "anonymous".into(),
                role,
            }
        }
        None => {
            let u = config
                .users
                .iter()
                .find(|u| u.name == who)
                .with_context(|| format!("no user {who:?}"))?;
            Identity {
                user: u.name.clone(),
                role: u.role.clone(),
            }
        }
    };
    let mut body = match &body_file {
        Some(f) => {
            let bytes = std::fs::read(f).with_context(|| format!("read {f}"))?;
            let v = gojson::parse(&bytes)?;
            v.validate()?;
            Some(v)
        }
        None => None,
    };
    println!("who:      {} (role {})", identity.user, identity.role);
    // The same pipeline `serve` runs: the head as `auth_request` sees it, then (with --body)
    // the mediated check; tenant admission asks the engine, as `serve` does.
    let head = Head {
        method,
        uri,
        content_type: body.as_ref().map(|_| "application/json"),
        has_body: body.is_some(),
    };
    // Where `serve`'s gateway decides it: nginx's worker when no engine lookup is needed.
    let decided = match dockgate_decision::head::decide(&config, &identity, &head) {
        Ok(Next::Tenant { .. }) => "sidecar (the tenant's names are looked up on the engine)",
        Ok(Next::Reach { .. }) => "sidecar (the object it acts through is looked up on the engine)",
        Ok(Next::Done(_)) | Err(_) => "nginx (in the worker: no engine lookup)",
    };
    println!("decided:  {decided}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let decision = runtime.block_on(async {
        let allowed = pipeline::head(&config, &identity, &head).await?;
        match body.as_mut() {
            Some(value) if allowed.mediated => {
                let head = Head {
                    uri: &allowed.uri.to_string(),
                    ..head
                };
                pipeline::body(&config, &identity, &head, value).await
            }
            _ => Ok(allowed),
        }
    });
    match decision {
        Ok(a) => {
            println!("verdict:  allow");
            println!(
                "endpoint: {} {} ({}: {})",
                method,
                a.endpoint.template,
                a.endpoint.kind.as_str(),
                a.endpoint.doc
            );
            println!("forward:  {}", a.uri);
            println!(
                "route:    {}",
                if a.mediated && body.is_none() {
                    "mediated (the body is checked by the sidecar; pass --body to check it here)"
                } else if a.mediated {
                    "mediated (body checked)"
                } else {
                    "direct to dockerd"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(r) => {
            println!("verdict:  refuse ({})", r.status.code());
            println!("rule:     {}", r.rule.unwrap_or("-"));
            println!("answer:   {}", r.json());
            Ok(ExitCode::from(1))
        }
    }
}

fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init(),
        LogFormat::Text => tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .with_env_filter(filter)
            .init(),
    }
    // One thread: a decision takes microseconds and forwarding waits on I/O; on small hosts,
    // hand-offs between runtime threads cost more than they bring (measured in bench/).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Body checks run on the blocking pool, at most `body_gate::IN_FLIGHT` at once (the
        // file system's few calls share it): fewer threads, fewer allocator arenas holding
        // the largest tree each has seen.
        .max_blocking_threads(body_gate::IN_FLIGHT)
        .build()?;
    runtime.block_on(async move {
        let listen = config.listen.clone();
        let dockerd = config.dockerd.clone();
        let package_cache = config.package_cache.clone();
        let mut relayed_sockets = Vec::new();
        // The listeners run until the sidecar stops (dropping this stops them).
        let (_keep_listening, listening) = tokio::sync::watch::channel(false);
        for (name, listener) in &config.listeners {
            let Some(relay) = &listener.relay else {
                continue;
            };
            let socket = relay::bind(name, relay, &dockerd)?;
            tracing::info!(listener = %name, socket = %relay.socket.display(),
                nginx = %relay.nginx.display(), "relaying with peer credentials");
            tokio::spawn(relay::serve(
                name.clone(),
                socket,
                relay.nginx.clone(),
                relay::Caller::PeerCredentials,
                listening.clone(),
            ));
            relayed_sockets.push(relay.socket.clone());
        }
        let jobs = match &config.jobs {
            Some(settings) => {
                let jobs = Arc::new(jobs::Jobs::new(settings.clone()));
                jobs.prepare().context("[jobs]")?;
                relay::private_dir(settings.nginx.parent().context("jobs' internal listener")?)
                    .context("[jobs]")?;
                tracing::info!(dir = %settings.dir.display(), listener = %settings.listener,
                    "CI job sockets enabled");
                tokio::spawn(jobs::watch::watch(dockerd.clone(), jobs.clone()));
                Some(jobs)
            }
            None => None,
        };
        let state = Arc::new(AppState {
            config,
            metrics: Default::default(),
            bodies: Default::default(),
            registry: Default::default(),
            jobs,
        });
        if let Some(path) = state
            .config
            .registry
            .as_ref()
            .and_then(|r| r.stats_socket.clone())
        {
            let path = std::path::PathBuf::from(path);
            registry::listen_stats(&path, state.clone())
                .with_context(|| format!("listen on {}", path.display()))?;
            restrict_socket(&path, &dockerd)?;
        }
        if let Some(pc) = package_cache {
            start_package_cache(pc, &dockerd, &state)?;
        }
        let router = app(state);
        match listen {
            Listen::Unix(path) => {
                let _ = std::fs::remove_file(&path);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("create {}", dir.display()))?;
                }
                let listener = tokio::net::UnixListener::bind(&path)
                    .with_context(|| format!("listen on {}", path.display()))?;
                restrict_socket(&path, &dockerd)?;
                tracing::info!(socket = %path.display(), "dockgate sidecar listening");
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown())
                    .await?;
                let _ = std::fs::remove_file(&path);
            }
            Listen::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("listen on {addr}"))?;
                tracing::info!(%addr, "dockgate sidecar listening");
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown())
                    .await?;
            }
        }
        for socket in relayed_sockets {
            let _ = std::fs::remove_file(socket);
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The package cache's CA and nginx includes are ready before the sidecar answers; then a
/// task rotates the CA when due and another counts nginx's cache log datagrams.
fn start_package_cache(
    pc: package_cache::Settings,
    dockerd: &Path,
    state: &Arc<AppState>,
) -> anyhow::Result<()> {
    package_cache::prepare_and_reload(&pc, false).context("package cache CA")?;
    tracing::info!("{}", package_cache::describe(&pc));
    if let Some(sock) = pc.log_socket.clone() {
        let (state, dockerd) = (state.clone(), dockerd.to_path_buf());
        tokio::spawn(async move {
            if let Err(e) =
                package_cache::receive_logs(sock, &dockerd, &state.metrics.package_cache).await
            {
                tracing::error!(error = %format!("{e:#}"), "package cache log socket failed");
            }
        });
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(package_cache::check_interval(&pc));
        loop {
            tick.tick().await;
            match package_cache::prepare_and_reload(&pc, false) {
                Ok(true) => tracing::info!("package cache CA rotated; nginx reloaded"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %format!("{e:#}"), "package cache CA rotation"),
            }
        }
    });
    Ok(())
}

/// Only the socket's owner and the group that may use the Docker socket (nginx's workers
/// run in it) may talk to the sidecar: mode 0660, group of the Docker socket.
fn restrict_socket(path: &Path, dockerd: &Path) -> anyhow::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Ok(meta) = std::fs::metadata(dockerd) {
        // Best effort: changing the group needs privileges the sidecar may not have.
        let _ = std::os::unix::fs::chown(path, None, Some(meta.gid()));
    }
    Ok(())
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("dockgate sidecar stopping");
}
