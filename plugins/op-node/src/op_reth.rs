//! The op-reth container (`op-reth node …`). op-reth reads no environment variables for its
//! settings and defaults to OP Mainnet and to 127.0.0.1, so everything is a flag
//! (`flags/op-reth.txt`): the chain, the data dir, the listen addresses and the metrics address
//! are always rendered.

use opstack_plugin_sdk::Flags;
use opstack_plugin_sdk::crds::common::{LogFormat, LogLevel};
use opstack_plugin_sdk::crds::opnode::{ElNetworking, NodeMode, OpRethConfig, RpcApi};
use opstack_plugin_sdk::k8s::ContainerBuilder;
use opstack_plugin_sdk::k8s_openapi::api::core::v1::Container;

use crate::plan::{ChainSource, ENGINE_PORT, Plan, Ports, op_reth_chain_name};
use crate::workload::{self, paths, volumes};

pub fn container(plan: &Plan) -> Container {
    let reth: OpRethConfig = plan.spec.op_reth.clone().unwrap_or_default();
    let ports = &plan.ports;
    let mut flags = Flags::new();

    flags.set(
        "chain",
        match &plan.genesis {
            ChainSource::Named(name) => op_reth_chain_name(name),
            ChainSource::File { .. } => paths::GENESIS_FILE.to_owned(),
        },
    );
    flags.set("datadir", paths::EL_DATA);

    // JSON-RPC on all interfaces for the Service. A sequencer also serves `miner`: op-batcher's
    // throttling calls miner_setMaxDASize on it (`SetMaxDASizeMethod` in
    // ethereum-optimism/optimism@v1.19.6 `op-batcher/batcher/driver.go`).
    json_rpc_flags(&mut flags, &reth.networking, ports, plan.sequencer);

    // The Engine API stays on loopback; the JWT file must exist (op-reth never generates it
    // when the flag is given), which the Secret mount guarantees.
    flags
        .set("authrpc.addr", "127.0.0.1")
        .set("authrpc.port", ENGINE_PORT)
        .set("authrpc.jwtsecret", paths::JWT_FILE);

    if let Some(port) = ports.el_metrics {
        // A bare port would bind 127.0.0.1: always give the address.
        flags.set("metrics", format!("0.0.0.0:{port}"));
    }

    // Devp2p: RLPx on TCP and discv5 on the same UDP port (op-reth's discv5 defaults to 9200;
    // discv4, whose --discovery.port would also be UDP 30303, is off in op-reth), so the EL's
    // p2p is one port number, TCP and UDP, like op-geth's.
    let p2p = &reth.p2p;
    flags
        .set("port", ports.el_p2p)
        .set("discovery.v5.port", ports.el_p2p)
        .set_opt("max-inbound-peers", p2p.max_inbound_peers)
        .set_opt("max-outbound-peers", p2p.max_outbound_peers)
        .switch_if("disable-discovery", p2p.no_discovery);
    if !p2p.netrestrict.is_empty() {
        flags.set("netrestrict", p2p.netrestrict.join(","));
    }
    if !p2p.trusted_peers.is_empty() {
        flags.set("trusted-peers", p2p.trusted_peers.join(","));
    }
    if !p2p.bootnodes.is_empty() {
        flags.set("bootnodes", p2p.bootnodes.join(","));
    }

    let pool = &reth.txpool;
    flags
        .set_opt("txpool.pending-max-count", pool.pending_max_count)
        .set_opt("txpool.queued-max-count", pool.queued_max_count)
        .set_opt("txpool.max-account-slots", pool.max_account_slots)
        .set_opt("txpool.pricebump", pool.price_bump)
        .set_opt("txpool.lifetime", pool.lifetime_seconds)
        .switch_if("txpool.nolocals", pool.no_locals);
    if !pool.locals.is_empty() {
        flags.set("txpool.locals", pool.locals.join(","));
    }

    // Rollup: replicas forward transactions to the sequencer and do not gossip them.
    let rollup = &reth.rollup;
    flags.set_opt("rollup.sequencer", plan.sequencer_http.as_deref());
    flags
        .switch_if(
            "rollup.disable-tx-pool-gossip",
            !plan.sequencer || rollup.disable_tx_pool_gossip,
        )
        .switch_if("rollup.compute-pending-block", rollup.compute_pending_block)
        .set_opt("rollup.historicalrpc", rollup.historical_rpc.as_deref());

    // Without --full (or --minimal) op-reth is an archive node.
    flags.switch_if("full", reth.node_mode == NodeMode::Full);
    flags.set_opt(
        "engine.cross-block-cache-size",
        reth.cross_block_cache_size_mb,
    );

    flags
        .set(
            "log.stdout.format",
            match plan.logging.format {
                LogFormat::Text => "terminal",
                LogFormat::Logfmt => "log-fmt",
                LogFormat::Json => "json",
            },
        )
        .set(
            "color",
            if plan.logging.color {
                "always"
            } else {
                "never"
            },
        );

    let image = &reth.image;
    let mut builder = ContainerBuilder::new("op-reth", &plan.el_image)
        .command(&["op-reth"])
        .arg("node")
        // Log level is a count flag (`-v` error … `-vvvvv` trace), the only short flag here.
        .arg(verbosity(plan.logging.level))
        .flags(flags);
    builder = workload::el_ports(builder, ports);
    builder = builder
        .mount(volumes::EL_DATA, paths::EL_DATA, false)
        .mount(volumes::JWT, paths::JWT_DIR, true)
        .mount(volumes::EL_TMP, "/tmp", false);
    if matches!(plan.genesis, ChainSource::File { .. }) {
        builder = builder.mount(volumes::GENESIS, paths::GENESIS_DIR, true);
    }
    let mut container = workload::el_probes(builder)
        .resources(
            plan.spec
                .resources
                .execution_client
                .clone()
                .or_else(|| plan.shared_resources.clone()),
        )
        .build();
    workload::add_udp_port(&mut container, "el-p2p-udp", ports.el_p2p);
    workload::set_pull_policy(&mut container, image.pull_policy);
    container
}

