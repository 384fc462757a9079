//! Reading an address a person typed (spec, command line, registry file).

use alloy_primitives::Address;

use super::{DiscoveryError, Field};

/// Parses `value` as an L1 address for `field`; `path` names where it came from in errors
/// (`spec.contractAddresses.systemConfigAddr`, `--system-config`, …).
///
/// Mixed case must be a valid EIP-55 checksum: a mixed-case address with a wrong checksum is
/// almost always a typo, and a typo here sends a chain's withdrawals to the wrong contract.
/// All-lowercase and all-uppercase carry no checksum and are accepted as they are.
/// The zero address is refused: no contract lives there.
pub fn parse(path: &str, field: Field, value: &str) -> Result<Address, DiscoveryError> {
    let invalid = |detail: &str| DiscoveryError::InvalidSpec {
        field: path.to_string(),
        value: value.to_string(),
        detail: detail.to_string(),
    };
    let hex = value
        .strip_prefix("0x")
        .ok_or_else(|| invalid("an address starts with 0x"))?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("an address is 0x and 40 hex digits"));
    }
    let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
    let address = if has_lower && has_upper {
        Address::parse_checksummed(value, None).map_err(|_| {
            invalid(
                "mixed case but not a valid EIP-55 checksum (a typo?); \
                 write it all-lowercase only if you are sure of every digit",
            )
        })?
    } else {
        value
            .parse::<Address>()
            .map_err(|e| invalid(&e.to_string()))?
    };
    if address.is_zero() {
        return Err(DiscoveryError::ZeroAddress {
            field,
            from: path.to_string(),
        });
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OP_SYSTEM_CONFIG: &str = "0x229047fed2591dbec1eF1118d64F7aF3dB9EB290";

    #[test]
    fn checksummed_lowercase_and_uppercase_addresses_are_accepted() {
        let checksummed = parse("x", Field::SystemConfig, OP_SYSTEM_CONFIG).unwrap();
        let lower = parse("x", Field::SystemConfig, &OP_SYSTEM_CONFIG.to_lowercase()).unwrap();
        let upper = format!("0x{}", OP_SYSTEM_CONFIG[2..].to_uppercase());
        let upper = parse("x", Field::SystemConfig, &upper).unwrap();
        assert_eq!(checksummed, lower);
        assert_eq!(checksummed, upper);
        assert_eq!(checksummed.to_checksum(None), OP_SYSTEM_CONFIG);
    }

    #[test]
    fn mixed_case_with_a_wrong_checksum_is_refused_as_a_typo() {
        // One letter's case flipped: still valid hex, no longer the checksum.
        let typo = OP_SYSTEM_CONFIG.replace("eF1118", "ef1118");
        let err = parse(
            "spec.contractAddresses.systemConfigAddr",
            Field::SystemConfig,
            &typo,
        )
        .unwrap_err();
        assert_eq!(err.reason(), "InvalidSpec");
        let message = err.to_string();
        assert!(
            message.contains("spec.contractAddresses.systemConfigAddr"),
            "{message}"
        );
        assert!(message.contains("EIP-55"), "{message}");
    }

    #[test]
    fn malformed_addresses_are_refused_with_the_field_named() {
        for bad in [
            "229047fed2591dbec1eF1118d64F7aF3dB9EB290",
            "0x229047fed2591dbec1eF1118d64F7aF3dB9EB2",
            "0x229047fed2591dbec1eF1118d64F7aF3dB9EB29000",
            "0xzz9047fed2591dbec1eF1118d64F7aF3dB9EB290",
            "",
        ] {
            let err = parse("--system-config", Field::SystemConfig, bad).unwrap_err();
            assert_eq!(err.reason(), "InvalidSpec", "{bad}");
            assert!(err.to_string().contains("--system-config"), "{err}");
        }
    }

    #[test]
    fn the_zero_address_is_refused() {
        let zero = format!("0x{}", "0".repeat(40));
        let err = parse(
            "spec.contractAddresses.optimismPortalAddr",
            Field::OptimismPortal,
            &zero,
        )
        .unwrap_err();
        assert_eq!(err.reason(), "ZeroAddress");
        assert!(err.to_string().contains("optimismPortalAddr"), "{err}");
    }
}
