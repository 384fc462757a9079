//! The bundled renderer of `OpProposer`: one op-proposer Deployment named after the resource,
//! one replica with the `Recreate` strategy (two proposers must never sign with one key), and a
//! ClusterIP Service of the same name with its RPC and metrics ports, through which the operator
//! reads its metrics for the status.
//!
//! op-proposer only proposes through the DisputeGameFactory: `--l2oo-address` was removed
//! (ethereum-optimism/optimism `4de6002bf9`, "Remove l2oo support (#18706)"; noted in
//! `plugins/testdata/flags/op-proposer.txt`), so it is never rendered. The key reaches the binary
//! only as `OP_PROPOSER_PRIVATE_KEY` from its Secret (why: `opstack_plugin_sdk::op_service`).

use opstack_plugin_sdk::crds::OptimismNetworkSpec;
use opstack_plugin_sdk::crds::conventions::endpoint;
use opstack_plugin_sdk::crds::releases::{self, Component};
use opstack_plugin_sdk::op_service::{self, RpcService, ServiceParts};
use opstack_plugin_sdk::{
    PluginError, PluginInfo, RenderInput, RenderOutput, ValidatingRenderer, export_renderer,
};

/// Registry name of the contract the host discovers (or the network pins).
const FACTORY_CONTRACT: &str = "DisputeGameFactoryProxy";
/// The game types whose claims are super roots (5 super-permissioned, 9 super-cannon-kona:
/// op-challenger/game/types/game_type.go of ethereum-optimism/optimism@v1.19.6).
const SUPER_ROOT_GAME_TYPES: [i64; 2] = [5, 9];

pub struct OpProposerRenderer;

impl ValidatingRenderer for OpProposerRenderer {
    fn info() -> PluginInfo {
        PluginInfo::new("op-proposer", env!("CARGO_PKG_VERSION"), &["OpProposer"])
    }

    fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
        render(input)
    }
}

export_renderer!(OpProposerRenderer);

/// Renders an `OpProposer` into its Deployment and Service.
pub fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
    let proposer = input.op_proposer()?;
    let network: OptimismNetworkSpec = input.network_spec()?;
    let name = input.name()?;
    let spec = &proposer.spec;
    let mut out = RenderOutput::default();

    let factory = spec
        .dispute_game
        .factory_addr
        .as_deref()
        .or_else(|| input.contract(FACTORY_CONTRACT))
        .ok_or_else(|| {
            PluginError::invalid(format!(
                "spec.disputeGame.factoryAddr: no DisputeGameFactory address is known for \
                 OptimismNetwork {}; set spec.disputeGame.factoryAddr (or the network's \
                 spec.contractAddresses.disputeGameFactoryAddr), or let discovery find it \
                 (spec.contractAddresses.systemConfigAddr with discoveryMethod auto)",
                input.network.name
            ))
        })?;

    let mut parts = ServiceParts::l1_signer(
        "OP_PROPOSER",
        input,
        &network,
        spec.private_key.as_ref(),
        spec.remote_signer.as_ref(),
    )?;
    let rollup = op_service::require_endpoint(
        input,
        "rollupNodeRef",
        &spec.rollup_node_ref.name,
        endpoint::ROLLUP_RPC,
    )?;
    // Output-root games read the rollup node (--rollup-rpc); the super-root games of Upgrade
    // 20 read super roots instead (--superroot-rpcs), never both (op-proposer's config check).
    let game = &spec.dispute_game;
    if SUPER_ROOT_GAME_TYPES.contains(&game.game_type) {
        let image = spec.image.or_release(Component::OpProposer);
        let version = releases::table().version_of(Component::OpProposer, &image);
        let flag = releases::table().flag_name(Component::OpProposer, "superroot-rpcs", &version);
        let sources = if game.super_root_rpcs.is_empty() {
            rollup.to_owned()
        } else {
            game.super_root_rpcs.join(",")
        };
        parts.flags.set(flag, sources);
    } else if !game.super_root_rpcs.is_empty() {
        return Err(PluginError::invalid(format!(
            "spec.disputeGame.superRootRpcs is only for the super-root game types ({}); game \
             type {} proposes output roots read from spec.rollupNodeRef: remove \
             superRootRpcs or set the game type",
            SUPER_ROOT_GAME_TYPES.map(|t| t.to_string()).join(", "),
            game.game_type
        )));
    } else {
        parts.flags.set("rollup-rpc", rollup);
    }
    parts
        .flags
        .set("game-factory-address", factory)
        .set("game-type", spec.dispute_game.game_type)
        .set("proposal-interval", &spec.proposal.proposal_interval)
        .set_opt("poll-interval", spec.proposal.poll_interval.as_deref())
        .switch_if("allow-non-finalized", spec.proposal.allow_non_finalized);
    if spec.proposal.allow_non_finalized {
        out.warn(
            "spec.proposal.allowNonFinalized proposes L2 state derived from unfinalized L1 \
             blocks: an L1 reorg can make a proposal wrong; use it on testnets only",
        );
    }
    let service = RpcService {
        binary: Component::OpProposer,
        component: "proposer",
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
