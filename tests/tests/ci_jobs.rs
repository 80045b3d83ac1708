//! CI jobs with a Docker socket of their own (`job_socket`), run the way a GitLab runner's
//! docker executor runs them: a runner creates a job container with a build volume, copies
//! the checkout in, starts it and runs the job's script with `docker exec`. The script uses
//! only the socket the gateway mounted at `/var/run/docker.sock` and a docker CLI of the job
//! image (the same CLI as the runner's): it builds an image from its checkout, runs a
//! service and talks to it on loopback, mounts `$PWD` into containers, uses docker-compose,
//! and tries to get out. Two jobs run at once with the same names; one ends while the
//! sidecar is down, the sidecar is restarted (gracefully, then with SIGKILL) in the middle of
//! the other, which is then killed with SIGKILL and removed. After each job its namespace is
//! empty, and the other job and the runner are untouched.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use dockgate_tests::docker::{
    docker_direct, docker_direct_quiet, run_script, Cli, Endpoint, Outcome,
};
use dockgate_tests::mirrors::ApiUser;
use dockgate_tests::nginx::{token_sha256, Flavor, Gateway, GatewayOptions};
use dockgate_tests::{repo_root, unique_name, wait_until, TempDir};

const JOB_IMAGE: &str = "dgtest/ci-job:host";

/// The offline job image: Debian from the host's files, both docker CLIs, docker-compose.
fn job_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(repo_root().join("scripts/test-ci-job-image.sh"))
            .env("DOCKER_HOST", "unix:///var/run/docker.sock")
            .status()
            .expect("run scripts/test-ci-job-image.sh");
        assert!(status.success(), "test-ci-job-image.sh failed");
    });
    JOB_IMAGE
}

/// The runner (a token user in its own tenant, role `runner`, whose containers are jobs) and
/// the job role: conservative, at most 4 containers and 1 GiB, 128 MiB each by default.
fn gateway(runner: &ApiUser) -> Gateway {
    gateway_with(runner, "")
}

/// As [`gateway`], with more keys for the `[jobs]` table.
fn gateway_with(runner: &ApiUser, jobs: &str) -> Gateway {
    let policy = format!(
        "[tenants.{tenant}]\n\
         [[users]]\nname = \"{name}\"\nrole = \"runner\"\ntenant = \"{tenant}\"\n\
         token_sha256 = [\"{hash}\"]\n\
         [roles.runner]\nallow = [\"read\", \"write\", \"exec\", \"image\", \"volume\", \"network\"]\n\
         policies = [\"conservative\"]\njob_socket = \"ci-job\"\n\
         [roles.ci-job]\n\
         allow = [\"read\", \"write\", \"exec\", \"build\", \"image\", \"network\", \"volume\"]\n\
         policies = [\"conservative\"]\nmax_containers = 4\nmax_memory = 1073741824\n\
         default_memory = 134217728\n\
         [jobs]\ndir = \"@DIR@/jobs\"\nlistener = \"unix\"\n{jobs}",
        name = runner.name,
        tenant = runner.tenant.as_deref().unwrap_or(""),
        hash = token_sha256(&runner.token),
        jobs = jobs,
    );
    Gateway::start_with(GatewayOptions {
        policy: Some(policy),
        ..GatewayOptions::policy(Flavor::Debian)
    })
}

