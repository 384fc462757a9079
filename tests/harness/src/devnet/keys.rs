//! Deterministic test keys (secp256k1) and the little signing the devnet needs.
//!
//! Every key is `keccak256("opstack-operator devnet <role>")`: the same on every run and every
//! machine, and public by construction (it is in this file), so only ever for throwaway test
//! chains. None of them is one of the hardhat/foundry "test test … junk" accounts, which
//! `op-node genesis l2` refuses in an L2 state dump unless `fundDevAccounts` is set
//! (optimism v1.19.6 op-chain-ops/genesis/layer_two.go `BuildL2Genesis`).

use std::fmt;

use alloy_primitives::{Address, B256, keccak256};
use k256::ecdsa::SigningKey;

/// A secp256k1 private key.
#[derive(Clone, PartialEq, Eq)]
pub struct DevKey {
    secret: [u8; 32],
}

impl fmt::Debug for DevKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Test keys are public anyway; the address is what identifies one in a failure message.
        write!(f, "DevKey({})", self.address())
    }
}

impl DevKey {
    /// `keccak256("opstack-operator devnet <label>")`.
    pub fn derive(label: &str) -> DevKey {
        let secret = keccak256(format!("opstack-operator devnet {label}").as_bytes());
        let key = DevKey { secret: secret.0 };
        // A hash is a valid key unless it is zero or >= the group order: never in practice.
        assert!(
            SigningKey::from_slice(&key.secret).is_ok(),
            "keccak256 of {label:?} is not a valid secp256k1 key; pick another label"
        );
        key
    }

    /// From 32 bytes; `None` if they are not a valid secp256k1 key.
    pub fn from_bytes(secret: [u8; 32]) -> Option<DevKey> {
        SigningKey::from_slice(&secret).ok()?;
        Some(DevKey { secret })
    }

    fn signing_key(&self) -> SigningKey {
        SigningKey::from_slice(&self.secret).expect("checked at construction")
    }

    /// The key as 64 lowercase hex characters, no `0x`, no newline: the one form every OP Stack
    /// key flag and file accepts (`--private-key`, `--p2p.sequencer.key`, `--p2p.priv.path`,
    /// op-geth's `--nodekey` file).
    pub fn hex(&self) -> String {
        alloy_primitives::hex::encode(self.secret)
    }

    /// The Ethereum address: the last 20 bytes of keccak256 of the uncompressed public key.
    pub fn address(&self) -> Address {
        Address::from_public_key(self.signing_key().verifying_key())
    }

    /// The uncompressed public key without its 0x04 prefix, as hex (128 characters): the node
    /// id of an enode URL (`enode://<this>@ip:port`).
    pub fn node_id(&self) -> String {
        let point = self.signing_key().verifying_key().to_encoded_point(false);
        alloy_primitives::hex::encode(&point.as_bytes()[1..])
    }

    /// Signs a 32-byte hash: (y parity, r, s), s normalized low.
    pub fn sign_hash(&self, hash: B256) -> (bool, [u8; 32], [u8; 32]) {
        let (signature, recovery) = self
            .signing_key()
            .sign_prehash_recoverable(hash.as_slice())
            .expect("signing a 32-byte hash cannot fail");
        let bytes = signature.to_bytes();
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&bytes[..32]);
        s.copy_from_slice(&bytes[32..]);
        (recovery.is_y_odd(), r, s)
    }
}

/// The keys of one devnet chain, one per role (see the module docs for how they are made).
#[derive(Clone, Debug)]
pub struct ChainKeys {
    /// Signs the sequencer's unsafe blocks (`op-node --p2p.sequencer.key`); its address is the
    /// SystemConfig's unsafe block signer.
    pub sequencer_signer: DevKey,
    /// The sequencer op-node's libp2p identity (`--p2p.priv.path`).
    pub sequencer_p2p: DevKey,
    /// The replica op-node's libp2p identity.
    pub replica_p2p: DevKey,
    /// The sequencer op-geth's devp2p node key (`--nodekey`), so its enode is known in advance.
    pub sequencer_el_node: DevKey,
    /// op-batcher's L1 key; its address is the rollup config's batcher address.
    pub batcher: DevKey,
    /// op-proposer's L1 key: the creator of the dispute games.
    pub proposer: DevKey,
    /// An L2 account funded in the L2 genesis, for test transactions.
    pub l2_user: DevKey,
}

impl ChainKeys {
    /// The fixed test keys.
    pub fn deterministic() -> ChainKeys {
        ChainKeys {
            sequencer_signer: DevKey::derive("sequencer signer"),
            sequencer_p2p: DevKey::derive("sequencer p2p"),
            replica_p2p: DevKey::derive("replica p2p"),
            sequencer_el_node: DevKey::derive("sequencer el node"),
            batcher: DevKey::derive("batcher"),
            proposer: DevKey::derive("proposer"),
            l2_user: DevKey::derive("l2 user"),
        }
    }
}

/// An EIP-1559 transfer/call, signed: the raw bytes for `eth_sendRawTransaction`, and its hash.
#[derive(Clone, Debug)]
pub struct Eip1559Tx {
    pub chain_id: u64,
    pub nonce: u64,
    pub max_priority_fee_per_gas: u128,
    pub max_fee_per_gas: u128,
    pub gas_limit: u64,
    pub to: Address,
    pub value: u128,
    pub data: Vec<u8>,
}

