//! An L2 chain on a [`DevL1`]: the L1 stand-ins deployed, the L2 genesis and rollup config made
//! by `op-node genesis l2`, checked against `geth init`.
//!
//! Inputs of `op-node genesis l2` (ethereum-optimism/optimism@v1.19.6 op-node/cmd/genesis/cmd.go,
//! op-chain-ops/genesis/layer_two.go):
//! - a deploy config ([`deploy_config`]: the fields of the module's
//!   op-chain-ops/genesis/testdata/test-deploy-config-full.json with this chain's values);
//! - an L1 deployments file (the keys of op-chain-ops/genesis/testdata/l1-deployments.json);
//! - an L2 state dump with every predeploy: the module's
//!   op-deployer/pkg/deployer/integration_test/testdata/allocs-l2-v160-1.json.gz (op-contracts
//!   v1.6.0 predeploys; its Permit2 is built for L2 chain id 777, which `BuildL2Genesis` checks,
//!   hence [`L2_CHAIN_ID`]). Its address keys lack the `0x` that the Go decoder requires; they
//!   are added, and the test account [`ChainKeys::l2_user`] is funded in it;
//! - the L1 RPC, for `SystemConfig.startBlock()` and that block (the L2 genesis's L1 origin and
//!   time).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::SolValue;
use serde_json::{Map, Value, json};

use super::keys::{ChainKeys, create_address};
use super::l1::{DevL1, RECEIPT_TIMEOUT, contract_address};
use super::rpc::hex_u64;
use super::{
    DevnetError, L2_ALLOCS_ENV, command_line, opstack_binary, optimism_version, run_command,
    write_file,
};

/// The L2 chain id: the one the shipped L2 state dump's Permit2 was built for.
pub const L2_CHAIN_ID: u64 = 777;

/// Compiled `tests/l1-node/contracts/DevnetL1.sol` (build.sh).
const ARTIFACTS: &str = include_str!("../../../l1-node/contracts/devnet-artifacts.json");

/// The L2 state dump's path inside the optimism module.
const ALLOCS_IN_MODULE: &str =
    "op-deployer/pkg/deployer/integration_test/testdata/allocs-l2-v160-1.json.gz";

/// The newest L2 hard fork active at genesis; all older ones are active too, newer ones unset.
///
/// The shipped predeploys (op-contracts v1.6.0) support up to [`L2Fork::Holocene`]. Isthmus
/// changes the L1-info deposit to `setL1BlockValuesIsthmus`, which v1.6.0's L1Block lacks: blocks
/// are still produced but every L1-info deposit reverts, silently. Later forks need newer
/// predeploys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum L2Fork {
    Regolith,
    Canyon,
    Delta,
    Ecotone,
    Fjord,
    Granite,
    Holocene,
    Isthmus,
    Jovian,
}

