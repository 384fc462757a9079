//! The libp2p peer ID of an op-node, from its P2P private key: what a replica's
//! `--p2p.static` multiaddr must end with to reach the sequencer.
//!
//! op-node's P2P key is a secp256k1 key (64 hex characters, `--p2p.priv.path`). libp2p names a
//! peer by the multihash of its protobuf-encoded public key (libp2p specs,
//! `peer-ids/peer-ids.md`): `PublicKey { Type: Secp256k1 (2), Data: <33-byte compressed key> }`
//! is 37 bytes, short enough for the identity multihash, written in base58btc. The result
//! equals what `op-node p2p priv2id` prints (checked against the v1.19.6 binary below).

use k256::ecdsa::SigningKey;

/// Why a key gives no peer ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerIdError {
    #[error("the P2P key is not 64 hex characters (optionally 0x-prefixed)")]
    NotHex,
    #[error("the P2P key is not a valid secp256k1 private key")]
    InvalidKey,
}

/// The peer ID of the op-node whose P2P private key is `key_hex`.
pub fn from_private_key_hex(key_hex: &str) -> Result<String, PeerIdError> {
    let hex = key_hex.trim().trim_start_matches("0x");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PeerIdError::NotHex);
    }
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| PeerIdError::NotHex))
        .collect::<Result<_, _>>()?;
    let key = SigningKey::from_slice(&bytes).map_err(|_| PeerIdError::InvalidKey)?;
    let compressed = key.verifying_key().to_encoded_point(true);
    let public = compressed.as_bytes();
    // protobuf: field 1 (KeyType) varint 2 = Secp256k1, field 2 (Data) length-delimited.
    let mut encoded = vec![0x08, 0x02, 0x12, public.len() as u8];
    encoded.extend_from_slice(public);
    // Identity multihash: code 0x00, then the length.
    let mut multihash = vec![0x00, encoded.len() as u8];
    multihash.extend_from_slice(&encoded);
    Ok(base58btc(&multihash))
}

/// Bitcoin's base58 alphabet, leading zero bytes as `1`s.
fn base58btc(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut digits: Vec<u8> = Vec::new();
    for &byte in bytes {
        let mut carry = byte as u32;
        for digit in digits.iter_mut() {
            carry += (*digit as u32) << 8;
            *digit = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    std::iter::repeat_n('1', zeros)
        .chain(digits.iter().rev().map(|&d| ALPHABET[d as usize] as char))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_id_is_the_one_op_node_prints_for_the_same_key() {
        // `echo <key> | op-node p2p priv2id`, op-node v1.19.6.
        assert_eq!(
            from_private_key_hex(
                "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
            ),
            Ok("16Uiu2HAm7y4wLLNsMjdvS9dKgbXmmmDr8TaiL2HWZrd6sRFZqGZM".to_owned())
        );
    }

    #[test]
    fn a_key_that_is_not_64_hex_characters_has_no_peer_id() {
        assert_eq!(from_private_key_hex("abc"), Err(PeerIdError::NotHex));
        assert_eq!(
            from_private_key_hex(&"0".repeat(64)),
            Err(PeerIdError::InvalidKey)
        );
    }
}
