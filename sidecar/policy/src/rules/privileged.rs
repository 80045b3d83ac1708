//! `privileged`: a privileged container or exec has every capability and every device.

use super::{Conservative, Refusal, Request, Rule};

pub static RULE: Rule = Rule {
    name: "privileged",
    doc: "Refuses privileged containers (--privileged) and privileged exec (exec --privileged).",
    check,
};

fn check(req: &Request<'_>, _: &Conservative) -> Result<(), Refusal> {
    let privileged = match req.template() {
        "/containers/create" => req.body.path(&["HostConfig", "Privileged"]),
        "/containers/{id}/exec" => req.body.field("Privileged"),
        _ => None,
    };
    match privileged {
        Some(v) if v.is_true() => Err(RULE.refuse(if req.template() == "/containers/create" {
            "privileged containers are not allowed"
        } else {
            "privileged exec is not allowed"
        })),
        _ => Ok(()),
    }
}
