//! Fixtures (render inputs as the host would build them) and helpers shared by the tests.
//! Every test runs the BUILT plugin (`plugins/build.sh`) in the operator's sandbox.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use opstack_plugin_sdk::harness::{Harness, Rendered};
use opstack_plugin_sdk::serde_json::{self, Value, json};
use opstack_plugin_sdk::{Endpoint, NamedObject, RenderInput, ResolvedReference};

pub const PLUGIN: &str = "plugin_op_node";

/// The built plugin, compiled once for the whole test binary.
pub fn plugin() -> &'static Harness {
    Harness::built(PLUGIN)
}

pub fn render(input: &RenderInput) -> Rendered {
    plugin()
        .render(input)
        .unwrap_or_else(|e| panic!("render failed: {e}"))
}

fn network_spec(extra: Value) -> Value {
    let mut spec = json!({
        "chainID": 11155420,
        "l1ChainID": 11155111,
        "l1RpcUrl": "https://l1.example.org",
        "l1BeaconUrl": "https://beacon.example.org",
        "sharedConfig": {
            "logging": {"level": "info", "format": "json"},
            "metrics": {"enabled": true, "port": 7300},
            "security": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000}
        }
    });
    merge(&mut spec, extra);
    spec
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (b, e) => *b = e,
    }
}

fn op_node(name: &str, spec: Value) -> String {
    json!({
        "apiVersion": "optimism.io/v1alpha1",
        "kind": "OpNode",
        "metadata": {"name": name, "namespace": "chain-a"},
        "spec": spec,
    })
    .to_string()
}

fn named(purpose: &str, name: &str) -> NamedObject {
    NamedObject {
        purpose: purpose.into(),
        name: name.into(),
    }
}

/// The input the host builds: generated jwt and p2p-key Secrets unless told otherwise.
fn input(name: &str, spec: Value, network: Value) -> RenderInput {
    let mut input = RenderInput {
        kind: "OpNode".into(),
        resource: op_node(name, spec),
        ..Default::default()
    };
    input.network.name = "chain-a".into();
    input.network.spec = network_spec(network).to_string();
    input.network.secrets = vec![
        named("jwt", &format!("{name}-jwt")),
        named("p2p-key", &format!("{name}-p2p-key")),
    ];
    input
}

fn sequencer_ref(name: &str) -> ResolvedReference {
    ResolvedReference {
        field: "sequencerRef".into(),
        kind: "OpNode".into(),
        name: name.into(),
        endpoints: vec![
            Endpoint {
                name: "execution-rpc".into(),
                url: format!("http://{name}.chain-a.svc:8545"),
            },
            Endpoint {
                name: "execution-ws".into(),
                url: format!("ws://{name}.chain-a.svc:8546"),
            },
            Endpoint {
                name: "rollup-rpc".into(),
                url: format!("http://{name}.chain-a.svc:9545"),
            },
        ],
    }
}

/// A sequencer on op-reth of a registry chain, signing with its key from a Secret.
pub fn sequencer_reth() -> RenderInput {
    let mut input = input(
        "seq",
        json!({
            "optimismNetworkRef": {"name": "chain-a"},
            "nodeType": "sequencer",
            "opNode": {
                "sequencer": {
                    "l1Confs": 4,
                    "signingKey": {"secretRef": {"name": "seq-signer", "key": "key"}}
                }
            },
            "opReth": {"storage": {"size": "500Gi", "storageClassName": "fast-nvme"}}
        }),
        json!({"networkName": "ink-sepolia", "chainID": 763373}),
    );
    input
        .network
        .secrets
        .push(named("sequencer-key", "seq-signer"));
    input
}

/// A replica on op-reth that follows the sequencer OpNode `seq` of its namespace.
pub fn replica_reth_sequencer_ref() -> RenderInput {
    let mut input = input(
        "replica",
        json!({
            "optimismNetworkRef": {"name": "chain-a"},
            "nodeType": "replica",
            "sequencerRef": {"name": "seq"},
            "opReth": {
                "networking": {"http": {"apis": ["eth", "net", "web3", "debug", "txpool"]}},
                "p2p": {"maxInboundPeers": 50, "bootnodes": ["enode://aa@boot.example.org:30303"]},
                "txpool": {"pendingMaxCount": 20000, "lifetimeSeconds": 3600}
            },
            "resources": {
                "executionClient": {"requests": {"cpu": "4", "memory": "16Gi"}}
            }
        }),
        json!({"networkName": "op-sepolia"}),
    );
    input.references.push(sequencer_ref("seq"));
    input
}

