//! A real OP Stack devnet outside Kubernetes: a dev L1 (`geth --dev`), the smallest L1
//! contracts the binaries need, and an L2 chain (genesis + rollup config) made by
//! `op-node genesis l2`, plus the real binaries (op-geth, op-node, op-batcher, op-proposer)
//! as plain processes.
//!
//! The pieces, each usable alone:
//! - [`DevL1`]: `geth --dev` with a block time, its HTTP JSON-RPC on an IP and port the caller
//!   picks (the node tier passes a host-only IP pods can reach; tests use 127.0.0.1), stoppable
//!   and restartable on the same datadir and port ([`DevL1::stop`] / [`DevL1::start_again`], a
//!   graceful stop: geth --dev resumes its chain, see there), or frozen with
//!   [`DevL1::pause`] / [`DevL1::resume`]; JSON-RPC helpers (send from the dev account, wait for
//!   a receipt, fund an address, `eth_call`, deploy).
//! - [`create_chain`]: deploys the stand-ins of `tests/l1-node/contracts/DevnetL1.sol`, funds
//!   the batcher and proposer, writes the deploy config and L1 deployments, runs
//!   `op-node genesis l2`, checks with `geth init` that op-geth computes the rollup config's L2
//!   genesis hash, and returns a [`Chain`]: file paths and contents, chain ids, addresses, keys.
//! - [`stack`]: command lines and start-up of op-geth, op-node (sequencer or replica), op-batcher
//!   and op-proposer against a [`Chain`], each a [`Process`] tied to the test process (PDEATHSIG,
//!   PID recorded for the leftover check, see `process.rs`).
//!
//! Everything listens on the IP it is given and nowhere else, and nothing reaches outside the
//! machine: no discovery on any layer, op-node's built-in bootnodes are replaced by an explicit
//! empty list, op-geth and the L1 get no devp2p listener unless a peer needs one, and `--nat=none`.
//!
//! All calls block; from async code run them on a blocking thread
//! (`tokio::task::spawn_blocking`).
//!
//! The keys are deterministic test keys ([`ChainKeys::deterministic`]); public, for test chains.
//!
//! Binaries: the L1 is geth from `tests/l1-node/setup.sh` (or `OPSTACK_GETH`); the OP Stack
//! binaries come from `tests/opstack/setup.sh` (or [`OPSTACK_BIN_ENV`]). A missing one is a
//! [`DevnetError::MissingBinary`] naming the script.
//!
//! Typical use (tests/harness/tests/devnet_chain.rs runs the whole stack):
//!
//! ```no_run
//! use opstack_test_harness::devnet::{ChainOptions, DevL1, L1Config, TempDir, create_chain};
//!
//! let dir = TempDir::new("my-test").unwrap();
//! let l1 = DevL1::start(L1Config::local(dir.path().join("l1"))).unwrap();
//! let chain = create_chain(&l1, &ChainOptions::new(dir.path().join("chain"))).unwrap();
//! // chain.rollup_config_path, chain.genesis_path, chain.l1_chain_config_path,
//! // chain.addresses.system_config, chain.keys.batcher.hex(), …
//! ```

mod chain;
mod keys;
mod l1;
mod rpc;
pub mod stack;

