#!/usr/bin/env bash
# The whole test suite. Works on a fresh machine: it installs the wasm target and builds
# (or reuses from a cache outside the checkout) the real control plane and L1 node the
# integration tests run against. No tier is skipped: a missing piece fails the run.
#
# Usage: tests/run-all.sh [extra args for cargo test]
set -uo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() {
    local name=$1
    shift
    local t0=$SECONDS
    echo "==> $name" >&2
    if ! "$@"; then
        echo "FAILED: $name (after $((SECONDS - t0)) s)" >&2
        exit 1
    fi
    echo "    $name: $((SECONDS - t0)) s" >&2
}

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
    step "install the wasm32-wasip2 target" rustup target add wasm32-wasip2
fi
step "control plane: etcd, kube-apiserver, kube-controller-manager" bash tests/control-plane/setup.sh
step "L1 node: geth" bash tests/l1-node/setup.sh
step "plugins: build every wasm guest" bash plugins/build.sh
# The operator bundles the plugins just built instead of building them a second time.
target_dir=${CARGO_TARGET_DIR:-target}
[[ "$target_dir" = /* ]] || target_dir="$(pwd)/$target_dir"
export OPSTACK_PLUGIN_DIR="$target_dir/wasm32-wasip2/plugin"
step "the API types build for wasm32-wasip2" cargo build --quiet --profile plugin --target wasm32-wasip2 -p opstack-crds

echo "==> cargo test --workspace" >&2
t0=$SECONDS
cargo test --workspace --no-fail-fast "$@"
tests_status=$?
echo "    cargo test: $((SECONDS - t0)) s (exit $tests_status)" >&2

echo "==> no test process left behind" >&2
bash tests/control-plane/check-no-leftovers.sh
leftovers_status=$?

echo "==> total $((SECONDS - started)) s" >&2
if ((tests_status != 0 || leftovers_status != 0)); then
    exit 1
fi
