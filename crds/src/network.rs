//! `OptimismNetwork`: the shared context of one L2 chain that every component references.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::common::*;

/// The shared network context of one OP Stack chain: L1 endpoints, chain ids, rollup config and
/// L2 genesis, L1 contract addresses (discovered or given), defaults shared by all components,
/// and the chain's own plugins. It runs no workload itself; `OpNode`, `OpBatcher`, `OpProposer`
/// and `OpChallenger` reference it.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "optimism.io",
    version = "v1alpha1",
    kind = "OptimismNetwork",
    namespaced,
    status = "OptimismNetworkStatus",
    shortname = "opnet",
    category = "opstack",
    printcolumn = r#"{"name":"Chain","type":"integer","jsonPath":".spec.chainID"}"#,
    printcolumn = r#"{"name":"L1","type":"integer","jsonPath":".spec.l1ChainID"}"#,
    printcolumn = r#"{"name":"Network","type":"string","jsonPath":".spec.networkName"}"#,
    printcolumn = r#"{"name":"Discovery","type":"string","jsonPath":".status.networkInfo.discoveredContracts.discoveryMethod"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.l1RpcUrl) != has(self.l1RpcUrlSecretRef)").message("set exactly one of spec.l1RpcUrl and spec.l1RpcUrlSecretRef").field_path(".l1RpcUrl"),
    validation = Rule::new("!(has(self.l1BeaconUrl) && has(self.l1BeaconUrlSecretRef))").message("set at most one of spec.l1BeaconUrl and spec.l1BeaconUrlSecretRef").field_path(".l1BeaconUrl"),
    validation = Rule::new("has(self.networkName) || (has(self.rollupConfig) && has(self.l2Genesis))").message("a custom chain (no spec.networkName) needs both spec.rollupConfig and spec.l2Genesis").field_path(".networkName"),
    validation = Rule::new("!has(self.rollupConfig) || !has(self.rollupConfig.fromNetworkName) || has(self.networkName)").message("spec.rollupConfig.fromNetworkName needs spec.networkName").field_path(".rollupConfig"),
    validation = Rule::new("!has(self.l2Genesis) || !has(self.l2Genesis.fromNetworkName) || has(self.networkName)").message("spec.l2Genesis.fromNetworkName needs spec.networkName").field_path(".l2Genesis"),
    validation = Rule::new("!has(self.l1ChainConfig) || !has(self.l1ChainConfig.fromNetworkName)").message("spec.l1ChainConfig takes inline or configMapRef; no binary has L1 chain configs built in by network name").field_path(".l1ChainConfig")
)]
pub struct OptimismNetworkSpec {
    /// A network the OP Stack binaries know by name: the superchain-registry name op-node's
    /// `--network` takes (`op-mainnet`, `op-sepolia`, `ink-sepolia`, …). Renderers map it to each
    /// client's own name (op-reth `--chain optimism-sepolia`, op-geth `--op-network`). Leave it
    /// unset for a custom chain and give `rollupConfig` and `l2Genesis` instead.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub network_name: Option<String>,

    /// L2 chain id (10 for OP Mainnet, 11155420 for OP Sepolia).
    #[serde(rename = "chainID")]
    #[schemars(range(min = 1))]
    pub chain_id: i64,

    /// L1 chain id (1 for Ethereum mainnet, 11155111 for Sepolia). The operator checks the L1
    /// endpoint's `eth_chainId` against it before trusting anything it reads.
    #[serde(rename = "l1ChainID")]
    #[schemars(range(min = 1))]
    pub l1_chain_id: i64,

    /// L1 execution JSON-RPC URL. If the URL carries an API key, use `l1RpcUrlSecretRef` instead
    /// so the key stays out of the resource.
    #[schemars(length(min = 1, max = 2048), pattern(URL_PATTERN))]
    pub l1_rpc_url: Option<String>,

    /// A Secret key holding the L1 execution JSON-RPC URL (for URLs that carry an API key).
    pub l1_rpc_url_secret_ref: Option<SecretKeyRef>,

    /// L1 beacon (consensus layer) HTTP URL, needed by op-node and op-challenger to read blobs.
    #[schemars(length(min = 1, max = 2048), pattern(URL_PATTERN))]
    pub l1_beacon_url: Option<String>,

    /// A Secret key holding the L1 beacon URL (for URLs that carry an API key).
    pub l1_beacon_url_secret_ref: Option<SecretKeyRef>,

    /// The L1 has no beacon API (a dev L1 such as `geth --dev`), so op-node runs without one
    /// (`--l1.beacon.ignore`). Only for chains whose batches go to L1 as calldata: a blob batch
    /// cannot be read without a beacon endpoint, and derivation stops at the first one.
    #[serde(default)]
    pub l1_beacon_ignore: bool,