use std::io::{self, Read};
use std::net::{IpAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use chain::{
    Chain, ChainOptions, L1Addresses, L2_CHAIN_ID, L2Fork, create_chain, decode_u256,
    l1_chain_config_for_op_node, l2_allocs_source, selector, selector_of,
};
pub use keys::{ChainKeys, DevKey, Eip1559Tx, create_address};
pub use l1::{DEV_CHAIN_ID, DevL1, L1Config};
pub use rpc::{RpcClient, hex_bytes, hex_u64, hex_u128, quantity};
pub use stack::Process;

use crate::binaries::cache_root;

/// Overrides the directory holding op-node, op-batcher, op-proposer, op-challenger,
/// op-conductor and geth (op-geth), instead of `tests/opstack/setup.sh`'s cache path.
pub const OPSTACK_BIN_ENV: &str = "OPSTACK_BIN_DIR";
/// Overrides the L1 geth binary (the same variable the discovery tests read).
pub const L1_GETH_ENV: &str = "OPSTACK_GETH";
/// Overrides the L2 state dump given to `op-node genesis l2` (see [`l2_allocs_source`]).
pub const L2_ALLOCS_ENV: &str = "OPSTACK_L2_ALLOCS";

const OPSTACK_VERSIONS_ENV: &str = include_str!("../../../opstack/versions.env");
const L1_VERSIONS_ENV: &str = include_str!("../../../l1-node/versions.env");
const OPSTACK_SETUP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../opstack/setup.sh");
const L1_SETUP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../l1-node/setup.sh");

/// Lines of a log or of stderr in an error message.
pub const LOG_TAIL_LINES: usize = 40;

/// What failed, with enough to act on it.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("{name} not found at {path}; build it with: bash {setup}")]
    MissingBinary {
        name: String,
        path: PathBuf,
        setup: String,
    },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("could not start {name} ({program}): {source}")]
    Spawn {
        name: String,
        program: PathBuf,
        source: io::Error,
    },
    #[error("`{command}` failed ({status}); last lines of its output:\n{output_tail}")]
    Command {
        command: String,
        status: String,
        output_tail: String,
    },
    #[error("{name} exited ({status}); last lines of its log {log}:\n{tail}")]
    Exited {
        name: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{what} did not happen within {waited:?}; last observation: {last}\n{logs}")]
    Timeout {
        what: String,
        waited: Duration,
        last: String,
        logs: String,
    },
    #[error("JSON-RPC {method} on {url}: {message}")]
    Rpc {
        url: String,
        method: String,
        message: String,
    },
    #[error("transaction {hash} failed: {reason}")]
    Transaction { hash: String, reason: String },
    #[error(
        "op-geth's genesis hash {op_geth} differs from the rollup config's genesis.l2.hash \
         {rollup}: the genesis and rollup config do not belong together"
    )]
    GenesisMismatch { rollup: String, op_geth: String },
    #[error("unexpected {what}: {detail}")]
    Unexpected { what: String, detail: String },
}

impl DevnetError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> DevnetError {
        let what = what.into();
        move |source| DevnetError::Io { what, source }
    }

    pub(crate) fn unexpected(what: impl Into<String>, detail: impl ToString) -> DevnetError {
        DevnetError::Unexpected {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

fn opstack_pinned(key: &str) -> &'static str {
    crate::binaries::pinned_in("tests/opstack/versions.env", OPSTACK_VERSIONS_ENV, key)
}

/// optimism (op-node, op-batcher, op-proposer, …) version of `tests/opstack/versions.env`.
pub fn optimism_version() -> &'static str {
    opstack_pinned("OPTIMISM_VERSION")
}

/// op-geth version of `tests/opstack/versions.env`.
pub fn op_geth_version() -> &'static str {
    opstack_pinned("OP_GETH_VERSION")
}

/// The L1 geth version of `tests/l1-node/versions.env`.
pub fn l1_geth_version() -> &'static str {
    crate::binaries::pinned_in(
        "tests/l1-node/versions.env",
        L1_VERSIONS_ENV,
        "GETH_VERSION",
    )
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// The directory of the OP Stack binaries: [`OPSTACK_BIN_ENV`] or
/// `<cache>/opstack/optimism-<v>-op-geth-<v>/` (tests/opstack/setup.sh).
pub fn opstack_bin_dir() -> PathBuf {
    env_path(OPSTACK_BIN_ENV).unwrap_or_else(|| {
        cache_root().join("opstack").join(format!(
            "optimism-{}-op-geth-{}",
            optimism_version(),
            op_geth_version()
        ))
    })
}

/// An OP Stack binary (`op-node`, `op-batcher`, `op-proposer`, `op-challenger`,
/// `op-conductor`, or `geth` for op-geth).
pub fn opstack_binary(name: &str) -> Result<PathBuf, DevnetError> {
    let path = opstack_bin_dir().join(name);
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(DevnetError::MissingBinary {
            name: name.to_owned(),
            path,
            setup: OPSTACK_SETUP.to_owned(),
        })
    }
}

