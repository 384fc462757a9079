//! What the control-plane test files share: the control plane, applying YAML as admin, the
//! devnet example, the in-process operator, and polling CRs, children and Events.
// Each test file uses its own subset.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use opstack_operator::controller::{self, Context, Settings};
use opstack_test_harness::{ControlPlane, ControlPlaneConfig};
use serde::Deserialize;
use serde_json::{Value, json};

pub const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
pub const TIMEOUT: Duration = Duration::from_secs(90);

pub fn control_plane() -> &'static ControlPlane {
    ControlPlane::shared(ControlPlaneConfig::default)
}

pub fn api_resource(object: &Value) -> ApiResource {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        group,
        version,
        object["kind"].as_str().expect("kind"),
    ))
}

/// Server-side applies every document of a YAML file as admin (in `namespace` when namespaced).
pub async fn apply_yaml(client: &Client, text: &str, namespace: Option<&str>) {
    for document in serde_yaml::Deserializer::from_str(text) {
        let object = Value::deserialize(document).expect("YAML");
        if object.is_null() {
            continue;
        }
        let resource = api_resource(&object);
        let name = object["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        let cluster_scoped = matches!(
            object["kind"].as_str(),
            Some("Namespace" | "ClusterRole" | "ClusterRoleBinding")
        );
        let api: Api<DynamicObject> = match (
            cluster_scoped,
            namespace,
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
        ) {
            (true, _, _) => Api::all_with(client.clone(), &resource),
            (false, _, Some(own)) => Api::namespaced_with(client.clone(), own, &resource),
            (false, Some(ns), None) => Api::namespaced_with(client.clone(), ns, &resource),
            (false, None, None) => Api::default_namespaced_with(client.clone(), &resource),
        };
        api.patch(
            &name,
            &PatchParams::apply("opstack-test").force(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {} {name}: {e}", object["kind"]));
    }
}

/// The cluster-wide install's rights (`deploy/rbac.yaml`, which a test keeps equal to
/// `opstack-operator rbac`), with the Secret rights bound in `namespaces`, applied by the admin.
pub async fn install_rbac(admin: &Client, namespaces: &[String]) {
    let text = opstack_operator::cli::rbac::manifests(&opstack_operator::cli::rbac::RbacArgs {
        namespaces: Vec::new(),
        secrets_namespaces: namespaces.to_vec(),
        operator_namespace: "opstack-system".into(),
    })
    .expect("the RBAC manifests");
    apply_yaml(admin, &text, None).await;
}

pub async fn create_secret(admin: &Client, namespace: &str, name: &str, data: &[(&str, &str)]) {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name},
        "stringData": data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
    }))
    .expect("a Secret");
    Api::<Secret>::namespaced(admin.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create a Secret");
}

pub const KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// The Secrets the devnet example names.
pub async fn devnet_secrets(admin: &Client, namespace: &str) {
    create_secret(
        admin,
        namespace,
        "devnet-l1",
        &[
            ("rpc-url", "http://l1:8545"),
            ("beacon-url", "http://l1:5052"),
        ],
    )
    .await;
    create_secret(admin, namespace, "devnet-sequencer-p2p", &[("key", KEY)]).await;
    for who in ["batcher", "proposer", "challenger"] {
        create_secret(
            admin,
            namespace,
            &format!("devnet-{who}"),
            &[("private-key", KEY)],
        )
        .await;
    }
}

pub fn devnet_yaml() -> String {
    std::fs::read_to_string(format!("{WORKSPACE}/examples/devnet-chain.yaml"))
        .expect("the devnet example")
}

/// The devnet example's documents, filtered by `keep(kind, name)`.
pub fn devnet_subset(keep: impl Fn(&str, &str) -> bool) -> String {
    let mut out = String::new();
    for document in serde_yaml::Deserializer::from_str(&devnet_yaml()) {
        let object = Value::deserialize(document).expect("YAML");
        if object.is_null() {
            continue;
        }
        if keep(
            object["kind"].as_str().unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default(),
        ) {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(&object).expect("YAML"));
        }
    }
    out
}

