//! The rules an OpNode rendering must keep, each a test named after it, run against every
//! fixture through the built plugin in the operator's sandbox.

mod common;

use common::*;
use opstack_plugin_sdk::serde_json::Value;

#[test]
fn sequencer_never_renders_rollup_sequencerhttp() {
    let mut seen = 0;
    for (name, input) in fixtures().into_iter().filter(|(_, i)| is_sequencer(i)) {
        seen += 1;
        let out = render(&input);
        for c in containers(&out) {
            for flag in flag_names(c) {
                assert!(
                    !flag.starts_with("--rollup.sequencer"),
                    "{name}: {} renders {flag}",
                    c["name"]
                );
            }
        }
    }
    assert!(seen >= 2);
}

#[test]
fn replica_never_renders_sequencer_flags() {
    let mut seen = 0;
    for (name, input) in fixtures().into_iter().filter(|(_, i)| !is_sequencer(i)) {
        seen += 1;
        let out = render(&input);
        let node = container(&out, "op-node").unwrap();
        for flag in flag_names(node) {
            assert!(
                !flag.starts_with("--sequencer.") && !flag.starts_with("--p2p.sequencer"),
                "{name}: replica renders {flag}"
            );
        }
        for env in node["env"].as_array().into_iter().flatten() {
            assert_ne!(env["name"], "OP_NODE_P2P_SEQUENCER_KEY", "{name}");
        }
        assert!(!has_flag(node, "rpc.enable-admin"), "{name}");
        // …and it forwards transactions to the sequencer without gossiping them.
        let el = container(&out, "op-reth").or_else(|| container(&out, "op-geth"));
        let el = el.unwrap();
        let forward =
            flag_value(el, "rollup.sequencer").or_else(|| flag_value(el, "rollup.sequencerhttp"));
        assert!(forward.is_some_and(|u| u.starts_with("http")), "{name}");
        assert!(
            has_flag(el, "rollup.disable-tx-pool-gossip")
                || has_flag(el, "rollup.disabletxpoolgossip"),
            "{name}"
        );
    }
    assert!(seen >= 4);
}

#[test]
fn sequencer_signs_with_its_key_from_a_secret_and_serves_admin() {
    for (name, input) in fixtures().into_iter().filter(|(_, i)| is_sequencer(i)) {
        let out = render(&input);
        let node = container(&out, "op-node").unwrap();
        assert!(has_flag(node, "sequencer.enabled"), "{name}");
        assert!(has_flag(node, "sequencer.l1-confs"), "{name}");
        assert!(has_flag(node, "rpc.enable-admin"), "{name}");
        let env = node["env"].as_array().unwrap();
        let key = env
            .iter()
            .find(|e| e["name"] == "OP_NODE_P2P_SEQUENCER_KEY")
            .unwrap_or_else(|| panic!("{name}: no sequencer key env"));
        assert!(key.get("value").is_none(), "{name}: literal key value");
        assert_eq!(
            key["valueFrom"]["secretKeyRef"]["name"], "seq-signer",
            "{name}"
        );
    }
}

#[test]
fn network_and_rollup_config_are_never_both_rendered() {
    for (name, input) in fixtures() {
        let out = render(&input);
        let node = container(&out, "op-node").unwrap();
        let network = has_flag(node, "network");
        let rollup = has_flag(node, "rollup.config");
        assert!(
            network ^ rollup,
            "{name}: --network {network}, --rollup.config {rollup}"
        );
        // The execution client follows the same choice.
        if let Some(geth) = container(&out, "op-geth") {
            assert_eq!(has_flag(geth, "op-network"), network, "{name}");
            assert_eq!(container(&out, "geth-init").is_some(), !network, "{name}");
        }
        if let Some(reth) = container(&out, "op-reth") {
            let chain = flag_value(reth, "chain").unwrap();
            assert_eq!(chain.starts_with('/'), !network, "{name}: --chain={chain}");
        }
    }
}