/// A replica of OP Mainnet on op-geth, forwarding to OP's public sequencer.
pub fn replica_geth_named() -> RenderInput {
    input(
        "geth-replica",
        json!({
            "optimismNetworkRef": {"name": "chain-a"},
            "nodeType": "replica",
            "sequencerUrl": "https://mainnet-sequencer.optimism.io",
            "executionClient": "op-geth",
            "opGeth": {
                "syncMode": "snap",
                "stateScheme": "path",
                "cacheMb": 8192,
                "txpool": {"noLocals": true, "journalRemotes": true, "lifetime": "1h"},
                "rollup": {"historicalRpc": "http://l2geth.chain-a.svc:8545"}
            }
        }),
        json!({"networkName": "op-mainnet", "chainID": 10, "l1ChainID": 1}),
    )
}

fn custom_chain(name: &str, client: &str) -> RenderInput {
    let mut input = input(
        name,
        json!({
            "optimismNetworkRef": {"name": "chain-a"},
            "nodeType": "replica",
            "sequencerRef": {"name": "seq"},
            "executionClient": client,
            "opNode": {"p2p": {"discovery": {"bootnodes": ["enr:-J64QBbwPjPLZ6IOOToOLsSjtFUjjzN66qmBZdUexpO32Klrs"]}}}
        }),
        json!({
            "chainID": 901,
            "rollupConfig": {"inline": "{\"l2_chain_id\":901}"},
            "l2Genesis": {"inline": "{\"config\":{\"chainId\":901}}"}
        }),
    );
    input.network.config_maps = vec![
        named("rollup-config", "chain-a-chain-config"),
        named("l2-genesis", "chain-a-chain-config"),
    ];
    input.references.push(sequencer_ref("seq"));
    input
}

/// A custom chain (no registry name): rollup config and genesis from the host's ConfigMap;
/// op-geth writes the genesis with a one-time `geth init`.
pub fn custom_chain_geth() -> RenderInput {
    custom_chain("custom-geth", "op-geth")
}

/// The same custom chain on op-reth (`--chain <genesis file>`).
pub fn custom_chain_reth() -> RenderInput {
    custom_chain("custom-reth", "op-reth")
}

/// A sequencer of a devnet (its own L1) hidden from discovery, with static peers, an archive
/// op-reth, the user's own JWT Secret key and the chain files from the user's ConfigMap keys.
pub fn p2p_discovery_off() -> RenderInput {
    let mut input = input(
        "hidden-seq",
        json!({
            "optimismNetworkRef": {"name": "chain-a"},
            "nodeType": "sequencer",
            "opNode": {
                "syncMode": "consensus-layer",
                "reqRespSync": true,
                "p2p": {
                    "discovery": {"enabled": false},
                    "staticPeers": [
                        "/dns4/replica-0.replica-p2p.chain-a.svc/tcp/9222/p2p/16Uiu2HAmQ1",
                        "/dns4/replica-1.replica-p2p.chain-a.svc/tcp/9222/p2p/16Uiu2HAmQ2"
                    ],
                    "peerScoring": "light",
                    "peers": {"lo": 2, "hi": 10},
                    "privateKey": {"secretRef": {"name": "my-p2p", "key": "node.key"}}
                },
                "sequencer": {
                    "stopped": true,
                    "maxSafeLag": 1800,
                    "signingKey": {"secretRef": {"name": "seq-signer", "key": "unsafe-signer"}}
                },
                "engine": {"jwtSecret": {"secretRef": {"name": "my-jwt", "key": "secret"}}}
            },
            "opReth": {
                "nodeMode": "archive",
                "p2p": {"noDiscovery": true, "trustedPeers": ["enode://bb@replica-0.replica-p2p.chain-a.svc:30303"]},
                "rollup": {"disableTxPoolGossip": true}
            }
        }),
        json!({
            "chainID": 902,
            "l1ChainID": 900,
            "rollupConfig": {"configMapRef": {"name": "chain-files", "key": "rollup-v2.json"}},
            "l2Genesis": {"configMapRef": {"name": "chain-files", "key": "genesis-v2.json"}},
            "l1ChainConfig": {"configMapRef": {"name": "chain-files", "key": "l1.json"}}
        }),
    );
    input.network.secrets = vec![
        named("jwt", "my-jwt"),
        named("p2p-key", "my-p2p"),
        named("sequencer-key", "seq-signer"),
    ];
    input.network.config_maps = vec![
        named("rollup-config", "chain-files"),
        named("l2-genesis", "chain-files"),
        named("l1-chain-config", "chain-files"),
    ];
    input
}

