//! The registry front-end's decisions: nginx asks `/_dockgate/registry-auth` about every
//! `/v2/` request (path grammar, identity, pull/push rights on repository prefixes, where to
//! send it), and reports each cache answer to a datagram socket for the metrics.

mod access;
mod decide;
mod handler;
mod path;
mod stats;

pub use access::{RawRegistry, RegistryConfig};
pub use handler::registry_auth;
pub use stats::{listen_stats, RegistryStats};