impl L2Fork {
    const ALL: [(L2Fork, &'static str); 9] = [
        (L2Fork::Regolith, "l2GenesisRegolithTimeOffset"),
        (L2Fork::Canyon, "l2GenesisCanyonTimeOffset"),
        (L2Fork::Delta, "l2GenesisDeltaTimeOffset"),
        (L2Fork::Ecotone, "l2GenesisEcotoneTimeOffset"),
        (L2Fork::Fjord, "l2GenesisFjordTimeOffset"),
        (L2Fork::Granite, "l2GenesisGraniteTimeOffset"),
        (L2Fork::Holocene, "l2GenesisHoloceneTimeOffset"),
        (L2Fork::Isthmus, "l2GenesisIsthmusTimeOffset"),
        (L2Fork::Jovian, "l2GenesisJovianTimeOffset"),
    ];

    /// The rollup config's field for this fork's activation time (`holocene_time`, …).
    pub fn rollup_config_field(self) -> String {
        format!("{}_time", format!("{self:?}").to_lowercase())
    }
}

/// What [`create_chain`] makes.
#[derive(Clone, Debug)]
pub struct ChainOptions {
    /// Where the files go (created if missing).
    pub dir: PathBuf,
    pub keys: ChainKeys,
    /// L2 block time; must not exceed the L1's (op-node's rollup config check).
    pub l2_block_time_secs: u64,
    pub genesis_fork: L2Fork,
    /// Game types the factory accepts (0 permissionless cannon, 1 permissioned cannon).
    pub game_types: Vec<u32>,
    /// The bond `create` must be sent with, for every game type.
    pub init_bond_wei: u128,
    /// What the batcher and proposer get on L1.
    pub batcher_funds_wei: u128,
    pub proposer_funds_wei: u128,
    /// What [`ChainKeys::l2_user`] holds at L2 genesis.
    pub l2_user_balance_wei: u128,
    /// The L2 state dump; `None`: [`L2_ALLOCS_ENV`] or the optimism module's (see the module docs).
    pub l2_allocs: Option<PathBuf>,
}

const ETHER: u128 = 1_000_000_000_000_000_000;

impl ChainOptions {
    /// Deterministic keys, 2 s L2 blocks, Holocene at genesis, game types 0 and 1 with a
    /// 0.08 ETH bond (upstream's permissioned bond), 100 ETH for batcher and proposer, 1000 ETH
    /// for the L2 test account.
    pub fn new(dir: impl Into<PathBuf>) -> ChainOptions {
        ChainOptions {
            dir: dir.into(),
            keys: ChainKeys::deterministic(),
            l2_block_time_secs: 2,
            genesis_fork: L2Fork::Holocene,
            game_types: vec![0, 1],
            init_bond_wei: 8 * ETHER / 100,
            batcher_funds_wei: 100 * ETHER,
            proposer_funds_wei: 100 * ETHER,
            l2_user_balance_wei: 1000 * ETHER,
            l2_allocs: None,
        }
    }
}

/// The L1 contracts of a chain (all stand-ins from DevnetL1.sol, except the batch inbox, which
/// is only an address).
#[derive(Clone, Debug)]
pub struct L1Addresses {
    pub system_config: Address,
    pub optimism_portal: Address,
    pub dispute_game_factory: Address,
    pub l1_cross_domain_messenger: Address,
    pub l1_standard_bridge: Address,
    pub l1_erc721_bridge: Address,
    pub optimism_mintable_erc20_factory: Address,
    /// `0xff00…00<l2 chain id in decimal digits>` (…0777), the usual convention.
    pub batch_inbox: Address,
}

/// A created chain: its files, ids, addresses and keys. Nothing runs yet.
#[derive(Clone, Debug)]
pub struct Chain {
    pub dir: PathBuf,
    pub l1_chain_id: u64,
    pub l2_chain_id: u64,
    pub l2_block_time_secs: u64,
    pub genesis_fork: L2Fork,
    /// rollup.json (op-node `--rollup.config`), as written by `op-node genesis l2`.
    pub rollup_config: Value,
    pub rollup_config_path: PathBuf,
    /// genesis.json (op-geth `init`), about 9 MB: read it from the file when needed.
    pub genesis_path: PathBuf,
    /// The L1's chain config as op-node accepts it (op-node `--rollup.l1-chain-config`): geth's
    /// dev chain config without the fields op-geth's params.ChainConfig does not know.
    pub l1_chain_config: Value,
    pub l1_chain_config_path: PathBuf,
    /// What was removed from the L1 chain config (e.g. `bogotaTime` of geth 1.17).
    pub l1_chain_config_dropped: Vec<String>,
    pub deploy_config_path: PathBuf,
    pub l1_deployments_path: PathBuf,
    pub l2_allocs_path: PathBuf,
    /// `genesis.l2.hash` of the rollup config, equal to op-geth's genesis block hash.
    pub l2_genesis_hash: B256,
    /// `genesis.l1` of the rollup config: the SystemConfig's start block.
    pub l1_origin_number: u64,
    pub l1_origin_hash: B256,
    /// `genesis.l2_time`.
    pub l2_genesis_time: u64,
    pub addresses: L1Addresses,
    pub keys: ChainKeys,
    pub game_types: Vec<u32>,
    pub init_bond_wei: u128,
    /// The commands `create_chain` ran, exactly.
    pub commands: Vec<String>,
    /// How long `create_chain` took.
    pub creation_time: Duration,
}

impl Chain {
    /// The rollup config's activation time of a fork (`None`: not scheduled).
    pub fn fork_time(&self, fork: L2Fork) -> Option<u64> {
        self.rollup_config[fork.rollup_config_field()].as_u64()
    }
}

fn artifact_bytecode(contract: &str) -> Result<Vec<u8>, DevnetError> {
    let artifacts: Value = serde_json::from_str(ARTIFACTS)
        .map_err(|error| DevnetError::unexpected("devnet-artifacts.json", error))?;
    let code = artifacts["contracts"][contract]["bytecode"]
        .as_str()
        .ok_or_else(|| {
            DevnetError::unexpected("devnet-artifacts.json", format!("no contract {contract}"))
        })?;
    alloy_primitives::hex::decode(code)
        .map_err(|error| DevnetError::unexpected("devnet-artifacts.json bytecode", error))
}

/// The selector of `signature` (`"gameCount()"`) as solc computed it for `contract`.
pub fn selector(contract: &str, signature: &str) -> Result<[u8; 4], DevnetError> {
    let artifacts: Value = serde_json::from_str(ARTIFACTS)
        .map_err(|error| DevnetError::unexpected("devnet-artifacts.json", error))?;
    let hex = artifacts["contracts"][contract]["methodIdentifiers"][signature]
        .as_str()
        .ok_or_else(|| {
            DevnetError::unexpected(
                "devnet-artifacts.json",
                format!("no {contract}.{signature}"),
            )
        })?;
    let bytes = alloy_primitives::hex::decode(hex)
        .map_err(|error| DevnetError::unexpected("selector", error))?;
    bytes
        .try_into()
        .map_err(|_| DevnetError::unexpected("selector", hex))
}

/// Creates a chain on `l1` (see the module docs). Blocks for one or two L1 blocks plus the
/// genesis tools' run time.
pub fn create_chain(l1: &DevL1, options: &ChainOptions) -> Result<Chain, DevnetError> {
    let started = Instant::now();
    let dir = options.dir.clone();
    std::fs::create_dir_all(&dir)
        .map_err(DevnetError::io(format!("creating {}", dir.display())))?;
    let keys = options.keys.clone();
    let mut commands = Vec::new();

    let addresses = deploy_l1_contracts(l1, options)?;

    // The start block the SystemConfig recorded (its deployment block).
    let start_block = {
        let output = l1.call(
            addresses.system_config,
            &selector("DevnetSystemConfig", "startBlock()")?,
        )?;
        U256::abi_decode(&output)
            .map_err(|error| DevnetError::unexpected("startBlock() output", error))?
            .to::<u64>()
    };
    let start_block_hash: B256 = l1.block(&start_block.to_string())?["hash"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| DevnetError::unexpected("L1 start block", "no hash"))?;

    let deploy_config_path = dir.join("deploy-config.json");
    let l1_deployments_path = dir.join("l1-deployments.json");
    let l2_allocs_path = dir.join("l2-allocs.json");
    let genesis_path = dir.join("genesis.json");
    let rollup_config_path = dir.join("rollup.json");
    let l1_chain_config_path = dir.join("l1-chain-config.json");

    let deploy_config = deploy_config(options, &addresses, start_block_hash);
    write_json(&deploy_config_path, &deploy_config)?;
    write_json(&l1_deployments_path, &l1_deployments(&addresses))?;
    write_l2_allocs(options, &l2_allocs_path)?;

    let op_node = opstack_binary("op-node")?;
    let genesis_args = vec![
        "genesis".to_owned(),
        "l2".to_owned(),
        format!("--deploy-config={}", deploy_config_path.display()),
        format!("--l1-deployments={}", l1_deployments_path.display()),
        format!("--l2-allocs={}", l2_allocs_path.display()),
        format!("--l1-rpc={}", l1.url()),
        format!("--outfile.l2={}", genesis_path.display()),
        format!("--outfile.rollup={}", rollup_config_path.display()),
    ];
    commands.push(command_line(&op_node, &genesis_args));
    run_command(&op_node, &genesis_args, None, Duration::from_secs(120))?;

    let rollup_config: Value = read_json(&rollup_config_path)?;
    let l2_genesis_hash: B256 = rollup_config["genesis"]["l2"]["hash"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| DevnetError::unexpected("rollup.json", "no genesis.l2.hash"))?;
    check_rollup_config(
        &rollup_config,
        options,
        &addresses,
        start_block,
        start_block_hash,
    )?;

    // op-geth must compute the same genesis hash from genesis.json.
    let op_geth_hash = op_geth_genesis_hash(&genesis_path, &dir.join("init-check"), &mut commands)?;
    if op_geth_hash != l2_genesis_hash {
        return Err(DevnetError::GenesisMismatch {
            rollup: l2_genesis_hash.to_string(),
            op_geth: op_geth_hash.to_string(),
        });
    }

    let (l1_chain_config, dropped) = l1_chain_config_for_op_node(l1.raw_chain_config());
    write_json(&l1_chain_config_path, &l1_chain_config)?;

    Ok(Chain {
        dir,
        l1_chain_id: super::DEV_CHAIN_ID,
        l2_chain_id: L2_CHAIN_ID,
        l2_block_time_secs: options.l2_block_time_secs,
        genesis_fork: options.genesis_fork,
        l2_genesis_time: rollup_config["genesis"]["l2_time"]
            .as_u64()
            .unwrap_or_default(),
        rollup_config,
        rollup_config_path,
        genesis_path,
        l1_chain_config,
        l1_chain_config_path,
        l1_chain_config_dropped: dropped,
        deploy_config_path,
        l1_deployments_path,
        l2_allocs_path,
        l2_genesis_hash,
        l1_origin_number: start_block,
        l1_origin_hash: start_block_hash,
        addresses,
        keys,
        game_types: options.game_types.clone(),
        init_bond_wei: options.init_bond_wei,
        commands,
        creation_time: started.elapsed(),
    })
}

/// Deploys the stand-ins and funds batcher and proposer, all sent at once with explicit nonces
/// (the addresses are computed up front), so they land in one or two L1 blocks.
fn deploy_l1_contracts(l1: &DevL1, options: &ChainOptions) -> Result<L1Addresses, DevnetError> {
    let dev = l1.dev_account();
    let nonce = hex_u64(
        &l1.rpc()
            .call("eth_getTransactionCount", json!([dev, "pending"]))?,
    )
    .ok_or_else(|| DevnetError::unexpected("eth_getTransactionCount", "not a quantity"))?;
    let stub = artifact_bytecode("DevnetStub")?;
    let at = |offset: u64| create_address(dev, nonce + offset);
    let addresses = L1Addresses {
        l1_cross_domain_messenger: at(0),
        l1_standard_bridge: at(1),
        l1_erc721_bridge: at(2),
        optimism_mintable_erc20_factory: at(3),
        dispute_game_factory: at(4),
        optimism_portal: at(5),
        system_config: at(6),
        batch_inbox: format!("0xff{:038}", L2_CHAIN_ID)
            .parse()
            .expect("a valid address"),
    };
    let with_args = |name: &str, args: Vec<u8>| -> Result<Vec<u8>, DevnetError> {
        let mut code = artifact_bytecode(name)?;
        code.extend(args);
        Ok(code)
    };
    let factory = with_args(
        "DevnetDisputeGameFactory",
        (
            options.game_types.clone(),
            U256::from(options.init_bond_wei),
        )
            .abi_encode_params(),
    )?;
    let portal = with_args("DevnetPortal", addresses.dispute_game_factory.abi_encode())?;
    let system_config = with_args(
        "DevnetSystemConfig",
        (
            addresses.optimism_portal,
            addresses.l1_cross_domain_messenger,
            addresses.l1_standard_bridge,
            addresses.l1_erc721_bridge,
            addresses.optimism_mintable_erc20_factory,
            addresses.batch_inbox,
            options.keys.sequencer_signer.address(),
            // 0: the deployment block, as SystemConfig._setStartBlock() does.
            U256::ZERO,
        )
            .abi_encode_params(),
    )?;
    let sends: Vec<(Option<Address>, u128, Vec<u8>)> = vec![
        (None, 0, stub.clone()),
        (None, 0, stub.clone()),
        (None, 0, stub.clone()),
        (None, 0, stub),
        (None, 0, factory),
        (None, 0, portal),
        (None, 0, system_config),
        (
            Some(options.keys.batcher.address()),
            options.batcher_funds_wei,
            vec![],
        ),
        (
            Some(options.keys.proposer.address()),
            options.proposer_funds_wei,
            vec![],
        ),
    ];
    let mut hashes = Vec::new();
    for (offset, (to, value, data)) in sends.into_iter().enumerate() {
        let mut tx = json!({
            "from": dev,
            "nonce": format!("{:#x}", nonce + offset as u64),
            "value": format!("{value:#x}"),
            "data": format!("0x{}", alloy_primitives::hex::encode(&data)),
            // Well above what each needs (the factory ~1M), well below the dev block's ~11M.
            "gas": "0x2dc6c0",
        });
        if let Some(to) = to {
            tx["to"] = json!(to);
        }
        let hash = l1.rpc().call("eth_sendTransaction", json!([tx]))?;
        let hash: B256 = hash
            .as_str()
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| DevnetError::unexpected("eth_sendTransaction result", &hash))?;
        hashes.push((offset, hash));
    }
    for (offset, hash) in hashes {
        let receipt = l1.wait_for_receipt(hash, RECEIPT_TIMEOUT)?;
        if offset < 7 {
            let deployed = contract_address(&receipt)?;
            if deployed != at(offset as u64) {
                return Err(DevnetError::unexpected(
                    "deployment address",
                    format!("{deployed}, computed {}", at(offset as u64)),
                ));
            }
        }
    }
    Ok(addresses)
}

