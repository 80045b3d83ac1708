//! The decision for one registry request (pure, no I/O): who calls (HTTP Basic, as `docker
//! login` sends it, checked by the server's [`Identities`]), what the path addresses, which
//! repository that is once the team's prefix is applied (or which mirror it is in), whether
//! the caller may, and where nginx goes for it.

use crate::access::{Action, Prefix, RegistryConfig, Rights};
use crate::mirror::Mirror;
use crate::path::{self, check_name, Reference, Target, MAX_NAME_LEN};

/// The group's default upstream (nginx's `upstream dockgate_registry_upstream`), fetched
/// from anonymously.
pub const DEFAULT_UPSTREAM: &str = "dockgate_registry_upstream";

/// Who a `Basic` user name and secret are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    /// The tenant the user works in, if any.
    pub tenant: Option<String>,
    /// A credential for pulls of this one repository only (what the Docker API gateway
    /// hands dockerd for a pull through a mirror).
    pub only: Option<String>,
    /// Someone the gateway let in without being one of `[[users]]` (its anonymous access):
    /// the registry's anonymous rights apply.
    pub anonymous: bool,
}

/// The server's users: `[[users]]` tokens, and the gateway's one-pull credentials.
pub trait Identities {
    fn basic(&self, user: &str, secret: &str) -> Option<Caller>;
}

/// The kinds of requests, as the metrics and nginx's cache locations name them.
pub const KINDS: [&str; 7] = [
    "base",
    "catalog",
    "tags",
    "manifest_tag",
    "manifest_digest",
    "blob",
    "upload",
];

/// An approved request and where nginx sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approved {
    pub user: String,
    pub action: Action,
    /// One of [`KINDS`].
    pub kind: &'static str,
    /// Where a pull the hosted registry answers 404 goes next: nginx's
    /// `@dockgate_registry_group_<fallback>` (the kind, or `blob_hosted` for a blob HEAD,
    /// which the upstream must not answer).
    pub fallback: &'static str,
    /// The repository in the hosted registry (team prefix applied); empty for `/v2/`.
    pub name: String,
    /// Path and query on the hosted registry.
    pub hosted_uri: String,
    /// Path and query on the proxied upstream, for pulls the group may answer from there.
    pub upstream_uri: Option<String>,
    /// What the cache keys the upstream answer by: the digest for blobs and manifests by
    /// digest (one copy whatever the repository), `name:tag` for tags; for a mirror that is
    /// fetched from with credentials, the repository too.
    pub cache_key: String,
    /// Where nginx goes first: `hosted` (then the group's upstream on a 404), or straight to
    /// the group's `group_<fallback>` location for a mirror.
    pub first: String,
    /// The upstream nginx fetches from: `proxy_pass` target, `Host` and TLS name.
    pub origin: String,
    pub origin_host: String,
    pub origin_tls_name: String,
    /// The mirror's namespace, and the repository at the upstream (for its credentials).
    pub mirror: Option<String>,
    pub upstream_name: Option<String>,
}

/// A refused request: status, registry error code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// A `WWW-Authenticate` challenge for 401s.
    pub challenge: Option<String>,
}

impl Refused {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Refused {
        Refused {
            status,
            code,
            message: format!("dockgate: {}", message.into()),
            challenge: None,
        }
    }

    /// The registry's error body, `{"errors":[{"code":...,"message":...}]}` (ASCII).
    pub fn json(&self) -> String {
        let v = serde_json::json!({
            "errors": [{ "code": self.code, "message": self.message }]
        });
        v.to_string()
            .chars()
            .map(|c| if c.is_ascii() { c } else { '?' })
            .collect()
    }
}

/// What nginx passes about a request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ask<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    /// The team prefix the server block (host or port) maps to; empty for none.
    pub team: &'a str,
    pub authorization: Option<&'a str>,
}

