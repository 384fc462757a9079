//! The built `plugin_op_challenger.wasm`, run in the operator's sandbox through the SDK
//! harness. Build it first: `plugins/build.sh`.

#[path = "../../testdata/support.rs"]
mod support;

use opstack_plugin_sdk::RenderInput;
use opstack_plugin_sdk::harness::Harness;
use opstack_plugin_sdk::serde_json::{Value, json};
use support::*;

const STEM: &str = "plugin_op_challenger";
const SPEC_FACTORY: &str = "0x2222222222222222222222222222222222222222";
const PRESTATES: &str = "https://prestates.example.org/";

fn challenger(spec: Value, l1: L1, chain: Chain, signing: Signing) -> RenderInput {
    let mut full = json!({
        "gameTypes": ["cannon-kona", "permissioned"],
        "prestates": { "url": PRESTATES },
    });
    merge(&mut full, spec);
    input(
        "OpChallenger",
        "challenger",
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
            "private_key_literal_l1_named_network",
            challenger(json!({}), L1::Literal, Chain::Named, Signing::PrivateKey),
        ),
        (
            "remote_signer_tls_secret_l1_custom_chain",
            challenger(
                json!({
                    "gameTypes": ["cannon", "cannon-kona", "cannon"],
                    "prestates": { "cannonUrl": "https://cannon.example.org/", "cannonKonaUrl": "https://kona.example.org/" },
                    "disputeGame": {
                        "factoryAddr": SPEC_FACTORY,
                        "gameAllowlist": ["0x3333333333333333333333333333333333333333", "0x4444444444444444444444444444444444444444"],
                        "gameWindow": "336h",
                    },
                    "storage": { "size": "200Gi", "storageClassName": "fast-ssd", "accessMode": "ReadWriteOncePod" },
                    "monitoring": { "maxConcurrency": 4, "httpPollInterval": "6s", "maxPendingTx": 5 },
                    "l1Transaction": { "numConfirmations": 3 },
                    "metrics": { "enabled": true, "port": 7310 },
                }),
                L1::Secret,
                Chain::Custom,
                Signing::RemoteSignerTls,
            ),
        ),
        (
            "remote_signer_plain_named_network_without_discovered_factory",
            {
                let mut input = challenger(
                    json!({ "gameTypes": ["permissioned"] }),
                    L1::Literal,
                    Chain::Named,
                    Signing::RemoteSigner,
                );
                input.network.contracts.clear();
                input
            },
        ),
    ]
}

/// The fixture's resource without `spec.prestates`.
fn without_prestates(input: &mut RenderInput) {
    let mut resource: Value = opstack_plugin_sdk::serde_json::from_str(&input.resource).unwrap();
    resource["spec"]
        .as_object_mut()
        .unwrap()
        .remove("prestates");
    input.resource = resource.to_string();
}

fn plugin() -> &'static Harness {
    Harness::built(STEM)
}

fn suite() -> Suite {
    Suite {
        plugin: plugin(),
        fixtures: fixtures(),
        native: plugin_op_challenger::render,
    }
}

#[test]
fn golden_snapshots_of_every_fixture() {
    for (name, rendered) in suite().rendered() {
        insta::assert_yaml_snapshot!(
            name,
            json!({ "objects": rendered.objects, "warnings": rendered.warnings })
        );
    }
}

#[test]
fn info_names_the_kind() {
    suite().assert_info("op-challenger", "OpChallenger");
}

#[test]
fn challenger_is_one_statefulset_replica_with_a_headless_metrics_service() {
    suite().each(|name, rendered| {
        assert_eq!(rendered.objects.len(), 2, "{name}");
        let sts = object(rendered, "StatefulSet");
        assert_eq!(sts["metadata"]["name"], "challenger");
        assert_eq!(sts["spec"]["replicas"], 1);
        assert_eq!(sts["spec"]["serviceName"], "challenger");
        let service = object(rendered, "Service");
        assert_eq!(service["metadata"]["name"], "challenger");
        assert_eq!(service["spec"]["clusterIP"], "None");
        let ports = service["spec"]["ports"].as_array().unwrap();
        assert_eq!(ports.len(), 1, "{name}: only the metrics port");
        assert_eq!(ports[0]["name"], "metrics");
        assert_eq!(
            service["spec"]["selector"],
            sts["spec"]["selector"]["matchLabels"]
        );
    });
}