fn verbosity(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Error => "-v",
        LogLevel::Warn => "-vv",
        LogLevel::Info => "-vvv",
        LogLevel::Debug => "-vvvv",
        LogLevel::Trace => "-vvvvv",
    }
}

/// The API list of an RPC server: the spec's, else `eth,net,web3`; `miner` added on sequencers.
/// The HTTP and WebSocket JSON-RPC servers, on all interfaces for the Service. op-reth and
/// op-geth spell these flags the same way (both lists in `plugins/testdata/flags`).
pub fn json_rpc_flags(
    flags: &mut Flags,
    networking: &ElNetworking,
    ports: &Ports,
    sequencer: bool,
) {
    let http = &networking.http;
    flags
        .switch("http")
        .set("http.addr", "0.0.0.0")
        .set("http.port", ports.el_http)
        .set("http.api", apis(&http.apis, sequencer));
    if !http.cors_origins.is_empty() {
        flags.set("http.corsdomain", http.cors_origins.join(","));
    }
    if let Some(port) = ports.el_ws {
        let ws = &networking.ws;
        flags
            .switch("ws")
            .set("ws.addr", "0.0.0.0")
            .set("ws.port", port)
            .set("ws.api", apis(&ws.apis, sequencer));
        if !ws.cors_origins.is_empty() {
            flags.set("ws.origins", ws.cors_origins.join(","));
        }
    }
    // No IPC: nobody in the pod uses it, and its socket would need a writable /tmp path.
    flags.switch("ipcdisable");
}

pub fn apis(apis: &[RpcApi], sequencer: bool) -> String {
    let mut names: Vec<&str> = if apis.is_empty() {
        vec!["eth", "net", "web3"]
    } else {
        apis.iter()
            .map(|a| match a {
                RpcApi::Eth => "eth",
                RpcApi::Net => "net",
                RpcApi::Web3 => "web3",
                RpcApi::Debug => "debug",
                RpcApi::Txpool => "txpool",
                RpcApi::Trace => "trace",
            })
            .collect()
    };
    if sequencer {
        names.push("miner");
    }
    let mut unique: Vec<&str> = Vec::new();
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    unique.join(",")
}
