//! The sandbox's arithmetic on the real control plane: a chain's renderer that holds its whole
//! memory allowance in every call, rendered for more CRs at once than the operator runs
//! reconciles, keeps the operator's peak memory under the Deployment's limit, and another
//! chain keeps reconciling meanwhile.
//!
//! Its own test binary, so the process's peak resident memory is this operator's alone.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use opstack_operator::controller::Settings;
use opstack_operator::runtime::{RuntimeConfig, sha256_hex};
use serde::Deserialize;
use serde_json::{Value, json};
use support::*;

/// The CRs of the hostile chain: twice the reconciles the operator runs at once per kind.
const HOSTILE_NODES: usize = 8;

/// `VmHWM` of this process: the peak resident memory since it started or was last reset.
fn peak_resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib << 10
}

/// The memory limit of the operator's container in `deploy/operator.yaml`, in bytes.
fn deployment_memory_limit() -> u64 {
    let text = std::fs::read_to_string(format!("{WORKSPACE}/deploy/operator.yaml"))
        .expect("deploy/operator.yaml");
    let deployment: Deployment = serde_yaml::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).expect("YAML"))
        .find(|document| document["kind"] == "Deployment")
        .map(|document| serde_json::from_value(document).expect("the Deployment"))
        .expect("a Deployment");
    let quantity = deployment.spec.template.spec.expect("a pod").containers[0]
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .expect("a memory limit")
        .0
        .clone();
    let gib = quantity.strip_suffix("Gi").expect("a limit in Gi");
    gib.parse::<u64>().expect("a number") << 30
}

/// The devnet's OpNode `template` renamed `name`, in network `network`.
fn node(template: &str, name: &str, sequencer: &str) -> Value {
    let text = devnet_subset(|_, n| n == template);
    let mut node: Value = serde_yaml::from_str(text.trim_start_matches("---\n")).expect("YAML");
    node["metadata"] = json!({ "name": name });
    if node["spec"]["sequencerRef"].is_object() {
        node["spec"]["sequencerRef"]["name"] = json!(sequencer);
    }
    node
}

async fn hostile_chain(admin: &Client, namespace: &str) {
    let path = plugin_dir().join("misbehaving-memory-hold.wasm");
    let hold = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run plugins/build.sh", path.display()));
    upload_binary_config_map(
        admin,
        namespace,
        "hostile-plugins",
        &[("plugin.wasm", &hold)],
    )
    .await;
    devnet_secrets(admin, namespace).await;
    let text = devnet_subset(|kind, _| matches!(kind, "ConfigMap" | "OptimismNetwork"));
    let mut yaml = String::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let mut object = Value::deserialize(document).expect("YAML");
        if object["kind"] == "OptimismNetwork" {
            object["spec"]["plugins"] = json!({"opNode": {"renderer": {
                "configMapRef": {"name": "hostile-plugins", "key": "plugin.wasm"},
                "sha256": sha256_hex(&hold),
            }}});
        }
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml::to_string(&object).expect("YAML"));
    }
    let mut nodes = vec![node("devnet-sequencer", "devnet-sequencer", "")];
    nodes.extend((1..HOSTILE_NODES).map(|i| {
        node(
            "devnet-replica",
            &format!("devnet-replica-{i}"),
            "devnet-sequencer",
        )
    }));
    for object in &nodes {
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml::to_string(object).expect("YAML"));
    }
    apply_yaml(admin, &yaml, Some(namespace)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_holding_all_their_memory_at_once_stay_under_the_operators_limit_and_others_go_on()
{
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let hostile = control_plane.create_test_namespace("memory-hostile").await;
    let other = control_plane.create_test_namespace("memory-other").await;
    let operator = Operator::start_with(
        control_plane,
        Settings {
            namespaces: vec![hostile.clone(), other.clone()],
            // A refused render is retried after the resync: every hostile CR renders again
            // and again while the test runs.
            resync: Duration::from_secs(2),
            ..Settings::default()
        },
    )
    .await;
    let baseline = peak_resident_bytes();

    hostile_chain(&admin, &hostile).await;
    // Every hostile CR has been stopped at the deadline at least once, holding its memory.
    for i in 0..HOSTILE_NODES {
        let name = if i == 0 {
            "devnet-sequencer".to_string()
        } else {
            format!("devnet-replica-{i}")
        };
        wait_for_condition(
            &admin,
            &hostile,
            "OpNode",
            &name,
            "Rendered",
            "False",
            Some("PluginTimeout"),
        )
        .await;
    }
    // Meanwhile, and while they keep rendering, another chain converges.
    let started = Instant::now();
    network_and_sequencer(&admin, &other).await;
    let other_took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;

    let peak = peak_resident_bytes();
    let limit = deployment_memory_limit();
    let config = RuntimeConfig::default();
    eprintln!(
        "peak resident memory {} MiB (before the hostile chain {} MiB); limit {} MiB; {} plugin calls at once of {} MiB; the other chain applied in {other_took:?}",
        peak >> 20,
        baseline >> 20,
        limit >> 20,
        config.workers,
        config.limits.memory_bytes >> 20
    );
    assert!(
        peak < limit,
        "peak resident memory {peak} bytes is over the operator's limit {limit}"
    );
    // The calls at once are bounded: the peak grew by no more than their allowance and a
    // compile's worth of slack, however many CRs rendered.
    let allowance = (config.workers * config.limits.memory_bytes) as u64;
    assert!(
        peak.saturating_sub(baseline) <= allowance + (192 << 20),
        "the peak grew by {} MiB, more than {} calls of {} MiB",
        (peak - baseline) >> 20,
        config.workers,
        config.limits.memory_bytes >> 20
    );
    operator.stop().await;
}
