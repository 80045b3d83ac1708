//! `security_opts`: seccomp, AppArmor and SELinux confine a container, and the masked and
//! read-only paths keep /proc and /sys out of reach. Only `no-new-privileges` (and what the
//! operator lists) may be set; the path lists must stay dockerd's defaults.

use super::{listed, strings, Conservative, Refusal, Request, Rule};

pub static RULE: Rule = Rule {
    name: "security_opts",
    doc: "Allows --security-opt no-new-privileges and the operator's security_opts only (no seccomp profiles, unconfined AppArmor, labels or systempaths); MaskedPaths and ReadonlyPaths must be left to dockerd.",
    check,
};

fn check(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    let Some(host) = req.create_host_config() else {
        return Ok(());
    };
    for opt in strings(host.field("SecurityOpt")) {
        if !allowed(opt, settings) {
            return Err(RULE.refuse(format!("--security-opt {opt} is not allowed")));
        }
    }
    for field in ["MaskedPaths", "ReadonlyPaths"] {
        match host.field(field) {
            None => {}
            Some(v) if v.is_empty_array() => {
                return Err(RULE.refuse(format!(
                    "an empty {field} (--security-opt systempaths=unconfined) is not allowed"
                )))
            }
            Some(_) => {
                return Err(RULE.refuse(format!(
                    "a custom {field} list is not allowed: dockerd's defaults keep /proc and \
                     /sys out of reach"
                )))
            }
        }
    }
    Ok(())
}

/// `no-new-privileges` in the forms dockerd reads (`=` or the older `:`, with a boolean),
/// or an option the operator listed.
fn allowed(opt: &str, settings: &Conservative) -> bool {
    if listed(&settings.security_opts, opt) {
        return true;
    }
    let (key, value) = opt
        .split_once('=')
        .or_else(|| opt.split_once(':'))
        .unwrap_or((opt, "true"));
    key == "no-new-privileges" && matches!(value, "true" | "false" | "1" | "0")
}
