//! Harness for dockgate's end-to-end suites: real nginx (Debian's and nginx.org's), the real
//! dockerd and docker CLIs (the machine's current client and Debian's 20.10), raw API clients.
//!
//! Every test starts its own nginx on free loopback ports and unix sockets in a temp dir and
//! stops it on drop; containers get names unique to the test process.
#![forbid(unsafe_code)]

pub mod docker;
pub mod engine;
pub mod mirrors;
pub mod nginx;
pub mod package_cache;
pub mod raw;
pub mod registry;
pub mod scenarios;
pub mod tenants;

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The repository root (the workspace holding this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// A name unique to this process and call: `dg-<pid>-<n>-<tag>`.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("dg-{}-{n}-{tag}", std::process::id())
}

/// A free TCP port on 127.0.0.1 (free when asked; nginx start-up retries on a clash).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Polls `ready` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory. A name can be taken already: process IDs come round again,
    /// and a process's static directories are never removed.
    pub fn new(tag: &str) -> io::Result<TempDir> {
        loop {
            let dir = std::env::temp_dir().join(unique_name(tag));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(TempDir(dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether this process runs as root (then nginx workers need a `user` line).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `bash -c script` in the repository root, stdin closed, with `env` added: whether it
/// succeeded, and its stdout then stderr.
pub fn bash(script: &str, env: &[(&str, &str)]) -> (bool, String) {
    let out = std::process::Command::new("bash")
        .args(["-c", script])
        .current_dir(repo_root())
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
