//! dockgate-tenant: each tenant sees a private Docker on a shared engine. Pure: the engine is
//! reached through the [`engine::Engine`] trait, which the sidecar implements over dockerd's
//! socket and the tests over a table.
#![forbid(unsafe_code)]

pub mod build;
