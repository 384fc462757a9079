#!/usr/bin/env bash
# Packages a built plugin as a ConfigMap and prints the OptimismNetwork stanza that pins it.
#   examples/custom-plugin/configmap.sh <file.wasm> <configmap-name> [key]
# The ConfigMap YAML goes to stdout, the stanza to paste under spec.plugins follows as a
# comment; for example:
#   examples/custom-plugin/configmap.sh target/wasm32-wasip2/plugin/example_chain_policy.wasm \
#     chain-policy | kubectl apply -n <the network's namespace> -f -
# The plugin is loaded exactly as the operator would load it first; a file the operator would
# refuse (too large, wrong contract, forbidden imports) prints the reason and nothing else.
# Runs the operator from this checkout (cargo run), or the binary named by $OPSTACK_OPERATOR.
set -euo pipefail

if (($# < 2 || $# > 3)); then
    echo "usage: $0 <file.wasm> <configmap-name> [key (default plugin.wasm)]" >&2
    exit 2
fi
file=$1 name=$2 key=${3:-plugin.wasm}

if [[ -n "${OPSTACK_OPERATOR:-}" ]]; then
    operator=("$OPSTACK_OPERATOR")
else
    operator=(cargo run -q --manifest-path "$(dirname "$0")/../../Cargo.toml" -p opstack-operator --)
fi
exec "${operator[@]}" plugin configmap --name "$name" --key "$key" "$file"