/// The job's script, in steps (`STEP`), with `DOCKER` the CLI to use.
const CI_SCRIPT: &str = r#"set -euo pipefail
trap 'echo "ci.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR
D=$DOCKER
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
cd /builds/proj
# A refusal by the gateway: the command fails and says why, naming dockgate.
refused() {
    local out
    if out=$("$@" 2>&1); then echo "NOT REFUSED: $*: $out"; exit 1; fi
    case $out in *dockgate*) ;; *) echo "refused, but not by the gateway: $*: $out"; exit 1;; esac
}
names() { "$@" | sort | tr '\n' ' '; }
case $STEP in
build)
    test -S /var/run/docker.sock
    $D version --format '{{.Server.Version}}' >/dev/null
    $D build -q -t app:ci . >/dev/null
    $D run --pull never -d --name svc --network none app:ci >/dev/null
    for _ in $(seq 50); do
        $D run --pull never --rm --network container:svc busybox wget -qO- http://127.0.0.1:8080/ >got.txt 2>err.txt && break
        sleep 0.2
    done
    grep -q "hello from $JOB" got.txt || { cat err.txt >&2; false; }
    # $PWD is the job's path: it becomes the job's build volume.
    $D run --pull never --rm -v "$PWD":/src busybox cat /src/marker.txt | grep -q "$JOB"
    $D run --pull never --rm -v "$PWD":/src -w /src busybox sh -c 'echo child-wrote >out.txt'
    grep -q child-wrote out.txt
    $D run --pull never --rm --mount type=bind,source=/builds,target=/b,readonly busybox cat /b/proj/marker.txt | grep -q "$JOB"
    if $D run --pull never --rm -v "$PWD":/src:ro busybox touch /src/nope 2>/dev/null; then echo "read-only bind was writable"; exit 1; fi
    # A symlink the job plants in its volume leads to the child's own files, not the host's.
    ln -sfn / root-link
    $D run --pull never --rm -v "$PWD/root-link":/r busybox sh -c "test -e /r/bin/busybox && test ! -e /r$HOST_MARKER"
    docker-compose -p proj run --rm check | grep -q "$JOB"
    # A bind inside a bind: the same place seen through the outer one, or refused (its link
    # would land in the job's checkout); the checkout is untouched.
    mkdir -p sub && echo inner >sub/f
    $D run --pull never --rm -v "$PWD":/app -v "$PWD/sub":/app/sub busybox cat /app/sub/f | grep -qx inner
    refused $D run --pull never --rm -v "$PWD":/app -v "$PWD/marker.txt":/app/other.txt busybox true
    test ! -e other.txt && test ! -L other.txt && test -d sub && test ! -L sub
    # An image's VOLUME cannot be a link's place; a volume's root can go there.
    printf 'FROM busybox\nVOLUME /data\n' | $D build -q -t volimg - >/dev/null
    refused $D run --pull never --rm -v "$PWD/sub":/data volimg true
    $D run --pull never --rm -v /builds:/data volimg ls /data/proj/marker.txt >/dev/null
    # The gateway's labels, however a Dockerfile spells them.
    printf 'FROM busybox\nLABEL dockgate\\.job=%s\n' "$OTHER_KEY" >Dockerfile.evil
    refused $D build -q -f Dockerfile.evil -t evil .
    printf 'FROM busybox\nLABEL "dockgate".job=%s\n' "$OTHER_KEY" >Dockerfile.evil
    refused $D build -q -f Dockerfile.evil -t evil .
    $D volume create data >/dev/null
    $D network create net >/dev/null
    $D run --pull never --rm -v data:/d busybox sh -c 'echo v >/d/f'
    test "$(names $D ps -a --format '{{.Names}}')" = "svc "
    test "$(names $D volume ls -q)" = "data "
    $D rmi volimg >/dev/null
    $D network ls --format '{{.Name}}' | grep -qx net
    # Its children have no socket: a job cannot hand one out.
    $D run --pull never --rm busybox sh -c 'test ! -e /var/run/docker.sock && test ! -e /run/dockgate'
    refused $D run --pull never --rm --privileged busybox true
    refused $D run --pull never --rm -v /:/host busybox true
    refused $D run --pull never --rm -v /var/run/docker.sock:/var/run/docker.sock busybox true
    refused $D run --pull never --rm -v /run/dockgate:/s busybox true
    refused $D run --pull never --rm -v "$HOST_SOCKET":/s busybox true
    refused $D run --pull never --rm -v "$OTHER_JOB_DIR":/s busybox true
    refused $D run --pull never --rm -v /builds/../etc:/x busybox true
    refused $D run --pull never --rm --network host busybox true
    refused $D run --pull never --rm -v "$PWD":/src:rshared busybox true
    refused $D run --pull never --rm --mount type=bind,source=/builds,target=/b,bind-propagation=rshared busybox true
    # The gateway's labels are its own: no job can pass for another.
    refused $D run --pull never --rm --label dockgate.job=$OTHER_KEY busybox true
    refused $D volume create --label dockgate.tenant=job$OTHER_KEY stolen
    # Its own job container is the runner's: not there to borrow from or join.
    if $D run --pull never --rm --volumes-from "$JOB" busybox true 2>/dev/null; then echo "borrowed from its job container"; exit 1; fi
    if $D run --pull never --rm --network container:"$JOB" busybox true 2>/dev/null; then echo "joined its job container"; exit 1; fi
    # The other job's service has the same name; this one's is its own.
    $D inspect -f '{{.Config.Image}}' svc | grep -qx app:ci
    # The runner's objects and the other job's are not there.
    if $D inspect "$JOB" >/dev/null 2>&1; then echo "sees its own job container"; exit 1; fi
    if $D volume inspect "$JOB-build" >/dev/null 2>&1; then echo "sees the runner's volume"; exit 1; fi
    # Limits: 1 GiB, 4 containers (svc has 128 MiB).
    refused $D run --pull never --rm -m 2g busybox true
    $D create --pull never --name c2 busybox true >/dev/null
    $D create --pull never --name c3 busybox true >/dev/null
    $D create --pull never --name c4 busybox true >/dev/null
    refused $D create --pull never --name c5 busybox true
    $D rm c2 c3 c4 >/dev/null
    test "$(names $D ps -a --format '{{.Names}}')" = "svc "
    ;;