/// The manifest class a pull's `Accept` lines ask for, which the cache keys manifests by:
/// `list` when any line takes a multi-platform index (Docker's manifest list, OCI's image
/// index), else `one`. dockerd sends each media type on a line of its own, in no set order.
pub fn accept_class<'a>(lines: impl IntoIterator<Item = &'a str>) -> &'static str {
    let list = lines.into_iter().any(|line| {
        let line = line.to_ascii_lowercase();
        line.contains("manifest.list.v2") || line.contains("image.index.v1")
    });
    if list {
        "list"
    } else {
        "one"
    }
}

pub fn decide(
    reg: &RegistryConfig,
    ids: &dyn Identities,
    ask: &Ask<'_>,
) -> Result<Approved, Refused> {
    let challenge = format!("Basic realm=\"{}\"", reg.realm.replace('"', "'"));
    let unauthorized = |message: &str| Refused {
        challenge: Some(challenge.clone()),
        ..Refused::new(401, "UNAUTHORIZED", message)
    };
    // Identity first: a wrong password is a 401 whatever the path.
    let caller = match ask.authorization {
        None | Some("") => None,
        Some(h) => match basic_caller(h, ids) {
            Some(c) => Some(c),
            None => return Err(unauthorized("invalid user name or token")),
        },
    };
    let (user, rights, tenant) = match &caller {
        None => ("anonymous".to_string(), &reg.anonymous, None),
        Some(c) if c.anonymous => (c.name.clone(), &reg.anonymous, None),
        Some(c) => (
            c.name.clone(),
            reg.users.get(&c.name).unwrap_or(&EMPTY_RIGHTS),
            c.tenant.as_deref(),
        ),
    };
    let anonymous = !matches!(ask.authorization, Some(h) if !h.is_empty());
    if !ask.team.is_empty() && check_name(ask.team).is_err() {
        return Err(Refused::new(
            403,
            "DENIED",
            format!(
                "team prefix {:?} is not a repository name (the gateway is misconfigured)",
                ask.team
            ),
        ));
    }
    let (target, query) = path::parse(ask.uri).map_err(|e| Refused::new(400, e.code, e.message))?;
    let method = ask.method;
    let pull = matches!(method, "GET" | "HEAD");
    let (action, kind) = match (&target, method) {
        (Target::Base, "GET" | "HEAD") => {
            // Always a challenge without credentials: docker sends its login only to a
            // registry whose `/v2/` asked for it (so anonymous rights serve plain HTTP
            // clients; a 200 here would stop logged-in docker clients from pushing).
            if anonymous {
                return Err(unauthorized("authentication required (docker login)"));
            }
            return Ok(Approved {
                user,
                action: Action::Pull,
                kind: "base",
                fallback: "base",
                name: String::new(),
                hosted_uri: "/v2/".into(),
                upstream_uri: None,
                cache_key: String::new(),
                first: "hosted".into(),
                origin: format!("http://{DEFAULT_UPSTREAM}"),
                origin_host: DEFAULT_UPSTREAM.into(),
                origin_tls_name: DEFAULT_UPSTREAM.into(),
                mirror: None,
                upstream_name: None,
            });
        }
        (Target::Catalog, _) => {
            return Err(Refused::new(
                403,
                "DENIED",
                "the catalog is not offered: it would list every team's repositories",
            ))
        }
        (Target::Tags { .. }, "GET") => (Action::Pull, "tags"),
        (Target::Manifest { reference, .. }, _) if pull => match reference {
            Reference::Tag(_) => (Action::Pull, "manifest_tag"),
            Reference::Digest(_) => (Action::Pull, "manifest_digest"),
        },
        (Target::Manifest { .. }, "PUT" | "DELETE") => (Action::Push, "manifest"),
        (Target::Blob { .. }, _) if pull => (Action::Pull, "blob"),
        (Target::Blob { .. }, "DELETE") => (Action::Push, "blob"),
        (Target::UploadStart { .. }, "POST") => (Action::Push, "upload"),
        (Target::Upload { .. }, "GET" | "PATCH" | "PUT" | "DELETE") => (Action::Push, "upload"),
        _ => {
            return Err(Refused::new(
                405,
                "UNSUPPORTED",
                format!(
                    "{method} is not a registry operation on {}",
                    ask.uri.split('?').next().unwrap_or("")
                ),
            ))
        }
    };
    let client_name = without_tenant(target.name().unwrap_or_default(), tenant, &user)?;
    // A mirror's namespace is top-level on every front-end, and read-only.
    let mirrored = reg.mirrors.split(client_name);
    let name = match mirrored {
        Some(_) => client_name.to_string(),
        None => prefixed(ask.team, client_name),
    };
    if let Some((m, _)) = mirrored.filter(|_| action == Action::Push) {
        return Err(Refused::new(
            403,
            "DENIED",
            format!(
                "{}/ is a read-only mirror of {}: nothing is pushed there",
                m.namespace, m.registry
            ),
        ));
    }
    if let Some(only) = caller.as_ref().and_then(|c| c.only.as_deref()) {
        if only != name || action != Action::Pull {
            return Err(Refused::new(
                403,
                "DENIED",
                format!("this credential is for pulls of {only} only"),
            ));
        }
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Refused::new(
            400,
            "NAME_INVALID",
            format!("repository name {name:?} is longer than {MAX_NAME_LEN} characters"),
        ));
    }
    if !rights.allows(action, &name) {
        if anonymous {
            return Err(unauthorized(&format!(
                "authentication required to {} {name}",
                action.as_str()
            )));
        }
        return Err(Refused::new(
            403,
            "DENIED",
            format!(
                "user {user} may not {} {name} ({})",
                action.as_str(),
                describe(rights, action)
            ),
        ));
    }

    let mut hosted_uri = target.path_for(&name);
    let hosted_query = match &target {
        Target::UploadStart { .. } => query.map(|q| mount_query(q, ask.team, rights)),
        _ => query.map(str::to_string),
    };
    if let Some(q) = hosted_query.filter(|q| !q.is_empty()) {
        hosted_uri = format!("{hosted_uri}?{q}");
    }
    let (upstream_uri, cache_key) = match mirrored {
        Some((m, upstream_name)) => mirror_route(m, upstream_name, &target, query),
        None => group_route(client_name, &target, method, query),
    };
    let fallback = match (kind, &upstream_uri) {
        (_, Some(_)) => kind,
        ("blob", None) => "blob_hosted",
        (k, None) => k,
    };
    let (first, origin, origin_host, origin_tls_name) = match mirrored {
        Some((m, _)) => (
            format!("group_{fallback}"),
            m.proxy_pass(),
            m.origin.authority.clone(),
            m.origin.host.clone(),
        ),
        None => (
            "hosted".into(),
            format!("http://{DEFAULT_UPSTREAM}"),
            DEFAULT_UPSTREAM.into(),
            DEFAULT_UPSTREAM.into(),
        ),
    };
    Ok(Approved {
        user,
        action,
        kind,
        fallback,
        name,
        hosted_uri,
        upstream_uri,
        cache_key,
        first,
        origin,
        origin_host,
        origin_tls_name,
        mirror: mirrored.map(|(m, _)| m.namespace.clone()),
        upstream_name: mirrored.map(|(_, n)| n.to_string()),
    })
}

