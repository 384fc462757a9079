//! The plugin runtime: loads WebAssembly component plugins and calls them in a sandbox.
//!
//! Shape: one [`Runtime`] (one wasmtime `Engine`, one epoch ticker, a few worker threads) per
//! process; one [`Plugin`] per plugin digest (compiled once, pre-instantiated once); one fresh
//! `Store` per call, dropped after the call, whatever happened in it.
//!
//! Every failure is an [`Error`]; nothing a plugin does can panic or abort the host.
//!
//! ```no_run
//! use opstack_operator::runtime::{Runtime, RuntimeConfig};
//! # fn demo(wasm: &[u8], input: &opstack_operator::runtime::RenderInput) -> Result<(), opstack_operator::runtime::Error> {
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let plugin = runtime.load(wasm)?;               // compile, check imports, call `info`
//! let rendered = plugin.render(input)?;            // fresh sandbox per call
//! println!("{}", String::from_utf8_lossy(&rendered.canonical_json()));
//! # Ok(()) }
//! ```

mod bindings;
mod cache;
mod contract;
mod error;
mod imports;
mod loaded;
mod output;
mod pool;
mod sandbox;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

pub use bindings::types::{
    CheckInput, CheckOutput, ContractAddress, Endpoint, NamedObject, NetworkContext, PluginError,
    PluginInfo, RenderInput, RenderOutput, ResolvedReference, Role, Violation,
};
pub use cache::{ArtifactCache, sha256_hex};
pub use contract::{CONTRACT_VERSION, check_contract};
pub use error::Error;
pub use imports::{ALLOWED_IMPORTS, check_imports, component_imports};
pub use output::{OutputLimits, Rendered, check_render_output};
pub use pool::WORKER_STACK_BYTES;

use bindings::policy::PolicyPre;
use bindings::renderer::RendererPre;
use sandbox::State;

/// Limits applied to every plugin and every call. The defaults are the sandbox limits of
/// `docs/security.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time per call, instantiation included.
    pub deadline: Duration,
    /// Linear memory of one call: all its linear memories together.
    pub memory_bytes: usize,
    /// Elements per table.
    pub table_elements: usize,
    /// Instances, tables and linear memories per store (a Rust component needs 1-2 of each).
    pub instances: usize,
    pub tables: usize,
    pub memories: usize,
    /// Fuel per call, if metering is wanted (deterministic cut-off, ~+40% call time).
    pub fuel: Option<u64>,
    /// Size of the plugin's `.wasm` (it must fit a ConfigMap).
    pub module_bytes: usize,
    /// Bytes of guest stderr kept (panic messages); writing more traps the guest.
    pub stderr_bytes: usize,
    pub output: OutputLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(1),
            memory_bytes: 64 << 20,
            table_elements: 100_000,
            instances: 16,
            tables: 16,
            memories: 4,
            fuel: None,
            module_bytes: 1 << 20,
            stderr_bytes: 16 << 10,
            output: OutputLimits::default(),
        }
    }
}

/// Calls at once by default: more cores do not buy more renders, since reconciles wait on the
/// API far longer than on a plugin.
pub const MAX_WORKERS: usize = 4;

/// Linear memory every call at once may hold by default: 4 × 64 MiB, a quarter of the 1 GiB
/// limit of `deploy/operator.yaml`.
pub const MEMORY_BUDGET: usize = 256 << 20;

