//! A small, well-behaved OpNode renderer built with the SDK: the control case of the sandbox
//! tests ("a good plugin still renders right after a bad one") and the benchmark's workload.
//! It reads the resource at the JSON level so it stays independent of CRD field changes.

use std::collections::BTreeMap;

use opstack_plugin_sdk::k8s::{self, ContainerBuilder, ServiceBuilder};
use opstack_plugin_sdk::k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use opstack_plugin_sdk::k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec,
    ResourceRequirements, VolumeResourceRequirements,
};
use opstack_plugin_sdk::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use opstack_plugin_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta,
};
use opstack_plugin_sdk::serde_json::{self, Value};
use opstack_plugin_sdk::{
    Flags, PluginError, PluginInfo, RenderInput, RenderOutput, Renderer, export_renderer,
};

pub struct MinimalOpNode;

impl Renderer for MinimalOpNode {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "test-minimal-op-node",
            env!("CARGO_PKG_VERSION"),
            &["OpNode"],
        )
    }

    fn validate(input: &RenderInput) -> Result<Vec<String>, PluginError> {
        check(input, &input.resource_json()?)
    }

    fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
        render(input)
    }
}

export_renderer!(MinimalOpNode);

fn check(input: &RenderInput, resource: &Value) -> Result<Vec<String>, PluginError> {
    let mut problems = Vec::new();
    match str_at(resource, "/spec/nodeType") {
        Some("sequencer" | "replica") => {}
        other => problems.push(format!(
            "spec.nodeType must be sequencer or replica, got {other:?}"
        )),
    }
    if input.secret("jwt").is_none() {
        problems.push("no jwt Secret was provided by the host".to_owned());
    }
    if problems.is_empty() {
        Ok(Vec::new())
    } else {
        Err(PluginError::Invalid(problems))
    }
}

/// The render function itself, callable natively (the benchmark's baseline).
pub fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
    // Parse the resource once; validation and rendering share the tree.
    let resource = input.resource_json()?;
    check(input, &resource)?;
    let name = str_at(&resource, "/metadata/name")
        .ok_or_else(|| PluginError::invalid("metadata.name is missing"))?
        .to_owned();
    let spec = &resource["spec"];
    let labels = k8s::labels("op-node", &name, "node");
    let selector: BTreeMap<String, String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "app.kubernetes.io/managed-by")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut out = RenderOutput::default();

    let headless = ServiceBuilder::new(&format!("{name}-headless"), &labels, &selector)
        .headless()
        .port("p2p", 9222)
        .build();
    out.push(&headless)?;
    let rpc = ServiceBuilder::new(&name, &labels, &selector)
        .port("rpc", 9545)
        .port("el-rpc", 8545)
        .port("el-ws", 8546)
        .build();
    out.push(&rpc)?;
    out.push(&statefulset(input, &name, spec, &labels, &selector)?)?;
    if spec["executionClient"].as_str() == Some("op-geth") {
        out.warn("op-geth reached end of support; prefer op-reth");
    }
    Ok(out)
}

