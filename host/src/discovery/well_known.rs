//! The operator's own table of public networks.
//!
//! Every address below is copied from ethereum-optimism/superchain-registry
//! (`superchain/extra/addresses/addresses.json` for the contracts and the unsafe block signer,
//! `superchain/configs/<superchain>/<chain>.toml` for `batch_inbox_addr`): OP Mainnet and OP
//! Sepolia at `8336d2aedd19b87a57b01ae36ba4afef8ea377d0` (2026-08-04), Base at the parent of
//! `0d9aefc41de3b6137f6794b82675d4448f62f097`, the commit that removed it. There is no
//! L2OutputOracle: these chains run fault proofs, the registry no longer lists one for them, and
//! op-proposer no longer takes `--l2oo-address` (ethereum-optimism/optimism `4de6002bf9`,
//! "Remove l2oo support (#18706)").
//!
//! Base left the registry on 2026-04-27 (superchain-registry `0d9aefc4`, "superchain: remove
//! base-mainnet|sepolia|sepolia-dev-0 (#1212)") and no longer runs op-node (base/node `e684286`
//! switched its consensus client to base-consensus; `bfff3f4` removed op-node): its entries are
//! kept as `historical`, good for finding its SystemConfig, not for pinning.

use alloy_primitives::Address;

use super::{Contracts, DiscoveryError, Field, address};

/// One public network as the registry described it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WellKnownNetwork {
    /// The op-node `--network` name: `<toml basename>-<superchain dir>` (`ChainNames` in
    /// ethereum-optimism/optimism@v1.19.6 `op-core/superchain/chain.go`).
    pub name: &'static str,
    pub chain_id: u64,
    pub l1_chain_id: u64,
    /// The addresses may be out of date: read them from L1 (SystemConfig) instead.
    pub historical: bool,
    pub system_config: &'static str,
    pub optimism_portal: &'static str,
    pub dispute_game_factory: &'static str,
    pub l1_cross_domain_messenger: &'static str,
    pub l1_standard_bridge: &'static str,
    pub l1_erc721_bridge: &'static str,
    pub optimism_mintable_erc20_factory: &'static str,
    pub batch_inbox: &'static str,
    pub unsafe_block_signer: &'static str,
}