/// How to build a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub limits: Limits,
    /// Private directory for precompiled plugins; `None` compiles on every start.
    pub cache_dir: Option<PathBuf>,
    /// Calls that may run at once (worker threads). Each may use `limits.memory_bytes`, so
    /// `workers × memory_bytes` must fit `memory_budget`.
    pub workers: usize,
    /// Linear memory all calls at once may hold: the share of the operator's memory limit
    /// given to plugins (`docs/security.md`, "the arithmetic").
    pub memory_budget: usize,
    /// Granularity of the deadline: a call is stopped between `deadline` and `deadline + epoch_tick`.
    pub epoch_tick: Duration,
    /// Plugins kept loaded besides the pinned ones; beyond it the least recently used is
    /// forgotten (and compiled again, or taken from the disk cache, if it is needed again).
    pub max_loaded_plugins: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            limits: Limits::default(),
            cache_dir: None,
            workers: thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(MAX_WORKERS),
            memory_budget: MEMORY_BUDGET,
            epoch_tick: Duration::from_millis(10),
            max_loaded_plugins: 32,
        }
    }
}

/// The process-wide plugin runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
}

struct Shared {
    exec: Arc<Exec>,
    linker: Linker<State>,
    cache: Option<ArtifactCache>,
    plugins: Mutex<loaded::LoadedSet<Plugin>>,
    /// Held while Cranelift compiles: one plugin at a time, so uploads at once cost the CPU
    /// and memory of one compile, not of all.
    compiling: Mutex<()>,
}

/// What a call needs; plugins hold it, so it must not hold plugins.
struct Exec {
    engine: Engine,
    limits: Limits,
    ticks: u64,
    pool: pool::Pool,
}

/// A loaded, checked plugin. Cheap to clone; calls may run concurrently.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    exec: Arc<Exec>,
    sha256: String,
    size: usize,
    imports: Vec<String>,
    info: PluginInfo,
    exports: Exports,
    calls: Mutex<CallStats>,
}

/// Calls of one plugin: (call, result) → (count, total seconds). `result` is `ok` or the
/// error's reason, so the keys stay a small, fixed set usable as metric labels.
pub type CallStats = std::collections::BTreeMap<(&'static str, &'static str), (u64, f64)>;

#[derive(Clone)]
enum Exports {
    Renderer(RendererPre<State>),
    Policy(PolicyPre<State>),
}

impl Exports {
    fn role(&self) -> Role {
        match self {
            Exports::Renderer(_) => Role::Renderer,
            Exports::Policy(_) => Role::Policy,
        }
    }
}

