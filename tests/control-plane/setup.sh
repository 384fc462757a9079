#!/usr/bin/env bash
# Builds the binaries of a real Kubernetes control plane for the test suite:
#   etcd, kube-apiserver, kube-controller-manager
# from the Go module proxy (no prebuilt downloads are reachable here), into a cache outside
# the checkout keyed by version, so fresh clones on the same machine reuse it:
#   ${OPSTACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opstack-operator}/control-plane/
#     k8s-<KUBERNETES_VERSION>-etcd-<ETCD_VERSION>/
# Versions live in versions.env beside this script (the Rust harness reads the same file).
#
# A cold build takes many minutes on 2 cores; a warm run only checks the cached binaries.
# The last line printed is the bin directory. Tests find it the same way, or through
# OPSTACK_CONTROL_PLANE_BIN.
#
# Why wrapper modules: k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) at
# v0.0.0 and replaces them with ./staging paths, which do not apply when it is a dependency.
# A small module that requires k8s.io/kubernetes and replaces each staging module with its
# published v0.X.Y tag builds the same code. The list of staging modules is read from the
# release's own go.mod. etcd's server module has the same pattern (relative replaces).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$script_dir/versions.env"
: "${KUBERNETES_VERSION:?versions.env must set KUBERNETES_VERSION}"
: "${ETCD_VERSION:?versions.env must set ETCD_VERSION}"

cache_root="${OPSTACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opstack-operator}"
version_key="k8s-${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}"
bin_dir="$cache_root/control-plane/$version_key"
work_dir="$cache_root/control-plane/build/$version_key"

# Never let a go.mod's toolchain line send Go off to download another toolchain: only the
# module proxy is reachable, and a clear "needs newer Go" error beats a network timeout.
export GOTOOLCHAIN=local
# The wrapper modules start without a go.sum; let the go command fill in requirements.
export GOFLAGS=-mod=mod

script_start=$SECONDS
current_step=""

log() { printf '[control-plane setup] %s\n' "$*" >&2; }

on_exit() {
  local status=$?
  if [[ $status -ne 0 ]]; then
    log "FAILED in step: ${current_step:-<before first step>} (exit status $status)"
    log "see the messages above; build logs are under $work_dir"
  fi
}
trap on_exit EXIT

# Runs "$@" as a named step, printing its duration. On failure the EXIT trap names the step.
step() {
  current_step="$1"
  shift
  local started=$SECONDS
  log "step: $current_step ..."
  "$@"
  log "step: $current_step done in $((SECONDS - started))s"
}

die() {
  log "error: $*"
  exit 1
}

binary_works() {
  # A cached binary counts only if it runs; a half-written file from a killed build must not.
  local binary="$1"
  [[ -x "$binary" ]] && "$binary" --version >/dev/null 2>&1
}

check_toolchain() {
  command -v go >/dev/null || die "go is not on PATH; the control plane is built from Go modules"
  log "using $(go version); GOPROXY=$(go env GOPROXY)"
}

# go build can run for many minutes with no output. Print progress every 30 s: how many
# packages are compiled so far (go build -v lists each) and the time spent.
build_with_progress() {
  local name="$1" module_dir="$2" package="$3" ldflags="$4"
  local build_log="$work_dir/build-$name.log"
  local output="$bin_dir/.$name.partial"
  log "building $name from $package (cold builds take several minutes on 2 cores; log: $build_log)"
  (
    cd "$module_dir"
    exec go build -v -trimpath -ldflags "$ldflags" -o "$output" "$package"
  ) >"$build_log" 2>&1 &
  local build_pid=$!
  local started=$SECONDS
  while kill -0 "$build_pid" 2>/dev/null; do
    sleep 5
    if kill -0 "$build_pid" 2>/dev/null && (((SECONDS - started) % 30 < 5)); then
      log "  $name: $(wc -l <"$build_log") packages compiled, $((SECONDS - started))s elapsed"
    fi
  done
  if ! wait "$build_pid"; then
    log "go build of $name failed; last lines of $build_log:"
    tail -n 40 "$build_log" >&2
    rm -f "$output"
    return 1
  fi
  # Rename only once complete, so a killed build never leaves a binary that looks cached.
  mv -f "$output" "$bin_dir/$name"
  log "  $name: $(du -h "$bin_dir/$name" | cut -f1), built in $((SECONDS - started))s"
}

# Prints the replace block for the kubernetes wrapper: every `k8s.io/x => ./staging/...`
# line of the release's go.mod becomes `k8s.io/x => k8s.io/x v0.<minor>.<patch>`.
kubernetes_staging_replaces() {
  local kubernetes_gomod="$1" staging_version="$2"
  awk -v version="$staging_version" '
    $2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, version }
    $1 == "replace" && $3 == "=>" && $4 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $2, $2, version }
  ' "$kubernetes_gomod"
}

# etcd's server go.mod replaces its sibling modules with ../ paths; pin each to the release tag.
etcd_sibling_replaces() {
  local etcd_gomod="$1" version="$2"
  awk -v version="$version" '
    $2 == "=>" && $3 ~ /^\.\.\// { printf "\t%s => %s %s\n", $1, $1, version }
    $1 == "replace" && $3 == "=>" && $4 ~ /^\.\.\// { printf "\t%s => %s %s\n", $2, $2, version }
  ' "$etcd_gomod"
}

gomod_of() {
  # Downloads module@version through the proxy and prints the path of its go.mod file.
  local module_at_version="$1" json
  json="$(cd "$work_dir" && GOFLAGS= go mod download -json "$module_at_version")" ||
    die "go mod download $module_at_version failed: $json"
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$json"
}

