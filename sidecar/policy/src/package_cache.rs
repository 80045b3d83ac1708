//! The `package-cache` policy: a container create is pointed at the gateway's package cache.
//! Each cached hostname resolves to the cache listener (`ExtraHosts`), the cache's CA bundle
//! (system CAs + the sidecar's short-lived CAs) is bound read-only over the usual bundle
//! paths, and the environment variables of tools with their own trust store point at it.
//!
//! A create whose labels hold `opt_out_label` = `off` gets none of this. The bind is added
//! after the conservative rules ran, from the operator's configuration only: the request
//! chooses neither its source nor its targets, and a request that mounts something of its own
//! at one of those targets is refused by dockerd ("Duplicate mount point").

use std::path::PathBuf;
use std::time::Duration;

use crate::gojson::Value;

/// The cache's certificate authority, as configured: where it lives, how long each
/// generation does, and the names its server certificate covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaSettings {
    pub dir: PathBuf,
    pub lifetime: Duration,
    /// The names the server certificate covers (and the CA is constrained to).
    pub hosts: Vec<String>,
    /// The system's CA bundle, prepended to `bundle.pem` (missing: only our CAs).
    pub system_bundle: PathBuf,
}

/// Where images keep their CA bundle (Debian/Ubuntu/Alpine, Fedora/RHEL, SUSE, others).
pub const BUNDLE_TARGETS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Variables read by tools that do not use the system bundle (or may not).
pub const BUNDLE_ENV: &[&str] = &[
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "AWS_CA_BUNDLE",
    "CARGO_HTTP_CAINFO",
];

/// The `package-cache` settings the sidecar derives from `[package_cache]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageCache {
    /// Cached hostnames.
    pub hosts: Vec<String>,
    /// The address the cache listens on (what the names resolve to in containers).
    pub address: String,
    /// The bundle file on the host (the sidecar keeps it current).
    pub bundle: String,
    /// Label key; the value `off` opts a create out.
    pub opt_out_label: String,
}

fn string(s: &str) -> Value {
    Value::String(s.to_string())
}

/// Whether the create asks not to use the cache.
pub fn opted_out(body: &Value, pc: &PackageCache) -> bool {
    body.field("Labels")
        .map(|l| {
            l.members()
                .iter()
                .any(|(k, v)| k == &pc.opt_out_label && v.as_str() == Some("off"))
        })
        .unwrap_or(false)
}

/// Applies the policy to a `containers/create` body. Returns false when the create opted
/// out (the body is then unchanged).
pub fn inject(body: &mut Value, pc: &PackageCache) -> bool {
    if opted_out(body, pc) {
        return false;
    }
    let target = BUNDLE_TARGETS[0];
    let mut env: Vec<Value> = body
        .field("Env")
        .map(|e| e.items().to_vec())
        .unwrap_or_default();
    for key in BUNDLE_ENV {
        env.retain(|e| {
            e.as_str()
                .map_or(true, |s| s.split('=').next() != Some(key))
        });
        env.push(string(&format!("{key}={target}")));
    }
    body.set_field("Env", Value::Array(env));

    let host = body.object_field("HostConfig");
    let mut hosts: Vec<Value> = host
        .field("ExtraHosts")
        .map(|v| v.items().to_vec())
        .unwrap_or_default();
    for name in &pc.hosts {
        // The request's own entry for a cached name would shadow ours in /etc/hosts order.
        hosts.retain(|h| {
            h.as_str()
                .and_then(|s| s.split_once(':'))
                .map_or(true, |(n, _)| !n.eq_ignore_ascii_case(name))
        });
        hosts.push(string(&format!("{name}:{}", pc.address)));
    }
    host.set_field("ExtraHosts", Value::Array(hosts));

    let mut binds: Vec<Value> = host
        .field("Binds")
        .map(|v| v.items().to_vec())
        .unwrap_or_default();
    for t in BUNDLE_TARGETS {
        binds.push(string(&format!("{}:{t}:ro", pc.bundle)));
    }
    host.set_field("Binds", Value::Array(binds));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gojson::parse;

    fn pc() -> PackageCache {
        PackageCache {
            hosts: vec!["deb.test".into(), "pypi.test".into()],
            address: "127.0.0.9".into(),
            bundle: "/var/lib/dockgate/package-cache/bundle.pem".into(),
            opt_out_label: "dockgate.package-cache".into(),
        }
    }

    fn injected(json: &str) -> (bool, Value) {
        let mut v = parse(json.as_bytes()).unwrap();
        v.validate().unwrap();
        let applied = inject(&mut v, &pc());
        let again = parse(v.to_json().as_bytes()).unwrap();
        again.validate().unwrap();
        (applied, again)
    }

    fn strs(v: Option<&Value>) -> Vec<String> {
        v.map(|v| {
            v.items()
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
    }

    #[test]
    fn hosts_binds_and_env_are_added() {
        let (applied, v) = injected(
            r#"{"Image":"debian","Env":["PIP_CERT=/mine","A=1"],
                "HostConfig":{"ExtraHosts":["DEB.test:6.6.6.6","other:1.2.3.4"],"Binds":["/srv/x:/x"]}}"#,
        );
        assert!(applied);
        assert_eq!(
            strs(v.path(&["HostConfig", "ExtraHosts"])),
            ["other:1.2.3.4", "deb.test:127.0.0.9", "pypi.test:127.0.0.9"]
        );
        let binds = strs(v.path(&["HostConfig", "Binds"]));
        assert_eq!(binds[0], "/srv/x:/x");
        assert_eq!(binds.len(), 1 + BUNDLE_TARGETS.len());
        assert!(binds[1..]
            .iter()
            .all(|b| b.starts_with(&pc().bundle) && b.ends_with(":ro")));
        let env = strs(v.field("Env"));
        assert!(env.contains(&"A=1".to_string()));
        assert!(env.contains(&"PIP_CERT=/etc/ssl/certs/ca-certificates.crt".to_string()));
        assert!(!env.contains(&"PIP_CERT=/mine".to_string()));
        assert_eq!(env.len(), 1 + BUNDLE_ENV.len());
    }

    #[test]
    fn a_bare_create_gets_a_host_config() {
        let (_, v) = injected(r#"{"Image":"debian"}"#);
        assert_eq!(strs(v.path(&["HostConfig", "ExtraHosts"])).len(), 2);
    }

    #[test]
    fn the_opt_out_label_leaves_the_body_alone() {
        let body = r#"{"Image":"debian","Labels":{"dockgate.package-cache":"off"}}"#;
        let (applied, v) = injected(body);
        assert!(!applied);
        assert!(v.field("HostConfig").is_none());
        // Any other value does not opt out.
        let (applied, _) = injected(r#"{"Image":"d","Labels":{"dockgate.package-cache":"no"}}"#);
        assert!(applied);
    }
}