#[test]
fn challenger_pvc_is_retained() {
    suite().each(|name, rendered| {
        let sts = object(rendered, "StatefulSet");
        assert_eq!(
            sts["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({ "whenDeleted": "Retain", "whenScaled": "Retain" }),
            "{name}"
        );
        let claims = sts["spec"]["volumeClaimTemplates"].as_array().unwrap();
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0]["metadata"]["name"], "data");
        let mounts = &sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"];
        assert!(
            mounts
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["name"] == "data"
                    && m["mountPath"] == "/data"
                    && m["readOnly"] == false)
        );
    });
}

#[test]
fn datadir_claim_is_50gi_by_default_and_follows_spec_storage() {
    let rendered = suite().rendered();
    let default = object(&rendered[0].1, "StatefulSet");
    let claim = &default["spec"]["volumeClaimTemplates"][0]["spec"];
    assert_eq!(claim["resources"]["requests"]["storage"], "50Gi");
    assert_eq!(claim["accessModes"], json!(["ReadWriteOnce"]));
    assert!(claim.get("storageClassName").is_none());

    let sized = object(&rendered[1].1, "StatefulSet");
    let claim = &sized["spec"]["volumeClaimTemplates"][0]["spec"];
    assert_eq!(claim["resources"]["requests"]["storage"], "200Gi");
    assert_eq!(claim["storageClassName"], "fast-ssd");
    assert_eq!(claim["accessModes"], json!(["ReadWriteOncePod"]));
}

#[test]
fn challenger_has_no_rpc_server_flags() {
    suite().each(|name, rendered| {
        let args = args(rendered);
        assert!(
            !args.iter().any(|a| a.starts_with("--rpc.")),
            "{name}: {args:?}"
        );
        assert_eq!(flag(&args, "datadir"), Some("/data"));
    });
}

#[test]
fn readiness_comes_from_the_metrics_port() {
    suite().each(|name, rendered| {
        let container = containers(rendered)[0];
        assert_eq!(
            container["readinessProbe"]["tcpSocket"]["port"], "metrics",
            "{name}"
        );
        let ports = container["ports"].as_array().unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0]["name"], "metrics");
        assert!(has_flag(&args(rendered), "metrics.enabled"));
    });
}

#[test]
fn metrics_stay_enabled_when_the_spec_disables_them() {
    let rendered = render(
        plugin(),
        &challenger(
            json!({ "metrics": { "enabled": false, "port": 7400 } }),
            L1::Literal,
            Chain::Named,
            Signing::PrivateKey,
        ),
    );
    let args = args(&rendered);
    assert!(has_flag(&args, "metrics.enabled"));
    assert_eq!(flag(&args, "metrics.port"), Some("7400"));
    assert_eq!(rendered.warnings.len(), 1, "{:?}", rendered.warnings);
}

#[test]
fn game_types_are_one_comma_list_without_repeats() {
    let fixtures = fixtures();
    let plugin = plugin();
    let args0 = args(&render(plugin, &fixtures[0].1));
    assert_eq!(flag(&args0, "game-types"), Some("cannon-kona,permissioned"));
    let args1 = args(&render(plugin, &fixtures[1].1));
    assert_eq!(flag(&args1, "game-types"), Some("cannon,cannon-kona"));
    assert_eq!(
        flag(&args1, "game-allowlist"),
        Some(
            "0x3333333333333333333333333333333333333333,0x4444444444444444444444444444444444444444"
        )
    );
}

#[test]
fn prestates_urls_are_rendered_per_vm() {
    let fixtures = fixtures();
    let plugin = plugin();
    let args0 = args(&render(plugin, &fixtures[0].1));
    assert_eq!(flag(&args0, "prestates-url"), Some(PRESTATES));
    let args1 = args(&render(plugin, &fixtures[1].1));
    assert_eq!(
        flag(&args1, "cannon-prestates-url"),
        Some("https://cannon.example.org/")
    );
    assert_eq!(
        flag(&args1, "cannon-kona-prestates-url"),
        Some("https://kona.example.org/")
    );
}

