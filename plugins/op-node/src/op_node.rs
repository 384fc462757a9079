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
        Some(Source::Value(url)) => {
            flags.set("l1.beacon", url);
        }
        Some(Source::Secret { name, key }) => secret_env.push(("OP_NODE_L1_BEACON", name, key)),
        None => {}
    }
    flags.switch_if("l1.beacon.ignore", plan.l1_beacon_ignore);
    flags.switch_if("l1.trustrpc", spec.l1_trust_rpc);
    flags.set_opt("l1.rpckind", spec.l1_rpc_kind.map(l1_rpc_kind));
    flags
        .set_opt(
            "l1.http-poll-interval",
            spec.l1_http_poll_interval.as_deref(),
        )
        .set_opt(
            "l1.epoch-poll-interval",
            spec.l1_epoch_poll_interval.as_deref(),
        );

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
        match plan.sync_mode {
            SyncMode::ExecutionLayer => "execution-layer",
            SyncMode::ConsensusLayer => "consensus-layer",
        },
    );
    // Req/Resp sync is gone from op-node (a hidden no-op since v1.19.1): the plan renders it
    // only for the releases that still had it, and warns otherwise.
    if plan.op_node_flag_exists("syncmode.req-resp") {
        flags.set_opt("syncmode.req-resp", spec.req_resp_sync);
    }
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
            // op-node falls back to its built-in bootnodes (OP Mainnet's and Sepolia's) when
            // none are given, and resolves their names at start even with --p2p.no-discovery
            // (v1.19.6). So: the user's bootnodes, those built-in ones only for a registry
            // network with discovery on, and otherwise explicitly none.
            let named = matches!(plan.rollup, ChainSource::Named(_));
            if p2p.discovery.enabled && !p2p.discovery.bootnodes.is_empty() {
                flags.set("p2p.bootnodes", p2p.discovery.bootnodes.join(","));
            } else if !(p2p.discovery.enabled && named) {
                flags.set("p2p.bootnodes", "");
            }
            // A replica always peers with its sequencer: without it a replica on a private
            // chain has no one to gossip with and waits for L1 batches.
            let mut static_peers = p2p.static_peers.clone();
            if let Some(sequencer) = &plan.sequencer_p2p
                && !static_peers.contains(sequencer)
            {
                static_peers.push(sequencer.clone());
            }
            if !static_peers.is_empty() {
                flags.set("p2p.static", static_peers.join(","));
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
            .switch_if("sequencer.stopped", seq.stopped);
        if plan.op_node_flag_exists("sequencer.max-safe-lag") {
            flags.set_opt("sequencer.max-safe-lag", seq.max_safe_lag);
        }
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
    let mut builder = ContainerBuilder::new("op-node", &plan.op_node_image)
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
        .readiness(readiness())
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

/// Readiness: op-node's RPC server answers `/healthz` (op-service's RPC handler,
/// `op-service/rpc/handler.go` in ethereum-optimism/optimism@v1.19.6). The official images have
/// no shell or HTTP client, so nothing richer can run inside the pod; whether the node serves a
/// current chain is judged by the operator from `optimism_syncStatus` and reported as the CR's
/// `Synced` condition (and `Ready`).
fn readiness() -> Probe {
    k8s::http_probe("/healthz", "rpc", 10, 3)
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
