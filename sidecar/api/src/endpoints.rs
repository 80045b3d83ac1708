//! The Docker Engine API's endpoints, one row each, grouped as in Docker's API reference.
//!
//! A row gives the method, the path template (after the optional `/vX.Y` prefix), the kind
//! roles allow or deny, the route nginx takes, the resource a tenant may own, and a doc line.
//! Templates use `{id}` for one segment and `{name*}` for one or more segments (image and
//! plugin references contain `/`), as dockerd's router does. An endpoint missing here is
//! unknown, and the sidecar refuses unknown endpoints.

use std::fmt;

use crate::uri::CanonicalUri;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        })
    }
}

/// What an endpoint lets a caller do; roles allow kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Reads state: lists, inspects, logs, stats, events, archives out.
    Read,
    /// Changes containers: create, start, stop, remove, copy in, commit.
    Write,
    /// Runs commands in or attaches to containers.
    Exec,
    /// Builds images (and BuildKit sessions).
    Build,
    /// Pulls, pushes, tags, loads, removes images.
    Image,
    /// Creates, connects, removes networks.
    Network,
    /// Creates and removes volumes.
    Volume,
    /// Daemon-wide: registry login, pruning caches.
    System,
    /// Swarm, nodes, services, tasks, secrets, configs.
    Swarm,
    /// Plugins: they run with the daemon's privileges.
    Plugin,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Read,
        Kind::Write,
        Kind::Exec,
        Kind::Build,
        Kind::Image,
        Kind::Network,
        Kind::Volume,
        Kind::System,
        Kind::Swarm,
        Kind::Plugin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Write => "write",
            Kind::Exec => "exec",
            Kind::Build => "build",
            Kind::Image => "image",
            Kind::Network => "network",
            Kind::Volume => "volume",
            Kind::System => "system",
            Kind::Swarm => "swarm",
            Kind::Plugin => "plugin",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How nginx carries an approved request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Straight to dockerd: the URI says everything that matters.
    Direct,
    /// Through the sidecar, which reads the JSON body (privileges live there) and forwards.
    Mediated,
    /// Straight to dockerd, long-lived: hijacked or streaming for as long as it lasts.
    Stream,
}

/// The kind of object an endpoint's `{id}`/`{name*}` names (tenants own these).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    None,
    Container,
    Exec,
    Image,
    Network,
    Volume,
    Node,
    Service,
    Task,
    Secret,
    Config,
    Plugin,
}

/// What dockerd decodes from an endpoint's request body (the policy has a model for each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Body {
    /// dockerd reads no body here (a form-encoded one is refused everywhere).
    None,
    /// `ContainerConfigWrapper`: `container.Config` with `HostConfig` and `NetworkingConfig`,
    /// and (deprecated) host fields at the top level.
    ContainerCreate,
    /// `container.UpdateConfig`: resources and restart policy.
    ContainerUpdate,
    /// Below API 1.24 a JSON host config replaces the container's; from 1.24 on a body is an
    /// error.
    ContainerStart,
    /// `container.ExecOptions`.
    ExecCreate,
    /// `container.ExecStartOptions` (detach, tty, console size).
    ExecStart,
    /// `container.Config` overrides of a commit.
    Commit,
    /// `volume.CreateOptions`.
    VolumeCreate,
    /// `network.CreateRequest`.
    NetworkCreate,
    /// `network.ConnectOptions`.
    NetworkConnect,
    /// `network.DisconnectOptions`.
    NetworkDisconnect,
    /// A tar stream (archive, image import or load): content, not settings.
    Archive,
    /// A classic build's context: a tar stream holding the Dockerfile the builder runs
    /// (BuildKit's builds, `version=2`, send theirs through the session instead).
    BuildContext,
    /// Registry credentials (`registry.AuthConfig`).
    RegistryAuth,
    /// A swarm or plugin object: no model, so a conservative role cannot use the endpoint.
    Unmodelled,
}

/// How a request acts through an existing object: enters it, changes it, reads its files or
/// removes it. A conservative role may do so only to objects it could have created itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Through {
    /// It does not (lists, inspects, logs, ...).
    Nothing,
    /// The object the path names (`{id}`, `{name}`, `{name*}`).
    Path,
    /// The container a query parameter names (`/commit?container=`).
    Query(&'static str),
    /// Every object its `filters` match (prunes): a conservative role's are narrowed to the
    /// objects made under its own role.
    Filter,
}

