//! dockgate-tenant: each tenant sees a private Docker on a shared engine. Pure: the engine is
//! reached through the [`engine::Engine`] trait, which the sidecar implements over dockerd's
//! socket and the tests over a table.
//!
//! - [`names`], [`images`]: the mangled forms of names and image references, and who owns an
//!   image;
//! - [`lookup`]: a tenant's reference resolved to the engine's object, or dockerd's "missing";
//! - [`request`]: a request's path and query on the way in; [`body`]: its body;
//! - [`build`]: a classic build's Dockerfile, rewritten into the tenant's namespace;
//! - [`answer`]: dockerd's answers put back into the tenant's names.
#![forbid(unsafe_code)]

pub mod answer;
pub mod body;
pub mod build;
pub mod engine;
pub mod images;
pub mod lookup;
pub mod names;
pub mod request;

/// A tenant, as the configuration gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub name: String,
    pub max_containers: Option<usize>,
    /// Bytes, the sum of the tenant's containers' `--memory`.
    pub max_memory: Option<i64>,
    /// The admin's (plain-named) images this tenant may use: references, prefixes ending
    /// in `*`, or `*` (the default: all of them).
    pub shared_images: Vec<String>,
}
