//! `network_drivers`: macvlan and ipvlan put containers on the host's own links, other
//! drivers are plugins, and bridge options can take over host interfaces. Drivers, scopes,
//! IPAM drivers and options are allow-listed.

use super::{listed, Conservative, Refusal, Request, Rule};
use crate::gojson::Value;

pub static RULE: Rule = Rule {
    name: "network_drivers",
    doc: "Allows only the network drivers in the allowlist (bridge), local scope, the default IPAM driver, and bridge options that change nothing outside the network (MTU, ICC, masquerading, interface prefix).",
    check,
};

const OPTIONS: &[&str] = &[
    "com.docker.network.driver.mtu",
    "com.docker.network.bridge.enable_icc",
    "com.docker.network.bridge.enable_ip_masquerade",
    "com.docker.network.container_iface_prefix",
];

fn check(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    if req.template() != "/networks/create" {
        return Ok(());
    }
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let driver = text(req.body.field("Driver"));
    let driver = if driver.is_empty() {
        "bridge".into()
    } else {
        driver
    };
    if !listed(&settings.network_drivers, &driver) {
        return Err(RULE.refuse(format!(
            "network driver {driver:?} is not allowed (allowed: {})",
            settings.network_drivers.join(", ")
        )));
    }
    let scope = text(req.body.field("Scope"));
    if !matches!(scope.as_str(), "" | "local") {
        return Err(RULE.refuse(format!("network scope {scope:?} is not allowed")));
    }
    let ipam = text(req.body.path(&["IPAM", "Driver"]));
    if !matches!(ipam.as_str(), "" | "default") {
        return Err(RULE.refuse(format!("IPAM driver {ipam:?} is not allowed")));
    }
    for (key, _) in req
        .body
        .field("Options")
        .map(Value::members)
        .unwrap_or_default()
    {
        if !OPTIONS.contains(&key.as_str()) {
            return Err(RULE.refuse(format!(
                "network option {key:?} is not allowed (allowed: {})",
                OPTIONS.join(", ")
            )));
        }
    }
    Ok(())
}
