//! Tenants' builds through the full gateway, two tenants at once: the build cache does not
//! cross tenants, a Dockerfile sees only the tenant's own and the shared images (`FROM`,
//! `COPY --from`, build arguments, triggers), and the gateway's labels cannot be planted.
//! Each attack is first shown to work on dockerd's own socket.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use dockgate_tests::docker::{docker_direct, docker_direct_quiet, run_script, Cli, Endpoint};
use dockgate_tests::tenants::{gateway, TenantUser};
use dockgate_tests::{unique_name, TempDir};

/// One test at a time. dockerd's classic builder looks for its cache among the children of
/// the base image and fails the build ("unable to find image") when one is removed under it:
/// these tests build on busybox and remove images (prunes, and every test's cleanup).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A build context with a Dockerfile (and `extra` files).
fn context(dockerfile: &str, extra: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new("tenant-ctx").unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, text) in extra {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// The classic build of `ctx` as a script line (`args` before the context).
fn build_line(ctx: &Path, args: &str) -> String {
    format!("DOCKER_BUILDKIT=0 docker build {args} {}", ctx.display())
}

/// A build on dockerd's own socket; the output (it must succeed).
fn build_direct(ctx: &Path, args: &str) -> String {
    let out = run_script(
        Cli::Current,
        &Endpoint::direct(),
        &build_line(ctx, args),
        &[],
        None,
    );
    assert_eq!(out.code, 0, "direct build:\n{out}");
    out.stdout
}

/// The token a build wrote into the image, read back by running it.
fn token_of(user: &TenantUser, gw: &dockgate_tests::nginx::Gateway, image: &str) -> String {
    user.ok(
        gw,
        &format!("docker run --rm --pull never --network none {image} cat /token"),
    )
}

/// An ID prefix of at least 12 digits that `COPY --from` reads as an image, not as a stage
/// index (all digits would be one, for dockerd too).
fn not_an_index(hex: &str) -> &str {
    let letter = hex
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(hex.len() - 1);
    &hex[..(letter + 1).max(12)]
}

const TOKEN_DOCKERFILE: &str = "FROM busybox\nRUN cat /proc/sys/kernel/random/uuid > /token\n";

#[test]
fn the_build_cache_does_not_cross_tenants() {
    // First, so it is released last: after the tenants' cleanup.
    let _serial = serial();
    let (alpha, beta) = (TenantUser::new("alpha"), TenantUser::new("beta"));
    let gw = gateway(&[(&alpha, ""), (&beta, "")]);
    let ctx = context(TOKEN_DOCKERFILE, &[]);

    // On the socket, the second build of the same Dockerfile is the first one's cache.
    let tag = unique_name("cache-proof");
    build_direct(ctx.path(), &format!("-t {tag}"));
    let again = build_direct(ctx.path(), &format!("-t {tag}"));
    assert!(again.contains("Using cache"), "{again}");
    let admin_token = docker_direct(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        &tag,
        "cat",
        "/token",
    ]);

    // Alpha (CLI 28) and beta (CLI 20.10) build it through the gateway.
    let first = alpha.ok(&gw, &build_line(ctx.path(), "-t app"));
    assert!(!first.contains("Using cache"), "{first}");
    let out = beta.docker_with(Cli::Debian, &gw, &build_line(ctx.path(), "-t app"));
    assert_eq!(out.code, 0, "{out}");
    assert!(
        !out.stdout.contains("Using cache"),
        "beta used a cache:\n{out}"
    );
    let (a, b) = (token_of(&alpha, &gw, "app"), token_of(&beta, &gw, "app"));
    assert_ne!(a, b, "beta read alpha's token");
    assert_ne!(a, admin_token, "alpha read the admin's token");
    assert_ne!(b, admin_token, "beta read the admin's token");

    // Within a tenant the cache works, and the answer names the tenant's image.
    let second = alpha.ok(&gw, &build_line(ctx.path(), "-t app"));
    assert!(second.contains("Using cache"), "{second}");
    assert!(
        second.contains("Successfully tagged app:latest"),
        "{second}"
    );
    assert!(!second.contains("dockgate-"), "{second}");
    assert_eq!(token_of(&alpha, &gw, "app"), a);

    // The steps it left are alpha's: listed and usable by alpha, missing for beta.
    let steps = alpha.ok(&gw, "docker images -aq --no-trunc");
    let beta_sees = beta.ok(&gw, "docker images -aq --no-trunc");
    let parent = alpha.ok(&gw, "docker image inspect -f '{{.Parent}}' app");
    assert!(steps.contains(&parent), "{parent} not in\n{steps}");
    assert!(!beta_sees.contains(&parent), "{beta_sees}");
    let out = beta.docker(&gw, &format!("docker image inspect {parent}"));
    assert!(out.stderr.contains("No such image"), "{out}");
    docker_direct_quiet(&["image", "rm", "-f", &tag]);
}

