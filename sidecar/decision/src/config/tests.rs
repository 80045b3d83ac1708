use super::*;

#[test]
fn the_default_config_is_valid() {
    let c = Config::parse("default.toml", DEFAULT).unwrap();
    assert_eq!(
        c.listeners["loopback"].anonymous_role.as_deref(),
        Some("developer")
    );
    assert!(c.listeners["tls"].anonymous_role.is_none());
    assert!(c.roles["developer"].conservative);
    assert!(!c.roles["developer"].kinds.contains(&Kind::Swarm));
    assert_eq!(c.roles["admin"].kinds.len(), Kind::ALL.len());
}

#[test]
fn every_error_names_its_line_and_key() {
    let text = r#"
[roles.dev]
allow = ["read", "rooot"]
policies = ["lax"]

[[users]]
name = "alice"
role = "nobody"
token_sha256 = ["abc"]

[listeners.tls]
anonymous_role = "ghost"
"#;
    let e = Config::parse("bad.toml", text).unwrap_err();
    let all = e.to_string();
    for want in [
        "bad.toml: line 3: roles.dev.allow: unknown kind \"rooot\"",
        "bad.toml: line 4: roles.dev.policies: unknown policy \"lax\"",
        "bad.toml: line 8: users[0].role: no role named \"nobody\"",
        "bad.toml: line 9: users[0].token_sha256: must be 64 hex digits",
        "bad.toml: line 12: listeners.tls.anonymous_role: no role named \"ghost\"",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
    assert_eq!(e.errors.len(), 5);
}

#[test]
fn unknown_keys_and_syntax_errors_name_the_line() {
    let e = Config::parse("x.toml", "[roles.a]\nallow = []\nalow = []\n[listeners]\n").unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
    assert!(e.to_string().contains("alow"), "{e}");
    let e = Config::parse("x.toml", "[roles\n").unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn tokens_are_stored_hashed() {
    assert_eq!(
        token_hash("secret"),
        "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
    );
}

#[test]
fn the_shipped_example_is_valid() {
    let text = include_str!("../../examples/tls-multi-user.toml");
    let c = Config::parse("tls-multi-user.toml", text).unwrap();
    assert_eq!(c.users.len(), 3);
    assert_eq!(
        c.users[0].cert_fingerprints,
        vec!["3f1c0b7e5290aa641d8e25c79a410e66b27d135f".to_string()]
    );
    assert!(c.listeners["tls"].anonymous_role.is_none());
    assert_eq!(c.log_format, LogFormat::Json);
}

#[test]
fn the_inject_policy_is_read_and_checked() {
    let text = format!(
        "{DEFAULT}\n[policy.inject]\nlabels = {{ team = \"ci\" }}\nmemory = 536870912\ncpus = 1.5\n\
         ulimits = [\"nofile=1024:2048\", \"nproc=64\"]\nlog_driver = \"json-file\"\n\
         log_opts = {{ max-size = \"10m\" }}\nenv = [\"A=1\"]\n\
         [roles.ci]\nallow = [\"write\"]\npolicies = [\"inject\"]\n"
    );
    let c = Config::parse("inject.toml", &text).unwrap();
    assert!(c.roles["ci"].inject && !c.roles["ci"].conservative);
    assert_eq!(c.inject.nano_cpus, Some(1_500_000_000));
    assert_eq!(c.inject.ulimits[1].soft, 64);
    assert_eq!(
        c.inject.labels,
        vec![("team".to_string(), "ci".to_string())]
    );

    let bad = format!("{DEFAULT}\n[policy.inject]\nulimits = [\"nofile\"]\nenv = [\"NOEQUALS\"]\n");
    let e = Config::parse("bad.toml", &bad).unwrap_err().to_string();
    assert!(
        e.contains("policy.inject.ulimits: \"nofile\" is not name=soft:hard"),
        "{e}"
    );
    assert!(
        e.contains("policy.inject.env: \"NOEQUALS\" is not KEY=value"),
        "{e}"
    );
}

#[test]
fn relayed_unix_listeners_are_read_and_checked() {
    let c = Config::parse("default.toml", DEFAULT).unwrap();
    let relay = c.listeners["unix"].relay.as_ref().unwrap();
    assert_eq!(relay.socket, PathBuf::from("/run/dockgate/docker.sock"));
    assert_eq!(
        relay.nginx,
        PathBuf::from("/run/dockgate/private/docker-api.sock")
    );
    assert_eq!((relay.mode, relay.group.as_deref()), (0o660, None));
    assert!(c.listeners["loopback"].relay.is_none());

    let text = r#"
[roles.dev]
allow = ["read"]

[listeners.a]
socket = "/run/a.sock"

[listeners.b]
socket = "relative.sock"
nginx = "/run/b.sock"
socket_mode = "rw-rw----"

[listeners.c]
socket_group = "docker"
"#;
    let all = Config::parse("relay.toml", text).unwrap_err().to_string();
    for want in [
        "relay.toml: line 6: listeners.a.socket: needs `nginx = \"unix:PATH\"`",
        "relay.toml: line 9: listeners.b.socket: \"relative.sock\" must be an absolute path",
        "relay.toml: line 10: listeners.b.nginx: \"/run/b.sock\" must be unix:/ABSOLUTE/PATH",
        "relay.toml: line 11: listeners.b.socket_mode: \"rw-rw----\" is not an octal mode",
        "relay.toml: line 14: listeners.c.socket_group: only applies with `socket` and `nginx`",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
}

/// The configuration example in docs/sidecar.md parses as it is written.
#[test]
fn the_readme_s_configuration_example_parses() {
    let readme = include_str!("../../../../docs/sidecar.md");
    let start = readme
        .find("Configuration (TOML")
        .and_then(|i| readme[i..].find("```toml").map(|j| i + j + "```toml".len()))
        .expect("docs/sidecar.md has the configuration example");
    let end = start + readme[start..].find("```").expect("the example ends");
    let example = &readme[start..end];
    let config = Config::parse("docs/sidecar.md", example).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        config.roles["developer"].settings,
        dockgate_policy::rules::Conservative {
            bind_allowlist: vec!["/srv/ci-cache".into()],
            cap_allowlist: vec!["NET_ADMIN".into()],
            ..Default::default()
        },
        "docs/sidecar.md shows the built-in allow-lists"
    );
}

#[test]
fn a_role_s_own_allow_lists_replace_the_policy_s() {
    let text = format!(
        "{DEFAULT}\n[roles.ci]\nallow = [\"all\"]\npolicies = [\"conservative\"]\n\
         allow_host_network = true\n[roles.ci.conservative]\nlog_drivers = [\"syslog\"]\n\
         bind_allowlist = [\"/srv/ci\"]\n"
    );
    let c = Config::parse("test.toml", &text).unwrap();
    let ci = &c.roles["ci"].settings;
    assert_eq!(ci.log_drivers, ["syslog"]);
    assert_eq!(ci.bind_allowlist, [std::path::PathBuf::from("/srv/ci")]);
    assert!(ci.allow_host_network);
    assert_eq!(
        ci.network_drivers,
        ["bridge"],
        "what the role does not set is the policy's"
    );
    assert_eq!(c.roles["developer"].settings.log_drivers.len(), 4);
    let bad = format!(
        "{DEFAULT}\n[roles.ci]\nallow = [\"all\"]\n[roles.ci.conservative]\n\
         bind_allowlist = [\"relative\"]\nlog_driver = [\"x\"]\n"
    );
    let e = Config::parse("bad.toml", &bad).unwrap_err().to_string();
    assert!(e.contains("log_driver"), "{e}");
}

#[test]
fn registry_errors_name_line_and_key() {
    let text = format!(
        "{}\n[[users]]\nname = \"alice\"\nrole = \"reader\"\n\n[registry.users.alice]\npull = [\"library\", \"Bad//Prefix\"]\npush = [\"team-a/\"]\n\n[registry.users.ghost]\npull = [\"*\"]\n",
        DEFAULT
    );
    let e = Config::parse("r.toml", &text).unwrap_err();
    let all = e.to_string();
    let base = DEFAULT.lines().count();
    for want in [
        format!(
            "r.toml: line {}: registry.users.alice.pull: \"Bad//Prefix\" is neither",
            base + 7
        ),
        format!(
            "r.toml: line {}: registry.users.ghost: no user named \"ghost\"",
            base + 10
        ),
    ] {
        assert!(all.contains(&want), "missing {want:?} in:\n{all}");
    }
    assert_eq!(e.errors.len(), 2, "{all}");
}