impl Runtime {
    /// Creates the engine, the epoch ticker and the worker threads.
    pub fn new(config: RuntimeConfig) -> Result<Self, Error> {
        let workers = config.workers.max(1);
        if workers.saturating_mul(config.limits.memory_bytes) > config.memory_budget {
            return Err(Error::Host {
                message: format!(
                    "{workers} plugin calls at once of {} MiB each do not fit the plugin memory budget of {} MiB; run fewer workers or raise the budget",
                    config.limits.memory_bytes >> 20,
                    config.memory_budget >> 20
                ),
            });
        }
        let engine = Engine::new(&engine_config(&config.limits)).map_err(|e| Error::Host {
            message: format!("cannot create the wasm engine: {e:#}"),
        })?;
        start_ticker(&engine, config.epoch_tick)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| Error::Host {
            message: format!("cannot link WASI: {e:#}"),
        })?;
        let cache = config
            .cache_dir
            .as_deref()
            .map(|dir| ArtifactCache::open(dir, &engine))
            .transpose()?;
        let ticks = deadline_ticks(config.limits.deadline, config.epoch_tick);
        let exec = Exec {
            engine,
            limits: config.limits,
            ticks,
            pool: pool::Pool::new(workers)?,
        };
        Ok(Runtime {
            shared: Arc::new(Shared {
                exec: Arc::new(exec),
                linker,
                cache,
                plugins: Mutex::new(loaded::LoadedSet::new(config.max_loaded_plugins)),
                compiling: Mutex::new(()),
            }),
        })
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.shared.exec.limits
    }

    /// Loads a plugin: checks size, format and imports (against the allow-list, before any
    /// compile), compiles it (or takes it from the disk cache), checks its exports against the
    /// contract, then
    /// calls `info` and checks the contract version. Loading the same bytes twice returns the
    /// same plugin without compiling again.
    pub fn load(&self, wasm: &[u8]) -> Result<Plugin, Error> {
        let limits = &self.shared.exec.limits;
        if wasm.len() > limits.module_bytes {
            return Err(Error::ModuleTooLarge {
                size: wasm.len(),
                limit: limits.module_bytes,
            });
        }
        let sha256 = sha256_hex(wasm);
        if let Some(plugin) = self.cached(&sha256) {
            return Ok(plugin);
        }
        check_component_header(wasm)?;
        check_imports(component_imports(wasm)?.iter().map(String::as_str))?;
        let component = self.compile(&sha256, wasm)?;
        let plugin = self.prepare(component, sha256.clone(), wasm.len())?;
        Ok(self.plugins().insert(&sha256, plugin))
    }

    /// Keeps `plugin` loaded whatever else is loaded later (the bundled renderers).
    pub fn pin(&self, plugin: &Plugin) {
        self.plugins().pin(plugin.sha256());
    }

    fn plugins(&self) -> std::sync::MutexGuard<'_, loaded::LoadedSet<Plugin>> {
        self.shared
            .plugins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The plugin with this digest, if this runtime loaded it before: how the shadow render
    /// finds the renderer that produced the live children after the ConfigMap moved on.
    pub fn loaded(&self, sha256: &str) -> Option<Plugin> {
        self.cached(sha256)
    }

    /// Every plugin this runtime has loaded, by digest (for metrics).
    pub fn loaded_plugins(&self) -> Vec<Plugin> {
        let mut all: Vec<Plugin> = self.plugins().values().cloned().collect();
        all.sort_by(|a, b| a.sha256().cmp(b.sha256()));
        all
    }

    /// Loads a plugin from a file. See [`Runtime::load`].
    pub fn load_file(&self, path: &std::path::Path) -> Result<Plugin, Error> {
        let wasm = std::fs::read(path).map_err(|e| Error::InvalidModule {
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        self.load(&wasm)
    }

    fn cached(&self, sha256: &str) -> Option<Plugin> {
        self.plugins().get(sha256)
    }

    fn compile(&self, sha256: &str, wasm: &[u8]) -> Result<Component, Error> {
        let engine = &self.shared.exec.engine;
        let _one_at_a_time = self
            .shared
            .compiling
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match &self.shared.cache {
            Some(cache) => cache
                .load_or_compile(engine, sha256, wasm)
                .map(|(component, _)| component),
            None => Component::new(engine, wasm).map_err(|e| Error::InvalidModule {
                message: format!("{e:#}"),
            }),
        }
    }

    fn prepare(&self, component: Component, sha256: String, size: usize) -> Result<Plugin, Error> {
        let exec = &self.shared.exec;
        let imports: Vec<String> = component
            .component_type()
            .imports(&exec.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let pre = self
            .shared
            .linker
            .instantiate_pre(&component)
            .map_err(|e| Error::NotAPlugin {
                message: format!("{e:#}"),
            })?;
        let exports = match RendererPre::new(pre.clone()) {
            Ok(renderer) => Exports::Renderer(renderer),
            Err(as_renderer) => match PolicyPre::new(pre) {
                Ok(policy) => Exports::Policy(policy),
                Err(as_policy) => {
                    return Err(Error::NotAPlugin {
                        message: format!(
                            "as a renderer: {as_renderer:#}; as a policy: {as_policy:#}"
                        ),
                    });
                }
            },
        };
        let info = {
            let (exec, exports) = (Arc::clone(exec), exports.clone());
            exec.clone().pool.run(move || exec.info(&exports))?
        };
        check_info(&info, exports.role())?;
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                exec: Arc::clone(exec),
                sha256,
                size,
                imports,
                info,
                exports,
                calls: Mutex::new(CallStats::new()),
            }),
        })
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.info.name)
            .field("sha256", &self.inner.sha256)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// What the plugin said about itself at load time.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// Lowercase hex sha256 of the plugin's bytes.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// Size of the plugin's `.wasm`, in bytes.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// The interfaces the component imports (all on the allow-list, or it would not have loaded).
    pub fn imports(&self) -> &[String] {
        &self.inner.imports
    }

    /// What this plugin's calls did so far.
    pub fn call_stats(&self) -> CallStats {
        self.inner
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs `f` and counts it under `call`, by result.
    fn counted<R>(
        &self,
        call: &'static str,
        f: impl FnOnce() -> Result<R, Error>,
    ) -> Result<R, Error> {
        let started = std::time::Instant::now();
        let result = f();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.reason(),
        };
        let mut calls = self.inner.calls.lock().unwrap_or_else(|p| p.into_inner());
        let slot = calls.entry((call, outcome)).or_default();
        slot.0 += 1;
        slot.1 += started.elapsed().as_secs_f64();
        result
    }

    /// Renders on a worker thread in a fresh sandbox. Blocks; from async code, call it inside
    /// `spawn_blocking`.
    pub fn render(&self, input: &RenderInput) -> Result<Rendered, Error> {
        let (plugin, input) = (self.clone(), input.clone());
        self.counted("render", || {
            self.inner
                .exec
                .pool
                .run(move || plugin.render_on_current_thread(&input))
        })
    }

    /// Renders on the calling thread. The thread must have a native stack well above the wasm
    /// stack limit (512 KiB), or a deeply recursing plugin can abort the process; the workers
    /// behind [`Plugin::render`] have [`WORKER_STACK_BYTES`]. For benchmarks and such workers.
    pub fn render_on_current_thread(&self, input: &RenderInput) -> Result<Rendered, Error> {
        let Exports::Renderer(pre) = &self.inner.exports else {
            return Err(Error::WrongRole {
                role: "policy",
                call: "render",
            });
        };
        let exec = &self.inner.exec;
        let out = exec.call(|store| {
            pre.instantiate(&mut *store)?
                .call_render(&mut *store, input)
        })?;
        let out = out.map_err(plugin_error)?;
        check_render_output(out.objects, out.warnings, &exec.limits.output)
    }

    /// Runs the plugin's own input checks; `Ok` carries warnings.
    pub fn validate(&self, input: &RenderInput) -> Result<Vec<String>, Error> {
        let Exports::Renderer(pre) = &self.inner.exports else {
            return Err(Error::WrongRole {
                role: "policy",
                call: "validate",
            });
        };
        let (pre, exec, input) = (pre.clone(), Arc::clone(&self.inner.exec), input.clone());
        self.counted("validate", || {
            self.inner.exec.pool.run(move || {
                let warnings = exec
                    .call(|store| {
                        pre.instantiate(&mut *store)?
                            .call_validate(&mut *store, &input)
                    })?
                    .map_err(plugin_error)?;
                output::check_counts_and_sizes(&[], &warnings, &exec.limits.output)?;
                Ok(warnings.into_iter().map(output::cap_text).collect())
            })
        })
    }

    /// Runs a policy plugin over rendered objects.
    pub fn check(&self, input: &CheckInput) -> Result<CheckOutput, Error> {
        let Exports::Policy(pre) = &self.inner.exports else {
            return Err(Error::WrongRole {
                role: "renderer",
                call: "check",
            });
        };
        let (pre, exec, input) = (pre.clone(), Arc::clone(&self.inner.exec), input.clone());
        self.counted("check", || {
            self.inner.exec.pool.run(move || {
                let out = exec
                    .call(|store| {
                        pre.instantiate(&mut *store)?
                            .call_check(&mut *store, &input)
                    })?
                    .map_err(plugin_error)?;
                let as_text: Vec<String> = out
                    .violations
                    .iter()
                    .map(|v| format!("{}{}{}", v.object, v.rule, v.message))
                    .collect();
                output::check_counts_and_sizes(&as_text, &out.warnings, &exec.limits.output)?;
                let mut out = out;
                out.warnings = out.warnings.into_iter().map(output::cap_text).collect();
                for violation in &mut out.violations {
                    violation.message = output::cap_text(std::mem::take(&mut violation.message));
                }
                Ok(out)
            })
        })
    }
}

