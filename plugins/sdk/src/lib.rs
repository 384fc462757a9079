//! SDK for plugins of the OP Stack operator.
//!
//! A renderer is a type implementing [`Renderer`] plus one line, `export_renderer!(MyType);`.
//! The SDK gives it typed access to the input ([`RenderInput::resource`] and the kind-specific
//! views), builders for what every workload needs ([`k8s`], [`Flags`]), and, on the
//! developer's machine, a [`harness`] that runs the built `.wasm` in the operator's own
//! sandbox so `cargo test` exercises the real bytes.
//!
//! ```text
//! use opstack_plugin_sdk::{export_renderer, PluginInfo, RenderInput, RenderOutput, Renderer, PluginError};
//!
//! struct MyNode;
//! impl Renderer for MyNode {
//!     fn info() -> PluginInfo { PluginInfo::new("my-node", env!("CARGO_PKG_VERSION"), &["OpNode"]) }
//!     fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
//!         let node = input.op_node()?;
//!         let mut out = RenderOutput::default();
//!         out.push(&my_statefulset(&node))?;
//!         Ok(out)
//!     }
//! }
//! export_renderer!(MyNode);
//! ```
//!
//! Build: `cargo build --profile plugin --target wasm32-wasip2 -p <crate>`.

mod flags;
mod input;
pub mod k8s;
pub mod op_service;
mod types;

#[cfg(not(target_arch = "wasm32"))]
pub mod harness;

#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
pub mod __wasm;

pub use flags::Flags;
pub use types::*;

pub use k8s_openapi;
pub use opstack_crds as crds;
pub use serde_json;

/// The version of the `opstack:plugin` contract this SDK implements; reported by `info`.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// A renderer plugin: one kind (or a few) in, Kubernetes objects out.
///
/// Implementations must be pure: the same input gives the same output, byte for byte. Iterate
/// in a defined order (`BTreeMap`, sorted lists), never over a `HashMap`.
pub trait Renderer {
    /// Name, version and kinds. Role and contract version are filled in by the SDK.
    fn info() -> PluginInfo;

    /// Checks the input without rendering; `Ok` carries warnings. By default: none.
    fn validate(input: &RenderInput) -> Result<Vec<String>, PluginError> {
        let _ = input;
        Ok(Vec::new())
    }

    /// Renders the resource into Kubernetes objects.
    fn render(input: &RenderInput) -> Result<RenderOutput, PluginError>;
}

/// A renderer whose validation *is* its render, with the objects dropped: whatever the render
/// refuses, `validate` refuses with the same words, and there is no second code path to drift.
/// Implement this instead of [`Renderer`] to write only `info` and `render`.
pub trait ValidatingRenderer {
    /// Name, version and kinds. Role and contract version are filled in by the SDK.
    fn info() -> PluginInfo;

    /// Renders the resource into Kubernetes objects.
    fn render(input: &RenderInput) -> Result<RenderOutput, PluginError>;
}

impl<T: ValidatingRenderer> Renderer for T {
    fn info() -> PluginInfo {
        <T as ValidatingRenderer>::info()
    }

    fn validate(input: &RenderInput) -> Result<Vec<String>, PluginError> {
        <T as ValidatingRenderer>::render(input).map(|out| out.warnings)
    }

    fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
        <T as ValidatingRenderer>::render(input)
    }
}

/// A policy plugin: inspects what a renderer produced.
pub trait Policy {
    /// Name, version and kinds. Role and contract version are filled in by the SDK.
    fn info() -> PluginInfo;

    /// Returns violations; an empty list means the objects may be applied.
    fn check(input: &CheckInput) -> Result<CheckOutput, PluginError>;
}

/// Exports a [`Renderer`] as the plugin's `renderer` world. Use once per plugin crate
/// (a `cdylib`). Expands to nothing outside `wasm32`, so the crate still builds and tests natively.
#[macro_export]
macro_rules! export_renderer {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __OpstackRenderer;
            impl $crate::__wasm::renderer::Guest for __OpstackRenderer {
                fn info() -> $crate::__wasm::types::PluginInfo {
                    $crate::__wasm::info_out(<$ty as $crate::Renderer>::info(), $crate::__wasm::types::Role::Renderer)
                }
                fn validate(
                    input: $crate::__wasm::types::RenderInput,
                ) -> ::core::result::Result<::std::vec::Vec<::std::string::String>, $crate::__wasm::types::PluginError> {
                    <$ty as $crate::Renderer>::validate(&$crate::__wasm::render_input_in(input))
                        .map_err($crate::__wasm::error_out)
                }
                fn render(
                    input: $crate::__wasm::types::RenderInput,
                ) -> ::core::result::Result<$crate::__wasm::types::RenderOutput, $crate::__wasm::types::PluginError> {
                    <$ty as $crate::Renderer>::render(&$crate::__wasm::render_input_in(input))
                        .map($crate::__wasm::render_output_out)
                        .map_err($crate::__wasm::error_out)
                }
            }
            $crate::__wasm::renderer::export!(__OpstackRenderer with_types_in $crate::__wasm::renderer);
        };
    };
}

/// Exports a [`Policy`] as the plugin's `policy` world. See [`export_renderer!`].
#[macro_export]
macro_rules! export_policy {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __OpstackPolicy;
            impl $crate::__wasm::policy::Guest for __OpstackPolicy {
                fn info() -> $crate::__wasm::types::PluginInfo {
                    $crate::__wasm::info_out(
                        <$ty as $crate::Policy>::info(),
                        $crate::__wasm::types::Role::Policy,
                    )
                }
                fn check(
                    input: $crate::__wasm::types::CheckInput,
                ) -> ::core::result::Result<
                    $crate::__wasm::types::CheckOutput,
                    $crate::__wasm::types::PluginError,
                > {
                    <$ty as $crate::Policy>::check(&$crate::__wasm::check_input_in(input))
                        .map($crate::__wasm::check_output_out)
                        .map_err($crate::__wasm::error_out)
                }
            }
    $crate::__wasm::policy::export!(__OpstackPolicy with_types_in $crate::__wasm::policy);
        };
    };
}
