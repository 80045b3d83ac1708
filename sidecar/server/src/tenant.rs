//! Tenant namespaces: each tenant sees a private Docker on a shared engine. The rules are in
//! the pure `dockgate-tenant` crate (names, references, admission, answers, Dockerfiles),
//! which reaches the engine through [`Dockerd`]; here are the parts that stream:
//! - [`stream`]: streamed answers rewritten line by line.

use std::future::Future;
use std::path::Path;

use dockgate_tenant::engine::Engine;
pub use dockgate_tenant::{answer, body, build, lookup, request};
use serde_json::Value as Json;

use crate::lookups::get_json;
use dockgate_api::refusal::{Refusal, Status};

pub mod stream;

/// dockerd's socket, as the tenant rules ask it.
pub struct Dockerd<'a>(pub &'a Path);

impl Engine for Dockerd<'_> {
    fn get(&self, path: &str) -> impl Future<Output = Result<(u16, Json), Refusal>> + Send {
        ask(self.0, path)
    }

    fn pulling(&self, reference: &str) -> bool {
        crate::pull::pulling(reference)
    }
}

/// Asks dockerd; a transport failure is the gateway's problem (502), not the tenant's.
pub(crate) async fn ask(dockerd: &Path, path: &str) -> Result<(u16, Json), Refusal> {
    get_json(dockerd, path).await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), path, "asking dockerd failed");
        Refusal::new(
            Status::BadGateway,
            "the Docker engine behind this gateway is unreachable",
        )
    })
}
