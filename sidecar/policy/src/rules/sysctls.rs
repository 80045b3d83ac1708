//! `sysctls`: a namespaced sysctl still changes kernel behaviour; with the host's (or another
//! container's) network, `net.*` ones change the host's. Only the allow-listed ones pass.

use super::{listed, Conservative, Refusal, Request, Rule};
use crate::gojson::Value;

pub static RULE: Rule = Rule {
    name: "sysctls",
    doc: "Allows only the sysctls in the allowlist (Kubernetes' safe set by default), and no net.* sysctl outside the container's own network namespace.",
    check,
};

fn check(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    let Some(host) = req.create_host_config() else {
        return Ok(());
    };
    let mode = host
        .field("NetworkMode")
        .and_then(Value::as_str)
        .unwrap_or("");
    let shared_net = mode == "host" || mode.starts_with("container:");
    for (key, _) in host
        .field("Sysctls")
        .map(Value::members)
        .unwrap_or_default()
    {
        if !listed(&settings.sysctls, key) {
            return Err(RULE.refuse(format!(
                "--sysctl {key} is not allowed (allowed: {})",
                settings.sysctls.join(", ")
            )));
        }
        if shared_net && key.starts_with("net.") {
            return Err(RULE.refuse(format!(
                "--sysctl {key} with --network {mode} would change a shared network namespace"
            )));
        }
    }
    Ok(())
}
