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

/// One tar header block (ustar) for `name`, `size` bytes, type `flag`, checksum set.
fn tar_header(name: &str, size: usize, flag: u8) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = flag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

/// A header whose size field says `size`, then `data`, padded to blocks.
fn tar_entry(name: &str, size: usize, flag: u8, data: &[u8]) -> Vec<u8> {
    let mut out = tar_header(name, size, flag);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

#[test]
fn a_context_is_read_as_dockerds_tar_reader_reads_it() {
    // Archives whose Dockerfile dockerd finds only if its extension headers and data sizes
    // are read exactly as Go's archive/tar reads them.
    let origin = Origin::start();
    let url = format!("http://127.0.0.1:{}/secret", origin.port);
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let dockerfile = format!("FROM busybox\nADD {url} /s\n");
    let df = dockerfile.as_bytes();
    let pax_path = {
        let body = " path=Dockerfile\n";
        let record = format!("{}{body}", body.len() + 2);
        tar_entry("PaxHeaders/foo", record.len(), b'x', record.as_bytes())
    };
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "a directory entry whose size field is not zero",
            vec![
                tar_entry("d/", 512, b'5', &[]),
                tar_entry("Dockerfile", df.len(), b'0', df),
            ],
        ),
        (
            "a PAX path kept across a GNU long link",
            vec![
                pax_path,
                tar_entry("././@LongLink", 4, b'K', b"dest"),
                tar_entry("foo", df.len(), b'0', df),
            ],
        ),
    ];
    let work = TempDir::new("tar-ctx").unwrap();
    let mut failures = Vec::new();
    for (what, entries) in &cases {
        let mut tar = entries.concat();
        tar.extend_from_slice(&[0u8; 1024]);
        let file = work.path().join("ctx.tar");
        std::fs::write(&file, &tar).unwrap();
        let tag = unique_name("tarproof");
        let post = |base: &str, extra: &str| {
            run_script(
                Cli::Current,
                &Endpoint::direct(),
                &format!(
                    "curl -sS {extra} -X POST -H 'Content-Type: application/x-tar' \
                     --data-binary @$F '{base}/v1.41/build?t={tag}'"
                ),
                &[("F", &file.display().to_string())],
                None,
            )
        };
        let before = origin.fetches();
        let out = post(&format!("http://127.0.0.1:{}", gw.port), "");
        if origin.fetches() != before || !out.stdout.contains("dockgate: ADD ") {
            failures.push(format!("{what}: through the gateway:\n{out}"));
        }
        let out = post("http://docker", "--unix-socket /var/run/docker.sock");
        if origin.fetches() == before {
            failures.push(format!("{what}: not an escape on dockerd itself:\n{out}"));
        }
        remove(&tag);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