again)
    # After the sidecar was restarted: the same socket path works, the job's state is there.
    $D ps --format '{{.Names}}' | grep -qx svc
    $D run --pull never --rm -v "$PWD":/src busybox cat /src/marker.txt | grep -q "$JOB"
    $D exec svc true
    $D images --format '{{.Repository}}:{{.Tag}}' | grep -qx app:ci
    ;;
esac
echo "step $STEP ok"
"#;

/// A checkout: a Dockerfile for a web service saying hello, a marker, a compose file and
/// the job's script.
fn checkout(dir: &Path, job: &str) {
    fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nCOPY index.html /www/index.html\n\
         CMD [\"httpd\", \"-f\", \"-p\", \"127.0.0.1:8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    fs::write(dir.join("index.html"), format!("hello from {job}\n")).unwrap();
    fs::write(dir.join("marker.txt"), format!("{job}\n")).unwrap();
    fs::write(
        dir.join("docker-compose.yml"),
        "version: \"3\"\nservices:\n  check:\n    image: busybox\n    network_mode: none\n\
         \x20   volumes:\n      - .:/src\n    command: cat /src/marker.txt\n",
    )
    .unwrap();
    fs::write(dir.join("ci.sh"), CI_SCRIPT).unwrap();
}

/// One job: its container in the runner's namespace, and its key.
struct Job {
    name: String,
    key: String,
}

impl Job {
    /// The runner's part: a build volume, the job container, the checkout copied in, start.
    fn start(runner: &ApiUser, cli: Cli, gw: &Gateway, name: &str) -> Job {
        let src = TempDir::new("checkout").unwrap();
        checkout(src.path(), name);
        let out = runner.docker(
            cli,
            gw,
            &format!(
                "set -e\n\
                 docker volume create {name}-build >/dev/null\n\
                 docker create --pull never --name {name} --network none -v {name}-build:/builds \
                   -w /builds/proj {JOB_IMAGE} sleep 900 >/dev/null\n\
                 docker cp {src}/. {name}:/builds/proj\n\
                 docker start {name} >/dev/null\n",
                src = src.path().display()
            ),
        );
        assert_eq!(out.code, 0, "the runner could not start job {name}: {out}");
        let key = docker_direct(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"dockgate.job\"}}",
            &format!("{}.{name}", runner.tenant.as_deref().unwrap_or("")),
        ]);
        assert_eq!(key.len(), 24, "job {name} has no key: {key:?}");
        Job {
            name: name.to_string(),
            key,
        }
    }

    /// Runs a step of the job's script, the way the runner does: `docker exec`.
    fn step(&self, runner: &ApiUser, cli: Cli, gw: &Gateway, step: &str, other: &Job) -> Outcome {
        let marker = gw.dir.path().join("host-only-marker");
        fs::write(&marker, "host").unwrap();
        runner.docker(
            cli,
            gw,
            &format!(
                "docker exec -e DOCKER={cli_path} -e STEP={step} -e JOB={name} \
                 -e HOST_MARKER={marker} -e HOST_SOCKET=/var/run/docker.sock \
                 -e OTHER_JOB_DIR={other_dir} -e OTHER_KEY={other_key} {name} \
                 bash /builds/proj/ci.sh",
                other_key = other.key,
                cli_path = cli.path().display(),
                name = self.name,
                marker = marker.display(),
                other_dir = gw.dir.path().join("jobs").join(&other.key).display(),
            ),
        )
    }

    fn tenant(&self) -> String {
        format!("job{}", self.key)
    }
}