#[test]
fn cannon_game_types_without_prestates_are_invalid_naming_the_field() {
    let mut input = challenger(json!({}), L1::Literal, Chain::Named, Signing::PrivateKey);
    without_prestates(&mut input);
    let problems = invalid(plugin(), &input);
    assert!(problems[0].starts_with("spec.prestates"), "{problems:?}");
}

#[test]
fn permissioned_games_without_prestates_render_with_a_warning() {
    let mut input = challenger(
        json!({ "gameTypes": ["permissioned"] }),
        L1::Literal,
        Chain::Named,
        Signing::PrivateKey,
    );
    without_prestates(&mut input);
    let rendered = render(plugin(), &input);
    assert_eq!(rendered.warnings.len(), 1, "{:?}", rendered.warnings);
    assert!(rendered.warnings[0].starts_with("spec.prestates"));
    assert!(!has_flag(&args(&rendered), "prestates-url"));
}

#[test]
fn l1_beacon_and_l2_rpcs_are_rendered() {
    let plugin = plugin();
    let fixtures = fixtures();
    let literal = render(plugin, &fixtures[0].1);
    let args = args(&literal);
    assert_eq!(flag(&args, "l1-eth-rpc"), Some("https://l1.example.org"));
    assert_eq!(flag(&args, "l1-beacon"), Some("https://beacon.example.org"));
    assert_eq!(
        flag(&args, "l2-eth-rpc"),
        Some("http://node-a.chain-a.svc:8545")
    );
    assert_eq!(
        flag(&args, "rollup-rpc"),
        Some("http://node-a.chain-a.svc:9545")
    );

    let secret = render(plugin, &fixtures[1].1);
    let args = support::args(&secret);
    assert!(!has_flag(&args, "l1-eth-rpc") && !has_flag(&args, "l1-beacon"));
    let beacon = env(&secret, "OP_CHALLENGER_L1_BEACON").expect("OP_CHALLENGER_L1_BEACON");
    assert_eq!(
        beacon["valueFrom"]["secretKeyRef"],
        json!({ "name": "l1-endpoints", "key": "beacon-url", "optional": false })
    );
    assert!(env(&secret, "OP_CHALLENGER_L1_ETH_RPC").is_some());
    assert_keys_only_through_secret_key_refs(&secret);
}

#[test]
fn a_network_without_a_beacon_url_is_invalid() {
    let mut input = challenger(json!({}), L1::Literal, Chain::Named, Signing::PrivateKey);
    let mut network: Value = opstack_plugin_sdk::serde_json::from_str(&input.network.spec).unwrap();
    network.as_object_mut().unwrap().remove("l1BeaconUrl");
    input.network.spec = network.to_string();
    let problems = invalid(plugin(), &input);
    assert!(problems[0].contains("spec.l1BeaconUrl"), "{problems:?}");
}

#[test]
fn custom_chain_mounts_rollup_config_and_genesis() {
    let rendered = render(plugin(), &fixtures()[1].1);
    let args = args(&rendered);
    assert_eq!(
        flag(&args, "rollup-config"),
        Some("/chain/rollup-config/rollup-devnet.json")
    );
    assert_eq!(
        flag(&args, "l2-genesis"),
        Some("/chain/l2-genesis/genesis-devnet.json")
    );
    assert!(!has_flag(&args, "network"));
    let pod = &object(&rendered, "StatefulSet")["spec"]["template"]["spec"];
    let volumes = pod["volumes"].as_array().unwrap();
    for purpose in ["rollup-config", "l2-genesis"] {
        let volume = volumes.iter().find(|v| v["name"] == purpose).unwrap();
        assert_eq!(volume["configMap"]["name"], "devnet-files");
    }
    // The devnet's L1 is not a public one: op-challenger's VMs need an L1 genesis we cannot pass.
    assert_eq!(rendered.warnings.len(), 1, "{:?}", rendered.warnings);
}

