//! The StatefulSet, its volumes, the two Services and a sequencer's NetworkPolicy.

use std::collections::BTreeMap;

use opstack_plugin_sdk::crds::common::{AccessMode, PullPolicy, ServiceType, StorageSpec};
use opstack_plugin_sdk::crds::opnode::ExecutionClient;
use opstack_plugin_sdk::k8s::{self, ContainerBuilder, ServiceBuilder};
use opstack_plugin_sdk::k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use opstack_plugin_sdk::k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    KeyToPath, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec,
    ResourceRequirements, SecretKeySelector, SecretVolumeSource, Service, ServicePort, Volume,
    VolumeResourceRequirements,
};
use opstack_plugin_sdk::k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use opstack_plugin_sdk::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use opstack_plugin_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta,
};
use opstack_plugin_sdk::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::plan::{ChainSource, Plan, Ports};
use crate::{op_geth, op_node, op_reth};

/// Volume names of the pod.
pub mod volumes {
    /// The execution client's chain data (volumeClaimTemplate).
    pub const EL_DATA: &str = "data";
    /// op-node's peerstore, discovery DB and safe-head DB (volumeClaimTemplate).
    pub const OP_NODE_DATA: &str = "op-node";
    pub const JWT: &str = "jwt";
    pub const P2P_KEY: &str = "p2p-key";
    pub const ROLLUP: &str = "rollup-config";
    /// The genesis file the execution client reads: the ConfigMap's file, or, for a compressed
    /// genesis, the emptyDir it is unpacked into.
    pub const GENESIS: &str = "l2-genesis";
    /// A compressed genesis as the ConfigMap holds it (read by the unpack step only).
    pub const GENESIS_PACKED: &str = "l2-genesis-packed";
    pub const L1_CHAIN_CONFIG: &str = "l1-chain-config";
    pub const OP_NODE_TMP: &str = "op-node-tmp";
    pub const EL_TMP: &str = "el-tmp";
}

/// Paths inside the containers. Each container has its own mounts, so both data volumes sit
/// at `/data` of their own container.
pub mod paths {
    pub const EL_DATA: &str = "/data";
    pub const OP_NODE_DATA: &str = "/data";
    pub const PEERSTORE: &str = "/data/peerstore";
    pub const DISCOVERY_DB: &str = "/data/discovery";
    pub const SAFEDB: &str = "/data/safedb";
    pub const JWT_DIR: &str = "/secrets/jwt";
    pub const JWT_FILE: &str = "/secrets/jwt/jwt.hex";
    pub const P2P_KEY_DIR: &str = "/secrets/p2p";
    pub const P2P_KEY_FILE: &str = "/secrets/p2p/p2p.key";
    pub const ROLLUP_DIR: &str = "/chain/rollup";
    pub const ROLLUP_FILE: &str = "/chain/rollup/rollup.json";
    pub const GENESIS_DIR: &str = "/chain/genesis";
    pub const GENESIS_FILE: &str = "/chain/genesis/genesis.json";
    pub const GENESIS_PACKED_DIR: &str = "/chain/genesis-packed";
    pub const GENESIS_PACKED_FILE: &str = "/chain/genesis-packed/genesis.json.gz";
    pub const L1_CHAIN_CONFIG_DIR: &str = "/chain/l1";
    pub const L1_CHAIN_CONFIG_FILE: &str = "/chain/l1/l1-chain-config.json";
}

/// Default size of the execution client's volume.
const DEFAULT_EL_STORAGE: &str = "1Ti";
/// op-node's volume: peerstore, discovery DB and safe-head DB are a few hundred MB at most.
const OP_NODE_STORAGE: &str = "1Gi";
/// Time for the execution client to flush its in-memory state on shutdown; a kill mid-flush
/// costs a long re-sync.
const TERMINATION_GRACE_SECONDS: i64 = 300;

pub fn labels(plan: &Plan) -> BTreeMap<String, String> {
    k8s::labels("op-node", &plan.name, "node")
}

/// The selector: the labels minus `managed-by`, fixed for the life of the StatefulSet.
pub fn selector(plan: &Plan) -> BTreeMap<String, String> {
    labels(plan)
        .into_iter()
        .filter(|(k, _)| k != "app.kubernetes.io/managed-by")
        .collect()
}

/// The headless P2P Service; the host derives the same name for a replica's static peer.
pub fn p2p_service_name(plan: &Plan) -> String {
    opstack_plugin_sdk::crds::conventions::p2p_service(&plan.name)
}

