//! The chain services: `OpBatcher`, `OpProposer`, `OpChallenger`.
//!
//! Each signs L1 transactions with either a private key from a Secret or a remote signer, never a
//! literal key, and runs as exactly one pod per key.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::common::*;
use crate::opnode::WorkloadPhase;

/// Submits L2 batches to L1 for a sequencer: one op-batcher Deployment (one replica, `Recreate`
/// strategy, so two batchers never run with one key).
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "optimism.io",
    version = "v1alpha1",
    kind = "OpBatcher",
    namespaced,
    status = "OpBatcherStatus",
    shortname = "opb",
    category = "opstack",
    printcolumn = r#"{"name":"Network","type":"string","jsonPath":".spec.optimismNetworkRef.name"}"#,
    printcolumn = r#"{"name":"Sequencer","type":"string","jsonPath":".spec.sequencerRef.name"}"#,
    printcolumn = r#"{"name":"DA","type":"string","jsonPath":".spec.dataAvailability.type"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"NextFork","type":"string","jsonPath":".status.upgrade.nextFork"}"#,
    printcolumn = r#"{"name":"ForkReady","type":"string","jsonPath":".status.conditions[?(@.type==\"UpgradeReady\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.privateKey) != has(self.remoteSigner)").message("set exactly one of spec.privateKey and spec.remoteSigner").field_path(".privateKey"))]
pub struct OpBatcherSpec {
    /// The `OptimismNetwork` (same namespace) this batcher serves.
    pub optimism_network_ref: LocalObjectRef,
    /// The sequencer `OpNode` (same namespace) whose blocks are batched; its execution and
    /// rollup RPCs are found through its Service.
    pub sequencer_ref: LocalObjectRef,
    /// The batcher key (its address must be the chain's batcher), passed as `OP_BATCHER_PRIVATE_KEY`.
    pub private_key: Option<PrivateKeySource>,
    /// A remote signer instead of a private key.
    pub remote_signer: Option<RemoteSigner>,
    /// Image override of the op-batcher container.
    #[serde(default)]
    pub image: ImageSpec,
    /// Channel and frame settings. Unset fields keep the binary's default.
    #[serde(default)]
    pub batching: BatchingConfig,
    /// Where batch data goes on L1.
    #[serde(default)]
    pub data_availability: DataAvailabilityConfig,
    /// Throttling of the sequencer when the batcher falls behind.
    pub throttling: Option<ThrottlingConfig>,
    /// L1 transaction management.
    #[serde(default)]
    pub l1_transaction: TxManagerConfig,
    /// The batcher's JSON-RPC server.
    #[serde(default)]
    pub rpc: ServiceRpcConfig,
    /// Metrics; the network's shared setting when unset.
    pub metrics: Option<MetricsConfig>,
    /// Resources of the container; the network's shared default when unset.
    pub resources: Option<ResourceRequirements>,
}

/// Channel and frame settings of op-batcher.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchingConfig {
    /// Longest a channel stays open, in **L1 blocks** (`--max-channel-duration`; 0 = no limit).
    /// The seed's `10m` had no flag behind it: op-batcher counts L1 blocks.
    #[schemars(range(min = 0))]
    pub max_channel_duration: Option<i64>,
    /// L1 blocks of margin before the sequencing window closes (`--sub-safety-margin`).
    #[schemars(range(min = 0))]
    pub sub_safety_margin: Option<i64>,
    /// Largest L1 transaction in bytes for calldata (`--max-l1-tx-size-bytes`).
    #[schemars(range(min = 1000, max = 131072))]
    pub max_l1_tx_size_bytes: Option<i64>,
    /// Frames per L1 transaction (`--target-num-frames`); with blobs, this is the number of blobs
    /// per transaction (at most 6 since Pectra).
    #[schemars(range(min = 1, max = 21))]
    pub target_num_frames: Option<i32>,
    /// Expected compression ratio, as a decimal string such as `0.4` (`--approx-compr-ratio`).
    #[schemars(pattern(r"^(0?\.[0-9]+|1(\.0+)?)$"))]
    pub approx_compr_ratio: Option<String>,
    /// Compressor (`--compressor`).
    pub compressor: Option<Compressor>,
    /// Batch type (`--batch-type`): `singular` (0) or `span` (1, smaller, since Delta).
    pub batch_type: Option<BatchType>,
    /// How often to poll the sequencer for new blocks (`--poll-interval`).
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub poll_interval: Option<String>,
    /// Most L1 transactions in flight at once (`--max-pending-tx`).
    #[schemars(range(min = 1, max = 1000))]
    pub max_pending_tx: Option<i32>,
}

