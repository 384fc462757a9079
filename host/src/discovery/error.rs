//! The one error type of discovery and of the L1 health probe.
//!
//! Every variant name doubles as a metric label and a condition reason ([`DiscoveryError::reason`]),
//! so dashboards can count wrong chains separately from flaky endpoints. Every message names the
//! field or address involved and what to do about it: the person reading it is a chain operator
//! looking at `kubectl describe`, not at our source.

use std::time::Duration;

use alloy_primitives::Address;

use super::Field;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error(
        "{field} is {value:?}: {detail}; fix the value in the OptimismNetwork spec (or the command line)"
    )]
    InvalidSpec {
        field: String,
        value: String,
        detail: String,
    },

    #[error(
        "{} is the zero address (from {from}); nothing can live there, so it is not pinned; \
         check that {from} is the right one for this chain or give {} in spec.contractAddresses",
        field.status_name(),
        field.status_name()
    )]
    ZeroAddress { field: Field, from: String },

    #[error(
        "the L1 endpoint reports chain id {got}, but spec.l1ChainID is {expected}; nothing read from it \
         is trusted; point spec.l1RpcUrl at an L1 node of chain {expected} or correct spec.l1ChainID"
    )]
    WrongChainId { expected: u64, got: u64 },

    #[error(
        "the L1 head is block {head}, too short to read {confirmations} blocks deep and re-read one \
         block earlier; wait for L1 to grow or lower the confirmation depth"
    )]
    NotDeepEnough { head: u64, confirmations: u64 },

    #[error(
        "{} {addr} has no contract code on L1 at block {block}; it is not pinned; check the address \
         (and that spec.l1ChainID names the L1 it was deployed on)",
        field.status_name()
    )]
    NoCode {
        field: Field,
        addr: Address,
        block: u64,
    },

    #[error(
        "{call} got no answer within {after:?}; nothing was pinned; check that the L1 endpoint is \
         reachable and healthy, or raise spec.l1RpcTimeout"
    )]
    Timeout { call: String, after: Duration },

    #[error(
        "{call} failed: {detail}; nothing was pinned; check spec.l1RpcUrl and the L1 endpoint's health"
    )]
    Transport { call: String, detail: String },

    #[error(
        "{call} returned something that is not a valid answer: {detail}; nothing was pinned; the L1 \
         endpoint is misbehaving or is not an Ethereum JSON-RPC node"
    )]
    MalformedResponse { call: String, detail: String },

    #[error(
        "{} changed between two reads: {first} at L1 block {first_block}, {second} at block {second_block}; \
         a value that is being changed (or that the endpoint answers inconsistently) is not pinned; \
         it is read again later",
        field.status_name()
    )]
    ValueChanged {
        field: Field,
        first: String,
        first_block: u64,
        second: String,
        second_block: u64,
    },

    #[error(
        "{} disagrees: {a} from {a_source} but {b} from {b_source}; nothing was pinned; find out \
         which is right and give it in spec.contractAddresses (or fix the source that is wrong)",
        field.status_name()
    )]
    Inconsistent {
        field: Field,
        a: String,
        a_source: String,
        b: String,
        b_source: String,
    },

    #[error(
        "the well-known network {network} is L2 chain {chain_id} on L1 chain {l1_chain_id}, but {detail}; \
         correct spec.networkName, spec.chainID or spec.l1ChainID"
    )]
    NetworkMismatch {
        network: String,
        chain_id: u64,
        l1_chain_id: u64,
        detail: String,
    },

    #[error("{what}; {fix}")]
    NotFound { what: String, fix: String },

    #[error(
        "network {network} is in the well-known table only as a historical entry (it left the \
         superchain-registry and its addresses may have changed since); read it from L1 instead: \
         set spec.contractAddresses.systemConfigAddr to its SystemConfig {system_config} \
         (`opstack-operator discover --system-config {system_config}`)"
    )]
    HistoricalEntry {
        network: String,
        system_config: Address,
    },

    #[error(
        "the superchain-registry data could not be read: {detail}; give the registry's \
         superchain/extra/addresses/addresses.json or a superchain/configs/<superchain>/<chain>.toml"
    )]
    MalformedRegistry { detail: String },
}

impl DiscoveryError {
    /// The variant's name: a metric label and a Kubernetes condition reason (CamelCase, stable).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSpec { .. } => "InvalidSpec",
            Self::ZeroAddress { .. } => "ZeroAddress",
            Self::WrongChainId { .. } => "WrongChainId",
            Self::NotDeepEnough { .. } => "NotDeepEnough",
            Self::NoCode { .. } => "NoCode",
            Self::Timeout { .. } => "Timeout",
            Self::Transport { .. } => "Transport",
            Self::MalformedResponse { .. } => "MalformedResponse",
            Self::ValueChanged { .. } => "ValueChanged",
            Self::Inconsistent { .. } => "Inconsistent",
            Self::NetworkMismatch { .. } => "NetworkMismatch",
            Self::NotFound { .. } => "NotFound",
            Self::HistoricalEntry { .. } => "HistoricalEntry",
            Self::MalformedRegistry { .. } => "MalformedRegistry",
        }
    }

    /// Whether the L1 endpoint itself failed (as opposed to answering something we reject):
    /// these feed the `L1Connected` condition and its backoff, not `ContractsDiscovered`.
    pub fn is_l1_unavailable(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::Transport { .. })
    }
}
