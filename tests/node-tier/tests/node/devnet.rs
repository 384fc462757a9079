//! The devnet for real: a local OP Stack chain (its L1 a `geth --dev` on the node IP, its
//! genesis made by the real binaries) deployed by the in-cluster operator from CRs applied as a
//! user would, with the real op-node, op-geth, op-batcher and op-proposer as pods. The nodes run
//! op-geth: op-reth cannot be built here (its rendering is tested by the plugin tests).
//!
//! One test, in phases, because the phases share the chain and several stop a part of it.

use std::cell::Cell;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::Api;
use kube::{Client, ResourceExt};
use opstack_test_harness::devnet::{
    Chain, ChainOptions, DevL1, Eip1559Tx, L1Config, RpcClient, TempDir, create_chain, hex_u64,
    opstack_bin_dir, selector_of,
};
use opstack_test_harness::image::StageRoot;
use opstack_test_harness::pods;
use serde_json::{Value, json};

use crate::cluster::{chain_namespace, cluster, kubectl, kubectl_ok, operator};
use crate::support::{WORKSPACE, condition, get_cr};

/// Images of the OP Stack binaries built here, under the references the CRs pin. op-node and
/// op-geth carry their releases' real references; the batcher and proposer of the same monorepo
/// commit have no release of that name, so their tag says what they were built from.
const OP_NODE_IMAGE: &str = "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:v1.19.6";
const OP_GETH_IMAGE: &str = "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-geth:v1.101702.3";
const OP_BATCHER_IMAGE: &str = "localhost/opstack-devnet/op-batcher:optimism-v1.19.6";
const OP_PROPOSER_IMAGE: &str = "localhost/opstack-devnet/op-proposer:optimism-v1.19.6";
/// The release the network is upgraded to: the same binaries under another tag, as a
/// re-tagged release (the suite can build one release of each only).
const OP_NODE_NEXT: &str =
    "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:v1.19.6-rebuild.1";
const OP_GETH_NEXT: &str =
    "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-geth:v1.101702.3-rebuild.1";
/// An op-node release no registry here has: a node rolled to it never comes back.
const OP_NODE_MISSING: &str =
    "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:v1.19.6-missing";
/// How long a node may take to follow again before the rollout stops (the network's
/// `spec.nodeRelease.followTimeout`): longer than a pod restart takes here (see `RESTART`).
const FOLLOW_TIMEOUT: &str = "5m";
/// The follow timeout of the halt phase, set with its release: there the replica can never come
/// back (its image does not exist), so a short timeout only shortens the wait for the halt.
const HALT_FOLLOW_TIMEOUT: &str = "30s";

const SEQUENCER: &str = "devnet-sequencer";
const REPLICA: &str = "devnet-replica";
/// op-node's and op-geth's RPC ports, as the bundled renderer sets them by default.
const ROLLUP_RPC_PORT: u16 = 9545;
const EXECUTION_RPC_PORT: u16 = 8545;
/// Long steps: a pod start with a genesis unpack and init, or the operator's live-status round.
const STEP: Duration = Duration::from_secs(180);
/// A node's pod replaced and following again: op-geth flushes its state on the way down (the
/// pod has 300 s for that) and replays on the way up, which took over 3 minutes on a busy host.
const RESTART: Duration = Duration::from_secs(420);

fn build_opstack_images() {
    let node = cluster().node().expect("the cluster has a node");
    let bin = opstack_bin_dir();
    for (containerfile, reference) in [
        ("op-node", OP_NODE_IMAGE),
        ("op-geth", OP_GETH_IMAGE),
        ("op-batcher", OP_BATCHER_IMAGE),
        ("op-proposer", OP_PROPOSER_IMAGE),
    ] {
        let image = node
            .build_image(
                Path::new(&format!(
                    "{WORKSPACE}/tests/opstack/images/{containerfile}.Containerfile"
                )),
                reference,
                &[("opstack", vec![StageRoot::new("/out/", &bin)])],
            )
            .unwrap_or_else(|e| {
                panic!("{e}\n(build the binaries with: bash tests/opstack/setup.sh)")
            });
        node.import(&image).unwrap_or_else(|e| panic!("{e}"));
    }
    for (reference, next) in [(OP_NODE_IMAGE, OP_NODE_NEXT), (OP_GETH_IMAGE, OP_GETH_NEXT)] {
        node.tag(reference, next).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn base64(bytes: &[u8]) -> String {
    serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec()))
        .expect("base64")
        .as_str()
        .expect("a string")
        .to_owned()
}

