//! Runs a built plugin in the operator's own sandbox, for a plugin author's `cargo test`.
//!
//! ```text
//! use opstack_plugin_sdk::harness::Harness;
//! #[test]
//! fn renders_a_statefulset() {
//!     let plugin = Harness::built("my_plugin");   // target/wasm32-wasip2/plugin/my_plugin.wasm
//!     let out = plugin.render(&my_input()).unwrap();
//!     assert_eq!(out.objects[0]["kind"], "StatefulSet");
//! }
//! ```
//!
//! The harness runs the real bytes: the same `Runtime`, limits, import allow-list and output
//! checks as the operator. Build the plugin first:
//! `cargo build --profile plugin --target wasm32-wasip2 -p <crate>` (or `plugins/build.sh`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

pub use opstack_operator::runtime::{self, Error, Limits, Rendered, RuntimeConfig};
use opstack_operator::runtime::{Plugin, Runtime};

use crate::{CheckInput, CheckOutput, RenderInput};

/// Environment variable that overrides where built plugins are looked for.
pub const PLUGIN_DIR_ENV: &str = "OPSTACK_PLUGIN_DIR";

/// Where `plugins/build.sh` (and `cargo build --profile plugin --target wasm32-wasip2`) put
/// the `.wasm` files: `$OPSTACK_PLUGIN_DIR`, else `<target dir>/wasm32-wasip2/plugin`.
pub fn plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(PLUGIN_DIR_ENV) {
        return PathBuf::from(dir);
    }
    target_dir().join("wasm32-wasip2").join("plugin")
}

fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // Test binaries live in <target>/<profile>/deps/; walk up to <target>.
    if let Ok(exe) = std::env::current_exe()
        && let Some(target) = exe
            .ancestors()
            .find(|p| p.join("wasm32-wasip2").is_dir() || p.join("CACHEDIR.TAG").is_file())
    {
        return target.to_owned();
    }
    PathBuf::from("target")
}

/// Path of a built plugin by file stem (the crate name with `-` as `_`), panicking with the
/// command that builds it if it is missing: a missing plugin is a failed test, never a skip.
pub fn built_plugin(stem: &str) -> PathBuf {
    let path = plugin_dir().join(format!("{stem}.wasm"));
    assert!(
        path.is_file(),
        "plugin {} is missing: build the guests first with `plugins/build.sh` \
         (or `cargo build --profile plugin --target wasm32-wasip2 -p <crate>`); \
         set {PLUGIN_DIR_ENV} to look elsewhere",
        path.display()
    );
    path
}

/// A plugin loaded into a sandbox runtime of its own.
pub struct Harness {
    runtime: Runtime,
    plugin: Plugin,
}

impl Harness {
    /// Loads `path` with the operator's default limits.
    pub fn load(path: &Path) -> Result<Self, Error> {
        Self::load_with(path, RuntimeConfig::default())
    }

    /// Loads `path` with a runtime configured by the caller (e.g. a shorter deadline).
    pub fn load_with(path: &Path, config: RuntimeConfig) -> Result<Self, Error> {
        let runtime = Runtime::new(config)?;
        let plugin = runtime.load_file(path)?;
        Ok(Harness { runtime, plugin })
    }

    /// Loads a plugin built into [`plugin_dir`], panicking if it is missing or refused.
    pub fn load_built(stem: &str) -> Self {
        let path = built_plugin(stem);
        Self::load(&path)
            .unwrap_or_else(|e| panic!("{} was refused by the runtime: {e}", path.display()))
    }

    /// The plugin built into [`plugin_dir`] under `stem`, loaded once per process and shared
    /// by every test that asks for it: compiling the module is most of a render test's time,
    /// and the bytes and limits are the same for each. A missing or refused plugin panics.
    pub fn built(stem: &str) -> &'static Self {
        static LOADED: Mutex<BTreeMap<String, &'static Harness>> = Mutex::new(BTreeMap::new());
        // A panic while loading (a missing plugin) poisons the lock; the map is still whole.
        let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(harness) = loaded.get(stem) {
            return harness;
        }
        let harness: &'static Harness = Box::leak(Box::new(Self::load_built(stem)));
        loaded.insert(stem.to_owned(), harness);
        harness
    }

    /// The loaded plugin (info, digest, imports).
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The runtime, e.g. to load more plugins with the same limits.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Renders in a fresh sandbox, with the operator's output checks.
    pub fn render(&self, input: &RenderInput) -> Result<Rendered, Error> {
        self.plugin.render(&to_runtime_input(input))
    }

    /// Runs the plugin's `validate`.
    pub fn validate(&self, input: &RenderInput) -> Result<Vec<String>, Error> {
        self.plugin.validate(&to_runtime_input(input))
    }

    /// Runs a policy plugin's `check`.
    pub fn check(&self, input: &CheckInput) -> Result<CheckOutput, Error> {
        let out = self.plugin.check(&runtime::CheckInput {
            input: to_runtime_input(&input.input),
            objects: input.objects.clone(),
        })?;
        Ok(CheckOutput {
            violations: out
                .violations
                .into_iter()
                .map(|v| crate::Violation {
                    object: v.object,
                    rule: v.rule,
                    message: v.message,
                })
                .collect(),
            warnings: out.warnings,
        })
    }
}

/// The SDK's input as the runtime's (host-side binding) type.
pub fn to_runtime_input(input: &RenderInput) -> runtime::RenderInput {
    let named = |objects: &[crate::NamedObject]| {
        objects
            .iter()
            .map(|o| runtime::NamedObject {
                purpose: o.purpose.clone(),
                name: o.name.clone(),
            })
            .collect()
    };
    runtime::RenderInput {
        kind: input.kind.clone(),
        resource: input.resource.clone(),
        network: runtime::NetworkContext {
            name: input.network.name.clone(),
            spec: input.network.spec.clone(),
            contracts: input
                .network
                .contracts
                .iter()
                .map(|c| runtime::ContractAddress {
                    name: c.name.clone(),
                    address: c.address.clone(),
                })
                .collect(),
            secrets: named(&input.network.secrets),
            config_maps: named(&input.network.config_maps),
        },
        references: input
            .references
            .iter()
            .map(|r| runtime::ResolvedReference {
                field: r.field.clone(),
                kind: r.kind.clone(),
                name: r.name.clone(),
                endpoints: r
                    .endpoints
                    .iter()
                    .map(|e| runtime::Endpoint {
                        name: e.name.clone(),
                        url: e.url.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}
