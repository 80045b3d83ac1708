//! `runtime`: the OCI runtime runs the container; another one configured on the engine may
//! confine less (or nothing).

use super::{listed, Conservative, Refusal, Request, Rule};
use crate::gojson::Value;

pub static RULE: Rule = Rule {
    name: "runtime",
    doc: "Allows only the runtimes in the allowlist (runc).",
    check,
};

fn check(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    let runtime = req
        .create_host_config()
        .and_then(|h| h.field("Runtime"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if runtime.is_empty() || listed(&settings.runtimes, runtime) {
        return Ok(());
    }
    Err(RULE.refuse(format!(
        "--runtime {runtime} is not allowed (allowed: {})",
        settings.runtimes.join(", ")
    )))
}