    /// Timeout of the operator's own L1 calls (discovery and health probes), e.g. `10s`.
    #[serde(default = "default_l1_rpc_timeout")]
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub l1_rpc_timeout: String,

    /// Where the rollup config (`rollup.json`) comes from. Defaults to the named network.
    pub rollup_config: Option<ChainConfigSource>,

    /// Where the L2 genesis (`genesis.json`) comes from. Defaults to the named network.
    pub l2_genesis: Option<ChainConfigSource>,

    /// The L1's chain config (the `config` object of its genesis), needed by op-node
    /// (`--rollup.l1-chain-config`) when the L1 is not Ethereum mainnet, Sepolia, Holesky or
    /// Hoodi, e.g. a devnet L1. `fromNetworkName` does not apply here.
    pub l1_chain_config: Option<ChainConfigSource>,

    /// L1 contract addresses and how the operator finds them.
    #[serde(default)]
    pub contract_addresses: ContractAddresses,

    /// Defaults every component of this network inherits unless it sets its own.
    #[serde(default)]
    pub shared_config: SharedConfig,

    /// The chain's own plugins: a renderer per kind that replaces the bundled one, and policies
    /// that check what was rendered. Each is a WebAssembly component in a ConfigMap, pinned by
    /// its sha256.
    #[serde(default)]
    pub plugins: PluginsSpec,

    /// The release every `OpNode` of this network runs unless it pins its own images: op-node
    /// and its execution client, upgraded as one pair. Unset: the operator's tested pair (its
    /// release table). Changing it rolls the nodes one at a time, replicas first (oldest
    /// first) and the sequencer last, each after the one before it follows the chain again on
    /// the new release; a node that does not stops the rollout there (`UpgradeRollout`).
    pub node_release: Option<NodeRelease>,
}

/// The images of a network's nodes, one release of op-node and its execution client.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeRelease {
    /// The op-node image, e.g. `us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:v1.21.0`.
    #[schemars(length(min = 1, max = 512), pattern(r"^[^\s]+$"))]
    pub op_node: Option<String>,
    /// The op-reth image, for nodes with `executionClient: op-reth`.
    #[schemars(length(min = 1, max = 512), pattern(r"^[^\s]+$"))]
    pub op_reth: Option<String>,
    /// The op-geth image, for nodes with `executionClient: op-geth`.
    #[schemars(length(min = 1, max = 512), pattern(r"^[^\s]+$"))]
    pub op_geth: Option<String>,
    /// How long a node may take, after its pod rolled to the new release, to follow the chain
    /// again (its `Synced` condition True) before the rollout stops, e.g. `30m`.
    #[serde(default = "default_follow_timeout")]
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub follow_timeout: String,
}

fn default_follow_timeout() -> String {
    "30m".to_string()
}

fn default_l1_rpc_timeout() -> String {
    "10s".to_string()
}

/// One source of a chain configuration file. Set exactly one field.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.inline), has(self.configMapRef), has(self.fromNetworkName) && self.fromNetworkName].filter(x, x).size() == 1").message("set exactly one of inline, configMapRef or fromNetworkName: true"))]
pub struct ChainConfigSource {
    /// The JSON document itself. The operator stores it in a ConfigMap the nodes mount.
    #[schemars(length(min = 2, max = 1048576))]
    pub inline: Option<String>,
    /// A key of an existing ConfigMap holding the JSON document. For the L2 genesis, a key
    /// ending in `.gz` holds it gzip-compressed (in `binaryData`): a chain's genesis is about
    /// 10 MB, ten times what a ConfigMap may hold, and compresses to a few hundred KB
    /// (`gzip -9 genesis.json && kubectl create configmap chain --from-file=genesis.json.gz`).
    /// Each node unpacks it before its execution client starts.
    pub config_map_ref: Option<ConfigMapKeyRef>,
    /// Use the document built into the binaries for `spec.networkName`.
    pub from_network_name: Option<bool>,
}

/// How the operator finds a chain's L1 contracts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DiscoveryMethod {
    /// Ask SystemConfig on L1 (needs `systemConfigAddr`), then the registry, then the
    /// well-known table; status records which answered.
    #[default]
    Auto,
    /// Read the superchain-registry's `addresses.json` from `superchainRegistry`.
    SuperchainRegistry,
    /// Use the operator's built-in table of public networks.
    WellKnown,
    /// Use exactly the addresses given here (still checked for code on L1).
    Manual,
}

