//! Discovery from one address: SystemConfig's getters.
//!
//! Selectors and return types are those of the SystemConfig ABI snapshot
//! `packages/contracts-bedrock/snapshots/abi/SystemConfig.json` at
//! ethereum-optimism/optimism@a5f807798b (SystemConfig semver 3.14.2, op-contracts v7); a unit
//! test recomputes each from its signature. Getters differ across SystemConfig versions (e.g.
//! `disputeGameFactory()` exists only since the fault-proof upgrade of 2024-04,
//! `l2OutputOracle()` only before it, and `batchInbox()` is gone from SystemConfig 4.0.0, the
//! snapshot at optimism@v1.19.6), so a getter that reverts or returns nothing is "absent", never
//! an error; only the required fields ([`super::Field::REQUIRED`]) must be found, by some getter.

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::{SolType, sol_data};

use super::l1::{CallOutcome, L1Reader};
use super::{Contracts, DiscoveryError, Field};

/// A getter of SystemConfig (or of the portal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Getter {
    pub signature: &'static str,
    pub selector: [u8; 4],
    pub field: Field,
}

/// The SystemConfig getters discovery calls, with their selectors (see the module docs).
pub const SYSTEM_CONFIG_GETTERS: [Getter; 10] = [
    Getter {
        signature: "optimismPortal()",
        selector: [0x0a, 0x49, 0xcb, 0x03],
        field: Field::OptimismPortal,
    },
    Getter {
        signature: "l1CrossDomainMessenger()",
        selector: [0xa7, 0x11, 0x98, 0x69],
        field: Field::L1CrossDomainMessenger,
    },
    Getter {
        signature: "l1StandardBridge()",
        selector: [0x07, 0x8f, 0x29, 0xcf],
        field: Field::L1StandardBridge,
    },
    Getter {
        signature: "l1ERC721Bridge()",
        selector: [0xc4, 0xe8, 0xdd, 0xfa],
        field: Field::L1Erc721Bridge,
    },
    Getter {
        signature: "optimismMintableERC20Factory()",
        selector: [0x9b, 0x7d, 0x7f, 0x0a],
        field: Field::OptimismMintableErc20Factory,
    },
    // Since 2025-03 SystemConfig answers this through the portal; 2024-04..2025-03 from its own slot.
    Getter {
        signature: "disputeGameFactory()",
        selector: [0xf2, 0xb4, 0xe6, 0x17],
        field: Field::DisputeGameFactory,
    },
    Getter {
        signature: "batchInbox()",
        selector: [0xda, 0xc6, 0xe6, 0x3a],
        field: Field::BatchInbox,
    },
    Getter {
        signature: "unsafeBlockSigner()",
        selector: [0x1f, 0xd1, 0x9e, 0xe1],
        field: Field::UnsafeBlockSigner,
    },
    Getter {
        signature: "startBlock()",
        selector: [0x48, 0xcd, 0x4c, 0xb1],
        field: Field::StartBlock,
    },
    Getter {
        signature: "version()",
        selector: [0x54, 0xfd, 0x4d, 0x50],
        field: Field::SystemConfigVersion,
    },
];

/// OptimismPortal2's `disputeGameFactory()` (`snapshots/abi/OptimismPortal2.json`, same
/// commit): the factory the portal actually proves withdrawals against, so the authoritative
/// answer.
pub const PORTAL_DISPUTE_GAME_FACTORY: Getter = Getter {
    signature: "disputeGameFactory()",
    selector: [0xf2, 0xb4, 0xe6, 0x17],
    field: Field::DisputeGameFactory,
};

/// A decoded getter result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Address(Address),
    Number(u64),
    Text(String),
}

/// Decodes a getter's return data. `Ok(None)`: the getter is absent (it reverted, or returned
/// nothing). Anything else that does not decode strictly is a malformed answer: a real
/// contract's ABI encoder never produces it.
pub fn decode(
    getter: &Getter,
    outcome: &CallOutcome,
    call: &str,
) -> Result<Option<Value>, DiscoveryError> {
    let data = match outcome {
        CallOutcome::Reverted => return Ok(None),
        CallOutcome::Returned(data) if data.is_empty() => return Ok(None),
        CallOutcome::Returned(data) => data,
    };
    let malformed = |detail: String| DiscoveryError::MalformedResponse {
        call: call.to_string(),
        detail,
    };
    match getter.field {
        Field::StartBlock => decode_uint(data).map(Value::Number).map_err(malformed),
        Field::SystemConfigVersion => decode_version(data).map(Value::Text).map_err(malformed),
        _ => decode_address(data).map(Value::Address).map_err(malformed),
    }
    .map(Some)
}

fn word(data: &Bytes) -> Result<[u8; 32], String> {
    <[u8; 32]>::try_from(data.as_ref())
        .map_err(|_| format!("expected one 32-byte word, got {} bytes", data.len()))
}

