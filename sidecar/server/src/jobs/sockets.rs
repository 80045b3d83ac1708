//! The jobs' sockets: `{jobs.dir}/{key}/docker.sock`, one listener each, relayed to nginx's
//! internal listener with the job's address in the PROXY header.
//!
//! The job container mounts the directory, not the socket: a socket made again after a
//! restart is a new file, which a mount of the old one would not see. The directory is mode
//! 0755 and the socket 0666 (the job's processes may run as any user); `jobs.dir` itself is
//! the sidecar's, mode 0700: the host's users cannot reach a job's socket even knowing its
//! key (which any of them can read in a job process's `/proc/PID/mountinfo`), while dockerd
//! (root) mounts the job's directory and the job only ever enters that.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::net::UnixListener;
use tokio::sync::watch;

use dockgate_decision::jobs::{JobKey, JobSettings, SOCKET_NAME};

use super::cleanup::Removed;
use crate::relay::{self, Caller};

/// The open job sockets.
pub struct Jobs {
    pub settings: JobSettings,
    open: Mutex<HashMap<JobKey, Open>>,
    /// Jobs cleaned up after, and what their clean-ups removed.
    pub ended: AtomicU64,
    pub removed: Mutex<Removed>,
}

/// An open socket: how to stop it, since when it is open, and the job container's ID once
/// dockerd made it (the label alone proves nothing: an image's labels come with it).
struct Open {
    stop: watch::Sender<bool>,
    since: Instant,
    container: Option<String>,
}

impl Jobs {
    pub fn new(settings: JobSettings) -> Jobs {
        Jobs {
            settings,
            open: Mutex::new(HashMap::new()),
            ended: AtomicU64::new(0),
            removed: Mutex::new(Removed::default()),
        }
    }

    /// Makes `jobs.dir` (the sidecar's, 0700) and checks that nobody else owns it.
    pub fn prepare(&self) -> anyhow::Result<()> {
        let dir = &self.settings.dir;
        if !dir.exists() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", dir.display()))?;
        let meta = std::fs::metadata(dir)?;
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me {
            bail!(
                "jobs.dir {} must belong to the sidecar's user (uid {me}), not uid {}",
                dir.display(),
                meta.uid()
            );
        }
        Ok(())
    }

    /// Opens (or opens again) the socket of job `key`; returns its directory.
    pub fn open(&self, key: JobKey) -> anyhow::Result<PathBuf> {
        self.open_for(key, None)
    }

    /// As [`Jobs::open`], for the job container `container` (when it is known).
    pub fn open_for(&self, key: JobKey, container: Option<String>) -> anyhow::Result<PathBuf> {
        let dir = self.settings.job_dir(&key);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        let socket = dir.join(SOCKET_NAME);
        // A socket file a stopped sidecar left has no listener behind it.
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket)
            .with_context(|| format!("listen on {}", socket.display()))?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
        let (stop, stopped) = watch::channel(false);
        let open = Open {
            stop,
            since: Instant::now(),
            container,
        };
        if let Some(old) = self.lock().insert(key, open) {
            let _ = old.stop.send(true);
        }
        tokio::spawn(relay::serve(
            key.user(),
            listener,
            self.settings.nginx.clone(),
            Caller::Job(key),
            stopped,
        ));
        tracing::info!(job = %key.hex(), socket = %socket.display(), "job socket open");
        Ok(dir)
    }

    pub fn is_open(&self, key: &JobKey) -> bool {
        self.lock().contains_key(key)
    }

    /// Records the job container's ID (after its create).
    pub fn set_container(&self, key: &JobKey, id: &str) {
        if let Some(open) = self.lock().get_mut(key) {
            open.container = Some(id.to_string());
        }
    }

    /// The ID of job `key`'s container, if its socket is open and the container made.
    pub fn container_of(&self, key: &JobKey) -> Option<String> {
        self.lock().get(key).and_then(|o| o.container.clone())
    }

    /// Whether the socket was opened less than `age` ago (its container may not exist yet).
    pub fn opened_within(&self, key: &JobKey, age: Duration) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|o| o.since.elapsed() < age)
    }

    /// Stops the job's listener and its connections, and removes its directory.
    pub fn close(&self, key: &JobKey) {
        if let Some(open) = self.lock().remove(key) {
            let _ = open.stop.send(true);
        }
        let dir = self.settings.job_dir(key);
        let _ = std::fs::remove_file(dir.join(SOCKET_NAME));
        let _ = std::fs::remove_dir(&dir);
    }

    /// The keys of the directories in `jobs.dir` (open or left by an earlier run).
    pub fn dirs(&self) -> Vec<JobKey> {
        std::fs::read_dir(&self.settings.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| JobKey::parse_hex(e.file_name().to_str()?))
            .collect()
    }

    /// Counts what a clean-up removed.
    pub fn count_removed(&self, r: &Removed) {
        let mut total = self.removed.lock().unwrap_or_else(|e| e.into_inner());
        total.containers += r.containers;
        total.networks += r.networks;
        total.volumes += r.volumes;
        total.images += r.images;
    }

    /// The jobs' metrics, in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let open = self.lock().len();
        out.push_str("# HELP dockgate_jobs_open CI jobs whose socket is open.\n");
        out.push_str("# TYPE dockgate_jobs_open gauge\n");
        let _ = writeln!(out, "dockgate_jobs_open {open}");
        out.push_str("# HELP dockgate_jobs_ended_total CI jobs whose namespace was emptied.\n");
        out.push_str("# TYPE dockgate_jobs_ended_total counter\n");
        let _ = writeln!(
            out,
            "dockgate_jobs_ended_total {}",
            self.ended.load(Relaxed)
        );
        out.push_str(
            "# HELP dockgate_job_objects_removed_total Objects removed from ended jobs' namespaces.\n",
        );
        out.push_str("# TYPE dockgate_job_objects_removed_total counter\n");
        let r = *self.removed.lock().unwrap_or_else(|e| e.into_inner());
        for (kind, n) in [
            ("container", r.containers),
            ("network", r.networks),
            ("volume", r.volumes),
            ("image", r.images),
        ] {
            let _ = writeln!(
                out,
                "dockgate_job_objects_removed_total{{kind=\"{kind}\"}} {n}"
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobKey, Open>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// 64 random bits, for a new job's key.
pub fn nonce() -> anyhow::Result<u64> {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("read /dev/urandom")?;
    Ok(u64::from_ne_bytes(bytes))
}
