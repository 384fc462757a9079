//! Network discovery: which L1 contracts an OP Stack chain uses, read so that a lying or broken
//! L1 endpoint cannot make us pin a wrong address.
//!
//! L1 RPC answers are not trusted (`docs/security.md`, "Chain safety"):
//! - `eth_chainId` must equal `spec.l1ChainID` before anything else is read;
//! - every value is read at ONE pinned block `P = head − confirmations` (never `latest`, which
//!   moves under us and can be reorged), and read a second time at `P − 1`. Consecutive blocks
//!   rather than the same block twice: the second read then also catches a value being changed
//!   right now (an upgrade in flight is not a settled value), not only an endpoint that answers
//!   the same question two ways. Both reads are at least `confirmations` deep;
//! - every contract address must have code at `P` (the batch inbox and the unsafe block signer
//!   are not contracts by design, so they are only checked to be non-zero);
//! - a SystemConfig answer is cross-checked against the registry copy (or the well-known table)
//!   when one knows the same L2 chain.
//!
//! Shape: I/O is the [`l1::L1Reader`] trait (an alloy implementation and, in tests, fakes); every
//! decision is a pure function in [`trust`], [`system_config`], [`registry`], [`well_known`],
//! [`reread`] and [`health`]. The controller and `opstack-operator discover` call [`discover`].

pub mod address;
pub mod duration;
mod error;
pub mod health;
pub mod l1;
mod pipeline;
pub mod registry;
pub mod reread;
pub mod system_config;
pub mod trust;
pub mod well_known;

use std::fmt;
use std::time::Duration;

use alloy_primitives::Address;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use opstack_crds::network::{DiscoveredContracts, DiscoveryMethod, OptimismNetworkSpec};

pub use error::DiscoveryError;
pub use pipeline::discover;

/// One value discovery can pin. The names are those of `status.networkInfo.discoveredContracts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    SystemConfig,
    OptimismPortal,
    DisputeGameFactory,
    L1CrossDomainMessenger,
    L1StandardBridge,
    L1Erc721Bridge,
    OptimismMintableErc20Factory,
    BatchInbox,
    UnsafeBlockSigner,
    StartBlock,
    SystemConfigVersion,
}

impl Field {
    /// Every address-valued field, in the order they are read and reported.
    pub const ADDRESSES: [Field; 9] = [
        Field::SystemConfig,
        Field::OptimismPortal,
        Field::DisputeGameFactory,
        Field::L1CrossDomainMessenger,
        Field::L1StandardBridge,
        Field::L1Erc721Bridge,
        Field::OptimismMintableErc20Factory,
        Field::BatchInbox,
        Field::UnsafeBlockSigner,
    ];

    /// Every field, addresses first.
    pub const ALL: [Field; 11] = [
        Field::SystemConfig,
        Field::OptimismPortal,
        Field::DisputeGameFactory,
        Field::L1CrossDomainMessenger,
        Field::L1StandardBridge,
        Field::L1Erc721Bridge,
        Field::OptimismMintableErc20Factory,
        Field::BatchInbox,
        Field::UnsafeBlockSigner,
        Field::StartBlock,
        Field::SystemConfigVersion,
    ];

    /// Without these no component can be configured: op-node needs SystemConfig and the portal,
    /// op-proposer and op-challenger the DisputeGameFactory. The same three the CRD demands for
    /// `discoveryMethod: manual`.
    pub const REQUIRED: [Field; 3] = [
        Field::SystemConfig,
        Field::OptimismPortal,
        Field::DisputeGameFactory,
    ];