/// What the engine holds in a namespace: containers, volumes, networks, images.
fn namespace(tenant: &str) -> Vec<String> {
    let label = format!("label=dockgate.tenant={tenant}");
    let mut out = Vec::new();
    for (kind, args) in [
        ("container", vec!["ps", "-a", "-q", "--filter", &label]),
        ("volume", vec!["volume", "ls", "-q", "--filter", &label]),
        ("network", vec!["network", "ls", "-q", "--filter", &label]),
    ] {
        for line in docker_direct(&args).lines() {
            out.push(format!("{kind} {line}"));
        }
    }
    let images = docker_direct(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let prefix = format!("dockgate-{tenant}/");
    out.extend(
        images
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(|l| format!("image {l}")),
    );
    out
}

/// Removes, however the test ends, what it made: the job containers and build volumes in
/// the runner's namespace, and what is left in the jobs' namespaces.
struct Leftovers {
    /// The runner's engine names of its job containers.
    names: Vec<String>,
    tenants: std::sync::Mutex<Vec<String>>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for name in &self.names {
            docker_direct_quiet(&["rm", "-f", name]);
        }
        for tenant in self.tenants.lock().unwrap().iter() {
            for what in namespace(tenant) {
                let (kind, id) = what.split_once(' ').unwrap();
                match kind {
                    "container" => docker_direct_quiet(&["rm", "-f", "-v", id]),
                    "image" => docker_direct_quiet(&["rmi", "-f", id]),
                    kind => docker_direct_quiet(&[kind, "rm", id]),
                };
            }
        }
        for name in &self.names {
            docker_direct_quiet(&["volume", "rm", &format!("{name}-build")]);
        }
    }
}

fn emptied_within(job: &Job, seconds: u64) -> Vec<String> {
    let tenant = job.tenant();
    wait_until(Duration::from_secs(seconds), || {
        namespace(&tenant).is_empty()
    });
    namespace(&tenant)
}

/// The runner, in a tenant of its own per run (runs share the engine).
fn runner() -> (String, ApiUser) {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tenant = format!("ci{}x{run}", std::process::id());
    (tenant.clone(), ApiUser::new("runner", Some(tenant)))
}

