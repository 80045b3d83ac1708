//! The gateway's configuration: one TOML file, read into a typed [`Config`] by the sidecar at
//! start-up and by nginx's module (`dockgate_policy`) whenever nginx loads its configuration.
//! Every problem is reported with its line and key, all of them at once, before exiting.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use dockgate_api::endpoints::Kind;
use dockgate_policy::inject::{Injection, Ulimit};
use dockgate_policy::rules::Conservative;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

pub mod package_cache;

use crate::jobs::{Cleanup, JobKey, JobSettings};

/// The configuration `dockgate serve` uses when given none: anonymous access with the
/// `developer` role on the loopback and unix-socket listeners, `conservative` policy.
pub const DEFAULT: &str = include_str!("default.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    policy: RawPolicy,
    roles: BTreeMap<String, RawRole>,
    #[serde(default)]
    users: Vec<RawUser>,
    listeners: BTreeMap<String, RawListener>,
    #[serde(default)]
    tenants: BTreeMap<Spanned<String>, RawTenant>,
    registry: Option<dockgate_registry::access::RawRegistry>,
    package_cache: Option<package_cache::RawPackageCache>,
    jobs: Option<RawJobs>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJobs {
    dir: Spanned<String>,
    listener: Option<Spanned<String>>,
    cleanup: Option<Spanned<String>>,
    shared_images: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    max_containers: Option<usize>,
    max_memory: Option<i64>,
    shared_images: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    dockerd: Option<String>,
    max_body_bytes: Option<u64>,
    log_format: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    conservative: RawConservative,
    #[serde(default)]
    inject: RawInject,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawInject {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    memory: Option<i64>,
    pids_limit: Option<i64>,
    cpus: Option<f64>,
    #[serde(default)]
    ulimits: Vec<Spanned<String>>,
    log_driver: Option<String>,
    #[serde(default)]
    log_opts: BTreeMap<String, String>,
    runtime: Option<String>,
    #[serde(default)]
    extra_hosts: Vec<String>,
    #[serde(default)]
    dns: Vec<String>,
    #[serde(default)]
    env: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConservative {
    bind_allowlist: Option<Vec<Spanned<String>>>,
    cap_allowlist: Option<Vec<String>>,
    /// Each allow-list replaces the built-in one when given (see `Conservative::default`);
    /// under `[roles.NAME.conservative]`, the `[policy.conservative]` one.
    log_drivers: Option<Vec<String>>,
    volume_drivers: Option<Vec<String>>,
    volume_types: Option<Vec<String>>,
    network_drivers: Option<Vec<String>>,
    sysctls: Option<Vec<String>>,
    runtimes: Option<Vec<String>>,
    security_opts: Option<Vec<String>>,
}

impl RawConservative {
    /// These lists over `base`'s: each list given replaces `base`'s (bind sources are checked
    /// by the caller, which names the key).
    fn over(&self, base: &Conservative, bind_allowlist: Vec<PathBuf>) -> Conservative {
        let list = |own: &Option<Vec<String>>, base: &Vec<String>| {
            own.clone().unwrap_or_else(|| base.clone())
        };
        Conservative {
            bind_allowlist,
            cap_allowlist: list(&self.cap_allowlist, &base.cap_allowlist),
            allow_host_network: base.allow_host_network,
            log_drivers: list(&self.log_drivers, &base.log_drivers),
            volume_drivers: list(&self.volume_drivers, &base.volume_drivers),
            volume_types: list(&self.volume_types, &base.volume_types),
            network_drivers: list(&self.network_drivers, &base.network_drivers),
            sysctls: list(&self.sysctls, &base.sysctls),
            runtimes: list(&self.runtimes, &base.runtimes),
            security_opts: list(&self.security_opts, &base.security_opts),
            operator_binds: base.operator_binds.clone(),
            job_sockets: base.job_sockets.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    policies: Vec<Spanned<String>>,
    /// `--network host` is allowed under the conservative policy.
    #[serde(default)]
    allow_host_network: bool,
    /// BuildKit builds are allowed (their Dockerfile travels in the session, unread).
    #[serde(default = "yes")]
    buildkit: bool,
    /// This role's own conservative allow-lists, each replacing `[policy.conservative]`'s.
    #[serde(default)]
    conservative: RawConservative,
    /// Every container this role creates is a CI job, whose socket has this role.
    job_socket: Option<Spanned<String>>,
    /// For a job role: the most containers, and the most memory, one job may have.
    max_containers: Option<Spanned<usize>>,
    max_memory: Option<Spanned<i64>>,
    /// For a job role: the memory (bytes) a job's container gets when it asks for none.
    default_memory: Option<Spanned<i64>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    role: Spanned<String>,
    #[serde(default)]
    cert_fingerprints: Vec<String>,
    #[serde(default)]
    token_sha256: Vec<Spanned<String>>,
    #[serde(default)]
    uids: Vec<u32>,
    tenant: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    anonymous_role: Option<Spanned<String>>,
    socket: Option<Spanned<String>>,
    socket_mode: Option<Spanned<String>>,
    socket_group: Option<Spanned<String>>,
    nginx: Option<Spanned<String>>,
}

/// Where the sidecar listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(std::net::SocketAddr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A role: the endpoint kinds it may use and the body policies applied to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub kinds: Vec<Kind>,
    pub conservative: bool,
    /// Creates get the `[policy.inject]` settings.
    pub inject: bool,
    /// Creates are pointed at the package cache (`[package_cache]`).
    pub package_cache: bool,
    /// `--network host` is allowed despite `conservative`.
    pub allow_host_network: bool,
    /// BuildKit builds (`version=2`, `/session`, `/grpc`) are allowed.
    pub buildkit: bool,
    /// The conservative settings that apply to this role: `[policy.conservative]` with the
    /// role's own lists and `allow_host_network`.
    pub settings: Conservative,
    /// The containers this role creates are CI jobs, and their sockets have this role.
    pub job_socket: Option<String>,
    /// A job role's limits: each job's tenant gets them.
    pub max_containers: Option<usize>,
    pub max_memory: Option<i64>,
    /// A job role's memory for containers that ask for none (so `max_memory` can hold).
    pub default_memory: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: String,
    /// SHA-1 fingerprints as nginx's `$ssl_client_fingerprint` prints them (lowercase hex).
    pub cert_fingerprints: Vec<String>,
    /// SHA-256 (lowercase hex) of each accepted token.
    pub token_sha256: Vec<String>,
    /// Unix user ids identified by peer credentials on the sidecar's unix-socket listeners.
    pub uids: Vec<u32>,
    /// The namespace the user works in; `None`: the whole engine.
    pub tenant: Option<String>,
}

/// A tenant: a namespace of containers, networks and volumes on the shared engine.
pub use dockgate_tenant::Tenant;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub anonymous_role: Option<String>,
    /// Set when the sidecar owns this listener's unix socket (peer credentials).
    pub relay: Option<Relay>,
}

/// A unix-socket listener the sidecar owns: it accepts there, reads each caller's
/// credentials, and relays the connection to nginx's internal listener with a PROXY
/// protocol header that carries them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relay {
    /// The socket clients use (`DOCKER_HOST=unix://...`).
    pub socket: PathBuf,
    pub mode: u32,
    /// The socket's group; `None`: the group of the Docker socket.
    pub group: Option<String>,
    /// nginx's internal listener (`listen unix:PATH proxy_protocol;`). Its directory must
    /// be reachable by the sidecar's user only.
    pub nginx: PathBuf,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: Listen,
    pub dockerd: PathBuf,
    pub max_body_bytes: usize,
    pub log_format: LogFormat,

    pub inject: Injection,
    pub roles: BTreeMap<String, Role>,
    pub users: Vec<User>,
    pub listeners: BTreeMap<String, Listener>,
    pub tenants: BTreeMap<String, Tenant>,
    /// The `[registry]` table: pull and push rights of the registry front-end.
    pub registry: Option<dockgate_registry::access::RegistryConfig>,
    pub package_cache: Option<package_cache::Settings>,
    /// The `[jobs]` table (set when a role has `job_socket`).
    pub jobs: Option<JobSettings>,
    /// The roles jobs run with, by [`crate::jobs::role_tag`].
    pub job_roles: BTreeMap<u32, String>,
}

impl Config {
    /// The conservative settings as they apply to `role` (its own lists and openings).
    pub fn conservative_for<'a>(&self, role: &'a Role) -> &'a Conservative {
        &role.settings
    }

    /// The tenant `user` works in, if any: a configured one, or a job's own.
    pub fn tenant_of(&self, user: &str) -> Option<Cow<'_, Tenant>> {
        if let Some(key) = JobKey::from_user(user) {
            return self.job_tenant(&key).map(Cow::Owned);
        }
        let name = self
            .users
            .iter()
            .find(|u| u.name == user)?
            .tenant
            .as_ref()?;
        self.tenants.get(name).map(Cow::Borrowed)
    }

    /// The role of the job `key`, if it is still configured.
    pub fn job_role(&self, key: &JobKey) -> Option<&Role> {
        self.roles.get(self.job_roles.get(&key.role_tag)?)
    }

    /// The namespace of job `key`, with its role's limits.
    pub fn job_tenant(&self, key: &JobKey) -> Option<Tenant> {
        let role = self.job_role(key)?;
        Some(Tenant {
            name: key.tenant(),
            max_containers: role.max_containers,
            max_memory: role.max_memory,
            shared_images: self
                .jobs
                .as_ref()
                .map(|j| j.shared_images.clone())
                .unwrap_or_else(|| vec!["*".into()]),
        })
    }
}