#[test]
fn named_network_renders_network_and_no_rollup_config() {
    let rendered = render(plugin(), &fixtures()[0].1);
    let args = args(&rendered);
    assert_eq!(flag(&args, "network"), Some("op-sepolia"));
    assert!(!has_flag(&args, "rollup-config") && !has_flag(&args, "l2-genesis"));
    assert!(rendered.warnings.is_empty(), "{:?}", rendered.warnings);
}

#[test]
fn network_and_rollup_config_are_never_both_rendered() {
    suite().each(|name, rendered| {
        let args = args(rendered);
        assert!(
            has_flag(&args, "network") != has_flag(&args, "rollup-config"),
            "{name}: {args:?}"
        );
    });
}

#[test]
fn factory_address_comes_from_the_cr_else_the_networks_contracts() {
    let plugin = plugin();
    let fixtures = fixtures();
    let discovered = args(&render(plugin, &fixtures[0].1));
    assert_eq!(flag(&discovered, "game-factory-address"), Some(FACTORY));
    let from_spec = args(&render(plugin, &fixtures[1].1));
    assert_eq!(flag(&from_spec, "game-factory-address"), Some(SPEC_FACTORY));
    // A named network without a known factory: op-challenger finds it from --network.
    let by_name = args(&render(plugin, &fixtures[2].1));
    assert!(!has_flag(&by_name, "game-factory-address"));
    assert_eq!(flag(&by_name, "network"), Some("op-sepolia"));
}

#[test]
fn custom_chain_without_factory_address_is_invalid_naming_the_field() {
    let mut input = challenger(json!({}), L1::Literal, Chain::Custom, Signing::PrivateKey);
    input.network.contracts.clear();
    let problems = invalid(plugin(), &input);
    assert!(
        problems[0].starts_with("spec.disputeGame.factoryAddr"),
        "{problems:?}"
    );
}

#[test]
fn private_key_only_reaches_the_container_through_secret_key_ref() {
    let rendered = render(plugin(), &fixtures()[0].1);
    assert_private_key_env(&rendered, "OP_CHALLENGER_PRIVATE_KEY", "challenger-key");
}

#[test]
fn remote_signer_renders_endpoint_and_address_and_no_key() {
    let plugin = plugin();
    let fixtures = fixtures();
    for (input, tls) in [(&fixtures[1].1, "true"), (&fixtures[2].1, "false")] {
        assert_remote_signer(&render(plugin, input), "OP_CHALLENGER_PRIVATE_KEY", tls);
    }
    let tls = args(&render(plugin, &fixtures[1].1));
    assert_eq!(
        flag(&tls, "signer.tls.key"),
        Some("/secrets/signer-tls/tls.key")
    );
}

#[test]
fn every_pod_is_restricted_with_a_read_only_root_and_no_token() {
    suite().each(|_, rendered| assert_restricted(rendered));
}

#[test]
fn every_rendered_flag_exists_in_the_binarys_flag_list() {
    suite().each(|_, rendered| assert_flags_known(rendered, "op-challenger"));
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
fn unset_game_types_follow_the_binarys_default_and_say_what_it_skips() {
    let rendered = render(
        plugin(),
        &challenger(
            json!({ "gameTypes": [] }),
            L1::Literal,
            Chain::Named,
            Signing::PrivateKey,
        ),
    );
    assert!(!has_flag(&args(&rendered), "game-types"));
    assert!(
        rendered
            .warnings
            .iter()
            .any(|w| w.starts_with("spec.gameTypes is not set") && w.contains("cannon-kona")),
        "{:?}",
        rendered.warnings
    );
}

#[test]
fn super_permissioned_is_refused_because_the_binary_cannot_play_it() {
    let problems = invalid(
        plugin(),
        &challenger(
            json!({ "gameTypes": ["super-permissioned"] }),
            L1::Literal,
            Chain::Named,
            Signing::PrivateKey,
        ),
    );
    assert!(
        problems[0].starts_with("spec.gameTypes") && problems[0].contains("super-permissioned"),
        "{problems:?}"
    );
}
