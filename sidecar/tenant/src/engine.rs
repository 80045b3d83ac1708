//! The Docker engine, as tenant resolution asks it: `GET` requests, answered with a status
//! and a JSON body. The sidecar implements it over dockerd's socket; tests over a table.

use std::future::Future;

use dockgate_api::refusal::Refusal;
use serde_json::Value as Json;

pub trait Engine: Sync {
    /// `GET path` on the engine. `Err` is the gateway's failure to ask (a 502), not an
    /// answer of dockerd's.
    fn get(&self, path: &str) -> impl Future<Output = Result<(u16, Json), Refusal>> + Send;

    /// Whether a tenant's pull of `reference` is under way: until the gateway has moved it
    /// into that tenant's namespace, the name is not a shared image.
    fn pulling(&self, _reference: &str) -> bool {
        false
    }
}
