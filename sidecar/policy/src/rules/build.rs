//! `build`: `RUN` steps of a build run in containers too; host networking gives them the
//! host's network stack.

use super::{Conservative, Refusal, Request, Rule};

pub static RULE: Rule = Rule {
    name: "build",
    doc: "Refuses builds with --network host (or another container's network).",
    check,
};

fn check(req: &Request<'_>, _: &Conservative) -> Result<(), Refusal> {
    if req.template != "/build" {
        return Ok(());
    }
    let mode = req.query_value("networkmode").unwrap_or("").trim();
    if mode.eq_ignore_ascii_case("host")
        || mode
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("container:"))
    {
        return Err(RULE.refuse(format!("build --network {mode} is not allowed")));
    }
    Ok(())
}
