//! The one decision pipeline: identity (done by the caller), canonical request, endpoint,
//! role, the request model and the policy's rules, then the engine lookups: tenant admission,
//! and for a conservative role the objects the request acts through or borrows from
//! (`reach`).
//! `serve` answers nginx's `auth_request` with [`head`] and checks mediated bodies with
//! [`body`]; `explain` prints what the same two functions return.

use dockgate_decision::config::Config;
use dockgate_decision::decide::{decide, endpoint_of, Allowed, Head, Refusal};
use dockgate_decision::head::{self as staged, Next};
use dockgate_decision::identity::Identity;
use dockgate_policy::gojson::Value;
use dockgate_policy::labels;

use crate::reach;
use crate::tenant::body::rewrite_body;
use crate::tenant::request::admit;
use crate::tenant::Dockerd;

/// The decision on a request head: `auth_request`'s answer. The stages that need no engine
/// are `dockgate_decision::head`'s (nginx's module runs them too); the lookups are here.
pub async fn head(config: &Config, who: &Identity, head: &Head<'_>) -> Result<Allowed, Refusal> {
    let mut next = staged::decide(config, who, head)?;
    // A tenant's references become the engine's, or the request ends as dockerd would end it
    // for a missing object.
    if let Next::Tenant {
        mut allowed,
        tenant,
    } = next
    {
        let admitted = admit(
            &Dockerd(&config.dockerd),
            &tenant,
            allowed.endpoint,
            allowed.param.as_deref(),
            allowed.uri.clone(),
        )
        .await?;
        allowed.uri = admitted.uri;
        allowed.mediated |= admitted.mediate;
        next = staged::after_tenant(config, who, head.method, allowed)?;
    }
    match next {
        Next::Done(allowed) => Ok(allowed),
        Next::Reach {
            allowed,
            target,
            settings,
        } => {
            reach::head(&config.dockerd, settings, allowed.endpoint, &target).await?;
            Ok(allowed)
        }
        Next::Tenant { .. } => unreachable!("after_tenant never asks for the tenant again"),
    }
}

/// The decision on a mediated request with its parsed body, which becomes what dockerd gets
/// (a tenant's names and labels written in): [`check_body`], then [`admit_body`].
pub async fn body(
    config: &Config,
    who: &Identity,
    head: &Head<'_>,
    value: &mut Value,
) -> Result<Allowed, Refusal> {
    let allowed = check_body(config, who, head, value)?;
    admit_body(config, who, allowed, value).await
}

/// The pure part: the body as dockerd reads it, the model and the rules. Linear in the body;
/// the sidecar runs it off the event loop.
pub fn check_body(
    config: &Config,
    who: &Identity,
    head: &Head<'_>,
    value: &mut Value,
) -> Result<Allowed, Refusal> {
    if endpoint_of(head.method, head.uri)
        .is_some_and(|e| e.body == dockgate_api::endpoints::Body::ContainerCreate)
    {
        dockgate_policy::model::hoist_host_config(value);
    }
    decide(config, who, head, Some(value))
}

/// The engine's part: tenant rewriting, bind sources on the host, what the body borrows, and
/// the stamp of the creating role.
pub async fn admit_body(
    config: &Config,
    who: &Identity,
    allowed: Allowed,
    value: &mut Value,
) -> Result<Allowed, Refusal> {
    if let Some(tenant) = config.tenant_of(&who.user) {
        rewrite_body(
            &Dockerd(&config.dockerd),
            &tenant,
            allowed.endpoint.template,
            value,
        )
        .await?;
    }
    if let Some(role) = config.roles.get(&who.role).filter(|r| r.conservative) {
        let settings = config.conservative_for(role);
        // Bind sources resolved on the host, without symlinks inside the allowed trees.
        crate::host_paths::check(settings, allowed.endpoint, value)?;
        reach::body(&config.dockerd, settings, allowed.endpoint, value).await?;
    }
    if let Some(stamp) = &allowed.stamp {
        value
            .object_field("Labels")
            .set_map_key(labels::POLICY, Value::String(stamp.clone()));
    }
    Ok(allowed)
}