fn statefulset(
    input: &RenderInput,
    name: &str,
    spec: &Value,
    labels: &BTreeMap<String, String>,
    selector: &BTreeMap<String, String>,
) -> Result<StatefulSet, PluginError> {
    let jwt = input.require_secret("jwt")?;
    let rollup = input.config_map("rollup-config").ok_or_else(|| {
        PluginError::invalid("no rollup-config ConfigMap was provided by the host")
    })?;
    let op_node = &spec["opNode"];
    let reth = &spec["opReth"];

    let mut node_flags = Flags::new();
    node_flags
        .set("l2", "http://127.0.0.1:8551")
        .set("l2.jwt-secret", "/secrets/jwt/jwt.hex")
        .set("rollup.config", "/config/rollup.json")
        .set("rpc.addr", "0.0.0.0")
        .set("rpc.port", u64_at(op_node, "/rpc/port").unwrap_or(9545))
        .set(
            "p2p.listen.tcp",
            u64_at(op_node, "/p2p/listenPort").unwrap_or(9222),
        )
        .set(
            "p2p.peers.hi",
            u64_at(op_node, "/p2p/maxPeers").unwrap_or(30),
        )
        .set("p2p.priv.path", "/secrets/p2p/private-key")
        .set(
            "syncmode",
            str_at(op_node, "/syncMode").unwrap_or("execution-layer"),
        )
        .set(
            "log.format",
            str_at(spec, "/logging/format").unwrap_or("logfmt"),
        )
        .set(
            "log.level",
            str_at(spec, "/logging/level").unwrap_or("info"),
        )
        .switch_if(
            "metrics.enabled",
            spec["metrics"]["enabled"].as_bool().unwrap_or(false),
        )
        .set(
            "metrics.port",
            u64_at(spec, "/metrics/port").unwrap_or(7300),
        )
        .set(
            "l1.trustrpc",
            op_node["l1"]["trustRpc"].as_bool().unwrap_or(false),
        )
        .set(
            "l1.rpckind",
            str_at(op_node, "/l1/rpcKind").unwrap_or("standard"),
        );
    for peer in op_node["p2p"]["staticPeers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        node_flags.add("p2p.static", peer);
    }
    if let Some(sequencer) = input.endpoint("sequencerRef", "el-rpc") {
        node_flags.set("l2.sequencer-http", sequencer);
    }
    for (flag, value) in op_node["extraFlags"].as_object().into_iter().flatten() {
        node_flags.set(flag, value.as_str().unwrap_or_default());
    }

    let mut reth_flags = Flags::new();
    reth_flags
        .set("chain", "/genesis/genesis.json")
        .set("datadir", "/data")
        .set("authrpc.addr", "127.0.0.1")
        .set("authrpc.port", u64_at(reth, "/authrpcPort").unwrap_or(8551))
        .set("authrpc.jwtsecret", "/secrets/jwt/jwt.hex")
        .switch("http")
        .set("http.addr", "0.0.0.0")
        .set("http.port", u64_at(reth, "/rpc/httpPort").unwrap_or(8545))
        .set(
            "http.api",
            join(&reth["rpc"]["apis"]).unwrap_or_else(|| "eth,net,web3".into()),
        )
        .switch("ws")
        .set("ws.port", u64_at(reth, "/rpc/wsPort").unwrap_or(8546))
        .set("port", u64_at(reth, "/p2pPort").unwrap_or(30303));
    if let Some(bootnodes) = join(&reth["bootnodes"]) {
        reth_flags.set("bootnodes", bootnodes);
    }
    if str_at(reth, "/pruning") == Some("full") {
        reth_flags.switch("full");
    }
    if let Some(sequencer) = input.endpoint("sequencerRef", "el-rpc") {
        reth_flags.set("rollup.sequencer-http", sequencer);
    }
    for (flag, value) in reth["extraFlags"].as_object().into_iter().flatten() {
        reth_flags.set(flag, value.as_str().unwrap_or_default());
    }

    let node = ContainerBuilder::new("op-node", &image(op_node, "op-node")?)
        .command(&["op-node"])
        .flags(node_flags)
        .port("rpc", 9545)
        .port("p2p", 9222)
        .port("metrics", 7300)
        .mount("jwt", "/secrets/jwt", true)
        .mount("p2p-key", "/secrets/p2p", true)
        .mount("rollup", "/config", true)
        .mount("op-node-data", "/data", false)
        .readiness(k8s::http_probe("/healthz", "metrics", 10, 3))
        .resources(resources(&spec["resources"]["opNode"])?)
        .build();
    let reth_container = ContainerBuilder::new("op-reth", &image(reth, "op-reth")?)
        .command(&["op-reth"])
        .arg("node")
        .flags(reth_flags)
        .port("el-rpc", 8545)
        .port("el-ws", 8546)
        .port("el-p2p", 30303)
        .mount("jwt", "/secrets/jwt", true)
        .mount("genesis", "/genesis", true)
        .mount("data", "/data", false)
        .readiness(k8s::tcp_probe("el-rpc", 10, 3))
        .liveness(k8s::tcp_probe("el-rpc", 30, 10))
        .resources(resources(&spec["resources"]["executionClient"])?)
        .build();

    let mut volumes = vec![
        k8s::secret_volume("jwt", jwt),
        k8s::config_map_volume("rollup", rollup),
    ];
    if let Some(p2p) = input.secret("p2p-key") {
        volumes.push(k8s::secret_volume("p2p-key", p2p));
    }
    if let Some(genesis) = input.config_map("genesis") {
        volumes.push(k8s::config_map_volume("genesis", genesis));
    }

    Ok(StatefulSet {
        metadata: k8s::meta(name, labels),
        spec: StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(format!("{name}-headless")),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                match_expressions: None,
            },
            pod_management_policy: Some("Parallel".into()),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".into()),
                    when_scaled: Some("Retain".into()),
                },
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(k8s::restricted_pod_security_context(10001)),
                    termination_grace_period_seconds: Some(300),
                    containers: vec![node, reth_container],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            volume_claim_templates: Some(vec![
                claim("data", &spec["storage"]["executionClient"]),
                claim("op-node-data", &spec["storage"]["opNode"]),
            ]),
            ..Default::default()
        },
        status: None,
    })
}

