//! Everything the renderer decides before it builds an object: which network names, files,
//! Secrets, endpoints and ports the node uses. `validate` and `render` share it, so a resource
//! that validates renders, and every problem is reported at once, naming its field.

use opstack_plugin_sdk::crds::common::{ImageSpec, LoggingConfig, PodSecurityDefaults};
use opstack_plugin_sdk::crds::network::OptimismNetworkSpec;
use opstack_plugin_sdk::crds::opnode::{ExecutionClient, NodeType, OpNodeSpec, SyncMode};
use opstack_plugin_sdk::crds::releases::{self, Component, Version};
use opstack_plugin_sdk::k8s_openapi::api::core::v1::ResourceRequirements;
use opstack_plugin_sdk::{PluginError, RenderInput};

pub use opstack_plugin_sdk::crds::conventions::{GENERATED_JWT_KEY, GENERATED_P2P_KEY};
use opstack_plugin_sdk::crds::conventions::{
    L1_CHAIN_CONFIG_KEY, L2_GENESIS_KEY, ROLLUP_CONFIG_KEY, config_map_purpose, endpoint,
    secret_purpose,
};

/// Engine API port of both execution clients. It binds 127.0.0.1 and is never on a Service.
pub const ENGINE_PORT: i32 = 8551;
/// Metrics port of op-reth: the port its image EXPOSEs (`rust/op-reth/DockerfileOp` in
/// ethereum-optimism/optimism@v1.19.6). op-node's metrics use the network's
/// `sharedConfig.metrics.port`; both containers share the pod's network namespace, so the
/// execution client needs a port of its own.
pub const OP_RETH_METRICS_PORT: i32 = 9001;
/// Metrics port of op-geth: its default `--metrics.port` (op-geth.txt).
pub const OP_GETH_METRICS_PORT: i32 = 6060;

/// Where a value comes from: written in the spec, or a key of a Secret (then only an env var
/// filled through `secretKeyRef` carries it; it never appears in the rendered object).
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Value(String),
    Secret { name: String, key: String },
}

/// One key of a Secret, mounted as a file.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretFile {
    pub secret: String,
    pub key: String,
}

/// How a binary learns the chain: by a registry name, or from a file of a ConfigMap.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainSource {
    Named(String),
    File { config_map: String, key: String },
}

impl ChainSource {
    /// A file kept gzip-compressed (its key ends in `.gz`): a chain's genesis is ten times
    /// larger than a ConfigMap may be, and unpacked in the pod before the execution client
    /// reads it (see `workload::genesis_unpack_container`).
    pub fn is_compressed(&self) -> bool {
        matches!(self, ChainSource::File { key, .. } if key.ends_with(".gz"))
    }
}

/// The ports of the pod. All are distinct: the two containers share one network namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Ports {
    pub op_node_rpc: i32,
    /// `None` when p2p is off.
    pub op_node_p2p: Option<i32>,
    /// `None` when metrics are off.
    pub op_node_metrics: Option<i32>,
    pub el_http: i32,
    /// `None` when WebSocket RPC is off.
    pub el_ws: Option<i32>,
    pub el_p2p: i32,
    pub el_metrics: Option<i32>,
}

/// The resolved plan of one OpNode.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    /// The `OptimismNetwork` it belongs to: its components are the sequencer's only clients.
    pub network: String,
    pub spec: OpNodeSpec,
    pub client: ExecutionClient,
    pub sequencer: bool,
    pub jwt: SecretFile,
    /// op-node's libp2p identity; `None` when p2p is off.
    pub p2p_key: Option<SecretFile>,
    /// The sequencer's block-signing key (sequencers only).
    pub sequencer_key: Option<SecretFile>,
    pub l1: Source,
    /// `None`: the network's L1 has no beacon API (`l1BeaconIgnore` without a URL).
    pub l1_beacon: Option<Source>,
    /// The network's `l1BeaconIgnore`: op-node runs without (or tolerates a failing) beacon API.
    pub l1_beacon_ignore: bool,
    /// op-node: `--network` or `--rollup.config`.
    pub rollup: ChainSource,
    /// `--syncmode`: the user's, or the one that works for this node (see the CRD's docs).
    pub sync_mode: SyncMode,
    /// Execution client: registry name (op-node's spelling) or genesis file.
    pub genesis: ChainSource,
    /// op-node's `--rollup.l1-chain-config`, for an L1 it does not know (always a file).
    pub l1_chain_config: Option<ChainSource>,
    /// Replicas: the sequencer's execution RPC, where transactions are forwarded.
    pub sequencer_http: Option<String>,
    /// Replicas with p2p on: the sequencer's libp2p multiaddr, its static peer (when the host
    /// knows the sequencer's peer ID).
    pub sequencer_p2p: Option<String>,
    pub ports: Ports,
    pub logging: LoggingConfig,
    pub security: PodSecurityDefaults,
    pub shared_resources: Option<ResourceRequirements>,
    /// The op-node image: the CR's, or the release table's.
    pub op_node_image: String,
    /// The op-node release it runs, which decides the flags that exist.
    pub op_node_version: Version,
    /// The execution client's image: the CR's, or the release table's.
    pub el_image: String,
    pub warnings: Vec<String>,
}