    /// The field's name in `status.networkInfo.discoveredContracts` (and, for the addresses a
    /// user can give, in `spec.contractAddresses`).
    pub fn status_name(self) -> &'static str {
        match self {
            Field::SystemConfig => "systemConfigAddr",
            Field::OptimismPortal => "optimismPortalAddr",
            Field::DisputeGameFactory => "disputeGameFactoryAddr",
            Field::L1CrossDomainMessenger => "l1CrossDomainMessengerAddr",
            Field::L1StandardBridge => "l1StandardBridgeAddr",
            Field::L1Erc721Bridge => "l1Erc721BridgeAddr",
            Field::OptimismMintableErc20Factory => "optimismMintableErc20FactoryAddr",
            Field::BatchInbox => "batchInboxAddr",
            Field::UnsafeBlockSigner => "unsafeBlockSignerAddr",
            Field::StartBlock => "startBlock",
            Field::SystemConfigVersion => "systemConfigVersion",
        }
    }

    /// Whether a contract must live at this address. The batch inbox is a conventional address
    /// nobody deploys to (`0xff00…<chain id>`), and the unsafe block signer is a key: code at
    /// either would be the surprise, so they are only checked to be non-zero.
    pub fn is_contract(self) -> bool {
        !matches!(
            self,
            Field::BatchInbox
                | Field::UnsafeBlockSigner
                | Field::StartBlock
                | Field::SystemConfigVersion
        )
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.status_name())
    }
}

/// Which discovery method produced a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    SystemConfig,
    SuperchainRegistry,
    WellKnown,
    Manual,
}

impl Method {
    /// The name recorded in `status.networkInfo.discoveredContracts.discoveryMethod`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::SystemConfig => "system-config",
            Method::SuperchainRegistry => "superchain-registry",
            Method::WellKnown => "well-known",
            Method::Manual => "manual",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of L1 contract addresses and SystemConfig facts; any of them may be unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contracts {
    pub system_config: Option<Address>,
    pub optimism_portal: Option<Address>,
    pub dispute_game_factory: Option<Address>,
    pub l1_cross_domain_messenger: Option<Address>,
    pub l1_standard_bridge: Option<Address>,
    pub l1_erc721_bridge: Option<Address>,
    pub optimism_mintable_erc20_factory: Option<Address>,
    pub batch_inbox: Option<Address>,
    pub unsafe_block_signer: Option<Address>,
    pub start_block: Option<u64>,
    pub system_config_version: Option<String>,
}

impl Contracts {
    /// The address of an address field (`None` for the non-address fields).
    pub fn address(&self, field: Field) -> Option<Address> {
        match field {
            Field::SystemConfig => self.system_config,
            Field::OptimismPortal => self.optimism_portal,
            Field::DisputeGameFactory => self.dispute_game_factory,
            Field::L1CrossDomainMessenger => self.l1_cross_domain_messenger,
            Field::L1StandardBridge => self.l1_standard_bridge,
            Field::L1Erc721Bridge => self.l1_erc721_bridge,
            Field::OptimismMintableErc20Factory => self.optimism_mintable_erc20_factory,
            Field::BatchInbox => self.batch_inbox,
            Field::UnsafeBlockSigner => self.unsafe_block_signer,
            Field::StartBlock | Field::SystemConfigVersion => None,
        }
    }

    /// Sets an address field; the non-address fields are left alone.
    pub fn set_address(&mut self, field: Field, value: Option<Address>) {
        let slot = match field {
            Field::SystemConfig => &mut self.system_config,
            Field::OptimismPortal => &mut self.optimism_portal,
            Field::DisputeGameFactory => &mut self.dispute_game_factory,
            Field::L1CrossDomainMessenger => &mut self.l1_cross_domain_messenger,
            Field::L1StandardBridge => &mut self.l1_standard_bridge,
            Field::L1Erc721Bridge => &mut self.l1_erc721_bridge,
            Field::OptimismMintableErc20Factory => &mut self.optimism_mintable_erc20_factory,
            Field::BatchInbox => &mut self.batch_inbox,
            Field::UnsafeBlockSigner => &mut self.unsafe_block_signer,
            Field::StartBlock | Field::SystemConfigVersion => return,
        };
        *slot = value;
    }

