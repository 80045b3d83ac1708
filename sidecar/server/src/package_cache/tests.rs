use super::*;

fn settings(toml_text: &str) -> (Settings, Vec<String>) {
    dockgate_decision::config::package_cache::parse_table(toml_text).unwrap()
}

const EXAMPLE: &str = r#"
dir = "/tmp/pc"
address = "127.0.0.9"
ca_lifetime = "12h"
log_socket = "/tmp/pc/log.sock"
[[hosts]]
name = "Deb.Test"
rules = "apt"
origin = "127.0.0.1:8443"
origin_http = "127.0.0.1:8080"
[[hosts]]
name = "pypi.test"
rules = "pypi"
cache_credentials = true
"#;

#[test]
fn settings_and_generated_nginx_includes() {
    let (s, errors) = settings(EXAMPLE);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(s.ca.lifetime, Duration::from_secs(12 * 3600));
    assert_eq!(s.ca.hosts, ["deb.test", "pypi.test"]);
    assert_eq!(s.hosts[1].origin, "pypi.test:443");
    let http = nginx_http_conf(&s);
    assert!(http.contains("    deb.test apt;\n"), "{http}");
    assert!(http.contains("    pypi.test 1;\n"), "{http}");
    assert!(http.contains("\"https://deb.test\" dockgate_pkgcache_0_https;"));
    assert!(
        http.contains("upstream dockgate_pkgcache_0_http { server 127.0.0.1:8080; keepalive 16; }")
    );
    assert!(http.contains("upstream dockgate_pkgcache_1_https { server pypi.test:443;"));
    let server = nginx_server_conf(&s);
    assert!(server.contains("ssl_certificate /tmp/pc/server.pem;"));
    assert!(server.contains("syslog:server=unix:/tmp/pc/log.sock,nohostname,tag=dockgate_pkgcache"));
    let policy = s.policy();
    assert_eq!(policy.bundle, "/tmp/pc/bundle.pem");
    assert_eq!(policy.opt_out_label, "dockgate.package-cache");
}

#[test]
fn stats_count_by_rule_set_host_and_source() {
    let stats = Stats::default();
    let lines = [
        "<190>Nov 23 21:00:00 dockgate_pkgcache: apt deb.test MISS 1000",
        "<190>Nov 23 21:00:01 dockgate_pkgcache: apt deb.test HIT 1000",
        "<190>Nov 23 21:00:02 dockgate_pkgcache: apt deb.test HIT 1000",
        "<190>Nov 23 21:00:03 dockgate_pkgcache: apt deb.test REVALIDATED 10",
        "<190>Nov 23 21:00:03 dockgate_pkgcache: pypi pypi.test BYPASS 5",
        "<190>Nov 23 21:00:03 dockgate_pkgcache: pypi pypi.test - 0",
    ];
    for l in lines {
        assert!(stats.record_line(l), "{l}");
    }
    for bad in [
        "no tag here",
        "dockgate_pkgcache: apt deb.test HIT",
        "dockgate_pkgcache: apt deb.test HIT x",
        "dockgate_pkgcache: apt de\"b HIT 1",
    ] {
        assert!(!stats.record_line(bad), "{bad}");
    }
    let text = stats.render();
    assert!(text.contains(
        "dockgate_pkgcache_requests_total{rules=\"apt\",host=\"deb.test\",status=\"HIT\"} 2"
    ));
    assert!(text.contains(
        "dockgate_pkgcache_bytes_total{rules=\"apt\",host=\"deb.test\",source=\"cache\"} 2010"
    ));
    assert!(text.contains(
        "dockgate_pkgcache_bytes_total{rules=\"apt\",host=\"deb.test\",source=\"upstream\"} 1000"
    ));
    assert!(text.contains("dockgate_pkgcache_hit_ratio{rules=\"apt\",host=\"deb.test\"} 0.7500"));
    // Bypassed (credentials) and uncached requests are not in the ratio.
    assert!(!text.contains("dockgate_pkgcache_hit_ratio{rules=\"pypi\""));
}
