//! Types shared by several kinds: references, key sources, logging, metrics, storage.
//!
//! Every field carries a doc comment because it becomes the description `kubectl explain` shows.
//! Validation that the schema can express lives here as schemars attributes and CEL rules.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// A 20-byte Ethereum address, `0x` followed by 40 hex digits.
pub const ADDRESS_PATTERN: &str = r"^0x[0-9a-fA-F]{40}$";
/// A Go-style duration as the OP Stack binaries parse it, e.g. `12s`, `1m30s`, `24h`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";
/// A Kubernetes object name (DNS subdomain, RFC 1123).
pub const OBJECT_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A key of a Secret or ConfigMap.
pub const DATA_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";
/// An `http(s)://` or `ws(s)://` URL.
pub const URL_PATTERN: &str = r"^(https?|wss?)://[^\s]+$";
/// A lowercase hex sha256 digest.
pub const SHA256_PATTERN: &str = r"^[0-9a-f]{64}$";

/// A reference to another object of this operator in the same namespace.
///
/// References never cross namespaces: a component can only use the network and the nodes its
/// own namespace holds, so one tenant cannot borrow another's keys or sequencer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectRef {
    /// Name of the referenced object, in the same namespace as this resource.
    #[schemars(length(min = 1, max = 253), pattern(OBJECT_NAME_PATTERN))]
    pub name: String,
}

/// One key of a Secret in this resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace as this resource.
    #[schemars(length(min = 1, max = 253), pattern(OBJECT_NAME_PATTERN))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253), pattern(DATA_KEY_PATTERN))]
    pub key: String,
}

/// One key of a ConfigMap in this resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap, in the same namespace as this resource.
    #[schemars(length(min = 1, max = 253), pattern(OBJECT_NAME_PATTERN))]
    pub name: String,
    /// Key within the ConfigMap's `data` (or `binaryData` for plugins).
    #[schemars(length(min = 1, max = 253), pattern(DATA_KEY_PATTERN))]
    pub key: String,
}

/// Where a key or shared secret comes from: a Secret you manage, or one the operator generates.
///
/// When neither is set the operator generates the secret. A generated secret is written once as
/// 64 lowercase hex characters with no `0x` and no newline (the one format every OP Stack
/// binary accepts) and is never rotated by the operator.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.secretRef) && has(self.generate) && self.generate)").message("set either secretRef or generate: true, not both"))]
pub struct KeySource {
    /// Use this existing Secret key. Its value must be 64 hex characters without a trailing newline.
    pub secret_ref: Option<SecretKeyRef>,
    /// Let the operator generate the secret and keep it in a Secret it owns (the default when
    /// `secretRef` is not set).
    pub generate: Option<bool>,
}

/// A private key for signing L1 transactions, read from a Secret.
///
/// The key reaches the binary only through an environment variable filled from the Secret
/// (`secretKeyRef`); it never appears on a command line, in a ConfigMap or in status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivateKeySource {
    /// The Secret key holding the hex private key (64 hex characters, `0x` optional, no newline).
    pub secret_ref: SecretKeyRef,
}

/// A remote signer (op-signer or any server of `eth_signTransaction`): no key enters the pod.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteSigner {
    /// Signer endpoint URL (`--signer.endpoint`).
    #[schemars(length(min = 1, max = 2048), pattern(URL_PATTERN))]
    pub endpoint: String,
    /// The address the signer signs for (`--signer.address`); it must match the on-chain role.
    #[schemars(pattern(ADDRESS_PATTERN))]
    pub address: String,
    /// Name of a `kubernetes.io/tls` Secret with `ca.crt`, `tls.crt` and `tls.key` for mutual
    /// TLS to the signer. When unset, TLS is turned off (`--signer.tls.enabled=false`); use this
    /// only for a signer reachable on a trusted network.
    #[schemars(length(min = 1, max = 253), pattern(OBJECT_NAME_PATTERN))]
    pub tls_secret_name: Option<String>,
}

/// Log level, mapped to each binary's own flag (`--log.level`, op-reth `-v…`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

/// Log format, mapped to each binary's own flag (`--log.format`, op-reth `--log.stdout.format`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// key=value pairs.
    Logfmt,
    /// One JSON object per line (best for log pipelines).
    #[default]
    Json,
}

/// Logging of every container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggingConfig {
    /// Lowest level that is logged.
    #[serde(default)]
    pub level: LogLevel,
    /// Output format.
    #[serde(default)]
    pub format: LogFormat,
    /// Colour the output (only useful for `text` on a terminal).
    #[serde(default)]
    pub color: bool,
}

/// Prometheus metrics of a component.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsConfig {
    /// Serve metrics (`--metrics.enabled`; op-reth `--metrics 0.0.0.0:<port>`).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Port of the metrics server, 1–65535.
    #[serde(default = "default_metrics_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            port: default_metrics_port(),
        }
    }
}

/// Pod security defaults. The operator always renders the Pod Security "restricted" profile
/// (non-root, no privilege escalation, all capabilities dropped, `RuntimeDefault` seccomp); these
/// fields only choose the identity the containers run as.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityDefaults {
    /// User ID the containers run as; never 0.
    #[serde(default = "default_uid")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub run_as_user: i64,
    /// Group ID the containers run as; never 0.
    #[serde(default = "default_uid")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub run_as_group: i64,
    /// Group that owns mounted volumes, so the non-root user can write its data directory.
    #[serde(default = "default_uid")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub fs_group: i64,
}