/// The group's default upstream: the name without the team's prefix. Blobs and manifests
/// by digest are keyed by digest alone (fetched anonymously: anyone may have them).
fn group_route(
    client_name: &str,
    target: &Target,
    method: &str,
    query: Option<&str>,
) -> (Option<String>, String) {
    let pull = matches!(method, "GET" | "HEAD");
    match target {
        Target::Tags { .. } => (
            Some(match query {
                Some(q) => format!("{}?{q}", target.path_for(client_name)),
                None => target.path_for(client_name),
            }),
            String::new(),
        ),
        Target::Manifest { reference, .. } if pull => (
            Some(target.path_for(client_name)),
            match reference {
                Reference::Tag(t) => format!("{client_name}:{t}"),
                Reference::Digest(d) => d.clone(),
            },
        ),
        // A HEAD on a blob is how pushers ask "do you have it already?": only the hosted
        // registry may answer, or a layer the upstream has would never be uploaded.
        Target::Blob { digest, .. } if method == "GET" => {
            (Some(target.path_for(client_name)), digest.clone())
        }
        _ => (None, String::new()),
    }
}

/// A mirror: everything it is asked goes to it (nothing is pushed, so a blob HEAD too). What
/// its credentials fetched is keyed by repository: served only to callers who may pull that
/// repository, never to one who names the digest under a repository it may pull.
fn mirror_route(
    m: &Mirror,
    upstream_name: &str,
    target: &Target,
    query: Option<&str>,
) -> (Option<String>, String) {
    let ns = &m.namespace;
    let scope = |digest: &str| {
        if m.private() {
            format!("mirror {ns} {upstream_name} {digest}")
        } else {
            format!("mirror {ns} {digest}")
        }
    };
    let path = target.path_for(upstream_name);
    match target {
        Target::Tags { .. } => (
            Some(match query {
                Some(q) => format!("{path}?{q}"),
                None => path,
            }),
            String::new(),
        ),
        Target::Manifest { reference, .. } => {
            let key = match reference {
                Reference::Tag(t) => format!("mirror {ns} {upstream_name}:{t}"),
                Reference::Digest(d) => scope(d),
            };
            (Some(path), key)
        }
        Target::Blob { digest, .. } => (Some(path), scope(digest)),
        _ => (None, String::new()),
    }
}