impl Exec {
    /// One call in one fresh store; the store (and the guest's memory) is gone on return.
    fn call<R>(
        &self,
        f: impl FnOnce(&mut wasmtime::Store<State>) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        let (mut store, stderr) = sandbox::new_store(&self.engine, &self.limits, self.ticks);
        f(&mut store).map_err(|error| {
            let stderr = stderr.contents();
            error::classify(error::CallFailure {
                error: &error,
                deadline: self.limits.deadline,
                fuel: self.limits.fuel,
                stderr: &String::from_utf8_lossy(&stderr),
            })
        })
    }

    fn info(&self, exports: &Exports) -> Result<PluginInfo, Error> {
        match exports {
            Exports::Renderer(pre) => {
                self.call(|store| pre.instantiate(&mut *store)?.call_info(&mut *store))
            }
            Exports::Policy(pre) => {
                self.call(|store| pre.instantiate(&mut *store)?.call_info(&mut *store))
            }
        }
    }
}

fn plugin_error(error: PluginError) -> Error {
    match error {
        PluginError::Invalid(problems) => {
            Error::Invalid(problems.into_iter().map(output::cap_text).collect())
        }
        PluginError::Internal(message) => Error::Internal(output::cap_text(message)),
    }
}

fn engine_config(limits: &Limits) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.consume_fuel(limits.fuel.is_some());
    config.max_wasm_stack(512 << 10);
    // Same input, same bytes, on any CPU: canonical NaNs, and relaxed SIMD with one defined
    // result instead of whatever the host CPU's instruction gives.
    config.cranelift_nan_canonicalization(true);
    config.relaxed_simd_deterministic(true);
    // A fresh sandbox per call spends most of its time mapping and faulting in new memory;
    // pooled slots keep the first pages resident between calls (BENCHMARKS.md).
    let mut pooling = wasmtime::PoolingAllocationConfig::new();
    pooling
        .total_component_instances(POOLED_INSTANCES)
        .total_core_instances(POOLED_INSTANCES * limits.instances as u32)
        .total_memories(POOLED_INSTANCES * limits.memories as u32)
        .total_tables(POOLED_INSTANCES * limits.tables as u32)
        .max_memory_size(limits.memory_bytes)
        .table_elements(limits.table_elements)
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
    config
}

