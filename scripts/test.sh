#!/usr/bin/env bash
# The whole test suite: every crate, every feature, unit + integration + doc tests,
# and the examples are built. Installs what it needs first: the end-to-end tests run the
# Kubernetes docs' examples as real processes, which need perl, python3 and bash; the
# bundled SQLite of the state store needs a C compiler. The Docker executor's tests run on a
# real engine: this script installs Debian's docker.io (and the static binaries the test images
# are built from), starts a private dockerd for the run (scripts/docker.sh) and stops it by its
# PID at the end; BATCH_TEST_REQUIRE_DOCKER=1 makes every Docker test fail, not skip, without it.
# Likewise a real kube-apiserver for the Kubernetes tests (BATCH_TEST_REQUIRE_K8S=1).
set -euo pipefail
cd "$(dirname "$0")/.."

# The corpus of real-world manifests lives beside the repository (../shared).
if [ ! -d ../shared/corpus/k8s-website ]; then
    echo "error: ../shared/corpus/k8s-website is missing: the corpus tests need it" >&2
    exit 1
fi

missing=()
command -v perl >/dev/null 2>&1 || missing+=(perl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v bash >/dev/null 2>&1 || missing+=(bash)
# SQLite (the state store) is compiled from source by rusqlite's bundled build.
command -v cc >/dev/null 2>&1 || missing+=(gcc)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (the end-to-end tests run them)" >&2
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${missing[@]}"
fi
if ! perl -Mbignum=bpi -e 1 2>/dev/null; then
    echo "error: perl lacks the bignum module that the docs' job.yaml (pi) uses" >&2
    exit 1
fi

bash scripts/docker.sh install
# A short path: a unix socket's path is limited to 108 bytes.
dockerd_dir=$(mktemp -d /tmp/batch-dockerd.XXXXXX)
k8s_dir=$(mktemp -d /tmp/batch-k8s.XXXXXX)
trap 'bash scripts/docker.sh stop "$dockerd_dir"; bash scripts/k8s.sh stop "$k8s_dir"' EXIT
bash scripts/docker.sh start "$dockerd_dir"
export DOCKER_HOST="unix://$dockerd_dir/docker.sock"
export BATCH_TEST_REQUIRE_DOCKER=1

# A real kube-apiserver (and the Job/CronJob controllers) for the Kubernetes executor's
# tests, built once from Debian's kubernetes source package and cached (scripts/k8s.sh).
bash scripts/k8s.sh install
bash scripts/k8s.sh start "$k8s_dir"
export KUBECONFIG="$k8s_dir/kubeconfig"
export BATCH_TEST_REQUIRE_K8S=1

cargo test --workspace --all-features --all-targets
cargo test --workspace --all-features --doc
