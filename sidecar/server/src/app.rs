//! The sidecar's HTTP service, as a testable `app()`:
//! - `/_dockgate/auth`: nginx's `auth_request` target, deciding from the request head;
//! - `/_dockgate/metrics`: Prometheus text;
//! - anything else: the mediated route, where nginx sends requests whose body carries
//!   privileges; the body is read (bounded), checked, and forwarded to dockerd.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use dockgate_policy::gojson;
use dockgate_policy::inject::inject;
use http_body_util::{BodyExt, Limited};

use crate::body_gate::BodyGate;
use crate::forward::forward;
use crate::jobs;
use crate::metrics::Metrics;
use crate::pipeline;
use crate::tenant::answer;
use crate::tenant::stream::rewrite_lines;
use dockgate_api::endpoints::Body as EndpointBody;
use dockgate_decision::config::Config;
use dockgate_decision::decide::{endpoint_of, Head, Refusal, Status};
use dockgate_decision::identity::{identify, Identity, Transport};
use dockgate_decision::jobs::JobKey;

/// Shared state of the service.
pub struct AppState {
    pub config: Config,
    pub metrics: Metrics,
    /// Bounds on the mediated bodies in flight.
    pub bodies: BodyGate,
    /// Upstream tokens and one-pull credentials of the registry side.
    pub registry: crate::registry::RegistryState,
    /// The CI jobs' sockets (when the configuration has `[jobs]`).
    pub jobs: Option<Arc<crate::jobs::Jobs>>,
}

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/_dockgate/auth", any(auth))
        .route("/_dockgate/metrics", get(metrics))
        .route(
            "/_dockgate/registry-auth",
            any(crate::registry::registry_auth),
        )
        .fallback(mediated)
        .with_state(state)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `auth_request` contract: 2xx allows, 401/403 refuse; anything else is a gateway error.
async fn auth(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let started = Instant::now();
    let t = Transport {
        listener: header(&headers, "x-dockgate-listener").unwrap_or(""),
        client_verify: header(&headers, "x-dockgate-client-verify"),
        client_fingerprint: header(&headers, "x-dockgate-client-fingerprint"),
        authorization: header(&headers, "authorization"),
        peer: header(&headers, "x-dockgate-peer"),
    };
    let method = header(&headers, "x-original-method").unwrap_or("");
    let uri = header(&headers, "x-original-uri").unwrap_or("");
    let head = Head {
        method,
        uri,
        content_type: header(&headers, "content-type"),
        has_body: header(&headers, "x-original-content-length")
            .is_some_and(|l| !l.is_empty() && l != "0")
            || header(&headers, "x-original-transfer-encoding").is_some_and(|t| !t.is_empty()),
    };
    // An unidentified caller is logged as `-`; its refusal is the identity's.
    let (who, decision) = match identify(&s.config, &t) {
        Ok(who) => {
            let decision = pipeline::head(&s.config, &who, &head).await;
            (who, decision)
        }
        Err(refusal) => (
            Identity {
                user: "-".into(),
                role: "-".into(),
            },
            Err(refusal),
        ),
    };
    match decision {
        Ok(allowed) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            set(h, "x-dockgate-uri", &allowed.uri.to_string());
            set(h, "x-dockgate-upstream", allowed.upstream());
            set(h, "x-dockgate-user", &who.user);
            set(h, "x-dockgate-role", &who.role);
            let verdict = Verdict::allow(allowed.endpoint.kind.as_str());
            record(&s, &who, t.listener, method, uri, &verdict, started);
            r
        }
        Err(refusal) => {
            let verdict = Verdict::refuse("-", &refusal);
            record(&s, &who, t.listener, method, uri, &verdict, started);
            refused_for_auth_request(&refusal)
        }
    }
}

/// A refusal in `auth_request`'s terms: 401 or 403, with the real status and the Docker
/// error body in headers for nginx's error page.
fn refused_for_auth_request(r: &Refusal) -> Response {
    let status = if r.status == Status::Unauthorized {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::FORBIDDEN
    };
    let mut resp = status.into_response();
    let h = resp.headers_mut();
    set(h, "x-dockgate-status", &r.status.code().to_string());
    set(h, "x-dockgate-error", &r.json());
    if r.status == Status::Unauthorized {
        set(h, "www-authenticate", "Bearer realm=\"dockgate\"");
    }
    resp
}