/// The deploy config: test-deploy-config-full.json of optimism v1.19.6 (op-chain-ops/genesis/
/// testdata) with this chain's ids, times, addresses and forks. `genesis l2` uses only the L2
/// parts; the L1/fault-proof fields are kept because `DeployConfig.Check` wants them set.
fn deploy_config(options: &ChainOptions, addresses: &L1Addresses, start_block_hash: B256) -> Value {
    let keys = &options.keys;
    let mut config = json!({
        // Present because Check requires it; `genesis l2` takes the start block from the L1.
        "l1StartingBlockTag": start_block_hash,
        "l1ChainID": super::DEV_CHAIN_ID,
        "l2ChainID": L2_CHAIN_ID,
        "l2BlockTime": options.l2_block_time_secs,
        "l1BlockTime": 2,
        "maxSequencerDrift": 600,
        "sequencerWindowSize": 3600,
        "channelTimeout": 300,
        "p2pSequencerAddress": keys.sequencer_signer.address(),
        "batchInboxAddress": addresses.batch_inbox,
        "batchSenderAddress": keys.batcher.address(),
        "l2OutputOracleSubmissionInterval": 20,
        "l2OutputOracleStartingBlockNumber": 0,
        "l2OutputOracleStartingTimestamp": -1,
        "l2OutputOracleProposer": keys.proposer.address(),
        "l2OutputOracleChallenger": "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65",
    });
    let genesis_blocks = json!({
        "l1GenesisBlockNonce": "0x0",
        "l1GenesisBlockGasLimit": "0x1c9c380",
        "l1GenesisBlockDifficulty": "0x1",
        "finalSystemOwner": "0xbcd4042de499d14e55001ccbb24a551f3b954096",
        "superchainConfigGuardian": "0x0000000000000000000000000000000000000112",
        "finalizationPeriodSeconds": 2,
        "l1GenesisBlockMixHash": B256::ZERO,
        "l1GenesisBlockCoinbase": Address::ZERO,
        "l1GenesisBlockNumber": "0x0",
        "l1GenesisBlockGasUsed": "0x0",
        "l1GenesisBlockParentHash": B256::ZERO,
        "l1GenesisBlockTimestamp": "0x0",
        "l1GenesisBlockBaseFeePerGas": "0x3b9aca00",
        "l2GenesisBlockNonce": "0x0",
        "l2GenesisBlockGasLimit": "0x1c9c380",
        "l2GenesisBlockDifficulty": "0x1",
        "l2GenesisBlockMixHash": B256::ZERO,
        "l2GenesisBlockNumber": "0x0",
        "l2GenesisBlockGasUsed": "0x0",
        "l2GenesisBlockParentHash": B256::ZERO,
        "l2GenesisBlockBaseFeePerGas": "0x3b9aca00",
    });
    let vaults = json!({
        "baseFeeVaultRecipient": "0x42000000000000000000000000000000000000f5",
        "l1FeeVaultRecipient": "0x42000000000000000000000000000000000000f6",
        "sequencerFeeVaultRecipient": "0x42000000000000000000000000000000000000f7",
        "operatorFeeVaultRecipient": "0x4200000000000000000000000000000000000063",
        "baseFeeVaultMinimumWithdrawalAmount": "0x8ac7230489e80000",
        "l1FeeVaultMinimumWithdrawalAmount": "0x8ac7230489e80000",
        "sequencerFeeVaultMinimumWithdrawalAmount": "0x8ac7230489e80000",
        "operatorFeeVaultMinimumWithdrawalAmount": "0x8ac7230489e80000",
        "baseFeeVaultWithdrawalNetwork": 0,
        "l1FeeVaultWithdrawalNetwork": 1,
        "sequencerFeeVaultWithdrawalNetwork": 1,
        "operatorFeeVaultWithdrawalNetwork": 1,
    });
    // Several json! calls: one would exceed the macro's recursion limit.
    let rest = json!({
        // Overwritten from the L1 deployments file (DeployConfig.SetDeployments).
        "l1StandardBridgeProxy": addresses.l1_standard_bridge,
        "l1CrossDomainMessengerProxy": addresses.l1_cross_domain_messenger,
        "l1ERC721BridgeProxy": addresses.l1_erc721_bridge,
        "systemConfigProxy": addresses.system_config,
        "optimismPortalProxy": addresses.optimism_portal,
        "proxyAdminOwner": "0x0000000000000000000000000000000000000222",
        // OP Mainnet's Ecotone scalars, so L2 transactions pay a non-zero L1 fee. The legacy
        // overhead/scalar must be 0, or the genesis system config gets the pre-Ecotone
        // encoding instead (GasPriceOracleDeployConfig.FeeScalar).
        "gasPriceOracleBaseFeeScalar": 1368,
        "gasPriceOracleBlobBaseFeeScalar": 810949,
        "gasPriceOracleOperatorFeeScalar": 0,
        "gasPriceOracleOperatorFeeConstant": 0,
        "gasPriceOracleOverhead": 0,
        "gasPriceOracleScalar": 0,
        "minBaseFee": 100,
        "daFootprintGasScalar": 400,
    });
    let rest2 = json!({
        "enableGovernance": true,
        "governanceTokenSymbol": "OP",
        "governanceTokenName": "Optimism",
        "governanceTokenOwner": "0x0000000000000000000000000000000000000333",
        "deploymentWaitConfirmations": 1,
        "eip1559Denominator": 8,
        "eip1559DenominatorCanyon": 12,
        "eip1559Elasticity": 2,
        // The L2 state dump holds none of the hardhat dev accounts.
        "fundDevAccounts": false,
        "faultGameAbsolutePrestate": B256::ZERO,
        "faultGameMaxDepth": 63,
        "faultGameClockExtension": 10800,
        "faultGameMaxClockDuration": 302400,
        "faultGameGenesisBlock": 0,
        "faultGameGenesisOutputRoot": B256::ZERO,
        "faultGameSplitDepth": 0,
        "faultGameWithdrawalDelay": 604800,
        "preimageOracleMinProposalSize": 1800000,
        "preimageOracleChallengePeriod": 86400,
        "systemConfigStartBlock": 0,
        "proofMaturityDelaySeconds": 12,
        "disputeGameFinalityDelaySeconds": 6,
        "respectedGameType": 0,
        "useCustomGasToken": false,
        "gasPayingTokenName": "",
        "gasPayingTokenSymbol": "",
        "nativeAssetLiquidityAmount": null,
        "liquidityControllerOwner": Address::ZERO,
        "useFaultProofs": false,
        "useAltDA": false,
        "daBondSize": 0,
        "daCommitmentType": "KeccakCommitment",
        "daChallengeProxy": Address::ZERO,
        "daChallengeWindow": 0,
        "daResolveWindow": 0,
        "daResolverRefundPercentage": 0,
    });
    let map = config.as_object_mut().expect("an object");
    for part in [genesis_blocks, vaults, rest, rest2] {
        if let Value::Object(part) = part {
            map.extend(part);
        }
    }
    for (fork, field) in L2Fork::ALL {
        if fork <= options.genesis_fork {
            map.insert(field.to_owned(), json!("0x0"));
        }
    }
    config
}

