//! Child processes that cannot outlive the test binary.
//!
//! The control plane of a test binary lives in a `static`, and statics are never dropped, so
//! `Drop` alone cannot stop etcd and the apiserver. Three layers make sure they die:
//!
//! 1. `Drop` of [`ManagedProcess`] (a control plane owned by a test, or a failed start) kills
//!    and reaps the process.
//! 2. An `atexit` hook kills and reaps every process still registered and removes the temp
//!    dirs. libtest ends the process through `exit` (after the last test, pass or fail), and
//!    `exit` runs `atexit` hooks; a panicking test does not end the process, so the shared
//!    control plane stays up for the other tests and is cleaned up here.
//! 3. `prctl(PR_SET_PDEATHSIG, SIGKILL)` in each child, set between fork and exec: the kernel
//!    kills the child when its parent dies, even if the test binary is killed with SIGKILL or
//!    aborts, where no hook runs. Caveat: the "parent" is the *thread* that forked, not the
//!    process. libtest runs each test on its own short-lived thread, so a child forked there
//!    would be killed when that test ends. Every child is therefore forked by one dedicated
//!    thread that lives until the process exits (the spawner below).
//!
//! Every PID is appended to [`crate::binaries::pid_file`], so CI can check afterwards that
//! none is alive.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

/// A child process of the control plane, with its log file.
pub(crate) struct ManagedProcess {
    pub name: String,
    pub log_path: PathBuf,
    child: Child,
}

impl ManagedProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(description)` if the process has exited.
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(error) => Some(format!("unknown ({error})")),
        }
    }

    /// The last `lines` lines of the process's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path, lines)
    }

    fn kill_and_reap(&mut self) {
        // SIGKILL: the whole control plane is thrown away, nothing needs a graceful stop.
        let _ = self.child.kill();
        let _ = self.child.wait();
        unregister_pid(self.child.id());
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// The last `lines` lines of a log file (at most the last 64 KiB are read).
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("<could not read {}: {error}>", path.display()),
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// The channel to the thread that forks every child (see the module docs for why one thread).
/// The sender lives in a static, so the channel never closes and the thread never exits.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("control-plane-spawner".into())
            .spawn(move || {
                for (mut command, reply) in receiver {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("could not start the control-plane spawner thread");
        Mutex::new(sender)
    })
}

/// Starts `program args` (with `env` added to the environment) with stdout and stderr appended
/// to `log_path`, tied to this process's lifetime (see the module docs), and records its PID.
pub(crate) fn spawn(
    name: &str,
    program: &Path,
    args: &[String],
    env: &[(&str, String)],
    log_path: &Path,
) -> io::Result<ManagedProcess> {
    install_exit_hook();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: getpid is async-signal-safe; it is called here, before the fork.
    let parent_pid = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (prctl, getppid) and allocates nothing on the success path.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then no signal would come.
            if libc::getppid() != parent_pid {
                return Err(io::Error::other(
                    "the test process exited while starting a child",
                ));
            }
            Ok(())
        });
    }

    let (reply_sender, reply_receiver) = mpsc::channel();
    spawner()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((command, reply_sender))
        .map_err(|_| io::Error::other("the control-plane spawner thread is gone"))?;
    let child = reply_receiver
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| io::Error::other("the control-plane spawner thread did not answer"))??;

    register_pid(child.id());
    record_pid(child.id(), name);
    Ok(ManagedProcess {
        name: name.to_owned(),
        log_path: log_path.to_owned(),
        child,
    })
}

/// PIDs that are running and temp dirs that exist, for the exit hook, and what must run once
/// they are gone (the node's host teardown).
struct ExitCleanup {
    pids: Vec<u32>,
    temp_dirs: Vec<PathBuf>,
    after_kill: Vec<Box<dyn FnOnce() + Send>>,
}

static EXIT_CLEANUP: Mutex<ExitCleanup> = Mutex::new(ExitCleanup {
    pids: Vec::new(),
    temp_dirs: Vec::new(),
    after_kill: Vec::new(),
});

/// Runs `action` at exit, after every registered process is killed and reaped. It must be
/// idempotent: a teardown that already happened through `Drop` runs again here.
pub(crate) fn run_at_exit(action: impl FnOnce() + Send + 'static) {
    install_exit_hook();
    with_exit_cleanup(|cleanup| cleanup.after_kill.push(Box::new(action)));
}

fn with_exit_cleanup(update: impl FnOnce(&mut ExitCleanup)) {
    let mut cleanup = EXIT_CLEANUP
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    update(&mut cleanup);
}

fn register_pid(pid: u32) {
    with_exit_cleanup(|cleanup| cleanup.pids.push(pid));
}

fn unregister_pid(pid: u32) {
    with_exit_cleanup(|cleanup| cleanup.pids.retain(|&live| live != pid));
}

pub(crate) fn register_temp_dir(dir: &Path) {
    install_exit_hook();
    with_exit_cleanup(|cleanup| cleanup.temp_dirs.push(dir.to_owned()));
}

pub(crate) fn unregister_temp_dir(dir: &Path) {
    with_exit_cleanup(|cleanup| cleanup.temp_dirs.retain(|known| known != dir));
}

fn install_exit_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: registers a plain extern "C" fn; atexit has no other preconditions.
        let status = unsafe { libc::atexit(kill_everything_at_exit) };
        assert_eq!(
            status, 0,
            "atexit failed: control-plane processes could leak"
        );
    });
}

/// Set once the process exits and kills what it started: threads still running (the volume
/// provisioner) stop talking to the API server that is about to go.
static EXITING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn exiting() -> bool {
    EXITING.load(std::sync::atomic::Ordering::Relaxed)
}

extern "C" fn kill_everything_at_exit() {
    EXITING.store(true, std::sync::atomic::Ordering::Relaxed);
    // try_lock: a thread that died holding the lock must not hang the exit; PDEATHSIG then
    // still kills the children when the process is gone.
    let mut cleanup = match EXIT_CLEANUP.try_lock() {
        Ok(cleanup) => cleanup,
        Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    for pid in cleanup.pids.drain(..) {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            continue;
        };
        // SAFETY: plain syscalls on a PID this process forked and has not reaped yet, so the
        // PID cannot have been reused. waitpid reaps it, so no zombie outlives us.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
    let actions: Vec<_> = cleanup.after_kill.drain(..).collect();
    let dirs: Vec<_> = cleanup.temp_dirs.drain(..).collect();
    drop(cleanup);
    for action in actions {
        action();
    }
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Appends `<pid> <start time> <name>` to the PID file. The start time (field 22 of
/// /proc/<pid>/stat, in clock ticks since boot) lets the leftover check tell our process from
/// an unrelated one that later got the same PID.
fn record_pid(pid: u32, name: &str) {
    let path = crate::binaries::pid_file();
    let start_time = process_start_time(pid).unwrap_or_else(|| "?".into());
    let result = (|| -> io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        // One write call per line: appends from parallel test binaries do not interleave.
        file.write_all(format!("{pid} {start_time} {name}\n").as_bytes())
    })();
    if let Err(error) = result {
        panic!(
            "could not record PID {pid} ({name}) in {}: {error}",
            path.display()
        );
    }
}

fn process_start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // after_name starts at field 3 (state); field 22 is the 20th from here.
    after_name.split_whitespace().nth(19).map(str::to_owned)
}

/// Removes the temp dirs named `<prefix><pid>-…` of earlier test processes that no longer run.
/// A test binary killed with SIGKILL gets its children killed (PDEATHSIG) but cannot remove its
/// dir; the next run does.
pub(crate) fn remove_stale_temp_dirs(prefix: &str) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
