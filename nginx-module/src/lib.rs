//! `ngx_http_dockgate_module`: carries Docker's hijacked streams (attach, exec, BuildKit
//! sessions) through stock nginx in full duplex, with TCP half-close in both directions.
//!
//! Unsafe code lives in `ffi` and in the statics of `module` only; [`hijack`], [`tunnel`],
//! [`metrics`] and [`conf`] are plain Rust, unit-tested without nginx. Unit-test builds leave
//! `ffi` and `module` out: they name nginx symbols that only a running nginx resolves.
//!
//! Directives:
//! - `dockgate on|off;` (location, default `off`): switch hijacked upstream answers to
//!   nginx's upgraded relay and keep half-closes.
//! - `dockgate_status;` (location): serve the stream counters in Prometheus text format.
//!
//! Variables: `$dockgate_hijack` (`upgrade`, `raw-stream`, `multiplexed-stream`, or empty) and
//! `$dockgate_half_close` (`to_upstream`, `to_client`, `both`, or empty).

pub mod conf;
pub mod hijack;
pub mod metrics;
pub mod tunnel;

#[cfg(not(test))]
mod ffi;
#[cfg(not(test))]
mod module;

#[cfg(not(test))]
pub use module::ngx_http_dockgate_module;
