//! The built `plugin_op_proposer.wasm`, run in the operator's sandbox through the SDK harness.
//! Build it first: `plugins/build.sh`.

#[path = "../../testdata/support.rs"]
mod support;

use std::collections::BTreeSet;

use opstack_plugin_sdk::harness::Harness;
use opstack_plugin_sdk::serde_json::{Value, json};
use opstack_plugin_sdk::{ContractAddress, RenderInput};
use support::*;

const STEM: &str = "plugin_op_proposer";
const SPEC_FACTORY: &str = "0x1111111111111111111111111111111111111111";

fn proposer(spec: Value, l1: L1, chain: Chain, signing: Signing) -> RenderInput {
    let mut full = json!({ "proposal": { "proposalInterval": "1h" } });
    merge(&mut full, spec);
    input(
        "OpProposer",
        "proposer",
        full,
        l1,
        chain,
        signing,
        "rollupNodeRef",
    )
}

/// The settings of the local devnet the suite runs (a dev L1 whose blocks finalize slowly):
/// what made op-proposer v1.19.6 propose there when it ran as a plain process.
fn devnet() -> Value {
    json!({
        "proposal": { "proposalInterval": "12s", "pollInterval": "1s", "allowNonFinalized": true },
        "disputeGame": { "gameType": 1 },
        "l1Transaction": { "numConfirmations": 1, "receiptQueryInterval": "1s" },
    })
}

/// The op-proposer command line that worked on that devnet, without its endpoints, factory
/// address, key and RPC address (those come from the network, the Secret and the pod).
const DEVNET_FLAGS: &[(&str, &str)] = &[
    ("game-type", "1"),
    ("proposal-interval", "12s"),
    ("poll-interval", "1s"),
    ("num-confirmations", "1"),
    ("txmgr.receipt-query-interval", "1s"),
    ("log.level", "info"),
];
/// The devnet's switch (no value).
const DEVNET_SWITCH: &str = "allow-non-finalized";

/// Fixtures whose render warns on purpose: the devnet proposes unfinalized state.
const WARNS: &[&str] = &["devnet_permissioned_private_key_custom_chain"];

fn fixtures() -> Vec<(&'static str, RenderInput)> {
    vec![
        (
            "private_key_literal_l1_discovered_factory",
            proposer(
                json!({
                    "proposal": { "proposalInterval": "1h", "pollInterval": "12s" },
                    "disputeGame": { "gameType": 1 },
                    "l1Transaction": { "numConfirmations": 10, "resubmissionTimeout": "48s" },
                }),
                L1::Literal,
                Chain::Named,
                Signing::PrivateKey,
            ),
        ),
        (
            "remote_signer_tls_secret_l1_spec_factory",
            proposer(
                json!({
                    "disputeGame": { "factoryAddr": SPEC_FACTORY, "gameType": 0 },
                    "rpc": { "port": 8560, "enableAdmin": true },
                    "metrics": { "enabled": true, "port": 7301 },
                }),
                L1::Secret,
                Chain::Custom,
                Signing::RemoteSignerTls,
            ),
        ),
        (
            "remote_signer_plain_defaults",
            proposer(json!({}), L1::Literal, Chain::Named, Signing::RemoteSigner),
        ),
        (
            "devnet_permissioned_private_key_custom_chain",
            devnet_input(),
        ),
    ]
}

/// The devnet proposer on a custom chain whose factory the network pins (the host passes the
/// network's `spec.contractAddresses` as contracts).
fn devnet_input() -> RenderInput {
    let mut input = proposer(devnet(), L1::Literal, Chain::Custom, Signing::PrivateKey);
    input.network.contracts.push(ContractAddress {
        name: "DisputeGameFactoryProxy".into(),
        address: FACTORY.into(),
    });
    input
}

fn plugin() -> &'static Harness {
    Harness::built(STEM)
}

fn suite() -> Suite {
    Suite {
        plugin: plugin(),
        fixtures: fixtures(),
        native: plugin_op_proposer::render,
    }
}