impl Eip1559Tx {
    /// `0x02 || rlp([chain_id, nonce, tip, max_fee, gas, to, value, data, [], y, r, s])` and the
    /// transaction hash (keccak256 of those bytes), as EIP-1559 specifies.
    pub fn sign(&self, key: &DevKey) -> (Vec<u8>, B256) {
        let mut fields = self.unsigned_fields();
        let mut preimage = vec![0x02];
        preimage.extend(rlp_list(&fields));
        let (y_parity, r, s) = key.sign_hash(keccak256(&preimage));
        fields.push(rlp_uint(u128::from(y_parity)));
        fields.push(rlp_bytes(trim_leading_zeros(&r)));
        fields.push(rlp_bytes(trim_leading_zeros(&s)));
        let mut raw = vec![0x02];
        raw.extend(rlp_list(&fields));
        let hash = keccak256(&raw);
        (raw, hash)
    }

    fn unsigned_fields(&self) -> Vec<Vec<u8>> {
        vec![
            rlp_uint(u128::from(self.chain_id)),
            rlp_uint(u128::from(self.nonce)),
            rlp_uint(self.max_priority_fee_per_gas),
            rlp_uint(self.max_fee_per_gas),
            rlp_uint(u128::from(self.gas_limit)),
            rlp_bytes(self.to.as_slice()),
            rlp_uint(self.value),
            rlp_bytes(&self.data),
            rlp_list(&[]),
        ]
    }
}

/// The address a contract created by `sender` with account nonce `nonce` gets (CREATE):
/// the last 20 bytes of keccak256(rlp([sender, nonce])).
pub fn create_address(sender: Address, nonce: u64) -> Address {
    let encoded = rlp_list(&[rlp_bytes(sender.as_slice()), rlp_uint(u128::from(nonce))]);
    Address::from_slice(&keccak256(encoded)[12..])
}

fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn rlp_length_prefix(len: usize, short: u8, long: u8) -> Vec<u8> {
    if len < 56 {
        vec![short + len as u8]
    } else {
        let len_bytes = len.to_be_bytes();
        let len_bytes = trim_leading_zeros(&len_bytes);
        let mut out = vec![long + len_bytes.len() as u8];
        out.extend_from_slice(len_bytes);
        out
    }
}

fn rlp_bytes(bytes: &[u8]) -> Vec<u8> {
    if bytes.len() == 1 && bytes[0] < 0x80 {
        return bytes.to_vec();
    }
    let mut out = rlp_length_prefix(bytes.len(), 0x80, 0xb7);
    out.extend_from_slice(bytes);
    out
}

fn rlp_uint(value: u128) -> Vec<u8> {
    rlp_bytes(trim_leading_zeros(&value.to_be_bytes()))
}

fn rlp_list(items: &[Vec<u8>]) -> Vec<u8> {
    let payload: Vec<u8> = items.concat();
    let mut out = rlp_length_prefix(payload.len(), 0xc0, 0xf7);
    out.extend(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_of_a_known_key() {
        // The first hardhat/anvil account: a well-known key/address pair.
        let secret: [u8; 32] = alloy_primitives::hex::decode(
            "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        )
        .unwrap()
        .try_into()
        .unwrap();
        let key = DevKey::from_bytes(secret).unwrap();
        assert_eq!(
            key.address(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse::<Address>()
                .unwrap()
        );
    }

    #[test]
    fn create_address_of_a_known_deployment() {
        // anvil's first account, nonce 0: the well-known first deployment address.
        let sender: Address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
            .parse()
            .unwrap();
        assert_eq!(
            create_address(sender, 0),
            "0x5FbDB2315678afecb367f032d93F642f64180aa3"
                .parse::<Address>()
                .unwrap()
        );
    }

    #[test]
    fn rlp_encodes_as_specified() {
        assert_eq!(rlp_uint(0), vec![0x80]);
        assert_eq!(rlp_uint(0x7f), vec![0x7f]);
        assert_eq!(rlp_uint(0x400), vec![0x82, 0x04, 0x00]);
        assert_eq!(rlp_bytes(b"dog"), vec![0x83, b'd', b'o', b'g']);
        assert_eq!(rlp_list(&[]), vec![0xc0]);
        let long = vec![0xaa; 60];
        assert_eq!(&rlp_bytes(&long)[..2], &[0xb8, 60]);
    }

    #[test]
    fn deterministic_keys_are_distinct_and_stable() {
        let keys = ChainKeys::deterministic();
        let all = [
            &keys.sequencer_signer,
            &keys.sequencer_p2p,
            &keys.replica_p2p,
            &keys.sequencer_el_node,
            &keys.batcher,
            &keys.proposer,
            &keys.l2_user,
        ];
        for (i, a) in all.iter().enumerate() {
            assert_eq!(a.hex().len(), 64);
            for b in &all[i + 1..] {
                assert_ne!(a.address(), b.address());
            }
        }
        assert_eq!(
            ChainKeys::deterministic().batcher.hex(),
            keys.batcher.hex(),
            "keys must not change between calls"
        );
    }
}
