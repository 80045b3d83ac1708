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
mod namespaces;
mod privileged;
mod remote_fetch;
mod security_opts;

/// A request as the rules see it: which endpoint (its template in `dockgate-api`'s table),
/// the decoded query, and the parsed, validated body (`Null` when there is none).
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub template: &'a str,
    pub query: &'a [(String, String)],
    pub body: &'a Value,
}

impl Request<'_> {
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `HostConfig` of a container create; `None` for any other request.
    fn create_host_config(&self) -> Option<&Value> {
        (self.template == "/containers/create")
            .then(|| self.body.field("HostConfig"))
            .flatten()
    }

    /// The object holding host settings: `HostConfig` for creates, the body itself for
    /// `containers/{id}/update` (whose body is the resources and restart policy).
    fn host_config(&self) -> Option<&Value> {
        match self.template {
            "/containers/create" => self.body.field("HostConfig"),
            "/containers/{id}/update" => Some(self.body),
            _ => None,
        }
    }
}

/// Settings of the `conservative` policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conservative {
    /// Host paths (and everything under them) that bind mounts may use.
    pub bind_allowlist: Vec<PathBuf>,
    /// Capabilities `--cap-add` may add (`NET_ADMIN`, with or without `CAP_`).
    pub cap_allowlist: Vec<String>,
    /// `--network host` is allowed (per role: `allow_host_network`); other host namespaces
    /// stay refused.
    pub allow_host_network: bool,
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
    &binds::VOLUME_RULE,
    &cgroup_parent::RULE,
    &build::RULE,
    &remote_fetch::RULE,
];

/// Runs every rule; the first refusal wins.
pub fn conservative(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    RULES
        .iter()
        .try_for_each(|rule| (rule.check)(req, settings))
}

/// A host path made absolute and free of `.`; `None` if relative or if it climbs with `..`
/// (which the kernel resolves against symlinks, so no lexical answer is safe).
fn normalize_host_path(path: &str) -> Option<PathBuf> {
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

/// The strings of an array field (non-strings are ignored: dockerd refuses them).
fn strings(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.map(Value::items)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
}

/// Whether an optional array field holds at least one item.
fn non_empty(v: Option<&Value>) -> bool {
    v.is_some_and(|v| !v.items().is_empty())
}

#[cfg(test)]
mod tests;
