# Shared by the setup scripts that build test tools (control plane, node, L1, OP Stack): logging,
# named steps, Go builds with progress output, and the cache layout. Source it after setting
# SETUP_NAME (the log prefix):
#
#   SETUP_NAME="node setup"
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib/build.sh"
#
# Every tool is built once per machine into
#   ${OPSTACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opstack-operator}/<part>/<version key>/
# so fresh clones (CI) on the same machine reuse it. The Rust harness computes the same paths.

: "${SETUP_NAME:?set SETUP_NAME before sourcing tests/lib/build.sh}"

cache_root="${OPSTACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opstack-operator}"

# Never let a go.mod's toolchain line send Go off to download another toolchain: only the module
# proxy is reachable, and a clear "needs newer Go" error beats a network timeout.
export GOTOOLCHAIN=local
# Wrapper modules start without a go.sum; let the go command fill in requirements.
export GOFLAGS=-mod=mod

script_start=$SECONDS
current_step=""
# Where build logs go; a script sets it before its first build.
work_dir="${work_dir:-$cache_root/build}"

log() { printf '[%s] %s\n' "$SETUP_NAME" "$*" >&2; }

die() {
  log "error: $*"
  exit 1
}

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
  current_step=""
}

check_go() {
  command -v go >/dev/null || die "go is not on PATH; the test tools are built from Go modules"
  log "using $(go version); GOPROXY=$(go env GOPROXY)"
}

# Takes a lock file so two runs at once (a developer and CI on one machine) do not build into
# the same files; the second waits for the first and then finds the cache warm.
lock_or_wait() {
  local lock_file="$1"
  mkdir -p "$(dirname "$lock_file")"
  exec 9>"$lock_file"
  if command -v flock >/dev/null && ! flock -n 9; then
    log "another setup is building into this cache; waiting for it to finish"
    flock 9
  fi
}

# Runs a long build command in the background with its output in a log, printing every 30 s
# how many lines (for `go build -v`: packages) it has written so far.
#   run_with_progress <name> <log file> <command...>
run_with_progress() {
  local name="$1" build_log="$2"
  shift 2
  "$@" >"$build_log" 2>&1 &
  local build_pid=$!
  local started=$SECONDS
  while kill -0 "$build_pid" 2>/dev/null; do
    sleep 5
    if kill -0 "$build_pid" 2>/dev/null && (((SECONDS - started) % 30 < 5)); then
      log "  $name: $(wc -l <"$build_log") packages compiled, $((SECONDS - started))s elapsed"
    fi
  done
  if ! wait "$build_pid"; then
    log "build of $name failed; last lines of $build_log:"
    tail -n 40 "$build_log" >&2
    return 1
  fi
  log "  $name: built in $((SECONDS - started))s"
}

# go build of one package into <output>, through a partial file renamed only once complete, so a
# killed build never leaves a binary that looks cached.
#   go_build <name> <module dir> <package> <ldflags> <output> [extra go build args...]
go_build() {
  local name="$1" module_dir="$2" package="$3" ldflags="$4" output="$5"
  shift 5
  mkdir -p "$(dirname "$output")" "$work_dir"
  local partial
  partial="$(dirname "$output")/.$(basename "$output").partial"
  log "building $name from $package (cold builds take minutes on 2 cores; log: $work_dir/build-$name.log)"
  run_with_progress "$name" "$work_dir/build-$name.log" \
    bash -c 'cd "$1" && shift && exec go build -v -trimpath "$@"' _ "$module_dir" \
    -ldflags "$ldflags" "$@" -o "$partial" "$package" || {
    rm -f "$partial"
    return 1
  }
  mv -f "$partial" "$output"
  log "  $name: $(du -h "$output" | cut -f1)"
}

# Downloads module@version through the proxy (from inside <dir>) and prints one field of
# `go mod download -json` (GoMod: its go.mod's path; Dir: where its source was extracted).
module_field() {
  local dir="$1" module_at_version="$2" field="$3" json
  mkdir -p "$dir"
  json="$(cd "$dir" && GOFLAGS= go mod download -json "$module_at_version")" ||
    die "go mod download $module_at_version failed: $json"
  sed -n "s/^[[:space:]]*\"$field\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" <<<"$json"
}

gomod_of() { module_field "$1" "$2" GoMod; }

# Whether a cached binary runs: a half-written file from a killed build must not count.
#   runs <binary> [args that make it print its version]
runs() {
  local binary="$1"
  shift
  [[ -x "$binary" ]] && "$binary" "$@" >/dev/null 2>&1
}

finish() {
  log "all ready in $((SECONDS - script_start))s"
}