pub fn statefulset(plan: &Plan) -> StatefulSet {
    let labels = labels(plan);
    let selector = selector(plan);
    let el = match plan.client {
        ExecutionClient::OpReth => op_reth::container(plan),
        ExecutionClient::OpGeth => op_geth::container(plan),
    };
    let init_containers: Vec<Container> = plan
        .genesis
        .is_compressed()
        .then(genesis_unpack_container)
        .into_iter()
        .chain(match plan.client {
            ExecutionClient::OpGeth => op_geth::init_container(plan),
            ExecutionClient::OpReth => None,
        })
        .collect();
    let init_containers = (!init_containers.is_empty()).then_some(init_containers);
    let security = &plan.security;
    let mut pod_security = k8s::restricted_pod_security_context(security.run_as_user);
    pod_security.run_as_group = Some(security.run_as_group);
    pod_security.fs_group = Some(security.fs_group);

    let pod = PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(pod_security),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        init_containers,
        containers: vec![op_node::container(plan), el],
        volumes: Some(pod_volumes(plan)),
        ..Default::default()
    };
    StatefulSet {
        metadata: k8s::meta(&plan.name, &labels),
        spec: StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(p2p_service_name(plan)),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            volume_claim_templates: Some(vec![
                claim(volumes::EL_DATA, &labels, el_storage(plan).as_ref()),
                claim(
                    volumes::OP_NODE_DATA,
                    &labels,
                    Some(&StorageSpec {
                        size: Quantity(OP_NODE_STORAGE.to_owned()),
                        storage_class_name: el_storage(plan).and_then(|s| s.storage_class_name),
                        access_mode: AccessMode::ReadWriteOnce,
                    }),
                ),
            ]),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".to_owned()),
                    when_scaled: Some("Retain".to_owned()),
                },
            ),
            ..Default::default()
        },
        status: None,
    }
}

fn el_storage(plan: &Plan) -> Option<StorageSpec> {
    match plan.client {
        ExecutionClient::OpReth => plan.spec.op_reth.as_ref().and_then(|c| c.storage.clone()),
        ExecutionClient::OpGeth => plan.spec.op_geth.as_ref().and_then(|c| c.storage.clone()),
    }
}

fn claim(
    name: &str,
    labels: &BTreeMap<String, String>,
    storage: Option<&StorageSpec>,
) -> PersistentVolumeClaim {
    let size = storage.map_or_else(
        || Quantity(DEFAULT_EL_STORAGE.to_owned()),
        |s| s.size.clone(),
    );
    let access = match storage.map(|s| s.access_mode).unwrap_or_default() {
        AccessMode::ReadWriteOnce => "ReadWriteOnce",
        AccessMode::ReadWriteOncePod => "ReadWriteOncePod",
    };
    PersistentVolumeClaim {
        metadata: k8s::meta(name, labels),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![access.to_owned()]),
            storage_class_name: storage.and_then(|s| s.storage_class_name.clone()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), size)])),
                limits: None,
            }),
            ..Default::default()
        }),
        status: None,
    }
}

fn pod_volumes(plan: &Plan) -> Vec<Volume> {
    let mut volumes = vec![secret_file_volume(
        volumes::JWT,
        &plan.jwt.secret,
        &plan.jwt.key,
        "jwt.hex",
    )];
    if let Some(key) = &plan.p2p_key {
        volumes.push(secret_file_volume(
            volumes::P2P_KEY,
            &key.secret,
            &key.key,
            "p2p.key",
        ));
    }
    if let ChainSource::File { config_map, key } = &plan.rollup {
        volumes.push(config_file_volume(
            volumes::ROLLUP,
            config_map,
            key,
            "rollup.json",
        ));
    }
    match &plan.genesis {
        ChainSource::File { config_map, key } if plan.genesis.is_compressed() => {
            volumes.push(config_file_volume(
                volumes::GENESIS_PACKED,
                config_map,
                key,
                "genesis.json.gz",
            ));
            volumes.push(sized_empty_dir(volumes::GENESIS, UNPACKED_GENESIS_LIMIT));
        }
        ChainSource::File { config_map, key } => volumes.push(config_file_volume(
            volumes::GENESIS,
            config_map,
            key,
            "genesis.json",
        )),
        ChainSource::Named(_) => {}
    }
    if let Some(ChainSource::File { config_map, key }) = &plan.l1_chain_config {
        volumes.push(config_file_volume(
            volumes::L1_CHAIN_CONFIG,
            config_map,
            key,
            "l1-chain-config.json",
        ));
    }
    volumes.push(empty_dir(volumes::OP_NODE_TMP));
    volumes.push(empty_dir(volumes::EL_TMP));
    volumes
}

/// One key of a Secret as one read-only file: only the key the binary reads enters the pod,
/// whatever else the user's Secret holds.
fn secret_file_volume(volume: &str, secret: &str, key: &str, file: &str) -> Volume {
    let mut v = k8s::secret_volume(volume, secret);
    let source: &mut SecretVolumeSource = v.secret.get_or_insert_with(Default::default);
    source.items = Some(vec![KeyToPath {
        key: key.to_owned(),
        path: file.to_owned(),
        ..Default::default()
    }]);
    v
}

