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

/// A small deterministic generator (xorshift) for the property test below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A random key among spellings of a few field names: cases, the two Unicode folds, JSON
/// escapes of their letters.
fn random_key(rng: &mut Rng) -> String {
    const NAMES: &[&str] = &[
        "Privileged",
        "Binds",
        "HostConfig",
        "Labels",
        "CapAdd",
        "Keys",
    ];
    let name = NAMES[(rng.next() % NAMES.len() as u64) as usize];
    name.chars()
        .map(|c| match rng.next() % 6 {
            0 => c.to_ascii_uppercase().to_string(),
            1 => c.to_ascii_lowercase().to_string(),
            2 if c.eq_ignore_ascii_case(&'s') => "\\u017f".to_string(),
            3 if c.eq_ignore_ascii_case(&'k') => "\\u212a".to_string(),
            4 => format!("\\u{:04x}", c as u32),
            _ => c.to_string(),
        })
        .collect()
}

fn random_object(rng: &mut Rng, depth: u32) -> String {
    let members: Vec<String> = (0..rng.next() % 4)
        .map(|_| {
            let value = match rng.next() % 4 {
                0 if depth < 2 => random_object(rng, depth + 1),
                1 => "null".to_string(),
                2 => "true".to_string(),
                _ => "[\"/x:/y\"]".to_string(),
            };
            format!("\"{}\":{value}", random_key(rng))
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

#[test]
fn property_a_valid_body_has_one_reading_and_survives_reserialisation() {
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    let (mut valid, mut ambiguous) = (0, 0);
    for _ in 0..20_000 {
        let text = random_object(&mut rng, 0);
        let v = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
        match v.validate() {
            Err(_) => ambiguous += 1,
            Ok(()) => {
                valid += 1;
                // At most one member per field name: `field` is what Go reads.
                for name in ["Privileged", "Binds", "HostConfig", "CapAdd", "Keys"] {
                    let matching = v
                        .members()
                        .iter()
                        .filter(|(k, _)| go_field_matches(k, name))
                        .count();
                    assert!(matching <= 1, "{text}: {matching} members for {name}");
                }
                // What the sidecar writes back (inject) reads back the same.
                let again = parse(v.to_json().as_bytes()).unwrap();
                assert_eq!(again, v, "{text}");
                assert!(again.validate().is_ok());
            }
        }
    }
    assert!(
        valid > 1000 && ambiguous > 1000,
        "{valid} valid, {ambiguous} ambiguous"
    );
}

#[test]
fn nesting_is_bounded() {
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(parse(nested(MAX_DEPTH).as_bytes()).is_ok());
    let err = parse(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
    assert!(err.to_string().contains("deeper than 32"), "{err}");
    // Trailing values are still refused.
    assert!(parse(b"{} {}").is_err());
}
