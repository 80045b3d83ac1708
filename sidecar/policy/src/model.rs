//! The request bodies dockerd decodes, as allow-lists: for each body an endpoint carries
//! ([`dockgate_api::endpoints::Body`]), every field dockerd reads, and what the
//! `conservative` policy makes of it.
//!
//! A field is [`Field::Safe`] (harmless whatever its value), checked by a named rule
//! ([`Field::Rule`]: the rule reads it, in `rules/`), allowed only at its zero value
//! ([`Field::Zero`]: `false`, `0`, `""`, `[]`, `{}`, absent or `null`, which is what clients
//! send when the option is not used), or a nested struct walked the same way. A member that names
//! no field is refused by name: dockerd would ignore it today, but a newer engine, or the
//! deprecated top-level host fields of a create, would read it. The tables follow moby's
//! types (`api/types/container`, `mount`, `network`, `volume`) up to API v1.50; Go's
//! case-insensitive field matching is [`crate::gojson::go_field_matches`].

use dockgate_api::endpoints::Body;

use crate::gojson::{go_field_matches, Value};
use crate::rules::Refusal;

mod fields;

pub use fields::{HOST_CONFIG, RESOURCES};

/// What the policy makes of one field.
#[derive(Clone, Copy, Debug)]
pub enum Field {
    /// Harmless whatever its value (dockerd checks its type).
    Safe,
    /// Read and checked by the rule of this name (see `rules::RULES`).
    Rule(&'static str),
    /// Allowed only at its zero value; the text says what the field does.
    Zero(&'static str),
    /// A struct: its own fields, walked the same way.
    Struct(&'static Struct),
    /// A list of structs.
    List(&'static Struct),
    /// A map (keys are the user's) whose values are structs.
    Map(&'static Struct),
}

/// The fields of one Go struct, by their JSON names.
#[derive(Debug)]
pub struct Struct {
    /// The Go type, for messages (`HostConfig`).
    pub name: &'static str,
    pub fields: &'static [(&'static str, Field)],
}

impl Struct {
    /// The field Go decodes member `key` into.
    pub fn field(&self, key: &str) -> Option<(&'static str, &'static Field)> {
        self.fields
            .iter()
            .find(|(name, _)| go_field_matches(key, name))
            .map(|(name, f)| (*name, f))
    }
}

/// What the model knows of a body.
#[derive(Clone, Copy, Debug)]
pub enum Model {
    /// dockerd decodes it into this struct.
    Struct(&'static Struct),
    /// dockerd reads no settings from it (nothing, or a tar stream).
    NoSettings,
    /// There is no model (swarm, plugins): a conservative role cannot send it.
    Unmodelled,
}

/// The model of a body of this kind.
pub fn body_struct(body: Body) -> Model {
    use fields::*;
    Model::Struct(match body {
        Body::ContainerCreate => &CREATE,
        Body::ContainerUpdate => &UPDATE,
        Body::ExecCreate => &EXEC_CREATE,
        Body::ExecStart => &EXEC_START,
        Body::Commit => &CONFIG,
        Body::VolumeCreate => &VOLUME_CREATE,
        Body::NetworkCreate => &NETWORK_CREATE,
        Body::NetworkConnect => &NETWORK_CONNECT,
        Body::NetworkDisconnect => &NETWORK_DISCONNECT,
        Body::RegistryAuth => &AUTH_CONFIG,
        Body::None | Body::Archive | Body::BuildContext | Body::ContainerStart => {
            return Model::NoSettings
        }
        Body::Unmodelled => return Model::Unmodelled,
    })
}

/// Walks `value` against `s`: unknown members, and members the table allows only at their
/// zero value or absent, are refused by path. Fields marked [`Field::Rule`] are left to their
/// rule. Linear in the size of the body.
pub fn walk(s: &'static Struct, value: &Value, path: &str) -> Result<(), Refusal> {
    let Value::Object(members) = value else {
        // `null` is an absent struct; any other type is dockerd's decoding error to report.
        return Ok(());
    };
    // dockerd reads the top level of a create as a host config too, unless `HostConfig` is
    // an object: then it takes only a few resource fields from there (`getHostConfig`).
    let inner_host = s.name == "ContainerConfigWrapper"
        && matches!(value.field("HostConfig"), Some(Value::Object(_)));
    for (key, v) in members {
        // `null` sets nothing in Go, whatever the field (or none).
        if matches!(v, Value::Null) {
            continue;
        }
        let Some((name, field)) = s.field(key) else {
            if inner_host && ignored_beside_host_config(key, v) {
                continue;
            }
            return Err(unknown(s, key, path));
        };
        let here = || format!("{path}{name}");
        match field {
            Field::Safe | Field::Rule(_) => {}
            Field::Zero(what) if !is_zero(v) => {
                return Err(Refusal {
                    rule: "allowlist",
                    message: format!("{} ({what}) is not allowed", here()),
                })
            }
            Field::Zero(_) => {}
            Field::Struct(inner) => walk(inner, v, &format!("{}.", here()))?,
            Field::List(inner) => {
                for item in v.items() {
                    walk(inner, item, &format!("{}[].", here()))?;
                }
            }
            Field::Map(inner) => {
                for (k, item) in v.members() {
                    walk(inner, item, &format!("{}[{k:?}].", here()))?;
                }
            }
        }
    }
    Ok(())
}

/// A create body as dockerd reads it: without a `HostConfig` object, the top level's host
/// fields are the host config (`ContainerConfigWrapper` embeds a deprecated `HostConfig`), so
/// they are moved into one, which dockerd reads the same way and the rules then judge
/// (docker-py still sends `Runtime` there). With a `HostConfig` object, dockerd ignores them
/// but for a few resource fields ([`walk`] holds those to zero).
pub fn hoist_host_config(body: &mut Value) {
    let Value::Object(members) = body else {
        return;
    };
    let inner = members
        .iter()
        .rev()
        .find(|(k, _)| go_field_matches(k, "HostConfig"))
        .map(|(_, v)| v);
    if matches!(inner, Some(Value::Object(_))) {
        return;
    }
    let (host, rest): (Vec<_>, Vec<_>) = std::mem::take(members)
        .into_iter()
        .partition(|(k, _)| HOST_CONFIG.field(k).is_some());
    *members = rest
        .into_iter()
        .filter(|(k, _)| !go_field_matches(k, "HostConfig"))
        .collect();
    if !host.is_empty() {
        members.push(("HostConfig".into(), Value::Object(host)));
    }
}

/// A top-level host field dockerd ignores because `HostConfig` is there: all but the ones it
/// copies into an unset `HostConfig` field (`Memory`, `MemorySwap`, `CpuShares`,
/// `CpusetCpus`, `VolumeDriver`, `Cpuset`), which must be left at zero.
fn ignored_beside_host_config(key: &str, v: &Value) -> bool {
    const MERGED: &[&str] = &[
        "Memory",
        "MemorySwap",
        "CpuShares",
        "CpusetCpus",
        "VolumeDriver",
        "Cpuset",
    ];
    if MERGED.iter().any(|m| go_field_matches(key, m)) {
        return is_zero(v);
    }
    HOST_CONFIG.field(key).is_some()
}

fn unknown(s: &Struct, key: &str, path: &str) -> Refusal {
    // The create body's top level is also read as a (deprecated) HostConfig.
    let deprecated = s.name == "ContainerConfigWrapper"
        && (HOST_CONFIG.field(key).is_some() || go_field_matches(key, "Cpuset"));
    let message = if deprecated {
        format!(
            "the host setting {key:?} at the top level of a create body is not accepted \
             (dockerd reads it as a deprecated host config): put it in HostConfig"
        )
    } else {
        format!(
            "unknown field {path}{key} in a {} body: the conservative policy allows only the \
             fields it knows",
            s.name
        )
    };
    Refusal {
        rule: "allowlist",
        message,
    }
}

/// Go's zero value: what a client sends for an option it does not use.
pub fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(members) => members.iter().all(|(_, v)| is_zero(v)),
    }
}

/// Every field a rule must read, with the path of its struct: the rules' tests check each is
/// read by a rule of that name.
pub fn rule_fields() -> Vec<(&'static str, &'static str, &'static str)> {
    fn collect(s: &'static Struct, out: &mut Vec<(&'static str, &'static str, &'static str)>) {
        for (name, f) in s.fields {
            match f {
                Field::Rule(rule) => out.push((s.name, name, rule)),
                Field::Struct(inner) | Field::List(inner) | Field::Map(inner) => {
                    collect(inner, out)
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for s in fields::ALL {
        collect(s, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