/// Sandboxes that may exist at once per runtime; calls beyond it wait for a worker anyway.
const POOLED_INSTANCES: u32 = 64;

/// Ticks of `tick` to wait so that the deadline never fires early: the first tick arrives
/// anywhere within one tick of the start, hence the extra one.
fn deadline_ticks(deadline: Duration, tick: Duration) -> u64 {
    let tick = tick.as_nanos().max(1);
    (deadline.as_nanos().div_ceil(tick) as u64).saturating_add(1)
}

fn start_ticker(engine: &Engine, tick: Duration) -> Result<(), Error> {
    let engine = engine.weak();
    thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            // Holding only a weak reference lets the engine go when the runtime does.
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(tick);
            }
        })
        .map(drop)
        .map_err(|e| Error::Host {
            message: format!("cannot start the epoch ticker: {e}"),
        })
}

/// Plugins arrive as `.wasm` components. Core modules, text and precompiled artifacts are
/// refused here with a message that says what to do.
fn check_component_header(wasm: &[u8]) -> Result<(), Error> {
    const MAGIC: &[u8] = b"\0asm";
    const COMPONENT: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
    if wasm.len() < 8 || &wasm[..4] != MAGIC {
        if Engine::detect_precompiled(wasm).is_some() || wasm.starts_with(b"\x7fELF") {
            return Err(Error::InvalidModule {
                message: "precompiled artifacts are never loaded from outside; provide the .wasm"
                    .into(),
            });
        }
        return Err(Error::InvalidModule {
            message: "not a WebAssembly binary (no \\0asm header)".into(),
        });
    }
    if wasm[4..8] != COMPONENT {
        return Err(Error::InvalidModule {
            message:
                "a core WebAssembly module, not a component; build with `--target wasm32-wasip2`"
                    .into(),
        });
    }
    Ok(())
}

