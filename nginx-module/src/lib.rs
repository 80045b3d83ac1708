//! `ngx_http_dockgate_module`: carries Docker's hijacked streams (attach, exec, BuildKit
//! sessions) through stock nginx in full duplex, with TCP half-close in both directions.
//!
//! Unsafe code lives in `ffi` and in the statics of `module` only; [`hijack`], [`tunnel`],
//! [`metrics`] and [`conf`] are plain Rust, unit-tested without nginx. Unit-test builds leave
//! `ffi` and `module` out: they name nginx symbols that only a running nginx resolves.
//! [`decide`] is the worker's decision, by the sidecar's own code (`dockgate-decision`).
//!
//! Directives:
//! - `dockgate on|off;` (location, default `off`): switch hijacked upstream answers to
//!   nginx's upgraded relay and keep half-closes.
//! - `dockgate_status;` (location): serve the stream counters in Prometheus text format.
//! - `dockgate_policy FILE;` (http): the gateway's configuration (the sidecar's TOML), read
//!   whenever nginx loads its configuration.
//! - `dockgate_decide @name|off;` (location): decide each request in the worker with
//!   `dockgate-decision`; what needs the engine goes to the named location (the sidecar).
//!
//! Variables: `$dockgate_hijack` (`upgrade`, `raw-stream`, `multiplexed-stream`, or empty),
//! `$dockgate_half_close` (`to_upstream`, `to_client`, `both`, or empty), and the decision's:
//! `$dockgate_uri`, `$dockgate_upstream`, `$dockgate_user`, `$dockgate_role`,
//! `$dockgate_status`, `$dockgate_error`, `$dockgate_decision` (`nginx`, `sidecar` or empty);
//! `$dockgate_listener` is read (each server `set`s it).

pub mod conf;
pub mod decide;
pub mod hijack;
pub mod metrics;
pub mod tunnel;

#[cfg(not(test))]
mod ffi;
#[cfg(not(test))]
mod module;

#[cfg(not(test))]
pub use module::ngx_http_dockgate_module;
