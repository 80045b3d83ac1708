//! The registry front-end and pull-through cache (nginx-conf/registry-*.conf) with real
//! parts: CNCF distribution as hosted and upstream registry, stock nginx, the sidecar, the
//! docker CLI through the system dockerd, and skopeo.

use std::time::Duration;

use dockgate_tests::registry::*;
use dockgate_tests::{wait_until, TempDir};


fn setup(opts: FrontendOptions) -> (Distribution, Distribution, Frontend) {
    let hosted = Distribution::start("hosted");
    let upstream = Distribution::start("upstream");
    let fe = Frontend::start(&hosted, upstream.port, opts);
    (hosted, upstream, fe)
}

#[test]
fn login_challenge_and_api_version_header() {
    let (_h, _u, fe) = setup(FrontendOptions::default());
    let url = format!("http://127.0.0.1:{}/v2/", fe.team_a_port);
    let r = http("GET", &url, &[]);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"dockgate test registry\"")
    );
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
    assert!(r.text().contains("\"UNAUTHORIZED\""), "{}", r.text());
    let r = http("GET", &url, &["-u", &alice()]);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), fe.error_log());
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
    let r = http("GET", &url, &["-u", "alice:wrong"]);
    assert_eq!(r.status, 401);
}

/// Tags made in the system dockerd, removed (tags only) on drop.
struct Tags<'a>(&'a DockerClient, Vec<String>);

impl Tags<'_> {
    fn tag(&mut self, image: &str, name: &str) {
        self.0.ok(&["tag", image, name]);
        self.1.push(name.to_string());
    }
}

impl Drop for Tags<'_> {
    fn drop(&mut self) {
        for t in &self.1 {
            let _ = self.0.run(&["rmi", t]);
        }
    }
}

fn manifest_digest(registry: &str, name_ref: &str, creds: Option<&str>) -> String {
    let (name, reference) = name_ref.rsplit_once(':').expect("name:ref");
    let url = format!("http://{registry}/v2/{name}/manifests/{reference}");
    let mut extra = vec!["-H", ACCEPT_MANIFESTS];
    if let Some(c) = creds {
        extra.extend(["-u", c]);
    }
    let r = http("GET", &url, &extra);
    assert_eq!(r.status, 200, "GET {url}: {}", r.text());
    r.header("docker-content-digest").expect("digest").to_string()
}

#[test]
fn docker_push_and_pull_through_host_and_port_mapping() {
    let (hosted, _u, fe) = setup(FrontendOptions::default());
    let image = test_image(120);
    let docker = DockerClient::new();
    let host_a = format!("localhost:{}", fe.host_port);
    let host_b = format!("127.0.0.1:{}", fe.host_port);
    let port_b = format!("127.0.0.1:{}", fe.team_b_port);
    docker.login(&host_a, "alice", ALICE_TOKEN);
    docker.login(&host_b, "alice", ALICE_TOKEN);
    docker.login(&port_b, "bob", BOB_TOKEN);
    let mut tags = Tags(&docker, Vec::new());

    // Host mapping: localhost is team-a, where alice pushes.
    let a = format!("{host_a}/app:v1");
    tags.tag(&image, &a);
    docker.ok(&["push", &a]);
    let pushed = manifest_digest(&hosted.url(), "team-a/app:v1", None);
    assert_eq!(manifest_digest(&host_a, "app:v1", Some(&alice())), pushed);

    // 127.0.0.1 on the same port is team-b: alice may only pull there; the CLI says why.
    let b = format!("{host_b}/app:v1");
    tags.tag(&image, &b);
    let out = docker.run(&["push", &b]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("denied: dockgate: user alice may not push team-b/app (push rights: team-a/)"),
        "{err}"
    );
    assert_eq!(hosted.requests("PUT", "/v2/team-b/"), 0);

    // Port mapping: bob pushes to team-b on its own port.
    let pb = format!("{port_b}/app:v1");
    tags.tag(&image, &pb);
    docker.ok(&["push", &pb]);
    assert_eq!(manifest_digest(&hosted.url(), "team-b/app:v1", None), pushed);
    // Alice pulls team-b's image by host name (docker: manifest; skopeo: every blob).
    docker.ok(&["pull", &b]);
    let dir = TempDir::new("pulled").unwrap();
    let dest = format!("dir:{}", dir.path().display());
    skopeo(&["copy", "--src-creds", &alice(), &format!("docker://{b}"), &dest]);
    assert_eq!(dir_layers(dir.path()).len(), 1 + 4, "config and four layers");

    // skopeo pushes too (its own upload pattern), and docker pulls the result.
    let a2 = format!("docker://127.0.0.1:{}/tools/app2:v2", fe.team_a_port);
    skopeo(&["copy", "--dest-creds", &alice(), &dest, &a2]);
    assert_eq!(
        manifest_digest(&hosted.url(), "team-a/tools/app2:v2", None),
        pushed
    );
    let metrics = fe.metrics();
    assert!(fe.metric("dockgate_registry_pushes_total") >= 3, "{metrics}");
    assert!(
        fe.metric("dockgate_registry_refusals_total{code=\"DENIED\"}") >= 1,
        "{metrics}"
    );
}

