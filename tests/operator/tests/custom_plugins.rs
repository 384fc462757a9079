//! Chain-supplied plugins (issue 8) on the real control plane: a network names a renderer and
//! policies for its `OpNode`s, each a `.wasm` in a ConfigMap's `binaryData`, pinned by sha256.
//! The operator runs in-process as its service account (see `reconcile.rs`); no kubelet and no
//! controller-manager, so nothing but the operator writes the children and their
//! resourceVersions count its writes.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use opstack_operator::runtime::sha256_hex;
use serde_json::{Value, json};
use support::*;

/// The ConfigMap every test uploads its plugins to.
const PLUGINS: &str = "chain-plugins";

/// Where a containment case uploads its plugin.
const UPLOADED: &str = "uploaded-plugin";

/// `PluginInfo` names of the plugins used here (their crates' `info()`).
const BUNDLED_OP_NODE: &str = "op-node";
const EXAMPLE_RENDERER: &str = "example-chain-op-node";
const EXAMPLE_POLICY: &str = "example-chain-policy";

/// The example renderer's additions (examples/custom-plugin/renderer).
const CHAIN_LABEL: (&str, &str) = ("example.org/team", "rollup-infra");
const CHAIN_ANNOTATION: (&str, &str) = (
    "example.org/runbook",
    "https://runbooks.example.org/op-node",
);

const RENDERED_BY: &str = "optimism.io/rendered-by";

/// The bytes of a plugin `plugins/build.sh` built.
fn wasm(file: &str) -> Vec<u8> {
    let path = plugin_dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run plugins/build.sh (or set OPSTACK_PLUGIN_DIR)",
            path.display()
        )
    })
}

/// `<name>@sha256:<digest>`, as the operator names a plugin.
fn plugin_id(name: &str, bytes: &[u8]) -> String {
    format!("{name}@sha256:{}", sha256_hex(bytes))
}

/// Puts `entries` (key → `.wasm`) into the plugins ConfigMap, replacing what was there.
async fn upload(admin: &Client, namespace: &str, entries: &[(&str, &[u8])]) {
    upload_binary_config_map(admin, namespace, PLUGINS, entries).await;
}

/// A renderer stanza. Every chain here allows the runbook annotation the example renderer puts
/// on pod templates and Services, as the example's README says a chain using it does.
fn renderer(key: &str, bytes: &[u8]) -> Value {
    json!({
        "configMapRef": {"name": PLUGINS, "key": key},
        "sha256": sha256_hex(bytes),
        "allowedAnnotations": ["example.org/runbook"],
    })
}

fn policy(key: &str, bytes: &[u8], failure_policy: &str) -> Value {
    json!({
        "configMapRef": {"name": PLUGINS, "key": key},
        "sha256": sha256_hex(bytes),
        "failurePolicy": failure_policy,
    })
}

/// Applies the devnet network with `spec.plugins.opNode = op_node_plugins` (`null`: none).
async fn apply_network(admin: &Client, namespace: &str, op_node_plugins: Value) {
    let text = devnet_subset(|kind, _| kind == "OptimismNetwork");
    let mut network: Value = serde_yaml::from_str(text.trim_start_matches("---\n")).expect("YAML");
    if !op_node_plugins.is_null() {
        network["spec"]["plugins"] = json!({"opNode": op_node_plugins});
    }
    apply_yaml(
        admin,
        &serde_yaml::to_string(&network).expect("YAML"),
        Some(namespace),
    )
    .await;
}

/// Resources the example policy accepts for op-reth (at least 16Gi requested).
fn big_op_reth(node: &mut Value) {
    node["spec"]["resources"]["executionClient"] = json!({
        "requests": {"cpu": "1", "memory": "16Gi"},
        "limits": {"memory": "32Gi"},
    });
}

/// Applies the devnet's OpNode `name` with `edit` applied.
async fn apply_node(admin: &Client, namespace: &str, name: &str, edit: impl FnOnce(&mut Value)) {
    let text = devnet_subset(|_, n| n == name);
    let mut node: Value = serde_yaml::from_str(text.trim_start_matches("---\n")).expect("YAML");
    edit(&mut node);
    apply_yaml(
        admin,
        &serde_yaml::to_string(&node).expect("YAML"),
        Some(namespace),
    )
    .await;
}

/// The devnet's Secrets and chain ConfigMap, the network with `op_node_plugins`, and its
/// sequencer (with op-reth resources the example policy accepts).
async fn chain(admin: &Client, namespace: &str, op_node_plugins: Value) {
    devnet_secrets(admin, namespace).await;
    apply_yaml(
        admin,
        &devnet_subset(|kind, _| kind == "ConfigMap"),
        Some(namespace),
    )
    .await;
    apply_network(admin, namespace, op_node_plugins).await;
    apply_node(admin, namespace, "devnet-sequencer", big_op_reth).await;
}

/// The devnet chain whose network names the bundled op-node renderer, uploaded as
/// `renderer.wasm`, as its own, once its sequencer's children are all rendered by it: where
/// every renderer swap starts. Returns the uploaded bytes.
async fn chain_rendered_by_uploaded_bundled(
    operator: &Operator,
    admin: &Client,
    namespace: &str,
) -> Vec<u8> {
    let bundled = wasm("plugin_op_node.wasm");
    upload(admin, namespace, &[("renderer.wasm", &bundled)]).await;
    chain(
        admin,
        namespace,
        json!({"renderer": renderer("renderer.wasm", &bundled)}),
    )
    .await;
    wait_rendered_by(
        operator,
        admin,
        namespace,
        &plugin_id(BUNDLED_OP_NODE, &bundled),
    )
    .await;
    bundled
}

