//! The controllers: one kube-runtime `Controller` per kind, each reconcile shaped
//! dereference → validate → render (plugin) → envelope → apply → status.
//!
//! Secrets are never listed or watched: a referenced Secret is read by name during reconcile,
//! and the periodic requeue notices one created later.

pub mod admission;
pub mod apply;
pub mod chain_plugins;
pub mod l1;
pub mod live;
pub mod metrics;
pub mod pipeline;
mod reconcile;
pub mod secrets;
pub mod shadow;
pub mod status;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use opstack_crds::{OpBatcher, OpChallenger, OpNode, OpProposer, OptimismNetwork};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use reconcile::{ANNOTATION_PAUSED, reconcile};

use crate::bundled;
use crate::discovery::health::Backoff;
use crate::envelope::{LABEL_MANAGED_BY, MANAGER};
use crate::runtime::{self, Plugin, Runtime, RuntimeConfig};

/// Why a reconcile or the controllers failed. Variant names double as metric labels; a
/// refusal of the CR itself (validation, plugin, envelope) is not an error but a condition.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("(de)serialising an object: {0}")]
    Json(#[from] serde_json::Error),
    #[error("loading the bundled plugin for {kind}: {source}")]
    PluginLoad {
        kind: String,
        source: runtime::Error,
    },
    #[error("no plugin for kind {0}")]
    NoPlugin(String),
    #[error("the render task stopped: {0}")]
    RenderTask(String),
    #[error("reading random bytes from the OS: {0}")]
    Random(String),
    #[error("the write budget of {0} is spent; no further writes")]
    WriteBudgetSpent(u64),
}

/// Counts the operator's writes to the API (creates, applies, deletes, status patches, not
/// Events), so tests and metrics can tell a no-op reconcile from one that wrote. An optional
/// budget refuses every write after the k-th: the reconcile stops there as if the process
/// had been killed, which is how the crash-consistency tests stop the operator mid-way.
#[derive(Debug, Default)]
pub struct WriteCounter {
    count: AtomicU64,
    budget: Option<u64>,
}

impl WriteCounter {
    /// A counter that allows `budget` writes, then refuses.
    pub fn with_budget(budget: u64) -> Self {
        WriteCounter {
            count: AtomicU64::new(0),
            budget: Some(budget),
        }
    }

    /// Counts a write about to be made; `Err` once the budget is spent (nothing is written).
    pub fn count(&self) -> Result<(), ControllerError> {
        let before = self.count.fetch_add(1, Ordering::SeqCst);
        match self.budget {
            Some(budget) if before >= budget => {
                self.count.fetch_sub(1, Ordering::SeqCst);
                Err(ControllerError::WriteBudgetSpent(budget))
            }
            _ => Ok(()),
        }
    }

