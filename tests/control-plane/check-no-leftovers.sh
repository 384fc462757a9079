#!/usr/bin/env bash
# Fails if a process started by the test harness (tests/harness) is still alive.
#
# The harness appends "<pid> <start time> <name>" for every process it starts to
#   $OPSTACK_HARNESS_PID_FILE, or by default
#   ${OPSTACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opstack-operator}/harness-pids/<checkout>.pids
# where <checkout> is this checkout's real path with '/' replaced by '_' (one file per
# checkout, so a developer's checkout and CI's fresh clone never mix their records).
# Run it after the tests, with the same OPSTACK_HARNESS_PID_FILE / OPSTACK_CACHE_DIR.
#
# A PID counts as ours only if /proc/<pid>/stat still shows the recorded start time: a PID
# reused by an unrelated process later is not a leftover. Zombies (exited, not yet reaped)
# are not counted either: they hold no resources but a PID.
#
# Afterwards the record is truncated; lines of processes still alive are kept, so they are
# reported again until they are gone.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
checkout="$(cd "$script_dir/../.." && pwd -P)"
cache_root="${OPSTACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opstack-operator}"
pid_file="${OPSTACK_HARNESS_PID_FILE:-$cache_root/harness-pids/${checkout//\//_}.pids}"

log() { printf '[check-no-leftovers] %s\n' "$*" >&2; }

if [[ ! -s "$pid_file" ]]; then
  log "no processes recorded in $pid_file"
  exit 0
fi

# Prints "<state> <start time>" of a running process, nothing if there is none.
proc_state_and_start() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  # Field 2 (comm) is in parentheses and may hold spaces; fields from 3 on follow the last ')'.
  local -a fields
  read -r -a fields <<<"${stat##*)}"
  # fields[0] is field 3 (state); field 22 (start time) is fields[19].
  printf '%s %s\n' "${fields[0]}" "${fields[19]}"
}

recorded=0
leftovers=()
still_alive_lines=()
while read -r pid start_time name; do
  [[ -n "${pid:-}" ]] || continue
  recorded=$((recorded + 1))
  read -r state actual_start <<<"$(proc_state_and_start "$pid")" || true
  [[ -n "${state:-}" ]] || continue
  [[ "$start_time" == "?" || "$start_time" == "$actual_start" ]] || continue
  [[ "$state" != "Z" ]] || continue
  leftovers+=("$pid $name: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)")
  still_alive_lines+=("$pid $start_time $name")
done <"$pid_file"

if [[ ${#still_alive_lines[@]} -gt 0 ]]; then
  printf '%s\n' "${still_alive_lines[@]}" >"$pid_file"
else
  : >"$pid_file"
fi

if [[ ${#leftovers[@]} -gt 0 ]]; then
  log "FAIL: ${#leftovers[@]} of $recorded processes started by the test harness are still running:"
  for leftover in "${leftovers[@]}"; do
    log "  $leftover"
  done
  log "(record: $pid_file)"
  exit 1
fi
log "ok: none of the $recorded processes started by the test harness is running"
