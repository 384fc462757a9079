//! The controllers: one kube-runtime `Controller` per kind, each reconcile shaped
//! dereference → validate → render (plugin) → envelope → apply → status.
//!
//! Secrets are never listed or watched: a referenced Secret is read by name during reconcile,
//! and the periodic requeue notices one created later.

pub mod admission;
pub mod apply;
pub mod chain_plugins;
pub mod l1;
pub mod leader;
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
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{EventType, Recorder, Reporter};
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

impl ControllerError {
    /// The reason: the `result` label of the reconcile metric and the Warning Event's reason.
    /// An API error by its class, so the labels stay a small fixed set.
    pub fn reason(&self) -> &'static str {
        match self {
            ControllerError::Kube(kube::Error::Api(status)) => match status.code {
                403 => "ApiForbidden",
                404 => "ApiNotFound",
                409 => "ApiConflict",
                422 => "ApiInvalid",
                429 => "ApiTooManyRequests",
                500..=599 => "ApiServerError",
                _ => "ApiError",
            },
            ControllerError::Kube(_) => "ApiUnreachable",
            ControllerError::Json(_) => "Serialization",
            ControllerError::PluginLoad { .. } => "PluginLoad",
            ControllerError::NoPlugin(_) => "NoPlugin",
            ControllerError::RenderTask(_) => "RenderTask",
            ControllerError::Random(_) => "Random",
            ControllerError::WriteBudgetSpent(_) => "WriteBudgetSpent",
        }
    }
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
    /// Requeue after an API error (doubling with each failure in a row, up to `retry_cap`).
    pub retry: Duration,
    pub retry_cap: Duration,
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
    /// Run the controllers only while holding this Lease (two replicas); `None`: always.
    pub leader_election: Option<leader::LeaseSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 4,
            resync: Duration::from_secs(300),
            retry: Duration::from_secs(15),
            // Most API failures are brief (a restarting API server, a conflict): a minute at most
            // keeps a recovered cluster from waiting on a long backoff.
            retry_cap: Duration::from_secs(60),
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
            leader_election: None,
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
    /// Reconciles failing in a row, for the backoff and the Events.
    pub failures: Failures,
    pub health: Health,
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
            failures: Failures::default(),
            health: Health::default(),
            settings,
        }))
    }

    /// The Prometheus text of `/metrics`: the controllers' counters and every loaded plugin's.
    pub fn metrics_text(&self) -> String {
        let mut text = self.metrics.render(&self.runtime.loaded_plugins());
        text.push_str(
            "# HELP opstack_operator_leader Whether this replica runs the controllers (1) or waits for the Lease (0).\n# TYPE opstack_operator_leader gauge\n",
        );
        text.push_str(&format!(
            "opstack_operator_leader {}\n",
            u8::from(!self.health.is_standby())
        ));
        text
    }

    /// What the operator's HTTP port answers on `path`: `/metrics`, `/healthz`, `/readyz`.
    pub fn http_answer(&self, path: &str) -> Option<(u16, String)> {
        match path {
            "/metrics" => Some((200, self.metrics_text())),
            "/healthz" => Some(self.health.live()),
            "/readyz" => Some(self.health.ready()),
            _ => None,
        }
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

/// Whether the controllers run and have their caches: `/healthz` and `/readyz`.
#[derive(Debug, Default)]
pub struct Health {
    /// Controllers `run` starts (five per watched scope).
    expected: AtomicU64,
    running: AtomicU64,
    /// Of those, the ones whose kind the API has listed for this identity.
    synced: AtomicU64,
    /// Waiting for the Lease: alive and ready, running nothing.
    standby: std::sync::atomic::AtomicBool,
}

impl Health {
    /// `/healthz`: every controller runs (the probe restarts a process whose controllers
    /// stopped).
    pub fn live(&self) -> (u16, String) {
        if self.is_standby() {
            return (200, "ok: standby, waiting for the Lease\n".to_string());
        }
        let (expected, running) = (
            self.expected.load(Ordering::SeqCst),
            self.running.load(Ordering::SeqCst),
        );
        if expected > 0 && running == expected {
            (200, format!("ok: {running} controllers running\n"))
        } else {
            (
                503,
                format!("{running} of {expected} controllers running\n"),
            )
        }
    }

    /// `/readyz`: running, and the API lists every controller's kind for this identity.
    pub fn ready(&self) -> (u16, String) {
        if self.is_standby() {
            return (200, "ok: standby, waiting for the Lease\n".to_string());
        }
        let (live, _) = self.live();
        let (expected, synced) = (
            self.expected.load(Ordering::SeqCst),
            self.synced.load(Ordering::SeqCst),
        );
        if live == 200 && synced == expected {
            (200, format!("ok: {synced} kinds listed\n"))
        } else {
            (503, format!("{synced} of {expected} kinds listed\n"))
        }
    }
}

impl Health {
    fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::SeqCst);
    }

    /// Whether this replica waits for the Lease instead of running the controllers.
    pub fn is_standby(&self) -> bool {
        self.standby.load(Ordering::SeqCst)
    }
}

