#!/usr/bin/env bash
# The whole test suite: every crate, every feature, unit + integration + doc tests,
# and the examples are built. Installs what it needs first: the end-to-end tests run the
# Kubernetes docs' examples as real processes, which need perl, python3 and bash; the
# bundled SQLite of the state store needs a C compiler.
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

cargo test --workspace --all-features --all-targets
cargo test --workspace --all-features --doc
