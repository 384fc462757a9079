//! Shared by the `discovery_*` integration tests: a real L1 node (`geth --dev`, built by
//! tests/l1-node/setup.sh), the Solidity test doubles deployed to it, and a tiny synchronous
//! JSON-RPC client to drive it.
//!
//! One geth per test binary, started on first use. It must die with the test binary whatever
//! happens, so (as in tests/harness): it is forked by one long-lived thread with
//! PR_SET_PDEATHSIG (the kernel kills it if the test process dies, even by SIGKILL; the parent
//! is the forking *thread*, hence not a short-lived test thread), an `atexit` hook kills it when
//! libtest exits (statics are never dropped), and its PID is appended to the harness' PID record
//! (`OPSTACK_HARNESS_PID_FILE`, same format and default file as tests/harness), so
//! tests/control-plane/check-no-leftovers.sh can check that none is left.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};
use alloy_sol_types::SolValue;
use serde_json::{Value, json};

const VERSIONS_ENV: &str = include_str!("../../../tests/l1-node/versions.env");
const ARTIFACTS: &str = include_str!("../../../tests/l1-node/contracts/artifacts.json");

/// Tests of one binary share one geth whose head every transaction moves; a test that needs the
/// head to stand still between two of its reads holds this for its whole run (they all do: the
/// tests are short, and parallel ones would only race each other's block numbers).
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// geth --dev's chain id.
pub const DEV_CHAIN_ID: u64 = 1337;

fn geth_version() -> String {
    VERSIONS_ENV
        .lines()
        .find_map(|line| line.strip_prefix("GETH_VERSION="))
        .expect("tests/l1-node/versions.env sets GETH_VERSION")
        .trim()
        .to_string()
}

/// The geth binary: `OPSTACK_GETH`, or where tests/l1-node/setup.sh puts it. Panics (the test
/// fails, it is never skipped) with the command that builds it.
pub fn geth_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("OPSTACK_GETH") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "OPSTACK_GETH={} is not a file; unset it to use the cached build of tests/l1-node/setup.sh",
            path.display()
        );
        return path;
    }
    let cache = cache_root();
    let version = geth_version();
    let path = cache.join(format!("l1-node/geth-{version}/geth"));
    assert!(
        path.is_file(),
        "geth {version} is not built: {} does not exist.\n\
         The discovery tests run against a real L1 node. Build it once per machine (a few \
         minutes) with:\n    bash tests/l1-node/setup.sh\n\
         (same OPSTACK_CACHE_DIR / XDG_CACHE_HOME as this test), or set OPSTACK_GETH to a geth binary.",
        path.display()
    );
    path
}

/// `${OPSTACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opstack-operator}`, as the setup scripts.
fn cache_root() -> PathBuf {
    std::env::var_os("OPSTACK_CACHE_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .filter(|p| !p.is_empty())
                .map(|x| PathBuf::from(x).join("opstack-operator"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/opstack-operator"))
        })
        .expect("neither OPSTACK_CACHE_DIR, XDG_CACHE_HOME nor HOME is set")
}

/// A running `geth --dev` with its HTTP JSON-RPC on a loopback port.
pub struct Geth {
    pub port: u16,
    pub url: String,
    pub datadir: PathBuf,
    pub log: PathBuf,
    pid: u32,
    /// The dev account, funded and unlocked by geth.
    pub account: String,
}

/// This test binary's geth, started on first use.
pub fn geth() -> &'static Geth {
    static GETH: OnceLock<Geth> = OnceLock::new();
    GETH.get_or_init(start_geth)
}

fn start_geth() -> Geth {
    let binary = geth_binary();
    let mut last_error = String::new();
    // A free port is found by binding port 0 and letting it go; someone may take it before
    // geth does, so a failed start is retried on a new port.
    for _attempt in 0..3 {
        match try_start(&binary) {
            Ok(geth) => return geth,
            Err(error) => last_error = error,
        }
    }
    panic!("geth --dev did not start: {last_error}");
}

