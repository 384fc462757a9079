//! The controllers on the real control plane, running in-process as the operator's service
//! account with the ClusterRole from `deploy/rbac.yaml`. No kubelet and no controller-manager:
//! nothing but the operator writes to the children, so their resourceVersions count its writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use opstack_crds::{OpBatcher, OpChallenger, OpNode, OpProposer, OptimismNetwork};
use opstack_operator::controller::{self, Settings};
use opstack_test_harness::{ControlPlane, ControlPlaneConfig};
use serde_json::{Value, json};

// The real L1 of the discovery tests (geth --dev with the SystemConfig test doubles), shared
// with the host's own discovery tests rather than copied.
#[path = "../../../host/tests/discovery_support/mod.rs"]
mod discovery_support;
mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_the_devnet_example_produces_owned_labelled_children_and_conditions() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane
        .create_test_namespace("reconcile-devnet")
        .await;
    let operator = Operator::start(&namespace).await;
    let started = Instant::now();
    devnet(&admin, &namespace).await;
    eprintln!("devnet converged in {:?}", started.elapsed());
    let metrics = operator.context.metrics_text();
    for kind in [
        "OptimismNetwork",
        "OpNode",
        "OpBatcher",
        "OpProposer",
        "OpChallenger",
    ] {
        assert!(
            metrics.contains(&format!(
                "opstack_operator_reconciles_total{{kind=\"{kind}\",result=\"ok\"}}"
            )) && metrics.contains(&format!(
                "opstack_operator_plugin_renders_total{{kind=\"{kind}\",reason=\"Rendered\"}}"
            )),
            "{kind}: {metrics}"
        );
    }

    let children = children(&admin, &namespace).await;
    for expected in [
        "StatefulSet/devnet-sequencer",
        "Service/devnet-sequencer",
        "Service/devnet-sequencer-p2p",
        "StatefulSet/devnet-replica",
        "Service/devnet-replica",
        "Service/devnet-replica-p2p",
        "Deployment/devnet-batcher",
        "Deployment/devnet-proposer",
        "StatefulSet/devnet-challenger",
        "Service/devnet-challenger",
    ] {
        assert!(
            children.contains_key(expected),
            "{expected} missing; children: {:?}",
            children.keys()
        );
    }
    let mut uids = BTreeMap::new();
    for (kind, name) in DEVNET_CRS {
        let cr = get_cr(&admin, &namespace, kind, name).await;
        uids.insert(cr["metadata"]["uid"].as_str().unwrap().to_string(), *name);
        let generation = cr["metadata"]["generation"].clone();
        assert_eq!(
            cr["status"]["observedGeneration"], generation,
            "{kind} {name}"
        );
        for c in cr["status"]["conditions"].as_array().unwrap() {
            assert_eq!(c["observedGeneration"], generation, "{kind} {name} {c}");
            assert!(
                c["reason"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .next()
                    .unwrap()
                    .is_ascii_uppercase()
            );
        }
        let expected: &[&str] = if *kind == "OptimismNetwork" {
            &["ConfigurationValid", "ContractsDiscovered", "Ready"]
        } else {
            &["Valid", "Rendered", "Applied", "WorkloadReady", "Ready"]
        };
        for type_ in expected {
            assert!(
                condition(&cr, type_).is_some(),
                "{kind} {name} has no {type_}"
            );
        }
        if *kind != "OptimismNetwork" {
            assert_eq!(condition(&cr, "Applied").unwrap()["status"], "True");
            assert_eq!(cr["status"]["phase"], "Pending");
        }
        // No pod runs without a node: the live conditions say so instead of guessing.
        let live = match *kind {
            "OpNode" => Some("Synced"),
            "OpBatcher" => Some("BatchesSubmitted"),
            "OpProposer" => Some("ProposalsSubmitted"),
            "OpChallenger" => Some("GamesMonitored"),
            _ => None,
        };
        if let Some(type_) = live {
            let c = condition(&cr, type_).unwrap_or_else(|| panic!("{kind} {name} has no {type_}"));
            assert_eq!(
                (c["status"].as_str(), c["reason"].as_str()),
                (Some("Unknown"), Some("PodsNotReady")),
                "{kind} {name} {c}"
            );
        }
    }
    for (key, child) in &children {
        let owners = child["metadata"]["ownerReferences"]
            .as_array()
            .unwrap_or_else(|| panic!("{key} has no owner"));
        assert_eq!(owners.len(), 1, "{key}");
        let owner = uids
            .get(owners[0]["uid"].as_str().unwrap())
            .unwrap_or_else(|| panic!("{key}: owner is not a devnet CR"));
        assert_eq!(owners[0]["controller"], true, "{key}");
        let labels = &child["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/instance"], *owner, "{key}");
        assert_eq!(labels["app.kubernetes.io/part-of"], "devnet", "{key}");
        assert_eq!(
            labels["app.kubernetes.io/managed-by"], "opstack-operator",
            "{key}"
        );
    }
    // The host's engine JWT: 64 lowercase hex characters, no 0x, no newline.
    let jwt = Api::<Secret>::namespaced(admin.clone(), &namespace)
        .get("devnet-sequencer-jwt")
        .await
        .expect("the generated JWT");
    let value = &jwt.data.unwrap()["jwt.hex"].0;
    assert_eq!(value.len(), 64);
    assert!(
        value
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    );
    assert!(
        events_about(&admin, &namespace, "devnet-sequencer", "Applied")
            .await
            .len()
            == 1
    );
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reconcile_of_an_unchanged_cr_makes_zero_writes() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane
        .create_test_namespace("reconcile-zero-writes")
        .await;
    let _ = tracing_subscriber::fmt()
        .with_env_filter("opstack_operator=debug")
        .with_test_writer()
        .try_init();
    let operator = Operator::start(&namespace).await;
    devnet(&admin, &namespace).await;
    operator.settle(Duration::from_secs(3)).await;

    let before = versions(&children(&admin, &namespace).await);
    let writes = operator.context.writes.get();
    let client = control_plane.operator_client();
    let mut crs_before = BTreeMap::new();
    for (kind, name) in DEVNET_CRS {
        crs_before.insert(
            *name,
            get_cr(&admin, &namespace, kind, name).await["metadata"]["resourceVersion"].clone(),
        );
    }
    let mut timings = Vec::new();
    for _ in 0..100 {
        for (kind, name) in DEVNET_CRS {
            let started = Instant::now();
            let api = |n: &str| -> (Client, String, String) {
                (client.clone(), namespace.clone(), n.to_string())
            };
            let (c, ns, n) = api(name);
            let action = match *kind {
                "OptimismNetwork" => {
                    controller::reconcile(
                        Arc::new(
                            Api::<OptimismNetwork>::namespaced(c, &ns)
                                .get(&n)
                                .await
                                .unwrap(),
                        ),
                        operator.context.clone(),
                    )
                    .await
                }
                "OpNode" => {
                    controller::reconcile(
                        Arc::new(Api::<OpNode>::namespaced(c, &ns).get(&n).await.unwrap()),
                        operator.context.clone(),
                    )
                    .await
                }
                "OpBatcher" => {
                    controller::reconcile(
                        Arc::new(Api::<OpBatcher>::namespaced(c, &ns).get(&n).await.unwrap()),
                        operator.context.clone(),
                    )
                    .await
                }
                "OpProposer" => {
                    controller::reconcile(
                        Arc::new(Api::<OpProposer>::namespaced(c, &ns).get(&n).await.unwrap()),
                        operator.context.clone(),
                    )
                    .await
                }
                _ => {
                    controller::reconcile(
                        Arc::new(
                            Api::<OpChallenger>::namespaced(c, &ns)
                                .get(&n)
                                .await
                                .unwrap(),
                        ),
                        operator.context.clone(),
                    )
                    .await
                }
            };
            action.unwrap_or_else(|e| panic!("reconcile {kind} {name}: {e}"));
            timings.push(started.elapsed());
        }
    }
    assert_eq!(
        operator.context.writes.get() - writes,
        0,
        "writes during 600 reconciles of unchanged CRs"
    );
    assert_eq!(
        versions(&children(&admin, &namespace).await),
        before,
        "a child changed"
    );
    for (kind, name) in DEVNET_CRS {
        assert_eq!(
            get_cr(&admin, &namespace, kind, name).await["metadata"]["resourceVersion"],
            crs_before[name],
            "{kind} {name} was written"
        );
    }
    timings.sort();
    eprintln!(
        "unchanged reconcile: median {:?}, max {:?} over {} reconciles; 0 writes",
        timings[timings.len() / 2],
        timings[timings.len() - 1],
        timings.len()
    );
    operator.stop().await;
}

