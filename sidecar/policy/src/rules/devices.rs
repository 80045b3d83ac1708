//! `devices`: host devices (disks, /dev/mem, GPUs) and device cgroup rules give direct access
//! to the host's hardware.

use super::{non_empty, Conservative, Refusal, Request, Rule};

pub static RULE: Rule = Rule {
    name: "devices",
    doc:
        "Refuses --device, --device-cgroup-rule and --gpus (DeviceRequests), on create and update.",
    check,
};

fn check(req: &Request<'_>, _: &Conservative) -> Result<(), Refusal> {
    let Some(host) = req.host_config() else {
        return Ok(());
    };
    for (field, what) in [
        ("Devices", "host devices (--device)"),
        ("DeviceCgroupRules", "device cgroup rules"),
        ("DeviceRequests", "device requests (--gpus)"),
    ] {
        if non_empty(host.field(field)) {
            return Err(RULE.refuse(format!("{what} are not allowed")));
        }
    }
    Ok(())
}
