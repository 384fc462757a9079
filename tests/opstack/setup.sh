#!/usr/bin/env bash
# Builds (or finds) the real OP Stack binaries the devnet tier runs, static (CGO_ENABLED=0, as
# upstream builds them) for the FROM scratch images in images/:
#   op-node, op-batcher, op-proposer, op-challenger, op-conductor
#                           from github.com/ethereum-optimism/optimism@OPTIMISM_VERSION
#   geth                    cmd/geth of github.com/ethereum-optimism/op-geth@OP_GETH_VERSION
#                           (upstream's op-geth image ships it as /usr/local/bin/geth)
# from the Go module proxy (no prebuilt downloads or git clones are reachable here), into a cache
# outside the checkout keyed by version, so fresh clones on the same machine reuse it:
#   ${OPSTACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opstack-operator}/opstack/
#     optimism-<OPTIMISM_VERSION>-op-geth-<OP_GETH_VERSION>/
# Versions live in versions.env beside this script. The last line printed is that directory; the
# suite maps it to /out/ of the `opstack` stage that images/*.Containerfile copy from.
# Cold, measured on 2 cores shared with a Rust build (under nice -n 10, none of optimism's or
# op-geth's dependencies in Go's module or build cache): about 10 minutes (module downloads 20 s,
# the bundle check 1.5 min, op-node 3.5 min, the other four 35 s together, geth 4 min).
# Warm (every binary cached and running): about a second.
#
# Why the registry bundle step: op-core/superchain embeds superchain-configs.zip
# (`//go:embed` in op-core/superchain/chain.go of ethereum-optimism/optimism@v1.19.6), but that
# zip is gitignored: upstream builds it from the superchain-registry git submodule with
# op-core/superchain/sync-superchain.sh (ops/docker/op-stack-go/Dockerfile runs it before every
# Go build), so the module zip on the proxy lacks it and a plain build fails with "pattern
# superchain-configs.zip: no matching files found". The registry's superchain module is not
# served by the proxy either (403).
# op-geth embeds the same kind of bundle (superchain/superchain-configs.zip of
# ethereum-optimism/op-geth@v1.101702.3), so this script:
#   1. copies the optimism module source into a writable directory;
#   2. rebuilds that directory's op-core/superchain/superchain-configs.zip from op-geth's bundle:
#      drops its COMMIT entry (upstream's bundle embeds no commit), removes the keys this
#      optimism release does not model and decodes strictly (jsonutil.DecodeTOMLStrict in
#      op-core/superchain/chain.go and superchain.go): `superchain_level` in the chain files and
#      `protocol_versions_addr` in superchain.toml; zips it deterministically the way
#      sync-superchain.sh does; and writes its sha256 into superchain-configs.zip.sha256 beside
#      it (op-core/superchain/init.go panics at start when the two disagree);
#   3. checks every embedded config decodes strictly with upstream's own test
#      (TestAllEmbeddedConfigsDecodeStrictly in op-core/superchain/strict_decode_test.go);
#   4. builds through a wrapper module that requires optimism, replaces it with that directory
#      and copies the go line and the replace (go-ethereum => op-geth) and exclude directives of
#      optimism's go.mod, which apply only in the main module (its go.sum is copied too, so the
#      dependencies are checked against upstream's hashes).
# The built-in chain data (--network=...) therefore comes from the registry commit op-geth's
# bundle was made from (it names ac4e485 for op-geth v1.101702.3), older than the one an official
# build embeds: flags and parsing are the release's own, built-in chain values differ. For one,
# that bundle predates `keep_karst_upgrade_gas`, which OP Mainnet needs set (absent means false;
# docs/public-docs/releases/op-node.mdx, v1.19.3), so never sync a public network with these
# binaries' --network; the devnet brings its own rollup config.
#
# Build differences from upstream's release images, deliberately: -trimpath, -s -w (no symbol
# table or DWARF; stack traces still work), and no GitCommit/GitDate (the proxy does not say
# which commit a tag is). op-node's version strings are set as upstream's release build sets them
# (op-node/justfile), so `op-node --version` prints the release; the other monorepo binaries
# print their source defaults, because the root tag names only op-node's release.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SETUP_NAME="opstack setup"
# shellcheck source=../lib/build.sh
source "$script_dir/../lib/build.sh"
# shellcheck source=versions.env
source "$script_dir/versions.env"
: "${OPTIMISM_VERSION:?versions.env must set OPTIMISM_VERSION}"
: "${OP_GETH_VERSION:?versions.env must set OP_GETH_VERSION}"

version_key="optimism-${OPTIMISM_VERSION}-op-geth-${OP_GETH_VERSION}"
bin_dir="$cache_root/opstack/$version_key"
work_dir="$cache_root/opstack/build/$version_key"
rerun="bash tests/opstack/setup.sh"

