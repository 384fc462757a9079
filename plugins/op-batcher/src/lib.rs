//! The bundled renderer of `OpBatcher`: one op-batcher Deployment named after the resource,
//! one replica with the `Recreate` strategy (two batchers must never sign with one key), and a
//! ClusterIP Service of the same name with its RPC and metrics ports, through which the operator
//! reads its metrics for the status.
//!
//! Every flag is in `plugins/testdata/flags/op-batcher.txt` (the flags op-batcher defines, read
//! from its source at the commit named in the file's header), and a test checks each rendered
//! flag against it. The batcher key reaches the binary only as `OP_BATCHER_PRIVATE_KEY` from its
//! Secret (why: `opstack_plugin_sdk::op_service`).

use opstack_plugin_sdk::crds::conventions::endpoint;
use opstack_plugin_sdk::crds::releases::Component;
use opstack_plugin_sdk::crds::{
    BatchType, Compressor, DataAvailabilityType, OpBatcherSpec, OptimismNetworkSpec,
};
use opstack_plugin_sdk::op_service::{self, RpcService, ServiceParts, enum_name};
use opstack_plugin_sdk::{
    PluginError, PluginInfo, RenderInput, RenderOutput, ValidatingRenderer, export_renderer,
};

/// Most blobs one transaction may carry (the CRD's `targetNumFrames` documentation).
const MAX_BLOBS_PER_TX: i32 = 6;

pub struct OpBatcherRenderer;

impl ValidatingRenderer for OpBatcherRenderer {
    fn info() -> PluginInfo {
        PluginInfo::new("op-batcher", env!("CARGO_PKG_VERSION"), &["OpBatcher"])
    }

    fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
        render(input)
    }
}

export_renderer!(OpBatcherRenderer);

/// Renders an `OpBatcher` into its Deployment and Service.
pub fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
    let batcher = input.op_batcher()?;
    let network: OptimismNetworkSpec = input.network_spec()?;
    let name = input.name()?;
    let spec = &batcher.spec;
    let mut out = RenderOutput::default();

    let mut parts = ServiceParts::l1_signer(
        "OP_BATCHER",
        input,
        &network,
        spec.private_key.as_ref(),
        spec.remote_signer.as_ref(),
    )?;
    let target = &spec.sequencer_ref.name;
    let l2 = op_service::require_endpoint(input, "sequencerRef", target, endpoint::EXECUTION_RPC)?;
    let rollup = op_service::require_endpoint(input, "sequencerRef", target, endpoint::ROLLUP_RPC)?;
    parts.flags.set("l2-eth-rpc", l2).set("rollup-rpc", rollup);
    batching_flags(&mut parts, spec, &mut out)?;
    let service = RpcService {
        binary: Component::OpBatcher,
        component: "batcher",
        image: &spec.image,
        tx: &spec.l1_transaction,
        rpc: &spec.rpc,
        metrics: spec.metrics.as_ref(),
        resources: spec.resources.as_ref(),
    };
    out.push(&service.deployment(&name, parts, &network))?;
    out.push(&service.service(&name, &network))?;
    Ok(out)
}

/// Data availability, channel, frame and throttle settings, with today's flag names.
fn batching_flags(
    parts: &mut ServiceParts,
    spec: &OpBatcherSpec,
    out: &mut RenderOutput,
) -> Result<(), PluginError> {
    let batching = &spec.batching;
    let da = spec.data_availability.type_;
    // Always rendered: the binary's default is `calldata`, the API's is `blobs`.
    parts.flags.set("data-availability-type", enum_name(&da));
    if batching.compressor == Some(Compressor::None) {
        return Err(PluginError::invalid(
            "spec.batching.compressor: `none` is not accepted by today's op-batcher \
             (--compressor takes ratio or shadow); use `shadow` (the default) or `ratio`",
        ));
    }
    if da != DataAvailabilityType::Calldata
        && batching
            .target_num_frames
            .is_some_and(|n| n > MAX_BLOBS_PER_TX)
    {
        out.warn(format!(
            "spec.batching.targetNumFrames is more than {MAX_BLOBS_PER_TX}: with blobs it is the \
             number of blobs per transaction, and L1 takes at most {MAX_BLOBS_PER_TX} per transaction"
        ));
    }
    parts
        .flags
        .set_opt("max-channel-duration", batching.max_channel_duration)
        .set_opt("sub-safety-margin", batching.sub_safety_margin)
        .set_opt("max-l1-tx-size-bytes", batching.max_l1_tx_size_bytes)
        .set_opt("target-num-frames", batching.target_num_frames)
        .set_opt("approx-compr-ratio", batching.approx_compr_ratio.as_deref())
        .set_opt("compressor", batching.compressor.map(|c| enum_name(&c)))
        .set_opt(
            "batch-type",
            batching.batch_type.map(|t| match t {
                BatchType::Singular => 0,
                BatchType::Span => 1,
            }),
        )
        .set_opt("poll-interval", batching.poll_interval.as_deref())
        .set_opt("max-pending-tx", batching.max_pending_tx);
    if let Some(throttle) = &spec.throttling {
        parts
            .flags
            .set_opt(
                "throttle.controller-type",
                throttle.controller_type.map(|c| enum_name(&c)),
            )
            .set_opt(
                "throttle.unsafe-da-bytes-lower-threshold",
                throttle.unsafe_da_bytes_lower_threshold,
            )
            .set_opt(
                "throttle.unsafe-da-bytes-upper-threshold",
                throttle.unsafe_da_bytes_upper_threshold,
            );
    }
    Ok(())
}
