// SPDX-License-Identifier: Apache-2.0
// The L1 side of a test devnet on `geth --dev` (tests/harness/src/devnet): the smallest stand-ins
// for the OP Stack L1 contracts that the real binaries (optimism v1.19.6: op-node, op-batcher,
// op-proposer) and the operator's discovery touch. Each names the upstream contract and function
// it stands in for, in ethereum-optimism/optimism@v1.19.6 packages/contracts-bedrock/src/.
// What reads what:
// - `op-node genesis l2` calls `startBlock()` on the SystemConfig (op-node/cmd/genesis/cmd.go).
// - op-node reads the unsafe block signer straight from storage slot
//   keccak256("systemconfig.unsafeblocksigner") with eth_getStorageAt or eth_getProof
//   (op-node/node/runcfg/runtime_config.go `Load`), and derivation reads `ConfigUpdate` logs of
//   the SystemConfig (op-node/rollup/derive/system_config.go).
// - op-proposer calls version(), gameCount(), gameAtIndex(), initBonds() and create() on the
//   factory and gameCreator()/rootClaim() on the games (op-proposer/contracts/disputegamefactory.go).
// - discovery calls the SystemConfig getters FakeSystemConfig.sol has, and `disputeGameFactory()`
//   on the portal.
// Nothing here checks a caller: these are test doubles on a throwaway chain. Regenerate
// devnet-artifacts.json with build.sh after any change here.
pragma solidity 0.8.30;

/// Runtime code and nothing else, for the addresses the SystemConfig names but no binary calls
/// (L1CrossDomainMessenger, L1StandardBridge, L1ERC721Bridge, OptimismMintableERC20Factory):
/// discovery checks that every address it finds has code.
contract DevnetStub {
    function isStub() external pure returns (bool) {
        return true;
    }
}

/// Stands in for OptimismPortal2 (src/L1/OptimismPortal2.sol). Its address is the rollup
/// config's `deposit_contract_address`: op-node scans it for `TransactionDeposited` logs, and a
/// chain without deposits needs none. Only `disputeGameFactory()` (0xf2b4e617) is kept, which
/// SystemConfig.disputeGameFactory() answers through.
contract DevnetPortal {
    address public disputeGameFactory;

    constructor(address factory) {
        disputeGameFactory = factory;
    }
}