fn try_start(binary: &Path) -> Result<Geth, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))?
        .port();
    let datadir = std::env::temp_dir().join(format!("opstack-geth-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&datadir).map_err(|e| e.to_string())?;
    let log = datadir.join("geth.log");
    let args: Vec<String> = [
        "--dev",
        "--datadir",
        datadir.to_str().unwrap(),
        "--http",
        "--http.addr",
        "127.0.0.1",
        "--http.port",
        &port.to_string(),
        "--http.api",
        "eth,net,web3",
        "--ipcdisable",
        "--nodiscover",
        "--maxpeers",
        "0",
        "--port",
        "0",
        "--authrpc.port",
        "0",
        "--verbosity",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut child =
        spawn_tied(binary, &args, &log).map_err(|e| format!("spawn {}: {e}", binary.display()))?;
    let pid = child.id();
    record_pid(pid);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let tail = log_tail(&log);
            let _ = std::fs::remove_dir_all(&datadir);
            return Err(format!("geth exited with {status}; log:\n{tail}"));
        }
        if let Ok(accounts) = rpc_on(port, "eth_accounts", json!([])) {
            let account = accounts[0].as_str().unwrap_or_default().to_string();
            if !account.is_empty() {
                register_for_exit(pid, &datadir);
                // Dropping a Child neither kills nor reaps it: the exit hook (or Geth::drop)
                // does both, by PID.
                drop(child);
                return Ok(Geth {
                    port,
                    url,
                    datadir,
                    log,
                    pid,
                    account,
                });
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let tail = log_tail(&log);
            let _ = std::fs::remove_dir_all(&datadir);
            return Err(format!(
                "geth did not answer on {url} within 60 s; log:\n{tail}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Forks `program` from a thread that lives as long as the process, with PR_SET_PDEATHSIG.
fn spawn_tied(program: &Path, args: &[String], log: &Path) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("geth-spawner".into())
            .spawn(move || {
                for (mut command, reply) in receiver {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("could not start the geth spawner thread");
        Mutex::new(sender)
    });
    let out = std::fs::File::create(log)?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // SAFETY: getpid is async-signal-safe and called before the fork.
    let parent = unsafe { libc::getpid() };
    // SAFETY: runs between fork and exec; prctl and getppid are async-signal-safe and nothing
    // is allocated on the success path.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::other(
                    "the test process exited during spawn",
                ));
            }
            Ok(())
        });
    }
    let (reply, response) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((command, reply))
        .map_err(|_| std::io::Error::other("the geth spawner thread is gone"))?;
    response
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| std::io::Error::other("the geth spawner thread did not answer"))?
}

/// Appends `<pid> <start time> geth` to the harness' PID record, the format and file that
/// tests/control-plane/check-no-leftovers.sh reads: `OPSTACK_HARNESS_PID_FILE`, or by default
/// `<cache>/harness-pids/<checkout path with / as _>.pids`. The start time (field 22 of
/// /proc/<pid>/stat) lets the checker tell our geth from a later process that reuses the PID.
fn record_pid(pid: u32) {
    let path = std::env::var_os("OPSTACK_HARNESS_PID_FILE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // The checkout is the workspace root (where Cargo.lock is), whichever crate
            // includes this module (host, tests/operator).
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            let checkout = manifest
                .ancestors()
                .find(|dir| dir.join("Cargo.lock").is_file())
                .unwrap_or(manifest);
            let checkout = checkout
                .canonicalize()
                .unwrap_or_else(|_| checkout.to_path_buf());
            let key = checkout.to_string_lossy().replace('/', "_");
            cache_root()
                .join("harness-pids")
                .join(format!("{key}.pids"))
        });
    let start_time = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after_name = &stat[stat.rfind(')')? + 1..];
            after_name.split_whitespace().nth(19).map(str::to_owned)
        })
        .unwrap_or_else(|| "?".to_string());
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("could not open the PID record {}: {e}", path.display()));
    // One write call per line: appends from parallel test binaries do not interleave.
    file.write_all(format!("{pid} {start_time} geth\n").as_bytes())
        .unwrap_or_else(|e| panic!("could not record PID {pid} in {}: {e}", path.display()));
}

