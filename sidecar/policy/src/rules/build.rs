//! `build`: `RUN` steps of a classic build run in containers the engine creates from the
//! build's query: its network, security options, cgroup and isolation. Every query key
//! dockerd reads for a build is listed; an unknown one is refused by name.

use super::{Conservative, Refusal, Request, Rule};

pub static RULE: Rule = Rule {
    name: "build",
    doc: "Refuses builds with --network host (or another container's network), --security-opt or a non-default isolation, and query keys the model does not know.",
    check,
};

/// Every key dockerd 20.10 to 28 reads from a `/build` query (`build_routes.go`), other than
/// the ones with a rule of their own (`cgroupparent`, `remote`, `labels`).
const KEYS: &[&str] = &[
    "t",
    "dockerfile",
    "q",
    "nocache",
    "rm",
    "forcerm",
    "pull",
    "memory",
    "memswap",
    "cpushares",
    "cpusetcpus",
    "cpusetmems",
    "cpuperiod",
    "cpuquota",
    "cgroupparent",
    "networkmode",
    "extrahosts",
    "securityopt",
    "squash",
    "target",
    "remote",
    "session",
    "buildid",
    "platform",
    "outputs",
    "shmsize",
    "isolation",
    "ulimits",
    "buildargs",
    "labels",
    "cachefrom",
    "version",
];

/// Network modes that keep `RUN` steps in a network namespace of their own.
const NETWORKS: &[&str] = &["", "default", "bridge", "none"];

fn check(req: &Request<'_>, _: &Conservative) -> Result<(), Refusal> {
    if req.template() != "/build" {
        return Ok(());
    }
    if let Some((key, _)) = req
        .uri
        .query
        .iter()
        .find(|(k, _)| !KEYS.contains(&k.as_str()))
    {
        return Err(RULE.refuse(format!(
            "build option {key:?} is not known to the conservative policy"
        )));
    }
    let mode = req.query_value("networkmode").unwrap_or("");
    if !NETWORKS.contains(&mode) {
        return Err(RULE.refuse(format!("build --network {mode} is not allowed")));
    }
    if let Some(opt) = req.query_values("securityopt").find(|o| !o.is_empty()) {
        return Err(RULE.refuse(format!("build --security-opt {opt} is not allowed")));
    }
    let isolation = req.query_value("isolation").unwrap_or("");
    if !matches!(isolation, "" | "default") {
        return Err(RULE.refuse(format!("build --isolation {isolation} is not allowed")));
    }
    Ok(())
}
