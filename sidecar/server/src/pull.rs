//! Pulls the gateway mediates: a tenant's, and any pull of a mirrored registry.
//!
//! dockerd pulls under an engine name, the progress streams to the client as it comes, and
//! once the pull succeeded the image lands under its name: the tenant's (tagged into its
//! namespace) or, for a mirror, the registry's own. The engine name is then put back as it
//! was (untagged, or on the admin's shared image it named before), so what a tenant pulled,
//! perhaps with its own credentials, is neither left for the others nor put in place of
//! their shared image. While it is under way, the name does not pass for a shared image
//! ([`pulling`]).
//!
//! A mirrored registry (`[registry.mirrors]`, with `[registry] pull_through` naming the
//! front-end dockerd reaches) is pulled through the front-end's cache: `ghcr.io/acme/app:1`
//! is pulled as `FRONT/ghcr/acme/app:1` with a one-pull credential of the caller's (the
//! front-end decides with the caller's registry rights), and tagged `ghcr.io/acme/app:1`.
//! Pulls by digest go to the registry itself: dockerd cannot give a digest another name.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use crate::channel_body::ChannelBody;
use crate::forward::forward;
use crate::lookups::call_json;
use dockgate_decision::mirror_pull::{mirror_pull, pulled, MirrorPull};
use dockgate_tenant::images::{mangle_image, Reference};

/// A progress line the docker CLI prints as the pull's error.
fn error_line(message: &str) -> Bytes {
    let text = serde_json::json!({ "errorDetail": { "message": message }, "error": message });
    Bytes::from(format!("{text}\r\n"))
}

/// References tenants are pulling through this sidecar right now. Between dockerd's pull and
/// the gateway's moving the image into the tenant's namespace, the registry's name is on the
/// engine: it must not pass for a shared image meanwhile ([`pulling`]).
static PULLING: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

/// The familiar form of a pulled reference, with its tag (`busybox` → `busybox:latest`).
fn familiar(reference: &str) -> String {
    match Reference::parse(reference) {
        Some(r) if r.suffix.is_empty() => format!("{}:latest", r.familiar()),
        Some(r) => r.familiar(),
        None => reference.to_string(),
    }
}

/// Whether a tenant's pull of `reference` is under way on this sidecar.
pub fn pulling(reference: &str) -> bool {
    let key = familiar(reference);
    PULLING
        .lock()
        .map(|set| set.contains_key(&key))
        .unwrap_or(true)
}

/// A pull in [`PULLING`] for as long as it lives.
struct InFlight(String);

impl InFlight {
    fn new(reference: &str) -> InFlight {
        let key = familiar(reference);
        if let Ok(mut set) = PULLING.lock() {
            *set.entry(key.clone()).or_default() += 1;
        }
        InFlight(key)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut set) = PULLING.lock() {
            if let Some(n) = set.get_mut(&self.0) {
                *n -= 1;
                if *n == 0 {
                    set.remove(&self.0);
                }
            }
        }
    }
}

fn path(r: &str) -> String {
    r.replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23")
}

/// The engine's image ID for `reference`, if it has one.
async fn image_id(dockerd: &Path, reference: &str) -> Option<String> {
    match call_json(
        dockerd,
        Method::GET,
        &format!("/images/{}/json", path(reference)),
    )
    .await
    {
        Ok((200, json)) => json["Id"].as_str().map(str::to_string),
        _ => None,
    }
}

/// Tags image `id` as `reference` (`repo:tag`, moving the tag if another image had it).
async fn tag(
    dockerd: &Path,
    id: &str,
    reference: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
    call_json(
        dockerd,
        Method::POST,
        &format!(
            "/images/{}/tag?repo={}&tag={}",
            path(id),
            path(repo).replace('&', "%26"),
            path(tag)
        ),
    )
    .await
}

/// Where a pulled image lands.
pub enum Lands {
    /// Under the registry's name (a mirror pull of a caller who sees the whole engine).
    Plain(String),
    /// In a tenant's namespace: `plain` is the registry's name, `mangled` the engine's.
    Tenant {
        tenant: String,
        plain: String,
        mangled: String,
    },
}

/// One mediated pull.
pub struct Pull {
    /// The name dockerd pulls under.
    pub engine: String,
    /// The URI forwarded to dockerd.
    pub uri: String,
    pub lands: Lands,
    /// For a pull through a mirror: the plan, and the `X-Registry-Auth` dockerd pulls with
    /// (the one-pull credential, revoked when the pull is over).
    pub mirror: Option<(MirrorPull, String, crate::registry::Granted)>,
}

