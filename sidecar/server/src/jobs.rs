//! CI jobs (`job_socket` roles): each container such a role creates gets a Docker socket of
//! its own, in a namespace of its own that is emptied when the container goes. The keys,
//! names and identity rules are `dockgate_decision::jobs`'; here is what does I/O:
//!
//! - [`sockets`]: the per-job listeners, relayed to nginx as the job;
//! - [`create`]: a job container's create: its socket mounted, its label, the symlink at
//!   `/var/run/docker.sock`;
//! - [`binds`]: a job's `-v /path/in/the/job:/target`, made a mount of the job's volume;
//! - [`cleanup`]: a job's namespace emptied;
//! - [`watch`]: dockerd's events and a periodic look at the engine, so that sockets are made
//!   again after a restart and jobs that ended meanwhile are cleaned up (no state is kept:
//!   the job container's label is the bookkeeping).

pub mod binds;
pub mod cleanup;
pub mod create;
pub mod sockets;
mod tar;
pub mod watch;

pub use sockets::Jobs;