fn config_file_volume(volume: &str, config_map: &str, key: &str, file: &str) -> Volume {
    let mut v = k8s::config_map_volume(volume, config_map);
    let source: &mut ConfigMapVolumeSource = v.config_map.get_or_insert_with(Default::default);
    source.items = Some(vec![KeyToPath {
        key: key.to_owned(),
        path: file.to_owned(),
        ..Default::default()
    }]);
    v
}

fn empty_dir(name: &str) -> Volume {
    sized_empty_dir(name, "256Mi")
}

/// Room for an unpacked genesis: op-deployer's are about 10 MB; a chain with large genesis
/// allocations may have far more.
const UNPACKED_GENESIS_LIMIT: &str = "1Gi";

/// The operator's own image (static, no shell): its `genesis unpack` writes a gzip-compressed
/// genesis out as JSON. Same release as this renderer, which is bundled into that image.
pub const GENESIS_UNPACK_IMAGE: &str = concat!(
    "ghcr.io/opstack-operator/opstack-operator:",
    env!("CARGO_PKG_VERSION")
);

/// The first init container of a node whose genesis is compressed: unpacks it into the
/// emptyDir the execution client (and `geth init`) read `genesis.json` from.
fn genesis_unpack_container() -> Container {
    let mut container = ContainerBuilder::new("genesis-unpack", GENESIS_UNPACK_IMAGE)
        .command(&["/usr/local/bin/opstack-operator", "genesis", "unpack"])
        .arg(&format!("--from={}", paths::GENESIS_PACKED_FILE))
        .arg(&format!("--to={}", paths::GENESIS_FILE))
        .mount(volumes::GENESIS_PACKED, paths::GENESIS_PACKED_DIR, true)
        .mount(volumes::GENESIS, paths::GENESIS_DIR, false)
        .build();
    container.resources = Some(ResourceRequirements {
        requests: Some(
            [
                ("cpu".to_owned(), Quantity("50m".to_owned())),
                ("memory".to_owned(), Quantity("64Mi".to_owned())),
            ]
            .into(),
        ),
        limits: Some([("memory".to_owned(), Quantity("1536Mi".to_owned()))].into()),
        ..Default::default()
    });
    container
}

fn sized_empty_dir(name: &str, limit: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: None,
            size_limit: Some(Quantity(limit.to_owned())),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Service other components use: RPC ports only. p2p stays on the headless `<cr>-p2p`
/// (peers dial the pod's stable DNS name; neither client advertises a load balancer's address,
/// so p2p behind one would not work anyway). The Engine API is on no Service.
pub fn rpc_service(plan: &Plan) -> Service {
    let ports = &plan.ports;
    let mut builder = ServiceBuilder::new(&plan.name, &labels(plan), &selector(plan))
        .type_(match plan.spec.service.type_ {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        })
        .port("http", ports.el_http);
    if let Some(p) = ports.el_ws {
        builder = builder.port("ws", p);
    }
    builder = builder.port("rpc", ports.op_node_rpc);
    if let Some(p) = ports.op_node_metrics {
        builder = builder.port("metrics", p);
    }
    if let Some(p) = ports.el_metrics {
        builder = builder.port("el-metrics", p);
    }
    let mut service = builder.build();
    if !plan.spec.service.annotations.is_empty() {
        service.metadata.annotations = Some(plan.spec.service.annotations.clone());
    }
    service
}

/// A sequencer's ingress: its RPC ports (op-node's carries the admin API, which can stop the
/// sequencer; the execution client's takes the transactions it orders) only from the chain's
/// own components and the operator; p2p and metrics from anywhere; every other port,
/// the Engine API among them, from nowhere. NetworkPolicies add up, so a chain that wants a
/// public sequencer RPC adds its own policy for it.
pub fn sequencer_network_policy(plan: &Plan) -> NetworkPolicy {
    use opstack_plugin_sdk::crds::conventions::{OPERATOR_NAMESPACE_LABEL, OPERATOR_POD_LABEL};
    let ports = &plan.ports;
    let port = |number: i32, protocol: &str| NetworkPolicyPort {
        port: Some(IntOrString::Int(number)),
        protocol: Some(protocol.to_owned()),
        ..Default::default()
    };
    let select = |pairs: &[(&str, &str)]| LabelSelector {
        match_labels: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    };
    let mut open = Vec::new();
    if let Some(p) = ports.op_node_p2p {
        open.extend([port(p, "TCP"), port(p, "UDP")]);
    }
    open.extend([port(ports.el_p2p, "TCP"), port(ports.el_p2p, "UDP")]);
    open.extend(ports.op_node_metrics.map(|p| port(p, "TCP")));
    open.extend(ports.el_metrics.map(|p| port(p, "TCP")));
    let mut rpc = vec![port(ports.op_node_rpc, "TCP"), port(ports.el_http, "TCP")];
    rpc.extend(ports.el_ws.map(|p| port(p, "TCP")));
    let chain = NetworkPolicyPeer {
        pod_selector: Some(select(&[
            ("app.kubernetes.io/part-of", &plan.network),
            ("app.kubernetes.io/managed-by", "opstack-operator"),
        ])),
        ..Default::default()
    };
    let operator = NetworkPolicyPeer {
        namespace_selector: Some(select(&[(OPERATOR_NAMESPACE_LABEL, "true")])),
        pod_selector: Some(select(&[OPERATOR_POD_LABEL])),
        ..Default::default()
    };
    NetworkPolicy {
        metadata: k8s::meta(&plan.name, &labels(plan)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector(plan)),
                ..Default::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![
                NetworkPolicyIngressRule {
                    ports: Some(open),
                    ..Default::default()
                },
                NetworkPolicyIngressRule {
                    from: Some(vec![chain, operator]),
                    ports: Some(rpc),
                },
            ]),
            ..Default::default()
        }),
    }
}

