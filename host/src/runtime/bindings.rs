//! Host-side bindings generated from `wit/`. The two worlds share the `types` interface, so the
//! policy bindings reuse the renderer's generated types instead of making a second copy.

pub mod renderer {
    wasmtime::component::bindgen!({
        world: "renderer",
        path: "../wit",
        additional_derives: [PartialEq, Eq, serde::Serialize, serde::Deserialize],
    });
}

pub mod policy {
    wasmtime::component::bindgen!({
        world: "policy",
        path: "../wit",
        with: { "opstack:plugin/types": super::renderer::opstack::plugin::types },
    });
}

pub use renderer::opstack::plugin::types;