/// A refusal answered directly (mediated route): the real status and the JSON body.
fn refused(r: &Refusal) -> Response {
    let status = StatusCode::from_u16(r.status.code()).unwrap_or(StatusCode::FORBIDDEN);
    // dockerd ends its JSON errors with a newline; nginx's refusal page does too.
    let mut resp = (status, format!("{}\n", r.json())).into_response();
    set(resp.headers_mut(), "content-type", "application/json");
    resp
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

/// The outcome of one decision, for the audit log and the metrics.
struct Verdict<'a> {
    verdict: &'static str,
    kind: &'a str,
    rule: Option<&'static str>,
    status: u16,
}

impl<'a> Verdict<'a> {
    fn allow(kind: &'a str) -> Self {
        Verdict {
            verdict: "allow",
            kind,
            rule: None,
            status: 200,
        }
    }

    fn refuse(kind: &'a str, r: &Refusal) -> Self {
        Verdict {
            verdict: "refuse",
            kind,
            rule: r.rule,
            status: r.status.code(),
        }
    }
}

/// One audit line (target `dockgate::audit`) and the decision metrics.
fn record(
    s: &AppState,
    who: &Identity,
    listener: &str,
    method: &str,
    uri: &str,
    v: &Verdict<'_>,
    started: Instant,
) {
    tracing::info!(
        target: "dockgate::audit",
        user = %who.user,
        role = %who.role,
        listener,
        method,
        uri,
        verdict = v.verdict,
        rule = v.rule.unwrap_or("-"),
        status = v.status,
        "decision"
    );
    s.metrics
        .decision(v.verdict, v.kind, &who.role, started.elapsed());
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let mut text = s.metrics.render();
    if let Some(jobs) = &s.jobs {
        jobs.render(&mut text);
    }
    let mut r = text.into_response();
    set(
        r.headers_mut(),
        "content-type",
        "text/plain; version=0.0.4; charset=utf-8",
    );
    r
}