/// op-batcher compressor.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compressor {
    Shadow,
    Ratio,
    None,
}

/// op-batcher batch type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchType {
    Singular,
    Span,
}

/// Where batch data goes on L1.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataAvailabilityConfig {
    /// `blobs` (EIP-4844, cheapest), `calldata`, or `auto` (whichever is cheaper at the time)
    /// (`--data-availability-type`).
    #[serde(default, rename = "type")]
    pub type_: DataAvailabilityType,
}

/// Data availability type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataAvailabilityType {
    #[default]
    Blobs,
    Calldata,
    Auto,
}

/// Throttling of the sequencer's block building while unsubmitted data piles up
/// (`--throttle.*`). Unset fields keep the binary's default.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThrottlingConfig {
    /// Controller (`--throttle.controller-type`).
    pub controller_type: Option<ThrottleController>,
    /// Backlog in bytes at which throttling starts (`--throttle.unsafe-da-bytes-lower-threshold`; 0 disables throttling).
    #[schemars(range(min = 0))]
    pub unsafe_da_bytes_lower_threshold: Option<i64>,
    /// Backlog in bytes at which throttling is strongest (`--throttle.unsafe-da-bytes-upper-threshold`).
    #[schemars(range(min = 0))]
    pub unsafe_da_bytes_upper_threshold: Option<i64>,
}

/// Throttle controller type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ThrottleController {
    Step,
    Linear,
    Quadratic,
    Pid,
}

/// Observed state of an `OpBatcher`.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpBatcherStatus {
    /// The `metadata.generation` this status was computed from.
    pub observed_generation: Option<i64>,
    /// Summary for humans; tools should read `conditions` (`Ready` on top).
    pub phase: Option<WorkloadPhase>,
    /// `Ready`, `Valid`, `Rendered`, `Applied`, `WorkloadReady`, `UpgradeReady`, `Paused`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Batch submission figures, read from the batcher's metrics where reachable.
    pub batcher_info: Option<BatcherInfo>,
    /// The releases the pods run and the chain's next fork (`UpgradeReady` has the verdict).
    pub upgrade: Option<UpgradeStatus>,
}

/// Batch submission figures, from the batcher's metrics (`op_batcher_default_*`).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatcherInfo {
    /// The last batch transaction confirmed on L1. The metrics give its time only, not its
    /// hash or block.
    pub last_batch_submitted: Option<L1TxRef>,
    /// Channels (batches of L2 blocks) the batcher holds until the L2 safe head passes them:
    /// the one being filled, and those sent or still to send (`channel_queue_length`).
    pub pending_batches: Option<i64>,
    /// Batch transactions confirmed on L1 since the pod started
    /// (`batcher_tx_total{stage="success"}`).
    pub total_batches_submitted: Option<i64>,
}

/// An L1 transaction.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct L1TxRef {
    /// L1 block number.
    pub block_number: Option<i64>,
    /// Transaction hash.
    pub transaction_hash: Option<String>,
    /// When the service saw it confirmed (its metrics' event time), a few seconds after the L1
    /// block's own time.
    pub timestamp: Option<Time>,
}

