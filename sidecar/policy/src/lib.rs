//! dockgate-policy: reads Docker API request bodies exactly as dockerd's Go decoder does, and
//! decides with small, named rules whether they ask for privileges. Pure Rust: no I/O, no
//! unsafe code; enforcement (answering, forwarding) lives in the sidecar.
//!
//! - [`gojson`] parses JSON keeping every object member in order and finds fields the way
//!   Go's `encoding/json` does (case-insensitive, with Unicode folds), refusing bodies whose
//!   members two decoders could resolve differently.
//! - [`rules`] holds one rule per file; [`conservative`] runs those that refuse escapes to the
//!   host.
//! - [`inject`] writes the operator's settings (labels, limits, logging, ...) into creates.
//! - [`package_cache`] points creates at the gateway's package cache (hosts, CA bundle).
#![forbid(unsafe_code)]

pub mod context;
pub mod dockerfile;
pub mod gojson;
pub mod inject;
pub mod labels;
pub mod model;
pub mod package_cache;
pub mod reach;
pub mod rules;

pub use rules::{conservative, Refusal, Request};