/// The mediated route: nginx forwarded an approved request whose body carries privileges.
async fn mediated(State(s): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    // nginx sets these from the auth answer, replacing anything the client sent.
    let who = match (
        header(&parts.headers, "x-dockgate-user"),
        header(&parts.headers, "x-dockgate-role"),
    ) {
        (Some(user), Some(role)) if !user.is_empty() && !role.is_empty() => Identity {
            user: user.into(),
            role: role.into(),
        },
        _ => {
            return refused(&Refusal {
                status: Status::Forbidden,
                message: "dockgate: the mediated route is only for requests nginx approved".into(),
                rule: None,
            })
        }
    };
    let listener = header(&parts.headers, "x-dockgate-listener")
        .unwrap_or("-")
        .to_string();
    let method = parts.method.as_str().to_string();
    let uri = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();

    if endpoint_of(&method, &uri).is_some_and(|e| e.body == EndpointBody::BuildContext) {
        return mediated_build(&s, &who, &listener, parts, body, started).await;
    }
    // A refusal, recorded and answered.
    let refuse = |r: Refusal| {
        let verdict = Verdict::refuse("-", &r);
        record(&s, &who, &listener, &method, &uri, &verdict, started);
        refused(&r)
    };
    // The body is read first (bounded in size and time, holding nothing shared), then parsed
    // and checked in a turn (bounded per caller and overall), off the event loop that answers
    // `auth_request`; only the engine lookups run on it.
    let body = match read_body(body, s.config.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return refuse(r),
    };
    let creates =
        endpoint_of(&method, &uri).is_some_and(|e| e.body == EndpointBody::ContainerCreate);
    // A CI job's bind sources are paths in its container: its volumes are looked up first.
    let job_volumes = match JobKey::from_user(&who.user).filter(|_| creates) {
        Some(key) => match job_volumes(&s.config.dockerd, s.jobs.as_deref(), &key).await {
            Ok(v) => Some(v),
            Err(r) => {
                return refuse(r);
            }
        },
        None => None,
    };
    let turn = s.bodies.turn(&who.user).await;
    let checked = {
        let (state, who, body) = (s.clone(), who.clone(), body.clone());
        let (method, uri, content_type) = (
            method.clone(),
            uri.clone(),
            header(&parts.headers, "content-type").map(str::to_string),
        );
        tokio::task::spawn_blocking(move || {
            let mut value = gojson::parse(&body)
                .and_then(|v| v.validate().map(|()| v))
                .map_err(|e| Refusal::new(Status::BadRequest, e.to_string()))?;
            let head = Head {
                method: &method,
                uri: &uri,
                content_type: content_type.as_deref(),
                has_body: !body.is_empty(),
            };
            // A job's binds of its own paths are taken out before the rules (they are no
            // host paths) and come back as mounts of its volumes.
            let translated = match &job_volumes {
                Some(volumes) => {
                    dockgate_policy::model::hoist_host_config(&mut value);
                    let role = state.config.roles.get(&who.role);
                    if let Some(memory) = role.and_then(|r| r.default_memory) {
                        jobs::create::default_memory(&mut value, memory);
                    }
                    let allowlist = state
                        .config
                        .roles
                        .get(&who.role)
                        .map(|r| r.settings.bind_allowlist.clone())
                        .unwrap_or_default();
                    jobs::binds::extract(&mut value, volumes, &allowlist).map_err(|m| Refusal {
                        status: Status::Forbidden,
                        message: format!("dockgate: {m}"),
                        rule: Some("binds"),
                    })?
                }
                None => Vec::new(),
            };
            let allowed = pipeline::check_body(&state.config, &who, &head, &mut value)?;
            Ok::<_, Refusal>((allowed, value, translated))
        })
        .await
        .unwrap_or_else(|e| {
            Err(Refusal::new(
                Status::BadRequest,
                format!("the check failed: {e}"),
            ))
        })
    };
    let admitted = match checked {
        Ok((allowed, mut value, translated)) => {
            pipeline::admit_body(&s.config, &who, allowed, &mut value)
                .await
                .map(|a| (a, value, translated))
        }
        Err(r) => Err(r),
    };
    match admitted {
        Err(r) => refuse(r),
        Ok((allowed, mut value, translated)) => {
            let tenant = s.config.tenant_of(&who.user);
            if allowed.inject {
                inject(&mut value, &s.config.inject);
            }
            // After the rules: the bind it adds is the operator's, not the caller's.
            if let (true, Some(pc)) = (allowed.package_cache, &s.config.package_cache) {
                dockgate_policy::package_cache::inject(&mut value, &pc.policy());
            }
            // A job's own paths, as mounts of its volumes (and symlinks to write once the
            // container exists); a job container's socket, for a `job_socket` role.
            // A link's place must not be one of the image's VOLUMEs (a mount point then).
            let image_volumes = if translated.iter().any(|t| !t.inside.is_empty()) {
                image_volumes(&s.config.dockerd, &value).await
            } else {
                Vec::new()
            };
            let links = match jobs::binds::apply(&mut value, &translated, &image_volumes) {
                Ok(links) => links,
                Err(m) => {
                    let r = Refusal {
                        status: Status::Forbidden,
                        message: format!("dockgate: {m}"),
                        rule: Some("binds"),
                    };
                    return refuse(r);
                }
            };
            let job_role = s
                .config
                .roles
                .get(&who.role)
                .and_then(|r| r.job_socket.as_deref())
                .filter(|_| allowed.endpoint.body == EndpointBody::ContainerCreate);
            let new_job = match (job_role, &s.jobs) {
                (Some(role), Some(jobs)) => match jobs::create::prepare(jobs, role, &mut value) {
                    Ok(key) => Some((jobs.clone(), key)),
                    Err(r) => {
                        return refuse(r);
                    }
                },
                _ => None,
            };
            let verdict = Verdict::allow(allowed.endpoint.kind.as_str());
            record(&s, &who, &listener, &method, &uri, &verdict, started);
            let rewritten = allowed.inject
                || allowed.package_cache
                || allowed.stamp.is_some()
                || tenant.is_some()
                || !translated.is_empty()
                || new_job.is_some();
            // Serialising (and freeing) the tree is linear work too: off the event loop.
            let body = tokio::task::spawn_blocking(move || {
                if !rewritten {
                    body
                } else if matches!(value, gojson::Value::Null) {
                    Bytes::new()
                } else {
                    Bytes::from(value.to_json())
                }
            })
            .await
            .unwrap_or_default();
            drop(turn);
            let (dockerd, headers) = (&s.config.dockerd, &parts.headers);
            if allowed.endpoint.template == "/images/create" {
                let tenant_name = tenant.as_ref().map(|t| t.name.as_str());
                let planned = crate::pull::plan(
                    &s.config,
                    &s.registry.grants,
                    &who.user,
                    tenant_name,
                    &allowed.uri,
                );
                if let Some(planned) = planned {
                    return match planned {
                        Ok(p) => match crate::pull::run(dockerd, p, headers).await {
                            Ok(resp) if resp.status().is_success() => resp,
                            Ok(resp) => match &tenant {
                                Some(t) => tenant_answer(t, allowed.endpoint.template, resp).await,
                                None => resp,
                            },
                            Err(e) => unreachable(e),
                        },
                        Err(e) => refused(&Refusal::new(Status::BadRequest, format!("{e:#}"))),
                    };
                }
            }
            let resp = match &tenant {
                Some(t) => tenant_forward(dockerd, t, &allowed, parts.method, headers, body).await,
                None => forward(
                    dockerd,
                    parts.method,
                    &allowed.uri.to_string(),
                    headers,
                    body,
                )
                .await
                .unwrap_or_else(unreachable),
            };
            match new_job {
                Some((jobs, key)) => jobs::create::finish(dockerd, &jobs, key, resp).await,
                None => jobs::create::with_symlinks(dockerd, resp, &links).await.0,
            }
        }
    }
}

