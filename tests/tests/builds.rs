//! Classic builds through the full gateway: a Dockerfile's `ADD <url>` (dockerd fetches it
//! from the host's network, loopback included) is refused before dockerd fetches anything,
//! in every spelling the builder reads; each is first shown to fetch on dockerd's own socket.
//! Ordinary builds (COPY, local ADD, several tags) work through the gateway.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dockgate_tests::docker::{
    docker_direct, docker_direct_quiet, run_script, Cli, Endpoint, Transport,
};
use dockgate_tests::nginx::{Flavor, Gateway, GatewayOptions};
use dockgate_tests::{free_port, unique_name, wait_until, TempDir};

/// A loopback web server holding `secret`: what only the host can reach.
struct Origin {
    port: u16,
    dir: TempDir,
    child: Child,
}

impl Origin {
    fn start() -> Origin {
        let dir = TempDir::new("origin").unwrap();
        std::fs::write(dir.path().join("secret"), "host-only data\n").unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("http.log")).unwrap();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        assert!(wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }));
        Origin { port, dir, child }
    }

    fn fetches(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("http.log"))
            .unwrap_or_default()
            .matches("GET /secret")
            .count()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A build context directory with `files`.
fn context(files: &[(&str, String)]) -> TempDir {
    let dir = TempDir::new("ctx").unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn build(endpoint: &Endpoint, ctx: &Path, args: &str, tag: &str) -> (i32, String) {
    let out = run_script(
        Cli::Current,
        endpoint,
        &format!("DOCKER_BUILDKIT=0 docker build -q {args} -t $T $CTX"),
        &[("T", tag), ("CTX", &ctx.display().to_string())],
        None,
    );
    (out.code, format!("{}{}", out.stdout, out.stderr))
}

fn remove(tag: &str) {
    docker_direct_quiet(&["image", "rm", "-f", tag]);
}

/// What a case is, its context's files, and the build's extra arguments.
type Case<'a> = (&'a str, Vec<(&'a str, String)>, String);

#[test]
fn add_from_a_url_is_refused_before_the_engine_fetches_it() {
    let origin = Origin::start();
    let url = format!("http://127.0.0.1:{}/secret", origin.port);
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let gateway = Endpoint::gateway(&gw, Transport::Tcp);
    let direct = Endpoint::direct();
    let cases: Vec<Case> = vec![
        (
            "ADD url",
            vec![("Dockerfile", format!("FROM busybox\nADD {url} /s\n"))],
            String::new(),
        ),
        (
            "ADD through a build argument",
            vec![("Dockerfile", "FROM busybox\nARG U\nADD $U /s\n".to_string())],
            format!("--build-arg U={url}"),
        ),
        (
            "ADD in JSON form, continued over lines",
            vec![(
                "Dockerfile",
                format!("FROM busybox\nADD \\\n  [\"{url}\", \"/s\"]\n"),
            )],
            String::new(),
        ),
        (
            "a Dockerfile given with -f",
            vec![
                ("Dockerfile", "FROM busybox\n".to_string()),
                (
                    "sub/other.df",
                    format!("FROM busybox\nADD --chown=1:1 {url} /s\n"),
                ),
            ],
            "-f $CTX/sub/other.df".to_string(),
        ),
        (
            "the escape directive",
            vec![(
                "Dockerfile",
                format!("# escape=`\nFROM busybox\nADD `\n {url} /s\n"),
            )],
            String::new(),
        ),
    ];
    let mut failures = Vec::new();
    for (what, files, args) in &cases {
        let ctx = context(files);
        let tag = unique_name("fetch");
        let before = origin.fetches();
        let (code, out) = build(&gateway, ctx.path(), args, &tag);
        let fetched = origin.fetches() - before;
        if code == 0 || !out.contains("dockgate: ADD ") || fetched != 0 {
            failures.push(format!(
                "{what}: through the gateway: exit {code}, {fetched} fetches: {out}"
            ));
        }
        // On dockerd's socket the same build reads the host-only data.
        let (code, out) = build(&direct, ctx.path(), args, &tag);
        let fetched = origin.fetches() - before;
        if code != 0 || fetched == 0 {
            failures.push(format!(
                "{what}: not an escape on dockerd itself: {code} {out}"
            ));
        }
        remove(&tag);
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        gw.sidecar_log()
    );
}

#[test]
fn an_onbuild_trigger_fetching_a_url_cannot_be_written_into_an_image() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let gateway = Endpoint::gateway(&gw, Transport::Tcp);
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nONBUILD ADD http://127.0.0.1:9/secret /s\n".to_string(),
    )]);
    let tag = unique_name("onbuild");
    let (code, out) = build(&gateway, ctx.path(), "", &tag);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("dockgate: ADD http://127.0.0.1:9/secret"),
        "{out}\n{}",
        gw.sidecar_log()
    );
    let c = unique_name("onbuild-commit");
    let script = "docker create --name $C --network none busybox true >/dev/null && \
                  docker commit --change 'ONBUILD ADD http://127.0.0.1:9/secret /s' $C $T";
    let out = run_script(
        Cli::Current,
        &gateway,
        script,
        &[("C", &c), ("T", &tag)],
        None,
    );
    docker_direct_quiet(&["rm", "-f", &c]);
    remove(&tag);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("the trigger ONBUILD"), "{out}");
}

#[test]
fn ordinary_builds_pass_with_every_tag() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let gateway = Endpoint::gateway(&gw, Transport::Tcp);
    let id = unique_name("id");
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY id /id\nADD id /id2\n".to_string(),
        ),
        ("id", id.clone()),
    ]);
    let (a, b) = (unique_name("tag-a"), unique_name("tag-b"));
    let (code, out) = build(&gateway, ctx.path(), &format!("-t {b}"), &a);
    let tags = (code == 0).then(|| {
        (
            docker_direct(&["image", "inspect", "-f", "{{.Id}}", &a]),
            docker_direct(&["image", "inspect", "-f", "{{.Id}}", &b]),
        )
    });
    remove(&a);
    remove(&b);
    assert_eq!(code, 0, "{out}\n{}", gw.sidecar_log());
    let (ida, idb) = tags.unwrap();
    assert_eq!(ida, idb);
}
