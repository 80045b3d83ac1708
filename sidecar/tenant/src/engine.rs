//! The Docker engine, as tenant resolution asks it: `GET` requests, answered with a status
//! and a JSON body. The sidecar implements it over dockerd's socket; tests over a table.

use std::future::Future;

use dockgate_api::refusal::Refusal;
use serde_json::Value as Json;

pub trait Engine: Sync {
    /// `GET path` on the engine. `Err` is the gateway's failure to ask (a 502), not an
    /// answer of dockerd's.
    fn get(&self, path: &str) -> impl Future<Output = Result<(u16, Json), Refusal>> + Send;
}
