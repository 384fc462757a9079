//! The built `plugin_op_batcher.wasm`, run in the operator's sandbox through the SDK harness.
//! Build it first: `plugins/build.sh`.

#[path = "../../testdata/support.rs"]
mod support;

use std::collections::BTreeSet;

use opstack_plugin_sdk::RenderInput;
use opstack_plugin_sdk::harness::{Harness, Rendered};
use opstack_plugin_sdk::serde_json::{Value, json};
use support::*;

const STEM: &str = "plugin_op_batcher";

fn batcher(spec: Value, l1: L1, chain: Chain, signing: Signing) -> RenderInput {
    input(
        "OpBatcher",
        "batcher",
        spec,
        l1,
        chain,
        signing,
        "sequencerRef",
    )
}

fn mainnet_grade() -> Value {
    json!({
        "batching": {
            "maxChannelDuration": 25,
            "subSafetyMargin": 10,
            "targetNumFrames": 6,
            "approxComprRatio": "0.4",
            "compressor": "shadow",
            "batchType": "span",
            "pollInterval": "2s",
            "maxPendingTx": 4,
            "maxL1TxSizeBytes": 120000,
        },
        "dataAvailability": { "type": "blobs" },
        "throttling": {
            "controllerType": "quadratic",
            "unsafeDaBytesLowerThreshold": 3200000,
            "unsafeDaBytesUpperThreshold": 12800000,
        },
        "l1Transaction": {
            "numConfirmations": 4,
            "safeAbortNonceTooLowCount": 3,
            "feeLimitMultiplier": 5,
            "resubmissionTimeout": "48s",
            "networkTimeout": "10s",
        },
        "rpc": { "port": 8548, "enableAdmin": true },
    })
}

/// The settings of the local devnet the suite runs (a dev L1 with 2-s blocks, calldata): what
/// made op-batcher v1.19.6 post promptly there when it ran as a plain process.
fn devnet() -> Value {
    json!({
        "batching": { "maxChannelDuration": 1, "subSafetyMargin": 4, "pollInterval": "1s" },
        "dataAvailability": { "type": "calldata" },
        "l1Transaction": { "numConfirmations": 1, "receiptQueryInterval": "1s" },
    })
}

/// The op-batcher command line that worked on that devnet, without its endpoints, key and RPC
/// address (those come from the network, the Secret and the pod).
const DEVNET_FLAGS: &[(&str, &str)] = &[
    ("data-availability-type", "calldata"),
    ("num-confirmations", "1"),
    ("max-channel-duration", "1"),
    ("poll-interval", "1s"),
    ("sub-safety-margin", "4"),
    ("txmgr.receipt-query-interval", "1s"),
    ("log.level", "info"),
];