fn claim(name: &str, storage: &Value) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![
                str_at(storage, "/accessMode")
                    .unwrap_or("ReadWriteOnce")
                    .into(),
            ]),
            storage_class_name: str_at(storage, "/storageClassName").map(Into::into),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(str_at(storage, "/size").unwrap_or("100Gi").into()),
                )])),
                limits: None,
            }),
            ..Default::default()
        }),
        status: None,
    }
}

fn image(component: &Value, what: &str) -> Result<String, PluginError> {
    match (
        str_at(component, "/image/repository"),
        str_at(component, "/image/tag"),
    ) {
        (Some(repo), Some(tag)) => Ok(format!("{repo}:{tag}")),
        _ => Err(PluginError::invalid(format!(
            "spec.{what}.image needs repository and tag"
        ))),
    }
}

fn resources(value: &Value) -> Result<Option<ResourceRequirements>, PluginError> {
    if value.is_null() {
        return Ok(None);
    }
    serde_json::from_value(value.clone())
        .map(Some)
        .map_err(|e| PluginError::invalid(format!("invalid resources: {e}")))
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn u64_at(value: &Value, pointer: &str) -> Option<u64> {
    value.pointer(pointer).and_then(Value::as_u64)
}

fn join(list: &Value) -> Option<String> {
    let items: Vec<&str> = list.as_array()?.iter().filter_map(Value::as_str).collect();
    (!items.is_empty()).then(|| items.join(","))
}

/// The benchmark and test input: a ~5 KB OpNode replica of op-sepolia with its network context.
pub fn fixture_input() -> RenderInput {
    input_from_json(include_str!("../fixtures/opnode-input.json"))
}

/// Builds a [`RenderInput`] from a JSON document laid out like the WIT record (objects for
/// `resource` and `network.spec`, which travel as JSON strings).
pub fn input_from_json(json: &str) -> RenderInput {
    let doc: Value = serde_json::from_str(json).expect("fixture is valid JSON");
    let named = |v: &Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|o| opstack_plugin_sdk::NamedObject {
                purpose: o["purpose"].as_str().unwrap_or_default().into(),
                name: o["name"].as_str().unwrap_or_default().into(),
            })
            .collect()
    };
    let network = &doc["network"];
    RenderInput {
        kind: doc["kind"].as_str().unwrap_or_default().into(),
        resource: doc["resource"].to_string(),
        network: opstack_plugin_sdk::NetworkContext {
            name: network["name"].as_str().unwrap_or_default().into(),
            spec: network["spec"].to_string(),
            contracts: network["contracts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| opstack_plugin_sdk::ContractAddress {
                    name: c["name"].as_str().unwrap_or_default().into(),
                    address: c["address"].as_str().unwrap_or_default().into(),
                })
                .collect(),
            secrets: named(&network["secrets"]),
            config_maps: named(&network["configMaps"]),
        },
        references: doc["references"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| opstack_plugin_sdk::ResolvedReference {
                field: r["field"].as_str().unwrap_or_default().into(),
                kind: r["kind"].as_str().unwrap_or_default().into(),
                name: r["name"].as_str().unwrap_or_default().into(),
                endpoints: r["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| opstack_plugin_sdk::Endpoint {
                        name: e["name"].as_str().unwrap_or_default().into(),
                        url: e["url"].as_str().unwrap_or_default().into(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_input_is_about_five_kilobytes() {
        let input = fixture_input();
        let strings = |objects: &[opstack_plugin_sdk::NamedObject]| -> usize {
            objects.iter().map(|o| o.purpose.len() + o.name.len()).sum()
        };
        let size = input.resource.len()
            + input.network.spec.len()
            + input
                .network
                .contracts
                .iter()
                .map(|c| c.name.len() + c.address.len())
                .sum::<usize>()
            + strings(&input.network.secrets)
            + strings(&input.network.config_maps);
        assert!((4_000..6_000).contains(&size), "{size}");
    }

    #[test]
    fn native_render_gives_two_services_and_a_statefulset() {
        let out = render(&fixture_input()).unwrap();
        let kinds: Vec<String> = out
            .objects
            .iter()
            .map(|o| {
                serde_json::from_str::<Value>(o).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(kinds, ["Service", "Service", "StatefulSet"]);
    }
}