/// A replica whose L1 URLs carry API keys (kept in Secrets), with p2p and metrics off, a load
/// balancer and the network's shared resources and identity.
pub fn secret_l1_url() -> RenderInput {
    let mut input = input(
        "rpc",
        json!({
            "optimismNetworkRef": {"name": "chain-a"},
            "nodeType": "replica",
            "sequencerUrl": "https://sepolia-sequencer.optimism.io",
            "opNode": {"p2p": {"enabled": false}, "l1RpcKind": "alchemy", "l1TrustRpc": true},
            "service": {"type": "LoadBalancer", "annotations": {"example.org/lb": "internal"}}
        }),
        json!({
            "networkName": "op-sepolia",
            "l1RpcUrl": null,
            "l1BeaconUrl": null,
            "l1RpcUrlSecretRef": {"name": "l1-endpoints", "key": "rpc"},
            "l1BeaconUrlSecretRef": {"name": "l1-endpoints", "key": "beacon"},
            "sharedConfig": {
                "logging": {"level": "debug", "format": "text"},
                "metrics": {"enabled": false},
                "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "8Gi"}},
                "security": {"runAsUser": 10001, "runAsGroup": 10002, "fsGroup": 10003}
            }
        }),
    );
    input.network.secrets = vec![
        named("jwt", "rpc-jwt"),
        named("l1-rpc-url", "l1-endpoints"),
        named("l1-beacon-url", "l1-endpoints"),
    ];
    input
}

/// A replica of a devnet whose L1 (`geth --dev`) has no beacon API and a 2-s block time, on
/// op-geth, with the chain's genesis gzip-compressed (a real genesis does not fit a ConfigMap
/// uncompressed) and its sequencer's P2P identity known to the host.
pub fn devnet_replica_geth() -> RenderInput {
    let mut input = input(
        "devnet-replica",
        json!({
            "optimismNetworkRef": {"name": "chain-a"},
            "nodeType": "replica",
            "sequencerRef": {"name": "seq"},
            "executionClient": "op-geth",
            "opNode": {
                "l1TrustRpc": true,
                "l1HttpPollInterval": "2s",
                "l1EpochPollInterval": "2s",
                "verifierL1Confs": 0,
                "p2p": {"discovery": {"enabled": false}}
            },
            "opGeth": {"syncMode": "full", "stateScheme": "hash"}
        }),
        json!({
            "chainID": 777,
            "l1ChainID": 1337,
            "l1BeaconUrl": null,
            "l1BeaconIgnore": true,
            "rollupConfig": {"configMapRef": {"name": "devnet-chain", "key": "rollup.json"}},
            "l2Genesis": {"configMapRef": {"name": "devnet-chain", "key": "genesis.json.gz"}},
            "l1ChainConfig": {"configMapRef": {"name": "devnet-chain", "key": "l1-chain-config.json"}}
        }),
    );
    input.network.config_maps = vec![
        named("rollup-config", "devnet-chain"),
        named("l2-genesis", "devnet-chain"),
        named("l1-chain-config", "devnet-chain"),
    ];
    let mut sequencer = sequencer_ref("seq");
    sequencer.endpoints.push(Endpoint {
        name: "rollup-p2p".into(),
        url: SEQUENCER_MULTIADDR.into(),
    });
    input.references.push(sequencer);
    input
}

/// The sequencer's libp2p address the host passes in `devnet_replica_geth`.
pub const SEQUENCER_MULTIADDR: &str =
    "/dns4/seq-p2p.chain-a.svc/tcp/9222/p2p/16Uiu2HAm7y4wLLNsMjdvS9dKgbXmmmDr8TaiL2HWZrd6sRFZqGZM";

/// Every fixture, by name.
pub fn fixtures() -> Vec<(&'static str, RenderInput)> {
    vec![
        ("sequencer_reth", sequencer_reth()),
        ("replica_reth_sequencer_ref", replica_reth_sequencer_ref()),
        ("replica_geth_named", replica_geth_named()),
        ("custom_chain_geth", custom_chain_geth()),
        ("custom_chain_reth", custom_chain_reth()),
        ("p2p_discovery_off", p2p_discovery_off()),
        ("secret_l1_url", secret_l1_url()),
        ("devnet_replica_geth", devnet_replica_geth()),
    ]
}

pub fn is_sequencer(input: &RenderInput) -> bool {
    let r: Value = serde_json::from_str(&input.resource).unwrap();
    r["spec"]["nodeType"] == "sequencer"
}

pub fn of_kind<'a>(rendered: &'a Rendered, kind: &str) -> Vec<&'a Value> {
    rendered
        .objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .collect()
}