pub const NETWORKS: [WellKnownNetwork; 4] = [
    // superchain-registry@8336d2ae: configs/mainnet/op.toml, addresses.json["10"].
    WellKnownNetwork {
        name: "op-mainnet",
        chain_id: 10,
        l1_chain_id: 1,
        historical: false,
        system_config: "0x229047fed2591dbec1eF1118d64F7aF3dB9EB290",
        optimism_portal: "0xbEb5Fc579115071764c7423A4f12eDde41f106Ed",
        dispute_game_factory: "0xe5965Ab5962eDc7477C8520243A95517CD252fA9",
        l1_cross_domain_messenger: "0x25ace71c97B33Cc4729CF772ae268934F7ab5fA1",
        l1_standard_bridge: "0x99C9fc46f92E8a1c0deC1b1747d010903E884bE1",
        l1_erc721_bridge: "0x5a7749f83b81B301cAb5f48EB8516B986DAef23D",
        optimism_mintable_erc20_factory: "0x75505a97BD334E7BD3C476893285569C4136Fa0F",
        batch_inbox: "0xFF00000000000000000000000000000000000010",
        unsafe_block_signer: "0xAAAA45d9549EDA09E70937013520214382Ffc4A2",
    },
    // superchain-registry@8336d2ae: configs/sepolia/op.toml, addresses.json["11155420"].
    WellKnownNetwork {
        name: "op-sepolia",
        chain_id: 11_155_420,
        l1_chain_id: 11_155_111,
        historical: false,
        system_config: "0x034edD2A225f7f429A63E0f1D2084B9E0A93b538",
        optimism_portal: "0x16Fc5058F25648194471939df75CF27A2fdC48BC",
        dispute_game_factory: "0x05F9613aDB30026FFd634f38e5C4dFd30a197Fa1",
        l1_cross_domain_messenger: "0x58Cc85b8D04EA49cC6DBd3CbFFd00B4B8D6cb3ef",
        l1_standard_bridge: "0xFBb0621E0B23b5478B630BD55a5f21f67730B0F1",
        l1_erc721_bridge: "0xd83e03D576d23C9AEab8cC44Fa98d058D2176D1f",
        optimism_mintable_erc20_factory: "0x868D59fF9710159C2B330Cc0fBDF57144dD7A13b",
        batch_inbox: "0xff00000000000000000000000000000011155420",
        unsafe_block_signer: "0x57CACBB0d30b01eb2462e5dC940c161aff3230D3",
    },
    // superchain-registry@0d9aefc4^ (before Base's removal): configs/mainnet/base.toml,
    // addresses.json["8453"]. The registry no longer tracks them: read them from L1 instead.
    WellKnownNetwork {
        name: "base-mainnet",
        chain_id: 8453,
        l1_chain_id: 1,
        historical: true,
        system_config: "0x73a79Fab69143498Ed3712e519A88a918e1f4072",
        optimism_portal: "0x49048044D57e1C92A77f79988d21Fa8fAF74E97e",
        dispute_game_factory: "0x43edB88C4B80fDD2AdFF2412A7BebF9dF42cB40e",
        l1_cross_domain_messenger: "0x866E82a600A1414e583f7F13623F1aC5d58b0Afa",
        l1_standard_bridge: "0x3154Cf16ccdb4C6d922629664174b904d80F2C35",
        l1_erc721_bridge: "0x608d94945A64503E642E6370Ec598e519a2C1E53",
        optimism_mintable_erc20_factory: "0x05cc379EBD9B30BbA19C6fA282AB29218EC61D84",
        batch_inbox: "0xFf00000000000000000000000000000000008453",
        unsafe_block_signer: "0xAf6E19BE0F9cE7f8afd49a1824851023A8249e8a",
    },
    // superchain-registry@0d9aefc4^: configs/sepolia/base.toml, addresses.json["84532"];
    // historical as above.
    WellKnownNetwork {
        name: "base-sepolia",
        chain_id: 84_532,
        l1_chain_id: 11_155_111,
        historical: true,
        system_config: "0xf272670eb55e895584501d564AfEB048bEd26194",
        optimism_portal: "0x49f53e41452C74589E85cA1677426Ba426459e85",
        dispute_game_factory: "0xd6E6dBf4F7EA0ac412fD8b65ED297e64BB7a06E1",
        l1_cross_domain_messenger: "0xC34855F4De64F1840e5686e64278da901e261f20",
        l1_standard_bridge: "0xfd0Bf71F60660E2f608ed56e1659C450eB113120",
        l1_erc721_bridge: "0x21eFD066e581FA55Ef105170Cc04d74386a09190",
        optimism_mintable_erc20_factory: "0xb1efB9650aD6d0CC1ed3Ac4a0B7f1D5732696D37",
        batch_inbox: "0xfF00000000000000000000000000000000084532",
        unsafe_block_signer: "0xb830b99c95Ea32300039624Cb567d324D4b1D83C",
    },
];

/// The entry named `name` (op-node's `--network` names).
pub fn by_name(name: &str) -> Option<&'static WellKnownNetwork> {
    NETWORKS.iter().find(|n| n.name == name)
}

/// The entry of L2 chain `chain_id`.
pub fn by_chain_id(chain_id: u64) -> Option<&'static WellKnownNetwork> {
    NETWORKS.iter().find(|n| n.chain_id == chain_id)
}