impl Default for PodSecurityDefaults {
    fn default() -> Self {
        Self {
            run_as_user: default_uid(),
            run_as_group: default_uid(),
            fs_group: default_uid(),
        }
    }
}

/// Access mode of a data volume.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
pub enum AccessMode {
    #[default]
    ReadWriteOnce,
    ReadWriteOncePod,
}

/// A persistent data volume. The operator never owns or deletes it: deleting the resource
/// keeps the chain data, and re-creating the resource resumes on it.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Requested size, e.g. `2Ti` for an OP Mainnet archive node.
    pub size: Quantity,
    /// StorageClass to use; the cluster default when unset.
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
    /// Access mode of the volume.
    #[serde(default)]
    pub access_mode: AccessMode,
}

/// Overrides of the container image of one component.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Full image reference (`registry/repository:tag` or `@sha256:…`); the operator's tested
    /// default when unset.
    #[schemars(length(min = 1, max = 512), pattern(r"^[^\s]+$"))]
    pub image: Option<String>,
    /// Pull policy of the image.
    pub pull_policy: Option<PullPolicy>,
}

impl ImageSpec {
    /// The image to run: this override, or the release table's image of `component`.
    pub fn or_release(&self, component: crate::releases::Component) -> String {
        self.image
            .clone()
            .unwrap_or_else(|| crate::releases::table().default_image(component))
    }
}

/// When the kubelet pulls an image.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// JSON-RPC server of a chain service (op-batcher, op-proposer).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRpcConfig {
    /// Port of the RPC server (`--rpc.port`), 1–65535.
    #[serde(default = "default_service_rpc_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Serve the admin API (`--rpc.enable-admin`), e.g. to stop and start batch submission.
    #[serde(default)]
    pub enable_admin: bool,
}

impl Default for ServiceRpcConfig {
    fn default() -> Self {
        Self {
            port: default_service_rpc_port(),
            enable_admin: false,
        }
    }
}

/// L1 transaction manager settings shared by op-batcher, op-proposer and op-challenger
/// (`op-service/txmgr` flags). Unset fields keep the binary's default.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
// The txmgr refuses a zero interval at start ("must provide ReceiptQueryInterval":
// ethereum-optimism/optimism@v1.19.6 op-service/txmgr/cli.go); a duration is zero when it has
// no digit from 1 to 9.
#[x_kube(validation = Rule::new("!has(self.receiptQueryInterval) || self.receiptQueryInterval.matches('[1-9]')").message("receiptQueryInterval must be more than zero: the transaction manager refuses 0").field_path(".receiptQueryInterval"))]
pub struct TxManagerConfig {
    /// L1 confirmations to wait for (`--num-confirmations`).
    #[schemars(range(min = 1, max = 1000))]
    pub num_confirmations: Option<i32>,
    /// Abort after this many "nonce too low" errors (`--safe-abort-nonce-too-low-count`).
    #[schemars(range(min = 1, max = 1000))]
    pub safe_abort_nonce_too_low_count: Option<i32>,
    /// Highest multiple of the suggested fee to pay (`--fee-limit-multiplier`).
    #[schemars(range(min = 1, max = 1000))]
    pub fee_limit_multiplier: Option<i32>,
    /// Wait this long before resubmitting a transaction with a higher fee (`--resubmission-timeout`).
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub resubmission_timeout: Option<String>,
    /// Timeout of each L1 network call (`--network-timeout`).
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub network_timeout: Option<String>,
    /// How often to ask L1 for the receipt of a sent transaction
    /// (`--txmgr.receipt-query-interval`; the binary's default is `12s`). Set it near the L1
    /// block time when that is shorter than 12 s (a dev L1 of 1–2 s blocks), or every
    /// confirmation waits up to 12 s.
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub receipt_query_interval: Option<String>,
}

/// Resource requests and limits of one container. When unset, the network's
/// `spec.sharedConfig.resources` apply.
pub type Resources = Option<ResourceRequirements>;

/// Kubernetes Service exposure of a component's ports.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Service type. The Engine API port (8551) is never put on a Service, whatever the type.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Annotations to put on the Service (e.g. for a cloud load balancer).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Kubernetes Service type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

pub(crate) fn default_true() -> bool {
    true
}
fn default_metrics_port() -> i32 {
    7300
}
fn default_uid() -> i64 {
    1000
}
fn default_service_rpc_port() -> i32 {
    8545
}

/// Which releases a CR's pods run and whether they follow its chain's next fork. The verdict
/// is the `UpgradeReady` condition; the release table the operator ships decides it.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStatus {
    /// The next fork of the chain that concerns this CR's components (e.g. `lagoon`).
    pub next_fork: Option<String>,
    /// When it activates (RFC 3339, UTC).
    pub activation_time: Option<String>,
    /// What the rendered pods run, per component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<ComponentRelease>,
    /// The `metadata.generation` of the network these releases were rendered against: a
    /// rollout of the network's release waits for the nodes before this one to reach it.
    pub network_generation: Option<i64>,
    /// Where the node's rollout to these releases stands: `Complete` (its pod runs them),
    /// `Rolling`, `Waiting` (for a node before it) or `Halted` (a node before it does not
    /// follow the chain on the new release). Nodes only.
    pub rollout: Option<String>,
}

/// The release one component of a CR runs.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentRelease {
    /// `op-node`, `op-reth`, `op-geth`, `op-batcher`, `op-proposer` or `op-challenger`.
    pub component: String,
    /// The image its container runs.
    pub image: String,
    /// The release its tag names; unset when the tag names none (a digest, a custom tag).
    pub version: Option<String>,
}
