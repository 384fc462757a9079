//! One store per call: the per-call state, its limiter and its deterministic WASI context.

use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::Limits;
use super::error::LimitHit;

/// What a store carries: the limiter and an empty WASI world.
pub(crate) struct State {
    limiter: Limiter,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A fresh store for one call, and the pipe that collects the guest's stderr.
pub(crate) fn new_store(
    engine: &wasmtime::Engine,
    limits: &Limits,
    ticks: u64,
) -> (Store<State>, MemoryOutputPipe) {
    let stderr = MemoryOutputPipe::new(limits.stderr_bytes);
    let wasi = deterministic_wasi(stderr.clone());
    let limiter = Limiter {
        memory_bytes: limits.memory_bytes,
        memory_in_use: 0,
        table_elements: limits.table_elements,
        instances: limits.instances,
        tables: limits.tables,
        memories: limits.memories,
    };
    let mut store = Store::new(
        engine,
        State {
            limiter,
            wasi,
            table: ResourceTable::new(),
        },
    );
    store.limiter(|state| &mut state.limiter);
    // Without a deadline the default of 0 ticks would interrupt the guest during instantiation.
    store.set_epoch_deadline(ticks);
    if let Some(fuel) = limits.fuel {
        store
            .set_fuel(fuel)
            .expect("fuel is enabled on the engine whenever a fuel limit is set");
    }
    (store, stderr)
}

/// No files, env, args, network; stdin closed, stdout discarded; time frozen at the epoch and
/// every random source a constant sequence, so that nothing but the input can change the output.
fn deterministic_wasi(stderr: MemoryOutputPipe) -> WasiCtx {
    WasiCtxBuilder::new()
        .stderr(stderr)
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .secure_random(wasmtime_wasi::Deterministic::new(vec![0x5a]))
        .insecure_random(wasmtime_wasi::Deterministic::new(vec![0xa5]))
        .insecure_random_seed(0)
        .max_random_size(4096)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Refuses growth past the limits by returning an error (which traps the guest at once)
/// rather than `Ok(false)`, so the cause survives as a typed [`LimitHit`] in the error chain.
///
/// The memory limit bounds the sum of every linear memory of the call, not each one: a plugin
/// with four memories would otherwise get four times the limit, and the operator's memory
/// budget (renders at once times this limit) would not hold.
struct Limiter {
    memory_bytes: usize,
    /// Bytes of every linear memory of the store so far.
    memory_in_use: usize,
    table_elements: usize,
    instances: usize,
    tables: usize,
    memories: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Called with `current` 0 when a memory is created, so the sum covers initial sizes too.
        let total = self
            .memory_in_use
            .saturating_add(desired.saturating_sub(current));
        if total > self.memory_bytes {
            return Err(wasmtime::Error::new(LimitHit {
                resource: "memory",
                desired: total,
                limit: self.memory_bytes,
            }));
        }
        self.memory_in_use = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            return Err(wasmtime::Error::new(LimitHit {
                resource: "table",
                desired,
                limit: self.table_elements,
            }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(memory_bytes: usize) -> Limiter {
        Limiter {
            memory_bytes,
            memory_in_use: 0,
            table_elements: 10,
            instances: 4,
            tables: 4,
            memories: 4,
        }
    }

    #[test]
    fn the_memory_limit_bounds_all_linear_memories_of_a_call_together() {
        let mut limiter = limiter(64 << 20);
        // Two memories of 30 MiB fit, growing one by 10 MiB does not: 70 MiB in all.
        assert!(limiter.memory_growing(0, 30 << 20, None).unwrap());
        assert!(limiter.memory_growing(0, 30 << 20, None).unwrap());
        let refused = limiter
            .memory_growing(30 << 20, 40 << 20, None)
            .unwrap_err();
        let hit = refused
            .downcast_ref::<LimitHit>()
            .expect("a typed LimitHit");
        assert_eq!(hit.desired, 70 << 20);
        // Growth within the total still works.
        assert!(limiter.memory_growing(30 << 20, 34 << 20, None).unwrap());
    }
}
