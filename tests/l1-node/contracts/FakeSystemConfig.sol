// SPDX-License-Identifier: Apache-2.0
// Test doubles of the OP Stack L1 contracts that discovery reads, for the discovery tests
// against `geth --dev`. Only the getters matter: their selectors must be those of the real
// contracts (the ABI snapshots in ethereum-optimism/optimism@a5f807798b
// packages/contracts-bedrock/snapshots/abi/, as listed in host/src/discovery/system_config.rs),
// which the tests check against this build's methodIdentifiers. Regenerate artifacts.json with
// build.sh after any change here.
pragma solidity 0.8.30;

/// Has runtime code and nothing else: stands in for the messenger, bridges and factories whose
/// addresses SystemConfig returns, so that the "code at every discovered address" check passes.
contract Stub {
    function isStub() external pure returns (bool) {
        return true;
    }
}

/// OptimismPortal2's `disputeGameFactory()` (0xf2b4e617): where SystemConfig 3.x gets the
/// factory from since 2025-03.
contract FakePortal {
    address public disputeGameFactory;

    constructor(address factory) {
        disputeGameFactory = factory;
    }
}

/// The getters of a current SystemConfig (3.x, fault proofs): `disputeGameFactory()` answers
/// through the portal, as the real one does since 2025-03.
contract FakeSystemConfig {
    address public optimismPortal;
    address public l1CrossDomainMessenger;
    address public l1StandardBridge;
    address public l1ERC721Bridge;
    address public optimismMintableERC20Factory;
    address public batchInbox;
    address public unsafeBlockSigner;
    uint256 public startBlock;

    constructor(
        address portal,
        address messenger,
        address standardBridge,
        address erc721Bridge,
        address erc20Factory,
        address inbox,
        address signer,
        uint256 start
    ) {
        optimismPortal = portal;
        l1CrossDomainMessenger = messenger;
        l1StandardBridge = standardBridge;
        l1ERC721Bridge = erc721Bridge;
        optimismMintableERC20Factory = erc20Factory;
        batchInbox = inbox;
        unsafeBlockSigner = signer;
        startBlock = start;
    }

    function disputeGameFactory() external view returns (address) {
        return FakePortal(optimismPortal).disputeGameFactory();
    }

    function version() external pure returns (string memory) {
        return "3.14.2";
    }

    /// Lets a test change a pinned value on L1, as an upgrade by the chain's owner would.
    function setUnsafeBlockSigner(address signer) external {
        unsafeBlockSigner = signer;
    }
}

/// A SystemConfig from before fault proofs (1.12.0, op-contracts <= v1.3.0): it has
/// `l2OutputOracle()` and no `disputeGameFactory()`, and no `l1ERC721Bridge()` is assumed
/// either, so discovery must treat the missing getters as absent, not as errors.
contract LegacySystemConfig {
    address public optimismPortal;
    address public l1CrossDomainMessenger;
    address public l1StandardBridge;
    address public batchInbox;
    address public unsafeBlockSigner;
    address public l2OutputOracle;
    uint256 public startBlock;

    constructor(
        address portal,
        address messenger,
        address standardBridge,
        address inbox,
        address signer,
        address outputOracle,
        uint256 start
    ) {
        optimismPortal = portal;
        l1CrossDomainMessenger = messenger;
        l1StandardBridge = standardBridge;
        batchInbox = inbox;
        unsafeBlockSigner = signer;
        l2OutputOracle = outputOracle;
        startBlock = start;
    }

    function version() external pure returns (string memory) {
        return "1.12.0";
    }
}
