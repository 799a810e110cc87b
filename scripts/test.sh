#!/usr/bin/env bash
# The whole test suite: every crate, every feature, unit + integration + doc tests,
# and the examples are built. Installs what it needs first (nothing beyond the Rust
# toolchain yet; later: Docker engine and static test images).
set -euo pipefail
cd "$(dirname "$0")/.."

# The corpus of real-world manifests lives beside the repository (../shared).
if [ ! -d ../shared/corpus/k8s-website ]; then
    echo "error: ../shared/corpus/k8s-website is missing: the corpus tests need it" >&2
    exit 1
fi

cargo test --workspace --all-features --all-targets
cargo test --workspace --all-features --doc