#[test]
fn golden_snapshots_of_every_fixture() {
    for (name, rendered) in suite().rendered() {
        insta::assert_yaml_snapshot!(name, rendered.objects);
        let expected = usize::from(WARNS.contains(&name));
        assert_eq!(
            rendered.warnings.len(),
            expected,
            "{name}: {:?}",
            rendered.warnings
        );
    }
}

#[test]
fn info_names_the_kind() {
    suite().assert_info("op-proposer", "OpProposer");
}

#[test]
fn proposer_is_one_replica_with_recreate_strategy() {
    suite().each(|_, rendered| assert_single_signer_deployment(rendered, "proposer"));
}

#[test]
fn proposer_never_renders_l2oo_address() {
    suite().each(|name, rendered| {
        assert!(!has_flag(&args(rendered), "l2oo-address"), "{name}");
        assert!(
            env(rendered, "OP_PROPOSER_L2OO_ADDRESS").is_none(),
            "{name}"
        );
    });
}

#[test]
fn factory_address_comes_from_the_cr_else_the_networks_contracts() {
    let plugin = plugin();
    let fixtures = fixtures();
    let discovered = render(plugin, &fixtures[0].1);
    assert_eq!(
        flag(&args(&discovered), "game-factory-address"),
        Some(FACTORY)
    );
    let from_spec = render(plugin, &fixtures[1].1);
    assert_eq!(
        flag(&args(&from_spec), "game-factory-address"),
        Some(SPEC_FACTORY)
    );
}

#[test]
fn proposer_without_factory_address_is_invalid_naming_the_field() {
    let mut input = proposer(json!({}), L1::Literal, Chain::Custom, Signing::PrivateKey);
    input.network.contracts.clear();
    let problems = invalid(plugin(), &input);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("spec.disputeGame.factoryAddr"),
        "{problems:?}"
    );
    assert!(problems[0].contains("set spec.disputeGame.factoryAddr"));
    assert!(problems[0].contains("discovery"));
}

#[test]
fn proposal_settings_are_rendered() {
    let plugin = plugin();
    let rendered = render(plugin, &fixtures()[0].1);
    let args = args(&rendered);
    assert_eq!(flag(&args, "proposal-interval"), Some("1h"));
    assert_eq!(flag(&args, "poll-interval"), Some("12s"));
    assert_eq!(flag(&args, "game-type"), Some("1"));
    assert!(!has_flag(&args, "allow-non-finalized"));

    let rendered = render(
        plugin,
        &proposer(
            json!({ "proposal": { "allowNonFinalized": true } }),
            L1::Literal,
            Chain::Named,
            Signing::PrivateKey,
        ),
    );
    assert!(has_flag(&support::args(&rendered), "allow-non-finalized"));
    assert_eq!(rendered.warnings.len(), 1, "{:?}", rendered.warnings);
    assert_eq!(flag(&support::args(&rendered), "game-type"), Some("0"));
}

#[test]
fn rollup_rpc_comes_from_the_rollup_node_reference() {
    let rendered = render(plugin(), &fixtures()[0].1);
    assert_eq!(
        flag(&args(&rendered), "rollup-rpc"),
        Some("http://node-a.chain-a.svc:9545")
    );
}

#[test]
fn unresolved_rollup_node_reference_is_invalid_naming_the_field() {
    let mut input = proposer(json!({}), L1::Literal, Chain::Named, Signing::PrivateKey);
    input.references.clear();
    let problems = invalid(plugin(), &input);
    assert!(
        problems[0].starts_with("spec.rollupNodeRef"),
        "{problems:?}"
    );
}

#[test]
fn private_key_only_reaches_the_container_through_secret_key_ref() {
    let rendered = render(plugin(), &fixtures()[0].1);
    assert_private_key_env(&rendered, "OP_PROPOSER_PRIVATE_KEY", "proposer-key");
}

