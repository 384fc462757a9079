//! The chain's own plugins: which plugin serves a kind for a network, read from the ConfigMaps
//! the network names and verified against the pinned digest before anything is compiled.
//!
//! Three steps, as in every reconcile: [`named`] (pure) lists what the network asks for,
//! [`fetch`] (API) reads the ConfigMaps, [`load`] (blocking: compiles) verifies and loads.
//! Any failure leaves the caller with a [`ChainPluginError`] to report; the caller applies
//! nothing new, so the last applied children stay as they are.

// A ChainPluginError carries where the plugin was named and what it is, so its message can
// say the fix; one is built per failing reconcile, so its size costs nothing worth boxing.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client, ResourceExt};
use opstack_crds::{FailurePolicy, KindPlugins as KindPluginsSpec, OptimismNetwork};

use super::pipeline::{KindPlugins, PolicyPlugin};
use crate::runtime::{self, Plugin, Role, Runtime, sha256_hex};

/// Why a plugin the network names cannot be used. Variant names double as condition reasons.
#[derive(Debug, thiserror::Error)]
pub enum ChainPluginError {
    #[error(
        "{field}: ConfigMap {config_map:?} does not exist in the network's namespace; create it (`opstack-operator plugin configmap`) or fix {field}.configMapRef.name"
    )]
    ConfigMapNotFound { field: String, config_map: String },
    #[error(
        "{field}: ConfigMap {config_map:?} has no binaryData key {key:?}{}; put the .wasm under binaryData.{key} or fix {field}.configMapRef.key",
        if *.in_data { " (it is under data, which holds text only)" } else { "" }
    )]
    KeyNotFound {
        field: String,
        config_map: String,
        key: String,
        in_data: bool,
    },
    #[error(
        "{field}: ConfigMap {config_map:?} key {key:?} has sha256 {actual}, but {field}.sha256 pins {expected}; nothing was compiled and nothing changes. If the new bytes are intended, set {field}.sha256 to {actual}; otherwise restore the ConfigMap"
    )]
    DigestMismatch {
        field: String,
        config_map: String,
        key: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{field}: ConfigMap {config_map:?} key {key:?} holds plugin {plugin}, which serves {serves:?}, not {kind}; name it under the field of a kind it serves"
    )]
    KindMismatch {
        field: String,
        config_map: String,
        key: String,
        plugin: String,
        serves: Vec<String>,
        kind: String,
    },
    #[error(
        "{field}: ConfigMap {config_map:?} key {key:?} holds plugin {plugin}, a {actual}, not a {expected}; name it as a {actual}"
    )]
    RoleMismatch {
        field: String,
        config_map: String,
        key: String,
        plugin: String,
        actual: &'static str,
        expected: &'static str,
    },
    #[error("{field}: ConfigMap {config_map:?} key {key:?}: {source}")]
    Load {
        field: String,
        config_map: String,
        key: String,
        source: runtime::Error,
    },
}

impl ChainPluginError {
    /// A stable CamelCase reason for conditions, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ChainPluginError::ConfigMapNotFound { .. } => "PluginConfigMapNotFound",
            ChainPluginError::KeyNotFound { .. } => "PluginKeyNotFound",
            ChainPluginError::DigestMismatch { .. } => "PluginDigestMismatch",
            ChainPluginError::KindMismatch { .. } => "PluginKindMismatch",
            ChainPluginError::RoleMismatch { .. } => "PluginRoleMismatch",
            // The runtime's own reasons: ModuleTooLarge, IncompatibleContract, ForbiddenImport...
            ChainPluginError::Load { source, .. } => source.reason(),
        }
    }
}

/// One plugin a network names.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginRef {
    /// The spec field naming it, e.g. `spec.plugins.opNode.policies[1]`.
    pub field: String,
    /// The kind it is named for.
    pub kind: &'static str,
    pub role: Role,
    pub config_map: String,
    pub key: String,
    pub sha256: String,
    pub failure_policy: FailurePolicy,
    /// Renderers only: apply its output only when `approved_sha256` equals `sha256`.
    pub require_approval: bool,
    pub approved_sha256: Option<String>,
    /// Renderers only: `allowedAnnotations`.
    pub allowed_annotations: Vec<String>,
}

impl PluginRef {
    /// Whether a renderer's output may be applied: always, unless approval is required and the
    /// approved digest is not this one.
    pub fn approved(&self) -> bool {
        !self.require_approval || self.approved_sha256.as_deref() == Some(self.sha256.as_str())
    }
}

