//! `OpNode`: op-node (consensus) and an execution client (op-reth or op-geth) in one pod.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::common::*;

/// One L2 node: op-node plus an execution client in one pod of a StatefulSet, with its data on
/// volumes that outlive the resource. A `sequencer` builds blocks (at most one per network);
/// a `replica` follows the chain and forwards transactions to the sequencer.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "optimism.io",
    version = "v1alpha1",
    kind = "OpNode",
    namespaced,
    status = "OpNodeStatus",
    shortname = "opn",
    category = "opstack",
    printcolumn = r#"{"name":"Network","type":"string","jsonPath":".spec.optimismNetworkRef.name"}"#,
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.nodeType"}"#,
    printcolumn = r#"{"name":"Client","type":"string","jsonPath":".spec.executionClient"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Head","type":"integer","jsonPath":".status.nodeInfo.chainHead.blockNumber"}"#,
    printcolumn = r#"{"name":"Safe","type":"integer","jsonPath":".status.nodeInfo.safeHead.blockNumber"}"#,
    printcolumn = r#"{"name":"Peers","type":"integer","jsonPath":".status.nodeInfo.peerCount"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"NextFork","type":"string","jsonPath":".status.upgrade.nextFork"}"#,
    printcolumn = r#"{"name":"ForkReady","type":"string","jsonPath":".status.conditions[?(@.type==\"UpgradeReady\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.nodeType == 'replica' || !has(self.sequencerRef)").message("spec.sequencerRef is only for replicas: a sequencer does not follow another sequencer").field_path(".sequencerRef"),
    validation = Rule::new("self.nodeType == 'replica' || !has(self.sequencerUrl)").message("spec.sequencerUrl is only for replicas").field_path(".sequencerUrl"),
    validation = Rule::new("!(has(self.sequencerRef) && has(self.sequencerUrl))").message("set at most one of spec.sequencerRef and spec.sequencerUrl").field_path(".sequencerRef"),
    validation = Rule::new("self.nodeType == 'sequencer' || !has(self.opNode) || !has(self.opNode.sequencer)").message("spec.opNode.sequencer is only for sequencers").field_path(".opNode.sequencer"),
    validation = Rule::new("(has(self.executionClient) && self.executionClient == 'op-geth') || !has(self.opGeth)").message("spec.opGeth is set but spec.executionClient is not op-geth").field_path(".opGeth"),
    validation = Rule::new("!has(self.executionClient) || self.executionClient == 'op-reth' || !has(self.opReth)").message("spec.opReth is set but spec.executionClient is not op-reth").field_path(".opReth")
)]
pub struct OpNodeSpec {
    /// The `OptimismNetwork` (same namespace) this node belongs to.
    pub optimism_network_ref: LocalObjectRef,

    /// `sequencer` builds blocks; `replica` follows the chain.
    pub node_type: NodeType,

    /// For a replica: the sequencer `OpNode` (same namespace) to forward transactions to. The
    /// operator resolves its Service; no URL needs to be written by hand.
    pub sequencer_ref: Option<LocalObjectRef>,

    /// For a replica of a chain whose sequencer runs elsewhere: its public endpoint, e.g.
    /// `https://sepolia-sequencer.optimism.io`.
    #[schemars(length(min = 1, max = 2048), pattern(URL_PATTERN))]
    pub sequencer_url: Option<String>,

    /// op-node settings.
    #[serde(default)]
    pub op_node: OpNodeConfig,

    /// The execution client. op-reth is the default; op-geth reached end of support in 2026
    /// and does not follow upgrades after Karst, so choose it only for an existing datadir.
    #[serde(default)]
    pub execution_client: ExecutionClient,

    /// op-reth settings (when `executionClient` is `op-reth`).
    pub op_reth: Option<OpRethConfig>,

    /// op-geth settings (when `executionClient` is `op-geth`).
    pub op_geth: Option<OpGethConfig>,

    /// Resources of each container; the network's shared defaults when unset.
    #[serde(default)]
    pub resources: NodeResources,

    /// How the node's RPC and p2p ports are exposed.
    #[serde(default)]
    pub service: ServiceSpec,
}