impl Plan {
    /// Whether the op-node release this node runs still has `flag` (without dashes).
    pub fn op_node_flag_exists(&self, flag: &str) -> bool {
        releases::table()
            .flag_removed(Component::OpNode, flag, &self.op_node_version)
            .is_none()
    }

    /// Resolves the plan, or every problem with the input, each naming its field and the fix.
    pub fn new(input: &RenderInput) -> Result<Plan, PluginError> {
        let resource = input.op_node()?;
        let name = resource
            .metadata
            .name
            .clone()
            .ok_or_else(|| PluginError::invalid("OpNode has no metadata.name"))?;
        let spec = resource.spec;
        let net: OptimismNetworkSpec = input.network_spec()?;
        let network = &input.network.name;
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let sequencer = spec.node_type == NodeType::Sequencer;
        let client = spec.execution_client;
        let releases = releases::table();
        // Images: the node's own pin, else its network's node release, else the table's.
        let network_release = net.node_release.clone();
        let pick = |own: &ImageSpec, from_network: Option<String>, component: Component| {
            own.image
                .clone()
                .or(from_network)
                .unwrap_or_else(|| releases.default_image(component))
        };
        let op_node_image = pick(
            &spec.op_node.image,
            network_release.as_ref().and_then(|r| r.op_node.clone()),
            Component::OpNode,
        );
        let op_node_version = releases.version_of(Component::OpNode, &op_node_image);
        let el_image = match client {
            ExecutionClient::OpReth => pick(
                &spec.op_reth.clone().unwrap_or_default().image,
                network_release.as_ref().and_then(|r| r.op_reth.clone()),
                Component::OpReth,
            ),
            ExecutionClient::OpGeth => pick(
                &spec.op_geth.clone().unwrap_or_default().image,
                network_release.as_ref().and_then(|r| r.op_geth.clone()),
                Component::OpGeth,
            ),
        };
        let p2p_on = spec.op_node.p2p.enabled;

        // The Engine API JWT: generated `<cr>-jwt` (key jwt.hex) or the user's Secret.
        let jwt_key = spec
            .op_node
            .engine
            .jwt_secret
            .secret_ref
            .as_ref()
            .map_or(GENERATED_JWT_KEY, |r| r.key.as_str());
        let jwt = match input.secret(secret_purpose::JWT) {
            Some(secret) => SecretFile {
                secret: secret.to_owned(),
                key: jwt_key.to_owned(),
            },
            None => {
                problems.push(
                    "spec.opNode.engine.jwtSecret: the host provided no `jwt` Secret; op-reth \
                     refuses to start without the JWT file, so it must exist before the pod. \
                     Leave jwtSecret empty to let the operator generate it, or name an existing \
                     Secret in jwtSecret.secretRef"
                        .to_owned(),
                );
                SecretFile {
                    secret: String::new(),
                    key: String::new(),
                }
            }
        };

        let p2p_key = if p2p_on {
            let key = spec
                .op_node
                .p2p
                .private_key
                .secret_ref
                .as_ref()
                .map_or(GENERATED_P2P_KEY, |r| r.key.as_str());
            match input.secret(secret_purpose::P2P_KEY) {
                Some(secret) => Some(SecretFile {
                    secret: secret.to_owned(),
                    key: key.to_owned(),
                }),
                None => {
                    problems.push(
                        "spec.opNode.p2p.privateKey: the host provided no `p2p-key` Secret for a \
                         node with p2p enabled; leave privateKey empty to let the operator \
                         generate it, name an existing Secret in privateKey.secretRef, or set \
                         spec.opNode.p2p.enabled: false"
                            .to_owned(),
                    );
                    None
                }
            }
        } else {
            None
        };

        // Sequencer signing key: env OP_NODE_P2P_SEQUENCER_KEY from its Secret. No flag of
        // op-node reads it from a file, and the value must never be on a command line.
        let signing_key = spec
            .op_node
            .sequencer
            .as_ref()
            .and_then(|s| s.signing_key.as_ref());
        let sequencer_key = match (
            sequencer,
            signing_key,
            input.secret(secret_purpose::SEQUENCER_KEY),
        ) {
            (true, Some(key), Some(secret)) => Some(SecretFile {
                secret: secret.to_owned(),
                key: key.secret_ref.key.clone(),
            }),
            (true, Some(_), None) => {
                problems.push(
                    "spec.opNode.sequencer.signingKey: the host provided no `sequencer-key` \
                     Secret; check that the Secret named in signingKey.secretRef exists in the \
                     resource's namespace"
                        .to_owned(),
                );
                None
            }
            (true, None, _) if p2p_on => {
                problems.push(
                    "spec.opNode.sequencer.signingKey: a sequencer with p2p enabled must sign the \
                     unsafe blocks it gossips, or replicas drop them; set \
                     spec.opNode.sequencer.signingKey.secretRef to the Secret key holding the \
                     private key of the chain's SystemConfig unsafeBlockSigner (64 hex \
                     characters, no newline), or set spec.opNode.p2p.enabled: false for a \
                     sequencer without replicas"
                        .to_owned(),
                );
                None
            }
            (true, None, _) => {
                warnings.push(
                    "the sequencer has p2p disabled and no signing key: its blocks reach other \
                     nodes only through L1 batches"
                        .to_owned(),
                );
                None
            }
            (false, _, _) => None,
        };

        // Replicas forward transactions to the sequencer's execution client.
        let sequencer_http = if sequencer {
            None
        } else if let Some(reference) = &spec.sequencer_ref {
            match input.endpoint("sequencerRef", endpoint::EXECUTION_RPC) {
                Some(url) => Some(url.to_owned()),
                None => {
                    problems.push(format!(
                        "spec.sequencerRef: OpNode {:?} was not resolved to an `execution-rpc` \
                         endpoint; check that it exists in this namespace and is a sequencer, \
                         or use spec.sequencerUrl for a sequencer outside the cluster",
                        reference.name
                    ));
                    None
                }
            }
        } else if let Some(url) = &spec.sequencer_url {
            Some(url.clone())
        } else {
            problems.push(
                "spec.sequencerRef: a replica forwards transactions to its sequencer; set \
                 spec.sequencerRef to the sequencer OpNode of this namespace, or \
                 spec.sequencerUrl to the sequencer's public endpoint (e.g. \
                 https://sepolia-sequencer.optimism.io)"
                    .to_owned(),
            );
            None
        };

        let l1 = match (&net.l1_rpc_url, &net.l1_rpc_url_secret_ref) {
            (Some(url), _) => Source::Value(url.clone()),
            (None, Some(r)) => match input.secret(secret_purpose::L1_RPC_URL) {
                Some(secret) => Source::Secret {
                    name: secret.to_owned(),
                    key: r.key.clone(),
                },
                None => {
                    problems.push(format!(
                        "OptimismNetwork {network} spec.l1RpcUrlSecretRef: the host provided no \
                         `l1-rpc-url` Secret; check that Secret {:?} exists in this namespace",
                        r.name
                    ));
                    Source::Value(String::new())
                }
            },
            (None, None) => {
                problems.push(format!(
                    "OptimismNetwork {network} spec.l1RpcUrl: op-node needs an L1 RPC; set \
                     l1RpcUrl or l1RpcUrlSecretRef"
                ));
                Source::Value(String::new())
            }
        };
        let l1_beacon = match (&net.l1_beacon_url, &net.l1_beacon_url_secret_ref) {
            (Some(url), _) => Some(Source::Value(url.clone())),
            (None, Some(r)) => match input.secret(secret_purpose::L1_BEACON_URL) {
                Some(secret) => Some(Source::Secret {
                    name: secret.to_owned(),
                    key: r.key.clone(),
                }),
                None => {
                    problems.push(format!(
                        "OptimismNetwork {network} spec.l1BeaconUrlSecretRef: the host provided \
                         no `l1-beacon-url` Secret; check that Secret {:?} exists in this \
                         namespace",
                        r.name
                    ));
                    None
                }
            },
            (None, None) if net.l1_beacon_ignore => None,
            (None, None) => {
                problems.push(format!(
                    "OptimismNetwork {network} spec.l1BeaconUrl: op-node reads batches from L1 \
                     blobs and stops at startup without a beacon endpoint; set l1BeaconUrl or \
                     l1BeaconUrlSecretRef, or, for an L1 without one whose batches go as \
                     calldata, l1BeaconIgnore: true"
                ));
                None
            }
        };
        if net.l1_beacon_ignore {
            warnings.push(format!(
                "OptimismNetwork {network} spec.l1BeaconIgnore: op-node runs without a beacon \
                 API; derivation stops at the first blob batch, so the batcher must post \
                 calldata"
            ));
        }

        // A replica's static peer is its sequencer, when the host knows its peer ID.
        let sequencer_p2p = (!sequencer && p2p_on)
            .then(|| input.endpoint("sequencerRef", endpoint::ROLLUP_P2P))
            .flatten()
            .map(str::to_owned);

        let network_name = net.network_name.as_deref().map(canonical_network_name);
        let rollup = match (
            input.config_map(config_map_purpose::ROLLUP_CONFIG),
            &network_name,
        ) {
            (Some(cm), _) => ChainSource::File {
                config_map: cm.to_owned(),
                key: config_key(net.rollup_config.as_ref(), ROLLUP_CONFIG_KEY),
            },
            (None, Some(name)) => ChainSource::Named(name.clone()),
            (None, None) => {
                problems.push(format!(
                    "OptimismNetwork {network} spec.rollupConfig: a custom chain (no \
                     networkName) needs its rollup config, but the host provided no \
                     `rollup-config` ConfigMap; set rollupConfig.inline or \
                     rollupConfig.configMapRef"
                ));
                ChainSource::Named(String::new())
            }
        };
        let genesis = match (
            input.config_map(config_map_purpose::L2_GENESIS),
            &network_name,
        ) {
            (Some(cm), _) => ChainSource::File {
                config_map: cm.to_owned(),
                key: config_key(net.l2_genesis.as_ref(), L2_GENESIS_KEY),
            },
            (None, Some(name)) => ChainSource::Named(name.clone()),
            (None, None) => {
                problems.push(format!(
                    "OptimismNetwork {network} spec.l2Genesis: a custom chain (no networkName) \
                     needs its L2 genesis, but the host provided no `l2-genesis` ConfigMap; set \
                     l2Genesis.inline or l2Genesis.configMapRef"
                ));
                ChainSource::Named(String::new())
            }
        };

        if let Some(name) = &network_name
            && name.starts_with("base-")
        {
            warnings.push(format!(
                "network {name}: Base left the superchain-registry on 2026-04-27 and no longer \
                 runs op-node; current op-node and op-geth releases do not know this name"
            ));
        }
        // op-node knows the public L1s; any other (a devnet L1) needs its chain config file.
        let l1_chain_config = match input.config_map(config_map_purpose::L1_CHAIN_CONFIG) {
            Some(cm) => Some(ChainSource::File {
                config_map: cm.to_owned(),
                key: config_key(net.l1_chain_config.as_ref(), L1_CHAIN_CONFIG_KEY),
            }),
            None if !KNOWN_L1_CHAINS.contains(&net.l1_chain_id) => {
                problems.push(format!(
                    "OptimismNetwork {network} spec.l1ChainConfig: L1 chain {} is not Ethereum \
                     mainnet, Sepolia, Holesky or Hoodi, so op-node needs its chain config \
                     (--rollup.l1-chain-config); set l1ChainConfig.inline or \
                     l1ChainConfig.configMapRef to the `config` object of the L1's genesis",
                    net.l1_chain_id
                ));
                None
            }
            None => None,
        };

        // Sync mode: what the user chose, else the one that can work for this node (CRD docs).
        let el_bootnodes = match client {
            ExecutionClient::OpReth => spec
                .op_reth
                .as_ref()
                .is_some_and(|c| !c.p2p.bootnodes.is_empty()),
            ExecutionClient::OpGeth => spec
                .op_geth
                .as_ref()
                .is_some_and(|c| !c.p2p.bootnodes.is_empty()),
        };
        let sync_mode = spec.op_node.sync_mode.unwrap_or(
            if sequencer || (matches!(rollup, ChainSource::File { .. }) && !el_bootnodes) {
                SyncMode::ConsensusLayer
            } else {
                SyncMode::ExecutionLayer
            },
        );
        if sequencer && sync_mode == SyncMode::ExecutionLayer {
            warnings.push(
                "spec.opNode.syncMode: a sequencer with execution-layer sync waits for peers to \
                 sync its execution client from; a new chain's sequencer has none and never \
                 produces a block. Use consensus-layer unless it joins a running chain"
                    .to_owned(),
            );
        }

        // The execution client's settings that the plan needs.
        let (networking, el_p2p, el_metrics_port, el_prefix) = match client {
            ExecutionClient::OpReth => {
                let c = spec.op_reth.clone().unwrap_or_default();
                (
                    c.networking,
                    c.p2p.port,
                    OP_RETH_METRICS_PORT,
                    "spec.opReth",
                )
            }
            ExecutionClient::OpGeth => {
                let c = spec.op_geth.clone().unwrap_or_default();
                (
                    c.networking,
                    c.p2p.port,
                    OP_GETH_METRICS_PORT,
                    "spec.opGeth",
                )
            }
        };
        if !networking.http.enabled {
            problems.push(format!(
                "{el_prefix}.networking.http.enabled: the HTTP JSON-RPC server cannot be turned \
                 off: the Service, the probes, replicas and op-batcher use it; remove the field"
            ));
        }
        let metrics = net.shared_config.metrics.clone();
        let ports = Ports {
            op_node_rpc: spec.op_node.rpc.port,
            op_node_p2p: p2p_on.then_some(spec.op_node.p2p.listen_port),
            op_node_metrics: metrics.enabled.then_some(metrics.port),
            el_http: networking.http.port,
            el_ws: networking.ws.enabled.then_some(networking.ws.port),
            el_p2p,
            el_metrics: metrics.enabled.then_some(el_metrics_port),
        };
        problems.extend(port_conflicts(&ports, el_prefix, network));

        if client == ExecutionClient::OpGeth {
            warnings.push(
                "op-geth reached end of support on 2026-05-31 and does not follow Upgrade 19 \
                 (Karst): OP Sepolia activates it on 2026-06-17 and OP Mainnet on 2026-07-08. \
                 Use executionClient: op-reth for new nodes; keep op-geth only to finish with \
                 an existing datadir"
                    .to_owned(),
            );
            if let Some(geth) = &spec.op_geth
                && geth.gc_mode == opstack_plugin_sdk::crds::opnode::NodeMode::Archive
                && geth.sync_mode == opstack_plugin_sdk::crds::opnode::GethSyncMode::Snap
            {
                warnings.push(
                    "spec.opGeth: an archive node (gcMode: archive) cannot snap sync; set \
                     syncMode: full"
                        .to_owned(),
                );
            }
        }
        if sequencer && p2p_on && spec.op_node.p2p.discovery.enabled {
            warnings.push(
                "the sequencer has p2p discovery on: consider spec.opNode.p2p.discovery.enabled: \
                 false with its replicas in spec.opNode.p2p.staticPeers, so only known peers \
                 reach it"
                    .to_owned(),
            );
        }
        if !p2p_on && !sequencer {
            warnings.push(
                "p2p is off: this replica learns new blocks only from L1 batches, minutes behind \
                 the sequencer"
                    .to_owned(),
            );
        }
        // Fields whose flag the op-node release no longer has: never rendered, and said so.
        let removed = |flag: &str| releases.flag_removed(Component::OpNode, flag, &op_node_version);
        if spec.op_node.req_resp_sync.is_some()
            && let Some(since) = removed("syncmode.req-resp")
        {
            warnings.push(format!(
                "spec.opNode.reqRespSync: op-node removed the Req/Resp sync protocol \
                 (--syncmode.req-resp is a no-op from {since} on, and this node runs \
                 {op_node_version}); the field is ignored: remove it"
            ));
        }
        if let Some(lag) = spec.op_node.sequencer.as_ref().and_then(|s| s.max_safe_lag)
            && let Some(since) = removed("sequencer.max-safe-lag")
        {
            warnings.push(format!(
                "spec.opNode.sequencer.maxSafeLag: {lag} is not passed: op-node {since} removed \
                 --sequencer.max-safe-lag and refuses to start with it, and this node runs \
                 {op_node_version}; remove the field"
            ));
        }
        // A network the op-node release no longer has built in: `--network` would fail at start.
        if let ChainSource::Named(name) = &rollup
            && let Some(since) = releases.network_dropped(Component::OpNode, name, &op_node_version)
        {
            problems.push(format!(
                "OptimismNetwork {network} spec.networkName: op-node {since} dropped the built-in \
                 {name} (this node runs {op_node_version}); give the chain's rollup config \
                 explicitly (spec.rollupConfig.inline or configMapRef, and spec.l2Genesis), or \
                 pin spec.opNode.image to an op-node release before {since}"
            ));
        }

        if !problems.is_empty() {
            return Err(PluginError::Invalid(problems));
        }
        Ok(Plan {
            name,
            network: network.clone(),
            client,
            sequencer,
            jwt,
            p2p_key,
            sequencer_key,
            l1,
            l1_beacon,
            l1_beacon_ignore: net.l1_beacon_ignore,
            rollup,
            sync_mode,
            genesis,
            l1_chain_config,
            sequencer_http,
            sequencer_p2p,
            ports,
            logging: net.shared_config.logging.clone(),
            security: net.shared_config.security.clone(),
            shared_resources: net.shared_config.resources.clone(),
            op_node_image,
            op_node_version,
            el_image,
            spec,
            warnings,
        })
    }
}

