//! What someone more trusted made is out of a conservative role's reach: an admin's container
//! with the Docker socket mounted (exec, attach, cp, --volumes-from, start, kill, rm), a volume
//! made with bind options, a macvlan network, a privileged exec. Each way is first shown to
//! work on dockerd's own socket, then refused through the gateway with nothing changed; the
//! role's ordinary objects, and everyone's ordinary containers, stay in reach.

use dockgate_tests::docker::{
    docker_direct, docker_direct_quiet, run_script, Cli, Container, Endpoint, Transport,
};
use dockgate_tests::nginx::{Flavor, Gateway, GatewayOptions, SYSTEM_DOCKERD};
use dockgate_tests::raw::{self, Target};
use dockgate_tests::unique_name;

/// Runs `script` with the current CLI against `endpoint`, `$A` being the admin's container,
/// `$V` the bind volume, `$N` a fresh name.
fn run(endpoint: &Endpoint, script: &str, vars: &[(&str, &str)]) -> (i32, String) {
    let out = run_script(Cli::Current, endpoint, script, vars, None);
    (out.code, format!("{}{}", out.stdout, out.stderr))
}

#[test]
fn an_admins_objects_are_out_of_reach_and_ordinary_ones_are_not() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let gateway = Endpoint::gateway(&gw, Transport::Tcp);
    let direct = Endpoint::direct();
    // What an admin made on the socket: a container holding the Docker socket, a volume
    // binding /etc, and an ordinary container.
    let admin = Container::start_with(
        SYSTEM_DOCKERD,
        "admin",
        &[
            "-v",
            "/var/run/docker.sock:/var/run/docker.sock",
            "-v",
            "/etc:/hostetc:ro",
        ],
        &["sleep", "3600"],
    );
    let ordinary = Container::start("ordinary");
    let vol = unique_name("bindvol");
    docker_direct(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        "device=/etc",
        &vol,
    ]);
    let vars = [("A", admin.name.as_str()), ("V", vol.as_str())];

    let mut failures = Vec::new();
    for (what, script, proof) in [
        ("exec into it", "docker exec $A ls /var/run/docker.sock", "docker.sock"),
        (
            "--volumes-from it",
            "docker run --rm --network none --volumes-from $A busybox ls /var/run/docker.sock",
            "docker.sock",
        ),
        (
            "copy the host's files out of it",
            "docker cp $A:/hostetc/hostname - | tar -xO",
            "",
        ),
        (
            "mount the bind volume",
            "docker run --rm --network none -v $V:/x busybox cat /x/hostname",
            "",
        ),
        (
            "mount the bind volume with --mount",
            "docker run --rm --network none --mount type=volume,src=$V,dst=/x busybox cat /x/hostname",
            "",
        ),
    ] {
        let (code, out) = run(&direct, script, &vars);
        let host_name = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let proof = if proof.is_empty() { host_name.trim() } else { proof };
        if code != 0 || !out.contains(proof) {
            failures.push(format!("{what}: not an escape on dockerd itself ({code}): {out}"));
        }
        let (code, out) = run(&gateway, script, &vars);
        if code == 0 || !out.contains("dockgate: ") || !out.contains("not created under this role") {
            failures.push(format!("{what}: the gateway let it through ({code}): {out}"));
        }
    }
    // Destructive ones: refused, and the container is still running.
    for (what, script) in [
        ("kill", "docker kill $A"),
        ("rm -f", "docker rm -f $A"),
        ("stop", "docker stop -t 1 $A"),
    ] {
        let (code, out) = run(&gateway, script, &vars);
        if code == 0 || !out.contains("not created under this role") {
            failures.push(format!(
                "{what}: the gateway let it through ({code}): {out}"
            ));
        }
    }
    let state = docker_direct(&["inspect", "-f", "{{.State.Running}}", &admin.name]);
    assert_eq!(state, "true", "the admin's container was stopped");

    // Ordinary containers, whoever made them, stay usable.
    let o = [("O", ordinary.name.as_str())];
    for script in [
        "docker exec $O echo hi",
        "docker run --rm --network none --volumes-from $O busybox true",
    ] {
        let (code, out) = run(&gateway, script, &o);
        if code != 0 {
            failures.push(format!("{script}: refused ({code}): {out}"));
        }
    }
    drop(admin);
    drop(ordinary);
    let _ = docker_direct_quiet(&["volume", "rm", &vol]);
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        gw.sidecar_log()
    );
}