/// Role of a node.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    Sequencer,
    Replica,
}

/// Execution client of a node.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionClient {
    #[default]
    OpReth,
    OpGeth,
}

/// How op-node syncs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// The execution client syncs itself to the tip (snap/staged sync), then op-node derives.
    #[default]
    ExecutionLayer,
    /// op-node derives every block from L1 and drives the execution client block by block.
    ConsensusLayer,
}

/// op-node settings.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpNodeConfig {
    /// Image override of the op-node container.
    #[serde(default)]
    pub image: ImageSpec,
    /// Sync mode (`--syncmode`): `execution-layer` (the execution client snap/staged-syncs to
    /// the tip from its P2P peers, then op-node derives) or `consensus-layer` (op-node derives
    /// every block from L1 and drives the execution client block by block). Unset: the one that
    /// works for this node: `consensus-layer` for a sequencer (at genesis there is no one to
    /// sync from, and with execution-layer it would wait for peers forever) and for a node of a
    /// custom chain whose execution client has no bootnodes (nothing to snap-sync from);
    /// `execution-layer` for a replica of a registry network, whose client knows its bootnodes.
    pub sync_mode: Option<SyncMode>,
    /// Deprecated, ignored from op-node v1.19.1 on: op-node removed the Req/Resp sync protocol
    /// (`--syncmode.req-resp` is a no-op there). Passed only to older releases; the renderer
    /// warns when it is set for a release without it.
    pub req_resp_sync: Option<bool>,
    /// Keep this many L1 blocks behind the L1 head when deriving (`--verifier.l1-confs`).
    #[schemars(range(min = 0, max = 1000))]
    pub verifier_l1_confs: Option<i32>,
    /// Trust the L1 RPC's answers without verifying them (`--l1.trustrpc`); only for an L1
    /// node you run yourself.
    #[serde(default)]
    pub l1_trust_rpc: bool,
    /// Kind of L1 RPC provider, to fetch receipts the cheapest way (`--l1.rpckind`).
    pub l1_rpc_kind: Option<L1RpcKind>,
    /// How often op-node asks L1 for a new head (`--l1.http-poll-interval`, e.g. `2s`; the
    /// binary's default, 12s, when unset). Set it to the L1's block time on a faster L1.
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub l1_http_poll_interval: Option<String>,
    /// How often op-node asks L1 for the safe and finalized heads
    /// (`--l1.epoch-poll-interval`; the binary's default, 6m24s, one L1 epoch, when unset).
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub l1_epoch_poll_interval: Option<String>,
    /// Peer-to-peer networking.
    #[serde(default)]
    pub p2p: P2pConfig,
    /// op-node's JSON-RPC server.
    #[serde(default)]
    pub rpc: OpNodeRpcConfig,
    /// Sequencer settings (sequencer nodes only).
    pub sequencer: Option<SequencerConfig>,
    /// The Engine API between op-node and the execution client (always inside the pod).
    #[serde(default)]
    pub engine: EngineConfig,
}

/// Kind of L1 RPC provider (`--l1.rpckind`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum L1RpcKind {
    Alchemy,
    Quicknode,
    Infura,
    Parity,
    Nethermind,
    DebugGeth,
    Erigon,
    Basic,
    Any,
    Standard,
}

/// op-node peer-to-peer networking. There is no bandwidth limit: op-node has no flag for one.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct P2pConfig {
    /// Join the p2p network (blocks gossip). Off means `--p2p.disable`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// TCP and UDP port of libp2p and discv5 (`--p2p.listen.tcp`, `--p2p.listen.udp`), 9222 by default.
    #[serde(default = "default_op_node_p2p_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub listen_port: i32,
    /// Peer discovery. Turn it off on a sequencer and list its peers in `staticPeers`.
    #[serde(default)]
    pub discovery: P2pDiscovery,
    /// Peers to connect to and keep (`--p2p.static`), as multiaddrs such as
    /// `/dns4/replica-0.example/tcp/9222/p2p/16Uiu2HA…`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 512)))]
    pub static_peers: Vec<String>,
    /// Peer scoring (`--p2p.scoring`).
    pub peer_scoring: Option<PeerScoring>,
    /// Low and high tide of the peer count (`--p2p.peers.lo`, `--p2p.peers.hi`).
    pub peers: Option<PeerTide>,
    /// The node's p2p identity key (secp256k1). Generated and kept in a Secret by default.
    #[serde(default)]
    pub private_key: KeySource,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen_port: default_op_node_p2p_port(),
            discovery: P2pDiscovery::default(),
            static_peers: Vec::new(),
            peer_scoring: None,
            peers: None,
            private_key: KeySource::default(),
        }
    }
}