/// What a chain operator applies: Secrets for the keys, the chain's files in a ConfigMap (the
/// genesis gzip-compressed: uncompressed it is ten times a ConfigMap's limit), the network and
/// its components. The tunings a 2-s dev L1 needs are spec fields, not hacks.
fn devnet_manifests(chain: &Chain, l1_url: &str) -> String {
    let genesis = std::fs::read(&chain.genesis_path).expect("the genesis file");
    let keys = &chain.keys;
    let addresses = &chain.addresses;
    let documents = [
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "devnet-keys"},
        "stringData": {
            "unsafe-signer": keys.sequencer_signer.hex(),
            "batcher": keys.batcher.hex(),
            "proposer": keys.proposer.hex(),
        }}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "devnet-chain"},
            "data": {
                "rollup.json": chain.rollup_config.to_string(),
                "l1-chain-config.json": chain.l1_chain_config.to_string(),
            },
            "binaryData": {"genesis.json.gz": base64(&gzip(&genesis))}}),
        json!({"apiVersion": "optimism.io/v1alpha1", "kind": "OptimismNetwork",
        "metadata": {"name": "devnet"},
        "spec": {
            "chainID": chain.l2_chain_id,
            "l1ChainID": chain.l1_chain_id,
            "l1RpcUrl": l1_url,
            "l1BeaconIgnore": true,
            "l1RpcTimeout": "5s",
            "rollupConfig": {"configMapRef": {"name": "devnet-chain", "key": "rollup.json"}},
            "l2Genesis": {"configMapRef": {"name": "devnet-chain", "key": "genesis.json.gz"}},
            "l1ChainConfig": {"configMapRef": {"name": "devnet-chain", "key": "l1-chain-config.json"}},
            // The nodes' release, one pair for both; the rollout phases change it.
            "nodeRelease": {"opNode": OP_NODE_IMAGE, "opGeth": OP_GETH_IMAGE, "followTimeout": FOLLOW_TIMEOUT},
            "contractAddresses": {
                "discoveryMethod": "manual",
                "systemConfigAddr": addresses.system_config.to_string(),
                "optimismPortalAddr": addresses.optimism_portal.to_string(),
                "disputeGameFactoryAddr": addresses.dispute_game_factory.to_string(),
            },
            "sharedConfig": {
                "logging": {"level": "info", "format": "json"},
                "metrics": {"enabled": true, "port": 7300},
                "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "2Gi"}},
            },
        }}),
        opnode(
            SEQUENCER,
            json!({
                "nodeType": "sequencer",
                "opNode": op_node_spec(json!({"sequencer": {
                    "l1Confs": 0,
                    "signingKey": {"secretRef": {"name": "devnet-keys", "key": "unsafe-signer"}},
                }})),
            }),
        ),
        opnode(
            REPLICA,
            json!({
                "nodeType": "replica",
                "sequencerRef": {"name": SEQUENCER},
                "opNode": op_node_spec(json!({})),
            }),
        ),
        json!({"apiVersion": "optimism.io/v1alpha1", "kind": "OpBatcher",
        "metadata": {"name": "devnet-batcher"},
        "spec": {
            "optimismNetworkRef": {"name": "devnet"},
            "sequencerRef": {"name": SEQUENCER},
            "image": {"image": OP_BATCHER_IMAGE},
            "privateKey": {"secretRef": {"name": "devnet-keys", "key": "batcher"}},
            "dataAvailability": {"type": "calldata"},
            "batching": {"maxChannelDuration": 1, "subSafetyMargin": 4, "pollInterval": "1s"},
            "l1Transaction": {"numConfirmations": 1, "receiptQueryInterval": "1s"},
        }}),
        json!({"apiVersion": "optimism.io/v1alpha1", "kind": "OpProposer",
        "metadata": {"name": "devnet-proposer"},
        "spec": {
            "optimismNetworkRef": {"name": "devnet"},
            "rollupNodeRef": {"name": REPLICA},
            "image": {"image": OP_PROPOSER_IMAGE},
            "privateKey": {"secretRef": {"name": "devnet-keys", "key": "proposer"}},
            "proposal": {"proposalInterval": "12s", "pollInterval": "1s", "allowNonFinalized": true},
            "disputeGame": {"gameType": 1},
            "l1Transaction": {"numConfirmations": 1, "receiptQueryInterval": "1s"},
        }}),
    ];
    documents
        .iter()
        .map(|document| format!("---\n{}", serde_yaml::to_string(document).expect("YAML")))
        .collect()
}

