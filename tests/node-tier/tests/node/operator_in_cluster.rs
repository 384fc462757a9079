//! The operator as users install it: from `deploy/`, with the image built from
//! `deploy/Containerfile`, as a pod with its ServiceAccount and in-cluster config. A missing
//! permission, a bad mount, a failing probe or a crash fails these tests.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, ResourceExt};
use opstack_test_harness::pods;
use serde_json::Value;

use crate::cluster::*;
use crate::workload::{wait_for_condition_within, workload_chain};

async fn operator_pod(admin: &Client) -> Pod {
    pods::wait_ready_selected(admin, OPERATOR_NAMESPACE, OPERATOR_SELECTOR, POD_TIMEOUT).await
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|status| status.container_statuses.as_ref())
        .map(|statuses| statuses.iter().map(|status| status.restart_count).sum())
        .unwrap_or(0)
}

/// Every line of the operator's log is a JSON object with a level, and none says it was refused.
fn assert_json_logs_without_refusals(logs: &str) {
    assert!(!logs.trim().is_empty(), "the operator logged nothing");
    for line in logs.lines() {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        assert!(
            entry["level"].is_string(),
            "a log line without a level: {line}"
        );
        let text = line.to_ascii_lowercase();
        assert!(
            !text.contains("forbidden")
                && !text.contains("permission denied")
                && !text.contains("refusing to use"),
            "the operator was refused something: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_from_deploy_runs_ready_logs_json_serves_metrics_and_survives_being_killed() {
    let cluster = cluster();
    operator();
    let admin = cluster.admin_client();

    // Ready, and it reconciles: a chain in a new namespace gets its children and Ready.
    let namespace = chain_namespace(cluster, "in-cluster").await;
    workload_chain(&admin, &namespace, &["node-c"]).await;
    wait_for_condition_within(
        &admin,
        &namespace,
        "OpNode",
        "node-c",
        "WorkloadReady",
        "True",
        POD_TIMEOUT,
    )
    .await;
    let pod = operator_pod(&admin).await;
    assert_eq!(
        restarts(&pod),
        0,
        "the operator restarted:\n{}",
        pods::describe(&admin, OPERATOR_NAMESPACE, &pod.name_any()).await
    );

    // kubectl logs shows JSON lines, and nothing was forbidden (RBAC) or refused (the cache dir).
    let logs = kubectl_ok(&[
        "logs",
        &format!("--namespace={OPERATOR_NAMESPACE}"),
        &pod.name_any(),
        "--container=operator",
    ]);
    assert_json_logs_without_refusals(&logs);

    // /metrics through its Service, by DNS name, from a pod.
    let client = client_pod(&admin, &namespace).await;
    let url = format!(
        "http://opstack-operator-metrics.{OPERATOR_NAMESPACE}.svc.cluster.local:8080/metrics"
    );
    let metrics = get_from_client(&admin, &namespace, &client, &url)
        .await
        .expect("/metrics through the Service");
    assert!(
        metrics.contains("opstack_operator_reconciles_total{kind=\"OpNode\",result=\"ok\"}"),
        "{metrics}"
    );

    // Killed mid-reconcile: new CRs are being worked on when the pod dies.
    let names: Vec<String> = (0..6).map(|index| format!("node-k{index}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let crash = chain_namespace(cluster, "operator-killed").await;
    workload_chain(&admin, &crash, &refs).await;
    let statefulsets = Api::<StatefulSet>::namespaced(admin.clone(), &crash);
    let started = std::time::Instant::now();
    while statefulsets
        .list(&ListParams::default())
        .await
        .map(|list| list.items.len())
        .unwrap_or(0)
        == 0
    {
        assert!(
            started.elapsed() < POD_TIMEOUT,
            "the operator applied nothing in {POD_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let killed = operator_pod(&admin).await;
    Api::<Pod>::namespaced(admin.clone(), OPERATOR_NAMESPACE)
        .delete(
            &killed.name_any(),
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await
        .expect("kill the operator pod");
    let started = std::time::Instant::now();
    let replacement = loop {
        let pod = operator_pod(&admin).await;
        if pod.uid() != killed.uid() {
            break pod;
        }
        assert!(
            started.elapsed() < POD_TIMEOUT,
            "no replacement operator pod"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for name in &names {
        wait_for_condition_within(
            &admin,
            &crash,
            "OpNode",
            name,
            "WorkloadReady",
            "True",
            POD_TIMEOUT,
        )
        .await;
    }

    // Exactly one of each child per CR, each owned by its CR alone; one generated Secret each.
    let expected: BTreeSet<String> = names.iter().cloned().collect();
    let owned_by = |owner_refs: Vec<
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    >|
     -> Vec<String> {
        owner_refs
            .into_iter()
            .filter(|o| o.controller == Some(true))
            .map(|o| o.name)
            .collect()
    };
    let statefulset_list = statefulsets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(
        statefulset_list
            .iter()
            .map(|s| s.name_any())
            .collect::<BTreeSet<_>>(),
        expected
    );
    for statefulset in &statefulset_list {
        assert_eq!(
            owned_by(statefulset.owner_references().to_vec()),
            vec![statefulset.name_any()]
        );
    }
    let services = Api::<Service>::namespaced(admin.clone(), &crash)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(
        services
            .iter()
            .map(|s| s.name_any())
            .collect::<BTreeSet<_>>(),
        expected
    );
    let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), &crash)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(
        claims.len(),
        names.len(),
        "{:?}",
        claims.iter().map(|c| c.name_any()).collect::<Vec<_>>()
    );
    let secrets: BTreeSet<String> = Api::<Secret>::namespaced(admin.clone(), &crash)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.name_any())
        .collect();
    let mut expected_secrets: BTreeSet<String> = [
        "devnet-l1",
        "devnet-sequencer-p2p",
        "devnet-batcher",
        "devnet-proposer",
        "devnet-challenger",
    ]
    .map(String::from)
    .into();
    for name in &names {
        expected_secrets.insert(opstack_crds::conventions::generated_jwt_secret(name));
        expected_secrets.insert(opstack_crds::conventions::generated_p2p_secret(name));
    }
    assert_eq!(secrets, expected_secrets);

    let logs = kubectl_ok(&[
        "logs",
        &format!("--namespace={OPERATOR_NAMESPACE}"),
        &replacement.name_any(),
        "--container=operator",
    ]);
    assert_json_logs_without_refusals(&logs);
}
