//! An example chain renderer for `OpNode`: the bundled renderer's objects, unchanged, plus what
//! this chain's platform team wants on every node:
//!
//! - the chain's labels ([`CHAIN_LABELS`]: owning team and cost centre, for cost reports and
//!   alert routing) and annotation ([`CHAIN_ANNOTATIONS`]: the runbook) on every object and
//!   every pod template;
//! - for a sequencer, a PodDisruptionBudget `<cr>-pdb` with `maxUnavailable: 0`: a node drain
//!   must not evict the one pod that builds blocks; an operator moves it on purpose instead.
//!
//! Wrapping rather than forking keeps the flags, probes and envelope compliance of the bundled
//! renderer, and a new operator release brings its fixes with a rebuild. Everything added
//! stays inside the host's envelope for OpNode: PodDisruptionBudget is an allowed kind, and
//! labels and annotations change no pod security setting.

use std::collections::BTreeMap;

use opstack_plugin_sdk::crds::NodeType;
use opstack_plugin_sdk::k8s;
use opstack_plugin_sdk::k8s_openapi::api::policy::v1::{
    PodDisruptionBudget, PodDisruptionBudgetSpec,
};
use opstack_plugin_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use opstack_plugin_sdk::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use opstack_plugin_sdk::serde_json::{self, Value};
use opstack_plugin_sdk::{
    PluginError, PluginInfo, RenderInput, RenderOutput, Renderer, export_renderer,
};
use plugin_op_node::OpNodeRenderer;

/// Labels on every object and pod template. Never part of a selector: selectors are immutable,
/// and these may change when the team does.
pub const CHAIN_LABELS: &[(&str, &str)] = &[
    ("example.org/team", "rollup-infra"),
    ("example.org/cost-centre", "cc-4217"),
];

/// Annotations on every object and pod template.
pub const CHAIN_ANNOTATIONS: &[(&str, &str)] = &[(
    "example.org/runbook",
    "https://runbooks.example.org/op-node",
)];

/// The example renderer.
pub struct ExampleChainOpNode;

impl Renderer for ExampleChainOpNode {
    fn info() -> PluginInfo {
        // A name of its own: provenance (`optimism.io/rendered-by`) then tells this renderer's
        // objects from the bundled one's.
        PluginInfo::new(
            "example-chain-op-node",
            env!("CARGO_PKG_VERSION"),
            &["OpNode"],
        )
    }

    fn validate(input: &RenderInput) -> Result<Vec<String>, PluginError> {
        // Nothing added here can be invalid; the bundled checks are the whole story.
        <OpNodeRenderer as Renderer>::validate(input)
    }

    fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
        render(input)
    }
}

export_renderer!(ExampleChainOpNode);

/// Renders natively (the same code the plugin runs).
pub fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
    let bundled = plugin_op_node::render(input)?;
    let mut objects = bundled
        .objects
        .iter()
        .map(|text| {
            serde_json::from_str::<Value>(text).map_err(|e| {
                PluginError::Internal(format!("the bundled renderer returned invalid JSON: {e}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    if input.op_node()?.spec.node_type == NodeType::Sequencer {
        let pdb = sequencer_pdb(&input.name()?, &objects)?;
        objects.push(serde_json::to_value(pdb).map_err(|e| {
            PluginError::Internal(format!("cannot serialize the PodDisruptionBudget: {e}"))
        })?);
    }

    let mut out = RenderOutput {
        warnings: bundled.warnings,
        ..Default::default()
    };
    for mut object in objects {
        add_chain_metadata(&mut object["metadata"]);
        if let Some(template) = object.pointer_mut("/spec/template") {
            add_chain_metadata(&mut template["metadata"]);
        }
        out.push(&object)?;
    }
    Ok(out)
}

/// Adds [`CHAIN_LABELS`] and [`CHAIN_ANNOTATIONS`] to an object's (or pod template's)
/// metadata, keeping whatever is there.
fn add_chain_metadata(metadata: &mut Value) {
    for (field, entries) in [("labels", CHAIN_LABELS), ("annotations", CHAIN_ANNOTATIONS)] {
        let map = &mut metadata[field];
        if !map.is_object() {
            *map = Value::Object(Default::default());
        }
        for (key, value) in entries {
            map[*key] = Value::from(*value);
        }
    }
}

/// `<cr>-pdb`, selecting exactly the StatefulSet's pods (its own selector, copied, so the two
/// never drift apart).
fn sequencer_pdb(name: &str, objects: &[Value]) -> Result<PodDisruptionBudget, PluginError> {
    let selector = objects
        .iter()
        .find(|o| o["kind"] == "StatefulSet")
        .and_then(|sts| sts.pointer("/spec/selector"))
        .ok_or_else(|| {
            PluginError::Internal("the bundled renderer returned no StatefulSet selector".into())
        })?;
    let selector: LabelSelector = serde_json::from_value(selector.clone()).map_err(|e| {
        PluginError::Internal(format!("the StatefulSet selector does not parse: {e}"))
    })?;
    let labels: BTreeMap<String, String> = selector.match_labels.clone().unwrap_or_default();
    Ok(PodDisruptionBudget {
        metadata: k8s::meta(&format!("{name}-pdb"), &labels),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(0)),
            selector: Some(selector),
            ..Default::default()
        }),
        ..Default::default()
    })
}
