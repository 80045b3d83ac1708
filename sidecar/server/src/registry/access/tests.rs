use super::*;

fn p(s: &str) -> Prefix {
    Prefix::parse(s).unwrap()
}

#[test]
fn prefixes_cover_whole_components() {
    assert!(p("team-a").covers("team-a"));
    assert!(p("team-a/").covers("team-a/app"));
    assert!(p("team-a").covers("team-a/x/y"));
    assert!(!p("team-a").covers("team-ab"));
    assert!(!p("team-a").covers("team"));
    assert!(p("acme/ci").covers("acme/ci/runner"));
    assert!(!p("acme/ci").covers("acme/cid"));
    assert!(p("*").covers("anything/at/all"));
    for bad in ["", "/", "Team", "a//b", "..", "a/*"] {
        assert!(Prefix::parse(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn push_implies_pull() {
    let r = Rights {
        pull: vec![p("library")],
        push: vec![p("team-a")],
    };
    assert!(r.allows(Action::Pull, "library/busybox"));
    assert!(!r.allows(Action::Push, "library/busybox"));
    assert!(r.allows(Action::Push, "team-a/app"));
    assert!(r.allows(Action::Pull, "team-a/app"));
    assert!(!r.allows(Action::Pull, "team-b/app"));
    assert!(!Rights::default().allows(Action::Pull, "x"));
}

#[test]
fn config_errors_name_line_and_key() {
    let text = format!(
        "{}\n[[users]]\nname = \"alice\"\nrole = \"reader\"\n\n[registry.users.alice]\npull = [\"library\", \"Bad//Prefix\"]\npush = [\"team-a/\"]\n\n[registry.users.ghost]\npull = [\"*\"]\n",
        crate::config::DEFAULT
    );
    let e = crate::config::Config::parse("r.toml", &text).unwrap_err();
    let all = e.to_string();
    let base = crate::config::DEFAULT.lines().count();
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
