use super::*;
use crate::gojson::parse;
use crate::rules::{ENGINE_RULES, RULES};

fn walk_create(json: &str) -> Result<(), Refusal> {
    let v = parse(json.as_bytes()).unwrap();
    v.validate().unwrap();
    walk(&fields::CREATE, &v, "")
}

#[test]
fn no_table_names_a_field_twice() {
    fn check(s: &Struct) {
        for (i, (a, _)) in s.fields.iter().enumerate() {
            assert!(!a.is_empty(), "{}: an empty row", s.name);
            for (b, _) in &s.fields[i + 1..] {
                assert!(!go_field_matches(a, b), "{}: {a} twice", s.name);
            }
        }
        for (_, f) in s.fields {
            if let Field::Struct(inner) | Field::List(inner) | Field::Map(inner) = f {
                check(inner);
            }
        }
    }
    for s in fields::ALL {
        check(s);
    }
}

#[test]
fn every_field_a_table_gives_to_a_rule_is_a_rule_s() {
    let names: Vec<&str> = RULES
        .iter()
        .map(|r| r.name)
        .chain(ENGINE_RULES.iter().map(|(n, _)| *n))
        .collect();
    let fields = rule_fields();
    assert!(fields.len() > 30, "{fields:?}");
    for (strukt, field, rule) in fields {
        assert!(names.contains(&rule), "{strukt}.{field}: no rule {rule}");
    }
}

