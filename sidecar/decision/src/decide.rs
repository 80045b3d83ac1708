//! What a caller may do: the decision on one request, from its head and (on the mediated
//! route) its parsed body. No I/O.

use dockgate_api::endpoints::{self, Body, Endpoint, Method, Route};
use dockgate_api::uri::{canonicalize, CanonicalUri, Version};
use dockgate_policy::gojson::Value;
use dockgate_policy::rules::{conservative, Request};

use crate::config::{Config, Role};
use crate::identity::Identity;

pub use dockgate_api::refusal::{Refusal, Status};

/// An allowed request: where nginx sends it, and with which URI.
#[derive(Debug)]
pub struct Allowed {
    pub uri: CanonicalUri,
    pub endpoint: &'static Endpoint,
    /// The endpoint's `{id}`/`{name*}` value.
    pub param: Option<String>,
    /// Through the sidecar (which reads the body) rather than straight to dockerd.
    pub mediated: bool,
    /// The `[policy.inject]` settings go into this request's body (a create by an `inject`
    /// role).
    pub inject: bool,
    /// The package cache is injected into this request's body (a create by a `package-cache`
    /// role).
    pub package_cache: bool,
    /// The `dockgate.policy` label this create gets (the conservative role that made it), so
    /// that the role's prunes can be narrowed to its own objects.
    pub stamp: Option<String>,
}

/// The upstream block (`nginx-conf/`) a mediated request goes to: the sidecar.
pub const SIDECAR_UPSTREAM: &str = "dockgate_sidecar";
/// The upstream block of everything else: dockerd's socket.
pub const DOCKERD_UPSTREAM: &str = "dockerd";

impl Allowed {
    /// The nginx upstream block that carries this request.
    pub fn upstream(&self) -> &'static str {
        if self.mediated {
            SIDECAR_UPSTREAM
        } else {
            DOCKERD_UPSTREAM
        }
    }
}

/// The head of a request as dockerd will read it: what the decision needs besides the URI.
#[derive(Clone, Copy, Debug, Default)]
pub struct Head<'a> {
    pub method: &'a str,
    /// The raw request target (nginx's `$request_uri`).
    pub uri: &'a str,
    /// The client's `Content-Type` (the first, as both nginx and Go read it).
    pub content_type: Option<&'a str>,
    /// The client sent a body (a `Content-Length` above 0, or chunked).
    pub has_body: bool,
}

/// A BuildKit build, or its session and gRPC streams.
fn buildkit(endpoint: &Endpoint, uri: &CanonicalUri) -> bool {
    match endpoint.body {
        Body::BuildContext => uri.query_value("version") == Some("2"),
        _ => matches!(endpoint.template, "/session" | "/grpc"),
    }
}

/// The endpoint a method and raw URI are for, if the table has it.
pub fn endpoint_of(method: &str, raw_uri: &str) -> Option<&'static Endpoint> {
    let uri = canonicalize(raw_uri).ok()?;
    endpoints::find(Method::parse(method)?, &uri).map(|m| m.endpoint)
}

/// Below this API version dockerd reads a host config from a start body.
const START_BODY_VERSION: Version = Version {
    major: 1,
    minor: 24,
};

