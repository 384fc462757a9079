//! The built `plugin_optimism_network.wasm`, run in the operator's sandbox through the SDK
//! harness. Build it first: `plugins/build.sh`.

#[path = "../../testdata/support.rs"]
mod support;

use opstack_plugin_sdk::RenderInput;
use opstack_plugin_sdk::harness::Harness;
use opstack_plugin_sdk::serde_json::{Value, json};
use support::{Suite, render};

const STEM: &str = "plugin_optimism_network";
const ROLLUP: &str = r#"{"genesis":{"l1":{"hash":"0x01","number":0},"l2_time":1700000000},"block_time":2,"l1_chain_id":900,"l2_chain_id":901}"#;
const GENESIS: &str = r#"{"config":{"chainId":901,"optimism":{"eip1559Elasticity":6}},"alloc":{}}"#;

fn network(name: &str, spec: Value) -> RenderInput {
    let mut full = json!({ "chainID": 901, "l1ChainID": 900, "l1RpcUrl": "http://l1:8545" });
    for (key, value) in spec.as_object().unwrap() {
        full[key] = value.clone();
    }
    let resource = json!({
        "apiVersion": "optimism.io/v1alpha1",
        "kind": "OptimismNetwork",
        "metadata": { "name": name, "namespace": "chain-a" },
        "spec": full,
    });
    let mut input = RenderInput {
        kind: "OptimismNetwork".into(),
        resource: resource.to_string(),
        ..Default::default()
    };
    input.network.name = name.into();
    input.network.spec = full.to_string();
    input
}

fn fixtures() -> Vec<(&'static str, RenderInput)> {
    vec![
        (
            "inline_rollup_config_and_genesis",
            network(
                "devnet",
                json!({ "rollupConfig": { "inline": ROLLUP }, "l2Genesis": { "inline": GENESIS } }),
            ),
        ),
        (
            "inline_rollup_config_genesis_from_config_map",
            network(
                "devnet",
                json!({
                    "rollupConfig": { "inline": ROLLUP },
                    "l2Genesis": { "configMapRef": { "name": "big-genesis", "key": "genesis.json" } },
                }),
            ),
        ),
        (
            "named_network_nothing_inline",
            network("op-sepolia", json!({ "networkName": "op-sepolia" })),
        ),
    ]
}

fn plugin() -> &'static Harness {
    Harness::built(STEM)
}

fn suite() -> Suite {
    Suite {
        plugin: plugin(),
        fixtures: fixtures(),
        native: plugin_optimism_network::render,
    }
}

fn invalid(input: &RenderInput) -> Vec<String> {
    support::invalid(plugin(), input)
}

#[test]
fn golden_snapshots_of_every_fixture() {
    for (name, rendered) in suite().rendered() {
        insta::assert_yaml_snapshot!(name, rendered.objects);
        assert!(rendered.warnings.is_empty());
    }
}

#[test]
fn info_names_the_kind() {
    suite().assert_info("optimism-network", "OptimismNetwork");
}

#[test]
fn inline_documents_become_one_config_map_named_after_the_network() {
    let rendered = render(plugin(), &fixtures()[0].1);
    assert_eq!(rendered.objects.len(), 1);
    let config_map = &rendered.objects[0];
    assert_eq!(config_map["kind"], "ConfigMap");
    assert_eq!(config_map["metadata"]["name"], "devnet-chain-config");
    // Byte for byte what the user wrote: nodes read exactly this file.
    assert_eq!(config_map["data"]["rollup.json"], ROLLUP);
    assert_eq!(config_map["data"]["genesis.json"], GENESIS);
}

#[test]
fn only_inline_documents_go_into_the_config_map() {
    let rendered = render(plugin(), &fixtures()[1].1);
    let data = rendered.objects[0]["data"].as_object().unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["rollup.json"]);
}

#[test]
fn nothing_inline_renders_nothing() {
    let plugin = plugin();
    let rendered = render(plugin, &fixtures()[2].1);
    assert!(rendered.objects.is_empty());
    let refs = network(
        "devnet",
        json!({
            "rollupConfig": { "configMapRef": { "name": "files", "key": "rollup.json" } },
            "l2Genesis": { "configMapRef": { "name": "files", "key": "genesis.json" } },
        }),
    );
    assert!(render(plugin, &refs).objects.is_empty());
}

#[test]
fn inline_rollup_config_that_is_not_a_json_object_is_invalid_naming_the_field() {
    for bad in ["[1, 2]", "\"rollup\"", "{\"block_time\": 2", "{} trailing"] {
        let problems = invalid(&network(
            "devnet",
            json!({ "rollupConfig": { "inline": bad }, "l2Genesis": { "inline": GENESIS } }),
        ));
        assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
        assert!(
            problems[0].starts_with("spec.rollupConfig.inline"),
            "{bad}: {problems:?}"
        );
    }
}

#[test]
fn every_bad_inline_document_is_reported() {
    let problems = invalid(&network(
        "devnet",
        json!({ "rollupConfig": { "inline": "[]" }, "l2Genesis": { "inline": "nope" } }),
    ));
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[1].starts_with("spec.l2Genesis.inline"));
}

#[test]
fn documents_too_large_for_a_config_map_are_invalid() {
    let big = format!(
        "{{\"alloc\":{{\"0x00\":\"{}\"}}}}",
        "a".repeat(max_data_bytes())
    );
    let problems = invalid(&network(
        "devnet",
        json!({ "rollupConfig": { "inline": ROLLUP }, "l2Genesis": { "inline": big } }),
    ));
    assert!(problems[0].contains("configMapRef"), "{problems:?}");
}

fn max_data_bytes() -> usize {
    plugin_optimism_network::MAX_DATA_BYTES
}

#[test]
fn every_object_passes_the_hosts_envelope() {
    suite().assert_sealed();
}

#[test]
fn same_input_renders_identical_bytes() {
    suite().assert_same_bytes();
}