    /// Writes made so far.
    pub fn get(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

/// Counts reconciles per kind, so tests (and metrics) can see that a watch event reached the
/// controller even when the reconcile had nothing to write.
#[derive(Debug, Default)]
pub struct ReconcileCounter {
    counts: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl ReconcileCounter {
    /// Counts one reconcile of `kind`.
    pub fn count(&self, kind: &str) {
        // A poisoned lock only means another reconcile panicked mid-increment: keep counting.
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(kind.to_string()).or_default() += 1;
    }

    /// Reconciles of `kind` so far.
    pub fn get(&self, kind: &str) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(kind).copied().unwrap_or(0)
    }
}

/// How the controllers run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Reconciles running at once, per kind.
    pub concurrency: u16,
    /// Requeue of a settled CR: how soon a Secret created later is noticed.
    pub resync: Duration,
    /// Requeue after an API error.
    pub retry: Duration,
    /// Compiled-plugin cache.
    pub cache_dir: Option<PathBuf>,
    /// Name of this instance in Events (`reportingInstance`), e.g. the pod name.
    pub instance: Option<String>,
    /// Watch only these namespaces (a namespaced install, tests); empty watches all.
    pub namespaces: Vec<String>,
    /// Stop writing after this many writes (crash-consistency tests); `None`: no limit.
    pub write_budget: Option<u64>,
    /// Renderers to use instead of the bundled ones, by kind (`.wasm` files).
    pub plugin_files: BTreeMap<String, PathBuf>,
    /// When to probe each network's L1 again (the discovery library's policy).
    pub l1_backoff: Backoff,
    /// How often a running component is asked for its live status (heads, peers, batches).
    pub status_interval: Duration,
    /// Deadline of each of those calls.
    pub status_timeout: Duration,
    /// How long before a fork activation an image that does not follow it raises a Warning
    /// Event (`UpgradeReady` is False earlier too, without one).
    pub upgrade_notice: Duration,
    /// Run workloads only in namespaces that enforce Pod Security "restricted"
    /// ([`admission`]); off only for clusters whose admission is another product's.
    pub require_restricted_namespaces: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 4,
            resync: Duration::from_secs(300),
            retry: Duration::from_secs(15),
            cache_dir: None,
            instance: None,
            namespaces: Vec::new(),
            write_budget: None,
            plugin_files: BTreeMap::new(),
            l1_backoff: Backoff::default(),
            status_interval: Duration::from_secs(15),
            status_timeout: Duration::from_secs(3),
            upgrade_notice: Duration::from_secs(14 * 86_400),
            require_restricted_namespaces: true,
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    /// The process's plugin runtime: every plugin loaded, bundled or the chains' own, by digest.
    pub runtime: Runtime,
    /// The renderer of each kind when a network names none of its own (bundled, or `--plugin`).
    pub plugins: BTreeMap<&'static str, Plugin>,
    /// The chains' plugin ConfigMaps, by resourceVersion.
    pub plugin_config_maps: chain_plugins::FetchCache,
    pub recorder: Recorder,
    pub writes: WriteCounter,
    pub reconciles: ReconcileCounter,
    pub metrics: metrics::Metrics,
    /// Each network's L1 probe state, kept across reconciles for the backoff.
    pub probes: l1::ProbeStates,
    /// The clients of the live step's calls to the components: JSON-RPC and /metrics.
    pub rpc: crate::observe::rpc::Rpc,
    pub scraper: crate::observe::services::Scraper,
    /// Their last answers, so a component is asked at most once per status interval.
    pub live: live::LiveAnswers,
    pub settings: Settings,
}

impl Context {
    /// Loads (compiles) the bundled plugins and builds the shared state.
    pub async fn new(client: Client, settings: Settings) -> Result<Arc<Context>, ControllerError> {
        let cache_dir = settings.cache_dir.clone();
        let files = settings.plugin_files.clone();
        let (runtime, plugins) =
            tokio::task::spawn_blocking(move || load_plugins(cache_dir, &files))
                .await
                .map_err(|e| ControllerError::RenderTask(e.to_string()))??;
        let reporter = Reporter {
            controller: MANAGER.to_string(),
            instance: settings.instance.clone(),
        };
        Ok(Arc::new(Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            runtime,
            plugins,
            plugin_config_maps: chain_plugins::FetchCache::default(),
            writes: settings
                .write_budget
                .map(WriteCounter::with_budget)
                .unwrap_or_default(),
            reconciles: ReconcileCounter::default(),
            metrics: metrics::Metrics::default(),
            probes: l1::ProbeStates::default(),
            rpc: crate::observe::rpc::Rpc::new(settings.status_timeout),
            scraper: crate::observe::services::Scraper::new(settings.status_timeout),
            live: live::LiveAnswers::default(),
            settings,
        }))
    }

    /// The Prometheus text of `/metrics`: the controllers' counters and every loaded plugin's.
    pub fn metrics_text(&self) -> String {
        self.metrics.render(&self.runtime.loaded_plugins())
    }
}

/// The runtime, and the bundled renderer of each kind or the file given for it.
fn load_plugins(
    cache_dir: Option<PathBuf>,
    files: &BTreeMap<String, PathBuf>,
) -> Result<(Runtime, BTreeMap<&'static str, Plugin>), ControllerError> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir,
        ..RuntimeConfig::default()
    })
    .map_err(|source| ControllerError::PluginLoad {
        kind: "runtime".into(),
        source,
    })?;
    let mut plugins = BTreeMap::new();
    for kind in bundled::KINDS {
        let loaded = match files.get(*kind) {
            Some(path) => runtime.load_file(path),
            None => runtime.load(
                bundled::renderer(kind)
                    .ok_or_else(|| ControllerError::NoPlugin(kind.to_string()))?,
            ),
        };
        let plugin = loaded.map_err(|source| ControllerError::PluginLoad {
            kind: kind.to_string(),
            source,
        })?;
        runtime.pin(&plugin);
        plugins.insert(*kind, plugin);
    }
    Ok((runtime, plugins))
}

/// The kinds the operator reconciles.
pub trait Kind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}
impl<K> Kind for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// The network a CR (as JSON) belongs to.
fn network_of<K: Kind>(object: &K) -> Option<String> {
    let value = serde_json::to_value(object).ok()?;
    Some(pipeline::network_name(K::kind(&()).as_ref(), &value))
}