/// Peer discovery of op-node.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct P2pDiscovery {
    /// Discover peers with discv5 (off means `--p2p.no-discovery`).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Bootnodes as base64 ENRs (`--p2p.bootnodes`); the network's own when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 1024)))]
    pub bootnodes: Vec<String>,
}

impl Default for P2pDiscovery {
    fn default() -> Self {
        Self {
            enabled: true,
            bootnodes: Vec::new(),
        }
    }
}

/// Peer scoring strategy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PeerScoring {
    None,
    Light,
}

/// Peer count tides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.lo <= self.hi").message("peers.lo must not exceed peers.hi"))]
pub struct PeerTide {
    /// Look for more peers below this many (`--p2p.peers.lo`).
    #[schemars(range(min = 0, max = 1000))]
    pub lo: i32,
    /// Start pruning peers above this many (`--p2p.peers.hi`).
    #[schemars(range(min = 0, max = 1000))]
    pub hi: i32,
}

/// op-node's JSON-RPC server. It listens on all interfaces so the Service can reach it; there
/// is no CORS setting because op-node has no flag for one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpNodeRpcConfig {
    /// Port (`--rpc.port`), 9545 by default.
    #[serde(default = "default_op_node_rpc_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Serve the admin API (`--rpc.enable-admin`). Sequencers always get it (to start and stop
    /// sequencing); on a replica it is off unless set here.
    #[serde(default)]
    pub enable_admin: bool,
}

impl Default for OpNodeRpcConfig {
    fn default() -> Self {
        Self {
            port: default_op_node_rpc_port(),
            enable_admin: false,
        }
    }
}

/// Sequencer settings. There is no block time or transactions-per-block setting here: the block
/// time is part of the rollup config, and no binary limits transactions per block.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SequencerConfig {
    /// Keep this many L1 blocks behind the L1 head when picking an L1 origin
    /// (`--sequencer.l1-confs`, binary default 4).
    #[schemars(range(min = 0, max = 1000))]
    pub l1_confs: Option<i32>,
    /// Start with sequencing stopped (`--sequencer.stopped`); start it with `admin_startSequencer`.
    #[serde(default)]
    pub stopped: bool,
    /// Most L2 blocks the unsafe head may run ahead of the safe head (`--sequencer.max-safe-lag`,
    /// 0 = no limit). op-node v1.20.1 removed the flag: for that release and later the field is
    /// not passed (op-node would refuse to start) and the renderer warns.
    #[schemars(range(min = 0))]
    pub max_safe_lag: Option<i64>,
    /// The p2p key that signs unsafe blocks (`OP_NODE_P2P_SEQUENCER_KEY`). Its address must be
    /// the chain's SystemConfig `unsafeBlockSigner`, so it is never generated.
    pub signing_key: Option<PrivateKeySource>,
}

/// The Engine API between op-node and the execution client. It stays inside the pod
/// (`127.0.0.1:8551`) and is never put on a Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EngineConfig {
    /// The JWT secret both sides share. Generated and kept in a Secret by default, and mounted
    /// read-only into both containers so neither side generates its own.
    #[serde(default)]
    pub jwt_secret: KeySource,
}

