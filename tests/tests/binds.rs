//! Symlinks in allowed bind trees. With `bind_allowlist = [T]`, a container that mounts `T`
//! can plant `T/x -> /`, and `-v T/x:/host` then binds the host's root: dockerd resolves bind
//! sources on the host at start. Each step is first shown on dockerd's own socket:
//!
//! 1. `T` a plain directory: the planted symlink escapes on the socket and is refused through
//!    the gateway, as is every path below `T` (a swap could not be stopped); `T` itself binds.
//! 2. `T` a `nosymfollow` mount: a real directory below it binds, the symlink stays refused
//!    (and fails on the socket too: the kernel will not follow it).
//! 3. The swap: a create of `-v T/sub` allowed by the gateway, then `T/sub` replaced with a
//!    symlink to `/` by another container, then the start: it fails, nothing of the host
//!    seen. The same swap on a plain tree, straight on the socket, exposes `/`.
//!
//! Needs root (to mount) and Linux 5.10 or later (`nosymfollow`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use dockgate_tests::docker::{run_script, Cli, Endpoint, Transport};
use dockgate_tests::nginx::{Flavor, Gateway, GatewayOptions, SYSTEM_DOCKERD};
use dockgate_tests::{running_as_root, unique_name, TempDir};

/// `dir` bind-mounted on itself with `nosymfollow`, unmounted on drop.
struct Nosymfollow(PathBuf);

impl Nosymfollow {
    fn mount(dir: &Path) -> Nosymfollow {
        let out = Command::new("mount")
            .args(["--bind", "-o", "nosymfollow"])
            .arg(dir)
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount --bind -o nosymfollow {0} {0} failed (Linux 5.10 and util-linux 2.36 are \
             needed): {1}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let mounted = Nosymfollow(dir.to_path_buf());
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
        let line = mountinfo
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(&dir.display().to_string()))
            .unwrap_or_else(|| panic!("{} is not in the mount table", dir.display()));
        let options = line.split(' ').nth(5).unwrap_or("");
        assert!(
            options.split(',').any(|o| o == "nosymfollow"),
            "the kernel did not set nosymfollow: {line}"
        );
        mounted
    }
}