impl Pull {
    /// A tenant's pull of `fromImage` (and `tag`), as the registry names it.
    pub fn tenant(tenant: &str, uri: &str, from: &str, tag: Option<&str>) -> anyhow::Result<Pull> {
        let plain = pulled(from, tag);
        let mangled = mangle_image(tenant, &plain)
            .ok_or_else(|| anyhow::anyhow!("invalid reference format: {plain}"))?;
        Ok(Pull {
            engine: plain.clone(),
            uri: uri.to_string(),
            lands: Lands::Tenant {
                tenant: tenant.to_string(),
                plain,
                mangled,
            },
            mirror: None,
        })
    }
}

/// The mediated pull of an approved `POST /images/create?fromImage=...`: through a mirror
/// when its registry is mirrored, else a tenant's (`None`: dockerd pulls as asked).
pub fn plan(
    config: &dockgate_decision::config::Config,
    grants: &crate::registry::Grants,
    user: &str,
    tenant: Option<&str>,
    uri: &dockgate_api::uri::CanonicalUri,
) -> Option<anyhow::Result<Pull>> {
    let from = uri.query_value("fromImage")?;
    let tag = uri.query_value("tag");
    let through = config
        .registry
        .as_ref()
        .and_then(|reg| Some((reg, mirror_pull(reg, from, tag)?)));
    let Some((reg, plan)) = through else {
        return tenant.map(|t| Pull::tenant(t, &uri.to_string(), from, tag));
    };
    Some((|| {
        let lands = match tenant {
            Some(t) => Lands::Tenant {
                tenant: t.to_string(),
                plain: plan.plain.clone(),
                mangled: mangle_image(t, &plan.plain)
                    .ok_or_else(|| anyhow::anyhow!("invalid reference format: {}", plan.plain))?,
            },
            None => Lands::Plain(plan.plain.clone()),
        };
        let anonymous = !config.users.iter().any(|u| u.name == user);
        let granted = grants.grant(user, anonymous, tenant, &plan.repository)?;
        let front = reg.pull_through.as_deref().unwrap_or_default();
        let auth = registry_auth(user, &granted.secret, front);
        let mut engine_uri = uri.clone();
        dockgate_tenant::request::set_query(&mut engine_uri, "fromImage", plan.from_image.clone());
        dockgate_tenant::request::set_query(&mut engine_uri, "tag", plan.tag.clone());
        Ok(Pull {
            engine: plan.engine.clone(),
            uri: engine_uri.to_string(),
            lands,
            mirror: Some((plan, auth, granted)),
        })
    })())
}

/// The `X-Registry-Auth` of a one-pull credential for the front-end `server`.
pub fn registry_auth(user: &str, secret: &str, server: &str) -> String {
    let json = serde_json::json!({
        "username": user,
        "password": secret,
        "serveraddress": server,
    });
    dockgate_api::base64::encode_url(json.to_string().as_bytes())
}

pub async fn run(dockerd: &Path, pull: Pull, headers: &HeaderMap) -> anyhow::Result<Response> {
    let Pull {
        engine,
        uri,
        lands,
        mirror,
    } = pull;
    let mut headers = headers.clone();
    if let Some((_, auth, _)) = &mirror {
        headers.insert("x-registry-auth", axum::http::HeaderValue::from_str(auth)?);
    }
    let in_flight = InFlight::new(&engine);
    // What the engine name was before (an admin's shared image, or nothing): it is put back
    // as it was, whatever the pull does.
    let before = image_id(dockerd, &engine).await;
    let resp = forward(dockerd, Method::POST, &uri, &headers, Bytes::new()).await?;
    if !resp.status().is_success() {
        return Ok(resp);
    }
    let (parts, mut upstream) = resp.into_parts();
    let (tx, rx) = mpsc::channel(16);
    let dockerd = dockerd.to_path_buf();
    tokio::spawn(async move {
        let _in_flight = in_flight;
        let plan = mirror.as_ref().map(|(plan, _, _)| plan);
        // Read to the end even when the client has gone: dockerd may finish the pull.
        let mut failed = false;
        let mut listening = true;
        let mut pending = Vec::new();
        while let Some(frame) = upstream.frame().await {
            let Ok(frame) = frame else {
                failed = true;
                break;
            };
            if let Ok(data) = frame.into_data() {
                failed |= data.windows(8).any(|w| w == b"\"error\":");
                let data = match plan {
                    None => data,
                    // Whole lines only, in the registry's names.
                    Some(plan) => {
                        pending.extend_from_slice(&data);
                        let Some(end) = pending.iter().rposition(|b| *b == b'\n') else {
                            continue;
                        };
                        let rest = pending.split_off(end + 1);
                        let lines = std::mem::replace(&mut pending, rest);
                        Bytes::from(plan.rename(&String::from_utf8_lossy(&lines)))
                    }
                };
                if listening && tx.send(Ok(data)).await.is_err() {
                    listening = false;
                }
            }
        }
        if let (Some(plan), false) = (plan, pending.is_empty()) {
            let tail = Bytes::from(plan.rename(&String::from_utf8_lossy(&pending)));
            let _ = tx.send(Ok(tail)).await;
        }
        let current = image_id(&dockerd, &engine).await;
        // The image this pull brought that was not there under the name before.
        let pulled_id = current.clone().filter(|id| Some(id) != before.as_ref());
        let mut taken = false;
        if let (false, Some(id)) = (failed, &current) {
            match land(&dockerd, &lands, id).await {
                Ok(()) => taken = true,
                Err(message) => {
                    let _ = tx.send(Ok(error_line(&message))).await;
                }
            }
        }
        // The engine name as it was; the pulled image, if it did not land, gone.
        match &before {
            Some(old) => {
                if pulled_id.is_some() {
                    if let Err(e) = tag(&dockerd, old, &engine).await {
                        tracing::warn!(error = %e, image = %engine, "restoring a shared tag failed");
                    }
                }
            }
            None => {
                let untag = format!("/images/{}?noprune=1", path(&engine));
                let _ = call_json(&dockerd, Method::DELETE, &untag).await;
            }
        }
        // The front-end's digest references go with its name (the image keeps the
        // registry's tag).
        if let (Some(plan), Some(id)) = (plan, &current) {
            for digest in repo_digests(&dockerd, id, &plan.engine_repo).await {
                let untag = format!("/images/{}?noprune=1", path(&digest));
                let _ = call_json(&dockerd, Method::DELETE, &untag).await;
            }
        }
        drop(mirror);
        if let (false, Some(id)) = (taken, &pulled_id) {
            let _ = call_json(&dockerd, Method::DELETE, &format!("/images/{}", path(id))).await;
        }
    });
    let mut resp = Response::from_parts(
        parts,
        Body::new(ChannelBody::<std::convert::Infallible>(rx)),
    );
    resp.headers_mut().remove("content-length");
    Ok(resp)
}

