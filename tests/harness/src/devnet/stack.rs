//! The OP Stack binaries of a [`Chain`] as plain processes: op-geth, op-node (sequencer or
//! replica), op-batcher and op-proposer. Each `start_*` builds the exact command line (kept in
//! [`Process::command_line`]), spawns it through the harness's `process::spawn` (PDEATHSIG, PID
//! record) and waits until it answers. Every listener is on the configured IP.
//!
//! Flags that matter and why (optimism v1.19.6, op-geth v1.101702.3):
//! - op-geth: `--http.api` includes `miner` (op-batcher calls `miner_setMaxDASize` and exits
//!   without it); `--rollup.disabletxpoolgossip`; devp2p only through a `--config` TOML whose
//!   `[Node.P2P] ListenAddr` is the given IP (or empty: no listener; `--port` would bind every
//!   interface), `--nodiscover`, `--nat=none`; a replica forwards transactions with
//!   `--rollup.sequencerhttp`. The sequencer's op-geth has a fixed `--nodekey` so a replica's
//!   op-geth can list it as a static peer: op-node v1.19.6 no longer fetches missed unsafe blocks
//!   over its own P2P (req-resp client removed), and the replica's op-geth fills that gap from
//!   its EL peer.
//! - op-node: `--l1.trustrpc` (reads the unsafe signer with eth_getStorageAt instead of
//!   eth_getProof, and takes L1 headers as given), `--l1.rpckind=standard`, `--l1.beacon.ignore`
//!   (no beacon API; batches are calldata), `--l1.http-poll-interval=1s` and
//!   `--l1.epoch-poll-interval=2s` (defaults 12 s and 6m24s), `--p2p.no-discovery` plus an
//!   explicit empty `--p2p.bootnodes=` (otherwise v1.19.6 resolves its built-in bootnodes' DNS
//!   names even without discovery), its own peerstore/discovery paths, a sequencer with
//!   `--sequencer.enabled --sequencer.l1-confs=0 --p2p.sequencer.key`, a replica with
//!   `--p2p.static=/ip4/<ip>/tcp/<port>/p2p/<peer id>` (`op-node p2p priv2id`).
//! - op-batcher: calldata, 1 confirmation, channels closed after 1 L1 block, 1 s polls.
//! - op-proposer: `--allow-non-finalized` (proposes the safe head; geth --dev finalizes slowly),
//!   a short `--proposal-interval`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, keccak256};
use serde_json::{Value, json};

use super::chain::Chain;
use super::keys::DevKey;
use super::rpc::{RpcClient, hex_u64};
use super::{
    DevnetError, LOG_TAIL_LINES, command_line, free_port, opstack_binary, run_command, wait_for,
    write_file,
};
use crate::process::{self, ManagedProcess};

const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A long-running child of the test process, with its log and exact command line.
pub struct Process {
    inner: Mutex<ManagedProcess>,
    name: String,
    pid: u32,
    log_path: PathBuf,
    command_line: String,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .finish()
    }
}