/// The children of one CR (by its instance label).
fn of(children: &BTreeMap<String, Value>, instance: &str) -> BTreeMap<String, Value> {
    children
        .iter()
        .filter(|(_, v)| v["metadata"]["labels"]["app.kubernetes.io/instance"] == instance)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `Kind/name` → `optimism.io/rendered-by` of each child of `instance`.
fn provenance(children: &BTreeMap<String, Value>, instance: &str) -> BTreeMap<String, String> {
    of(children, instance)
        .into_iter()
        .map(|(k, v)| {
            let by = v["metadata"]["annotations"][RENDERED_BY]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (k, by)
        })
        .collect()
}

/// Waits until every child of `instance` says it was rendered by `id`, and there is at least
/// one; then until the operator is quiet.
async fn wait_rendered_by(operator: &Operator, admin: &Client, namespace: &str, id: &str) {
    let started = Instant::now();
    loop {
        let by = provenance(&children(admin, namespace).await, "devnet-sequencer");
        if !by.is_empty() && by.values().all(|v| v == id) {
            break;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "the sequencer's children were never all rendered by {id}: {by:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    operator.settle(Duration::from_secs(2)).await;
}

/// Waits until the sequencer's condition `type_` has `status` (and `reason`, when given).
async fn wait_for_sequencer(
    admin: &Client,
    namespace: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> Value {
    wait_for_condition(
        admin,
        namespace,
        "OpNode",
        "devnet-sequencer",
        type_,
        status,
        reason,
    )
    .await
}

/// Asserts the sequencer is refused with `reason` on Rendered and Ready (message containing
/// each of `details`), a Warning Event says so, and no child changed from `before`.
async fn assert_render_refused(
    operator: &Operator,
    admin: &Client,
    namespace: &str,
    reason: &str,
    details: &[&str],
    before: &BTreeMap<String, String>,
) -> Value {
    let cr = wait_for_sequencer(admin, namespace, "Rendered", "False", Some(reason)).await;
    let ready = condition(&cr, "Ready").expect("Ready");
    assert_eq!(ready["status"], "False", "{namespace}: {ready}");
    assert_eq!(ready["reason"], reason, "{namespace}: {ready}");
    let text = condition_message(&cr, "Rendered");
    for detail in details {
        assert!(
            text.contains(detail),
            "{namespace}: Rendered does not say {detail:?}: {text}"
        );
    }
    let event = wait_for_event(admin, namespace, "devnet-sequencer", reason).await;
    assert_eq!(event["type"], "Warning", "{namespace}: {event}");
    operator.settle(Duration::from_secs(2)).await;
    let after = versions(&children(admin, namespace).await);
    assert_eq!(
        &after, before,
        "{namespace}: children changed though the sequencer was refused ({reason})"
    );
    cr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_policy_blocks_a_violating_node_and_allows_a_complying_one() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("plugin-policy").await;
    let operator = Operator::start(&namespace).await;
    let example = wasm("example_chain_policy.wasm");
    let policy_id = plugin_id(EXAMPLE_POLICY, &example);
    upload(&admin, &namespace, &[("policy.wasm", &example)]).await;
    // The sequencer complies: images from OP Labs' registry, 16Gi for op-reth, no discovery.
    chain(
        &admin,
        &namespace,
        json!({"policies": [policy("policy.wasm", &example, "Fail")]}),
    )
    .await;
    let network = wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "PluginsReady",
        "True",
        Some("PluginsLoaded"),
    )
    .await;
    eprintln!(
        "PluginsReady: {}",
        condition_message(&network, "PluginsReady")
    );
    let sequencer = wait_for_sequencer(&admin, &namespace, "Applied", "True", None).await;
    assert_eq!(
        condition(&sequencer, "Rendered").unwrap()["status"],
        "True",
        "{}",
        sequencer["status"]
    );
    assert!(
        of(&children(&admin, &namespace).await, "devnet-sequencer")
            .contains_key("StatefulSet/devnet-sequencer")
    );
    operator.settle(Duration::from_secs(2)).await;
    let before = versions(&children(&admin, &namespace).await);

    // The replica keeps the network's shared 512Mi request for op-reth: below 16Gi. Nothing of
    // it is created.
    apply_node(&admin, &namespace, "devnet-replica", |_| {}).await;
    let replica = wait_for_condition(
        &admin,
        &namespace,
        "OpNode",
        "devnet-replica",
        "Rendered",
        "False",
        Some("PolicyViolation"),
    )
    .await;
    assert_eq!(
        condition(&replica, "Ready").unwrap()["reason"],
        "PolicyViolation"
    );
    let text = condition_message(&replica, "Rendered");
    assert!(
        text.starts_with(&format!(
            "policy {policy_id} refused the rendered objects: StatefulSet/devnet-replica: op-reth-minimum-memory: "
        )),
        "{text}"
    );
    assert!(text.contains("below 16Gi"), "{text}");
    let event = wait_for_event(&admin, &namespace, "devnet-replica", "PolicyViolation").await;
    assert_eq!(event["type"], "Warning");
    operator.settle(Duration::from_secs(2)).await;
    let now = versions(&children(&admin, &namespace).await);
    assert_eq!(now, before, "a child changed for the refused replica");

    // The sequencer turns p2p discovery on: refused, and its running children stay as they are.
    patch(
        &admin,
        &namespace,
        "optimism.io/v1alpha1",
        "OpNode",
        "devnet-sequencer",
        json!({"spec": {"opNode": {"p2p": {"discovery": {"enabled": true}}}}}),
    )
    .await;
    let cr = assert_render_refused(
        &operator,
        &admin,
        &namespace,
        "PolicyViolation",
        &[
            &format!("policy {policy_id} refused the rendered objects: "),
            "StatefulSet/devnet-sequencer: sequencer-no-p2p-discovery: ",
        ],
        &before,
    )
    .await;
    assert!(
        !condition_message(&cr, "Rendered").contains("op-reth-minimum-memory"),
        "the complying op-reth was reported"
    );
    let metrics = operator.context.metrics_text();
    assert!(
        metrics.contains(
            "opstack_operator_plugin_renders_total{kind=\"OpNode\",reason=\"PolicyViolation\"}"
        ),
        "{metrics}"
    );

    // Back within the rules: applied again.
    patch(
        &admin,
        &namespace,
        "optimism.io/v1alpha1",
        "OpNode",
        "devnet-sequencer",
        json!({"spec": {"opNode": {"p2p": {"discovery": {"enabled": false}}}}}),
    )
    .await;
    wait_for_sequencer(&admin, &namespace, "Rendered", "True", None).await;
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_renderer_output_is_applied_with_its_provenance() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("plugin-renderer").await;
    let operator = Operator::start(&namespace).await;
    let example = wasm("example_chain_renderer.wasm");
    let id = plugin_id(EXAMPLE_RENDERER, &example);
    upload(&admin, &namespace, &[("renderer.wasm", &example)]).await;
    chain(
        &admin,
        &namespace,
        json!({"renderer": renderer("renderer.wasm", &example)}),
    )
    .await;
    wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "PluginsReady",
        "True",
        Some("PluginsLoaded"),
    )
    .await;
    let cr = wait_for_sequencer(&admin, &namespace, "Applied", "True", None).await;
    let rendered = condition_message(&cr, "Rendered");
    assert!(rendered.contains(&id), "Rendered: {rendered}");
    wait_rendered_by(&operator, &admin, &namespace, &id).await;

    let children = of(&children(&admin, &namespace).await, "devnet-sequencer");
    // The bundled renderer's objects and the example's sequencer PodDisruptionBudget.
    for expected in [
        "StatefulSet/devnet-sequencer",
        "Service/devnet-sequencer",
        "PodDisruptionBudget/devnet-sequencer-pdb",
    ] {
        assert!(
            children.contains_key(expected),
            "{expected} missing: {:?}",
            children.keys()
        );
    }
    assert_eq!(
        children["PodDisruptionBudget/devnet-sequencer-pdb"]["spec"]["maxUnavailable"],
        0
    );
    for (key, child) in &children {
        let metadata = &child["metadata"];
        assert_eq!(metadata["annotations"][RENDERED_BY], id.as_str(), "{key}");
        assert_eq!(metadata["labels"][CHAIN_LABEL.0], CHAIN_LABEL.1, "{key}");
        assert_eq!(
            metadata["annotations"][CHAIN_ANNOTATION.0], CHAIN_ANNOTATION.1,
            "{key}"
        );
        // The host's labels and owner are stamped whoever rendered.
        assert_eq!(
            metadata["labels"]["app.kubernetes.io/managed-by"], "opstack-operator",
            "{key}"
        );
        assert_eq!(metadata["ownerReferences"][0]["name"], "devnet-sequencer");
    }
    let template = &children["StatefulSet/devnet-sequencer"]["spec"]["template"]["metadata"];
    assert_eq!(template["labels"][CHAIN_LABEL.0], CHAIN_LABEL.1);
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_map_bytes_swapped_without_the_digest_change_nothing_and_say_why() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("plugin-swap").await;
    let operator = Operator::start(&namespace).await;
    let bundled = chain_rendered_by_uploaded_bundled(&operator, &admin, &namespace).await;
    let before = versions(&children(&admin, &namespace).await);

    // Someone swaps the bytes (here for the example renderer) and leaves the digest.
    let swapped = wasm("example_chain_renderer.wasm");
    upload(&admin, &namespace, &[("renderer.wasm", &swapped)]).await;
    let network = wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "PluginsReady",
        "False",
        Some("PluginDigestMismatch"),
    )
    .await;
    let why = condition_message(&network, "PluginsReady");
    let (pinned, found) = (sha256_hex(&bundled), sha256_hex(&swapped));
    for part in ["spec.plugins.opNode.renderer", PLUGINS, &pinned, &found] {
        assert!(
            why.contains(part),
            "PluginsReady does not name {part}: {why}"
        );
    }
    assert!(
        operator.context.runtime.loaded(&found).is_none(),
        "bytes that do not match the pinned digest were compiled"
    );
    assert_render_refused(
        &operator,
        &admin,
        &namespace,
        "PluginDigestMismatch",
        &["spec.plugins.opNode.renderer"],
        &before,
    )
    .await;
    assert!(
        of(&children(&admin, &namespace).await, "devnet-sequencer")
            .values()
            .all(|c| c["metadata"]["labels"][CHAIN_LABEL.0].is_null()),
        "the swapped renderer's output reached the cluster"
    );

    // The right bytes back: loaded and ready again, without a restart.
    upload(&admin, &namespace, &[("renderer.wasm", &bundled)]).await;
    wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "PluginsReady",
        "True",
        Some("PluginsLoaded"),
    )
    .await;
    wait_for_sequencer(&admin, &namespace, "Rendered", "True", None).await;
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_config_map_change_wakes_its_network_and_dependents_directly() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("plugin-wake").await;
    let operator = Operator::start(&namespace).await;
    chain_rendered_by_uploaded_bundled(&operator, &admin, &namespace).await;
    let network_version = get_cr(&admin, &namespace, "OptimismNetwork", "devnet").await["metadata"]
        ["resourceVersion"]
        .clone();

    // A label on the plugins ConfigMap changes nothing the network or its nodes render, so the
    // network is not written: an OpNode reconcile can only come from the ConfigMap's own watch.
    let networks = operator.context.reconciles.get("OptimismNetwork");
    let nodes = operator.context.reconciles.get("OpNode");
    Api::<ConfigMap>::namespaced(admin.clone(), &namespace)
        .patch(
            PLUGINS,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    wait_for_reconciles(&operator, "OptimismNetwork", networks).await;
    wait_for_reconciles(&operator, "OpNode", nodes).await;
    operator.settle(Duration::from_secs(2)).await;
    assert_eq!(
        get_cr(&admin, &namespace, "OptimismNetwork", "devnet").await["metadata"]["resourceVersion"],
        network_version,
        "the network was written, so the OpNode may have been woken through it"
    );
    operator.stop().await;
}

/// The `RendererChanged` Event about the sequencer whose note names `new_id`.
async fn wait_for_renderer_changed(admin: &Client, namespace: &str, new_id: &str) -> Value {
    let started = Instant::now();
    loop {
        let events = events_about(admin, namespace, "devnet-sequencer", "RendererChanged").await;
        if let Some(event) = events
            .into_iter()
            .find(|e| e["note"].as_str().is_some_and(|n| n.contains(new_id)))
        {
            return event;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "no RendererChanged Event naming {new_id}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The etcd revision an object was last written at: on this control plane (one etcd, no
/// cache layer in between) resourceVersions are etcd revisions, one counter for every object,
/// so they order writes across kinds.
fn revision(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("resourceVersion of {}", object["metadata"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_renderer_with_its_digest_is_applied_without_restart_after_its_shadow_diff() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("plugin-upgrade").await;
    let operator = Operator::start(&namespace).await;
    let bundled = chain_rendered_by_uploaded_bundled(&operator, &admin, &namespace).await;
    let old_id = plugin_id(BUNDLED_OP_NODE, &bundled);
    let before = of(&children(&admin, &namespace).await, "devnet-sequencer");

    // New bytes and their digest: the example renderer.
    let example = wasm("example_chain_renderer.wasm");
    let new_id = plugin_id(EXAMPLE_RENDERER, &example);
    upload(&admin, &namespace, &[("renderer.wasm", &example)]).await;
    apply_network(
        &admin,
        &namespace,
        json!({"renderer": renderer("renderer.wasm", &example)}),
    )
    .await;
    wait_rendered_by(&operator, &admin, &namespace, &new_id).await;

    let event = wait_for_renderer_changed(&admin, &namespace, &new_id).await;
    assert_eq!(event["type"], "Normal", "{event}");
    let note = event["note"].as_str().unwrap();
    assert!(
        note.contains(&old_id),
        "the old renderer is not named: {note}"
    );
    assert!(
        note.contains("StatefulSet/devnet-sequencer"),
        "no object-level diff: {note}"
    );
    // Reported first: every child the new renderer wrote was written after the Event.
    let after = of(&children(&admin, &namespace).await, "devnet-sequencer");
    let rewritten: Vec<&Value> = after
        .iter()
        .filter(|(k, v)| before.get(*k).is_none_or(|b| revision(b) != revision(v)))
        .map(|(_, v)| v)
        .collect();
    assert!(!rewritten.is_empty(), "nothing was rewritten");
    let first_write = rewritten.iter().map(|v| revision(v)).min().unwrap();
    assert!(
        revision(&event) < first_write,
        "the diff (revision {}) was reported after the first apply (revision {first_write})",
        revision(&event)
    );
    assert!(after.contains_key("PodDisruptionBudget/devnet-sequencer-pdb"));
    assert!(
        note.contains("PodDisruptionBudget/devnet-sequencer-pdb: added"),
        "{note}"
    );
    // /metrics counts the new renderer's calls under its own digest.
    let metrics = operator.context.metrics_text();
    let calls = format!(
        "opstack_operator_plugin_calls_total{{plugin=\"{EXAMPLE_RENDERER}\",sha256=\"{}\",call=\"render\",result=\"ok\"}}",
        sha256_hex(&example)
    );
    assert!(metrics.contains(&calls), "no {calls} in {metrics}");

    let cr = wait_for_sequencer(
        &admin,
        &namespace,
        "RendererChanged",
        "True",
        Some("DiffReported"),
    )
    .await;
    assert!(condition_message(&cr, "Rendered").contains(&new_id));
    assert_eq!(condition(&cr, "Ready").unwrap()["reason"], "PodsNotReady");
    // The same operator did it all.
    assert!(!operator.task.is_finished(), "the operator stopped");
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_approval_waits_for_the_approved_digest() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("plugin-approval").await;
    let operator = Operator::start(&namespace).await;
    let bundled = wasm("plugin_op_node.wasm");
    let old_id = plugin_id(BUNDLED_OP_NODE, &bundled);
    let approved = |bytes: &[u8], approved: &[u8]| {
        let mut r = renderer("renderer.wasm", bytes);
        r["requireApproval"] = json!(true);
        r["approvedSha256"] = json!(sha256_hex(approved));
        json!({ "renderer": r })
    };
    upload(&admin, &namespace, &[("renderer.wasm", &bundled)]).await;
    chain(&admin, &namespace, approved(&bundled, &bundled)).await;
    wait_rendered_by(&operator, &admin, &namespace, &old_id).await;
    let before = versions(&children(&admin, &namespace).await);

    // A new renderer with its digest, still approved at the old one: shown, not applied.
    let example = wasm("example_chain_renderer.wasm");
    let new_id = plugin_id(EXAMPLE_RENDERER, &example);
    upload(&admin, &namespace, &[("renderer.wasm", &example)]).await;
    apply_network(&admin, &namespace, approved(&example, &bundled)).await;
    let cr = wait_for_sequencer(
        &admin,
        &namespace,
        "Rendered",
        "False",
        Some("AwaitingApproval"),
    )
    .await;
    assert_eq!(
        condition(&cr, "Ready").unwrap()["reason"],
        "AwaitingApproval"
    );
    let changed = wait_for_sequencer(
        &admin,
        &namespace,
        "RendererChanged",
        "True",
        Some("AwaitingApproval"),
    )
    .await;
    eprintln!(
        "RendererChanged: {}",
        condition_message(&changed, "RendererChanged")
    );
    let event = wait_for_renderer_changed(&admin, &namespace, &new_id).await;
    let note = event["note"].as_str().unwrap();
    assert!(
        note.contains(&old_id) && note.contains("StatefulSet/devnet-sequencer"),
        "{note}"
    );
    operator.settle(Duration::from_secs(3)).await;
    assert_eq!(
        versions(&children(&admin, &namespace).await),
        before,
        "an unapproved renderer's output was applied"
    );

    // A restart forgets every loaded plugin, not the approval: still held, still unapplied.
    operator.stop().await;
    let held = versions(&children(&admin, &namespace).await);
    let operator = Operator::start(&namespace).await;
    let started = Instant::now();
    while operator.context.reconciles.get("OpNode") == 0 {
        assert!(
            started.elapsed() < TIMEOUT,
            "the new operator never reconciled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    operator.settle(Duration::from_secs(2)).await;
    let cr = get_cr(&admin, &namespace, "OpNode", "devnet-sequencer").await;
    assert_eq!(
        condition(&cr, "Rendered").unwrap()["reason"],
        "AwaitingApproval",
        "{}",
        cr["status"]
    );
    assert_eq!(
        versions(&children(&admin, &namespace).await),
        held,
        "a restart applied the unapproved renderer"
    );

    // Approved: applied.
    apply_network(&admin, &namespace, approved(&example, &example)).await;
    wait_rendered_by(&operator, &admin, &namespace, &new_id).await;
    let cr = wait_for_sequencer(&admin, &namespace, "Rendered", "True", None).await;
    assert_eq!(
        condition(&cr, "RendererChanged").unwrap()["reason"],
        "DiffReported",
        "{}",
        cr["status"]
    );
    operator.stop().await;
}

/// What a containment case does to the running sequencer's network.
#[derive(Clone, Copy)]
enum Upload {
    /// Uploads this plugin file as the renderer, with its digest.
    Renderer(&'static str),
    /// Names a key the ConfigMap does not have.
    MissingKey,
    /// Names a ConfigMap that does not exist.
    MissingConfigMap,
    /// Keeps the renderer and adds two policies, the second pinned at the wrong digest.
    SecondPolicyMismatched,
}

struct Case {
    /// Namespace prefix.
    name: &'static str,
    upload: Upload,
    /// The sequencer's Rendered reason.
    reason: &'static str,
    /// Whether loading fails, so the network's PluginsReady says the same reason.
    load_failure: bool,
    /// What the message must contain, distinguishing this case from the others.
    details: &'static [&'static str],
}

/// Converges a sequencer with the bundled op-node renderer uploaded, then points the network at
/// the case's plugin; asserts the case's reason and that no child changed.
async fn contain(case: &Case) {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane
        .create_test_namespace(&format!("contain-{}", case.name))
        .await;
    let operator = Operator::start(&namespace).await;
    // Another chain's key, in the same namespace: existing is not declaring.
    create_secret(
        &admin,
        &namespace,
        "other-chain-batcher-key",
        &[("private-key", "00")],
    )
    .await;
    let bundled = chain_rendered_by_uploaded_bundled(&operator, &admin, &namespace).await;
    wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "PluginsReady",
        "True",
        Some("PluginsLoaded"),
    )
    .await;
    let before = versions(&children(&admin, &namespace).await);

    let (plugins, field, config_map) = match case.upload {
        Upload::Renderer(file) => {
            let bytes = wasm(file);
            upload_binary_config_map(&admin, &namespace, UPLOADED, &[("plugin.wasm", &bytes)])
                .await;
            let mut r = renderer("plugin.wasm", &bytes);
            r["configMapRef"]["name"] = json!(UPLOADED);
            (
                json!({ "renderer": r }),
                "spec.plugins.opNode.renderer",
                UPLOADED,
            )
        }
        Upload::MissingKey => (
            json!({"renderer": renderer("no-such-key.wasm", &bundled)}),
            "spec.plugins.opNode.renderer",
            PLUGINS,
        ),
        Upload::MissingConfigMap => {
            let mut r = renderer("renderer.wasm", &bundled);
            r["configMapRef"]["name"] = json!("no-such-plugins");
            (
                json!({ "renderer": r }),
                "spec.plugins.opNode.renderer",
                "no-such-plugins",
            )
        }
        Upload::SecondPolicyMismatched => {
            // Policies over the bundled renderer: a ConfigMap holds at most 1 MiB, about one
            // renderer, so the renderer is not uploaded beside them.
            let example = wasm("example_chain_policy.wasm");
            upload(&admin, &namespace, &[("policy.wasm", &example)]).await;
            let mut wrong = policy("policy.wasm", &example, "Fail");
            wrong["sha256"] = json!(sha256_hex(b"not the policy"));
            (
                json!({
                    "policies": [policy("policy.wasm", &example, "Fail"), wrong],
                }),
                "spec.plugins.opNode.policies[1]",
                PLUGINS,
            )
        }
    };
    apply_network(&admin, &namespace, plugins).await;
    if case.load_failure {
        let network = wait_for_condition(
            &admin,
            &namespace,
            "OptimismNetwork",
            "devnet",
            "PluginsReady",
            "False",
            Some(case.reason),
        )
        .await;
        let why = condition_message(&network, "PluginsReady");
        for (what, part) in [("field", field), ("ConfigMap", config_map)] {
            assert!(
                why.contains(part),
                "{}: PluginsReady does not name the {what} {part}: {why}",
                case.name
            );
        }
    }
    let cr = assert_render_refused(
        &operator,
        &admin,
        &namespace,
        case.reason,
        case.details,
        &before,
    )
    .await;
    eprintln!("{}: {}", case.name, condition_message(&cr, "Rendered"));
    operator.stop().await;
}

/// Runs the cases concurrently, each in its own namespace with its own operator; every case
/// runs to its end, and the failing ones are named together.
async fn contain_all(cases: &[Case]) {
    use futures::FutureExt;
    let results = futures::future::join_all(
        cases
            .iter()
            .map(|case| std::panic::AssertUnwindSafe(contain(case)).catch_unwind()),
    )
    .await;
    let failed: Vec<&str> = cases
        .iter()
        .zip(&results)
        .filter(|(_, result)| result.is_err())
        .map(|(case, _)| case.name)
        .collect();
    assert!(
        failed.is_empty(),
        "failed cases (see their panics above): {failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_malicious_uploaded_plugin_is_contained_with_its_own_reason() {
    let started = Instant::now();
    contain_all(&[
        Case {
            name: "loop",
            upload: Upload::Renderer("misbehaving-endless-loop.wasm"),
            reason: "PluginTimeout",
            load_failure: false,
            details: &["did not finish within"],
        },
        Case {
            name: "memory",
            upload: Upload::Renderer("misbehaving-memory-bomb.wasm"),
            reason: "ResourceLimitExceeded",
            load_failure: false,
            details: &["memory"],
        },
        Case {
            name: "huge",
            upload: Upload::Renderer("misbehaving-huge-output.wasm"),
            reason: "OutputTooLarge",
            load_failure: false,
            details: &["output too large"],
        },
        Case {
            name: "kind",
            upload: Upload::Renderer("misbehaving-forbidden-kind.wasm"),
            reason: "OutputRefused",
            load_failure: false,
            details: &[
                "ClusterRoleBinding/misbehaving-cluster-admin: kind rbac.authorization.k8s.io/v1/ClusterRoleBinding is not allowed for a OpNode",
            ],
        },
        Case {
            name: "namespace",
            upload: Upload::Renderer("misbehaving-foreign-namespace.wasm"),
            reason: "OutputRefused",
            load_failure: false,
            details: &[
                "namespace \"kube-system\" is not the resource's namespace",
            ],
        },
        Case {
            name: "privileged",
            upload: Upload::Renderer("misbehaving-privileged-pod.wasm"),
            reason: "OutputRefused",
            load_failure: false,
            details: &[
                "StatefulSet/devnet-sequencer: restricted control 2 (Privileged)",
                "(Host namespaces): hostNetwork",
                "(HostPath volumes)",
            ],
        },
        Case {
            name: "secret",
            upload: Upload::Renderer("misbehaving-foreign-secret.wasm"),
            reason: "OutputRefused",
            load_failure: false,
            details: &[
                "references Secret \"other-chain-batcher-key\", which this resource neither declares nor owns",
            ],
        },
        Case {
            name: "major",
            upload: Upload::Renderer("misbehaving-wrong-major.wasm"),
            reason: "IncompatibleContract",
            load_failure: true,
            details: &["spec.plugins.opNode.renderer"],
        },
        Case {
            name: "import",
            upload: Upload::Renderer("misbehaving-forbidden-import.wasm"),
            reason: "ForbiddenImport",
            load_failure: true,
            details: &["spec.plugins.opNode.renderer"],
        },
    ])
    .await;
    eprintln!("9 containment cases in {:?}", started.elapsed());

    // Nothing outside the envelope reached the apiserver, anywhere (as admin).
    let admin = control_plane().admin_client();
    let bindings = Api::<ClusterRoleBinding>::all(admin.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        bindings
            .iter()
            .all(|b| !b.name_any().starts_with("misbehaving")),
        "a plugin's ClusterRoleBinding exists"
    );
    let config_maps = Api::<ConfigMap>::all(admin.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let hijacked: Vec<String> = config_maps
        .iter()
        .filter(|c| {
            c.name_any().starts_with("misbehaving")
                || c.namespace().as_deref() == Some("kube-system")
                    && c.data.as_ref().is_some_and(|d| d.contains_key("coredns"))
        })
        .map(|c| format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any()))
        .collect();
    assert!(hijacked.is_empty(), "plugin ConfigMaps exist: {hijacked:?}");
    let workloads = Api::<StatefulSet>::all(admin.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    for set in &workloads {
        let text = serde_json::to_string(set).unwrap();
        let id = format!("{}/{}", set.namespace().unwrap_or_default(), set.name_any());
        assert_ne!(set.name_any(), "misbehaving", "{id}");
        assert!(
            !text.contains("other-chain-batcher-key"),
            "{id} mounts the foreign Secret"
        );
        assert!(!text.contains("\"privileged\":true"), "{id} is privileged");
        assert!(
            !text.contains("\"hostNetwork\":true"),
            "{id} uses the host network"
        );
        assert!(!text.contains("\"hostPath\""), "{id} mounts a host path");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_unusable_plugin_reference_is_refused_with_its_own_reason() {
    contain_all(&[
        Case {
            name: "no-config-map",
            upload: Upload::MissingConfigMap,
            reason: "PluginConfigMapNotFound",
            load_failure: true,
            details: &["spec.plugins.opNode.renderer", "no-such-plugins"],
        },
        Case {
            name: "policy-digest",
            upload: Upload::SecondPolicyMismatched,
            reason: "PluginDigestMismatch",
            load_failure: true,
            details: &["spec.plugins.opNode.policies[1]"],
        },
        Case {
            name: "no-key",
            upload: Upload::MissingKey,
            reason: "PluginKeyNotFound",
            load_failure: true,
            details: &["spec.plugins.opNode.renderer", "no-such-key.wasm"],
        },
        Case {
            name: "role-mismatch",
            upload: Upload::Renderer("test_plugin_policy.wasm"),
            reason: "PluginRoleMismatch",
            load_failure: true,
            details: &["spec.plugins.opNode.renderer"],
        },
        Case {
            name: "kind-mismatch",
            upload: Upload::Renderer("plugin_op_batcher.wasm"),
            reason: "PluginKindMismatch",
            load_failure: true,
            details: &["spec.plugins.opNode.renderer"],
        },
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_policy_blocks_the_apply_unless_its_failure_policy_is_ignore() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("policy-fails").await;
    let operator = Operator::start(&namespace).await;
    // The test policy (images from OP Labs' registry) fails on purpose when the checked CR
    // carries this annotation (tests/test-plugins/policy).
    let test_policy = wasm("test_plugin_policy.wasm");
    let policy_id = plugin_id("test-images-from-our-registry", &test_policy);
    upload(&admin, &namespace, &[("policy.wasm", &test_policy)]).await;
    chain(
        &admin,
        &namespace,
        json!({"policies": [policy("policy.wasm", &test_policy, "Fail")]}),
    )
    .await;
    wait_for_sequencer(&admin, &namespace, "Applied", "True", None).await;
    operator.settle(Duration::from_secs(2)).await;
    let before = versions(&children(&admin, &namespace).await);

    // Fail (the default): the policy's own error blocks the apply.
    let failing = |node: &mut Value| {
        big_op_reth(node);
        node["metadata"]["annotations"]["test.optimism.io/policy-fails"] = json!("error");
    };
    apply_node(&admin, &namespace, "devnet-sequencer", failing).await;
    assert_render_refused(
        &operator,
        &admin,
        &namespace,
        "PolicyFailed",
        &[&policy_id, "failing on purpose", "failurePolicy is Fail"],
        &before,
    )
    .await;

    // Ignore: the same failure lets the render through, as a warning on Rendered and an Event.
    apply_network(
        &admin,
        &namespace,
        json!({"policies": [policy("policy.wasm", &test_policy, "Ignore")]}),
    )
    .await;
    let sequencer =
        wait_for_sequencer(&admin, &namespace, "Rendered", "True", Some("Rendered")).await;
    let rendered = condition_message(&sequencer, "Rendered");
    assert!(
        rendered.contains("failurePolicy: Ignore") && rendered.contains(&policy_id),
        "{rendered}"
    );
    let event = wait_for_event(&admin, &namespace, "devnet-sequencer", "RenderWarnings").await;
    assert_eq!(event["type"], "Warning", "{event}");
    operator.settle(Duration::from_secs(2)).await;
    assert_eq!(
        versions(&children(&admin, &namespace).await),
        before,
        "the ignored failure changed what the sequencer renders"
    );
}

/// The CR named `name` of the devnet example, as JSON.
fn devnet_object(name: &str) -> Value {
    let text = devnet_subset(|_, n| n == name);
    serde_yaml::from_str(text.trim_start_matches("---\n")).expect("YAML")
}

/// One of chain A's OpNodes: a copy of the devnet's `template` OpNode in network `a`, carrying
/// the attack the neighbour renderer makes for it.
fn attacker(template: &str, name: &str, attack: &str) -> Value {
    let mut node = devnet_object(template);
    node["metadata"] = json!({"name": name, "annotations": {
        "test.optimism.io/attack": attack,
        "test.optimism.io/victim": "devnet-sequencer",
    }});
    node["spec"]["optimismNetworkRef"]["name"] = json!("a");
    if node["spec"]["sequencerRef"].is_object() {
        node["spec"]["sequencerRef"]["name"] = json!("devnet");
    }
    node
}

/// Each child and Secret of chain B (the devnet's sequencer) with its resourceVersion.
async fn chain_b(admin: &Client, namespace: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = children(admin, namespace)
        .await
        .into_iter()
        .filter(|(_, object)| {
            object["metadata"]["labels"]["app.kubernetes.io/part-of"] == "devnet"
                && object["metadata"]["labels"]["app.kubernetes.io/instance"] == "devnet-sequencer"
        })
        .map(|(key, object)| {
            let version = object["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default();
            (key, version.to_string())
        })
        .collect();
    let secrets = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), namespace);
    for name in ["devnet-sequencer-jwt", "devnet-sequencer-p2p"] {
        let secret = secrets.get(name).await.expect("chain B's Secret");
        out.insert(
            format!("Secret/{name}"),
            secret.resource_version().unwrap_or_default(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chains_uploaded_renderer_cannot_take_over_select_mount_or_impersonate_another_chains_objects()
 {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("two-chains").await;
    let operator = Operator::start(&namespace).await;
    // Chain B: the devnet with the bundled renderer, settled.
    network_and_sequencer(&admin, &namespace).await;
    operator.settle(Duration::from_secs(2)).await;
    let before = chain_b(&admin, &namespace).await;
    assert!(
        before.contains_key("StatefulSet/devnet-sequencer")
            && before.contains_key("Service/devnet-sequencer"),
        "{before:?}"
    );

    // Chain A, in the same namespace: its network names a hostile renderer for its OpNodes.
    let neighbour = wasm("misbehaving-neighbour.wasm");
    upload_binary_config_map(&admin, &namespace, UPLOADED, &[("plugin.wasm", &neighbour)]).await;
    let mut network = devnet_object("devnet");
    network["metadata"] = json!({"name": "a"});
    let mut stanza = renderer("plugin.wasm", &neighbour);
    stanza["configMapRef"]["name"] = json!(UPLOADED);
    network["spec"]["plugins"] = json!({"opNode": {"renderer": stanza}});
    // Its sequencer is named so that the victim's names fall within its own prefix.
    let attackers = [
        attacker("devnet-sequencer", "devnet", "take-over"),
        attacker("devnet-replica", "a-select", "select"),
        attacker("devnet-replica", "a-mount", "mount"),
        attacker("devnet-replica", "a-impersonate", "impersonate"),
    ];
    let mut yaml = String::new();
    for object in std::iter::once(&network).chain(&attackers) {
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml::to_string(object).expect("YAML"));
    }
    apply_yaml(&admin, &yaml, Some(&namespace)).await;

    for (name, reason, details) in [
        (
            "devnet",
            "NotOwned",
            &["Service/devnet-sequencer"] as &[&str],
        ),
        (
            "a-select",
            "OutputRefused",
            &[
                "Service/a-select-rpc: spec.selector",
                "app.kubernetes.io/instance=a-select",
            ],
        ),
        (
            "a-mount",
            "OutputRefused",
            &[
                "references Secret \"devnet-sequencer-jwt\", which this resource neither declares nor owns",
                "uses persistentVolumeClaim",
            ],
        ),
    ] {
        let cr = wait_for_condition(
            &admin,
            &namespace,
            "OpNode",
            name,
            "Rendered",
            "False",
            Some(reason),
        )
        .await;
        let text = condition_message(&cr, "Rendered");
        for detail in details {
            assert!(
                text.contains(detail),
                "{name}: Rendered does not say {detail:?}: {text}"
            );
        }
        wait_for_event(&admin, &namespace, name, reason).await;
    }
    // Impersonation is neutralised, not refused: its pods wear its own identity and chain.
    wait_for_condition(
        &admin,
        &namespace,
        "OpNode",
        "a-impersonate",
        "Applied",
        "True",
        None,
    )
    .await;
    let impersonator = Api::<StatefulSet>::namespaced(admin.clone(), &namespace)
        .get("a-impersonate")
        .await
        .expect("the impersonator's StatefulSet");
    let labels = impersonator
        .spec
        .template
        .metadata
        .and_then(|meta| meta.labels)
        .unwrap_or_default();
    assert_eq!(
        labels["app.kubernetes.io/instance"], "a-impersonate",
        "{labels:?}"
    );
    assert_eq!(labels["app.kubernetes.io/part-of"], "a", "{labels:?}");
    // So none of chain B's Services (its endpoints) nor its NetworkPolicy's chain peers select
    // chain A's pods.
    let selects = |selector: &Value| {
        selector.as_object().is_some_and(|s| {
            s.iter()
                .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
        })
    };
    for (key, object) in children(&admin, &namespace).await {
        if object["metadata"]["labels"]["app.kubernetes.io/part-of"] != "devnet" {
            continue;
        }
        if key.starts_with("Service/") {
            assert!(
                !selects(&object["spec"]["selector"]),
                "{key} selects chain A's pods"
            );
        }
        for rule in object["spec"]["ingress"].as_array().into_iter().flatten() {
            for peer in rule["from"].as_array().into_iter().flatten() {
                assert!(
                    !selects(&peer["podSelector"]["matchLabels"])
                        || !peer["namespaceSelector"].is_null(),
                    "{key} admits chain A's pods"
                );
            }
        }
    }

    operator.settle(Duration::from_secs(2)).await;
    assert_eq!(
        chain_b(&admin, &namespace).await,
        before,
        "chain B's objects or Secrets changed"
    );
    operator.stop().await;
}