/// Every container of the StatefulSet, init containers included.
pub fn containers(rendered: &Rendered) -> Vec<&Value> {
    let sts = of_kind(rendered, "StatefulSet");
    assert_eq!(sts.len(), 1, "exactly one StatefulSet");
    let pod = &sts[0]["spec"]["template"]["spec"];
    let mut out: Vec<&Value> = Vec::new();
    for list in ["initContainers", "containers"] {
        if let Some(cs) = pod[list].as_array() {
            out.extend(cs.iter());
        }
    }
    out
}

pub fn container<'a>(rendered: &'a Rendered, name: &str) -> Option<&'a Value> {
    containers(rendered).into_iter().find(|c| c["name"] == name)
}

/// command + args of a container, as strings.
pub fn argv(container: &Value) -> Vec<String> {
    ["command", "args"]
        .iter()
        .flat_map(|k| container[*k].as_array().cloned().unwrap_or_default())
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Every flag token of a container (`--name` without its value), including those inside
/// `sh -c` scripts. Single-dash tokens other than `-v…` are shell syntax of such scripts.
pub fn flag_names(container: &Value) -> Vec<String> {
    argv(container)
        .iter()
        .flat_map(|a| a.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|t| {
            if t.starts_with("--") {
                Some(t.split('=').next().unwrap().to_owned())
            } else if t.len() > 1 && t[1..].chars().all(|c| c == 'v') {
                // op-reth's count flag `-vvv` is `-v` repeated.
                Some("-v".to_owned())
            } else {
                // Shell syntax of an `sh -c` script (`set -e`, `[ -f … ]`).
                None
            }
        })
        .collect()
}

/// The value of `--name=value` in a container's args.
pub fn flag_value(container: &Value, name: &str) -> Option<String> {
    let prefix = format!("--{name}=");
    argv(container)
        .iter()
        .find_map(|a| a.strip_prefix(&prefix).map(str::to_owned))
}

pub fn has_flag(container: &Value, name: &str) -> bool {
    let bare = format!("--{name}");
    let valued = format!("--{name}=");
    argv(container)
        .iter()
        .any(|a| *a == bare || a.starts_with(&valued))
}

/// A binary's flag list: flag names (with aliases), env var names, and the flags marked
/// deprecated.
pub struct FlagList {
    pub flags: BTreeSet<String>,
    pub env: BTreeSet<String>,
    pub deprecated: BTreeSet<String>,
}

pub fn flag_list(binary: &str) -> FlagList {
    let path = format!(
        "{}/../testdata/flags/{binary}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut list = FlagList {
        flags: BTreeSet::new(),
        env: BTreeSet::new(),
        deprecated: BTreeSet::new(),
    };
    for line in text.lines().filter(|l| l.starts_with('-')) {
        let cols: Vec<&str> = line.split('\t').collect();
        // `-v, --verbosity` names two spellings in one column.
        let names: Vec<String> = cols[0]
            .split(", ")
            .map(str::trim)
            .map(str::to_owned)
            .collect();
        let meaning = cols.get(3).copied().unwrap_or_default();
        for name in &names {
            list.flags.insert(name.clone());
            if meaning.contains("deprecated") {
                list.deprecated.insert(name.clone());
            }
        }
        // Aliases: `[alias: --a]`, `[aliases: --a, --b]`, `[alias: --a|hidden]`.
        for part in meaning.split(['[', ']']) {
            let part = part.trim();
            if let Some(rest) = part
                .strip_prefix("alias:")
                .or_else(|| part.strip_prefix("aliases:"))
            {
                for alias in rest.split([',', '|', ' ']).filter(|a| a.starts_with("--")) {
                    list.flags.insert(alias.to_owned());
                }
            }
        }
        if let Some(env) = cols.get(1) {
            for var in env.split(',').filter(|v| *v != "-") {
                list.env.insert(var.trim().to_owned());
            }
        }
    }
    assert!(list.flags.len() > 30, "{path} parsed to too few flags");
    list
}

/// The binary behind a container of this plugin.
pub fn binary_of(container: &Value) -> &'static str {
    match container["name"].as_str().unwrap() {
        "op-node" => "op-node",
        "op-reth" => "op-reth",
        "op-geth" | "geth-init" => "op-geth",
        "genesis-unpack" => "opstack-operator",
        other => panic!("unknown container {other}"),
    }
}

/// The objects and warnings as one YAML-friendly document for snapshots.
pub fn snapshot_of(rendered: &Rendered) -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        ("objects", Value::Array(rendered.objects.clone())),
        (
            "warnings",
            Value::Array(
                rendered
                    .warnings
                    .iter()
                    .map(|w| Value::String(w.clone()))
                    .collect(),
            ),
        ),
    ])
}
