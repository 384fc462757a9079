//! Golden snapshots of the full rendered object list per fixture, the plugin's validation and
//! the size of the built module.

mod common;

use common::*;
use opstack_plugin_sdk::serde_json::{self, Value};

#[test]
fn golden_snapshots_of_every_fixture() {
    for (name, input) in fixtures() {
        let out = render(&input);
        insta::assert_yaml_snapshot!(name, snapshot_of(&out));
    }
}

#[test]
fn the_sandboxed_render_matches_the_native_one() {
    for (name, input) in fixtures() {
        let in_sandbox = render(&input);
        let native = plugin_op_node::render(&input).unwrap();
        let native: Vec<Value> = native
            .objects
            .iter()
            .map(|o| serde_json::from_str(o).unwrap())
            .collect();
        assert_eq!(in_sandbox.objects, native, "{name}");
    }
}

#[test]
fn built_plugin_fits_in_a_configmap() {
    let size = plugin().plugin().size();
    eprintln!("plugin_op_node.wasm: {size} bytes");
    assert!(size < 1 << 20, "{size} bytes");
}

#[test]
fn info_names_the_kind() {
    let info = plugin().plugin().info();
    assert_eq!(info.kinds, ["OpNode"]);
    assert_eq!(info.name, "op-node");
}

fn invalid(input: &opstack_plugin_sdk::RenderInput) -> Vec<String> {
    let err = plugin().validate(input).unwrap_err();
    assert_eq!(err.reason(), "InvalidInput", "{err}");
    match err {
        opstack_plugin_sdk::harness::Error::Invalid(problems) => problems,
        other => panic!("{other}"),
    }
}

fn edit(input: &mut opstack_plugin_sdk::RenderInput, f: impl FnOnce(&mut Value)) {
    let mut r: Value = serde_json::from_str(&input.resource).unwrap();
    f(&mut r);
    input.resource = r.to_string();
}

#[test]
fn every_fixture_validates() {
    for (name, input) in fixtures() {
        plugin()
            .validate(&input)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn a_sequencer_without_a_signing_key_is_invalid() {
    let mut input = sequencer_reth();
    input
        .network
        .secrets
        .retain(|s| s.purpose != "sequencer-key");
    edit(&mut input, |r| {
        r["spec"]["opNode"]["sequencer"]
            .as_object_mut()
            .unwrap()
            .remove("signingKey");
    });
    let problems = invalid(&input);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("spec.opNode.sequencer.signingKey:"),
        "{problems:?}"
    );
    assert!(problems[0].contains("unsafeBlockSigner"), "{problems:?}");
    // The render refuses the same input the same way.
    assert_eq!(
        plugin().render(&input).unwrap_err().reason(),
        "InvalidInput"
    );
}

#[test]
fn a_signing_key_the_host_did_not_resolve_is_invalid() {
    let mut input = sequencer_reth();
    input
        .network
        .secrets
        .retain(|s| s.purpose != "sequencer-key");
    let problems = invalid(&input);
    assert!(problems[0].contains("sequencer-key"), "{problems:?}");
}

#[test]
fn a_replica_without_a_sequencer_is_invalid() {
    let mut input = replica_reth_sequencer_ref();
    input.references.clear();
    edit(&mut input, |r| {
        r["spec"].as_object_mut().unwrap().remove("sequencerRef");
    });
    let problems = invalid(&input);
    assert!(
        problems[0].starts_with("spec.sequencerRef:"),
        "{problems:?}"
    );
    assert!(problems[0].contains("spec.sequencerUrl"), "{problems:?}");
}

#[test]
fn an_unresolved_sequencer_ref_is_invalid() {
    let mut input = replica_reth_sequencer_ref();
    input.references.clear();
    let problems = invalid(&input);
    assert!(problems[0].contains("execution-rpc"), "{problems:?}");
}

#[test]
fn colliding_ports_are_invalid_and_every_problem_is_reported() {
    let mut input = replica_reth_sequencer_ref();
    edit(&mut input, |r| {
        r["spec"]["opNode"] = serde_json::json!({"rpc": {"port": 8545}});
    });
    input.network.secrets.retain(|s| s.purpose != "jwt");
    let problems = invalid(&input);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("spec.opNode.engine.jwtSecret"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("spec.opNode.rpc.port and spec.opReth.networking.http.port"))
    );
}

#[test]
fn a_network_without_beacon_is_invalid() {
    let mut input = replica_reth_sequencer_ref();
    let mut net: Value = serde_json::from_str(&input.network.spec).unwrap();
    net.as_object_mut().unwrap().remove("l1BeaconUrl");
    input.network.spec = net.to_string();
    let problems = invalid(&input);
    assert!(problems[0].contains("spec.l1BeaconUrl"), "{problems:?}");
}

#[test]
fn warnings_reach_validate_too() {
    let warnings = plugin().validate(&replica_geth_named()).unwrap();
    assert!(
        warnings.iter().any(|w| w.contains("op-geth")),
        "{warnings:?}"
    );
}

#[test]
fn a_devnet_l1_without_its_chain_config_is_invalid() {
    let mut input = p2p_discovery_off();
    input
        .network
        .config_maps
        .retain(|c| c.purpose != "l1-chain-config");
    let problems = invalid(&input);
    assert!(problems[0].contains("spec.l1ChainConfig"), "{problems:?}");
    // With it, op-node reads the mounted file.
    let out = render(&p2p_discovery_off());
    let node = container(&out, "op-node").unwrap();
    assert_eq!(
        flag_value(node, "rollup.l1-chain-config").as_deref(),
        Some("/chain/l1/l1-chain-config.json")
    );
}
