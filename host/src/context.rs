//! Building a plugin's input from already-fetched objects: the CR, its network, the nodes it
//! references. Pure: the controller fetches the objects from the API and `render` reads them
//! from files; both hand them here, so a plugin sees the same input either way.

use std::collections::BTreeMap;

use opstack_crds::conventions::{self, config_map_purpose, endpoint, secret_purpose};
use opstack_crds::{ChainConfigSource, KeySource, OpNode, OptimismNetwork};
use serde_json::Value;

use crate::runtime::{
    ContractAddress, Endpoint, NamedObject, NetworkContext, RenderInput, ResolvedReference,
};

/// Errors of building the input. Variant names double as condition reasons.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContextError {
    #[error(
        "{kind} {name}: spec.{field} names {target:?}, which does not exist in namespace {namespace}; create it or fix the name"
    )]
    MissingReference {
        kind: String,
        name: String,
        field: String,
        target: String,
        namespace: String,
    },
    #[error("{kind} {name}: the resource has no metadata.{field}")]
    MissingMetadata {
        kind: String,
        name: String,
        field: &'static str,
    },
    #[error("{kind} {name}: serialising the resource: {reason}")]
    Serialize {
        kind: String,
        name: String,
        reason: String,
    },
}

/// The Secret names a resource may use, by purpose: the ones its spec (or its network's spec)
/// declares and the ones the host generates for it.
pub fn secrets(kind: &str, resource: &Value, network: &OptimismNetwork) -> Vec<NamedObject> {
    let mut out = Vec::new();
    let mut push = |purpose: &str, name: String| {
        out.push(NamedObject {
            purpose: purpose.to_string(),
            name,
        })
    };
    if let Some(r) = &network.spec.l1_rpc_url_secret_ref {
        push(secret_purpose::L1_RPC_URL, r.name.clone());
    }
    if let Some(r) = &network.spec.l1_beacon_url_secret_ref {
        push(secret_purpose::L1_BEACON_URL, r.name.clone());
    }
    let name = resource
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "OpNode" => {
            if let Ok(node) = serde_json::from_value::<OpNode>(resource.clone()) {
                let op_node = &node.spec.op_node;
                push(
                    secret_purpose::JWT,
                    key_source_secret(&op_node.engine.jwt_secret, || {
                        conventions::generated_jwt_secret(name)
                    }),
                );
                if op_node.p2p.enabled {
                    push(
                        secret_purpose::P2P_KEY,
                        key_source_secret(&op_node.p2p.private_key, || {
                            conventions::generated_p2p_secret(name)
                        }),
                    );
                }
                if let Some(key) = op_node
                    .sequencer
                    .as_ref()
                    .and_then(|s| s.signing_key.as_ref())
                {
                    push(secret_purpose::SEQUENCER_KEY, key.secret_ref.name.clone());
                }
            }
        }
        "OpBatcher" | "OpProposer" | "OpChallenger" => {
            if let Some(secret) = resource
                .pointer("/spec/privateKey/secretRef/name")
                .and_then(Value::as_str)
            {
                push(secret_purpose::PRIVATE_KEY, secret.to_string());
            }
            if let Some(secret) = resource
                .pointer("/spec/remoteSigner/tlsSecretName")
                .and_then(Value::as_str)
            {
                push(secret_purpose::SIGNER_TLS, secret.to_string());
            }
        }
        _ => {}
    }
    out.sort_by(|a, b| (&a.purpose, &a.name).cmp(&(&b.purpose, &b.name)));
    out
}

fn key_source_secret(source: &KeySource, generated: impl FnOnce() -> String) -> String {
    source
        .secret_ref
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_else(generated)
}