    /// Any field as text (addresses EIP-55 checksummed), for comparisons and messages.
    pub fn display(&self, field: Field) -> Option<String> {
        match field {
            Field::StartBlock => self.start_block.map(|n| n.to_string()),
            Field::SystemConfigVersion => self.system_config_version.clone(),
            _ => self.address(field).map(|a| a.to_checksum(None)),
        }
    }
}

/// What discovery is asked to find, from an `OptimismNetwork` spec or the command line.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscoveryRequest {
    /// `spec.l1ChainID`: the only chain we accept answers from.
    pub l1_chain_id: u64,
    /// `spec.chainID`: the L2, the key of the registry and the well-known table.
    pub chain_id: Option<u64>,
    /// `spec.networkName`, for the well-known table.
    pub network_name: Option<String>,
    pub method: DiscoveryMethod,
    /// Addresses given in `spec.contractAddresses`; they win over discovered ones.
    pub given: Contracts,
    /// The superchain-registry data the caller read (a ConfigMap key or a file): `addresses.json`
    /// or one chain's TOML. Reading it is the caller's job so that this module needs no API
    /// access and a registry update needs no operator release.
    pub registry: Option<Vec<u8>>,
}

impl DiscoveryRequest {
    /// The request an `OptimismNetwork` makes. `registry` is the content of
    /// `spec.contractAddresses.superchainRegistry`'s ConfigMap key, if the caller read it.
    pub fn from_spec(
        spec: &OptimismNetworkSpec,
        registry: Option<Vec<u8>>,
    ) -> Result<Self, DiscoveryError> {
        let l1_chain_id = positive("spec.l1ChainID", spec.l1_chain_id)?;
        let chain_id = positive("spec.chainID", spec.chain_id)?;
        let addresses = &spec.contract_addresses;
        let mut given = Contracts::default();
        for (field, value) in [
            (Field::SystemConfig, &addresses.system_config_addr),
            (
                Field::DisputeGameFactory,
                &addresses.dispute_game_factory_addr,
            ),
            (Field::OptimismPortal, &addresses.optimism_portal_addr),
            (
                Field::L1CrossDomainMessenger,
                &addresses.l1_cross_domain_messenger_addr,
            ),
            (Field::L1StandardBridge, &addresses.l1_standard_bridge_addr),
            (Field::BatchInbox, &addresses.batch_inbox_addr),
        ] {
            if let Some(value) = value {
                let path = format!("spec.contractAddresses.{}", field.status_name());
                given.set_address(field, Some(address::parse(&path, field, value)?));
            }
        }
        Ok(Self {
            l1_chain_id,
            chain_id: Some(chain_id),
            network_name: spec.network_name.clone(),
            method: addresses.discovery_method,
            given,
            registry,
        })
    }
}

fn positive(path: &str, value: i64) -> Result<u64, DiscoveryError> {
    u64::try_from(value)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| DiscoveryError::InvalidSpec {
            field: path.to_string(),
            value: value.to_string(),
            detail: "a chain id is a positive integer".to_string(),
        })
}

/// How carefully to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// How many blocks below the L1 head the values are read at. Small by default: SystemConfig
    /// values change only by governance transactions, and depth guards against the short reorgs
    /// of the head, not against finality attacks; 2 keeps discovery usable on a fresh devnet.
    pub confirmations: u64,
    /// Deadline of each L1 call (`spec.l1RpcTimeout`).
    pub timeout: Duration,
}

