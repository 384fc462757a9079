//! The default plugins, compiled into the binary by `build.rs`.

/// The bundled renderer of `kind`, as `.wasm` bytes.
pub fn renderer(kind: &str) -> Option<&'static [u8]> {
    Some(match kind {
        "OptimismNetwork" => {
            include_bytes!(concat!(env!("OUT_DIR"), "/plugin_optimism_network.wasm"))
        }
        "OpNode" => include_bytes!(concat!(env!("OUT_DIR"), "/plugin_op_node.wasm")),
        "OpBatcher" => include_bytes!(concat!(env!("OUT_DIR"), "/plugin_op_batcher.wasm")),
        "OpProposer" => include_bytes!(concat!(env!("OUT_DIR"), "/plugin_op_proposer.wasm")),
        "OpChallenger" => include_bytes!(concat!(env!("OUT_DIR"), "/plugin_op_challenger.wasm")),
        _ => return None,
    })
}

/// Every kind with a bundled renderer, in the order a chain is rendered (network first).
pub const KINDS: &[&str] = &[
    "OptimismNetwork",
    "OpNode",
    "OpBatcher",
    "OpProposer",
    "OpChallenger",
];
