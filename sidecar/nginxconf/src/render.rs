//! nginx.conf text from a [`NginxConf`].

use std::fmt::Write as _;
use std::path::Path;

use crate::{ApiServer, DockerApi, Listen, NginxConf, PackageCacheServer, RegistryFrontend};

/// The whole file.
pub fn render(c: &NginxConf) -> String {
    let mut out = String::from("# Written by `dockgate nginx-conf` (sidecar/nginxconf).\n");
    if let Some(module) = &c.module {
        line(&mut out, 0, &format!("load_module {}", path(module)));
    }
    if let Some(user) = &c.user {
        line(&mut out, 0, &format!("user {user}"));
    }
    if !c.daemon {
        line(&mut out, 0, "daemon off");
    }
    line(&mut out, 0, &format!("worker_processes {}", c.workers));
    if let Some(pid) = &c.pid {
        line(&mut out, 0, &format!("pid {}", path(pid)));
    }
    line(&mut out, 0, &format!("error_log {}", c.error_log));
    let _ = writeln!(
        out,
        "events {{ worker_connections {}; }}\nhttp {{",
        c.worker_connections
    );
    out += &indent(&render_http(c), 1);
    out += "}\n";
    out
}

/// What goes inside `http {}`: on its own, a Debian site (`sites-available/`), whose nginx.conf
/// already has the main context.
pub fn render_http(c: &NginxConf) -> String {
    // The Docker API's, the registry's and the package cache's variables together outgrow
    // nginx's default variables hash (1024).
    let mut out = String::from("variables_hash_max_size 2048;\n");
    if let Some(temp) = &c.temp {
        for (directive, dir) in [
            ("client_body_temp_path", "tmp_body"),
            ("proxy_temp_path", "tmp_proxy"),
            ("fastcgi_temp_path", "tmp_fastcgi"),
            ("uwsgi_temp_path", "tmp_uwsgi"),
            ("scgi_temp_path", "tmp_scgi"),
        ] {
            line(
                &mut out,
                0,
                &format!("{directive} {}", path(&temp.join(dir))),
            );
        }
    }
    if let Some(sidecar) = &c.sidecar {
        out += "# The sidecar: decisions for the Docker API and the registry front-end.\n";
        upstream(&mut out, "dockgate_sidecar", sidecar, 16, None);
    }
    if let Some(api) = &c.docker_api {
        docker_api(&mut out, c, api);
    }
    if let Some(registry) = &c.registry {
        registry_frontend(&mut out, c, registry);
    }
    if let Some(cache) = &c.package_cache {
        package_cache(&mut out, c, cache);
    }
    if !c.http_extra.is_empty() {
        out += &c.http_extra;
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn docker_api(out: &mut String, c: &NginxConf, api: &DockerApi) {
    *out += "\n# === the Docker API ===\n";
    include(out, 0, c, "dockgate-http.conf");
    *out += "# Idle connections kept open to dockerd; hijacked streams never return to the pool.\n";
    upstream(
        out,
        "dockerd",
        &format!("unix:{}", api.dockerd.display()),
        32,
        Some("60s"),
    );
    if let Some(policy) = &api.policy {
        *out += "# The sidecar's configuration: nginx decides what needs no engine with it.\n";
        line(out, 0, &format!("dockgate_policy {}", path(policy)));
    }
    line(out, 0, &format!("access_log {}", api.access_log));
    for server in &api.servers {
        api_server(out, c, api, server);
    }
}

fn api_server(out: &mut String, c: &NginxConf, api: &DockerApi, s: &ApiServer) {
    match &s.listen {
        Listen::Relay(_) => *out += "# The sidecar owns the clients' unix socket and relays here with each caller's credentials.\n",
        Listen::Tls { .. } => *out += "# TLS with client certificates.\n",
        _ => {}
    }
    *out += "server {\n";
    match &s.listen {
        Listen::Tcp(addr) => line(out, 1, &format!("listen {addr}")),
        Listen::Unix(p) => line(out, 1, &format!("listen unix:{}", path(p))),
        Listen::Relay(p) => line(out, 1, &format!("listen unix:{} proxy_protocol", path(p))),
        Listen::Tls { addr, files } => {
            line(out, 1, &format!("listen {addr} ssl"));
            line(out, 1, &format!("ssl_certificate {}", path(&files.cert)));
            line(out, 1, &format!("ssl_certificate_key {}", path(&files.key)));
            line(
                out,
                1,
                &format!("ssl_client_certificate {}", path(&files.client_ca)),
            );
            include(out, 1, c, "tls.conf");
        }
    }
    if let Some(name) = &s.listener {
        line(out, 1, &format!("set $dockgate_listener {}", quote(name)));
    }
    include(out, 1, c, "docker-api-common.conf");
    let api_conf = if api.policy.is_some() {
        "docker-api-policy.conf"
    } else {
        "docker-api.conf"
    };
    include(out, 1, c, api_conf);
    *out += "}\n";
}

fn registry_frontend(out: &mut String, c: &NginxConf, r: &RegistryFrontend) {
    *out += "\n# === the registry front-end ===\n";
    include(out, 0, c, "registry-http.conf");
    line(
        out,
        0,
        &format!(
            "proxy_cache_path {} levels=1:2 keys_zone=dockgate_registry:32m{} inactive={} use_temp_path=off",
            path(&r.cache),
            r.max_size
                .as_ref()
                .map(|m| format!(" max_size={m}"))
                .unwrap_or_default(),
            r.inactive
        ),
    );
    upstream(out, "dockgate_registry_hosted", &r.hosted, 16, None);
    upstream(out, "dockgate_registry_upstream", &r.upstream, 16, None);
    for s in &r.servers {
        *out += "server {\n";
        line(out, 1, &format!("listen {}", s.listen));
        if let Some(name) = &s.server_name {
            line(out, 1, &format!("server_name {}", quote(name)));
        }
        line(
            out,
            1,
            &format!("set $dockgate_registry_team {}", quote(&s.team)),
        );
        line(out, 1, &format!("proxy_cache_valid 200 {}", r.tag_ttl));
        if let Some(log) = &r.access_log {
            line(
                out,
                1,
                &format!("access_log {} dockgate_registry", path(log)),
            );
        }
        if let Some(stats) = &r.stats_socket {
            line(
                out,
                1,
                &format!(
                    "access_log syslog:server=unix:{},nohostname dockgate_registry_stats",
                    stats.display()
                ),
            );
        }
        include(out, 1, c, "registry-frontend.conf");
        *out += "}\n";
    }
}

fn package_cache(out: &mut String, c: &NginxConf, p: &PackageCacheServer) {
    *out += "\n# === the package cache ===\n";
    line(
        out,
        0,
        &format!(
            "proxy_cache_path {} levels=1:2 use_temp_path=off keys_zone=dockgate_pkgcache:8m max_size={} inactive={}",
            path(&p.cache),
            p.max_size,
            p.inactive
        ),
    );
    include(out, 0, c, "package-cache-http.conf");
    *out += "# Written by the sidecar: each cached name's rules and origin.\n";
    line(
        out,
        0,
        &format!("include {}", path(&p.state.join("nginx-http.conf"))),
    );
    *out += "server {\n";
    let host = if p.address.contains(':') {
        format!("[{}]", p.address)
    } else {
        p.address.clone()
    };
    line(out, 1, &format!("listen {host}:80"));
    line(out, 1, &format!("listen {host}:443 ssl"));
    line(
        out,
        1,
        &format!("proxy_ssl_trusted_certificate {}", path(&p.origin_cas)),
    );
    *out += "    # Written by the sidecar: the certificate for the cached names, the log.\n";
    line(
        out,
        1,
        &format!("include {}", path(&p.state.join("nginx-server.conf"))),
    );
    include(out, 1, c, "package-cache.conf");
    *out += "}\n";
}

fn upstream(out: &mut String, name: &str, server: &str, keepalive: u32, timeout: Option<&str>) {
    let _ = write!(
        out,
        "upstream {name} {{\n    server {server};\n    keepalive {keepalive};\n"
    );
    if let Some(t) = timeout {
        let _ = writeln!(out, "    keepalive_timeout {t};");
    }
    *out += "}\n";
}

fn include(out: &mut String, depth: usize, c: &NginxConf, name: &str) {
    line(
        out,
        depth,
        &format!("include {}", path(&c.includes.join(name))),
    );
}

fn line(out: &mut String, depth: usize, directive: &str) {
    for _ in 0..depth {
        out.push_str("    ");
    }
    out.push_str(directive);
    out.push_str(";\n");
}

fn indent(text: &str, depth: usize) -> String {
    let pad = "    ".repeat(depth);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("{pad}{l}\n")
            }
        })
        .collect()
}

fn path(p: &Path) -> String {
    quote(&p.display().to_string())
}

/// A directive argument as nginx reads it: as is when it has nothing nginx would split on
/// or interpret, otherwise in double quotes with `"` and `\` escaped.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, ';' | '{' | '}' | '"' | '\'' | '\\' | '#'));
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests;