impl WellKnownNetwork {
    /// The table's addresses. Parsing cannot fail: a unit test parses every entry.
    pub fn contracts(&self) -> Contracts {
        let parse = |field: Field, value: &str| -> Option<Address> {
            Some(
                address::parse(self.name, field, value)
                    .expect("the well-known table holds valid addresses (unit-tested)"),
            )
        };
        Contracts {
            system_config: parse(Field::SystemConfig, self.system_config),
            optimism_portal: parse(Field::OptimismPortal, self.optimism_portal),
            dispute_game_factory: parse(Field::DisputeGameFactory, self.dispute_game_factory),
            l1_cross_domain_messenger: parse(
                Field::L1CrossDomainMessenger,
                self.l1_cross_domain_messenger,
            ),
            l1_standard_bridge: parse(Field::L1StandardBridge, self.l1_standard_bridge),
            l1_erc721_bridge: parse(Field::L1Erc721Bridge, self.l1_erc721_bridge),
            optimism_mintable_erc20_factory: parse(
                Field::OptimismMintableErc20Factory,
                self.optimism_mintable_erc20_factory,
            ),
            batch_inbox: parse(Field::BatchInbox, self.batch_inbox),
            unsafe_block_signer: parse(Field::UnsafeBlockSigner, self.unsafe_block_signer),
            start_block: None,
            system_config_version: None,
        }
    }

    /// The entry's addresses if it may be pinned: historical entries only name a SystemConfig
    /// to start from.
    pub fn pinnable_contracts(&self) -> Result<Contracts, DiscoveryError> {
        if self.historical {
            let contracts = self.contracts();
            return Err(DiscoveryError::HistoricalEntry {
                network: self.name.to_string(),
                system_config: contracts
                    .system_config
                    .expect("every entry has a SystemConfig"),
            });
        }
        Ok(self.contracts())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_address_is_valid_and_checksummed() {
        for network in &NETWORKS {
            let contracts = network.contracts();
            for field in Field::ADDRESSES {
                assert!(
                    contracts.address(field).is_some_and(|a| !a.is_zero()),
                    "{} {field}",
                    network.name
                );
            }
        }
    }

    #[test]
    fn names_and_chain_ids_are_unique() {
        for (i, a) in NETWORKS.iter().enumerate() {
            for b in &NETWORKS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.chain_id, b.chain_id);
            }
        }
    }

    #[test]
    fn op_mainnet_and_op_sepolia_are_current_with_their_l1s() {
        let mainnet = by_name("op-mainnet").unwrap();
        assert_eq!(
            (mainnet.chain_id, mainnet.l1_chain_id, mainnet.historical),
            (10, 1, false)
        );
        let sepolia = by_chain_id(11_155_420).unwrap();
        assert_eq!(sepolia.name, "op-sepolia");
        assert_eq!(sepolia.l1_chain_id, 11_155_111);
        assert!(sepolia.pinnable_contracts().is_ok());
    }

    #[test]
    fn base_entries_are_historical_and_point_to_their_system_config() {
        for name in ["base-mainnet", "base-sepolia"] {
            let err = by_name(name).unwrap().pinnable_contracts().unwrap_err();
            assert_eq!(err.reason(), "HistoricalEntry");
            assert!(err.to_string().contains("--system-config 0x"), "{err}");
        }
    }

    #[test]
    fn no_entry_carries_an_l2_output_oracle() {
        // The historical L2OutputOracle proxies (`L2OutputOracleProxy` in
        // superchain/extra/addresses/<superchain>/<chain>.json at superchain-registry@bd843893,
        // 2024-04-30) must not creep back in.
        let l2oos = [
            "0xdfe97868233d1aa22e815a266982f2cf17685a27",
            "0x90e9c4f8a994a250f6aefd61cafb4f2e895d458f",
            "0x56315b90c40730925ec5485cf004d835058518a0",
            "0x84457ca9d0163fbc4bbfe4dfbb20ba46e48df254",
        ];
        for network in &NETWORKS {
            let contracts = network.contracts();
            for field in Field::ADDRESSES {
                let text = contracts.display(field).unwrap().to_lowercase();
                assert!(!l2oos.contains(&text.as_str()), "{} {field}", network.name);
            }
        }
    }
}