/// Proposes L2 output roots to L1 by creating dispute games through the DisputeGameFactory:
/// one op-proposer Deployment (one replica, `Recreate`). There is no L2OutputOracle mode:
/// op-proposer removed `--l2oo-address`.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "optimism.io",
    version = "v1alpha1",
    kind = "OpProposer",
    namespaced,
    status = "OpProposerStatus",
    shortname = "opp",
    category = "opstack",
    printcolumn = r#"{"name":"Network","type":"string","jsonPath":".spec.optimismNetworkRef.name"}"#,
    printcolumn = r#"{"name":"GameType","type":"integer","jsonPath":".spec.disputeGame.gameType"}"#,
    printcolumn = r#"{"name":"Interval","type":"string","jsonPath":".spec.proposal.proposalInterval"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"NextFork","type":"string","jsonPath":".status.upgrade.nextFork"}"#,
    printcolumn = r#"{"name":"ForkReady","type":"string","jsonPath":".status.conditions[?(@.type==\"UpgradeReady\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.privateKey) != has(self.remoteSigner)").message("set exactly one of spec.privateKey and spec.remoteSigner").field_path(".privateKey"))]
pub struct OpProposerSpec {
    /// The `OptimismNetwork` (same namespace) this proposer serves.
    pub optimism_network_ref: LocalObjectRef,
    /// The `OpNode` (same namespace) whose op-node serves output roots (`--rollup-rpc`); it
    /// should keep the safe head close to L1 (a replica or the sequencer).
    pub rollup_node_ref: LocalObjectRef,
    /// The proposer key, passed as `OP_PROPOSER_PRIVATE_KEY`.
    pub private_key: Option<PrivateKeySource>,
    /// A remote signer instead of a private key.
    pub remote_signer: Option<RemoteSigner>,
    /// Image override of the op-proposer container.
    #[serde(default)]
    pub image: ImageSpec,
    /// When to propose.
    pub proposal: ProposalConfig,
    /// Which dispute games to create.
    #[serde(default)]
    pub dispute_game: ProposerDisputeGame,
    /// L1 transaction management.
    #[serde(default)]
    pub l1_transaction: TxManagerConfig,
    /// The proposer's JSON-RPC server.
    #[serde(default)]
    pub rpc: ServiceRpcConfig,
    /// Metrics; the network's shared setting when unset.
    pub metrics: Option<MetricsConfig>,
    /// Resources of the container; the network's shared default when unset.
    pub resources: Option<ResourceRequirements>,
}

/// When op-proposer proposes.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProposalConfig {
    /// Time between proposals (`--proposal-interval`), e.g. `1h`.
    #[schemars(length(min = 2, max = 64), pattern(DURATION_PATTERN))]
    pub proposal_interval: String,
    /// How often to check whether a proposal is due (`--poll-interval`).
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub poll_interval: Option<String>,
    /// Propose unfinalized L2 state (`--allow-non-finalized`); for testnets only.
    #[serde(default)]
    pub allow_non_finalized: bool,
}

/// Dispute games the proposer creates.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProposerDisputeGame {
    /// DisputeGameFactory address (`--game-factory-address`); the network's discovered one when unset.
    #[schemars(pattern(ADDRESS_PATTERN))]
    pub factory_addr: Option<String>,
    /// Game type to create (`--game-type`): 0 permissionless cannon, 1 permissioned, 8
    /// cannon-kona, and the super-root types of Upgrade 20: 5 super-permissioned, 9
    /// super-cannon-kona.
    #[serde(default)]
    #[schemars(range(min = 0, max = 4294967295_i64))]
    pub game_type: i64,
    /// For the super-root game types (5, 9): where super roots come from
    /// (`--superroot-rpcs`, with failover), such as op-supernode's per-chain endpoints. Unset:
    /// the op-node of `rollupNodeRef`, which serves the super root of a single chain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 8),
        inner(length(min = 1, max = 2048), pattern(URL_PATTERN))
    )]
    pub super_root_rpcs: Vec<String>,
}

/// Observed state of an `OpProposer`.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpProposerStatus {
    /// The `metadata.generation` this status was computed from.
    pub observed_generation: Option<i64>,
    /// Summary for humans; tools should read `conditions` (`Ready` on top).
    pub phase: Option<WorkloadPhase>,
    /// `Ready`, `Valid`, `Rendered`, `Applied`, `WorkloadReady`, `UpgradeReady`, `Paused`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Proposal figures, read from the proposer's metrics where reachable.
    pub proposer_info: Option<ProposerInfo>,
    /// The releases the pods run and the chain's next fork (`UpgradeReady` has the verdict).
    pub upgrade: Option<UpgradeStatus>,
}

