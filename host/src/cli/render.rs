//! `opstack-operator render -f <file>... [--plugin <Kind>=<file.wasm>]`: the operator's main job,
//! offline. Reads the network and its components, runs the same admission, host validation,
//! plugins, envelope and policies as the controller, and prints the child objects as YAML.
//!
//! `--plugin` stands in for a network's `spec.plugins`: a renderer replaces the kind's bundled
//! one, a policy is appended to the kind's policies (`failurePolicy: Fail`), in the order given.
//!
//! Nothing here talks to a cluster: discovered contracts come only from the spec, and the owner
//! UID is a placeholder the apiserver would assign.

// A render's error is built at most once per command, on the way out: its size costs nothing.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::upgrade;
use opstack_crds::validation::admit;
use opstack_crds::{FailurePolicy, OpBatcher, OpNode, OpProposer, OptimismNetwork};
use serde::Deserialize;
use serde_json::Value;

use crate::bundled;
use crate::context::ContextError;
use crate::controller::pipeline::{self, KindPlugins, PipelineError, PolicyPlugin};
use crate::envelope::EnvelopeError;
use crate::runtime::{self, Plugin, Role, Runtime, RuntimeConfig};
use crate::validate::{self, Peers};

/// The owner UID shown offline, where no apiserver assigned one.
pub const OFFLINE_UID: &str = "00000000-0000-0000-0000-000000000000";

/// Why `render` refused. Each message names the document, the field and the fix.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("reading {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path}: document {index} is not YAML: {cause}")]
    Yaml {
        path: String,
        index: usize,
        cause: serde_yaml::Error,
    },
    #[error("{path}: {cause}")]
    Admission {
        path: String,
        cause: opstack_crds::validation::AdmissionError,
    },
    #[error("{kind} {name}: {cause}")]
    HostValidation {
        kind: String,
        name: String,
        cause: validate::HostValidationError,
    },
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error("{kind} {name}: {cause}")]
    Upgrade {
        kind: String,
        name: String,
        cause: Box<upgrade::UpgradeError>,
    },
    #[error("{flag} {arg:?}: expected <Kind>={what} with Kind one of {kinds}")]
    PluginArgument {
        flag: &'static str,
        arg: String,
        what: &'static str,
        kinds: String,
    },
    #[error(
        "--plugin {kind}={second}: {kind} already has the renderer {first}; a kind has one renderer (give policies as many times as you like)"
    )]
    SecondRenderer {
        kind: String,
        first: String,
        second: String,
    },
    #[error("plugin for {kind} ({path}): {cause}")]
    PluginLoad {
        kind: String,
        path: String,
        cause: runtime::Error,
    },
    #[error("{kind} {name}: plugin {plugin}: {cause}")]
    Plugin {
        kind: String,
        name: String,
        plugin: String,
        cause: runtime::Error,
    },
    #[error("{kind} {name}: the plugin's output was refused:\n{}", .errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Envelope {
        kind: String,
        name: String,
        errors: Vec<EnvelopeError>,
    },
    #[error("{kind} {name}: {cause}")]
    Policy {
        kind: String,
        name: String,
        cause: PipelineError,
    },
    #[error("no OptimismNetwork, OpNode, OpBatcher, OpProposer or OpChallenger in the input")]
    Empty,
    #[error("writing output: {0}")]
    Write(#[from] std::io::Error),
    #[error("starting the plugin runtime: {0}")]
    Runtime(runtime::Error),
}

/// What to render.
#[derive(Debug, Clone, Default)]
pub struct RenderArgs {
    /// Files with YAML documents; `-` reads standard input.
    pub files: Vec<PathBuf>,
    /// `<Kind>=<file.wasm>`: a renderer to use instead of the bundled one, or a policy to run
    /// over the kind's rendered objects (after the envelope, in the order given).
    pub plugins: Vec<String>,
    /// `<Kind>=<key>`: an annotation key the kind's renderer may put on pod templates and
    /// Services (a network's `spec.plugins.<kind>.renderer.allowedAnnotations`).
    pub allowed_annotations: Vec<String>,
    /// Namespace of documents that name none.
    pub namespace: String,
}

struct Resource {
    kind: String,
    name: String,
    value: Value,
}

/// The operator's default notice before a fork activation (`run --upgrade-notice-days`).
const UPGRADE_NOTICE_SECONDS: i64 = 14 * 86_400;

