//! The conformance scenarios: docker CLI scripts run on dockerd's socket and through a
//! gateway, whose exit code, stdout and stderr must match.
//!
//! Each script runs under bash with `pipefail`, `docker` being the CLI under test, and:
//! - `$C`: a long-running `busybox sleep` container made for the run;
//! - `$N`: a fresh name for containers or images the script makes (`$N*` are removed after);
//! - `$W`: a scratch directory.
//!
//! Their values are replaced by `$C`, `$N`, `$W` in the outputs before comparing, since the
//! direct and gateway runs use different ones. Every scenario also states what the direct
//! run must show, so a broken engine cannot make both sides agree on nothing.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::docker::{run_script, Cli, Container, Endpoint, Outcome};
use crate::{unique_name, TempDir};

/// One CLI behaviour to compare.
pub struct Scenario {
    pub name: &'static str,
    pub script: &'static str,
    pub stdin: Option<&'static [u8]>,
    /// Exit code the direct run must have.
    pub code: i32,
    /// Text the direct run's stdout must contain.
    pub stdout_has: &'static str,
    /// Only for this CLI (e.g. BuildKit through Debian's 20.10 client, which embeds it).
    pub only: Option<Cli>,
    /// Needs dockgate's half-close: fails through stock nginx.
    pub half_close: bool,
}

const SCENARIO: Scenario = Scenario {
    name: "",
    script: "",
    stdin: None,
    code: 0,
    stdout_has: "",
    only: None,
    half_close: false,
};

/// 100 MiB of a fixed pattern, identical on every run. Scripts run it in an inner shell
/// (`bash -c "$PATTERN_100M"`): under `pipefail` the SIGPIPE of `yes` would fail the script.
const PATTERN_100M: &str = "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 104857600";

pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "run_echo",
            script: "docker run --rm --network none busybox echo hi",
            stdout_has: "hi\n",
            half_close: true,
            ..SCENARIO
        },
        Scenario {
            name: "run_exit_code_and_stderr",
            script: "docker run --rm --network none busybox sh -c 'echo out; echo err >&2; exit 3'",
            code: 3,
            stdout_has: "out\n",
            half_close: true,
            ..SCENARIO
        },
        Scenario {
            name: "run_stdin_outlives_pipe",
            script: "docker run --rm -i --network none busybox sh -c 'cat; sleep 1; echo done'",
            stdin: Some(b"line1\nline2\n"),
            stdout_has: "line1\nline2\ndone\n",
            half_close: true,
            ..SCENARIO
        },
        Scenario {
            name: "run_tty",
            script: "script -qec \"docker run --rm -t --network none busybox sh -c 'tty; echo tty-ok'\" /dev/null | tr -d '\\r'",
            stdout_has: "/dev/pts/0\ntty-ok\n",
            ..SCENARIO
        },
        Scenario {
            name: "exec_echo",
            script: "docker exec $C echo hi",
            stdout_has: "hi\n",
            half_close: true,
            ..SCENARIO
        },
        Scenario {
            name: "exec_stdin_piped",
            script: "docker exec -i $C cat",
            stdin: Some(b"x\ny\n"),
            stdout_has: "x\ny\n",
            half_close: true,
            ..SCENARIO
        },
        Scenario {
            name: "exec_stderr_apart",
            script: "docker exec $C sh -c 'echo out; echo err >&2; echo out2' 2>$W/err; echo ---; cat $W/err",
            stdout_has: "out\nout2\n---\nerr\n",
            half_close: true,
            ..SCENARIO
        },
        Scenario {
            name: "exec_exit_code",
            script: "docker exec $C sh -c 'exit 7'",
            code: 7,
            half_close: true,
            ..SCENARIO
        },
        Scenario {
            name: "exec_tty",
            script: "script -qec \"docker exec -t $C sh -c 'echo tty-exec'\" /dev/null | tr -d '\\r'",
            stdout_has: "tty-exec\n",
            ..SCENARIO
        },
        Scenario {
            name: "exec_stdout_100mb",
            script: "docker exec $C sh -c \"$PATTERN_100M\" | sha256sum; \
                     bash -c \"$PATTERN_100M\" | sha256sum",
            stdout_has: "  -\n",
            half_close: true,
            ..SCENARIO
        },
        Scenario {
            name: "exec_stdin_100mb",
            script: "bash -c \"$PATTERN_100M\" | docker exec -i $C sha256sum; \
                     bash -c \"$PATTERN_100M\" | sha256sum",
            stdout_has: "  -\n",
            half_close: true,
            ..SCENARIO
        },
        Scenario {
            name: "attach",
            script: "docker run -d --network none --name $N busybox sh -c 'sleep 1; echo attached; exit 4' >/dev/null \
                     && docker attach $N",
            code: 4,
            stdout_has: "attached\n",
            ..SCENARIO
        },
        Scenario {
            name: "start_attach_stdin",
            script: "docker create -i -a stdin -a stdout -a stderr --network none --name $N busybox sh -c 'read l; sleep 0.5; echo got:$l' >/dev/null \
                     && docker start -ai $N",
            stdin: Some(b"hello\n"),
            stdout_has: "got:hello\n",
            half_close: true,
            ..SCENARIO
        },
        Scenario {
            name: "logs_follow",
            script: "docker run -d --network none --name $N busybox sh -c 'for i in 1 2 3; do echo line$i; echo err$i >&2; sleep 0.3; done' >/dev/null \
                     && docker logs -f $N 2>$W/err; echo ---; cat $W/err",
            stdout_has: "line1\nline2\nline3\n---\nerr1\nerr2\nerr3\n",
            ..SCENARIO
        },
        Scenario {
            name: "cp_in_and_out",
            script: "bash -c 'yes blob | head -c 5000000' >$W/blob && docker cp $W/blob $C:/tmp/$N \
                     && docker exec $C sha256sum /tmp/$N | cut -d' ' -f1 \
                     && docker cp $C:/tmp/$N - | tar -xO | sha256sum | cut -d' ' -f1 \
                     && sha256sum <$W/blob | cut -d' ' -f1",
            stdout_has: "\n",
            ..SCENARIO
        },
        // Each build adds a file holding its own `$N`, so no two builds (direct and gateway,
        // parallel tests) produce the same image ID, which one run's cleanup would remove from
        // under another.
        Scenario {
            name: "build_50mb_context",
            script: "mkdir $W/ctx && bash -c 'yes ctx | head -c 52428800' >$W/ctx/blob && echo $N >$W/ctx/id \
                     && printf 'FROM scratch\\nCOPY blob id /\\n' >$W/ctx/Dockerfile \
                     && DOCKER_BUILDKIT=0 docker build -q -t $N $W/ctx >/dev/null 2>$W/err \
                     && size=$(docker image inspect -f '{{.Size}}' $N) \
                     && [ \"$size\" = $(( 52428800 + ${#N} + 1 )) ] && echo size-ok",
            stdout_has: "size-ok\n",
            ..SCENARIO
        },
        Scenario {
            name: "build_buildkit_session",
            script: "mkdir $W/ctx && echo $N >$W/ctx/id && printf 'FROM scratch\\nCOPY id /\\n' >$W/ctx/Dockerfile \
                     && DOCKER_BUILDKIT=1 docker build -q -t $N $W/ctx >/dev/null \
                     && size=$(docker image inspect -f '{{.Size}}' $N) \
                     && [ \"$size\" = $(( ${#N} + 1 )) ] && echo size-ok",
            stdout_has: "size-ok\n",
            only: Some(Cli::Debian),
            ..SCENARIO
        },
        Scenario {
            name: "events_bounded",
            script: "t0=$(date +%s); docker run --rm --network none --name $N busybox true \
                     && docker events --since $t0 --until $(( $(date +%s) + 1 )) --filter container=$N --format '{{.Action}}'",
            stdout_has: "create\nattach\nstart\ndie\ndestroy\n",
            ..SCENARIO
        },
        Scenario {
            name: "stats_no_stream",
            script: "docker stats --no-stream --format '{{.Name}}' $C",
            stdout_has: "$C\n",
            ..SCENARIO
        },
        Scenario {
            name: "wait",
            script: "docker run -d --network none --name $N busybox sh -c 'sleep 0.5; exit 5' >/dev/null && docker wait $N",
            stdout_has: "5\n",
            ..SCENARIO
        },
        Scenario {
            name: "top",
            script: "docker top $C -o pid,args | tail -n +2 | sed 's/^ *[0-9]* *//'",
            stdout_has: "sleep 3600\n",
            ..SCENARIO
        },
        Scenario {
            name: "port",
            script: "docker port $C; docker port $C 80",
            code: 1,
            ..SCENARIO
        },
        Scenario {
            name: "rename",
            script: "docker create --network none --name $N busybox true >/dev/null \
                     && docker rename $N $N-renamed && docker inspect -f '{{.Name}}' $N-renamed",
            stdout_has: "/$N-renamed\n",
            ..SCENARIO
        },
        Scenario {
            name: "kill",
            script: "docker run -d --network none --name $N busybox sleep 100 >/dev/null \
                     && docker kill -s KILL $N >/dev/null && docker wait $N",
            stdout_has: "137\n",
            ..SCENARIO
        },
        Scenario {
            name: "pause_unpause",
            script: "docker pause $C >/dev/null && docker inspect -f '{{.State.Status}}' $C \
                     && docker unpause $C >/dev/null && docker inspect -f '{{.State.Status}}' $C",
            stdout_has: "paused\nrunning\n",
            ..SCENARIO
        },
        Scenario {
            name: "missing_container_error",
            script: "docker exec $N-missing true",
            code: 1,
            ..SCENARIO
        },
    ]
}