/// One row of the table.
#[derive(Debug)]
pub struct Endpoint {
    pub method: Method,
    pub template: &'static str,
    pub kind: Kind,
    pub route: Route,
    pub resource: Resource,
    pub doc: &'static str,
    /// Query keys dockerd reads as lists (`r.Form["t"]`); any other key given twice is refused,
    /// since dockerd reads only its first value.
    pub lists: &'static [&'static str],
    /// What dockerd reads from the body.
    pub body: Body,
    /// Which existing object the request acts through.
    pub through: Through,
}

impl Endpoint {
    const fn lists(self, lists: &'static [&'static str]) -> Endpoint {
        Endpoint { lists, ..self }
    }

    const fn body(self, body: Body) -> Endpoint {
        Endpoint { body, ..self }
    }

    const fn through(self, through: Through) -> Endpoint {
        Endpoint { through, ..self }
    }
}

const fn ep(
    method: Method,
    template: &'static str,
    kind: Kind,
    route: Route,
    resource: Resource,
    doc: &'static str,
) -> Endpoint {
    Endpoint {
        method,
        template,
        kind,
        route,
        resource,
        doc,
        lists: &[],
        body: Body::None,
        through: Through::Nothing,
    }
}

use Kind::*;
use Method::{Delete, Get, Head, Post, Put};
use Resource as R;
use Route::{Direct, Mediated, Stream};

