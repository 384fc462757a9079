//! Names the host and the renderers agree on (`plugins/CONVENTIONS.md`), in one place so
//! neither side spells them on its own.

/// Key of the engine JWT in a Secret the host generates.
pub const GENERATED_JWT_KEY: &str = "jwt.hex";
/// Key of the op-node p2p identity key in a Secret the host generates.
pub const GENERATED_P2P_KEY: &str = "p2p.key";
/// Key of the rollup config in the network's generated ConfigMap.
pub const ROLLUP_CONFIG_KEY: &str = "rollup.json";
/// Key of the L2 genesis in the network's generated ConfigMap.
pub const L2_GENESIS_KEY: &str = "genesis.json";
/// Key of the L1 chain config in the network's generated ConfigMap.
pub const L1_CHAIN_CONFIG_KEY: &str = "l1-chain-config.json";

/// Secret purposes passed to plugins in `network.secrets`.
pub mod secret_purpose {
    pub const JWT: &str = "jwt";
    pub const P2P_KEY: &str = "p2p-key";
    pub const SEQUENCER_KEY: &str = "sequencer-key";
    pub const L1_RPC_URL: &str = "l1-rpc-url";
    pub const L1_BEACON_URL: &str = "l1-beacon-url";
    pub const PRIVATE_KEY: &str = "private-key";
    pub const SIGNER_TLS: &str = "signer-tls";
}

/// ConfigMap purposes passed to plugins in `network.config-maps`.
pub mod config_map_purpose {
    pub const ROLLUP_CONFIG: &str = "rollup-config";
    pub const L2_GENESIS: &str = "l2-genesis";
    pub const L1_CHAIN_CONFIG: &str = "l1-chain-config";
}

/// Endpoint names of a referenced `OpNode`.
pub mod endpoint {
    pub const EXECUTION_RPC: &str = "execution-rpc";
    pub const EXECUTION_WS: &str = "execution-ws";
    pub const ROLLUP_RPC: &str = "rollup-rpc";
    /// op-node's libp2p multiaddr, `/dns4/<p2p Service>.<ns>.svc/tcp/<port>/p2p/<peer id>`:
    /// only when the host knows the node's P2P key (its peer ID).
    pub const ROLLUP_P2P: &str = "rollup-p2p";
}

/// The label of the namespace the operator runs in, which NetworkPolicies admit the operator's
/// pod from (to read a component's live status). Only who may label namespaces can set it.
pub const OPERATOR_NAMESPACE_LABEL: &str = "optimism.io/operator-namespace";
/// The operator pod's own label (`deploy/operator.yaml`).
pub const OPERATOR_POD_LABEL: (&str, &str) = ("app.kubernetes.io/name", "opstack-operator");

/// Name of the headless Service through which an `OpNode`'s P2P ports are reached.
pub fn p2p_service(opnode: &str) -> String {
    format!("{opnode}-p2p")
}

/// Name of the engine JWT Secret the host generates for an `OpNode`.
pub fn generated_jwt_secret(opnode: &str) -> String {
    format!("{opnode}-jwt")
}

/// Name of the p2p key Secret the host generates for an `OpNode`.
pub fn generated_p2p_secret(opnode: &str) -> String {
    format!("{opnode}-p2p-key")
}

/// Name of the ConfigMap holding a network's inline rollup config and genesis.
pub fn chain_config_map(network: &str) -> String {
    format!("{network}-chain-config")
}
