//! What a conservative role may reach through an existing object: a container it enters,
//! changes or reads files of (exec, attach, cp, start, kill, rm, ...), one it borrows from
//! (`--volumes-from`, `--link`), a volume it mounts or a network it joins. The rule is the one
//! for creating: the object, as dockerd reports it (`inspect`), must be one the role could
//! have created itself. So an admin's container with the Docker socket mounted, a volume made
//! with bind options or a macvlan network are out of reach, while everyone's ordinary
//! containers stay usable. Pure: the sidecar does the lookups.

use dockgate_api::endpoints::{self, Method};
use dockgate_api::uri::CanonicalUri;
use serde_json::Value as Json;

use crate::gojson::Value;
use crate::rules::{conservative, Conservative, Refusal, Request};

/// dockerd's default masked and read-only paths (20.10): a container must keep at least
/// these (a shorter list leaves /proc or /sys writable).
const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
const READ_ONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Host settings of an inspected container that the create rules judge, copied as they are.
/// (`CgroupnsMode` is left out: on cgroup v1 hosts dockerd makes `host` the default.)
const HOST_FIELDS: &[&str] = &[
    "Privileged",
    "CapAdd",
    "Capabilities",
    "Devices",
    "DeviceCgroupRules",
    "DeviceRequests",
    "NetworkMode",
    "PidMode",
    "IpcMode",
    "UTSMode",
    "UsernsMode",
    "Cgroup",
    "SecurityOpt",
    "CgroupParent",
    "Sysctls",
    "OomScoreAdj",
    "Runtime",
    "LogConfig",
    "VolumeDriver",
];

/// Whether a mount is a CI job's socket directory, which the gateway mounted.
fn job_socket_mount(settings: &Conservative, source: &str, destination: &str) -> bool {
    let Some(dir) = &settings.job_sockets else {
        return false;
    };
    let source = std::path::Path::new(source);
    let key = source.file_name().and_then(|k| k.to_str()).unwrap_or("");
    destination == crate::rules::JOB_SOCKET_DIR
        && source.parent() == Some(dir.as_path())
        && key.len() == 24
        && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Why a container is out of a role's reach, or `Ok` with the volumes and networks it uses
/// (which the caller looks up and checks with [`volume`] and [`network`]). A read-only bind
/// of one of `settings.operator_binds` (the package cache's CA bundle, which the gateway
/// itself binds into creates) is the operator's, not the creator's.
pub fn container(inspect: &Json, settings: &Conservative) -> Result<Uses, Refusal> {
    let name = inspect
        .get("Name")
        .and_then(Json::as_str)
        .unwrap_or("?")
        .trim_start_matches('/');
    let out_of_reach = |why: String| Refusal {
        rule: "references",
        message: format!(
            "container {name} was not created under this role's policy ({why}): a conservative \
             role cannot enter, change or borrow from it"
        ),
    };
    let host = inspect.get("HostConfig").cloned().unwrap_or(Json::Null);
    let mut projected = serde_json::Map::new();
    for field in HOST_FIELDS {
        if let Some(v) = host.get(*field).filter(|v| !v.is_null()) {
            projected.insert(field.to_string(), v.clone());
        }
    }
    // The mounts it really has (binds, and what --volumes-from brought), as a create says them.
    let mut uses = Uses::default();
    let mut mounts = Vec::new();
    for m in inspect
        .get("Mounts")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let text = |k: &str| m.get(k).and_then(Json::as_str).unwrap_or("").to_string();
        let read_only = m.get("RW").and_then(Json::as_bool) == Some(false);
        if read_only && settings.operator_binds.contains(&text("Source")) {
            continue;
        }
        if read_only && job_socket_mount(settings, &text("Source"), &text("Destination")) {
            continue;
        }
        match text("Type").as_str() {
            "bind" => mounts.push(serde_json::json!({
                "Type": "bind",
                "Source": text("Source"),
                "Target": text("Destination"),
                "BindOptions": {"Propagation": text("Propagation")},
            })),
            "volume" => uses.volumes.push(text("Name")),
            "tmpfs" => {}
            other => return Err(out_of_reach(format!("a mount of type {other:?}"))),
        }
    }
    projected.insert("Mounts".into(), Json::Array(mounts));
    let network_mode = host.get("NetworkMode").and_then(Json::as_str).unwrap_or("");
    if let Some(joined) = network_mode.strip_prefix("container:") {
        uses.containers.push(joined.to_string());
    }
    for (field, defaults) in [("MaskedPaths", MASKED), ("ReadonlyPaths", READ_ONLY)] {
        let list: Vec<&str> = host
            .get(field)
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .collect();
        if let Some(missing) = defaults.iter().find(|d| !list.contains(d)) {
            return Err(out_of_reach(format!("{field} lacks {missing}")));
        }
    }
    if let Some(networks) = inspect
        .pointer("/NetworkSettings/Networks")
        .and_then(Json::as_object)
    {
        for (name, settings) in networks {
            if !matches!(name.as_str(), "bridge" | "host" | "none") {
                let id = settings.get("NetworkID").and_then(Json::as_str);
                uses.networks.push(id.unwrap_or(name).to_string());
            }
        }
    }
    let body = from_json(&serde_json::json!({ "HostConfig": projected }));
    judge_as_create(&body, settings).map_err(|r| out_of_reach(r.message))?;
    Ok(uses)
}

