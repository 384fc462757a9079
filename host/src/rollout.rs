//! Rolling a network's nodes to a new release in a safe order: replicas first, oldest first,
//! the sequencer last, each only after the nodes before it follow the chain again on the new
//! release; a node that does not within the network's `nodeRelease.followTimeout` stops the
//! rollout there. op-node and its execution client share the pod, so one StatefulSet update
//! moves both: a pod never runs halves of two releases.
//!
//! Pure: the reconcile hands it the rendered and the live StatefulSet, and the network's other
//! OpNodes as read (their status says how far each got); it answers whether this node's new
//! release may be applied now.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use opstack_crds::releases::Component;
use opstack_crds::{NodeType, OpNode};
use serde_json::Value;

/// Where a node's rollout stands (`status.upgrade.rollout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    /// Its pod runs the rendered release.
    Complete,
    /// Its StatefulSet has the rendered release; the pod is being replaced.
    Rolling,
    /// The rendered release waits for a node before this one.
    Waiting,
    /// A node before this one runs the new release but does not follow the chain.
    Halted,
}

impl Rollout {
    pub fn as_str(self) -> &'static str {
        match self {
            Rollout::Complete => "Complete",
            Rollout::Rolling => "Rolling",
            Rollout::Waiting => "Waiting",
            Rollout::Halted => "Halted",
        }
    }
}

/// Whether this node's new release may be applied now.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    Proceed,
    /// Not yet: `node` goes first and has not finished.
    Wait {
        node: String,
        message: String,
    },
    /// Stopped: `node` went first and does not follow the chain on the new release.
    Halt {
        node: String,
        message: String,
    },
}

/// The op-node and execution-client images of a workload's pod template, by container.
pub fn release_images(workload: &Value) -> BTreeMap<String, String> {
    workload
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let name = c.get("name")?.as_str()?;
            let component = Component::of_container(name)?;
            (component == Component::OpNode || component.is_execution_client()).then(|| {
                (
                    name.to_owned(),
                    c.get("image")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
        })
        .collect()
}

/// Whether applying `desired` over `live` changes the release the pod runs.
pub fn changes_release(desired: &Value, live: Option<&Value>) -> bool {
    live.is_some_and(|live| release_images(desired) != release_images(live))
}

/// Whether a StatefulSet or Deployment runs its current template on every replica, as its
/// controller reports it (an unobserved generation, an update revision the pods have not
/// reached, or replicas not yet updated or ready all mean it is still rolling).
pub fn rolled_out(workload: &Value) -> bool {
    let number = |pointer: &str| workload.pointer(pointer).and_then(Value::as_i64);
    let wanted = number("/spec/replicas").unwrap_or(1);
    let generation = number("/metadata/generation").unwrap_or(0);
    let observed = number("/status/observedGeneration").unwrap_or(-1);
    let text = |pointer: &str| workload.pointer(pointer).and_then(Value::as_str);
    let revisions_match = match (
        text("/status/updateRevision"),
        text("/status/currentRevision"),
    ) {
        (Some(update), Some(current)) => update == current,
        _ => workload.get("kind").and_then(Value::as_str) != Some("StatefulSet"),
    };
    observed >= generation
        && revisions_match
        && number("/status/updatedReplicas").unwrap_or(0) >= wanted
        && number("/status/readyReplicas").unwrap_or(0) >= wanted
}

fn synced(node: &OpNode) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    condition(node, "Synced")
}

fn condition<'a>(
    node: &'a OpNode,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    node.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// Whether `peer` has rendered against `network_generation`, rolled out and follows the chain.
fn done(peer: &OpNode, network_generation: i64) -> bool {
    let Some(status) = &peer.status else {
        return false;
    };
    let upgrade = status.upgrade.as_ref();
    upgrade.and_then(|u| u.network_generation) == Some(network_generation)
        && upgrade.and_then(|u| u.rollout.as_deref()) == Some(Rollout::Complete.as_str())
        && status.observed_generation == peer.metadata.generation
        && synced(peer).is_some_and(|c| c.status == "True")
}

/// The nodes of `this`'s network that roll before it: for the sequencer every replica, for a
/// replica the replicas created before it (ties by name).
fn before<'a>(this: &OpNode, nodes: &'a [OpNode]) -> Vec<&'a OpNode> {
    let network = &this.spec.optimism_network_ref.name;
    let key = |n: &OpNode| {
        (
            n.metadata.creation_timestamp.as_ref().map(|t| t.0),
            n.metadata.name.clone(),
        )
    };
    let mut out: Vec<&OpNode> = nodes
        .iter()
        .filter(|n| &n.spec.optimism_network_ref.name == network)
        .filter(|n| n.metadata.uid != this.metadata.uid)
        .filter(|n| n.spec.node_type == NodeType::Replica)
        .filter(|n| this.spec.node_type == NodeType::Sequencer || key(n) < key(this))
        .collect();
    out.sort_by_key(|n| key(n));
    out
}