#[test]
fn a_privileged_exec_and_a_macvlan_network_are_out_of_reach() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let tcp = Target::Tcp(gw.port);
    let socket = Target::Unix(SYSTEM_DOCKERD.into());
    let c = Container::start("privexec");
    // An admin's privileged exec, created on the socket: starting it runs it privileged.
    let (status, body) = raw::call(
        &socket,
        "POST",
        &format!("/v1.41/containers/{}/exec", c.name),
        r#"{"Cmd":["grep","CapEff","/proc/self/status"],"Privileged":true,"AttachStdout":true}"#,
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    let exec = raw::json_string_field(&body, "Id").unwrap();
    let (status, body) = raw::call(
        &tcp,
        "POST",
        &format!("/v1.41/exec/{exec}/start"),
        r#"{"Detach":false,"Tty":true}"#,
    )
    .unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("this exec was created privileged"), "{body}");
    // dockerd holds it as privileged: a start on the socket runs it so (this sandbox's
    // runtime cannot grant every capability, so the start itself is not the proof here).
    let (status, body) =
        raw::call(&socket, "GET", &format!("/v1.41/exec/{exec}/json"), "").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""privileged":true"#), "{body}");

    // A macvlan network an admin made on a spare host interface (a create joins nothing
    // yet: no container of it starts, no traffic).
    let link = ["ifb0", "ifb1", "eth0"]
        .into_iter()
        .find(|l| std::path::Path::new("/sys/class/net").join(l).exists())
        .expect("a host interface for macvlan");
    {
        let net = unique_name("macvlan");
        docker_direct(&[
            "network",
            "create",
            "-d",
            "macvlan",
            "-o",
            &format!("parent={link}"),
            &net,
        ]);
        let name = unique_name("joiner");
        let create = format!(
            r#"{{"Image":"busybox","Cmd":["true"],"HostConfig":{{"NetworkMode":"{net}"}}}}"#
        );
        let (status, body) = raw::call(
            &tcp,
            "POST",
            &format!("/v1.41/containers/create?name={name}"),
            &create,
        )
        .unwrap();
        let created = docker_direct_quiet(&["inspect", &name]);
        let _ = docker_direct_quiet(&["rm", "-f", &name]);
        // The same create on the socket joins it.
        let (direct_status, _) = raw::call(
            &socket,
            "POST",
            &format!("/v1.41/containers/create?name={name}"),
            &create,
        )
        .unwrap();
        let _ = docker_direct_quiet(&["rm", "-f", &name]);
        let _ = docker_direct_quiet(&["network", "rm", &net]);
        assert_eq!(direct_status, 201, "not an escape on dockerd itself");
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("network driver \\\"macvlan\\\""), "{body}");
        assert!(!created);
    }
}

#[test]
fn a_conservative_prune_removes_only_what_the_role_made() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let gateway = Endpoint::gateway(&gw, Transport::Tcp);
    let theirs = unique_name("theirs");
    docker_direct(&[
        "create",
        "--network",
        "none",
        "--name",
        &theirs,
        "busybox",
        "true",
    ]);
    let mine = unique_name("mine");
    let (code, out) = run(
        &gateway,
        "docker create --network none --name $M busybox true >/dev/null && \
         docker inspect -f '{{index .Config.Labels \"dockgate.policy\"}}' $M && \
         docker container prune -f >/dev/null",
        &[("M", &mine)],
    );
    let theirs_left = docker_direct_quiet(&["inspect", &theirs]);
    let mine_left = docker_direct_quiet(&["inspect", &mine]);
    let _ = docker_direct_quiet(&["rm", "-f", &theirs]);
    let _ = docker_direct_quiet(&["rm", "-f", &mine]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "developer", "{out}");
    assert!(
        theirs_left,
        "the prune removed a container the role did not make"
    );
    assert!(
        !mine_left,
        "the prune left the role's own stopped container"
    );
}

#[test]
fn joining_a_containers_network_needs_it_in_reach_all_the_way_down() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let gateway = Endpoint::gateway(&gw, Transport::Tcp);
    let direct = Endpoint::direct();
    // An admin's container on the host's network, one that joined it, and an ordinary one.
    let host_net = Admin::run("hostnet", "host");
    let joined = Admin::run("joined", &format!("container:{}", host_net.0));
    let ordinary = Container::start("ordinary-net");
    // The host's interfaces, as the host sees them: more than `lo`.
    let links = |out: &str| out.lines().filter(|l| l.contains(": <")).count();
    let mut failures = Vec::new();
    for target in [&host_net.0, &joined.0] {
        let script = format!("docker run --rm --network container:{target} busybox ip -o link");
        let (code, out) = run(&direct, &script, &[]);
        if code != 0 || links(&out) < 2 {
            failures.push(format!(
                "{target}: not the host's network on dockerd itself: {out}"
            ));
        }
        let (code, out) = run(&gateway, &script, &[]);
        if code == 0 || !out.contains("not created under this role") {
            failures.push(format!("{target}: the gateway let it join ({code}): {out}"));
        }
    }
    let (code, out) = run(
        &gateway,
        &format!("docker exec {} ip -o link", joined.0),
        &[],
    );
    if code == 0 || !out.contains("not created under this role") {
        failures.push(format!("exec into the joined container ({code}): {out}"));
    }
    // An ordinary container's network can be joined: a service and its test client.
    let script = format!(
        "docker run --rm --network container:{} busybox ip -o link",
        ordinary.name
    );
    let (code, out) = run(&gateway, &script, &[]);
    if code != 0 || links(&out) != 1 {
        failures.push(format!("joining an ordinary container ({code}): {out}"));
    }
    drop((joined, host_net, ordinary));
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        gw.sidecar_log()
    );
}

/// An admin's `busybox sleep` on dockerd's socket with `--network MODE`, removed on drop.
struct Admin(String);

impl Admin {
    fn run(tag: &str, network: &str) -> Admin {
        let name = unique_name(tag);
        docker_direct(&[
            "run",
            "-d",
            "--network",
            network,
            "--name",
            &name,
            "busybox",
            "sleep",
            "3600",
        ]);
        Admin(name)
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        docker_direct_quiet(&["rm", "-f", &self.0]);
    }
}
