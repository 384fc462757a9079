//! Host checks that need the other resources of the namespace but no plugin: references
//! resolve, one sequencer per network, one batcher and one proposer per key. Pure: the caller
//! passes the namespace's resources (from the API, or from the files given to `render`).
//!
//! "First wins": when two resources claim what only one may have, the older one keeps it and
//! the newer one is refused, so adding a resource never breaks one already running. The caller
//! orders `Peers` oldest first.

use opstack_crds::{NodeType, OpBatcher, OpNode, OpProposer, OptimismNetwork};
use serde_json::Value;

/// A rule the resource breaks, naming the field and the fix. Variant names double as reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostValidationError {
    #[error(
        "spec.optimismNetworkRef.name: OptimismNetwork {network:?} does not exist in this namespace; create it or fix the name"
    )]
    NetworkNotFound { network: String },
    #[error(
        "spec.nodeType: network {network:?} already has sequencer {existing:?}; two sequencers would fork the chain. Make this node a replica, or delete the other sequencer first"
    )]
    SecondSequencer { network: String, existing: String },
    #[error(
        "spec.{field}: OpNode {target:?} does not exist in this namespace; create it or fix the name"
    )]
    NodeNotFound { field: String, target: String },
    #[error("spec.{field}: OpNode {target:?} is a replica; point it at the network's sequencer")]
    NotASequencer { field: String, target: String },
    #[error(
        "spec.{field}: OpNode {target:?} belongs to network {theirs:?}, not {ours:?}; reference a node of the same network"
    )]
    DifferentNetwork {
        field: String,
        target: String,
        theirs: String,
        ours: String,
    },
    #[error(
        "spec.privateKey.secretRef: Secret {secret:?} already signs for {kind} {existing:?}; two {kind}s with one key collide on nonces. Give each its own key"
    )]
    KeyInUse {
        kind: String,
        secret: String,
        existing: String,
    },
    #[error(
        "spec.sequencerRef: a replica needs spec.sequencerRef (a sequencer OpNode here) or spec.sequencerUrl (a sequencer elsewhere) to forward transactions to"
    )]
    ReplicaWithoutSequencer,
}

impl HostValidationError {
    /// A stable CamelCase reason for conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            HostValidationError::NetworkNotFound { .. } => "NetworkNotFound",
            HostValidationError::SecondSequencer { .. } => "SecondSequencer",
            HostValidationError::NodeNotFound { .. } => "NodeNotFound",
            HostValidationError::NotASequencer { .. } => "NotASequencer",
            HostValidationError::DifferentNetwork { .. } => "DifferentNetwork",
            HostValidationError::KeyInUse { .. } => "KeyInUse",
            HostValidationError::ReplicaWithoutSequencer => "ReplicaWithoutSequencer",
        }
    }
}

