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
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert!(r.text().contains("\"UNAUTHORIZED\""), "{}", r.text());
    let r = http("GET", &url, &["-u", &alice()]);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), fe.error_log());
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
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
    r.header("docker-content-digest")
        .expect("digest")
        .to_string()
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
    assert_eq!(
        manifest_digest(&hosted.url(), "team-b/app:v1", None),
        pushed
    );
    // Alice pulls team-b's image by host name (docker: manifest; skopeo: every blob).
    docker.ok(&["pull", &b]);
    let dir = TempDir::new("pulled").unwrap();
    let dest = format!("dir:{}", dir.path().display());
    skopeo(&[
        "copy",
        "--src-creds",
        &alice(),
        &format!("docker://{b}"),
        &dest,
    ]);
    assert_eq!(
        dir_layers(dir.path()).len(),
        1 + 4,
        "config and four layers"
    );

    // skopeo pushes too (its own upload pattern), and docker pulls the result.
    let a2 = format!("docker://127.0.0.1:{}/tools/app2:v2", fe.team_a_port);
    skopeo(&["copy", "--dest-creds", &alice(), &dest, &a2]);
    assert_eq!(
        manifest_digest(&hosted.url(), "team-a/tools/app2:v2", None),
        pushed
    );
    let metrics = fe.metrics();
    assert!(
        fe.metric("dockgate_registry_pushes_total") >= 3,
        "{metrics}"
    );
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

/// Points `to` at the manifest `from` names, on the registry itself.
fn move_tag(registry: &Distribution, name: &str, from: &str, to: &str) {
    let base = format!("http://{}/v2/{name}/manifests", registry.url());
    let m = http("GET", &format!("{base}/{from}"), &["-H", ACCEPT_MANIFESTS]);
    assert_eq!(m.status, 200);
    let file = std::env::temp_dir().join(dockgate_tests::unique_name("manifest"));
    std::fs::write(&file, &m.body).unwrap();
    let ct = format!("Content-Type: {}", m.header("content-type").unwrap());
    let body = format!("@{}", file.display());
    let r = http(
        "PUT",
        &format!("{base}/{to}"),
        &["-H", &ct, "--data-binary", &body],
    );
    let _ = std::fs::remove_file(&file);
    assert_eq!(r.status, 201, "{}", r.text());
}

fn pull_to_dir(registry: &str, name_tag: &str, creds: &str) -> (TempDir, Vec<String>) {
    let dir = TempDir::new("pulled").unwrap();
    let dest = format!("dir:{}", dir.path().display());
    skopeo(&[
        "copy",
        "--src-creds",
        creds,
        &format!("docker://{registry}/{name_tag}"),
        &dest,
    ]);
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
        assert_eq!(
            n,
            1,
            "{digest} fetched {n} times upstream:\n{}",
            fe.access_log()
        );
    }
    assert!(fe.metric("dockgate_registry_cache_answers_total{kind=\"blob\",cache=\"MISS\"}") >= 5);
    let hits = "dockgate_registry_cache_answers_total{kind=\"blob\",cache=\"HIT\"}";
    assert!(
        wait_until(Duration::from_secs(5), || fe.metric(hits) >= 45),
        "{}",
        fe.metrics()
    );
    assert!(
        fe.metric("dockgate_registry_cache_bytes_total{kind=\"blob\",cache=\"HIT\"}")
            > 9 * 100_000_000
    );

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
    assert_eq!(r.status, 404, "a blob HEAD is for the hosted registry only");
    let r = http(
        "GET",
        &format!("http://{other}/v2/mirror/anything/blobs/{digest}"),
        &["-u", &bob()],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(format!("sha256:{}", sha256_file_or_bytes(&r.body)), *digest);
}