impl Drop for Nosymfollow {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Containers removed (on dockerd's socket) on drop.
struct Containers(Vec<String>);

impl Containers {
    fn name(&mut self, tag: &str) -> String {
        let name = unique_name(tag);
        self.0.push(name.clone());
        name
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new(Cli::Current.path())
                .args(["rm", "-f", name])
                .env("DOCKER_HOST", format!("unix://{SYSTEM_DOCKERD}"))
                .output();
        }
    }
}

/// `script` with the current CLI on `endpoint`: exit code and everything printed.
fn run(endpoint: &Endpoint, script: &str, vars: &[(&str, &str)]) -> (i32, String) {
    let out = run_script(Cli::Current, endpoint, script, vars, None);
    (out.code, format!("{}{}", out.stdout, out.stderr))
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

#[test]
fn symlinks_in_allowed_trees_do_not_reach_the_host() {
    assert!(running_as_root(), "this suite mounts: run it as root");
    // The trees, and a secret elsewhere on the host that only an escape can read.
    let tree = TempDir::new("binds-tree").expect("tree");
    let plain = TempDir::new("binds-plain").expect("plain tree");
    let secret_dir = TempDir::new("binds-secret").expect("secret dir");
    let secret = unique_name("secret");
    fs::write(secret_dir.path().join("secret"), &secret).expect("write the secret");
    fs::create_dir(tree.path().join("sub")).expect("mkdir sub");
    fs::create_dir(plain.path().join("sub")).expect("mkdir sub");
    let t = tree.path().display().to_string();
    let p = plain.path().display().to_string();
    let s = secret_dir.path().join("secret").display().to_string();
    let allowlist: &'static str =
        Box::leak(format!("bind_allowlist = [\"{t}\", \"{p}\"]").into_boxed_str());
    let gw = Gateway::start_with(GatewayOptions {
        policy: Some(String::new()),
        sidecar_edits: vec![("bind_allowlist = []", allowlist)],
        ..GatewayOptions::new(Flavor::Debian)
    });
    let gateway = Endpoint::gateway(&gw, Transport::Tcp);
    let direct = Endpoint::direct();
    let mut containers = Containers(Vec::new());
    let (c_v, c_mount, c_plain, c_refused) = (
        containers.name("swap-v"),
        containers.name("swap-mount"),
        containers.name("swap-plain"),
        containers.name("refused"),
    );
    let vars = [
        ("T", t.as_str()),
        ("P", p.as_str()),
        ("S", s.as_str()),
        ("CV", c_v.as_str()),
        ("CM", c_mount.as_str()),
        ("CP", c_plain.as_str()),
        ("CR", c_refused.as_str()),
    ];
    let run_ = "docker run --rm --network none";
    let mut failures = Vec::new();
    let mut expect = |what: &str, (code, out): (i32, String), ok: bool, needle: &str| {
        let passed = if ok {
            code == 0 && out.contains(needle)
        } else {
            code != 0 && out.contains(needle) && !out.contains(&secret)
        };
        if !passed {
            failures.push(format!("{what}: expected {}: exit {code}: {out}", {
                if ok {
                    "success"
                } else {
                    "a refusal"
                }
            }));
        }
        out
    };

    // 1. A plain tree. Binding it works through the gateway, and a container plants a link.
    expect(
        "1. -v T:/t plants T/x -> / (gateway)",
        run(
            &gateway,
            &format!("{run_} -v $T:/t busybox ln -s / /t/x && echo planted"),
            &vars,
        ),
        true,
        "planted",
    );
    assert!(is_symlink(&tree.path().join("x")), "no symlink T/x");
    expect(
        "1. -v T/x:/host on the socket: the escape",
        run(
            &direct,
            &format!("{run_} -v $T/x:/host busybox cat /host$S"),
            &vars,
        ),
        true,
        &secret,
    );
    for (what, opts) in [
        ("-v T/x:/host", "-v $T/x:/host"),
        ("-v T/x/...:/host (middle)", "-v $T/x$(dirname $S):/host"),
        ("--mount src=T/x", "--mount type=bind,src=$T/x,dst=/host"),
    ] {
        expect(
            &format!("1. {what} through the gateway"),
            run(
                &gateway,
                &format!("{run_} {opts} busybox cat /host$S"),
                &vars,
            ),
            false,
            &format!("dockgate: bind mount source {t}/x"),
        );
    }
    expect(
        "1. -v T/sub (a real directory, but the tree is not nosymfollow) through the gateway",
        run(
            &gateway,
            &format!("{run_} -v $T/sub:/s busybox true"),
            &vars,
        ),
        false,
        "which is not a nosymfollow mount",
    );

    // 2. The tree a nosymfollow mount: real directories below it bind, symlinks do not.
    let mounted = Nosymfollow::mount(tree.path());
    expect(
        "2. -v T/sub:/s through the gateway",
        run(
            &gateway,
            &format!("{run_} -v $T/sub:/s busybox touch /s/made"),
            &vars,
        ),
        true,
        "",
    );
    assert!(tree.path().join("sub/made").exists(), "no T/sub/made");
    expect(
        "2. -v T/x:/host through the gateway",
        run(
            &gateway,
            &format!("{run_} -v $T/x:/host busybox cat /host$S"),
            &vars,
        ),
        false,
        "goes through the symlink",
    );
    // The kernel stops it on the socket too now.
    let out = expect(
        "2. -v T/x:/host on the socket (nosymfollow)",
        run(
            &direct,
            &format!("{run_} -v $T/x:/host busybox cat /host$S"),
            &vars,
        ),
        false,
        "",
    );
    eprintln!("nosymfollow, -v T/x on the socket: {}", out.trim());
    // A missing source below the tree: dockerd creates it, a directory.
    expect(
        "2. -v T/new/deeper (missing) through the gateway",
        run(
            &gateway,
            &format!("{run_} -v $T/new/deeper:/n busybox true"),
            &vars,
        ),
        true,
        "",
    );
    assert!(
        tree.path().join("new/deeper").is_dir(),
        "dockerd did not create T/new/deeper"
    );

    // 3. The swap. Created while T/sub is a real directory...
    expect(
        "3. create -v T/sub:/s through the gateway",
        run(
            &gateway,
            "docker create --name $CV --network none -v $T/sub:/s busybox cat /s$S",
            &vars,
        ),
        true,
        "",
    );
    expect(
        "3. create --mount src=T/sub through the gateway",
        run(
            &gateway,
            "docker create --name $CM --network none --mount type=bind,src=$T/sub,dst=/s \
             busybox cat /s$S",
            &vars,
        ),
        true,
        "",
    );
    // ... swapped by another container of the same role ...
    expect(
        "3. swap T/sub for a symlink to / (gateway container)",
        run(
            &gateway,
            &format!(
                "{run_} -v $T:/t busybox sh -c 'rm -rf /t/sub && ln -s / /t/sub && echo swapped'"
            ),
            &vars,
        ),
        true,
        "swapped",
    );
    assert!(
        is_symlink(&tree.path().join("sub")),
        "T/sub was not swapped"
    );
    // ... started: the kernel refuses to follow the symlink, whoever resolves it.
    for (what, name) in [("-v", "$CV"), ("--mount", "$CM")] {
        let out = expect(
            &format!("3. start the {what} container after the swap (gateway)"),
            run(&gateway, &format!("docker start -a {name}"), &vars),
            false,
            "",
        );
        eprintln!("nosymfollow swap, {what}: {}", out.trim());
    }
    drop(mounted);

    // The control: the same swap on a plain tree, straight on the socket, exposes `/`; the
    // gateway refuses the create.
    expect(
        "3. create -v P/sub through the gateway (plain tree)",
        run(
            &gateway,
            "docker create --name $CR --network none -v $P/sub:/s busybox true",
            &vars,
        ),
        false,
        "which is not a nosymfollow mount",
    );
    expect(
        "3. create -v P/sub:/s on the socket",
        run(
            &direct,
            "docker create --name $CP --network none -v $P/sub:/s busybox cat /s$S",
            &vars,
        ),
        true,
        "",
    );
    expect(
        "3. swap P/sub for a symlink to / (socket container)",
        run(
            &direct,
            &format!(
                "{run_} -v $P:/t busybox sh -c 'rm -rf /t/sub && ln -s / /t/sub && echo swapped'"
            ),
            &vars,
        ),
        true,
        "swapped",
    );
    expect(
        "3. start after the swap on a plain tree (socket): the escape",
        run(&direct, "docker start -a $CP", &vars),
        true,
        &secret,
    );

    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
