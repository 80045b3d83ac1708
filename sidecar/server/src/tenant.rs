//! Tenant namespaces: each tenant sees a private Docker on a shared engine.
//!
//! The gateway keeps no state: a tenant's containers, networks and volumes carry the
//! tenant in their engine names (`alpha.web`) and in the `dockgate.tenant` label, so every
//! sidecar in front of the engine, restarted or not, sees the same owners.
//! - [`names`]: the mangled forms (pure);
//! - [`lookup`]: the tenant's objects found on the engine by the tenant's references;
//! - [`request`]: URIs and bodies on the way in;
//! - [`answer`]: answers on the way out (pure).

pub mod answer;
pub mod build;
pub mod images;
pub mod lookup;
pub mod names;
pub mod pull;
pub mod request;
pub mod stream;
