#!/usr/bin/env bash
# docker-py 7.2.0's integration suite, run twice with the same deselection (deselect.txt):
# on dockerd's socket, then through the full gateway (nginx + module + sidecar, built-in
# configuration: anonymous "developer" on loopback, conservative policy). Every test that
# passes on the socket must pass through the gateway, or be listed in expected-refusals.txt
# and fail with a "dockgate:" message; anything else is UNEXPECTED and the exit status is 1.
#
#   tests/docker-py/run.sh [DOCKER_PY_SRC]     (or DOCKER_PY_SRC=... in the environment)
#
# DOCKER_PY_SRC is a docker-py 7.2.0 source tree (only its tests/ is used). Nothing of it is
# copied into this repository: the tests are copied to a temp dir and run against docker
# 7.2.0 from PyPI, in a venv (DPY_VENV, default ${TMPDIR:-/tmp}/dockgate-docker-py-venv,
# created on first use). Needs the built artifacts (make module sidecar), a dockerd on
# /var/run/docker.sock and the local busybox image (make images), tagged alpine:3.10 and
# alpine:latest for the run (the tags are removed afterwards if they did not exist).
# Other knobs: DOCKER_TEST_API_VERSION (1.41), DPY_TIMEOUT (60 s per test), DPY_OUT (a dir
# to keep the junit files, logs and summary in), DPY_DEDICATED_ENGINE=1 (also run the
# shared-engine tests), DPY_SIDES ("socket gateway"; one side alone skips the comparison),
# DPY_PYTEST_ARGS (more pytest arguments for both sides, e.g. "-k exec").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

die() { echo "docker-py: $*" >&2; exit 2; }

src=${1:-${DOCKER_PY_SRC:-}}
[ -n "$src" ] || die "give the path to a docker-py 7.2.0 source tree: $0 DIR (or DOCKER_PY_SRC=DIR);
  e.g. git clone --branch 7.2.0 https://github.com/docker/docker-py"
[ -d "$src" ] || die "DOCKER_PY_SRC: no such directory: $src"
src=$(cd "$src" && pwd)
[ -f "$src/tests/integration/conftest.py" ] && [ -f "$src/tests/helpers.py" ] ||
    die "$src has no tests/integration (a docker-py source tree is needed, not the PyPI sdist)"
grep -q "^TEST_IMG = 'alpine:3.10'" "$src/tests/integration/base.py" ||
    die "$src/tests/integration/base.py is not docker-py 7.2.0's (TEST_IMG = 'alpine:3.10')"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    [ "$(git -C "$src" rev-parse HEAD)" = "$(git -C "$src" rev-parse '7.2.0^{commit}' 2>/dev/null)" ] ||
        echo "docker-py: warning: $src is not checked out at tag 7.2.0" >&2
fi

sock=/var/run/docker.sock
api=${DOCKER_TEST_API_VERSION:-1.41}
timeout=${DPY_TIMEOUT:-60}
sides=${DPY_SIDES:-socket gateway}
nginx_bin=${DOCKGATE_NGINX:-/usr/sbin/nginx}
module=${DOCKGATE_MODULE:-$repo/build/debian/ngx_http_dockgate_module.so}
sidecar_bin=${DOCKGATE_SIDECAR:-$repo/target/release/dockgate}
venv=${DPY_VENV:-${TMPDIR:-/tmp}/dockgate-docker-py-venv}
for f in "$nginx_bin" "$module" "$sidecar_bin"; do
    [ -e "$f" ] || die "$f missing: run \`make module sidecar\`"
