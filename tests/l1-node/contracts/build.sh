#!/usr/bin/env bash
# Regenerates the artifact files (deployable bytecode + selectors) from the .sol files with
# solc-js, the Solidity compiler from the npm registry, at a pinned version:
#   FakeSystemConfig.sol -> artifacts.json         (discovery tests, host/tests/discovery_support)
#   DevnetL1.sol         -> devnet-artifacts.json  (the devnet, tests/harness/src/devnet)
# The tests read the committed JSON files, so they need neither npm nor solc at run time; run this
# only after changing a .sol file, and commit both.
#   bash tests/l1-node/contracts/build.sh
# solc is installed into a cache outside the checkout:
#   ${OPSTACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opstack-operator}/l1-node/solc-js-<version>/
set -euo pipefail

SOLC_VERSION=0.8.30
# What geth --dev (v1.17) runs comfortably and every tool knows; newer forks add nothing here.
EVM_VERSION=cancun

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${OPSTACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opstack-operator}"
solc_dir="$cache_root/l1-node/solc-js-$SOLC_VERSION"

log() { printf '[contracts build] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v node >/dev/null || die "node is not on PATH (needed to run solc-js)"
command -v npm >/dev/null || die "npm is not on PATH (needed to install solc@$SOLC_VERSION)"

if [[ ! -f "$solc_dir/node_modules/solc/package.json" ]]; then
  log "installing solc@$SOLC_VERSION from npm into $solc_dir"
  mkdir -p "$solc_dir"
  npm install --prefix "$solc_dir" --no-audit --no-fund --save-exact "solc@$SOLC_VERSION" >&2 ||
    die "npm install solc@$SOLC_VERSION failed"
fi

# One artifact file per source file: compile.js takes one file at a time.
compile() {
  local source="$1" output="$2"
  NODE_PATH="$solc_dir/node_modules" SOLC_VERSION="$SOLC_VERSION" EVM_VERSION="$EVM_VERSION" \
    node "$script_dir/compile.js" "$script_dir/$source" >"$script_dir/$output.partial" ||
    die "compilation of $source failed"
  mv -f "$script_dir/$output.partial" "$script_dir/$output"
  log "wrote $script_dir/$output"
}

compile FakeSystemConfig.sol artifacts.json
compile DevnetL1.sol devnet-artifacts.json
