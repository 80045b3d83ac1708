//! Tenants for the suites: users with a token (the CLI sends it from `HttpHeaders` in its
//! config.json), each in a namespace of its own, removed with everything it made.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::docker::{run_script, Cli, Endpoint, Outcome, Transport};
use crate::nginx::{token_sha256, Flavor, Gateway, GatewayOptions};
use crate::{raw, TempDir};

/// A tenant name of this process's own, so parallel tests never share a namespace.
pub fn tenant_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}x{n}", std::process::id())
}

/// One tenant's user: a token, and a docker CLI configuration that sends it.
pub struct TenantUser {
    pub tenant: String,
    pub token: String,
    pub config: TempDir,
}

impl TenantUser {
    pub fn new(tag: &str) -> TenantUser {
        let tenant = tenant_name(tag);
        let token = format!("token-{tenant}");
        let config = TempDir::new("tenant-cli").unwrap();
        std::fs::write(
            config.path().join("config.json"),
            format!("{{\"HttpHeaders\":{{\"Authorization\":\"Bearer {token}\"}}}}"),
        )
        .unwrap();
        TenantUser {
            tenant,
            token,
            config,
        }
    }

    /// The sidecar configuration for this user and its tenant (`limits`: TOML keys).
    pub fn toml(&self, limits: &str) -> String {
        format!(
            "[tenants.{t}]\n{limits}\n[[users]]\nname = \"user-{t}\"\nrole = \"developer\"\n\
             tenant = \"{t}\"\ntoken_sha256 = [\"{h}\"]\n",
            t = self.tenant,
            h = token_sha256(&self.token)
        )
    }

    pub fn docker(&self, gw: &Gateway, script: &str) -> Outcome {
        self.docker_with(Cli::Current, gw, script)
    }

    /// As [`TenantUser::docker`], with the CLI `cli`.
    pub fn docker_with(&self, cli: Cli, gw: &Gateway, script: &str) -> Outcome {
        let config = self.config.path().display().to_string();
        run_script(
            cli,
            &Endpoint::gateway(gw, Transport::Tcp),
            script,
            &[("DOCKER_CONFIG", &config)],
            None,
        )
    }

    /// The gateway as this user's CLI reaches it.
    pub fn endpoint(&self, gw: &Gateway) -> Endpoint {
        let mut e = Endpoint::gateway(gw, Transport::Tcp);
        e.label = format!("tenant {}", self.tenant);
        e.env.push((
            "DOCKER_CONFIG".into(),
            self.config.path().display().to_string(),
        ));
        e
    }

    pub fn ok(&self, gw: &Gateway, script: &str) -> String {
        let out = self.docker(gw, script);
        assert_eq!(out.code, 0, "{} ran {script}:\n{out}", self.tenant);
        out.stdout.trim().to_string()
    }

    pub fn raw(&self, gw: &Gateway, method: &str, path: &str, body: &str) -> (u16, String) {
        let auth = format!("Authorization: Bearer {}", self.token);
        raw::call_with(&raw::Target::Tcp(gw.port), method, path, &[&auth], body).unwrap()
    }
}

impl Drop for TenantUser {
    /// Removes everything the tenant made, through dockerd's own socket.
    fn drop(&mut self) {
        let label = format!("label=dockgate.tenant={}", self.tenant);
        let prefix = format!("{}.", self.tenant);
        let list = |args: &[&str]| {
            Command::new(Cli::Current.path())
                .args(args)
                .env("DOCKER_HOST", "unix:///var/run/docker.sock")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let rm = |args: &[&str], items: Vec<String>| {
            if !items.is_empty() {
                let mut all: Vec<&str> = args.to_vec();
                all.extend(items.iter().map(String::as_str));
                let _ = list(&all);
            }
        };
        let containers = list(&["ps", "-aq", "--filter", &label]);
        rm(
            &["rm", "-f", "-v"],
            containers.lines().map(str::to_string).collect(),
        );
        let volumes = list(&["volume", "ls", "-q"]);
        rm(
            &["volume", "rm", "-f"],
            volumes
                .lines()
                .filter(|v| v.starts_with(&prefix))
                .map(str::to_string)
                .collect(),
        );
        let networks = list(&["network", "ls", "-q", "--filter", &label]);
        rm(
            &["network", "rm"],
            networks.lines().map(str::to_string).collect(),
        );
        // Images: tagged in the namespace, or built by the tenant (its label).
        let repo = format!("dockgate-{}/", self.tenant);
        let tagged = list(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        let mut images: Vec<String> = tagged
            .lines()
            .filter(|r| r.starts_with(&repo) || r.contains(&format!("/{repo}")))
            .map(str::to_string)
            .collect();
        images.extend(
            list(&["images", "-aq", "--filter", &label])
                .lines()
                .map(str::to_string),
        );
        rm(&["rmi", "-f"], images);
    }
}

pub fn gateway(users: &[(&TenantUser, &str)]) -> Gateway {
    let policy: String = users.iter().map(|(u, limits)| u.toml(limits)).collect();
    Gateway::start_with(GatewayOptions {
        policy: Some(policy),
        ..GatewayOptions::policy(Flavor::Debian)
    })
}