/// Every CR in `store` of the same namespace and network as `changed`: a change of a network
/// or of an `OpNode` can change what its dependents render or whether they are valid.
fn dependents<K: Kind, Other: Kind>(store: &Store<K>, changed: &Other) -> Vec<ObjectRef<K>> {
    let Some(network) = network_of(changed) else {
        return Vec::new();
    };
    let namespace = changed.namespace();
    store
        .state()
        .iter()
        .filter(|cr| {
            cr.namespace() == namespace && network_of(cr.as_ref()).as_ref() == Some(&network)
        })
        .map(|cr| ObjectRef::from_obj(cr.as_ref()))
        .collect()
}

/// Whether `network` reads the ConfigMap `config_map` (its rollup config, L2 genesis, L1 chain
/// config or a plugin): the operator does not own these, so only their name ties them to the
/// network.
fn reads_config_map(network: &OptimismNetwork, config_map: &ObjectMeta) -> bool {
    if network.namespace() != config_map.namespace {
        return false;
    }
    let Some(name) = config_map.name.as_deref() else {
        return false;
    };
    let spec = &network.spec;
    [&spec.rollup_config, &spec.l2_genesis, &spec.l1_chain_config]
        .into_iter()
        .flatten()
        .filter_map(|source| source.config_map_ref.as_ref())
        .any(|reference| reference.name == name)
        || chain_plugins::names_config_map(network, name)
}

/// The CRs in `store` (networks, as the network controller's own kind) that read `config_map`.
fn networks_reading<K: Kind>(store: &Store<K>, config_map: &ObjectMeta) -> Vec<ObjectRef<K>> {
    store
        .state()
        .iter()
        .filter(|cr| {
            serde_json::to_value(cr.as_ref())
                .and_then(serde_json::from_value::<OptimismNetwork>)
                .is_ok_and(|network| reads_config_map(&network, config_map))
        })
        .map(|cr| ObjectRef::from_obj(cr.as_ref()))
        .collect()
}