/// The kinds and their field names under `spec.plugins`.
const KIND_FIELDS: [(&str, &str); 5] = [
    ("OptimismNetwork", "optimismNetwork"),
    ("OpNode", "opNode"),
    ("OpBatcher", "opBatcher"),
    ("OpProposer", "opProposer"),
    ("OpChallenger", "opChallenger"),
];

fn kind_spec<'a>(network: &'a OptimismNetwork, kind: &str) -> Option<&'a KindPluginsSpec> {
    network.spec.plugins.for_kind(kind)
}

/// Every plugin `network` names, kind by kind: the renderer first, then the policies in order.
pub fn named(network: &OptimismNetwork) -> Vec<PluginRef> {
    KIND_FIELDS
        .iter()
        .flat_map(|(kind, _)| named_for(network, kind))
        .collect()
}

/// The plugins `network` names for `kind`: the renderer first, then the policies in order.
pub fn named_for(network: &OptimismNetwork, kind: &str) -> Vec<PluginRef> {
    let Some(&(kind, field)) = KIND_FIELDS.iter().find(|(k, _)| *k == kind) else {
        return Vec::new();
    };
    let Some(spec) = kind_spec(network, kind) else {
        return Vec::new();
    };
    let mut refs = Vec::new();
    if let Some(renderer) = &spec.renderer {
        refs.push(PluginRef {
            field: format!("spec.plugins.{field}.renderer"),
            kind,
            role: Role::Renderer,
            config_map: renderer.config_map_ref.name.clone(),
            key: renderer.config_map_ref.key.clone(),
            sha256: renderer.sha256.clone(),
            failure_policy: FailurePolicy::Fail,
            require_approval: renderer.require_approval,
            approved_sha256: renderer.approved_sha256.clone(),
            allowed_annotations: renderer.allowed_annotations.clone(),
        });
    }
    for (i, policy) in spec.policies.iter().enumerate() {
        refs.push(PluginRef {
            field: format!("spec.plugins.{field}.policies[{i}]"),
            kind,
            role: Role::Policy,
            config_map: policy.config_map_ref.name.clone(),
            key: policy.config_map_ref.key.clone(),
            sha256: policy.sha256.clone(),
            failure_policy: policy.failure_policy,
            require_approval: false,
            approved_sha256: None,
            allowed_annotations: Vec::new(),
        });
    }
    refs
}

/// Whether `network` names `config_map` for a plugin.
pub fn names_config_map(network: &OptimismNetwork, config_map: &str) -> bool {
    named(network).iter().any(|r| r.config_map == config_map)
}

/// The `binaryData` of the ConfigMaps a set of refs read, by name; `None` for one that does not
/// exist. Keys under `data` are kept apart so the error can say where the bytes went.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    config_maps: BTreeMap<String, Option<Arc<Contents>>>,
}

#[derive(Debug, Default)]
struct Contents {
    binary: BTreeMap<String, ByteString>,
    text_keys: Vec<String>,
    /// sha256 of each key's bytes, once computed: the contents never change (a new
    /// resourceVersion is a new `Contents`), so a reconcile does not hash a megabyte again.
    digests: Mutex<BTreeMap<String, String>>,
}

impl Contents {
    fn digest(&self, key: &str, bytes: &[u8]) -> String {
        let mut digests = self.digests.lock().unwrap_or_else(|e| e.into_inner());
        digests
            .entry(key.to_string())
            .or_insert_with(|| sha256_hex(bytes))
            .clone()
    }
}

/// Plugin ConfigMaps by `namespace/name` and resourceVersion: a reconcile reads only the
/// metadata of an unchanged ConfigMap, not its megabyte of base64.
#[derive(Debug, Default)]
pub struct FetchCache {
    entries: Mutex<HashMap<String, (String, Arc<Contents>)>>,
}

/// Reads the ConfigMaps `refs` name, in `namespace`. An API error is an error, never "absent".
pub async fn fetch(
    client: &Client,
    namespace: &str,
    refs: &[PluginRef],
    cache: &FetchCache,
) -> Result<Fetched, kube::Error> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    let mut fetched = Fetched::default();
    for reference in refs {
        if fetched.config_maps.contains_key(&reference.config_map) {
            continue;
        }
        let key = format!("{namespace}/{}", reference.config_map);
        let contents = match api.get_metadata_opt(&reference.config_map).await? {
            None => None,
            Some(meta) => {
                let version = meta.resource_version().unwrap_or_default();
                let cached = {
                    let entries = cache.entries.lock().unwrap_or_else(|e| e.into_inner());
                    entries
                        .get(&key)
                        .filter(|(v, _)| *v == version)
                        .map(|(_, c)| c.clone())
                };
                match cached {
                    Some(contents) => Some(contents),
                    None => match api.get_opt(&reference.config_map).await? {
                        None => None,
                        Some(config_map) => {
                            let version = config_map.resource_version().unwrap_or_default();
                            let contents = Arc::new(Contents {
                                binary: config_map.binary_data.unwrap_or_default(),
                                text_keys: config_map
                                    .data
                                    .unwrap_or_default()
                                    .into_keys()
                                    .collect(),
                                digests: Mutex::default(),
                            });
                            cache
                                .entries
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(key, (version, contents.clone()));
                            Some(contents)
                        }
                    },
                }
            }
        };
        fetched
            .config_maps
            .insert(reference.config_map.clone(), contents);
    }
    Ok(fetched)
}