OPTIMISM_MODULE=github.com/ethereum-optimism/optimism
OP_GETH_MODULE=github.com/ethereum-optimism/op-geth
# In build order: op-node first, the others share most of its packages.
OPTIMISM_BINARIES=(op-node op-batcher op-proposer op-challenger op-conductor)

# Static binaries for FROM scratch images; upstream's justfiles build with CGO_ENABLED=0 too.
export CGO_ENABLED=0

# Downloads module@version through the proxy and prints the directory it is extracted to.
module_dir_of() { module_field "$work_dir" "$1" Dir; }

# The go.mod directives that apply only in the main module (godebug, replace, exclude), single
# or in blocks, without comment lines. Dies on a replace with a local path: it cannot resolve
# outside the upstream checkout.
main_module_directives() {
  local gomod="$1"
  awk '
    function local_target(   i) {
      for (i = 1; i < NF; i++) if ($i == "=>") return $(i + 1) ~ /^(\.\.?)?\//
      return 0
    }
    /^[[:space:]]*\/\// { next }
    block != "" {
      if ($1 == ")") { print ")"; block = ""; next }
      if (block == "replace" && local_target()) { print "local replace: " $0 > "/dev/stderr"; bad = 1 }
      print; next
    }
    ($1 == "godebug" || $1 == "replace" || $1 == "exclude") && $2 == "(" { block = $1; print; next }
    $1 == "replace" && local_target() { print "local replace: " $0 > "/dev/stderr"; bad = 1 }
    $1 == "godebug" || $1 == "replace" || $1 == "exclude" { print }
    END { exit bad }
  ' "$gomod" || die "$gomod has a replace with a local path; the wrapper module cannot copy it"
}

