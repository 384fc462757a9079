//! Reading a copy of the superchain-registry the user keeps (a ConfigMap key or a file), so a
//! registry update needs no operator release.
//!
//! Two formats, as in ethereum-optimism/superchain-registry@8336d2ae (2026-08-04):
//! - `superchain/extra/addresses/addresses.json`: an object keyed by the L2 chain id (as a
//!   string), each value a map of contract and role names to addresses;
//! - `superchain/configs/<superchain>/<chain>.toml`: one chain, with top-level `chain_id` and
//!   `batch_inbox_addr`, an `[addresses]` table (only the Proxy addresses we need since
//!   2025-09, superchain-registry d56233c1 "reduce chain config addresses to minimal set
//!   (#1103)") and, in older files, `[roles]` with `UnsafeBlockSigner`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Contracts, DiscoveryError, Field, address};

/// A ConfigMap holds at most 1 MiB; anything much larger is not a registry file.
pub const MAX_REGISTRY_BYTES: usize = 4 << 20;

/// The registry's key for each field we pin (addresses.json and the TOML's `[addresses]`).
const KEYS: [(&str, Field); 8] = [
    ("SystemConfigProxy", Field::SystemConfig),
    ("OptimismPortalProxy", Field::OptimismPortal),
    ("DisputeGameFactoryProxy", Field::DisputeGameFactory),
    ("L1CrossDomainMessengerProxy", Field::L1CrossDomainMessenger),
    ("L1StandardBridgeProxy", Field::L1StandardBridge),
    ("L1ERC721BridgeProxy", Field::L1Erc721Bridge),
    (
        "OptimismMintableERC20FactoryProxy",
        Field::OptimismMintableErc20Factory,
    ),
    ("UnsafeBlockSigner", Field::UnsafeBlockSigner),
];

