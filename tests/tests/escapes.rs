//! An adversarial corpus against the `conservative` policy: raw requests that each get root on
//! the host (or reach past the container) on dockerd 20.10's own socket, proven there with
//! `docker inspect`, and that the gateway must refuse with a dockgate reason while creating
//! nothing. Plus harmless requests the gateway must keep letting through.

use std::io::Write;

use dockgate_tests::docker::Cli;
use dockgate_tests::nginx::{Flavor, Gateway, GatewayOptions, SYSTEM_DOCKERD};
use dockgate_tests::raw::{self, Conn, Target};
use dockgate_tests::{unique_name, TempDir};

/// What a request makes, and so how it is inspected and removed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Container,
    Volume,
    Network,
    /// The image tag `{name}:x`.
    Image,
}

/// How a case is sent and judged.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    /// One request that creates `{name}`.
    Create,
    /// `{name}` is first created plainly on the same socket, then the request (a start) sent.
    Start,
    /// The query names both `{name}` and `{name}-b`: only the first may ever be made.
    FirstName,
}

struct Case {
    what: &'static str,
    kind: Kind,
    how: How,
    /// `{name}` is a fresh name; `{parent}` a host interface; `{device}` a host block device.
    path: &'static str,
    content_type: &'static str,
    /// A JSON body not starting with `{` is a fragment: of `HostConfig` in
    /// `{"Image":"busybox","HostConfig":{…}}`, or for volumes of `DriverOpts` in
    /// `{"Name":"{name}","Driver":"local","DriverOpts":{…}}`. `TAR`: a `FROM busybox` context.
    body: &'static str,
    /// A `docker <kind> inspect -f` template, and what its output contains when it took effect.
    proof: (&'static str, &'static str),
    /// Volumes: an entry a container that mounts it sees at the top ("": no mount in the proof).
    mounted: &'static str,
}

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";
const CREATE: &str = "/v1.41/containers/create?name={name}";
const PLAIN: &str =
    r#"{"Image":"busybox","Cmd":["sleep","30"],"HostConfig":{"NetworkMode":"none"}}"#;
const IMAGE: (&str, &str) = ("{{.Id}}", "sha256:");

const fn case(kind: Kind, how: How, what: &'static str, path: &'static str) -> Case {
    Case {
        what,
        kind,
        how,
        path,
        content_type: JSON,
        body: "",
        proof: ("", ""),
        mounted: "",
    }
}

/// A container create at `CREATE`.
const fn create(
    what: &'static str,
    body: &'static str,
    proof: (&'static str, &'static str),
) -> Case {
    create_at(what, CREATE, body, proof)
}

const fn create_at(
    what: &'static str,
    path: &'static str,
    body: &'static str,
    proof: (&'static str, &'static str),
) -> Case {
    Case {
        body,
        proof,
        ..case(Kind::Container, How::Create, what, path)
    }
}

/// A local volume with DriverOpts `opts`; the proof: its Options, as inspect prints them
/// (keys sorted), contain `opts`.
const fn volume(what: &'static str, opts: &'static str, mounted: &'static str) -> Case {
    Case {
        body: opts,
        proof: ("{{json .Options}}", opts),
        mounted,
        ..case(Kind::Volume, How::Create, what, "/v1.41/volumes/create")
    }
}

const fn network(what: &'static str, body: &'static str, driver: &'static str) -> Case {
    Case {
        body,
        proof: ("{{.Driver}}", driver),
        ..case(Kind::Network, How::Create, what, "/v1.41/networks/create")
    }
}

/// A tag whose form body names `{name}:x`.
const fn form_tag(what: &'static str, path: &'static str, content_type: &'static str) -> Case {
    Case {
        content_type,
        body: "repo={name}&tag=x",
        proof: IMAGE,
        ..case(Kind::Image, How::Create, what, path)
    }
}

const fn start(
    what: &'static str,
    path: &'static str,
    body: &'static str,
    proof: (&'static str, &'static str),
) -> Case {
    Case {
        body,
        proof,
        ..case(Kind::Container, How::Start, what, path)
    }
}

const PRIVILEGED: (&str, &str) = ("{{.HostConfig.Privileged}}", "true");
const BIND_ROOT: (&str, &str) = ("{{.HostConfig.Binds}}", "/:/host");
const CAP_ADD: &str = "{{.HostConfig.CapAdd}}";
const SYS_ADMIN: (&str, &str) = (CAP_ADD, "SYS_ADMIN");
const SECURITY_OPT: &str = "{{json .HostConfig.SecurityOpt}}";
const MOUNTS: &str = "{{json .HostConfig.Mounts}}";
const LOG: &str = "{{json .HostConfig.LogConfig}}";
const SYSCTLS: &str = "{{json .HostConfig.Sysctls}}";

