//! One-pull credentials: what the Docker API gateway hands dockerd for a pull through a
//! mirror, so the front-end decides with the real user's rights. A grant names the user and
//! the one repository it pulls; it lives while the gateway's pull runs (at most an hour),
//! in this process only.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dockgate_registry::decide::Caller;

/// The longest a grant may live (a pull that takes longer fails its remaining requests).
const LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub struct Grants {
    live: Arc<Mutex<HashMap<String, Grant>>>,
}

struct Grant {
    user: String,
    anonymous: bool,
    tenant: Option<String>,
    repository: String,
    expires: Instant,
}

/// A grant for as long as it lives: dropped, it is revoked.
pub struct Granted {
    pub secret: String,
    live: Arc<Mutex<HashMap<String, Grant>>>,
}

impl Drop for Granted {
    fn drop(&mut self) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(&self.secret);
        }
    }
}

fn random_secret() -> std::io::Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!(
        "dockgate-pull-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

impl Grants {
    /// A credential with which `user` pulls `repository` (front-end name) only; `anonymous`:
    /// the user is not one of `[[users]]` (the gateway's anonymous access).
    pub fn grant(
        &self,
        user: &str,
        anonymous: bool,
        tenant: Option<&str>,
        repository: &str,
    ) -> std::io::Result<Granted> {
        let secret = random_secret()?;
        let now = Instant::now();
        let mut live = self
            .live
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        live.retain(|_, g| g.expires > now);
        live.insert(
            secret.clone(),
            Grant {
                user: user.to_string(),
                anonymous,
                tenant: tenant.map(str::to_string),
                repository: repository.to_string(),
                expires: now + LIFETIME,
            },
        );
        Ok(Granted {
            secret,
            live: self.live.clone(),
        })
    }

    /// The caller a live grant is.
    pub fn caller(&self, user: &str, secret: &str) -> Option<Caller> {
        if !secret.starts_with("dockgate-pull-") {
            return None;
        }
        let live = self.live.lock().ok()?;
        let g = live.get(secret)?;
        (g.user == user && g.expires > Instant::now()).then(|| Caller {
            name: g.user.clone(),
            tenant: g.tenant.clone(),
            only: Some(g.repository.clone()),
            anonymous: g.anonymous,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_is_its_user_and_repository_while_it_lives() {
        let grants = Grants::default();
        let g = grants
            .grant("alice", false, Some("alpha"), "hub/library/busybox")
            .unwrap();
        let c = grants.caller("alice", &g.secret).unwrap();
        assert_eq!(c.only.as_deref(), Some("hub/library/busybox"));
        assert_eq!(c.tenant.as_deref(), Some("alpha"));
        assert_eq!(grants.caller("bob", &g.secret), None, "another user's name");
        assert_eq!(grants.caller("alice", "dockgate-pull-00"), None);
        let secret = g.secret.clone();
        drop(g);
        assert_eq!(
            grants.caller("alice", &secret),
            None,
            "revoked when dropped"
        );
    }
}