/// Configuration problems, each with its line and key.
#[derive(Debug)]
pub struct ConfigErrors {
    pub file: String,
    pub errors: Vec<String>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {e}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Hashes a token as the config stores it.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Config {
    /// Parses and checks `text` (from `file`, for messages).
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigErrors> {
        let fail = |errors: Vec<String>| ConfigErrors {
            file: file.to_string(),
            errors,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // toml's message already names the line, column and key.
            fail(vec![e.to_string().trim_end().replace('\n', "\n    ")])
        })?;
        let mut errors = Vec::new();
        let line = |span: Range<usize>| text[..span.start.min(text.len())].lines().count().max(1);
        let mut err = |span: Range<usize>, key: &str, msg: String| {
            errors.push(format!("line {}: {key}: {msg}", line(span)));
        };

        let listen = match &raw.server.listen {
            None => Listen::Unix(PathBuf::from("/run/dockgate/sidecar.sock")),
            Some(l) => match l.get_ref().strip_prefix("unix:") {
                Some(path) => Listen::Unix(PathBuf::from(path)),
                None => match l.get_ref().parse() {
                    Ok(addr) => Listen::Tcp(addr),
                    Err(_) => {
                        err(
                            l.span(),
                            "server.listen",
                            format!("{:?} is neither unix:PATH nor IP:PORT", l.get_ref()),
                        );
                        Listen::Tcp(([127, 0, 0, 1], 0).into())
                    }
                },
            },
        };
        let log_format = match raw
            .server
            .log_format
            .as_ref()
            .map(|f| (f.get_ref().as_str(), f.span()))
        {
            None | Some(("text", _)) => LogFormat::Text,
            Some(("json", _)) => LogFormat::Json,
            Some((other, span)) => {
                err(
                    span,
                    "server.log_format",
                    format!("{other:?} is not \"text\" or \"json\""),
                );
                LogFormat::Text
            }
        };

        let mut roles = BTreeMap::new();
        for (name, role) in &raw.roles {
            let mut kinds = Vec::new();
            for k in &role.allow {
                match k.get_ref().as_str() {
                    "all" => kinds.extend(Kind::ALL),
                    s => match Kind::parse(s) {
                        Some(kind) => kinds.push(kind),
                        None => err(
                            k.span(),
                            &format!("roles.{name}.allow"),
                            format!(
                                "unknown kind {s:?} (known: all, {})",
                                Kind::ALL.map(Kind::as_str).join(", ")
                            ),
                        ),
                    },
                }
            }
            let (mut conservative, mut inject, mut package_cache) = (false, false, false);
            for p in &role.policies {
                match p.get_ref().as_str() {
                    "conservative" => conservative = true,
                    "inject" => inject = true,
                    "package-cache" if raw.package_cache.is_none() => err(
                        p.span(),
                        &format!("roles.{name}.policies"),
                        "\"package-cache\" needs a [package_cache] section".into(),
                    ),
                    "package-cache" => package_cache = true,
                    other => err(
                        p.span(),
                        &format!("roles.{name}.policies"),
                        format!(
                            "unknown policy {other:?} (known: conservative, inject, package-cache)"
                        ),
                    ),
                }
            }
            roles.insert(
                name.clone(),
                Role {
                    name: name.clone(),
                    kinds,
                    conservative,
                    inject,
                    package_cache,
                    allow_host_network: role.allow_host_network,
                    buildkit: role.buildkit,
                    settings: Conservative::default(),
                    job_socket: role.job_socket.as_ref().map(|j| j.get_ref().clone()),
                    max_containers: role.max_containers.as_ref().map(|m| *m.get_ref()),
                    max_memory: role.max_memory.as_ref().map(|m| *m.get_ref()),
                    default_memory: role.default_memory.as_ref().map(|m| *m.get_ref()),
                },
            );
        }

        let mut tenants = BTreeMap::new();
        for (name, t) in &raw.tenants {
            if !dockgate_tenant::names::valid_tenant(name.get_ref()) {
                err(
                    name.span(),
                    &format!("tenants.{}", name.get_ref()),
                    "a tenant name is 1 to 32 lowercase letters and digits".into(),
                );
            }
            if crate::jobs::reserved_tenant(name.get_ref()) {
                err(
                    name.span(),
                    &format!("tenants.{}", name.get_ref()),
                    "names of \"job\" and 24 hex digits are CI jobs' own namespaces".into(),
                );
            }
            let shared_images = match &t.shared_images {
                None => vec!["*".to_string()],
                Some(patterns) => patterns
                    .iter()
                    .filter_map(|p| {
                        let text = p.get_ref();
                        let reference = text.strip_suffix('*').unwrap_or(text);
                        let ok = text == "*"
                            || dockgate_tenant::images::Reference::parse(reference).is_some()
                            || (text.ends_with('*') && !reference.contains(char::is_whitespace));
                        if !ok {
                            err(
                                p.span(),
                                &format!("tenants.{}.shared_images", name.get_ref()),
                                format!("{text:?} is not an image reference, a prefix ending in *, or *"),
                            );
                        }
                        ok.then(|| text.clone())
                    })
                    .collect(),
            };
            tenants.insert(
                name.get_ref().clone(),
                Tenant {
                    name: name.get_ref().clone(),
                    max_containers: t.max_containers,
                    max_memory: t.max_memory,
                    shared_images,
                },
            );
        }

        let mut users = Vec::new();
        for (i, u) in raw.users.iter().enumerate() {
            if raw.users[..i].iter().any(|other| other.name == u.name) {
                err(
                    u.role.span(),
                    &format!("users[{i}].name"),
                    format!("a user named {:?} comes earlier", u.name),
                );
            }
            if crate::jobs::reserved_user(&u.name) {
                err(
                    u.role.span(),
                    &format!("users[{i}].name"),
                    format!("{:?}: names starting with \"job-\" are CI jobs'", u.name),
                );
            }
            if !roles.contains_key(u.role.get_ref()) {
                err(
                    u.role.span(),
                    &format!("users[{i}].role"),
                    format!("no role named {:?}", u.role.get_ref()),
                );
            }
            for t in &u.token_sha256 {
                let ok =
                    t.get_ref().len() == 64 && t.get_ref().bytes().all(|b| b.is_ascii_hexdigit());
                if !ok {
                    err(
                        t.span(),
                        &format!("users[{i}].token_sha256"),
                        "must be 64 hex digits: the SHA-256 of the token (`dockgate hash-token`)"
                            .into(),
                    );
                }
            }
            users.push(User {
                name: u.name.clone(),
                role: u.role.get_ref().clone(),
                cert_fingerprints: u
                    .cert_fingerprints
                    .iter()
                    .map(|f| f.replace(':', "").to_ascii_lowercase())
                    .collect(),
                token_sha256: u
                    .token_sha256
                    .iter()
                    .map(|t| t.get_ref().to_ascii_lowercase())
                    .collect(),
                uids: u.uids.clone(),
                tenant: u.tenant.as_ref().map(|t| t.get_ref().clone()),
            });
            if let Some(t) = &u.tenant {
                if !tenants.contains_key(t.get_ref()) {
                    err(
                        t.span(),
                        &format!("users[{i}].tenant"),
                        format!(
                            "no tenant named {:?} (add [tenants.{}])",
                            t.get_ref(),
                            t.get_ref()
                        ),
                    );
                }
            }
        }

        let mut listeners = BTreeMap::new();
        for (name, l) in &raw.listeners {
            if let Some(r) = &l.anonymous_role {
                if !roles.contains_key(r.get_ref()) {
                    err(
                        r.span(),
                        &format!("listeners.{name}.anonymous_role"),
                        format!("no role named {:?}", r.get_ref()),
                    );
                }
            }
            let relay = parse_relay(name, l, &mut err);
            listeners.insert(
                name.clone(),
                Listener {
                    anonymous_role: l.anonymous_role.as_ref().map(|r| r.get_ref().clone()),
                    relay,
                },
            );
        }

        let mut allowlist = |list: &[Spanned<String>], key: &str| {
            let mut paths = Vec::new();
            for p in list {
                if p.get_ref().starts_with('/') && !p.get_ref().split('/').any(|c| c == "..") {
                    paths.push(PathBuf::from(p.get_ref()));
                } else {
                    err(
                        p.span(),
                        key,
                        format!("{:?} must be an absolute path without '..'", p.get_ref()),
                    );
                }
            }
            paths
        };
        // `[policy.conservative]` over the built-in lists, then each role's table over that.
        let global = &raw.policy.conservative;
        let binds = global.bind_allowlist.as_deref().unwrap_or_default();
        let binds = allowlist(binds, "policy.conservative.bind_allowlist");
        let conservative = global.over(&Conservative::default(), binds);
        for (name, role) in roles.iter_mut() {
            let Some(own) = raw.roles.get(name).map(|r| &r.conservative) else {
                continue;
            };
            let binds = match &own.bind_allowlist {
                Some(list) => allowlist(list, &format!("roles.{name}.conservative.bind_allowlist")),
                None => conservative.bind_allowlist.clone(),
            };
            role.settings = Conservative {
                allow_host_network: role.allow_host_network,
                ..own.over(&conservative, binds)
            };
        }

        let raw_inject = &raw.policy.inject;
        let mut ulimits = Vec::new();
        for u in &raw_inject.ulimits {
            // `name=soft:hard` or `name=limit`, as `docker run --ulimit`.
            let parsed = u.get_ref().split_once('=').and_then(|(name, limits)| {
                let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
                Some(Ulimit {
                    name: name.trim().to_string(),
                    soft: soft.trim().parse().ok()?,
                    hard: hard.trim().parse().ok()?,
                })
            });
            match parsed {
                Some(ulimit) if !ulimit.name.is_empty() => ulimits.push(ulimit),
                _ => err(
                    u.span(),
                    "policy.inject.ulimits",
                    format!("{:?} is not name=soft:hard", u.get_ref()),
                ),
            }
        }
        for e in &raw_inject.env {
            if !e.get_ref().contains('=') {
                err(
                    e.span(),
                    "policy.inject.env",
                    format!("{:?} is not KEY=value", e.get_ref()),
                );
            }
        }
        let inject = Injection {
            labels: raw_inject.labels.clone().into_iter().collect(),
            memory: raw_inject.memory,
            pids_limit: raw_inject.pids_limit,
            nano_cpus: raw_inject.cpus.map(|c| (c * 1e9) as i64),
            ulimits,
            log_driver: raw_inject
                .log_driver
                .clone()
                .map(|d| (d, raw_inject.log_opts.clone().into_iter().collect())),
            runtime: raw_inject.runtime.clone(),
            extra_hosts: raw_inject.extra_hosts.clone(),
            dns: raw_inject.dns.clone(),
            env: raw_inject.env.iter().map(|e| e.get_ref().clone()).collect(),
        };

        let user_names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        let registry = raw
            .registry
            .as_ref()
            .map(|r| r.check(&user_names, &mut |span, key, msg| err(span, key, msg)));
        let package_cache = raw
            .package_cache
            .as_ref()
            .map(|pc| package_cache::parse(pc, &mut err));

        let (jobs, job_roles) = parse_jobs(&raw, &listeners, &mut err);

        if !errors.is_empty() {
            return Err(fail(errors));
        }
        // The package cache's CA bundle is bound into creates by the gateway itself.
        if let Some(pc) = &package_cache {
            for role in roles.values_mut() {
                role.settings.operator_binds = vec![pc.policy().bundle];
            }
        }
        // A job container's socket directory is bound by the gateway too (for the role that
        // made the job: it may exec into it, copy into it, remove it).
        if let Some(j) = &jobs {
            for role in roles.values_mut().filter(|r| r.job_socket.is_some()) {
                role.settings.job_sockets = Some(j.dir.clone());
            }
        }
        Ok(Config {
            listen,
            dockerd: PathBuf::from(
                raw.server
                    .dockerd
                    .unwrap_or_else(|| "/var/run/docker.sock".into()),
            ),
            max_body_bytes: raw.server.max_body_bytes.unwrap_or(1 << 20) as usize,
            log_format,
            inject,
            roles,
            users,
            listeners,
            tenants,
            registry,
            package_cache,
            jobs,
            job_roles,
        })
    }
}

