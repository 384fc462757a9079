//! The built `plugin_op_proposer.wasm`, run in the operator's sandbox through the SDK harness.
//! Build it first: `plugins/build.sh`.

#[path = "../../testdata/support.rs"]
mod support;

use opstack_plugin_sdk::RenderInput;
use opstack_plugin_sdk::harness::Harness;
use opstack_plugin_sdk::serde_json::{Value, json};
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
    ]
}

fn plugin() -> Harness {
    support::plugin(STEM)
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
        assert!(
            rendered.warnings.is_empty(),
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
    let discovered = render(&plugin, &fixtures[0].1);
    assert_eq!(
        flag(&args(&discovered), "game-factory-address"),
        Some(FACTORY)
    );
    let from_spec = render(&plugin, &fixtures[1].1);
    assert_eq!(
        flag(&args(&from_spec), "game-factory-address"),
        Some(SPEC_FACTORY)
    );
}

#[test]
fn proposer_without_factory_address_is_invalid_naming_the_field() {
    let mut input = proposer(json!({}), L1::Literal, Chain::Custom, Signing::PrivateKey);
    input.network.contracts.clear();
    let problems = invalid(&plugin(), &input);
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
    let rendered = render(&plugin, &fixtures()[0].1);
    let args = args(&rendered);
    assert_eq!(flag(&args, "proposal-interval"), Some("1h"));
    assert_eq!(flag(&args, "poll-interval"), Some("12s"));
    assert_eq!(flag(&args, "game-type"), Some("1"));
    assert!(!has_flag(&args, "allow-non-finalized"));

    let rendered = render(
        &plugin,
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
    let rendered = render(&plugin(), &fixtures()[0].1);
    assert_eq!(
        flag(&args(&rendered), "rollup-rpc"),
        Some("http://node-a.chain-a.svc:9545")
    );
}

#[test]
fn unresolved_rollup_node_reference_is_invalid_naming_the_field() {
    let mut input = proposer(json!({}), L1::Literal, Chain::Named, Signing::PrivateKey);
    input.references.clear();
    let problems = invalid(&plugin(), &input);
    assert!(
        problems[0].starts_with("spec.rollupNodeRef"),
        "{problems:?}"
    );
}

#[test]
fn private_key_only_reaches_the_container_through_secret_key_ref() {
    let rendered = render(&plugin(), &fixtures()[0].1);
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
        assert_remote_signer(&render(&plugin, &input), "OP_PROPOSER_PRIVATE_KEY", tls);
    }
}

#[test]
fn secret_l1_url_is_an_env_from_secret_key_ref_and_no_flag() {
    let rendered = render(&plugin(), &fixtures()[1].1);
    assert!(!has_flag(&args(&rendered), "l1-eth-rpc"));
    let env = env(&rendered, "OP_PROPOSER_L1_ETH_RPC").expect("OP_PROPOSER_L1_ETH_RPC");
    assert_eq!(env["valueFrom"]["secretKeyRef"]["name"], "l1-endpoints");
}

#[test]
fn liveness_is_healthz_on_the_rpc_port() {
    let rendered = render(&plugin(), &fixtures()[1].1);
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
