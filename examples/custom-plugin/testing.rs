//! Test helpers shared by the example plugins' tests, on top of the bundled OpNode fixtures
//! (`plugins/op-node/tests/common`) and the renderers' support (`plugins/testdata/support.rs`).
//! Included with `#[path = "../../testing.rs"] mod testing;` after those two modules.
#![allow(dead_code)]

use opstack_plugin_sdk::RenderInput;
use opstack_plugin_sdk::harness::Rendered;
use opstack_plugin_sdk::serde_json::{self, Value, json};

use crate::support;

/// `input` with `patch` deep-merged into the resource's `spec`.
pub fn with_spec(input: &RenderInput, patch: Value) -> RenderInput {
    let mut resource: Value = serde_json::from_str(&input.resource).unwrap();
    support::merge(&mut resource, json!({ "spec": patch }));
    RenderInput {
        resource: resource.to_string(),
        ..input.clone()
    }
}

/// `input` whose op-reth requests `memory`.
pub fn with_op_reth_memory(input: &RenderInput, memory: &str) -> RenderInput {
    with_spec(
        input,
        json!({ "resources": { "executionClient": { "requests": { "memory": memory } } } }),
    )
}

/// The objects as the host hands them to a policy: sealed by the host's own envelope.
pub fn sealed(rendered: &Rendered, input: &RenderInput) -> Vec<String> {
    support::sealed_objects(rendered, input)
        .iter()
        .map(Value::to_string)
        .collect()
}