/// `job_socket`, `max_containers` and `max_memory` of the roles, and the `[jobs]` table.
fn parse_jobs(
    raw: &RawConfig,
    listeners: &BTreeMap<String, Listener>,
    err: &mut impl FnMut(Range<usize>, &str, String),
) -> (Option<JobSettings>, BTreeMap<u32, String>) {
    let mut job_roles = BTreeMap::new();
    let mut first_job_socket = None;
    for (name, role) in &raw.roles {
        let Some(job) = &role.job_socket else {
            continue;
        };
        let key = format!("roles.{name}.job_socket");
        first_job_socket.get_or_insert((job.span(), key.clone()));
        let target = job.get_ref();
        match raw.roles.get(target) {
            None => err(job.span(), &key, format!("no role named {target:?}")),
            Some(r) if r.job_socket.is_some() => err(
                job.span(),
                &key,
                format!(
                    "role {target:?} has a job_socket of its own: a job's containers are never \
                     jobs (a job may not hand out sockets)"
                ),
            ),
            Some(_) => {
                let tag = crate::jobs::role_tag(target);
                match job_roles.get(&tag) {
                    Some(other) if other != target => err(
                        job.span(),
                        &key,
                        format!("roles {other:?} and {target:?} hash alike: rename one"),
                    ),
                    _ => {
                        job_roles.insert(tag, target.clone());
                    }
                }
            }
        }
    }
    for (name, role) in &raw.roles {
        let is_job_role = job_roles.values().any(|r| r == name);
        let spans = [
            (
                "max_containers",
                role.max_containers.as_ref().map(|m| m.span()),
            ),
            ("max_memory", role.max_memory.as_ref().map(|m| m.span())),
            (
                "default_memory",
                role.default_memory.as_ref().map(|m| m.span()),
            ),
        ];
        for (k, span) in spans {
            if let (Some(span), false) = (span, is_job_role) {
                err(
                    span,
                    &format!("roles.{name}.{k}"),
                    "applies to job roles only (roles another role's job_socket names); \
                     limit users with [tenants.NAME]"
                        .into(),
                );
            }
        }
        for (k, m) in [
            ("max_memory", &role.max_memory),
            ("default_memory", &role.default_memory),
        ] {
            if let Some(m) = m.as_ref().filter(|m| *m.get_ref() <= 0) {
                err(
                    m.span(),
                    &format!("roles.{name}.{k}"),
                    "must be a positive number of bytes".into(),
                );
            }
        }
    }
    let Some(j) = &raw.jobs else {
        if let Some((span, key)) = first_job_socket {
            err(
                span,
                &key,
                "needs a [jobs] table (dir = \"/run/dockgate/jobs\", the jobs' sockets)".into(),
            );
        }
        return (None, job_roles);
    };
    let dir = j.dir.get_ref();
    if !dir.starts_with('/') || dir.split('/').any(|c| c == "..") {
        err(
            j.dir.span(),
            "jobs.dir",
            format!("{dir:?} must be an absolute path without '..'"),
        );
    }
    let listener_name = j
        .listener
        .as_ref()
        .map(|l| l.get_ref().clone())
        .unwrap_or_else(|| "unix".into());
    let listener_span = j
        .listener
        .as_ref()
        .map(|l| l.span())
        .unwrap_or_else(|| j.dir.span());
    let nginx = match listeners.get(&listener_name).map(|l| &l.relay) {
        Some(Some(relay)) => relay.nginx.clone(),
        Some(None) => {
            err(
                listener_span,
                "jobs.listener",
                format!(
                    "listener {listener_name:?} is not relayed by the sidecar (it needs \
                     `socket` and `nginx`): jobs' connections go to its internal listener"
                ),
            );
            std::path::PathBuf::new()
        }
        None => {
            err(
                listener_span,
                "jobs.listener",
                format!("no listener named {listener_name:?}"),
            );
            std::path::PathBuf::new()
        }
    };
    let cleanup = match j.cleanup.as_ref().map(|c| (c.get_ref().as_str(), c.span())) {
        None | Some(("remove", _)) => Cleanup::Remove,
        Some(("stop", _)) => Cleanup::Stop,
        Some((other, span)) => {
            err(
                span,
                "jobs.cleanup",
                format!("{other:?} is not \"remove\" or \"stop\""),
            );
            Cleanup::Remove
        }
    };
    let shared_images = j
        .shared_images
        .as_ref()
        .map(|list| list.iter().map(|p| p.get_ref().clone()).collect())
        .unwrap_or_else(|| vec!["*".to_string()]);
    let settings = JobSettings {
        dir: std::path::PathBuf::from(dir),
        listener: listener_name,
        nginx,
        cleanup,
        shared_images,
    };
    (Some(settings), job_roles)
}

