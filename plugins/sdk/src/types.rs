//! The contract's envelope as plain Rust types, the same on every target, so plugin code and
//! its native unit tests never touch generated bindings.

use serde::Serialize;

/// Identity of a plugin. Role and contract version are added by the export glue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub kinds: Vec<String>,
}

impl PluginInfo {
    pub fn new(name: &str, version: &str, kinds: &[&str]) -> Self {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            kinds: kinds.iter().map(|k| (*k).into()).collect(),
        }
    }
}

/// A Secret or ConfigMap the host owns, by purpose.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamedObject {
    pub purpose: String,
    pub name: String,
}

/// A contract address discovered on L1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContractAddress {
    pub name: String,
    pub address: String,
}

/// The resolved `OptimismNetwork`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkContext {
    pub name: String,
    /// The network's spec as JSON; see [`crate::RenderInput::network_spec`].
    pub spec: String,
    pub contracts: Vec<ContractAddress>,
    pub secrets: Vec<NamedObject>,
    pub config_maps: Vec<NamedObject>,
}

/// A service endpoint of a referenced object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    pub name: String,
    pub url: String,
}

/// A spec reference the host followed, e.g. `sequencerRef`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedReference {
    pub field: String,
    pub kind: String,
    pub name: String,
    pub endpoints: Vec<Endpoint>,
}

/// Everything a renderer may know.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenderInput {
    pub kind: String,
    /// The custom resource as JSON; see [`RenderInput::resource`].
    pub resource: String,
    pub network: NetworkContext,
    pub references: Vec<ResolvedReference>,
}

/// What a renderer returns: objects as JSON, in the order given, and warnings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenderOutput {
    pub objects: Vec<String>,
    pub warnings: Vec<String>,
}

impl RenderOutput {
    /// Appends a Kubernetes object (a k8s-openapi type, or any serializable object with
    /// `apiVersion` and `kind`).
    pub fn push<T: Serialize>(&mut self, object: &T) -> Result<&mut Self, PluginError> {
        let json = serde_json::to_string(object).map_err(|e| {
            PluginError::Internal(format!("cannot serialize a rendered object: {e}"))
        })?;
        self.objects.push(json);
        Ok(self)
    }

    /// Adds a warning shown to the user.
    pub fn warn(&mut self, warning: impl Into<String>) -> &mut Self {
        self.warnings.push(warning.into());
        self
    }
}

/// What a policy receives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckInput {
    pub input: RenderInput,
    pub objects: Vec<String>,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Violation {
    pub object: String,
    pub rule: String,
    pub message: String,
}

/// What a policy returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckOutput {
    pub violations: Vec<Violation>,
    pub warnings: Vec<String>,
}

/// Errors are values: `Invalid` for the user's input, `Internal` for the plugin's own fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    Invalid(Vec<String>),
    Internal(String),
}

impl PluginError {
    /// One problem with the user's input.
    pub fn invalid(problem: impl Into<String>) -> Self {
        PluginError::Invalid(vec![problem.into()])
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginError::Invalid(problems) => write!(f, "invalid input: {}", problems.join("; ")),
            PluginError::Internal(message) => write!(f, "internal error: {message}"),
        }
    }
}

impl std::error::Error for PluginError {}