fn op_node_spec(extra: Value) -> Value {
    let mut spec = json!({
        "l1TrustRpc": true,
        "l1RpcKind": "standard",
        "l1HttpPollInterval": "2s",
        "l1EpochPollInterval": "2s",
        "verifierL1Confs": 0,
        "p2p": {"discovery": {"enabled": false}},
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    spec
}

fn opnode(name: &str, spec: Value) -> Value {
    let mut full = json!({
        "optimismNetworkRef": {"name": "devnet"},
        "executionClient": "op-geth",
        "opGeth": {
            "syncMode": "full",
            "stateScheme": "hash",
            "storage": {"size": "4Gi"},
        },
    });
    if let (Some(full), Some(spec)) = (full.as_object_mut(), spec.as_object()) {
        full.extend(spec.clone());
    }
    json!({"apiVersion": "optimism.io/v1alpha1", "kind": "OpNode",
        "metadata": {"name": name}, "spec": full})
}

/// The last lines of a node's op-node and op-geth logs, for failure messages.
async fn log_tails(admin: &Client, ns: &str, node: &str) -> String {
    let mut out = String::new();
    for container in ["op-node", "op-geth"] {
        let log = pods::logs(admin, ns, &pod_of(node), container).await;
        let lines: Vec<&str> = log.lines().collect();
        out.push_str(&format!(
            "--- {node}/{container}, last lines:\n{}\n",
            lines[lines.len().saturating_sub(30)..].join("\n")
        ));
    }
    out
}

/// The first pod of a StatefulSet, by the name the StatefulSet controller gives it.
fn pod_of(node: &str) -> String {
    format!("{node}-0")
}

/// A JSON-RPC client for a pod's port, by pod IP: the host routes to the pod network.
async fn rpc_of(admin: &Client, namespace: &str, pod: &str, port: u16) -> RpcClient {
    try_rpc_of(admin, namespace, pod, port)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`rpc_of`], or why not (no such pod, no IP yet).
async fn try_rpc_of(
    admin: &Client,
    namespace: &str,
    pod: &str,
    port: u16,
) -> Result<RpcClient, String> {
    let found = Api::<Pod>::namespaced(admin.clone(), namespace)
        .get(pod)
        .await
        .map_err(|e| format!("pod {pod}: {e}"))?;
    let ip = found
        .status
        .and_then(|status| status.pod_ip)
        .ok_or_else(|| format!("pod {pod} has no IP"))?;
    Ok(RpcClient::new(SocketAddr::new(
        ip.parse().map_err(|e| format!("pod {pod} IP {ip}: {e}"))?,
        port,
    )))
}

/// A blocking call from async code.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("a blocking task")
}

#[derive(Debug, Clone)]
struct Heads {
    unsafe_number: u64,
    unsafe_hash: String,
    safe: u64,
}

async fn heads(rpc: &RpcClient) -> Result<Heads, String> {
    let rpc = rpc.clone();
    blocking(move || {
        let status = rpc
            .call("optimism_syncStatus", json!([]))
            .map_err(|e| e.to_string())?;
        Ok(Heads {
            unsafe_number: status["unsafe_l2"]["number"].as_u64().unwrap_or_default(),
            unsafe_hash: status["unsafe_l2"]["hash"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            safe: status["safe_l2"]["number"].as_u64().unwrap_or_default(),
        })
    })
    .await
}

/// Polls `check` every second until it gives `Some`, or fails naming `what` after `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let started = Instant::now();
    let mut last = String::from("nothing observed yet");
    loop {
        match check().await {
            Ok(Some(value)) => return value,
            Ok(None) => {}
            Err(observation) => last = observation,
        }
        assert!(
            started.elapsed() < timeout,
            "{what}: not after {timeout:?}; last: {last}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn kubectl_in(namespace: &str, args: &[&str]) -> String {
    let mut all = vec!["--namespace", namespace];
    all.extend_from_slice(args);
    kubectl_ok(&all)
}

/// The phases share one chain; the L1 is behind a mutex because one phase stops it.
struct Devnet {
    l1: Mutex<DevL1>,
    chain: Chain,
    namespace: String,
    _dir: TempDir,
}

async fn start_devnet() -> Devnet {
    let node_ip = cluster().node().expect("a node").ip();
    let (dir, l1, chain) = blocking(move || {
        let dir = TempDir::new("devnet-on-node").expect("a temp dir");
        let l1 = DevL1::start(L1Config {
            ip: node_ip.parse().expect("the node IP"),
            port: None,
            block_time_secs: 2,
            dir: dir.path().join("l1"),
        })
        .unwrap_or_else(|e| panic!("the dev L1 did not start: {e}"));
        let chain = create_chain(&l1, &ChainOptions::new(dir.path().join("chain")))
            .unwrap_or_else(|e| panic!("the devnet chain could not be created: {e}"));
        build_opstack_images();
        (dir, l1, chain)
    })
    .await;
    let namespace = chain_namespace(cluster(), "devnet").await;
    let manifests = devnet_manifests(&chain, &l1.url());
    let file = dir.path().join("devnet.yaml");
    std::fs::write(&file, &manifests).expect("write the manifests");
    kubectl_in(
        &namespace,
        &[
            "apply",
            "--server-side",
            "--field-manager=devnet-user",
            "-f",
            file.to_str().unwrap(),
        ],
    );
    Devnet {
        l1: Mutex::new(l1),
        chain,
        namespace,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devnet_produces_follows_derives_and_proposes_under_the_operator() {
    operator();
    let admin = cluster().admin_client();
    let devnet = start_devnet().await;
    let ns = devnet.namespace.clone();

    // Every OpNode Ready, as a user checks it: Ready means it serves a current chain.
    let started = Instant::now();
    let wait = kubectl(&[
        "--namespace",
        &ns,
        "wait",
        "--for=condition=Ready",
        "opnode",
        "--all",
        "--timeout=300s",
    ]);
    if !wait.status.success() {
        let mut detail = String::new();
        for name in [SEQUENCER, REPLICA] {
            detail.push_str(&format!(
                "{}\n",
                get_cr(&admin, &ns, "OpNode", name).await["status"]
            ));
            detail.push_str(&pods::describe(&admin, &ns, &pod_of(name)).await);
            detail.push_str(&log_tails(&admin, &ns, name).await);
        }
        panic!(
            "kubectl wait --for=condition=Ready opnode --all failed: {}\n{detail}",
            String::from_utf8_lossy(&wait.stderr)
        );
    }
    eprintln!(
        "devnet: both OpNodes Ready {:?} after apply",
        started.elapsed()
    );

    let sequencer = rpc_of(&admin, &ns, &pod_of(SEQUENCER), ROLLUP_RPC_PORT).await;
    let replica = rpc_of(&admin, &ns, &pod_of(REPLICA), ROLLUP_RPC_PORT).await;

    timed(
        "production and P2P following",
        sequencer_produces_and_replica_follows_over_p2p(&sequencer, &replica),
    )
    .await;
    timed(
        "safe head from batches",
        replica_safe_head_advances_from_batches(&replica),
    )
    .await;
    timed("a dispute game", proposer_lands_a_game_on_l1(&devnet)).await;
    timed(
        "a forwarded transaction",
        a_transaction_sent_to_the_replica_is_forwarded_and_included(&admin, &devnet),
    )
    .await;
    timed(
        "live status",
        status_shows_heads_and_peers_and_the_live_conditions(&admin, &ns),
    )
    .await;
    timed(
        "an L1 outage",
        an_l1_outage_is_reported_rewires_nothing_and_the_chain_resumes(&admin, &devnet),
    )
    .await;
    timed(
        "a deleted sequencer pod",
        a_deleted_sequencer_pod_resumes_from_its_volume(&admin, &ns),
    )
    .await;
    timed(
        "a recreated sequencer CR",
        a_recreated_sequencer_resumes_from_its_retained_claim(&admin, &devnet),
    )
    .await;
    timed(
        "a release rollout",
        a_new_release_rolls_the_replica_first_and_the_sequencer_once_it_follows(&admin, &ns),
    )
    .await;
    timed(
        "a halted rollout",
        a_replica_that_does_not_come_back_stops_the_rollout_before_the_sequencer(&admin, &ns),
    )
    .await;
}

/// Runs one phase and says how long it took: the figures a slow run is read from.
async fn timed<T>(phase: &str, run: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = run.await;
    eprintln!("devnet: {phase}: {:.0?}", started.elapsed());
    out
}

async fn sequencer_produces_and_replica_follows_over_p2p(
    sequencer: &RpcClient,
    replica: &RpcClient,
) {
    let first = heads(sequencer).await.expect("the sequencer answers");
    let moved = eventually("the sequencer's unsafe head advances", STEP, || async {
        let now = heads(sequencer).await?;
        Ok((now.unsafe_number >= first.unsafe_number + 3).then_some(now))
    })
    .await;
    eprintln!(
        "devnet: sequencer unsafe head {} -> {}",
        first.unsafe_number, moved.unsafe_number
    );
    eventually(
        "the replica follows the sequencer within 3 blocks, block for block",
        STEP,
        || async {
            let (lead, follower) = (heads(sequencer).await?, heads(replica).await?);
            let lag = lead.unsafe_number.saturating_sub(follower.unsafe_number);
            if lag > 3 || follower.unsafe_number < moved.unsafe_number {
                return Err(format!(
                    "sequencer #{}, replica #{}",
                    lead.unsafe_number, follower.unsafe_number
                ));
            }
            // The same block at the replica's height on both: it follows this chain, not another.
            let at = follower.unsafe_number;
            let (s, r) = (sequencer.clone(), replica.clone());
            let same = blocking(move || {
                let hash_on = |rpc: &RpcClient| {
                    rpc.call("optimism_outputAtBlock", json!([format!("0x{at:x}")]))
                        .map(|out| out["blockRef"]["hash"].clone())
                        .map_err(|e| e.to_string())
                };
                Ok::<_, String>(hash_on(&s)? == hash_on(&r)?)
            })
            .await?;
            Ok(same.then_some(()))
        },
    )
    .await;
    let peers = {
        let replica = replica.clone();
        blocking(move || replica.call("opp2p_peerStats", json!([]))).await
    }
    .expect("opp2p_peerStats");
    assert!(
        peers["connected"].as_u64().unwrap_or_default() >= 1,
        "the replica follows with no P2P peer: {peers}"
    );
}

async fn replica_safe_head_advances_from_batches(replica: &RpcClient) {
    let first = heads(replica).await.expect("the replica answers");
    let advanced = eventually(
        "the replica's safe head advances (derived from the batcher's L1 batches)",
        STEP,
        || async {
            let now = heads(replica).await?;
            Ok((now.safe > first.safe && now.safe > 0).then_some(now))
        },
    )
    .await;
    eprintln!(
        "devnet: replica safe head {} -> {}",
        first.safe, advanced.safe
    );
}

async fn proposer_lands_a_game_on_l1(devnet: &Devnet) {
    let factory = devnet.chain.addresses.dispute_game_factory;
    let selector = selector_of("gameCount()");
    let count = eventually("the proposer creates a dispute game on L1", STEP, || async {
        let l1_rpc = devnet.l1.lock().unwrap().rpc().clone();
        let output = blocking(move || {
            l1_rpc.call(
                "eth_call",
                json!([{"to": factory.to_string(), "data": format!("0x{}", alloy_hex(&selector))}, "latest"]),
            )
        })
        .await
        .map_err(|e| e.to_string())?;
        let count = hex_u64(&output).ok_or_else(|| format!("gameCount() answered {output}"))?;
        Ok((count > 0).then_some(count))
    })
    .await;
    eprintln!("devnet: {count} dispute game(s) on L1");
}

fn alloy_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn a_transaction_sent_to_the_replica_is_forwarded_and_included(
    admin: &Client,
    devnet: &Devnet,
) {
    let ns = &devnet.namespace;
    let replica_el = rpc_of(admin, ns, &pod_of(REPLICA), EXECUTION_RPC_PORT).await;
    let sequencer_el = rpc_of(admin, ns, &pod_of(SEQUENCER), EXECUTION_RPC_PORT).await;
    let user = devnet.chain.keys.l2_user.clone();
    let chain_id = devnet.chain.l2_chain_id;
    let replica_el2 = replica_el.clone();
    let hash = blocking(move || {
        let nonce = hex_u64(
            &replica_el2
                .call(
                    "eth_getTransactionCount",
                    json!([user.address().to_string(), "pending"]),
                )
                .expect("eth_getTransactionCount"),
        )
        .expect("a nonce");
        let tx = Eip1559Tx {
            chain_id,
            nonce,
            max_priority_fee_per_gas: 1_000_000,
            max_fee_per_gas: 10_000_000_000,
            gas_limit: 21_000,
            to: "0x00000000000000000000000000000000000000aa"
                .parse()
                .expect("an address"),
            value: 1_000,
            data: Vec::new(),
        };
        let (raw, hash) = tx.sign(&user);
        replica_el2
            .call(
                "eth_sendRawTransaction",
                json!([format!("0x{}", alloy_hex(&raw))]),
            )
            .expect("the replica accepts the transaction");
        hash
    })
    .await;
    let receipt = eventually(
        "the forwarded transaction's receipt is readable on the replica",
        STEP,
        || {
            let replica_el = replica_el.clone();
            async move {
                blocking(move || {
                    replica_el
                        .call("eth_getTransactionReceipt", json!([hash.to_string()]))
                        .map(|receipt| (!receipt.is_null()).then_some(receipt))
                        .map_err(|e| e.to_string())
                })
                .await
            }
        },
    )
    .await;
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    let on_sequencer = {
        let sequencer_el = sequencer_el.clone();
        blocking(move || sequencer_el.call("eth_getTransactionReceipt", json!([hash.to_string()])))
            .await
    }
    .expect("the receipt on the sequencer");
    assert_eq!(
        on_sequencer["blockHash"], receipt["blockHash"],
        "included by the sequencer, in the same block"
    );
}

async fn status_shows_heads_and_peers_and_the_live_conditions(admin: &Client, ns: &str) {
    for name in [SEQUENCER, REPLICA] {
        let cr = eventually(
            &format!("{name}: status.nodeInfo with heads and peers"),
            STEP,
            || async {
                let cr = get_cr(admin, ns, "OpNode", name).await;
                let info = &cr["status"]["nodeInfo"];
                let complete = info["chainHead"]["blockNumber"]
                    .as_i64()
                    .unwrap_or_default()
                    > 0
                    && info["safeHead"]["blockHash"].is_string()
                    && info["l1Head"]["blockNumber"].as_i64().is_some()
                    && info["peerCount"].as_i64().unwrap_or_default() >= 1
                    && info["engineConnected"] == true;
                Ok(complete.then_some(cr.clone())).map_err(|_: String| String::new())
            },
        )
        .await;
        for type_ in ["Synced", "PeersConnected", "Ready"] {
            assert_eq!(
                condition(&cr, type_).map(|c| c["status"].clone()),
                Some(json!("True")),
                "{name} {type_}: {}",
                cr["status"]
            );
        }
    }
    // The batcher and the proposer, from their own metrics.
    for (kind, name, type_, block, total) in [
        (
            "OpBatcher",
            "devnet-batcher",
            "BatchesSubmitted",
            "batcherInfo",
            "totalBatchesSubmitted",
        ),
        (
            "OpProposer",
            "devnet-proposer",
            "ProposalsSubmitted",
            "proposerInfo",
            "totalProposalsSubmitted",
        ),
    ] {
        eventually(
            &format!("{kind} {name}: {type_}=True and status.{block}.{total} > 0"),
            STEP,
            || async {
                let cr = get_cr(admin, ns, kind, name).await;
                let submitted = condition(&cr, type_).is_some_and(|c| c["status"] == "True");
                let counted = cr["status"][block][total].as_i64().unwrap_or_default() > 0;
                if submitted && counted {
                    Ok(Some(()))
                } else {
                    Err(cr["status"].to_string())
                }
            },
        )
        .await;
    }
    // The printer columns answer "is it OK?".
    let table = kubectl_in(ns, &["get", "opnodes"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    for column in ["READY", "HEAD", "SAFE", "PEERS", "SYNCED"] {
        assert!(
            header.contains(&column),
            "kubectl get opnodes has no {column} column:\n{table}"
        );
    }
    for name in [SEQUENCER, REPLICA] {
        let row: Vec<&str> = table
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let at = |column: &str| {
            row.get(header.iter().position(|c| *c == column).unwrap())
                .copied()
                .unwrap_or_default()
        };
        assert!(
            at("HEAD").parse::<u64>().is_ok_and(|head| head > 0),
            "{name} HEAD:\n{table}"
        );
        assert!(
            at("PEERS").parse::<u64>().is_ok_and(|peers| peers >= 1),
            "{name} PEERS:\n{table}"
        );
    }
}

/// `<Kind>/<name>=<resourceVersion>` of every child kind of the chain, to show nothing was
/// rewritten.
fn children_versions(ns: &str) -> Vec<String> {
    let listed = kubectl_in(
        ns,
        &[
            "get",
            "statefulsets,deployments,services,configmaps,secrets,persistentvolumeclaims",
            "-o",
            r#"jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}"#,
        ],
    );
    let mut versions: Vec<String> = listed.lines().map(str::to_owned).collect();
    versions.sort();
    versions
}

async fn an_l1_outage_is_reported_rewires_nothing_and_the_chain_resumes(
    admin: &Client,
    devnet: &Devnet,
) {
    let ns = &devnet.namespace;
    let children = children_versions(ns);
    let sequencer = rpc_of(admin, ns, &pod_of(SEQUENCER), ROLLUP_RPC_PORT).await;
    // Stop block production too, so nothing of the chain moves while the L1 is away: then the
    // operator must not write the OpNodes' status more than once per change.
    let stopped_at = {
        let sequencer = sequencer.clone();
        blocking(move || sequencer.call("admin_stopSequencer", json!([]))).await
    }
    .expect("admin_stopSequencer");
    {
        let mut l1 = devnet.l1.lock().unwrap();
        l1.stop().expect("stop the L1");
    }
    let network = eventually("the network says its L1 is unreachable", STEP, || async {
        let cr = get_cr(admin, ns, "OptimismNetwork", "devnet").await;
        let connected = condition(&cr, "L1Connected").cloned().unwrap_or_default();
        Ok((connected["status"] == "False").then_some(cr.clone()))
            .map_err(|_: String| String::new())
    })
    .await;
    eprintln!(
        "devnet: L1Connected = {}",
        condition(&network, "L1Connected").unwrap()
    );
    // Once the nodes' heads are older than the tolerance, Synced turns False, once.
    for name in [SEQUENCER, REPLICA] {
        eventually(
            &format!("{name}: Synced=False while nothing moves"),
            STEP,
            || async {
                let cr = get_cr(admin, ns, "OpNode", name).await;
                Ok(condition(&cr, "Synced")
                    .is_some_and(|c| c["status"] == "False")
                    .then_some(()))
                .map_err(|_: String| String::new())
            },
        )
        .await;
    }
    let versions = |cr: Value| {
        cr["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let before = (
        versions(get_cr(admin, ns, "OpNode", SEQUENCER).await),
        versions(get_cr(admin, ns, "OpNode", REPLICA).await),
    );
    // Two live-status rounds (15 s each) with nothing moving: no write. One round would
    // already write if the operator wrote on every round; two show it is not a one-off.
    tokio::time::sleep(Duration::from_secs(35)).await;
    let after = (
        versions(get_cr(admin, ns, "OpNode", SEQUENCER).await),
        versions(get_cr(admin, ns, "OpNode", REPLICA).await),
    );
    assert_eq!(
        before, after,
        "the operator wrote an OpNode's status while nothing of its chain moved"
    );
    assert_eq!(
        children,
        children_versions(ns),
        "an L1 outage changed a child of the chain"
    );

    {
        let mut l1 = devnet.l1.lock().unwrap();
        l1.start_again().expect("restart the L1");
    }
    let head = heads(&sequencer).await.expect("the sequencer answers");
    let resume = {
        let sequencer = sequencer.clone();
        let hash = if stopped_at.is_string() {
            stopped_at.clone()
        } else {
            json!(head.unsafe_hash)
        };
        blocking(move || sequencer.call("admin_startSequencer", json!([hash]))).await
    };
    resume.expect("admin_startSequencer");
    eventually("the network's L1 is connected again", STEP, || async {
        let cr = get_cr(admin, ns, "OptimismNetwork", "devnet").await;
        Ok(condition(&cr, "L1Connected")
            .is_some_and(|c| c["status"] == "True")
            .then_some(()))
        .map_err(|_: String| String::new())
    })
    .await;
    let replica = rpc_of(admin, ns, &pod_of(REPLICA), ROLLUP_RPC_PORT).await;
    let resumed_from = heads(&replica).await.expect("the replica answers");
    eventually(
        "the chain resumes: new blocks, derived again from L1",
        STEP,
        || async {
            let now = heads(&replica).await?;
            Ok(
                (now.unsafe_number > resumed_from.unsafe_number && now.safe > resumed_from.safe)
                    .then_some(()),
            )
        },
    )
    .await;
    for name in [SEQUENCER, REPLICA] {
        eventually(&format!("{name}: Synced=True again"), STEP, || async {
            let cr = get_cr(admin, ns, "OpNode", name).await;
            Ok(condition(&cr, "Synced")
                .is_some_and(|c| c["status"] == "True")
                .then_some(()))
            .map_err(|_: String| String::new())
        })
        .await;
    }
}

async fn a_deleted_sequencer_pod_resumes_from_its_volume(admin: &Client, ns: &str) {
    let sequencer = rpc_of(admin, ns, &pod_of(SEQUENCER), ROLLUP_RPC_PORT).await;
    let before = heads(&sequencer).await.expect("the sequencer answers");
    pods::kill_and_wait_replacement(admin, ns, &pod_of(SEQUENCER), RESTART).await;
    let sequencer = rpc_of(admin, ns, &pod_of(SEQUENCER), ROLLUP_RPC_PORT).await;
    resumes_from(admin, ns, &before, "after its pod was deleted").await;
    replica_follows_again(admin, ns, &sequencer).await;
}

async fn a_recreated_sequencer_resumes_from_its_retained_claim(admin: &Client, devnet: &Devnet) {
    let ns = &devnet.namespace;
    let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), ns);
    let claim = format!("data-{}", pod_of(SEQUENCER));
    let claim_uid = claims
        .get(&claim)
        .await
        .expect("the sequencer's data claim")
        .uid();
    let sequencer = rpc_of(admin, ns, &pod_of(SEQUENCER), ROLLUP_RPC_PORT).await;
    let before = heads(&sequencer).await.expect("the sequencer answers");
    let cr = get_cr(admin, ns, "OpNode", SEQUENCER).await;
    kubectl_in(
        ns,
        &[
            "delete",
            "opnode",
            SEQUENCER,
            "--wait=true",
            "--timeout=120s",
        ],
    );
    eventually("the sequencer's pod is gone", STEP, || async {
        let gone = Api::<Pod>::namespaced(admin.clone(), ns)
            .get_opt(&pod_of(SEQUENCER))
            .await
            .map_err(|e| e.to_string())?
            .is_none();
        Ok(gone.then_some(()))
    })
    .await;
    assert_eq!(
        claims
            .get(&claim)
            .await
            .expect("the claim is retained")
            .uid(),
        claim_uid,
        "the data claim was deleted with the CR"
    );
    // Recreated as the user first wrote it.
    let mut again = json!({"apiVersion": cr["apiVersion"], "kind": "OpNode", "metadata": {"name": SEQUENCER}, "spec": cr["spec"]});
    let file = devnet._dir.path().join("sequencer-again.yaml");
    std::fs::write(&file, serde_yaml::to_string(&again.take()).expect("YAML")).expect("write");
    kubectl_in(
        ns,
        &[
            "apply",
            "--server-side",
            "--field-manager=devnet-user",
            "-f",
            file.to_str().unwrap(),
        ],
    );
    // Its old children may outlive the old CR by a moment (the garbage collector removes them):
    // the new CR waits for them, then gets its own, within a minute.
    eventually(
        "the recreated sequencer's children are applied",
        Duration::from_secs(60),
        || async {
            let cr = get_cr(admin, ns, "OpNode", SEQUENCER).await;
            let applied = condition(&cr, "Applied").is_some_and(|c| c["status"] == "True");
            if applied {
                Ok(Some(()))
            } else {
                Err(cr["status"].to_string())
            }
        },
    )
    .await;
    pods::wait_ready(admin, ns, &pod_of(SEQUENCER), RESTART).await;
    assert_eq!(
        claims.get(&claim).await.expect("the claim").uid(),
        claim_uid,
        "a new claim instead of the retained one"
    );
    let sequencer = rpc_of(admin, ns, &pod_of(SEQUENCER), ROLLUP_RPC_PORT).await;
    resumes_from(admin, ns, &before, "after its CR was deleted and recreated").await;
    replica_follows_again(admin, ns, &sequencer).await;
}

/// The sequencer's chain contains `before`'s head (the same hash at that height) and grows past it:
/// it resumed from its data, not from genesis.
///
/// The hash is read from the execution client's block, not from `optimism_outputAtBlock`: an
/// output needs that block's state, and a restarted op-geth (`--gcmode=full`) keeps only the
/// states it flushed at shutdown, so the proof for the head just before a restart is often gone
/// ("historical state ... is not available") although the block itself is there.
async fn resumes_from(admin: &Client, ns: &str, before: &Heads, when: &str) {
    let rpc = &rpc_of(admin, ns, &pod_of(SEQUENCER), ROLLUP_RPC_PORT).await;
    let execution = rpc_of(admin, ns, &pod_of(SEQUENCER), EXECUTION_RPC_PORT).await;
    let target = before.unsafe_number;
    eventually(
        &format!("the sequencer produces past #{target} {when}"),
        STEP,
        || async {
            let now = heads(rpc).await?;
            Ok((now.unsafe_number > target + 2).then_some(()))
        },
    )
    .await;
    let hash = blocking(move || {
        execution
            .call(
                "eth_getBlockByNumber",
                json!([format!("0x{target:x}"), false]),
            )
            .map(|block| block["hash"].as_str().unwrap_or_default().to_owned())
    })
    .await
    .expect("eth_getBlockByNumber");
    assert_eq!(
        hash, before.unsafe_hash,
        "block #{target} differs {when}: the node started a new chain"
    );
}

async fn replica_follows_again(admin: &Client, ns: &str, sequencer: &RpcClient) {
    let started = Instant::now();
    loop {
        // The replica's pod may have been replaced: look its address up each time.
        let observed: Result<(), String> = async {
            let replica = try_rpc_of(admin, ns, &pod_of(REPLICA), ROLLUP_RPC_PORT).await?;
            let (lead, follower) = (heads(sequencer).await?, heads(&replica).await?);
            let rpc = replica.clone();
            let peers = blocking(move || rpc.call("opp2p_peerStats", json!([])))
                .await
                .map_err(|e| e.to_string())?;
            let connected = peers["connected"].as_u64().unwrap_or_default();
            let lag = lead.unsafe_number.saturating_sub(follower.unsafe_number);
            if connected >= 1 && lag <= 3 {
                Ok(())
            } else {
                Err(format!(
                    "{connected} peers, sequencer #{}, replica #{}",
                    lead.unsafe_number, follower.unsafe_number
                ))
            }
        }
        .await;
        let Err(last) = observed else {
            return;
        };
        if started.elapsed() > RESTART {
            let mut detail = String::new();
            for node in [SEQUENCER, REPLICA] {
                let pod = Api::<Pod>::namespaced(admin.clone(), ns)
                    .get_opt(&pod_of(node))
                    .await
                    .ok()
                    .flatten()
                    .map(|p| serde_json::to_value(p).expect("JSON"))
                    .unwrap_or_default();
                let sts =
                    Api::<k8s_openapi::api::apps::v1::StatefulSet>::namespaced(admin.clone(), ns)
                        .get_opt(node)
                        .await
                        .ok()
                        .flatten()
                        .map(|s| serde_json::to_value(s).expect("JSON"))
                        .unwrap_or_default();
                detail.push_str(&format!(
                    "{node}: pod IP {}, revision {}, deletionTimestamp {}; StatefulSet generation {}, status {}\n",
                    pod["status"]["podIP"],
                    pod["metadata"]["labels"]["controller-revision-hash"],
                    pod["metadata"]["deletionTimestamp"],
                    sts["metadata"]["generation"],
                    sts["status"]
                ));
                detail.push_str(&pods::describe(admin, ns, &pod_of(node)).await);
                detail.push_str(&log_tails(admin, ns, node).await);
            }
            panic!(
                "the replica reconnects and follows the sequencer again: not after {RESTART:?}; \
                 last: {last}\n{detail}"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The op-node and op-geth images of a StatefulSet's pod template, or of a pod.
fn pair_of(pod_spec: &Value) -> (String, String) {
    let image = |name: &str| {
        pod_spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .and_then(|c| c["image"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    (image("op-node"), image("op-geth"))
}

async fn template_pair(admin: &Client, ns: &str, node: &str) -> (String, String) {
    let sts = Api::<k8s_openapi::api::apps::v1::StatefulSet>::namespaced(admin.clone(), ns)
        .get(node)
        .await
        .unwrap_or_else(|e| panic!("StatefulSet {node}: {e}"));
    pair_of(&serde_json::to_value(sts).expect("JSON")["spec"]["template"]["spec"])
}

/// Every pod of the chain runs op-node and op-geth of one release: never one of each.
async fn assert_pods_run_whole_pairs(admin: &Client, ns: &str, pairs: &[(&str, &str)]) {
    for node in [SEQUENCER, REPLICA] {
        let Some(pod) = Api::<Pod>::namespaced(admin.clone(), ns)
            .get_opt(&pod_of(node))
            .await
            .expect("get a pod")
        else {
            continue;
        };
        let (op_node, op_geth) = pair_of(&serde_json::to_value(pod).expect("JSON")["spec"]);
        assert!(
            pairs.contains(&(op_node.as_str(), op_geth.as_str())),
            "{node}'s pod runs op-node {op_node} with op-geth {op_geth}, halves of two releases"
        );
    }
}

fn set_node_release(ns: &str, op_node: &str, op_geth: &str, follow_timeout: &str) {
    let patch = json!({"spec": {"nodeRelease": {
        "opNode": op_node, "opGeth": op_geth, "followTimeout": follow_timeout,
    }}});
    kubectl_in(
        ns,
        &[
            "patch",
            "optimismnetwork",
            "devnet",
            "--type=merge",
            "-p",
            &patch.to_string(),
        ],
    );
}

fn condition_is(cr: &Value, type_: &str, status: &str, reason: &str) -> bool {
    condition(cr, type_).is_some_and(|c| c["status"] == status && c["reason"] == reason)
}

async fn a_new_release_rolls_the_replica_first_and_the_sequencer_once_it_follows(
    admin: &Client,
    ns: &str,
) {
    let old = (OP_NODE_IMAGE.to_owned(), OP_GETH_IMAGE.to_owned());
    let next = &(OP_NODE_NEXT.to_owned(), OP_GETH_NEXT.to_owned());
    let pairs = &[(OP_NODE_IMAGE, OP_GETH_IMAGE), (OP_NODE_NEXT, OP_GETH_NEXT)];
    assert_eq!(template_pair(admin, ns, SEQUENCER).await, old);
    set_node_release(ns, OP_NODE_NEXT, OP_GETH_NEXT, FOLLOW_TIMEOUT);
    let started = Instant::now();
    let (replica_rolled, sequencer_waited) = (&Cell::new(None), &Cell::new(false));
    let sequencer_rolled = eventually(
        "the replica rolls, follows again, then the sequencer rolls",
        3 * STEP,
        || async move {
            assert_pods_run_whole_pairs(admin, ns, pairs).await;
            let (replica_template, sequencer_template) = (
                template_pair(admin, ns, REPLICA).await,
                template_pair(admin, ns, SEQUENCER).await,
            );
            if replica_template == *next && replica_rolled.get().is_none() {
                replica_rolled.set(Some(started.elapsed()));
            }
            let sequencer = get_cr(admin, ns, "OpNode", SEQUENCER).await;
            if condition_is(&sequencer, "UpgradeRollout", "False", "WaitingForNode") {
                sequencer_waited.set(true);
            }
            if sequencer_template == *next {
                // The sequencer's StatefulSet changed: by then the replica ran the new
                // release and followed the chain.
                let replica = get_cr(admin, ns, "OpNode", REPLICA).await;
                assert_eq!(
                    &replica_template, next,
                    "the sequencer rolled before the replica"
                );
                assert_eq!(
                    replica["status"]["upgrade"]["rollout"], "Complete",
                    "{}",
                    replica["status"]
                );
                assert!(
                    condition(&replica, "Synced").is_some_and(|c| c["status"] == "True"),
                    "the sequencer rolled while the replica did not follow: {}",
                    replica["status"]
                );
                return Ok(Some(started.elapsed()));
            }
            Err(format!(
                "replica template {replica_template:?}, sequencer template \
                 {sequencer_template:?}, sequencer rollout {}",
                condition(&sequencer, "UpgradeRollout")
                    .cloned()
                    .unwrap_or_default()
            ))
        },
    )
    .await;
    assert!(
        sequencer_waited.get(),
        "the sequencer never reported waiting for the replica"
    );
    eprintln!(
        "devnet: new release on the replica after {:?}, on the sequencer after {sequencer_rolled:?}",
        replica_rolled.get().expect("the replica rolled first")
    );
    for node in [SEQUENCER, REPLICA] {
        eventually(
            &format!("{node} completes its rollout and follows"),
            2 * STEP,
            || async move {
                assert_pods_run_whole_pairs(admin, ns, pairs).await;
                let cr = get_cr(admin, ns, "OpNode", node).await;
                let done = condition_is(&cr, "UpgradeRollout", "True", "RolloutComplete")
                    && condition(&cr, "Synced").is_some_and(|c| c["status"] == "True");
                Ok(done.then_some(()))
            },
        )
        .await;
    }
    let sequencer = rpc_of(admin, ns, &pod_of(SEQUENCER), ROLLUP_RPC_PORT).await;
    let before = heads(&sequencer).await.expect("the sequencer answers");
    resumes_from(admin, ns, &before, "on the new release").await;
    replica_follows_again(admin, ns, &sequencer).await;
}

async fn a_replica_that_does_not_come_back_stops_the_rollout_before_the_sequencer(
    admin: &Client,
    ns: &str,
) {
    let next = (OP_NODE_NEXT.to_owned(), OP_GETH_NEXT.to_owned());
    set_node_release(ns, OP_NODE_MISSING, OP_GETH_NEXT, HALT_FOLLOW_TIMEOUT);
    let halted = eventually(
        "the sequencer's rollout stops at the replica that does not come back",
        3 * STEP,
        || async {
            assert_eq!(
                template_pair(admin, ns, SEQUENCER).await,
                next,
                "the sequencer rolled to a release its replica could not run"
            );
            let sequencer = get_cr(admin, ns, "OpNode", SEQUENCER).await;
            let halted = condition_is(&sequencer, "UpgradeRollout", "False", "RolloutHalted");
            Ok(halted.then(|| {
                condition(&sequencer, "UpgradeRollout")
                    .cloned()
                    .unwrap_or_default()
            }))
        },
    )
    .await;
    let message = halted["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(REPLICA) && message.contains("followTimeout"),
        "{message}"
    );
    let events = kubectl_in(
        ns,
        &[
            "get",
            "events",
            "--field-selector",
            "reason=RolloutHalted",
            "-o",
            "name",
        ],
    );
    assert!(!events.trim().is_empty(), "no RolloutHalted Event");
    // The sequencer keeps producing on the release it runs.
    let sequencer = rpc_of(admin, ns, &pod_of(SEQUENCER), ROLLUP_RPC_PORT).await;
    let before = heads(&sequencer).await.expect("the sequencer answers");
    resumes_from(admin, ns, &before, "while the rollout is halted").await;

    // Back to the release that ran; the stuck pod is deleted, as a StatefulSet needs after a
    // template that never became ready.
    set_node_release(ns, OP_NODE_NEXT, OP_GETH_NEXT, FOLLOW_TIMEOUT);
    eventually(
        "the replica's StatefulSet goes back to the running release",
        STEP,
        || async { Ok((template_pair(admin, ns, REPLICA).await == next).then_some(())) },
    )
    .await;
    kubectl_in(ns, &["delete", "pod", &pod_of(REPLICA), "--wait=false"]);
    for node in [REPLICA, SEQUENCER] {
        eventually(
            &format!("{node} runs the release and follows again"),
            2 * STEP,
            || async {
                let cr = get_cr(admin, ns, "OpNode", node).await;
                let done = condition_is(&cr, "UpgradeRollout", "True", "RolloutComplete")
                    && condition(&cr, "Synced").is_some_and(|c| c["status"] == "True");
                Ok(done.then_some(()))
            },
        )
        .await;
    }
    replica_follows_again(admin, ns, &sequencer).await;
}
