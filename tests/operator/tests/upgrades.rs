//! Hardfork readiness on the real control plane: a chain whose next fork is days away and a
//! node pinned to releases that stop there, the same node after its pins are removed, and a
//! pin that cannot follow a fork the chain already activated.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::Client;
use serde::Deserialize;
use serde_json::{Value, json};

mod support;

use support::*;

const DAY: i64 = 86_400;
const OLD_OP_NODE: &str = "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:v1.20.1";
const OLD_OP_RETH: &str = "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-reth:v2.9.0";
const PRE_KARST_OP_NODE: &str = "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:v1.18.1";

/// The devnet's chain ConfigMap, network and sequencer, with `karst_time` and `lagoon_time`
/// in its rollup config and the sequencer's op-node and op-reth pinned to `images`.
fn chain_with_forks(karst: i64, lagoon: i64, images: (&str, &str)) -> String {
    let mut out = String::new();
    let text = devnet_subset(|kind, name| {
        matches!(kind, "ConfigMap" | "OptimismNetwork") || name == "devnet-sequencer"
    });
    for document in serde_yaml::Deserializer::from_str(&text) {
        let mut object = Value::deserialize(document).expect("YAML");
        if object.is_null() {
            continue;
        }
        match object["kind"].as_str() {
            Some("ConfigMap") => {
                let data = &mut object["data"]["rollup.json"];
                let mut rollup: Value = serde_json::from_str(data.as_str().unwrap()).unwrap();
                rollup["karst_time"] = karst.into();
                rollup["lagoon_time"] = lagoon.into();
                *data = rollup.to_string().into();
            }
            Some("OpNode") => {
                object["spec"]["opNode"]["image"] = json!({"image": images.0});
                object["spec"]["opReth"]["image"] = json!({"image": images.1});
            }
            _ => {}
        }
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&object).expect("YAML"));
    }
    out
}