impl Process {
    /// Spawns `program args` with `env` added, stdout and stderr appended to `log`, tied to the
    /// test process (see `process.rs`).
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
        log: &Path,
    ) -> Result<Process, DevnetError> {
        let inner =
            process::spawn(name, program, args, env, log).map_err(|source| DevnetError::Spawn {
                name: name.to_owned(),
                program: program.to_owned(),
                source,
            })?;
        Ok(Process {
            pid: inner.pid(),
            inner: Mutex::new(inner),
            name: name.to_owned(),
            log_path: log.to_owned(),
            command_line: command_line(program, args),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The program and its arguments, shell-quoted.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    pub fn log_tail(&self, lines: usize) -> String {
        process::log_tail(&self.log_path, lines)
    }

    /// `"--- <log path> ---\n<tail>"`, for failure messages.
    pub fn log_section(&self) -> String {
        format!(
            "--- {} ({}) ---\n{}",
            self.name,
            self.log_path.display(),
            self.log_tail(LOG_TAIL_LINES)
        )
    }

    /// `Some(status)` once it has exited.
    pub fn exit_status(&self) -> Option<String> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .exit_status()
    }

    /// [`DevnetError::Exited`] with the log tail if it has exited.
    pub fn check_running(&self) -> Result<(), DevnetError> {
        match self.exit_status() {
            None => Ok(()),
            Some(status) => Err(DevnetError::Exited {
                name: self.name.clone(),
                status,
                log: self.log_path.clone(),
                tail: self.log_tail(LOG_TAIL_LINES),
            }),
        }
    }

    /// Sends a signal (SIGSTOP, SIGCONT, SIGTERM, …) to the process.
    pub fn signal(&self, signal: libc::c_int) -> Result<(), DevnetError> {
        let _guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: kill on our own child's PID; the guard keeps it from being reaped meanwhile,
        // so the PID cannot have been reused.
        if unsafe { libc::kill(self.pid as libc::pid_t, signal) } != 0 {
            return Err(DevnetError::io(format!(
                "signal {signal} to {} ({})",
                self.name, self.pid
            ))(std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Stops it gracefully: SIGTERM, then waits up to `timeout` for it to exit (SIGKILL after).
    pub fn terminate(self, timeout: Duration) -> Result<(), DevnetError> {
        if self.exit_status().is_some() {
            return Ok(());
        }
        self.signal(libc::SIGTERM)?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let tail = self.log_tail(LOG_TAIL_LINES);
        drop(self); // SIGKILL and reap.
        Err(DevnetError::Timeout {
            what: "a graceful exit after SIGTERM".to_owned(),
            waited: timeout,
            last: "still running; killed".to_owned(),
            logs: tail,
        })
    }
}

/// Writes a 32-byte engine-API JWT secret (64 hex, no 0x, no newline: what op-node, op-geth and
/// op-reth all accept), derived from `label`, to `path`.
pub fn write_jwt_secret(path: &Path, label: &str) -> Result<(), DevnetError> {
    let secret = keccak256(format!("opstack-operator devnet jwt {label}").as_bytes());
    write_file(path, alloy_primitives::hex::encode(secret))
}

/// Writes a key file (64 hex, no 0x, no newline).
pub fn write_key_file(path: &Path, key: &DevKey) -> Result<(), DevnetError> {
    write_file(path, key.hex())
}

/// How to run one op-geth.
#[derive(Clone, Debug)]
pub struct OpGethConfig {
    /// Process name (log file `<dir>/<name>.log`).
    pub name: String,
    pub ip: IpAddr,
    /// Its directory: `datadir/`, `geth.toml`, the log.
    pub dir: PathBuf,
    /// The engine-API secret shared with its op-node.
    pub jwt_secret: PathBuf,
    /// `Some`: listen for EL peers on this port (on `ip`) with this node key.
    pub p2p: Option<(u16, DevKey)>,
    /// Static EL peers (`enode://…`).
    pub static_peers: Vec<String>,
    /// A replica's `--rollup.sequencerhttp` (the sequencer op-geth's HTTP URL).
    pub sequencer_http: Option<String>,
}

/// A running op-geth.
#[derive(Debug)]
pub struct OpGeth {
    pub process: Process,
    /// JSON-RPC (`--http`).
    pub rpc: RpcClient,
    /// Engine API URL (`--authrpc`), for op-node `--l2`.
    pub engine_url: String,
    /// `enode://<id>@<ip>:<port>` when it listens for peers.
    pub enode: Option<String>,
    /// The `geth init` command run for its datadir (None if it was initialised before).
    pub init_command_line: Option<String>,
    /// The `--config` TOML's content.
    pub config_toml: String,
}

/// Initialises (first time) and starts op-geth for `chain`, and checks its genesis block is the
/// rollup config's.
pub fn start_op_geth(chain: &Chain, config: &OpGethConfig) -> Result<OpGeth, DevnetError> {
    let binary = opstack_binary("geth")?;
    std::fs::create_dir_all(&config.dir).map_err(DevnetError::io(format!(
        "creating {}",
        config.dir.display()
    )))?;
    let datadir = config.dir.join("datadir");
    let mut init_command_line = None;
    if !datadir.join("geth").join("chaindata").exists() {
        let args = vec![
            "init".to_owned(),
            format!("--datadir={}", datadir.display()),
            "--state.scheme=hash".to_owned(),
            chain.genesis_path.display().to_string(),
        ];
        init_command_line = Some(command_line(&binary, &args));
        run_command(&binary, &args, None, Duration::from_secs(120))?;
    }
    retry_port_clash(|| launch_op_geth(&binary, chain, config, &datadir, init_command_line.clone()))
}

fn launch_op_geth(
    binary: &Path,
    chain: &Chain,
    config: &OpGethConfig,
    datadir: &Path,
    init_command_line: Option<String>,
) -> Result<OpGeth, DevnetError> {
    let http_port = free_port(config.ip)?;
    let auth_port = free_port(config.ip)?;
    let static_nodes = config
        .static_peers
        .iter()
        .map(|enode| format!("\"{enode}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let (listen, enode) = match &config.p2p {
        Some((port, key)) => (
            format!("{}:{port}", config.ip),
            Some(format!("enode://{}@{}:{port}", key.node_id(), config.ip)),
        ),
        None => (String::new(), None),
    };
    let config_toml = format!(
        "[Node.P2P]\nListenAddr = \"{listen}\"\nNoDiscovery = true\nMaxPeers = 10\nStaticNodes = [{static_nodes}]\n"
    );
    let toml_path = config.dir.join("geth.toml");
    write_file(&toml_path, &config_toml)?;
    let mut args = vec![
        format!("--datadir={}", datadir.display()),
        format!("--config={}", toml_path.display()),
        format!("--networkid={}", chain.l2_chain_id),
        "--syncmode=full".to_owned(),
        "--state.scheme=hash".to_owned(),
        "--http".to_owned(),
        format!("--http.addr={}", config.ip),
        format!("--http.port={http_port}"),
        "--http.api=eth,net,web3,debug,txpool,miner".to_owned(),
        format!("--authrpc.addr={}", config.ip),
        format!("--authrpc.port={auth_port}"),
        format!("--authrpc.jwtsecret={}", config.jwt_secret.display()),
        "--ipcdisable".to_owned(),
        "--nodiscover".to_owned(),
        "--nat=none".to_owned(),
        "--rollup.disabletxpoolgossip".to_owned(),
        "--verbosity=3".to_owned(),
    ];
    if let Some((_, key)) = &config.p2p {
        let key_path = config.dir.join("nodekey");
        write_key_file(&key_path, key)?;
        args.push(format!("--nodekey={}", key_path.display()));
    }
    if let Some(url) = &config.sequencer_http {
        args.push(format!("--rollup.sequencerhttp={url}"));
    }
    let log = config.dir.join(format!("{}.log", config.name));
    let process = Process::spawn(&config.name, binary, &args, &[], &log)?;
    let rpc = RpcClient::new(SocketAddr::new(config.ip, http_port));
    let genesis = wait_for(
        &format!("{} to serve its genesis block", config.name),
        START_TIMEOUT,
        Duration::from_millis(200),
        || match rpc.call("eth_getBlockByNumber", json!(["0x0", false])) {
            Ok(block) if !block.is_null() => Ok(Some(block)),
            Ok(_) => Err("no block 0".to_owned()),
            Err(error) => Err(error.to_string()),
        },
        || process.check_running(),
        || process.log_section(),
    )?;
    let hash: Option<B256> = genesis["hash"].as_str().and_then(|h| h.parse().ok());
    if hash != Some(chain.l2_genesis_hash) {
        return Err(DevnetError::GenesisMismatch {
            rollup: chain.l2_genesis_hash.to_string(),
            op_geth: format!("{hash:?}"),
        });
    }
    Ok(OpGeth {
        process,
        rpc,
        engine_url: format!("http://{}", SocketAddr::new(config.ip, auth_port)),
        enode,
        init_command_line,
        config_toml,
    })
}

impl OpGeth {
    pub fn http_url(&self) -> String {
        self.rpc.url()
    }

    pub fn block_number(&self) -> Result<u64, DevnetError> {
        let value = self.rpc.call("eth_blockNumber", json!([]))?;
        hex_u64(&value).ok_or_else(|| DevnetError::unexpected("eth_blockNumber", &value))
    }

    pub fn peer_count(&self) -> Result<u64, DevnetError> {
        let value = self.rpc.call("net_peerCount", json!([]))?;
        hex_u64(&value).ok_or_else(|| DevnetError::unexpected("net_peerCount", &value))
    }
}

/// Sequencer or replica.
#[derive(Clone, Debug)]
pub enum OpNodeRole {
    /// Builds blocks and signs them with this key (its address must be the SystemConfig's
    /// unsafe block signer).
    Sequencer { signer: DevKey },
    /// Follows: from gossip of its static peers and from L1.
    Replica,
}

/// How to run one op-node.
#[derive(Clone, Debug)]
pub struct OpNodeConfig {
    pub name: String,
    pub ip: IpAddr,
    /// Its directory: p2p key, peerstore, discovery db, safedb, the log.
    pub dir: PathBuf,
    pub l1_url: String,
    /// Its op-geth's engine API ([`OpGeth::engine_url`]).
    pub engine_url: String,
    pub jwt_secret: PathBuf,
    pub role: OpNodeRole,
    /// Its libp2p identity.
    pub p2p_key: DevKey,
    /// Static peers as multiaddrs ([`OpNode::p2p_multiaddr`] of another node).
    pub static_peers: Vec<String>,
}

/// A running op-node.
#[derive(Debug)]
pub struct OpNode {
    pub process: Process,
    /// Its JSON-RPC (`optimism_*`, `opp2p_*`, `admin_*`).
    pub rpc: RpcClient,
    /// libp2p peer id (`op-node p2p priv2id` of its key).
    pub peer_id: String,
    /// `/ip4/<ip>/tcp/<port>/p2p/<peer id>`, for another node's `--p2p.static`.
    pub p2p_multiaddr: String,
    /// The `op-node p2p priv2id` command line (the key goes on stdin).
    pub priv2id_command_line: String,
}

/// The libp2p peer id of a key, from `op-node p2p priv2id` (hex key on stdin).
pub fn peer_id(key: &DevKey) -> Result<(String, String), DevnetError> {
    let op_node = opstack_binary("op-node")?;
    let args = vec!["p2p".to_owned(), "priv2id".to_owned()];
    let output = run_command(
        &op_node,
        &args,
        Some(key.hex().as_bytes()),
        Duration::from_secs(30),
    )?
    .stdout;
    let id = output
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if !id.starts_with("16Uiu2") {
        return Err(DevnetError::unexpected(
            "op-node p2p priv2id output",
            output,
        ));
    }
    Ok((id, command_line(&op_node, &args)))
}

/// Starts op-node and waits until its RPC answers `optimism_syncStatus`.
pub fn start_op_node(chain: &Chain, config: &OpNodeConfig) -> Result<OpNode, DevnetError> {
    let binary = opstack_binary("op-node")?;
    std::fs::create_dir_all(&config.dir).map_err(DevnetError::io(format!(
        "creating {}",
        config.dir.display()
    )))?;
    let p2p_key_path = config.dir.join("p2p-key.txt");
    write_key_file(&p2p_key_path, &config.p2p_key)?;
    let (peer_id, priv2id_command_line) = peer_id(&config.p2p_key)?;
    retry_port_clash(|| {
        launch_op_node(
            &binary,
            chain,
            config,
            &p2p_key_path,
            peer_id.clone(),
            priv2id_command_line.clone(),
        )
    })
}

fn launch_op_node(
    binary: &Path,
    chain: &Chain,
    config: &OpNodeConfig,
    p2p_key_path: &Path,
    peer_id: String,
    priv2id_command_line: String,
) -> Result<OpNode, DevnetError> {
    let rpc_port = free_port(config.ip)?;
    let p2p_port = free_port(config.ip)?;
    let mut args = vec![
        format!("--l1={}", config.l1_url),
        "--l1.rpckind=standard".to_owned(),
        "--l1.trustrpc".to_owned(),
        "--l1.beacon.ignore".to_owned(),
        "--l1.http-poll-interval=1s".to_owned(),
        "--l1.epoch-poll-interval=2s".to_owned(),
        format!("--l2={}", config.engine_url),
        format!("--l2.jwt-secret={}", config.jwt_secret.display()),
        "--l2.enginekind=geth".to_owned(),
        format!("--rollup.config={}", chain.rollup_config_path.display()),
        format!(
            "--rollup.l1-chain-config={}",
            chain.l1_chain_config_path.display()
        ),
        format!("--rpc.addr={}", config.ip),
        format!("--rpc.port={rpc_port}"),
        format!("--safedb.path={}", config.dir.join("safedb").display()),
        "--verifier.l1-confs=0".to_owned(),
        format!("--p2p.listen.ip={}", config.ip),
        format!("--p2p.listen.tcp={p2p_port}"),
        format!("--p2p.listen.udp={p2p_port}"),
        "--p2p.no-discovery".to_owned(),
        // Explicitly none: v1.19.6 otherwise falls back to its built-in (OP Mainnet) bootnodes
        // and resolves their DNS names at start, even with --p2p.no-discovery.
        "--p2p.bootnodes=".to_owned(),
        format!("--p2p.priv.path={}", p2p_key_path.display()),
        format!(
            "--p2p.peerstore.path={}",
            config.dir.join("peerstore").display()
        ),
        format!(
            "--p2p.discovery.path={}",
            config.dir.join("discovery").display()
        ),
        "--log.level=info".to_owned(),
    ];
    if !config.static_peers.is_empty() {
        args.push(format!("--p2p.static={}", config.static_peers.join(",")));
    }
    if let OpNodeRole::Sequencer { signer } = &config.role {
        args.extend([
            "--sequencer.enabled".to_owned(),
            "--sequencer.l1-confs=0".to_owned(),
            format!("--p2p.sequencer.key={}", signer.hex()),
        ]);
    }
    let log = config.dir.join(format!("{}.log", config.name));
    let process = Process::spawn(&config.name, binary, &args, &[], &log)?;
    let rpc = RpcClient::new(SocketAddr::new(config.ip, rpc_port));
    wait_for(
        &format!("{} to answer optimism_syncStatus", config.name),
        START_TIMEOUT,
        Duration::from_millis(200),
        || {
            rpc.call("optimism_syncStatus", json!([]))
                .map(Some)
                .map_err(|e| e.to_string())
        },
        || process.check_running(),
        || process.log_section(),
    )?;
    Ok(OpNode {
        process,
        rpc,
        p2p_multiaddr: format!("/ip4/{}/tcp/{p2p_port}/p2p/{peer_id}", config.ip),
        peer_id,
        priv2id_command_line,
    })
}

/// Block numbers of an op-node's `optimism_syncStatus`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncHeads {
    pub unsafe_l2: u64,
    pub safe_l2: u64,
    pub finalized_l2: u64,
    pub current_l1: u64,
    pub head_l1: u64,
}

impl OpNode {
    pub fn sync_status(&self) -> Result<Value, DevnetError> {
        self.rpc.call("optimism_syncStatus", json!([]))
    }

    pub fn heads(&self) -> Result<SyncHeads, DevnetError> {
        let status = self.sync_status()?;
        let number = |field: &str| status[field]["number"].as_u64().unwrap_or(0);
        Ok(SyncHeads {
            unsafe_l2: number("unsafe_l2"),
            safe_l2: number("safe_l2"),
            finalized_l2: number("finalized_l2"),
            current_l1: number("current_l1"),
            head_l1: number("head_l1"),
        })
    }

    /// Connected libp2p peers (`opp2p_peers`, connected only).
    pub fn connected_peers(&self) -> Result<usize, DevnetError> {
        let peers = self.rpc.call("opp2p_peers", json!([true]))?;
        Ok(peers["peers"].as_object().map_or(0, |peers| peers.len()))
    }
}

/// How to run op-batcher.
#[derive(Clone, Debug)]
pub struct BatcherConfig {
    pub name: String,
    pub ip: IpAddr,
    pub dir: PathBuf,
    pub l1_url: String,
    /// The sequencer's op-geth HTTP URL.
    pub l2_eth_url: String,
    /// The sequencer's op-node RPC URL.
    pub rollup_url: String,
    /// Its L1 key (the rollup config's batcher address).
    pub key: DevKey,
}

/// How to run op-proposer.
#[derive(Clone, Debug)]
pub struct ProposerConfig {
    pub name: String,
    pub ip: IpAddr,
    pub dir: PathBuf,
    pub l1_url: String,
    /// An op-node RPC URL.
    pub rollup_url: String,
    pub game_factory: Address,
    pub game_type: u32,
    pub proposal_interval: Duration,
    pub key: DevKey,
}

/// A running op-batcher or op-proposer.
#[derive(Debug)]
pub struct Service {
    pub process: Process,
    /// Its RPC (`/healthz`, admin methods if enabled).
    pub rpc: RpcClient,
}

fn duration_flag(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// Starts op-batcher (calldata) and waits for its `/healthz`.
pub fn start_batcher(config: &BatcherConfig) -> Result<Service, DevnetError> {
    let binary = opstack_binary("op-batcher")?;
    retry_port_clash(|| {
        let rpc_port = free_port(config.ip)?;
        start_service(
            &binary,
            config.name.clone(),
            config.ip,
            &config.dir,
            batcher_args(config, rpc_port),
            rpc_port,
        )
    })
}

/// op-batcher's arguments with its RPC on `rpc_port`.
pub fn batcher_args(config: &BatcherConfig, rpc_port: u16) -> Vec<String> {
    vec![
        format!("--l1-eth-rpc={}", config.l1_url),
        format!("--l2-eth-rpc={}", config.l2_eth_url),
        format!("--rollup-rpc={}", config.rollup_url),
        format!("--private-key={}", config.key.hex()),
        "--data-availability-type=calldata".to_owned(),
        "--num-confirmations=1".to_owned(),
        "--max-channel-duration=1".to_owned(),
        "--poll-interval=1s".to_owned(),
        "--sub-safety-margin=4".to_owned(),
        "--txmgr.receipt-query-interval=1s".to_owned(),
        format!("--rpc.addr={}", config.ip),
        format!("--rpc.port={rpc_port}"),
        "--log.level=info".to_owned(),
    ]
}

/// Starts op-proposer and waits for its `/healthz`.
pub fn start_proposer(config: &ProposerConfig) -> Result<Service, DevnetError> {
    let binary = opstack_binary("op-proposer")?;
    retry_port_clash(|| {
        let rpc_port = free_port(config.ip)?;
        start_service(
            &binary,
            config.name.clone(),
            config.ip,
            &config.dir,
            proposer_args(config, rpc_port),
            rpc_port,
        )
    })
}

/// op-proposer's arguments with its RPC on `rpc_port`.
pub fn proposer_args(config: &ProposerConfig, rpc_port: u16) -> Vec<String> {
    vec![
        format!("--l1-eth-rpc={}", config.l1_url),
        format!("--rollup-rpc={}", config.rollup_url),
        format!("--game-factory-address={}", config.game_factory),
        format!("--game-type={}", config.game_type),
        format!(
            "--proposal-interval={}",
            duration_flag(config.proposal_interval)
        ),
        "--poll-interval=1s".to_owned(),
        "--allow-non-finalized".to_owned(),
        format!("--private-key={}", config.key.hex()),
        "--num-confirmations=1".to_owned(),
        "--txmgr.receipt-query-interval=1s".to_owned(),
        format!("--rpc.addr={}", config.ip),
        format!("--rpc.port={rpc_port}"),
        "--log.level=info".to_owned(),
    ]
}

fn start_service(
    binary: &Path,
    name: String,
    ip: IpAddr,
    dir: &Path,
    args: Vec<String>,
    rpc_port: u16,
) -> Result<Service, DevnetError> {
    std::fs::create_dir_all(dir).map_err(DevnetError::io(format!("creating {}", dir.display())))?;
    let log = dir.join(format!("{name}.log"));
    let process = Process::spawn(&name, binary, &args, &[], &log)?;
    let rpc = RpcClient::new(SocketAddr::new(ip, rpc_port));
    wait_for(
        &format!("{name} to answer GET /healthz"),
        START_TIMEOUT,
        Duration::from_millis(200),
        || match rpc.get("/healthz") {
            Ok((200, _)) => Ok(Some(())),
            Ok((status, body)) => Err(format!("HTTP {status}: {body}")),
            Err(error) => Err(error),
        },
        || process.check_running(),
        || process.log_section(),
    )?;
    Ok(Service { process, rpc })
}

/// Whether a start failed because a port picked free was taken before the child bound it.
pub(crate) fn is_port_clash(error: &DevnetError) -> bool {
    match error {
        DevnetError::Exited { tail, .. } => tail.contains("address already in use"),
        _ => false,
    }
}

/// Runs `start` up to 3 times: ports are picked free, released, then bound by the child, and
/// another process can take one in between; a start that fails that way is retried on new ports.
pub(crate) fn retry_port_clash<T>(
    mut start: impl FnMut() -> Result<T, DevnetError>,
) -> Result<T, DevnetError> {
    let mut attempt = 1;
    loop {
        match start() {
            Err(error) if attempt < 3 && is_port_clash(&error) => attempt += 1,
            result => return result,
        }
    }
}