#[test]
fn enginekind_matches_the_execution_client() {
    for (name, input) in fixtures() {
        let out = render(&input);
        let node = container(&out, "op-node").unwrap();
        let kind =
            flag_value(node, "l2.enginekind").unwrap_or_else(|| panic!("{name}: no enginekind"));
        match (container(&out, "op-reth"), container(&out, "op-geth")) {
            (Some(_), None) => assert_eq!(kind, "reth", "{name}"),
            (None, Some(_)) => assert_eq!(kind, "geth", "{name}"),
            other => panic!("{name}: execution clients {other:?}"),
        }
        assert_eq!(
            flag_value(node, "l2").as_deref(),
            Some("http://127.0.0.1:8551"),
            "{name}"
        );
    }
}

#[test]
fn op_reth_always_gets_chain_listen_addresses_and_metrics() {
    let mut seen = 0;
    for (name, input) in fixtures() {
        let out = render(&input);
        let Some(reth) = container(&out, "op-reth") else {
            continue;
        };
        seen += 1;
        assert_eq!(argv(reth)[..2], ["op-reth", "node"], "{name}");
        let chain = flag_value(reth, "chain").unwrap_or_else(|| panic!("{name}: no --chain"));
        assert!(
            !chain.starts_with("op-"),
            "{name}: op-node's name {chain} given to op-reth"
        );
        assert_eq!(
            flag_value(reth, "datadir").as_deref(),
            Some("/data"),
            "{name}"
        );
        assert!(has_flag(reth, "http"), "{name}");
        assert_eq!(
            flag_value(reth, "http.addr").as_deref(),
            Some("0.0.0.0"),
            "{name}"
        );
        assert!(flag_value(reth, "http.port").is_some(), "{name}");
        if has_flag(reth, "ws") {
            assert_eq!(
                flag_value(reth, "ws.addr").as_deref(),
                Some("0.0.0.0"),
                "{name}"
            );
        }
        assert_eq!(
            flag_value(reth, "authrpc.addr").as_deref(),
            Some("127.0.0.1"),
            "{name}"
        );
        assert_eq!(
            flag_value(reth, "authrpc.port").as_deref(),
            Some("8551"),
            "{name}"
        );
        assert_eq!(
            flag_value(reth, "authrpc.jwtsecret").as_deref(),
            Some("/secrets/jwt/jwt.hex"),
            "{name}"
        );
        assert!(flag_value(reth, "port").is_some(), "{name}");
        let metrics_on = !name.contains("secret_l1_url");
        match flag_value(reth, "metrics") {
            Some(addr) => assert!(metrics_on && addr.starts_with("0.0.0.0:"), "{name}: {addr}"),
            None => assert!(!metrics_on, "{name}: metrics enabled but no --metrics"),
        }
        // Full unless archive.
        assert_eq!(
            has_flag(reth, "full"),
            name != "p2p_discovery_off",
            "{name}"
        );
    }
    assert!(seen >= 4);
}

#[test]
fn op_reth_chain_names_are_op_reths_own() {
    let out = render(&replica_reth_sequencer_ref());
    assert_eq!(
        flag_value(container(&out, "op-reth").unwrap(), "chain").as_deref(),
        Some("optimism-sepolia")
    );
    assert_eq!(
        flag_value(container(&out, "op-node").unwrap(), "network").as_deref(),
        Some("op-sepolia")
    );
    let out = render(&sequencer_reth());
    assert_eq!(
        flag_value(container(&out, "op-reth").unwrap(), "chain").as_deref(),
        Some("ink-sepolia")
    );
}