/// The operator, in-process, as its service account, watching one namespace.
pub struct Operator {
    pub context: Arc<Context>,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Operator {
    pub async fn start(namespace: &str) -> Operator {
        Operator::start_with_budget(namespace, None).await
    }

    /// An operator that stops writing after `budget` writes (as if killed right after).
    pub async fn start_with_budget(namespace: &str, budget: Option<u64>) -> Operator {
        Operator::start_on(control_plane(), namespace, budget).await
    }

    pub async fn start_on(
        control_plane: &ControlPlane,
        namespace: &str,
        budget: Option<u64>,
    ) -> Operator {
        Operator::start_with(
            control_plane,
            Settings {
                namespaces: vec![namespace.to_string()],
                write_budget: budget,
                ..Settings::default()
            },
        )
        .await
    }

    /// An operator whose L1 probe (and so discovery's re-read) runs every second, healthy or not.
    pub async fn start_probing_every_second(
        control_plane: &ControlPlane,
        namespace: &str,
    ) -> Operator {
        let second = Duration::from_secs(1);
        let settings = Settings {
            namespaces: vec![namespace.to_string()],
            l1_backoff: opstack_operator::discovery::health::Backoff {
                healthy_interval: second,
                first_retry: second,
                max_retry: second,
            },
            ..Settings::default()
        };
        Operator::start_with(control_plane, settings).await
    }

    /// The operator as its service account, with the cluster-wide rights installed and the
    /// Secret rights bound in the namespaces it watches.
    pub async fn start_with(control_plane: &ControlPlane, settings: Settings) -> Operator {
        install_rbac(&control_plane.admin_client(), &settings.namespaces).await;
        Operator::run_as(control_plane.operator_client(), settings).await
    }

    /// The operator as `client`, an identity whose rights the test set up itself.
    pub async fn run_as(client: Client, settings: Settings) -> Operator {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let settings = Settings {
            cache_dir: Some(std::env::temp_dir().join("opstack-operator-tests-plugins")),
            ..settings
        };
        let context = Context::new(client, settings)
            .await
            .expect("load the bundled plugins");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(controller::run(context.clone(), async move {
            let _ = stopped.await;
        }));
        Operator {
            context,
            stop: Some(stop),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut self.task).await;
    }

    /// Stops it at once, reconciles in flight included: a crash.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Waits until the operator made no write for `quiet`.
    pub async fn settle(&self, quiet: Duration) {
        let started = Instant::now();
        let mut last = self.context.writes.get();
        let mut since = Instant::now();
        while since.elapsed() < quiet {
            assert!(
                started.elapsed() < TIMEOUT,
                "the operator kept writing for {TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.context.writes.get();
            if now != last {
                last = now;
                since = Instant::now();
            }
        }
    }
}

/// A CR as JSON.
pub async fn get_cr(client: &Client, namespace: &str, kind: &str, name: &str) -> Value {
    let object = json!({"apiVersion": "optimism.io/v1alpha1", "kind": kind});
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &api_resource(&object));
    serde_json::to_value(
        api.get(name)
            .await
            .unwrap_or_else(|e| panic!("get {kind} {name}: {e}")),
    )
    .expect("JSON")
}

pub fn condition<'a>(cr: &'a Value, type_: &str) -> Option<&'a Value> {
    cr.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// The message of the CR's condition `type_` (empty when it has none).
pub fn condition_message(cr: &Value, type_: &str) -> String {
    condition(cr, type_)
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Waits until `kind/name` has condition `type_` with `status` (and `reason`, if given).
pub async fn wait_for_condition(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> Value {
    poll_condition(
        client,
        namespace,
        kind,
        name,
        (type_, status, reason),
        TIMEOUT,
    )
    .await
    .unwrap_or_else(|cr| {
        panic!(
            "{kind} {name} never got {type_}={status} {reason:?} in {TIMEOUT:?}; status: {}",
            cr.get("status").cloned().unwrap_or_default()
        )
    })
}

/// `kind/name` once its condition `wanted.0` has status `wanted.1` (and reason `wanted.2`, if
/// given); `Err` with the CR as last read when that takes longer than `timeout`.
pub async fn poll_condition(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
    (type_, status, reason): (&str, &str, Option<&str>),
    timeout: Duration,
) -> Result<Value, Value> {
    let started = Instant::now();
    loop {
        let cr = get_cr(client, namespace, kind, name).await;
        if let Some(c) = condition(&cr, type_)
            && c["status"] == status
            && reason.is_none_or(|r| c["reason"] == r)
        {
            return Ok(cr);
        }
        if started.elapsed() > timeout {
            return Err(cr);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Puts `entries` (key → bytes) into ConfigMap `name` as binaryData, replacing what was there
/// (at most 1 MiB in all: one bundled-size plugin each).
pub async fn upload_binary_config_map(
    admin: &Client,
    namespace: &str,
    name: &str,
    entries: &[(&str, &[u8])],
) {
    let binary: BTreeMap<String, ByteString> = entries
        .iter()
        .map(|(key, bytes)| (key.to_string(), ByteString(bytes.to_vec())))
        .collect();
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "binaryData": binary,
    });
    Api::<ConfigMap>::namespaced(admin.clone(), namespace)
        .patch(
            name,
            &PatchParams::apply("opstack-test").force(),
            &Patch::Apply(&config_map),
        )
        .await
        .unwrap_or_else(|e| panic!("upload ConfigMap {namespace}/{name}: {e}"));
}

pub const CHILD_TYPES: &[(&str, &str)] = &[
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
];

/// Every object the operator manages in `namespace`, as `Kind/name` → the object.
pub async fn children(client: &Client, namespace: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (api_version, kind) in CHILD_TYPES {
        let object = json!({"apiVersion": api_version, "kind": kind});
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &api_resource(&object));
        let list = api
            .list(&ListParams::default().labels("app.kubernetes.io/managed-by=opstack-operator"))
            .await
            .expect("list children");
        for item in list {
            out.insert(
                format!("{kind}/{}", item.name_any()),
                serde_json::to_value(item).expect("JSON"),
            );
        }
    }
    out
}

pub fn versions(objects: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    objects
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// Events (events.k8s.io) about `name` with `reason`.
pub async fn events_about(
    client: &Client,
    namespace: &str,
    name: &str,
    reason: &str,
) -> Vec<Value> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), namespace);
    api.list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .map(|e| serde_json::to_value(e).expect("JSON"))
        .filter(|e| {
            e.pointer("/regarding/name").and_then(Value::as_str) == Some(name)
                && e["reason"] == reason
        })
        .collect()
}