/// An ABI `address`: exactly one word whose upper 12 bytes are zero.
pub fn decode_address(data: &Bytes) -> Result<Address, String> {
    let word = word(data)?;
    if word[..12].iter().any(|&b| b != 0) {
        return Err(format!(
            "not an ABI-encoded address (upper 12 bytes are not zero): 0x{}",
            alloy_primitives::hex::encode(word)
        ));
    }
    Ok(Address::from_slice(&word[12..]))
}

/// An ABI `uint256` that must fit the status' `int64` (a block number).
pub fn decode_uint(data: &Bytes) -> Result<u64, String> {
    let value = U256::from_be_bytes(word(data)?);
    u64::try_from(value)
        .ok()
        .filter(|&v| i64::try_from(v).is_ok())
        .ok_or_else(|| format!("{value} is not a plausible L1 block number"))
}

/// An ABI `string` that looks like a semver: short and printable, because it is copied into
/// status and shown to people.
pub fn decode_version(data: &Bytes) -> Result<String, String> {
    let text = <sol_data::String as SolType>::abi_decode(data)
        .map_err(|e| format!("not an ABI-encoded string: {e}"))?;
    if text.is_empty()
        || text.len() > 64
        || !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
    {
        return Err(format!("{text:?} does not look like a contract version"));
    }
    Ok(text)
}

/// Puts a decoded value into `contracts`.
pub fn store(contracts: &mut Contracts, field: Field, value: Value) {
    match value {
        Value::Address(a) => contracts.set_address(field, Some(a)),
        Value::Number(n) => contracts.start_block = Some(n),
        Value::Text(t) => contracts.system_config_version = Some(t),
    }
}

/// Chooses the DisputeGameFactory between SystemConfig's getter and the portal's. The portal
/// is authoritative; SystemConfig's own slot (2024-04..2025-03) is used only when the portal
/// has no getter. Two different non-zero answers mean the deployment is inconsistent, which we
/// refuse to guess about.
pub fn resolve_dispute_game_factory(
    from_system_config: Option<Address>,
    from_portal: Option<Address>,
    system_config: Address,
    portal: Option<Address>,
) -> Result<Option<Address>, DiscoveryError> {
    let nonzero = |a: Option<Address>| a.filter(|a| !a.is_zero());
    match (nonzero(from_system_config), nonzero(from_portal)) {
        (Some(a), Some(b)) if a != b => Err(DiscoveryError::Inconsistent {
            field: Field::DisputeGameFactory,
            a: a.to_checksum(None),
            a_source: format!("SystemConfig {system_config} disputeGameFactory()"),
            b: b.to_checksum(None),
            b_source: format!(
                "OptimismPortal {} disputeGameFactory()",
                portal.map(|p| p.to_checksum(None)).unwrap_or_default()
            ),
        }),
        (_, Some(b)) => Ok(Some(b)),
        (a, None) => Ok(a.or(from_portal).or(from_system_config)),
    }
}