static AT_EXIT: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

fn register_for_exit(pid: u32, datadir: &Path) {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        // SAFETY: registers a plain extern "C" function with no captured state.
        unsafe { libc::atexit(kill_all_at_exit) };
    });
    AT_EXIT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((pid, datadir.to_owned()));
}

extern "C" fn kill_all_at_exit() {
    let entries = std::mem::take(&mut *AT_EXIT.lock().unwrap_or_else(|p| p.into_inner()));
    for (pid, datadir) in entries {
        kill_and_reap(pid);
        let _ = std::fs::remove_dir_all(datadir);
    }
}

fn kill_and_reap(pid: u32) {
    // SAFETY: kill and waitpid on a PID this process spawned and has not reaped yet.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
        libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
    }
}

impl Drop for Geth {
    fn drop(&mut self) {
        AT_EXIT
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(pid, _)| *pid != self.pid);
        kill_and_reap(self.pid);
        let _ = std::fs::remove_dir_all(&self.datadir);
    }
}

/// One JSON-RPC call over plain HTTP/1.1 (std only: usable from sync and async tests alike).
pub fn rpc_on(port: u16, method: &str, params: Value) -> Result<Value, String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP response: {text:?}"))?;
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_string()
    };
    let value: Value = serde_json::from_str(&payload).map_err(|e| format!("{e}: {payload}"))?;
    if let Some(error) = value.get("error") {
        return Err(format!("{method}: {error}"));
    }
    Ok(value["result"].clone())
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

impl Geth {
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        rpc_on(self.port, method, params).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn block_number(&self) -> u64 {
        hex_u64(&self.rpc("eth_blockNumber", json!([])))
    }

