//! Registry mirrors: the Docker API gateway pulls a mirrored registry's images through the
//! registry front-end's cache (no `registry-mirrors` in dockerd) and they land under their
//! own names, for tenants too; upstreams that want HTTP Basic or the bearer-token flow are
//! fetched from with the sidecar's credentials, and what those fetched is served only to
//! callers who may pull the repository.
//!
//! Every mirrored registry is `127.0.0.1:PORT`, so the same reference pulled on dockerd's
//! own socket reaches the upstream directly: that is the proof of each claim (it works, or
//! fails, directly; through the gateway it comes from the cache).

use dockgate_tests::docker::Cli;
use dockgate_tests::mirrors::{
    basic_auth_upstream, seed_unique, ApiUser, MirrorSetup, MirrorSpec, TokenIssuer, ROBOT,
};
use dockgate_tests::package_cache::OriginTls;
use dockgate_tests::registry::{http, Distribution, DockerClient};
use dockgate_tests::tenants::tenant_name;
use dockgate_tests::{free_port, running_as_root};

/// Images removed from dockerd when the test ends, however it ends.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let d = DockerClient::new();
        for image in &self.0 {
            let _ = d.run(&["rmi", "-f", image]);
        }
    }
}

/// The repositories dockerd has images of.
fn engine_repositories() -> String {
    DockerClient::new().ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
}

#[test]
fn a_mirrored_registry_is_pulled_through_the_cache_and_lands_under_its_own_name() {
    if !running_as_root() {
        eprintln!("skipped: needs root (dockerd's socket)");
        return;
    }
    let mut upstream = Distribution::start("mirror-anon");
    let spec = MirrorSpec {
        namespace: "up".into(),
        port: upstream.port,
        credentials: false,
        ..Default::default()
    };
    let admin = ApiUser::new("mirror-admin", None);
    let tenant = tenant_name("mirror");
    let member = ApiUser::new("mirror-member", Some(tenant.clone()));
    let nobody = ApiUser::new("mirror-nobody", None);
    let setup = MirrorSetup::start(
        std::slice::from_ref(&spec),
        &[(&admin, &["up"]), (&member, &["up"]), (&nobody, &[])],
        &["up"],
        &|_| String::new(),
    );
    let reference = format!("{}/acme/app:1", spec.registry());
    let tenant_engine = format!("{}/dockgate-{tenant}/acme/app:1", spec.registry());
    let front = format!("127.0.0.1:{}/", setup.front_port);
    let _cleanup = Cleanup(vec![reference.clone(), tenant_engine.clone()]);
    let layer = seed_unique(&spec.registry(), "acme/app:1", None, 300);
    let blob = format!("/v2/acme/app/blobs/{layer}");

    let direct = DockerClient::new();
    for cli in Cli::ALL {
        let out = admin.docker(cli, &setup.gw, &format!("docker pull {reference}"));
        assert_eq!(
            out.code,
            0,
            "{cli:?} pull through the gateway:\n{out}\n{}\n{}",
            setup.front_log(),
            setup.gw.sidecar_log()
        );
        assert!(
            !out.stdout.contains(&front) && out.stdout.contains("acme/app"),
            "the progress names the registry's image:\n{out}"
        );
        let names = direct.ok(&[
            "image",
            "inspect",
            "--format",
            "{{json .RepoTags}} {{json .RepoDigests}}",
            &reference,
        ]);
        assert!(names.contains(&reference), "{names}");
        assert!(
            !names.contains(&front),
            "no front-end name is left: {names}"
        );
        direct.ok(&["rmi", &reference]);
    }
    // One upstream fetch of the layer for both pulls: the cache's. And the front-end saw them.
    assert_eq!(upstream.requests("GET", &blob), 1, "{}", setup.front_log());
    let log = setup.front_log();
    assert!(
        log.contains(&format!("GET /v2/up/acme/app/blobs/{layer}")),
        "{log}"
    );
    assert!(log.contains("cache=HIT"), "{log}");
    // The same name directly: dockerd pulls it from the upstream itself. (After the gateway's
    // pulls: dockerd keeps the manifests it pulled for a while, and asks no registry for them
    // again, so a direct pull first would keep them out of the cache.)
    direct.ok(&["pull", &reference]);
    direct.ok(&["rmi", &reference]);
    assert_eq!(upstream.requests("GET", &blob), 2);

    // With the upstream stopped, directly nothing is pulled; through the gateway, the cache.
    upstream.stop();
    let out = direct.run(&["pull", &reference]);
    assert!(!out.status.success(), "the upstream is really down");
    let out = admin.docker(Cli::Current, &setup.gw, &format!("docker pull {reference}"));
    assert_eq!(
        out.code,
        0,
        "from the cache:\n{out}\n{}\n{}",
        setup.front_log(),
        setup.gw.error_log()
    );

    // A tenant's pull lands in its namespace, under the registry's name for it.
    let out = member.docker(
        Cli::Current,
        &setup.gw,
        &format!(
            "docker pull {reference} && docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}}'"
        ),
    );
    assert_eq!(out.code, 0, "tenant pull:\n{out}");
    assert!(out.stdout.lines().any(|l| l == reference), "{out}");
    assert!(engine_repositories().contains(&tenant_engine));

    // The gateway's anonymous callers (no token) have the registry's anonymous rights.
    let out = dockgate_tests::docker::run_script(
        Cli::Current,
        &dockgate_tests::docker::Endpoint::gateway(
            &setup.gw,
            dockgate_tests::docker::Transport::Tcp,
        ),
        &format!("docker pull {reference}"),
        &[],
        None,
    );
    assert_eq!(out.code, 0, "anonymous pull:\n{out}\n{}", setup.front_log());
    direct.ok(&["rmi", &reference]);

    // Who has no pull rights on the mirror gets the registry's refusal, from dockerd.
    let out = nobody.docker(Cli::Current, &setup.gw, &format!("docker pull {reference}"));
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("may not pull up/acme/app"),
        "the CLI says why:\n{out}"
    );
    let repos = engine_repositories();
    assert!(
        !repos.lines().any(|l| l.starts_with(&front)),
        "no front-end names are left on the engine:\n{repos}"
    );
}

