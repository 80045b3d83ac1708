//! dockgate-api: what the Docker Engine API is, as data: its endpoints (method, path template,
//! kind, route, owned resource) and the one canonical form of a request URI that the sidecar
//! approves and nginx forwards. Pure Rust, no I/O, no unsafe code.
//!
//! - [`uri::canonicalize`] turns a raw request target into a [`uri::CanonicalUri`], refusing
//!   what dockerd and a proxy could read differently (dot segments, empty segments, encoded
//!   control bytes, duplicated query keys, absolute-form targets, ...).
//! - [`endpoints::find`] maps a method and a canonical URI to its [`endpoints::Endpoint`]; an
//!   endpoint missing from [`endpoints::ENDPOINTS`] is unknown, and unknown means refused.
#![forbid(unsafe_code)]

pub mod base64;
pub mod endpoints;
pub mod refusal;
pub mod uri;
