//! `oom_score`: a negative OOM score adjustment makes the kernel kill the host's processes
//! before the container's.

use super::{Conservative, Refusal, Request, Rule};
use crate::gojson::Value;

pub static RULE: Rule = Rule {
    name: "oom_score",
    doc: "Refuses a negative --oom-score-adj.",
    check,
};

fn check(req: &Request<'_>, _: &Conservative) -> Result<(), Refusal> {
    let score = req
        .create_host_config()
        .and_then(|h| h.field("OomScoreAdj"));
    match score {
        Some(Value::Number(n)) if n.as_f64().is_some_and(|n| n < 0.0) => Err(RULE.refuse(format!(
            "--oom-score-adj {n} is not allowed (only 0 to 1000)"
        ))),
        _ => Ok(()),
    }
}
