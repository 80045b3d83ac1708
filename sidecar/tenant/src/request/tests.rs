//! Admission and body rewriting against a fake engine: two tenants' objects and a shared
//! image, answered as dockerd answers the lookups the tenant code makes.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use dockgate_api::endpoints::{self, Method};
use dockgate_api::uri::canonicalize;
use serde_json::{json, Value as Json};

use super::*;
use crate::body::rewrite_body;
use crate::build::rewrite_dockerfile;

/// Runs a future whose awaits are all ready (the fake engine never waits).
fn run<F: Future>(future: F) -> F::Output {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the fake engine does not wait"),
    }
}

/// The engine's objects: each with `Id`, `Name` (containers and networks: the engine's
/// name), `Labels`, images with `RepoTags`.
struct Fake {
    containers: Vec<Json>,
    networks: Vec<Json>,
    images: Vec<Json>,
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The `label=` values of a `filters` query value, which every listed object must have.
fn labelled(object: &Json, query: &str, labels_at: &str) -> bool {
    let Some(filters) = query.split('&').find_map(|kv| kv.strip_prefix("filters=")) else {
        return true;
    };
    let filters: Json = serde_json::from_str(&decode(filters)).unwrap();
    let wanted: Vec<String> = match &filters["label"] {
        Json::Array(v) => v.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        Json::Object(m) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    wanted.iter().all(|w| {
        let (k, v) = w.split_once('=').unwrap();
        object
            .pointer(labels_at)
            .and_then(|l| l.get(k))
            .and_then(Json::as_str)
            == Some(v)
    })
}

impl Fake {
    fn answer(&self, path: &str) -> (u16, Json) {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let parts: Vec<String> = path[1..].split('/').map(decode).collect();
        let missing = (404, json!({"message": "not found"}));
        let find = |list: &[Json], reference: &str| {
            list.iter()
                .find(|o| o["Id"] == reference || o["Name"] == reference)
                .cloned()
        };
        match parts
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["containers", "json"] => (
                200,
                Json::Array(
                    self.containers
                        .iter()
                        .filter(|c| labelled(c, query, "/Labels"))
                        .cloned()
                        .collect(),
                ),
            ),
            ["containers", reference, "json"] => match find(&self.containers, reference) {
                Some(c) => (
                    200,
                    json!({"Id": c["Id"], "Config": {"Labels": c["Labels"]}}),
                ),
                None => missing,
            },
            ["networks"] if decode(query).contains(r#""type":["builtin"]"#) => (
                200,
                Json::Array(
                    self.networks
                        .iter()
                        .filter(|n| n["Name"] == "none")
                        .cloned()
                        .collect(),
                ),
            ),
            ["networks"] => (
                200,
                Json::Array(
                    self.networks
                        .iter()
                        .filter(|n| labelled(n, query, "/Labels"))
                        .cloned()
                        .collect(),
                ),
            ),
            ["networks", reference] => {
                find(&self.networks, reference).map_or(missing, |n| (200, n))
            }
            ["images", "json"] => (200, Json::Array(self.images.clone())),
            [_, ..] if parts[0] == "images" && parts.last().map(String::as_str) == Some("json") => {
                let reference = parts[1..parts.len() - 1].join("/");
                let with_tag = if reference.contains(':') {
                    reference.clone()
                } else {
                    format!("{reference}:latest")
                };
                self.images
                    .iter()
                    .find(|i| {
                        i["Id"] == reference.as_str()
                            || i["RepoTags"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .any(|t| *t == with_tag.as_str())
                    })
                    .map_or(missing, |i| {
                        (
                            200,
                            json!({"Id": i["Id"], "RepoTags": i["RepoTags"],
                                   "Config": {"Labels": i["Labels"], "OnBuild": i["OnBuild"]}}),
                        )
                    })
            }
            _ => missing,
        }
    }
}

impl Engine for Fake {
    fn get(&self, path: &str) -> impl Future<Output = Result<(u16, Json), Refusal>> + Send {
        std::future::ready(Ok(self.answer(path)))
    }
}

const A_WEB: &str = "a0a0000000000000000000000000000000000000000000000000000000000001";
const B_WEB: &str = "b0b0000000000000000000000000000000000000000000000000000000000002";
const A_NET: &str = "a1a1000000000000000000000000000000000000000000000000000000000003";
const B_NET: &str = "b1b1000000000000000000000000000000000000000000000000000000000004";
const NONE_NET: &str = "c1c1000000000000000000000000000000000000000000000000000000000008";
const B_IMAGE: &str = "sha256:b2b2000000000000000000000000000000000000000000000000000000000005";
const B_STEP: &str = "sha256:b3b3000000000000000000000000000000000000000000000000000000000006";
const A_STEP: &str = "sha256:a3a3000000000000000000000000000000000000000000000000000000000007";

fn engine() -> Fake {
    let owned = |t: &str| json!({"dockgate.tenant": t});
    Fake {
        containers: vec![
            json!({"Id": A_WEB, "Name": "alpha.web", "Labels": owned("alpha")}),
            json!({"Id": B_WEB, "Name": "beta.web", "Labels": owned("beta")}),
        ],
        networks: vec![
            json!({"Id": A_NET, "Name": "alpha.net", "Labels": owned("alpha")}),
            json!({"Id": B_NET, "Name": "beta.net", "Labels": owned("beta")}),
            json!({"Id": NONE_NET, "Name": "none", "Labels": {}}),
        ],
        images: vec![
            json!({"Id": "sha256:c0c0", "RepoTags": ["busybox:latest"], "Labels": null, "OnBuild": null}),
            json!({"Id": B_IMAGE, "RepoTags": ["dockgate-beta/library/secret:latest"], "Labels": owned("beta"), "OnBuild": null}),
            json!({"Id": B_STEP, "RepoTags": [], "Labels": owned("beta"), "OnBuild": null}),
            json!({"Id": A_STEP, "RepoTags": [], "Labels": owned("alpha"), "OnBuild": null}),
            json!({"Id": "sha256:a4a4", "RepoTags": ["dockgate-alpha/library/trap:latest"], "Labels": owned("alpha"),
                   "OnBuild": ["COPY --from=dockgate-beta/library/secret / /"]}),
            json!({"Id": "sha256:e0e0", "RepoTags": ["dockgate-alpha/library/both:1", "team/shared:1"], "Labels": owned("alpha"), "OnBuild": null}),
            json!({"Id": "sha256:f0f0", "RepoTags": ["onbuild:latest"], "Labels": null,
                   "OnBuild": ["RUN cat /proc/sys/kernel/random/uuid > /token"]}),
            json!({"Id": "sha256:f1f1", "RepoTags": ["dockgate-alpha/library/mybase:latest"], "Labels": null,
                   "OnBuild": ["RUN date > /d"]}),
            // Pulled with beta's label, but tagged (an admin's): shared, and nobody's own.
            json!({"Id": "sha256:d0d0", "RepoTags": ["planted:1"], "Labels": owned("beta"), "OnBuild": null}),
        ],
    }
}

fn alpha() -> Tenant {
    Tenant {
        name: "alpha".into(),
        max_containers: None,
        max_memory: None,
        shared_images: vec!["*".into()],
    }
}

/// Admits `method raw` for alpha: the URI dockerd gets, or the refusal.
fn admitted(method: &str, raw: &str) -> Result<String, Refusal> {
    let uri = canonicalize(raw).unwrap();
    let found = endpoints::find(Method::parse(method).unwrap(), &uri).unwrap();
    let param = found.param.clone();
    run(admit(
        &engine(),
        &alpha(),
        found.endpoint,
        param.as_deref(),
        uri,
    ))
    .map(|a| a.uri.to_string())
}

fn missing(r: Result<String, Refusal>) -> String {
    let r = r.unwrap_err();
    assert_eq!(r.status, Status::NotFound, "{r:?}");
    assert!(!r.message.starts_with("dockgate:"), "{r:?}");
    r.message
}

#[test]
fn references_in_paths_resolve_in_the_namespace_only() {
    assert_eq!(
        admitted("GET", "/containers/web/json").unwrap(),
        format!("/containers/{A_WEB}/json")
    );
    assert_eq!(
        admitted("GET", "/containers/a0a0/json").unwrap(),
        format!("/containers/{A_WEB}/json")
    );
    for reference in [B_WEB, "b0b0", "beta.web"] {
        let m = missing(admitted("GET", &format!("/containers/{reference}/json")));
        assert_eq!(m, format!("No such container: {reference}"));
    }
    assert_eq!(
        missing(admitted("GET", &format!("/networks/{}", &B_NET[..12]))),
        format!("network {} not found", &B_NET[..12])
    );
    // The built-in networks are everyone's, by name or ID; beta's cannot make a prefix
    // ambiguous.
    assert_eq!(admitted("GET", "/networks/c1c1").unwrap(), "/networks/none");
    // Images: beta's tag, ID, build step; a tagged image's label is not ownership.
    for reference in ["dockgate-beta/library/secret", &B_IMAGE[7..19], B_STEP] {
        missing(admitted("GET", &format!("/images/{reference}/json")));
    }
    assert_eq!(
        admitted("GET", &format!("/images/{}/json", &A_STEP[7..19])).unwrap(),
        format!("/images/{A_STEP}/json")
    );
    let r = admitted("DELETE", "/images/planted:1").unwrap_err();
    assert_eq!(r.status, Status::Forbidden, "{r:?}");
    // Alpha's image an admin also tagged as shared: alpha's tag goes by name, not the image
    // by ID (that would take the shared tag too).
    assert_eq!(
        admitted("DELETE", "/images/both:1").unwrap(),
        "/images/dockgate-alpha/library/both:1"
    );
    let r = admitted("DELETE", "/images/e0e0").unwrap_err();
    assert_eq!(r.status, Status::Forbidden, "{r:?}");
    assert_eq!(
        admitted("GET", "/images/e0e0/json").unwrap(),
        "/images/sha256:e0e0/json"
    );
    // An import is labelled as the tenant's.
    let uri = admitted("POST", "/images/create?fromSrc=-&repo=imp").unwrap();
    assert!(
        uri.ends_with("changes=LABEL%20dockgate.tenant%3Dalpha"),
        "{uri}"
    );
}

#[test]
fn order_filters_answer_another_tenants_object_as_missing() {
    let m = missing(admitted(
        "GET",
        "/containers/json?filters=%7B%22since%22%3A%5B%22b0b0%22%5D%7D",
    ));
    assert_eq!(m, "No such container: b0b0");
    let own = admitted("GET", "/containers/json?before=web").unwrap();
    assert!(own.contains(&format!("before={A_WEB}")), "{own}");
    missing(admitted(
        "GET",
        &format!(
            "/images/json?filters=%7B%22since%22%3A%7B%22{}%22%3Atrue%7D%7D",
            &B_IMAGE[7..19]
        ),
    ));
}

#[test]
fn builds_are_classic_and_their_references_are_the_tenants() {
    let r = admitted("POST", "/build?version=2&t=x").unwrap_err();
    assert_eq!(r.status, Status::Forbidden);
    for pull in ["1", "true", "True", "yes", "x"] {
        let r = admitted("POST", &format!("/build?t=x&pull={pull}")).unwrap_err();
        assert_eq!(r.status, Status::Forbidden, "{pull}");
    }
    for pull in ["", "0", "false", "no", "none"] {
        assert!(
            admitted("POST", &format!("/build?t=x&pull={pull}")).is_ok(),
            "{pull}"
        );
    }
    let uri = admitted(
        "POST",
        "/build?t=app&cachefrom=%5B%22dockgate-beta%2Flibrary%2Fsecret%22%2C%22busybox%22%5D",
    )
    .unwrap();
    let uri = canonicalize(&uri).unwrap();
    assert_eq!(uri.query_value("t"), Some("dockgate-alpha/library/app"));
    assert_eq!(uri.query_value("cachefrom"), Some("[\"busybox\"]"));
    assert_eq!(
        uri.query_value("labels"),
        Some("{\"dockgate.tenant\":\"alpha\"}")
    );

    let args = Default::default();
    let rewrite = |text: &str| run(rewrite_dockerfile(&engine(), &alpha(), &args, text, true));
    let r = rewrite("FROM dockgate-beta/library/secret\n").unwrap_err();
    assert_eq!(r.status, Status::NotFound, "{r:?}");
    let r = rewrite(&format!(
        "FROM busybox\nCOPY --from={} / /\n",
        &B_IMAGE[7..19]
    ))
    .unwrap_err();
    assert_eq!(r.status, Status::NotFound, "{r:?}");
    let r = rewrite("FROM trap\n").unwrap_err();
    assert!(r.message.contains("copies from another image"), "{r:?}");
    // A shared base's triggers would run before the tenant's label: a shared cache.
    let r = rewrite("FROM onbuild\n").unwrap_err();
    assert!(r.message.contains("has ONBUILD triggers"), "{r:?}");
    // As a COPY --from source its triggers do not run.
    assert!(rewrite("FROM busybox\nCOPY --from=onbuild / /\n").is_ok());
    // The tenant's own base may have them.
    assert!(rewrite("FROM mybase\n").is_ok());
    assert_eq!(
        rewrite(&format!(
            "FROM {}\nCOPY --from=busybox / /\n",
            &A_STEP[7..19]
        ))
        .unwrap(),
        format!("FROM {A_STEP}\nLABEL dockgate.tenant=alpha\nCOPY --from=sha256:c0c0 / /\n")
    );
}

#[test]
fn bodies_name_the_tenants_objects_or_fail_as_dockerd_does() {
    let create = |body: Json| {
        let mut value = dockgate_policy::gojson::parse(body.to_string().as_bytes()).unwrap();
        run(rewrite_body(
            &engine(),
            &alpha(),
            "/containers/create",
            &mut value,
        ))
        .map(|()| serde_json::from_str::<Json>(&value.to_json()).unwrap())
    };
    let ok = create(json!({
        "Image": "busybox",
        "HostConfig": {"NetworkMode": "net", "VolumesFrom": ["web:ro"]},
        "NetworkingConfig": {"EndpointsConfig": {"net": {"NetworkID": &A_NET[..12]}}},
    }))
    .unwrap();
    assert_eq!(ok["HostConfig"]["NetworkMode"], "alpha.net");
    assert_eq!(ok["HostConfig"]["VolumesFrom"][0], format!("{A_WEB}:ro"));
    assert_eq!(
        ok["NetworkingConfig"]["EndpointsConfig"]["alpha.net"]["NetworkID"],
        "alpha.net"
    );
    assert_eq!(ok["Labels"]["dockgate.tenant"], "alpha");
    // Beta's network by ID in the endpoint: missing, in dockerd's words, with a 400 (a 404 to
    // a create makes the CLI pull the image).
    let r = create(json!({
        "Image": "busybox",
        "NetworkingConfig": {"EndpointsConfig": {"net": {"NetworkID": B_NET}}},
    }))
    .unwrap_err();
    assert_eq!(
        (r.status, r.message),
        (Status::BadRequest, format!("network {B_NET} not found"))
    );
    for host in [
        json!({"NetworkMode": "beta.net"}),
        json!({"NetworkMode": "container:b0b0"}),
        json!({"PidMode": "container:beta.web"}),
        json!({"IpcMode": format!("container:{B_WEB}")}),
    ] {
        let r = create(json!({"Image": "busybox", "HostConfig": host})).unwrap_err();
        assert_eq!(r.status, Status::BadRequest, "{host}: {r:?}");
        assert!(!r.message.starts_with("dockgate:"), "{r:?}");
    }
    // Beta's container in --volumes-from and --link: dockerd's 400.
    let r =
        create(json!({"Image": "busybox", "HostConfig": {"VolumesFrom": ["b0b0"]}})).unwrap_err();
    assert_eq!(
        (r.status, r.message.as_str()),
        (Status::BadRequest, "No such container: b0b0")
    );
    let r =
        create(json!({"Image": "busybox", "HostConfig": {"Links": ["beta.web:db"]}})).unwrap_err();
    assert_eq!(r.status, Status::BadRequest);
    assert!(
        r.message
            .starts_with("could not get container for beta.web"),
        "{r:?}"
    );
    // Beta's image.
    let r = create(json!({"Image": &B_IMAGE[7..19]})).unwrap_err();
    assert_eq!(r.status, Status::NotFound);
}