/// L1 contract addresses. Any address given here wins over a discovered one. There is no
/// L2OutputOracle: OP Stack chains prove outputs through the DisputeGameFactory, and op-proposer
/// no longer accepts `--l2oo-address`.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.discoveryMethod != 'manual' || (has(self.systemConfigAddr) && has(self.optimismPortalAddr) && has(self.disputeGameFactoryAddr))").message("discoveryMethod manual needs systemConfigAddr, optimismPortalAddr and disputeGameFactoryAddr").field_path(".discoveryMethod"))]
#[x_kube(validation = Rule::new("self.discoveryMethod != 'superchain-registry' || has(self.superchainRegistry)").message("discoveryMethod superchain-registry needs superchainRegistry").field_path(".superchainRegistry"))]
pub struct ContractAddresses {
    /// SystemConfig proxy on L1; from it the operator discovers every other address.
    #[schemars(pattern(ADDRESS_PATTERN))]
    pub system_config_addr: Option<String>,
    /// DisputeGameFactory proxy on L1 (op-proposer and op-challenger use it).
    #[schemars(pattern(ADDRESS_PATTERN))]
    pub dispute_game_factory_addr: Option<String>,
    /// OptimismPortal proxy on L1.
    #[schemars(pattern(ADDRESS_PATTERN))]
    pub optimism_portal_addr: Option<String>,
    /// L1CrossDomainMessenger proxy on L1.
    #[schemars(pattern(ADDRESS_PATTERN))]
    pub l1_cross_domain_messenger_addr: Option<String>,
    /// L1StandardBridge proxy on L1.
    #[schemars(pattern(ADDRESS_PATTERN))]
    pub l1_standard_bridge_addr: Option<String>,
    /// Batch inbox address (where op-batcher sends batches).
    #[schemars(pattern(ADDRESS_PATTERN))]
    pub batch_inbox_addr: Option<String>,
    /// How to find the addresses not given here: `auto` (SystemConfig getters on L1 from
    /// `systemConfigAddr`, then the registry, then the well-known table), `superchain-registry`
    /// (the copy named in `superchainRegistry`), `well-known` (the operator's table of public
    /// networks) or `manual` (exactly the addresses given here, still checked for code on L1).
    #[serde(default)]
    pub discovery_method: DiscoveryMethod,
    /// Re-read discovered addresses after this long, e.g. `24h`. A changed value is reported,
    /// never silently rewired into running components.
    #[serde(default = "default_cache_timeout")]
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub cache_timeout: String,
    /// Where to read the superchain-registry's `addresses.json` (a copy you keep up to date, so a
    /// registry update needs no operator release).
    pub superchain_registry: Option<RegistrySource>,
}

impl Default for ContractAddresses {
    fn default() -> Self {
        Self {
            system_config_addr: None,
            dispute_game_factory_addr: None,
            optimism_portal_addr: None,
            l1_cross_domain_messenger_addr: None,
            l1_standard_bridge_addr: None,
            batch_inbox_addr: None,
            discovery_method: DiscoveryMethod::Auto,
            cache_timeout: default_cache_timeout(),
            superchain_registry: None,
        }
    }
}

fn default_cache_timeout() -> String {
    "24h".to_string()
}

/// A copy of the superchain-registry's `superchain/extra/addresses/addresses.json`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySource {
    /// The ConfigMap key holding `addresses.json`.
    pub config_map_ref: ConfigMapKeyRef,
}

/// Defaults that every component of the network inherits.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SharedConfig {
    /// Logging of every container.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Metrics of every component.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Default resource requests and limits of a container that sets none.
    pub resources: Option<ResourceRequirements>,
    /// The identity containers run as (the restricted profile itself is always applied).
    #[serde(default)]
    pub security: PodSecurityDefaults,
}

/// The chain's plugins, per kind.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginsSpec {
    /// Plugins for `OpNode` resources of this network.
    pub op_node: Option<KindPlugins>,
    /// Plugins for `OpBatcher` resources of this network.
    pub op_batcher: Option<KindPlugins>,
    /// Plugins for `OpProposer` resources of this network.
    pub op_proposer: Option<KindPlugins>,
    /// Plugins for `OpChallenger` resources of this network.
    pub op_challenger: Option<KindPlugins>,
    /// Plugins for this `OptimismNetwork` itself (its ConfigMaps).
    pub optimism_network: Option<KindPlugins>,
}

impl PluginsSpec {
    /// The plugins of `kind` (`OpNode`, ...), if the network names any.
    pub fn for_kind(&self, kind: &str) -> Option<&KindPlugins> {
        match kind {
            "OptimismNetwork" => self.optimism_network.as_ref(),
            "OpNode" => self.op_node.as_ref(),
            "OpBatcher" => self.op_batcher.as_ref(),
            "OpProposer" => self.op_proposer.as_ref(),
            "OpChallenger" => self.op_challenger.as_ref(),
            _ => None,
        }
    }
}