done
curl -sf --unix-socket "$sock" http://d/_ping >/dev/null || die "no dockerd on $sock (make dockerd)"
# Our own calls go to the socket, whatever DOCKER_HOST the caller has.
dk() { DOCKER_HOST=unix://$sock docker "$@"; }
dk image inspect busybox >/dev/null 2>&1 || die "no local busybox image (make images)"

# docker 7.2.0 and the test requirements docker-py pins (pytest 7.4.2, pytest-timeout 2.1.0;
# paramiko and websocket-client are imported by the tests).
py=$venv/bin/python
if ! "$py" -c 'import docker, pytest, pytest_timeout, paramiko, websocket, sys
sys.exit(docker.__version__ != "7.2.0")' 2>/dev/null; then
    echo "docker-py: installing docker==7.2.0 and pytest into $venv" >&2
    [ -x "$py" ] || python3 -m venv "$venv"
    "$py" -m pip install -q 'docker[ssh,websockets]==7.2.0' pytest==7.4.2 pytest-timeout==2.1.0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/dockgate-docker-py.XXXXXX")
gw=$work/gateway
added_tags=()
sidecar_pid="" nginx_pid="" since=""

# Removes what the suite left behind that can be told apart from anyone else's objects
# (dockerd may be shared): containers made since the run started from the test images, with
# the suite's names, or stopped and made from an image ID built on the test image (docker-py
# builds with rm=False and keeps the builder's containers); images with the suite's tags, and
# untagged ones made since the start on top of the test image; networks and volumes with the
# suite's names. Prints what it removed and counts what it left alone.
cleanup_suite() {
    [ -n "$since" ] || return 0
    "$py" - "$since" "$sock" <<'PY' || echo "docker-py: cleanup failed" >&2
import collections, datetime, re, sys
import docker
since, sock = float(sys.argv[1]) - 2, sys.argv[2]
c = docker.APIClient(base_url=f"unix://{sock}", version="1.41", timeout=120)

def created(ts):
    if isinstance(ts, (int, float)):
        return ts
    ts = re.sub(r"\.(\d{1,6})\d*", lambda m: "." + m.group(1).ljust(6, "0"), ts.replace("Z", "+00:00"))
    ts = re.sub(r" \+0000 UTC$", "+00:00", ts)
    return datetime.datetime.fromisoformat(ts).timestamp()

# What the suite names: its test images, random_name() (dockerpytest_...) and fixed names.
test_names = {"alpine:3.10", "alpine", "alpine:latest"}
test_ids = set()
for name in test_names:
    try:
        test_ids.add(c.inspect_image(name)["Id"])
    except docker.errors.NotFound:
        pass
always = re.compile(r"^(dockerpytest|dockersdk\.tests|test/import-from-|docker-py-test-)")
if_new = re.compile(r"^(a/b/c|buildargs|isolation|labels|build1|build2|some-tag|dup-txt-tag|"
                    r"shmsize|squash|nosquash)(:|$)")
ctr_names = re.compile(r"^/(dockerpytest|docker-py-test-upstream$|container_volume_test$|"
                       r"foobar$|foobar\.baz\.com$|test1$|hong_meiling$)")
vol_names = re.compile(r"^(dockerpytest_|perfectcherryblossom$|imperishablenight$|"
                       r"embodimentofscarletdevil$|shootthebullet$|somevolume$)")
removed, kept = collections.Counter(), []

parents = {}
def ancestry(image_id):
    """The image and its parents (the legacy builder, which docker-py uses, records them)."""
    out = []
    while image_id and image_id not in out:
        out.append(image_id)
        if image_id not in parents:
            try:
                parents[image_id] = c.inspect_image(image_id).get("Parent") or ""
            except docker.errors.APIError:
                parents[image_id] = ""
        image_id = parents[image_id]
    return out

def ours_tag(tag, new):
    return always.match(tag) or (new and if_new.match(tag))

suite_images = {img["Id"] for img in c.images()
                if any(ours_tag(t, img["Created"] >= since) for t in img.get("RepoTags") or [])}

# Containers made since the run started: of the test images or the suite's images or names;
# or stopped and made from an image ID built on the test image; or stopped legacy-builder
# steps ("/bin/sh -c ..." on an image ID): docker-py builds with rm=False and keeps them,
# the docker CLI removes them.
used_images = set()
for ctr in c.containers(all=True):
    try:
        info = c.inspect_container(ctr["Id"])
    except docker.errors.NotFound:
        continue
    if created(info["Created"]) < since:
        continue
    image = info["Config"].get("Image") or ""
    by_id = image == "" or image.startswith("sha256:")
    stopped = not info["State"]["Running"]
    builder_step = (info["Config"].get("Cmd") or [])[:2] == ["/bin/sh", "-c"]
    ours = (image in test_names or ctr_names.match(info["Name"]) or always.match(image)
            or info["Image"] in suite_images
            or (by_id and stopped and (builder_step or test_ids & set(ancestry(info["Image"])))))
    if ours:
        try:
            c.remove_container(ctr["Id"], force=True, v=True)
            removed["containers"] += 1
            if info["Image"]:
                used_images.add(info["Image"])
        except docker.errors.APIError as e:
            print(f"docker-py: cleanup: container {info['Name'][1:]}: {e.explanation}", file=sys.stderr)
    else:
        kept.append(f"container {info['Name'][1:]} ({image})")

# Images: the suite's tags; untagged images made since the start on top of the test image
# (commits, untagged builds) or used by the suite's containers removed above, unless a
# container still uses them.
for img in c.images():
    tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
    new = img["Created"] >= since
    for tag in tags:
        if ours_tag(tag, new):
            try:
                c.remove_image(tag)
                removed["image tags"] += 1
            except docker.errors.APIError as e:
                print(f"docker-py: cleanup: image {tag}: {e.explanation}", file=sys.stderr)
for img in c.images(filters={"dangling": True}):
    if img["Created"] < since:
        continue
    if img["Id"] in used_images or test_ids & set(ancestry(img["Id"])):
        try:
            c.remove_image(img["Id"])
            removed["untagged images"] += 1
        except docker.errors.APIError:
            kept.append(f"untagged image {img['Id'][7:19]} (in use)")
    else:
        kept.append(f"untagged image {img['Id'][7:19]}")

for net in c.networks():
    if not re.match(r"^(dockerpytest_|test 01$)", net["Name"]):
        if created(net["Created"]) >= since:
            kept.append(f"network {net['Name']}")
        continue
    try:
        # Endpoints of containers already gone can linger: disconnect them first.
        for ep in (c.inspect_network(net["Id"]).get("Containers") or {}).values():
            c.disconnect_container_from_network(ep["Name"], net["Id"], force=True)
        c.remove_network(net["Id"])
        removed["networks"] += 1
    except docker.errors.APIError as e:
        print(f"docker-py: cleanup: network {net['Name']}: {e.explanation}", file=sys.stderr)

for vol in c.volumes().get("Volumes") or []:
    if vol_names.match(vol["Name"]):
        try:
            c.remove_volume(vol["Name"], force=True)
            removed["volumes"] += 1
        except docker.errors.APIError as e:
            print(f"docker-py: cleanup: volume {vol['Name']}: {e.explanation}", file=sys.stderr)

if removed:
    print("docker-py: cleanup removed the suite's " + ", ".join(f"{n} {k}" for k, n in removed.items()),
          file=sys.stderr)
if kept:
    shown = ", ".join(kept[:8]) + (f", ... ({len(kept) - 8} more)" if len(kept) > 8 else "")
    print(f"docker-py: cleanup left {len(kept)} objects made meanwhile that are not "
          f"identifiably the suite's: {shown}", file=sys.stderr)
PY
}

stop_gateway() {
    for pid in $nginx_pid $sidecar_pid; do
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    nginx_pid="" sidecar_pid=""
}

finish() {
    local rc=$?
    trap - EXIT INT TERM
    stop_gateway
    cleanup_suite
    for t in "${added_tags[@]}"; do dk rmi "$t" >/dev/null 2>&1 || echo "docker-py: could not untag $t" >&2; done
    if [ -n "${DPY_OUT:-}" ]; then
        mkdir -p "$DPY_OUT"
        cp -f "$work"/*.xml "$work"/*.log "$work"/summary.txt "$DPY_OUT"/ 2>/dev/null || true
        mkdir -p "$DPY_OUT/gateway-logs" && cp -f "$gw"/logs/* "$DPY_OUT/gateway-logs/" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

# The gateway runs copies of the artifacts taken now: a rebuild during the run changes nothing.
mkdir -p "$work/bin"
cp -p "$sidecar_bin" "$work/bin/dockgate" && sidecar_bin=$work/bin/dockgate
cp -p "$module" "$work/bin/ngx_http_dockgate_module.so" && module=$work/bin/ngx_http_dockgate_module.so
cp "$repo/sidecar/decision/src/default.toml" "$work/bin/default.toml"
built="commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$repo" status --porcelain -- sidecar nginx-module nginx-conf 2>/dev/null || true)" ]; then
    built+=" (sources modified)"
fi
built+=", sidecar built $(date -u -r "$sidecar_bin" '+%F %T') UTC"

# The test images: busybox under the names the suite runs.
for t in alpine:3.10 alpine:latest; do
    if ! dk image inspect "$t" >/dev/null 2>&1; then
        dk tag busybox "$t"
        added_tags+=("$t")
    fi
done

# The suite, copied out of DOCKER_PY_SRC (so that a full tree's docker/ package cannot shadow
# the installed 7.2.0), with an ini file so that pytest looks for none above it.
mkdir -p "$work/src"
cp -r "$src/tests" "$work/src/tests"
printf '[pytest]\naddopts = --tb=short\njunit_suite_name = docker-py\njunit_family = xunit2\n' \
    >"$work/src/pytest.ini"

deselect_args=()
n_deselect=0
while IFS= read -r line; do
    id=${line%%#*}
    id=${id%"${id##*[![:space:]]}"}
    [ -n "$id" ] || continue
    reason=${line#*# }
    if [[ $reason == "shared engine:"* ]] && [ "${DPY_DEDICATED_ENGINE:-0}" = 1 ]; then
        continue
    fi
    deselect_args+=(--deselect "$id")
    n_deselect=$((n_deselect + 1))
done <"$here/deselect.txt"

start_gateway() {
    mkdir -p "$gw/logs" "$gw/tmp" && mkdir -p -m 0700 "$gw/private"
    sed -e "s#unix:/run/dockgate/sidecar.sock#unix:$gw/sidecar.sock#" \
        -e "s#^dockerd = \"/var/run/docker.sock\"#dockerd = \"$sock\"#" \
        -e "s#\"/run/dockgate/docker.sock\"#\"$gw/docker.sock\"#" \
        -e "s#unix:/run/dockgate/private/#unix:$gw/private/#" \
        "$work/bin/default.toml" >"$gw/sidecar.toml"
    "$sidecar_bin" check-config "$gw/sidecar.toml" >/dev/null
    local user_line=""
    [ "$(id -u)" = 0 ] && user_line="root root"
    local attempt
    for attempt in 1 2 3 4 5; do
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        # The one renderer: dockerd and the relayed unix socket come from sidecar.toml.
        "$sidecar_bin" nginx-conf --config "$gw/sidecar.toml" --includes "$repo/nginx-conf" \
            --module "$module" ${user_line:+--user "$user_line"} --workers 2 --prefix "$gw/tmp" \
            --error-log "$gw/logs/error.log notice" \
            --access-log "$gw/logs/dockgate-access.log dockgate" \
            --listen "loopback=127.0.0.1:$port" >"$gw/nginx.conf" || die "dockgate nginx-conf failed"
        if [ -z "$sidecar_pid" ]; then
            RUST_LOG=info "$sidecar_bin" serve --config "$gw/sidecar.toml" >"$gw/logs/sidecar.log" 2>&1 &
            sidecar_pid=$!
            for _ in $(seq 1 100); do [ -S "$gw/sidecar.sock" ] && break; sleep 0.1; done
            [ -S "$gw/sidecar.sock" ] || { cat "$gw/logs/sidecar.log" >&2; die "the sidecar did not start"; }
        fi
        rm -f "$gw/private/docker-api.sock"
        "$nginx_bin" -p "$gw" -c "$gw/nginx.conf" </dev/null >>"$gw/logs/nginx.out" 2>&1 &
        nginx_pid=$!
        for _ in $(seq 1 100); do
            [ "$(curl -s --max-time 2 "http://127.0.0.1:$port/_ping" 2>/dev/null)" = OK ] && return 0
            kill -0 "$nginx_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -TERM "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
        nginx_pid=""
    done
    tail -20 "$gw/logs/error.log" "$gw/logs/nginx.out" >&2 2>/dev/null || true
    die "nginx did not start"
}

run_side() {
    local side=$1 host=$2 rc=0 t0=$SECONDS
    # An empty client config of its own per side: no credentials, proxies or contexts of the
    # caller's ~/.docker, and the context tests' store is not shared between the two runs.
    mkdir -p "$work/docker-config-$side"
    echo '{}' >"$work/docker-config-$side/config.json"
    echo "docker-py: $side: running the suite with DOCKER_HOST=$host (log: $side.log)" >&2
    (
        cd "$work/src"
        env -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH -u DOCKER_CONTEXT \
            -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u all_proxy -u ALL_PROXY \
            NO_PROXY='*' no_proxy='*' \
            DOCKER_HOST="$host" DOCKER_TEST_API_VERSION="$api" \
            DOCKER_CONFIG="$work/docker-config-$side" PYTHONDONTWRITEBYTECODE=1 \
            "$py" -m pytest -p no:cacheprovider --rootdir "$work/src" -c "$work/src/pytest.ini" \
            --timeout "$timeout" --junitxml "$work/$side.xml" -rfE \
            "${deselect_args[@]}" ${DPY_PYTEST_ARGS:-} tests/integration
    ) >"$work/$side.log" 2>&1 || rc=$?
    if [ "$rc" -gt 1 ] || [ ! -s "$work/$side.xml" ]; then
        tail -30 "$work/$side.log" >&2
        die "$side: pytest failed to run (exit $rc)"
    fi
    echo "docker-py: $side: $(tail -1 "$work/$side.log" | tr -d '=') in $((SECONDS - t0)) s" >&2
}

since=$(date +%s)
for side in $sides; do
    case $side in
    socket) run_side socket "unix://$sock" ;;
    gateway)
        start_gateway
        run_side gateway "tcp://127.0.0.1:$port"
        stop_gateway
        ;;
    *) die "DPY_SIDES: unknown side $side" ;;
    esac
    cleanup_suite
done

[ -f "$work/socket.xml" ] && [ -f "$work/gateway.xml" ] || exit 0

# The comparison.
python3 - "$work/socket.xml" "$work/gateway.xml" "$here/expected-refusals.txt" "$work/src" \
    "$api" "$timeout" "$n_deselect" "$built" <<'PY' | tee "$work/summary.txt"
import datetime, re, os, sys, xml.etree.ElementTree as ET
sock_xml, gw_xml, expected_file, src, api, timeout, n_deselect, built = sys.argv[1:]

def node_id(classname, name):
    parts = classname.split(".")
    for i in range(len(parts), 0, -1):
        if os.path.isfile(os.path.join(src, *parts[:i]) + ".py"):
            return "::".join(["/".join(parts[:i]) + ".py", *parts[i:], name])
    return f"{classname}::{name}"

def results(path):
    out = {}
    for case in ET.parse(path).iter("testcase"):
        tid = node_id(case.get("classname", ""), case.get("name", ""))
        outcome, messages, text = "passed", [], ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                kind = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                if outcome == "passed" or kind == "failed":
                    outcome = kind
                messages.append(child.get("message") or "")
                text += (child.text or "") + "\n"
        out[tid] = (outcome, messages, text)
    return out

def totals(res):
    n = {k: 0 for k in ("passed", "failed", "error", "skipped")}
    for outcome, _, _ in res.values():
        n[outcome] += 1
    return f"{n['passed']} passed, {n['failed']} failed, {n['error']} errors, {n['skipped']} skipped ({len(res)} run)"

expected = {}
for line in open(expected_file):
    tid, _, reason = line.partition("#")
    if tid.strip():
        expected[tid.strip()] = reason.strip()

sock, gw = results(sock_xml), results(gw_xml)
print(f"docker-py 7.2.0 integration suite, DOCKER_TEST_API_VERSION={api}, timeout {timeout} s, "
      f"{n_deselect} deselect entries (tests/docker-py/deselect.txt)")
print(f"  built  : {built}; {datetime.datetime.now(datetime.timezone.utc):%F %H:%M} UTC")
print(f"  socket : {totals(sock)}")
print(f"  gateway: {totals(gw)}")

def first_line(messages):
    return messages[0].splitlines()[0] if messages and messages[0] else ""

def dockgate_lines(text):
    lines = [l.strip() for l in text.splitlines() if "dockgate:" in l]
    return list(dict.fromkeys(lines))

refused, unexpected = [], []
for tid, (outcome, msg, text) in sorted(sock.items()):
    if outcome != "passed":
        continue
    g_outcome, g_msgs, g_text = gw.get(tid, ("not run", [], ""))
    if g_outcome == "passed":
        continue
    # A refusal by design: the test's first failure is the gateway saying no (a later error,
    # e.g. in teardown, does not excuse an earlier failure of another kind).
    # A documented difference: "difference (MARKER): why" accepts a first failure showing MARKER.
    marker = re.match(r"difference \(([^)]*)\)", expected.get(tid, ""))
    shows = g_msgs and (("dockgate:" in g_msgs[0]) or (marker and marker.group(1) in g_msgs[0]))
    # An xfail test shows no message through the gateway: "xfail" in its reason accepts that.
    xfailed = g_outcome == "skipped" and "xfail" in expected.get(tid, "")
    if tid in expected and (shows or xfailed):
        refused.append((tid, expected[tid], g_msgs[0].splitlines()[0]))
        continue
    why = ""
    if tid in expected:
        why = "listed in expected-refusals.txt, but its first failure is not a dockgate: refusal"
    elif g_outcome == "skipped":
        why = "xfail/skip through the gateway only: rerun with DPY_PYTEST_ARGS=--runxfail for the error"
    unexpected.append((tid, g_outcome, "\n".join(g_msgs), dockgate_lines(g_text), why))

print(f"\nRefused through the gateway by design ({len(refused)}), passed on the socket:")
for tid, reason, said in refused:
    print(f"  {tid}  # {reason}\n      {said[:300]}")
print(f"\nUNEXPECTED: passed on the socket, not through the gateway ({len(unexpected)}):")
for tid, outcome, msg, said, why in unexpected:
    print(f"  {tid}  [{outcome}]{'  (' + why + ')' if why else ''}")
    for line in msg.splitlines()[:4]:
        print(f"      {line[:400]}")
    for line in said[:3]:
        if line[line.index("dockgate:"):] not in msg:
            print(f"      {line[:400]}")

stale = [t for t in expected if t in sock and (gw.get(t, ("",))[0] == "passed" or sock[t][0] != "passed")]
not_run = [t for t in expected if t not in sock]
if not_run:
    print(f"\n{len(not_run)} expected-refusals.txt entries did not run (deselected or filtered out)")
if stale:
    print(f"\nexpected-refusals.txt entries not refused this run ({len(stale)}): passed through "
          "the gateway, failed or did not run on the socket:")
    for tid in stale:
        print(f"  {tid}  socket={sock.get(tid, ('not run',))[0]} gateway={gw.get(tid, ('not run',))[0]}")

failed_sock = sorted(t for t, r in sock.items() if r[0] in ("failed", "error"))
print(f"\nNot passed on the socket ({len(failed_sock)}; not compared):")
for tid in failed_sock:
    print(f"  {tid}  [{sock[tid][0]}] {first_line(sock[tid][1])[:200]}"
          + ("   (passed through the gateway)" if gw.get(tid, ("",))[0] == "passed" else ""))
sys.exit(1 if unexpected else 0)
PY