#[test]
fn a_tenants_dockerfile_sees_only_its_own_and_the_shared_images() {
    // First, so it is released last: after the tenants' cleanup.
    let _serial = serial();
    let (alpha, beta) = (TenantUser::new("alpha"), TenantUser::new("beta"));
    let gw = gateway(&[(&alpha, ""), (&beta, "")]);
    let secret = context("FROM busybox\nRUN echo beta-secret > /s\n", &[]);
    beta.ok(&gw, &build_line(secret.path(), "-q -t secret"));
    let b = &beta.tenant;
    let engine_name = format!("dockgate-{b}/library/secret");
    let id = beta.ok(&gw, "docker image inspect -f '{{.Id}}' secret");
    let hex = id.trim_start_matches("sha256:").to_string();
    let step = beta.ok(&gw, "docker image inspect -f '{{.Parent}}' secret");

    // Alpha's own image, for the builds that must work.
    let own = context("FROM busybox\nRUN echo alpha-own > /o\n", &[]);
    alpha.ok(&gw, &build_line(own.path(), "-q -t mine"));

    let attempts: Vec<(&str, String, String)> = vec![
        (
            "FROM by the engine's name",
            format!("FROM {engine_name}\n"),
            String::new(),
        ),
        ("FROM by image ID", format!("FROM {id}\n"), String::new()),
        (
            "FROM by ID prefix",
            format!("FROM {}\n", &hex[..12]),
            String::new(),
        ),
        (
            "FROM a build step of beta's",
            format!("FROM {step}\n"),
            String::new(),
        ),
        (
            "FROM through an ARG default",
            format!("ARG BASE={engine_name}\nFROM $BASE\n"),
            String::new(),
        ),
        (
            "FROM through a build argument",
            "ARG BASE=busybox\nFROM ${BASE}\n".into(),
            format!("--build-arg BASE={id}"),
        ),
        (
            "COPY --from by the engine's name",
            format!("FROM busybox\nCOPY --from={engine_name} /s /s\n"),
            String::new(),
        ),
        (
            "COPY --from by ID prefix",
            format!("FROM busybox\nCOPY --from={} /s /s\n", not_an_index(&hex)),
            String::new(),
        ),
        (
            "COPY --from with quotes inside the flag",
            format!("FROM busybox\nCOPY --fr\"om\"=\"{engine_name}\" /s /s\n"),
            String::new(),
        ),
        (
            "COPY --from with an escape inside the flag",
            format!("FROM busybox\nCOPY --chown=0 --fro\\m={engine_name} /s /s\n"),
            String::new(),
        ),
        (
            "COPY --from in a later stage",
            format!("FROM busybox AS one\nFROM one\nCOPY --from={engine_name} /s /s\n"),
            String::new(),
        ),
    ];
    let label = format!("label=dockgate.tenant={}", alpha.tenant);
    let alphas = || {
        let mut ids: Vec<String> = docker_direct(&["images", "-aq", "--filter", &label])
            .lines()
            .map(str::to_string)
            .collect();
        ids.sort();
        ids
    };
    let before = alphas();
    let mut failures = Vec::new();
    for (what, dockerfile, args) in &attempts {
        let dockerfile = format!("{dockerfile}RUN cat /s /etc/hostname 2>/dev/null; true\n");
        let ctx = context(&dockerfile, &[]);
        // Proof: the same build reads beta's image on dockerd's own socket.
        let tag = unique_name("proof");
        let direct = run_script(
            Cli::Current,
            &Endpoint::direct(),
            &build_line(ctx.path(), &format!("-q {args} -t {tag}")),
            &[],
            None,
        );
        docker_direct_quiet(&["image", "rm", "-f", &tag]);
        if direct.code != 0 {
            failures.push(format!("{what}: does not work directly:\n{direct}"));
            continue;
        }
        let out = alpha.docker(
            &gw,
            &build_line(ctx.path(), &format!("-q {args} -t stolen")),
        );
        let looks_missing = out.code != 0 && out.stderr.contains("No such image");
        if !looks_missing {
            failures.push(format!("{what}: not answered as missing:\n{out}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Nothing was built.
    assert_eq!(alphas(), before);
    let out = alpha.docker(&gw, "docker image inspect stolen");
    assert!(out.stderr.contains("No such image"), "{out}");

    // What alpha may build from: its own images, the shared ones, its stages, by name or ID.
    let mine_id = alpha.ok(&gw, "docker image inspect -f '{{.Id}}' mine");
    let ok = context(
        &format!(
            "ARG BASE=mine\nFROM $BASE AS first\nRUN cat /o > /copied\n\
             FROM busybox\nCOPY --from=first /copied /a\nCOPY --from=mine /o /b\n\
             COPY --from={} /o /c\n",
            not_an_index(&mine_id[7..])
        ),
        &[],
    );
    let out = alpha.docker_with(Cli::Debian, &gw, &build_line(ok.path(), "-q -t derived"));
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        alpha.ok(
            &gw,
            "docker run --rm --pull never --network none derived cat /a /b /c"
        ),
        "alpha-own\nalpha-own\nalpha-own"
    );
}

#[test]
fn the_gateways_labels_and_foreign_triggers_cannot_be_built_in() {
    // First, so it is released last: after the tenants' cleanup.
    let _serial = serial();
    let (alpha, beta) = (TenantUser::new("alpha"), TenantUser::new("beta"));
    let gw = gateway(&[(&alpha, ""), (&beta, "")]);
    let b = &beta.tenant;
    let secret = context("FROM busybox\nRUN echo beta-secret > /s\n", &[]);
    beta.ok(&gw, &build_line(secret.path(), "-q -t secret"));
    let engine_name = format!("dockgate-{b}/library/secret");

    // Labels: a Dockerfile that writes the tenant label, in the spellings the builder reads.
    let labels = [
        format!("FROM busybox\nLABEL dockgate.tenant={b}\n"),
        format!("FROM busybox\nLABEL \"dockgate.tenant\"=\"{b}\"\n"),
        format!("FROM busybox\nARG K=dockgate.tenant\nLABEL $K={b}\n"),
        format!("FROM busybox\nONBUILD LABEL dockgate.tenant={b}\n"),
        "FROM busybox\nLABEL dockgate.policy=admin\n".to_string(),
    ];
    for dockerfile in &labels {
        let ctx = context(dockerfile, &[]);
        let tag = unique_name("label-proof");
        build_direct(ctx.path(), &format!("-q -t {tag}"));
        docker_direct_quiet(&["image", "rm", "-f", &tag]);
        let out = alpha.docker(&gw, &build_line(ctx.path(), "-q -t planted"));
        assert!(
            out.code != 0 && out.stderr.contains("the gateway's own labels"),
            "{dockerfile}:\n{out}"
        );
    }

    // Triggers that copy from another image: in the Dockerfile's own stages, and stored in
    // an image alpha committed.
    let stage = context(
        &format!("FROM busybox AS s\nONBUILD COPY --from={engine_name} /s /s\nFROM s\n"),
        &[],
    );
    let proof = unique_name("trigger-proof");
    build_direct(stage.path(), &format!("-q -t {proof}"));
    let stolen = docker_direct(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        &proof,
        "cat",
        "/s",
    ]);
    assert_eq!(stolen, "beta-secret");
    docker_direct_quiet(&["image", "rm", "-f", &proof]);
    let out = alpha.docker(&gw, &build_line(stage.path(), "-q -t planted"));
    assert!(
        out.code != 0 && out.stderr.contains("copies from another image"),
        "{out}"
    );
    alpha.ok(
        &gw,
        &format!(
            "docker create --name base busybox true >/dev/null && \
             docker commit --change 'ONBUILD COPY --from={engine_name} /s /s' base trap >/dev/null"
        ),
    );
    let child = context("FROM trap\n", &[]);
    let out = alpha.docker(&gw, &build_line(child.path(), "-q -t planted"));
    assert!(
        out.code != 0 && out.stderr.contains("copies from another image"),
        "{out}"
    );

    // A shared base's ONBUILD triggers run before the stage's label: on the socket, two
    // builds from it share the trigger's step (and what it wrote). Not for tenants; a
    // tenant's own base with triggers builds.
    let shared = unique_name("shared-onbuild");
    let base = context(
        "FROM busybox\nONBUILD RUN cat /proc/sys/kernel/random/uuid > /token\n",
        &[],
    );
    build_direct(base.path(), &format!("-q -t {shared}"));
    let child = context(&format!("FROM {shared}\n"), &[]);
    let (one, two) = (unique_name("child"), unique_name("child"));
    build_direct(child.path(), &format!("-q -t {one}"));
    let again = build_direct(child.path(), &format!("-t {two}"));
    let token = |t: &str| {
        docker_direct(&[
            "run",
            "--rm",
            "--pull",
            "never",
            "--network",
            "none",
            t,
            "cat",
            "/token",
        ])
    };
    assert!(again.contains("Using cache"), "{again}");
    assert_eq!(
        token(&one),
        token(&two),
        "not a shared step on dockerd itself"
    );
    for tag in [&one, &two] {
        docker_direct_quiet(&["image", "rm", "-f", tag]);
    }
    let out = alpha.docker(&gw, &build_line(child.path(), "-q -t planted"));
    assert!(
        out.code != 0 && out.stderr.contains("has ONBUILD triggers"),
        "{out}"
    );
    docker_direct_quiet(&["image", "rm", "-f", &shared]);
    alpha.ok(&gw, &build_line(base.path(), "-q -t mybase"));
    let own_child = context("FROM mybase\n", &[]);
    alpha.ok(&gw, &build_line(own_child.path(), "-q -t mychild"));
    assert_eq!(token_of(&alpha, &gw, "mychild").len(), 36);

    // BuildKit, and contexts the engine would fetch, are not for tenants.
    let (status, body) = alpha.raw(&gw, "POST", "/build?version=2&t=x", "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("DOCKER_BUILDKIT=0"), "{body}");
    let (status, body) = alpha.raw(&gw, "POST", "/session", "");
    assert_eq!(status, 403, "{body}");
    let (status, body) = alpha.raw(
        &gw,
        "POST",
        "/build?remote=http%3A%2F%2F127.0.0.1%3A9%2Fctx.tar",
        "",
    );
    assert_eq!(status, 403, "{body}");
    let out = beta.docker(&gw, "docker images -q planted");
    assert_eq!(out.stdout.trim(), "", "{out}");
}

#[test]
fn image_prune_removes_the_tenants_dangling_images_only() {
    // First, so it is released last: after the tenants' cleanup.
    let _serial = serial();
    let (alpha, beta) = (TenantUser::new("alpha"), TenantUser::new("beta"));
    let gw = gateway(&[(&alpha, ""), (&beta, "")]);
    let ctx = context(TOKEN_DOCKERFILE, &[]);
    // Each tenant builds the tag twice without the cache: the first image is left dangling.
    let mut dangling = Vec::new();
    for user in [&alpha, &beta] {
        user.ok(&gw, &build_line(ctx.path(), "-q --no-cache -t app"));
        let first = user.ok(&gw, "docker image inspect -f '{{.Id}}' app");
        user.ok(&gw, &build_line(ctx.path(), "-q --no-cache -t app"));
        dangling.push(first);
    }
    let out = alpha.ok(&gw, "docker image prune -f");
    assert!(out.contains(&dangling[0]), "{out}");
    assert!(!out.contains("dockgate-"), "{out}");
    assert!(!docker_direct_quiet(&["image", "inspect", &dangling[0]]));
    assert!(docker_direct_quiet(&["image", "inspect", &dangling[1]]));
    assert_eq!(token_of(&alpha, &gw, "app").len(), 36);
    let out = alpha.docker(&gw, "docker image prune -a -f");
    assert!(
        out.code != 0 && out.stderr.contains("not available to tenants"),
        "{out}"
    );
    let out = alpha.docker(&gw, "docker builder prune -f");
    assert!(out.code != 0 && out.stderr.contains("dockgate:"), "{out}");
}
