//! Test helpers shared by the example plugins' tests, on top of the bundled OpNode fixtures
//! (`plugins/op-node/tests/common`) and the renderers' support (`plugins/testdata/support.rs`).
//! Included with `#[path = "../../testing.rs"] mod testing;` after those two modules.
#![allow(dead_code)]

use opstack_operator::envelope::{Owner, seal};
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

/// The objects as the host hands them to a policy: sealed by the host's own envelope
/// (namespace, `app.kubernetes.io/*` labels, owner reference, provenance stamped).
pub fn sealed(rendered: &Rendered, input: &RenderInput) -> Vec<String> {
    // Refusals are reported by `support::assert_sealed`, with every reason.
    support::assert_sealed(rendered, input);
    let owner = Owner {
        api_version: "optimism.io/v1alpha1".into(),
        kind: input.kind.clone(),
        name: input.name().unwrap(),
        namespace: input.namespace().unwrap(),
        uid: "00000000-0000-0000-0000-000000000001".into(),
        network: input.network.name.clone(),
        allowed_secrets: input
            .network
            .secrets
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        rendered_by: "op-node@sha256:00".into(),
    };
    seal(&rendered.objects, &owner)
        .expect("assert_sealed accepted the objects")
        .iter()
        .map(Value::to_string)
        .collect()
}