fn check_info(info: &PluginInfo, exported: Role) -> Result<(), Error> {
    check_contract(&info.contract_version)?;
    let invalid = |message: String| Err(Error::InvalidInfo { message });
    if info.name.trim().is_empty() {
        return invalid("empty name".into());
    }
    if info.kinds.is_empty() || info.kinds.iter().any(|k| k.trim().is_empty()) {
        return invalid(format!(
            "kinds must be a non-empty list of kind names, got {:?}",
            info.kinds
        ));
    }
    if info.role != exported {
        return invalid(format!(
            "declares role {:?} but exports the {:?} world",
            info.role, exported
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_at_once_times_their_memory_must_fit_the_budget() {
        let config = RuntimeConfig::default();
        assert!(config.workers * config.limits.memory_bytes <= config.memory_budget);
        let too_many = RuntimeConfig {
            workers: 5,
            ..RuntimeConfig::default()
        };
        let Err(Error::Host { message }) = Runtime::new(too_many) else {
            panic!("5 × 64 MiB must not fit 256 MiB");
        };
        assert!(
            message.contains("5 plugin calls at once of 64 MiB"),
            "{message}"
        );
    }

    #[test]
    fn deadline_never_fires_early_and_at_most_one_tick_late() {
        assert_eq!(
            deadline_ticks(Duration::from_secs(1), Duration::from_millis(10)),
            101
        );
        assert_eq!(
            deadline_ticks(Duration::from_millis(15), Duration::from_millis(10)),
            3
        );
    }

    #[test]
    fn non_components_are_refused_with_a_hint() {
        let core_module = b"\0asm\x01\x00\x00\x00";
        let Err(Error::InvalidModule { message }) = check_component_header(core_module) else {
            panic!()
        };
        assert!(message.contains("wasm32-wasip2"), "{message}");
        assert!(check_component_header(b"hello world").is_err());
        assert!(check_component_header(b"").is_err());
        assert!(check_component_header(b"\0asm\x0d\x00\x01\x00").is_ok());
    }

    fn info() -> PluginInfo {
        PluginInfo {
            name: "op-node".into(),
            version: "0.1.0".into(),
            kinds: vec!["OpNode".into()],
            role: Role::Renderer,
            contract_version: CONTRACT_VERSION.into(),
        }
    }

    #[test]
    fn info_with_matching_role_and_contract_is_accepted() {
        assert_eq!(check_info(&info(), Role::Renderer), Ok(()));
    }

    #[test]
    fn info_with_another_contract_major_is_incompatible() {
        let info = PluginInfo {
            contract_version: "1.0.0".into(),
            ..info()
        };
        assert_eq!(
            check_info(&info, Role::Renderer).unwrap_err().reason(),
            "IncompatibleContract"
        );
    }

    #[test]
    fn info_without_kinds_or_with_a_wrong_role_is_invalid() {
        assert!(
            check_info(
                &PluginInfo {
                    kinds: vec![],
                    ..info()
                },
                Role::Renderer
            )
            .is_err()
        );
        assert!(
            check_info(
                &PluginInfo {
                    name: " ".into(),
                    ..info()
                },
                Role::Renderer
            )
            .is_err()
        );
        assert!(check_info(&info(), Role::Policy).is_err());
    }
}
