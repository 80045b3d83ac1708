# Shared by the bench scripts (sourced): messages, free ports, stopping what a run started.
# A script sets `pids=()` and appends the pid of every process it starts.

log() { printf 'bench: %s\n' "$*" >&2; }

die() {
    log "$*"
    exit 1
}

# A TCP port free on 127.0.0.1 when asked.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# TERM to every process in `pids`, then wait for each.
stop_pids() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}

# nginx.conf for a bench gateway, from the one renderer (`dockgate nginx-conf`):
#   render_gateway DOCKGATE MODULE DIR [ARGS...]
# the module and the includes of nginx-conf/, 2 workers as root, pid, temporary files and
# the error log in DIR; ARGS add the configuration (--config or --transport-only), the
# listeners and the access log. Prints the file's path.
render_gateway() {
    local dockgate=$1 module=$2 dir=$3
    shift 3
    mkdir -p "$dir"
    "$dockgate" nginx-conf --includes "$repo/nginx-conf" --module "$module" --user "root root" \
        --workers 2 --prefix "$dir" --error-log "$dir/error.log notice" "$@" >"$dir/nginx.conf" \
        || die "dockgate nginx-conf $* failed"
    echo "$dir/nginx.conf"
}
