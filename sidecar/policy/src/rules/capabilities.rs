//! `capabilities`: added capabilities (CAP_SYS_ADMIN, CAP_SYS_MODULE, ...) break out of the
//! container; `HostConfig.Capabilities` replaces the default set altogether.

use super::{strings, Conservative, Refusal, Request, Rule};

pub static RULE: Rule = Rule {
    name: "capabilities",
    doc: "Refuses --cap-add outside the configured allowlist (ALL always), also as a bare string, and the Capabilities field.",
    check,
};

fn check(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    let Some(host) = req.create_host_config() else {
        return Ok(());
    };
    if host.field("Capabilities").is_some() {
        return Err(RULE.refuse("setting the capability set (Capabilities) is not allowed"));
    }
    let bare = |c: &str| {
        c.trim()
            .to_ascii_uppercase()
            .trim_start_matches("CAP_")
            .to_string()
    };
    // `strings` reads a bare string as one item, as dockerd's StrSlice does.
    for cap in strings(host.field("CapAdd")) {
        let cap = bare(cap);
        let allowed = cap != "ALL" && settings.cap_allowlist.iter().any(|a| bare(a) == cap);
        if !allowed {
            return Err(RULE.refuse(format!("adding capability {cap} is not allowed")));
        }
    }
    Ok(())
}
