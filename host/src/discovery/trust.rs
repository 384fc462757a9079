//! The pure decisions of discovery: what may be trusted, and what is pinned.

use alloy_primitives::Address;

use super::{Contracts, DiscoveryError, Field, Method};

/// Refuses an endpoint of another chain: a Sepolia node behind a mainnet URL must not make us
/// pin Sepolia contracts for a mainnet chain (or the reverse).
pub fn check_chain_id(expected: u64, got: u64) -> Result<(), DiscoveryError> {
    if expected == got {
        Ok(())
    } else {
        Err(DiscoveryError::WrongChainId { expected, got })
    }
}

/// The block every value is read at: `confirmations` below the head, and one more block below
/// it must exist for the second read (see the module docs of `discovery`).
pub fn pin_block(head: u64, confirmations: u64) -> Result<u64, DiscoveryError> {
    head.checked_sub(confirmations)
        .filter(|&block| block >= 1)
        .ok_or(DiscoveryError::NotDeepEnough {
            head,
            confirmations,
        })
}

/// Two reads of the same contract must agree on every value; the first difference is reported.
pub fn compare_reads(
    first: &Contracts,
    first_block: u64,
    second: &Contracts,
    second_block: u64,
) -> Result<(), DiscoveryError> {
    for field in Field::ALL {
        let (a, b) = (first.display(field), second.display(field));
        if a != b {
            let show = |v: Option<String>| v.unwrap_or_else(|| "absent".to_string());
            return Err(DiscoveryError::ValueChanged {
                field,
                first: show(a),
                first_block,
                second: show(b),
                second_block,
            });
        }
    }
    Ok(())
}

/// Addresses given in the spec win over what a method found (the CRD's contract for
/// `spec.contractAddresses`); returns the fields whose value the spec set or changed.
pub fn apply_overrides(found: Contracts, given: &Contracts) -> (Contracts, Vec<Field>) {
    let mut result = found;
    let mut overridden = Vec::new();
    for field in Field::ADDRESSES {
        if let Some(address) = given.address(field) {
            if result.address(field) != Some(address) {
                overridden.push(field);
            }
            result.set_address(field, Some(address));
        }
    }
    (result, overridden)
}

/// Makes a method's answer pinnable: every required field present and non-zero; an optional
/// zero address (a getter of a contract never set up, e.g. an unset `l1ERC721Bridge`) is
/// dropped rather than pinned.
pub fn finalize(mut contracts: Contracts, method: Method) -> Result<Contracts, DiscoveryError> {
    for field in Field::ADDRESSES {
        match contracts.address(field) {
            Some(a) if a.is_zero() && Field::REQUIRED.contains(&field) => {
                return Err(DiscoveryError::ZeroAddress {
                    field,
                    from: method.to_string(),
                });
            }
            Some(a) if a.is_zero() => contracts.set_address(field, None),
            Some(_) => {}
            None if Field::REQUIRED.contains(&field) => {
                return Err(missing(field, method, &contracts));
            }
            None => {}
        }
    }
    Ok(contracts)
}

fn missing(field: Field, method: Method, contracts: &Contracts) -> DiscoveryError {
    let mut what = format!("discovery method {method} found no {field}");
    if method == Method::SystemConfig && field == Field::DisputeGameFactory {
        what.push_str(&format!(
            " (SystemConfig version {} and its OptimismPortal have no disputeGameFactory(): \
             the chain may predate fault proofs)",
            contracts
                .system_config_version
                .as_deref()
                .unwrap_or("unknown")
        ));
    }
    DiscoveryError::NotFound {
        what,
        fix: format!(
            "give spec.contractAddresses.{field}, or choose another \
             spec.contractAddresses.discoveryMethod"
        ),
    }
}

/// The addresses that must have contract code on L1.
pub fn contract_addresses(contracts: &Contracts) -> Vec<(Field, Address)> {
    Field::ADDRESSES
        .into_iter()
        .filter(|field| field.is_contract())
        .filter_map(|field| contracts.address(field).map(|a| (field, a)))
        .collect()
}

/// Fields compared with a reference copy (registry or well-known table): the proxies and the
/// batch inbox, which stay put across contract upgrades. Not the unsafe block signer: the
/// chain's owner rotates that key on L1 and copies lag behind.
pub const CROSS_CHECKED: [Field; 8] = [
    Field::SystemConfig,
    Field::OptimismPortal,
    Field::DisputeGameFactory,
    Field::L1CrossDomainMessenger,
    Field::L1StandardBridge,
    Field::L1Erc721Bridge,
    Field::OptimismMintableErc20Factory,
    Field::BatchInbox,
];

