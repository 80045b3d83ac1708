//! The field tables, one per Go struct dockerd decodes a body into. Names are the JSON names
//! (Go's field name or its `json` tag); order follows moby's source.

use super::Field::{self, List, Map, Rule, Safe, Struct as S, Zero};
use super::Struct;

/// Every table reachable from a body, for the tests and [`super::rule_fields`].
pub static ALL: &[&Struct] = &[
    &CREATE,
    &UPDATE,
    &EXEC_CREATE,
    &EXEC_START,
    &CONFIG,
    &VOLUME_CREATE,
    &NETWORK_CREATE,
    &NETWORK_CONNECT,
    &NETWORK_DISCONNECT,
    &AUTH_CONFIG,
];

/// `container.Config` members, shared by the create body and commit overrides.
macro_rules! config_fields {
    () => {
        [
            ("Hostname", Safe),
            ("Domainname", Safe),
            ("User", Safe),
            ("AttachStdin", Safe),
            ("AttachStdout", Safe),
            ("AttachStderr", Safe),
            ("ExposedPorts", Safe),
            ("Tty", Safe),
            ("OpenStdin", Safe),
            ("StdinOnce", Safe),
            ("Env", Safe),
            ("Cmd", Safe),
            ("Healthcheck", Safe),
            ("ArgsEscaped", Safe),
            ("Image", Safe),
            ("Volumes", Safe),
            ("WorkingDir", Safe),
            ("Entrypoint", Safe),
            ("NetworkDisabled", Safe),
            ("MacAddress", Safe),
            ("OnBuild", Rule("remote_fetch")),
            ("Labels", Rule("labels")),
            ("StopSignal", Safe),
            ("StopTimeout", Safe),
            ("Shell", Safe),
        ]
    };
}

/// `container.Config`: the overrides of `POST /commit`.
pub static CONFIG: Struct = Struct {
    name: "Config",
    fields: &config_fields!(),
};

const CONFIG_FIELDS: [(&str, Field); 25] = config_fields!();

/// `ContainerConfigWrapper`: `container.Config` inline, `HostConfig`, `NetworkingConfig`. Any
/// other member at the top level is read by dockerd as a deprecated host field (when
/// `HostConfig` is absent or null), so it is refused by name (see `model::unknown`).
pub static CREATE: Struct = Struct {
    name: "ContainerConfigWrapper",
    fields: &{
        let mut f = [("", Safe); 27];
        let mut i = 0;
        while i < CONFIG_FIELDS.len() {
            f[i] = CONFIG_FIELDS[i];
            i += 1;
        }
        f[25] = ("HostConfig", S(&HOST_CONFIG));
        f[26] = ("NetworkingConfig", S(&NETWORKING_CONFIG));
        f
    },
};

/// `container.Resources`, inline in `HostConfig` and the body of an update.
macro_rules! resources_fields {
    () => {
        [
            ("CpuShares", Safe),
            ("Memory", Safe),
            ("NanoCpus", Safe),
            ("CgroupParent", Rule("cgroup_parent")),
            ("BlkioWeight", Safe),
            (
                "BlkioWeightDevice",
                Zero("per-device I/O weights name host devices"),
            ),
            (
                "BlkioDeviceReadBps",
                Zero("per-device I/O limits name host devices"),
            ),
            (
                "BlkioDeviceWriteBps",
                Zero("per-device I/O limits name host devices"),
            ),
            (
                "BlkioDeviceReadIOps",
                Zero("per-device I/O limits name host devices"),
            ),
            (
                "BlkioDeviceWriteIOps",
                Zero("per-device I/O limits name host devices"),
            ),
            ("CpuPeriod", Safe),
            ("CpuQuota", Safe),
            (
                "CpuRealtimePeriod",
                Zero("real-time scheduling can starve the host"),
            ),
            (
                "CpuRealtimeRuntime",
                Zero("real-time scheduling can starve the host"),
            ),
            ("CpusetCpus", Safe),
            ("CpusetMems", Safe),
            ("Devices", Rule("devices")),
            ("DeviceCgroupRules", Rule("devices")),
            ("DeviceRequests", Rule("devices")),
            ("KernelMemory", Safe),
            ("KernelMemoryTCP", Safe),
            ("MemoryReservation", Safe),
            ("MemorySwap", Safe),
            ("MemorySwappiness", Safe),
            (
                "OomKillDisable",
                Zero("a container the OOM killer spares makes the host's processes die instead"),
            ),
            ("PidsLimit", Safe),
            ("Ulimits", Rule("ulimits")),
            ("CpuCount", Safe),
            ("CpuPercent", Safe),
            ("IOMaximumIOps", Safe),
            ("IOMaximumBandwidth", Safe),
        ]
    };
}

