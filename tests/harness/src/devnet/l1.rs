//! The dev L1: upstream geth (`tests/l1-node/setup.sh`) in `--dev` mode.
//!
//! Restart behaviour, measured with geth v1.17.10: after a graceful stop (SIGTERM; geth writes
//! its state journal, "Persisted dirty state to file") a restart on the same datadir resumes the
//! same chain: same dev account (its key is in the datadir's keystore), same block hashes, new
//! blocks on top. After SIGKILL it does not: it reopened at an older block and re-mined
//! different blocks at the same heights, i.e. an L1 reorg. [`DevL1::stop`] therefore stops
//! gracefully; [`DevL1::pause`] (SIGSTOP/SIGCONT) is the other way to make the L1 "go away" for a
//! while (connections then hang instead of being refused).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256};
use serde_json::{Value, json};

use super::rpc::{RpcClient, hex_u64};
use super::stack::Process;
use super::{DevnetError, l1_geth_binary, run_command, wait_for, write_file};

/// geth --dev's chain id.
pub const DEV_CHAIN_ID: u64 = 1337;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`DevL1::wait_for_receipt`] waits by default: a few blocks.
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// How to run the L1.
#[derive(Clone, Debug)]
pub struct L1Config {
    /// The IP its HTTP JSON-RPC listens on (nothing else listens).
    pub ip: IpAddr,
    /// Its HTTP port; `None`: a free one.
    pub port: Option<u16>,
    /// `--dev.period`: seconds between blocks (2 worked with op-node's 2 s L2 blocks).
    pub block_time_secs: u64,
    /// Where its datadir, config and log go (created if missing).
    pub dir: PathBuf,
}

impl L1Config {
    /// 127.0.0.1, a free port, 2 s blocks, in `dir`.
    pub fn local(dir: impl Into<PathBuf>) -> L1Config {
        L1Config {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: None,
            block_time_secs: 2,
            dir: dir.into(),
        }
    }
}

/// A running (or stopped) `geth --dev`.
pub struct DevL1 {
    config: L1Config,
    port: u16,
    binary: PathBuf,
    args: Vec<String>,
    process: Option<Process>,
    /// Times started, to name the logs (`l1.log`, `l1.2.log`, …).
    starts: u32,
    dev_account: Address,
    rpc: RpcClient,
    raw_chain_config: Value,
}