impl Options {
    /// The options of an `OptimismNetwork`: `spec.l1RpcTimeout`, and the default depth (the
    /// spec has no field for it yet).
    pub fn from_spec(spec: &OptimismNetworkSpec) -> Result<Self, DiscoveryError> {
        Ok(Self {
            timeout: duration::parse("spec.l1RpcTimeout", &spec.l1_rpc_timeout)?,
            ..Self::default()
        })
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            confirmations: 2,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A Kubernetes condition as discovery sees it; the controller adds times and generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionSummary {
    pub type_: &'static str,
    pub status: bool,
    /// CamelCase; for failures the [`DiscoveryError::reason`].
    pub reason: String,
    pub message: String,
}

/// A method that was tried before the one that answered (for `auto`), and why it did not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub method: Method,
    pub outcome: String,
}

/// A trusted discovery result: every check passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    pub method: Method,
    pub l1_chain_id: u64,
    /// The pinned L1 block every value was read (and code checked) at.
    pub block: u64,
    /// The block of the confirming second read (`block − 1`), when values were read from L1.
    pub second_read_block: Option<u64>,
    pub contracts: Contracts,
    /// Fields given in the spec that replaced (or filled in) what the method found.
    pub overridden: Vec<Field>,
    /// For `auto`: the methods tried before the one that answered.
    pub attempts: Vec<Attempt>,
}

impl Discovery {
    /// The status block the controller pins (`status.networkInfo.discoveredContracts`).
    pub fn to_status(&self, now: Timestamp) -> DiscoveredContracts {
        let c = &self.contracts;
        let text = |a: Option<Address>| a.map(|a| a.to_checksum(None));
        DiscoveredContracts {
            system_config_addr: text(c.system_config),
            dispute_game_factory_addr: text(c.dispute_game_factory),
            optimism_portal_addr: text(c.optimism_portal),
            l1_cross_domain_messenger_addr: text(c.l1_cross_domain_messenger),
            l1_standard_bridge_addr: text(c.l1_standard_bridge),
            l1_erc721_bridge_addr: text(c.l1_erc721_bridge),
            optimism_mintable_erc20_factory_addr: text(c.optimism_mintable_erc20_factory),
            batch_inbox_addr: text(c.batch_inbox),
            unsafe_block_signer_addr: text(c.unsafe_block_signer),
            // startBlock is bounded to i64 when decoded (system_config::decode_uint).
            start_block: c.start_block.and_then(|n| i64::try_from(n).ok()),
            system_config_version: c.system_config_version.clone(),
            discovery_method: Some(self.method.as_str().to_string()),
            l1_block_number: i64::try_from(self.block).ok(),
            last_discovery_time: Some(Time(now)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(contract_addresses: serde_json::Value) -> OptimismNetworkSpec {
        serde_json::from_value(serde_json::json!({
            "networkName": "op-sepolia",
            "chainID": 11155420,
            "l1ChainID": 11155111,
            "l1RpcUrl": "http://l1.example:8545",
            "l1RpcTimeout": "3s",
            "contractAddresses": contract_addresses,
        }))
        .unwrap()
    }

    #[test]
    fn a_spec_becomes_a_request_with_its_addresses_checked() {
        let spec = spec(serde_json::json!({
            "systemConfigAddr": "0x034edD2A225f7f429A63E0f1D2084B9E0A93b538",
            "batchInboxAddr": "0xff00000000000000000000000000000011155420",
            "discoveryMethod": "auto",
        }));
        let request = DiscoveryRequest::from_spec(&spec, None).unwrap();
        assert_eq!(
            (request.l1_chain_id, request.chain_id),
            (11_155_111, Some(11_155_420))
        );
        assert_eq!(request.method, DiscoveryMethod::Auto);
        assert!(request.given.system_config.is_some() && request.given.batch_inbox.is_some());
        assert_eq!(request.given.optimism_portal, None);
        assert_eq!(
            Options::from_spec(&spec).unwrap().timeout,
            Duration::from_secs(3)
        );
    }

    #[test]
    fn a_mistyped_spec_address_names_its_spec_path() {
        let spec = spec(serde_json::json!({
            "disputeGameFactoryAddr": "0x05f9613aDB30026FFd634f38e5C4dFd30a197Fa1",
        }));
        let err = DiscoveryRequest::from_spec(&spec, None).unwrap_err();
        assert_eq!(err.reason(), "InvalidSpec");
        assert!(
            err.to_string()
                .contains("spec.contractAddresses.disputeGameFactoryAddr"),
            "{err}"
        );
    }
}
