#!/usr/bin/env bash
# Builds every WebAssembly guest of the repository into one directory, where the tests find them:
#   ${CARGO_TARGET_DIR:-target}/wasm32-wasip2/plugin/<crate_name>.wasm       (every cdylib plugin crate)
#   ${CARGO_TARGET_DIR:-target}/wasm32-wasip2/plugin/misbehaving-<feature>.wasm  (hostile test plugins)
# Tests that need a plugin fail (never skip) with a message naming this script when it is missing.
# Usage: plugins/build.sh        (from anywhere; idempotent, incremental)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi

target_dir=${CARGO_TARGET_DIR:-target}
out="$target_dir/wasm32-wasip2/plugin"
build=(cargo build --quiet --profile plugin --target wasm32-wasip2)

# Every plugin crate: a cdylib under plugins/, tests/test-plugins/ or examples/, except the one built
# per feature. Examples are built apart, see below.
packages=()
examples=()  # package names
while IFS= read -r manifest; do
    grep -q 'cdylib' "$manifest" || continue
    name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -n1)
    [[ "$name" == test-plugin-misbehaving ]] && continue
    if [[ "$manifest" == examples/* ]]; then
        examples+=("$name")
    else
        packages+=(-p "$name")
    fi
done < <(find plugins tests/test-plugins examples -name Cargo.toml -not -path '*/target/*' | sort)

if ((${#packages[@]})); then
    echo "building plugins: ${packages[*]//-p /}"
    "${build[@]}" "${packages[@]}"
fi

# An example may wrap a bundled plugin, linking it without its `export` feature. Cargo builds every
# crate type of a dependency, and a cdylib's file in deps/ carries no hash, so in the same target
# directory that build rewrites the bundled <crate>.wasm (a hard link to it) with one exporting
# nothing; in the same invocation, feature unification would instead turn `export` on and export
# two worlds. So examples get a target directory of their own, and only their .wasm is copied here.
if ((${#examples[@]})); then
    echo "building examples: ${examples[*]}"
    examples_target="$target_dir/examples"
    "${build[@]}" --target-dir "$examples_target" "${examples[@]/#/--package=}"
    for package in "${examples[@]}"; do
        stem=${package//-/_}
        cp "$examples_target/wasm32-wasip2/plugin/$stem.wasm" "$out/$stem.wasm.tmp"
        mv "$out/$stem.wasm.tmp" "$out/$stem.wasm"
    done
fi

misbehaviours=(endless-loop memory-bomb memory-hold huge-output deep-recursion panic invalid-json forbidden-import
    wrong-major forbidden-kind foreign-namespace privileged-pod foreign-secret neighbour)
for feature in "${misbehaviours[@]}"; do
    "${build[@]}" -p test-plugin-misbehaving --features "$feature"
    cp "$out/test_plugin_misbehaving.wasm" "$out/misbehaving-$feature.wasm.tmp"
    mv "$out/misbehaving-$feature.wasm.tmp" "$out/misbehaving-$feature.wasm"
done
# The featureless artifact is whichever feature ran last; do not leave it around to be mistaken.
rm -f "$out/test_plugin_misbehaving.wasm"

echo "plugins in $out:"
ls -l "$out"/*.wasm | awk '{printf "  %9d  %s\n", $5, $NF}'