#[test]
fn engine_port_is_never_on_a_service() {
    for (name, input) in fixtures() {
        let out = render(&input);
        for svc in of_kind(&out, "Service") {
            for port in svc["spec"]["ports"].as_array().into_iter().flatten() {
                assert_ne!(port["port"], 8551, "{name}: {}", svc["metadata"]["name"]);
                assert_ne!(port["targetPort"], 8551, "{name}");
                assert!(!port["name"].as_str().unwrap().contains("auth"), "{name}");
            }
        }
        for c in containers(&out) {
            for port in c["ports"].as_array().into_iter().flatten() {
                assert_ne!(port["containerPort"], 8551, "{name}: engine port declared");
            }
            if let Some(addr) = flag_value(c, "authrpc.addr") {
                assert_eq!(addr, "127.0.0.1", "{name}");
            }
        }
    }
}

#[test]
fn services_carry_rpc_on_cr_and_p2p_tcp_and_udp_on_the_headless_one() {
    let out = render(&replica_reth_sequencer_ref());
    let services = of_kind(&out, "Service");
    let rpc = services
        .iter()
        .find(|s| s["metadata"]["name"] == "replica")
        .unwrap();
    let p2p = services
        .iter()
        .find(|s| s["metadata"]["name"] == "replica-p2p")
        .unwrap();
    let names = |s: &Value| -> Vec<(String, String, i64)> {
        s["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["protocol"].as_str().unwrap().to_owned(),
                    p["port"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let rpc_ports = names(rpc);
    for port in [8545, 8546, 9545, 7300, 9001] {
        assert!(
            rpc_ports.iter().any(|p| p.2 == port),
            "{port} missing on {rpc_ports:?}"
        );
    }
    assert!(!rpc_ports.iter().any(|p| p.2 == 9222 || p.2 == 30303));
    assert_eq!(p2p["spec"]["clusterIP"], "None");
    let p2p_ports = names(p2p);
    for (port, proto) in [(9222, "TCP"), (9222, "UDP"), (30303, "TCP"), (30303, "UDP")] {
        assert!(
            p2p_ports.iter().any(|p| p.2 == port && p.1 == proto),
            "{port}/{proto}"
        );
    }
    let sts = &of_kind(&out, "StatefulSet")[0];
    assert_eq!(sts["spec"]["serviceName"], "replica-p2p");
}

#[test]
fn statefulset_keeps_its_volumes_and_runs_restricted() {
    for (name, input) in fixtures() {
        let out = render(&input);
        let sts = &of_kind(&out, "StatefulSet")[0];
        let spec = &sts["spec"];
        assert_eq!(spec["replicas"], 1, "{name}");
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
            "Retain"
        );
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"]["whenScaled"],
            "Retain"
        );
        let claims: Vec<&str> = spec["volumeClaimTemplates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(claims, ["data", "op-node"], "{name}");
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false, "{name}");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert!(pod.get("hostNetwork").is_none() && pod.get("hostPID").is_none());
        for c in containers(&out) {
            let sc = &c["securityContext"];
            assert_eq!(
                sc["allowPrivilegeEscalation"], false,
                "{name}/{}",
                c["name"]
            );
            assert_eq!(sc["runAsNonRoot"], true, "{name}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
            assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{name}");
            assert!(sc["capabilities"].get("add").is_none(), "{name}");
            for port in c["ports"].as_array().into_iter().flatten() {
                assert!(port.get("hostPort").is_none(), "{name}");
            }
            // Writable places for what the binaries write: a data volume and /tmp.
            let mounts: Vec<&str> = c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["mountPath"].as_str().unwrap())
                .collect();
            if c["name"] == "genesis-unpack" {
                // It writes the unpacked genesis and nothing else.
                assert_eq!(
                    mounts,
                    ["/chain/genesis-packed", "/chain/genesis"],
                    "{name}"
                );
            } else {
                assert!(
                    mounts.contains(&"/tmp") && mounts.contains(&"/data"),
                    "{name}: {mounts:?}"
                );
            }
        }
    }
    let out = render(&secret_l1_url());
    let pod = &of_kind(&out, "StatefulSet")[0]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], 10001);
    assert_eq!(pod["securityContext"]["runAsGroup"], 10002);
    assert_eq!(pod["securityContext"]["fsGroup"], 10003);
}

