//! What the operator's apply gives a real pod: a chain's renderer (the test workload plugin,
//! uploaded as a chain plugin) turns an OpNode into a StatefulSet and a Service, and the pod that
//! results passes its probes, runs as the rendered user with the rendered Secret modes, writes to
//! its claimed volume, keeps it across a restart and answers by its Service's DNS name.

use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::Api;
use kube::{Client, ResourceExt};
use opstack_operator::runtime::sha256_hex;
use opstack_test_harness::pods;
use serde_json::{Value, json};

use crate::cluster::{
    POD_TIMEOUT, chain_namespace, client_pod, cluster, get_from_client, operator,
};
use crate::support::*;

/// The chain's plugin ConfigMap and the key the workload renderer is uploaded under.
const PLUGINS: &str = "chain-plugins";
const RENDERER_KEY: &str = "workload.wasm";

fn workload_plugin() -> Vec<u8> {
    let path = plugin_dir().join("test_plugin_workload.wasm");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run plugins/build.sh", path.display()))
}

/// The devnet's Secrets and chain ConfigMap, its network with the workload renderer as the
/// chain's OpNode renderer, and one OpNode per name: the first is the chain's sequencer (the
/// devnet sequencer's spec), the others replicas of it (one sequencer per network is a rule).
pub async fn workload_chain(admin: &Client, namespace: &str, nodes: &[&str]) {
    let plugin = workload_plugin();
    devnet_secrets(admin, namespace).await;
    apply_yaml(
        admin,
        &devnet_subset(|kind, _| kind == "ConfigMap"),
        Some(namespace),
    )
    .await;
    upload_binary_config_map(admin, namespace, PLUGINS, &[(RENDERER_KEY, &plugin)]).await;
    let text = devnet_subset(|kind, _| kind == "OptimismNetwork");
    let mut network: Value = serde_yaml::from_str(text.trim_start_matches("---\n")).expect("YAML");
    network["spec"]["plugins"] = json!({"opNode": {"renderer": {
        "configMapRef": {"name": PLUGINS, "key": RENDERER_KEY},
        "sha256": sha256_hex(&plugin),
    }}});
    apply_yaml(
        admin,
        &serde_yaml::to_string(&network).expect("YAML"),
        Some(namespace),
    )
    .await;
    let sequencer = devnet_subset(|_, name| name == "devnet-sequencer");
    let replica = devnet_subset(|_, name| name == "devnet-replica");
    for (index, name) in nodes.iter().enumerate() {
        let text = if index == 0 { &sequencer } else { &replica };
        let mut node: Value = serde_yaml::from_str(text.trim_start_matches("---\n")).expect("YAML");
        node["metadata"]["name"] = json!(name);
        if index > 0 {
            node["spec"]["sequencerRef"] = json!({"name": nodes[0]});
        }
        apply_yaml(
            admin,
            &serde_yaml::to_string(&node).expect("YAML"),
            Some(namespace),
        )
        .await;
    }
}

