use serde_json::json;

use super::*;

fn plain() -> Json {
    json!({
        "Name": "/web",
        "HostConfig": {
            "Privileged": false, "CapAdd": null, "NetworkMode": "none", "IpcMode": "private",
            "CgroupnsMode": "host", "LogConfig": {"Type": "json-file", "Config": {}},
            "Runtime": "runc", "OomScoreAdj": 0, "Devices": [], "PidMode": "",
            "MaskedPaths": MASKED, "ReadonlyPaths": READ_ONLY,
        },
        "Mounts": [{"Type": "volume", "Name": "data", "Source": "/var/lib/docker/volumes/data/_data",
                    "Destination": "/data", "Driver": "local", "RW": true, "Propagation": ""}],
        "NetworkSettings": {"Networks": {"none": {"NetworkID": "abc"}, "appnet": {"NetworkID": "n1"}}},
    })
}

#[test]
fn an_ordinary_container_is_in_reach_and_says_what_it_uses() {
    let uses = container(&plain(), &Conservative::default()).unwrap();
    assert_eq!(uses.volumes, ["data"]);
    assert_eq!(uses.networks, ["n1"]);
}

#[test]
fn what_the_role_could_not_create_is_out_of_reach() {
    let with = |path: &str, value: Json| {
        let mut c = plain();
        *c.pointer_mut(path).unwrap() = value;
        container(&c, &Conservative::default()).unwrap_err()
    };
    let r = with("/HostConfig/Privileged", json!(true));
    assert!(r
        .message
        .contains("container web was not created under this role's policy"));
    assert!(r.message.contains("privileged"), "{}", r.message);
    let sock = json!([{"Type": "bind", "Source": "/var/run/docker.sock",
                       "Destination": "/var/run/docker.sock", "Propagation": "rprivate"}]);
    assert!(with("/Mounts", sock).message.contains("Docker socket"));
    assert!(with("/HostConfig/MaskedPaths", json!(["/decoy"]))
        .message
        .contains("MaskedPaths"));
    assert!(with("/HostConfig/PidMode", json!("host"))
        .message
        .contains("--pid host"));
    assert!(with("/HostConfig/CapAdd", json!(["SYS_ADMIN"]))
        .message
        .contains("SYS_ADMIN"));
}

#[test]
fn volumes_and_networks_are_judged_as_their_creates() {
    let s = Conservative::default();
    assert!(volume(
        &json!({"Name": "v", "Driver": "local", "Options": null}),
        &s
    )
    .is_ok());
    let bind = json!({"Name": "v", "Driver": "local",
                      "Options": {"type": "none", "o": "bind", "device": "/"}});
    assert!(volume(&bind, &s)
        .unwrap_err()
        .message
        .contains("bind driver options"));
    let ok = json!({"Name": "n", "Driver": "bridge", "Scope": "local",
                    "IPAM": {"Driver": "default"}, "Options": {}});
    assert!(network(&ok, &s).is_ok());
    let mac = json!({"Name": "m", "Driver": "macvlan", "Scope": "local",
                     "IPAM": {"Driver": "default"}, "Options": {"parent": "eth0"}});
    assert!(network(&mac, &s).unwrap_err().message.contains("macvlan"));
    assert!(network(&json!({"Name": "host", "Driver": "host"}), &s).is_err());
    assert!(exec(&json!({"ProcessConfig": {"privileged": true}})).is_err());
    assert!(exec(&json!({"ProcessConfig": {"privileged": false}})).is_ok());
}

#[test]
fn the_operator_s_read_only_binds_are_not_the_creator_s() {
    let mut c = plain();
    c["Mounts"] = json!([{"Type": "bind", "Source": "/var/lib/dockgate/package-cache/bundle.pem",
                          "Destination": "/etc/ssl/certs/ca-certificates.crt", "RW": false,
                          "Propagation": "rprivate"}]);
    let bundle = "/var/lib/dockgate/package-cache/bundle.pem";
    let s = Conservative {
        operator_binds: vec![bundle.into()],
        ..Conservative::default()
    };
    assert!(container(&c, &s).is_ok());
    assert!(container(&c, &Conservative::default()).is_err());
    c["Mounts"][0]["RW"] = json!(true);
    assert!(
        container(&c, &s).is_err(),
        "a writable one is the creator's"
    );
}