/// The keys of op-chain-ops/genesis/testdata/l1-deployments.json; a stand-in is both the
/// "implementation" and the "proxy", and what has no stand-in is zero.
fn l1_deployments(addresses: &L1Addresses) -> Value {
    json!({
        "AddressManager": Address::ZERO,
        "DisputeGameFactory": addresses.dispute_game_factory,
        "DisputeGameFactoryProxy": addresses.dispute_game_factory,
        "L1CrossDomainMessenger": addresses.l1_cross_domain_messenger,
        "L1CrossDomainMessengerProxy": addresses.l1_cross_domain_messenger,
        "L1ERC721Bridge": addresses.l1_erc721_bridge,
        "L1ERC721BridgeProxy": addresses.l1_erc721_bridge,
        "L1StandardBridge": addresses.l1_standard_bridge,
        "L1StandardBridgeProxy": addresses.l1_standard_bridge,
        "L2OutputOracle": Address::ZERO,
        "L2OutputOracleProxy": Address::ZERO,
        "OptimismMintableERC20Factory": addresses.optimism_mintable_erc20_factory,
        "OptimismMintableERC20FactoryProxy": addresses.optimism_mintable_erc20_factory,
        "OptimismPortal": addresses.optimism_portal,
        "OptimismPortalProxy": addresses.optimism_portal,
        "ProxyAdmin": Address::ZERO,
        "SystemConfig": addresses.system_config,
        "SystemConfigProxy": addresses.system_config,
    })
}