/// Stands in for SystemConfig (src/L1/SystemConfig.sol). The unsafe block signer and the start
/// block live at upstream's storage slots, because op-node reads the signer's slot directly; the
/// other getters are those of SystemConfig 3.x (with `batchInbox()`, which 4.0.0 dropped), as in
/// FakeSystemConfig.sol, so the operator's discovery reads this contract too.
contract DevnetSystemConfig {
    /// SystemConfig.UNSAFE_BLOCK_SIGNER_SLOT = keccak256("systemconfig.unsafeblocksigner");
    /// op-node's runcfg.UnsafeBlockSignerAddressSystemConfigStorageSlot.
    bytes32 public constant UNSAFE_BLOCK_SIGNER_SLOT =
        0x65a7ed542fb37fe237fdfbdd70b31598523fe5b32879e307bae27a0bd9581c08;
    /// SystemConfig.START_BLOCK_SLOT = bytes32(uint256(keccak256("systemconfig.startBlock")) - 1).
    bytes32 public constant START_BLOCK_SLOT = bytes32(uint256(keccak256("systemconfig.startBlock")) - 1);

    /// SystemConfig.ConfigUpdate, emitted with version 0 as upstream's setters do.
    event ConfigUpdate(uint256 indexed version, uint8 indexed updateType, bytes data);

    /// SystemConfig.UpdateType.UNSAFE_BLOCK_SIGNER.
    uint8 internal constant UPDATE_TYPE_UNSAFE_BLOCK_SIGNER = 3;

    address public optimismPortal;
    address public l1CrossDomainMessenger;
    address public l1StandardBridge;
    address public l1ERC721Bridge;
    address public optimismMintableERC20Factory;
    address public batchInbox;

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
        bytes32 signerSlot = UNSAFE_BLOCK_SIGNER_SLOT;
        bytes32 startSlot = START_BLOCK_SLOT;
        // SystemConfig._setStartBlock(): the current block unless one is given.
        if (start == 0) start = block.number;
        assembly {
            sstore(signerSlot, signer)
            sstore(startSlot, start)
        }
    }

    /// SystemConfig.unsafeBlockSigner(): `Storage.getAddress(UNSAFE_BLOCK_SIGNER_SLOT)`.
    function unsafeBlockSigner() public view returns (address addr_) {
        bytes32 slot = UNSAFE_BLOCK_SIGNER_SLOT;
        assembly {
            addr_ := sload(slot)
        }
    }

    /// SystemConfig.startBlock(): the L1 block op-node starts deriving from (`genesis l2` takes
    /// the L2 genesis's L1 origin from it).
    function startBlock() external view returns (uint256 startBlock_) {
        bytes32 slot = START_BLOCK_SLOT;
        assembly {
            startBlock_ := sload(slot)
        }
    }

    /// SystemConfig.disputeGameFactory(): read through the portal, as upstream does since 3.x.
    function disputeGameFactory() external view returns (address) {
        return DevnetPortal(optimismPortal).disputeGameFactory();
    }

    /// SystemConfig.version(): a 3.x version, the generation whose getters this has.
    function version() external pure returns (string memory) {
        return "3.14.2";
    }

    /// SystemConfig.setUnsafeBlockSigner() without the owner check: writes the slot op-node reads
    /// and emits the same ConfigUpdate (which derivation ignores for this type).
    function setUnsafeBlockSigner(address signer) external {
        bytes32 slot = UNSAFE_BLOCK_SIGNER_SLOT;
        assembly {
            sstore(slot, signer)
        }
        emit ConfigUpdate(0, UPDATE_TYPE_UNSAFE_BLOCK_SIGNER, abi.encode(signer));
    }
}

/// Stands in for a game created by the factory (src/dispute/FaultDisputeGame.sol and
/// PermissionedDisputeGame.sol), with the getters op-proposer reads to recognise its own
/// proposals (gameCreator, rootClaim) and the ones a test or op-dispute-mon reads first. Upstream
/// games are clones with immutable args; this one is a plain contract holding its bond. It never
/// resolves.
contract DevnetDisputeGame {
    address public immutable gameCreator;
    bytes32 public immutable rootClaim;
    bytes32 public immutable l1Head;
    uint32 public immutable gameType;
    uint64 public immutable createdAt;
    bytes internal _extraData;

    constructor(address creator, uint32 type_, bytes32 claim, bytes32 parentHash, bytes memory extra) payable {
        gameCreator = creator;
        gameType = type_;
        rootClaim = claim;
        l1Head = parentHash;
        createdAt = uint64(block.timestamp);
        _extraData = extra;
    }

    /// FaultDisputeGame.extraData(): for output-root games the L2 block number, 32 bytes.
    function extraData() external view returns (bytes memory) {
        return _extraData;
    }

    /// FaultDisputeGame.l2BlockNumber(): the first 32 bytes of extraData.
    function l2BlockNumber() external view returns (uint256 number_) {
        bytes memory extra = _extraData;
        if (extra.length >= 32) {
            assembly {
                number_ := mload(add(extra, 32))
            }
        }
    }

    /// FaultDisputeGame.status(): GameStatus.IN_PROGRESS (0), for ever.
    function status() external pure returns (uint8) {
        return 0;
    }
}

