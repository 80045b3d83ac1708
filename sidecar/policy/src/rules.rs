//! The rules of the built-in `conservative` policy: each refuses one way out of the container
//! onto the host, and lives in its own file with its name, its doc and its `check`.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::gojson::Value;

mod binds;
mod build;
mod capabilities;
mod cgroup_parent;
mod devices;
mod labels;
mod log_driver;
mod namespaces;
mod network_drivers;
mod oom_score;
mod privileged;
mod remote_fetch;
mod runtime;
mod security_opts;
mod sysctls;
mod ulimits;
mod volume_options;

use dockgate_api::endpoints::Endpoint;
use dockgate_api::uri::CanonicalUri;

use crate::model;

/// A request as the rules see it: its endpoint (a row of `dockgate-api`'s table), the
/// canonical URI (version, query with repeated keys in order), and the parsed, validated
/// body (`Null` when there is none, or when deciding from the head alone).
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub endpoint: &'a Endpoint,
    pub uri: &'a CanonicalUri,
    pub body: &'a Value,
}

impl Request<'_> {
    pub fn template(&self) -> &'static str {
        self.endpoint.template
    }

    /// The value dockerd's `r.FormValue(key)` reads: the first.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.uri.query_value(key)
    }

    /// Every value, as dockerd's `r.Form[key]` reads them.
    pub fn query_values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.uri.query_values(key)
    }

    /// `HostConfig` of a container create; `None` for any other request.
    fn create_host_config(&self) -> Option<&Value> {
        (self.template() == "/containers/create")
            .then(|| self.body.field("HostConfig"))
            .flatten()
    }

    /// The object holding host settings: `HostConfig` for creates, the body itself for
    /// `containers/{id}/update` (whose body is the resources and restart policy).
    fn host_config(&self) -> Option<&Value> {
        match self.template() {
            "/containers/create" => self.body.field("HostConfig"),
            "/containers/{id}/update" => Some(self.body),
            _ => None,
        }
    }
}

/// Settings of the `conservative` policy: what an operator may open, each an allow-list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conservative {
    /// Host paths (and everything under them) that bind mounts may use.
    pub bind_allowlist: Vec<PathBuf>,
    /// Capabilities `--cap-add` may add (`NET_ADMIN`, with or without `CAP_`).
    pub cap_allowlist: Vec<String>,
    /// `--network host` is allowed (per role: `allow_host_network`); other host namespaces
    /// stay refused.
    pub allow_host_network: bool,
    /// Log drivers containers may use (`--log-driver`); the empty type is the engine's
    /// default.
    pub log_drivers: Vec<String>,
    /// Volume drivers (`docker volume create -d`, `--volume-driver`, `--mount
    /// volume-driver=`).
    pub volume_drivers: Vec<String>,
    /// Filesystem types a `local` volume may mount (`-o type=`); `tmpfs` by default.
    pub volume_types: Vec<String>,
    /// Network drivers (`docker network create -d`).
    pub network_drivers: Vec<String>,
    /// Namespaced sysctls containers may set (`--sysctl`).
    pub sysctls: Vec<String>,
    /// OCI runtimes (`--runtime`).
    pub runtimes: Vec<String>,
    /// Security options allowed beyond `no-new-privileges` (`--security-opt`), exactly as
    /// written (`apparmor=my-profile`).
    pub security_opts: Vec<String>,
    /// Host files the gateway itself binds read-only into creates (the package cache's CA
    /// bundle): not the clients' to bind, but no reason to put a container out of reach.
    pub operator_binds: Vec<String>,
    /// For a role whose containers are CI jobs: the directory of the jobs' sockets. A job
    /// container's read-only bind of its socket's directory (`DIR/KEY` at
    /// [`JOB_SOCKET_DIR`]) is the gateway's, like `operator_binds`.
    pub job_sockets: Option<PathBuf>,
}

/// Where a CI job container has its socket's directory.
pub const JOB_SOCKET_DIR: &str = "/run/dockgate";