/// Where the L2 state dump is: the option, [`L2_ALLOCS_ENV`], the optimism module in the Go
/// module cache (`$GOMODCACHE`, else `$GOPATH/pkg/mod`, else `~/go/pkg/mod`), which
/// tests/opstack/setup.sh downloads, or the copy of that module setup.sh builds from
/// (`<cache>/opstack/build/<version key>/optimism-src`).
pub fn l2_allocs_source(options: &ChainOptions) -> PathBuf {
    if let Some(path) = &options.l2_allocs {
        return path.clone();
    }
    if let Some(path) = super::env_path(L2_ALLOCS_ENV) {
        return path;
    }
    let in_module_cache = go_module_cache()
        .join(format!(
            "github.com/ethereum-optimism/optimism@{}",
            optimism_version()
        ))
        .join(ALLOCS_IN_MODULE);
    if in_module_cache.is_file() {
        return in_module_cache;
    }
    let in_build_dir = crate::binaries::cache_root()
        .join("opstack/build")
        .join(format!(
            "optimism-{}-op-geth-{}",
            optimism_version(),
            super::op_geth_version()
        ))
        .join("optimism-src")
        .join(ALLOCS_IN_MODULE);
    if in_build_dir.is_file() {
        in_build_dir
    } else {
        in_module_cache
    }
}