/// The `socket`, `socket_mode`, `socket_group` and `nginx` keys of a listener: all absent
/// (nginx owns the listener), or `socket` and `nginx` both given.
fn parse_relay(
    name: &str,
    l: &RawListener,
    err: &mut impl FnMut(Range<usize>, &str, String),
) -> Option<Relay> {
    let key = |k: &str| format!("listeners.{name}.{k}");
    let (socket, nginx) = match (&l.socket, &l.nginx) {
        (None, None) => {
            for (k, v) in [
                ("socket_mode", &l.socket_mode),
                ("socket_group", &l.socket_group),
            ] {
                if let Some(v) = v {
                    err(
                        v.span(),
                        &key(k),
                        "only applies with `socket` and `nginx`".into(),
                    );
                }
            }
            return None;
        }
        (Some(s), None) => {
            err(
                s.span(),
                &key("socket"),
                "needs `nginx = \"unix:PATH\"`, the internal listener to relay to".into(),
            );
            return None;
        }
        (None, Some(n)) => {
            err(
                n.span(),
                &key("nginx"),
                "needs `socket = \"PATH\"`, the socket clients use".into(),
            );
            return None;
        }
        (Some(s), Some(n)) => (s, n),
    };
    let mut ok = true;
    if !socket.get_ref().starts_with('/') {
        err(
            socket.span(),
            &key("socket"),
            format!("{:?} must be an absolute path", socket.get_ref()),
        );
        ok = false;
    }
    let nginx_path = unix_path(nginx.get_ref());
    if nginx_path.is_none() {
        err(
            nginx.span(),
            &key("nginx"),
            format!("{:?} must be unix:/ABSOLUTE/PATH", nginx.get_ref()),
        );
        ok = false;
    }
    let mode = match &l.socket_mode {
        None => 0o660,
        Some(m) => match u32::from_str_radix(m.get_ref(), 8) {
            Ok(mode) if mode <= 0o777 => mode,
            _ => {
                err(
                    m.span(),
                    &key("socket_mode"),
                    format!("{:?} is not an octal mode such as \"0660\"", m.get_ref()),
                );
                ok = false;
                0
            }
        },
    };
    let relay = Relay {
        socket: PathBuf::from(socket.get_ref()),
        mode,
        group: l.socket_group.as_ref().map(|g| g.get_ref().clone()),
        nginx: nginx_path.unwrap_or_default(),
    };
    ok.then_some(relay)
}

/// The path of `unix:/ABSOLUTE/PATH`.
fn unix_path(s: &str) -> Option<PathBuf> {
    s.strip_prefix("unix:")
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests;
