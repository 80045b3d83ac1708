//! Unix-socket listeners the sidecar owns, so that callers are identified by their unix
//! credentials (SO_PEERCRED), which nginx cannot read on its own.
//!
//! For each connection the sidecar reads the caller's uid and gid, connects to nginx's
//! internal listener (`listen unix:PATH proxy_protocol;`) and writes a PROXY protocol v1
//! header whose source address carries them, then relays bytes both ways, half-closes
//! included. nginx hands the address to the auth subrequest as `$proxy_protocol_addr`, and
//! [`parse_peer_address`] reads it back.
//!
//! Trust rests on one fact, checked at start-up: the internal listener's directory is
//! reachable by the sidecar's user only, so no one else can connect there and write a
//! header of their own. A header a client sends on the public socket arrives after the
//! sidecar's, where nginx reads it as a (malformed) request line.

use std::io;
use std::net::Ipv6Addr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tokio::io::{copy_bidirectional_with_sizes, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use dockgate_decision::config::Relay;
use dockgate_decision::jobs::JobKey;
use dockgate_decision::peer::{peer_address, PeerAddress};

/// Relay buffer per direction: large enough that bulk streams move in few syscalls.
const RELAY_BUFFER: usize = 64 * 1024;

/// The PROXY protocol v1 header for one relayed connection from `source` (a unix user's
/// or a job's address). The source port is the sidecar's connection number (modulo 2^16),
/// to match nginx's logs with the sidecar's.
pub fn proxy_header(source: Ipv6Addr, connection: u64) -> String {
    format!("PROXY TCP6 {source} ::1 {} 0\r\n", connection % 65536)
}

/// Binds the public socket of `relay` and checks the internal listener's directory.
/// `docker_socket` gives the socket's group when the config names none.
pub fn bind(name: &str, relay: &Relay, docker_socket: &Path) -> anyhow::Result<UnixListener> {
    let internal_dir = relay
        .nginx
        .parent()
        .context("the internal listener has no directory")?;
    private_dir(internal_dir).with_context(|| format!("listener {name}"))?;
    let _ = std::fs::remove_file(&relay.socket);
    if let Some(dir) = relay.socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let listener = UnixListener::bind(&relay.socket)
        .with_context(|| format!("listen on {}", relay.socket.display()))?;
    std::fs::set_permissions(&relay.socket, std::fs::Permissions::from_mode(relay.mode))?;
    match &relay.group {
        Some(group) => {
            let gid = nix::unistd::Group::from_name(group)?
                .with_context(|| format!("listener {name}: no group named {group:?}"))?
                .gid;
            std::os::unix::fs::chown(&relay.socket, None, Some(gid.as_raw()))
                .with_context(|| format!("give {} to group {group}", relay.socket.display()))?;
        }
        None => {
            if let Ok(meta) = std::fs::metadata(docker_socket) {
                // Best effort, as for dockerd's own socket group.
                let _ = std::os::unix::fs::chown(&relay.socket, None, Some(meta.gid()));
            }
        }
    }
    Ok(listener)
}

/// Makes sure `dir` exists and that only this process's user can enter it.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let meta = std::fs::metadata(dir)?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me || meta.mode() & 0o077 != 0 {
        bail!(
            "{} holds nginx's internal listener, so it must belong to the sidecar's user \
             (uid {me}) with mode 0700; it is uid {} mode {:o}, which would let other \
             users connect there and claim any identity",
            dir.display(),
            meta.uid(),
            meta.mode() & 0o7777
        );
    }
    Ok(())
}

/// Who the relay says each connection is from: its unix credentials, or a CI job (every
/// connection on a job's socket is the job's).
#[derive(Clone, Copy, Debug)]
pub enum Caller {
    PeerCredentials,
    Job(JobKey),
}

/// Accepts on `listener` until `stop` turns true, relaying each connection to nginx's internal
/// listener; connections in flight end when it does too.
pub async fn serve(
    name: String,
    listener: UnixListener,
    nginx: PathBuf,
    caller: Caller,
    mut stop: watch::Receiver<bool>,
) {
    let mut connection = 0u64;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let client = match accepted {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::warn!(listener = %name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        connection += 1;
        let (name, nginx, mut stop) = (name.clone(), nginx.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                r = relay(&name, client, &nginx, caller, connection) => {
                    if let Err(e) = r {
                        tracing::debug!(listener = %name, connection, error = %e, "relay ended");
                    }
                }
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
}

async fn relay(
    name: &str,
    mut client: UnixStream,
    nginx: &Path,
    caller: Caller,
    n: u64,
) -> io::Result<()> {
    let header = match caller {
        Caller::PeerCredentials => {
            let cred = client.peer_cred()?;
            let peer = PeerAddress {
                uid: cred.uid(),
                gid: cred.gid(),
            };
            tracing::debug!(listener = name, connection = n, uid = peer.uid, gid = peer.gid,
                pid = ?cred.pid(), "relaying to nginx");
            proxy_header(peer_address(peer.uid, peer.gid), n)
        }
        Caller::Job(key) => proxy_header(key.peer_address(), n),
    };
    let mut upstream = match UnixStream::connect(nginx).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(listener = name, internal = %nginx.display(), error = %e,
                "nginx's internal listener is unreachable");
            client.write_all(unavailable().as_bytes()).await?;
            return client.shutdown().await;
        }
    };
    upstream.write_all(header.as_bytes()).await?;
    copy_bidirectional_with_sizes(&mut client, &mut upstream, RELAY_BUFFER, RELAY_BUFFER).await?;
    Ok(())
}

/// The answer when nginx is not listening behind the sidecar: Docker-shaped, fail closed.
fn unavailable() -> String {
    let body = "{\"message\":\"dockgate: the gateway's nginx is not running behind this \
                socket (see the sidecar's log)\"}\n";
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockgate_decision::peer::parse_peer_address;

    #[test]
    fn credentials_survive_the_proxy_header() {
        for (uid, gid) in [
            (0, 0),
            (1000, 1000),
            (65534, 65534),
            (u32::MAX, 7),
            (70000, 1),
        ] {
            let header = proxy_header(peer_address(uid, gid), 1);
            let addr = header.split(' ').nth(2).unwrap();
            assert_eq!(parse_peer_address(addr), Some(PeerAddress { uid, gid }));
        }
    }

    #[test]
    fn the_header_is_what_nginx_parses() {
        let h = proxy_header(peer_address(1000, 100), 65537);
        assert_eq!(h, "PROXY TCP6 fd00::3e8:0:64 ::1 1 0\r\n");
        assert!(h.len() <= 107, "PROXY v1 headers are at most 107 bytes");
    }
}