/// Seeds the upstream registry with the 120 MB test image as `name:tag` (skopeo straight from
/// the archive: the layers never pass through dockerd).
fn seed(upstream: &Distribution, name_tag: &str, oci: bool) -> String {
    let src = format!("docker-archive:{}", test_archive(120).display());
    let dest = format!("docker://{}/{name_tag}", upstream.url());
    if oci {
        skopeo(&["copy", "--format", "oci", &src, &dest]);
    } else {
        skopeo(&["copy", &src, &dest]);
    }
    manifest_digest(&upstream.url(), name_tag, None)
}

fn pull_to_dir(registry: &str, name_tag: &str, creds: &str) -> (TempDir, Vec<String>) {
    let dir = TempDir::new("pulled").unwrap();
    let dest = format!("dir:{}", dir.path().display());
    skopeo(&["copy", "--src-creds", creds, &format!("docker://{registry}/{name_tag}"), &dest]);
    let layers = dir_layers(dir.path());
    (dir, layers)
}

#[test]
fn concurrent_cold_pulls_fetch_each_blob_once_and_the_cache_outlives_upstream_and_restarts() {
    let (_h, mut upstream, mut fe) = setup(FrontendOptions::default());
    seed(&upstream, "library/big:v1", false);
    let before = upstream.requests("GET", "/v2/library/big/blobs/");
    assert_eq!(before, 0);
    let front = format!("127.0.0.1:{}", fe.team_a_port);

    // Ten independent clients pull the cold image at once.
    let pulls: Vec<_> = (0..10)
        .map(|_| {
            let front = front.clone();
            std::thread::spawn(move || pull_to_dir(&front, "library/big:v1", &alice()))
        })
        .collect();
    let results: Vec<_> = pulls.into_iter().map(|t| t.join().unwrap()).collect();
    let layers = results[0].1.clone();
    assert_eq!(layers.len(), 5, "config and four layers: {layers:?}");
    for (_, l) in &results {
        assert_eq!(l, &layers);
    }
    // One upstream GET per blob, whatever the number of clients.
    for digest in &layers {
        let n = upstream.requests("GET", &format!("/v2/library/big/blobs/{digest}"));
        assert_eq!(n, 1, "{digest} fetched {n} times upstream:\n{}", fe.access_log());
    }
    assert!(fe.metric("dockgate_registry_cache_answers_total{kind=\"blob\",cache=\"MISS\"}") >= 5);
    let hits = "dockgate_registry_cache_answers_total{kind=\"blob\",cache=\"HIT\"}";
    assert!(
        wait_until(Duration::from_secs(5), || fe.metric(hits) >= 45),
        "{}",
        fe.metrics()
    );
    assert!(fe.metric("dockgate_registry_cache_bytes_total{kind=\"blob\",cache=\"HIT\"}") > 9 * 100_000_000);

    // The upstream goes away: the image still comes, from the cache, and after a restart of
    // nginx too (the cache is on disk).
    upstream.stop();
    let (_d, l) = pull_to_dir(&front, "library/big:v1", &alice());
    assert_eq!(l, layers);
    fe.restart_nginx();
    let (_d, l) = pull_to_dir(&front, "library/big:v1", &alice());
    assert_eq!(l, layers);
    // Same content under another team and repository name: the same cache entries.
    let other = format!("127.0.0.1:{}", fe.team_b_port);
    let digest = &layers[1];
    let r = http(
        "HEAD",
        &format!("http://{other}/v2/mirror/anything/blobs/{digest}"),
        &["-u", &bob()],
    );
    assert_eq!(r.status, 502, "HEAD was never cached, and the upstream is down");
    let r = http(
        "GET",
        &format!("http://{other}/v2/mirror/anything/blobs/{digest}"),
        &["-u", &bob()],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(format!("sha256:{}", sha256_file_or_bytes(&r.body)), *digest);
}
