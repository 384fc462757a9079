//! The steps of one CR's render shared by `opstack-operator render` (offline) and the
//! controllers: build the plugin input, run the plugin's validate and render, seal the output
//! in the envelope. Blocking (the plugin runs here): the controllers call it on a blocking
//! thread.

use std::collections::{BTreeMap, BTreeSet};

use opstack_crds::{FailurePolicy, OpNode, OptimismNetwork};
use serde_json::Value;

use crate::context::{self, ContextError};
use crate::envelope::{self, EnvelopeError, Owner};
use crate::runtime::{self, CheckInput, Plugin, Violation};

/// API version of every kind the operator serves.
pub const API_VERSION: &str = envelope::OWNER_API_VERSION;

/// Why one CR could not be rendered. Variant names double as condition reasons.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Context(#[from] ContextError),
    #[error("plugin {plugin}: {source}")]
    Plugin {
        plugin: String,
        source: runtime::Error,
    },
    #[error("the plugin's output was refused: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Envelope(Vec<EnvelopeError>),
    #[error("policy {policy} refused the rendered objects: {}", .violations.iter().map(|v| format!("{}: {}: {}", if v.object.is_empty() { "the resource" } else { &v.object }, v.rule, v.message)).collect::<Vec<_>>().join("; "))]
    PolicyViolation {
        policy: String,
        violations: Vec<Violation>,
    },
    #[error(
        "policy {policy} failed ({source}); its failurePolicy is Fail, so nothing is applied until it works or is removed"
    )]
    PolicyFailed {
        policy: String,
        source: runtime::Error,
    },
}

impl PipelineError {
    /// A stable CamelCase reason for conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            PipelineError::Context(ContextError::MissingReference { .. }) => "ReferenceNotFound",
            PipelineError::Context(_) => "InvalidResource",
            // The runtime's own reasons: PluginTimeout, PluginTrapped, ...
            PipelineError::Plugin { source, .. } => source.reason(),
            PipelineError::Envelope(_) => "OutputRefused",
            PipelineError::PolicyViolation { .. } => "PolicyViolation",
            PipelineError::PolicyFailed { .. } => "PolicyFailed",
        }
    }
}

/// The plugins serving one kind for one network: a renderer (bundled or the chain's own) and the
/// chain's policies, in the order the network lists them.
#[derive(Debug, Clone)]
pub struct KindPlugins {
    pub renderer: Plugin,
    pub policies: Vec<PolicyPlugin>,
    /// Annotation keys the user allowed the renderer on pod templates and Services
    /// (`spec.plugins.<kind>.renderer.allowedAnnotations`; none for a bundled renderer).
    pub allowed_annotations: BTreeSet<String>,
}

/// A loaded policy and what its own failure does.
#[derive(Debug, Clone)]
pub struct PolicyPlugin {
    pub plugin: Plugin,
    pub failure_policy: FailurePolicy,
}

impl KindPlugins {
    /// Just a renderer, no policies.
    pub fn renderer(renderer: Plugin) -> Self {
        KindPlugins {
            renderer,
            policies: Vec::new(),
            allowed_annotations: BTreeSet::new(),
        }
    }
}

/// `<plugin name>@sha256:<digest>`: how a plugin is named in annotations, conditions and logs.
pub fn plugin_id(plugin: &Plugin) -> String {
    format!("{}@sha256:{}", plugin.info().name, plugin.sha256())
}

/// What one CR renders to, sealed and ready to apply.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub objects: Vec<Value>,
    /// Warnings of the plugin's validate and render, each once.
    pub warnings: Vec<String>,
    /// `<plugin name>@sha256:<digest>`.
    pub rendered_by: String,
}

/// The network a CR belongs to: its own name for a network, else `spec.optimismNetworkRef`.
pub fn network_name(kind: &str, resource: &Value) -> String {
    let pointer = if kind == "OptimismNetwork" {
        "/metadata/name"
    } else {
        "/spec/optimismNetworkRef/name"
    };
    resource
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Renders `resource` (of `kind`, owned by `uid`) with `plugins.renderer`, seals the output in
/// the envelope, then runs `plugins.policies` over the sealed objects. `nodes` are the
/// `OpNode`s of its namespace, for its references, and `peer_ids` the libp2p peer IDs the host
/// knows of them (offline: none).
///
/// Policies see the sealed objects, exactly what would be applied (labels, owner, namespace
/// included), and only once the envelope accepted them: a policy never has to reason about
/// output the host would refuse anyway.
pub fn render(
    kind: &str,
    resource: &Value,
    uid: &str,
    network: &OptimismNetwork,
    nodes: &[OpNode],
    peer_ids: &BTreeMap<String, String>,
    plugins: &KindPlugins,
) -> Result<Sealed, PipelineError> {
    let plugin = &plugins.renderer;
    let references = context::references(
        kind,
        resource,
        |target| {
            nodes
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(target))
        },
        peer_ids,
    )?;
    let input = context::render_input(kind, resource, network, references)?;
    let plugin_error = |source| PipelineError::Plugin {
        plugin: plugin.info().name.clone(),
        source,
    };
    let mut warnings = plugin.validate(&input).map_err(plugin_error)?;
    let rendered = plugin.render(&input).map_err(plugin_error)?;
    for warning in &rendered.warnings {
        // validate and render often report the same thing; say it once.
        if !warnings.contains(warning) {
            warnings.push(warning.clone());
        }
    }
    let mut owner = Owner::of(
        kind,
        resource,
        uid,
        network_name(kind, resource),
        input
            .network
            .secrets
            .iter()
            .map(|s| s.name.clone())
            .collect::<BTreeSet<_>>(),
        plugin_id(plugin),
    );
    owner.allowed_annotations = plugins.allowed_annotations.clone();
    let objects = envelope::seal(&rendered.objects, &owner).map_err(PipelineError::Envelope)?;
    if !plugins.policies.is_empty() {
        let check = CheckInput {
            input,
            objects: objects
                .iter()
                .map(|o| serde_json::to_string(o).expect("JSON values serialise"))
                .collect(),
        };
        for policy in &plugins.policies {
            let name = plugin_id(&policy.plugin);
            match policy.plugin.check(&check) {
                Ok(out) if out.violations.is_empty() => warnings.extend(out.warnings),
                Ok(out) => {
                    return Err(PipelineError::PolicyViolation {
                        policy: name,
                        violations: out.violations,
                    });
                }
                Err(source) if policy.failure_policy == FailurePolicy::Fail => {
                    return Err(PipelineError::PolicyFailed {
                        policy: name,
                        source,
                    });
                }
                Err(source) => warnings.push(format!(
                    "policy {name} failed ({source}) and was ignored (failurePolicy: Ignore)"
                )),
            }
        }
    }
    Ok(Sealed {
        objects,
        warnings,
        rendered_by: owner.rendered_by,
    })
}