/// `container.Resources` alone.
pub static RESOURCES: Struct = Struct {
    name: "Resources",
    fields: &resources_fields!(),
};

const RESOURCES_FIELDS: [(&str, Field); 31] = resources_fields!();

/// `container.HostConfig` with `Resources` inline.
pub static HOST_CONFIG: Struct = Struct {
    name: "HostConfig",
    fields: &{
        let own: [(&str, Field); 41] = [
            ("Binds", Rule("binds")),
            ("ContainerIDFile", Safe),
            ("LogConfig", Rule("log_driver")),
            ("NetworkMode", Rule("namespaces")),
            ("PortBindings", Safe),
            ("RestartPolicy", Safe),
            ("AutoRemove", Safe),
            ("VolumeDriver", Rule("volume_options")),
            ("VolumesFrom", Rule("references")),
            ("ConsoleSize", Safe),
            (
                "Annotations",
                Zero("annotations are read by the OCI runtime"),
            ),
            ("CapAdd", Rule("capabilities")),
            ("CapDrop", Safe),
            ("CgroupnsMode", Rule("namespaces")),
            ("Dns", Safe),
            ("DnsOptions", Safe),
            ("DnsSearch", Safe),
            ("ExtraHosts", Safe),
            ("GroupAdd", Safe),
            ("IpcMode", Rule("namespaces")),
            ("Cgroup", Rule("namespaces")),
            ("Links", Rule("references")),
            ("OomScoreAdj", Rule("oom_score")),
            ("PidMode", Rule("namespaces")),
            ("Privileged", Rule("privileged")),
            ("PublishAllPorts", Safe),
            ("ReadonlyRootfs", Safe),
            ("SecurityOpt", Rule("security_opts")),
            ("StorageOpt", Zero("storage driver options")),
            ("Tmpfs", Safe),
            ("UTSMode", Rule("namespaces")),
            ("UsernsMode", Rule("namespaces")),
            ("ShmSize", Safe),
            ("Sysctls", Rule("sysctls")),
            ("Runtime", Rule("runtime")),
            ("Isolation", Safe),
            ("Mounts", List(&MOUNT)),
            ("MaskedPaths", Rule("security_opts")),
            ("ReadonlyPaths", Rule("security_opts")),
            ("Init", Safe),
            // Only API 1.40 to 1.42 read it; it replaces the capability set.
            ("Capabilities", Rule("capabilities")),
        ];
        let mut f = [("", Safe); 41 + 31];
        let mut i = 0;
        while i < own.len() {
            f[i] = own[i];
            i += 1;
        }
        let mut j = 0;
        while j < RESOURCES_FIELDS.len() {
            f[i + j] = RESOURCES_FIELDS[j];
            j += 1;
        }
        f
    },
};

/// `mount.Mount`: the type and source are the `binds` rule's, volume drivers
/// `volume_options`'.
pub static MOUNT: Struct = Struct {
    name: "Mount",
    fields: &[
        ("Type", Rule("binds")),
        ("Source", Rule("binds")),
        ("Target", Safe),
        ("ReadOnly", Safe),
        ("Consistency", Safe),
        ("BindOptions", S(&BIND_OPTIONS)),
        ("VolumeOptions", S(&VOLUME_OPTIONS)),
        ("ImageOptions", Safe),
        ("TmpfsOptions", Safe),
        ("ClusterOptions", Zero("cluster volumes are swarm's")),
    ],
};

pub static BIND_OPTIONS: Struct = Struct {
    name: "BindOptions",
    fields: &[
        ("Propagation", Rule("binds")),
        ("NonRecursive", Safe),
        (
            "CreateMountpoint",
            Zero("it creates the source path on the host"),
        ),
        ("ReadOnlyNonRecursive", Safe),
        ("ReadOnlyForceRecursive", Safe),
    ],
};

pub static VOLUME_OPTIONS: Struct = Struct {
    name: "VolumeOptions",
    fields: &[
        ("NoCopy", Safe),
        ("Labels", Rule("labels")),
        ("Subpath", Safe),
        ("DriverConfig", Rule("volume_options")),
    ],
};

/// `network.NetworkingConfig`.
pub static NETWORKING_CONFIG: Struct = Struct {
    name: "NetworkingConfig",
    fields: &[("EndpointsConfig", Map(&ENDPOINT_SETTINGS))],
};

