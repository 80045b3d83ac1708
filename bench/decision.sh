#!/usr/bin/env bash
# dockgate decision benchmark: what the sidecar takes to decide on a mediated body, from an
# ordinary `docker create` body to the worst bodies a client can send at the body limit
# (`max_body_bytes`, 1 MiB in the built-in configuration):
#
#   ordinary   the ~1 KB create body the docker CLI sends for `docker create busybox true`
#   keys       distinct short keys at the top level of a create body, as many as fit under
#              the limit (refused by the API model, after the whole body is parsed)
#   labels     a Labels map with as many entries as fit under the limit (allowed: dockerd
#              gets it)
#   nested     Cmd made of as many arrays nested to the sidecar's depth limit (32 levels
#              with the body object) as fit (the policy passes it; dockerd refuses it)
#   over       a body of limit + 1 bytes (413)
#
# Every create names an image that does not exist (dg-no-such-image:never), so a body that
# passes the policy is answered by dockerd with a cheap 404 and nothing is created or pulled
# (the Engine API's create never pulls; the docker CLI does that after the 404).
#
# Each body is sent BENCH_DECISION_RUNS (20) times through the full gateway (Debian's nginx +
# module + sidecar, the built-in configuration: anonymous developer on loopback, conservative
# policy) and, where dockerd gets it (ordinary, labels, nested), to dockerd's socket too; the
# kinds are interleaved run by run. Per request:
#   - the client's wall time (request sent to answer read, one connection per request);
#   - the sidecar's own decision time (its dockgate_decision_seconds_sum before and after:
#     the auth_request decision plus reading, parsing and checking the body);
#   - how long the sidecar's event loop was held up: the longest answer, during the request,
#     of a probe asking the sidecar's auth endpoint over and over (every auth_request, so
#     every other client, waits for that loop).
# Prints a Markdown table on stdout, progress on stderr. Loopback and unix sockets only.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
repo=$PWD

runs=${BENCH_DECISION_RUNS:-20}
dockerd_sock=/var/run/docker.sock
nginx_bin=/usr/sbin/nginx
module=$repo/build/debian/ngx_http_dockgate_module.so
sidecar=$repo/target/release/dockgate

# shellcheck source=bench/lib.sh
. bench/lib.sh
for f in "$module" "$sidecar"; do
    [ -e "$f" ] || die "$f missing: run make module sidecar"
done
command -v python3 >/dev/null || die "python3 missing"