/// Every endpoint of the Engine API up to v1.50. Order matters only where templates
/// overlap: literal rows come before `{id}`/`{name*}` rows that could also match.
pub static ENDPOINTS: &[Endpoint] = &[
    // === Containers ===
    ep(
        Get,
        "/containers/json",
        Read,
        Direct,
        R::None,
        "List containers",
    ),
    ep(
        Post,
        "/containers/create",
        Write,
        Mediated,
        R::Container,
        "Create a container",
    )
    .body(Body::ContainerCreate),
    ep(
        Post,
        "/containers/prune",
        Write,
        Direct,
        R::None,
        "Delete stopped containers",
    )
    .through(Through::Filter),
    ep(
        Get,
        "/containers/{id}/json",
        Read,
        Direct,
        R::Container,
        "Inspect a container",
    ),
    ep(
        Get,
        "/containers/{id}/top",
        Read,
        Direct,
        R::Container,
        "List processes running inside a container",
    ),
    ep(
        Get,
        "/containers/{id}/logs",
        Read,
        Stream,
        R::Container,
        "Get container logs",
    ),
    ep(
        Get,
        "/containers/{id}/changes",
        Read,
        Direct,
        R::Container,
        "Get changes on a container's filesystem",
    ),
    ep(
        Get,
        "/containers/{id}/export",
        Read,
        Stream,
        R::Container,
        "Export a container",
    )
    .through(Through::Path),
    ep(
        Get,
        "/containers/{id}/stats",
        Read,
        Stream,
        R::Container,
        "Get container stats based on resource usage",
    ),
    ep(
        Post,
        "/containers/{id}/resize",
        Write,
        Direct,
        R::Container,
        "Resize a container TTY",
    )
    .through(Through::Path),
    ep(
        Post,
        "/containers/{id}/start",
        Write,
        Direct,
        R::Container,
        "Start a container",
    )
    .through(Through::Path)
    .body(Body::ContainerStart),
    ep(
        Post,
        "/containers/{id}/stop",
        Write,
        Direct,
        R::Container,
        "Stop a container",
    )
    .through(Through::Path),
    ep(
        Post,
        "/containers/{id}/restart",
        Write,
        Direct,
        R::Container,
        "Restart a container",
    )
    .through(Through::Path),
    ep(
        Post,
        "/containers/{id}/kill",
        Write,
        Direct,
        R::Container,
        "Kill a container",
    )
    .through(Through::Path),
    ep(
        Post,
        "/containers/{id}/update",
        Write,
        Mediated,
        R::Container,
        "Update a container",
    )
    .through(Through::Path)
    .body(Body::ContainerUpdate),
    ep(
        Post,
        "/containers/{id}/rename",
        Write,
        Direct,
        R::Container,
        "Rename a container",
    )
    .through(Through::Path),
    ep(
        Post,
        "/containers/{id}/pause",
        Write,
        Direct,
        R::Container,
        "Pause a container",
    )
    .through(Through::Path),
    ep(
        Post,
        "/containers/{id}/unpause",
        Write,
        Direct,
        R::Container,
        "Unpause a container",
    )
    .through(Through::Path),
    ep(
        Post,
        "/containers/{id}/attach",
        Exec,
        Stream,
        R::Container,
        "Attach to a container",
    )
    .through(Through::Path),
    ep(
        Get,
        "/containers/{id}/attach/ws",
        Exec,
        Stream,
        R::Container,
        "Attach to a container via a websocket",
    )
    .through(Through::Path),
    ep(
        Post,
        "/containers/{id}/wait",
        Read,
        Stream,
        R::Container,
        "Wait for a container",
    ),
    ep(
        Delete,
        "/containers/{name*}",
        Write,
        Direct,
        R::Container,
        "Remove a container",
    )
    .through(Through::Path),
    ep(
        Head,
        "/containers/{id}/archive",
        Read,
        Direct,
        R::Container,
        "Get information about files in a container",
    )
    .through(Through::Path),
    ep(
        Get,
        "/containers/{id}/archive",
        Read,
        Stream,
        R::Container,
        "Get an archive of a filesystem resource in a container",
    )
    .through(Through::Path),
    ep(
        Put,
        "/containers/{id}/archive",
        Write,
        Stream,
        R::Container,
        "Extract an archive of files or folders to a directory in a container",
    )
    .through(Through::Path)
    .body(Body::Archive),
    ep(
        Post,
        "/containers/{id}/exec",
        Exec,
        Mediated,
        R::Container,
        "Create an exec instance",
    )
    .through(Through::Path)
    .body(Body::ExecCreate),
    // === Exec ===
    ep(
        Post,
        "/exec/{id}/start",
        Exec,
        Stream,
        R::Exec,
        "Start an exec instance",
    )
    .through(Through::Path)
    .body(Body::ExecStart),
    ep(
        Post,
        "/exec/{id}/resize",
        Exec,
        Direct,
        R::Exec,
        "Resize an exec instance",
    )
    .through(Through::Path),
    ep(
        Get,
        "/exec/{id}/json",
        Read,
        Direct,
        R::Exec,
        "Inspect an exec instance",
    ),
    // === Images ===
    ep(Get, "/images/json", Read, Direct, R::None, "List images"),
    ep(Post, "/build", Build, Stream, R::Image, "Build an image")
        .body(Body::BuildContext)
        // `dockerfile` is read once (the first), but docker-py sends an out-of-context
        // Dockerfile as a second value after its name in the archive.
        .lists(&["t", "extrahosts", "securityopt", "dockerfile"]),
    ep(
        Post,
        "/build/prune",
        Build,
        Direct,
        R::None,
        "Delete builder cache",
    ),
    ep(
        Post,
        "/build/cancel",
        Build,
        Direct,
        R::None,
        "Cancel a build",
    ),
    ep(
        Post,
        "/images/create",
        Image,
        Stream,
        R::Image,
        "Create an image (pull or import)",
    )
    .body(Body::Archive)
    .lists(&["changes"]),
    ep(
        Get,
        "/images/search",
        Read,
        Direct,
        R::None,
        "Search images",
    ),
    ep(
        Post,
        "/images/prune",
        Image,
        Direct,
        R::None,
        "Delete unused images",
    )
    .through(Through::Filter),
    ep(
        Get,
        "/images/get",
        Read,
        Stream,
        R::Image,
        "Export several images",
    )
    .lists(&["names"]),
    ep(
        Post,
        "/images/load",
        Image,
        Stream,
        R::Image,
        "Import images",
    )
    .body(Body::Archive),
    ep(
        Get,
        "/images/{name*}/json",
        Read,
        Direct,
        R::Image,
        "Inspect an image",
    ),
    ep(
        Get,
        "/images/{name*}/history",
        Read,
        Direct,
        R::Image,
        "Get the history of an image",
    ),
    ep(
        Post,
        "/images/{name*}/push",
        Image,
        Stream,
        R::Image,
        "Push an image",
    )
    .body(Body::RegistryAuth),
    ep(
        Post,
        "/images/{name*}/tag",
        Image,
        Direct,
        R::Image,
        "Tag an image",
    ),
    ep(
        Get,
        "/images/{name*}/get",
        Read,
        Stream,
        R::Image,
        "Export an image",
    ),
    ep(
        Delete,
        "/images/{name*}",
        Image,
        Direct,
        R::Image,
        "Remove an image",
    ),
    ep(
        Post,
        "/commit",
        Write,
        Mediated,
        R::Container,
        "Create a new image from a container",
    )
    .through(Through::Query("container"))
    .body(Body::Commit)
    .lists(&["changes"]),
    // === Networks ===
    ep(Get, "/networks", Read, Direct, R::None, "List networks"),
    ep(
        Post,
        "/networks/create",
        Network,
        Mediated,
        R::Network,
        "Create a network",
    )
    .body(Body::NetworkCreate),
    ep(
        Post,
        "/networks/prune",
        Network,
        Direct,
        R::None,
        "Delete unused networks",
    )
    .through(Through::Filter),
    ep(
        Get,
        "/networks/{id}",
        Read,
        Direct,
        R::Network,
        "Inspect a network",
    ),
    ep(
        Delete,
        "/networks/{id}",
        Network,
        Direct,
        R::Network,
        "Remove a network",
    )
    .through(Through::Path),
    ep(
        Post,
        "/networks/{id}/connect",
        Network,
        Mediated,
        R::Network,
        "Connect a container to a network",
    )
    .through(Through::Path)
    .body(Body::NetworkConnect),
    ep(
        Post,
        "/networks/{id}/disconnect",
        Network,
        Mediated,
        R::Network,
        "Disconnect a container from a network",
    )
    .through(Through::Path)
    .body(Body::NetworkDisconnect),
    // === Volumes ===
    ep(Get, "/volumes", Read, Direct, R::None, "List volumes"),
    ep(
        Post,
        "/volumes/create",
        Volume,
        Mediated,
        R::Volume,
        "Create a volume",
    )
    .body(Body::VolumeCreate),
    ep(
        Post,
        "/volumes/prune",
        Volume,
        Direct,
        R::None,
        "Delete unused volumes",
    )
    .through(Through::Filter),
    ep(
        Get,
        "/volumes/{name}",
        Read,
        Direct,
        R::Volume,
        "Inspect a volume",
    ),
    ep(
        Put,
        "/volumes/{name}",
        Swarm,
        Mediated,
        R::Volume,
        "Update a cluster volume",
    )
    .body(Body::Unmodelled),
    ep(
        Delete,
        "/volumes/{name}",
        Volume,
        Direct,
        R::Volume,
        "Remove a volume",
    )
    .through(Through::Path),
    // === Swarm ===
    ep(Get, "/swarm", Read, Direct, R::None, "Inspect swarm"),
    ep(
        Post,
        "/swarm/init",
        Swarm,
        Mediated,
        R::None,
        "Initialize a new swarm",
    )
    .body(Body::Unmodelled),
    ep(
        Post,
        "/swarm/join",
        Swarm,
        Mediated,
        R::None,
        "Join an existing swarm",
    )
    .body(Body::Unmodelled),
    ep(
        Post,
        "/swarm/leave",
        Swarm,
        Direct,
        R::None,
        "Leave a swarm",
    ),
    ep(
        Post,
        "/swarm/update",
        Swarm,
        Mediated,
        R::None,
        "Update a swarm",
    )
    .body(Body::Unmodelled),
    ep(
        Get,
        "/swarm/unlockkey",
        Swarm,
        Direct,
        R::None,
        "Get the unlock key",
    ),
    ep(
        Post,
        "/swarm/unlock",
        Swarm,
        Mediated,
        R::None,
        "Unlock a locked manager",
    )
    .body(Body::Unmodelled),
    ep(Get, "/nodes", Read, Direct, R::None, "List nodes"),
    ep(Get, "/nodes/{id}", Read, Direct, R::Node, "Inspect a node"),
    ep(
        Delete,
        "/nodes/{id}",
        Swarm,
        Direct,
        R::Node,
        "Delete a node",
    ),
    ep(
        Post,
        "/nodes/{id}/update",
        Swarm,
        Mediated,
        R::Node,
        "Update a node",
    )
    .body(Body::Unmodelled),
    ep(Get, "/services", Read, Direct, R::None, "List services"),
    ep(
        Post,
        "/services/create",
        Swarm,
        Mediated,
        R::Service,
        "Create a service",
    )
    .body(Body::Unmodelled),
    ep(
        Get,
        "/services/{id}",
        Read,
        Direct,
        R::Service,
        "Inspect a service",
    ),
    ep(
        Delete,
        "/services/{id}",
        Swarm,
        Direct,
        R::Service,
        "Delete a service",
    ),
    ep(
        Post,
        "/services/{id}/update",
        Swarm,
        Mediated,
        R::Service,
        "Update a service",
    )
    .body(Body::Unmodelled),
    ep(
        Get,
        "/services/{id}/logs",
        Read,
        Stream,
        R::Service,
        "Get service logs",
    ),
    ep(Get, "/tasks", Read, Direct, R::None, "List tasks"),
    ep(Get, "/tasks/{id}", Read, Direct, R::Task, "Inspect a task"),
    ep(
        Get,
        "/tasks/{id}/logs",
        Read,
        Stream,
        R::Task,
        "Get task logs",
    ),
    ep(Get, "/secrets", Read, Direct, R::None, "List secrets"),
    ep(
        Post,
        "/secrets/create",
        Swarm,
        Mediated,
        R::Secret,
        "Create a secret",
    )
    .body(Body::Unmodelled),
    ep(
        Get,
        "/secrets/{id}",
        Read,
        Direct,
        R::Secret,
        "Inspect a secret",
    ),
    ep(
        Delete,
        "/secrets/{id}",
        Swarm,
        Direct,
        R::Secret,
        "Delete a secret",
    ),
    ep(
        Post,
        "/secrets/{id}/update",
        Swarm,
        Mediated,
        R::Secret,
        "Update a secret",
    )
    .body(Body::Unmodelled),
    ep(Get, "/configs", Read, Direct, R::None, "List configs"),
    ep(
        Post,
        "/configs/create",
        Swarm,
        Mediated,
        R::Config,
        "Create a config",
    )
    .body(Body::Unmodelled),
    ep(
        Get,
        "/configs/{id}",
        Read,
        Direct,
        R::Config,
        "Inspect a config",
    ),
    ep(
        Delete,
        "/configs/{id}",
        Swarm,
        Direct,
        R::Config,
        "Delete a config",
    ),
    ep(
        Post,
        "/configs/{id}/update",
        Swarm,
        Mediated,
        R::Config,
        "Update a config",
    )
    .body(Body::Unmodelled),
    // === Plugins ===
    ep(Get, "/plugins", Read, Direct, R::None, "List plugins"),
    ep(
        Get,
        "/plugins/privileges",
        Read,
        Direct,
        R::None,
        "Get plugin privileges",
    ),
    ep(
        Post,
        "/plugins/pull",
        Plugin,
        Mediated,
        R::Plugin,
        "Install a plugin",
    )
    .body(Body::Unmodelled),
    ep(
        Post,
        "/plugins/create",
        Plugin,
        Stream,
        R::Plugin,
        "Create a plugin",
    )
    .body(Body::Unmodelled),
    ep(
        Get,
        "/plugins/{name*}/json",
        Read,
        Direct,
        R::Plugin,
        "Inspect a plugin",
    ),
    ep(
        Post,
        "/plugins/{name*}/enable",
        Plugin,
        Direct,
        R::Plugin,
        "Enable a plugin",
    ),
    ep(
        Post,
        "/plugins/{name*}/disable",
        Plugin,
        Direct,
        R::Plugin,
        "Disable a plugin",
    ),
    ep(
        Post,
        "/plugins/{name*}/upgrade",
        Plugin,
        Mediated,
        R::Plugin,
        "Upgrade a plugin",
    )
    .body(Body::Unmodelled),
    ep(
        Post,
        "/plugins/{name*}/push",
        Plugin,
        Stream,
        R::Plugin,
        "Push a plugin",
    )
    .body(Body::Unmodelled),
    ep(
        Post,
        "/plugins/{name*}/set",
        Plugin,
        Mediated,
        R::Plugin,
        "Configure a plugin",
    )
    .body(Body::Unmodelled),
    ep(
        Delete,
        "/plugins/{name*}",
        Plugin,
        Direct,
        R::Plugin,
        "Remove a plugin",
    ),
    // === System ===
    // `docker login`: dockerd checks credentials against a registry, as a pull would; the
    // kind that pulls and pushes may log in.
    ep(
        Post,
        "/auth",
        Image,
        Mediated,
        R::None,
        "Check registry credentials",
    )
    .body(Body::RegistryAuth),
    ep(
        Get,
        "/info",
        Read,
        Direct,
        R::None,
        "Get system information",
    ),
    ep(Get, "/version", Read, Direct, R::None, "Get version"),
    ep(Get, "/_ping", Read, Direct, R::None, "Ping"),
    ep(Head, "/_ping", Read, Direct, R::None, "Ping"),
    ep(Get, "/events", Read, Stream, R::None, "Monitor events"),
    ep(
        Get,
        "/system/df",
        Read,
        Direct,
        R::None,
        "Get data usage information",
    ),
    ep(
        Get,
        "/distribution/{name*}/json",
        Read,
        Direct,
        R::Image,
        "Get image information from the registry",
    ),
    ep(
        Post,
        "/session",
        Build,
        Stream,
        R::None,
        "Start an interactive session (BuildKit, h2c)",
    ),
    ep(
        Post,
        "/grpc",
        Build,
        Stream,
        R::None,
        "BuildKit's gRPC endpoint (h2c)",
    ),
];