impl DevL1 {
    /// Starts geth --dev and waits until its dev account answers.
    pub fn start(config: L1Config) -> Result<DevL1, DevnetError> {
        let binary = l1_geth_binary()?;
        std::fs::create_dir_all(&config.dir).map_err(DevnetError::io(format!(
            "creating {}",
            config.dir.display()
        )))?;
        // No devp2p listener at all: `--port` would listen on every interface even with
        // --nodiscover --maxpeers 0; an empty ListenAddr in the TOML config does not listen.
        write_file(
            &config.dir.join("geth.toml"),
            "[Node.P2P]\nListenAddr = \"\"\nNoDiscovery = true\nMaxPeers = 0\n",
        )?;
        // The chain config of --dev is fixed by the binary (params.AllDevChainProtocolChanges
        // in go-ethereum): `geth --dev dumpgenesis` prints the genesis the node creates.
        let genesis = run_command(
            &binary,
            &["--dev".to_owned(), "dumpgenesis".to_owned()],
            None,
            Duration::from_secs(60),
        )?
        .stdout;
        let genesis: Value = serde_json::from_str(genesis.trim())
            .map_err(|error| DevnetError::unexpected("output of geth --dev dumpgenesis", error))?;
        let raw_chain_config = genesis
            .get("config")
            .cloned()
            .ok_or_else(|| DevnetError::unexpected("geth --dev dumpgenesis output", "no config"))?;
        let fixed_port = config.port;
        let mut attempt = 1;
        let mut l1 = loop {
            let port = match fixed_port {
                Some(port) => port,
                None => super::free_port(config.ip)?,
            };
            let mut l1 = DevL1 {
                args: Self::args(&config, port),
                rpc: RpcClient::new(SocketAddr::new(config.ip, port)),
                config: config.clone(),
                port,
                binary: binary.clone(),
                process: None,
                starts: 0,
                dev_account: Address::ZERO,
                raw_chain_config: raw_chain_config.clone(),
            };
            match l1.launch() {
                Ok(()) => break l1,
                // A free port picked here was taken before geth bound it: try another.
                Err(error)
                    if fixed_port.is_none()
                        && attempt < 3
                        && super::stack::is_port_clash(&error) =>
                {
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        };
        let chain_id = l1.chain_id()?;
        if chain_id != DEV_CHAIN_ID {
            l1.stop()?;
            return Err(DevnetError::unexpected(
                "L1 chain id",
                format!("{chain_id}, expected {DEV_CHAIN_ID}"),
            ));
        }
        Ok(l1)
    }

    fn args(config: &L1Config, port: u16) -> Vec<String> {
        let datadir = config.dir.join("datadir");
        vec![
            "--dev".to_owned(),
            format!("--dev.period={}", config.block_time_secs),
            format!("--datadir={}", datadir.display()),
            format!("--config={}", config.dir.join("geth.toml").display()),
            "--http".to_owned(),
            format!("--http.addr={}", config.ip),
            format!("--http.port={port}"),
            "--http.api=eth,net,web3,debug,txpool".to_owned(),
            // geth --dev runs its own simulated beacon; the engine API is unused. Keep it on
            // loopback with a random port so it never collides or leaves the machine.
            "--authrpc.addr=127.0.0.1".to_owned(),
            "--authrpc.port=0".to_owned(),
            "--ipcdisable".to_owned(),
            "--nat=none".to_owned(),
            "--verbosity=3".to_owned(),
        ]
    }

    fn launch(&mut self) -> Result<(), DevnetError> {
        self.starts += 1;
        let log = if self.starts == 1 {
            self.config.dir.join("l1.log")
        } else {
            self.config.dir.join(format!("l1.{}.log", self.starts))
        };
        let process = Process::spawn("l1-geth", &self.binary, &self.args, &[], &log)?;
        self.process = Some(process);
        let rpc = self.rpc.clone();
        let account = wait_for(
            "the L1 (geth --dev) to answer eth_accounts",
            START_TIMEOUT,
            Duration::from_millis(100),
            || match rpc.call("eth_accounts", json!([])) {
                Ok(accounts) => Ok(accounts[0].as_str().and_then(|a| a.parse::<Address>().ok())),
                Err(error) => Err(error.to_string()),
            },
            || self.check_running(),
            || self.log_tail(),
        )?;
        if self.dev_account != Address::ZERO && self.dev_account != account {
            return Err(DevnetError::unexpected(
                "dev account after restart",
                format!("{account}, was {}", self.dev_account),
            ));
        }
        self.dev_account = account;
        Ok(())
    }

    fn check_running(&self) -> Result<(), DevnetError> {
        match &self.process {
            Some(process) => process.check_running(),
            None => Err(DevnetError::unexpected("L1 state", "the L1 is stopped")),
        }
    }

    /// Stops geth gracefully (SIGTERM, then waits for it to exit), keeping its datadir and port
    /// for [`DevL1::start_again`].
    pub fn stop(&mut self) -> Result<(), DevnetError> {
        if let Some(process) = self.process.take() {
            process.terminate(STOP_TIMEOUT)?;
        }
        Ok(())
    }

    /// Starts geth again on the same datadir and port, after [`DevL1::stop`]; it resumes its
    /// chain (see the module docs).
    pub fn start_again(&mut self) -> Result<(), DevnetError> {
        if self.process.is_some() {
            return Err(DevnetError::unexpected(
                "L1 state",
                "start_again while running",
            ));
        }
        self.launch()
    }

    /// Freezes geth (SIGSTOP): its port stays open but nothing answers.
    pub fn pause(&self) -> Result<(), DevnetError> {
        self.signal(libc::SIGSTOP)
    }

    /// Lets a [`DevL1::pause`]d geth continue (SIGCONT).
    pub fn resume(&self) -> Result<(), DevnetError> {
        self.signal(libc::SIGCONT)
    }

    fn signal(&self, signal: libc::c_int) -> Result<(), DevnetError> {
        let process = self
            .process
            .as_ref()
            .ok_or_else(|| DevnetError::unexpected("L1 state", "the L1 is stopped"))?;
        process.signal(signal)
    }

    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// `http://<ip>:<port>`
    pub fn url(&self) -> String {
        self.rpc.url()
    }

    pub fn ip(&self) -> IpAddr {
        self.config.ip
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    pub fn block_time_secs(&self) -> u64 {
        self.config.block_time_secs
    }

    /// The running process (`None` while stopped).
    pub fn process(&self) -> Option<&Process> {
        self.process.as_ref()
    }

    /// The exact command line geth runs with.
    pub fn command_line(&self) -> String {
        super::command_line(&self.binary, &self.args)
    }

    /// The log of the current (or last) run.
    pub fn log_tail(&self) -> String {
        match &self.process {
            Some(process) => format!(
                "--- {} ---\n{}",
                process.log_path().display(),
                process.log_tail(super::LOG_TAIL_LINES)
            ),
            None => "(the L1 is stopped)".to_owned(),
        }
    }

    /// The funded, unlocked dev account.
    pub fn dev_account(&self) -> Address {
        self.dev_account
    }

    /// The chain config of the dev genesis as geth prints it (`geth --dev dumpgenesis`), with
    /// fields op-node may not know; [`super::Chain::l1_chain_config`] is the filtered one.
    pub fn raw_chain_config(&self) -> &Value {
        &self.raw_chain_config
    }

    pub fn chain_id(&self) -> Result<u64, DevnetError> {
        let value = self.rpc.call("eth_chainId", json!([]))?;
        hex_u64(&value).ok_or_else(|| DevnetError::unexpected("eth_chainId", &value))
    }

    pub fn block_number(&self) -> Result<u64, DevnetError> {
        let value = self.rpc.call("eth_blockNumber", json!([]))?;
        hex_u64(&value).ok_or_else(|| DevnetError::unexpected("eth_blockNumber", &value))
    }

    /// A block (without transactions) by number or tag (`"latest"`, `"finalized"`, …).
    pub fn block(&self, number_or_tag: &str) -> Result<Value, DevnetError> {
        let tag = match number_or_tag.parse::<u64>() {
            Ok(number) => format!("{number:#x}"),
            Err(_) => number_or_tag.to_owned(),
        };
        self.rpc.call("eth_getBlockByNumber", json!([tag, false]))
    }

    pub fn balance(&self, address: Address) -> Result<u128, DevnetError> {
        let value = self
            .rpc
            .call("eth_getBalance", json!([address, "latest"]))?;
        super::hex_u128(&value).ok_or_else(|| DevnetError::unexpected("eth_getBalance", &value))
    }

    /// Sends a transaction from the dev account (geth fills nonce and fees) and returns its hash
    /// without waiting. `to: None` deploys `data`.
    pub fn send_transaction(
        &self,
        to: Option<Address>,
        value: u128,
        data: &[u8],
    ) -> Result<B256, DevnetError> {
        let mut tx = json!({
            "from": self.dev_account,
            "value": format!("{value:#x}"),
            "data": format!("0x{}", alloy_primitives::hex::encode(data)),
            "gas": "0x1000000",
        });
        if let Some(to) = to {
            tx["to"] = json!(to);
        }
        let hash = self.rpc.call("eth_sendTransaction", json!([tx]))?;
        hash.as_str()
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| DevnetError::unexpected("eth_sendTransaction result", &hash))
    }

    /// Waits for a transaction's receipt and checks its status is 1.
    pub fn wait_for_receipt(&self, hash: B256, timeout: Duration) -> Result<Value, DevnetError> {
        wait_for_receipt(&self.rpc, hash, timeout, || self.log_tail())
    }

    /// [`DevL1::send_transaction`] and [`DevL1::wait_for_receipt`].
    pub fn transact(
        &self,
        to: Option<Address>,
        value: u128,
        data: &[u8],
    ) -> Result<Value, DevnetError> {
        let hash = self.send_transaction(to, value, data)?;
        self.wait_for_receipt(hash, RECEIPT_TIMEOUT)
    }

    /// Sends `wei` from the dev account to `address` and waits for it.
    pub fn fund(&self, address: Address, wei: u128) -> Result<Value, DevnetError> {
        self.transact(Some(address), wei, &[])
    }

    /// `eth_call` at the latest block; returns the output bytes.
    pub fn call(&self, to: Address, data: &[u8]) -> Result<Vec<u8>, DevnetError> {
        let value = self.rpc.call(
            "eth_call",
            json!([{"to": to, "data": format!("0x{}", alloy_primitives::hex::encode(data))}, "latest"]),
        )?;
        super::hex_bytes(&value).ok_or_else(|| DevnetError::unexpected("eth_call result", &value))
    }

    /// Deploys creation code (bytecode + ABI-encoded constructor arguments) and waits for it.
    pub fn deploy(&self, creation_code: &[u8]) -> Result<Address, DevnetError> {
        let receipt = self.transact(None, 0, creation_code)?;
        contract_address(&receipt)
    }

    /// Waits until the L1 head is at least `number`.
    pub fn wait_for_block(&self, number: u64, timeout: Duration) -> Result<u64, DevnetError> {
        wait_for(
            &format!("L1 block {number}"),
            timeout,
            Duration::from_millis(200),
            || match self.block_number() {
                Ok(head) if head >= number => Ok(Some(head)),
                Ok(head) => Err(format!("L1 head {head}")),
                Err(error) => Err(error.to_string()),
            },
            || self.check_running(),
            || self.log_tail(),
        )
    }
}

/// The `contractAddress` of a deployment receipt.
pub(crate) fn contract_address(receipt: &Value) -> Result<Address, DevnetError> {
    receipt["contractAddress"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| {
            DevnetError::unexpected("deployment receipt without contractAddress", receipt)
        })
}

/// Polls `eth_getTransactionReceipt` on `rpc` until there is one; status 0 is an error.
pub(crate) fn wait_for_receipt(
    rpc: &RpcClient,
    hash: B256,
    timeout: Duration,
    logs: impl Fn() -> String,
) -> Result<Value, DevnetError> {
    let started = Instant::now();
    let receipt = wait_for(
        &format!("a receipt for transaction {hash} on {}", rpc.url()),
        timeout,
        Duration::from_millis(100),
        || match rpc.call("eth_getTransactionReceipt", json!([hash])) {
            Ok(receipt) if receipt.is_null() => Ok(None),
            Ok(receipt) => Ok(Some(receipt)),
            // Right after start geth answers "transaction indexing is in progress" until its
            // indexer has caught up: that is "not yet", like a null receipt.
            Err(error) => Err(error.to_string()),
        },
        super::never_fatal,
        logs,
    )?;
    if receipt["status"] != "0x1" {
        return Err(DevnetError::Transaction {
            hash: hash.to_string(),
            reason: format!(
                "status {} after {:?}; receipt {receipt}",
                receipt["status"],
                started.elapsed()
            ),
        });
    }
    Ok(receipt)
}