/// Runs the command; warnings go to `warn`, objects to `out`.
pub fn run(
    args: &RenderArgs,
    out: &mut impl Write,
    warn: &mut impl Write,
) -> Result<(), RenderError> {
    let resources = read_resources(&args.files, &args.namespace)?;
    if resources.is_empty() {
        return Err(RenderError::Empty);
    }
    let config = RuntimeConfig {
        cache_dir: compiled_plugin_cache(),
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config).map_err(RenderError::Runtime)?;
    let plugins = load_plugins(&runtime, &args.plugins, &args.allowed_annotations)?;

    let networks: Vec<OptimismNetwork> = of_kind(&resources, "OptimismNetwork");
    let nodes: Vec<OpNode> = of_kind(&resources, "OpNode");
    let batchers: Vec<OpBatcher> = of_kind(&resources, "OpBatcher");
    let proposers: Vec<OpProposer> = of_kind(&resources, "OpProposer");
    let peers = Peers {
        networks: &networks,
        nodes: &nodes,
        batchers: &batchers,
        proposers: &proposers,
    };

    // Refuse the whole input before rendering anything: a chain is rendered all or nothing.
    for resource in &resources {
        if let Some(error) = validate::validate(&resource.kind, &resource.value, peers)
            .into_iter()
            .next()
        {
            return Err(RenderError::HostValidation {
                kind: resource.kind.clone(),
                name: resource.name.clone(),
                cause: error,
            });
        }
    }

    // Nothing is printed until every resource rendered: a chain is all or nothing here too, so
    // a refusal (say, a policy on the OpNodes) leaves no half of the chain on stdout.
    let mut rendered = Vec::new();
    for kind in bundled::KINDS {
        for resource in resources.iter().filter(|r| r.kind == *kind) {
            let network_name = pipeline::network_name(kind, &resource.value);
            let network = networks
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(network_name.as_str()))
                .expect("host validation checked that the network exists");
            let plugin = &plugins[*kind];
            // Offline there are no Secrets: no peer IDs, so a replica renders without the
            // static peer the operator gives it from its sequencer's P2P key.
            let sealed = pipeline::render(
                kind,
                &resource.value,
                OFFLINE_UID,
                network,
                &nodes,
                &Default::default(),
                plugin,
            )
            .map_err(|error| match error {
                PipelineError::Context(error) => RenderError::Context(error),
                PipelineError::Plugin { plugin, source } => RenderError::Plugin {
                    kind: kind.to_string(),
                    name: resource.name.clone(),
                    plugin,
                    cause: source,
                },
                PipelineError::Envelope(errors) => RenderError::Envelope {
                    kind: kind.to_string(),
                    name: resource.name.clone(),
                    errors,
                },
                cause @ (PipelineError::PolicyViolation { .. }
                | PipelineError::PolicyFailed { .. }) => RenderError::Policy {
                    kind: kind.to_string(),
                    name: resource.name.clone(),
                    cause,
                },
            })?;
            for warning in &sealed.warnings {
                writeln!(warn, "warning: {kind} {}: {warning}", resource.name)?;
            }
            // The operator's hardfork readiness, as it would judge these pods today. Offline
            // only an inline rollup config is read; a ConfigMap's is not at hand.
            if *kind != "OptimismNetwork" {
                let inline = network
                    .spec
                    .rollup_config
                    .as_ref()
                    .and_then(|c| c.inline.as_deref());
                let now = upgrade::unix_now();
                let readiness = upgrade::judge(
                    opstack_crds::releases::table(),
                    &upgrade::schedule_of(network, inline),
                    &upgrade::running(&sealed.objects),
                    now,
                    UPGRADE_NOTICE_SECONDS,
                )
                .map_err(|cause| RenderError::Upgrade {
                    kind: kind.to_string(),
                    name: resource.name.clone(),
                    cause,
                })?;
                let report = upgrade::report(&readiness, now);
                if report.status != Some(true) {
                    writeln!(
                        warn,
                        "warning: {kind} {}: {}: {}",
                        resource.name, report.reason, report.message
                    )?;
                }
            }
            for object in sealed.objects {
                writeln!(rendered, "---")?;
                writeln!(
                    rendered,
                    "# {kind}/{} rendered by {}",
                    resource.name, sealed.rendered_by
                )?;
                rendered.extend_from_slice(
                    serde_yaml::to_string(&object)
                        .expect("JSON values serialise as YAML")
                        .as_bytes(),
                );
            }
        }
    }
    out.write_all(&rendered)?;
    Ok(())
}

/// A private per-user directory for precompiled plugins, so a second `render` skips the
/// ~100 ms compile of each plugin. `OPSTACK_CACHE_DIR`, else the XDG cache.
pub(crate) fn compiled_plugin_cache() -> Option<PathBuf> {
    let root = std::env::var_os("OPSTACK_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|cache| cache.join("opstack-operator"))
        })?;
    Some(root.join("compiled-plugins"))
}

/// The resources of one kind, typed. Admission already proved they parse.
fn of_kind<T: serde::de::DeserializeOwned>(resources: &[Resource], kind: &str) -> Vec<T> {
    resources
        .iter()
        .filter(|r| r.kind == kind)
        .filter_map(|r| serde_json::from_value(r.value.clone()).ok())
        .collect()
}

