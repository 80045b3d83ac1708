//! `ulimits`: a real-time priority limit (`--ulimit rtprio=99`) lets an unprivileged process
//! in the container switch to `SCHED_FIFO` and keep a host CPU to itself; the other limits
//! only bound the container.

use super::{Conservative, Refusal, Request, Rule};
use crate::gojson::Value;

pub static RULE: Rule = Rule {
    name: "ulimits",
    doc: "Refuses the real-time limits rtprio and rttime in --ulimit (create and update).",
    check,
};

const REAL_TIME: &[&str] = &["rtprio", "rttime"];

fn check(req: &Request<'_>, _: &Conservative) -> Result<(), Refusal> {
    let Some(host) = req.host_config() else {
        return Ok(());
    };
    for limit in host.field("Ulimits").map(Value::items).unwrap_or_default() {
        let name = limit.field("Name").and_then(Value::as_str).unwrap_or("");
        let soft = limit.field("Soft").and_then(|v| match v {
            Value::Number(n) => n.as_f64(),
            _ => None,
        });
        if REAL_TIME.contains(&name) && soft.is_some_and(|s| s != 0.0) {
            return Err(RULE.refuse(format!(
                "--ulimit {name} is not allowed: real-time scheduling can starve the host"
            )));
        }
    }
    Ok(())
}