    /// Sends a transaction from the dev account and waits for it to be mined.
    pub fn transact(&self, to: Option<Address>, data: Vec<u8>) -> Value {
        let mut tx = json!({
            "from": self.account,
            "data": format!("0x{}", alloy_primitives::hex::encode(&data)),
            "gas": "0x500000",
        });
        if let Some(to) = to {
            tx["to"] = json!(to.to_string());
        }
        let hash = self.rpc("eth_sendTransaction", json!([tx]));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Right after start geth answers "transaction indexing is in progress" until its
            // indexer has caught up: that is "not yet", like a null receipt.
            let receipt = match rpc_on(self.port, "eth_getTransactionReceipt", json!([hash])) {
                Ok(receipt) => receipt,
                Err(e) if e.contains("indexing is in progress") => Value::Null,
                Err(e) => panic!("{e}"),
            };
            if !receipt.is_null() {
                assert_eq!(receipt["status"], "0x1", "transaction failed: {receipt}");
                return receipt;
            }
            assert!(
                Instant::now() < deadline,
                "transaction {hash} not mined in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Deploys artifact `contract` with ABI-encoded constructor arguments.
    pub fn deploy(&self, contract: &str, constructor_args: Vec<u8>) -> Address {
        let mut code = bytecode(contract);
        code.extend(constructor_args);
        let receipt = self.transact(None, code);
        receipt["contractAddress"]
            .as_str()
            .expect("a deployment receipt has contractAddress")
            .parse()
            .unwrap()
    }

    /// Mines at least `n` more blocks (geth --dev mines one per transaction).
    pub fn mine(&self, n: u64) {
        let target = self.block_number() + n;
        let sink: Address = self.account.parse().unwrap();
        while self.block_number() < target {
            self.transact(Some(sink), vec![]);
        }
    }
}

pub fn hex_u64(value: &Value) -> u64 {
    let text = value.as_str().expect("a hex quantity");
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

/// The creation bytecode of a contract in tests/l1-node/contracts/artifacts.json.
pub fn bytecode(contract: &str) -> Vec<u8> {
    let artifacts: Value = serde_json::from_str(ARTIFACTS).unwrap();
    let hex = artifacts["contracts"][contract]["bytecode"]
        .as_str()
        .unwrap_or_else(|| panic!("no contract {contract} in artifacts.json"));
    alloy_primitives::hex::decode(hex).unwrap()
}

/// The selectors solc computed for a contract (`"batchInbox()" -> "0xdac6e63a"`).
pub fn method_identifiers(contract: &str) -> Value {
    let artifacts: Value = serde_json::from_str(ARTIFACTS).unwrap();
    artifacts["contracts"][contract]["methodIdentifiers"].clone()
}

/// What a test chain's SystemConfig should make discovery find.
#[derive(Clone, Debug)]
pub struct TestChain {
    pub system_config: Address,
    pub portal: Address,
    pub dispute_game_factory: Address,
    pub messenger: Address,
    pub standard_bridge: Address,
    pub erc721_bridge: Option<Address>,
    pub erc20_factory: Option<Address>,
    pub batch_inbox: Address,
    pub unsafe_block_signer: Address,
    pub start_block: u64,
    pub version: &'static str,
}

/// Address-looking values that are not contracts, as on a real chain.
pub const BATCH_INBOX: Address =
    alloy_primitives::address!("0xff00000000000000000000000000000000000901");
pub const UNSAFE_BLOCK_SIGNER: Address =
    alloy_primitives::address!("0x1111111111111111111111111111111111111111");

/// Deploys a current-style OP Stack L1 (FakeSystemConfig 3.14.2, its portal, stubs at every
/// other address) and mines enough blocks that discovery can read it `confirmations` deep and
/// one block earlier.
pub fn deploy_chain(geth: &Geth) -> TestChain {
    let stub = || geth.deploy("Stub", vec![]);
    let dispute_game_factory = stub();
    let portal = geth.deploy("FakePortal", dispute_game_factory.abi_encode());
    let (messenger, standard_bridge, erc721_bridge, erc20_factory) =
        (stub(), stub(), stub(), stub());
    let start_block = geth.block_number();
    let system_config = geth.deploy(
        "FakeSystemConfig",
        (
            portal,
            messenger,
            standard_bridge,
            erc721_bridge,
            erc20_factory,
            BATCH_INBOX,
            UNSAFE_BLOCK_SIGNER,
            U256::from(start_block),
        )
            .abi_encode_params(),
    );
    geth.mine(4);
    TestChain {
        system_config,
        portal,
        dispute_game_factory,
        messenger,
        standard_bridge,
        erc721_bridge: Some(erc721_bridge),
        erc20_factory: Some(erc20_factory),
        batch_inbox: BATCH_INBOX,
        unsafe_block_signer: UNSAFE_BLOCK_SIGNER,
        start_block,
        version: "3.14.2",
    }
}

/// Deploys a pre-fault-proof SystemConfig (1.12.0: no `disputeGameFactory()`, no
/// `l1ERC721Bridge()`) whose portal has no `disputeGameFactory()` either.
pub fn deploy_legacy_chain(geth: &Geth) -> TestChain {
    let stub = || geth.deploy("Stub", vec![]);
    let (portal, messenger, standard_bridge, output_oracle) = (stub(), stub(), stub(), stub());
    let start_block = geth.block_number();
    let system_config = geth.deploy(
        "LegacySystemConfig",
        (
            portal,
            messenger,
            standard_bridge,
            BATCH_INBOX,
            UNSAFE_BLOCK_SIGNER,
            output_oracle,
            U256::from(start_block),
        )
            .abi_encode_params(),
    );
    geth.mine(4);
    TestChain {
        system_config,
        portal,
        dispute_game_factory: Address::ZERO,
        messenger,
        standard_bridge,
        erc721_bridge: None,
        erc20_factory: None,
        batch_inbox: BATCH_INBOX,
        unsafe_block_signer: UNSAFE_BLOCK_SIGNER,
        start_block,
        version: "1.12.0",
    }
}