/// ConfigMaps holding the chain's rollup config and genesis, by purpose; none for a named
/// network whose binaries know it.
pub fn config_maps(network: &OptimismNetwork) -> Vec<NamedObject> {
    let network_name = network.metadata.name.clone().unwrap_or_default();
    let source = |purpose: &str, source: &Option<ChainConfigSource>| -> Option<NamedObject> {
        let name = match source {
            Some(ChainConfigSource {
                config_map_ref: Some(r),
                ..
            }) => r.name.clone(),
            Some(ChainConfigSource {
                inline: Some(_), ..
            }) => conventions::chain_config_map(&network_name),
            _ => return None,
        };
        Some(NamedObject {
            purpose: purpose.to_string(),
            name,
        })
    };
    [
        source(
            config_map_purpose::ROLLUP_CONFIG,
            &network.spec.rollup_config,
        ),
        source(config_map_purpose::L2_GENESIS, &network.spec.l2_genesis),
        source(
            config_map_purpose::L1_CHAIN_CONFIG,
            &network.spec.l1_chain_config,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// L1 contract addresses: the spec's, else the ones discovered and pinned in status.
pub fn contracts(network: &OptimismNetwork) -> Vec<ContractAddress> {
    let spec = &network.spec.contract_addresses;
    let found = network
        .status
        .as_ref()
        .and_then(|s| s.network_info.as_ref())
        .and_then(|i| i.discovered_contracts.as_ref());
    let pick = |given: &Option<String>, discovered: Option<&Option<String>>| {
        given.clone().or_else(|| discovered.and_then(|d| d.clone()))
    };
    let entries = [
        (
            "SystemConfigProxy",
            pick(
                &spec.system_config_addr,
                found.map(|f| &f.system_config_addr),
            ),
        ),
        (
            "OptimismPortalProxy",
            pick(
                &spec.optimism_portal_addr,
                found.map(|f| &f.optimism_portal_addr),
            ),
        ),
        (
            "DisputeGameFactoryProxy",
            pick(
                &spec.dispute_game_factory_addr,
                found.map(|f| &f.dispute_game_factory_addr),
            ),
        ),
        (
            "L1CrossDomainMessengerProxy",
            pick(
                &spec.l1_cross_domain_messenger_addr,
                found.map(|f| &f.l1_cross_domain_messenger_addr),
            ),
        ),
        (
            "L1StandardBridgeProxy",
            pick(
                &spec.l1_standard_bridge_addr,
                found.map(|f| &f.l1_standard_bridge_addr),
            ),
        ),
        (
            "BatchInbox",
            pick(&spec.batch_inbox_addr, found.map(|f| &f.batch_inbox_addr)),
        ),
    ];
    entries
        .into_iter()
        .filter_map(|(name, address)| {
            address.map(|address| ContractAddress {
                name: name.to_string(),
                address,
            })
        })
        .collect()
}

/// The endpoints other components use to reach an `OpNode`, through the Service named after it
/// (and its P2P Service, when its libp2p `peer_id` is known).
pub fn opnode_endpoints(node: &OpNode, peer_id: Option<&str>) -> Vec<Endpoint> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let namespace = node
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let host = format!("{name}.{namespace}.svc");
    let networking = match node.spec.execution_client {
        opstack_crds::ExecutionClient::OpReth => {
            node.spec.op_reth.as_ref().map(|c| c.networking.clone())
        }
        opstack_crds::ExecutionClient::OpGeth => {
            node.spec.op_geth.as_ref().map(|c| c.networking.clone())
        }
    }
    .unwrap_or_default();
    vec![
        Endpoint {
            name: endpoint::EXECUTION_RPC.into(),
            url: format!("http://{host}:{}", networking.http.port),
        },
        Endpoint {
            name: endpoint::EXECUTION_WS.into(),
            url: format!("ws://{host}:{}", networking.ws.port),
        },
        Endpoint {
            name: endpoint::ROLLUP_RPC.into(),
            url: format!("http://{host}:{}", node.spec.op_node.rpc.port),
        },
    ]
    .into_iter()
    .chain(
        peer_id
            .filter(|_| node.spec.op_node.p2p.enabled)
            .map(|id| Endpoint {
                name: endpoint::ROLLUP_P2P.into(),
                url: format!(
                    "/dns4/{}.{namespace}.svc/tcp/{}/p2p/{id}",
                    conventions::p2p_service(&name),
                    node.spec.op_node.p2p.listen_port
                ),
            }),
    )
    .collect()
}

/// The spec fields of a kind that reference an `OpNode`.
pub fn opnode_reference_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "OpNode" | "OpBatcher" => &["sequencerRef"],
        "OpProposer" | "OpChallenger" => &["rollupNodeRef"],
        _ => &[],
    }
}

