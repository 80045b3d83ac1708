//! `labels`: the gateway keeps its own bookkeeping in labels (a tenant's objects, the policy
//! they were made under: [`crate::labels::RESERVED`]); a client that could write them could
//! make its objects pass for someone else's. Clients may write any other label.

use super::{Conservative, Refusal, Request, Rule};
use crate::gojson::Value;

pub static RULE: Rule = Rule {
    name: "labels",
    doc: "Refuses the gateway's own labels (dockgate.tenant, dockgate.memory, dockgate.policy, dockgate.job) wherever a client can write labels (create, volume and network creates, --mount volume labels, build labels, commit and import changes).",
    check,
};

fn check(req: &Request<'_>, _: &Conservative) -> Result<(), Refusal> {
    let mut maps: Vec<Option<&Value>> = vec![req.body.field("Labels")];
    if let Some(host) = req.create_host_config() {
        for m in host.field("Mounts").map(Value::items).unwrap_or_default() {
            maps.push(m.path(&["VolumeOptions", "Labels"]));
        }
    }
    for (key, _) in maps.into_iter().flatten().flat_map(Value::members) {
        refuse_reserved(key)?;
    }
    match req.template() {
        "/build" => {
            if let Some(text) = req.query_value("labels") {
                if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) {
                    map.keys().try_for_each(|k| refuse_reserved(k))?;
                }
            }
        }
        "/commit" | "/images/create" => {
            // `--change 'LABEL k=v'`: Dockerfile syntax, key first.
            for change in req.query_values("changes") {
                let lower = change.trim_start().to_ascii_lowercase();
                let reserved = crate::labels::mentioned_in(&lower);
                if let (true, Some(label)) = (lower.starts_with("label"), reserved) {
                    return Err(RULE.refuse(format!(
                        "--change {change:?} sets the gateway's own label {label}, which clients \
                         cannot set"
                    )));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn refuse_reserved(key: &str) -> Result<(), Refusal> {
    if crate::labels::is_reserved(key) {
        return Err(RULE.refuse(format!(
            "label {key:?} is the gateway's own and cannot be set by clients"
        )));
    }
    Ok(())
}