/// Runs `scenario` with `cli` on `endpoint`, with its own `$C`, `$N`, `$W`; normalised.
pub fn run(scenario: &Scenario, cli: Cli, endpoint: &Endpoint, container: &Container) -> Outcome {
    let name = unique_name(scenario.name.trim_start_matches('_'));
    run_as(scenario, cli, endpoint, &container.name, &name, None)
}

/// Runs `scenario` with `$C` = `container` and `$N` = `name`, both as the caller names them;
/// in `tenant`'s namespace when given (for the clean-up on dockerd's socket).
fn run_as(
    scenario: &Scenario,
    cli: Cli,
    endpoint: &Endpoint,
    container: &str,
    name: &str,
    tenant: Option<&str>,
) -> Outcome {
    let work = TempDir::new("work").expect("work dir");
    let work_path = work.path().display().to_string();
    let mut outcome = run_script(
        cli,
        endpoint,
        scenario.script,
        &[
            ("C", container),
            ("N", name),
            ("W", &work_path),
            ("PATTERN_100M", PATTERN_100M),
        ],
        scenario.stdin,
    );
    cleanup(name, tenant);
    outcome.stderr = without_cli_noise(&outcome.stderr);
    for (value, placeholder) in [(container, "$C"), (name, "$N"), (work_path.as_str(), "$W")] {
        outcome.stdout = outcome.stdout.replace(value, placeholder);
        outcome.stderr = outcome.stderr.replace(value, placeholder);
    }
    outcome
}