pub async fn wait_for_event(client: &Client, namespace: &str, name: &str, reason: &str) -> Value {
    let started = Instant::now();
    loop {
        if let Some(event) = events_about(client, namespace, name, reason)
            .await
            .into_iter()
            .next()
        {
            return event;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "no Event {reason} about {name}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub const DEVNET_CRS: &[(&str, &str)] = &[
    ("OptimismNetwork", "devnet"),
    ("OpNode", "devnet-sequencer"),
    ("OpNode", "devnet-replica"),
    ("OpBatcher", "devnet-batcher"),
    ("OpProposer", "devnet-proposer"),
    ("OpChallenger", "devnet-challenger"),
];

/// Creates the devnet example and waits until every CR has its conditions.
pub async fn devnet(admin: &Client, namespace: &str) {
    devnet_secrets(admin, namespace).await;
    apply_yaml(admin, &devnet_yaml(), Some(namespace)).await;
    wait_for_devnet(admin, namespace).await;
}

/// Waits until every devnet CR has its conditions: network configuration applied (its L1,
/// http://l1:8545, does not exist here, so its contracts are never discovered), workloads
/// applied and waiting for pods (there is no kubelet).
pub async fn wait_for_devnet(admin: &Client, namespace: &str) {
    wait_for_condition(
        admin,
        namespace,
        "OptimismNetwork",
        "devnet",
        "ConfigurationValid",
        "True",
        None,
    )
    .await;
    for (kind, name) in &DEVNET_CRS[1..] {
        wait_for_condition(
            admin,
            namespace,
            kind,
            name,
            "WorkloadReady",
            "False",
            Some("PodsNotReady"),
        )
        .await;
    }
}

/// A network and its sequencer, converged; returns the children then.
/// The devnet's Secrets, chain ConfigMap, network and sequencer, applied.
pub async fn apply_network_and_sequencer(admin: &Client, namespace: &str) {
    devnet_secrets(admin, namespace).await;
    apply_yaml(
        admin,
        &devnet_subset(|kind, name| {
            matches!(kind, "ConfigMap" | "OptimismNetwork") || name == "devnet-sequencer"
        }),
        Some(namespace),
    )
    .await;
}

/// [`apply_network_and_sequencer`], once the sequencer is applied: its children's versions.
pub async fn network_and_sequencer(admin: &Client, namespace: &str) -> BTreeMap<String, String> {
    apply_network_and_sequencer(admin, namespace).await;
    wait_for_condition(
        admin,
        namespace,
        "OpNode",
        "devnet-sequencer",
        "Applied",
        "True",
        None,
    )
    .await;
    versions(&children(admin, namespace).await)
}

/// Merge-patches `kind/name` as the admin.
pub async fn patch(
    admin: &Client,
    namespace: &str,
    api_version: &str,
    kind: &str,
    name: &str,
    patch: Value,
) {
    let object = json!({"apiVersion": api_version, "kind": kind});
    let api: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), namespace, &api_resource(&object));
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("patch {kind} {name}: {e}"));
}

/// Waits until `check` holds for the children, then until the operator is quiet.
pub async fn wait_for_children(
    operator: &Operator,
    admin: &Client,
    namespace: &str,
    what: &str,
    check: impl Fn(&BTreeMap<String, Value>) -> bool,
) {
    let started = Instant::now();
    while !check(&children(admin, namespace).await) {
        assert!(started.elapsed() < TIMEOUT, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    operator.settle(Duration::from_secs(2)).await;
}

pub fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}

/// Where `plugins/build.sh` put the test plugins.
pub fn plugin_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("OPSTACK_PLUGIN_DIR") {
        return dir.into();
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| format!("{WORKSPACE}/target").into())
        .join("wasm32-wasip2/plugin")
}

/// Waits until the operator has reconciled `kind` more than `before` times.
pub async fn wait_for_reconciles(operator: &Operator, kind: &str, before: u64) {
    let started = Instant::now();
    while operator.context.reconciles.get(kind) <= before {
        assert!(
            started.elapsed() < TIMEOUT,
            "no {kind} reconcile after {TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
