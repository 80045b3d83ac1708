//! `log_driver`: log drivers deliver a container's output where their options say (syslog,
//! gelf, fluentd, splunk: any address the engine can reach, loopback included), so a
//! `--network none` container could still talk to the host's services. Drivers and their
//! options are allow-listed.

use super::{listed, Conservative, Refusal, Request, Rule};
use crate::gojson::Value;

pub static RULE: Rule = Rule {
    name: "log_driver",
    doc: "Allows only the log drivers in the allowlist (json-file, local, journald, none) with their local options (sizes, rotation, tags, labels, mode).",
    check,
};

/// Options of the local drivers (rotation, metadata, delivery mode).
const OPTIONS: &[&str] = &[
    "max-size",
    "max-file",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
    "mode",
    "max-buffer-size",
];

fn check(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    let Some(log) = req.create_host_config().and_then(|h| h.field("LogConfig")) else {
        return Ok(());
    };
    let driver = log.field("Type").and_then(Value::as_str).unwrap_or("");
    if !driver.is_empty() && !listed(&settings.log_drivers, driver) {
        return Err(RULE.refuse(format!(
            "log driver {driver:?} is not allowed (allowed: {})",
            settings.log_drivers.join(", ")
        )));
    }
    for (key, _) in log.field("Config").map(Value::members).unwrap_or_default() {
        if !OPTIONS.contains(&key.as_str()) {
            return Err(RULE.refuse(format!(
                "log option {key:?} is not allowed (allowed: {})",
                OPTIONS.join(", ")
            )));
        }
    }
    Ok(())
}