#[test]
fn remote_signer_renders_endpoint_and_address_and_no_key() {
    let plugin = plugin();
    for (signing, tls) in [
        (Signing::RemoteSigner, "false"),
        (Signing::RemoteSignerTls, "true"),
    ] {
        let input = proposer(json!({}), L1::Literal, Chain::Named, signing);
        assert_remote_signer(&render(plugin, &input), "OP_PROPOSER_PRIVATE_KEY", tls);
    }
}

#[test]
fn secret_l1_url_is_an_env_from_secret_key_ref_and_no_flag() {
    let rendered = render(plugin(), &fixtures()[1].1);
    assert!(!has_flag(&args(&rendered), "l1-eth-rpc"));
    let env = env(&rendered, "OP_PROPOSER_L1_ETH_RPC").expect("OP_PROPOSER_L1_ETH_RPC");
    assert_eq!(env["valueFrom"]["secretKeyRef"]["name"], "l1-endpoints");
}

#[test]
fn proposer_renders_receipt_query_interval_from_spec() {
    let input = proposer(
        json!({ "l1Transaction": { "receiptQueryInterval": "1s" } }),
        L1::Literal,
        Chain::Named,
        Signing::PrivateKey,
    );
    assert_eq!(
        flag(
            &args(&render(plugin(), &input)),
            "txmgr.receipt-query-interval"
        ),
        Some("1s")
    );
}

#[test]
fn receipt_query_interval_is_the_binarys_default_when_unset() {
    let rendered = render(plugin(), &fixtures()[2].1);
    assert!(!has_flag(&args(&rendered), "txmgr.receipt-query-interval"));
}

#[test]
fn devnet_proposer_renders_the_command_line_that_worked_and_nothing_else() {
    let rendered = render(plugin(), &devnet_input());
    let args = args(&rendered);
    for (name, value) in DEVNET_FLAGS {
        assert_eq!(flag(&args, name), Some(*value), "--{name}");
    }
    assert!(args.contains(&format!("--{DEVNET_SWITCH}")));
    assert_eq!(flag(&args, "game-factory-address"), Some(FACTORY));
    let rendered_names: BTreeSet<&str> = args
        .iter()
        .map(|a| a.trim_start_matches("--").split('=').next().unwrap())
        .collect();
    let mut expected: BTreeSet<&str> = DEVNET_FLAGS.iter().map(|(name, _)| *name).collect();
    // The factory from the network's contracts, endpoints from the network and the node's
    // Service; RPC on every pod address; the network's log format; metrics, which the operator
    // reads for the status.
    expected.extend([
        DEVNET_SWITCH,
        "game-factory-address",
        "l1-eth-rpc",
        "rollup-rpc",
        "rpc.addr",
        "rpc.port",
        "log.format",
        "metrics.enabled",
        "metrics.addr",
        "metrics.port",
    ]);
    assert_eq!(rendered_names, expected);
    assert_private_key_env(&rendered, "OP_PROPOSER_PRIVATE_KEY", "proposer-key");
}

#[test]
fn proposer_service_selects_only_its_pods_with_rpc_and_metrics_ports() {
    suite().each(|_, rendered| {
        let ports = &containers(rendered)[0]["ports"];
        let rpc = ports[0]["containerPort"].as_i64().unwrap();
        let metrics = ports[1]["containerPort"].as_i64().unwrap();
        assert_service_over_own_pods(rendered, "proposer", &[("rpc", rpc), ("metrics", metrics)]);
    });
}

#[test]
fn proposer_service_has_no_metrics_port_when_metrics_are_off() {
    let input = proposer(
        json!({ "metrics": { "enabled": false } }),
        L1::Literal,
        Chain::Named,
        Signing::PrivateKey,
    );
    assert_service_over_own_pods(&render(plugin(), &input), "proposer", &[("rpc", 8545)]);
}

#[test]
fn probes_are_http_because_the_image_has_no_shell() {
    suite().each(|_, rendered| assert_probes_need_no_shell(rendered));
}