/// op-reth settings.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpRethConfig {
    /// Image override of the op-reth container.
    #[serde(default)]
    pub image: ImageSpec,
    /// Data volume; 1Ti when unset.
    pub storage: Option<StorageSpec>,
    /// `full` prunes history (`--full`); `archive` keeps every state.
    #[serde(default)]
    pub node_mode: NodeMode,
    /// Size of the cross-block execution cache in MB (`--engine.cross-block-cache-size`).
    #[schemars(range(min = 0, max = 1048576))]
    pub cross_block_cache_size_mb: Option<i32>,
    /// JSON-RPC servers.
    #[serde(default)]
    pub networking: ElNetworking,
    /// Devp2p networking.
    #[serde(default)]
    pub p2p: OpRethP2p,
    /// Transaction pool.
    #[serde(default)]
    pub txpool: OpRethTxPool,
    /// Rollup settings.
    #[serde(default)]
    pub rollup: RollupConfig,
}

/// Whether the execution client prunes history.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeMode {
    #[default]
    Full,
    Archive,
}

/// JSON-RPC servers of the execution client (HTTP and WebSocket). They listen on all
/// interfaces for the Service; the Engine API is separate and stays inside the pod.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ElNetworking {
    /// HTTP JSON-RPC.
    #[serde(default)]
    pub http: RpcServer,
    /// WebSocket JSON-RPC.
    #[serde(default = "default_ws")]
    pub ws: RpcServer,
}

// Not derived: the WebSocket server's default port differs from the HTTP server's.
impl Default for ElNetworking {
    fn default() -> Self {
        Self {
            http: RpcServer::default(),
            ws: default_ws(),
        }
    }
}

fn default_ws() -> RpcServer {
    RpcServer {
        enabled: true,
        port: 8546,
        apis: Vec::new(),
        cors_origins: Vec::new(),
    }
}

/// One JSON-RPC server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RpcServer {
    /// Serve it.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Port, 1–65535 (8545 HTTP, 8546 WS by default).
    #[serde(default = "default_el_http_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// API namespaces to serve; `eth,net,web3` when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub apis: Vec<RpcApi>,
    /// Allowed CORS origins (`--http.corsdomain` / `--ws.origins`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 253)))]
    pub cors_origins: Vec<String>,
}

impl Default for RpcServer {
    fn default() -> Self {
        Self {
            enabled: true,
            port: default_el_http_port(),
            apis: Vec::new(),
            cors_origins: Vec::new(),
        }
    }
}

/// A JSON-RPC namespace. The Engine API (`engine`) and `admin` are never served on these ports.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RpcApi {
    Eth,
    Net,
    Web3,
    Debug,
    Txpool,
    Trace,
}

/// Devp2p networking of op-reth.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpRethP2p {
    /// RLPx TCP port and discovery UDP port (`--port`, `--discovery.port`), 30303 by default.
    #[serde(default = "default_el_p2p_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Most inbound peers (`--max-inbound-peers`).
    #[schemars(range(min = 0, max = 10000))]
    pub max_inbound_peers: Option<i32>,
    /// Most outbound peers (`--max-outbound-peers`).
    #[schemars(range(min = 0, max = 10000))]
    pub max_outbound_peers: Option<i32>,
    /// Disable peer discovery (`--disable-discovery`); use `trustedPeers` then.
    #[serde(default)]
    pub no_discovery: bool,
    /// Only talk to peers in these CIDRs (`--netrestrict`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 64)))]
    pub netrestrict: Vec<String>,
    /// Enode URLs of peers to keep (`--trusted-peers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 512)))]
    pub trusted_peers: Vec<String>,
    /// Enode URLs to bootstrap discovery (`--bootnodes`); the chain's own when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 512)))]
    pub bootnodes: Vec<String>,
}

impl Default for OpRethP2p {
    fn default() -> Self {
        Self {
            port: default_el_p2p_port(),
            max_inbound_peers: None,
            max_outbound_peers: None,
            no_discovery: false,
            netrestrict: Vec::new(),
            trusted_peers: Vec::new(),
            bootnodes: Vec::new(),
        }
    }
}

