//! Each rule of the example policy, run as the operator runs it: the BUILT policy
//! (`plugins/build.sh`) in the operator's sandbox, checking what the BUNDLED op-node renderer
//! produced for the bundled fixtures, sealed by the host's envelope.

#[path = "../../../../plugins/op-node/tests/common/mod.rs"]
mod common;
#[path = "../../../../plugins/testdata/support.rs"]
mod support;
#[path = "../../testing.rs"]
mod testing;

use example_chain_policy::{
    ALLOWED_REGISTRIES, OP_RETH_MIN_MEMORY, RULE_ALLOWED_REGISTRIES, RULE_OP_RETH_MEMORY,
    RULE_SEQUENCER_NO_DISCOVERY,
};
use opstack_operator::runtime::Role;
use opstack_plugin_sdk::harness::Harness;
use opstack_plugin_sdk::serde_json::{self, Value, json};
use opstack_plugin_sdk::{CheckInput, RenderInput, Violation};
use testing::{sealed, with_op_reth_memory, with_spec};

fn policy() -> &'static Harness {
    Harness::built("example_chain_policy")
}

/// The policy's verdict on `objects` rendered for `input`.
fn check_objects(input: &RenderInput, objects: Vec<String>) -> Vec<Violation> {
    let out = policy()
        .check(&CheckInput {
            input: input.clone(),
            objects,
        })
        .unwrap_or_else(|e| panic!("the policy failed: {e}"));
    out.violations
}

/// The policy's verdict on what the bundled renderer makes of `input`.
fn check(input: &RenderInput) -> Vec<Violation> {
    check_objects(input, sealed(&common::render(input), input))
}

/// The one violation, panicking (with all of them) unless there is exactly one.
fn only(violations: Vec<Violation>) -> Violation {
    assert_eq!(
        violations.len(),
        1,
        "expected one violation: {violations:#?}"
    );
    violations.into_iter().next().unwrap()
}

fn assert_mentions(violation: &Violation, words: &[&str]) {
    for word in words {
        assert!(
            violation.message.contains(word),
            "{:?} does not mention {word:?}",
            violation.message
        );
    }
}

#[test]
fn the_policy_serves_opnode_in_the_policy_role() {
    let info = policy().plugin().info();
    assert_eq!(info.name, "example-chain-policy");
    assert_eq!(info.kinds, ["OpNode"]);
    assert_eq!(info.role, Role::Policy);
}

#[test]
fn a_default_replica_with_16gi_for_op_reth_complies() {
    // Bundled images, p2p discovery on (fine on a replica), op-reth requesting 16Gi.
    let input = common::replica_reth_sequencer_ref();
    assert_eq!(check(&input), []);
}

#[test]
fn the_bundled_default_images_comply() {
    // Whatever else a fixture breaks, none of the images the bundled renderer picks (op-node,
    // op-reth, op-geth and its init container) is from a registry the policy refuses.
    for (name, input) in common::fixtures() {
        let refused: Vec<Violation> = check(&input)
            .into_iter()
            .filter(|v| v.rule == RULE_ALLOWED_REGISTRIES)
            .collect();
        assert_eq!(refused, [], "fixture {name}");
    }
}

#[test]
fn an_image_from_another_registry_is_a_violation() {
    let input = with_spec(
        &common::replica_reth_sequencer_ref(),
        json!({ "opNode": { "image": { "image": "docker.io/someone/op-node:latest" } } }),
    );
    let violation = only(check(&input));
    assert_eq!(violation.object, "StatefulSet/replica");
    assert_eq!(violation.rule, RULE_ALLOWED_REGISTRIES);
    assert_mentions(
        &violation,
        &[
            "containers[op-node].image",
            "docker.io/someone/op-node:latest",
            "spec.opNode.image.image",
            ALLOWED_REGISTRIES[0],
        ],
    );
}

#[test]
fn a_lookalike_of_an_allowed_registry_is_a_violation() {
    let lookalike = "us-docker.pkg.dev/oplabs-tools-artifacts-mirror/images/op-reth:v1.11.3";
    let input = with_spec(
        &common::replica_reth_sequencer_ref(),
        json!({ "opReth": { "image": { "image": lookalike } } }),
    );
    let violation = only(check(&input));
    assert_eq!(violation.rule, RULE_ALLOWED_REGISTRIES);
    assert_mentions(&violation, &[lookalike, "spec.opReth.image.image"]);
}

