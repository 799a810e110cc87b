#!/usr/bin/env bash
# A private Docker engine for the tests.
#
#   scripts/docker.sh install     install Debian's docker.io, busybox-static and bash-static
#                                 (the engine, and the static binaries the test images are
#                                 built from) if they are missing
#   scripts/docker.sh start DIR   start dockerd with its socket, state and log in DIR (keep DIR
#                                 short: a unix socket path has a length limit), wait until it
#                                 answers (60 s at most); its address is unix://DIR/docker.sock
#   scripts/docker.sh stop DIR    stop that dockerd by its PID, unmount what it left mounted
#                                 under DIR and remove DIR
#
# The engine runs with --iptables=false --bridge=none: containers get no network beyond their
# own loopback, and nothing of the host's network configuration is touched. Needs root.
set -euo pipefail

die() { echo "error: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    [ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 \
        && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
    [ -x /bin/bash-static ] || missing+=(bash-static)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]} (the Docker executor's tests need an engine and static binaries for their images)" >&2
        as_root apt-get update -q
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}"
    fi
    command -v dockerd >/dev/null 2>&1 || die "dockerd is still missing after installing docker.io"
    command -v docker >/dev/null 2>&1 || die "the docker client is missing after installing docker.io"
}

log_tail() {
    tail -n 20 "$1/dockerd.log" 2>/dev/null || true
}

start() {
    local dir=$1
    [ -n "$dir" ] || die "start needs a directory"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/docker.pid" ] && kill -0 "$(cat "$dir/docker.pid")" 2>/dev/null; then
        die "a dockerd already runs for $dir (pid $(cat "$dir/docker.pid"))"
    fi
    # dockerd needs containerd, runc and friends on PATH (Debian puts some in /usr/sbin).
    export PATH="$PATH:/usr/sbin:/sbin"
    as_root dockerd \
        --iptables=false --bridge=none \
        --host "unix://$dir/docker.sock" \
        --data-root "$dir/data" \
        --exec-root "$dir/exec" \
        --pidfile "$dir/docker.pid" \
        >"$dir/dockerd.log" 2>&1 &
    local launcher=$!
    local i
    for i in $(seq 1 600); do
        if docker -H "unix://$dir/docker.sock" version >/dev/null 2>&1; then
            echo "dockerd answers at unix://$dir/docker.sock (pid $(cat "$dir/docker.pid" 2>/dev/null || echo "$launcher"))" >&2
            return 0
        fi
        if ! kill -0 "$launcher" 2>/dev/null; then
            log_tail "$dir" >&2
            die "dockerd exited at start (log: $dir/dockerd.log)"
        fi
        sleep 0.1
    done
    log_tail "$dir" >&2
    die "dockerd did not answer within 60 s (log: $dir/dockerd.log)"
}

stop() {
    local dir=$1
    [ -n "$dir" ] || die "stop needs a directory"
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd)
    local pid=""
    [ -f "$dir/docker.pid" ] && pid=$(cat "$dir/docker.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        # SIGTERM: the engine stops its containers (their grace period) and its containerd.
        as_root kill "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "dockerd (pid $pid) did not stop within 30 s: killing it" >&2
            as_root kill -9 "$pid" 2>/dev/null || true
            sleep 1
        fi
    fi
    # What the engine left mounted under DIR (its data root is bind-mounted on itself, and
    # overlays of containers killed with it), deepest first, then the directory.
    local mounts
    mounts=$(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print length($2), $2 }' /proc/mounts \
        | sort -rn | cut -d' ' -f2-)
    if [ -n "$mounts" ]; then
        while IFS= read -r m; do
            as_root umount -l "$m" 2>/dev/null || true
        done <<<"$mounts"
    fi
    as_root rm -rf "$dir"
}

case "${1:-}" in
    install) install ;;
    start) start "${2:-}" ;;
    stop) stop "${2:-}" ;;
    *) die "usage: $0 install | start DIR | stop DIR" ;;
esac