/// op-reth transaction pool. Unset fields keep the binary's default.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpRethTxPool {
    /// Most transactions in the pending sub-pool (`--txpool.pending-max-count`).
    #[schemars(range(min = 1))]
    pub pending_max_count: Option<i64>,
    /// Most transactions in the queued sub-pool (`--txpool.queued-max-count`).
    #[schemars(range(min = 1))]
    pub queued_max_count: Option<i64>,
    /// Executable slots per sender (`--txpool.max-account-slots`).
    #[schemars(range(min = 1))]
    pub max_account_slots: Option<i64>,
    /// Replacement price bump in percent (`--txpool.pricebump`).
    #[schemars(range(min = 1, max = 1000))]
    pub price_bump: Option<i32>,
    /// Seconds a queued transaction is kept (`--txpool.lifetime`).
    #[schemars(range(min = 1))]
    pub lifetime_seconds: Option<i64>,
    /// Treat no address as local (`--txpool.nolocals`).
    #[serde(default)]
    pub no_locals: bool,
    /// Addresses whose transactions are local (`--txpool.locals`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(pattern(ADDRESS_PATTERN)))]
    pub locals: Vec<String>,
}

/// Rollup settings of the execution client.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollupConfig {
    /// Do not gossip transactions. Always on for replicas that forward to a sequencer; this
    /// turns it on for a sequencer too.
    #[serde(default)]
    pub disable_tx_pool_gossip: bool,
    /// Build a pending block from the pool (`--rollup.compute-pending-block` /
    /// `--rollup.computependingblock`).
    #[serde(default)]
    pub compute_pending_block: bool,
    /// Legacy RPC serving pre-Bedrock OP Mainnet history (`--rollup.historicalrpc`).
    #[schemars(length(min = 1, max = 2048), pattern(URL_PATTERN))]
    pub historical_rpc: Option<String>,
}

/// op-geth settings. op-geth reached end of support in 2026: prefer op-reth for new nodes.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpGethConfig {
    /// Image override of the op-geth container.
    #[serde(default)]
    pub image: ImageSpec,
    /// Data volume; 1Ti when unset.
    pub storage: Option<StorageSpec>,
    /// `--syncmode`: `snap` (default) or `full`.
    #[serde(default)]
    pub sync_mode: GethSyncMode,
    /// `--gcmode`: `full` (default) or `archive`.
    #[serde(default)]
    pub gc_mode: NodeMode,
    /// `--state.scheme`: `path` (default for new datadirs) or `hash`.
    pub state_scheme: Option<StateScheme>,
    /// Memory for caching, in MB (`--cache`).
    #[schemars(range(min = 128, max = 1048576))]
    pub cache_mb: Option<i32>,
    /// Database engine (`--db.engine`); only honoured for a new datadir.
    pub db_engine: Option<DbEngine>,
    /// JSON-RPC servers.
    #[serde(default)]
    pub networking: ElNetworking,
    /// Devp2p networking.
    #[serde(default)]
    pub p2p: OpGethP2p,
    /// Transaction pool.
    #[serde(default)]
    pub txpool: OpGethTxPool,
    /// Rollup settings.
    #[serde(default)]
    pub rollup: RollupConfig,
}

/// op-geth sync mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GethSyncMode {
    #[default]
    Snap,
    Full,
}

/// op-geth state scheme.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateScheme {
    Path,
    Hash,
}

/// op-geth database engine.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DbEngine {
    Pebble,
    Leveldb,
}

/// Devp2p networking of op-geth.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpGethP2p {
    /// TCP and UDP port (`--port`, `--discovery.port`), 30303 by default.
    #[serde(default = "default_el_p2p_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Most peers (`--maxpeers`).
    #[schemars(range(min = 0, max = 10000))]
    pub max_peers: Option<i32>,
    /// Disable peer discovery (`--nodiscover`).
    #[serde(default)]
    pub no_discovery: bool,
    /// Only talk to peers in these CIDRs (`--netrestrict`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 64)))]
    pub netrestrict: Vec<String>,
    /// Enode URLs to bootstrap discovery (`--bootnodes`); the network's own when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 512)))]
    pub bootnodes: Vec<String>,
}

impl Default for OpGethP2p {
    fn default() -> Self {
        Self {
            port: default_el_p2p_port(),
            max_peers: None,
            no_discovery: false,
            netrestrict: Vec::new(),
            bootnodes: Vec::new(),
        }
    }
}