/// The headless Service of the StatefulSet: stable pod DNS and the p2p ports, TCP and UDP.
pub fn p2p_service(plan: &Plan) -> Service {
    let ports = &plan.ports;
    let mut service = ServiceBuilder::new(&p2p_service_name(plan), &labels(plan), &selector(plan))
        .headless()
        .build();
    let mut list = Vec::new();
    if let Some(p) = ports.op_node_p2p {
        list.push(service_port("p2p-tcp", p, "TCP"));
        list.push(service_port("p2p-udp", p, "UDP"));
    }
    list.push(service_port("el-p2p-tcp", ports.el_p2p, "TCP"));
    list.push(service_port("el-p2p-udp", ports.el_p2p, "UDP"));
    if let Some(spec) = service.spec.as_mut() {
        spec.ports = Some(list);
    }
    service
}

fn service_port(name: &str, port: i32, protocol: &str) -> ServicePort {
    ServicePort {
        name: Some(name.to_owned()),
        port,
        protocol: Some(protocol.to_owned()),
        target_port: Some(IntOrString::String(name.to_owned())),
        ..Default::default()
    }
}

/// The execution client's TCP ports (UDP is added after `build`).
pub fn el_ports(mut builder: ContainerBuilder, ports: &Ports) -> ContainerBuilder {
    builder = builder.port("http", ports.el_http);
    if let Some(p) = ports.el_ws {
        builder = builder.port("ws", p);
    }
    builder = builder.port("el-p2p-tcp", ports.el_p2p);
    if let Some(p) = ports.el_metrics {
        builder = builder.port("el-metrics", p);
    }
    builder
}

/// Probes of either execution client. Neither has an HTTP health path, and the op-reth image
/// ships no HTTP client to run a JSON-RPC check with, so all three are TCP on the JSON-RPC port:
/// the process is up and serving. Whether the chain is synced is judged by op-node's readiness
/// (its unsafe head is the execution client's head), and a pod is ready only when every
/// container is.
///
/// Budgets: the RPC server starts before (staged/snap) sync, so the startup probe covers opening
/// the database, which on a multi-TB datadir after an upgrade can take hours: 24 h
/// (2880 × 30 s) before the kubelet gives up. After that, liveness restarts a process that
/// stopped serving for 5 minutes.
pub fn el_probes(builder: ContainerBuilder) -> ContainerBuilder {
    builder
        .startup(k8s::tcp_probe("http", 30, 2880))
        .liveness(k8s::tcp_probe("http", 30, 10))
        .readiness(k8s::tcp_probe("http", 10, 3))
}

pub fn add_udp_port(container: &mut Container, name: &str, port: i32) {
    container
        .ports
        .get_or_insert_with(Vec::new)
        .push(ContainerPort {
            name: Some(name.to_owned()),
            container_port: port,
            protocol: Some("UDP".to_owned()),
            ..Default::default()
        });
}

pub fn set_pull_policy(container: &mut Container, policy: Option<PullPolicy>) {
    if let Some(policy) = policy {
        container.image_pull_policy = Some(
            match policy {
                PullPolicy::Always => "Always",
                PullPolicy::IfNotPresent => "IfNotPresent",
                PullPolicy::Never => "Never",
            }
            .to_owned(),
        );
    }
}

/// An env var filled from one key of a Secret: the route for a value no flag reads from a file.
pub fn add_secret_env(container: &mut Container, var: &str, secret: &str, key: &str) {
    container.env.get_or_insert_with(Vec::new).push(EnvVar {
        name: var.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
    });
}