async fn pin_sequencer(admin: &Client, namespace: &str, op_node: Value, op_reth: Value) {
    patch(
        admin,
        namespace,
        "optimism.io/v1alpha1",
        "OpNode",
        "devnet-sequencer",
        json!({"spec": {"opNode": {"image": op_node}, "opReth": {"image": op_reth}}}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_days_away_that_the_pinned_images_stop_at_requires_an_upgrade_until_the_pin_changes()
{
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("upgrade-ready").await;
    let operator = Operator::start(&namespace).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let lagoon = now + 3 * DAY;
    devnet_secrets(&admin, &namespace).await;
    apply_yaml(
        &admin,
        &chain_with_forks(now - DAY, lagoon, (OLD_OP_NODE, OLD_OP_RETH)),
        Some(&namespace),
    )
    .await;

    // Required: the fork, its time, the images that stop there and the fix; still applied.
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OpNode",
        "devnet-sequencer",
        "UpgradeReady",
        "False",
        Some("UpgradeRequired"),
    )
    .await;
    let message = condition_message(&cr, "UpgradeReady");
    let lagoon_time = k8s_openapi::jiff::Timestamp::from_second(lagoon)
        .unwrap()
        .to_string();
    for expected in [
        "lagoon",
        lagoon_time.as_str(),
        OLD_OP_NODE,
        OLD_OP_RETH,
        "op-node:v1.21.0",
        "op-reth:v2.10.0",
    ] {
        assert!(message.contains(expected), "{expected} missing: {message}");
    }
    assert_eq!(condition(&cr, "Applied").unwrap()["status"], "True");
    assert_eq!(cr["status"]["upgrade"]["nextFork"], "lagoon");
    assert_eq!(
        cr["status"]["upgrade"]["activationTime"],
        lagoon_time.as_str()
    );
    let releases = cr["status"]["upgrade"]["releases"].as_array().unwrap();
    assert!(
        releases
            .iter()
            .any(|r| r["component"] == "op-node" && r["version"] == "v1.20.1"),
        "{releases:?}"
    );
    let event = wait_for_event(&admin, &namespace, "devnet-sequencer", "UpgradeRequired").await;
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["note"], message.as_str());
    let metrics = operator.context.metrics_text();
    let gauge = metrics
        .lines()
        .find(|l| {
            l.starts_with("opstack_operator_fork_activation_seconds{")
                && l.contains("name=\"devnet-sequencer\"")
        })
        .unwrap_or_else(|| panic!("no fork gauge: {metrics}"));
    assert!(
        gauge.contains("fork=\"lagoon\"") && gauge.contains("ready=\"false\""),
        "{gauge}"
    );
    let seconds: i64 = gauge.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((2 * DAY..=3 * DAY).contains(&seconds), "{gauge}");

    // The operator's own release (no pins) follows it: the condition clears.
    pin_sequencer(&admin, &namespace, Value::Null, Value::Null).await;
    wait_for_condition(
        &admin,
        &namespace,
        "OpNode",
        "devnet-sequencer",
        "UpgradeReady",
        "True",
        Some("ReleaseFollowsNextFork"),
    )
    .await;
    assert_eq!(
        events_about(&admin, &namespace, "devnet-sequencer", "UpgradeRequired")
            .await
            .len(),
        1,
        "one Warning per requirement, not one per reconcile"
    );
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_that_cannot_follow_a_fork_the_chain_already_activated_is_refused_and_changes_nothing()
 {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("upgrade-refused").await;
    let operator = Operator::start(&namespace).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    devnet_secrets(&admin, &namespace).await;
    let current = opstack_crds::releases::table();
    let (op_node, op_reth) = (
        current.default_image(opstack_crds::releases::Component::OpNode),
        current.default_image(opstack_crds::releases::Component::OpReth),
    );
    apply_yaml(
        &admin,
        &chain_with_forks(now - DAY, now + 30 * DAY, (&op_node, &op_reth)),
        Some(&namespace),
    )
    .await;
    wait_for_condition(
        &admin,
        &namespace,
        "OpNode",
        "devnet-sequencer",
        "Applied",
        "True",
        None,
    )
    .await;
    operator.settle(Duration::from_secs(2)).await;
    let before = versions(&children(&admin, &namespace).await);

    pin_sequencer(
        &admin,
        &namespace,
        json!({"image": PRE_KARST_OP_NODE}),
        json!({"image": "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-reth:v2.3.1"}),
    )
    .await;
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OpNode",
        "devnet-sequencer",
        "Ready",
        "False",
        Some("ReleaseCannotFollowChain"),
    )
    .await;
    let rendered = condition(&cr, "Rendered").unwrap();
    assert_eq!(rendered["status"], "False");
    let message = rendered["message"].as_str().unwrap();
    assert!(
        message.contains(PRE_KARST_OP_NODE) && message.contains("karst"),
        "{message}"
    );
    assert!(
        message.contains(&op_node),
        "the fix names the release: {message}"
    );
    let event = wait_for_event(
        &admin,
        &namespace,
        "devnet-sequencer",
        "ReleaseCannotFollowChain",
    )
    .await;
    assert_eq!(event["type"], "Warning");
    operator.settle(Duration::from_secs(2)).await;
    assert_eq!(
        versions(&children(&admin, &namespace).await),
        before,
        "a refused pin changed a child"
    );
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_network_release_holds_the_sequencer_until_its_replica_follows_on_it() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("upgrade-rollout").await;
    let operator = Operator::start(&namespace).await;
    devnet_secrets(&admin, &namespace).await;
    apply_yaml(
        &admin,
        &devnet_subset(|kind, name| {
            matches!(kind, "ConfigMap" | "OptimismNetwork")
                || name == "devnet-sequencer"
                || name == "devnet-replica"
        }),
        Some(&namespace),
    )
    .await;
    for node in ["devnet-sequencer", "devnet-replica"] {
        wait_for_condition(&admin, &namespace, "OpNode", node, "Applied", "True", None).await;
    }
    operator.settle(Duration::from_secs(2)).await;
    let template_images = |children: &std::collections::BTreeMap<String, Value>, node: &str| {
        let sts = &children[&format!("StatefulSet/{node}")];
        sts["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["image"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let before = children(&admin, &namespace).await;
    let sequencer_images = template_images(&before, "devnet-sequencer");

    let (op_node, op_reth) = (
        "registry.example/op-node:v1.21.1",
        "registry.example/op-reth:v2.10.1",
    );
    patch(
        &admin,
        &namespace,
        "optimism.io/v1alpha1",
        "OptimismNetwork",
        "devnet",
        json!({"spec": {"nodeRelease": {"opNode": op_node, "opReth": op_reth}}}),
    )
    .await;
    // The replica goes first: its StatefulSet moves to the new pair at once.
    let cr = wait_for_condition(
        &admin,
        &namespace,
        "OpNode",
        "devnet-sequencer",
        "UpgradeRollout",
        "False",
        Some("WaitingForNode"),
    )
    .await;
    let message = condition(&cr, "UpgradeRollout").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("devnet-replica"), "{message}");
    assert_eq!(cr["status"]["upgrade"]["rollout"], "Waiting");
    let event = wait_for_event(&admin, &namespace, "devnet-sequencer", "WaitingForNode").await;
    assert_eq!(event["type"], "Normal");
    operator.settle(Duration::from_secs(2)).await;
    let after = children(&admin, &namespace).await;
    assert_eq!(
        template_images(&after, "devnet-replica"),
        [op_node, op_reth],
        "the replica rolls first, op-node and op-reth together"
    );
    // No kubelet here: the replica never follows, so the sequencer keeps its release.
    assert_eq!(
        template_images(&after, "devnet-sequencer"),
        sequencer_images,
        "the sequencer rolled before its replica followed"
    );
    let replica = get_cr(&admin, &namespace, "OpNode", "devnet-replica").await;
    assert_eq!(replica["status"]["upgrade"]["rollout"], "Rolling");
    operator.stop().await;
}
