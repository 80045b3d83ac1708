//! `namespaces`: sharing the host's (or another container's) network, PID, IPC, UTS, user or
//! cgroup namespace removes the isolation the container exists for. Each mode is an
//! allow-list of the values that keep the container's own namespace. One exception: the
//! network of a container the role could have made itself (`--network container:REF`, how
//! a test talks to its service on loopback); the `reach` check looks the container up.

use super::{Conservative, Refusal, Request, Rule};
use crate::gojson::Value;

pub static RULE: Rule = Rule {
    name: "namespaces",
    doc: "Allows only the container's own network (default, bridge, none or a named network, or the network of a container in the role's reach), pid, ipc, uts, userns, cgroupns and cgroup; host and other container: modes are refused.",
    check,
};

fn check(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    let Some(host) = req.create_host_config() else {
        return Ok(());
    };
    for (field, flag, allowed) in [
        ("NetworkMode", "--network", &[][..]),
        ("PidMode", "--pid", &[""][..]),
        (
            "IpcMode",
            "--ipc",
            &["", "none", "private", "shareable"][..],
        ),
        ("UTSMode", "--uts", &[""][..]),
        ("UsernsMode", "--userns", &[""][..]),
        ("CgroupnsMode", "--cgroupns", &["", "private"][..]),
        ("Cgroup", "--cgroup", &[""][..]),
    ] {
        let Some(mode) = host.field(field).and_then(Value::as_str) else {
            continue;
        };
        if mode.eq_ignore_ascii_case("host")
            && !(field == "NetworkMode" && settings.allow_host_network)
        {
            return Err(RULE.refuse(format!("{flag} host is not allowed")));
        }
        let shares = mode
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("container:"));
        // dockerd reads `container:` exactly, for the network too; the reach check then looks
        // the container up (any other spelling is a network name that does not exist).
        if shares && !(field == "NetworkMode" && mode.starts_with("container:")) {
            return Err(RULE.refuse(format!(
                "{flag} container:... (sharing another container's namespace) is not allowed"
            )));
        }
        // A network mode is a network's name otherwise; the others are closed sets.
        if field != "NetworkMode" && !allowed.contains(&mode) {
            return Err(RULE.refuse(format!("{flag} {mode} is not allowed")));
        }
    }
    Ok(())
}
