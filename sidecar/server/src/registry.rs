//! The registry front-end's serving side: nginx asks `/_dockgate/registry-auth` about every
//! `/v2/` request (the decision itself is `dockgate-registry`'s), mirrors get the
//! `Authorization` their upstream wants, the Docker API gateway's pulls get one-pull
//! credentials, and each cache answer reaches a datagram socket for the metrics.

mod grants;
mod handler;
mod stats;
mod upstream_auth;

pub use grants::{Granted, Grants};
pub use handler::registry_auth;
pub use stats::{listen_stats, RegistryStats};
pub use upstream_auth::UpstreamAuth;

/// What the registry side keeps between requests.
#[derive(Default)]
pub struct RegistryState {
    pub grants: Grants,
    pub upstream_auth: UpstreamAuth,
}