impl Default for Conservative {
    /// What an operator gets without configuring anything.
    fn default() -> Conservative {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        Conservative {
            bind_allowlist: Vec::new(),
            cap_allowlist: Vec::new(),
            allow_host_network: false,
            log_drivers: list(&["json-file", "local", "journald", "none"]),
            volume_drivers: list(&["local"]),
            volume_types: list(&["tmpfs"]),
            network_drivers: list(&["bridge"]),
            // Kubernetes' "safe" set: namespaced, and without effect outside the container.
            sysctls: list(&[
                "kernel.shm_rmid_forced",
                "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range",
                "net.ipv4.tcp_keepalive_time",
                "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes",
            ]),
            runtimes: list(&["runc"]),
            security_opts: Vec::new(),
            operator_binds: Vec::new(),
            job_sockets: None,
        }
    }
}

/// A refused request: the rule that refused it and what to tell the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub rule: &'static str,
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (rule {})", self.message, self.rule)
    }
}

/// One rule: a name for logs and config, a doc line for users, and its check.
pub struct Rule {
    pub name: &'static str,
    pub doc: &'static str,
    pub check: fn(&Request<'_>, &Conservative) -> Result<(), Refusal>,
}

impl Rule {
    fn refuse(&self, message: impl Into<String>) -> Refusal {
        Refusal {
            rule: self.name,
            message: message.into(),
        }
    }
}

/// Every rule of `conservative`, in the order they run.
pub static RULES: &[&Rule] = &[
    &privileged::RULE,
    &capabilities::RULE,
    &devices::RULE,
    &namespaces::RULE,
    &security_opts::RULE,
    &binds::RULE,
    &volume_options::RULE,
    &cgroup_parent::RULE,
    &log_driver::RULE,
    &sysctls::RULE,
    &oom_score::RULE,
    &ulimits::RULE,
    &runtime::RULE,
    &network_drivers::RULE,
    &labels::RULE,
    &build::RULE,
    &remote_fetch::RULE,
];

/// Rules the sidecar applies with the engine's help (they need to look objects up): named
/// here so that the model's tables can point at them.
pub static ENGINE_RULES: &[(&str, &str)] = &[(
    "references",
    "Containers named in --volumes-from, --link and container: modes, and networks named by ID, \
     must have been created under the same policy (the sidecar looks them up).",
)];

/// Runs the model (every body member known, or refused by name), then every rule; the first
/// refusal wins.
pub fn conservative(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    model_of(req)?;
    RULES
        .iter()
        .try_for_each(|rule| (rule.check)(req, settings))
}

/// The body as the model allows it: members the tables know, zero values where the tables
/// say so.
fn model_of(req: &Request<'_>) -> Result<(), Refusal> {
    match model::body_struct(req.endpoint.body) {
        model::Model::Struct(s) => model::walk(s, req.body, ""),
        model::Model::NoSettings => Ok(()),
        model::Model::Unmodelled => Err(Refusal {
            rule: "allowlist",
            message: format!(
                "the conservative policy has no model of {} {} bodies, so it allows none",
                req.endpoint.method, req.endpoint.template
            ),
        }),
    }
}

/// A host path made absolute and free of `.`; `None` if relative or if it climbs with `..`
/// (which the kernel resolves against symlinks, so no lexical answer is safe).
pub fn normalize_host_path(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The strings of a list field. A bare string counts as a list of one, as Go's `StrSlice`
/// (`CapAdd`, `Cmd`, ...) decodes it; non-strings are ignored (dockerd refuses them).
fn strings(v: Option<&Value>) -> impl Iterator<Item = &str> {
    let (one, many) = match v {
        Some(Value::String(s)) => (Some(s.as_str()), &[][..]),
        Some(v) => (None, v.items()),
        None => (None, &[][..]),
    };
    one.into_iter().chain(many.iter().filter_map(Value::as_str))
}

/// Whether `value` is one of `allowed`.
fn listed(allowed: &[String], value: &str) -> bool {
    allowed.iter().any(|a| a == value)
}

/// Whether an optional array field holds at least one item.
fn non_empty(v: Option<&Value>) -> bool {
    v.is_some_and(|v| !v.items().is_empty())
}

#[cfg(test)]
mod tests;