#[test]
fn no_key_or_jwt_value_appears_in_args_or_env_literals() {
    // Flags that would carry key material on the command line.
    let value_flags = [
        "--p2p.sequencer.key",
        "--p2p.priv.raw",
        "--p2p-secret-key-hex",
        "--nodekeyhex",
        "--rpc.jwtsecret",
        "--private-key",
    ];
    for (name, input) in fixtures() {
        let out = render(&input);
        for c in containers(&out) {
            for flag in flag_names(c) {
                assert!(!value_flags.contains(&flag.as_str()), "{name}: {flag}");
            }
            for arg in argv(c) {
                // No 64-hex-digit value (the shape of every key and JWT) anywhere in argv.
                let hex_run = arg
                    .split(|ch: char| !ch.is_ascii_hexdigit())
                    .map(str::len)
                    .max()
                    .unwrap_or(0);
                assert!(hex_run < 64, "{name}: {arg}");
            }
            // Key and JWT files come from Secret mounts.
            for flag in ["l2.jwt-secret", "authrpc.jwtsecret", "p2p.priv.path"] {
                if let Some(path) = flag_value(c, flag) {
                    assert!(path.starts_with("/secrets/"), "{name}: --{flag}={path}");
                }
            }
            for env in c["env"].as_array().into_iter().flatten() {
                let var = env["name"].as_str().unwrap();
                let secretish = [
                    "KEY",
                    "JWT",
                    "SECRET",
                    "PRIV",
                    "L1_ETH_RPC",
                    "L1_BEACON",
                    "AUTH",
                ]
                .iter()
                .any(|s| var.contains(s));
                if secretish {
                    assert!(env.get("value").is_none(), "{name}: {var} is a literal");
                    assert!(
                        env["valueFrom"]["secretKeyRef"]["name"].is_string(),
                        "{name}: {var}"
                    );
                }
            }
        }
        // Secret volumes project only the key the binary reads, read-only.
        let pod = &of_kind(&out, "StatefulSet")[0]["spec"]["template"]["spec"];
        for v in pod["volumes"].as_array().unwrap() {
            if let Some(secret) = v.get("secret") {
                assert_eq!(secret["items"].as_array().unwrap().len(), 1, "{name}");
                assert_eq!(secret["defaultMode"], 0o400, "{name}");
            }
        }
    }
    // A URL kept in a Secret is an env var from it, and the flag is not rendered.
    let out = render(&secret_l1_url());
    let node = container(&out, "op-node").unwrap();
    assert!(!has_flag(node, "l1") && !has_flag(node, "l1.beacon"));
    let env: Vec<&str> = node["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["OP_NODE_L1_ETH_RPC", "OP_NODE_L1_BEACON"]);
}

#[test]
fn every_rendered_flag_exists_in_the_binarys_flag_list() {
    let lists = [
        ("op-node", flag_list("op-node")),
        ("op-reth", flag_list("op-reth")),
        ("op-geth", flag_list("op-geth")),
    ];
    let list = |binary: &str| &lists.iter().find(|(b, _)| *b == binary).unwrap().1;
    let mut checked = 0;
    for (name, input) in fixtures() {
        let out = render(&input);
        // The operator's own `genesis unpack` is checked by the operator's CLI tests.
        for c in containers(&out)
            .into_iter()
            .filter(|c| binary_of(c) != "opstack-operator")
        {
            let binary = binary_of(c);
            let known = list(binary);
            for flag in flag_names(c) {
                checked += 1;
                assert!(
                    known.flags.contains(&flag),
                    "{name}: {} renders {flag}, which is not in flags/{binary}.txt",
                    c["name"]
                );
            }
            // Args are op-reth's subcommand and -v…, `geth init`'s genesis file, and --flags.
            for arg in c["args"].as_array().into_iter().flatten() {
                let arg = arg.as_str().unwrap();
                assert!(
                    arg.starts_with("--")
                        || arg == "node"
                        || (c["name"] == "geth-init" && arg == "/chain/genesis/genesis.json")
                        || arg.trim_start_matches('-').chars().all(|ch| ch == 'v'),
                    "{name}: unexpected arg {arg}"
                );
            }
            for env in c["env"].as_array().into_iter().flatten() {
                let var = env["name"].as_str().unwrap();
                assert!(
                    known.env.contains(var),
                    "{name}: env {var} is not in flags/{binary}.txt"
                );
            }
        }
    }
    assert!(checked > 200, "only {checked} flags checked");
}

#[test]
fn removed_flags_are_never_rendered() {
    let removed = [
        "--rollup.halt",
        "--rollup.load-protocol-versions",
        "--l2oo-address",
        "--l2.engine-sync",
        "--p2p.scoring.peers",
        "--p2p.scoring.topics",
        "--p2p.score.bands",
        "--beta.extra-networks",
        "--heartbeat.enabled",
        "--snapshotlog.file",
    ];
    let deprecated: Vec<(String, std::collections::BTreeSet<String>)> =
        ["op-node", "op-reth", "op-geth"]
            .iter()
            .map(|b| (b.to_string(), flag_list(b).deprecated))
            .collect();
    for (name, input) in fixtures() {
        let out = render(&input);
        for c in containers(&out)
            .into_iter()
            .filter(|c| binary_of(c) != "opstack-operator")
        {
            let binary = binary_of(c);
            let dep = &deprecated.iter().find(|(b, _)| b == binary).unwrap().1;
            for flag in flag_names(c) {
                assert!(
                    !removed.contains(&flag.as_str()),
                    "{name}: {flag} was removed"
                );
                assert!(
                    !dep.contains(&flag),
                    "{name}: {flag} is deprecated in flags/{binary}.txt"
                );
            }
        }
    }
}

#[test]
fn same_input_renders_identical_bytes() {
    for (name, input) in fixtures() {
        let a = render(&input).canonical_json();
        let b = render(&input.clone()).canonical_json();
        assert_eq!(a, b, "{name}");
        // And the plugin's own bytes, not only their canonical form, are stable.
        let native_a = plugin_op_node::render(&input).unwrap();
        let native_b = plugin_op_node::render(&input).unwrap();
        assert_eq!(native_a, native_b, "{name}");
    }
}

#[test]
fn no_container_needs_a_shell_the_images_do_not_have() {
    // op-node's, op-batcher's and op-proposer's official images have no shell (FROM
    // chainguard/static), and neither has the operator's: no exec probe, no `sh -c`.
    for (name, input) in fixtures() {
        let out = render(&input);
        for c in containers(&out) {
            assert_ne!(c["command"][0], "sh", "{name}: {} runs a shell", c["name"]);
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                assert!(
                    c[probe].get("exec").is_none(),
                    "{name}: {} has an exec {probe}",
                    c["name"]
                );
            }
        }
    }
}

