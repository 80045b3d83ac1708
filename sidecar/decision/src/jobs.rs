//! CI jobs: a container that a role with `job_socket` creates is a *job*. It gets a Docker
//! socket of its own, and what is done through that socket happens in a namespace of the
//! job's own (a tenant named after the job), as the role `job_socket` names. No I/O: the
//! sidecar opens the sockets, cleans up after jobs, and writes [`JobKey::peer_address`] into
//! the PROXY header of each connection it relays from a job's socket; identity reads it back.
//!
//! A job's key is 96 bits: 32 name the job's role (a hash of its name, so that nginx and the
//! sidecar, reading the configuration apart, agree without numbering roles) and 64 are
//! random. Everything about a job is derived from its key, so the gateway keeps no state:
//! the job container's label [`LABEL`] holds it.

use std::net::Ipv6Addr;

use sha2::{Digest, Sha256};

/// The label on a job container: its key, in hex.
pub const LABEL: &str = dockgate_policy::labels::JOB;

/// Where a job container sees its socket directory (mounted read-only).
pub const SOCKET_DIR: &str = dockgate_policy::rules::JOB_SOCKET_DIR;

/// The path clients use by default, made a symlink to the socket in [`SOCKET_DIR`], so that a
/// socket made again (a sidecar restart) is reached through the same directory mount.
pub const DOCKER_SOCK: &str = "/var/run/docker.sock";

/// The socket's file name in the job's directory.
pub const SOCKET_NAME: &str = "docker.sock";

/// The prefix of user names and tenant names of jobs.
const USER_PREFIX: &str = "job-";
const TENANT_PREFIX: &str = "job";

/// The unique-local /32 whose low 96 bits carry a job's key (see `peer` for unix users').
const ADDRESS_PREFIX: [u16; 2] = [0xfd6a, 0];

/// A job's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobKey {
    /// [`role_tag`] of the job's role.
    pub role_tag: u32,
    pub nonce: u64,
}

/// The 32 bits of a role's name a job key carries.
pub fn role_tag(role: &str) -> u32 {
    let d = Sha256::digest(role.as_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

impl JobKey {
    /// A new key for a job of `role`; `nonce` must be random (it makes the socket's path
    /// unguessable).
    pub fn new(role: &str, nonce: u64) -> JobKey {
        JobKey {
            role_tag: role_tag(role),
            nonce,
        }
    }

    /// 24 lowercase hex digits: the label's value and the socket directory's name.
    pub fn hex(&self) -> String {
        format!("{:08x}{:016x}", self.role_tag, self.nonce)
    }

    pub fn parse_hex(text: &str) -> Option<JobKey> {
        if text.len() != 24 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        Some(JobKey {
            role_tag: u32::from_str_radix(&text[..8], 16).ok()?,
            nonce: u64::from_str_radix(&text[8..], 16).ok()?,
        })
    }

    /// The caller's name in logs and in nginx's `X-Dockgate-User`.
    pub fn user(&self) -> String {
        format!("{USER_PREFIX}{}", self.hex())
    }

    pub fn from_user(user: &str) -> Option<JobKey> {
        JobKey::parse_hex(user.strip_prefix(USER_PREFIX)?)
    }

    /// The job's namespace: a tenant of its own (27 characters of `[a-z0-9]`).
    pub fn tenant(&self) -> String {
        format!("{TENANT_PREFIX}{}", self.hex())
    }

    pub fn from_tenant(tenant: &str) -> Option<JobKey> {
        JobKey::parse_hex(tenant.strip_prefix(TENANT_PREFIX)?)
    }

    /// The PROXY header source address of a connection from this job's socket.
    pub fn peer_address(&self) -> Ipv6Addr {
        let [p0, p1] = ADDRESS_PREFIX;
        let n = self.nonce;
        Ipv6Addr::new(
            p0,
            p1,
            (self.role_tag >> 16) as u16,
            self.role_tag as u16,
            (n >> 48) as u16,
            (n >> 32) as u16,
            (n >> 16) as u16,
            n as u16,
        )
    }

    /// Reads back what [`JobKey::peer_address`] wrote (in any textual form of the address).
    pub fn from_peer_address(text: &str) -> Option<JobKey> {
        let addr: Ipv6Addr = text.trim().parse().ok()?;
        let s = addr.segments().map(u64::from);
        if s[..2] != ADDRESS_PREFIX.map(u64::from) {
            return None;
        }
        Some(JobKey {
            role_tag: (s[2] << 16 | s[3]) as u32,
            nonce: s[4] << 48 | s[5] << 32 | s[6] << 16 | s[7],
        })
    }
}

/// Whether `name` is a name only jobs may have (tenants and users of the configuration may
/// not take it).
pub fn reserved_tenant(name: &str) -> bool {
    JobKey::from_tenant(name).is_some()
}

pub fn reserved_user(name: &str) -> bool {
    name.starts_with(USER_PREFIX)
}

/// When a job's namespace is emptied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// When the job container is removed (the default: a runner removes it when the job
    /// ends, and a stopped job container may be started again).
    Remove,
    /// As soon as the job container stops.
    Stop,
}

/// The `[jobs]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSettings {
    /// The directory holding one directory per running job, with its socket.
    pub dir: std::path::PathBuf,
    /// The relayed listener whose nginx internal socket jobs' connections go to.
    pub listener: String,
    /// nginx's internal listener of that listener.
    pub nginx: std::path::PathBuf,
    pub cleanup: Cleanup,
    /// The admin's images jobs may use (as a tenant's `shared_images`).
    pub shared_images: Vec<String>,
}

impl JobSettings {
    /// The directory a job's socket is in, on the host.
    pub fn job_dir(&self, key: &JobKey) -> std::path::PathBuf {
        self.dir.join(key.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_every_form() {
        for nonce in [0, 1, u64::MAX, 0x0123_4567_89ab_cdef] {
            let key = JobKey::new("ci-job", nonce);
            assert_eq!(JobKey::parse_hex(&key.hex()), Some(key));
            assert_eq!(JobKey::from_user(&key.user()), Some(key));
            assert_eq!(JobKey::from_tenant(&key.tenant()), Some(key));
            let addr = key.peer_address().to_string();
            assert_eq!(JobKey::from_peer_address(&addr), Some(key), "{addr}");
            assert!(dockgate_tenant::names::valid_tenant(&key.tenant()));
        }
    }

    #[test]
    fn other_texts_are_no_keys() {
        for text in ["", "job", "job-", "job-xyz", "fd00::1", "::1", "127.0.0.1"] {
            assert_eq!(JobKey::from_user(text), None);
            assert_eq!(JobKey::from_tenant(text), None);
            assert_eq!(JobKey::from_peer_address(text), None);
        }
        assert_eq!(JobKey::parse_hex("ABCDEF0123456789abcdef01"), None);
        assert_eq!(JobKey::parse_hex("abcdef0123456789abcdef0"), None);
        // Unix users' addresses are not jobs'.
        let unix = crate::peer::peer_address(1000, 1000).to_string();
        assert_eq!(JobKey::from_peer_address(&unix), None);
    }

    #[test]
    fn roles_have_distinct_tags() {
        assert_ne!(role_tag("ci-job"), role_tag("ci-job2"));
        assert_eq!(JobKey::new("r", 7).role_tag, role_tag("r"));
    }
}