check_tools() {
  check_go
  local tool missing=()
  for tool in zip unzip sha256sum; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ ${#missing[@]} -eq 0 ]] ||
    die "the registry bundle step needs ${missing[*]}: sudo apt-get install zip unzip, then rerun $rerun"
}

copy_optimism_source() {
  local src_dir="$work_dir/optimism-src" module_dir
  module_dir="$(module_dir_of "$OPTIMISM_MODULE@$OPTIMISM_VERSION")"
  [[ -f "$module_dir/go.mod" ]] || die "no go.mod in $module_dir for $OPTIMISM_MODULE@$OPTIMISM_VERSION"
  # The module cache is read-only; so is a copy a killed run left behind.
  [[ -e "$src_dir" ]] && chmod -R u+w "$src_dir"
  rm -rf "$src_dir"
  cp -R "$module_dir" "$src_dir"
  chmod -R u+w "$src_dir"
  log "  copied $OPTIMISM_MODULE@$OPTIMISM_VERSION to $src_dir ($(du -sh "$src_dir" | cut -f1))"
}

# Step 2 of the header: op-geth's embedded registry bundle, made into the one optimism embeds.
build_superchain_bundle() {
  local src_dir="$work_dir/optimism-src" bundle_dir="$work_dir/superchain-bundle"
  local op_geth_dir source_zip target_dir="$work_dir/optimism-src/op-core/superchain" entry sha
  op_geth_dir="$(module_dir_of "$OP_GETH_MODULE@$OP_GETH_VERSION")"
  source_zip="$op_geth_dir/superchain/superchain-configs.zip"
  [[ -f "$source_zip" ]] || die "$OP_GETH_MODULE@$OP_GETH_VERSION has no superchain/superchain-configs.zip"
  [[ -f "$target_dir/superchain-configs.zip.sha256" ]] ||
    die "$src_dir has no op-core/superchain/superchain-configs.zip.sha256: not the layout this script knows"

  rm -rf "$bundle_dir"
  mkdir -p "$bundle_dir/files"
  unzip -q "$source_zip" -d "$bundle_dir/files"
  (
    cd "$bundle_dir/files"
    for entry in chains.json dictionary configs genesis; do
      [[ -e "$entry" ]] || die "op-geth's bundle has no $entry: not the layout sync-superchain.sh writes"
    done
    log "  op-geth $OP_GETH_VERSION's bundle: superchain-registry commit" \
      "$(cat COMMIT 2>/dev/null || echo unknown)," \
      "$(find configs -name '*.toml' ! -name superchain.toml | wc -l) chain configs"
    rm -f COMMIT
    find configs -name '*.toml' ! -name superchain.toml -exec sed -i '/^superchain_level[[:space:]]*=/d' {} +
    find configs -name superchain.toml -exec sed -i '/^protocol_versions_addr[[:space:]]*=/d' {} +
    if grep -rnE '^[[:space:]]*(superchain_level|protocol_versions_addr)[[:space:]]*=' configs >&2; then
      die "the keys above are not top-level lines; update build_superchain_bundle in tests/opstack/setup.sh"
    fi

    # As sync-superchain.sh archives it: fixed times and modes, sorted entries, no extra fields.
    find . -exec touch -t 198001010000.00 {} +
    chmod -R 755 ./*
    find . -type f | LC_ALL=C sort | xargs zip -9 -oX --quiet ../superchain-configs.zip
  )

  sha="$(sha256sum "$bundle_dir/superchain-configs.zip" | awk '{print $1}')"
  log "  bundle sha256 $sha (upstream pins $(awk '{print $1}' "$target_dir/superchain-configs.zip.sha256")," \
    "built from its registry submodule)"
  cp "$bundle_dir/superchain-configs.zip" "$target_dir/superchain-configs.zip"
  printf '%s  superchain-configs.zip\n' "$sha" >"$target_dir/superchain-configs.zip.sha256"
}

prepare_optimism_module() {
  local module_dir="$work_dir/optimism" upstream_gomod="$work_dir/optimism-src/go.mod"
  local go_line directives
  go_line="$(grep -m1 '^go ' "$upstream_gomod")" || die "no go line in $upstream_gomod"
  directives="$(main_module_directives "$upstream_gomod")"
  rm -rf "$module_dir"
  mkdir -p "$module_dir"
  cat >"$module_dir/go.mod" <<GOMOD
// Generated by tests/opstack/setup.sh: builds the OP Stack binaries from a copy of the optimism
// module that carries the superchain-registry bundle its module zip lacks.
module opstack-operator.local/opstack/optimism

$go_line

require $OPTIMISM_MODULE $OPTIMISM_VERSION

replace $OPTIMISM_MODULE => ../optimism-src

// Copied from $OPTIMISM_MODULE@$OPTIMISM_VERSION's go.mod: these apply only in the main module.
$directives
GOMOD
  cp "$work_dir/optimism-src/go.sum" "$module_dir/go.sum"
  log "  $(grep -m1 'go-ethereum =>' "$module_dir/go.mod" | sed 's/^[[:space:]]*replace[[:space:]]*//')"
  local packages=() name
  for name in "${OPTIMISM_BINARIES[@]}"; do packages+=("$OPTIMISM_MODULE/$name/cmd"); done
  log "  resolving and downloading the modules the binaries import (log: $work_dir/optimism-resolve.log)"
  (cd "$module_dir" && go list -deps "${packages[@]}") >"$work_dir/optimism-resolve.log" 2>&1 || {
    tail -n 30 "$work_dir/optimism-resolve.log" >&2
    die "could not resolve the optimism wrapper module in $module_dir (log: $work_dir/optimism-resolve.log)"
  }
}

# Step 3 of the header: upstream's test that every embedded chain and superchain config decodes
# with the strict decoder (and that the pin matches), so no built-in network fails at start.
check_bundle_decodes() {
  local test_log="$work_dir/superchain-test.log"
  log "  go test $OPTIMISM_MODULE/op-core/superchain (log: $test_log)"
  (cd "$work_dir/optimism" &&
    go test -count=1 -run '^(TestSyncSuperchain|TestAllEmbeddedConfigsDecodeStrictly)$' \
      "$OPTIMISM_MODULE/op-core/superchain") >"$test_log" 2>&1 || {
    grep -E -- '--- FAIL|Error:|panic' "$test_log" | head -n 30 >&2
    die "the rebuilt registry bundle does not decode with $OPTIMISM_VERSION's structs (log: $test_log)"
  }
}

optimism_ldflags() {
  local name="$1"
  case "$name" in
    op-node)
      # As op-node/justfile sets them; upstream's release builds leave Meta empty.
      printf '%s' "-s -w -X $OPTIMISM_MODULE/op-node/version.Version=$OPTIMISM_VERSION" \
        " -X $OPTIMISM_MODULE/op-node/version.Meta="
      ;;
    *) printf '%s' "-s -w" ;;
  esac
}