/// The addresses of L2 chain `chain_id` in `bytes` (either format, told apart by the first
/// character). `Ok(None)`: the data is fine but does not know this chain.
pub fn parse(bytes: &[u8], chain_id: u64) -> Result<Option<Contracts>, DiscoveryError> {
    let malformed = |detail: String| DiscoveryError::MalformedRegistry { detail };
    if bytes.len() > MAX_REGISTRY_BYTES {
        return Err(malformed(format!(
            "{} bytes is more than a registry file ({MAX_REGISTRY_BYTES} at most)",
            bytes.len()
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| malformed(format!("not UTF-8: {e}")))?;
    if text.trim_start().starts_with('{') {
        parse_addresses_json(text, chain_id)
    } else {
        parse_chain_toml(text, chain_id)
    }
}

fn parse_addresses_json(text: &str, chain_id: u64) -> Result<Option<Contracts>, DiscoveryError> {
    let all: BTreeMap<String, BTreeMap<String, serde_json::Value>> = serde_json::from_str(text)
        .map_err(|e| DiscoveryError::MalformedRegistry {
            detail: format!("addresses.json: {e}"),
        })?;
    let Some(entry) = all.get(&chain_id.to_string()) else {
        return Ok(None);
    };
    let mut contracts = Contracts::default();
    for (key, field) in KEYS {
        if let Some(value) = entry.get(key) {
            let path = format!("addresses.json[\"{chain_id}\"].{key}");
            let value = value
                .as_str()
                .ok_or_else(|| DiscoveryError::MalformedRegistry {
                    detail: format!("{path} is not a string"),
                })?;
            contracts.set_address(field, Some(registry_address(&path, field, value)?));
        }
    }
    Ok(Some(contracts))
}

#[derive(Deserialize)]
struct ChainToml {
    chain_id: u64,
    batch_inbox_addr: Option<String>,
    #[serde(default)]
    addresses: BTreeMap<String, toml::Value>,
    #[serde(default)]
    roles: BTreeMap<String, toml::Value>,
}

fn parse_chain_toml(text: &str, chain_id: u64) -> Result<Option<Contracts>, DiscoveryError> {
    let chain: ChainToml = toml::from_str(text).map_err(|e| DiscoveryError::MalformedRegistry {
        detail: format!("chain TOML: {}", e.message()),
    })?;
    if chain.chain_id != chain_id {
        return Ok(None);
    }
    let mut contracts = Contracts::default();
    let tables = [("addresses", &chain.addresses), ("roles", &chain.roles)];
    for (key, field) in KEYS {
        for (table, entries) in tables {
            if let Some(value) = entries.get(key) {
                let path = format!("[{table}].{key}");
                let value = value
                    .as_str()
                    .ok_or_else(|| DiscoveryError::MalformedRegistry {
                        detail: format!("{path} is not a string"),
                    })?;
                contracts.set_address(field, Some(registry_address(&path, field, value)?));
            }
        }
    }
    if let Some(inbox) = &chain.batch_inbox_addr {
        let inbox = registry_address("batch_inbox_addr", Field::BatchInbox, inbox)?;
        contracts.batch_inbox = Some(inbox);
    }
    Ok(Some(contracts))
}

fn registry_address(
    path: &str,
    field: Field,
    value: &str,
) -> Result<alloy_primitives::Address, DiscoveryError> {
    address::parse(path, field, value).map_err(|e| DiscoveryError::MalformedRegistry {
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::well_known;

    /// addresses.json shaped as the registry's, with op-sepolia's values (`addresses.json`
    /// at superchain-registry@8336d2ae) and keys we do not pin (AddressManager, roles) that must
    /// be ignored.
    const ADDRESSES_JSON: &str = r#"{
      "11155420": {
        "AddressManager": "0x9bFE9c5609311DF1c011c47642253B78a4f33F4B",
        "DisputeGameFactoryProxy": "0x05F9613aDB30026FFd634f38e5C4dFd30a197Fa1",
        "L1CrossDomainMessengerProxy": "0x58Cc85b8D04EA49cC6DBd3CbFFd00B4B8D6cb3ef",
        "L1ERC721BridgeProxy": "0xd83e03D576d23C9AEab8cC44Fa98d058D2176D1f",
        "L1StandardBridgeProxy": "0xFBb0621E0B23b5478B630BD55a5f21f67730B0F1",
        "OptimismMintableERC20FactoryProxy": "0x868D59fF9710159C2B330Cc0fBDF57144dD7A13b",
        "OptimismPortalProxy": "0x16Fc5058F25648194471939df75CF27A2fdC48BC",
        "SystemConfigProxy": "0x034edD2A225f7f429A63E0f1D2084B9E0A93b538",
        "Challenger": "0xfd1D2e729aE8eEe2E146c033bf4400fE75284301",
        "UnsafeBlockSigner": "0x57CACBB0d30b01eb2462e5dC940c161aff3230D3"
      },
      "10": {
        "SystemConfigProxy": "0x229047fed2591dbec1eF1118d64F7aF3dB9EB290"
      }
    }"#;

    /// A chain TOML shaped as the registry's (the minimal `[addresses]` of
    /// `superchain/configs/mainnet/op.toml` at superchain-registry@8336d2ae).
    const OP_TOML: &str = r#"
name = "OP Mainnet"
chain_id = 10
batch_inbox_addr = "0xFF00000000000000000000000000000000000010"
block_time = 2

[hardforks]
  canyon_time = 1704992401

[genesis]
  l2_time = 1686068903
  [genesis.l1]
    hash = "0x438335a20d98863a4c0c97999eb2481921ccd28553eac6f913af7c12aec04108"
    number = 17422590

[roles]
  ProxyAdminOwner = "0x5a0Aae59D09fccBdDb6C6CcEB07B7279367C3d2A"

[addresses]
  L1StandardBridgeProxy = "0x99C9fc46f92E8a1c0deC1b1747d010903E884bE1"
  OptimismPortalProxy = "0xbEb5Fc579115071764c7423A4f12eDde41f106Ed"
  SystemConfigProxy = "0x229047fed2591dbec1eF1118d64F7aF3dB9EB290"
  DisputeGameFactoryProxy = "0xe5965Ab5962eDc7477C8520243A95517CD252fA9"
"#;

    #[test]
    fn addresses_json_gives_the_chains_entry_and_ignores_unknown_keys() {
        let contracts = parse(ADDRESSES_JSON.as_bytes(), 11_155_420)
            .unwrap()
            .unwrap();
        let mut expected = well_known::by_name("op-sepolia").unwrap().contracts();
        expected.batch_inbox = None; // addresses.json has no batch inbox (it is in the TOML)
        assert_eq!(contracts, expected);
    }

    #[test]
    fn a_chain_the_registry_does_not_know_is_none_not_an_error() {
        assert_eq!(parse(ADDRESSES_JSON.as_bytes(), 8453).unwrap(), None);
        assert_eq!(parse(OP_TOML.as_bytes(), 8453).unwrap(), None);
    }

    #[test]
    fn a_chain_toml_gives_its_addresses_and_batch_inbox() {
        let contracts = parse(OP_TOML.as_bytes(), 10).unwrap().unwrap();
        let table = well_known::by_name("op-mainnet").unwrap().contracts();
        for field in [
            Field::SystemConfig,
            Field::OptimismPortal,
            Field::DisputeGameFactory,
            Field::L1StandardBridge,
            Field::BatchInbox,
        ] {
            assert_eq!(contracts.address(field), table.address(field), "{field}");
        }
        assert_eq!(contracts.l1_cross_domain_messenger, None);
    }

    #[test]
    fn an_older_chain_toml_gives_the_unsafe_block_signer_from_roles() {
        let older = OP_TOML.replace(
            "[roles]\n",
            "[roles]\n  UnsafeBlockSigner = \"0xAAAA45d9549EDA09E70937013520214382Ffc4A2\"\n",
        );
        let contracts = parse(older.as_bytes(), 10).unwrap().unwrap();
        assert_eq!(
            contracts.display(Field::UnsafeBlockSigner).as_deref(),
            Some("0xAAAA45d9549EDA09E70937013520214382Ffc4A2")
        );
    }

    #[test]
    fn broken_registry_data_is_refused_with_the_key_named() {
        let bad_address = ADDRESSES_JSON.replace(
            "0x034edD2A225f7f429A63E0f1D2084B9E0A93b538",
            "0x034edD2A225f7f429A63E0f1D2084B9E0A93b53",
        );
        let err = parse(bad_address.as_bytes(), 11_155_420).unwrap_err();
        assert_eq!(err.reason(), "MalformedRegistry");
        assert!(err.to_string().contains("SystemConfigProxy"), "{err}");

        for garbage in ["{not json", "chain_id = \"ten\"", "\u{0}\u{1}"] {
            let err = parse(garbage.as_bytes(), 10).unwrap_err();
            assert_eq!(err.reason(), "MalformedRegistry", "{garbage:?}");
        }
        let err = parse(&vec![b' '; MAX_REGISTRY_BYTES + 1], 10).unwrap_err();
        assert_eq!(err.reason(), "MalformedRegistry");
    }
}