/// Drops stderr lines the CLI prints or not depending on goroutine timing alone, directly as
/// through any proxy: `docker run -d` of the 20.10 client starts a wait request and cancels
/// it on exit, logging the cancellation when the answer comes back first.
fn without_cli_noise(stderr: &str) -> String {
    const NOISE: &[&str] = &["error waiting for container: context canceled"];
    stderr
        .lines()
        .filter(|l| !NOISE.iter().any(|n| l.contains(n)))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Removes what a scenario may have made under `name` (images are not namespaced).
fn cleanup(name: &str, tenant: Option<&str>) {
    let engine = tenant.map_or(name.to_string(), |t| format!("{t}.{name}"));
    let script = format!(
        "docker rm -f {engine} {engine}-renamed >/dev/null 2>&1; docker rmi -f {name} >/dev/null 2>&1; true"
    );
    run_script(Cli::Current, &Endpoint::direct(), &script, &[], None);
}

/// The direct-socket outcome of a scenario for a CLI, computed once per test process.
pub fn direct_outcome(scenario: &Scenario, cli: Cli) -> Outcome {
    type Cache = Mutex<HashMap<(&'static str, Cli), Outcome>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(o) = cache.lock().unwrap().get(&(scenario.name, cli)) {
        return o.clone();
    }
    let container = Container::start("direct");
    let outcome = run(scenario, cli, &Endpoint::direct(), &container);
    drop(container);
    assert_eq!(
        outcome.code, scenario.code,
        "{} direct with {cli}: unexpected exit code\n{outcome}",
        scenario.name
    );
    assert!(
        outcome.stdout.contains(scenario.stdout_has),
        "{} direct with {cli}: stdout lacks {:?}\n{outcome}",
        scenario.name,
        scenario.stdout_has
    );
    cache
        .lock()
        .unwrap()
        .insert((scenario.name, cli), outcome.clone());
    outcome
}

/// Runs every scenario for `cli` through `endpoint` and compares with the direct socket.
/// Returns the names of the scenarios that differ, with both outcomes.
pub fn compare_all(cli: Cli, endpoint: &Endpoint) -> Vec<(String, Outcome, Outcome)> {
    let container = Container::start("gw");
    let mut failures = Vec::new();
    for scenario in all() {
        if scenario.only.is_some_and(|only| only != cli) {
            continue;
        }
        let direct = direct_outcome(&scenario, cli);
        let through = run(&scenario, cli, endpoint, &container);
        if through != direct {
            failures.push((scenario.name.to_string(), direct, through));
        }
    }
    failures
}

/// As [`compare_all`], for a tenant's user behind `endpoint`: the scenarios' container and
/// names are `tag`-based, so two tenants given the same tag use the same names at once.
/// Builds are left out: images are not namespaced yet, so two tenants building the same
/// tag would share (and remove) one image.
pub fn compare_all_as_tenant(
    cli: Cli,
    endpoint: &Endpoint,
    tenant: &str,
    tag: &str,
) -> Vec<(String, Outcome, Outcome)> {
    let view = format!("{tag}-c");
    let label = format!("dockgate.tenant={tenant}");
    let container = Container::start_named(
        crate::nginx::SYSTEM_DOCKERD,
        &format!("{tenant}.{view}"),
        &["--label", &label],
        &["sleep", "3600"],
    );
    let mut failures = Vec::new();
    for scenario in all() {
        if scenario.only.is_some_and(|only| only != cli) || scenario.name.starts_with("build_") {
            continue;
        }
        let direct = direct_outcome(&scenario, cli);
        let name = format!(
            "{tag}-{}",
            scenario.name.trim_start_matches('_').replace('_', "-")
        );
        let through = run_as(&scenario, cli, endpoint, &view, &name, Some(tenant));
        if through != direct {
            failures.push((scenario.name.to_string(), direct, through));
        }
    }
    drop(container);
    failures
}

/// Formats differing outcomes for a test failure message.
pub fn report(failures: &[(String, Outcome, Outcome)]) -> String {
    failures
        .iter()
        .map(|(name, direct, through)| {
            format!("== {name}\n-- direct:\n{direct}\n-- through the gateway:\n{through}\n")
        })
        .collect()
}

/// The conformance scenarios, both CLIs, through a deployed gateway (installed from the
/// packages, started from the image): each scenario that differs from the socket, reported.
pub fn conformance_failures(endpoint: &Endpoint) -> Vec<String> {
    Cli::ALL
        .into_iter()
        .filter_map(|cli| {
            let failures = compare_all(cli, endpoint);
            (!failures.is_empty()).then(|| {
                format!(
                    "{} with {cli}: {} scenario(s) differ\n{}",
                    endpoint.label,
                    failures.len(),
                    report(&failures)
                )
            })
        })
        .collect()
}