/// The volumes and networks (not the built-in ones) a container uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Uses {
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
    /// The container whose network it joined (`--network container:REF`): in reach too, or
    /// joining this one would join that one's.
    pub containers: Vec<String>,
}

/// Why a volume is out of reach: its driver and options, as a volume create says them.
pub fn volume(inspect: &Json, settings: &Conservative) -> Result<(), Refusal> {
    let name = inspect.get("Name").and_then(Json::as_str).unwrap_or("?");
    let body = serde_json::json!({
        "Driver": inspect.get("Driver").cloned().unwrap_or(Json::Null),
        "DriverOpts": inspect.get("Options").cloned().unwrap_or(Json::Null),
    });
    judge(Method::Post, "/volumes/create", &from_json(&body), settings).map_err(|r| Refusal {
        rule: "references",
        message: format!(
            "volume {name} was not created under this role's policy ({}): a conservative role \
             cannot mount or remove it",
            r.message
        ),
    })
}

/// Why a network is out of reach: its driver, scope, IPAM driver and options.
pub fn network(inspect: &Json, settings: &Conservative) -> Result<(), Refusal> {
    let name = inspect.get("Name").and_then(Json::as_str).unwrap_or("?");
    if matches!(name, "bridge" | "none") {
        return Ok(());
    }
    let body = serde_json::json!({
        "Driver": inspect.get("Driver").cloned().unwrap_or(Json::Null),
        "Scope": inspect.get("Scope").cloned().unwrap_or(Json::Null),
        "IPAM": {"Driver": inspect.pointer("/IPAM/Driver").cloned().unwrap_or(Json::Null)},
        "Options": inspect.get("Options").cloned().unwrap_or(Json::Null),
    });
    let host = name == "host" && !settings.allow_host_network;
    let judged = if host {
        Err(Refusal {
            rule: "namespaces",
            message: "--network host is not allowed".into(),
        })
    } else {
        judge(
            Method::Post,
            "/networks/create",
            &from_json(&body),
            settings,
        )
    };
    judged.map_err(|r| Refusal {
        rule: "references",
        message: format!(
            "network {name} was not created under this role's policy ({}): a conservative role \
             cannot join or remove it",
            r.message
        ),
    })
}

/// Whether an exec (its inspect answer) runs privileged: starting it would run that.
pub fn exec(inspect: &Json) -> Result<(), Refusal> {
    let privileged = inspect
        .pointer("/ProcessConfig/privileged")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    if privileged {
        return Err(Refusal {
            rule: "references",
            message: "this exec was created privileged: a conservative role cannot start it".into(),
        });
    }
    Ok(())
}

fn judge_as_create(body: &Value, settings: &Conservative) -> Result<(), Refusal> {
    judge(Method::Post, "/containers/create", body, settings)
}

fn judge(
    method: Method,
    template: &str,
    body: &Value,
    settings: &Conservative,
) -> Result<(), Refusal> {
    let endpoint = endpoints::ENDPOINTS
        .iter()
        .find(|e| e.method == method && e.template == template)
        .expect("the endpoint table has the create endpoints");
    let uri = CanonicalUri {
        version: None,
        segments: Vec::new(),
        query: Vec::new(),
    };
    conservative(
        &Request {
            endpoint,
            uri: &uri,
            body,
        },
        settings,
    )
}

/// dockerd's answer as the rules' JSON.
fn from_json(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Number(n.clone()),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        Json::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests;