#[test]
fn upstreams_with_credentials_are_fetched_with_the_sidecars_and_served_only_to_who_may_pull() {
    if !running_as_root() {
        eprintln!("skipped: needs root (dockerd's socket)");
        return;
    }
    // A token-auth distribution with the tests' issuer, and one behind nginx's auth_basic.
    let mut issuer = TokenIssuer::start();
    let mut token_upstream =
        Distribution::start_with("mirror-token", |_| issuer.registry_auth_yaml());
    let basic_backend = Distribution::start("mirror-basic");
    let basic_port = free_port();
    let tok = MirrorSpec {
        namespace: "tok".into(),
        port: token_upstream.port,
        credentials: true,
        ..Default::default()
    };
    let basic = MirrorSpec {
        namespace: "basic".into(),
        port: basic_port,
        credentials: true,
        password_file: true,
        ..Default::default()
    };
    let alice = ApiUser::new("mirror-alice", None);
    let bob = ApiUser::new("mirror-bob", None);
    let backend = basic_backend.port;
    let setup = MirrorSetup::start(
        &[tok.clone(), basic.clone()],
        &[(&alice, &["tok/private", "basic"]), (&bob, &["tok/public"])],
        &[],
        &|dir| basic_auth_upstream(dir, basic_port, backend, None),
    );
    let private = format!("{}/private/app:1", tok.registry());
    let public = format!("{}/public/app:1", tok.registry());
    let behind_basic = format!("{}/team/tool:1", basic.registry());
    let _cleanup = Cleanup(vec![private.clone(), public.clone(), behind_basic.clone()]);
    let private_layer = seed_unique(&tok.registry(), "private/app:1", Some(ROBOT), 200);
    seed_unique(&tok.registry(), "public/app:1", Some(ROBOT), 200);
    seed_unique(&basic_backend.url(), "team/tool:1", None, 200);

    // Directly, without credentials, neither upstream gives anything.
    let direct = DockerClient::new();
    for r in [&private, &behind_basic] {
        let out = direct.run(&["pull", r]);
        assert!(!out.status.success(), "{r} needs credentials");
    }

    // Through the gateway: the sidecar's credentials, each upstream its own.
    let issued = |scope: &str| {
        issuer
            .requests()
            .iter()
            .filter(|r| r.robot && r.target.ends_with(scope))
            .count()
    };
    // The sidecar's token requests end with the scope (skopeo's, seeding, ask pull,push).
    let scope = "scope=repository%3Aprivate%2Fapp%3Apull";
    for cli in Cli::ALL {
        let out = alice.docker(
            cli,
            &setup.gw,
            &format!("docker pull {private} && docker pull {behind_basic}"),
        );
        assert_eq!(out.code, 0, "{cli:?}:\n{out}\n{}", setup.gw.sidecar_log());
        direct.ok(&["rmi", &private, &behind_basic]);
    }
    assert!(
        issued(scope) >= 1,
        "a token for the pull scope: {:?}",
        issuer.requests()
    );
    assert_eq!(
        issued(scope),
        1,
        "kept until it expires: {:?}",
        issuer.requests()
    );

    // bob may pull tok/public only: not the private repository, not by its digest under a
    // repository he may pull (the cache keeps what credentials fetched per repository).
    let out = bob.docker(Cli::Current, &setup.gw, &format!("docker pull {private}"));
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("may not pull tok/private/app"), "{out}");
    let out = bob.docker(Cli::Current, &setup.gw, &format!("docker pull {public}"));
    assert_eq!(out.code, 0, "{out}");
    let bob_basic = format!("{}:{}", bob.name, bob.token);
    let r = http(
        "GET",
        &format!(
            "http://127.0.0.1:{}/v2/tok/public/app/blobs/{private_layer}",
            setup.front_port
        ),
        &["-u", &bob_basic],
    );
    assert_ne!(r.status, 200, "another repository's layer: {}", r.text());
    let r = http(
        "GET",
        &format!(
            "http://127.0.0.1:{}/v2/tok/private/app/blobs/{private_layer}",
            setup.front_port
        ),
        &["-u", &bob_basic],
    );
    assert_eq!(r.status, 403, "{}", r.text());

    // The upstream and its token endpoint stopped: what the cache has is still pulled.
    token_upstream.stop();
    issuer.stop();
    let out = direct.run(&["pull", &private]);
    assert!(!out.status.success());
    let out = alice.docker(Cli::Current, &setup.gw, &format!("docker pull {private}"));
    assert_eq!(out.code, 0, "from the cache:\n{out}\n{}", setup.front_log());
}

