//! Tenant namespaces through the full gateway: two tenants on one engine use the same names
//! without seeing each other, another tenant's objects look missing whatever the reference,
//! limits hold, and a restarted sidecar changes nothing.
//!
//! Tenants are users with a token (the CLI sends it from `HttpHeaders` in its config.json).

use dockgate_tests::docker::{docker_direct, docker_direct_quiet, Cli, Outcome};
use dockgate_tests::nginx::SYSTEM_DOCKERD;
use dockgate_tests::scenarios::{compare_all_as_tenant, report};
use dockgate_tests::tenants::{gateway, TenantUser};
use dockgate_tests::{raw, unique_name, TempDir};
use std::process::Command;

const SLEEPER: &str = "--network none busybox sleep 600";

#[test]
fn two_tenants_use_the_same_names_and_each_sees_its_own() {
    let (alpha, beta) = (TenantUser::new("alpha"), TenantUser::new("beta"));
    let mut gw = gateway(&[(&alpha, ""), (&beta, "")]);
    for u in [&alpha, &beta] {
        u.ok(
            &gw,
            &format!(
                "docker run -d --name web -e WHO={t} {SLEEPER} >/dev/null && \
                 docker volume create data >/dev/null && \
                 docker network create --internal net >/dev/null && \
                 docker run --rm -v data:/data --network none busybox sh -c 'echo {t} > /data/who'",
                t = u.tenant
            ),
        );
    }
    for u in [&alpha, &beta] {
        let t = &u.tenant;
        assert_eq!(u.ok(&gw, "docker ps --format '{{.Names}}'"), "web");
        assert_eq!(u.ok(&gw, "docker exec web sh -c 'echo $WHO'"), *t);
        assert_eq!(
            u.ok(&gw, "docker container inspect -f '{{.Name}}' web"),
            "/web"
        );
        assert_eq!(u.ok(&gw, "docker volume ls -q"), "data");
        assert_eq!(
            u.ok(&gw, "docker volume inspect -f '{{.Name}}' data"),
            "data"
        );
        assert_eq!(u.ok(&gw, "docker network ls --format '{{.Name}}'"), "net");
        assert_eq!(
            u.ok(&gw, "docker network inspect -f '{{.Name}}' net"),
            "net"
        );
        assert_eq!(
            u.ok(
                &gw,
                "docker run --rm -v data:/data --network none busybox cat /data/who"
            ),
            *t
        );
        // A name already taken is reported in the tenant's terms.
        let out = u.docker(&gw, &format!("docker create --name web {SLEEPER}"));
        assert_ne!(out.code, 0);
        assert!(
            out.stderr
                .contains("The container name \"/web\" is already in use"),
            "{out}"
        );
        // An unnamed container gets a name in the namespace, and the tenant sees it.
        let id = u.ok(&gw, &format!("docker create {SLEEPER}"));
        let name = docker_direct(&["container", "inspect", "-f", "{{.Name}}", &id]);
        assert!(name.starts_with(&format!("/{t}.")), "{name}");
        u.ok(&gw, &format!("docker rm {id}"));
    }
    // Streams speak the tenant's names too: events, and stats as they come.
    for u in [&alpha, &beta] {
        let events = u.ok(
            &gw,
            "docker events --since 5m --until 0s --filter container=web \
             --filter event=start --format '{{.Actor.Attributes.name}} {{.From}}'",
        );
        assert_eq!(events, "web busybox", "{}", u.tenant);
        let stats = u.ok(
            &gw,
            &format!(
                "curl -s -m 3 -H 'Authorization: Bearer {}' \
                 'http://127.0.0.1:{}/v1.41/containers/web/stats?stream=1' | head -n 1 || true",
                u.token, gw.port
            ),
        );
        assert!(stats.contains("\"name\":\"/web\""), "{stats}");
    }
    // The admin, on dockerd's socket, sees both, mangled and labelled.
    let names = docker_direct(&[
        "ps",
        "--format",
        "{{.Names}} {{.Label \"dockgate.tenant\"}}",
    ]);
    for t in [&alpha.tenant, &beta.tenant] {
        assert!(names.contains(&format!("{t}.web {t}")), "{names}");
    }

    // docker info counts the tenant's containers, not the engine's.
    for u in [&alpha, &beta] {
        assert_eq!(
            u.ok(
                &gw,
                "docker info --format '{{.Containers}} {{.ContainersRunning}}'"
            ),
            "1 1"
        );
    }
    // Disk usage counts the tenant's own (and the shared images).
    let df = alpha.ok(&gw, "docker system df -v --format '{{json .}}'");
    assert!(df.contains("web") && df.contains("data"), "{df}");
    assert!(!df.contains(&beta.tenant), "{df}");
    // The sidecar keeps nothing: restarted, it finds the same world.
    gw.restart_sidecar();
    assert_eq!(
        alpha.ok(&gw, "docker exec web sh -c 'echo $WHO'"),
        alpha.tenant
    );
    alpha.ok(
        &gw,
        "docker rm -f web && docker volume rm data && docker network rm net",
    );
    assert_eq!(alpha.ok(&gw, "docker ps -a -q"), "");
    assert_eq!(beta.ok(&gw, "docker ps --format '{{.Names}}'"), "web");
}

