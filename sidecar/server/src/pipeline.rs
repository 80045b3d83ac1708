//! The one decision pipeline: identity (done by the caller), canonical request, endpoint,
//! role, the request model and the policy's rules, then tenant admission against the engine.
//! `serve` answers nginx's `auth_request` with [`head`] and checks mediated bodies with
//! [`body`]; `explain` prints what the same two functions return.

use dockgate_policy::gojson::Value;

use crate::config::Config;
use crate::decision::{decide, Allowed, Head, Identity, Refusal};
use crate::tenant::request::{admit, rewrite_body};

/// The decision on a request head: `auth_request`'s answer.
pub async fn head(config: &Config, who: &Identity, head: &Head<'_>) -> Result<Allowed, Refusal> {
    let mut allowed = decide(config, who, head, None)?;
    // A tenant's references become the engine's, or the request ends as dockerd would end it
    // for a missing object.
    if let Some(tenant) = config.tenant_of(&who.user) {
        let admitted = admit(
            &config.dockerd,
            tenant,
            allowed.endpoint,
            allowed.param.as_deref(),
            allowed.uri.clone(),
        )
        .await?;
        allowed.uri = admitted.uri;
        allowed.mediated |= admitted.mediate;
    }
    Ok(allowed)
}

/// The decision on a mediated request with its parsed body, which becomes what dockerd gets
/// (a tenant's names and labels written in).
pub async fn body(
    config: &Config,
    who: &Identity,
    head: &Head<'_>,
    value: &mut Value,
) -> Result<Allowed, Refusal> {
    let allowed = decide(config, who, head, Some(value))?;
    if let Some(tenant) = config.tenant_of(&who.user) {
        rewrite_body(&config.dockerd, tenant, allowed.endpoint.template, value).await?;
    }
    Ok(allowed)
}