/// The other resources of the namespace, oldest first.
#[derive(Debug, Default, Clone, Copy)]
pub struct Peers<'a> {
    pub networks: &'a [OptimismNetwork],
    pub nodes: &'a [OpNode],
    pub batchers: &'a [OpBatcher],
    pub proposers: &'a [OpProposer],
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// Every host rule `resource` (of `kind`) breaks among `peers`.
pub fn validate(kind: &str, resource: &Value, peers: Peers<'_>) -> Vec<HostValidationError> {
    let mut errors = Vec::new();
    if kind == "OptimismNetwork" {
        return errors;
    }
    let name = resource
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let network = resource
        .pointer("/spec/optimismNetworkRef/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !peers
        .networks
        .iter()
        .any(|n| name_of(&n.metadata) == network)
    {
        errors.push(HostValidationError::NetworkNotFound {
            network: network.to_string(),
        });
    }
    let node_of_network =
        |field: &str, must_sequence: bool, errors: &mut Vec<HostValidationError>| {
            let Some(target) = resource
                .pointer(&format!("/spec/{field}/name"))
                .and_then(Value::as_str)
            else {
                return;
            };
            let field = format!("{field}.name");
            match peers.nodes.iter().find(|n| name_of(&n.metadata) == target) {
                None => errors.push(HostValidationError::NodeNotFound {
                    field,
                    target: target.to_string(),
                }),
                Some(node) => {
                    if must_sequence && node.spec.node_type != NodeType::Sequencer {
                        errors.push(HostValidationError::NotASequencer {
                            field: field.clone(),
                            target: target.to_string(),
                        });
                    }
                    if node.spec.optimism_network_ref.name != network {
                        errors.push(HostValidationError::DifferentNetwork {
                            field,
                            target: target.to_string(),
                            theirs: node.spec.optimism_network_ref.name.clone(),
                            ours: network.to_string(),
                        });
                    }
                }
            }
        };
    match kind {
        "OpNode" => {
            let node_type = resource.pointer("/spec/nodeType").and_then(Value::as_str);
            if node_type == Some("sequencer") {
                let older = peers
                    .nodes
                    .iter()
                    .take_while(|n| name_of(&n.metadata) != name)
                    .find(|n| {
                        n.spec.node_type == NodeType::Sequencer
                            && n.spec.optimism_network_ref.name == network
                    });
                if let Some(existing) = older {
                    errors.push(HostValidationError::SecondSequencer {
                        network: network.to_string(),
                        existing: name_of(&existing.metadata).to_string(),
                    });
                }
            } else {
                let spec = &resource["spec"];
                if spec.get("sequencerRef").is_none() && spec.get("sequencerUrl").is_none() {
                    errors.push(HostValidationError::ReplicaWithoutSequencer);
                }
                node_of_network("sequencerRef", true, &mut errors);
            }
        }
        "OpBatcher" => {
            node_of_network("sequencerRef", true, &mut errors);
            key_in_use(
                kind,
                name,
                resource,
                peers
                    .batchers
                    .iter()
                    .map(|b| (name_of(&b.metadata), b.spec.private_key.as_ref())),
                &mut errors,
            );
        }
        "OpProposer" => {
            node_of_network("rollupNodeRef", false, &mut errors);
            key_in_use(
                kind,
                name,
                resource,
                peers
                    .proposers
                    .iter()
                    .map(|p| (name_of(&p.metadata), p.spec.private_key.as_ref())),
                &mut errors,
            );
        }
        "OpChallenger" => node_of_network("rollupNodeRef", false, &mut errors),
        _ => {}
    }
    errors
}

fn key_in_use<'a>(
    kind: &str,
    name: &str,
    resource: &Value,
    older_peers: impl Iterator<Item = (&'a str, Option<&'a opstack_crds::PrivateKeySource>)>,
    errors: &mut Vec<HostValidationError>,
) {
    let Some(secret) = resource
        .pointer("/spec/privateKey/secretRef/name")
        .and_then(Value::as_str)
    else {
        return;
    };
    let existing = older_peers
        .take_while(|(peer, _)| *peer != name)
        .find(|(_, key)| key.is_some_and(|k| k.secret_ref.name == secret));
    if let Some((existing, _)) = existing {
        errors.push(HostValidationError::KeyInUse {
            kind: kind.to_string(),
            secret: secret.to_string(),
            existing: existing.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn typed<T: serde::de::DeserializeOwned>(kind: &str, name: &str, spec: Value) -> (Value, T) {
        let value = json!({"apiVersion": "optimism.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec});
        (value.clone(), serde_json::from_value(value).unwrap())
    }

    fn net(name: &str) -> OptimismNetwork {
        typed(
            "OptimismNetwork",
            name,
            json!({"chainID": 901, "l1ChainID": 900, "l1RpcUrl": "http://l1", "networkName": "x"}),
        )
        .1
    }

    fn node(name: &str, network: &str, node_type: &str) -> (Value, OpNode) {
        let mut spec = json!({"optimismNetworkRef": {"name": network}, "nodeType": node_type});
        if node_type == "replica" {
            spec["sequencerUrl"] = json!("https://seq.example");
        }
        typed("OpNode", name, spec)
    }

    #[test]
    fn a_second_sequencer_for_a_network_is_refused_and_the_first_keeps_running() {
        let networks = [net("devnet")];
        let (first_json, first) = node("seq-a", "devnet", "sequencer");
        let (second_json, second) = node("seq-b", "devnet", "sequencer");
        let nodes = [first, second];
        let peers = Peers {
            networks: &networks,
            nodes: &nodes,
            ..Default::default()
        };
        assert_eq!(validate("OpNode", &first_json, peers), vec![]);
        let errors = validate("OpNode", &second_json, peers);
        assert_eq!(errors[0].reason(), "SecondSequencer");
        assert!(errors[0].to_string().contains("seq-a"));
    }

    #[test]
    fn sequencers_of_different_networks_do_not_conflict() {
        let networks = [net("a"), net("b")];
        let (_, first) = node("seq-a", "a", "sequencer");
        let (second_json, second) = node("seq-b", "b", "sequencer");
        let nodes = [first, second];
        assert_eq!(
            validate(
                "OpNode",
                &second_json,
                Peers {
                    networks: &networks,
                    nodes: &nodes,
                    ..Default::default()
                }
            ),
            vec![]
        );
    }

    #[test]
    fn a_replica_must_point_at_an_existing_sequencer_of_its_network() {
        let networks = [net("devnet"), net("other")];
        let (_, seq) = node("seq", "other", "sequencer");
        let (_, replica_peer) = node("r2", "devnet", "replica");
        let nodes = [seq, replica_peer];
        let peers = Peers {
            networks: &networks,
            nodes: &nodes,
            ..Default::default()
        };
        let missing = typed::<OpNode>("OpNode", "r", json!({"optimismNetworkRef": {"name": "devnet"}, "nodeType": "replica", "sequencerRef": {"name": "nope"}})).0;
        assert_eq!(
            validate("OpNode", &missing, peers)[0].reason(),
            "NodeNotFound"
        );
        let foreign = typed::<OpNode>("OpNode", "r", json!({"optimismNetworkRef": {"name": "devnet"}, "nodeType": "replica", "sequencerRef": {"name": "seq"}})).0;
        assert_eq!(
            validate("OpNode", &foreign, peers)[0].reason(),
            "DifferentNetwork"
        );
        let to_replica = typed::<OpNode>("OpNode", "r", json!({"optimismNetworkRef": {"name": "devnet"}, "nodeType": "replica", "sequencerRef": {"name": "r2"}})).0;
        assert_eq!(
            validate("OpNode", &to_replica, peers)[0].reason(),
            "NotASequencer"
        );
        let lonely = typed::<OpNode>(
            "OpNode",
            "r",
            json!({"optimismNetworkRef": {"name": "devnet"}, "nodeType": "replica"}),
        )
        .0;
        assert_eq!(
            validate("OpNode", &lonely, peers)[0].reason(),
            "ReplicaWithoutSequencer"
        );
    }

    #[test]
    fn a_missing_network_names_the_field() {
        let (json, _) = node("r", "ghost", "replica");
        let errors = validate("OpNode", &json, Peers::default());
        assert_eq!(errors[0].reason(), "NetworkNotFound");
        assert!(
            errors[0]
                .to_string()
                .starts_with("spec.optimismNetworkRef.name")
        );
    }

    #[test]
    fn one_batcher_per_key() {
        let networks = [net("devnet")];
        let (_, seq) = node("seq", "devnet", "sequencer");
        let nodes = [seq];
        let spec = json!({"optimismNetworkRef": {"name": "devnet"}, "sequencerRef": {"name": "seq"}, "privateKey": {"secretRef": {"name": "key", "key": "k"}}});
        let (first_json, first) = typed::<OpBatcher>("OpBatcher", "b1", spec.clone());
        let (second_json, second) = typed::<OpBatcher>("OpBatcher", "b2", spec);
        let batchers = [first, second];
        let peers = Peers {
            networks: &networks,
            nodes: &nodes,
            batchers: &batchers,
            ..Default::default()
        };
        assert_eq!(validate("OpBatcher", &first_json, peers), vec![]);
        assert_eq!(
            validate("OpBatcher", &second_json, peers)[0].reason(),
            "KeyInUse"
        );
    }
}
