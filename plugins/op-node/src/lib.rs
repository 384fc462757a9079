//! The bundled renderer of `OpNode`: op-node and its execution client (op-reth by default, or
//! op-geth) in one pod of a StatefulSet, with the Services other components reach it through.
//!
//! What it renders (names per `plugins/CONVENTIONS.md`):
//! - StatefulSet `<cr>`: replicas 1, `serviceName: <cr>-p2p`, both containers, volume claim
//!   templates `data` (execution client, `storage.size` or 1Ti) and `op-node` (1Gi: peerstore,
//!   discovery DB, safe-head DB), claims retained on delete and scale-down;
//! - Service `<cr>`: JSON-RPC (EL http/ws, op-node rpc) and metrics; never the Engine API;
//! - headless Service `<cr>-p2p`: op-node p2p and EL p2p, each TCP and UDP;
//! - a sequencer's NetworkPolicy `<cr>`: its RPC only from the chain's components and the
//!   operator, p2p and metrics from anywhere, nothing else (the Engine API).
//!
//! Flags come only from the binaries' flag lists (`plugins/testdata/flags/`, checked by the
//! tests); keys and the JWT only as Secret-mounted files or `secretKeyRef` env vars.

mod op_geth;
mod op_node;
mod op_reth;
mod plan;
mod workload;

use opstack_plugin_sdk::{PluginError, PluginInfo, RenderInput, RenderOutput, Renderer};

pub use plan::{GENERATED_JWT_KEY, GENERATED_P2P_KEY, op_reth_chain_name};

/// The OpNode renderer.
pub struct OpNodeRenderer;

impl Renderer for OpNodeRenderer {
    fn info() -> PluginInfo {
        PluginInfo::new("op-node", env!("CARGO_PKG_VERSION"), &["OpNode"])
    }

    fn validate(input: &RenderInput) -> Result<Vec<String>, PluginError> {
        plan::Plan::new(input).map(|plan| plan.warnings)
    }

    fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
        render(input)
    }
}

// Behind a feature so a wrapping renderer can link this crate without exporting it.
#[cfg(feature = "export")]
opstack_plugin_sdk::export_renderer!(OpNodeRenderer);

/// Renders natively (the same code the plugin runs).
pub fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
    let plan = plan::Plan::new(input)?;
    let mut out = RenderOutput::default();
    out.push(&workload::statefulset(&plan))?;
    out.push(&workload::rpc_service(&plan))?;
    out.push(&workload::p2p_service(&plan))?;
    if plan.sequencer {
        out.push(&workload::sequencer_network_policy(&plan))?;
    }
    for warning in &plan.warnings {
        out.warn(warning.clone());
    }
    Ok(out)
}