/// Stands in for DisputeGameFactory (src/dispute/DisputeGameFactory.sol, version 1.6.1 in
/// v1.19.6): records every game so that gameCount()/gameAtIndex() reflect the proposals, with
/// upstream's checks in create() (known game type, exact bond, one game per UUID) and its event.
contract DevnetDisputeGameFactory {
    /// DisputeGameFactory.DisputeGameCreated.
    event DisputeGameCreated(address indexed disputeProxy, uint32 indexed gameType, bytes32 indexed rootClaim);
    /// DisputeGameFactory.InitBondUpdated.
    event InitBondUpdated(uint32 indexed gameType, uint256 indexed newBond);

    /// DisputeGameFactory's errors.
    error NoImplementation(uint32 gameType);
    error IncorrectBondAmount();
    error GameAlreadyExists(bytes32 uuid);

    /// Upstream packs these three into a `GameId` (LibGameId.pack).
    struct GameId {
        uint32 gameType;
        uint64 timestamp;
        address proxy;
    }

    /// DisputeGameFactory.initBonds(GameType): the value create() must be sent with.
    mapping(uint32 => uint256) public initBonds;
    mapping(uint32 => bool) internal _enabled;
    mapping(bytes32 => GameId) internal _games;
    GameId[] internal _gameList;

    /// Enables `gameTypes` (upstream: setImplementation per type), each with bond `bond`
    /// (upstream: setInitBond).
    constructor(uint32[] memory gameTypes, uint256 bond) {
        for (uint256 i = 0; i < gameTypes.length; i++) {
            _enabled[gameTypes[i]] = true;
            initBonds[gameTypes[i]] = bond;
            emit InitBondUpdated(gameTypes[i], bond);
        }
    }

    /// DisputeGameFactory.version.
    function version() external pure returns (string memory) {
        return "1.6.1";
    }

    /// DisputeGameFactory.gameImpls(GameType): upstream returns the implementation that games of
    /// this type are cloned from; this stand-in deploys games itself, so it answers its own
    /// address for an enabled type and zero otherwise.
    function gameImpls(uint32 gameType) external view returns (address) {
        return _enabled[gameType] ? address(this) : address(0);
    }

    /// DisputeGameFactory.gameCount().
    function gameCount() external view returns (uint256 gameCount_) {
        gameCount_ = _gameList.length;
    }

    /// DisputeGameFactory.gameAtIndex(uint256).
    function gameAtIndex(uint256 index) external view returns (uint32 gameType_, uint64 timestamp_, address proxy_) {
        GameId storage id = _gameList[index];
        return (id.gameType, id.timestamp, id.proxy);
    }

    /// DisputeGameFactory.getGameUUID(): keccak256(abi.encode(gameType, rootClaim, extraData)).
    function getGameUUID(uint32 gameType, bytes32 rootClaim, bytes memory extraData) public pure returns (bytes32) {
        return keccak256(abi.encode(gameType, rootClaim, extraData));
    }

    /// DisputeGameFactory.games(): the game for a (type, claim, extraData), or zeros.
    function games(uint32 gameType, bytes32 rootClaim, bytes calldata extraData)
        external
        view
        returns (address proxy_, uint64 timestamp_)
    {
        GameId storage id = _games[getGameUUID(gameType, rootClaim, extraData)];
        return (id.proxy, id.timestamp);
    }

    /// DisputeGameFactory.create(): the same checks and event as upstream; the game's creator
    /// is msg.sender and its L1 head the parent block's hash, as in upstream's clone args.
    function create(uint32 gameType, bytes32 rootClaim, bytes calldata extraData)
        external
        payable
        returns (address proxy_)
    {
        if (!_enabled[gameType]) revert NoImplementation(gameType);
        if (msg.value != initBonds[gameType]) revert IncorrectBondAmount();
        bytes32 uuid = getGameUUID(gameType, rootClaim, extraData);
        if (_games[uuid].proxy != address(0)) revert GameAlreadyExists(uuid);
        proxy_ = address(
            new DevnetDisputeGame{value: msg.value}(
                msg.sender, gameType, rootClaim, blockhash(block.number - 1), extraData
            )
        );
        GameId memory id = GameId(gameType, uint64(block.timestamp), proxy_);
        _games[uuid] = id;
        _gameList.push(id);
        emit DisputeGameCreated(proxy_, gameType, rootClaim);
    }
}
