//! `security_opts`: seccomp, AppArmor and SELinux confine a container; empty masked and
//! read-only path lists (`--security-opt systempaths=unconfined`) expose /proc and /sys.

use super::{strings, Conservative, Refusal, Request, Rule};

pub static RULE: Rule = Rule {
    name: "security_opts",
    doc: "Refuses seccomp/apparmor unconfined, label disable, systempaths unconfined, and empty MaskedPaths/ReadonlyPaths.",
    check,
};

fn check(req: &Request<'_>, _: &Conservative) -> Result<(), Refusal> {
    let Some(host) = req.create_host_config() else {
        return Ok(());
    };
    for opt in strings(host.field("SecurityOpt")) {
        // dockerd accepts `key=value` and the older `key:value`.
        let (key, value) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .unwrap_or((opt, ""));
        let (key, value) = (
            key.trim().to_ascii_lowercase(),
            value.trim().to_ascii_lowercase(),
        );
        let unconfined = match key.as_str() {
            "seccomp" | "apparmor" | "systempaths" => value == "unconfined",
            "label" => value == "disable" || value.starts_with("type:spc_t"),
            _ => false,
        };
        if unconfined {
            return Err(RULE.refuse(format!("--security-opt {opt} is not allowed")));
        }
    }
    for field in ["MaskedPaths", "ReadonlyPaths"] {
        if host.field(field).is_some_and(|v| v.is_empty_array()) {
            return Err(RULE.refuse(format!(
                "an empty {field} (--security-opt systempaths=unconfined) is not allowed"
            )));
        }
    }
    Ok(())
}