prepare_kubernetes_module() {
  local module_dir="$work_dir/kubernetes"
  local minor_patch="${KUBERNETES_VERSION#v1.}"
  local staging_version="v0.${minor_patch}"
  local kubernetes_gomod replaces go_line godebug_line
  kubernetes_gomod="$(gomod_of "k8s.io/kubernetes@$KUBERNETES_VERSION")"
  [[ -f "$kubernetes_gomod" ]] || die "no go.mod found for k8s.io/kubernetes@$KUBERNETES_VERSION"
  replaces="$(kubernetes_staging_replaces "$kubernetes_gomod" "$staging_version")"
  [[ -n "$replaces" ]] || die "found no ./staging replace lines in $kubernetes_gomod"
  log "  k8s.io/kubernetes $KUBERNETES_VERSION has $(wc -l <<<"$replaces") staging modules, pinned to $staging_version"
  # The go and godebug lines apply only to the main module: copy them so the binaries get
  # the language version and GODEBUG defaults the release was built and tested with.
  go_line="$(grep -m1 '^go ' "$kubernetes_gomod")"
  godebug_line="$(grep -m1 '^godebug ' "$kubernetes_gomod" || true)"
  mkdir -p "$module_dir"
  cat >"$module_dir/go.mod" <<EOF
// Generated by tests/control-plane/setup.sh: builds kube-apiserver and kube-controller-manager.
module opstack-operator.local/control-plane/kubernetes

$go_line

$godebug_line

require k8s.io/kubernetes $KUBERNETES_VERSION

replace (
$replaces
)
EOF
  (cd "$module_dir" && go mod download k8s.io/kubernetes) ||
    die "could not resolve the kubernetes wrapper module in $module_dir"
}

prepare_etcd_module() {
  local module_dir="$work_dir/etcd"
  local etcd_gomod replaces go_line
  etcd_gomod="$(gomod_of "go.etcd.io/etcd/server/v3@$ETCD_VERSION")"
  [[ -f "$etcd_gomod" ]] || die "no go.mod found for go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  replaces="$(etcd_sibling_replaces "$etcd_gomod" "$ETCD_VERSION")"
  go_line="$(grep -m1 '^go ' "$etcd_gomod")"
  mkdir -p "$module_dir"
  cat >"$module_dir/go.mod" <<EOF
// Generated by tests/control-plane/setup.sh: builds etcd.
module opstack-operator.local/control-plane/etcd

$go_line

require go.etcd.io/etcd/server/v3 $ETCD_VERSION

replace (
$replaces
)
EOF
}

kubernetes_ldflags() {
  # -s -w: no symbol table or DWARF (the binaries are ~40% smaller). The -X values make
  # /version and --version report the release instead of v0.0.0-master.
  local minor="${KUBERNETES_VERSION#v1.}"
  minor="${minor%%.*}"
  printf '%s' "-s -w" \
    " -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION" \
    " -X k8s.io/component-base/version.gitMajor=1" \
    " -X k8s.io/component-base/version.gitMinor=$minor" \
    " -X k8s.io/component-base/version.gitTreeState=clean"
}

main() {
  log "control plane: kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION"
  log "bin dir: $bin_dir"
  mkdir -p "$bin_dir" "$work_dir"

  # Two runs at once (a developer and CI on the same machine) would build into the same
  # files; the second waits for the first and then finds the cache warm.
  exec 9>"$cache_root/control-plane/.setup-$version_key.lock"
  if command -v flock >/dev/null; then
    if ! flock -n 9; then
      log "another setup.sh is building this version; waiting for it to finish"
      flock 9
    fi
  fi

  local need_kubernetes=() need_etcd=false
  for name in kube-apiserver kube-controller-manager; do
    if binary_works "$bin_dir/$name"; then
      log "cached: $name ($("$bin_dir/$name" --version 2>&1 | head -n1))"
    else
      need_kubernetes+=("$name")
    fi
  done
  if binary_works "$bin_dir/etcd"; then
    log "cached: etcd ($("$bin_dir/etcd" --version 2>&1 | head -n1))"
  else
    need_etcd=true
  fi

  if [[ ${#need_kubernetes[@]} -gt 0 || $need_etcd == true ]]; then
    step "check Go toolchain" check_toolchain
  fi
  if [[ $need_etcd == true ]]; then
    step "prepare etcd wrapper module" prepare_etcd_module
    step "build etcd $ETCD_VERSION" \
      build_with_progress etcd "$work_dir/etcd" go.etcd.io/etcd/server/v3 "-s -w"
  fi
  if [[ ${#need_kubernetes[@]} -gt 0 ]]; then
    step "prepare kubernetes wrapper module" prepare_kubernetes_module
    local ldflags
    ldflags="$(kubernetes_ldflags)"
    for name in "${need_kubernetes[@]}"; do
      step "build $name $KUBERNETES_VERSION" \
        build_with_progress "$name" "$work_dir/kubernetes" "k8s.io/kubernetes/cmd/$name" "$ldflags"
    done
  fi

  current_step="verify binaries"
  for name in etcd kube-apiserver kube-controller-manager; do
    binary_works "$bin_dir/$name" || die "$bin_dir/$name does not run ('$name --version' failed)"
  done
  current_step=""
  log "all binaries ready in $((SECONDS - script_start))s"
  # Last line on stdout: the bin dir, for callers that capture it.
  printf '%s\n' "$bin_dir"
}

main "$@"