/// A conservative role's classic build: the context streams to dockerd through the
/// Dockerfile check (`build_context`). Its query was decided at `auth_request`, on the
/// client's URI; what arrives here is the URI that decision produced (a tenant's tags and
/// labels written in), which nginx forwards verbatim, so it is not decided again.
async fn mediated_build(
    s: &AppState,
    who: &Identity,
    listener: &str,
    parts: axum::http::request::Parts,
    body: Body,
    started: Instant,
) -> Response {
    let method = parts.method.as_str().to_string();
    let uri = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let canonical = match dockgate_api::uri::canonicalize(&uri) {
        Ok(u) => u,
        Err(e) => {
            let r = Refusal::new(Status::BadRequest, e.to_string());
            record(
                s,
                who,
                listener,
                &method,
                &uri,
                &Verdict::refuse("-", &r),
                started,
            );
            return refused(&r);
        }
    };
    let dockerfile = canonical.query_value("dockerfile").map(str::to_string);
    let answer = match s.config.tenant_of(&who.user) {
        Some(tenant) => {
            let checks = s
                .config
                .roles
                .get(&who.role)
                .is_some_and(|r| r.conservative);
            crate::build_context::forward_tenant(
                &s.config.dockerd,
                &tenant,
                parts.method.clone(),
                &canonical.to_string(),
                &parts.headers,
                body,
                checks,
            )
            .await
        }
        None => {
            crate::build_context::forward(
                &s.config.dockerd,
                parts.method.clone(),
                &canonical.to_string(),
                dockerfile.as_deref(),
                &parts.headers,
                body,
            )
            .await
        }
    };
    match answer {
        Ok(resp) => {
            record(
                s,
                who,
                listener,
                &method,
                &uri,
                &Verdict::allow("build"),
                started,
            );
            resp
        }
        Err(r) => {
            record(
                s,
                who,
                listener,
                &method,
                &uri,
                &Verdict::refuse("build", &r),
                started,
            );
            refused(&r)
        }
    }
}

/// The volumes of job `key`'s container (the one the sidecar made for it, by ID: a label
/// alone proves nothing), where its bind sources may lie.
async fn job_volumes(
    dockerd: &std::path::Path,
    jobs: Option<&jobs::Jobs>,
    key: &JobKey,
) -> Result<Vec<jobs::binds::JobVolume>, Refusal> {
    let gone = || {
        Refusal::new(
            Status::Forbidden,
            "this CI job's container is gone: its socket takes no more requests",
        )
    };
    let id = jobs.and_then(|j| j.container_of(key)).ok_or_else(gone)?;
    let (status, inspect) = crate::tenant::ask(dockerd, &format!("/containers/{id}/json")).await?;
    if status != 200 {
        return Err(gone());
    }
    Ok(jobs::binds::job_volumes(&inspect))
}