prepare_op_geth_module() {
  local module_dir="$work_dir/op-geth" op_geth_dir go_line directives
  op_geth_dir="$(module_dir_of "$OP_GETH_MODULE@$OP_GETH_VERSION")"
  go_line="$(grep -m1 '^go ' "$op_geth_dir/go.mod")" || die "no go line in $op_geth_dir/go.mod"
  directives="$(main_module_directives "$op_geth_dir/go.mod")"
  rm -rf "$module_dir"
  mkdir -p "$module_dir"
  # op-geth's module path is github.com/ethereum/go-ethereum: it is used as a replacement for
  # that module. The required version does not matter, the replace applies to every version.
  cat >"$module_dir/go.mod" <<GOMOD
// Generated by tests/opstack/setup.sh: builds op-geth's cmd/geth.
module opstack-operator.local/opstack/op-geth

$go_line

require github.com/ethereum/go-ethereum v0.0.0

replace github.com/ethereum/go-ethereum => $OP_GETH_MODULE $OP_GETH_VERSION

$directives
GOMOD
  cp "$op_geth_dir/go.sum" "$module_dir/go.sum"
  (cd "$module_dir" && go list -deps github.com/ethereum/go-ethereum/cmd/geth) \
    >"$work_dir/op-geth-resolve.log" 2>&1 || {
    tail -n 30 "$work_dir/op-geth-resolve.log" >&2
    die "could not resolve the op-geth wrapper module in $module_dir (log: $work_dir/op-geth-resolve.log)"
  }
}

op_geth_ldflags() {
  # gitTag is what op-geth's build/ci.go sets: `geth version` then reports the op-geth release.
  printf '%s' "-s -w -X github.com/ethereum/go-ethereum/version.gitTag=$OP_GETH_VERSION"
}

binary_runs() {
  case "$1" in
    geth) runs "$bin_dir/geth" version ;;
    *) runs "$bin_dir/$1" --version ;;
  esac
}

binary_version() {
  case "$1" in
    geth) "$bin_dir/geth" version 2>/dev/null | sed -n 's/^Version: //p' | head -n1 ;;
    *) "$bin_dir/$1" --version 2>/dev/null | head -n1 ;;
  esac
}

# A FROM scratch image has no dynamic loader: the binary must not need one.
check_static() {
  local name="$1"
  go version -m "$bin_dir/$name" | grep -q 'CGO_ENABLED=0' ||
    die "$bin_dir/$name was not built with CGO_ENABLED=0; remove it and rerun $rerun"
}

verify_binaries() {
  local name
  for name in "${OPTIMISM_BINARIES[@]}" geth; do
    binary_runs "$name" || die "$bin_dir/$name does not run; remove it and rerun $rerun"
  done
  # The built-in registry bundle loads (op-core/superchain checks its pin at start, then this
  # decodes a chain and its superchain config).
  local dump_log="$work_dir/dump-rollup-config.log"
  "$bin_dir/op-node" networks dump-rollup-config --network=op-sepolia >/dev/null 2>"$dump_log" || {
    tail -n 20 "$dump_log" >&2
    die "op-node cannot load its built-in op-sepolia config; remove $bin_dir and rerun $rerun"
  }
}

main() {
  log "optimism $OPTIMISM_VERSION, op-geth $OP_GETH_VERSION"
  log "bin dir: $bin_dir"
  mkdir -p "$bin_dir" "$work_dir"
  lock_or_wait "$cache_root/opstack/.setup-$version_key.lock"

  local need_optimism=() need_geth=false name
  for name in "${OPTIMISM_BINARIES[@]}"; do
    if binary_runs "$name"; then
      log "cached: $name ($(binary_version "$name"))"
    else
      need_optimism+=("$name")
    fi
  done
  if binary_runs geth; then
    log "cached: geth (op-geth $(binary_version geth))"
  else
    need_geth=true
  fi

  if [[ ${#need_optimism[@]} -gt 0 || $need_geth == true ]]; then
    step "check tools" check_tools
  fi
  if [[ ${#need_optimism[@]} -gt 0 ]]; then
    step "copy the optimism $OPTIMISM_VERSION module source" copy_optimism_source
    step "build the superchain-registry bundle from op-geth $OP_GETH_VERSION's" build_superchain_bundle
    step "prepare optimism wrapper module" prepare_optimism_module
    step "check the bundle decodes strictly" check_bundle_decodes
    for name in "${need_optimism[@]}"; do
      step "build $name (optimism $OPTIMISM_VERSION)" go_build "$name" "$work_dir/optimism" \
        "$OPTIMISM_MODULE/$name/cmd" "$(optimism_ldflags "$name")" "$bin_dir/$name"
      check_static "$name"
    done
  fi
  if [[ $need_geth == true ]]; then
    step "prepare op-geth wrapper module" prepare_op_geth_module
    # urfave_cli_no_docs as op-geth's build/ci.go sets it; its ckzg tag needs cgo, so not here.
    step "build geth (op-geth $OP_GETH_VERSION)" go_build geth "$work_dir/op-geth" \
      github.com/ethereum/go-ethereum/cmd/geth "$(op_geth_ldflags)" "$bin_dir/geth" \
      -tags urfave_cli_no_docs
    check_static geth
  fi

  current_step="verify binaries"
  verify_binaries
  current_step=""
  finish
  # Last line on stdout: the bin dir, for callers that capture it.
  printf '%s\n' "$bin_dir"
}

main "$@"