/// Asserts `kind/name` is refused with `reason`, an Event says why, and nothing changed.
async fn assert_refused(
    operator: &Operator,
    admin: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
    reason: &str,
    before: &BTreeMap<String, String>,
) {
    let cr = wait_for_condition(admin, namespace, kind, name, "Ready", "False", Some(reason)).await;
    let valid = condition(&cr, "Valid").expect("a Valid condition");
    assert_eq!(valid["status"], "False");
    assert_eq!(valid["reason"], reason);
    let message = valid["message"].as_str().unwrap();
    assert!(
        message.starts_with("spec."),
        "the message names the field: {message}"
    );
    let event = wait_for_event(admin, namespace, name, reason).await;
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["note"], message);
    operator.settle(Duration::from_secs(2)).await;
    assert_eq!(
        &versions(&children(admin, namespace).await),
        before,
        "children changed"
    );
    let secrets = Api::<Secret>::namespaced(admin.clone(), namespace);
    assert!(
        secrets
            .get_opt(&format!("{name}-jwt"))
            .await
            .unwrap()
            .is_none(),
        "a refused CR got a generated Secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sequencer_is_refused_with_a_condition_an_event_and_no_child_change() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane
        .create_test_namespace("reconcile-second-sequencer")
        .await;
    let operator = Operator::start(&namespace).await;
    let before = network_and_sequencer(&admin, &namespace).await;
    let second = devnet_subset(|_, name| name == "devnet-sequencer")
        .replace("name: devnet-sequencer\n", "name: second-sequencer\n");
    apply_yaml(&admin, &second, Some(&namespace)).await;
    assert_refused(
        &operator,
        &admin,
        &namespace,
        "OpNode",
        "second-sequencer",
        "SecondSequencer",
        &before,
    )
    .await;
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cr_whose_child_name_is_taken_by_another_crs_child_is_refused_and_takes_nothing_over() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane
        .create_test_namespace("reconcile-name-taken")
        .await;
    let operator = Operator::start(&namespace).await;
    let before = network_and_sequencer(&admin, &namespace).await;
    let taken = children(&admin, &namespace).await["Service/devnet-sequencer-p2p"].clone();
    // A replica named like the sequencer's headless Service renders a Service of that name:
    // a valid render, whose apply would take over (and later prune) the sequencer's Service.
    let replica = devnet_subset(|_, name| name == "devnet-replica")
        .replace("name: devnet-replica\n", "name: devnet-sequencer-p2p\n");
    apply_yaml(&admin, &replica, Some(&namespace)).await;
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OpNode",
        "devnet-sequencer-p2p",
        "Ready",
        "False",
        Some("NotOwned"),
    )
    .await;
    let rendered = condition(&cr, "Rendered").expect("a Rendered condition");
    assert_eq!(rendered["reason"], "NotOwned");
    let message = rendered["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Service/devnet-sequencer-p2p (controlled by OpNode/devnet-sequencer)"),
        "{message}"
    );
    let event = wait_for_event(&admin, &namespace, "devnet-sequencer-p2p", "NotOwned").await;
    assert_eq!(event["type"], "Warning");
    operator.settle(Duration::from_secs(2)).await;
    let after = children(&admin, &namespace).await;
    assert_eq!(versions(&after), before, "a child changed or was created");
    assert_eq!(
        after["Service/devnet-sequencer-p2p"]["metadata"]["ownerReferences"],
        taken["metadata"]["ownerReferences"],
        "the sequencer's Service changed hands"
    );
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_pointing_at_a_missing_sequencer_is_refused_with_a_condition_an_event_and_no_child_change()
 {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane
        .create_test_namespace("reconcile-missing-sequencer")
        .await;
    let operator = Operator::start(&namespace).await;
    let before = network_and_sequencer(&admin, &namespace).await;
    let replica = devnet_subset(|_, name| name == "devnet-replica")
        .replace("name: devnet-sequencer\n", "name: no-such-sequencer\n");
    assert!(replica.contains("no-such-sequencer"));
    apply_yaml(&admin, &replica, Some(&namespace)).await;
    assert_refused(
        &operator,
        &admin,
        &namespace,
        "OpNode",
        "devnet-replica",
        "NodeNotFound",
        &before,
    )
    .await;
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batcher_without_its_key_secret_is_refused_with_a_condition_an_event_and_no_child_change()
{
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane
        .create_test_namespace("reconcile-batcher-key")
        .await;
    let operator = Operator::start(&namespace).await;
    let before = network_and_sequencer(&admin, &namespace).await;
    let mut batcher: Value =
        serde_yaml::from_str(&devnet_subset(|_, name| name == "devnet-batcher")).expect("YAML");
    batcher["spec"]["privateKey"]["secretRef"]["name"] = json!("missing-batcher-key");
    let batcher = serde_yaml::to_string(&batcher).expect("YAML");
    apply_yaml(&admin, &batcher, Some(&namespace)).await;
    assert_refused(
        &operator,
        &admin,
        &namespace,
        "OpBatcher",
        "devnet-batcher",
        "SecretNotFound",
        &before,
    )
    .await;
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_identity_cannot_list_secrets_mint_tokens_or_create_a_cluster_role_binding() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let control_plane = control_plane();
    let namespace = control_plane.create_test_namespace("reconcile-rbac").await;
    install_rbac(
        &control_plane.admin_client(),
        std::slice::from_ref(&namespace),
    )
    .await;
    let operator = control_plane.operator_client();
    let forbidden = |result: Result<(), kube::Error>, what: &str| match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    };
    let secrets = Api::<Secret>::namespaced(operator.clone(), &namespace);
    forbidden(
        secrets.list(&ListParams::default()).await.map(|_| ()),
        "list Secrets",
    );
    forbidden(
        Api::<Secret>::all(operator.clone())
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "list Secrets cluster-wide",
    );
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "opstack-operator-escalation"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "opstack-operator", "namespace": "opstack-system"}]
    }))
    .unwrap();
    forbidden(
        Api::<ClusterRoleBinding>::all(operator.clone())
            .create(&PostParams::default(), &binding)
            .await
            .map(|_| ()),
        "create a ClusterRoleBinding",
    );
    // No Secret rights outside the namespaces that bound them: a service-account-token Secret
    // in kube-system would mint a token for its controllers.
    let token: Secret = serde_json::from_value(json!({
        "metadata": {"name": "minted", "annotations": {"kubernetes.io/service-account.name": "default"}},
        "type": "kubernetes.io/service-account-token"
    }))
    .unwrap();
    forbidden(
        Api::<Secret>::namespaced(operator.clone(), "kube-system")
            .create(&PostParams::default(), &token)
            .await
            .map(|_| ()),
        "create a Secret in kube-system",
    );
    // What it does need still works: a Secret by name.
    assert!(
        secrets
            .get_opt("no-such-secret")
            .await
            .expect("get a Secret by name")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_cr_field_changes_exactly_the_affected_children() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane
        .create_test_namespace("reconcile-edit-cr")
        .await;
    let operator = Operator::start(&namespace).await;
    network_and_sequencer(&admin, &namespace).await;
    apply_yaml(
        &admin,
        &devnet_subset(|_, name| name == "devnet-batcher"),
        Some(&namespace),
    )
    .await;
    wait_for_condition(
        &admin,
        &namespace,
        "OpBatcher",
        "devnet-batcher",
        "Applied",
        "True",
        None,
    )
    .await;
    operator.settle(Duration::from_secs(2)).await;
    let before = versions(&children(&admin, &namespace).await);

    patch(
        &admin,
        &namespace,
        "optimism.io/v1alpha1",
        "OpBatcher",
        "devnet-batcher",
        json!({"spec": {"l1Transaction": {"numConfirmations": 6}}}),
    )
    .await;
    let batcher_version = before["Deployment/devnet-batcher"].clone();
    wait_for_children(
        &operator,
        &admin,
        &namespace,
        "the batcher's Deployment changing",
        |c| {
            c["Deployment/devnet-batcher"]["metadata"]["resourceVersion"]
                != batcher_version.as_str()
        },
    )
    .await;
    let after = versions(&children(&admin, &namespace).await);
    assert_eq!(
        changed(&before, &after),
        vec!["Deployment/devnet-batcher".to_string()]
    );
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OpBatcher",
        "devnet-batcher",
        "Applied",
        "True",
        None,
    )
    .await;
    assert_eq!(cr["status"]["observedGeneration"], 2);
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_child_by_hand_is_reverted_for_operator_owned_fields() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane
        .create_test_namespace("reconcile-edit-child")
        .await;
    let operator = Operator::start(&namespace).await;
    network_and_sequencer(&admin, &namespace).await;
    operator.settle(Duration::from_secs(2)).await;
    patch(
        &admin,
        &namespace,
        "apps/v1",
        "StatefulSet",
        "devnet-sequencer",
        json!({"spec": {"replicas": 3}}),
    )
    .await;
    wait_for_children(
        &operator,
        &admin,
        &namespace,
        "the StatefulSet's replicas going back to 1",
        |c| c["StatefulSet/devnet-sequencer"]["spec"]["replicas"] == 1,
    )
    .await;
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_cr_shows_paused_and_gets_no_writes_until_resumed() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("reconcile-pause").await;
    let operator = Operator::start(&namespace).await;
    network_and_sequencer(&admin, &namespace).await;
    operator.settle(Duration::from_secs(2)).await;
    let before = versions(&children(&admin, &namespace).await);

    patch(
        &admin,
        &namespace,
        "optimism.io/v1alpha1",
        "OpNode",
        "devnet-sequencer",
        json!({"metadata": {"annotations": {"optimism.io/paused": "true"}}}),
    )
    .await;
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OpNode",
        "devnet-sequencer",
        "Paused",
        "True",
        Some("PausedByAnnotation"),
    )
    .await;
    assert_eq!(cr["status"]["phase"], "Paused");
    wait_for_event(&admin, &namespace, "devnet-sequencer", "Paused").await;
    // A spec change while paused is not applied (op-node's --sequencer.l1-confs).
    patch(
        &admin,
        &namespace,
        "optimism.io/v1alpha1",
        "OpNode",
        "devnet-sequencer",
        json!({"spec": {"opNode": {"sequencer": {"l1Confs": 6}}}}),
    )
    .await;
    operator.settle(Duration::from_secs(3)).await;
    assert_eq!(
        versions(&children(&admin, &namespace).await),
        before,
        "a paused CR's children changed"
    );

    patch(
        &admin,
        &namespace,
        "optimism.io/v1alpha1",
        "OpNode",
        "devnet-sequencer",
        json!({"metadata": {"annotations": {"optimism.io/paused": null}}}),
    )
    .await;
    wait_for_condition(
        &admin,
        &namespace,
        "OpNode",
        "devnet-sequencer",
        "Paused",
        "False",
        Some("Resumed"),
    )
    .await;
    let sequencer_version = before["StatefulSet/devnet-sequencer"].clone();
    wait_for_children(
        &operator,
        &admin,
        &namespace,
        "the held-back change being applied",
        |c| {
            c["StatefulSet/devnet-sequencer"]["metadata"]["resourceVersion"]
                != sequencer_version.as_str()
        },
    )
    .await;
    operator.stop().await;
}

