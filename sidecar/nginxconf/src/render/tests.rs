use std::path::PathBuf;

use super::*;
use crate::{ApiServer, DockerApi, Listen, NginxConf, RegistryServer, TlsFiles};

fn gateway() -> NginxConf {
    let mut c = NginxConf::new("/etc/nginx/dockgate").in_prefix("/run/x");
    c.module = Some("/usr/lib/nginx/modules/ngx_http_dockgate_module.so".into());
    c.sidecar = Some("unix:/run/dockgate/sidecar.sock".into());
    c.docker_api = Some(DockerApi {
        dockerd: "/var/run/docker.sock".into(),
        policy: Some("/etc/dockgate/dockgate.toml".into()),
        access_log: "off".into(),
        servers: vec![
            ApiServer {
                listener: Some("loopback".into()),
                listen: Listen::Tcp("127.0.0.1:2375".into()),
            },
            ApiServer {
                listener: Some("unix".into()),
                listen: Listen::Relay("/run/dockgate/private/docker-api.sock".into()),
            },
            ApiServer {
                listener: Some("tls".into()),
                listen: Listen::Tls {
                    addr: "2376".into(),
                    files: TlsFiles::in_dir("/etc/dockgate/tls"),
                },
            },
        ],
    });
    c
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn the_gateway_has_each_server_with_both_api_includes_and_one_upstream_each() {
    let text = render(&gateway());
    assert!(text.starts_with("# Written by"));
    assert!(text.contains("load_module /usr/lib/nginx/modules/ngx_http_dockgate_module.so;\n"));
    assert!(text.contains("daemon off;\n"));
    assert_eq!(count(&text, "upstream dockerd {"), 1);
    assert_eq!(count(&text, "upstream dockgate_sidecar {"), 1);
    assert_eq!(
        count(&text, "include /etc/nginx/dockgate/docker-api-common.conf;"),
        3
    );
    assert_eq!(
        count(&text, "include /etc/nginx/dockgate/docker-api-policy.conf;"),
        3
    );
    assert!(text.contains("listen unix:/run/dockgate/private/docker-api.sock proxy_protocol;"));
    assert!(text.contains("set $dockgate_listener tls;"));
    assert!(text.contains("ssl_client_certificate /etc/dockgate/tls/ca.pem;"));
    assert!(text.contains("client_body_temp_path /run/x/tmp_body;"));
    assert!(text.contains("pid /run/x/nginx.pid;"));
    // Balanced braces: nginx -t checks the rest in the tests crate.
    assert_eq!(count(&text, "{"), count(&text, "}"));
}

#[test]
fn without_a_policy_the_servers_are_transport_only() {
    let mut c = gateway();
    let api = c.docker_api.as_mut().unwrap();
    api.policy = None;
    let text = render(&c);
    assert!(!text.contains("docker-api-policy.conf"));
    assert!(!text.contains("dockgate_policy"));
    assert_eq!(count(&text, "docker-api.conf;"), 3);
}

#[test]
fn a_site_is_the_http_block_alone() {
    let site = render_http(&NginxConf {
        temp: None,
        ..gateway()
    });
    assert!(!site.contains("load_module"));
    assert!(!site.contains("events"));
    assert!(!site.contains("temp_path"));
    assert!(site.starts_with("variables_hash_max_size"));
}

#[test]
fn the_registry_front_end_has_a_server_per_mapping() {
    let mut c = NginxConf::new("/conf");
    c.sidecar = Some("unix:/s.sock".into());
    c.registry = Some(crate::RegistryFrontend {
        hosted: "127.0.0.1:5000".into(),
        upstream: "127.0.0.1:5001".into(),
        cache: PathBuf::from("/cache"),
        inactive: "30d".into(),
        max_size: Some("50g".into()),
        tag_ttl: "1m".into(),
        access_log: Some("/logs/registry.log".into()),
        stats_socket: Some("/stats.sock".into()),
        servers: vec![
            RegistryServer {
                listen: "127.0.0.1:5002".into(),
                server_name: Some("localhost".into()),
                team: "team-a".into(),
            },
            RegistryServer {
                listen: "127.0.0.1:5003".into(),
                server_name: None,
                team: String::new(),
            },
        ],
    });
    let text = render(&c);
    assert_eq!(count(&text, "include /conf/registry-frontend.conf;"), 2);
    assert!(text.contains("set $dockgate_registry_team team-a;"));
    assert!(text.contains("set $dockgate_registry_team \"\";"));
    assert!(text.contains("server 127.0.0.1:5000;"));
    assert!(text.contains("keys_zone=dockgate_registry:32m max_size=50g inactive=30d"));
    assert!(text.contains("syslog:server=unix:/stats.sock,nohostname"));
    assert!(!text.contains("load_module"));
}

#[test]
fn the_package_cache_listens_on_its_address_with_the_sidecars_includes() {
    let mut c = NginxConf::new("/conf");
    c.package_cache = Some(crate::PackageCacheServer {
        address: "::1".into(),
        state: "/state".into(),
        cache: "/cache".into(),
        max_size: "2g".into(),
        inactive: "1d".into(),
        origin_cas: "/etc/ssl/certs/ca-certificates.crt".into(),
    });
    let text = render(&c);
    assert!(text.contains("listen [::1]:443 ssl;"));
    assert!(text.contains("include /state/nginx-http.conf;"));
    assert!(text.contains("include /state/nginx-server.conf;"));
    assert!(text.contains("include /conf/package-cache.conf;"));
}

#[test]
fn arguments_are_quoted_only_when_nginx_would_split_them() {
    assert_eq!(quote("/a/b.sock"), "/a/b.sock");
    assert_eq!(quote("a b"), "\"a b\"");
    assert_eq!(quote(""), "\"\"");
    assert_eq!(quote("x;y"), "\"x;y\"");
    assert_eq!(quote("say \"hi\""), "\"say \\\"hi\\\"\"");
}