/// L1 chains op-node knows without `--rollup.l1-chain-config`.
const KNOWN_L1_CHAINS: [i64; 4] = [1, 11_155_111, 17_000, 560_048];

/// op-node's legacy aliases, spelt the way op-node, op-geth and the registry all accept.
fn canonical_network_name(name: &str) -> String {
    match name {
        "mainnet" => "op-mainnet".to_owned(),
        "sepolia" => "op-sepolia".to_owned(),
        other => other.to_owned(),
    }
}

/// op-reth's `--chain` name of a superchain-registry network (op-reth.txt `--chain`): OP
/// Mainnet is `optimism`, a mainnet chain is its bare name, any other is `<chain>-<superchain>`.
pub fn op_reth_chain_name(network: &str) -> String {
    match network {
        "op-mainnet" => "optimism".to_owned(),
        "op-sepolia" => "optimism-sepolia".to_owned(),
        other => match other.strip_suffix("-mainnet") {
            Some(chain) => chain.to_owned(),
            None => other.to_owned(),
        },
    }
}

/// The key of a chain file in the host's ConfigMap: the user's `configMapRef` key, else the
/// inline document's conventional key.
fn config_key(
    source: Option<&opstack_plugin_sdk::crds::network::ChainConfigSource>,
    inline_key: &str,
) -> String {
    source
        .and_then(|s| s.config_map_ref.as_ref())
        .map_or_else(|| inline_key.to_owned(), |r| r.key.clone())
}

