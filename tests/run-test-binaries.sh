#!/usr/bin/env bash
# Runs the test binaries of a cargo selection, JOBS at a time, as `cargo test --no-fail-fast`
# would one after the other: each in its package's directory, every binary to the end, the
# output of each printed whole when it is done (never interleaved), a summary of failures last.
#
# Most of the suite's binaries wait on a real API server or L1 node more than they compute, so
# two at a time on two cores take about half as long. Doctests are not binaries: run them with
# `cargo test --doc`.
#
# Usage: tests/run-test-binaries.sh JOBS <cargo test selection and flags>
#   e.g. tests/run-test-binaries.sh 2 --target x86_64-unknown-linux-musl --workspace
set -uo pipefail

jobs=$1
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The longest first (measured, BENCHMARKS.md), so no lane is left with one long binary at the end.
first_names=" reconcile custom_plugins devnet_chain sandbox upgrades garbage_collection "

# One line per test binary: executable, package directory, "package-dir-name/target-name".
cargo test "$@" --no-run --message-format=json 2>"$work/build.log" |
    grep '"reason":"compiler-artifact"' |
    grep -E '"profile":\{[^}]*"test":true\}' |
    sed -nE 's|.*"manifest_path":"([^"]*)/Cargo.toml".*"target":\{[^}]*"name":"([^"]*)".*"executable":"([^"]*)".*|\3\t\1\t\2|p' \
        >"$work/all"
build_status=${PIPESTATUS[0]}
if ((build_status != 0)); then
    cat "$work/build.log" >&2
    echo "FAILED: building the tests (cargo exit $build_status)" >&2
    exit 1
fi
while IFS=$'\t' read -r exe dir name; do
    if [[ "$first_names" == *" $name "* ]]; then
        printf '%s\t%s\t%s\n' "$exe" "$dir" "$name"
    fi
done <"$work/all" >"$work/queue"
while IFS=$'\t' read -r exe dir name; do
    if [[ "$first_names" != *" $name "* ]]; then
        printf '%s\t%s\t%s\n' "$exe" "$dir" "$name"
    fi
done <"$work/all" >>"$work/queue"

mapfile -t queue <"$work/queue"
if ((${#queue[@]} == 0)); then
    echo "FAILED: the selection has no test binary" >&2
    exit 1
fi

declare -A label
failures=()
printed=0

# Prints every finished binary not printed yet, in the order they finished.
report_finished() {
    local rc_file i
    for rc_file in $(ls -tr "$work"/*.rc 2>/dev/null); do
        i=$(basename "$rc_file" .rc)
        [[ -e "$work/$i.printed" ]] && continue
        touch "$work/$i.printed"
        local rc seconds
        read -r rc seconds <"$rc_file"
        echo "==> ${label[$i]}: $seconds s (exit $rc)"
        cat "$work/$i.log"
        ((rc == 0)) || failures+=("${label[$i]}")
        printed=$((printed + 1))
    done
}

running=0
for i in "${!queue[@]}"; do
    IFS=$'\t' read -r exe dir name <<<"${queue[$i]}"
    while ((running >= jobs)); do
        wait -n
        running=$((running - 1))
        report_finished
    done
    label[$i]="$(basename "$dir") $name"
    (
        t0=$SECONDS
        cd "$dir" && "$exe" >"$work/$i.log" 2>&1
        echo "$? $((SECONDS - t0))" >"$work/$i.rc.tmp"
        mv "$work/$i.rc.tmp" "$work/$i.rc"
    ) &
    running=$((running + 1))
done
wait
report_finished

echo "==> ${#queue[@]} test binaries, $jobs at a time: ${#failures[@]} failed"
if ((${#failures[@]} > 0)); then
    printf '    failed: %s\n' "${failures[@]}"
    exit 1
fi
