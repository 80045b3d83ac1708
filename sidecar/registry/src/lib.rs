//! dockgate-registry: what the registry front-end decides, as pure functions (no I/O).
//!
//! - [`path`]: the distribution spec's grammar for `/v2/` paths, names, tags and digests.
//! - [`access`]: pull and push rights on repository-name prefixes, the `[registry]` table.
//! - [`mirror`]: other registries served through the front-end's cache under a namespace of
//!   their own (`ghcr/...` for `ghcr.io/...`), with the credentials the sidecar fetches with.
//! - [`upstream`]: an upstream's `WWW-Authenticate` challenge and its token endpoint's answer.
//! - [`decide`]: one request in, an approval (where nginx sends it, what the cache keys it
//!   by) or a registry-shaped refusal out.
//!
//! The server (`dockgate-sidecar`) does the I/O: it asks token endpoints, keeps the tokens
//! and identifies callers.
#![forbid(unsafe_code)]

pub mod access;
pub mod decide;
pub mod mirror;
pub mod path;
pub mod upstream;
