//! `opstack-operator plugin ...`: tools for plugin files.
//!
//! Both subcommands load the file with the same [`Runtime::load`] as the operator, so a file they
//! accept is one the operator accepts (size, contract, imports, info), and one they refuse is
//! refused with the operator's own reason.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use opstack_crds::{
    ConfigMapKeyRef, FailurePolicy, KindPlugins, PluginsSpec, PolicyPlugin, RendererPlugin,
};

use crate::runtime::{self, Plugin, Role, Runtime, RuntimeConfig};

/// Annotations `plugin configmap` records on the ConfigMap, so `kubectl get -o yaml` says what
/// the bytes are without running them.
pub const ANNOTATION_PLUGIN_NAME: &str = "optimism.io/plugin-name";
pub const ANNOTATION_PLUGIN_VERSION: &str = "optimism.io/plugin-version";
pub const ANNOTATION_PLUGIN_ROLE: &str = "optimism.io/plugin-role";
pub const ANNOTATION_PLUGIN_KINDS: &str = "optimism.io/plugin-kinds";
pub const ANNOTATION_PLUGIN_SHA256: &str = "optimism.io/plugin-sha256";
/// Marks a ConfigMap as holding a plugin: `kubectl get cm -l app.kubernetes.io/component=opstack-plugin`.
/// (Not `part-of`: on the operator's objects that label names the chain.)
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const COMPONENT_PLUGIN: &str = "opstack-plugin";

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Load a plugin in the sandbox exactly as the operator would, and print what it is:
    /// name, version, role, kinds, contract version, sha256, size and imports. Exits non-zero
    /// if the operator would refuse it.
    Inspect {
        /// The plugin's `.wasm` component.
        file: PathBuf,
    },
    /// Package a plugin for a chain: load it exactly as the operator would (exits non-zero if
    /// the operator would refuse it), then print a ConfigMap holding it in `binaryData` and,
    /// as a comment, the `OptimismNetwork` `spec.plugins` stanza that names it by sha256.
    /// Pipe to `kubectl apply -n <the network's namespace> -f -`, then paste the stanza.
    Configmap {
        /// Name of the ConfigMap (create it in the network's namespace).
        #[arg(long)]
        name: String,
        /// The `binaryData` key holding the `.wasm`.
        #[arg(long, default_value = "plugin.wasm")]
        key: String,
        /// Namespace to write into the ConfigMap's metadata; without it, `kubectl -n` decides.
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// The plugin's `.wasm` component.
        file: PathBuf,
    },
}

/// Why a `plugin` subcommand refused. Each message names the argument and the fix.
#[derive(Debug, thiserror::Error)]
pub enum PluginCommandError {
    #[error("starting the plugin runtime: {0}")]
    Runtime(runtime::Error),
    #[error("{path} is not a plugin the operator can run: {cause}")]
    Refused { path: String, cause: runtime::Error },
    #[error(
        "--name {0:?} is not a ConfigMap name: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters"
    )]
    InvalidName(String),
    #[error(
        "--key {0:?} is not a ConfigMap key: use letters, digits, '-', '_' and '.', at most 253 characters"
    )]
    InvalidKey(String),
    #[error(
        "--namespace {0:?} is not a namespace name: use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
    )]
    InvalidNamespace(String),
    #[error(
        "{path}: plugin {plugin} serves {serves:?}, none of which the operator renders ({known}); no OptimismNetwork could name it"
    )]
    NoKnownKind {
        path: String,
        plugin: String,
        serves: Vec<String>,
        known: String,
    },
}

pub fn run(command: PluginCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        PluginCommand::Inspect { file } => {
            let (plugin, _) = load(&file)?;
            out.write_all(describe(&plugin).as_bytes())?;
        }
        PluginCommand::Configmap {
            name,
            key,
            namespace,
            file,
        } => {
            let target = ConfigMapTarget {
                name,
                key,
                namespace,
            };
            target.check()?;
            let (plugin, wasm) = load(&file)?;
            let text = config_map(&plugin, &wasm, &target, &file.display().to_string())?;
            out.write_all(text.as_bytes())?;
        }
    }
    Ok(())
}