/// `GET path` on the workload pod's port, through the API's port-forward.
async fn from_test_process(
    admin: &Client,
    namespace: &str,
    pod: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    pods::http_via_port_forward(
        admin,
        namespace,
        pod,
        test_plugin_workload::PORT as u16,
        method,
        path,
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendered_workload_runs_as_its_user_with_its_secret_mode_volume_and_dns_name() {
    let cluster = cluster();
    operator();
    let admin = cluster.admin_client();
    let namespace = chain_namespace(cluster, "workload").await;
    workload_chain(&admin, &namespace, &["node-a"]).await;
    let cr = wait_for_condition_within(
        &admin,
        &namespace,
        "OpNode",
        "node-a",
        "WorkloadReady",
        "True",
        POD_TIMEOUT,
    )
    .await;
    // Its pod is ready, but it is not an op-node: the operator asks it for its sync status, gets
    // no answer, and does not call the node Ready. Ready means "serves a chain", not "a port
    // opened" (the devnet tier shows the other side).
    let ready = condition(&cr, "Ready").unwrap();
    assert_ne!(ready["status"], "True", "{cr}");
    assert_eq!(ready["reason"], "NodeUnreachable", "{cr}");
    // The StatefulSet's pod is node-a-0; its readiness probe (GET /healthz) passed.
    let pod = pods::wait_ready(&admin, &namespace, "node-a-0", POD_TIMEOUT).await;
    assert_eq!(
        pod.spec.as_ref().and_then(|spec| spec.node_name.as_deref()),
        Some(cluster.node().unwrap().name())
    );

    let (code, report) =
        from_test_process(&admin, &namespace, "node-a-0", "GET", "/report", b"").await;
    assert_eq!(code, 200, "{report}");
    let report: Value = serde_json::from_str(&report).expect("the report is JSON");
    let user = test_plugin_workload::USER;
    // runAsUser/runAsGroup and fsGroup as rendered (restricted_pod_security_context).
    assert_eq!(report["uid"], user, "{report}");
    assert_eq!(report["gid"], user, "{report}");
    assert!(
        report["groups"].as_array().unwrap().contains(&json!(user)),
        "fsGroup is a supplementary group: {report}"
    );
    // The host's JWT Secret, rendered with defaultMode 0400: the kubelet keeps the owner's bits
    // and, for the fsGroup, gives the group read (never write) and hands the file to that group.
    let jwt = &report["files"]["/secrets/jwt/jwt.hex"];
    assert_eq!(jwt["mode"], "0440", "{report}");
    assert_eq!(jwt["gid"], user, "{report}");
    // The claimed volume: root-owned like a fresh filesystem, given to the fsGroup by the kubelet.
    assert_eq!(report["data"]["gid"], user, "{report}");

    let (code, written) = from_test_process(
        &admin,
        &namespace,
        "node-a-0",
        "PUT",
        "/data/marker",
        b"written by the test",
    )
    .await;
    assert_eq!(
        code, 201,
        "the pod cannot write to its claimed volume: {written}"
    );

    // By the Service's DNS name, from another pod.
    let client = client_pod(&admin, &namespace).await;
    let url = format!("http://node-a.{namespace}.svc.cluster.local:8080/data/marker");
    assert_eq!(
        get_from_client(&admin, &namespace, &client, &url).await,
        Ok("written by the test".to_owned())
    );
    // A name outside the cluster does not resolve: pods have no way out.
    let outside = get_from_client(&admin, &namespace, &client, "http://example.com/").await;
    assert!(
        outside.is_err(),
        "a pod reached outside the machine: {outside:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_statefulset_pod_gets_the_same_claim_and_sees_the_data_written_before() {
    let cluster = cluster();
    operator();
    let admin = cluster.admin_client();
    let namespace = chain_namespace(cluster, "workload-restart").await;
    workload_chain(&admin, &namespace, &["node-b"]).await;
    wait_for_condition_within(
        &admin,
        &namespace,
        "OpNode",
        "node-b",
        "WorkloadReady",
        "True",
        POD_TIMEOUT,
    )
    .await;
    pods::wait_ready(&admin, &namespace, "node-b-0", POD_TIMEOUT).await;
    let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), &namespace);
    let claim_before = claims.get("data-node-b-0").await.expect("the pod's claim");
    let volume_before = claim_before
        .spec
        .as_ref()
        .and_then(|spec| spec.volume_name.clone());
    assert!(
        volume_before.is_some(),
        "the claim is bound: {:?}",
        claim_before.status
    );

    let (code, _) = from_test_process(
        &admin,
        &namespace,
        "node-b-0",
        "PUT",
        "/data/marker",
        b"before the restart",
    )
    .await;
    assert_eq!(code, 201);

    pods::kill_and_wait_replacement(&admin, &namespace, "node-b-0", POD_TIMEOUT).await;
    let claim_after = claims.get("data-node-b-0").await.expect("the pod's claim");
    assert_eq!(
        claim_after.uid(),
        claim_before.uid(),
        "the same claim, not a new one"
    );
    assert_eq!(
        claim_after.spec.and_then(|spec| spec.volume_name),
        volume_before
    );
    let (code, body) =
        from_test_process(&admin, &namespace, "node-b-0", "GET", "/data/marker", b"").await;
    assert_eq!((code, body.as_str()), (200, "before the restart"));
}

/// Like `wait_for_condition`, with the node tier's longer timeout (pods start, probes pass), and
/// the pods described when it times out.
pub async fn wait_for_condition_within(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
    type_: &str,
    status: &str,
    timeout: Duration,
) -> Value {
    match poll_condition(
        client,
        namespace,
        kind,
        name,
        (type_, status, None),
        timeout,
    )
    .await
    {
        Ok(cr) => cr,
        Err(cr) => {
            let pods =
                kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), namespace)
                    .list(&Default::default())
                    .await
                    .map(|list| list.items)
                    .unwrap_or_default();
            let mut detail = String::new();
            for pod in pods {
                detail.push_str(&pods::describe(client, namespace, &pod.name_any()).await);
            }
            panic!(
                "{kind} {name} never got {type_}={status} in {timeout:?}; status: {}\npods:\n{detail}",
                cr.get("status").cloned().unwrap_or_default()
            );
        }
    }
}