/// What identifies a CR among the failures.
fn failure_key<K: Kind>(cr: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        cr.namespace().unwrap_or_default(),
        cr.name_any()
    )
}

/// A reconcile that failed (the API, not the CR: a refusal is a condition, not an error): a
/// Warning Event the first time this reason shows, and a retry that backs off.
fn error_policy<K: Kind>(cr: Arc<K>, error: &ControllerError, context: Arc<Context>) -> Action {
    let reason = error.reason();
    let settings = &context.settings;
    let (delay, first) = context.failures.failed(
        &failure_key(cr.as_ref()),
        reason,
        settings.retry,
        settings.retry_cap,
    );
    tracing::warn!(kind = K::kind(&()).as_ref(), name = %cr.name_any(), namespace = ?cr.namespace(), reason, %error, retry_in = ?delay, "reconcile failed");
    if first {
        let reference = cr.object_ref(&());
        let note = format!("{error}; retrying in {}s, then less often", delay.as_secs());
        let context = context.clone();
        tokio::spawn(async move {
            reconcile::publish(
                &context,
                &reference,
                EventType::Warning,
                reason,
                "Reconcile",
                &note,
            )
            .await;
        });
    }
    Action::requeue(delay)
}

/// Failing reconciles per CR: how many in a row, and the last reason.
#[derive(Debug, Default)]
pub struct Failures {
    by_cr: std::sync::Mutex<BTreeMap<String, (u32, &'static str)>>,
}

impl Failures {
    /// Counts a failure of `key`: the delay before the next try (`base`, doubling with each
    /// failure in a row, at most `cap`) and whether `reason` is new for it (worth an Event).
    pub fn failed(
        &self,
        key: &str,
        reason: &'static str,
        base: Duration,
        cap: Duration,
    ) -> (Duration, bool) {
        let mut by_cr = self.by_cr.lock().unwrap_or_else(|e| e.into_inner());
        let entry = by_cr.entry(key.to_string()).or_insert((0, ""));
        let first = entry.1 != reason;
        *entry = (entry.0.saturating_add(1), reason);
        (backoff(base, entry.0, cap), first)
    }