#[test]
fn what_the_cli_sends_for_a_plain_run_passes() {
    // The 28.x CLI's body for `docker run --network none busybox true`: every field, at its
    // zero value unless used.
    let body = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,
        "AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,
        "Env":null,"Cmd":["true"],"Image":"busybox","Volumes":null,"WorkingDir":"",
        "Entrypoint":null,"OnBuild":null,"Labels":{},
        "HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},
        "NetworkMode":"none","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},
        "AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],
        "CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],
        "ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,
        "PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,
        "SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"",
        "CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,
        "BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],
        "BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,
        "CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"",
        "Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,
        "MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,
        "Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,
        "MaskedPaths":null,"ReadonlyPaths":null},
        "NetworkingConfig":{"EndpointsConfig":{"none":{"IPAMConfig":null,"Links":null,
        "Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"",
        "EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"",
        "GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}"#;
    assert_eq!(walk_create(body), Ok(()));
}

#[test]
fn top_level_host_fields_without_a_host_config_become_one() {
    for (json, hoisted) in [
        (
            r#"{"Image":"x","Runtime":"runc","Privileged":true}"#,
            r#"{"Image":"x","HostConfig":{"Runtime":"runc","Privileged":true}}"#,
        ),
        (
            r#"{"Image":"x","HostConfig":null,"capadd":["SYS_ADMIN"]}"#,
            r#"{"Image":"x","HostConfig":{"capadd":["SYS_ADMIN"]}}"#,
        ),
        (
            r#"{"Image":"x","Cmd":["true"]}"#,
            r#"{"Image":"x","Cmd":["true"]}"#,
        ),
        (
            r#"{"Image":"x","Privileged":true,"HostConfig":{}}"#,
            r#"{"Image":"x","Privileged":true,"HostConfig":{}}"#,
        ),
    ] {
        let mut v = parse(json.as_bytes()).unwrap();
        hoist_host_config(&mut v);
        assert_eq!(v.to_json(), hoisted, "{json}");
    }
}

#[test]
fn top_level_host_fields_are_refused_by_name() {
    for (body, key) in [
        (r#"{"Image":"busybox","Binds":["/:/host"]}"#, "Binds"),
        (r#"{"Image":"busybox","Privileged":true}"#, "Privileged"),
        (
            r#"{"Image":"busybox","HostConfig":null,"capadd":["SYS_ADMIN"]}"#,
            "capadd",
        ),
        // Resources are inline in HostConfig, so at the top level too.
        (r#"{"Image":"busybox","Devices":[]}"#, "Devices"),
        (r#"{"Image":"busybox","Cpuset":"0"}"#, "Cpuset"),
    ] {
        let r = walk_create(body).unwrap_err();
        assert!(
            r.message.contains(&format!("host setting {key:?}")),
            "{body}: {r}"
        );
    }
}

#[test]
fn top_level_host_fields_beside_a_host_config_are_read_as_dockerd_reads_them() {
    // Ignored by dockerd (docker-py sends `Runtime` there).
    assert_eq!(
        walk_create(r#"{"Image":"x","Runtime":"runc","HostConfig":{}}"#),
        Ok(())
    );
    assert_eq!(
        walk_create(r#"{"Image":"x","Privileged":true,"HostConfig":{"Memory":0}}"#),
        Ok(())
    );
    // Copied into HostConfig when unset there: refused unless zero.
    let r = walk_create(r#"{"Image":"x","VolumeDriver":"sshfs","HostConfig":{}}"#).unwrap_err();
    assert!(r.message.contains("\"VolumeDriver\""), "{r}");
    assert!(walk_create(r#"{"Image":"x","Memory":1,"HostConfig":{}}"#).is_err());
    assert_eq!(
        walk_create(r#"{"Image":"x","Memory":0,"HostConfig":{}}"#),
        Ok(())
    );
    // Without HostConfig (or with null) they are the host config.
    assert!(walk_create(r#"{"Image":"x","Runtime":"runc","HostConfig":null}"#).is_err());
}

#[test]
fn null_members_set_nothing_whatever_their_name() {
    // docker-py's `run(network=N)` sends `NetworkingConfig: {N: null}`.
    assert_eq!(
        walk_create(r#"{"NetworkingConfig":{"mynet":null},"Shiny":null}"#),
        Ok(())
    );
}

#[test]
fn unknown_members_are_refused_with_their_path() {
    let r = walk_create(r#"{"HostConfig":{"Mounts":[{"Type":"bind","Shiny":1}]}}"#).unwrap_err();
    assert!(
        r.message
            .contains("unknown field HostConfig.Mounts[].Shiny"),
        "{r}"
    );
    let r = walk_create(r#"{"Image":"x","Whatever":1}"#).unwrap_err();
    assert!(r.message.contains("unknown field Whatever"), "{r}");
}

#[test]
fn zero_only_fields_pass_at_zero_and_fail_otherwise() {
    assert_eq!(
        walk_create(r#"{"HostConfig":{"OomKillDisable":false}}"#),
        Ok(())
    );
    let r = walk_create(r#"{"HostConfig":{"OomKillDisable":true}}"#).unwrap_err();
    assert!(r.message.contains("HostConfig.OomKillDisable"), "{r}");
    let r = walk_create(r#"{"HostConfig":{"CpuRealtimeRuntime":950000}}"#).unwrap_err();
    assert!(r.message.contains("real-time"), "{r}");
    let r = walk_create(r#"{"HostConfig":{"Annotations":{"run.oci.x":"1"}}}"#).unwrap_err();
    assert!(r.message.contains("Annotations"), "{r}");
    let r = walk_create(
        r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/srv","Target":"/x","BindOptions":{"CreateMountpoint":true}}]}}"#,
    )
    .unwrap_err();
    assert!(r.message.contains("BindOptions.CreateMountpoint"), "{r}");
    let r = walk_create(r#"{"NetworkingConfig":{"EndpointsConfig":{"n":{"Shiny":{"a":"b"}}}}}"#)
        .unwrap_err();
    assert!(r.message.contains(r#"EndpointsConfig["n"].Shiny"#), "{r}");
    // An endpoint's driver options are the endpoint's own (docker-py sends them).
    let ok = r#"{"NetworkingConfig":{"EndpointsConfig":{"n":{"DriverOpts":{"a":"b"}}}}}"#;
    assert_eq!(walk_create(ok), Ok(()));
}

#[test]
fn bodies_without_a_model_are_err_and_streams_none() {
    assert!(matches!(body_struct(Body::Unmodelled), Model::Unmodelled));
    assert!(matches!(body_struct(Body::Archive), Model::NoSettings));
    assert!(matches!(
        body_struct(Body::ContainerCreate),
        Model::Struct(_)
    ));
}
