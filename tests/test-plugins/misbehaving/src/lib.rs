//! Hostile renderers for the sandbox tests. Built once per cargo feature (see `plugins/build.sh`);
//! without a feature it is a well-behaved renderer of one ConfigMap.
//!
//! It uses the raw bindings rather than the SDK so that it can lie about its contract
//! version and stay independent of the SDK's conveniences.

#![cfg(target_arch = "wasm32")]

mod bindings {
    // The flattened canonical-ABI signatures are wide by nature.
    #![allow(clippy::too_many_arguments)]
    wit_bindgen::generate!({ world: "renderer", path: "../../../wit" });
}

use bindings::opstack::plugin::types::Role;
use bindings::{Guest, PluginError, PluginInfo, RenderInput, RenderOutput};

struct Misbehaving;

impl Guest for Misbehaving {
    fn info() -> PluginInfo {
        let contract_version = if cfg!(feature = "wrong-major") {
            "1.0.0"
        } else {
            "0.1.0"
        };
        PluginInfo {
            name: "misbehaving".into(),
            version: "0.0.0".into(),
            kinds: vec!["OpNode".into()],
            role: Role::Renderer,
            contract_version: contract_version.into(),
        }
    }

    fn validate(_input: RenderInput) -> Result<Vec<String>, PluginError> {
        Ok(Vec::new())
    }

    fn render(input: RenderInput) -> Result<RenderOutput, PluginError> {
        let mut objects = vec![config_map(&input.kind)];
        misbehave(&mut objects, &input.kind);
        Ok(RenderOutput {
            objects,
            warnings: Vec::new(),
        })
    }
}

/// Does whatever the enabled feature asks for (nothing without a feature).
#[allow(unused_variables, clippy::ptr_arg)]
fn misbehave(objects: &mut Vec<String>, kind: &str) {
    #[cfg(feature = "endless-loop")]
    endless_loop();
    #[cfg(feature = "memory-bomb")]
    memory_bomb(objects);
    #[cfg(feature = "huge-output")]
    huge_output(objects);
    #[cfg(feature = "deep-recursion")]
    objects.push(format!("{}", recurse(u64::MAX - kind.len() as u64)));
    #[cfg(feature = "invalid-json")]
    objects.push("{\"apiVersion\": \"v1\", \"kind\": ".into());
    #[cfg(feature = "forbidden-import")]
    objects.push(format!(
        "{:?}",
        std::fs::read_to_string(std::hint::black_box("/etc/passwd")).ok()
    ));
    #[cfg(feature = "panic")]
    panic!("misbehaving plugin panics on purpose for {kind}");
}

fn config_map(kind: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"misbehaving"}},"data":{{"for":"{kind}"}}}}"#
    )
}

#[cfg(feature = "endless-loop")]
fn endless_loop() {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

#[cfg(feature = "memory-bomb")]
fn memory_bomb(objects: &mut Vec<String>) {
    // 1 GiB in 1 MiB pieces, each touched so the pages are real.
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    for i in 0..1024 {
        hoard.push(vec![i as u8; 1 << 20]);
    }
    objects.push(format!("{}", std::hint::black_box(&hoard).len()));
}

#[cfg(feature = "huge-output")]
fn huge_output(objects: &mut Vec<String>) {
    // 5,000 objects of ~1 KB: well under the memory cap, far over the output caps.
    let padding = "x".repeat(1000);
    for i in 0..5000 {
        objects.push(format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i}"}},"data":{{"pad":"{padding}"}}}}"#
        ));
    }
}

#[cfg(feature = "deep-recursion")]
fn recurse(depth: u64) -> u64 {
    // Scalars only, so every frame lives on the wasm stack (which the host bounds) rather than
    // on Rust's shadow stack in linear memory; the mixing step keeps LLVM from turning the
    // recursion into a loop.
    if depth == 0 {
        return 1;
    }
    let below = recurse(depth - 1);
    below.rotate_left(7) ^ depth.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

bindings::export!(Misbehaving with_types_in bindings);