/// Reads `file` and loads it with the operator's limits; returns the plugin and its bytes.
fn load(file: &Path) -> Result<(Plugin, Vec<u8>), PluginCommandError> {
    let refused = |cause| PluginCommandError::Refused {
        path: file.display().to_string(),
        cause,
    };
    let wasm = std::fs::read(file).map_err(|e| {
        refused(runtime::Error::InvalidModule {
            message: format!("cannot read {}: {e}", file.display()),
        })
    })?;
    let runtime = Runtime::new(RuntimeConfig {
        workers: 1,
        ..RuntimeConfig::default()
    })
    .map_err(PluginCommandError::Runtime)?;
    let plugin = runtime.load(&wasm).map_err(refused)?;
    Ok((plugin, wasm))
}

/// The report printed by `plugin inspect`.
pub fn describe(plugin: &Plugin) -> String {
    let info = plugin.info();
    let mut text = format!(
        "name:             {}\nversion:          {}\nrole:             {}\nkinds:            {}\n\
         contract version: {}\nsha256:           {}\nsize:             {} bytes\nimports:\n",
        info.name,
        info.version,
        role_name(info.role),
        info.kinds.join(", "),
        info.contract_version,
        plugin.sha256(),
        plugin.size(),
    );
    if plugin.imports().is_empty() {
        text.push_str("  (none)\n");
    }
    for import in plugin.imports() {
        text.push_str(&format!("  {import}\n"));
    }
    text
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Renderer => "renderer",
        Role::Policy => "policy",
    }
}

/// Where `plugin configmap` puts the plugin.
#[derive(Debug, Clone)]
pub struct ConfigMapTarget {
    pub name: String,
    pub key: String,
    pub namespace: Option<String>,
}

impl ConfigMapTarget {
    /// The rules the apiserver (and the CRD's `configMapRef` patterns) would apply, checked
    /// before anything is printed.
    pub fn check(&self) -> Result<(), PluginCommandError> {
        if !is_dns_subdomain(&self.name) {
            return Err(PluginCommandError::InvalidName(self.name.clone()));
        }
        let key_char = |c: char| c.is_ascii_alphanumeric() || "-._".contains(c);
        if self.key.is_empty() || self.key.len() > 253 || !self.key.chars().all(key_char) {
            return Err(PluginCommandError::InvalidKey(self.key.clone()));
        }
        if let Some(namespace) = &self.namespace
            && (namespace.len() > 63 || namespace.contains('.') || !is_dns_subdomain(namespace))
        {
            return Err(PluginCommandError::InvalidNamespace(namespace.clone()));
        }
        Ok(())
    }
}

/// An RFC 1123 subdomain, as `OBJECT_NAME_PATTERN` of the CRDs.
fn is_dns_subdomain(name: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    name.len() <= 253 && name.split('.').all(label)
}

/// The `spec.plugins` field of `kind`, if the operator renders that kind (see `PluginsSpec`).
fn kind_field<'a>(spec: &'a mut PluginsSpec, kind: &str) -> Option<&'a mut Option<KindPlugins>> {
    Some(match kind {
        "OpNode" => &mut spec.op_node,
        "OpBatcher" => &mut spec.op_batcher,
        "OpProposer" => &mut spec.op_proposer,
        "OpChallenger" => &mut spec.op_challenger,
        "OptimismNetwork" => &mut spec.optimism_network,
        _ => return None,
    })
}

/// The `OptimismNetwork` `spec.plugins` that names `plugin` (stored under `target`) for every
/// kind it serves: as the renderer, or as a policy that blocks the apply when it cannot run.
/// Built from the CRD's own types, so the field names cannot drift from the schema.
fn plugins_stanza(plugin: &Plugin, target: &ConfigMapTarget) -> PluginsSpec {
    let config_map_ref = ConfigMapKeyRef {
        name: target.name.clone(),
        key: target.key.clone(),
    };
    let mut spec = PluginsSpec::default();
    for kind in &plugin.info().kinds {
        let Some(field) = kind_field(&mut spec, kind) else {
            continue;
        };
        let entry = field.get_or_insert_with(KindPlugins::default);
        match plugin.info().role {
            Role::Renderer => {
                entry.renderer = Some(RendererPlugin {
                    config_map_ref: config_map_ref.clone(),
                    sha256: plugin.sha256().to_string(),
                    ..RendererPlugin::default()
                })
            }
            Role::Policy => entry.policies.push(PolicyPlugin {
                config_map_ref: config_map_ref.clone(),
                sha256: plugin.sha256().to_string(),
                failure_policy: FailurePolicy::Fail,
            }),
        }
    }
    spec
}