#[test]
fn tags_follow_the_upstream_after_the_ttl_and_stay_usable_while_it_fails() {
    let (_h, mut upstream, fe) = setup(FrontendOptions {
        // Long enough that a loaded machine (the other tests pull 120 MB images) does not
        // expire it between two steps.
        tag_ttl: "5s".into(),
        ..Default::default()
    });
    let first = seed(&upstream, "library/moving:latest", false);
    // The manifest the tag will move to (same layers, an OCI manifest), ready beforehand so
    // the move itself is one quick PUT.
    let second = seed(&upstream, "library/moving:next", true);
    let front = format!("127.0.0.1:{}", fe.team_a_port);
    let get = || manifest_digest(&front, "library/moving:latest", Some(&alice()));
    assert_eq!(get(), first);

    // The tag moves upstream: the cached answer holds for the TTL, then the new one is seen.
    move_tag(&upstream, "library/moving", "next", "latest");
    assert_ne!(first, second);
    assert_eq!(
        get(),
        first,
        "within the TTL, from the cache:\n{}",
        fe.access_log()
    );
    // nginx keeps whole seconds: a 5s entry expires 5 to 6 s after it was stored.
    std::thread::sleep(Duration::from_millis(6200));
    assert_eq!(
        get(),
        second,
        "after the TTL, from the upstream:\n{}",
        fe.access_log()
    );

    // The upstream fails (500, then 429): the last answer is served, stale.
    upstream.stop();
    for status in [500, 429] {
        let stand_in = StandIn::start(upstream.port, status);
        // nginx keeps whole seconds: a 5s entry expires 5 to 6 s after it was stored.
        std::thread::sleep(Duration::from_millis(6200));
        assert_eq!(get(), second, "stale on {status}");
        assert!(
            stand_in.hits() >= 1,
            "the upstream was asked ({status}):\n{}\n{}",
            fe.access_log(),
            fe.error_log()
        );
        let log = fe.access_log();
        let last = log
            .lines()
            .rfind(|l| l.contains("/manifests/latest"))
            .unwrap_or("");
        assert!(last.contains("cache=STALE"), "{last}");
    }
    // Never cached: a tag the upstream cannot answer gives the upstream's error.
    let _stand_in = StandIn::start(upstream.port, 500);
    let r = http(
        "GET",
        &format!("http://{front}/v2/library/other/manifests/latest"),
        &["-u", &alice(), "-H", ACCEPT_MANIFESTS],
    );
    assert_eq!(r.status, 500, "{}", r.text());
}

#[test]
fn head_stays_head_upstream_and_ranges_work() {
    let (_h, upstream, fe) = setup(FrontendOptions::default());
    let data = random_bytes(3_000_000, 7);
    let digest = upload_blob(&upstream.url(), "library/h", &data);
    let url = format!(
        "http://127.0.0.1:{}/v2/library/h/blobs/{digest}",
        fe.team_a_port
    );
    let path = format!("/v2/library/h/blobs/{digest}");
    // A manifest by tag upstream, referencing the blob.
    let config = upload_blob(&upstream.url(), "library/h", b"{}");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"{config}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3000000,"digest":"{digest}"}}]}}"#
    );
    let r = http(
        "PUT",
        &format!("http://{}/v2/library/h/manifests/v1", upstream.url()),
        &[
            "-H",
            "Content-Type: application/vnd.docker.distribution.manifest.v2+json",
            "--data-binary",
            &manifest,
        ],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let tag_url = format!(
        "http://127.0.0.1:{}/v2/library/h/manifests/v1",
        fe.team_a_port
    );
    let tag_path = "/v2/library/h/manifests/v1";

    // A HEAD on a manifest (docker pull's first question) reaches the upstream as a HEAD...
    let r = http("HEAD", &tag_url, &["-u", &alice(), "-H", ACCEPT_MANIFESTS]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(&*manifest.len().to_string())
    );
    assert!(r.header("docker-content-digest").is_some());
    assert_eq!(upstream.requests("HEAD", tag_path), 1);
    assert_eq!(
        upstream.requests("GET", tag_path),
        0,
        "HEAD was not turned into GET"
    );
    // ... and is answered from the cache the second time.
    let r = http("HEAD", &tag_url, &["-u", &alice(), "-H", ACCEPT_MANIFESTS]);
    assert_eq!(r.status, 200);
    assert_eq!(upstream.requests("HEAD", tag_path), 1);

    // A HEAD on a blob is a pusher's "do you have it?": the hosted registry alone answers
    // (404 here), the upstream is not asked.
    let r = http("HEAD", &url, &["-u", &alice()]);
    assert_eq!(r.status, 404);
    assert_eq!(upstream.requests("HEAD", &path), 0);

    // A range on a miss and on a hit.
    for _ in 0..2 {
        let r = http(
            "GET",
            &url,
            &["-u", &alice(), "-H", "Range: bytes=1000-1999"],
        );
        assert_eq!(r.status, 206, "{}", r.text());
        assert_eq!(r.body, &data[1000..2000]);
    }
    assert_eq!(upstream.requests("GET", &path), 1);
    let r = http("GET", &url, &["-u", &alice()]);
    assert_eq!(r.body, data);
    let log = fe.access_log();
    assert!(
        log.contains("\"HEAD ") && log.contains("cache=HIT"),
        "{log}"
    );
}