fn go_module_cache() -> PathBuf {
    super::env_path("GOMODCACHE").unwrap_or_else(|| {
        super::env_path("GOPATH")
            .map(|gopath| gopath.join("pkg/mod"))
            .unwrap_or_else(|| {
                super::env_path("HOME")
                    .unwrap_or_else(|| PathBuf::from("/root"))
                    .join("go/pkg/mod")
            })
    })
}

/// Unpacks the state dump, adds the `0x` prefixes `genesis l2` needs and funds the L2 user.
fn write_l2_allocs(options: &ChainOptions, out: &Path) -> Result<(), DevnetError> {
    let source = l2_allocs_source(options);
    if !source.is_file() {
        return Err(DevnetError::MissingBinary {
            name: "the L2 state dump (allocs-l2-v160-1.json.gz)".to_owned(),
            path: source,
            setup: super::OPSTACK_SETUP.to_owned(),
        });
    }
    let text = if source.extension().is_some_and(|ext| ext == "gz") {
        run_command(
            Path::new("gzip"),
            &["-dc".to_owned(), source.display().to_string()],
            None,
            Duration::from_secs(60),
        )?
        .stdout
    } else {
        std::fs::read_to_string(&source)
            .map_err(DevnetError::io(format!("reading {}", source.display())))?
    };
    let allocs: Map<String, Value> = serde_json::from_str(&text)
        .map_err(|error| DevnetError::unexpected(format!("JSON of {}", source.display()), error))?;
    let mut fixed = Map::with_capacity(allocs.len() + 1);
    for (address, mut account) in allocs {
        if let Some(storage) = account.get_mut("storage").and_then(Value::as_object_mut) {
            let entries = std::mem::take(storage);
            for (slot, value) in entries {
                let value = match value {
                    Value::String(text) => Value::String(with_0x(&text)),
                    other => other,
                };
                storage.insert(with_0x(&slot), value);
            }
        }
        fixed.insert(with_0x(&address).to_lowercase(), account);
    }
    let user = format!("{:#x}", options.keys.l2_user.address());
    if fixed.contains_key(&user) {
        return Err(DevnetError::unexpected(
            "L2 state dump",
            format!("already has the test account {user}"),
        ));
    }
    fixed.insert(
        user,
        json!({"balance": format!("{:#x}", options.l2_user_balance_wei)}),
    );
    let out_text = serde_json::to_string(&Value::Object(fixed))
        .map_err(|error| DevnetError::unexpected("L2 allocs JSON", error))?;
    write_file(out, out_text)
}

fn with_0x(text: &str) -> String {
    if text.starts_with("0x") {
        text.to_owned()
    } else {
        format!("0x{text}")
    }
}