#[test]
fn op_reth_below_16gi_is_a_violation() {
    // 16G (decimal) is 16e9 bytes, less than 16Gi (2^34): a string or unit-blind comparison
    // would let it through.
    for memory in ["8Gi", "16G", "16383Mi", "17179869183"] {
        let input = with_op_reth_memory(&common::replica_reth_sequencer_ref(), memory);
        let violation = only(check(&input));
        assert_eq!(violation.object, "StatefulSet/replica", "{memory}");
        assert_eq!(violation.rule, RULE_OP_RETH_MEMORY, "{memory}");
        assert_mentions(
            &violation,
            &[
                "containers[op-reth].resources.requests.memory",
                &format!("is {memory},"),
                OP_RETH_MIN_MEMORY,
                "spec.resources.executionClient.requests.memory",
            ],
        );
    }
}

#[test]
fn op_reth_at_or_above_16gi_in_any_unit_complies() {
    for memory in [
        "16Gi",
        "16384Mi",
        "17179869184",
        "0.015625Ti",
        "17.2G",
        "64Gi",
    ] {
        let input = with_op_reth_memory(&common::replica_reth_sequencer_ref(), memory);
        assert_eq!(check(&input), [], "{memory}");
    }
}

#[test]
fn op_reth_without_a_memory_request_is_a_violation() {
    // A sequencer with discovery off, so the memory rule is the only one broken.
    let input = common::p2p_discovery_off();
    let violation = only(check(&input));
    assert_eq!(violation.object, "StatefulSet/hidden-seq");
    assert_eq!(violation.rule, RULE_OP_RETH_MEMORY);
    assert_mentions(
        &violation,
        &["requests.memory is not set", OP_RETH_MIN_MEMORY],
    );
}

#[test]
fn an_op_reth_memory_limit_alone_counts_as_its_request() {
    // Kubernetes defaults a missing request to the limit.
    let input = with_spec(
        &common::p2p_discovery_off(),
        json!({ "resources": { "executionClient": { "limits": { "memory": "32Gi" } } } }),
    );
    assert_eq!(check(&input), []);
}

#[test]
fn a_sequencer_with_p2p_discovery_is_a_violation() {
    let input = with_op_reth_memory(&common::sequencer_reth(), "16Gi");
    let violation = only(check(&input));
    assert_eq!(violation.object, "StatefulSet/seq");
    assert_eq!(violation.rule, RULE_SEQUENCER_NO_DISCOVERY);
    assert_mentions(
        &violation,
        &[
            "containers[op-node]",
            "--p2p.no-discovery",
            "spec.opNode.p2p.discovery.enabled: false",
        ],
    );
}

#[test]
fn a_sequencer_without_p2p_discovery_complies() {
    let input = with_op_reth_memory(&common::p2p_discovery_off(), "16Gi");
    assert_eq!(check(&input), []);
}

#[test]
fn a_sequencer_without_p2p_at_all_complies() {
    let input = with_spec(
        &with_op_reth_memory(&common::sequencer_reth(), "16Gi"),
        json!({ "opNode": { "p2p": { "enabled": false } } }),
    );
    assert_eq!(check(&input), []);
}

#[test]
fn sequencer_discovery_is_read_from_the_flag_value_and_the_env_var() {
    // Another renderer may spell the switch differently; the policy reads op-node's own rules:
    // `--p2p.no-discovery=false` keeps discovery on, the env var counts when no flag is given.
    let input = with_op_reth_memory(&common::sequencer_reth(), "16Gi");
    let objects = sealed(&common::render(&input), &input);
    let with_op_node = |edit: &dyn Fn(&mut Value)| -> Vec<String> {
        objects
            .iter()
            .map(|text| {
                let mut object: Value = serde_json::from_str(text).unwrap();
                for c in object
                    .pointer_mut("/spec/template/spec/containers")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                    .filter(|c| c["name"] == "op-node")
                {
                    edit(c);
                }
                object.to_string()
            })
            .collect()
    };

    let flag_false = with_op_node(&|c| {
        c["args"]
            .as_array_mut()
            .unwrap()
            .push(json!("--p2p.no-discovery=false"))
    });
    assert_eq!(
        only(check_objects(&input, flag_false)).rule,
        RULE_SEQUENCER_NO_DISCOVERY
    );

    let env_true = with_op_node(&|c| {
        c["env"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "name": "OP_NODE_P2P_NO_DISCOVERY", "value": "true" }))
    });
    assert_eq!(check_objects(&input, env_true), []);
}
