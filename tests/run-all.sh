#!/usr/bin/env bash
# The whole test suite. Works on a fresh machine: it installs the wasm and musl targets and
# builds (or reuses from a cache outside the checkout) the real control plane, node and L1 node
# the integration tests run against. No tier is skipped: a missing piece fails the run.
# The node tier needs root (network links, mounts, cgroups) and leaves the host as it found it:
# a snapshot before and after the tests must match.
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

for target in wasm32-wasip2 x86_64-unknown-linux-musl; do
    if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
        step "install the $target target" rustup target add "$target"
    fi
done
step "Kubernetes: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl" \
    bash tests/control-plane/setup.sh
step "node: containerd, CoreDNS, pause, runc and the CNI plugins" bash tests/node/setup.sh
step "L1 node: geth" bash tests/l1-node/setup.sh
step "OP Stack: op-node, op-batcher, op-proposer, op-challenger, op-conductor, op-geth" bash tests/opstack/setup.sh
step "plugins: build every wasm guest" bash plugins/build.sh
# The operator bundles the plugins just built instead of building them a second time.
target_dir=${CARGO_TARGET_DIR:-target}
[[ "$target_dir" = /* ]] || target_dir="$(pwd)/$target_dir"
export OPSTACK_PLUGIN_DIR="$target_dir/wasm32-wasip2/plugin"
step "the API types compile for wasm32-wasip2" cargo check --quiet --profile plugin --target wasm32-wasip2 -p opstack-crds
# The tests are built for the static target: the node tier's images hold static binaries (the
# operator's, deploy/Containerfile, and the test workload's, tests/workload/Containerfile), and
# building the tests for the same target and profile as those binaries compiles the dependency
# tree once, not twice (a cold release build of it alone takes a quarter of an hour here).
test_target=x86_64-unknown-linux-musl
step "static binaries for the node's images" \
    cargo build --quiet --target "$test_target" -p opstack-operator -p opstack-test-workload

host_before=$(mktemp)
host_after=$(mktemp)
trap 'rm -f "$host_before" "$host_after"' EXIT
bash tests/node/host-state.sh >"$host_before"

# One build of every test binary, then the runs: everything but the node tier, then the node
# tier (its own package). Side by side they took 9.5 min instead of about 12, but the load made the
# devnet's timing flaky on 2 cores, so they run one after the other; within the first group two
# binaries run at once.
node_tier=opstack-node-tier-tests
step "build every test" cargo test --target "$test_target" --workspace --no-run --quiet "$@"
echo "==> cargo test: the workspace but the node tier, two test binaries at a time, then doctests" >&2
t0=$SECONDS
# Two at a time: these binaries mostly wait on their API server or L1 node (tests/run-test-binaries.sh).
bash tests/run-test-binaries.sh 2 --target "$test_target" --workspace --exclude "$node_tier" "$@"
binaries_status=$?
cargo test --target "$test_target" --workspace --exclude "$node_tier" --doc --no-fail-fast "$@"
doc_status=$?
rest_status=$((binaries_status != 0 || doc_status != 0))
echo "    the workspace but the node tier: $((SECONDS - t0)) s (exit $rest_status)" >&2
echo "==> cargo test: the node tier ($node_tier, its test target node)" >&2
t0=$SECONDS
# Selected as a target of the workspace, not with -p: with -p, the features of the shared
# crates unify differently and they compile again.
cargo test --target "$test_target" --workspace --test node --no-fail-fast "$@"
node_status=$?
echo "    the node tier: $((SECONDS - t0)) s (exit $node_status)" >&2
tests_status=$((rest_status != 0 || node_status != 0))

echo "==> no test process left behind" >&2
bash tests/control-plane/check-no-leftovers.sh
leftovers_status=$?

echo "==> the host is as before the tests (links, chains, mounts, cgroups, kernel settings)" >&2
bash tests/node/host-state.sh >"$host_after"
if diff "$host_before" "$host_after" >&2; then
    echo "    nothing left behind" >&2
    host_status=0
else
    echo "FAILED: the tests left the host changed (< before, > after)" >&2
    host_status=1
fi

echo "==> total $((SECONDS - started)) s" >&2
if ((tests_status != 0 || leftovers_status != 0 || host_status != 0)); then
    exit 1
fi