/// The `VOLUME`s of a create body's image, as dockerd knows it (none if it cannot say).
async fn image_volumes(dockerd: &std::path::Path, body: &gojson::Value) -> Vec<String> {
    let Some(image) = body.field("Image").and_then(gojson::Value::as_str) else {
        return Vec::new();
    };
    let path = format!(
        "/images/{}/json",
        dockgate_tenant::lookup::image_path(image)
    );
    match crate::lookups::get_json(dockerd, &path).await {
        Ok((200, inspect)) => inspect["Config"]["Volumes"]
            .as_object()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A forwarding failure, answered in Docker's shape.
fn unreachable(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "forwarding to dockerd failed");
    refused(&Refusal::new(
        Status::BadGateway,
        "the Docker engine behind this gateway is unreachable",
    ))
}

/// A tenant's mediated request to dockerd, and the answer in the tenant's names: pulls are
/// tagged into the namespace, streams rewritten line by line, other answers whole.
async fn tenant_forward(
    dockerd: &std::path::Path,
    tenant: &dockgate_decision::config::Tenant,
    allowed: &dockgate_decision::decide::Allowed,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let template = allowed.endpoint.template;
    let uri = &allowed.uri.to_string();
    if template == "/info" {
        let counts =
            match crate::tenant::lookup::counts(&crate::tenant::Dockerd(dockerd), tenant).await {
                Ok(c) => c,
                Err(r) => return refused(&r),
            };
        return match forward(dockerd, method, uri, headers, body).await {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                let bytes = body
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                let bytes = answer::info(&bytes, &counts)
                    .map(Bytes::from)
                    .unwrap_or(bytes);
                parts.headers.remove("content-length");
                Response::from_parts(parts, Body::from(bytes))
            }
            Err(e) => unreachable(e),
        };
    }
    match forward(dockerd, method, uri, headers, body).await {
        Ok(resp) if streamed(template) && resp.status().is_success() => {
            let tenant = tenant.clone();
            rewrite_lines(resp, move |line| {
                answer::rewrite_with(&tenant, &crate::pull::pulling, template, 200, line)
            })
        }
        Ok(resp) => tenant_answer(tenant, template, resp).await,
        Err(e) => unreachable(e),
    }
}

/// Answers dockerd streams for as long as the client listens.
fn streamed(template: &str) -> bool {
    matches!(template, "/events" | "/containers/{id}/stats")
}

/// dockerd's answer to a tenant, with the engine's names turned back into the tenant's.
async fn tenant_answer(
    tenant: &dockgate_decision::config::Tenant,
    template: &str,
    resp: Response,
) -> Response {
    /// Lists of a thousand containers are well under this.
    const MAX_ANSWER: usize = 64 << 20;
    let (mut parts, body) = resp.into_parts();
    let bytes = match Limited::new(body, MAX_ANSWER).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            tracing::error!(error = %e, "reading dockerd's answer failed");
            return refused(&Refusal::new(
                Status::BadGateway,
                "could not read the Docker engine's answer",
            ));
        }
    };
    let bytes = match answer::rewrite_with(
        tenant,
        &crate::pull::pulling,
        template,
        parts.status.as_u16(),
        &bytes,
    ) {
        Some(rewritten) => Bytes::from(rewritten),
        None => bytes,
    };
    parts.headers.remove("content-length");
    Response::from_parts(parts, Body::from(bytes))
}

/// How long a mediated body may take to arrive (a megabyte takes milliseconds on loopback
/// and seconds on a slow link): a client that trickles it cannot keep the connection busy.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads a body (Content-Length or chunked: nginx passes either) up to `limit` bytes, within
/// [`BODY_DEADLINE`].
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Refusal> {
    let read = tokio::time::timeout(BODY_DEADLINE, Limited::new(body, limit).collect());
    let Ok(read) = read.await else {
        return Err(Refusal::new(
            Status::Timeout,
            format!(
                "the request body did not arrive within {} s",
                BODY_DEADLINE.as_secs()
            ),
        ));
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Refusal {
            status: Status::TooLarge,
            message: format!("dockgate: request body larger than {limit} bytes"),
            rule: None,
        }),
        Err(e) => Err(Refusal {
            status: Status::BadRequest,
            message: format!("dockgate: could not read the request body: {e}"),
            rule: None,
        }),
    }
}

#[cfg(test)]
mod tests;