/// Proposal figures, from the proposer's metrics (`op_proposer_default_*`).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProposerInfo {
    /// The last proposal transaction confirmed on L1 without reverting. The metrics give its
    /// time and L2 block only, not its output root, game or hash.
    pub last_proposal_submitted: Option<ProposalRef>,
    /// Proposal transactions confirmed on L1 without reverting since the pod started
    /// (`txmgr_confirm_total{status="success"}`).
    pub total_proposals_submitted: Option<i64>,
    /// When the next proposal is due at the latest: the last one plus
    /// `spec.proposal.proposalInterval` (the proposer skips while its output root is unchanged).
    pub next_proposal_due: Option<Time>,
}

/// One proposal.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProposalRef {
    /// The proposed output root.
    pub output_root: Option<String>,
    /// The L2 block it commits to.
    pub l2_block_number: Option<i64>,
    /// The dispute game created.
    pub game_addr: Option<String>,
    /// Transaction hash.
    pub transaction_hash: Option<String>,
    /// When the proposer saw it confirmed (its metrics' event time), a few seconds after the L1
    /// block's own time.
    pub timestamp: Option<Time>,
}

/// Watches dispute games and defends the correct output: one op-challenger StatefulSet with a
/// volume for its datadir. op-challenger has no RPC server; readiness comes from its metrics.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "optimism.io",
    version = "v1alpha1",
    kind = "OpChallenger",
    namespaced,
    status = "OpChallengerStatus",
    shortname = "opc",
    category = "opstack",
    printcolumn = r#"{"name":"Network","type":"string","jsonPath":".spec.optimismNetworkRef.name"}"#,
    printcolumn = r#"{"name":"GameTypes","type":"string","jsonPath":".spec.gameTypes"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"NextFork","type":"string","jsonPath":".status.upgrade.nextFork"}"#,
    printcolumn = r#"{"name":"ForkReady","type":"string","jsonPath":".status.conditions[?(@.type==\"UpgradeReady\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.privateKey) != has(self.remoteSigner)").message("set exactly one of spec.privateKey and spec.remoteSigner").field_path(".privateKey"),
    validation = Rule::new("(has(self.gameTypes) && size(self.gameTypes) > 0 && !self.gameTypes.exists(t, t in ['cannon', 'cannon-kona', 'super-cannon-kona', 'permissioned', 'super-permissioned'])) || has(self.prestates)").message("cannon and permissioned game types (cannon-kona is the default) need spec.prestates (where to fetch absolute prestates): op-challenger checks the prestate at startup").field_path(".prestates")
)]
pub struct OpChallengerSpec {
    /// The `OptimismNetwork` (same namespace) whose games are watched.
    pub optimism_network_ref: LocalObjectRef,
    /// The `OpNode` (same namespace) whose op-node and execution client answer the challenger's
    /// L2 queries (`--rollup-rpc`, `--l2-eth-rpc`). A replica is best.
    pub rollup_node_ref: LocalObjectRef,
    /// The challenger key, passed as `OP_CHALLENGER_PRIVATE_KEY`.
    pub private_key: Option<PrivateKeySource>,
    /// A remote signer instead of a private key.
    pub remote_signer: Option<RemoteSigner>,
    /// Image override of the op-challenger container.
    #[serde(default)]
    pub image: ImageSpec,
    /// Game types to play (`--game-types`). Unset: op-challenger's own default, `cannon-kona`
    /// only, which "silently stops playing" every other type: list each type the chain's games
    /// use, e.g. `[cannon, cannon-kona, permissioned]` (plus `super-cannon-kona` after Upgrade
    /// 20 on a permissionless chain).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub game_types: Vec<GameType>,
    /// Where absolute prestates come from (needed by the cannon game types).
    pub prestates: Option<PrestatesConfig>,
    /// Which games to watch.
    #[serde(default)]
    pub dispute_game: ChallengerDisputeGame,
    /// Data volume of the challenger's datadir; 50Gi when unset.
    pub storage: Option<StorageSpec>,
    /// Concurrency and polling.
    #[serde(default)]
    pub monitoring: MonitoringConfig,
    /// L1 transaction management.
    #[serde(default)]
    pub l1_transaction: TxManagerConfig,
    /// Metrics; the network's shared setting when unset. Readiness depends on them.
    pub metrics: Option<MetricsConfig>,
    /// Resources of the container; the network's shared default when unset.
    pub resources: Option<ResourceRequirements>,
}