/// The pulled image under its name.
async fn land(dockerd: &Path, lands: &Lands, id: &str) -> Result<(), String> {
    match lands {
        Lands::Tenant {
            tenant,
            plain,
            mangled,
        } => take_in(dockerd, tenant, plain, id, mangled).await,
        Lands::Plain(plain) => match tag(dockerd, id, plain).await {
            Ok((201, _)) => Ok(()),
            Ok((status, answer)) => Err(format!(
                "dockgate: the pull through the registry cache succeeded but tagging it {plain} \
                 failed ({status}): {}",
                answer["message"].as_str().unwrap_or("")
            )),
            Err(e) => Err(format!("dockgate: {e:#}")),
        },
    }
}

/// The image's digest references in repository `repo` (`repo@sha256:...`).
async fn repo_digests(dockerd: &Path, id: &str, repo: &str) -> Vec<String> {
    let prefix = format!("{repo}@");
    match call_json(dockerd, Method::GET, &format!("/images/{}/json", path(id))).await {
        Ok((200, json)) => json["RepoDigests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str())
            .filter(|d| d.starts_with(&prefix))
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Tags a tenant's pulled image into its namespace, unless its configuration names another
/// tenant (built or committed elsewhere: once untagged it would pass for that tenant's).
/// The tenant's own name is its commits, pushed and pulled back.
async fn take_in(
    dockerd: &Path,
    tenant: &str,
    plain: &str,
    id: &str,
    engine: &str,
) -> Result<(), String> {
    let labels = match call_json(dockerd, Method::GET, &format!("/images/{}/json", path(id))).await
    {
        Ok((200, json)) => json.pointer("/Config/Labels").cloned(),
        _ => None,
    };
    let owner = labels
        .as_ref()
        .and_then(|l| l.get(dockgate_tenant::names::LABEL))
        .and_then(|o| o.as_str());
    if let Some(owner) = owner.filter(|o| *o != tenant) {
        return Err(format!(
            "dockgate: {plain} carries the label {}={owner}, which only the gateway sets: it is \
             not taken into the tenant's namespace",
            dockgate_tenant::names::LABEL
        ));
    }
    match tag(dockerd, id, engine).await {
        Ok((201, _)) => Ok(()),
        Ok((status, answer)) => Err(format!(
            "dockgate: the pull succeeded but tagging it into the tenant's namespace failed \
             ({status}): {}",
            answer["message"].as_str().unwrap_or("")
        )),
        Err(e) => Err(format!("dockgate: {e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_pull_credential_is_docker_shaped() {
        let auth = registry_auth("alice", "dockgate-pull-ab", "127.0.0.1:5000");
        assert!(
            !auth.contains('+') && !auth.contains('/'),
            "URL-safe: {auth}"
        );
        let std = auth.replace('-', "+").replace('_', "/");
        let json: serde_json::Value =
            serde_json::from_slice(&dockgate_api::base64::decode(&std).unwrap()).unwrap();
        assert_eq!(json["username"], "alice");
        assert_eq!(json["password"], "dockgate-pull-ab");
        assert_eq!(json["serveraddress"], "127.0.0.1:5000");
    }
}
