//! `cgroup_parent`: placing a container in an arbitrary cgroup escapes its resource limits
//! (and, with cgroup v1 release agents, more).

use super::{Conservative, Refusal, Request, Rule};

pub static RULE: Rule = Rule {
    name: "cgroup_parent",
    doc: "Refuses --cgroup-parent on create, update and build.",
    check,
};

fn check(req: &Request<'_>, _: &Conservative) -> Result<(), Refusal> {
    let parent = match req.template() {
        "/build" => req.query_value("cgroupparent"),
        _ => req
            .host_config()
            .and_then(|h| h.field("CgroupParent"))
            .and_then(|v| v.as_str()),
    };
    match parent {
        Some(p) if !p.trim().is_empty() => Err(RULE.refuse("--cgroup-parent is not allowed")),
        _ => Ok(()),
    }
}