#[test]
fn two_tenants_pass_the_conformance_suite_at_once_with_the_same_names() {
    let (alpha, beta) = (TenantUser::new("alpha"), TenantUser::new("beta"));
    let gw = gateway(&[(&alpha, ""), (&beta, "")]);
    let tag = format!("conf{}", std::process::id());
    let reports: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = [&alpha, &beta]
            .map(|u| {
                let (gw, tag) = (&gw, &tag);
                s.spawn(move || {
                    let failures =
                        compare_all_as_tenant(Cli::Current, &u.endpoint(gw), &u.tenant, tag);
                    if failures.is_empty() {
                        String::new()
                    } else {
                        format!("### tenant {}\n{}", u.tenant, report(&failures))
                    }
                })
            })
            .into_iter()
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let text = reports.concat();
    assert!(
        text.is_empty(),
        "{text}\nsidecar log:\n{}",
        gw.sidecar_log()
    );
}

/// What one attempt on another tenant's objects must produce.
fn missing(out: &Outcome) -> bool {
    let err = out.stderr.to_ascii_lowercase();
    out.code != 0
        && (err.contains("no such ") || err.contains("not found"))
        && !err.contains("dockgate:")
}

#[test]
fn another_tenants_objects_look_missing_whatever_the_reference() {
    let (alpha, beta) = (TenantUser::new("alpha"), TenantUser::new("beta"));
    let gw = gateway(&[(&alpha, ""), (&beta, "")]);
    // Beta's world: a running container, a stopped one, an exec instance, a volume with a
    // file, a network.
    beta.ok(
        &gw,
        &format!(
            "docker run -d --name secret -v bvol:/data {SLEEPER} >/dev/null && \
             docker exec secret sh -c 'echo s3cret > /data/file' && \
             docker create --name stopped --network none busybox true >/dev/null && \
             docker volume create spare >/dev/null && \
             docker network create --internal bnet >/dev/null"
        ),
    );
    let id = beta.ok(&gw, "docker container inspect -f '{{.Id}}' secret");
    let net_id = beta.ok(&gw, "docker network inspect -f '{{.Id}}' bnet");
    let (status, exec) = beta.raw(
        &gw,
        "POST",
        "/v1.41/containers/secret/exec",
        r#"{"Cmd":["true"]}"#,
    );
    assert_eq!(status, 201, "{exec}");
    let exec_id = exec.split('"').nth(3).unwrap().to_string();
    alpha.ok(
        &gw,
        &format!("docker run -d --name mine {SLEEPER} >/dev/null"),
    );
    alpha.ok(&gw, "docker network create --internal anet >/dev/null");
    let before = docker_direct(&[
        "container",
        "inspect",
        "-f",
        "{{.State.Status}} {{.Name}}",
        &id,
    ]);

    let short = &id[..12];
    let tiny = &id[..4];
    let b = &beta.tenant;
    let cli_attempts = [
        "docker container inspect secret".to_string(),
        format!("docker container inspect {b}.secret"),
        format!("docker container inspect {id}"),
        format!("docker container inspect {short}"),
        format!("docker container inspect {tiny}"),
        "docker logs secret".into(),
        format!("docker logs {id}"),
        // Lists ordered around another tenant's container tell it exists: they must not.
        format!("docker ps -a -q --filter since={id}"),
        format!("docker ps -a -q --filter before={b}.secret"),
        format!("docker ps -a -q --filter since={short}"),
        "docker top secret".into(),
        format!("docker diff {short}"),
        "docker export secret | cat >/dev/null".into(),
        "docker stop -t 0 secret".into(),
        format!("docker kill {id}"),
        // (`rm -f` exits 0 on a missing container, on dockerd's socket too.)
        "docker rm secret".into(),
        format!("docker rm -v {short}"),
        "docker exec secret true".into(),
        format!("docker exec {id} cat /data/file"),
        format!("docker attach --no-stdin {short}"),
        "docker cp secret:/data/file -".into(),
        format!("docker cp /etc/hostname {short}:/tmp/x"),
        "docker commit secret stolen".into(),
        "docker rename secret taken".into(),
        format!("docker rename {short} taken"),
        format!("docker pause {short}"),
        format!("docker restart -t 0 {short}"),
        format!("timeout 20 docker wait {short}"),
        format!("docker stats --no-stream {short}"),
        format!("docker port {short}"),
        format!("docker update --pids-limit 10 {short}"),
        "docker start stopped".into(),
        "docker run --rm --volumes-from secret --network none busybox true".into(),
        format!("docker run --rm --volumes-from {short} --network none busybox true"),
        "docker volume inspect bvol".into(),
        format!("docker volume inspect {b}.bvol"),
        "docker volume rm bvol".into(),
        "docker volume rm spare".into(),
        "docker network inspect bnet".into(),
        format!("docker network inspect {net_id}"),
        format!("docker network inspect {}", &net_id[..12]),
        "docker network rm bnet".into(),
        "docker network connect bnet mine".into(),
        "docker network connect anet secret".into(),
        format!("docker network disconnect {net_id} secret"),
        "docker run --rm --pull never --network bnet busybox true".into(),
        format!("docker create --network {} busybox true", &net_id[..12]),
    ];
    let mut failures = Vec::new();
    for cli in [Cli::Current, Cli::Debian] {
        for a in &cli_attempts {
            let out = alpha.docker_with(cli, &gw, a);
            if !missing(&out) {
                failures.push(format!("{cli:?} {a}:\n{out}"));
            }
        }
    }
    // The built-in networks list the containers on them: on the socket, beta's too; through
    // the gateway, alpha's only (by name or by the network's ID).
    let on_none = "{{range .Containers}}{{.Name}} {{end}}";
    let direct = docker_direct(&["network", "inspect", "-f", on_none, "none"]);
    assert!(direct.contains(&format!("{b}.secret")), "{direct}");
    let none_id = docker_direct(&["network", "inspect", "-f", "{{.Id}}", "none"]);
    for reference in ["none", &none_id[..12]] {
        let seen = alpha.ok(
            &gw,
            &format!("docker network inspect -f '{on_none}' {reference}"),
        );
        if seen.split_whitespace().collect::<Vec<_>>() != ["mine"] {
            failures.push(format!("network inspect {reference} as alpha: {seen}"));
        }
    }
    // Exec instances, by the raw API.
    for (method, path, body) in [
        ("GET", format!("/v1.41/exec/{exec_id}/json"), ""),
        (
            "POST",
            format!("/v1.41/exec/{exec_id}/start"),
            r#"{"Detach":true}"#,
        ),
        ("POST", format!("/v1.41/exec/{exec_id}/resize?h=1&w=1"), ""),
    ] {
        let (status, answer) = alpha.raw(&gw, method, &path, body);
        if status != 404 || !answer.contains("No such exec instance") {
            failures.push(format!("{method} {path}: {status} {answer}"));
        }
    }
    // A missing (or another tenant's) container in --volumes-from or --link is answered as
    // dockerd answers a missing one: 400, its words (a 404 makes the CLI pull an image).
    for host in [
        r#"{"VolumesFrom":["secret"]}"#,
        r#"{"Links":["secret:db"]}"#,
    ] {
        let body = format!(r#"{{"Image":"busybox","HostConfig":{host}}}"#);
        let path = "/v1.41/containers/create?name=borrower";
        let direct = raw::call(
            &raw::Target::Unix(SYSTEM_DOCKERD.into()),
            "POST",
            path,
            &body,
        )
        .unwrap();
        let through = alpha.raw(&gw, "POST", path, &body);
        if through != direct || direct.0 != 400 {
            failures.push(format!("{host}: gateway {through:?}, dockerd {direct:?}"));
        }
    }
    // --network with a missing (or beta's) network: dockerd creates the container and fails
    // its start; the gateway answers the create, in dockerd's words, with a 400 (never the
    // 404 that makes the CLI pull the image). (`container:` modes are the developer
    // policy's refusal, whoever the container is: the unit tests cover their 400.)
    for mode in ["bnet", &net_id[..12]] {
        let words = format!("network {mode} not found");
        let body = format!(r#"{{"Image":"busybox","HostConfig":{{"NetworkMode":"{mode}"}}}}"#);
        let (status, answer) = alpha.raw(&gw, "POST", "/v1.41/containers/create", &body);
        if status != 400 || !answer.contains(&words) {
            failures.push(format!("--network {mode}: {status} {answer}"));
        }
    }
    // Ordering around its own container, or a shared image, works as on the socket.
    alpha.ok(
        &gw,
        "docker ps -a -q --filter since=mine --filter before=mine",
    );
    alpha.ok(&gw, "docker images -q --filter since=busybox");
    // Beta's network by ID: dockerd prefers an endpoint's NetworkID to its key, in a create
    // body and in a connect. On the socket this puts a container on beta's network.
    let endpoint = |key: &str| {
        format!(
            r#"{{"Image":"busybox","Cmd":["true"],"HostConfig":{{"NetworkMode":"{key}"}},"NetworkingConfig":{{"EndpointsConfig":{{"{key}":{{"NetworkID":"{net_id}"}}}}}}}}"#
        )
    };
    let engine_anet = format!("{}.anet", alpha.tenant);
    let proof = unique_name("netid");
    let (status, answer) = raw::call(
        &raw::Target::Unix(SYSTEM_DOCKERD.into()),
        "POST",
        &format!("/v1.41/containers/create?name={proof}"),
        &endpoint(&engine_anet),
    )
    .unwrap();
    assert_eq!(status, 201, "{answer}");
    docker_direct(&["start", &proof]);
    let joined = docker_direct(&[
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        &proof,
    ]);
    docker_direct(&["rm", "-f", &proof]);
    assert!(
        joined.contains(&format!("{b}.bnet")),
        "not an escape on dockerd: {joined}"
    );
    let (status, answer) = alpha.raw(
        &gw,
        "POST",
        "/v1.41/containers/create?name=netid",
        &endpoint("anet"),
    );
    if status != 400 || alpha.docker(&gw, "docker inspect netid").code == 0 {
        failures.push(format!("create with beta's NetworkID: {status} {answer}"));
    }
    let connect = format!(r#"{{"Container":"mine","EndpointConfig":{{"NetworkID":"{net_id}"}}}}"#);
    let (status, answer) = alpha.raw(&gw, "POST", "/v1.41/networks/anet/connect", &connect);
    if status != 404 {
        failures.push(format!("connect with beta's NetworkID: {status} {answer}"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} attempts were not answered as missing:\n{}",
        failures.len(),
        cli_attempts.len() + 5,
        failures.join("\n")
    );

    // One-character ID prefixes resolve among alpha's own containers only: another
    // tenant's IDs neither answer nor make a prefix ambiguous.
    let own_ids = alpha.ok(&gw, "docker ps -aq --no-trunc");
    for c in "0123456789abcdef".chars() {
        let mine: Vec<&str> = own_ids.lines().filter(|id| id.starts_with(c)).collect();
        let out = alpha.docker(
            &gw,
            &format!("docker container inspect -f '{{{{.Id}}}}' {c}"),
        );
        match mine.as_slice() {
            [] => assert!(missing(&out), "prefix {c}: {out}"),
            [id] => assert_eq!(out.stdout.trim(), *id, "prefix {c}: {out}"),
            _ => assert!(
                out.stderr.contains("multiple IDs found"),
                "prefix {c}: {out}"
            ),
        }
    }
    // Lists, filters, prunes and events show and touch only alpha's own.
    assert_eq!(alpha.ok(&gw, "docker ps -a --format '{{.Names}}'"), "mine");
    let forged_filter = format!("docker ps -a -q --filter label=dockgate.tenant={b}");
    assert_eq!(alpha.ok(&gw, &forged_filter), "");
    assert_eq!(alpha.ok(&gw, "docker ps -a -q --filter name=secret"), "");
    assert_eq!(alpha.ok(&gw, "docker volume ls -q"), "");
    assert_eq!(
        alpha.ok(&gw, "docker network ls --format '{{.Name}}'"),
        "anet"
    );
    alpha.ok(
        &gw,
        "docker container prune -f && docker volume prune -f && docker network prune -f",
    );
    let events = alpha.ok(
        &gw,
        "docker events --since 10m --until 0s --format '{{.Actor.ID}}'",
    );
    assert!(!events.contains(&id), "beta's events leaked:\n{events}");
    // A label naming beta is refused (only the gateway writes it); a name in beta's prefix
    // stays in alpha's.
    let forged = alpha.docker(
        &gw,
        &format!("docker create --label dockgate.tenant={b} --name {b}.forged {SLEEPER}"),
    );
    assert_ne!(forged.code, 0, "{forged}");
    assert!(
        forged
            .stderr
            .contains("label \"dockgate.tenant\" is the gateway's own"),
        "{forged}"
    );
    alpha.ok(&gw, &format!("docker create --name {b}.forged {SLEEPER}"));
    assert_eq!(
        beta.ok(
            &gw,
            "docker ps -a --format '{{.Names}}' --filter name=forged"
        ),
        ""
    );
    // A volume of the same name is alpha's own, empty.
    assert_eq!(
        alpha.ok(
            &gw,
            "docker run --rm -v bvol:/data --network none busybox ls /data"
        ),
        ""
    );

    // Nothing of beta's changed.
    assert_eq!(
        docker_direct(&[
            "container",
            "inspect",
            "-f",
            "{{.State.Status}} {{.Name}}",
            &id
        ]),
        before
    );
    assert_eq!(beta.ok(&gw, "docker exec secret cat /data/file"), "s3cret");
    assert_eq!(
        beta.ok(
            &gw,
            "docker ps -a --format '{{.Names}}' | sort | tr '\\n' ' '"
        ),
        "secret stopped"
    );
    assert_eq!(
        beta.ok(&gw, "docker volume ls -q | sort | tr '\\n' ' '"),
        "bvol spare"
    );
    assert_eq!(
        beta.ok(&gw, "docker network ls --format '{{.Name}}'"),
        "bnet"
    );
}

#[test]
fn tenant_limits_say_which_limit() {
    let gamma = TenantUser::new("gamma");
    let delta = TenantUser::new("delta");
    let epsilon = TenantUser::new("epsilon");
    let gw = gateway(&[
        (&gamma, "max_containers = 2"),
        (&delta, "max_memory = 100000000"),
        (&epsilon, "shared_images = [\"127.0.0.1:5000/base/*\"]"),
    ]);
    // Shared images are configurable per tenant: epsilon may use none of the local ones.
    let out = epsilon.docker(&gw, &format!("docker create --pull never {SLEEPER}"));
    assert!(missing(&out) && out.stderr.contains("busybox"), "{out}");
    assert_eq!(epsilon.ok(&gw, "docker images -q"), "");
    assert_eq!(epsilon.ok(&gw, "docker info --format '{{.Images}}'"), "0");
    gamma.ok(
        &gw,
        &format!("docker create {SLEEPER} >/dev/null && docker create {SLEEPER} >/dev/null"),
    );
    let out = gamma.docker(&gw, &format!("docker create {SLEEPER}"));
    assert!(
        out.stderr.contains(&format!(
            "dockgate: tenant {} has reached its limit of 2 containers (max_containers)",
            gamma.tenant
        )),
        "{out}"
    );
    delta.ok(&gw, &format!("docker create --memory 60m {SLEEPER}"));
    let out = delta.docker(&gw, &format!("docker create --memory 40m {SLEEPER}"));
    assert!(
        out.stderr
            .contains("would exceed its memory limit of 100000000 bytes (max_memory)"),
        "{out}"
    );
    let out = delta.docker(&gw, &format!("docker create {SLEEPER}"));
    assert!(
        out.stderr.contains("give the container one with --memory"),
        "{out}"
    );
    assert_eq!(delta.ok(&gw, "docker ps -aq | wc -l"), "1");
}

#[test]
fn images_are_the_tenants_own_and_shared_ones_are_read_only() {
    let (alpha, beta) = (TenantUser::new("alpha"), TenantUser::new("beta"));
    let gw = gateway(&[(&alpha, ""), (&beta, "")]);
    let work = TempDir::new("tenant-images").unwrap();
    let ctx = work.path().display().to_string();
    std::fs::write(work.path().join("f"), &alpha.tenant).unwrap();
    std::fs::write(work.path().join("Dockerfile"), "FROM busybox\nCOPY f /f\n").unwrap();
    // Alpha: a tag of the shared busybox, a commit and a build, all under its names.
    alpha.ok(
        &gw,
        &format!(
            "docker tag busybox app:1 && \
             docker run --name mine --network none busybox sh -c 'echo {t} > /proof' && \
             docker commit mine app:2 >/dev/null && \
             DOCKER_BUILDKIT=0 docker build -q -t built {ctx} >/dev/null",
            t = alpha.tenant
        ),
    );
    let images = alpha.ok(
        &gw,
        "docker images --format '{{.Repository}}:{{.Tag}}' | sort",
    );
    for want in ["app:1", "app:2", "built:latest", "busybox:latest"] {
        assert!(
            images.lines().any(|l| l == want),
            "{want} missing:\n{images}"
        );
    }
    assert!(!images.contains("dockgate-"), "{images}");
    assert_eq!(
        alpha.ok(
            &gw,
            "docker run --rm --pull never --network none app:2 cat /proof"
        ),
        alpha.tenant
    );
    assert_eq!(
        alpha.ok(
            &gw,
            "docker run --rm --pull never --network none built cat /f"
        ),
        alpha.tenant
    );
    assert_eq!(
        alpha.ok(&gw, "docker ps -a --format '{{.Image}}' --filter name=mine"),
        "busybox"
    );
    // An untagged import is alpha's too (the gateway labels it), and nobody else's.
    let imported = alpha.ok(&gw, &format!("tar -cf - -C {ctx} f | docker import -"));
    alpha.ok(&gw, &format!("docker image inspect {imported} >/dev/null"));
    let out = beta.docker(&gw, &format!("docker image inspect {imported}"));
    assert!(missing(&out), "{out}");
    let private_id = alpha.ok(&gw, "docker image inspect -f '{{.Id}}' app:2");
    let engine = docker_direct(&["image", "inspect", "-f", "{{.RepoTags}}", &private_id]);
    assert!(
        engine.contains(&format!("dockgate-{}/library/app:2", alpha.tenant)),
        "{engine}"
    );

    // Beta sees none of it, whatever the reference, and changes nothing.
    let hex = private_id.trim_start_matches("sha256:");
    let a = &alpha.tenant;
    let attempts = [
        "docker image inspect app:2".to_string(),
        "docker image inspect built".into(),
        format!("docker image inspect dockgate-{a}/library/app:2"),
        format!("docker image inspect {private_id}"),
        format!("docker image inspect {}", &hex[..12]),
        format!("docker history {}", &hex[..12]),
        "docker run --rm --pull never --network none app:2 true".into(),
        format!(
            "docker run --rm --pull never --network none {} true",
            &hex[..12]
        ),
        format!("docker tag {} stolen", &hex[..12]),
        "docker rmi app:2".into(),
        format!("docker rmi {}", &hex[..12]),
        format!("docker save {} | cat >/dev/null", &hex[..12]),
        "docker save built | cat >/dev/null".into(),
    ];
    let failures: Vec<String> = attempts
        .iter()
        .filter_map(|a| {
            let out = beta.docker(&gw, a);
            (!missing(&out)).then(|| format!("{a}:\n{out}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // (Other suites' shared images may come and go meanwhile: alpha's names are what count.)
    let beta_images = beta.ok(&gw, "docker images --format '{{.Repository}}:{{.Tag}}'");
    assert!(
        !beta_images
            .lines()
            .any(|l| ["app:1", "app:2", "built:latest"].contains(&l)),
        "{beta_images}"
    );
    // Beta's own app:2 is beta's; alpha's stays alpha's.
    beta.ok(&gw, "docker tag busybox app:2");
    assert_eq!(
        alpha.ok(
            &gw,
            "docker run --rm --pull never --network none app:2 cat /proof"
        ),
        alpha.tenant
    );
    // Shared images are read-only for tenants; loads would bypass the namespace.
    let out = beta.docker(&gw, "docker rmi busybox");
    assert!(
        out.stderr
            .contains("dockgate: busybox is shared by all tenants"),
        "{out}"
    );
    let out = beta.docker(&gw, "docker save busybox | docker load");
    assert!(
        out.stderr
            .contains("dockgate: docker load is not available to tenants"),
        "{out}"
    );
    // Cleanup of what the tenants tagged (the Drop guard removes containers).
    for (u, images) in [(&alpha, "app:1 app:2 built"), (&beta, "app:2")] {
        u.ok(&gw, &format!("docker rmi {images} >/dev/null"));
    }
    assert!(
        docker_direct(&["image", "inspect", "-f", "{{.Id}}", "busybox"]).starts_with("sha256:")
    );
}

#[test]
fn compose_brings_one_project_up_in_two_tenants_and_down_again() {
    let (alpha, beta) = (TenantUser::new("alpha"), TenantUser::new("beta"));
    let gw = gateway(&[(&alpha, ""), (&beta, "")]);
    let project = TempDir::new("compose").unwrap();
    std::fs::write(
        project.path().join("docker-compose.yml"),
        "version: \"3.7\"\n\
         services:\n  web:\n    image: busybox\n    command: sleep 600\n    network_mode: none\n    \
         volumes: [\"data:/data\"]\n  \
         worker:\n    image: busybox\n    command: sh -c 'echo $$HOSTNAME > /data/worker; sleep 600'\n    \
         network_mode: none\n    volumes: [\"data:/data\"]\n\
         volumes:\n  data: {}\n",
    )
    .unwrap();
    let dir = project.path().display().to_string();
    let compose = |u: &TenantUser, args: &str| {
        format!(
            "DOCKER_HOST=tcp://127.0.0.1:{port} docker-compose --no-ansi -p demo -f {dir}/docker-compose.yml {args}",
            port = gw.port
        ) + &format!(" # {}", u.tenant)
    };
    std::thread::scope(|s| {
        for u in [&alpha, &beta] {
            let script = compose(u, "up -d");
            let gw = &gw;
            s.spawn(move || u.ok(gw, &script));
        }
    });
    for u in [&alpha, &beta] {
        let ps = u.ok(&gw, "docker ps --format '{{.Names}}' | sort | tr '\\n' ' '");
        assert_eq!(ps, "demo_web_1 demo_worker_1", "{}", u.tenant);
        let listed = u.ok(&gw, &compose(u, "ps --services | sort | tr '\\n' ' '"));
        assert_eq!(listed, "web worker");
        assert_eq!(u.ok(&gw, "docker volume ls -q"), "demo_data");
        assert!(u
            .ok(&gw, "docker exec demo_web_1 ls /data")
            .contains("worker"));
    }
    // The admin sees each tenant's project under its own name.
    let projects = docker_direct(&[
        "ps",
        "--filter",
        &format!("label=dockgate.tenant={}", alpha.tenant),
        "--format",
        "{{.Label \"com.docker.compose.project\"}}",
    ]);
    let want = format!("{}.demo", alpha.tenant);
    assert_eq!(projects.lines().collect::<Vec<_>>(), [want.as_str(); 2]);
    alpha.ok(&gw, &compose(&alpha, "down -v"));
    assert_eq!(alpha.ok(&gw, "docker ps -a -q"), "");
    assert_eq!(alpha.ok(&gw, "docker volume ls -q"), "");
    assert_eq!(
        beta.ok(&gw, "docker ps --format '{{.Names}}' | sort | tr '\\n' ' '"),
        "demo_web_1 demo_worker_1"
    );
    beta.ok(&gw, &compose(&beta, "down -v"));
    assert_eq!(beta.ok(&gw, "docker ps -a -q"), "");
}

#[test]
fn a_tenant_pushes_and_pulls_through_the_registry_front_end_under_its_own_names() {
    use dockgate_tests::registry::{http, Distribution, Frontend, FrontendOptions, ALICE_TOKEN};
    let alpha = TenantUser::new("alpha");
    let beta = TenantUser::new("beta");
    let hosted = Distribution::start("tenant-hosted");
    let upstream = Distribution::start("tenant-upstream");
    let fe = Frontend::start(
        &hosted,
        upstream.port,
        FrontendOptions {
            alice_tenant: Some(alpha.tenant.clone()),
            ..FrontendOptions::default()
        },
    );
    let gw = gateway(&[(&alpha, ""), (&beta, "")]);
    // alice (team-a's pusher on the registry) works as tenant alpha on the Docker API.
    let reg = format!("127.0.0.1:{}", fe.team_a_port);
    let image = format!("{reg}/app:1");
    alpha.ok(
        &gw,
        &format!(
            "echo {ALICE_TOKEN} | docker login -u alice --password-stdin {reg} >/dev/null && \
             docker run --name src --network none busybox sh -c 'echo {t} > /proof' && \
             docker commit src {image} >/dev/null && docker push {image} >/dev/null",
            t = alpha.tenant
        ),
    );
    // dockerd pushed the engine's name (dockgate-TENANT/app); the registry has the tenant's.
    let tags = http(
        "GET",
        &format!("{}/v2/team-a/app/tags/list", hosted.url()),
        &[],
    );
    assert_eq!(tags.status, 200, "{}", tags.text());
    assert!(tags.text().contains("\"1\""), "{}", tags.text());
    assert_eq!(
        http(
            "GET",
            &format!(
                "{}/v2/team-a/dockgate-{}/app/tags/list",
                hosted.url(),
                alpha.tenant
            ),
            &[]
        )
        .status,
        404
    );
    // Pulled back through the gateway: in alpha's namespace, under the name alpha used.
    alpha.ok(
        &gw,
        &format!("docker rmi {image} >/dev/null && docker pull {image} >/dev/null"),
    );
    assert_eq!(
        alpha.ok(
            &gw,
            &format!("docker run --rm --pull never --network none {image} cat /proof")
        ),
        alpha.tenant
    );
    let engine = format!("{reg}/dockgate-{}/app:1", alpha.tenant);
    assert!(docker_direct(&["image", "inspect", "-f", "{{.Id}}", &engine]).starts_with("sha256:"));
    let plain = Command::new(Cli::Current.path())
        .args(["image", "inspect", &image])
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .output()
        .unwrap();
    assert!(
        !plain.status.success(),
        "the registry's plain name was left on the engine"
    );
    let out = beta.docker(
        &gw,
        &format!("docker run --rm --pull never --network none {image} true"),
    );
    assert!(missing(&out), "{out}");
    // Nor by the registry's digest, nor by image ID.
    let head = http(
        "HEAD",
        &format!("{}/v2/team-a/app/manifests/1", hosted.url()),
        &["-H", dockgate_tests::registry::ACCEPT_MANIFESTS],
    );
    let manifest = head
        .header("docker-content-digest")
        .unwrap_or_else(|| panic!("no digest: {}", head.text()))
        .to_string();
    let id = alpha.ok(
        &gw,
        &format!("docker image inspect -f '{{{{.Id}}}}' {image}"),
    );
    // Nor in a list: the pull left the registry's digest on alpha's image.
    let listed = beta.ok(
        &gw,
        "docker images --digests --format '{{.ID}} {{.Digest}}'",
    );
    assert!(!listed.contains(&manifest), "{listed}");
    for attempt in [
        format!("docker image inspect {reg}/app@{manifest}"),
        format!("docker run --rm --pull never --network none {reg}/app@{manifest} true"),
        format!("docker image inspect {id}"),
        format!("docker image inspect {}", &id[7..19]),
    ] {
        let out = beta.docker(&gw, &attempt);
        assert!(missing(&out), "{attempt}: {out}");
    }
    // A shared name a tenant pulls: on dockerd's socket a pull moves the name to what the
    // registry gives this puller; through the gateway the others' shared image keeps it.
    let hosted_ref = format!("127.0.0.1:{}/team-a/app:1", hosted.port);
    let busybox_id = docker_direct(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    let id_of = |r: &str| docker_direct(&["image", "inspect", "-f", "{{.Id}}", r]);
    docker_direct(&["tag", "busybox", &hosted_ref]);
    docker_direct(&["pull", "-q", &hosted_ref]);
    assert_eq!(id_of(&hosted_ref), id, "not a move on dockerd itself");
    docker_direct(&["tag", "busybox", &hosted_ref]);
    alpha.ok(&gw, &format!("docker pull -q {hosted_ref} >/dev/null"));
    assert_eq!(id_of(&hosted_ref), busybox_id, "the shared name was moved");
    let seen = |user: &TenantUser| {
        user.ok(
            &gw,
            &format!("docker image inspect -f '{{{{.Id}}}}' {hosted_ref}"),
        )
    };
    assert_eq!(seen(&alpha), id);
    assert_eq!(seen(&beta), busybox_id);
    // `docker build --pull` pulls the base again under its plain name: on the socket it moves
    // the shared name as a pull does; tenants may not ask for it.
    let ctx = TempDir::new("pull-build").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {hosted_ref}\n"),
    )
    .unwrap();
    let built = unique_name("pullproof");
    let out = dockgate_tests::docker::run_script(
        Cli::Current,
        &dockgate_tests::docker::Endpoint::direct(),
        &format!(
            "DOCKER_BUILDKIT=0 docker build -q --pull -t {built} {}",
            ctx.path().display()
        ),
        &[],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        id_of(&hosted_ref),
        id,
        "build --pull moves nothing on dockerd itself"
    );
    docker_direct_quiet(&["rmi", &built]);
    docker_direct(&["tag", "busybox", &hosted_ref]);
    let out = alpha.docker(
        &gw,
        &format!(
            "DOCKER_BUILDKIT=0 docker build -q --pull -t x {}",
            ctx.path().display()
        ),
    );
    assert!(
        out.code != 0 && out.stderr.contains("--pull is not available to tenants"),
        "{out}"
    );
    assert_eq!(id_of(&hosted_ref), busybox_id);
    // The direct pull left the registry's digest on alpha's image: gone with the name.
    let digests = docker_direct(&["image", "inspect", "-f", "{{join .RepoDigests \" \"}}", &id]);
    docker_direct(&["rmi", &hosted_ref]);
    for digest in digests
        .split_whitespace()
        .filter(|d| d.contains("/team-a/app@"))
    {
        docker_direct_quiet(&["rmi", digest]);
    }
    alpha.ok(&gw, &format!("docker rmi {hosted_ref} >/dev/null"));
    alpha.ok(&gw, &format!("docker rmi {image} >/dev/null"));

    // An image built elsewhere with beta's owner label, pushed to the registry: alpha's
    // pull does not take it in (untagged, it would pass for one of beta's builds).
    let ctx = TempDir::new("planted").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM busybox\nLABEL dockgate.tenant={}\n", beta.tenant),
    )
    .unwrap();
    let direct_ref = format!("127.0.0.1:{}/team-a/planted:1", hosted.port);
    let out = dockgate_tests::docker::run_script(
        Cli::Current,
        &dockgate_tests::docker::Endpoint::direct(),
        &format!(
            "DOCKER_BUILDKIT=0 docker build -q -t {direct_ref} {} >/dev/null && \
             docker push {direct_ref} >/dev/null && docker rmi {direct_ref} >/dev/null",
            ctx.path().display()
        ),
        &[],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    let planted = format!("{reg}/planted:1");
    let out = alpha.docker(&gw, &format!("docker pull {planted}"));
    assert!(
        out.code != 0 && out.stderr.contains("which only the gateway sets"),
        "{out}"
    );
    for user in [&alpha, &beta] {
        let out = user.docker(&gw, &format!("docker image inspect {planted}"));
        assert!(missing(&out), "{out}");
    }
    assert!(!dockgate_tests::docker::docker_direct_quiet(&[
        "image", "inspect", &planted
    ]));
}

#[test]
fn list_filters_name_the_tenants_objects() {
    let (alpha, beta) = (TenantUser::new("alpha"), TenantUser::new("beta"));
    let gw = gateway(&[(&alpha, ""), (&beta, "")]);
    // Each tenant: an image of its own, a volume, a network, and a container using them all.
    let mut ids = Vec::new();
    for user in [&alpha, &beta] {
        user.ok(
            &gw,
            &format!(
                "docker run --name seed --network none busybox sh -c 'echo {t} > /who' && \
                 docker commit seed app:1 >/dev/null && docker volume create data >/dev/null && \
                 docker network create --internal net >/dev/null",
                t = user.tenant
            ),
        );
        ids.push(user.ok(
            &gw,
            "docker create --name c1 -v data:/d --network net app:1 true",
        ));
    }
    for filter in ["ancestor=app:1", "volume=data", "network=net"] {
        assert_eq!(
            alpha.ok(&gw, &format!("docker ps -aq --no-trunc --filter {filter}")),
            ids[0],
            "{filter}"
        );
    }
    let images = alpha.ok(&gw, "docker images --format '{{.Repository}}:{{.Tag}}' app");
    assert_eq!(images, "app:1");
    let images = alpha.ok(
        &gw,
        "docker images --format '{{.Repository}}:{{.Tag}}' --filter reference='ap*'",
    );
    assert_eq!(images, "app:1");
    // Beta's image as an ancestor, by ID: it matches nothing, as a missing image does.
    let beta_image = beta.ok(&gw, "docker image inspect -f '{{.Id}}' app:1");
    for reference in [beta_image.clone(), beta_image[7..19].to_string()] {
        let out = alpha.ok(&gw, &format!("docker ps -aq --filter ancestor={reference}"));
        assert_eq!(out, "", "{reference}");
    }
}