/// A request matched to its endpoint, with the values of the template's parameters.
#[derive(Debug)]
pub struct Match {
    pub endpoint: &'static Endpoint,
    /// The `{id}` or `{name*}` value (segments joined with `/`), if the template has one.
    pub param: Option<String>,
}

/// The endpoint a request is for; `None` when the API has no such endpoint. Every request
/// runs it (in nginx's worker too): the templates are split once, and a match allocates only
/// the parameter it returns.
pub fn find(method: Method, uri: &CanonicalUri) -> Option<Match> {
    ENDPOINTS
        .iter()
        .zip(templates())
        .filter(|(e, _)| e.method == method)
        .find_map(|(e, t)| {
            t.matches(&uri.segments)
                .map(|param| Match { endpoint: e, param })
        })
}

/// A template split into its segments, and where `{name*}` is.
struct Template {
    parts: Vec<&'static str>,
    star: Option<usize>,
}

/// The templates of [`ENDPOINTS`], in the same order.
fn templates() -> &'static [Template] {
    static TEMPLATES: std::sync::OnceLock<Vec<Template>> = std::sync::OnceLock::new();
    TEMPLATES.get_or_init(|| {
        ENDPOINTS
            .iter()
            .map(|e| {
                let parts: Vec<&'static str> = e.template[1..].split('/').collect();
                let star = parts.iter().position(|p| *p == "{name*}");
                Template { parts, star }
            })
            .collect()
    })
}

impl Template {
    /// Matches path segments; `Some(param)` on success.
    fn matches(&self, segments: &[String]) -> Option<Option<String>> {
        let parts = &self.parts;
        match self.star {
            None => {
                if parts.len() != segments.len() {
                    return None;
                }
                let mut param = None;
                for (p, s) in parts.iter().zip(segments) {
                    match *p {
                        "{id}" | "{name}" => param = Some(s),
                        literal if literal == s => {}
                        _ => return None,
                    }
                }
                Some(param.cloned())
            }
            Some(star) => {
                let (head, tail) = (&parts[..star], &parts[star + 1..]);
                // `{name*}` takes at least one segment.
                if segments.len() < head.len() + tail.len() + 1 {
                    return None;
                }
                let name_end = segments.len() - tail.len();
                let head_ok = head
                    .iter()
                    .zip(&segments[..head.len()])
                    .all(|(p, s)| p == s);
                let tail_ok = tail.iter().zip(&segments[name_end..]).all(|(p, s)| p == s);
                (head_ok && tail_ok).then(|| Some(segments[head.len()..name_end].join("/")))
            }
        }
    }
}

#[cfg(test)]
mod tests;