/// Follows the resource's `OpNode` references through `lookup` (by name, in its namespace);
/// `peer_ids` has the libp2p peer IDs the host knows, by `OpNode` name.
pub fn references<'a>(
    kind: &str,
    resource: &Value,
    lookup: impl Fn(&str) -> Option<&'a OpNode>,
    peer_ids: &BTreeMap<String, String>,
) -> Result<Vec<ResolvedReference>, ContextError> {
    let mut out = Vec::new();
    for field in opnode_reference_fields(kind) {
        let Some(target) = resource
            .pointer(&format!("/spec/{field}/name"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let node = lookup(target).ok_or_else(|| ContextError::MissingReference {
            kind: kind.to_string(),
            name: resource
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            field: format!("{field}.name"),
            target: target.to_string(),
            namespace: resource
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string(),
        })?;
        out.push(ResolvedReference {
            field: field.to_string(),
            kind: "OpNode".to_string(),
            name: target.to_string(),
            endpoints: opnode_endpoints(node, peer_ids.get(target).map(String::as_str)),
        });
    }
    Ok(out)
}

/// The whole input of a render. The resource goes without its status: renders depend on
/// what the user asked for, not on what the operator observed.
pub fn render_input(
    kind: &str,
    resource: &Value,
    network: &OptimismNetwork,
    references: Vec<ResolvedReference>,
) -> Result<RenderInput, ContextError> {
    let mut resource = resource.clone();
    if let Some(object) = resource.as_object_mut() {
        object.remove("status");
    }
    let serialize = |value: &dyn erased::Json| {
        value.to_json().map_err(|reason| ContextError::Serialize {
            kind: kind.to_string(),
            name: network.metadata.name.clone().unwrap_or_default(),
            reason,
        })
    };
    Ok(RenderInput {
        kind: kind.to_string(),
        resource: serialize(&resource)?,
        network: NetworkContext {
            name: network.metadata.name.clone().unwrap_or_default(),
            spec: serialize(&network.spec)?,
            contracts: contracts(network),
            secrets: secrets(kind, &resource, network),
            config_maps: config_maps(network),
        },
        references,
    })
}

mod erased {
    /// Serialises any value to a JSON string; a small shim so one closure serves both types.
    pub trait Json {
        fn to_json(&self) -> Result<String, String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<String, String> {
            serde_json::to_string(self).map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn network(spec: Value) -> OptimismNetwork {
        serde_json::from_value(json!({
            "apiVersion": "optimism.io/v1alpha1", "kind": "OptimismNetwork",
            "metadata": {"name": "devnet", "namespace": "chain"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn node(name: &str, spec: Value) -> OpNode {
        serde_json::from_value(json!({
            "apiVersion": "optimism.io/v1alpha1", "kind": "OpNode",
            "metadata": {"name": name, "namespace": "chain"}, "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn generated_secrets_are_named_after_the_node_and_user_secrets_win() {
        let net = network(
            json!({"chainID": 1, "l1ChainID": 1, "networkName": "op-sepolia", "l1RpcUrlSecretRef": {"name": "l1", "key": "url"}}),
        );
        let generated = json!({"metadata": {"name": "seq"}, "spec": {"optimismNetworkRef": {"name": "devnet"}, "nodeType": "sequencer"}});
        let names: Vec<_> = secrets("OpNode", &generated, &net)
            .into_iter()
            .map(|s| (s.purpose, s.name))
            .collect();
        assert_eq!(
            names,
            [
                ("jwt".into(), "seq-jwt".into()),
                ("l1-rpc-url".into(), "l1".into()),
                ("p2p-key".into(), "seq-p2p-key".into())
            ]
        );
        let own = json!({"metadata": {"name": "seq"}, "spec": {"optimismNetworkRef": {"name": "devnet"}, "nodeType": "sequencer",
            "opNode": {"engine": {"jwtSecret": {"secretRef": {"name": "my-jwt", "key": "k"}}}, "p2p": {"enabled": false}}}});
        let names: Vec<_> = secrets("OpNode", &own, &net)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["my-jwt", "l1"]);
    }

    #[test]
    fn inline_chain_config_lives_in_the_networks_config_map() {
        let net = network(
            json!({"chainID": 901, "l1ChainID": 900, "l1RpcUrl": "http://l1",
            "rollupConfig": {"inline": "{}"}, "l2Genesis": {"configMapRef": {"name": "genesis", "key": "g.json"}}}),
        );
        let maps: Vec<_> = config_maps(&net)
            .into_iter()
            .map(|c| (c.purpose, c.name))
            .collect();
        assert_eq!(
            maps,
            [
                ("rollup-config".into(), "devnet-chain-config".into()),
                ("l2-genesis".into(), "genesis".into())
            ]
        );
    }

    #[test]
    fn spec_addresses_win_over_discovered_ones() {
        let mut net = network(
            json!({"chainID": 1, "l1ChainID": 1, "networkName": "op-sepolia", "l1RpcUrl": "http://l1",
            "contractAddresses": {"disputeGameFactoryAddr": "0x1111111111111111111111111111111111111111"}}),
        );
        net.status = serde_json::from_value(json!({"networkInfo": {"discoveredContracts": {
            "disputeGameFactoryAddr": "0x2222222222222222222222222222222222222222",
            "optimismPortalAddr": "0x3333333333333333333333333333333333333333"}}}))
        .unwrap();
        let found: Vec<_> = contracts(&net)
            .into_iter()
            .map(|c| (c.name, c.address))
            .collect();
        assert!(found.contains(&(
            "DisputeGameFactoryProxy".into(),
            "0x1111111111111111111111111111111111111111".into()
        )));
        assert!(found.contains(&(
            "OptimismPortalProxy".into(),
            "0x3333333333333333333333333333333333333333".into()
        )));
    }

    #[test]
    fn references_resolve_to_the_nodes_service_and_a_missing_one_names_the_field() {
        let seq = node(
            "seq",
            json!({"optimismNetworkRef": {"name": "devnet"}, "nodeType": "sequencer"}),
        );
        let batcher = json!({"metadata": {"name": "b", "namespace": "chain"}, "spec": {"sequencerRef": {"name": "seq"}}});
        let refs = references(
            "OpBatcher",
            &batcher,
            |n| (n == "seq").then_some(&seq),
            &BTreeMap::new(),
        )
        .unwrap();
        let urls: Vec<_> = refs[0].endpoints.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://seq.chain.svc:8545",
                "ws://seq.chain.svc:8546",
                "http://seq.chain.svc:9545"
            ]
        );
        let err = references("OpBatcher", &batcher, |_| None, &BTreeMap::new()).unwrap_err();
        assert!(
            err.to_string()
                .contains("spec.sequencerRef.name names \"seq\""),
            "{err}"
        );
    }

    #[test]
    fn a_sequencer_whose_peer_id_is_known_is_reachable_over_p2p_through_its_p2p_service() {
        let seq = node(
            "seq",
            json!({"optimismNetworkRef": {"name": "devnet"}, "nodeType": "sequencer"}),
        );
        let replica = json!({"metadata": {"name": "r", "namespace": "chain"}, "spec": {"sequencerRef": {"name": "seq"}}});
        let peer_ids = BTreeMap::from([("seq".to_owned(), "16Uiu2HAmExample".to_owned())]);
        let refs = references("OpNode", &replica, |_| Some(&seq), &peer_ids).unwrap();
        let p2p = refs[0]
            .endpoints
            .iter()
            .find(|e| e.name == endpoint::ROLLUP_P2P)
            .expect("a rollup-p2p endpoint");
        assert_eq!(
            p2p.url,
            "/dns4/seq-p2p.chain.svc/tcp/9222/p2p/16Uiu2HAmExample"
        );
        let without = references("OpNode", &replica, |_| Some(&seq), &BTreeMap::new()).unwrap();
        assert!(
            without[0]
                .endpoints
                .iter()
                .all(|e| e.name != endpoint::ROLLUP_P2P)
        );
    }

    #[test]
    fn status_never_reaches_the_plugin() {
        let net = network(
            json!({"chainID": 1, "l1ChainID": 1, "networkName": "op-sepolia", "l1RpcUrl": "http://l1"}),
        );
        let cr = json!({"kind": "OpNode", "metadata": {"name": "n"}, "spec": {}, "status": {"phase": "Running"}});
        let input = render_input("OpNode", &cr, &net, vec![]).unwrap();
        assert!(!input.resource.contains("status"));
    }
}