/// Checks what `genesis l2` wrote against what was asked for.
fn check_rollup_config(
    rollup: &Value,
    options: &ChainOptions,
    addresses: &L1Addresses,
    start_block: u64,
    start_block_hash: B256,
) -> Result<(), DevnetError> {
    let address = |field: &str| {
        rollup[field]
            .as_str()
            .and_then(|a| a.parse::<Address>().ok())
    };
    let checks = [
        (
            "l2_chain_id",
            rollup["l2_chain_id"].as_u64() == Some(L2_CHAIN_ID),
        ),
        (
            "l1_chain_id",
            rollup["l1_chain_id"].as_u64() == Some(super::DEV_CHAIN_ID),
        ),
        (
            "block_time",
            rollup["block_time"].as_u64() == Some(options.l2_block_time_secs),
        ),
        (
            "batch_inbox_address",
            address("batch_inbox_address") == Some(addresses.batch_inbox),
        ),
        (
            "deposit_contract_address",
            address("deposit_contract_address") == Some(addresses.optimism_portal),
        ),
        (
            "l1_system_config_address",
            address("l1_system_config_address") == Some(addresses.system_config),
        ),
        (
            "genesis.l1.number",
            rollup["genesis"]["l1"]["number"].as_u64() == Some(start_block),
        ),
        (
            "genesis.l1.hash",
            rollup["genesis"]["l1"]["hash"]
                .as_str()
                .and_then(|h| h.parse::<B256>().ok())
                == Some(start_block_hash),
        ),
        (
            "genesis.system_config.batcherAddr",
            rollup["genesis"]["system_config"]["batcherAddr"]
                .as_str()
                .and_then(|a| a.parse::<Address>().ok())
                == Some(options.keys.batcher.address()),
        ),
    ];
    for (field, ok) in checks {
        if !ok {
            return Err(DevnetError::unexpected(
                format!("rollup.json {field}"),
                rollup,
            ));
        }
    }
    for (fork, _) in L2Fork::ALL {
        let time = rollup[fork.rollup_config_field()].as_u64();
        let expected_active = fork <= options.genesis_fork;
        let ok = if expected_active {
            // Active at genesis: a time at or before the L2 genesis time.
            time.is_some_and(|t| t <= rollup["genesis"]["l2_time"].as_u64().unwrap_or(0))
        } else {
            time.is_none()
        };
        if !ok {
            return Err(DevnetError::unexpected(
                format!("rollup.json {}", fork.rollup_config_field()),
                format!("{time:?} (genesis fork {:?})", options.genesis_fork),
            ));
        }
    }
    Ok(())
}

/// Runs `geth init` (op-geth) on a scratch datadir and returns the genesis hash it logs.
fn op_geth_genesis_hash(
    genesis: &Path,
    scratch: &Path,
    commands: &mut Vec<String>,
) -> Result<B256, DevnetError> {
    let op_geth = opstack_binary("geth")?;
    let _ = std::fs::remove_dir_all(scratch);
    let args = vec![
        // A global flag: before the subcommand. JSON logs carry the full hash (the terminal
        // format abbreviates it).
        "--log.format=json".to_owned(),
        "init".to_owned(),
        format!("--datadir={}", scratch.display()),
        "--state.scheme=hash".to_owned(),
        genesis.display().to_string(),
    ];
    commands.push(command_line(&op_geth, &args));
    let output = run_command(&op_geth, &args, None, Duration::from_secs(120));
    let _ = std::fs::remove_dir_all(scratch);
    let output = output?;
    // geth logs to stderr.
    let output = format!("{}{}", output.stdout, output.stderr);
    genesis_hash_from_init_output(&output).ok_or_else(|| {
        DevnetError::unexpected(
            "geth init output (no \"Successfully wrote genesis state\" hash)",
            super::tail_lines(&output, 20),
        )
    })
}

/// The `hash` of geth init's "Successfully wrote genesis state" JSON log line.
pub(crate) fn genesis_hash_from_init_output(output: &str) -> Option<B256> {
    output.lines().find_map(|line| {
        let record: Value = serde_json::from_str(line.trim()).ok()?;
        if !record["msg"]
            .as_str()?
            .contains("Successfully wrote genesis state")
        {
            return None;
        }
        record["hash"].as_str()?.parse().ok()
    })
}

/// The ChainConfig fields op-node v1.19.6 can decode: its decoder is strict
/// (`DisallowUnknownFields` in op-node/service.go `NewL1ChainConfigFromCLI`), and its
/// params.ChainConfig is op-geth's (ethereum-optimism/op-geth@v1.101702.3 params/config.go,
/// `type ChainConfig struct` json tags).
const OP_GETH_CHAIN_CONFIG_FIELDS: &[&str] = &[
    "chainId",
    "homesteadBlock",
    "daoForkBlock",
    "daoForkSupport",
    "eip150Block",
    "eip155Block",
    "eip158Block",
    "byzantiumBlock",
    "constantinopleBlock",
    "petersburgBlock",
    "istanbulBlock",
    "muirGlacierBlock",
    "berlinBlock",
    "londonBlock",
    "arrowGlacierBlock",
    "grayGlacierBlock",
    "mergeNetsplitBlock",
    "shanghaiTime",
    "cancunTime",
    "pragueTime",
    "osakaTime",
    "bpo1Time",
    "bpo2Time",
    "bpo3Time",
    "bpo4Time",
    "bpo5Time",
    "amsterdamTime",
    "verkleTime",
    "bedrockBlock",
    "regolithTime",
    "canyonTime",
    "ecotoneTime",
    "fjordTime",
    "graniteTime",
    "holoceneTime",
    "isthmusTime",
    "jovianTime",
    "karstTime",
    "lagoonTime",
    "terminalTotalDifficulty",
    "depositContractAddress",
    "enableVerkleAtGenesis",
    "ethash",
    "clique",
    "blobSchedule",
    "optimism",
];

/// op-geth v1.101702.3 params.BlobScheduleConfig's fields.
const OP_GETH_BLOB_SCHEDULE_FIELDS: &[&str] = &[
    "cancun",
    "prague",
    "osaka",
    "verkle",
    "bpo1",
    "bpo2",
    "bpo3",
    "bpo4",
    "bpo5",
    "amsterdam",
];