fn read_resources(files: &[PathBuf], namespace: &str) -> Result<Vec<Resource>, RenderError> {
    let mut resources = Vec::new();
    for path in files {
        let shown = path.display().to_string();
        let text = read_file(path).map_err(|cause| RenderError::Read {
            path: shown.clone(),
            cause,
        })?;
        for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let mut value = Value::deserialize(document).map_err(|cause| RenderError::Yaml {
                path: shown.clone(),
                index: index + 1,
                cause,
            })?;
            let Some(kind) = value
                .get("kind")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                continue;
            };
            if !value
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("optimism.io/"))
            {
                continue; // ConfigMaps and Secrets beside the resources are the user's, not ours to render.
            }
            admit(&value).map_err(|cause| RenderError::Admission {
                path: shown.clone(),
                cause,
            })?;
            if value.pointer("/metadata/namespace").is_none() {
                value["metadata"]["namespace"] = Value::String(namespace.to_string());
            }
            let name = value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            resources.push(Resource { kind, name, value });
        }
    }
    Ok(resources)
}

fn read_file(path: &Path) -> std::io::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
    }
}

/// The plugins of every kind: the bundled renderer unless a `--plugin` renderer replaces it,
/// and the `--plugin` policies of the kind in command-line order (the order a network lists them).
fn load_plugins(
    runtime: &Runtime,
    overrides: &[String],
    allowed_annotations: &[String],
) -> Result<BTreeMap<&'static str, KindPlugins>, RenderError> {
    let mut allowed: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for arg in allowed_annotations {
        let (kind, key) = parse_kind_argument(arg, "--allow-annotation", "key")?;
        allowed.entry(kind).or_default().insert(key.to_string());
    }
    let mut renderers: BTreeMap<&'static str, (Plugin, String)> = BTreeMap::new();
    let mut policies: BTreeMap<&'static str, Vec<PolicyPlugin>> = BTreeMap::new();
    for arg in overrides {
        let (kind, path) = parse_plugin_argument(arg)?;
        let plugin = load_for_kind(kind, runtime.load_file(path), &path.display().to_string())?;
        match plugin.info().role {
            Role::Renderer => {
                if let Some((_, first)) = renderers.get(kind) {
                    return Err(RenderError::SecondRenderer {
                        kind: kind.to_string(),
                        first: first.clone(),
                        second: path.display().to_string(),
                    });
                }
                renderers.insert(kind, (plugin, path.display().to_string()));
            }
            Role::Policy => policies.entry(kind).or_default().push(PolicyPlugin {
                plugin,
                // What a network's policy defaults to: a policy that cannot run blocks the render.
                failure_policy: FailurePolicy::Fail,
            }),
        }
    }
    let mut plugins = BTreeMap::new();
    for kind in bundled::KINDS {
        let renderer = match renderers.remove(kind) {
            Some((plugin, _)) => plugin,
            None => load_for_kind(
                kind,
                runtime.load(bundled::renderer(kind).expect("every kind has a bundled renderer")),
                "bundled",
            )?,
        };
        plugins.insert(
            *kind,
            KindPlugins {
                renderer,
                policies: policies.remove(kind).unwrap_or_default(),
                allowed_annotations: allowed.remove(kind).unwrap_or_default(),
            },
        );
    }
    Ok(plugins)
}

/// `<Kind>=<file.wasm>`, with Kind one the operator serves.
fn parse_plugin_argument(arg: &str) -> Result<(&'static str, &Path), RenderError> {
    parse_kind_argument(arg, "--plugin", "file.wasm").map(|(kind, path)| (kind, Path::new(path)))
}

/// `<Kind>=<what>` of `flag`, with Kind one the operator serves and a value.
fn parse_kind_argument<'a>(
    arg: &'a str,
    flag: &'static str,
    what: &'static str,
) -> Result<(&'static str, &'a str), RenderError> {
    arg.split_once('=')
        .and_then(|(kind, value)| {
            let kind = bundled::KINDS.iter().find(|k| **k == kind)?;
            (!value.is_empty()).then_some((*kind, value))
        })
        .ok_or_else(|| RenderError::PluginArgument {
            flag,
            arg: arg.to_string(),
            what,
            kinds: bundled::KINDS.join(", "),
        })
}

/// A loaded plugin that says it serves `kind`; `origin` names it in errors.
fn load_for_kind(
    kind: &str,
    loaded: Result<Plugin, runtime::Error>,
    origin: &str,
) -> Result<Plugin, RenderError> {
    let error = |cause| RenderError::PluginLoad {
        kind: kind.to_string(),
        path: origin.to_string(),
        cause,
    };
    let plugin = loaded.map_err(error)?;
    if !plugin.info().kinds.iter().any(|k| k == kind) {
        return Err(error(runtime::Error::InvalidInfo {
            message: format!("it serves {:?}, not {kind}", plugin.info().kinds),
        }));
    }
    Ok(plugin)
}
