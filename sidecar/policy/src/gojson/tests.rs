use super::*;

fn body(json: &str) -> Value {
    let v = parse(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"));
    v.validate().unwrap_or_else(|e| panic!("{json}: {e}"));
    v
}

#[test]
fn fields_match_as_in_go() {
    let v = body(r#"{"hostconfig": {"PRIVILEGED": true}}"#);
    assert!(v.path(&["HostConfig", "Privileged"]).unwrap().is_true());
    // Unicode escapes in keys are decoded before matching, as Go does.
    let v = body(r#"{"HostConfig": {"\u0050rivileged": true}}"#);
    assert!(v.path(&["HostConfig", "Privileged"]).unwrap().is_true());
    // Go folds the long s and the Kelvin sign onto ASCII letters.
    let v = body("{\"HostConfig\": {\"Privilege\u{017F}\": 1, \"Privileged\": true}}");
    assert!(v.validate().is_ok());
    assert!(go_field_matches("\u{212A}ind", "Kind"));
    assert!(!go_field_matches("Ca\u{017F}Add", "CapAdd"));
    assert!(go_field_matches("\u{017F}ecurityOpt", "SecurityOpt"));
}

#[test]
fn null_is_absent() {
    let v = body(r#"{"HostConfig": {"Privileged": null, "Binds": null}}"#);
    assert!(v.path(&["HostConfig", "Privileged"]).is_none());
    assert!(v.path(&["HostConfig", "Binds"]).is_none());
    assert!(body("").path(&["HostConfig"]).is_none());
}

#[test]
fn members_two_decoders_could_resolve_differently_are_refused() {
    for json in [
        r#"{"HostConfig": {"Privileged": false, "Privileged": true}}"#,
        r#"{"HostConfig": {"Privileged": false, "privileged": true}}"#,
        r#"{"HostConfig": {"Privileged": false, "\u0070rivileged": true}}"#,
        "{\"HostConfig\": {\"SecurityOpt\": [], \"\u{017F}ecurityOpt\": [\"seccomp=unconfined\"]}}",
        r#"{"hostconfig": {}, "HostConfig": {"Privileged": true}}"#,
        r#"{"Mounts": [{"Type": "volume", "type": "bind"}]}"#,
        r#"{"Labels": {"a": "1", "a": "2"}}"#,
    ] {
        let v = parse(json.as_bytes()).unwrap();
        assert!(
            matches!(v.validate(), Err(BodyError::AmbiguousKey { .. })),
            "{json} was accepted"
        );
    }
}

#[test]
fn map_keys_keep_their_case() {
    let v = body(
        r#"{"Labels": {"team": "a", "Team": "b"}, "HostConfig": {"Sysctls": {"x": "1", "X": "2"}}}"#,
    );
    assert_eq!(v.field("Labels").unwrap().members().len(), 2);
}

#[test]
fn malformed_bodies_are_refused_with_a_position() {
    for json in [
        "{",
        "{\"a\": tru}",
        "[1,]",
        "{\"a\":1} trailing",
        "\"\\ud800\"",
    ] {
        match parse(json.as_bytes()) {
            Err(BodyError::Malformed(msg)) => assert!(msg.contains("line"), "{msg}"),
            other => panic!("{json}: {other:?}"),
        }
    }
    assert!(parse(b"\xff").is_err());
}

#[test]
fn fields_are_changed_where_go_would_read_them() {
    let mut v = body(r#"{"image":"busybox","hostconfig":{"memory":0},"Labels":{"a":"1"}}"#);
    v.object_field("HostConfig")
        .set_field("Memory", Value::Number(1024.into()));
    v.object_field("HostConfig")
        .set_field("PidsLimit", Value::Number(64.into()));
    v.object_field("Labels")
        .set_map_key("A", Value::String("2".into()));
    assert_eq!(
        v.to_json(),
        r#"{"image":"busybox","hostconfig":{"memory":1024,"PidsLimit":64},"Labels":{"a":"1","A":"2"}}"#
    );
    // What we write parses back to the same thing, and stays unambiguous.
    let again = body(&v.to_json());
    assert_eq!(again, v);
    let mut empty = Value::Null;
    empty
        .object_field("HostConfig")
        .set_field("Dns", Value::Array(vec![]));
    assert_eq!(empty.to_json(), r#"{"HostConfig":{"Dns":[]}}"#);
    let mut null_config = body(r#"{"HostConfig":null}"#);
    null_config
        .object_field("HostConfig")
        .set_field("Runtime", Value::String("runc".into()));
    assert_eq!(
        null_config.to_json(),
        r#"{"HostConfig":{"Runtime":"runc"}}"#
    );
    let s = Value::String("a\"b\u{0}é".into()).to_json();
    assert_eq!(s, r#""a\"b\u0000é""#);
}