/// Name → UID of every child and of the generated Secrets.
async fn uids(admin: &Client, namespace: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = children(admin, namespace)
        .await
        .into_iter()
        .map(|(k, v)| (k, v["metadata"]["uid"].as_str().unwrap().to_string()))
        .collect();
    let secrets = Api::<Secret>::namespaced(admin.clone(), namespace);
    for name in [
        "devnet-sequencer-jwt",
        "devnet-replica-jwt",
        "devnet-replica-p2p-key",
    ] {
        if let Some(secret) = secrets.get_opt(name).await.unwrap() {
            out.insert(format!("Secret/{name}"), secret.uid().unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_operator_after_its_kth_write_then_restarting_converges_to_the_same_children() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    // A reference run: the children a devnet converges to without interruption.
    let reference_namespace = control_plane
        .create_test_namespace("reconcile-kill-reference")
        .await;
    // The CRs exist before each operator starts, so every run takes the same path (no
    // refusal of a replica whose sequencer is not there yet) and makes the same writes.
    devnet_secrets(&admin, &reference_namespace).await;
    apply_yaml(&admin, &devnet_yaml(), Some(&reference_namespace)).await;
    let reference = Operator::start(&reference_namespace).await;
    wait_for_devnet(&admin, &reference_namespace).await;
    reference.settle(Duration::from_secs(2)).await;
    let total_writes = reference.context.writes.get();
    let expected: Vec<String> = uids(&admin, &reference_namespace)
        .await
        .into_keys()
        .collect();
    reference.stop().await;

    // Several k across the whole convergence, the last write included.
    let mut ks = vec![1, 3, total_writes / 2, total_writes - 2, total_writes - 1];
    ks.dedup();
    for k in ks {
        let namespace = control_plane
            .create_test_namespace(&format!("reconcile-kill-{k}"))
            .await;
        devnet_secrets(&admin, &namespace).await;
        apply_yaml(&admin, &devnet_yaml(), Some(&namespace)).await;
        let first = Operator::start_with_budget(&namespace, Some(k)).await;
        let started = Instant::now();
        while first.context.writes.get() < k {
            assert!(
                started.elapsed() < TIMEOUT,
                "the operator never made {k} writes"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        first.kill().await;
        let before_restart = uids(&admin, &namespace).await;

        let second = Operator::start(&namespace).await;
        wait_for_devnet(&admin, &namespace).await;
        second.settle(Duration::from_secs(2)).await;
        let after = uids(&admin, &namespace).await;
        assert_eq!(
            after.keys().cloned().collect::<Vec<_>>(),
            expected,
            "k={k}: different children"
        );
        for (key, uid) in &before_restart {
            assert_eq!(
                &after[key], uid,
                "k={k}: {key} was recreated (or a key rotated)"
            );
        }
        eprintln!(
            "k={k} of {total_writes}: {} objects before the restart, converged to {}",
            before_restart.len(),
            after.len()
        );
        second.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_cr_removes_its_children_by_garbage_collection_and_keeps_every_pvc() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    // This one needs the garbage collector and the StatefulSet controller (which creates the
    // PVCs from volume-claim templates): its own control plane with a controller-manager.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let control_plane = ControlPlane::start(ControlPlaneConfig::with_controller_manager());
    let admin = control_plane.admin_client();
    let namespace = control_plane
        .create_test_namespace("reconcile-delete")
        .await;
    let operator = Operator::start_on(&control_plane, &namespace, None).await;
    network_and_sequencer(&admin, &namespace).await;
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), &namespace);
    let started = Instant::now();
    let claims = loop {
        let claims: Vec<String> = pvcs
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|c| c.name_any())
            .collect();
        if !claims.is_empty() {
            break claims;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "the StatefulSet controller made no PVC"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // Foreground: the CR stays, marked for deletion, until the collector removed its children;
    // meanwhile the operator must not recreate them.
    let nodes = Api::<OpNode>::namespaced(admin.clone(), &namespace);
    nodes
        .delete("devnet-sequencer", &kube::api::DeleteParams::foreground())
        .await
        .expect("delete the sequencer");
    let started = Instant::now();
    loop {
        let left: Vec<String> = children(&admin, &namespace)
            .await
            .into_iter()
            .filter(|(_, v)| {
                v["metadata"]["labels"]["app.kubernetes.io/instance"] == "devnet-sequencer"
            })
            .map(|(k, _)| k)
            .collect();
        if left.is_empty() && nodes.get_opt("devnet-sequencer").await.unwrap().is_none() {
            break;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "children left after deleting the CR: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    operator.settle(Duration::from_secs(2)).await;
    assert!(
        children(&admin, &namespace)
            .await
            .keys()
            .all(|k| !k.contains("devnet-sequencer")),
        "a child came back"
    );
    let after: Vec<String> = pvcs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    for claim in &claims {
        assert!(after.contains(claim), "PVC {claim} was deleted with its CR");
    }
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_times_out_is_refused_with_a_condition_an_event_and_no_child_change() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane
        .create_test_namespace("reconcile-plugin-timeout")
        .await;
    let endless = plugin_dir().join("misbehaving-endless-loop.wasm");
    assert!(
        endless.exists(),
        "{} missing: run plugins/build.sh",
        endless.display()
    );
    let operator = Operator::start_with(
        control_plane,
        Settings {
            namespaces: vec![namespace.clone()],
            plugin_files: BTreeMap::from([("OpNode".to_string(), endless)]),
            ..Settings::default()
        },
    )
    .await;

    apply_network_and_sequencer(&admin, &namespace).await;
    wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "ConfigurationValid",
        "True",
        None,
    )
    .await;
    let before = versions(&children(&admin, &namespace).await);
    let started = Instant::now();
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OpNode",
        "devnet-sequencer",
        "Ready",
        "False",
        Some("PluginTimeout"),
    )
    .await;
    eprintln!("refused after {:?}", started.elapsed());
    assert_eq!(
        condition(&cr, "Rendered").unwrap()["reason"],
        "PluginTimeout"
    );
    assert_eq!(condition(&cr, "Valid").unwrap()["status"], "True");
    let event = wait_for_event(&admin, &namespace, "devnet-sequencer", "PluginTimeout").await;
    assert_eq!(event["type"], "Warning");
    let metrics = operator.context.metrics_text();
    assert!(
        metrics.contains(
            "opstack_operator_plugin_renders_total{kind=\"OpNode\",reason=\"PluginTimeout\"}"
        ),
        "{metrics}"
    );
    operator.settle(Duration::from_secs(2)).await;
    assert_eq!(
        versions(&children(&admin, &namespace).await),
        before,
        "children changed"
    );
    assert!(
        children(&admin, &namespace)
            .await
            .keys()
            .all(|k| !k.contains("devnet-sequencer"))
    );
    let secrets = Api::<Secret>::namespaced(admin.clone(), &namespace);
    assert!(
        secrets
            .get_opt("devnet-sequencer-jwt")
            .await
            .unwrap()
            .is_none()
    );
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_chain_config_map_reconciles_its_network_and_dependents() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane
        .create_test_namespace("reconcile-configmap")
        .await;
    let operator = Operator::start(&namespace).await;
    devnet(&admin, &namespace).await;
    operator.settle(Duration::from_secs(2)).await;
    let config_maps =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(admin.clone(), &namespace);

    // A ConfigMap no network names reconciles nothing.
    let nodes = operator.context.reconciles.get("OpNode");
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "unrelated"},
                "data": {"x": "1"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(operator.context.reconciles.get("OpNode"), nodes);

    // The rollup/genesis/L1-chain-config ConfigMap the network names reconciles the network
    // and its dependents.
    let networks = operator.context.reconciles.get("OptimismNetwork");
    let nodes = operator.context.reconciles.get("OpNode");
    config_maps
        .patch(
            "devnet-chain-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"edited": "yes"}})),
        )
        .await
        .unwrap();
    wait_for_reconciles(&operator, "OptimismNetwork", networks).await;
    wait_for_reconciles(&operator, "OpNode", nodes).await;
    operator.stop().await;
}

/// The devnet example's network with `edit` applied (as JSON), for the L1 tests.
fn devnet_network(edit: impl FnOnce(&mut Value)) -> String {
    let text = devnet_subset(|kind, _| kind == "OptimismNetwork");
    let mut network: Value = serde_yaml::from_str(text.trim_start_matches("---\n")).expect("YAML");
    edit(&mut network);
    serde_yaml::to_string(&network).expect("YAML")
}

/// geth --dev with a current-style OP Stack L1 deployed: its URL and what discovery must find.
async fn l1_with_system_config() -> (String, discovery_support::TestChain) {
    tokio::task::spawn_blocking(|| {
        let geth = discovery_support::geth();
        (geth.url.clone(), discovery_support::deploy_chain(geth))
    })
    .await
    .expect("geth")
}

/// Creates the devnet ConfigMap and Secrets and a network pointing at `l1_url`.
async fn network_on_l1(
    admin: &Client,
    namespace: &str,
    l1_url: &str,
    l1_chain_id: u64,
    contract_addresses: Value,
) {
    devnet_secrets(admin, namespace).await;
    apply_yaml(
        admin,
        &devnet_subset(|kind, _| kind == "ConfigMap"),
        Some(namespace),
    )
    .await;
    let network = devnet_network(|network| {
        let spec = network["spec"].as_object_mut().unwrap();
        spec.remove("l1RpcUrlSecretRef");
        spec.insert("l1RpcUrl".into(), json!(l1_url));
        spec.insert("l1ChainID".into(), json!(l1_chain_id));
        spec.insert("contractAddresses".into(), contract_addresses);
    });
    apply_yaml(admin, &network, Some(namespace)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_pointing_at_geth_with_a_system_config_gets_contracts_discovered_and_pinned_addresses()
 {
    let (url, chain) = l1_with_system_config().await;
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("l1-discovered").await;
    let operator = Operator::start(&namespace).await;
    let system_config = chain.system_config.to_checksum(None);
    network_on_l1(
        &admin,
        &namespace,
        &url,
        discovery_support::DEV_CHAIN_ID,
        json!({"systemConfigAddr": system_config, "discoveryMethod": "auto"}),
    )
    .await;
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "ContractsDiscovered",
        "True",
        None,
    )
    .await;
    assert_eq!(
        condition(&cr, "ContractsDiscovered").unwrap()["reason"],
        "SystemConfig"
    );
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "Ready",
        "True",
        None,
    )
    .await;
    assert_eq!(condition(&cr, "L1Connected").unwrap()["status"], "True");
    let pinned = &cr["status"]["networkInfo"]["discoveredContracts"];
    let checksum = |a: alloy_primitives::Address| json!(a.to_checksum(None));
    assert_eq!(pinned["systemConfigAddr"], checksum(chain.system_config));
    assert_eq!(pinned["optimismPortalAddr"], checksum(chain.portal));
    assert_eq!(
        pinned["disputeGameFactoryAddr"],
        checksum(chain.dispute_game_factory)
    );
    assert_eq!(
        pinned["l1CrossDomainMessengerAddr"],
        checksum(chain.messenger)
    );
    assert_eq!(pinned["batchInboxAddr"], checksum(chain.batch_inbox));
    assert_eq!(pinned["startBlock"], json!(chain.start_block));
    assert_eq!(pinned["discoveryMethod"], "system-config");
    assert!(pinned["l1BlockNumber"].as_i64().unwrap() > 0, "{pinned}");
    assert!(pinned["lastDiscoveryTime"].is_string(), "{pinned}");
    let event = wait_for_event(&admin, &namespace, "devnet", "ContractsPinned").await;
    assert_eq!(event["type"], "Normal");

    // What the components are configured with comes from the pin.
    let network: OptimismNetwork = serde_json::from_value(cr.clone()).unwrap();
    let given = opstack_operator::context::contracts(&network);
    let dgf = given
        .iter()
        .find(|c| c.name == "DisputeGameFactoryProxy")
        .expect("the proposer's DisputeGameFactory");
    assert_eq!(json!(dgf.address), checksum(chain.dispute_game_factory));

    // A reconcile within cacheTimeout keeps the pin as it is.
    operator.settle(Duration::from_secs(2)).await;
    let again = get_cr(&admin, &namespace, "OptimismNetwork", "devnet").await;
    assert_eq!(
        again["status"]["networkInfo"]["discoveredContracts"], *pinned,
        "the pin moved"
    );
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_l1_chain_id_gives_contracts_discovered_false_with_wrong_chain_id_an_event_and_no_pin()
 {
    let (url, chain) = l1_with_system_config().await;
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("l1-wrong-chain").await;
    let operator = Operator::start(&namespace).await;
    network_on_l1(
        &admin,
        &namespace,
        &url,
        1,
        json!({"systemConfigAddr": chain.system_config.to_checksum(None)}),
    )
    .await;
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "ContractsDiscovered",
        "False",
        Some("WrongChainId"),
    )
    .await;
    let message = condition_message(&cr, "ContractsDiscovered");
    assert!(message.contains("spec.l1ChainID"), "{message}");
    assert_eq!(
        condition(&cr, "L1Connected").unwrap()["reason"],
        "WrongChainId"
    );
    assert!(
        cr["status"]["networkInfo"].is_null(),
        "pinned from the wrong chain: {}",
        cr["status"]["networkInfo"]
    );
    let event = wait_for_event(&admin, &namespace, "devnet", "WrongChainId").await;
    assert_eq!(event["type"], "Warning");
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_l1_gives_l1_connected_false_and_changes_no_child() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("l1-unreachable").await;
    // Probe every second, so the window below sees several probes of the outage.
    let operator = Operator::start_probing_every_second(control_plane, &namespace).await;
    // The devnet's L1 (http://l1:8545 from its Secret) does not exist here.
    let before = network_and_sequencer(&admin, &namespace).await;
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "L1Connected",
        "False",
        Some("Transport"),
    )
    .await;
    assert_eq!(
        condition(&cr, "ContractsDiscovered").unwrap()["status"],
        "False"
    );
    assert_eq!(
        condition(&cr, "ConfigurationValid").unwrap()["status"],
        "True"
    );
    assert!(cr["status"]["networkInfo"].is_null());
    operator.settle(Duration::from_secs(2)).await;
    let before_probes = operator.context.reconciles.get("OptimismNetwork");
    let writes = operator.context.writes.get();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        operator.context.reconciles.get("OptimismNetwork") > before_probes,
        "the outage was not probed again"
    );
    assert_eq!(operator.context.writes.get(), writes, "the outage wrote");
    assert_eq!(
        versions(&children(&admin, &namespace).await),
        before,
        "children changed"
    );
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_changed_on_l1_after_pinning_is_reported_with_an_event_and_not_rewired() {
    let (url, chain) = l1_with_system_config().await;
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("l1-changed").await;
    // Probe (and so re-read, with cacheTimeout 1s) every second.
    let operator = Operator::start_probing_every_second(control_plane, &namespace).await;
    network_on_l1(
        &admin,
        &namespace,
        &url,
        discovery_support::DEV_CHAIN_ID,
        json!({
            "systemConfigAddr": chain.system_config.to_checksum(None),
            "cacheTimeout": "1s",
        }),
    )
    .await;
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "ContractsDiscovered",
        "True",
        Some("SystemConfig"),
    )
    .await;
    let signer =
        cr["status"]["networkInfo"]["discoveredContracts"]["unsafeBlockSignerAddr"].clone();
    assert_eq!(signer, json!(chain.unsafe_block_signer.to_checksum(None)));

    // The chain's owner rotates the unsafe block signer on L1, and it gets deep enough.
    let new_signer = alloy_primitives::address!("0x2222222222222222222222222222222222222222");
    let system_config = chain.system_config;
    tokio::task::spawn_blocking(move || {
        use alloy_sol_types::SolValue;
        let geth = discovery_support::geth();
        // setUnsafeBlockSigner(address)
        let mut call = alloy_primitives::hex::decode("18d13918").unwrap();
        call.extend(new_signer.abi_encode());
        geth.transact(Some(system_config), call);
        geth.mine(4);
    })
    .await
    .unwrap();

    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "ContractsDiscovered",
        "True",
        Some("PinnedValueChanged"),
    )
    .await;
    let message = condition_message(&cr, "ContractsDiscovered");
    assert!(
        message.contains("unsafeBlockSignerAddr")
            && message.contains(&new_signer.to_checksum(None)),
        "{message}"
    );
    let event = wait_for_event(&admin, &namespace, "devnet", "PinnedValueChanged").await;
    assert_eq!(event["type"], "Warning");
    // Not rewired: the pin keeps the old signer, re-read after re-read.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let cr = get_cr(&admin, &namespace, "OptimismNetwork", "devnet").await;
    assert_eq!(
        cr["status"]["networkInfo"]["discoveredContracts"]["unsafeBlockSignerAddr"],
        signer
    );
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_network_still_has_its_given_addresses_checked_on_l1() {
    let (url, chain) = l1_with_system_config().await;
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("l1-manual").await;
    let operator = Operator::start(&namespace).await;
    let checksum = |a: alloy_primitives::Address| a.to_checksum(None);
    network_on_l1(
        &admin,
        &namespace,
        &url,
        discovery_support::DEV_CHAIN_ID,
        json!({
            "systemConfigAddr": checksum(chain.system_config),
            "optimismPortalAddr": checksum(chain.portal),
            "disputeGameFactoryAddr": checksum(chain.dispute_game_factory),
            "discoveryMethod": "manual",
        }),
    )
    .await;
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "ContractsDiscovered",
        "True",
        Some("Manual"),
    )
    .await;
    assert_eq!(
        cr["status"]["networkInfo"]["discoveredContracts"]["disputeGameFactoryAddr"],
        json!(checksum(chain.dispute_game_factory))
    );

    // A given address with no code on L1 is refused, naming the field; the pin stays.
    let no_code = "0x000000000000000000000000000000000000dEaD";
    patch(
        &admin,
        &namespace,
        "optimism.io/v1alpha1",
        "OptimismNetwork",
        "devnet",
        json!({"spec": {"contractAddresses": {"disputeGameFactoryAddr": no_code}}}),
    )
    .await;
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OptimismNetwork",
        "devnet",
        "ContractsDiscovered",
        "False",
        Some("NoCode"),
    )
    .await;
    let message = condition_message(&cr, "ContractsDiscovered");
    assert!(message.contains("disputeGameFactoryAddr"), "{message}");
    assert_eq!(
        cr["status"]["networkInfo"]["discoveredContracts"]["disputeGameFactoryAddr"],
        json!(checksum(chain.dispute_game_factory)),
        "a refused address was pinned"
    );
    let event = wait_for_event(&admin, &namespace, "devnet", "NoCode").await;
    assert_eq!(event["type"], "Warning");
    operator.stop().await;
}
