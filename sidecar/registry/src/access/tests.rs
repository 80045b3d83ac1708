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