/// `network.EndpointSettings` (create and connect).
pub static ENDPOINT_SETTINGS: Struct = Struct {
    name: "EndpointSettings",
    fields: &[
        ("IPAMConfig", Safe),
        ("Links", Rule("references")),
        ("Aliases", Safe),
        // Read by the network's driver for this endpoint only; the network itself (its
        // driver) must be within reach.
        ("DriverOpts", Safe),
        ("GwPriority", Safe),
        ("NetworkID", Rule("references")),
        ("EndpointID", Safe),
        ("Gateway", Safe),
        ("IPAddress", Safe),
        ("IPPrefixLen", Safe),
        ("IPv6Gateway", Safe),
        ("GlobalIPv6Address", Safe),
        ("GlobalIPv6PrefixLen", Safe),
        ("MacAddress", Safe),
        ("DNSNames", Safe),
    ],
};

/// `container.UpdateConfig`: `Resources` inline and the restart policy.
pub static UPDATE: Struct = Struct {
    name: "UpdateConfig",
    fields: &{
        let mut f = [("", Safe); 32];
        let mut i = 0;
        while i < RESOURCES_FIELDS.len() {
            f[i] = RESOURCES_FIELDS[i];
            i += 1;
        }
        f[31] = ("RestartPolicy", Safe);
        f
    },
};

/// `container.ExecOptions`.
pub static EXEC_CREATE: Struct = Struct {
    name: "ExecConfig",
    fields: &[
        ("User", Safe),
        ("Privileged", Rule("privileged")),
        ("Tty", Safe),
        ("ConsoleSize", Safe),
        ("AttachStdin", Safe),
        ("AttachStderr", Safe),
        ("AttachStdout", Safe),
        ("Detach", Safe),
        ("DetachKeys", Safe),
        ("Env", Safe),
        ("WorkingDir", Safe),
        ("Cmd", Safe),
        // docker-py still sends it; dockerd takes the container from the path.
        ("Container", Safe),
    ],
};

/// `container.ExecStartOptions`.
pub static EXEC_START: Struct = Struct {
    name: "ExecStartCheck",
    fields: &[("Detach", Safe), ("Tty", Safe), ("ConsoleSize", Safe)],
};

/// `volume.CreateOptions`.
pub static VOLUME_CREATE: Struct = Struct {
    name: "VolumeCreateBody",
    fields: &[
        ("Name", Safe),
        ("Driver", Rule("volume_options")),
        ("DriverOpts", Rule("volume_options")),
        ("Labels", Rule("labels")),
        ("ClusterVolumeSpec", Zero("cluster volumes are swarm's")),
    ],
};

/// `network.CreateRequest`.
pub static NETWORK_CREATE: Struct = Struct {
    name: "NetworkCreateRequest",
    fields: &[
        ("Name", Safe),
        ("CheckDuplicate", Safe),
        ("Driver", Rule("network_drivers")),
        ("Scope", Rule("network_drivers")),
        ("EnableIPv4", Safe),
        ("EnableIPv6", Safe),
        ("IPAM", S(&IPAM)),
        ("Internal", Safe),
        ("Attachable", Safe),
        ("Ingress", Zero("the ingress network is swarm's")),
        ("ConfigOnly", Zero("configuration-only networks")),
        (
            "ConfigFrom",
            Zero("it takes the configuration of another network"),
        ),
        ("Options", Rule("network_drivers")),
        ("Labels", Rule("labels")),
    ],
};

pub static IPAM: Struct = Struct {
    name: "IPAM",
    fields: &[
        ("Driver", Rule("network_drivers")),
        ("Options", Zero("IPAM driver options")),
        ("Config", Safe),
    ],
};

/// `network.ConnectOptions`.
pub static NETWORK_CONNECT: Struct = Struct {
    name: "NetworkConnect",
    fields: &[
        ("Container", Safe),
        ("EndpointConfig", S(&ENDPOINT_SETTINGS)),
    ],
};

/// `network.DisconnectOptions`.
pub static NETWORK_DISCONNECT: Struct = Struct {
    name: "NetworkDisconnect",
    fields: &[("Container", Safe), ("Force", Safe)],
};

/// `registry.AuthConfig` (`docker login`, and a push's credentials).
pub static AUTH_CONFIG: Struct = Struct {
    name: "AuthConfig",
    fields: &[
        ("username", Safe),
        ("password", Safe),
        ("auth", Safe),
        ("email", Safe),
        ("serveraddress", Safe),
        ("identitytoken", Safe),
        ("registrytoken", Safe),
    ],
};
