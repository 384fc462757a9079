//! The steps of one CR's render shared by `opstack-operator render` (offline) and the
//! controllers: build the plugin input, run the plugin's validate and render, seal the output
//! in the envelope. Blocking (the plugin runs here): the controllers call it on a blocking
//! thread.

use std::collections::BTreeSet;

use opstack_crds::{OpNode, OptimismNetwork};
use serde_json::Value;

use crate::context::{self, ContextError};
use crate::envelope::{self, EnvelopeError, Owner};
use crate::runtime::{self, Plugin};

/// API version of every kind the operator serves.
pub const API_VERSION: &str = "optimism.io/v1alpha1";

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
        }
    }
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

/// Renders `resource` (of `kind`, owned by `uid`) with `plugin`. `nodes` are the `OpNode`s of
/// its namespace, for its references.
pub fn render(
    kind: &str,
    resource: &Value,
    uid: &str,
    network: &OptimismNetwork,
    nodes: &[OpNode],
    plugin: &Plugin,
) -> Result<Sealed, PipelineError> {
    let references = context::references(kind, resource, |target| {
        nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(target))
    })?;
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
    let owner = Owner {
        api_version: API_VERSION.to_string(),
        kind: kind.to_string(),
        name: resource
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        namespace: resource
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        uid: uid.to_string(),
        network: network_name(kind, resource),
        allowed_secrets: input
            .network
            .secrets
            .iter()
            .map(|s| s.name.clone())
            .collect::<BTreeSet<_>>(),
        rendered_by: format!("{}@sha256:{}", plugin.info().name, plugin.sha256()),
    };
    let objects = envelope::seal(&rendered.objects, &owner).map_err(PipelineError::Envelope)?;
    Ok(Sealed {
        objects,
        warnings,
        rendered_by: owner.rendered_by,
    })
}
