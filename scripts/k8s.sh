#!/usr/bin/env bash
# A real Kubernetes control plane for the tests: kube-apiserver and kube-controller-manager
# built from Debian's `kubernetes` source package, with Debian's etcd.
#
#   scripts/k8s.sh install      install what the build and the server need (Go 1.19, etcd,
#                               make, rsync, dpkg-dev) if missing
#   scripts/k8s.sh build        print the directory holding kube-apiserver and
#                               kube-controller-manager, building them first unless the cache
#                               has them (key: source version, Go version, patch)
#   scripts/k8s.sh start DIR    start etcd, kube-apiserver (127.0.0.1, HTTPS, token auth,
#                               AlwaysAllow) and kube-controller-manager with their state in
#                               DIR; wait until /readyz answers and the `default` namespace
#                               exists; write DIR/kubeconfig
#   scripts/k8s.sh stop DIR     stop them by their PIDs and remove DIR
#   scripts/k8s.sh kill-apiserver DIR    SIGKILL kube-apiserver (fault tests)
#   scripts/k8s.sh start-apiserver DIR   start it again, same port and etcd
#
# Nothing under /etc/apt is touched: the source package is fetched through a private deb-src
# list. The build runs offline from the vendored modules (about 5 minutes, 1.4 GB of memory
# at peak); only the two binaries are kept, under ${BATCH_K8S_CACHE:-~/.cache/batch/k8s}.
set -euo pipefail

SOURCE_PACKAGE=kubernetes
SOURCE_VERSION=1.20.5+really1.20.2-1.1+deb12u1
SUITE=bookworm
GO=/usr/lib/go-1.19/bin/go
CACHE_ROOT=${BATCH_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/batch/k8s}
# What the build changes in the source: the vendored reflect2 1.0.1 breaks under Go >= 1.18
# (null labels, panics on YAML output); Debian's 1.0.2 replaces it.
PATCH_ID=reflect2-1.0.2

die() { echo "error: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install() {
    local missing=()
    [ -x "$GO" ] || missing+=(golang-1.19-go)
    command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
    command -v make >/dev/null 2>&1 || missing+=(make)
    command -v rsync >/dev/null 2>&1 || missing+=(rsync)
    command -v dpkg-source >/dev/null 2>&1 || missing+=(dpkg-dev)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]} (the Kubernetes tests build and run a real API server)" >&2
        as_root apt-get update -q
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}"
    fi
}

cache_dir() {
    local go_version
    go_version=$("$GO" env GOVERSION 2>/dev/null) || die "$GO does not run (scripts/k8s.sh install)"
    echo "$CACHE_ROOT/$SOURCE_VERSION-$go_version-$PATCH_ID"
}

