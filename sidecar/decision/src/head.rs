//! The decision on a request head, in stages: [`decide`] runs everything that needs no
//! engine and says what, if anything, is left to look up there. nginx's module answers the
//! [`Next::Done`] requests itself and hands the others to the sidecar, which continues from
//! the same stage ([`after_tenant`], then the reach lookup), so both run the same code.

use std::borrow::Cow;

use dockgate_api::endpoints::{self, Endpoint, Kind, Method, Through};
use dockgate_api::uri::CanonicalUri;
use dockgate_policy::labels;
use dockgate_policy::rules::Conservative;
use dockgate_tenant::names::with_label_filter;
use dockgate_tenant::request::set_query;
use dockgate_tenant::Tenant;

use crate::config::Config;
use crate::decide::{self as decision, Allowed, Head, Refusal, Status};
use crate::identity::Identity;
use crate::jobs::JobKey;
use crate::mirror_pull::through_mirror;

/// What is left of a decision once everything that needs no engine is done.
#[derive(Debug)]
pub enum Next<'c> {
    /// Decided: nothing on the engine can change the answer.
    Done(Allowed),
    /// The caller works in a tenant: its references must become the engine's (a lookup of
    /// the tenant's objects), then [`after_tenant`].
    Tenant {
        allowed: Allowed,
        tenant: Cow<'c, Tenant>,
    },
    /// A conservative role acts through an existing object (`target`: a container, exec,
    /// volume or network), which must be looked up and be one the role could have made.
    Reach {
        allowed: Allowed,
        target: String,
        settings: &'c Conservative,
    },
}

impl Next<'_> {
    /// Whether the engine must be asked before the answer is known.
    pub fn needs_engine(&self) -> bool {
        !matches!(self, Next::Done(_))
    }
}

/// Decides on a request head as far as it can without the engine.
pub fn decide<'c>(
    config: &'c Config,
    who: &Identity,
    head: &Head<'_>,
) -> Result<Next<'c>, Refusal> {
    let allowed = decision::decide(config, who, head, None)?;
    match config.tenant_of(&who.user) {
        Some(tenant) => Ok(Next::Tenant { allowed, tenant }),
        None => after_tenant(config, who, head.method, allowed),
    }
}

/// The stages after a tenant's references were resolved (or for a caller in no tenant): a
/// pull of a mirrored registry is mediated, a conservative role's listings and prunes are
/// narrowed to its own objects, and what it acts through is left to look up.
pub fn after_tenant<'c>(
    config: &'c Config,
    who: &Identity,
    method: &str,
    mut allowed: Allowed,
) -> Result<Next<'c>, Refusal> {
    if allowed.endpoint.template == "/images/create" && through_mirror(config, &allowed.uri) {
        allowed.mediated = true;
    }
    // dockerd labels no anonymous volume, so once a CI job's container is gone nothing could
    // find its anonymous volumes again (not the job, not its clean-up): they go with it.
    if JobKey::from_user(&who.user).is_some()
        && allowed.endpoint.method == Method::Delete
        && allowed.endpoint.template == "/containers/{name*}"
    {
        set_query(&mut allowed.uri, "v", "1".into());
    }
    let Some(role) = config.roles.get(&who.role).filter(|r| r.conservative) else {
        return Ok(Next::Done(allowed));
    };
    // Images carry no policy stamp (builds make them); a tenant's image prune is narrowed to
    // the tenant's images already.
    let tenant_images =
        config.tenant_of(&who.user).is_some() && allowed.endpoint.kind == Kind::Image;
    if allowed.endpoint.through == Through::Filter && !tenant_images {
        let filters = with_label_filter(
            allowed.uri.query_value("filters"),
            &format!("{}={}", labels::POLICY, role.name),
        )
        .map_err(|e| Refusal::new(Status::BadRequest, e))?;
        set_query(&mut allowed.uri, "filters", filters);
    }
    // The engine's names, after a tenant's were resolved.
    let param = Method::parse(method)
        .and_then(|m| endpoints::find(m, &allowed.uri))
        .and_then(|m| m.param);
    match reach_target(allowed.endpoint, param.as_deref(), &allowed.uri) {
        Some(target) => Ok(Next::Reach {
            target: target.to_string(),
            allowed,
            settings: config.conservative_for(role),
        }),
        None => Ok(Next::Done(allowed)),
    }
}

/// The existing object `endpoint` acts through, if it does: the path's `{id}`/`{name}`, or
/// the query parameter that names it (a commit's `container`).
pub fn reach_target<'a>(
    endpoint: &Endpoint,
    param: Option<&'a str>,
    uri: &'a CanonicalUri,
) -> Option<&'a str> {
    let target = match endpoint.through {
        Through::Nothing | Through::Filter => return None,
        Through::Path => param,
        Through::Query(key) => uri.query_value(key),
    };
    target.filter(|t| !t.is_empty())
}
