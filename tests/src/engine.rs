//! A private dockerd (own data root, exec root, pidfile and socket) for tests that stop or
//! restart the engine without disturbing the system dockerd other tests share.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::nginx::{http_get_unix, stop_within};
use crate::{repo_root, wait_until, TempDir};

pub struct PrivateDockerd {
    dir: TempDir,
    pub socket: PathBuf,
    child: Option<Child>,
}

impl PrivateDockerd {
    /// Starts it and imports the test image into it.
    pub fn start() -> PrivateDockerd {
        // Short paths: containerd's sockets live under the exec root (108-byte limit).
        let dir = TempDir::new("dd").expect("dockerd dir");
        let mut d = PrivateDockerd {
            socket: dir.path().join("docker.sock"),
            dir,
            child: None,
        };
        d.run();
        let status = Command::new(repo_root().join("scripts/test-images.sh"))
            .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .status()
            .expect("test-images.sh");
        assert!(status.success(), "importing the test image failed");
        d
    }

    fn run(&mut self) {
        let p = self.dir.path();
        let log = File::create(p.join("dockerd.log")).expect("dockerd log");
        let child = Command::new("dockerd")
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("x"))
            .arg("--pidfile")
            .arg(p.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", self.socket.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        self.child = Some(child);
        let up = wait_until(Duration::from_secs(60), || {
            http_get_unix(&self.socket, "/_ping").starts_with("HTTP/1.1 200")
        });
        assert!(up, "private dockerd did not start:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Stops it (SIGTERM, as an init system would) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_within(child, Duration::from_secs(30));
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    pub fn socket_str(&self) -> String {
        self.socket.display().to_string()
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        // Remove containers first so their mounts are gone before the data root is deleted.
        if self.child.is_some() {
            let _ = Command::new("sh")
                .arg("-c")
                .arg("ids=$(docker ps -aq); [ -z \"$ids\" ] || docker rm -f $ids >/dev/null")
                .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
                .status();
        }
        self.stop();
    }
}