fn ci_run(cli: Cli) {
    let image = job_image();
    let (tenant, runner) = runner();
    let mut gw = gateway(&runner);
    let (a, b) = (unique_name("job-a"), unique_name("job-b"));
    let leftovers = Leftovers {
        names: vec![format!("{tenant}.{a}"), format!("{tenant}.{b}")],
        tenants: Default::default(),
    };
    let (a, b) = std::thread::scope(|s| {
        let ta = s.spawn(|| Job::start(&runner, cli, &gw, &a));
        let tb = s.spawn(|| Job::start(&runner, cli, &gw, &b));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    leftovers
        .tenants
        .lock()
        .unwrap()
        .extend([a.tenant(), b.tenant()]);
    let jobs_dir = gw.dir.path().join("jobs");
    let job_dir = jobs_dir.join(&a.key);
    assert!(
        job_dir.join("docker.sock").exists(),
        "job {} has no socket",
        a.name
    );

    // Direct on dockerd, another job's socket directory is a way in: proof that the
    // refusal in the script guards something.
    let probe = docker_direct(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{}:/s", job_dir.display()),
        "busybox",
        "ls",
        "/s",
    ]);
    assert_eq!(probe, "docker.sock");
    // Through the gateway, the runner can neither bind a job's socket nor claim a job's key.
    for attempt in [
        format!(
            "docker run --pull never --rm --network none -v {}:/s busybox true",
            job_dir.display()
        ),
        format!(
            "docker run --pull never --rm --network none --label dockgate.job={} busybox true",
            a.key
        ),
    ] {
        let out = runner.docker(cli, &gw, &attempt);
        assert!(
            out.code != 0 && out.stderr.contains("dockgate: "),
            "the runner got through: {attempt}: {out}"
        );
    }

    // The host's other users can read a job's key (a job process's mountinfo is world-
    // readable) but cannot reach its socket: the jobs' directory is the sidecar's alone.
    let pid = docker_direct(&[
        "inspect",
        "-f",
        "{{.State.Pid}}",
        &format!("{tenant}.{}", a.name),
    ]);
    let as_nobody = |code: &str| {
        Command::new("/usr/bin/python3")
            .args(["-c", code])
            .uid(65534)
            .gid(65534)
            .output()
            .expect("python3 as nobody")
    };
    let mountinfo = as_nobody(&format!("print(open('/proc/{pid}/mountinfo').read())"));
    assert!(
        String::from_utf8_lossy(&mountinfo.stdout).contains(&a.key),
        "the key is not where a host user could read it: {mountinfo:?}"
    );
    let connect = as_nobody(&format!(
        "import socket; s = socket.socket(socket.AF_UNIX); s.connect({:?}); print('connected')",
        job_dir.join("docker.sock").display().to_string()
    ));
    assert!(
        !connect.status.success()
            && String::from_utf8_lossy(&connect.stderr).contains("PermissionError"),
        "a host user reached a job's socket: {connect:?}"
    );

    // Both jobs at once, with the same names inside.
    let (ra, rb) = std::thread::scope(|s| {
        let ta = s.spawn(|| a.step(&runner, cli, &gw, "build", &b));
        let tb = s.spawn(|| b.step(&runner, cli, &gw, "build", &a));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    assert_eq!(ra.code, 0, "job a ({cli}): {ra}\n{}", gw.sidecar_log());
    assert_eq!(rb.code, 0, "job b ({cli}): {rb}\n{}", gw.sidecar_log());
    assert!(!namespace(&a.tenant()).is_empty() && !namespace(&b.tenant()).is_empty());

    // Job b ends while the sidecar is down; the sidecar cleans up when it is back.
    gw.stop_sidecar();
    assert!(docker_direct_quiet(&[
        "rm",
        "-f",
        &format!("{tenant}.{}", b.name)
    ]));
    gw.resume_sidecar();
    let left = emptied_within(&b, 20);
    assert!(
        left.is_empty(),
        "job b's namespace after it ended: {left:?}"
    );
    assert!(wait_until(Duration::from_secs(5), || !jobs_dir
        .join(&b.key)
        .exists()));

    // A container that only carries job a's label (an image's labels come with it) is not
    // job a: removing it ends nothing.
    let decoy = unique_name("decoy");
    docker_direct(&[
        "create",
        "--network",
        "none",
        "--label",
        &format!("dockgate.job={}", a.key),
        "--name",
        &decoy,
        "busybox",
        "true",
    ]);
    docker_direct(&["rm", &decoy]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        job_dir.join("docker.sock").exists(),
        "a decoy's removal closed job a's socket"
    );
    assert!(
        !namespace(&a.tenant()).is_empty(),
        "a decoy's removal emptied job a's namespace"
    );

    // Job a goes on through restarts of the sidecar, graceful and not.
    let again = a.step(&runner, cli, &gw, "again", &b);
    assert_eq!(
        again.code,
        0,
        "job a after a restart: {again}\n{}",
        gw.sidecar_log()
    );
    gw.kill_and_restart_sidecar();
    let again = a.step(&runner, cli, &gw, "again", &b);
    assert_eq!(
        again.code,
        0,
        "job a after SIGKILL: {again}\n{}",
        gw.sidecar_log()
    );

    // The job is killed (a cancelled job) and removed by the runner.
    let out = runner.docker(
        cli,
        &gw,
        &format!(
            "docker kill -s KILL {0} >/dev/null && docker rm {0} >/dev/null",
            a.name
        ),
    );
    assert_eq!(out.code, 0, "the runner could not remove job a: {out}");
    let left = emptied_within(&a, 20);
    assert!(
        left.is_empty(),
        "job a's namespace after it ended: {left:?}"
    );
    assert!(wait_until(Duration::from_secs(5), || !job_dir.exists()));

    // The runner's own objects are untouched; it removes them itself.
    let out = runner.docker(
        cli,
        &gw,
        &format!("docker volume ls -q | sort | tr '\\n' ' '; docker volume rm {0}-build {1}-build >/dev/null", a.name, b.name),
    );
    assert_eq!(out.code, 0, "the runner's volumes: {out}");
    let mut listed: Vec<&str> = out.stdout.split_whitespace().collect();
    listed.sort_unstable();
    let mut expected = [format!("{}-build", a.name), format!("{}-build", b.name)];
    expected.sort_unstable();
    assert_eq!(listed, expected, "the runner's volumes");
    let _ = image;
    drop(leftovers);
}

#[test]
fn a_ci_run_with_the_current_cli() {
    ci_run(Cli::Current);
}

#[test]
fn a_ci_run_with_debians_cli() {
    ci_run(Cli::Debian);
}

#[test]
fn with_cleanup_stop_a_job_is_emptied_when_it_stops_and_usable_when_started_again() {
    let image = job_image();
    let (tenant, runner) = runner();
    let gw = gateway_with(&runner, "cleanup = \"stop\"\n");
    let name = unique_name("job-stop");
    let leftovers = Leftovers {
        names: vec![format!("{tenant}.{name}")],
        tenants: Default::default(),
    };
    let job = Job::start(&runner, Cli::Current, &gw, &name);
    leftovers.tenants.lock().unwrap().push(job.tenant());
    // The job's socket, used from the host: the same identity as from inside.
    let socket = gw
        .dir
        .path()
        .join("jobs")
        .join(&job.key)
        .join("docker.sock");
    let as_job = Endpoint::unix("job", &socket);
    let out = run_script(
        Cli::Current,
        &as_job,
        "docker run -d --pull never --network none --name svc busybox sleep 600 >/dev/null && \
         docker volume create data >/dev/null && docker ps --format '{{.Names}}'",
        &[],
        None,
    );
    assert_eq!((out.code, out.stdout.trim()), (0, "svc"), "{out}");
    assert_eq!(namespace(&job.tenant()).len(), 2);
    // An anonymous volume (dockerd labels none) goes with its container, `-v` or not.
    let out = run_script(
        Cli::Current,
        &as_job,
        "docker run -d --pull never --network none -v /scratch --name anon busybox sleep 600",
        &[],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    let anon = docker_direct(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Name}}{{end}}",
        &format!("{}.anon", job.tenant()),
    ]);
    let out = run_script(Cli::Current, &as_job, "docker rm -f anon", &[], None);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        !docker_direct_quiet(&["volume", "inspect", &anon]),
        "the anonymous volume {anon} stayed"
    );
    let stop = runner.docker(Cli::Current, &gw, &format!("docker stop -t 1 {name}"));
    assert_eq!(stop.code, 0, "{stop}");
    let left = emptied_within(&job, 20);
    assert!(left.is_empty(), "after the job stopped: {left:?}");
    // Stopped, not removed: started again, its socket works again, in an empty namespace.
    let start = runner.docker(Cli::Current, &gw, &format!("docker start {name}"));
    assert_eq!(start.code, 0, "{start}");
    let out = run_script(Cli::Current, &as_job, "docker ps -a -q | wc -l", &[], None);
    assert_eq!((out.code, out.stdout.trim()), (0, "0"), "{out}");
    let rm = runner.docker(Cli::Current, &gw, &format!("docker rm -f {name}"));
    assert_eq!(rm.code, 0, "{rm}");
    let dir = socket.parent().unwrap().to_path_buf();
    assert!(
        wait_until(Duration::from_secs(10), || !dir.exists()),
        "the job's directory stayed"
    );
    // The sidecar's own metrics (nginx's `/_dockgate/metrics` are the module's): the clean-up
    // ends after the directory is gone.
    let metrics = || {
        let out = Command::new("curl")
            .args(["-sf", "--unix-socket"])
            .arg(gw.dir.path().join("sidecar.sock"))
            .arg("http://sidecar/_dockgate/metrics")
            .output()
            .expect("curl the sidecar's metrics");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let counted = |m: &str| {
        m.contains("dockgate_jobs_ended_total 1\n")
            && m.contains("dockgate_job_objects_removed_total{kind=\"container\"} 1\n")
            && m.contains("dockgate_job_objects_removed_total{kind=\"volume\"} 1\n")
            && m.contains("dockgate_jobs_open 0\n")
    };
    wait_until(Duration::from_secs(5), || counted(&metrics()));
    let m = metrics();
    assert!(counted(&m), "{m}");
    let _ = image;
    drop(leftovers);
}