#[test]
fn probes_mean_something() {
    for (name, input) in fixtures() {
        let out = render(&input);
        let node = container(&out, "op-node").unwrap();
        // op-node's RPC answers /healthz once it serves; whether it is synced is the operator's
        // judgement from optimism_syncStatus (the CR's Synced condition).
        let readiness = &node["readinessProbe"]["httpGet"];
        assert_eq!(readiness["path"], "/healthz", "{name}");
        assert_eq!(readiness["port"], "rpc", "{name}");
        let el = container(&out, "op-reth")
            .or_else(|| container(&out, "op-geth"))
            .unwrap();
        let startup = &el["startupProbe"];
        let budget = startup["periodSeconds"].as_i64().unwrap()
            * startup["failureThreshold"].as_i64().unwrap();
        assert!(budget >= 6 * 3600, "{name}: startup budget {budget}s");
        assert!(
            el["livenessProbe"].is_object() && el["readinessProbe"].is_object(),
            "{name}"
        );
    }
}

#[test]
fn geth_init_is_the_binary_itself_on_every_start_and_only_for_a_custom_chain() {
    let out = render(&custom_chain_geth());
    let init = container(&out, "geth-init").unwrap();
    // Idempotent with the same genesis, loud with another: no marker file, no shell.
    assert_eq!(
        argv(init),
        [
            "geth",
            "init",
            "--datadir=/data",
            "/chain/genesis/genesis.json"
        ]
    );
    assert!(container(&render(&replica_geth_named()), "geth-init").is_none());
}