/// Every fixture: (snapshot name, input).
fn fixtures() -> Vec<(&'static str, RenderInput)> {
    vec![
        (
            "private_key_literal_l1_named_network",
            batcher(
                mainnet_grade(),
                L1::Literal,
                Chain::Named,
                Signing::PrivateKey,
            ),
        ),
        (
            "remote_signer_tls_secret_l1_custom_chain",
            batcher(
                mainnet_grade(),
                L1::Secret,
                Chain::Custom,
                Signing::RemoteSignerTls,
            ),
        ),
        (
            "remote_signer_plain_defaults",
            batcher(json!({}), L1::Literal, Chain::Named, Signing::RemoteSigner),
        ),
        (
            "devnet_calldata_private_key_custom_chain",
            batcher(devnet(), L1::Literal, Chain::Custom, Signing::PrivateKey),
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
        native: plugin_op_batcher::render,
    }
}

/// A batcher with `spec`, a literal L1 URL, a named network and a private key.
fn with(spec: Value) -> Rendered {
    render(
        plugin(),
        &batcher(spec, L1::Literal, Chain::Named, Signing::PrivateKey),
    )
}

fn plain() -> Rendered {
    with(json!({}))
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
    suite().assert_info("op-batcher", "OpBatcher");
}

#[test]
fn batcher_is_one_replica_with_recreate_strategy() {
    suite().each(|_, rendered| assert_single_signer_deployment(rendered, "batcher"));
}

#[test]
fn private_key_only_reaches_the_container_through_secret_key_ref() {
    assert_private_key_env(&plain(), "OP_BATCHER_PRIVATE_KEY", "batcher-key");
}

#[test]
fn remote_signer_renders_endpoint_and_address_and_no_key() {
    let plugin = plugin();
    for (signing, tls) in [
        (Signing::RemoteSigner, "false"),
        (Signing::RemoteSignerTls, "true"),
    ] {
        let input = batcher(json!({}), L1::Literal, Chain::Named, signing);
        assert_remote_signer(&render(plugin, &input), "OP_BATCHER_PRIVATE_KEY", tls);
    }
}

#[test]
fn remote_signer_with_tls_mounts_its_secret_and_passes_absolute_paths() {
    let rendered = render(
        plugin(),
        &batcher(
            json!({}),
            L1::Literal,
            Chain::Named,
            Signing::RemoteSignerTls,
        ),
    );
    let args = args(&rendered);
    assert_eq!(flag(&args, "signer.tls.enabled"), Some("true"));
    for (flag_name, file) in [
        ("signer.tls.ca", "ca.crt"),
        ("signer.tls.cert", "tls.crt"),
        ("signer.tls.key", "tls.key"),
    ] {
        assert_eq!(
            flag(&args, flag_name),
            Some(format!("/secrets/signer-tls/{file}").as_str())
        );
    }
    let pod = &object(&rendered, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "signer-client-tls"
    );
    let mount = &pod["containers"][0]["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/secrets/signer-tls");
    assert_eq!(mount["readOnly"], true);
}

#[test]
fn remote_signer_without_tls_turns_tls_off_and_mounts_nothing() {
    let rendered = render(
        plugin(),
        &batcher(json!({}), L1::Literal, Chain::Named, Signing::RemoteSigner),
    );
    let args = args(&rendered);
    assert_eq!(flag(&args, "signer.tls.enabled"), Some("false"));
    assert!(!has_flag(&args, "signer.tls.ca"));
    let pod = &object(&rendered, "Deployment")["spec"]["template"]["spec"];
    assert!(pod.get("volumes").is_none());
}

#[test]
fn secret_l1_url_is_an_env_from_secret_key_ref_and_no_flag() {
    let rendered = render(
        plugin(),
        &batcher(json!({}), L1::Secret, Chain::Named, Signing::PrivateKey),
    );
    assert!(!has_flag(&args(&rendered), "l1-eth-rpc"));
    let env = env(&rendered, "OP_BATCHER_L1_ETH_RPC").expect("OP_BATCHER_L1_ETH_RPC");
    assert_eq!(
        env["valueFrom"]["secretKeyRef"],
        json!({ "name": "l1-endpoints", "key": "rpc-url", "optional": false })
    );
    assert_keys_only_through_secret_key_refs(&rendered);
}

#[test]
fn literal_l1_url_is_a_flag() {
    let rendered = plain();
    assert_eq!(
        flag(&args(&rendered), "l1-eth-rpc"),
        Some("https://l1.example.org")
    );
    assert!(env(&rendered, "OP_BATCHER_L1_ETH_RPC").is_none());
}

#[test]
fn l2_and_rollup_rpc_come_from_the_sequencer_reference() {
    let rendered = plain();
    let args = args(&rendered);
    assert_eq!(
        flag(&args, "l2-eth-rpc"),
        Some("http://node-a.chain-a.svc:8545")
    );
    assert_eq!(
        flag(&args, "rollup-rpc"),
        Some("http://node-a.chain-a.svc:9545")
    );
}

#[test]
fn unresolved_sequencer_reference_is_invalid_naming_the_field() {
    let mut input = batcher(json!({}), L1::Literal, Chain::Named, Signing::PrivateKey);
    input.references.clear();
    let problems = invalid(plugin(), &input);
    assert!(problems[0].starts_with("spec.sequencerRef"), "{problems:?}");
}

#[test]
fn missing_private_key_secret_is_invalid_naming_the_field() {
    let mut input = batcher(json!({}), L1::Literal, Chain::Named, Signing::PrivateKey);
    input.network.secrets.retain(|s| s.purpose != "private-key");
    let problems = invalid(plugin(), &input);
    assert!(
        problems[0].starts_with("spec.privateKey.secretRef"),
        "{problems:?}"
    );
}

#[test]
fn data_availability_type_is_always_rendered() {
    let rendered = plain();
    // The binary's default is calldata; the API's is blobs.
    assert_eq!(
        flag(&args(&rendered), "data-availability-type"),
        Some("blobs")
    );
    let rendered = with(json!({ "dataAvailability": { "type": "auto" } }));
    assert_eq!(
        flag(&args(&rendered), "data-availability-type"),
        Some("auto")
    );
}

#[test]
fn batching_and_throttle_settings_use_todays_flag_names() {
    let rendered = with(mainnet_grade());
    let args = args(&rendered);
    for (name, value) in [
        ("max-channel-duration", "25"),
        ("sub-safety-margin", "10"),
        ("target-num-frames", "6"),
        ("approx-compr-ratio", "0.4"),
        ("compressor", "shadow"),
        ("batch-type", "1"),
        ("poll-interval", "2s"),
        ("max-pending-tx", "4"),
        ("throttle.controller-type", "quadratic"),
        ("throttle.unsafe-da-bytes-lower-threshold", "3200000"),
        ("throttle.unsafe-da-bytes-upper-threshold", "12800000"),
        ("num-confirmations", "4"),
        ("resubmission-timeout", "48s"),
    ] {
        assert_eq!(flag(&args, name), Some(value), "--{name}");
    }
    for removed in [
        "throttle-threshold",
        "throttle-controller-type",
        "throttle-interval",
    ] {
        assert!(
            !has_flag(&args, removed),
            "--{removed} was renamed or removed"
        );
    }
}

#[test]
fn compressor_none_is_invalid_naming_the_field() {
    let input = batcher(
        json!({ "batching": { "compressor": "none" } }),
        L1::Literal,
        Chain::Named,
        Signing::PrivateKey,
    );
    let problems = invalid(plugin(), &input);
    assert!(
        problems[0].starts_with("spec.batching.compressor"),
        "{problems:?}"
    );
}

#[test]
fn more_than_six_blobs_per_transaction_is_a_warning() {
    let rendered = with(json!({ "batching": { "targetNumFrames": 8 } }));
    assert_eq!(rendered.warnings.len(), 1);
    assert!(rendered.warnings[0].contains("targetNumFrames"));
}

#[test]
fn rpc_admin_metrics_and_logging_follow_the_cr_and_the_network() {
    let rendered = with(mainnet_grade());
    let args = args(&rendered);
    assert_eq!(flag(&args, "rpc.addr"), Some("0.0.0.0"));
    assert_eq!(flag(&args, "rpc.port"), Some("8548"));
    assert!(has_flag(&args, "rpc.enable-admin"));
    assert!(has_flag(&args, "metrics.enabled"));
    assert_eq!(flag(&args, "metrics.port"), Some("7300"));
    assert_eq!(flag(&args, "log.level"), Some("info"));
    assert_eq!(flag(&args, "log.format"), Some("json"));

    // The CR's metrics win over the network's.
    let rendered = with(json!({ "metrics": { "enabled": false } }));
    let args = support::args(&rendered);
    assert!(!has_flag(&args, "metrics.enabled"));
    assert!(!has_flag(&args, "rpc.enable-admin"));
    let ports = &containers(&rendered)[0]["ports"];
    assert_eq!(ports.as_array().unwrap().len(), 1, "{ports}");
}

#[test]
fn batcher_renders_receipt_query_interval_from_spec() {
    let rendered = with(json!({ "l1Transaction": { "receiptQueryInterval": "1s" } }));
    assert_eq!(
        flag(&args(&rendered), "txmgr.receipt-query-interval"),
        Some("1s")
    );
}

#[test]
fn receipt_query_interval_is_the_binarys_default_when_unset() {
    assert!(!has_flag(&args(&plain()), "txmgr.receipt-query-interval"));
}

#[test]
fn devnet_batcher_renders_the_command_line_that_worked_and_nothing_else() {
    let rendered = with(devnet());
    let args = args(&rendered);
    for (name, value) in DEVNET_FLAGS {
        assert_eq!(flag(&args, name), Some(*value), "--{name}");
    }
    let rendered_names: BTreeSet<&str> = args
        .iter()
        .map(|a| a.trim_start_matches("--").split('=').next().unwrap())
        .collect();
    let mut expected: BTreeSet<&str> = DEVNET_FLAGS.iter().map(|(name, _)| *name).collect();
    // Endpoints from the network and the sequencer's Service; RPC on every pod address; the
    // network's log format; metrics, which the operator reads for the status.
    expected.extend([
        "l1-eth-rpc",
        "l2-eth-rpc",
        "rollup-rpc",
        "rpc.addr",
        "rpc.port",
        "log.format",
        "metrics.enabled",
        "metrics.addr",
        "metrics.port",
    ]);
    assert_eq!(rendered_names, expected);
    assert_private_key_env(&rendered, "OP_BATCHER_PRIVATE_KEY", "batcher-key");
}

#[test]
fn batcher_service_selects_only_its_pods_with_rpc_and_metrics_ports() {
    suite().each(|_, rendered| {
        let rpc = containers(rendered)[0]["ports"][0]["containerPort"]
            .as_i64()
            .unwrap();
        assert_service_over_own_pods(rendered, "batcher", &[("rpc", rpc), ("metrics", 7300)]);
    });
}

#[test]
fn batcher_service_has_no_metrics_port_when_metrics_are_off() {
    let rendered = with(json!({ "metrics": { "enabled": false } }));
    assert_service_over_own_pods(&rendered, "batcher", &[("rpc", 8545)]);
}

#[test]
fn probes_are_http_because_the_image_has_no_shell() {
    suite().each(|_, rendered| assert_probes_need_no_shell(rendered));
}

#[test]
fn startup_probe_outlasts_the_dial_retries_before_liveness_applies() {
    let rendered = plain();
    let startup = &containers(&rendered)[0]["startupProbe"];
    assert_eq!(startup["httpGet"]["path"], "/healthz");
    assert_eq!(startup["httpGet"]["port"], "rpc");
    let budget =
        startup["periodSeconds"].as_i64().unwrap() * startup["failureThreshold"].as_i64().unwrap();
    // L1, L2 and rollup dials are each retried for up to a minute before the RPC server starts.
    assert!(budget >= 180, "{budget} s");
}

#[test]
fn liveness_is_healthz_on_the_rpc_port() {
    let rendered = plain();
    let container = containers(&rendered)[0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "rpc");
    assert_eq!(
        container["ports"][0],
        json!({ "name": "rpc", "containerPort": 8545, "protocol": "TCP" })
    );
}

#[test]
fn resources_come_from_the_cr_else_the_network_default() {
    let rendered = plain();
    assert_eq!(
        containers(&rendered)[0]["resources"]["requests"]["cpu"],
        "100m"
    );
    let rendered = with(json!({ "resources": { "requests": { "cpu": "2" } } }));
    assert_eq!(
        containers(&rendered)[0]["resources"],
        json!({ "requests": { "cpu": "2" } })
    );
}

#[test]
fn image_override_and_pull_policy_come_from_the_cr() {
    let rendered = with(
        json!({ "image": { "image": "registry.example/op-batcher:custom", "pullPolicy": "Always" } }),
    );
    let container = containers(&rendered)[0];
    assert_eq!(container["image"], "registry.example/op-batcher:custom");
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(container["command"], json!(["op-batcher"]));
}

#[test]
fn every_pod_is_restricted_with_a_read_only_root_and_no_token() {
    suite().each(|_, rendered| assert_restricted(rendered));
}

#[test]
fn every_rendered_flag_exists_in_the_binarys_flag_list() {
    suite().each(|_, rendered| assert_flags_known(rendered, "op-batcher"));
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