/// Decides on a request. `body` is `None` when deciding from the head alone (nginx's
/// `auth_request`), and the parsed body on the mediated route.
pub fn decide(
    config: &Config,
    who: &Identity,
    head: &Head<'_>,
    body: Option<&Value>,
) -> Result<Allowed, Refusal> {
    let method = head.method;
    let uri =
        canonicalize(head.uri).map_err(|e| Refusal::new(Status::BadRequest, e.to_string()))?;
    let found = Method::parse(method).and_then(|m| endpoints::find(m, &uri));
    let Some(found) = found else {
        return Err(Refusal::new(
            Status::Forbidden,
            format!(
                "{method} {} is not an allowed Docker API endpoint",
                uri.path()
            ),
        ));
    };
    let endpoint = found.endpoint;
    let Some(role) = config.roles.get(&who.role) else {
        return Err(Refusal::new(
            Status::Forbidden,
            format!("role {:?} is not configured", who.role),
        ));
    };
    if !role.kinds.contains(&endpoint.kind) {
        return Err(Refusal::new(
            Status::Forbidden,
            format!(
                "role {} may not use {} endpoints ({method} {})",
                role.name,
                endpoint.kind.as_str(),
                endpoint.template
            ),
        ));
    }
    read_one_way(endpoint, &uri, head)?;
    if !role.buildkit && buildkit(endpoint, &uri) {
        return Err(Refusal::new(
            Status::Forbidden,
            format!(
                "role {} may not use BuildKit (its Dockerfile travels in the build's session, \
                 which the gateway cannot read): build with DOCKER_BUILDKIT=0",
                role.name
            ),
        ));
    }
    // A conservative role's classic builds go through the sidecar too, which reads the
    // Dockerfile in the context as it streams past.
    let classic_build = endpoint.body == Body::BuildContext
        && role.conservative
        && uri.query_value("version") != Some("2");
    let mediated = (endpoint.route == Route::Mediated || classic_build) && role_reads_bodies(role);
    let null = Value::Null;
    // Query rules apply from the head (the body is then `null`: nothing to refuse in it);
    // body rules once the body is there.
    if role.conservative {
        let req = Request {
            endpoint,
            uri: &uri,
            body: body.unwrap_or(&null),
        };
        let settings = config.conservative_for(role);
        conservative(&req, settings).map_err(|r| Refusal {
            status: Status::Forbidden,
            message: format!("dockgate: {}", r.message),
            rule: Some(r.rule),
        })?;
    }
    Ok(Allowed {
        uri,
        endpoint,
        param: found.param,
        mediated,
        inject: role.inject && endpoint.body == Body::ContainerCreate,
        package_cache: role.package_cache && endpoint.body == Body::ContainerCreate,
        stamp: (role.conservative
            && matches!(
                endpoint.body,
                Body::ContainerCreate | Body::VolumeCreate | Body::NetworkCreate
            ))
        .then(|| role.name.clone()),
    })
}

/// Refuses requests whose parameters dockerd could read another way than the gateway, for
/// every role: form-encoded bodies (Go's `ParseForm` puts their fields ahead of the query),
/// keys given twice that dockerd reads once, and host configs in start bodies.
fn read_one_way(endpoint: &Endpoint, uri: &CanonicalUri, head: &Head<'_>) -> Result<(), Refusal> {
    if let Some(ct) = head.content_type {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media == "application/x-www-form-urlencoded" || media == "multipart/form-data" {
            return Err(Refusal::new(
                Status::BadRequest,
                format!(
                    "form-encoded request bodies ({media}) are not accepted: dockerd would read \
                     their fields as query parameters; put parameters in the URL"
                ),
            ));
        }
    }
    if let Some(key) = uri.repeated_key(endpoint.lists) {
        return Err(Refusal::new(
            Status::BadRequest,
            format!(
                "query parameter {key:?} given twice: dockerd reads only the first value of it \
                 for {} {}",
                endpoint.method, endpoint.template
            ),
        ));
    }
    let legacy_start = uri.version.is_some_and(|v| v < START_BODY_VERSION);
    if endpoint.body == Body::ContainerStart && legacy_start && head.has_body {
        return Err(Refusal::new(
            Status::BadRequest,
            format!(
                "a body on a container start is not accepted: below API v{}.{} dockerd reads a \
                 host config from it; set host options when creating the container",
                START_BODY_VERSION.major, START_BODY_VERSION.minor
            ),
        ));
    }
    Ok(())
}

/// Whether a role has body policies (then its privilege-carrying requests are mediated).
fn role_reads_bodies(role: &Role) -> bool {
    role.conservative || role.inject || role.package_cache || role.job_socket.is_some()
}

#[cfg(test)]
mod tests;