#[test]
fn startup_probe_outlasts_the_dial_retries_before_liveness_applies() {
    let rendered = render(plugin(), &fixtures()[0].1);
    let startup = &containers(&rendered)[0]["startupProbe"];
    assert_eq!(startup["httpGet"]["path"], "/healthz");
    assert_eq!(startup["httpGet"]["port"], "rpc");
    let budget =
        startup["periodSeconds"].as_i64().unwrap() * startup["failureThreshold"].as_i64().unwrap();
    // The L1 and rollup dials are each retried for up to a minute before the RPC server starts.
    assert!(budget >= 120, "{budget} s");
}

#[test]
fn liveness_is_healthz_on_the_rpc_port() {
    let rendered = render(plugin(), &fixtures()[1].1);
    let container = containers(&rendered)[0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["ports"][0]["containerPort"], 8560);
    assert_eq!(flag(&args(&rendered), "rpc.port"), Some("8560"));
    assert_eq!(flag(&args(&rendered), "metrics.port"), Some("7301"));
}

#[test]
fn every_pod_is_restricted_with_a_read_only_root_and_no_token() {
    suite().each(|_, rendered| assert_restricted(rendered));
}

#[test]
fn every_rendered_flag_exists_in_the_binarys_flag_list() {
    suite().each(|_, rendered| assert_flags_known(rendered, "op-proposer"));
}

#[test]
fn no_key_ever_reaches_a_command_line_or_an_env_literal() {
    suite().each(|_, rendered| assert_keys_only_through_secret_key_refs(rendered));
}

#[test]
fn every_object_passes_the_hosts_envelope() {
    suite().assert_sealed();
}

#[test]
fn same_input_renders_identical_bytes() {
    suite().assert_same_bytes();
}

#[test]
fn super_root_games_read_super_roots_and_never_the_rollup_rpc() {
    let plugin = plugin();
    for game_type in [5, 9] {
        let rendered = render(
            plugin,
            &proposer(
                json!({ "disputeGame": { "gameType": game_type } }),
                L1::Literal,
                Chain::Named,
                Signing::PrivateKey,
            ),
        );
        let args = args(&rendered);
        assert_eq!(
            flag(&args, "superroot-rpcs"),
            Some("http://node-a.chain-a.svc:9545"),
            "game type {game_type}: the rollup node serves its chain's super root"
        );
        assert!(!has_flag(&args, "rollup-rpc"), "{args:?}");
    }
    let rendered = render(
        plugin,
        &proposer(
            json!({ "disputeGame": { "gameType": 9, "superRootRpcs": [
                "http://supernode-0:8545/10", "http://supernode-1:8545/10"
            ] } }),
            L1::Literal,
            Chain::Named,
            Signing::PrivateKey,
        ),
    );
    assert_eq!(
        flag(&args(&rendered), "superroot-rpcs"),
        Some("http://supernode-0:8545/10,http://supernode-1:8545/10")
    );
}

#[test]
fn a_proposer_release_before_the_rename_gets_the_old_flag_name() {
    let rendered = render(
        plugin(),
        &proposer(
            json!({
                "image": { "image": "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-proposer:v1.16.3" },
                "disputeGame": { "gameType": 9 }
            }),
            L1::Literal,
            Chain::Named,
            Signing::PrivateKey,
        ),
    );
    let args = args(&rendered);
    assert!(
        has_flag(&args, "supernode-rpcs") && !has_flag(&args, "superroot-rpcs"),
        "{args:?}"
    );
}

#[test]
fn super_root_sources_on_an_output_root_game_are_refused_naming_the_field() {
    let problems = invalid(
        plugin(),
        &proposer(
            json!({ "disputeGame": { "gameType": 1, "superRootRpcs": ["http://supernode:8545/10"] } }),
            L1::Literal,
            Chain::Named,
            Signing::PrivateKey,
        ),
    );
    assert!(
        problems[0].starts_with("spec.disputeGame.superRootRpcs"),
        "{problems:?}"
    );
}
