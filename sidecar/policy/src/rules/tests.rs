use std::path::PathBuf;

use dockgate_api::endpoints::ENDPOINTS;

use super::*;
use crate::gojson::parse;

fn settings() -> Conservative {
    Conservative {
        bind_allowlist: vec![PathBuf::from("/srv/ci-cache"), PathBuf::from("/tmp/shared")],
        cap_allowlist: vec!["NET_ADMIN".into()],
        ..Conservative::default()
    }
}

/// The endpoint row of a template (POST unless only another method has it).
fn endpoint(template: &str) -> &'static dockgate_api::endpoints::Endpoint {
    let rows = || ENDPOINTS.iter().filter(|e| e.template == template);
    rows()
        .find(|e| e.method == dockgate_api::endpoints::Method::Post)
        .or_else(|| rows().next())
        .unwrap_or_else(|| panic!("no endpoint {template}"))
}

fn with(
    template: &str,
    query: &[(&str, &str)],
    body: &str,
    settings: &Conservative,
) -> Result<(), Refusal> {
    let body = parse(body.as_bytes()).unwrap();
    body.validate().unwrap();
    let uri = CanonicalUri {
        version: None,
        segments: Vec::new(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    conservative(
        &Request {
            endpoint: endpoint(template),
            uri: &uri,
            body: &body,
        },
        settings,
    )
}

fn decide(template: &str, query: &[(&str, &str)], body: &str) -> Result<(), Refusal> {
    with(template, query, body, &settings())
}

fn create(body: &str) -> Result<(), Refusal> {
    decide("/containers/create", &[], body)
}

#[track_caller]
fn refused_by(result: Result<(), Refusal>, rule: &str) {
    match result {
        Err(r) => assert_eq!(r.rule, rule, "{r}"),
        Ok(()) => panic!("accepted, expected a refusal by {rule}"),
    }
}

#[test]
fn ordinary_requests_pass() {
    for body in [
        "",
        r#"{"Image": "busybox", "Cmd": ["echo", "hi"]}"#,
        r#"{"Image": "busybox", "HostConfig": {"NetworkMode": "none", "Binds": ["data:/data", "/srv/ci-cache/job1:/cache:ro"]}}"#,
        r#"{"HostConfig": {"NetworkMode": "bridge", "IpcMode": "private", "PidMode": "", "Privileged": false}}"#,
        r#"{"HostConfig": {"CapAdd": ["net_admin"], "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"]}}"#,
        r#"{"HostConfig": {"Mounts": [{"Type": "tmpfs", "Target": "/run"}, {"Type": "volume", "Source": "v", "Target": "/v"}, {"Type": "bind", "Source": "/tmp/shared", "Target": "/s"}]}}"#,
        r#"{"HostConfig": {"MaskedPaths": null, "ReadonlyPaths": null, "Devices": []}}"#,
    ] {
        assert_eq!(create(body), Ok(()), "{body}");
    }
    assert_eq!(
        decide(
            "/containers/{id}/exec",
            &[],
            r#"{"Cmd": ["sh"], "Privileged": false}"#
        ),
        Ok(())
    );
    assert_eq!(
        decide(
            "/volumes/create",
            &[],
            r#"{"Name": "v", "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=100m"}}"#
        ),
        Ok(())
    );
    assert_eq!(
        decide("/build", &[("networkmode", "default"), ("t", "app")], ""),
        Ok(())
    );
    // Archives and contexts the client sends are fine.
    assert_eq!(decide("/images/create", &[("fromSrc", "-")], ""), Ok(()));
    assert_eq!(
        decide("/images/create", &[("fromImage", "busybox")], ""),
        Ok(())
    );
    assert_eq!(
        decide("/build", &[("remote", "client-session")], ""),
        Ok(())
    );
}

#[test]
fn escape_corpus_is_refused_by_the_right_rule() {
    let cases: &[(&str, &str)] = &[
        (r#"{"HostConfig": {"Privileged": true}}"#, "privileged"),
        (r#"{"hostconfig": {"privileged": true}}"#, "privileged"),
        (r#"{"HOSTCONFIG": {"\u0050RIVILEGED": true}}"#, "privileged"),
        (
            r#"{"HostConfig": {"CapAdd": ["SYS_ADMIN"]}}"#,
            "capabilities",
        ),
        (
            r#"{"HostConfig": {"CapAdd": ["cap_sys_module"]}}"#,
            "capabilities",
        ),
        (r#"{"HostConfig": {"CapAdd": ["ALL"]}}"#, "capabilities"),
        (
            r#"{"HostConfig": {"Capabilities": ["CAP_SYS_ADMIN"]}}"#,
            "capabilities",
        ),
        (
            r#"{"HostConfig": {"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}]}}"#,
            "devices",
        ),
        (
            r#"{"HostConfig": {"DeviceCgroupRules": ["a *:* rwm"]}}"#,
            "devices",
        ),
        (
            r#"{"HostConfig": {"DeviceRequests": [{"Count": -1, "Capabilities": [["gpu"]]}]}}"#,
            "devices",
        ),
        (r#"{"HostConfig": {"NetworkMode": "host"}}"#, "namespaces"),
        (r#"{"HostConfig": {"NetworkMode": "HOST"}}"#, "namespaces"),
        (r#"{"HostConfig": {"PidMode": "host"}}"#, "namespaces"),
        (
            r#"{"HostConfig": {"PidMode": "container:abc"}}"#,
            "namespaces",
        ),
        (r#"{"HostConfig": {"IpcMode": "host"}}"#, "namespaces"),
        (r#"{"HostConfig": {"UTSMode": "host"}}"#, "namespaces"),
        (r#"{"HostConfig": {"UsernsMode": "host"}}"#, "namespaces"),
        (r#"{"HostConfig": {"CgroupnsMode": "host"}}"#, "namespaces"),
        (
            r#"{"HostConfig": {"SecurityOpt": ["seccomp=unconfined"]}}"#,
            "security_opts",
        ),
        (
            r#"{"HostConfig": {"SecurityOpt": ["seccomp:unconfined"]}}"#,
            "security_opts",
        ),
        (
            r#"{"HostConfig": {"SecurityOpt": ["apparmor=unconfined"]}}"#,
            "security_opts",
        ),
        (
            r#"{"HostConfig": {"SecurityOpt": ["label=disable"]}}"#,
            "security_opts",
        ),
        (
            r#"{"HostConfig": {"SecurityOpt": ["label:type:spc_t"]}}"#,
            "security_opts",
        ),
        (
            r#"{"HostConfig": {"SecurityOpt": ["systempaths=unconfined"]}}"#,
            "security_opts",
        ),
        (r#"{"HostConfig": {"MaskedPaths": []}}"#, "security_opts"),
        (r#"{"HostConfig": {"ReadonlyPaths": []}}"#, "security_opts"),
        (r#"{"HostConfig": {"Binds": ["/:/host"]}}"#, "binds"),
        (r#"{"HostConfig": {"Binds": ["/etc:/etc:ro"]}}"#, "binds"),
        (
            r#"{"HostConfig": {"Binds": ["/var/run/docker.sock:/var/run/docker.sock"]}}"#,
            "binds",
        ),
        (
            r#"{"HostConfig": {"Binds": ["/run/docker.sock:/s"]}}"#,
            "binds",
        ),
        (
            r#"{"HostConfig": {"Binds": ["/srv/ci-cache/../../etc:/x"]}}"#,
            "binds",
        ),
        (
            r#"{"HostConfig": {"Binds": ["/srv/ci-cachex:/x"]}}"#,
            "binds",
        ),
        (r#"{"HostConfig": {"Binds": ["//etc:/x"]}}"#, "binds"),
        (
            r#"{"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}]}}"#,
            "binds",
        ),
        (
            r#"{"HostConfig": {"Mounts": [{"type": "BIND", "source": "/etc", "target": "/x"}]}}"#,
            "binds",
        ),
        (
            r#"{"HostConfig": {"Mounts": [{"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"type": "none", "o": "bind", "device": "/etc"}}}}]}}"#,
            "volume_options",
        ),
        (
            r#"{"HostConfig": {"Mounts": [{"Type": "npipe", "Source": "x", "Target": "/x"}]}}"#,
            "binds",
        ),
        (r#"{"HostConfig": {"CgroupParent": "/"}}"#, "cgroup_parent"),
    ];
    for (body, rule) in cases {
        match create(body) {
            Err(r) => assert_eq!(r.rule, *rule, "{body}: {r}"),
            Ok(()) => panic!("{body} was accepted"),
        }
    }
    assert!(cases.len() >= 35);
}

#[test]
fn other_endpoints_are_checked_too() {
    refused_by(
        decide(
            "/containers/{id}/exec",
            &[],
            r#"{"Cmd": ["sh"], "privileged": true}"#,
        ),
        "privileged",
    );
    refused_by(
        decide(
            "/containers/{id}/update",
            &[],
            r#"{"Devices": [{"PathOnHost": "/dev/sda"}]}"#,
        ),
        "devices",
    );
    refused_by(
        decide("/containers/{id}/update", &[], r#"{"CgroupParent": "x"}"#),
        "cgroup_parent",
    );
    refused_by(
        decide(
            "/volumes/create",
            &[],
            r#"{"Name": "v", "DriverOpts": {"type": "none", "o": "bind", "device": "/"}}"#,
        ),
        "volume_options",
    );
    refused_by(
        decide(
            "/volumes/create",
            &[],
            r#"{"Name": "v", "Driver": "local", "DriverOpts": {"o": "ro,rbind", "device": "/etc"}}"#,
        ),
        "volume_options",
    );
    refused_by(decide("/build", &[("networkmode", "host")], ""), "build");
    for url in [
        "http://169.254.169.254/latest/",
        "https://127.0.0.1:8080/x.tar",
        "git@h:x.git",
    ] {
        refused_by(
            decide("/images/create", &[("fromSrc", url)], ""),
            "remote_fetch",
        );
        refused_by(decide("/build", &[("remote", url)], ""), "remote_fetch");
    }
    refused_by(
        decide("/build", &[("cgroupparent", "/x")], ""),
        "cgroup_parent",
    );
}

#[test]
fn refusals_say_what_and_name_the_rule() {
    let r = create(r#"{"HostConfig": {"Privileged": true}}"#).unwrap_err();
    assert_eq!(r.message, "privileged containers are not allowed");
    assert_eq!(
        r.to_string(),
        "privileged containers are not allowed (rule privileged)"
    );
    let r = create(r#"{"HostConfig": {"Binds": ["/etc:/etc"]}}"#).unwrap_err();
    assert!(
        r.message.contains("/srv/ci-cache, /tmp/shared"),
        "{}",
        r.message
    );
}

#[test]
fn every_rule_is_documented_and_uniquely_named() {
    for (i, rule) in RULES.iter().enumerate() {
        assert!(
            !rule.doc.is_empty() && rule.doc.ends_with('.'),
            "{}",
            rule.name
        );
        assert!(
            RULES[i + 1..].iter().all(|r| r.name != rule.name),
            "{}",
            rule.name
        );
    }
}

#[test]
fn the_endpoints_rules_name_exist_in_the_api_table() {
    for template in [
        "/containers/create",
        "/containers/{id}/exec",
        "/containers/{id}/update",
        "/volumes/create",
        "/build",
    ] {
        assert!(
            dockgate_api::endpoints::ENDPOINTS
                .iter()
                .any(|e| e.template == template),
            "{template}"
        );
    }
}

#[test]
fn allow_host_network_opens_the_network_namespace_only() {
    let host_net = r#"{"Image":"busybox","HostConfig":{"NetworkMode":"host"}}"#;
    let allowed = Conservative {
        allow_host_network: true,
        ..settings()
    };
    let create = "/containers/create";
    assert!(decide(create, &[], host_net).is_err());
    assert!(with(create, &[], host_net, &allowed).is_ok());
    for other in [
        r#"{"HostConfig":{"NetworkMode":"host","PidMode":"host"}}"#,
        r#"{"HostConfig":{"NetworkMode":"host","IpcMode":"host"}}"#,
        r#"{"HostConfig":{"NetworkMode":"host","UTSMode":"host"}}"#,
        r#"{"HostConfig":{"NetworkMode":"host","Sysctls":{"net.ipv4.tcp_syncookies":"0"}}}"#,
    ] {
        assert!(with(create, &[], other, &allowed).is_err(), "{other}");
    }
    // Builds keep their own rule.
    assert!(with("/build", &[("networkmode", "host")], "", &allowed).is_err());
}

#[test]
fn the_allow_lists_refuse_what_a_deny_list_misses() {
    for (body, rule) in [
        (r#"{"HostConfig":{"CapAdd":"SYS_ADMIN"}}"#, "capabilities"),
        (
            r#"{"HostConfig":{"MaskedPaths":["/decoy"]}}"#,
            "security_opts",
        ),
        (
            r#"{"HostConfig":{"ReadonlyPaths":["/decoy"]}}"#,
            "security_opts",
        ),
        (
            r#"{"HostConfig":{"SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]}}"#,
            "security_opts",
        ),
        (
            r#"{"HostConfig":{"SecurityOpt":["disable"]}}"#,
            "security_opts",
        ),
        (
            r#"{"HostConfig":{"SecurityOpt":["label=type:unconfined_t"]}}"#,
            "security_opts",
        ),
        (
            r#"{"HostConfig":{"SecurityOpt":["apparmor=Unconfined"]}}"#,
            "security_opts",
        ),
        (
            r#"{"HostConfig":{"LogConfig":{"Type":"syslog","Config":{"syslog-address":"tcp://127.0.0.1:1"}}}}"#,
            "log_driver",
        ),
        (
            r#"{"HostConfig":{"LogConfig":{"Type":"json-file","Config":{"syslog-address":"x"}}}}"#,
            "log_driver",
        ),
        (
            r#"{"HostConfig":{"Sysctls":{"kernel.msgmax":"1"}}}"#,
            "sysctls",
        ),
        (r#"{"HostConfig":{"OomScoreAdj":-1000}}"#, "oom_score"),
        (
            r#"{"HostConfig":{"Ulimits":[{"Name":"rtprio","Soft":99,"Hard":99}]}}"#,
            "ulimits",
        ),
        (
            r#"{"HostConfig":{"Runtime":"runsc-unconfined"}}"#,
            "runtime",
        ),
        (
            r#"{"HostConfig":{"VolumeDriver":"vieux/sshfs"}}"#,
            "volume_options",
        ),
        (
            r#"{"HostConfig":{"Mounts":[{"Type":"volume","Target":"/x","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"proc","device":"proc"}}}}]}}"#,
            "volume_options",
        ),
        (
            r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/tmp/shared","Target":"/x","BindOptions":{"Propagation":"rshared"}}]}}"#,
            "binds",
        ),
        (
            r#"{"HostConfig":{"Binds":["/tmp/shared:/x:rshared"]}}"#,
            "binds",
        ),
        (
            r#"{"HostConfig":{"Mounts":[{"Type":"npipe","Source":"x","Target":"/x"}]}}"#,
            "binds",
        ),
        (r#"{"HostConfig":{"Cgroup":"container:x"}}"#, "namespaces"),
        (r#"{"HostConfig":{"PidMode":"weird"}}"#, "namespaces"),
        (r#"{"Labels":{"dockgate.tenant":"a"}}"#, "labels"),
        (r#"{"Privileged":true}"#, "allowlist"),
        (r#"{"HostConfig":{"Annotations":{"a":"b"}}}"#, "allowlist"),
    ] {
        refused_by(create(body), rule);
    }
    for (opts, what) in [
        (r#"{"type":"ext4","device":"/dev/vda"}"#, "type \"ext4\""),
        (r#"{"type":"proc","device":"proc"}"#, "type \"proc\""),
        (r#"{"type":"sysfs","device":"sysfs"}"#, "type \"sysfs\""),
        (r#"{"type":"cgroup","device":"cgroup"}"#, "type \"cgroup\""),
        (
            r#"{"type":"overlay","device":"overlay","o":"lowerdir=/etc"}"#,
            "type \"overlay\"",
        ),
        (
            r#"{"type":"tmpfs","device":"tmpfs","o":"bind"}"#,
            "bind driver options",
        ),
        (r#"{"type":"tmpfs","device":"/etc"}"#, "must not be a path"),
        (
            r#"{"type":"tmpfs","device":"tmpfs","o":"size=1m,rbind"}"#,
            "\"rbind\"",
        ),
    ] {
        let body = format!(r#"{{"Name":"v","DriverOpts":{opts}}}"#);
        let r = decide("/volumes/create", &[], &body).unwrap_err();
        assert!(
            r.rule == "volume_options" && r.message.contains(what),
            "{body}: {r}"
        );
    }
    assert_eq!(
        decide(
            "/volumes/create",
            &[],
            r#"{"Name":"v","DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=1m,uid=1000"}}"#
        ),
        Ok(())
    );
    for body in [
        r#"{"Name":"n","Driver":"macvlan","Options":{"parent":"eth0"}}"#,
        r#"{"Name":"n","Driver":"ipvlan"}"#,
        r#"{"Name":"n","Options":{"com.docker.network.bridge.name":"eth0"}}"#,
        r#"{"Name":"n","IPAM":{"Driver":"plugin"}}"#,
        r#"{"Name":"n","Scope":"swarm"}"#,
    ] {
        refused_by(decide("/networks/create", &[], body), "network_drivers");
    }
    refused_by(
        decide(
            "/networks/create",
            &[],
            r#"{"Name":"n","ConfigFrom":{"Network":"m"}}"#,
        ),
        "allowlist",
    );
    assert_eq!(
        decide(
            "/networks/create",
            &[],
            r#"{"Name":"n","Driver":"bridge","Internal":true}"#
        ),
        Ok(())
    );
    for query in [
        &[("securityopt", "seccomp=unconfined")][..],
        &[("isolation", "hyperv")][..],
        &[("networkmode", "container:x")][..],
        &[("brandnew", "1")][..],
    ] {
        refused_by(decide("/build", query, ""), "build");
    }
    refused_by(
        decide("/build", &[("labels", r#"{"dockgate.tenant":"a"}"#)], ""),
        "labels",
    );
    refused_by(
        decide("/commit", &[("changes", "LABEL dockgate.tenant=a")], ""),
        "labels",
    );
    refused_by(decide("/services/create", &[], "{}"), "allowlist");
    refused_by(
        create(r#"{"Image":"busybox","OnBuild":["ADD http://127.0.0.1:9/s /s"]}"#),
        "remote_fetch",
    );
    refused_by(
        decide(
            "/commit",
            &[("changes", "ONBUILD ADD http://127.0.0.1:9/s /s")],
            "{}",
        ),
        "remote_fetch",
    );
    assert_eq!(
        decide(
            "/commit",
            &[("changes", "ONBUILD RUN true"), ("changes", "CMD sh")],
            "{}"
        ),
        Ok(())
    );
}
