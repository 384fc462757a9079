//! The op-geth container (binary `geth`) and, for a custom chain, the `geth init` step that
//! writes the genesis once. Every flag is in `flags/op-geth.txt`. Logging flags are not in that
//! list, so op-geth logs with its defaults (`sharedConfig.logging` does not reach it).

use opstack_plugin_sdk::Flags;
use opstack_plugin_sdk::crds::opnode::{
    DbEngine, GethSyncMode, NodeMode, OpGethConfig, StateScheme,
};
use opstack_plugin_sdk::k8s::ContainerBuilder;
use opstack_plugin_sdk::k8s_openapi::api::core::v1::Container;

use crate::op_reth::json_rpc_flags;
use crate::plan::{ChainSource, ENGINE_PORT, Plan};
use crate::workload::{self, paths, volumes};

fn config(plan: &Plan) -> OpGethConfig {
    plan.spec.op_geth.clone().unwrap_or_default()
}

pub fn container(plan: &Plan) -> Container {
    let geth = config(plan);
    let ports = &plan.ports;
    let mut flags = Flags::new();

    flags.set("datadir", paths::EL_DATA);
    // A registry network is loaded from op-geth's embedded registry; a custom chain was written
    // into the datadir by the init container.
    if let ChainSource::Named(name) = &plan.genesis {
        flags.set("op-network", name);
    }

    flags
        .set(
            "syncmode",
            match geth.sync_mode {
                GethSyncMode::Snap => "snap",
                GethSyncMode::Full => "full",
            },
        )
        .set(
            "gcmode",
            match geth.gc_mode {
                NodeMode::Full => "full",
                NodeMode::Archive => "archive",
            },
        )
        .set_opt("state.scheme", geth.state_scheme.map(state_scheme))
        .set_opt("db.engine", geth.db_engine.map(db_engine))
        .set_opt("cache", geth.cache_mb);

    // JSON-RPC on all interfaces. vhosts `*`: clients reach it through the Service's DNS name,
    // which geth's default (`localhost`) would refuse.
    json_rpc_flags(&mut flags, &geth.networking, ports, plan.sequencer);
    flags.set("http.vhosts", "*");

    flags
        .set("authrpc.addr", "127.0.0.1")
        .set("authrpc.port", ENGINE_PORT)
        .set("authrpc.vhosts", "localhost")
        .set("authrpc.jwtsecret", paths::JWT_FILE);

    let p2p = &geth.p2p;
    flags
        .set("port", ports.el_p2p)
        .set("discovery.port", ports.el_p2p)
        .set_opt("maxpeers", p2p.max_peers)
        .switch_if("nodiscover", p2p.no_discovery);
    if !p2p.netrestrict.is_empty() {
        flags.set("netrestrict", p2p.netrestrict.join(","));
    }
    if !p2p.bootnodes.is_empty() {
        flags.set("bootnodes", p2p.bootnodes.join(","));
    }

    let pool = &geth.txpool;
    if !pool.locals.is_empty() {
        flags.set("txpool.locals", pool.locals.join(","));
    }
    flags
        .switch_if("txpool.nolocals", pool.no_locals)
        .set_opt("txpool.journal", pool.journal.as_deref())
        .switch_if("txpool.journalremotes", pool.journal_remotes)
        .set_opt("txpool.lifetime", pool.lifetime.as_deref())
        .set_opt("txpool.pricebump", pool.price_bump)
        .set_opt("txpool.accountslots", pool.account_slots)
        .set_opt("txpool.globalslots", pool.global_slots)
        .set_opt("txpool.accountqueue", pool.account_queue)
        .set_opt("txpool.globalqueue", pool.global_queue);

    // Replicas forward to the sequencer and do not gossip transactions. The older spelling
    // `--rollup.disabletxpoolgossip` is used because every op-geth release knows it (newer ones
    // keep it as an alias of --rollup.txpool.disable-gossip). Never --rollup.halt.
    let rollup = &geth.rollup;
    flags.set_opt("rollup.sequencerhttp", plan.sequencer_http.as_deref());
    flags
        .switch_if(
            "rollup.disabletxpoolgossip",
            !plan.sequencer || rollup.disable_tx_pool_gossip,
        )
        .switch_if("rollup.computependingblock", rollup.compute_pending_block)
        .set_opt("rollup.historicalrpc", rollup.historical_rpc.as_deref());

    if let Some(port) = ports.el_metrics {
        flags
            .switch("metrics")
            .set("metrics.addr", "0.0.0.0")
            .set("metrics.port", port);
    }

    let mut builder = ContainerBuilder::new("op-geth", &plan.el_image)
        .command(&["geth"])
        .flags(flags);
    builder = workload::el_ports(builder, ports);
    builder = builder
        .mount(volumes::EL_DATA, paths::EL_DATA, false)
        .mount(volumes::JWT, paths::JWT_DIR, true)
        .mount(volumes::EL_TMP, "/tmp", false);
    let mut container = workload::el_probes(builder)
        .resources(el_resources(plan))
        .build();
    workload::add_udp_port(&mut container, "el-p2p-udp", ports.el_p2p);
    workload::set_pull_policy(&mut container, geth.image.pull_policy);
    container
}

/// For a custom chain: `geth init` with the genesis file, on every start. It is idempotent:
/// against a datadir holding the same genesis it rewrites nothing and exits 0, and against one
/// holding another genesis it fails loudly ("database contains incompatible genesis") instead
/// of starting a wrong chain (checked with op-geth v1.101702.3). So it needs no marker file and
/// no shell, which the image does not have.
pub fn init_container(plan: &Plan) -> Option<Container> {
    if !matches!(plan.genesis, ChainSource::File { .. }) {
        return None;
    }
    let geth = config(plan);
    let mut flags = Flags::new();
    flags
        .set("datadir", paths::EL_DATA)
        .set_opt("state.scheme", geth.state_scheme.map(state_scheme))
        .set_opt("db.engine", geth.db_engine.map(db_engine));
    let mut container = ContainerBuilder::new("geth-init", &plan.el_image)
        .command(&["geth", "init"])
        .flags(flags)
        .mount(volumes::EL_DATA, paths::EL_DATA, false)
        .mount(volumes::GENESIS, paths::GENESIS_DIR, true)
        .mount(volumes::EL_TMP, "/tmp", false)
        .resources(el_resources(plan))
        .build();
    container
        .args
        .get_or_insert_with(Vec::new)
        .push(paths::GENESIS_FILE.to_owned());
    workload::set_pull_policy(&mut container, geth.image.pull_policy);
    Some(container)
}

fn el_resources(
    plan: &Plan,
) -> Option<opstack_plugin_sdk::k8s_openapi::api::core::v1::ResourceRequirements> {
    plan.spec
        .resources
        .execution_client
        .clone()
        .or_else(|| plan.shared_resources.clone())
}

fn state_scheme(s: StateScheme) -> &'static str {
    match s {
        StateScheme::Path => "path",
        StateScheme::Hash => "hash",
    }
}

fn db_engine(e: DbEngine) -> &'static str {
    match e {
        DbEngine::Pebble => "pebble",
        DbEngine::Leveldb => "leveldb",
    }
}