/// Reads every getter of the SystemConfig at `system_config`, at `block`.
pub async fn read<L: L1Reader>(
    l1: &L,
    system_config: Address,
    block: u64,
) -> Result<Contracts, DiscoveryError> {
    let mut contracts = Contracts {
        system_config: Some(system_config),
        ..Contracts::default()
    };
    let mut from_system_config = None;
    for getter in &SYSTEM_CONFIG_GETTERS {
        let label = format!("SystemConfig {system_config} {}", getter.signature);
        let outcome = l1
            .call(
                system_config,
                Bytes::copy_from_slice(&getter.selector),
                block,
                &label,
            )
            .await?;
        let call = format!("eth_call {label} at block {block}");
        match decode(getter, &outcome, &call)? {
            Some(Value::Address(a)) if getter.field == Field::DisputeGameFactory => {
                from_system_config = Some(a)
            }
            Some(value) => store(&mut contracts, getter.field, value),
            None => {}
        }
    }
    let mut from_portal = None;
    if let Some(portal) = contracts.optimism_portal.filter(|p| !p.is_zero()) {
        let getter = &PORTAL_DISPUTE_GAME_FACTORY;
        let label = format!("OptimismPortal {portal} {}", getter.signature);
        let outcome = l1
            .call(
                portal,
                Bytes::copy_from_slice(&getter.selector),
                block,
                &label,
            )
            .await?;
        let call = format!("eth_call {label} at block {block}");
        if let Some(Value::Address(a)) = decode(getter, &outcome, &call)? {
            from_portal = Some(a);
        }
    }
    contracts.dispute_game_factory = resolve_dispute_game_factory(
        from_system_config,
        from_portal,
        system_config,
        contracts.optimism_portal,
    )?;
    Ok(contracts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, keccak256};
    use alloy_sol_types::SolValue;

    #[test]
    fn selectors_are_those_of_the_signatures() {
        for getter in SYSTEM_CONFIG_GETTERS
            .iter()
            .chain([&PORTAL_DISPUTE_GAME_FACTORY])
        {
            let hash = keccak256(getter.signature.as_bytes());
            assert_eq!(getter.selector, hash[..4], "{}", getter.signature);
        }
    }

    fn returned(bytes: Vec<u8>) -> CallOutcome {
        CallOutcome::Returned(Bytes::from(bytes))
    }

    fn getter(field: Field) -> &'static Getter {
        SYSTEM_CONFIG_GETTERS
            .iter()
            .find(|g| g.field == field)
            .unwrap()
    }

    #[test]
    fn a_getter_that_reverts_or_returns_nothing_is_absent_not_an_error() {
        let g = getter(Field::DisputeGameFactory);
        assert_eq!(decode(g, &CallOutcome::Reverted, "c").unwrap(), None);
        assert_eq!(decode(g, &returned(vec![]), "c").unwrap(), None);
    }

    #[test]
    fn addresses_decode_only_from_a_clean_abi_word() {
        let a = address!("0x229047fed2591dbec1eF1118d64F7aF3dB9EB290");
        let g = getter(Field::OptimismPortal);
        assert_eq!(
            decode(g, &returned(a.abi_encode()), "c").unwrap(),
            Some(Value::Address(a))
        );
        let mut dirty = a.abi_encode();
        dirty[0] = 1;
        for bad in [dirty, vec![0u8; 31], vec![0u8; 64], vec![0xff]] {
            let err = decode(g, &returned(bad), "eth_call optimismPortal()").unwrap_err();
            assert_eq!(err.reason(), "MalformedResponse");
            assert!(err.to_string().contains("optimismPortal()"), "{err}");
        }
    }

    #[test]
    fn start_block_must_be_a_plausible_block_number() {
        let g = getter(Field::StartBlock);
        let ok = U256::from(17_422_590u64).abi_encode();
        assert_eq!(
            decode(g, &returned(ok), "c").unwrap(),
            Some(Value::Number(17_422_590))
        );
        let huge = U256::MAX.abi_encode();
        assert_eq!(
            decode(g, &returned(huge), "c").unwrap_err().reason(),
            "MalformedResponse"
        );
    }

    #[test]
    fn version_must_look_like_a_version() {
        let g = getter(Field::SystemConfigVersion);
        let ok = "3.14.2".to_string().abi_encode();
        assert_eq!(
            decode(g, &returned(ok), "c").unwrap(),
            Some(Value::Text("3.14.2".into()))
        );
        for bad in ["", "<script>", &"9".repeat(65)] {
            let err = decode(g, &returned(bad.to_string().abi_encode()), "c").unwrap_err();
            assert_eq!(err.reason(), "MalformedResponse", "{bad:?}");
        }
        assert_eq!(
            decode(g, &returned(vec![1, 2, 3]), "c")
                .unwrap_err()
                .reason(),
            "MalformedResponse"
        );
    }

    #[test]
    fn the_portal_answers_the_dispute_game_factory_when_both_agree_or_only_it_knows() {
        let sc = address!("0x229047fed2591dbec1eF1118d64F7aF3dB9EB290");
        let portal = Some(address!("0xbEb5Fc579115071764c7423A4f12eDde41f106Ed"));
        let dgf = address!("0xe5965Ab5962eDc7477C8520243A95517CD252fA9");
        assert_eq!(
            resolve_dispute_game_factory(Some(dgf), Some(dgf), sc, portal).unwrap(),
            Some(dgf)
        );
        assert_eq!(
            resolve_dispute_game_factory(None, Some(dgf), sc, portal).unwrap(),
            Some(dgf)
        );
        assert_eq!(
            resolve_dispute_game_factory(Some(dgf), None, sc, portal).unwrap(),
            Some(dgf)
        );
        assert_eq!(
            resolve_dispute_game_factory(None, None, sc, portal).unwrap(),
            None
        );
    }

    #[test]
    fn a_system_config_and_portal_that_disagree_on_the_factory_pin_nothing() {
        let sc = address!("0x229047fed2591dbec1eF1118d64F7aF3dB9EB290");
        let portal = Some(address!("0xbEb5Fc579115071764c7423A4f12eDde41f106Ed"));
        let a = address!("0xe5965Ab5962eDc7477C8520243A95517CD252fA9");
        let b = address!("0x05F9613aDB30026FFd634f38e5C4dFd30a197Fa1");
        let err = resolve_dispute_game_factory(Some(a), Some(b), sc, portal).unwrap_err();
        assert_eq!(err.reason(), "Inconsistent");
        let message = err.to_string();
        assert!(message.contains("disputeGameFactoryAddr"), "{message}");
        assert!(message.contains(&a.to_checksum(None)) && message.contains(&b.to_checksum(None)));
    }
}
