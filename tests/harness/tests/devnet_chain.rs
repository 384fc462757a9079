//! A whole OP Stack devnet from the real binaries as plain processes on 127.0.0.1: a dev L1,
//! a chain made by `create_chain`, a sequencer (op-geth + op-node), a replica peered over P2P,
//! op-batcher and op-proposer. Proves the chain works end to end before any of it runs in pods.
//!
//! Needs the binaries of tests/l1-node/setup.sh and tests/opstack/setup.sh (a missing one fails
//! the test, naming the script). Set OPSTACK_HARNESS_KEEP_TMP=1 to keep the datadirs and logs;
//! the command lines that ran are printed and written to `<temp dir>/commands.txt`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolValue;
use opstack_test_harness::devnet::stack::{
    BatcherConfig, OpGeth, OpGethConfig, OpNode, OpNodeConfig, OpNodeRole, ProposerConfig, Service,
    start_batcher, start_op_geth, start_op_node, start_proposer, write_jwt_secret,
};
use opstack_test_harness::devnet::{
    Chain, ChainOptions, DevL1, DevnetError, Eip1559Tx, L1Config, L2Fork, Process, TempDir,
    create_chain, free_port, hex_u64, hex_u128, selector, wait_for,
};
use serde_json::{Value, json};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Unwraps, or fails the test with the error (which carries the log tails).
fn ok<T>(result: Result<T, DevnetError>, what: &str) -> T {
    result.unwrap_or_else(|error| panic!("{what}: {error}"))
}

struct Stack {
    l1: DevL1,
    chain: Chain,
    seq_geth: OpGeth,
    seq_node: OpNode,
    rep_geth: OpGeth,
    rep_node: OpNode,
    batcher: Service,
    proposer: Service,
}

impl Stack {
    fn processes(&self) -> Vec<&Process> {
        let mut all = vec![
            &self.seq_geth.process,
            &self.seq_node.process,
            &self.rep_geth.process,
            &self.rep_node.process,
            &self.batcher.process,
            &self.proposer.process,
        ];
        if let Some(l1) = self.l1.process() {
            all.insert(0, l1);
        }
        all
    }

    /// Fails a wait at once when any process has exited.
    fn all_running(&self) -> Result<(), DevnetError> {
        self.processes()
            .into_iter()
            .try_for_each(Process::check_running)
    }

    fn logs(&self, processes: &[&Process]) -> String {
        processes
            .iter()
            .map(|p| p.log_section())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until `probe` holds, failing with the tails of `relevant` processes' logs.
    fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        relevant: &[&Process],
        probe: impl FnMut() -> Result<Option<T>, String>,
    ) -> T {
        ok(
            wait_for(
                what,
                timeout,
                Duration::from_millis(250),
                probe,
                || self.all_running(),
                || self.logs(relevant),
            ),
            what,
        )
    }

    /// `gameCount()` of the factory.
    fn game_count(&self) -> Result<u64, String> {
        let data =
            selector("DevnetDisputeGameFactory", "gameCount()").map_err(|e| e.to_string())?;
        let output = self
            .l1
            .call(self.chain.addresses.dispute_game_factory, &data)
            .map_err(|e| e.to_string())?;
        U256::abi_decode(&output)
            .map(|n| n.to::<u64>())
            .map_err(|e| e.to_string())
    }
}

fn block_hash(
    rpc: &opstack_test_harness::devnet::RpcClient,
    number: u64,
) -> Result<Option<B256>, String> {
    let block = rpc
        .call(
            "eth_getBlockByNumber",
            json!([format!("{number:#x}"), false]),
        )
        .map_err(|e| e.to_string())?;
    Ok(block["hash"].as_str().and_then(|h| h.parse().ok()))
}

