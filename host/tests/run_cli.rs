//! `opstack-operator run` as a process: the operator's kubeconfig, JSON logs, a network
//! reconciled, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use opstack_test_harness::{ControlPlane, ControlPlaneConfig};
use serde::Deserialize;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);

fn api_resource(object: &Value) -> ApiResource {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        group,
        version,
        object["kind"].as_str().expect("kind"),
    ))
}

async fn apply(client: &kube::Client, object: &Value, namespace: Option<&str>) {
    let resource = api_resource(object);
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let name = object["metadata"]["name"].as_str().expect("name");
    api.patch(
        name,
        &PatchParams::apply("opstack-test").force(),
        &Patch::Apply(object),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {name}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reconciles_logs_json_and_stops_cleanly_on_sigterm() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let control_plane = ControlPlane::shared(ControlPlaneConfig::default);
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("run-cli").await;
    // The cluster-wide install, with the Secret rights bound in the chain's namespace.
    let rbac = Command::new(env!("CARGO_BIN_EXE_opstack-operator"))
        .args(["rbac", "--secrets-namespace", &namespace])
        .output()
        .unwrap();
    assert!(rbac.status.success());
    let rbac = String::from_utf8(rbac.stdout).unwrap();
    for document in serde_yaml::Deserializer::from_str(&rbac) {
        let object = Value::deserialize(document).unwrap();
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        apply(&admin, &object, namespace.as_deref()).await;
    }
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "l1"}, "stringData": {"rpc-url": "http://l1:8545"}
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), &namespace)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let network = json!({
        "apiVersion": "optimism.io/v1alpha1", "kind": "OptimismNetwork",
        "metadata": {"name": "sepolia"},
        "spec": {"networkName": "op-sepolia", "chainID": 11155420, "l1ChainID": 11155111,
                 "l1RpcUrlSecretRef": {"name": "l1", "key": "rpc-url"}}
    });
    apply(&admin, &network, Some(&namespace)).await;

    let cache = std::env::temp_dir().join("opstack-run-cli-plugins");
    let mut child = Command::new(env!("CARGO_BIN_EXE_opstack-operator"))
        .args(["run", "--log-format=json", "--plugin-cache"])
        .arg(&cache)
        .env("KUBECONFIG", control_plane.operator_kubeconfig())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start opstack-operator run");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });

    let networks: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), &namespace, &api_resource(&network));
    let started = Instant::now();
    loop {
        let live = serde_json::to_value(networks.get("sepolia").await.unwrap()).unwrap();
        let ready = live
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find(|c| c["type"] == "ConfigurationValid")
                    .map(|c| c["status"] == "True")
            });
        if ready == Some(true) {
            break;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let logs: Vec<String> = lines.try_iter().collect();
            panic!(
                "the network never had a valid configuration; status {}; logs:\n{}",
                live["status"],
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // SIGTERM, as the kubelet sends it.
    let pid = child.id() as libc::pid_t;
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("run did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "run exited with {status}");
    let logs: Vec<String> = lines.iter().collect();
    assert!(!logs.is_empty());
    for line in &logs {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            entry.get("level").is_some() && entry.get("timestamp").is_some(),
            "{line}"
        );
    }
    assert!(
        logs.iter().any(|l| l.contains("\"stopped\"")),
        "no 'stopped' line: {logs:?}"
    );
}
