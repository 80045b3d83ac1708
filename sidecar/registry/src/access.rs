//! Who may pull and push which repositories: rights on repository-name prefixes, read from
//! the `[registry]` table of the sidecar's configuration (pure, no I/O).
//!
//! A prefix is a path of whole name components: `team-a` covers `team-a` and `team-a/...`,
//! never `team-ab`; `*` covers every repository. A tenant that owns a namespace is one
//! prefix. Push implies pull on the same prefix (a push first asks which blobs exist).

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::mirror::{self, Mirrors, RawMirror};
use crate::path::check_name;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    realm: Option<String>,
    stats_socket: Option<String>,
    anonymous: Option<RawRights>,
    #[serde(default)]
    users: BTreeMap<String, Spanned<RawRights>>,
    pull_through: Option<Spanned<String>>,
    #[serde(default)]
    mirrors: BTreeMap<String, Spanned<RawMirror>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRights {
    #[serde(default)]
    pull: Vec<Spanned<String>>,
    #[serde(default)]
    push: Vec<Spanned<String>>,
}

/// A repository-name prefix (whole components), or every repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prefix {
    All,
    Path(String),
}

impl Prefix {
    /// `*`, or a repository name (a trailing `/` is allowed and ignored).
    pub fn parse(s: &str) -> Option<Prefix> {
        if s == "*" {
            return Some(Prefix::All);
        }
        let p = s.strip_suffix('/').unwrap_or(s);
        check_name(p).ok()?;
        Some(Prefix::Path(p.to_string()))
    }

    pub fn covers(&self, name: &str) -> bool {
        match self {
            Prefix::All => true,
            Prefix::Path(p) => {
                name == p
                    || name
                        .strip_prefix(p.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            }
        }
    }
}

/// What a request does to a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Pull,
    Push,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
        }
    }
}

/// Pull and push prefixes of one identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rights {
    pub pull: Vec<Prefix>,
    pub push: Vec<Prefix>,
}

impl Rights {
    pub fn allows(&self, action: Action, name: &str) -> bool {
        let push = self.push.iter().any(|p| p.covers(name));
        match action {
            Action::Push => push,
            Action::Pull => push || self.pull.iter().any(|p| p.covers(name)),
        }
    }
}

/// The `[registry]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryConfig {
    /// The realm of the `WWW-Authenticate: Basic` challenge.
    pub realm: String,
    /// Unix datagram socket where nginx sends one line per cache answer (see stats.rs).
    pub stats_socket: Option<String>,
    /// Rights of callers without credentials (none when absent).
    pub anonymous: Rights,
    /// Rights by user name (users of `[[users]]`, who log in with their token).
    pub users: BTreeMap<String, Rights>,
    /// Other registries served under namespaces of their own.
    pub mirrors: Mirrors,
    /// The front-end (`host:port`, as dockerd reaches it) the Docker API gateway pulls
    /// mirrored registries through.
    pub pull_through: Option<String>,
}

impl RawRegistry {
    /// Checks the table against the configured user names; `err(span, key, message)`
    /// collects problems.
    pub fn check(
        &self,
        user_names: &[&str],
        err: &mut dyn FnMut(Range<usize>, &str, String),
    ) -> RegistryConfig {
        let mut rights = |raw: &RawRights, key: &str| {
            let mut one = |list: &[Spanned<String>], what: &str| {
                let mut out = Vec::new();
                for p in list {
                    match Prefix::parse(p.get_ref()) {
                        Some(prefix) => out.push(prefix),
                        None => err(
                            p.span(),
                            &format!("{key}.{what}"),
                            format!(
                                "{:?} is neither \"*\" nor a repository name prefix (lowercase components like team-a/apps)",
                                p.get_ref()
                            ),
                        ),
                    }
                }
                out
            };
            Rights {
                pull: one(&raw.pull, "pull"),
                push: one(&raw.push, "push"),
            }
        };
        let anonymous = self
            .anonymous
            .as_ref()
            .map(|a| rights(a, "registry.anonymous"))
            .unwrap_or_default();
        let mut users = BTreeMap::new();
        let mut unknown = Vec::new();
        for (name, raw) in &self.users {
            if !user_names.contains(&name.as_str()) {
                // The table's span starts at the start of its line: point inside it.
                let span = raw.span();
                unknown.push((span.start + 1..span.end, name.clone()));
            }
            users.insert(
                name.clone(),
                rights(raw.get_ref(), &format!("registry.users.{name}")),
            );
        }
        for (span, name) in unknown {
            err(
                span,
                &format!("registry.users.{name}"),
                format!("no user named {name:?} in [[users]]"),
            );
        }
        let mirrors = mirror::check(&self.mirrors, err);
        let pull_through = self.pull_through.as_ref().map(|p| {
            let text = p.get_ref().clone();
            if crate::mirror::Origin::parse(&format!("http://{text}")).is_none() {
                err(
                    p.span(),
                    "registry.pull_through",
                    format!("{text:?} is not host:port (the front-end as dockerd reaches it)"),
                );
            }
            if mirrors.0.is_empty() {
                err(
                    p.span(),
                    "registry.pull_through",
                    "there is nothing to pull through: no [registry.mirrors.NAME] table".into(),
                );
            }
            text
        });
        RegistryConfig {
            mirrors,
            pull_through,
            realm: self
                .realm
                .clone()
                .unwrap_or_else(|| "dockgate registry".into()),
            stats_socket: self.stats_socket.clone(),
            anonymous,
            users,
        }
    }
}

#[cfg(test)]
mod tests;