    /// A reconcile of `key` succeeded: the next failure starts again from the base delay.
    pub fn succeeded(&self, key: &str) {
        let mut by_cr = self.by_cr.lock().unwrap_or_else(|e| e.into_inner());
        by_cr.remove(key);
    }
}

/// `base × 2^(failures − 1)`, at most `cap`.
fn backoff(base: Duration, failures: u32, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    base.saturating_mul(factor).min(cap)
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
    context.health.running.fetch_add(1, Ordering::SeqCst);
    // Ready once the API lists this kind for this identity: what the controller's own watch
    // starts with. (The reflector store's readiness signal never fired under kube-runtime 5.0
    // in our tests, so it is not used.)
    let synced = {
        let (context, api) = (context.clone(), watched::<K>(&client, &scope));
        tokio::spawn(async move {
            while let Err(error) = api.list_metadata(&ListParams::default().limit(1)).await {
                tracing::warn!(%error, kind = K::kind(&()).as_ref(), "listing for readiness");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            context.health.synced.fetch_add(1, Ordering::SeqCst);
        })
    };
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
    controller
        .graceful_shutdown_on(shutdown)
        .run(
            |cr: Arc<K>, context: Arc<Context>| async move {
                let started = std::time::Instant::now();
                let key = failure_key(cr.as_ref());
                let result = reconcile::<K>(cr, context.clone()).await;
                let outcome = match &result {
                    Ok(_) => {
                        context.failures.succeeded(&key);
                        "ok"
                    }
                    Err(error) => error.reason(),
                };
                context
                    .metrics
                    .reconciled(K::kind(&()).as_ref(), outcome, started.elapsed());
                result
            },
            error_policy::<K>,
            context.clone(),
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
    synced.abort();
    context.health.running.fetch_sub(1, Ordering::SeqCst);
}

/// Runs the controllers until `shutdown` resolves, then lets in-flight reconciles finish. With
/// leader election, first waits for the Lease (a standby, ready but running nothing), and
/// stops at once, with an error, when the Lease could not be renewed: another replica may take
/// it over, and two leaders would apply against each other.
pub async fn run(
    context: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), leader::LeaderError> {
    let Some(lease) = context.settings.leader_election.clone() else {
        run_controllers(context, shutdown).await;
        return Ok(());
    };
    let shutdown = shutdown.boxed().shared();
    context.health.set_standby(true);
    tokio::select! {
        () = leader::acquire(&context.client, &lease) => {}
        () = shutdown.clone() => return Ok(()),
    }
    context.health.set_standby(false);
    let (stop, stopped) = futures::channel::oneshot::channel::<()>();
    let controllers = run_controllers(context.clone(), stopped.map(|_| ()));
    tokio::pin!(controllers);
    tokio::select! {
        () = &mut controllers => Ok(()),
        lost = leader::hold(&context.client, &lease) => {
            tracing::error!(error = %lost, "leadership lost: stopping at once");
            Err(lost)
        }
        () = shutdown.clone() => {
            let _ = stop.send(());
            controllers.await;
            leader::release(&context.client, &lease).await;
            Ok(())
        }
    }
}

/// The five controllers, per watched namespace or once over all, until `shutdown` resolves.
async fn run_controllers(
    context: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
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
    context
        .health
        .expected
        .store(5 * scopes.len() as u64, Ordering::SeqCst);
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
    fn a_failing_reconcile_backs_off_exponentially_to_the_cap_and_starts_over_after_a_success() {
        let failures = Failures::default();
        let (base, cap) = (Duration::from_secs(15), Duration::from_secs(300));
        let delays: Vec<(u64, bool)> = (0..7)
            .map(|_| {
                let (delay, first) = failures.failed("OpNode/ns/a", "ApiServerError", base, cap);
                (delay.as_secs(), first)
            })
            .collect();
        assert_eq!(
            delays,
            [
                (15, true),
                (30, false),
                (60, false),
                (120, false),
                (240, false),
                (300, false),
                (300, false)
            ]
        );
        // Another reason is worth its own Event; another CR has its own count.
        assert_eq!(
            failures.failed("OpNode/ns/a", "ApiForbidden", base, cap),
            (cap, true)
        );
        assert_eq!(
            failures.failed("OpNode/ns/b", "ApiForbidden", base, cap),
            (base, true)
        );
        failures.succeeded("OpNode/ns/a");
        assert_eq!(
            failures.failed("OpNode/ns/a", "ApiForbidden", base, cap),
            (base, true)
        );
    }

    #[test]
    fn healthz_needs_every_controller_running_and_readyz_every_kind_listed() {
        let health = Health::default();
        assert_eq!(health.live().0, 503, "before the controllers start");
        health.expected.store(5, Ordering::SeqCst);
        health.running.store(5, Ordering::SeqCst);
        assert_eq!(
            health.live(),
            (200, "ok: 5 controllers running\n".to_string())
        );
        health.synced.store(4, Ordering::SeqCst);
        assert_eq!(health.ready(), (503, "4 of 5 kinds listed\n".to_string()));
        health.synced.store(5, Ordering::SeqCst);
        assert_eq!(health.ready().0, 200);
        health.running.store(4, Ordering::SeqCst);
        assert_eq!(health.live().0, 503, "a controller stopped");
        assert_eq!(health.ready().0, 503);
    }

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