/// A dispute game type op-challenger can play.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GameType {
    Cannon,
    CannonKona,
    Permissioned,
    SuperCannonKona,
    /// Not playable: op-challenger tracks these games' lifecycle by itself and refuses the
    /// name in `--game-types`; the renderer refuses it with that reason. Kept so resources
    /// that name it get that message rather than a schema error.
    SuperPermissioned,
    Fast,
    Alphabet,
}

/// Where op-challenger fetches absolute prestates.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.url) || has(self.cannonUrl) || has(self.cannonKonaUrl)").message("set at least one prestates URL"))]
pub struct PrestatesConfig {
    /// Base URL of prestates for every VM (`--prestates-url`).
    #[schemars(length(min = 1, max = 2048), pattern(URL_PATTERN))]
    pub url: Option<String>,
    /// Base URL of cannon prestates (`--cannon-prestates-url`).
    #[schemars(length(min = 1, max = 2048), pattern(URL_PATTERN))]
    pub cannon_url: Option<String>,
    /// Base URL of cannon-kona prestates (`--cannon-kona-prestates-url`).
    #[schemars(length(min = 1, max = 2048), pattern(URL_PATTERN))]
    pub cannon_kona_url: Option<String>,
}

/// Which games op-challenger watches.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChallengerDisputeGame {
    /// DisputeGameFactory address (`--game-factory-address`); the network's discovered one when unset.
    #[schemars(pattern(ADDRESS_PATTERN))]
    pub factory_addr: Option<String>,
    /// Only these games (`--game-allowlist`); every game when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(pattern(ADDRESS_PATTERN)))]
    pub game_allowlist: Vec<String>,
    /// How far back games are watched (`--game-window`), e.g. `672h`.
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub game_window: Option<String>,
}

/// Concurrency and polling of op-challenger.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringConfig {
    /// Games played at once (`--max-concurrency`); the CPU count when unset.
    #[schemars(range(min = 1, max = 1024))]
    pub max_concurrency: Option<i32>,
    /// L1 polling interval over HTTP (`--http-poll-interval`).
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub http_poll_interval: Option<String>,
    /// Most L1 transactions in flight (`--max-pending-tx`).
    #[schemars(range(min = 1, max = 1000))]
    pub max_pending_tx: Option<i32>,
}

/// Observed state of an `OpChallenger`.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpChallengerStatus {
    /// The `metadata.generation` this status was computed from.
    pub observed_generation: Option<i64>,
    /// Summary for humans; tools should read `conditions` (`Ready` on top).
    pub phase: Option<WorkloadPhase>,
    /// `Ready`, `Valid`, `Rendered`, `Applied`, `WorkloadReady`, `GamesMonitored`, `UpgradeReady`, `Paused`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Game figures, read from the challenger's metrics where reachable.
    pub challenger_info: Option<ChallengerInfo>,
    /// The releases the pods run and the chain's next fork (`UpgradeReady` has the verdict).
    pub upgrade: Option<UpgradeStatus>,
}

/// Game figures, from op-challenger's metrics.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChallengerInfo {
    /// Games in progress among those it tracks (the games within `--game-window`).
    pub active_games: Option<i64>,
    /// Moves (claims posted in games) since the pod started.
    pub total_challenges_made: Option<i64>,
    /// Resolved games among those it tracks, whichever side won.
    pub total_games_resolved: Option<i64>,
    /// The last challenge. Unset: the metrics carry no game address or transaction.
    pub last_challenge: Option<ChallengeRef>,
}

/// One challenge.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeRef {
    /// The game.
    pub game_addr: Option<String>,
    /// Transaction hash.
    pub transaction_hash: Option<String>,
    /// When it was included.
    pub timestamp: Option<Time>,
}