impl Fetched {
    /// The contents of one ConfigMap (tests and the offline tools build them from bytes).
    pub fn insert(&mut self, config_map: &str, binary: BTreeMap<String, Vec<u8>>) {
        let contents = Contents {
            binary: binary
                .into_iter()
                .map(|(k, v)| (k, ByteString(v)))
                .collect(),
            text_keys: Vec::new(),
            digests: Mutex::default(),
        };
        self.config_maps
            .insert(config_map.to_string(), Some(Arc::new(contents)));
    }
}

/// Verifies and loads one plugin: the bytes must exist and match the pinned digest before the
/// runtime sees them; then its contract, role and kinds must fit where it is named.
/// Blocking: compiles on first sight of a digest.
pub fn load(
    runtime: &Runtime,
    reference: &PluginRef,
    fetched: &Fetched,
) -> Result<Plugin, ChainPluginError> {
    let field = || reference.field.clone();
    let contents = fetched
        .config_maps
        .get(&reference.config_map)
        .cloned()
        .flatten()
        .ok_or_else(|| ChainPluginError::ConfigMapNotFound {
            field: field(),
            config_map: reference.config_map.clone(),
        })?;
    let wasm =
        contents
            .binary
            .get(&reference.key)
            .ok_or_else(|| ChainPluginError::KeyNotFound {
                field: field(),
                config_map: reference.config_map.clone(),
                key: reference.key.clone(),
                in_data: contents.text_keys.contains(&reference.key),
            })?;
    let load_error = |source| ChainPluginError::Load {
        field: field(),
        config_map: reference.config_map.clone(),
        key: reference.key.clone(),
        source,
    };
    // Size first: hashing a file the runtime would refuse anyway is wasted work.
    let limit = runtime.limits().module_bytes;
    if wasm.0.len() > limit {
        return Err(load_error(runtime::Error::ModuleTooLarge {
            size: wasm.0.len(),
            limit,
        }));
    }
    let actual = contents.digest(&reference.key, &wasm.0);
    if actual != reference.sha256 {
        return Err(ChainPluginError::DigestMismatch {
            field: field(),
            config_map: reference.config_map.clone(),
            key: reference.key.clone(),
            expected: reference.sha256.clone(),
            actual,
        });
    }
    let plugin = match runtime.loaded(&actual) {
        Some(plugin) => plugin,
        None => runtime.load(&wasm.0).map_err(load_error)?,
    };
    check_fits(&plugin, reference)?;
    Ok(plugin)
}

/// A loaded plugin must have the role and serve the kind it is named for.
fn check_fits(plugin: &Plugin, reference: &PluginRef) -> Result<(), ChainPluginError> {
    let info = plugin.info();
    if info.role != reference.role {
        return Err(ChainPluginError::RoleMismatch {
            field: reference.field.clone(),
            config_map: reference.config_map.clone(),
            key: reference.key.clone(),
            plugin: info.name.clone(),
            actual: role_name(info.role),
            expected: role_name(reference.role),
        });
    }
    if !info.kinds.iter().any(|k| k == reference.kind) {
        return Err(ChainPluginError::KindMismatch {
            field: reference.field.clone(),
            config_map: reference.config_map.clone(),
            key: reference.key.clone(),
            plugin: info.name.clone(),
            serves: info.kinds.clone(),
            kind: reference.kind.to_string(),
        });
    }
    Ok(())
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Renderer => "renderer",
        Role::Policy => "policy",
    }
}

/// What serves one kind for one network.
#[derive(Debug, Clone)]
pub struct Selected {
    pub plugins: KindPlugins,
    /// The chain's renderer, when it replaces the bundled one.
    pub renderer: Option<PluginRef>,
}