/// op-geth transaction pool. Unset fields keep the binary's default.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpGethTxPool {
    /// Addresses whose transactions are local (`--txpool.locals`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(pattern(ADDRESS_PATTERN)))]
    pub locals: Vec<String>,
    /// No price exemptions for local transactions (`--txpool.nolocals`).
    #[serde(default)]
    pub no_locals: bool,
    /// Journal file of local transactions, relative to the datadir (`--txpool.journal`).
    #[schemars(length(min = 1, max = 253), pattern(r"^[-._a-zA-Z0-9]+$"))]
    pub journal: Option<String>,
    /// Also journal remote transactions (`--txpool.journalremotes`).
    #[serde(default)]
    pub journal_remotes: bool,
    /// How long non-executable transactions stay queued (`--txpool.lifetime`).
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub lifetime: Option<String>,
    /// Replacement price bump in percent (`--txpool.pricebump`).
    #[schemars(range(min = 1, max = 1000))]
    pub price_bump: Option<i32>,
    /// Executable slots guaranteed per account (`--txpool.accountslots`).
    #[schemars(range(min = 1))]
    pub account_slots: Option<i64>,
    /// Executable slots for all accounts (`--txpool.globalslots`).
    #[schemars(range(min = 1))]
    pub global_slots: Option<i64>,
    /// Non-executable slots per account (`--txpool.accountqueue`).
    #[schemars(range(min = 1))]
    pub account_queue: Option<i64>,
    /// Non-executable slots for all accounts (`--txpool.globalqueue`).
    #[schemars(range(min = 1))]
    pub global_queue: Option<i64>,
}

/// Resources of each container of the node.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeResources {
    /// Resources of the op-node container.
    pub op_node: Option<ResourceRequirements>,
    /// Resources of the execution client container (op-reth or op-geth).
    pub execution_client: Option<ResourceRequirements>,
}

/// Observed state of an `OpNode`.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpNodeStatus {
    /// The `metadata.generation` this status was computed from.
    pub observed_generation: Option<i64>,
    /// Summary for humans; tools should read `conditions` (`Ready` on top).
    pub phase: Option<WorkloadPhase>,
    /// `Ready`, `Valid`, `Rendered`, `Applied`, `WorkloadReady`, `UpgradeReady`, `Paused`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Live figures of the node, read from op-node and the execution client where reachable.
    pub node_info: Option<NodeInfo>,
    /// The releases the pods run and the chain's next fork (`UpgradeReady` has the verdict).
    pub upgrade: Option<UpgradeStatus>,
}

/// Summary phase of a workload.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
pub enum WorkloadPhase {
    Pending,
    Running,
    Error,
    Paused,
}

/// Live figures of a node.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// The unsafe L2 head: the newest block the node has (gossiped or built).
    pub chain_head: Option<BlockRef>,
    /// The safe L2 head: derived from batches on L1.
    pub safe_head: Option<BlockRef>,
    /// The finalized L2 head: derived from finalized L1 blocks.
    pub finalized_head: Option<BlockRef>,
    /// The L1 head op-node sees.
    pub l1_head: Option<BlockRef>,
    /// Block numbers of the sync pipeline, and whether the node is still catching up.
    pub sync_status: Option<SyncStatus>,
    /// Connected op-node peers.
    pub peer_count: Option<i64>,
    /// Whether the execution client answers its JSON-RPC.
    pub engine_connected: Option<bool>,
}

/// A block.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockRef {
    /// Block number.
    pub block_number: Option<i64>,
    /// Block hash.
    pub block_hash: Option<String>,
    /// Block time.
    pub timestamp: Option<Time>,
}

/// Heads of op-node's sync pipeline (`optimism_syncStatus`).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// Current L1 block op-node derives from.
    pub current_l1: Option<i64>,
    /// Unsafe L2 head.
    pub unsafe_l2: Option<i64>,
    /// Safe L2 head.
    pub safe_l2: Option<i64>,
    /// Finalized L2 head.
    pub finalized_l2: Option<i64>,
    /// Whether the node is still catching up.
    pub syncing: Option<bool>,
}

fn default_op_node_p2p_port() -> i32 {
    9222
}
fn default_op_node_rpc_port() -> i32 {
    9545
}
fn default_el_http_port() -> i32 {
    8545
}
fn default_el_p2p_port() -> i32 {
    30303
}
