//! Worker threads that run plugin calls.
//!
//! Wasm code runs on the native stack of the thread that calls it. A guest may use up to
//! `max_wasm_stack` of it, and if the host thread's own stack runs out first the process aborts
//! instead of trapping. The workers have a stack far above the wasm limit, so a runaway
//! recursion always ends in a trap. Their number also bounds how many calls run at once.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use super::Error;

/// Native stack of a worker: 16x the wasm stack limit leaves room for wasmtime's and
/// Cranelift's host frames.
pub const WORKER_STACK_BYTES: usize = 8 << 20;

type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct Pool {
    jobs: Sender<Job>,
}

impl Pool {
    pub fn new(workers: usize) -> Result<Self, Error> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..workers.max(1) {
            let queue = Arc::clone(&queue);
            thread::Builder::new()
                .name(format!("plugin-worker-{i}"))
                .stack_size(WORKER_STACK_BYTES)
                .spawn(move || work(&queue))
                .map_err(|e| Error::Host {
                    message: format!("cannot start a plugin worker thread: {e}"),
                })?;
        }
        Ok(Pool { jobs })
    }

    /// Runs `job` on a worker and waits for its result. A panic in the job (a host bug) comes
    /// back as [`Error::Host`]; the worker survives it.
    pub fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let (reply, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(job)).unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(Error::Host {
                    message: format!("panic in the plugin runtime: {message}"),
                })
            });
            let _ = reply.send(outcome);
        });
        self.jobs.send(job).map_err(|_| Error::Host {
            message: "plugin workers are gone".into(),
        })?;
        result.recv().map_err(|_| Error::Host {
            message: "plugin worker dropped the call".into(),
        })?
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job, never while running it.
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            Err(_) => return, // the pool was dropped
        }
    }
}