/// The L1's geth: `OPSTACK_GETH` or `<cache>/l1-node/geth-<v>/geth` (tests/l1-node/setup.sh).
pub fn l1_geth_binary() -> Result<PathBuf, DevnetError> {
    let path = env_path(L1_GETH_ENV).unwrap_or_else(|| {
        cache_root()
            .join("l1-node")
            .join(format!("geth-{}", l1_geth_version()))
            .join("geth")
    });
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(DevnetError::MissingBinary {
            name: "geth (L1)".to_owned(),
            path,
            setup: L1_SETUP.to_owned(),
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A free TCP port on `ip` (bound, then released: another process may take it in between).
pub fn free_port(ip: IpAddr) -> Result<u16, DevnetError> {
    TcpListener::bind((ip, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(DevnetError::io(format!("finding a free port on {ip}")))
}

const TEMP_DIR_PREFIX: &str = "opstack-devnet-";

/// A directory for one devnet (datadirs, configs, logs), removed on drop and at exit unless
/// `OPSTACK_HARNESS_KEEP_TMP` is set (then its path is printed).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// `$TMPDIR/opstack-devnet-<pid>-<n>-<label>`. Also removes such dirs of test processes that
    /// are gone (a SIGKILLed test binary cannot remove its own).
    pub fn new(label: &str) -> Result<TempDir, DevnetError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        crate::process::remove_stale_temp_dirs(TEMP_DIR_PREFIX);
        let path = std::env::temp_dir().join(format!(
            "{TEMP_DIR_PREFIX}{}-{}-{label}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)
            .map_err(DevnetError::io(format!("creating {}", path.display())))?;
        if std::env::var_os(crate::KEEP_TEMP_DIR_ENV).is_none() {
            crate::process::register_temp_dir(&path);
        }
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        crate::process::unregister_temp_dir(&self.path);
        if std::env::var_os(crate::KEEP_TEMP_DIR_ENV).is_some() {
            eprintln!("opstack-test-harness: kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Writes a file, naming it in the error.
pub(crate) fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), DevnetError> {
    std::fs::write(path, contents).map_err(DevnetError::io(format!("writing {}", path.display())))
}

/// Shell-style quoting of a command line, for records and error messages.
pub fn command_line(program: &Path, args: &[String]) -> String {
    std::iter::once(program.display().to_string())
        .chain(args.iter().cloned())
        .map(|word| {
            if !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c))
            {
                word
            } else {
                format!("'{}'", word.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a finished command printed.
#[derive(Clone, Debug)]
pub struct CommandOutput {
    pub stdout: String,
    pub stderr: String,
}

/// Runs a short command to completion (`op-node genesis l2`, `geth init`, `op-node p2p
/// priv2id`, …) and returns what it printed; a non-zero exit or `timeout` is
/// [`DevnetError::Command`] with the tail of its output. `stdin` is written to it if given.
///
/// Not through `process::spawn`: that one detaches stdin and is for long-running children. The
/// child still gets PR_SET_PDEATHSIG (the calling thread waits for it, so it cannot be the
/// short-lived-thread case process.rs describes) and is killed on timeout.
pub fn run_command(
    program: &Path,
    args: &[String],
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<CommandOutput, DevnetError> {
    let shown = command_line(program, args);
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: prctl is async-signal-safe and nothing is allocated between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| DevnetError::Spawn {
        name: shown.clone(),
        program: program.to_owned(),
        source,
    })?;
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input)
            .map_err(DevnetError::io(format!("writing the stdin of `{shown}`")))?;
    }
    // Drain both pipes on threads so a chatty child never blocks on a full pipe.
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stdout_reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout_pipe.read_to_end(&mut out);
        out
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(error) => return Err(DevnetError::io(format!("waiting for `{shown}`"))(error)),
        }
    };
    let stdout = String::from_utf8_lossy(&stdout_reader.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&stderr_reader.join().unwrap_or_default()).into_owned();
    match status {
        Some(status) if status.success() => Ok(CommandOutput { stdout, stderr }),
        other => Err(DevnetError::Command {
            command: shown,
            status: other.map_or_else(|| format!("killed after {timeout:?}"), |s| s.to_string()),
            output_tail: tail_lines(&format!("{stdout}{stderr}"), LOG_TAIL_LINES),
        }),
    }
}

/// The last `lines` lines of `text`.
pub fn tail_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `probe` every `interval` until it returns `Ok(Some(value))` or `timeout` passes. `Ok(None)`
/// and `Err(observation)` both mean "not yet"; the last observation and `logs()` (e.g. tails of
/// the relevant process logs) go into the [`DevnetError::Timeout`]. An `Err` from `fatal` (e.g. a
/// process that exited) ends the wait at once.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Result<Option<T>, String>,
    mut fatal: impl FnMut() -> Result<(), DevnetError>,
    logs: impl Fn() -> String,
) -> Result<T, DevnetError> {
    let start = Instant::now();
    let mut last = "nothing observed yet".to_owned();
    loop {
        match probe() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(observation) => last = observation,
        }
        fatal()?;
        if start.elapsed() >= timeout {
            return Err(DevnetError::Timeout {
                what: what.to_owned(),
                waited: start.elapsed(),
                last,
                logs: logs(),
            });
        }
        std::thread::sleep(interval);
    }
}

/// `Ok(())`: a `fatal` for [`wait_for`] that never stops the wait.
pub fn never_fatal() -> Result<(), DevnetError> {
    Ok(())
}