tmp=$(mktemp -d /tmp/dockgate-bench-decision.XXXXXX)
pids=()
cleanup() {
    stop_pids
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# Private copies: a rebuild during the run must not pull files from under nginx.
cp "$module" "$tmp/module.so"
cp "$sidecar" "$tmp/dockgate"

# --- the sidecar (built-in configuration, this run's sockets) and the full gateway -------
sed -e "s#unix:/run/dockgate/sidecar.sock#unix:$tmp/sidecar.sock#" \
    -e "s#\"/run/dockgate/docker.sock\"#\"$tmp/docker.sock\"#" \
    -e "s#unix:/run/dockgate/private/#unix:$tmp/private/#" \
    sidecar/decision/src/default.toml >"$tmp/sidecar.toml"
limit=$(awk -F' *= *' '$1 == "max_body_bytes" { print $2 }' "$tmp/sidecar.toml")
[ -n "$limit" ] || die "no max_body_bytes in the built-in configuration"
RUST_LOG=warn "$tmp/dockgate" serve --config "$tmp/sidecar.toml" 2>"$tmp/sidecar.log" &
pids+=($!)
port=$(free_port)
render_gateway "$tmp/dockgate" "$tmp/module.so" "$tmp" --config "$tmp/sidecar.toml" \
    --access-log "$tmp/access.log dockgate" --listen "loopback=127.0.0.1:$port" >/dev/null
for _ in $(seq 1 50); do [ -S "$tmp/sidecar.sock" ] && break; sleep 0.1; done
[ -S "$tmp/sidecar.sock" ] || die "the sidecar did not start: $(cat "$tmp/sidecar.log")"
"$nginx_bin" -p "$tmp" -c "$tmp/nginx.conf" -t -q || die "nginx config test failed"
"$nginx_bin" -p "$tmp" -c "$tmp/nginx.conf" </dev/null >"$tmp/nginx.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/_ping" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$port/_ping" >/dev/null || die "the gateway does not answer"
log "sidecar and gateway (127.0.0.1:$port) up; body limit $limit bytes, $runs runs per body"

# --- the bodies and the measurement --------------------------------------------------------
cat >"$tmp/decision.py" <<'PY'
import itertools, json, socket, statistics, string, sys, threading, time

port, sidecar_sock, dockerd_sock, limit, runs = (
    int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
IMAGE = "dg-no-such-image:never"

def names(alphabet):
    for n in itertools.count(1):
        for t in itertools.product(alphabet, repeat=n):
            yield "".join(t)

def fill(prefix, suffix, items):
    """prefix + items joined by commas + suffix, as many items as fit under the limit."""
    parts, size = [], len(prefix) + len(suffix)
    for item in items:
        extra = len(item) + (1 if parts else 0)
        if size + extra >= limit:
            break
        parts.append(item)
        size += extra
    return (prefix + ",".join(parts) + suffix).encode(), len(parts)

ordinary = json.dumps({
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
    "AttachStdout": True, "AttachStderr": True, "Tty": False, "OpenStdin": False,
    "StdinOnce": False, "Env": None, "Cmd": ["true"], "Image": IMAGE, "Volumes": {},
    "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": {},
    "HostConfig": {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
        "NetworkMode": "none", "PortBindings": {}, "RestartPolicy": {"Name": "no",
        "MaximumRetryCount": 0}, "AutoRemove": True, "VolumeDriver": "", "VolumesFrom": None,
        "ConsoleSize": [50, 120], "CapAdd": None, "CapDrop": None, "CgroupnsMode": "",
        "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None,
        "IpcMode": "", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
        "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False,
        "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "Isolation": "",
        "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
        "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
        "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None,
        "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None,
        "OomKillDisable": None, "PidsLimit": None, "Ulimits": [], "CpuCount": 0,
        "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": None,
        "ReadonlyPaths": None},
    "NetworkingConfig": {"EndpointsConfig": {}},
}, separators=(",", ":")).encode()
# Struct fields match case-insensitively: lower-case keys are all distinct fields.
# None of them names a real field (cmd, env, tty would be checked as such).
key_alphabet = string.ascii_lowercase + string.digits + "_-.$@!#%&*+/:;<=>?^`|~ "
keys, n_keys = fill('{"Image":"%s",' % IMAGE, "}",
                    ('"%s":0' % k for k in names(key_alphabet) if k not in ("cmd", "env", "tty")))
# Map keys match exactly: upper and lower case are distinct keys.
label_alphabet = string.ascii_letters + string.digits + "_-.$@!#%&*+/:;<=>?^`|~ "
labels, n_labels = fill('{"Image":"%s","Cmd":["true"],"Labels":{' % IMAGE, "}}",
                        ('"%s":""' % k for k in names(label_alphabet)))
# serde_json's recursion limit: 127 levels parse, the 128th is refused. The body object is
# one level and Cmd's array another.
deep = "[" * 30 + "]" * 30
nested, n_nested = fill('{"Image":"%s","Cmd":[' % IMAGE, "]}", itertools.repeat(deep))
over = labels + b" " * (limit + 1 - len(labels))

KINDS = [
    ("ordinary", "ordinary create body (%d bytes)" % len(ordinary), ordinary, True),
    ("keys", "%d distinct top-level keys (%d bytes)" % (n_keys, len(keys)), keys, False),
    ("labels", "Labels with %d entries (%d bytes)" % (n_labels, len(labels)), labels, True),
    ("nested", "Cmd: %d arrays nested 30 deep (%d bytes)" % (n_nested, len(nested)),
     nested, True),
    ("over", "limit + 1 bytes (%d bytes)" % len(over), over, False),
]

def connect(target):
    if isinstance(target, int):
        s = socket.create_connection(("127.0.0.1", target))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        s = socket.socket(socket.AF_UNIX)
        s.connect(target)
    s.settimeout(120)
    return s

def request(target, method, path, body=b""):
    """One request on its own connection: (status, answer body, seconds)."""
    s = connect(target)
    head = ("%s %s HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (method, path, len(body))).encode()
    t = time.perf_counter()
    try:
        s.sendall(head + body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # answered (413) before the whole body was sent: the answer is still there
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    took = time.perf_counter() - t
    s.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data.split(b"\r\n\r\n", 1)[-1], took

def sidecar_sum():
    _, text, _ = request(sidecar_sock, "GET", "/_dockgate/metrics")
    for line in text.decode().splitlines():
        if line.startswith("dockgate_decision_seconds_sum "):
            return float(line.split()[1])
    raise SystemExit("no dockgate_decision_seconds_sum in the sidecar's metrics")

# While the bodies are sent, a probe asks the sidecar for an auth decision (GET /_ping) over
# and over on one keep-alive connection: the longest answer during a request is how long the
# sidecar's event loop, which answers every auth_request, was held up by that body.
probes, probing = [], threading.Event()
def probe():
    s = connect(sidecar_sock)
    f = s.makefile("rb")
    req = (b"GET /_dockgate/auth HTTP/1.1\r\nHost: sidecar\r\nX-Original-Method: GET\r\n"
           b"X-Original-URI: /_ping\r\nX-Dockgate-Listener: loopback\r\n\r\n")
    while probing.is_set():
        t = time.perf_counter()
        s.sendall(req)
        if not f.readline().startswith(b"HTTP/1.1 204"):
            raise SystemExit("the sidecar's auth probe was not allowed")
        while f.readline() not in (b"\r\n", b""):
            pass
        probes.append((t, time.perf_counter()))
        time.sleep(0.001)

def held_up(start, end):
    return max((b - a for a, b in probes if b >= start and a <= end), default=0.0)

probing.set()
prober = threading.Thread(target=probe, daemon=True)
prober.start()
time.sleep(0.2)
path = "/v1.41/containers/create"
gateway = {k: [] for k, *_ in KINDS}
direct = {k: [] for k, *_ in KINDS}
for run in range(runs):
    for kind, _, body, to_dockerd in KINDS:
        before = sidecar_sum()
        start = time.perf_counter()
        status, answer, took = request(port, "POST", path, body)
        end = time.perf_counter()
        spent = sidecar_sum() - before
        time.sleep(0.05)  # the probe answering when the request ended comes back
        gateway[kind].append((status, took, spent, answer, held_up(start, end)))
        if to_dockerd:
            status, answer, took = request(dockerd_sock, "POST", path, body)
            direct[kind].append((status, took, answer))
    sys.stderr.write("bench: run %d/%d done\n" % (run + 1, runs))
probing.clear()
prober.join()

def ms(xs):
    return "%.1f / %.1f ms" % (statistics.median(xs) * 1000, max(xs) * 1000)

def statuses(rows):
    seen = sorted({r[0] for r in rows})
    return "/".join(str(s) for s in seen)

print("| body | gateway: status | gateway: client time, median / max | "
      "sidecar's decision time, median / max | auth answers held up, median / max | "
      "dockerd directly: status | dockerd directly: client time, median / max |")
print("|---|---|---|---|---|---|---|")
for kind, label, _, to_dockerd in KINDS:
    g = gateway[kind]
    d = direct[kind]
    row = [label, statuses(g), ms([r[1] for r in g]), ms([r[2] for r in g]),
           ms([r[4] for r in g])]
    row += [statuses(d), ms([r[1] for r in d])] if to_dockerd else ["-", "-"]
    print("| " + " | ".join(row) + " |")
print()
for kind, *_ in KINDS:
    answer = gateway[kind][-1][3].decode(errors="replace").strip()
    print("- %s, the gateway's answer: `%s`" % (kind, answer[:160]))
PY
python3 "$tmp/decision.py" "$port" "$tmp/sidecar.sock" "$dockerd_sock" "$limit" "$runs" \
    >"$tmp/table.md"
if grep -E '\[(alert|crit|emerg)\]' "$tmp/error.log" >&2; then
    log "nginx reported errors (above)"
fi

cat <<REPORT
- machine: $(nproc) CPUs, Linux $(uname -r); load average at end: $(cut -d' ' -f1-3 /proc/loadavg)
- nginx $("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///') (Debian) + module, worker_processes 2; sidecar $(git describe --always --dirty) (built-in configuration: anonymous developer on loopback, conservative policy, max_body_bytes $limit)
- dockerd $(docker version --format '{{.Server.Version}}' 2>/dev/null); POST /v1.41/containers/create, one connection per request, $runs runs per body, interleaved

$(cat "$tmp/table.md")
REPORT
