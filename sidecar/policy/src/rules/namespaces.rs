//! `namespaces`: sharing the host's (or another container's) network, PID, IPC, UTS, user or
//! cgroup namespace removes the isolation the container exists for.

use super::{Conservative, Refusal, Request, Rule};

pub static RULE: Rule = Rule {
    name: "namespaces",
    doc: "Refuses host or container: network, pid, ipc, uts, userns and cgroupns modes.",
    check,
};

fn check(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    let Some(host) = req.create_host_config() else {
        return Ok(());
    };
    for (field, flag) in [
        ("NetworkMode", "--network"),
        ("PidMode", "--pid"),
        ("IpcMode", "--ipc"),
        ("UTSMode", "--uts"),
        ("UsernsMode", "--userns"),
        ("CgroupnsMode", "--cgroupns"),
    ] {
        let Some(mode) = host.field(field).and_then(|v| v.as_str()) else {
            continue;
        };
        let mode = mode.trim();
        if mode.eq_ignore_ascii_case("host")
            && !(field == "NetworkMode" && settings.allow_host_network)
        {
            return Err(RULE.refuse(format!("{flag} host is not allowed")));
        }
        if mode
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("container:"))
        {
            return Err(RULE.refuse(format!(
                "{flag} container:... (sharing another container's namespace) is not allowed"
            )));
        }
    }
    Ok(())
}