/// The ConfigMap YAML holding `wasm` (the bytes `plugin` was loaded from), followed by the
/// `spec.plugins` stanza as a YAML comment. `path` names the file in errors.
pub fn config_map(
    plugin: &Plugin,
    wasm: &[u8],
    target: &ConfigMapTarget,
    path: &str,
) -> Result<String, PluginCommandError> {
    let info = plugin.info();
    let stanza = plugins_stanza(plugin, target);
    if stanza == PluginsSpec::default() {
        return Err(PluginCommandError::NoKnownKind {
            path: path.to_string(),
            plugin: info.name.clone(),
            serves: info.kinds.clone(),
            known: crate::bundled::KINDS.join(", "),
        });
    }
    let kinds = info.kinds.join(",");
    let annotations = [
        (ANNOTATION_PLUGIN_NAME, info.name.as_str()),
        (ANNOTATION_PLUGIN_VERSION, info.version.as_str()),
        (ANNOTATION_PLUGIN_ROLE, role_name(info.role)),
        (ANNOTATION_PLUGIN_KINDS, kinds.as_str()),
        (ANNOTATION_PLUGIN_SHA256, plugin.sha256()),
    ];
    let metadata = ObjectMeta {
        name: Some(target.name.clone()),
        namespace: target.namespace.clone(),
        labels: Some(BTreeMap::from([(
            LABEL_COMPONENT.to_string(),
            COMPONENT_PLUGIN.to_string(),
        )])),
        annotations: Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..ObjectMeta::default()
    };
    let binary_data = BTreeMap::from([(target.key.clone(), ByteString(wasm.to_vec()))]);
    // Field by field rather than a `ConfigMap`, whose fields serialise alphabetically: the
    // metadata reads better above the megabyte of base64 than below it.
    let mut config_map = serde_yaml::Mapping::new();
    for (field, value) in [
        ("apiVersion", serde_yaml::Value::from("v1")),
        ("kind", "ConfigMap".into()),
        ("metadata", yaml(&metadata)),
        ("binaryData", yaml(&binary_data)),
    ] {
        config_map.insert(field.into(), value);
    }

    let mut text = format!(
        "# {} {} ({} for {}), sha256 {}\n",
        info.name,
        info.version,
        role_name(info.role),
        info.kinds.join(", "),
        plugin.sha256()
    );
    text.push_str(&serde_yaml::to_string(&config_map).expect("YAML values serialise"));
    let placement = match target.namespace.as_deref() {
        Some(namespace) => format!("the OptimismNetwork in namespace {namespace}"),
        None => "the OptimismNetwork in this ConfigMap's namespace".to_string(),
    };
    let what = match info.role {
        Role::Renderer => "this renderer replaces the bundled one",
        Role::Policy => "add this policy to the kind's list, in the order policies should run",
    };
    text.push_str(&format!("# Paste into {placement}; {what}:\n"));
    let stanza = serde_json::json!({ "spec": { "plugins": stanza } });
    for line in serde_yaml::to_string(&stanza)
        .expect("JSON values serialise as YAML")
        .lines()
    {
        text.push_str(&format!("#   {line}\n"));
    }
    Ok(text)
}

fn yaml(value: &impl serde::Serialize) -> serde_yaml::Value {
    serde_yaml::to_value(value).expect("Kubernetes types serialise as YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, key: &str, namespace: Option<&str>) -> ConfigMapTarget {
        ConfigMapTarget {
            name: name.into(),
            key: key.into(),
            namespace: namespace.map(Into::into),
        }
    }

    #[test]
    fn configmap_names_keys_and_namespaces_follow_the_apiservers_rules() {
        for ok in [
            target("my-renderer", "plugin.wasm", None),
            target("a.b-c", "Plugin_1.wasm", Some("chain-a")),
        ] {
            ok.check().unwrap();
        }
        for (bad, reason) in [
            (target("My_Renderer", "plugin.wasm", None), "--name"),
            (target("-x", "plugin.wasm", None), "--name"),
            (target("x", "", None), "--key"),
            (target("x", "dir/plugin.wasm", None), "--key"),
            (target("x", "plugin.wasm", Some("a.b")), "--namespace"),
        ] {
            let error = bad.check().unwrap_err().to_string();
            assert!(error.starts_with(reason), "{bad:?}: {error}");
        }
    }
}