/// Whether `this`'s new release may be applied now, given the network's other nodes as read
/// and the network's generation (the release they must have rendered against).
pub fn gate(
    this: &OpNode,
    nodes: &[OpNode],
    network_generation: i64,
    follow_timeout: Duration,
    now: Timestamp,
) -> Gate {
    for peer in before(this, nodes) {
        if done(peer, network_generation) {
            continue;
        }
        let name = peer.metadata.name.clone().unwrap_or_default();
        let upgrade = peer.status.as_ref().and_then(|s| s.upgrade.as_ref());
        let rollout = upgrade.and_then(|u| u.rollout.as_deref());
        let on_new_release = upgrade.and_then(|u| u.network_generation) == Some(network_generation);
        if rollout == Some(Rollout::Halted.as_str()) {
            return Gate::Halt {
                message: format!(
                    "the rollout stopped before {name} (see its UpgradeRollout condition); this \
                     node keeps its release"
                ),
                node: name,
            };
        }
        // Stuck since the later of its rollout's and its Synced's last change: a Synced that
        // stayed True from before the rollout says nothing about the new pod.
        let since = [synced(peer), condition(peer, "UpgradeRollout")]
            .into_iter()
            .flatten()
            .map(|c| c.last_transition_time.0)
            .max();
        let stuck_for = since
            .and_then(|t| now.duration_since(t).try_into().ok())
            .unwrap_or(Duration::ZERO);
        if on_new_release
            && matches!(rollout, Some("Rolling" | "Complete"))
            && stuck_for > follow_timeout
        {
            let synced = synced(peer)
                .map(|c| format!("{} ({}: {})", c.status, c.reason, c.message))
                .unwrap_or_else(|| "unknown".to_owned());
            return Gate::Halt {
                message: format!(
                    "{name} rolled to the new release but has not followed the chain for \
                     {}s (Synced {synced}), longer than the network's \
                     spec.nodeRelease.followTimeout; the rollout stops here and this node keeps \
                     its release. Fix {name}, or set spec.nodeRelease back to the release it \
                     ran (then delete its pod if it stays stuck: a StatefulSet does not replace \
                     a pod that never became ready)",
                    stuck_for.as_secs()
                ),
                node: name,
            };
        }
        let what = if !on_new_release {
            "has not rendered the network's new release yet"
        } else if rollout != Some(Rollout::Complete.as_str()) {
            "is rolling to the new release"
        } else {
            "runs the new release and does not follow the chain yet"
        };
        return Gate::Wait {
            message: format!(
                "waiting for {name}, which rolls before this node and {what}; this node keeps \
                 its release until then"
            ),
            node: name,
        };
    }
    Gate::Proceed
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn node(name: &str, role: &str, created: i64) -> OpNode {
        serde_json::from_value(json!({
            "apiVersion": "optimism.io/v1alpha1", "kind": "OpNode",
            "metadata": {"name": name, "uid": name, "generation": 1,
                "creationTimestamp": Timestamp::from_second(created).unwrap().to_string()},
            "spec": {"optimismNetworkRef": {"name": "devnet"}, "nodeType": role},
        }))
        .unwrap()
    }

    /// `node` with the status its reconcile wrote: rendered against `network`, `rollout`,
    /// Synced `synced` since `since`.
    fn reported(
        mut node: OpNode,
        network: i64,
        rollout: Rollout,
        synced: &str,
        since: i64,
    ) -> OpNode {
        node.status = Some(opstack_crds::OpNodeStatus {
            observed_generation: Some(1),
            conditions: vec![Condition {
                type_: "Synced".into(),
                status: synced.into(),
                reason: "R".into(),
                message: "m".into(),
                observed_generation: Some(1),
                last_transition_time: at(since),
            }],
            upgrade: Some(opstack_crds::UpgradeStatus {
                network_generation: Some(network),
                rollout: Some(rollout.as_str().into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        node
    }

    fn gate_of(this: &OpNode, nodes: &[OpNode]) -> Gate {
        gate(
            this,
            nodes,
            2,
            Duration::from_secs(600),
            Timestamp::from_second(NOW).unwrap(),
        )
    }

    #[test]
    fn the_sequencer_waits_for_every_replica_to_follow_on_the_new_release() {
        let sequencer = node("seq", "sequencer", 1);
        let old = reported(
            node("r1", "replica", 2),
            1,
            Rollout::Complete,
            "True",
            NOW - 50,
        );
        let rolling = reported(
            node("r1", "replica", 2),
            2,
            Rollout::Rolling,
            "Unknown",
            NOW - 50,
        );
        let done = reported(
            node("r1", "replica", 2),
            2,
            Rollout::Complete,
            "True",
            NOW - 5,
        );
        for (peer, expect_wait) in [(old, true), (rolling, true), (done, false)] {
            let nodes = [sequencer.clone(), peer.clone()];
            let gate = gate_of(&sequencer, &nodes);
            assert_eq!(matches!(gate, Gate::Wait { .. }), expect_wait, "{gate:?}");
            if !expect_wait {
                assert_eq!(gate, Gate::Proceed);
            }
        }
    }

    #[test]
    fn replicas_roll_one_at_a_time_oldest_first_and_never_wait_for_the_sequencer() {
        let sequencer = node("seq", "sequencer", 1);
        let first = node("r1", "replica", 2);
        let second = node("r2", "replica", 3);
        let nodes = [sequencer.clone(), first.clone(), second.clone()];
        assert_eq!(gate_of(&first, &nodes), Gate::Proceed);
        assert!(matches!(gate_of(&second, &nodes), Gate::Wait { node, .. } if node == "r1"));
    }

    #[test]
    fn a_node_that_does_not_follow_within_the_timeout_halts_the_rollout_behind_it() {
        let sequencer = node("seq", "sequencer", 1);
        let stuck = reported(
            node("r1", "replica", 2),
            2,
            Rollout::Rolling,
            "Unknown",
            NOW - 601,
        );
        let nodes = [sequencer.clone(), stuck];
        let Gate::Halt { node, message } = gate_of(&sequencer, &nodes) else {
            panic!("not halted")
        };
        assert_eq!(node, "r1");
        assert!(message.contains("followTimeout"), "{message}");
        // A halt propagates: a node behind a halted one halts too.
        let halted = reported(node_named("r2", 3), 2, Rollout::Halted, "True", NOW - 5);
        let nodes = [sequencer.clone(), halted];
        assert!(matches!(gate_of(&sequencer, &nodes), Gate::Halt { .. }));
    }

    #[test]
    fn a_synced_that_stayed_true_from_before_the_rollout_does_not_start_the_timeout() {
        let sequencer = node("seq", "sequencer", 1);
        let mut rolling = reported(
            node("r1", "replica", 2),
            2,
            Rollout::Rolling,
            "True",
            NOW - 3600,
        );
        rolling.status.as_mut().unwrap().conditions.push(Condition {
            type_: "UpgradeRollout".into(),
            status: "False".into(),
            reason: "RollingOut".into(),
            message: "m".into(),
            observed_generation: Some(1),
            last_transition_time: at(NOW - 10),
        });
        let nodes = [sequencer.clone(), rolling];
        assert!(matches!(gate_of(&sequencer, &nodes), Gate::Wait { .. }));
    }

    fn node_named(name: &str, created: i64) -> OpNode {
        node(name, "replica", created)
    }

    #[test]
    fn a_release_change_is_a_change_of_the_op_node_or_execution_client_image() {
        let sts = |node: &str, el: &str| {
            json!({"kind": "StatefulSet", "spec": {"template": {"spec": {"containers": [
                {"name": "op-node", "image": node}, {"name": "op-geth", "image": el}
            ], "initContainers": [{"name": "geth-init", "image": el}]}}}})
        };
        let live = sts("n:1", "g:1");
        assert!(!changes_release(&sts("n:1", "g:1"), Some(&live)));
        assert!(changes_release(&sts("n:2", "g:1"), Some(&live)));
        assert!(changes_release(&sts("n:1", "g:2"), Some(&live)));
        assert!(
            !changes_release(&sts("n:2", "g:2"), None),
            "a first apply is no rollout"
        );
    }

    #[test]
    fn a_workload_is_rolled_out_only_when_its_controller_says_every_pod_runs_the_template() {
        let sts = |generation: i64, observed: i64, update: &str, current: &str, ready: i64| {
            json!({"kind": "StatefulSet", "metadata": {"generation": generation},
                "spec": {"replicas": 1},
                "status": {"observedGeneration": observed, "updateRevision": update,
                    "currentRevision": current, "updatedReplicas": 1, "readyReplicas": ready}})
        };
        assert!(rolled_out(&sts(2, 2, "b", "b", 1)));
        assert!(
            !rolled_out(&sts(2, 1, "b", "b", 1)),
            "generation not observed"
        );
        assert!(
            !rolled_out(&sts(2, 2, "b", "a", 1)),
            "pods on the old revision"
        );
        assert!(!rolled_out(&sts(2, 2, "b", "b", 0)), "not ready");
    }
}