/// The L1 chain config as op-node accepts it: the fields op-geth's ChainConfig does not have
/// removed (returned by name). op-node decodes a bare ChainConfig first and a `{"config": …}`
/// genesis second; the bare form is written.
pub fn l1_chain_config_for_op_node(raw: &Value) -> (Value, Vec<String>) {
    let mut dropped = Vec::new();
    let mut config = Map::new();
    for (key, value) in raw.as_object().into_iter().flatten() {
        if !OP_GETH_CHAIN_CONFIG_FIELDS.contains(&key.as_str()) {
            dropped.push(key.clone());
            continue;
        }
        if key == "blobSchedule" {
            let mut schedule = Map::new();
            for (fork, entry) in value.as_object().into_iter().flatten() {
                if OP_GETH_BLOB_SCHEDULE_FIELDS.contains(&fork.as_str()) {
                    schedule.insert(fork.clone(), entry.clone());
                } else {
                    dropped.push(format!("blobSchedule.{fork}"));
                }
            }
            config.insert(key.clone(), Value::Object(schedule));
        } else {
            config.insert(key.clone(), value.clone());
        }
    }
    (Value::Object(config), dropped)
}

fn write_json(path: &Path, value: &Value) -> Result<(), DevnetError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|error| DevnetError::unexpected("JSON", error))?;
    write_file(path, text + "\n")
}

fn read_json(path: &Path) -> Result<Value, DevnetError> {
    let text = std::fs::read_to_string(path)
        .map_err(DevnetError::io(format!("reading {}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|error| DevnetError::unexpected(format!("JSON of {}", path.display()), error))
}

/// ABI-decodes a `uint256` return value.
pub fn decode_u256(output: &[u8]) -> Result<U256, DevnetError> {
    U256::abi_decode(output).map_err(|error| DevnetError::unexpected("uint256 return value", error))
}

/// `keccak256(signature)[..4]`, for calls to upstream contracts without an artifact.
pub fn selector_of(signature: &str) -> [u8; 4] {
    let hash = keccak256(signature.as_bytes());
    [hash[0], hash[1], hash[2], hash[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_what_op_geth_does_not_know() {
        let raw = json!({
            "chainId": 1337, "osakaTime": 0, "bogotaTime": 0,
            "blobSchedule": {"cancun": {"target": 3}, "prague": {"target": 6}, "bogota": {}},
        });
        let (config, dropped) = l1_chain_config_for_op_node(&raw);
        assert_eq!(
            dropped,
            vec!["blobSchedule.bogota".to_owned(), "bogotaTime".to_owned()]
        );
        assert_eq!(config["chainId"], 1337);
        assert!(config.get("bogotaTime").is_none());
        assert_eq!(config["blobSchedule"]["prague"]["target"], 6);
    }

    #[test]
    fn reads_the_genesis_hash_from_init_json_logs() {
        let output = r#"{"t":"x","lvl":"info","msg":"Writing custom genesis block"}
{"t":"x","lvl":"info","msg":"Successfully wrote genesis state","database":"chaindata","hash":"0x1111111111111111111111111111111111111111111111111111111111111111"}"#;
        assert_eq!(
            genesis_hash_from_init_output(output),
            Some(B256::repeat_byte(0x11))
        );
    }

    #[test]
    fn artifacts_have_the_selectors_op_proposer_calls() {
        // op-proposer v1.19.6 op-proposer/contracts/disputegamefactory.go.
        for signature in [
            "version()",
            "gameCount()",
            "gameAtIndex(uint256)",
            "initBonds(uint32)",
            "create(uint32,bytes32,bytes)",
        ] {
            assert_eq!(
                selector("DevnetDisputeGameFactory", signature).unwrap(),
                selector_of(signature),
                "{signature}"
            );
        }
        for signature in ["gameCreator()", "rootClaim()"] {
            assert_eq!(
                selector("DevnetDisputeGame", signature).unwrap(),
                selector_of(signature)
            );
        }
        assert_eq!(
            selector("DevnetSystemConfig", "startBlock()").unwrap(),
            [0x48, 0xcd, 0x4c, 0xb1]
        );
    }

    #[test]
    fn forks_up_to_the_genesis_fork_are_set() {
        let mut options = ChainOptions::new("/nonexistent");
        options.genesis_fork = L2Fork::Holocene;
        let addresses = L1Addresses {
            system_config: Address::ZERO,
            optimism_portal: Address::ZERO,
            dispute_game_factory: Address::ZERO,
            l1_cross_domain_messenger: Address::ZERO,
            l1_standard_bridge: Address::ZERO,
            l1_erc721_bridge: Address::ZERO,
            optimism_mintable_erc20_factory: Address::ZERO,
            batch_inbox: Address::ZERO,
        };
        let config = deploy_config(&options, &addresses, B256::ZERO);
        assert_eq!(config["l2GenesisHoloceneTimeOffset"], "0x0");
        assert_eq!(config["l2GenesisRegolithTimeOffset"], "0x0");
        assert!(config.get("l2GenesisIsthmusTimeOffset").is_none());
        assert_eq!(L2Fork::Holocene.rollup_config_field(), "holocene_time");
    }
}
