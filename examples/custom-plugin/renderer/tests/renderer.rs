//! The example renderer, BUILT (`plugins/build.sh`) and run in the operator's sandbox, against
//! the bundled op-node renderer on the bundled fixtures: the same objects plus the chain's
//! metadata, a PodDisruptionBudget for a sequencer, and nothing the host's envelope refuses.

#[path = "../../../../plugins/op-node/tests/common/mod.rs"]
mod common;
#[path = "../../../../plugins/testdata/support.rs"]
mod support;

use example_chain_renderer::{CHAIN_ANNOTATIONS, CHAIN_LABELS};
use opstack_operator::runtime::Role;
use opstack_plugin_sdk::RenderInput;
use opstack_plugin_sdk::harness::{Harness, Rendered};
use opstack_plugin_sdk::serde_json::{Value, json};

fn renderer() -> &'static Harness {
    Harness::built("example_chain_renderer")
}

fn render(input: &RenderInput) -> Rendered {
    support::render(renderer(), input)
}

/// Every metadata block the chain's entries go on: each object's and each pod template's.
fn metadata_blocks(object: &Value) -> Vec<&Value> {
    let mut blocks = vec![&object["metadata"]];
    blocks.extend(object.pointer("/spec/template/metadata"));
    blocks
}

/// `object` without the chain's labels and annotations (maps left empty are removed).
fn without_chain_metadata(object: &Value) -> Value {
    let mut object = object.clone();
    let pointers = ["/metadata", "/spec/template/metadata"];
    for pointer in pointers {
        let Some(metadata) = object.pointer_mut(pointer) else {
            continue;
        };
        for (field, entries) in [("labels", CHAIN_LABELS), ("annotations", CHAIN_ANNOTATIONS)] {
            let Some(map) = metadata[field].as_object_mut() else {
                continue;
            };
            for (key, _) in entries {
                map.remove(*key);
            }
            if map.is_empty() {
                metadata.as_object_mut().unwrap().remove(field);
            }
        }
    }
    object
}

#[test]
fn the_renderer_has_its_own_name_for_provenance() {
    let info = renderer().plugin().info();
    assert_eq!(info.name, "example-chain-op-node");
    assert_ne!(info.name, common::plugin().plugin().info().name);
    assert_eq!(info.kinds, ["OpNode"]);
    assert_eq!(info.role, Role::Renderer);
}

#[test]
fn renderer_adds_the_chain_annotations_and_keeps_the_bundled_objects() {
    for (name, input) in common::fixtures() {
        let bundled = common::render(&input);
        let ours = render(&input);
        for object in &ours.objects {
            for metadata in metadata_blocks(object) {
                for (key, value) in CHAIN_LABELS {
                    assert_eq!(metadata["labels"][key], *value, "{name}: {object:#}");
                }
                for (key, value) in CHAIN_ANNOTATIONS {
                    assert_eq!(metadata["annotations"][key], *value, "{name}: {object:#}");
                }
            }
        }
        let kept: Vec<Value> = ours
            .objects
            .iter()
            .filter(|o| o["kind"] != "PodDisruptionBudget")
            .map(without_chain_metadata)
            .collect();
        assert_eq!(kept, bundled.objects, "{name}: the bundled objects changed");
        assert_eq!(ours.warnings, bundled.warnings, "{name}");
    }
}

#[test]
fn chain_labels_stay_out_of_every_selector() {
    // Selectors are immutable on a StatefulSet: a label the chain may rename must not be in one.
    for (name, input) in common::fixtures() {
        for object in &render(&input).objects {
            let selectors = [
                object.pointer("/spec/selector/matchLabels"),
                // A Service's selector is the label map itself.
                (object["kind"] == "Service")
                    .then(|| object.pointer("/spec/selector"))
                    .flatten(),
            ];
            for selector in selectors.into_iter().flatten() {
                for (key, _) in CHAIN_LABELS {
                    assert!(selector.get(key).is_none(), "{name}: {key} in {selector}");
                }
            }
        }
    }
}

#[test]
fn a_sequencer_gets_a_pdb_that_allows_no_voluntary_eviction_of_its_pod() {
    for (name, input) in common::fixtures() {
        let rendered = render(&input);
        let pdbs = common::of_kind(&rendered, "PodDisruptionBudget");
        if !common::is_sequencer(&input) {
            assert_eq!(
                pdbs.len(),
                0,
                "{name}: a replica gets no PodDisruptionBudget"
            );
            continue;
        }
        assert_eq!(pdbs.len(), 1, "{name}");
        let pdb = pdbs[0];
        let cr = input.name().unwrap();
        assert_eq!(pdb["metadata"]["name"], format!("{cr}-pdb"), "{name}");
        assert_eq!(pdb["spec"]["maxUnavailable"], json!(0), "{name}");
        let sts = support::object(&rendered, "StatefulSet");
        assert_eq!(pdb["spec"]["selector"], sts["spec"]["selector"], "{name}");
        // …which selects the StatefulSet's pods.
        let pod_labels = &sts["spec"]["template"]["metadata"]["labels"];
        let match_labels = pdb["spec"]["selector"]["matchLabels"].as_object().unwrap();
        assert!(!match_labels.is_empty(), "{name}");
        for (key, value) in match_labels {
            assert_eq!(&pod_labels[key], value, "{name}: pods lack {key}");
        }
    }
}

#[test]
fn renderer_output_passes_the_host_envelope() {
    let mut sequencers = 0;
    for (name, input) in common::fixtures() {
        eprintln!("fixture {name}");
        sequencers += usize::from(common::is_sequencer(&input));
        // Its network allows the runbook annotation (`allowedAnnotations`, README).
        support::assert_sealed_allowing(&render(&input), &input, &["example.org/runbook"]);
    }
    // The PodDisruptionBudget went through the envelope at least once.
    assert!(sequencers >= 1);
}

#[test]
fn validate_refuses_what_the_bundled_renderer_refuses() {
    // Without the `jwt` Secret the execution client cannot start: the bundled plan refuses it.
    let mut input = common::replica_reth_sequencer_ref();
    input.network.secrets.retain(|s| s.purpose != "jwt");
    let ours = renderer().validate(&input).map_err(|e| e.to_string());
    let bundled = common::plugin().validate(&input).map_err(|e| e.to_string());
    assert!(
        bundled.is_err(),
        "the bundled renderer accepts the input: {bundled:?}"
    );
    assert_eq!(ours, bundled);
}