#[test]
fn the_group_prefers_the_hosted_registry() {
    let (hosted, upstream, fe) = setup(FrontendOptions::default());
    // team-a/x exists in the hosted registry, x upstream too (another manifest).
    let src = format!("docker-archive:{}", test_archive(120).display());
    skopeo(&[
        "copy",
        &src,
        &format!("docker://{}/team-a/x:v1", hosted.url()),
    ]);
    let mine = manifest_digest(&hosted.url(), "team-a/x:v1", None);
    let theirs = seed(&upstream, "x:v1", true);
    let front = format!("127.0.0.1:{}", fe.team_a_port);
    assert_eq!(manifest_digest(&front, "x:v1", Some(&alice())), mine);
    assert_eq!(
        upstream.requests("GET", "/v2/x/manifests/"),
        1,
        "only the seed's check"
    );
    // Only upstream: from there.
    skopeo(&["copy", &src, &format!("docker://{}/y:v1", upstream.url())]);
    let only_up = manifest_digest(&upstream.url(), "y:v1", None);
    assert_eq!(manifest_digest(&front, "y:v1", Some(&alice())), only_up);
    assert_ne!(mine, theirs);
    // A push through the front-end of an image whose blobs the upstream has: the blob HEADs
    // are answered by the hosted registry alone, so every blob is uploaded and the manifest
    // is accepted (MANIFEST_BLOB_UNKNOWN otherwise).
    skopeo(&[
        "copy",
        "--dest-creds",
        &alice(),
        &src,
        &format!("docker://{front}/y:v2"),
    ]);
    assert_eq!(manifest_digest(&hosted.url(), "team-a/y:v2", None), only_up);
    // Tag lists: hosted first as well (team-a/y has v2 now; upstream y has v1).
    let r = http(
        "GET",
        &format!("http://{front}/v2/y/tags/list"),
        &["-u", &alice()],
    );
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\"v2\""), "{}", r.text());
    let r = http(
        "GET",
        &format!("http://{front}/v2/x/tags/list"),
        &["-u", &alice()],
    );
    assert!(r.text().contains("\"v1\""), "{}", r.text());
}

