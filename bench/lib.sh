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