/// Requests that escape on a bare dockerd 20.10; the gateway must refuse every one.
const ESCAPES: &[Case] = &[
    // 1. Deprecated top-level host fields, read when HostConfig is absent or null.
    create(
        "top-level Privileged",
        r#"{"Image":"busybox","Privileged":true}"#,
        PRIVILEGED,
    ),
    create(
        "top-level Binds",
        r#"{"Image":"busybox","Binds":["/:/host"]}"#,
        BIND_ROOT,
    ),
    create(
        "HostConfig null, top-level CapAdd",
        r#"{"Image":"busybox","HostConfig":null,"CapAdd":["SYS_ADMIN"]}"#,
        SYS_ADMIN,
    ),
    create(
        "top-level PidMode host",
        r#"{"Image":"busybox","PidMode":"host"}"#,
        ("{{.HostConfig.PidMode}}", "host"),
    ),
    create(
        "top-level NetworkMode host",
        r#"{"Image":"busybox","NetworkMode":"host"}"#,
        ("{{.HostConfig.NetworkMode}}", "host"),
    ),
    create(
        "top-level SecurityOpt",
        r#"{"Image":"busybox","SecurityOpt":["seccomp=unconfined"]}"#,
        (SECURITY_OPT, "seccomp=unconfined"),
    ),
    create(
        "top-level Devices",
        r#"{"Image":"busybox","Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/x","CgroupPermissions":"rwm"}]}"#,
        (
            "{{json .HostConfig.Devices}}",
            r#""PathOnHost":"/dev/null""#,
        ),
    ),
    create(
        "top-level lowercase privileged",
        r#"{"Image":"busybox","privileged":true}"#,
        PRIVILEGED,
    ),
    create_at(
        "top-level Privileged, v1.24",
        "/v1.24/containers/create?name={name}",
        r#"{"Image":"busybox","Privileged":true}"#,
        PRIVILEGED,
    ),
    create_at(
        "top-level Binds, v1.40",
        "/v1.40/containers/create?name={name}",
        r#"{"Image":"busybox","Binds":["/:/host"]}"#,
        BIND_ROOT,
    ),
    create_at(
        "HostConfig null, Binds, no version",
        "/containers/create?name={name}",
        r#"{"Image":"busybox","HostConfig":null,"Binds":["/:/host"]}"#,
        BIND_ROOT,
    ),
    create_at(
        "top-level CapAdd, no version",
        "/containers/create?name={name}",
        r#"{"Image":"busybox","CapAdd":["SYS_ADMIN"]}"#,
        SYS_ADMIN,
    ),
    // 2. StrSlice: a bare string is a one-element list.
    create("CapAdd bare string", r#""CapAdd":"SYS_ADMIN""#, SYS_ADMIN),
    create(
        "capadd bare lowercase string",
        r#""capadd":"sys_admin""#,
        (CAP_ADD, "sys_admin"),
    ),
    create("CapAdd bare ALL", r#""CapAdd":"ALL""#, (CAP_ADD, "ALL")),
    create(
        "top-level CapAdd bare string",
        r#"{"Image":"busybox","CapAdd":"SYS_ADMIN"}"#,
        SYS_ADMIN,
    ),
    // 3. The local volume driver mounts any filesystem type (and MS_BIND ignores the type).
    volume(
        "volume type=proc",
        r#""device":"proc","type":"proc""#,
        "sys",
    ),
    volume(
        "volume type=sysfs",
        r#""device":"sysfs","type":"sysfs""#,
        "kernel",
    ),
    volume(
        "volume type=tmpfs device=/ o=bind",
        r#""device":"/","o":"bind","type":"tmpfs""#,
        "etc",
    ),
    volume(
        "volume type=ext4 device=/etc o=rbind,ro",
        r#""device":"/etc","o":"rbind,ro","type":"ext4""#,
        "passwd",
    ),
    volume(
        "volume type=devtmpfs",
        r#""device":"devtmpfs","type":"devtmpfs""#,
        "null",
    ),
    volume(
        "volume type=debugfs",
        r#""device":"debugfs","type":"debugfs""#,
        "",
    ),
    volume(
        "volume type=ext4 on a host disk",
        r#""device":"{device}","type":"ext4""#,
        "",
    ),
    Case {
        body: r#"{"Name":"{name}","DriverOpts":{"type":"proc","device":"proc"}}"#,
        ..volume(
            "volume type=proc, no Driver",
            r#""device":"proc","type":"proc""#,
            "",
        )
    },
    create(
        "inline Mounts volume type=proc",
        r#""Mounts":[{"Type":"volume","Target":"/x","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"proc","device":"proc"}}}}]"#,
        (MOUNTS, r#""type":"proc""#),
    ),
    create(
        "inline Mounts volume tmpfs device=/ o=bind",
        r#""Mounts":[{"Type":"volume","Target":"/x","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"tmpfs","device":"/","o":"bind"}}}}]"#,
        (MOUNTS, r#""o":"bind""#),
    ),
    // 4. Confinement off without the words a deny-list looks for.
    create(
        "MaskedPaths replaced by a decoy",
        r#""MaskedPaths":["/decoy"]"#,
        ("{{json .HostConfig.MaskedPaths}}", r#"["/decoy"]"#),
    ),
    create(
        "ReadonlyPaths replaced by a decoy",
        r#""ReadonlyPaths":["/decoy"]"#,
        ("{{json .HostConfig.ReadonlyPaths}}", r#"["/decoy"]"#),
    ),
    create(
        "seccomp profile inline, allow all",
        r#""SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]"#,
        (SECURITY_OPT, "SCMP_ACT_ALLOW"),
    ),
    create(
        "seccomp:unconfined (colon)",
        r#""SecurityOpt":["seccomp:unconfined"]"#,
        (SECURITY_OPT, "seccomp:unconfined"),
    ),
    create(
        "bare disable (label)",
        r#""SecurityOpt":["disable"]"#,
        (SECURITY_OPT, r#"["disable"]"#),
    ),
    create(
        "label=type:unconfined_t",
        r#""SecurityOpt":["label=type:unconfined_t"]"#,
        (SECURITY_OPT, "unconfined_t"),
    ),
    create(
        "label:disable (colon)",
        r#""SecurityOpt":["label:disable"]"#,
        (SECURITY_OPT, "label:disable"),
    ),
    create(
        "apparmor:unconfined (colon)",
        r#""SecurityOpt":["apparmor:unconfined"]"#,
        ("{{.AppArmorProfile}}", "unconfined"),
    ),
    // 5. Reach past the container: host interfaces, log shippers dialing out from dockerd.
    network(
        "macvlan on a host interface",
        r#"{"Name":"{name}","Driver":"macvlan","Options":{"parent":"{parent}"}}"#,
        "macvlan",
    ),
    network(
        "ipvlan on a host interface",
        r#"{"Name":"{name}","Driver":"ipvlan","Options":{"parent":"{parent}"}}"#,
        "ipvlan",
    ),
    network(
        "macvlan, lowercase keys",
        r#"{"name":"{name}","driver":"macvlan","options":{"parent":"{parent}"}}"#,
        "macvlan",
    ),
    create(
        "log driver syslog over tcp",
        r#""LogConfig":{"Type":"syslog","Config":{"syslog-address":"tcp://127.0.0.1:1"}}"#,
        (LOG, r#""Type":"syslog""#),
    ),
    create(
        "log driver gelf",
        r#""LogConfig":{"Type":"gelf","Config":{"gelf-address":"udp://127.0.0.1:1"}}"#,
        (LOG, r#""Type":"gelf""#),
    ),
    create(
        "log driver fluentd",
        r#""LogConfig":{"Type":"fluentd","Config":{"fluentd-address":"127.0.0.1:1","fluentd-async":"true"}}"#,
        (LOG, r#""Type":"fluentd""#),
    ),
    create(
        "log driver syslog to the docker socket",
        r#""LogConfig":{"Type":"syslog","Config":{"syslog-address":"unix:///var/run/docker.sock"}}"#,
        (LOG, "docker.sock"),
    ),
    // 6. Kernel knobs and resource guards.
    create(
        "sysctl net.ipv4.ip_forward",
        r#""Sysctls":{"net.ipv4.ip_forward":"1"}"#,
        (SYSCTLS, "ip_forward"),
    ),
    create(
        "sysctl kernel.msgmax",
        r#""Sysctls":{"kernel.msgmax":"65536"}"#,
        (SYSCTLS, "msgmax"),
    ),
    create(
        "OomScoreAdj -1000",
        r#""OomScoreAdj":-1000"#,
        ("{{.HostConfig.OomScoreAdj}}", "-1000"),
    ),
    create(
        "CpuRealtimeRuntime",
        r#""CpuRealtimeRuntime":950000"#,
        ("{{.HostConfig.CpuRealtimeRuntime}}", "950000"),
    ),
    create(
        "OomKillDisable",
        r#""OomKillDisable":true"#,
        ("{{.HostConfig.OomKillDisable}}", "true"),
    ),
    // 7. Form bodies override the query (Go's ParseForm puts body values first).
    form_tag(
        "form body tag, innocent query",
        "/v1.41/images/busybox/tag?repo={name}-other&tag=y",
        FORM,
    ),
    form_tag("form body tag, no query", "/v1.41/images/busybox/tag", FORM),
    form_tag(
        "form body tag, charset parameter",
        "/v1.41/images/busybox/tag?repo={name}-other&tag=y",
        "application/x-www-form-urlencoded; charset=utf-8",
    ),
    // 8. Before API 1.24 a start body is a HostConfig.
    start(
        "v1.23 start body Binds",
        "/v1.23/containers/{name}/start",
        r#"{"Binds":["/:/host"]}"#,
        BIND_ROOT,
    ),
    start(
        "v1.12 start body PidMode host",
        "/v1.12/containers/{name}/start",
        r#"{"PidMode":"host"}"#,
        ("{{.HostConfig.PidMode}}", "host"),
    ),
    start(
        "v1.23 start body, lowercase binds",
        "/v1.23/containers/{name}/start",
        r#"{"binds":["/etc:/x"]}"#,
        ("{{.HostConfig.Binds}}", "/etc:/x"),
    ),
    start(
        "v1.23 start body wrapped in HostConfig",
        "/v1.23/containers/{name}/start",
        r#"{"HostConfig":{"Binds":["/:/host"]}}"#,
        BIND_ROOT,
    ),
    // 9. Repeated query keys: dockerd reads the first; the second must never be made.
    Case {
        how: How::FirstName,
        ..create_at(
            "create with name twice",
            "/v1.41/containers/create?name={name}&name={name}-b",
            r#""NetworkMode":"none""#,
            ("", ""),
        )
    },
    Case {
        how: How::FirstName,
        body: "",
        ..form_tag(
            "tag with repo twice",
            "/v1.41/images/busybox/tag?repo={name}&repo={name}-b&tag=x",
            "",
        )
    },
];

/// Harmless requests the gateway must pass: 2xx, and the result is there.
const FIDELITY: &[Case] = &[
    create(
        "create with the zero values a CLI sends",
        r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["true"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"none","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"ConsoleSize":[0,0],"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"KernelMemory":0,"KernelMemoryTCP":0,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":false,"PidsLimit":null,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}"#,
        ("{{.HostConfig.NetworkMode}}", "none"),
    ),
    create(
        "plain create",
        PLAIN,
        ("{{.HostConfig.NetworkMode}}", "none"),
    ),
    Case {
        body: r#"{"Name":"{name}"}"#,
        ..volume("plain volume", "", "")
    },
    Case {
        body: r#"{"Driver":"local","DriverOpts":{"device":"tmpfs","o":"size=1m","type":"tmpfs"},"Labels":{},"Name":"{name}"}"#,
        ..volume(
            "local tmpfs volume with a size",
            r#""device":"tmpfs","o":"size=1m","type":"tmpfs""#,
            "",
        )
    },
    network(
        "bridge network, as the CLI sends it",
        r#"{"Name":"{name}","CheckDuplicate":true,"Driver":"bridge","Scope":"","EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{}}"#,
        "bridge",
    ),
    Case {
        body: "",
        ..form_tag(
            "tag from the query",
            "/v1.41/images/busybox/tag?repo={name}&tag=x",
            "",
        )
    },
    Case {
        body: "TAR",
        ..form_tag(
            "build with t twice",
            "/v1.41/build?t={name}:x&t={name}-b:x",
            "application/x-tar",
        )
    },
];

/// Host facts the bodies name.
struct Host {
    parent: String,
    device: String,
    context_tar: Vec<u8>,
}

impl Host {
    fn probe() -> Host {
        // A host interface macvlan accepts: not loopback, not one of dockerd's own.
        let mut links: Vec<String> = std::fs::read_dir("/sys/class/net")
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        links.retain(|l| {
            !["lo", "docker0", "br-", "veth"]
                .iter()
                .any(|p| l.starts_with(p))
        });
        links.sort_by_key(|l| (!l.starts_with("ifb") && !l.starts_with("dummy"), l.clone()));
        let device = "/dev/vda /dev/sda /dev/nvme0n1 /dev/xvda /dev/loop0"
            .split(' ')
            .find(|d| std::path::Path::new(d).exists())
            .unwrap_or("/dev/loop0");
        let dir = TempDir::new("context").unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM busybox\n").unwrap();
        let mut tar = std::process::Command::new("tar");
        let tar = tar
            .arg("-cf")
            .arg("-")
            .arg("-C")
            .arg(dir.path())
            .arg("Dockerfile");
        let tar = tar.output().unwrap();
        assert!(tar.status.success());
        Host {
            parent: links.first().cloned().unwrap_or_else(|| "eth0".into()),
            device: device.into(),
            context_tar: tar.stdout,
        }
    }

    fn fill(&self, template: &str, name: &str) -> String {
        template
            .replace("{name}", name)
            .replace("{parent}", &self.parent)
            .replace("{device}", &self.device)
    }
}

/// One raw POST; (0, error) when the connection fails.
fn send(target: &Target, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let attempt = || -> std::io::Result<(u16, String)> {
        let mut c = Conn::connect(target)?;
        let mut head = format!("POST {path} HTTP/1.1\r\nHost: docker\r\n");
        if !content_type.is_empty() {
            head += &format!("Content-Type: {content_type}\r\n");
        }
        head += &format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        c.write_all(head.as_bytes())?;
        c.write_all(body)?;
        let head = c.read_head()?;
        let rest = c.read_all()?;
        let text = if head.header("transfer-encoding") == Some("chunked") {
            raw::dechunk(&rest)
        } else {
            rest
        };
        Ok((head.status, String::from_utf8_lossy(&text).into_owned()))
    };
    attempt().unwrap_or_else(|e| (0, e.to_string()))
}

/// Sends a case for `name`; a Start case first creates `name` plainly on the same socket.
fn run(target: &Target, host: &Host, c: &Case, name: &str) -> (u16, String) {
    if c.how == How::Start {
        let (status, body) = send(target, &host.fill(CREATE, name), JSON, PLAIN.as_bytes());
        if status != 201 {
            return (0, format!("the plain create answered {status} {body:?}"));
        }
    }
    let path = host.fill(c.path, name);
    let body = match c.body {
        "TAR" => return send(target, &path, c.content_type, &host.context_tar),
        b if b.is_empty() || b.starts_with('{') || c.content_type != JSON => b.to_string(),
        b if c.kind == Kind::Volume => {
            format!(r#"{{"Name":"{{name}}","Driver":"local","DriverOpts":{{{b}}}}}"#)
        }
        b => format!(r#"{{"Image":"busybox","HostConfig":{{{b}}}}}"#),
    };
    send(
        target,
        &path,
        c.content_type,
        host.fill(&body, name).as_bytes(),
    )
}

fn docker(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(Cli::Current.path())
        .args(args)
        .env("DOCKER_HOST", format!("unix://{SYSTEM_DOCKERD}"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `docker <kind> inspect -f format` of what `name` stands for; None when it does not exist.
fn inspect(kind: Kind, name: &str, format: &str) -> Option<String> {
    match kind {
        Kind::Container => docker(&["container", "inspect", "-f", format, name]),
        Kind::Volume => docker(&["volume", "inspect", "-f", format, name]),
        Kind::Network => docker(&["network", "inspect", "-f", format, name]),
        Kind::Image => docker(&["image", "inspect", "-f", format, &format!("{name}:x")]),
    }
}

fn exists(kind: Kind, name: &str) -> bool {
    inspect(kind, name, "{{json .}}").is_some()
}

/// Removes whatever the case may have made under `name` (tags are only untagged).
fn cleanup(kind: Kind, name: &str) {
    let b = format!("{name}-b");
    match kind {
        Kind::Container => {
            let _ = docker(&["rm", "-f", "-v", name, &b]);
        }
        Kind::Volume => {
            let _ = docker(&["volume", "rm", "-f", name]);
        }
        Kind::Network => {
            let _ = docker(&["network", "rm", name]);
        }
        Kind::Image => {
            for suffix in [":x", "-other:y", "-b:x"] {
                let _ = docker(&["image", "rm", &format!("{name}{suffix}")]);
            }
        }
    }
}

/// Whether the setting took effect on `name`: the inspect shows it, and a volume mounts.
fn took_effect(host: &Host, c: &Case, name: &str) -> Result<String, String> {
    let seen = inspect(c.kind, name, c.proof.0).ok_or("nothing was made")?;
    let expect = host.fill(c.proof.1, name);
    if !seen.contains(&expect) {
        return Err(format!("inspect shows {seen:?}, not {expect:?}"));
    }
    if !c.mounted.is_empty() {
        let entry = format!("/x/{}", c.mounted);
        let run = format!("run --rm --network=none -v {name}:/x busybox ls -d {entry}");
        let ls = docker(&run.split(' ').collect::<Vec<_>>());
        if ls.as_deref() != Some(entry.as_str()) {
            return Err(format!("mounted, `ls -d {entry}` gives {ls:?}"));
        }
    }
    Ok(seen)
}

fn dockgate_refusal(status: u16, body: &str) -> bool {
    matches!(status, 400 | 403) && body.starts_with("{\"message\":\"dockgate: ")
}

/// The gateway's answer to one escape: problems found, if any.
fn judge_gateway(gw: &Target, host: &Host, c: &Case) -> Option<String> {
    let name = unique_name("esc");
    let (status, body) = run(gw, host, c, &name);
    let refused = dockgate_refusal(status, &body);
    let (first, second) = (exists(c.kind, &name), exists(c.kind, &format!("{name}-b")));
    let seen = inspect(c.kind, &name, c.proof.0).unwrap_or_default();
    let (problem, after) = match c.how {
        How::Create => (!refused || first, format!("made: {first}")),
        How::Start => (
            !refused || seen.contains(c.proof.1),
            format!("after: {seen:?}"),
        ),
        // Refused with nothing made, or made under the first name only.
        How::FirstName => {
            let ok = !second
                && if refused {
                    !first
                } else {
                    status / 100 == 2 && first
                };
            (!ok, format!("made: first {first}, second {second}"))
        }
    };
    let problem = problem.then(|| format!("gateway answered {status} {body:?} ({after})"));
    cleanup(c.kind, &name);
    problem
}

/// The same request on dockerd's own socket: it must work, or the case proves nothing.
fn judge_dockerd(direct: &Target, host: &Host, c: &Case) -> Option<String> {
    let name = unique_name("esc");
    let (status, body) = run(direct, host, c, &name);
    let problem = if status / 100 != 2 {
        Some(format!("dockerd itself answered {status} {body:?}"))
    } else if c.how == How::FirstName {
        let (first, second) = (exists(c.kind, &name), exists(c.kind, &format!("{name}-b")));
        (!first || second).then(|| format!("dockerd made first: {first}, second: {second}"))
    } else {
        took_effect(host, c, &name).err()
    };
    cleanup(c.kind, &name);
    problem.map(|p| format!("{p}: not an escape"))
}

#[test]
fn new_escape_corpus_is_refused_by_the_gateway_and_proven_on_dockerd() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let (tcp, direct) = (Target::Tcp(gw.port), Target::Unix(SYSTEM_DOCKERD.into()));
    let host = Host::probe();
    let mut failures = Vec::new();
    for c in ESCAPES {
        for problem in [
            judge_gateway(&tcp, &host, c),
            judge_dockerd(&direct, &host, c),
        ]
        .into_iter()
        .flatten()
        {
            failures.push(format!("{}: {problem}", c.what));
        }
    }
    assert!(ESCAPES.len() >= 50);
    assert!(
        failures.is_empty(),
        "{} of {} escapes failed:\n{}\nsidecar log (tail):\n{}",
        failures.len(),
        ESCAPES.len(),
        failures.join("\n"),
        tail(&gw.sidecar_log(), 40)
    );
}

#[test]
fn harmless_requests_still_pass_through_the_gateway() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let tcp = Target::Tcp(gw.port);
    let host = Host::probe();
    let mut failures = Vec::new();
    for c in FIDELITY {
        let name = unique_name("fid");
        let (status, body) = run(&tcp, &host, c, &name);
        let mut problem = if status / 100 != 2 {
            Some(format!("gateway answered {status} {}", tail(&body, 3)))
        } else {
            took_effect(&host, c, &name).err()
        };
        if problem.is_none() && c.path.contains("{name}-b") && !exists(c.kind, &format!("{name}-b"))
        {
            problem = Some("the second tag is missing".into());
        }
        cleanup(c.kind, &name);
        if let Some(p) = problem {
            failures.push(format!("{}: {p}", c.what));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nsidecar log (tail):\n{}",
        failures.join("\n"),
        tail(&gw.sidecar_log(), 40)
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