fn port_conflicts(ports: &Ports, el_prefix: &str, network: &str) -> Vec<String> {
    let mut named: Vec<(String, i32)> = vec![
        ("spec.opNode.rpc.port".to_owned(), ports.op_node_rpc),
        (format!("{el_prefix}.networking.http.port"), ports.el_http),
        (format!("{el_prefix}.p2p.port"), ports.el_p2p),
        (
            "the Engine API port (fixed, inside the pod)".to_owned(),
            ENGINE_PORT,
        ),
    ];
    if let Some(p) = ports.op_node_p2p {
        named.push(("spec.opNode.p2p.listenPort".to_owned(), p));
    }
    if let Some(p) = ports.op_node_metrics {
        named.push((
            format!("OptimismNetwork {network} spec.sharedConfig.metrics.port"),
            p,
        ));
    }
    if let Some(p) = ports.el_ws {
        named.push((format!("{el_prefix}.networking.ws.port"), p));
    }
    if let Some(p) = ports.el_metrics {
        named.push(("the execution client's metrics port (fixed)".to_owned(), p));
    }
    let mut problems = Vec::new();
    for (i, (a, port)) in named.iter().enumerate() {
        for (b, other) in &named[i + 1..] {
            if port == other {
                problems.push(format!(
                    "{a} and {b} are both {port}: op-node and the execution client share the \
                     pod's network, so every port must differ; change {a}"
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_reth_names_differ_from_op_node_names() {
        assert_eq!(op_reth_chain_name("op-mainnet"), "optimism");
        assert_eq!(op_reth_chain_name("op-sepolia"), "optimism-sepolia");
        assert_eq!(op_reth_chain_name("base-mainnet"), "base");
        assert_eq!(op_reth_chain_name("unichain-mainnet"), "unichain");
        assert_eq!(op_reth_chain_name("ink-sepolia"), "ink-sepolia");
        assert_eq!(canonical_network_name("sepolia"), "op-sepolia");
    }
}
