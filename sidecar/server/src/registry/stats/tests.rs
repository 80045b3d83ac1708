use super::*;

#[test]
fn nginx_syslog_lines_are_read() {
    let line = "<190>Nov 23 21:05:48 nginx: dockgate-registry-v1 kind=blob cache=HIT bytes=1048576 status=200";
    assert_eq!(
        parse_line(line),
        Some(CacheAnswer {
            kind: "blob",
            status: "HIT",
            bytes: 1048576
        })
    );
    // No cache status (nginx logs "-"), unknown kinds, other lines: not counted.
    assert_eq!(
        parse_line("dockgate-registry-v1 kind=blob cache=- bytes=1"),
        None
    );
    assert_eq!(
        parse_line("dockgate-registry-v1 kind=evil cache=HIT bytes=1"),
        None
    );
    assert_eq!(parse_line("<190>hello"), None);
}

#[test]
fn counters_render_as_prometheus_text() {
    let s = RegistryStats::default();
    s.approved(Action::Pull, "manifest_tag");
    s.approved(Action::Pull, "manifest_digest");
    s.approved(Action::Pull, "blob");
    s.approved(Action::Push, "manifest");
    s.refused("DENIED");
    s.cache_answer(&CacheAnswer {
        kind: "blob",
        status: "MISS",
        bytes: 10,
    });
    s.cache_answer(&CacheAnswer {
        kind: "blob",
        status: "MISS",
        bytes: 5,
    });
    let mut out = String::new();
    s.render(&mut out);
    for want in [
        "dockgate_registry_pulls_total 2\n",
        "dockgate_registry_pushes_total 1\n",
        "dockgate_registry_requests_total{action=\"pull\",kind=\"blob\"} 1\n",
        "dockgate_registry_refusals_total{code=\"DENIED\"} 1\n",
        "dockgate_registry_cache_answers_total{kind=\"blob\",cache=\"MISS\"} 2\n",
        "dockgate_registry_cache_bytes_total{kind=\"blob\",cache=\"MISS\"} 15\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}