/// Loads the plugins `refs` name for one kind (as [`named_for`] returns them) on top of the
/// bundled renderer. Every failure is returned, in the order of `refs`.
pub fn select(
    runtime: &Runtime,
    bundled: &Plugin,
    refs: &[PluginRef],
    fetched: &Fetched,
) -> Result<Selected, Vec<ChainPluginError>> {
    let mut selected = Selected {
        plugins: KindPlugins::renderer(bundled.clone()),
        renderer: None,
    };
    let mut errors = Vec::new();
    for reference in refs {
        match (load(runtime, reference, fetched), reference.role) {
            (Err(error), _) => errors.push(error),
            (Ok(plugin), Role::Renderer) => {
                selected.plugins.renderer = plugin;
                selected.plugins.allowed_annotations =
                    reference.allowed_annotations.iter().cloned().collect();
                selected.renderer = Some(reference.clone());
            }
            (Ok(plugin), Role::Policy) => selected.plugins.policies.push(PolicyPlugin {
                plugin,
                failure_policy: reference.failure_policy,
            }),
        }
    }
    if errors.is_empty() {
        Ok(selected)
    } else {
        Err(errors)
    }
}

/// Loads every plugin `refs` name; returns the failures (empty: all ready) and a summary of
/// those that loaded, for the network's `PluginsReady` condition.
pub fn check_all(
    runtime: &Runtime,
    refs: &[PluginRef],
    fetched: &Fetched,
) -> (Vec<ChainPluginError>, Vec<String>) {
    let mut errors = Vec::new();
    let mut loaded = Vec::new();
    for reference in refs {
        match load(runtime, reference, fetched) {
            Ok(plugin) => loaded.push(format!(
                "{}: {}@sha256:{}",
                reference.field,
                plugin.info().name,
                plugin.sha256()
            )),
            Err(error) => errors.push(error),
        }
    }
    (errors, loaded)
}