static EMPTY_RIGHTS: Rights = Rights {
    pull: Vec::new(),
    push: Vec::new(),
};

fn prefixed(team: &str, name: &str) -> String {
    if team.is_empty() {
        name.to_string()
    } else {
        format!("{team}/{name}")
    }
}

fn describe(rights: &Rights, action: Action) -> String {
    let list = |v: &[Prefix]| {
        v.iter()
            .map(|p| match p {
                Prefix::All => "*".to_string(),
                Prefix::Path(p) => format!("{p}/"),
            })
            .collect::<Vec<_>>()
    };
    let push = list(&rights.push);
    let mut pull = list(&rights.pull);
    pull.extend(push.iter().cloned());
    let (what, v) = match action {
        Action::Push => ("push", push),
        Action::Pull => ("pull", pull),
    };
    if v.is_empty() {
        format!("no {what} rights")
    } else {
        format!("{what} rights: {}", v.join(", "))
    }
}

/// A cross-repository mount (`?mount=DIGEST&from=REPO`) names the source in the client's
/// terms: move it under the team's prefix, or drop the mount when the caller may not pull
/// the source (the client then uploads the blob instead).
fn mount_query(query: &str, team: &str, rights: &Rights) -> String {
    let from = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("from="))
        .map(|f| prefixed(team, f));
    let mount_ok = from
        .as_deref()
        .is_some_and(|f| check_name(f).is_ok() && rights.allows(Action::Pull, f));
    query
        .split('&')
        .filter_map(|kv| {
            if kv.starts_with("from=") {
                mount_ok.then(|| format!("from={}", from.as_deref().unwrap_or_default()))
            } else if kv.starts_with("mount=") {
                mount_ok.then(|| kv.to_string())
            } else {
                Some(kv.to_string())
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A tenant's image pushed by dockerd through the Docker API gateway is named
/// `dockgate-TENANT/...` on the engine (see the sidecar's `tenant::images`): the registry
/// stores it under the name the tenant used, and only that tenant's users may use the form.
fn without_tenant<'n>(name: &'n str, tenant: Option<&str>, user: &str) -> Result<&'n str, Refused> {
    let Some((first, rest)) = name.split_once('/') else {
        return Ok(name);
    };
    let Some(owner) = first.strip_prefix("dockgate-") else {
        return Ok(name);
    };
    if tenant == Some(owner) {
        Ok(rest)
    } else {
        Err(Refused::new(
            403,
            "DENIED",
            format!(
                "{name} is in tenant {owner}'s namespace, and user {user} is not of that tenant"
            ),
        ))
    }
}

/// The caller whose name and secret a `Basic` header carries.
fn basic_caller(header: &str, ids: &dyn Identities) -> Option<Caller> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let text = String::from_utf8(dockgate_api::base64::decode(value.trim())?).ok()?;
    let (name, secret) = text.split_once(':')?;
    ids.basic(name, secret)
}

#[cfg(test)]
mod tests;