/// The renderer and policies of one kind.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KindPlugins {
    /// Replaces the bundled renderer of this kind.
    pub renderer: Option<RendererPlugin>,
    /// Policies that check the rendered objects, in order; any violation blocks the apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub policies: Vec<PolicyPlugin>,
}

/// A renderer plugin: a WebAssembly component in a ConfigMap, pinned by digest.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RendererPlugin {
    /// The ConfigMap `binaryData` key holding the `.wasm`.
    pub config_map_ref: ConfigMapKeyRef,
    /// Required sha256 of the `.wasm` (64 lowercase hex). A ConfigMap whose bytes do not match is
    /// refused and nothing changes in the cluster.
    #[schemars(pattern(SHA256_PATTERN))]
    pub sha256: String,
    /// Apply a new renderer's output only after its diff was reviewed: the operator shows what
    /// the new plugin would change (condition and Event `RendererChanged` on each affected
    /// resource, reason `AwaitingApproval`) and applies nothing until `approvedSha256` equals
    /// `sha256`.
    #[serde(default)]
    pub require_approval: bool,
    /// The digest whose diff you reviewed and approve (see `requireApproval`).
    #[schemars(pattern(SHA256_PATTERN))]
    pub approved_sha256: Option<String>,
    /// Annotation keys this renderer may put on pod templates and Services, beyond the few the
    /// operator allows every renderer (e.g. `example.org/runbook`). Annotations there can change
    /// what runs in a pod (sidecar injectors) or how a Service is exposed (cloud load
    /// balancers), so a renderer sets none that you did not list here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub allowed_annotations: Vec<String>,
}

/// A policy plugin: checks rendered objects and returns violations.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyPlugin {
    /// The ConfigMap `binaryData` key holding the `.wasm`.
    pub config_map_ref: ConfigMapKeyRef,
    /// Required sha256 of the `.wasm` (64 lowercase hex).
    #[schemars(pattern(SHA256_PATTERN))]
    pub sha256: String,
    /// What a failure of the policy itself (not a violation) does: `Fail` blocks the apply (the
    /// default), `Ignore` lets it through.
    #[serde(default)]
    pub failure_policy: FailurePolicy,
}

/// What a failing policy plugin does.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
pub enum FailurePolicy {
    #[default]
    Fail,
    Ignore,
}

/// Observed state of an `OptimismNetwork`.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptimismNetworkStatus {
    /// The `metadata.generation` this status was computed from.
    pub observed_generation: Option<i64>,
    /// Summary for humans; tools should read `conditions` (`Ready` on top).
    pub phase: Option<NetworkPhase>,
    /// `Ready`, `ConfigurationValid`, `ContractsDiscovered`, `L1Connected`, `PluginsReady`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// What the operator found out about the network.
    pub network_info: Option<NetworkInfo>,
}

/// Summary phase of a network.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
pub enum NetworkPhase {
    Pending,
    Ready,
    Error,
}

/// What the operator found out about the network.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInfo {
    /// L1 contract addresses the components use, pinned until a spec change or a re-read.
    pub discovered_contracts: Option<DiscoveredContracts>,
    /// When this block last changed.
    pub last_updated: Option<Time>,
}

/// L1 contract addresses as discovered and pinned by the operator.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredContracts {
    /// SystemConfig proxy.
    pub system_config_addr: Option<String>,
    /// DisputeGameFactory proxy.
    pub dispute_game_factory_addr: Option<String>,
    /// OptimismPortal proxy.
    pub optimism_portal_addr: Option<String>,
    /// L1CrossDomainMessenger proxy.
    pub l1_cross_domain_messenger_addr: Option<String>,
    /// L1StandardBridge proxy.
    pub l1_standard_bridge_addr: Option<String>,
    /// L1ERC721Bridge proxy.
    pub l1_erc721_bridge_addr: Option<String>,
    /// OptimismMintableERC20Factory proxy.
    pub optimism_mintable_erc20_factory_addr: Option<String>,
    /// Batch inbox.
    pub batch_inbox_addr: Option<String>,
    /// The address whose key signs unsafe blocks on p2p (the sequencer's p2p key).
    pub unsafe_block_signer_addr: Option<String>,
    /// L1 block at which SystemConfig was initialised.
    pub start_block: Option<i64>,
    /// SystemConfig `version()`.
    pub system_config_version: Option<String>,
    /// Which method answered: `system-config`, `superchain-registry`, `well-known` or `manual`.
    pub discovery_method: Option<String>,
    /// The L1 block the values were read at.
    pub l1_block_number: Option<i64>,
    /// When the values were read.
    pub last_discovery_time: Option<Time>,
}