# Builds into a temporary directory beside the cache entry, renames it into place.
build_into() {
    local dest=$1 work
    work=$(mktemp -d "${TMPDIR:-/tmp}/batch-k8s-build.XXXXXX")
    # The build tree is ~2.2 GB: never leave it behind.
    trap 'rm -rf "$work"' RETURN
    local apt=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::archives=$work/archives")
    mkdir -p "$work/lists/partial" "$work/archives/partial"
    echo "deb-src http://deb.debian.org/debian $SUITE main" >"$work/sources.list"
    echo "fetching the $SOURCE_PACKAGE $SOURCE_VERSION source package" >&2
    apt-get "${apt[@]}" update -q >&2
    (cd "$work" && apt-get "${apt[@]}" source --download-only "$SOURCE_PACKAGE=$SOURCE_VERSION" >&2)
    (cd "$work" && dpkg-source --no-check -x ./*.dsc src >/dev/null)
    echo "replacing the vendored reflect2 with Debian's 1.0.2" >&2
    (cd "$work" && apt-get download golang-github-modern-go-reflect2-dev >&2)
    dpkg-deb -x "$work"/golang-github-modern-go-reflect2-dev_*.deb "$work/reflect2"
    local vendored="$work/src/vendor/github.com/modern-go/reflect2"
    local debian_copy
    debian_copy=$(find "$work/reflect2" -type d -path '*github.com/modern-go/reflect2' | head -n 1)
    [ -d "$vendored" ] || die "no vendored reflect2 in the source package"
    [ -n "$debian_copy" ] || die "no reflect2 sources in golang-github-modern-go-reflect2-dev"
    find "$vendored" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
    find "$debian_copy" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
        -exec cp {} "$vendored/" \;
    echo "building kube-apiserver and kube-controller-manager (offline, vendored modules)" >&2
    (cd "$work/src" && PATH="$(dirname "$GO"):$PATH" GOPROXY=off GOFLAGS=-mod=vendor \
        CGO_ENABLED=0 GOCACHE="$work/gocache" GOPATH="$work/gopath" \
        make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >&2)
    local out="$work/src/_output/bin"
    [ -x "$out/kube-apiserver" ] && [ -x "$out/kube-controller-manager" ] \
        || die "the build produced no binaries"
    mkdir -p "$dest.tmp"
    cp "$out/kube-apiserver" "$out/kube-controller-manager" "$dest.tmp/"
    mv "$dest.tmp" "$dest"
}

build() {
    local dest
    dest=$(cache_dir)
    mkdir -p "$CACHE_ROOT"
    (
        flock 9
        if [ ! -x "$dest/kube-apiserver" ] || [ ! -x "$dest/kube-controller-manager" ]; then
            rm -rf "$dest" "$dest.tmp"
            build_into "$dest"
        fi
    ) 9>"$CACHE_ROOT/.lock"
    echo "$dest"
}

wait_for() {
    local what=$1 pidfile=$2 log=$3 i
    shift 3
    for i in $(seq 1 600); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            tail -n 20 "$log" >&2 || true
            die "$what exited at start (log: $log)"
        fi
        sleep 0.1
    done
    tail -n 20 "$log" >&2 || true
    die "$what did not become ready within 60 s (log: $log)"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local dir=$1 bin
    [ -n "$dir" ] || die "start needs a directory"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    bin=$(build)
    local etcd_port etcd_peer api_port cm_port token
    etcd_port=$(free_port)
    etcd_peer=$(free_port)
    api_port=$(free_port)
    cm_port=$(free_port)
    token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    mkdir -p "$dir/etcd" "$dir/certs"
    echo "$token,batch-tests,batch-tests,system:masters" >"$dir/tokens.csv"
    openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
    openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null

    etcd --data-dir "$dir/etcd" \
        --listen-client-urls "http://127.0.0.1:$etcd_port" \
        --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
        --initial-cluster "default=http://127.0.0.1:$etcd_peer" \
        >"$dir/etcd.log" 2>&1 &
    echo $! >"$dir/etcd.pid"
    wait_for etcd "$dir/etcd.pid" "$dir/etcd.log" \
        curl -sf "http://127.0.0.1:$etcd_port/health"

    cat >"$dir/ports" <<EOF
etcd_port=$etcd_port
api_port=$api_port
token=$token
EOF
    start_apiserver "$dir"
    local server="https://127.0.0.1:$api_port"

    cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: batch-tests
  cluster:
    server: $server
    certificate-authority: $dir/certs/apiserver.crt
contexts:
- name: batch-tests
  context: {cluster: batch-tests, user: batch-tests, namespace: default}
current-context: batch-tests
users:
- name: batch-tests
  user: {token: $token}
EOF

    "$bin/kube-controller-manager" \
        --kubeconfig "$dir/kubeconfig" \
        --controllers job,cronjob,garbagecollector,ttl-after-finished \
        --bind-address 127.0.0.1 --secure-port "$cm_port" --port 0 \
        --leader-elect=false \
        --use-service-account-credentials=false \
        >"$dir/kube-controller-manager.log" 2>&1 &
    echo $! >"$dir/kube-controller-manager.pid"
    sleep 0.5
    kill -0 "$(cat "$dir/kube-controller-manager.pid")" 2>/dev/null || {
        tail -n 20 "$dir/kube-controller-manager.log" >&2
        die "kube-controller-manager exited at start"
    }
    echo "kube-apiserver answers at $server (kubeconfig: $dir/kubeconfig)" >&2
}

# kube-apiserver alone, on the ports and etcd recorded in DIR/ports (after start, or
# to bring it back after kill-apiserver).
start_apiserver() {
    local dir=$1 bin etcd_port api_port token
    [ -f "$dir/ports" ] || die "$dir has no control plane (run start first)"
    dir=$(cd "$dir" && pwd)
    bin=$(build)
    # shellcheck disable=SC1091
    . "$dir/ports"
    "$bin/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$etcd_port" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
        --secure-port "$api_port" --insecure-port 0 \
        --cert-dir "$dir/certs" \
        --token-auth-file "$dir/tokens.csv" \
        --authorization-mode AlwaysAllow \
        --service-account-key-file "$dir/sa.pub" \
        --service-account-signing-key-file "$dir/sa.key" \
        --service-account-issuer https://kubernetes.default.svc \
        --disable-admission-plugins ServiceAccount \
        --endpoint-reconciler-type none \
        --service-cluster-ip-range 10.0.0.0/24 \
        >>"$dir/kube-apiserver.log" 2>&1 &
    echo $! >"$dir/kube-apiserver.pid"
    local server="https://127.0.0.1:$api_port"
    wait_for kube-apiserver "$dir/kube-apiserver.pid" "$dir/kube-apiserver.log" \
        curl -skf -H "Authorization: Bearer $token" "$server/readyz"
    wait_for kube-apiserver "$dir/kube-apiserver.pid" "$dir/kube-apiserver.log" \
        curl -skf -H "Authorization: Bearer $token" "$server/api/v1/namespaces/default"
}

# SIGKILL kube-apiserver (a crash, for fault tests) and wait until it is gone.
kill_apiserver() {
    local dir=$1 pid i
    [ -f "$dir/kube-apiserver.pid" ] || die "$dir has no kube-apiserver"
    pid=$(cat "$dir/kube-apiserver.pid")
    kill -9 "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    die "kube-apiserver $pid did not exit"
}

stop() {
    local dir=$1 name pid i
    [ -n "$dir" ] || die "stop needs a directory"
    [ -d "$dir" ] || return 0
    for name in kube-controller-manager kube-apiserver etcd; do
        [ -f "$dir/$name.pid" ] || continue
        pid=$(cat "$dir/$name.pid")
        kill "$pid" 2>/dev/null || continue
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}

case "${1:-}" in
    install) install ;;
    build) build ;;
    start) start "${2:-}" ;;
    stop) stop "${2:-}" ;;
    kill-apiserver) kill_apiserver "${2:-}" ;;
    start-apiserver) start_apiserver "${2:-}" ;;
    *) die "usage: $0 install | build | start DIR | stop DIR | kill-apiserver DIR | start-apiserver DIR" ;;
esac