#[test]
fn a_compressed_genesis_is_unpacked_by_the_operator_image_before_geth_init_reads_it() {
    let out = render(&devnet_replica_geth());
    let sts = &of_kind(&out, "StatefulSet")[0];
    let pod = &sts["spec"]["template"]["spec"];
    let inits: Vec<&str> = pod["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(inits, ["genesis-unpack", "geth-init"]);
    let unpack = container(&out, "genesis-unpack").unwrap();
    assert_eq!(
        unpack["image"],
        format!(
            "ghcr.io/opstack-operator/opstack-operator:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(
        argv(unpack),
        [
            "/usr/local/bin/opstack-operator",
            "genesis",
            "unpack",
            "--from=/chain/genesis-packed/genesis.json.gz",
            "--to=/chain/genesis/genesis.json"
        ]
    );
    let volumes = pod["volumes"].as_array().unwrap();
    let volume = |name: &str| volumes.iter().find(|v| v["name"] == name).unwrap();
    assert_eq!(
        volume("l2-genesis-packed")["configMap"]["items"][0]["key"],
        "genesis.json.gz"
    );
    assert!(volume("l2-genesis")["emptyDir"].is_object());
}

#[test]
fn a_replica_peers_with_its_sequencer_and_a_private_chain_never_gets_the_public_bootnodes() {
    let out = render(&devnet_replica_geth());
    let args = argv(container(&out, "op-node").unwrap());
    assert!(
        args.contains(&format!("--p2p.static={SEQUENCER_MULTIADDR}")),
        "{args:?}"
    );
    assert!(args.contains(&"--p2p.bootnodes=".to_owned()), "{args:?}");
    // A registry network with discovery on keeps op-node's own bootnodes.
    let named = render(&replica_reth_sequencer_ref());
    let args = argv(container(&named, "op-node").unwrap());
    assert!(
        !args.iter().any(|a| a.starts_with("--p2p.bootnodes")),
        "{args:?}"
    );
}

#[test]
fn an_l1_without_a_beacon_api_runs_op_node_with_beacon_ignore_and_its_poll_intervals() {
    let out = render(&devnet_replica_geth());
    let args = argv(container(&out, "op-node").unwrap());
    for flag in [
        "--l1.beacon.ignore",
        "--l1.http-poll-interval=2s",
        "--l1.epoch-poll-interval=2s",
    ] {
        assert!(args.contains(&flag.to_owned()), "{flag} missing: {args:?}");
    }
    assert!(!args.iter().any(|a| a.starts_with("--l1.beacon=")));
    assert!(
        out.warnings.iter().any(|w| w.contains("l1BeaconIgnore")),
        "{:?}",
        out.warnings
    );
}

#[test]
fn resources_fall_back_to_the_networks_shared_defaults() {
    let out = render(&secret_l1_url());
    for c in containers(&out) {
        assert_eq!(c["resources"]["requests"]["memory"], "2Gi", "{}", c["name"]);
    }
    let out = render(&replica_reth_sequencer_ref());
    assert_eq!(
        container(&out, "op-reth").unwrap()["resources"]["requests"]["memory"],
        "16Gi"
    );
    assert!(
        container(&out, "op-node")
            .unwrap()
            .get("resources")
            .is_none()
    );
}

#[test]
fn op_geth_is_rendered_with_an_end_of_support_warning() {
    let out = render(&replica_geth_named());
    assert!(
        out.warnings.iter().any(|w| w.contains("end of support")),
        "{:?}",
        out.warnings
    );
    let out = render(&replica_reth_sequencer_ref());
    assert!(!out.warnings.iter().any(|w| w.contains("end of support")));
}

/// The fixture with every version-dependent field set, its op-node pinned to `tag`.
fn pinned_op_node(tag: &str) -> opstack_plugin_sdk::RenderInput {
    let mut input = p2p_discovery_off();
    let mut resource: Value = opstack_plugin_sdk::serde_json::from_str(&input.resource).unwrap();
    resource["spec"]["opNode"]["image"] = opstack_plugin_sdk::serde_json::json!({
        "image": format!("us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:{tag}")
    });
    input.resource = resource.to_string();
    input
}

#[test]
fn flags_a_release_removed_are_rendered_only_for_the_releases_before_it() {
    // (op-node release, renders --syncmode.req-resp, renders --sequencer.max-safe-lag)
    for (tag, req_resp, max_safe_lag) in [
        ("v1.19.0", true, true),
        ("v1.19.6", false, true),
        ("v1.20.0", false, true),
        ("v1.20.1", false, false),
        ("v1.21.0", false, false),
    ] {
        let out = render(&pinned_op_node(tag));
        let op_node = container(&out, "op-node").unwrap();
        assert_eq!(has_flag(op_node, "syncmode.req-resp"), req_resp, "{tag}");
        assert_eq!(
            has_flag(op_node, "sequencer.max-safe-lag"),
            max_safe_lag,
            "{tag}"
        );
        let warned = |field: &str| out.warnings.iter().any(|w| w.starts_with(field));
        assert_eq!(
            warned("spec.opNode.reqRespSync"),
            !req_resp,
            "{tag}: {:?}",
            out.warnings
        );
        assert_eq!(
            warned("spec.opNode.sequencer.maxSafeLag"),
            !max_safe_lag,
            "{tag}: {:?}",
            out.warnings
        );
    }
}

#[test]
fn every_default_image_comes_from_the_release_table() {
    use opstack_plugin_sdk::crds::releases::{Component, table};
    let out = render(&sequencer_reth());
    for (name, component) in [
        ("op-node", Component::OpNode),
        ("op-reth", Component::OpReth),
    ] {
        assert_eq!(
            container(&out, name).unwrap()["image"],
            table().default_image(component),
            "{name}"
        );
    }
    let out = render(&replica_geth_named());
    assert_eq!(
        container(&out, "op-geth").unwrap()["image"],
        table().default_image(Component::OpGeth)
    );
}

#[test]
fn a_network_the_op_node_release_dropped_is_refused_with_the_fix() {
    let mut input = replica_geth_named();
    let mut network: Value = opstack_plugin_sdk::serde_json::from_str(&input.network.spec).unwrap();
    network["networkName"] = "lisk-mainnet".into();
    network["chainID"] = 1135.into();
    input.network.spec = network.to_string();
    let error = plugin().render(&input).unwrap_err().to_string();
    assert!(
        error.contains("spec.networkName") && error.contains("lisk-mainnet"),
        "{error}"
    );
    assert!(error.contains("spec.rollupConfig"), "{error}");
    // An op-node release from before the drop still knows it.
    let mut resource: Value = opstack_plugin_sdk::serde_json::from_str(&input.resource).unwrap();
    resource["spec"]["opNode"]["image"]["image"] =
        "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:v1.20.1".into();
    input.resource = resource.to_string();
    plugin().render(&input).unwrap();
}

#[test]
fn a_node_without_its_own_pin_runs_its_networks_node_release_as_a_pair() {
    let release = opstack_plugin_sdk::serde_json::json!({
        "opNode": "registry.example/op-node:v1.21.1",
        "opReth": "registry.example/op-reth:v2.10.1",
        "opGeth": "registry.example/op-geth:v1.101702.4",
    });
    let with_release = |mut input: opstack_plugin_sdk::RenderInput| {
        let mut network: Value =
            opstack_plugin_sdk::serde_json::from_str(&input.network.spec).unwrap();
        network["nodeRelease"] = release.clone();
        input.network.spec = network.to_string();
        input
    };
    let out = render(&with_release(sequencer_reth()));
    assert_eq!(
        container(&out, "op-node").unwrap()["image"],
        release["opNode"]
    );
    assert_eq!(
        container(&out, "op-reth").unwrap()["image"],
        release["opReth"]
    );
    let out = render(&with_release(devnet_replica_geth()));
    assert_eq!(
        container(&out, "op-geth").unwrap()["image"],
        release["opGeth"]
    );
    // A node's own pin wins over its network's release.
    let out = render(&with_release(pinned_op_node("v1.20.0")));
    assert!(
        container(&out, "op-node").unwrap()["image"]
            .as_str()
            .unwrap()
            .ends_with(":v1.20.0")
    );
}

#[test]
fn sequencer_rpc_is_reachable_only_from_its_chain_and_the_operator() {
    let mut seen = 0;
    for (name, input) in fixtures() {
        let out = render(&input);
        let policies = of_kind(&out, "NetworkPolicy");
        if !is_sequencer(&input) {
            assert!(policies.is_empty(), "{name}: a replica's RPC is its users'");
            continue;
        }
        seen += 1;
        let [policy] = policies[..] else {
            panic!(
                "{name}: a sequencer renders one NetworkPolicy, not {}",
                policies.len()
            )
        };
        assert_eq!(
            policy["spec"]["policyTypes"],
            opstack_plugin_sdk::serde_json::json!(["Ingress"]),
            "{name}"
        );
        let ports = |rule: &Value| -> Vec<i64> {
            rule["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["port"].as_i64().unwrap())
                .collect()
        };
        let rules = policy["spec"]["ingress"].as_array().unwrap();
        let open: Vec<&Value> = rules.iter().filter(|r| r["from"].is_null()).collect();
        let restricted: Vec<&Value> = rules.iter().filter(|r| !r["from"].is_null()).collect();
        let rpc_ports: Vec<i64> = of_kind(&out, "Service")
            .into_iter()
            .filter(|svc| svc["spec"]["clusterIP"] != "None")
            .flat_map(|svc| svc["spec"]["ports"].as_array().unwrap().clone())
            .filter(|p| matches!(p["name"].as_str(), Some("rpc" | "http" | "ws")))
            .map(|p| p["port"].as_i64().unwrap())
            .collect();
        assert!(!rpc_ports.is_empty(), "{name}");
        for port in &rpc_ports {
            assert!(
                open.iter().all(|rule| !ports(rule).contains(port)),
                "{name}: RPC port {port} is open to everyone"
            );
            assert!(
                restricted.iter().any(|rule| ports(rule).contains(port)),
                "{name}: RPC port {port} is reachable by no one"
            );
        }
        for rule in &rules[..] {
            assert!(
                !ports(rule).contains(&8551),
                "{name}: the Engine API is reachable"
            );
        }
        for rule in &restricted {
            for peer in rule["from"].as_array().unwrap() {
                let chain = &peer["podSelector"]["matchLabels"]["app.kubernetes.io/part-of"];
                let operator =
                    &peer["namespaceSelector"]["matchLabels"]["optimism.io/operator-namespace"];
                assert!(
                    chain == &Value::String(input.network.name.clone())
                        && peer["namespaceSelector"].is_null()
                        || operator == "true",
                    "{name}: {peer} is neither the chain's components nor the operator"
                );
            }
        }
    }
    assert!(seen >= 2);
}