/// Every ConfigMap of the scope, as metadata only (kube asks the API for metadata when the
/// type is `PartialObjectMeta`): a user's ConfigMaps are matched to the networks by name, and a
/// genesis ConfigMap's 10 MB of data need not live in five watch streams.
fn config_map_names(client: &Client, scope: &Option<String>) -> Api<PartialObjectMeta<ConfigMap>> {
    match scope {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// An `Api` over the watched scope: one namespace or all.
fn watched<T>(client: &Client, namespace: &Option<String>) -> Api<T>
where
    T: Resource<Scope = NamespaceResourceScope>,
    T::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

fn children_config() -> watcher::Config {
    watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGER}"))
}

/// The child kinds [`owning`] can watch, as the envelope names them.
pub const WATCHED_CHILD_KINDS: &[&str] = &[
    "apps/v1/StatefulSet",
    "apps/v1/Deployment",
    "v1/Service",
    "v1/ConfigMap",
    "policy/v1/PodDisruptionBudget",
    "networking.k8s.io/v1/NetworkPolicy",
];

/// `controller`, also watching its children of `child` (`apiVersion/kind`), the operator's
/// only (by label).
fn owning<K: Kind>(
    controller: Controller<K>,
    child: &str,
    client: &Client,
    scope: &Option<String>,
) -> Controller<K> {
    match child {
        "apps/v1/StatefulSet" => {
            controller.owns(watched::<StatefulSet>(client, scope), children_config())
        }
        "apps/v1/Deployment" => {
            controller.owns(watched::<Deployment>(client, scope), children_config())
        }
        "v1/Service" => controller.owns(watched::<Service>(client, scope), children_config()),
        "v1/ConfigMap" => controller.owns(watched::<ConfigMap>(client, scope), children_config()),
        "policy/v1/PodDisruptionBudget" => controller.owns(
            watched::<PodDisruptionBudget>(client, scope),
            children_config(),
        ),
        "networking.k8s.io/v1/NetworkPolicy" => {
            controller.owns(watched::<NetworkPolicy>(client, scope), children_config())
        }
        other => {
            // WATCHED_CHILD_KINDS and a unit test keep this unreachable.
            tracing::error!(child = other, "no watch for an allowed child kind");
            controller
        }
    }
}

/// One kind's controller over `scope` (one namespace, or all), until `shutdown` resolves.
async fn run_kind<K: Kind>(
    context: Arc<Context>,
    scope: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = context.client.clone();
    let kind = K::kind(&()).to_string();
    let controller = Controller::new(watched::<K>(&client, &scope), watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(context.settings.concurrency));
    // Exactly the children the envelope lets this kind's renderer produce: a hand edit of any
    // of them is reverted by the next reconcile, not the next resync.
    let controller = crate::envelope::allowed_kinds(&kind)
        .iter()
        .fold(controller, |controller, child| {
            owning(controller, child, &client, &scope)
        });
    // The user's rollup/genesis/L1-chain-config ConfigMaps: a change to one reconciles the
    // networks that read it and their dependents. ConfigMaps may be listed and watched (unlike
    // Secrets, deploy/rbac.yaml), as metadata only; the mapper keeps those a network names.
    let mut network_feed = None;
    let controller = if kind == "OptimismNetwork" {
        let networks = controller.store();
        controller.watches(
            config_map_names(&client, &scope),
            watcher::Config::default(),
            move |config_map| networks_reading(&networks, &config_map.metadata),
        )
    } else {
        // The dependents' controller has no store of networks; a reflector keeps one, to find
        // which networks read a changed ConfigMap.
        let (networks, writer) = reflector::store::<OptimismNetwork>();
        network_feed = Some(tokio::spawn(
            reflector(
                writer,
                watcher::watcher(
                    watched::<OptimismNetwork>(&client, &scope),
                    watcher::Config::default(),
                ),
            )
            .for_each(|_| futures::future::ready(())),
        ));
        let store = controller.store();
        let by_network = store.clone();
        let by_config_map = store.clone();
        controller
            .watches(
                watched::<OptimismNetwork>(&client, &scope),
                watcher::Config::default(),
                move |network| dependents(&by_network, &network),
            )
            .watches(
                watched::<OpNode>(&client, &scope),
                watcher::Config::default(),
                move |node| dependents(&store, &node),
            )
            .watches(
                config_map_names(&client, &scope),
                watcher::Config::default(),
                move |config_map| {
                    networks
                        .state()
                        .iter()
                        .filter(|network| reads_config_map(network, &config_map.metadata))
                        .flat_map(|network| dependents(&by_config_map, network.as_ref()))
                        .collect::<Vec<_>>()
                },
            )
    };
    let retry = context.settings.retry;
    controller
        .graceful_shutdown_on(shutdown)
        .run(
            |cr: Arc<K>, context: Arc<Context>| async move {
                let started = std::time::Instant::now();
                let result = reconcile::<K>(cr, context.clone()).await;
                let outcome = if result.is_ok() { "ok" } else { "error" };
                context
                    .metrics
                    .reconciled(K::kind(&()).as_ref(), outcome, started.elapsed());
                result
            },
            move |cr: Arc<K>, error: &ControllerError, _| {
                tracing::warn!(kind = K::kind(&()).as_ref(), name = %cr.name_any(), namespace = ?cr.namespace(), %error, "reconcile failed; retrying");
                Action::requeue(retry)
            },
            context,
        )
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(%object, "reconciled"),
                Err(error) => tracing::debug!(%error, "controller"),
            }
        })
        .await;
    if let Some(feed) = network_feed {
        feed.abort();
    }
}

/// Runs the five controllers (per watched namespace, or once over all) until `shutdown`
/// resolves, then lets in-flight reconciles finish.
pub async fn run(context: Arc<Context>, shutdown: impl Future<Output = ()> + Send + 'static) {
    let scopes: Vec<Option<String>> = if context.settings.namespaces.is_empty() {
        vec![None]
    } else {
        context
            .settings
            .namespaces
            .iter()
            .cloned()
            .map(Some)
            .collect()
    };
    let mut senders = Vec::new();
    let mut receiver = || {
        let (sender, receiver) = futures::channel::oneshot::channel::<()>();
        senders.push(sender);
        receiver.map(|_| ())
    };
    let controllers: Vec<_> = scopes
        .into_iter()
        .map(|scope| {
            futures::future::join5(
                run_kind::<OptimismNetwork>(context.clone(), scope.clone(), receiver()),
                run_kind::<OpNode>(context.clone(), scope.clone(), receiver()),
                run_kind::<OpBatcher>(context.clone(), scope.clone(), receiver()),
                run_kind::<OpProposer>(context.clone(), scope.clone(), receiver()),
                run_kind::<OpChallenger>(context.clone(), scope, receiver()),
            )
        })
        .collect();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing reconciles in flight");
        for sender in senders {
            let _ = sender.send(());
        }
    });
    futures::future::join_all(controllers).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_child_kind_the_envelope_allows_is_watched() {
        for kind in bundled::KINDS {
            for child in crate::envelope::allowed_kinds(kind) {
                assert!(
                    WATCHED_CHILD_KINDS.contains(child),
                    "{kind} may render {child}, which no controller watches"
                );
            }
        }
    }
}