#[test]
fn malformed_and_refused_requests_get_registry_errors() {
    let (hosted, _u, fe) = setup(FrontendOptions::default());
    let base = format!("http://127.0.0.1:{}", fe.team_a_port);
    let check = |method: &str, path: &str, extra: &[&str], status: u16, code: &str| {
        let mut args = vec!["-u".to_string(), alice()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = http(method, &format!("{base}{path}"), &args);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert!(
            r.text().contains(&format!("\"code\":\"{code}\"")),
            "{method} {path}: {}",
            r.text()
        );
        assert_eq!(
            r.header("docker-distribution-api-version"),
            Some("registry/2.0"),
            "{method} {path}"
        );
    };
    check(
        "GET",
        "/v2/app/blobs/sha256:1234",
        &[],
        400,
        "DIGEST_INVALID",
    );
    check(
        "GET",
        "/v2/app/blobs/SHA256:ABCD",
        &[],
        400,
        "DIGEST_INVALID",
    );
    check(
        "GET",
        "/v2/app/manifests/sha256:zz",
        &[],
        400,
        "DIGEST_INVALID",
    );
    // Traversal in the name: decided on the raw URI, whatever nginx normalises it to.
    check(
        "GET",
        "/v2/x/../team-b/app/manifests/v1",
        &[],
        400,
        "NAME_INVALID",
    );
    check(
        "GET",
        "/v2/x/../../team-b/app/manifests/v1",
        &[],
        404,
        "UNSUPPORTED",
    );
    check(
        "GET",
        "/v2/app/%2e%2e/manifests/v1",
        &[],
        400,
        "NAME_INVALID",
    );
    let r = http("GET", &format!("{base}/v2/../../etc/passwd"), &[]);
    assert_eq!(r.status, 400, "nginx's own refusal: {}", r.text());
    check("GET", "/v2/App/manifests/v1", &[], 400, "NAME_INVALID");
    check("GET", "/v2/_catalog", &[], 403, "DENIED");
    check("POST", "/v2/app/manifests/v1", &[], 405, "UNSUPPORTED");
    // A push outside one's prefix, on the other team's port.
    let other = format!("http://127.0.0.1:{}", fe.team_b_port);
    let r = http(
        "POST",
        &format!("{other}/v2/app/blobs/uploads/"),
        &["-u", &alice()],
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text().trim(),
        r#"{"errors":[{"code":"DENIED","message":"dockgate: user alice may not push team-b/app (push rights: team-a/)"}]}"#
    );
    // Oversized manifests, announced or chunked.
    let big = std::env::temp_dir().join(dockgate_tests::unique_name("manifest"));
    std::fs::write(&big, vec![b' '; 5 << 20]).unwrap();
    let body = format!("@{}", big.display());
    let ct = "Content-Type: application/vnd.docker.distribution.manifest.v2+json";
    check(
        "PUT",
        "/v2/app/manifests/v1",
        &["-H", ct, "--data-binary", &body],
        413,
        "SIZE_INVALID",
    );
    let creds = alice();
    let chunked = [
        "-u",
        &creds,
        "-H",
        ct,
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &body,
    ];
    let r = http("PUT", &format!("{base}/v2/app/manifests/v2"), &chunked);
    assert_eq!(r.status, 413, "{}", r.text());
    let _ = std::fs::remove_file(&big);
    assert_eq!(hosted.requests("PUT", "/v2/team-a/app/manifests/"), 0);
}

#[test]
fn monolithic_and_chunked_uploads_get_locations_in_the_clients_names() {
    let (hosted, _u, fe) = setup(FrontendOptions::default());
    let host = format!("localhost:{}", fe.host_port);
    let data = random_bytes(5_000_000, 11);
    let digest = format!("sha256:{}", sha256_file_or_bytes(&data));
    let file = std::env::temp_dir().join(dockgate_tests::unique_name("chunk"));
    std::fs::write(&file, &data[..2_000_000]).unwrap();
    let rest = std::env::temp_dir().join(dockgate_tests::unique_name("chunk"));
    std::fs::write(&rest, &data[2_000_000..]).unwrap();

    // Chunked: POST, PATCH, PUT with the last part.
    let r = http(
        "POST",
        &format!("http://{host}/v2/app/blobs/uploads/"),
        &["-u", &alice()],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = r.header("location").unwrap().to_string();
    assert!(
        loc.starts_with(&format!("http://{host}/v2/app/blobs/uploads/")),
        "{loc}"
    );
    let r = http(
        "PATCH",
        &loc,
        &[
            "-u",
            &alice(),
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("range"), Some("0-1999999"));
    let loc = r.header("location").unwrap().to_string();
    assert!(
        loc.starts_with(&format!("http://{host}/v2/app/blobs/uploads/")),
        "{loc}"
    );
    let r = http(
        "PUT",
        &format!("{loc}&digest={digest}"),
        &[
            "-u",
            &alice(),
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", rest.display()),
        ],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some(&*format!("http://{host}/v2/app/blobs/{digest}"))
    );
    let r = http(
        "GET",
        &format!("http://{}/v2/team-a/app/blobs/{digest}", hosted.url()),
        &[],
    );
    assert_eq!(r.body, data);

    // Monolithic: POST then one PUT with everything (the upload stays in team-a/mono).
    let whole = std::env::temp_dir().join(dockgate_tests::unique_name("whole"));
    std::fs::write(&whole, &data).unwrap();
    let r = http(
        "POST",
        &format!("http://{host}/v2/mono/blobs/uploads/"),
        &["-u", &alice()],
    );
    let loc = r.header("location").unwrap().to_string();
    let r = http(
        "PUT",
        &format!("{loc}&digest={digest}"),
        &[
            "-u",
            &alice(),
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", whole.display()),
        ],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // A range from the hosted registry, through the front-end.
    let r = http(
        "GET",
        &format!("http://{host}/v2/mono/blobs/{digest}"),
        &["-u", &alice(), "-H", "Range: bytes=10-19"],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[10..20]);
    for f in [file, rest, whole] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn docker_pulls_a_new_layer_through_the_group_and_its_cache() {
    let (_h, upstream, fe) = setup(FrontendOptions::default());
    let docker = DockerClient::new();
    let local = format!("dockgate-test/registry-unique-{}:v1", std::process::id());
    let sum = unique_image(&local, 3000);
    let up = format!("{}/library/uniq:v1", upstream.url());
    let front = format!("127.0.0.1:{}", fe.team_a_port);
    let via = format!("{front}/library/uniq:v1");
    let mut tags = Tags(&docker, Vec::new());
    tags.tag(&local, &up);
    docker.ok(&["push", &up]);
    // Only the upstream has the new layer now: dockerd must fetch it.
    docker.ok(&["rmi", &local, &up]);
    tags.1.clear();
    docker.login(&front, "alice", ALICE_TOKEN);
    tags.1.push(via.clone());
    docker.ok(&["pull", &via]);
    let got = docker.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &via,
        "sha256sum",
        "/data/unique.bin",
    ]);
    assert!(got.starts_with(&sum), "{got} vs {sum}");
    // The docker push above asked for nothing by GET: every GET came from the pull.
    let manifests = upstream.requests("GET", "/v2/library/uniq/manifests/")
        + upstream.requests("HEAD", "/v2/library/uniq/manifests/");
    assert!(manifests >= 1, "{}", upstream.log());
    let blobs = upstream.requests("GET", "/v2/library/uniq/blobs/");
    assert!(blobs >= 2, "config and the new layer: {blobs}");
    let log = fe.access_log();
    assert!(
        log.lines()
            .any(|l| l.contains("/blobs/") && l.contains("kind=blob cache=MISS")),
        "{log}"
    );
}

#[test]
fn nothing_passes_while_the_sidecar_is_down() {
    let (hosted, _u, mut fe) = setup(FrontendOptions::default());
    fe.stop_sidecar();
    let base = format!("http://127.0.0.1:{}", fe.team_a_port);
    for (method, path) in [("GET", "/v2/"), ("POST", "/v2/app/blobs/uploads/")] {
        let r = http(method, &format!("{base}{path}"), &["-u", &alice()]);
        assert_eq!(r.status, 503, "{method} {path}: {}", r.text());
        assert!(
            r.text().contains("policy service is unavailable"),
            "{}",
            r.text()
        );
    }
    assert_eq!(hosted.requests("POST", "/v2/"), 0);
}

#[test]
fn the_same_includes_serve_on_nginx_1_28() {
    let (hosted, mut upstream, fe) = setup(FrontendOptions {
        nginx: dockgate_tests::nginx::Flavor::Vendored.nginx(),
        ..Default::default()
    });
    let front = format!("127.0.0.1:{}", fe.team_a_port);
    // A push with skopeo, in the team's prefix.
    let src = format!("docker-archive:{}", test_archive(120).display());
    skopeo(&[
        "copy",
        "--dest-creds",
        &alice(),
        &src,
        &format!("docker://{front}/app:v1"),
    ]);
    let pushed = manifest_digest(&hosted.url(), "team-a/app:v1", None);
    assert_eq!(manifest_digest(&front, "app:v1", Some(&alice())), pushed);
    // A pull through the cache, then again with the upstream gone.
    seed(&upstream, "library/big:v1", false);
    let (_d, layers) = pull_to_dir(&front, "library/big:v1", &alice());
    upstream.stop();
    let (_d, again) = pull_to_dir(&front, "library/big:v1", &alice());
    assert_eq!(layers, again);
}

#[test]
fn dockerds_own_pulls_come_from_the_cache_round_after_round_with_the_upstream_stopped() {
    dockerd_pulls_from_the_cache(FrontendOptions::default(), "debian");
}

#[test]
fn dockerds_own_pulls_come_from_the_cache_on_nginx_1_28_too() {
    dockerd_pulls_from_the_cache(
        FrontendOptions {
            nginx: dockgate_tests::nginx::Flavor::Vendored.nginx(),
            ..Default::default()
        },
        "vendored",
    );
}

/// dockerd sends each Accept media type on a line of its own, in an order of its own on
/// every request: the manifest cache must key on all of them (nginx 1.22's $http_accept
/// holds the first line only), or warm pulls go upstream, and miss once it is gone.
fn dockerd_pulls_from_the_cache(opts: FrontendOptions, flavor: &str) {
    let (_h, mut upstream, fe) = setup(opts);
    let docker = DockerClient::new();
    let local = format!(
        "dockgate-test/registry-accept-{flavor}-{}:v1",
        std::process::id()
    );
    unique_image(&local, 500);
    let up = format!("{}/library/accept:v1", upstream.url());
    let front = format!("127.0.0.1:{}", fe.team_a_port);
    let via = format!("{front}/library/accept:v1");
    let mut tags = Tags(&docker, Vec::new());
    tags.tag(&local, &up);
    docker.ok(&["push", &up]);
    docker.ok(&["rmi", &local, &up]);
    tags.1.clear();
    docker.login(&front, "alice", ALICE_TOKEN);
    tags.1.push(via.clone());
    // Warm: two pulls, the second from the cache.
    docker.ok(&["pull", &via]);
    docker.ok(&["rmi", &via]);
    docker.ok(&["pull", &via]);
    let manifests_upstream = upstream.requests("GET", "/v2/library/accept/manifests/");
    let logged_before = fe.access_log().lines().count();
    upstream.stop();
    let mut failures = Vec::new();
    for round in 0..10 {
        let _ = docker.run(&["rmi", &via]);
        let out = docker.run(&["pull", &via]);
        if !out.status.success() {
            failures.push(format!(
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    // Every manifest request came from the cache (dockerd retries a 502, which hid the
    // misses from the pulls' exit codes).
    let log = fe.access_log();
    let missed: Vec<&str> = log
        .lines()
        .skip(logged_before)
        .filter(|l| l.contains("/manifests/") && !(l.contains("cache=HIT") && l.contains(" 200 ")))
        .collect();
    assert!(
        missed.is_empty(),
        "manifests not from the cache with the upstream stopped:\n{}",
        missed.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} of 10 pulls failed with the upstream stopped ({manifests_upstream} manifest GETs \
         upstream while it ran):\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        fe.access_log()
    );
}

#[test]
fn a_multi_arch_tag_pulls_from_the_cache_with_the_upstream_stopped() {
    // An index (Docker manifest list) over two platforms' manifests, as multi-arch images
    // are published: dockerd takes the index by tag and this host's manifest by digest.
    let (_h, mut upstream, fe) = setup(FrontendOptions::default());
    let docker = DockerClient::new();
    let local = format!("dockgate-test/registry-multi-{}:v1", std::process::id());
    unique_image(&local, 300);
    let single = format!("{}/library/multi:single", upstream.url());
    let mut tags = Tags(&docker, Vec::new());
    tags.tag(&local, &single);
    docker.ok(&["push", &single]);
    docker.ok(&["rmi", &local, &single]);
    tags.1.clear();
    let base = format!("http://{}/v2/library/multi/manifests", upstream.url());
    let m = http("GET", &format!("{base}/single"), &["-H", ACCEPT_MANIFESTS]);
    assert_eq!(m.status, 200, "{}", m.text());
    let digest = m.header("docker-content-digest").unwrap().to_string();
    let media = m.header("content-type").unwrap().to_string();
    let entry = |arch: &str| {
        format!(
            r#"{{"mediaType":"{media}","size":{},"digest":"{digest}","platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
            m.body.len()
        )
    };
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{},{}]}}"#,
        entry("arm64"),
        entry(
            std::env::consts::ARCH
                .replace("x86_64", "amd64")
                .replace("aarch64", "arm64")
                .as_str()
        )
    );
    let file = std::env::temp_dir().join(dockgate_tests::unique_name("index"));
    std::fs::write(&file, &index).unwrap();
    let put = http(
        "PUT",
        &format!("{base}/v1"),
        &[
            "-H",
            "Content-Type: application/vnd.docker.distribution.manifest.list.v2+json",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
    );
    let _ = std::fs::remove_file(&file);
    assert_eq!(put.status, 201, "{}", put.text());

    let front = format!("127.0.0.1:{}", fe.team_a_port);
    let via = format!("{front}/library/multi:v1");
    docker.login(&front, "alice", ALICE_TOKEN);
    tags.1.push(via.clone());
    docker.ok(&["pull", &via]);
    let logged_before = fe.access_log().lines().count();
    upstream.stop();
    for _ in 0..3 {
        docker.ok(&["rmi", &via]);
        docker.ok(&["pull", &via]);
    }
    let log = fe.access_log();
    let manifests: Vec<&str> = log
        .lines()
        .skip(logged_before)
        .filter(|l| l.contains("/manifests/"))
        .collect();
    assert!(
        manifests.iter().any(|l| l.contains(&digest)),
        "the platform's manifest by digest: {log}"
    );
    let missed: Vec<&&str> = manifests
        .iter()
        .filter(|l| !(l.contains("cache=HIT") && l.contains(" 200 ")))
        .collect();
    assert!(missed.is_empty(), "{missed:?}");
}