#[test]
fn a_devnet_chain_runs_on_the_real_binaries() {
    let work = ok(TempDir::new("chain"), "temp dir");
    let dir = work.path().to_owned();
    let t0 = Instant::now();

    // --- L1 and chain ---
    let l1 = ok(
        DevL1::start(L1Config::local(dir.join("l1"))),
        "starting the dev L1",
    );
    let l1_started = t0.elapsed();
    let chain = ok(
        create_chain(&l1, &ChainOptions::new(dir.join("chain"))),
        "creating the chain",
    );
    assert_eq!(chain.genesis_fork, L2Fork::Holocene);
    assert!(
        chain.fork_time(L2Fork::Holocene).is_some() && chain.fork_time(L2Fork::Isthmus).is_none()
    );
    let keys = chain.keys.clone();

    // --- sequencer ---
    let seq_jwt = dir.join("sequencer-jwt.hex");
    ok(write_jwt_secret(&seq_jwt, "sequencer"), "JWT");
    let seq_geth = ok(
        start_op_geth(
            &chain,
            &OpGethConfig {
                name: "sequencer-op-geth".into(),
                ip: LOCALHOST,
                dir: dir.join("sequencer-op-geth"),
                jwt_secret: seq_jwt.clone(),
                p2p: Some((
                    ok(free_port(LOCALHOST), "port"),
                    keys.sequencer_el_node.clone(),
                )),
                static_peers: vec![],
                sequencer_http: None,
            },
        ),
        "starting the sequencer's op-geth",
    );
    let seq_node_started = Instant::now();
    let seq_node = ok(
        start_op_node(
            &chain,
            &OpNodeConfig {
                name: "sequencer-op-node".into(),
                ip: LOCALHOST,
                dir: dir.join("sequencer-op-node"),
                l1_url: l1.url(),
                engine_url: seq_geth.engine_url.clone(),
                jwt_secret: seq_jwt,
                role: OpNodeRole::Sequencer {
                    signer: keys.sequencer_signer.clone(),
                },
                p2p_key: keys.sequencer_p2p.clone(),
                static_peers: vec![],
            },
        ),
        "starting the sequencer's op-node",
    );

    // --- replica: its op-geth peers with the sequencer's (fills the gap before gossip), its
    // op-node with the sequencer's op-node (gossip) ---
    let rep_jwt = dir.join("replica-jwt.hex");
    ok(write_jwt_secret(&rep_jwt, "replica"), "JWT");
    let rep_geth = ok(
        start_op_geth(
            &chain,
            &OpGethConfig {
                name: "replica-op-geth".into(),
                ip: LOCALHOST,
                dir: dir.join("replica-op-geth"),
                jwt_secret: rep_jwt.clone(),
                p2p: None,
                static_peers: vec![
                    seq_geth
                        .enode
                        .clone()
                        .expect("the sequencer's op-geth listens"),
                ],
                sequencer_http: Some(seq_geth.http_url()),
            },
        ),
        "starting the replica's op-geth",
    );
    let rep_node = ok(
        start_op_node(
            &chain,
            &OpNodeConfig {
                name: "replica-op-node".into(),
                ip: LOCALHOST,
                dir: dir.join("replica-op-node"),
                l1_url: l1.url(),
                engine_url: rep_geth.engine_url.clone(),
                jwt_secret: rep_jwt,
                role: OpNodeRole::Replica,
                p2p_key: keys.replica_p2p.clone(),
                static_peers: vec![seq_node.p2p_multiaddr.clone()],
            },
        ),
        "starting the replica's op-node",
    );

    // --- batcher and proposer ---
    let batcher_started = Instant::now();
    let batcher = ok(
        start_batcher(&BatcherConfig {
            name: "op-batcher".into(),
            ip: LOCALHOST,
            dir: dir.join("op-batcher"),
            l1_url: l1.url(),
            l2_eth_url: seq_geth.http_url(),
            rollup_url: seq_node.rpc.url(),
            key: keys.batcher.clone(),
        }),
        "starting op-batcher",
    );
    let proposer_started = Instant::now();
    let proposer = ok(
        start_proposer(&ProposerConfig {
            name: "op-proposer".into(),
            ip: LOCALHOST,
            dir: dir.join("op-proposer"),
            l1_url: l1.url(),
            rollup_url: seq_node.rpc.url(),
            game_factory: chain.addresses.dispute_game_factory,
            game_type: 1,
            proposal_interval: Duration::from_secs(12),
            key: keys.proposer.clone(),
        }),
        "starting op-proposer",
    );
    let stack = Stack {
        l1,
        chain,
        seq_geth,
        seq_node,
        rep_geth,
        rep_node,
        batcher,
        proposer,
    };
    record_commands(&stack, &dir);

    let seq = [&stack.seq_node.process, &stack.seq_geth.process];
    let rep = [
        &stack.rep_node.process,
        &stack.rep_geth.process,
        &stack.seq_node.process,
    ];

    // 1. The sequencer's unsafe head advances.
    let first_block = stack.wait(
        "the sequencer's first unsafe block",
        Duration::from_secs(60),
        &seq,
        || {
            let heads = stack.seq_node.heads().map_err(|e| e.to_string())?;
            Ok((heads.unsafe_l2 >= 1).then_some(seq_node_started.elapsed()))
        },
    );
    let unsafe_then = stack.seq_node.heads().unwrap().unsafe_l2;
    stack.wait(
        "the sequencer's unsafe head to advance by 3",
        Duration::from_secs(30),
        &seq,
        || {
            let heads = stack.seq_node.heads().map_err(|e| e.to_string())?;
            Ok((heads.unsafe_l2 >= unsafe_then + 3).then_some(()))
        },
    );

    // The L1-info deposit of Holocene blocks succeeds with these predeploys.
    let info_receipt = |number: u64| -> Result<Value, String> {
        let block = stack
            .seq_geth
            .rpc
            .call(
                "eth_getBlockByNumber",
                json!([format!("{number:#x}"), false]),
            )
            .map_err(|e| e.to_string())?;
        let first = block["transactions"][0].clone();
        stack
            .seq_geth
            .rpc
            .call("eth_getTransactionReceipt", json!([first]))
            .map_err(|e| e.to_string())
    };
    for number in [1, unsafe_then + 1] {
        let receipt = info_receipt(number).unwrap();
        assert_eq!(
            receipt["status"], "0x1",
            "L1-info deposit of block {number} reverted: {receipt}"
        );
    }

    // 2. The replica follows over P2P within a few blocks, with the same blocks.
    stack.wait(
        "the replica's op-node to connect to the sequencer's",
        Duration::from_secs(60),
        &rep,
        || {
            let peers = stack
                .rep_node
                .connected_peers()
                .map_err(|e| e.to_string())?;
            Ok((peers >= 1).then_some(()))
        },
    );
    let replica_caught_up = stack.wait(
        "the replica to be within 3 blocks of the sequencer",
        Duration::from_secs(90),
        &rep,
        || {
            let seq_head = stack.seq_node.heads().map_err(|e| e.to_string())?.unsafe_l2;
            let rep_head = stack.rep_node.heads().map_err(|e| e.to_string())?.unsafe_l2;
            if rep_head + 3 >= seq_head && rep_head > 0 {
                Ok(Some(rep_head))
            } else {
                Err(format!(
                    "sequencer unsafe {seq_head}, replica unsafe {rep_head}"
                ))
            }
        },
    );
    assert_eq!(
        block_hash(&stack.seq_geth.rpc, replica_caught_up).unwrap(),
        block_hash(&stack.rep_geth.rpc, replica_caught_up).unwrap(),
        "block {replica_caught_up} differs between sequencer and replica"
    );
    // And keeps following: gossip, not only the EL catch-up.
    let target = replica_caught_up + 3;
    stack.wait(
        "the replica to keep following",
        Duration::from_secs(30),
        &rep,
        || {
            let rep_head = stack.rep_node.heads().map_err(|e| e.to_string())?.unsafe_l2;
            Ok((rep_head >= target).then_some(()))
        },
    );

    // 3. The safe head advances once the batcher has posted, on both nodes.
    let batcher_logs = [&stack.batcher.process, &stack.seq_node.process];
    let first_safe = stack.wait(
        "the sequencer's safe head to advance",
        Duration::from_secs(120),
        &batcher_logs,
        || {
            let heads = stack.seq_node.heads().map_err(|e| e.to_string())?;
            if heads.safe_l2 >= 1 {
                Ok(Some(batcher_started.elapsed()))
            } else {
                Err(format!("{heads:?}"))
            }
        },
    );
    stack.wait(
        "the replica's safe head to advance (derived from L1)",
        Duration::from_secs(60),
        &rep,
        || {
            let heads = stack.rep_node.heads().map_err(|e| e.to_string())?;
            Ok((heads.safe_l2 >= 1).then_some(()))
        },
    );

    // 4. The proposer creates a game in the factory, as its creator, claiming the output root.
    let proposer_logs = [&stack.proposer.process, &stack.seq_node.process];
    let first_proposal = stack.wait(
        "the proposer's first game (gameCount > 0)",
        Duration::from_secs(120),
        &proposer_logs,
        || {
            let count = stack.game_count()?;
            if count > 0 {
                Ok(Some(proposer_started.elapsed()))
            } else {
                Err(format!("gameCount {count}"))
            }
        },
    );
    let mut game_at = selector("DevnetDisputeGameFactory", "gameAtIndex(uint256)")
        .unwrap()
        .to_vec();
    game_at.extend(U256::ZERO.abi_encode());
    let output = ok(
        stack
            .l1
            .call(stack.chain.addresses.dispute_game_factory, &game_at),
        "gameAtIndex(0)",
    );
    let (game_type, _timestamp, game) =
        <(u32, u64, Address)>::abi_decode_params(&output).expect("gameAtIndex output");
    assert_eq!(game_type, 1, "the proposer's --game-type");
    let game_call = |signature: &str| {
        ok(
            stack
                .l1
                .call(game, &selector("DevnetDisputeGame", signature).unwrap()),
            signature,
        )
    };
    let creator = Address::abi_decode(&game_call("gameCreator()")).unwrap();
    assert_eq!(
        creator,
        keys.proposer.address(),
        "the game's creator is the proposer"
    );
    let root_claim = B256::abi_decode(&game_call("rootClaim()")).unwrap();
    let l2_block = U256::abi_decode(&game_call("l2BlockNumber()"))
        .unwrap()
        .to::<u64>();
    let expected = ok(
        stack
            .seq_node
            .rpc
            .call("optimism_outputAtBlock", json!([format!("{l2_block:#x}")])),
        "optimism_outputAtBlock",
    );
    assert_eq!(
        expected["outputRoot"]
            .as_str()
            .and_then(|r| r.parse::<B256>().ok()),
        Some(root_claim),
        "the game claims the output root of L2 block {l2_block}"
    );
    assert_eq!(
        ok(stack.l1.balance(game), "game balance"),
        stack.chain.init_bond_wei,
        "the game holds the init bond"
    );

    // 5. A transaction sent to the replica's op-geth is forwarded to the sequencer and included;
    // its receipt is readable on the replica.
    let user = &keys.l2_user;
    let nonce = hex_u64(&ok(
        stack.rep_geth.rpc.call(
            "eth_getTransactionCount",
            json!([user.address(), "pending"]),
        ),
        "nonce",
    ))
    .unwrap();
    let latest = ok(
        stack
            .rep_geth
            .rpc
            .call("eth_getBlockByNumber", json!(["latest", false])),
        "latest block",
    );
    let base_fee = hex_u128(&latest["baseFeePerGas"]).expect("baseFeePerGas");
    let recipient: Address = "0x000000000000000000000000000000000000dEaD"
        .parse()
        .unwrap();
    let tx = Eip1559Tx {
        chain_id: stack.chain.l2_chain_id,
        nonce,
        max_priority_fee_per_gas: 1_000_000,
        max_fee_per_gas: base_fee * 2 + 1_000_000,
        gas_limit: 21_000,
        to: recipient,
        value: 12_345,
        data: vec![],
    };
    let (raw, hash) = tx.sign(user);
    let sent = ok(
        stack.rep_geth.rpc.call(
            "eth_sendRawTransaction",
            json!([format!("0x{}", alloy_primitives::hex::encode(&raw))]),
        ),
        "eth_sendRawTransaction on the replica",
    );
    assert_eq!(
        sent.as_str().and_then(|h| h.parse::<B256>().ok()),
        Some(hash)
    );
    let tx_logs = [
        &stack.rep_geth.process,
        &stack.seq_geth.process,
        &stack.rep_node.process,
    ];
    let receipt = stack.wait(
        "the transaction's receipt on the replica",
        Duration::from_secs(60),
        &tx_logs,
        || match stack
            .rep_geth
            .rpc
            .call("eth_getTransactionReceipt", json!([hash]))
        {
            Ok(receipt) if !receipt.is_null() => Ok(Some(receipt)),
            Ok(_) => Ok(None),
            Err(error) => Err(error.to_string()),
        },
    );
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    let on_sequencer = ok(
        stack
            .seq_geth
            .rpc
            .call("eth_getTransactionReceipt", json!([hash])),
        "receipt on the sequencer",
    );
    assert_eq!(
        on_sequencer["blockHash"], receipt["blockHash"],
        "included by the sequencer, same block on both"
    );
    assert!(
        hex_u128(&receipt["l1Fee"]).is_some_and(|fee| fee > 0),
        "the transaction paid an L1 fee: {receipt}"
    );

    // 6. The L1 stops for a while and comes back on the same datadir and port: its chain
    // resumes (no reorg) and the rollup carries on (safe head advances again).
    let mut stack = stack;
    let l1_head = ok(stack.l1.block_number(), "L1 head");
    let l1_head_hash = ok(stack.l1.block(&l1_head.to_string()), "L1 head block")["hash"].clone();
    let safe_before = stack.seq_node.heads().unwrap().safe_l2;
    ok(stack.l1.stop(), "stopping the L1");
    std::thread::sleep(Duration::from_secs(10));
    let l1_restarted = Instant::now();
    ok(stack.l1.start_again(), "restarting the L1");
    assert_eq!(
        ok(
            stack.l1.block(&l1_head.to_string()),
            "L1 block after restart"
        )["hash"],
        l1_head_hash,
        "the L1 resumed a different chain after restart"
    );
    ok(
        stack
            .l1
            .wait_for_block(l1_head + 2, Duration::from_secs(30)),
        "L1 blocks after restart",
    );
    let safe_after_restart = stack.wait(
        "the safe head to advance after the L1 restart",
        Duration::from_secs(120),
        &[&stack.batcher.process, &stack.seq_node.process],
        || {
            let heads = stack.seq_node.heads().map_err(|e| e.to_string())?;
            if heads.safe_l2 > safe_before + 2 {
                Ok(Some(l1_restarted.elapsed()))
            } else {
                Err(format!("{heads:?}"))
            }
        },
    );

    let timings = format!(
        "timings: L1 start {l1_started:?}; chain creation {:?}; first L2 block {first_block:?} after the \
         sequencer op-node started; first safe head advance {first_safe:?} after op-batcher started; \
         first game {first_proposal:?} after op-proposer started; safe head moving again \
         {safe_after_restart:?} after the L1 restart; whole test {:?}",
        stack.chain.creation_time,
        t0.elapsed()
    );
    eprintln!("{timings}");
    let _ = std::fs::write(dir.join("timings.txt"), timings + "\n");
}

/// Prints every command line that ran and writes them to `<dir>/commands.txt`.
fn record_commands(stack: &Stack, dir: &std::path::Path) {
    let mut lines = vec![format!("# L1\n{}", stack.l1.command_line())];
    for command in &stack.chain.commands {
        lines.push(format!("# create_chain\n{command}"));
    }
    for geth in [&stack.seq_geth, &stack.rep_geth] {
        if let Some(init) = &geth.init_command_line {
            lines.push(format!("# {} init\n{init}", geth.process.name()));
        }
        lines.push(format!(
            "# {} --config TOML\n{}",
            geth.process.name(),
            geth.config_toml
        ));
    }
    lines.push(format!(
        "# L1 chain config fields dropped for op-node: {:?}",
        stack.chain.l1_chain_config_dropped
    ));
    lines.push(format!(
        "# peer id (hex key on stdin)\n{}",
        stack.seq_node.priv2id_command_line
    ));
    for process in stack.processes().into_iter().skip(1) {
        lines.push(format!("# {}\n{}", process.name(), process.command_line()));
    }
    let text = lines.join("\n\n") + "\n";
    eprintln!("{text}");
    let _ = std::fs::write(dir.join("commands.txt"), text);
}