/// One message for several failures: each on its own, in order.
pub fn describe(errors: &[ChainPluginError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The network a set of refs came from, for messages on the dependents.
pub fn on_network(network: &OptimismNetwork, errors: &[ChainPluginError]) -> String {
    format!(
        "OptimismNetwork {}: {}",
        network.name_any(),
        describe(errors)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn network(plugins: serde_json::Value) -> OptimismNetwork {
        serde_json::from_value(json!({
            "apiVersion": "optimism.io/v1alpha1",
            "kind": "OptimismNetwork",
            "metadata": {"name": "devnet", "namespace": "chain"},
            "spec": {
                "networkName": "devnet",
                "chainID": 901,
                "l1ChainID": 900,
                "l1RpcUrl": "http://l1:8545",
                "plugins": plugins,
            }
        }))
        .expect("a network")
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn renderer_comes_before_policies_and_policies_keep_their_order() {
        let network = network(json!({"opNode": {
            "renderer": {"configMapRef": {"name": "r", "key": "r.wasm"}, "sha256": A},
            "policies": [
                {"configMapRef": {"name": "p", "key": "one.wasm"}, "sha256": A},
                {"configMapRef": {"name": "p", "key": "two.wasm"}, "sha256": B, "failurePolicy": "Ignore"},
            ],
        }}));
        let refs = named_for(&network, "OpNode");
        let fields: Vec<&str> = refs.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.plugins.opNode.renderer",
                "spec.plugins.opNode.policies[0]",
                "spec.plugins.opNode.policies[1]"
            ]
        );
        assert_eq!(refs[2].failure_policy, FailurePolicy::Ignore);
        assert!(named_for(&network, "OpBatcher").is_empty());
        assert!(names_config_map(&network, "p"));
        assert!(!names_config_map(&network, "q"));
    }

    #[test]
    fn a_renderer_needing_approval_is_approved_only_by_its_own_digest() {
        let with = |approved: Option<&str>| {
            let mut renderer = json!({"configMapRef": {"name": "r", "key": "k"}, "sha256": B, "requireApproval": true});
            if let Some(approved) = approved {
                renderer["approvedSha256"] = json!(approved);
            }
            named_for(
                &network(json!({"opBatcher": {"renderer": renderer}})),
                "OpBatcher",
            )
            .remove(0)
        };
        assert!(!with(None).approved());
        assert!(!with(Some(A)).approved());
        assert!(with(Some(B)).approved());
    }

    fn runtime() -> Runtime {
        Runtime::new(runtime::RuntimeConfig {
            workers: 1,
            ..Default::default()
        })
        .expect("a runtime")
    }

    fn reference(sha256: &str) -> PluginRef {
        named_for(
            &network(json!({"opNode": {"renderer": {"configMapRef": {"name": "cm", "key": "plugin.wasm"}, "sha256": sha256}}})),
            "OpNode",
        )
        .remove(0)
    }

    #[test]
    fn bytes_that_do_not_match_the_pinned_digest_are_refused_before_compiling() {
        let mut fetched = Fetched::default();
        // Not even WebAssembly: had it reached the compiler, the reason would be InvalidModule.
        fetched.insert(
            "cm",
            BTreeMap::from([("plugin.wasm".into(), b"junk".to_vec())]),
        );
        let error = load(&runtime(), &reference(A), &fetched).unwrap_err();
        assert_eq!(error.reason(), "PluginDigestMismatch");
        let message = error.to_string();
        assert!(
            message.contains("spec.plugins.opNode.renderer.sha256"),
            "{message}"
        );
        assert!(message.contains(&sha256_hex(b"junk")), "{message}");
    }

    #[test]
    fn a_missing_config_map_or_key_names_what_is_missing() {
        let runtime = runtime();
        let error = load(&runtime, &reference(A), &Fetched::default()).unwrap_err();
        assert_eq!(error.reason(), "PluginConfigMapNotFound");
        let mut fetched = Fetched::default();
        fetched.insert("cm", BTreeMap::from([("other.wasm".into(), b"x".to_vec())]));
        let error = load(&runtime, &reference(A), &fetched).unwrap_err();
        assert_eq!(error.reason(), "PluginKeyNotFound");
        assert!(error.to_string().contains("binaryData.plugin.wasm"));
    }

    #[test]
    fn bytes_over_the_module_limit_are_refused_by_size() {
        let runtime = runtime();
        let big = vec![0u8; runtime.limits().module_bytes + 1];
        let mut fetched = Fetched::default();
        fetched.insert("cm", BTreeMap::from([("plugin.wasm".into(), big.clone())]));
        let error = load(&runtime, &reference(&sha256_hex(&big)), &fetched).unwrap_err();
        assert_eq!(error.reason(), "ModuleTooLarge");
    }

    #[test]
    fn a_plugin_named_for_another_kind_or_role_is_refused_with_that_reason() {
        let runtime = runtime();
        let wasm = crate::bundled::renderer("OpNode")
            .expect("bundled")
            .to_vec();
        let sha256 = sha256_hex(&wasm);
        let mut fetched = Fetched::default();
        fetched.insert("cm", BTreeMap::from([("plugin.wasm".into(), wasm)]));
        let as_batcher = named_for(
            &network(
                json!({"opBatcher": {"renderer": {"configMapRef": {"name": "cm", "key": "plugin.wasm"}, "sha256": sha256}}}),
            ),
            "OpBatcher",
        );
        let error = load(&runtime, &as_batcher[0], &fetched).unwrap_err();
        assert_eq!(error.reason(), "PluginKindMismatch", "{error}");
        let as_policy = named_for(
            &network(
                json!({"opNode": {"policies": [{"configMapRef": {"name": "cm", "key": "plugin.wasm"}, "sha256": sha256}]}}),
            ),
            "OpNode",
        );
        let error = load(&runtime, &as_policy[0], &fetched).unwrap_err();
        assert_eq!(error.reason(), "PluginRoleMismatch", "{error}");
    }

    #[test]
    fn select_replaces_the_bundled_renderer_and_reports_every_failure() {
        let runtime = runtime();
        let bundled = runtime
            .load(crate::bundled::renderer("OpNode").expect("bundled"))
            .expect("loads");
        // Any other renderer serving OpNode stands in for a chain's own: the test plugin.
        let wasm = crate::bundled::renderer("OpNode")
            .expect("bundled")
            .to_vec();
        let mut fetched = Fetched::default();
        fetched.insert("cm", BTreeMap::from([("plugin.wasm".into(), wasm.clone())]));
        let good = reference(&sha256_hex(&wasm));
        let selected = select(&runtime, &bundled, std::slice::from_ref(&good), &fetched)
            .unwrap_or_else(|e| panic!("{}", describe(&e)));
        assert_eq!(selected.renderer.as_ref(), Some(&good));
        assert!(selected.plugins.policies.is_empty());
        let missing = PluginRef {
            config_map: "gone".into(),
            role: Role::Policy,
            ..good.clone()
        };
        let errors = select(
            &runtime,
            &bundled,
            &[good, missing.clone(), missing],
            &fetched,
        )
        .expect_err("a missing ConfigMap fails the selection");
        assert_eq!(errors.len(), 2);
        assert!(
            errors
                .iter()
                .all(|e| e.reason() == "PluginConfigMapNotFound")
        );
    }
}
