//! The op-node container. Every flag is in `flags/op-node.txt`; the keys reach it only as
//! Secret-mounted files (`--l2.jwt-secret`, `--p2p.priv.path`) or, for the sequencer key that no
//! flag reads from a file, as `OP_NODE_P2P_SEQUENCER_KEY` through `secretKeyRef`.

use opstack_plugin_sdk::Flags;
use opstack_plugin_sdk::crds::common::{LogFormat, LogLevel};
use opstack_plugin_sdk::crds::opnode::{ExecutionClient, L1RpcKind, PeerScoring, SyncMode};
use opstack_plugin_sdk::k8s::{self, ContainerBuilder};
use opstack_plugin_sdk::k8s_openapi::api::core::v1::{Container, Probe};

use crate::plan::{ChainSource, ENGINE_PORT, Plan, Source};
use crate::workload::{self, paths, volumes};

/// Default image: op-node v1.17.0, the first release without `--rollup.halt` and
/// `--rollup.load-protocol-versions` (the flag list this renderer is checked against is read
/// after that removal) and the release production charts pin (ops-notes §12).
pub const DEFAULT_IMAGE: &str = "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:v1.17.0";

/// How old the unsafe head may be for a node to count as ready (p2p on): with gossip a synced
/// node is a few block times behind the sequencer; five minutes tolerates a slow L1 or a short
/// gossip outage without flapping.
const MAX_UNSAFE_HEAD_AGE_SECONDS: u32 = 300;

pub fn container(plan: &Plan) -> Container {
    let spec = &plan.spec.op_node;
    let ports = &plan.ports;
    let mut flags = Flags::new();

    // L1: a literal URL is a flag; a URL kept in a Secret (it carries an API key) reaches
    // op-node only through its env var, and then the flag is not rendered.
    let mut secret_env = Vec::new();
    match &plan.l1 {
        Source::Value(url) => {
            flags.set("l1", url);
        }
        Source::Secret { name, key } => secret_env.push(("OP_NODE_L1_ETH_RPC", name, key)),
    }
    match &plan.l1_beacon {
        Source::Value(url) => {
            flags.set("l1.beacon", url);
        }
        Source::Secret { name, key } => secret_env.push(("OP_NODE_L1_BEACON", name, key)),
    }
    flags.switch_if("l1.trustrpc", spec.l1_trust_rpc);
    flags.set_opt("l1.rpckind", spec.l1_rpc_kind.map(l1_rpc_kind));

    // The Engine API, inside the pod.
    flags
        .set("l2", format!("http://127.0.0.1:{ENGINE_PORT}"))
        .set("l2.jwt-secret", paths::JWT_FILE)
        .set(
            "l2.enginekind",
            match plan.client {
                ExecutionClient::OpReth => "reth",
                ExecutionClient::OpGeth => "geth",
            },
        );

    // The chain: a registry name XOR a rollup config file, never both.
    match &plan.rollup {
        ChainSource::Named(name) => {
            flags.set("network", name);
        }
        ChainSource::File { .. } => {
            flags.set("rollup.config", paths::ROLLUP_FILE);
        }
    }

    if plan.l1_chain_config.is_some() {
        flags.set("rollup.l1-chain-config", paths::L1_CHAIN_CONFIG_FILE);
    }

    flags.set(
        "syncmode",
        match spec.sync_mode {
            SyncMode::ExecutionLayer => "execution-layer",
            SyncMode::ConsensusLayer => "consensus-layer",
        },
    );
    flags.set_opt("syncmode.req-resp", spec.req_resp_sync);
    flags.set_opt("verifier.l1-confs", spec.verifier_l1_confs);
    // Safe-head history on the small volume: `optimism_safeHeadAtL1Block` needs it.
    flags.set("safedb.path", paths::SAFEDB);

    flags
        .set("rpc.addr", "0.0.0.0")
        .set("rpc.port", ports.op_node_rpc)
        .switch_if("rpc.enable-admin", plan.sequencer || spec.rpc.enable_admin);

    match (&plan.p2p_key, ports.op_node_p2p) {
        (Some(_), Some(port)) => {
            let p2p = &spec.p2p;
            flags
                .set("p2p.listen.ip", "0.0.0.0")
                .set("p2p.listen.tcp", port)
                .set("p2p.listen.udp", port)
                .set("p2p.priv.path", paths::P2P_KEY_FILE)
                .set("p2p.peerstore.path", paths::PEERSTORE)
                .set("p2p.discovery.path", paths::DISCOVERY_DB)
                .switch_if("p2p.no-discovery", !p2p.discovery.enabled);
            if p2p.discovery.enabled && !p2p.discovery.bootnodes.is_empty() {
                flags.set("p2p.bootnodes", p2p.discovery.bootnodes.join(","));
            }
            if !p2p.static_peers.is_empty() {
                flags.set("p2p.static", p2p.static_peers.join(","));
            }
            flags.set_opt(
                "p2p.scoring",
                p2p.peer_scoring.map(|s| match s {
                    PeerScoring::None => "none",
                    PeerScoring::Light => "light",
                }),
            );
            if let Some(tide) = &p2p.peers {
                flags
                    .set("p2p.peers.lo", tide.lo)
                    .set("p2p.peers.hi", tide.hi);
            }
        }
        _ => {
            flags.switch("p2p.disable");
        }
    }

    if plan.sequencer {
        let seq = plan.spec.op_node.sequencer.clone().unwrap_or_default();
        flags
            .switch("sequencer.enabled")
            .set("sequencer.l1-confs", seq.l1_confs.unwrap_or(4))
            .switch_if("sequencer.stopped", seq.stopped)
            .set_opt("sequencer.max-safe-lag", seq.max_safe_lag);
    }

    if let Some(port) = ports.op_node_metrics {
        flags
            .switch("metrics.enabled")
            .set("metrics.addr", "0.0.0.0")
            .set("metrics.port", port);
    }
    flags
        .set("log.level", log_level(plan.logging.level))
        .set("log.format", log_format(plan.logging.format))
        .switch_if("log.color", plan.logging.color);

    let image = &spec.image;
    let mut builder =
        ContainerBuilder::new("op-node", image.image.as_deref().unwrap_or(DEFAULT_IMAGE))
            .command(&["op-node"])
            .flags(flags)
            .port("rpc", ports.op_node_rpc);
    if let Some(port) = ports.op_node_p2p {
        builder = builder.port("p2p-tcp", port);
    }
    if let Some(port) = ports.op_node_metrics {
        builder = builder.port("metrics", port);
    }
    builder = builder
        .mount(volumes::OP_NODE_DATA, paths::OP_NODE_DATA, false)
        .mount(volumes::JWT, paths::JWT_DIR, true)
        .mount(volumes::OP_NODE_TMP, "/tmp", false);
    if plan.p2p_key.is_some() {
        builder = builder.mount(volumes::P2P_KEY, paths::P2P_KEY_DIR, true);
    }
    if matches!(plan.rollup, ChainSource::File { .. }) {
        builder = builder.mount(volumes::ROLLUP, paths::ROLLUP_DIR, true);
    }
    if plan.l1_chain_config.is_some() {
        builder = builder.mount(volumes::L1_CHAIN_CONFIG, paths::L1_CHAIN_CONFIG_DIR, true);
    }
    builder = builder
        .startup(k8s::tcp_probe("rpc", 10, 60))
        .liveness(k8s::tcp_probe("rpc", 30, 5))
        .readiness(readiness(plan))
        .resources(
            plan.spec
                .resources
                .op_node
                .clone()
                .or_else(|| plan.shared_resources.clone()),
        );
    let mut container = builder.build();
    if let Some(p) = ports.op_node_p2p {
        workload::add_udp_port(&mut container, "p2p-udp", p);
    }
    workload::set_pull_policy(&mut container, image.pull_policy);
    for (var, secret, key) in secret_env {
        workload::add_secret_env(&mut container, var, secret, key);
    }
    if let Some(key) = &plan.sequencer_key {
        workload::add_secret_env(
            &mut container,
            "OP_NODE_P2P_SEQUENCER_KEY",
            &key.secret,
            &key.key,
        );
    }
    container
}

