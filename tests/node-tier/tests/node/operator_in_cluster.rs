//! The operator as users install it: from `deploy/`, with the image built from
//! `deploy/Containerfile`, as a pod with its ServiceAccount and in-cluster config. A missing
//! permission, a bad mount, a failing probe or a crash fails these tests.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, ResourceExt};
use opstack_test_harness::pods;
use serde_json::Value;

use crate::cluster::*;
use crate::workload::{wait_for_condition_within, workload_chain};

/// The replica holding the operator's Lease (the one running the controllers), once Ready.
async fn leader_pod(admin: &Client) -> Pod {
    let leases = Api::<Lease>::namespaced(admin.clone(), OPERATOR_NAMESPACE);
    let started = std::time::Instant::now();
    loop {
        let holder = leases
            .get_opt("opstack-operator")
            .await
            .ok()
            .flatten()
            .and_then(|lease| lease.spec)
            .and_then(|spec| spec.holder_identity);
        if let Some(holder) = holder {
            let pod = pods::wait_ready(admin, OPERATOR_NAMESPACE, &holder, POD_TIMEOUT).await;
            return pod;
        }
        assert!(
            started.elapsed() < POD_TIMEOUT,
            "no replica holds the Lease opstack-operator"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The Lease's holder now, if any.
async fn lease_holder(admin: &Client) -> Option<String> {
    Api::<Lease>::namespaced(admin.clone(), OPERATOR_NAMESPACE)
        .get_opt("opstack-operator")
        .await
        .ok()
        .flatten()
        .and_then(|lease| lease.spec)
        .and_then(|spec| spec.holder_identity)
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
async fn the_operator_from_deploy_runs_ready_logs_json_serves_metrics_and_survives_its_leader_being_killed()
 {
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
    let pod = leader_pod(&admin).await;
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

    // /metrics through its Service, by DNS name, from a pod; the Service reaches either
    // replica, and only the leader reconciles, so each pod is asked by its own address too.
    let client = client_pod(&admin, &namespace).await;
    let url = format!(
        "http://opstack-operator-metrics.{OPERATOR_NAMESPACE}.svc.cluster.local:8080/metrics"
    );
    let metrics = get_from_client(&admin, &namespace, &client, &url)
        .await
        .expect("/metrics through the Service");
    assert!(metrics.contains("opstack_operator_leader "), "{metrics}");
    let replicas = Api::<Pod>::namespaced(admin.clone(), OPERATOR_NAMESPACE)
        .list(&ListParams::default().labels(OPERATOR_SELECTOR))
        .await
        .unwrap()
        .items;
    assert_eq!(replicas.len(), 2, "the Deployment runs two replicas");
    for replica in &replicas {
        let ip = replica
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .expect("a pod IP");
        let leads = replica.name_any() == pod.name_any();
        let get = |path: &str| {
            let url = format!("http://{ip}:8080/{path}");
            let (admin, namespace, client) = (admin.clone(), namespace.clone(), client.clone());
            async move { get_from_client(&admin, &namespace, &client, &url).await }
        };
        let metrics = get("metrics").await.expect("/metrics of a replica");
        assert!(
            metrics.contains(&format!("opstack_operator_leader {}", u8::from(leads))),
            "{}: {metrics}",
            replica.name_any()
        );
        if leads {
            assert!(
                metrics
                    .contains("opstack_operator_reconciles_total{kind=\"OpNode\",result=\"ok\"}"),
                "{metrics}"
            );
        }
        // The probes' endpoints, as the kubelet asks them.
        for (path, says) in [
            (
                "healthz",
                if leads {
                    "ok: 5 controllers running"
                } else {
                    "ok: standby"
                },
            ),
            (
                "readyz",
                if leads {
                    "ok: 5 kinds listed"
                } else {
                    "ok: standby"
                },
            ),
        ] {
            let body = get(path)
                .await
                .unwrap_or_else(|e| panic!("/{path} of {}: {e}", replica.name_any()));
            assert!(
                body.contains(says),
                "{} /{path}: {body}",
                replica.name_any()
            );
        }
    }

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
    let killed = leader_pod(&admin).await;
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
    // The standby takes the Lease over: within the lease duration and one retry (9 s) of
    // the leader's last renewal, and the goal is 15 s.
    let started = std::time::Instant::now();
    let took_over = loop {
        if lease_holder(&admin)
            .await
            .is_some_and(|holder| holder != killed.name_any())
        {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < POD_TIMEOUT,
            "the standby never took the Lease over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("in-cluster: the standby took over {took_over:?} after the leader was killed");
    assert!(
        took_over <= Duration::from_secs(15),
        "the standby took over after {took_over:?}"
    );
    let replacement = leader_pod(&admin).await;
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