#[test]
fn an_https_upstream_is_verified_by_its_name_with_the_ca_it_is_given() {
    if !running_as_root() {
        eprintln!("skipped: needs root (dockerd's socket)");
        return;
    }
    // distribution behind an nginx on TLS (a private CA, a certificate for localhost) that
    // also wants HTTP Basic: the sidecar learns that through TLS with the mirror's CA.
    let backend = Distribution::start("mirror-tls");
    let dir = dockgate_tests::TempDir::new("mirror-tls-ca").expect("dir");
    let tls = OriginTls::new(dir.path(), &["localhost"]);
    let port = free_port();
    let good = MirrorSpec {
        namespace: "tls".into(),
        port,
        credentials: true,
        tls: Some((tls.ca.clone(), "localhost".into())),
        ..Default::default()
    };
    // The same upstream by an address its certificate does not name.
    let wrong = MirrorSpec {
        namespace: "wrongname".into(),
        port,
        credentials: true,
        tls: Some((tls.ca.clone(), "127.0.0.1".into())),
        ..Default::default()
    };
    let alice = ApiUser::new("mirror-tls-alice", None);
    let (cert, key) = (tls.cert.clone(), tls.key.clone());
    let backend_port = backend.port;
    let setup = MirrorSetup::start(
        &[good.clone(), wrong.clone()],
        &[(&alice, &["tls", "wrongname"])],
        &[],
        &|d| basic_auth_upstream(d, port, backend_port, Some((&cert, &key))),
    );
    let reference = format!("{}/acme/app:1", good.registry());
    let misnamed = format!("{}/acme/app:1", wrong.registry());
    let _cleanup = Cleanup(vec![reference.clone(), misnamed.clone()]);
    seed_unique(&backend.url(), "acme/app:1", None, 100);

    // Directly, dockerd does not trust the private CA.
    let out = DockerClient::new().run(&["pull", &reference]);
    assert!(!out.status.success(), "dockerd refuses the certificate");
    // Through the gateway: verified TLS with the CA, and the Basic login it asked for.
    let out = alice.docker(Cli::Current, &setup.gw, &format!("docker pull {reference}"));
    assert_eq!(
        out.code,
        0,
        "{out}\n{}\n{}",
        setup.front_log(),
        setup.gw.sidecar_log()
    );
    // An address the certificate does not name is refused by nginx's verification.
    let out = alice.docker(Cli::Current, &setup.gw, &format!("docker pull {misnamed}"));
    assert_ne!(out.code, 0, "{out}");
    let error_log = setup.gw.error_log();
    assert!(
        error_log.contains("upstream SSL certificate does not match"),
        "{out}\n{}\n{error_log}",
        setup.front_log()
    );
}