/// Readiness from `optimism_syncStatus`, not `/healthz` (which answers 200 as soon as the RPC
/// server runs, synced or not). The op-node image is Alpine with busybox (`TARGET_BASE_IMAGE`
/// `alpine:3.20` in `ops/docker/op-stack-go/Dockerfile` at ethereum-optimism/optimism@a5f807798b),
/// so the probe uses busybox `wget`, `sed` and `date`: op-node must answer the call, and, when
/// the node follows gossip, its unsafe L2 head must be at most five minutes old. A node that is
/// still syncing is therefore not ready, and the Service does not send it traffic.
///
/// Exceptions, where an old head is expected: a replica with p2p off advances only with L1
/// batches, and a sequencer started with `stopped: true` produces nothing until
/// `admin_startSequencer`; for them the probe only requires a sync status with an unsafe head.
/// Limits: the probe trusts the pod's clock, and it breaks if a future image drops busybox
/// (then the pod never becomes ready, which is loud rather than silently wrong).
fn readiness(plan: &Plan) -> Probe {
    let stopped = plan
        .spec
        .op_node
        .sequencer
        .as_ref()
        .is_some_and(|s| s.stopped);
    let check_age = plan.ports.op_node_p2p.is_some() && !(plan.sequencer && stopped);
    let mut script = format!(
        "r=$(wget -q -T 3 -O - --header 'Content-Type: application/json' --post-data \
         '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"optimism_syncStatus\",\"params\":[]}}' \
         http://127.0.0.1:{port}) || exit 1\n\
         t=$(printf '%s' \"$r\" | sed -n 's/.*\"unsafe_l2\":{{[^}}]*\"timestamp\":\\([0-9]*\\).*/\\1/p')\n\
         [ -n \"$t\" ] || exit 1\n",
        port = plan.ports.op_node_rpc
    );
    if check_age {
        script.push_str(&format!(
            "[ $(( $(date +%s) - t )) -le {MAX_UNSAFE_HEAD_AGE_SECONDS} ]\n"
        ));
    }
    k8s::exec_probe(&["sh", "-c", &script], 15, 3)
}

fn l1_rpc_kind(kind: L1RpcKind) -> &'static str {
    match kind {
        L1RpcKind::Alchemy => "alchemy",
        L1RpcKind::Quicknode => "quicknode",
        L1RpcKind::Infura => "infura",
        L1RpcKind::Parity => "parity",
        L1RpcKind::Nethermind => "nethermind",
        L1RpcKind::DebugGeth => "debug_geth",
        L1RpcKind::Erigon => "erigon",
        L1RpcKind::Basic => "basic",
        L1RpcKind::Any => "any",
        L1RpcKind::Standard => "standard",
    }
}

pub fn log_level(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

fn log_format(format: LogFormat) -> &'static str {
    match format {
        LogFormat::Text => "text",
        LogFormat::Logfmt => "logfmt",
        LogFormat::Json => "json",
    }
}