/// What L1 said must match an independent copy (the registry copy, or the well-known table)
/// wherever both know a value (`docs/security.md`, "Chain safety").
pub fn cross_check(
    from_l1: &Contracts,
    l1_source: &str,
    reference: &Contracts,
    reference_source: &str,
) -> Result<(), DiscoveryError> {
    for field in CROSS_CHECKED {
        if let (Some(a), Some(b)) = (from_l1.address(field), reference.address(field))
            && a != b
        {
            return Err(DiscoveryError::Inconsistent {
                field,
                a: a.to_checksum(None),
                a_source: l1_source.to_string(),
                b: b.to_checksum(None),
                b_source: reference_source.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    fn full() -> Contracts {
        crate::discovery::well_known::by_name("op-mainnet")
            .unwrap()
            .contracts()
    }

    #[test]
    fn wrong_l1_chain_id_is_refused_naming_both_ids() {
        assert!(check_chain_id(1, 1).is_ok());
        let err = check_chain_id(1, 11_155_111).unwrap_err();
        assert_eq!(err.reason(), "WrongChainId");
        let message = err.to_string();
        assert!(message.contains("11155111") && message.contains("spec.l1ChainID is 1"));
    }

    #[test]
    fn values_are_read_confirmations_deep_with_room_for_a_second_read() {
        assert_eq!(pin_block(100, 2).unwrap(), 98);
        assert_eq!(pin_block(3, 2).unwrap(), 1);
        assert_eq!(pin_block(2, 2).unwrap_err().reason(), "NotDeepEnough");
        assert_eq!(pin_block(0, 0).unwrap_err().reason(), "NotDeepEnough");
    }

    #[test]
    fn a_value_that_differs_between_reads_is_not_trusted() {
        let first = full();
        assert!(compare_reads(&first, 98, &first.clone(), 97).is_ok());
        let mut second = first.clone();
        second.batch_inbox = Some(address!("0xff00000000000000000000000000000011155420"));
        let err = compare_reads(&first, 98, &second, 97).unwrap_err();
        assert_eq!(err.reason(), "ValueChanged");
        let message = err.to_string();
        assert!(message.contains("batchInboxAddr"), "{message}");
        assert!(
            message.contains("block 98") && message.contains("block 97"),
            "{message}"
        );

        let mut absent = first.clone();
        absent.system_config_version = Some("3.14.2".into());
        let err = compare_reads(&first, 98, &absent, 97).unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
    }

    #[test]
    fn spec_addresses_win_and_are_recorded_as_overrides() {
        let given = Contracts {
            dispute_game_factory: Some(address!("0x05F9613aDB30026FFd634f38e5C4dFd30a197Fa1")),
            system_config: full().system_config, // same as found: not an override
            ..Contracts::default()
        };
        let (result, overridden) = apply_overrides(full(), &given);
        assert_eq!(result.dispute_game_factory, given.dispute_game_factory);
        assert_eq!(overridden, vec![Field::DisputeGameFactory]);
        assert_eq!(result.optimism_portal, full().optimism_portal);
    }

    #[test]
    fn a_missing_required_field_is_not_found_with_the_fix_named() {
        let mut legacy = full();
        legacy.dispute_game_factory = None;
        legacy.system_config_version = Some("1.12.0".into());
        let err = finalize(legacy, Method::SystemConfig).unwrap_err();
        assert_eq!(err.reason(), "NotFound");
        let message = err.to_string();
        assert!(message.contains("disputeGameFactoryAddr"), "{message}");
        assert!(message.contains("1.12.0"), "{message}");
        assert!(message.contains("spec.contractAddresses.disputeGameFactoryAddr"));
    }

    #[test]
    fn a_zero_required_address_is_refused_and_a_zero_optional_one_dropped() {
        let mut c = full();
        c.l1_erc721_bridge = Some(Address::ZERO);
        let done = finalize(c.clone(), Method::SystemConfig).unwrap();
        assert_eq!(done.l1_erc721_bridge, None);
        c.optimism_portal = Some(Address::ZERO);
        let err = finalize(c, Method::SystemConfig).unwrap_err();
        assert_eq!(err.reason(), "ZeroAddress");
        assert!(err.to_string().contains("optimismPortalAddr"), "{err}");
    }

    #[test]
    fn code_is_required_at_contracts_but_not_at_the_inbox_or_signer() {
        let fields: Vec<Field> = contract_addresses(&full())
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert!(fields.contains(&Field::DisputeGameFactory));
        assert!(!fields.contains(&Field::BatchInbox));
        assert!(!fields.contains(&Field::UnsafeBlockSigner));
        assert_eq!(fields.len(), 7);
    }

    #[test]
    fn an_l1_answer_that_contradicts_the_registry_pins_nothing() {
        let reference = full();
        let mut from_l1 = full();
        assert!(cross_check(&from_l1, "L1", &reference, "registry").is_ok());
        from_l1.unsafe_block_signer = Some(address!("0x57CACBB0d30b01eb2462e5dC940c161aff3230D3"));
        assert!(
            cross_check(&from_l1, "L1", &reference, "registry").is_ok(),
            "the signer rotates and is not cross-checked"
        );
        from_l1.optimism_portal = Some(address!("0x16Fc5058F25648194471939df75CF27A2fdC48BC"));
        let err =
            cross_check(&from_l1, "SystemConfig at block 9", &reference, "registry").unwrap_err();
        assert_eq!(err.reason(), "Inconsistent");
        assert!(err.to_string().contains("optimismPortalAddr"), "{err}");
    }
}
