//! The real binaries parse every command line `render` produces: op-node, op-geth (`geth`),
//! op-batcher, op-proposer and op-challenger built from the Go module proxy by
//! `tests/opstack/setup.sh` (optimism and op-geth at the versions of `tests/opstack/versions.env`),
//! each run with the rendered arguments and `--help`. urfave/cli parses every flag before it
//! looks at `--help`, so an unknown flag or a value of the wrong type fails exactly as it would
//! at start, and nothing else runs. The rendered OP_* variables are checked against the names
//! the same binary's help prints.
//!
//! Rendered for the releases that were built: op-node and op-geth are pinned to them. op-reth
//! cannot be built here; its command lines are checked against its flag list (render_cli.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use opstack_test_harness::devnet::{op_geth_version, opstack_binary, optimism_version};
use serde::Deserialize;
use serde_json::{Value, json};

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn to_yaml(documents: &[Value]) -> String {
    documents
        .iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect()
}

/// Pins every OpNode to the op-node and op-geth releases built here (op-reth stays: it has no
/// pin that could be parsed here anyway).
fn pin_to_built_releases(documents: &mut [Value]) {
    for document in documents.iter_mut().filter(|d| d["kind"] == "OpNode") {
        let spec = &mut document["spec"];
        spec["opNode"]["image"] = json!({"image": format!(
            "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:{}",
            optimism_version()
        )});
        if spec["executionClient"] == "op-geth" {
            spec["opGeth"]["image"] = json!({"image": format!(
                "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-geth:{}",
                op_geth_version()
            )});
        }
    }
}

/// The devnet example with `edit` applied to each document.
fn devnet_variant(edit: impl Fn(&mut Value)) -> Vec<Value> {
    let mut docs = documents(&std::fs::read_to_string(repo("examples/devnet-chain.yaml")).unwrap());
    docs.iter_mut().for_each(edit);
    docs
}

fn named<'a>(doc: &'a mut Value, kind: &str, name: &str) -> Option<&'a mut Value> {
    (doc["kind"] == kind && doc["metadata"]["name"] == name).then(|| &mut doc["spec"])
}

/// Every example, and variants that reach the flags the examples leave unset.
fn cases() -> Vec<(String, Vec<Value>)> {
    let mut cases = Vec::new();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    examples.sort();
    for file in examples {
        let docs = documents(&std::fs::read_to_string(&file).unwrap());
        cases.push((
            file.file_name().unwrap().to_string_lossy().into_owned(),
            docs,
        ));
    }
    cases.push((
        "devnet on op-geth".into(),
        devnet_variant(|doc| {
            if doc["kind"] == "OpNode" {
                let spec = &mut doc["spec"];
                spec["executionClient"] = "op-geth".into();
                spec.as_object_mut().unwrap().remove("opReth");
                spec["opGeth"] = json!({"syncMode": "full", "gcMode": "archive", "cacheMb": 512});
            }
        }),
    ));
    cases.push((
        "sequencer and replica knobs".into(),
        devnet_variant(|doc| {
            if let Some(spec) = named(doc, "OpNode", "devnet-sequencer") {
                let op_node = &mut spec["opNode"];
                op_node["sequencer"]["stopped"] = true.into();
                op_node["sequencer"]["maxSafeLag"] = 100.into();
                op_node["l1TrustRpc"] = true.into();
                op_node["l1RpcKind"] = "basic".into();
                op_node["verifierL1Confs"] = 2.into();
                op_node["l1HttpPollInterval"] = "2s".into();
                op_node["l1EpochPollInterval"] = "1m".into();
                op_node["p2p"]["peerScoring"] = "light".into();
                op_node["p2p"]["peers"] = json!({"lo": 2, "hi": 10});
                op_node["p2p"]["staticPeers"] =
                    json!(["/dns4/peer.example/tcp/9222/p2p/16Uiu2HAmQ1"]);
            }
            if let Some(spec) = named(doc, "OpNode", "devnet-replica") {
                spec["opNode"]["p2p"] = json!({"enabled": false});
                spec["opNode"]["rpc"] = json!({"enableAdmin": true});
            }
        }),
    ));
    cases.push((
        "calldata, non-finalized proposals, every cannon game".into(),
        devnet_variant(|doc| {
            if let Some(spec) = named(doc, "OpBatcher", "devnet-batcher") {
                spec["dataAvailability"] = json!({"type": "calldata"});
            }
            if let Some(spec) = named(doc, "OpProposer", "devnet-proposer") {
                spec["proposal"]["allowNonFinalized"] = true.into();
                spec["disputeGame"]["gameType"] = 0.into();
            }
            if let Some(spec) = named(doc, "OpChallenger", "devnet-challenger") {
                spec["gameTypes"] = json!(["cannon", "cannon-kona", "permissioned"]);
            }
        }),
    ));
    cases.push((
        "super-root games (Upgrade 20)".into(),
        devnet_variant(|doc| {
            if let Some(spec) = named(doc, "OpProposer", "devnet-proposer") {
                spec["disputeGame"]["gameType"] = 9.into();
            }
            if let Some(spec) = named(doc, "OpChallenger", "devnet-challenger") {
                spec["gameTypes"] = json!(["cannon-kona", "super-cannon-kona"]);
            }
        }),
    ));
    cases.push((
        "an L1 without a beacon API".into(),
        devnet_variant(|doc| {
            if let Some(spec) = named(doc, "OptimismNetwork", "devnet") {
                spec.as_object_mut().unwrap().remove("l1BeaconUrlSecretRef");
                spec["l1BeaconIgnore"] = true.into();
            }
            if let Some(spec) = named(doc, "OpBatcher", "devnet-batcher") {
                spec["dataAvailability"] = json!({"type": "calldata"});
            }
        })
        .into_iter()
        // op-challenger cannot run without a beacon API (the renderer refuses it).
        .filter(|doc| doc["kind"] != "OpChallenger")
        .collect(),
    ));
    for (_, docs) in &mut cases {
        pin_to_built_releases(docs);
    }
    cases
}

fn render(name: &str, docs: &[Value]) -> Vec<Value> {
    let dir = std::env::temp_dir().join(format!("opstack-real-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.yaml", name.replace([' ', ','], "-")));
    std::fs::write(&file, to_yaml(docs)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_opstack-operator"))
        .arg("render")
        .arg("-f")
        .arg(&file)
        .output()
        .expect("run opstack-operator render");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{name}: render failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    documents(&String::from_utf8(output.stdout).unwrap())
}

/// The built binary a rendered container runs, by its command's first word.
fn built_binary(container: &Value) -> Option<PathBuf> {
    let command = container["command"][0].as_str()?;
    let name = command.rsplit('/').next()?;
    matches!(
        name,
        "op-node" | "geth" | "op-batcher" | "op-proposer" | "op-challenger"
    )
    .then(|| opstack_binary(name).unwrap_or_else(|e| panic!("{e}")))
}

/// The command line after the binary, with `--help` where the flags begin. Positional
/// arguments after the flags (`geth init`'s genesis file) are left out: with `--help` the CLI
/// would read one as a help topic, and a path is no flag to check. Every rendered flag has
/// the `--name=value` form, so no flag value is mistaken for one.
fn parse_only_args(container: &Value) -> Vec<String> {
    let mut args: Vec<String> = container["command"]
        .as_array()
        .into_iter()
        .flatten()
        .skip(1)
        .chain(container["args"].as_array().into_iter().flatten())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let at = args
        .iter()
        .position(|a| a.starts_with("--"))
        .unwrap_or(args.len());
    while args.len() > at && !args[args.len() - 1].starts_with("--") {
        args.pop();
    }
    args.insert(at, "--help".into());
    args
}

struct Parse {
    ok: bool,
    text: String,
}

fn parse(binary: &Path, args: &[String]) -> Parse {
    let output = Command::new(binary)
        .args(args)
        .env_clear()
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let refused = [
        "flag provided but not defined",
        "invalid value",
        "Application failed",
    ]
    .iter()
    .any(|m| text.contains(m));
    Parse {
        ok: output.status.success() && !refused,
        text,
    }
}

#[test]
fn the_parse_only_run_refuses_an_unknown_flag_and_a_bad_value() {
    let op_node = opstack_binary("op-node").unwrap();
    let good = parse(&op_node, &["--help".into(), "--l1=http://l1:8545".into()]);
    assert!(good.ok, "{}", good.text);
    for bad in ["--no-such-flag=1", "--p2p.listen.tcp=not-a-port"] {
        let run = parse(&op_node, &["--help".into(), bad.into()]);
        assert!(!run.ok, "{bad} was accepted: {}", run.text);
    }
    let geth = opstack_binary("geth").unwrap();
    let run = parse(
        &geth,
        &[
            "init".into(),
            "--help".into(),
            "--no-such-flag".into(),
            "/genesis.json".into(),
        ],
    );
    assert!(!run.ok, "geth init accepted an unknown flag: {}", run.text);
}

#[test]
fn every_rendered_command_line_parses_with_the_real_binary() {
    let mut help: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut parsed = 0;
    for (case, docs) in cases() {
        for object in render(&case, &docs) {
            let Some(pod) = object.pointer("/spec/template/spec") else {
                continue;
            };
            let workload = format!("{}/{}", object["kind"], object["metadata"]["name"]);
            let containers = ["initContainers", "containers"]
                .iter()
                .flat_map(|list| pod[*list].as_array().cloned().unwrap_or_default());
            for container in containers {
                let Some(binary) = built_binary(&container) else {
                    continue;
                };
                let args = parse_only_args(&container);
                let run = parse(&binary, &args);
                assert!(
                    run.ok,
                    "{case}: {workload} container {}: {} does not accept {args:?}:\n{}",
                    container["name"],
                    binary.display(),
                    run.text
                );
                parsed += 1;
                let text = help
                    .entry(binary.clone())
                    .or_insert_with(|| parse(&binary, &["--help".into()]).text);
                for env in container["env"].as_array().into_iter().flatten() {
                    let name = env["name"].as_str().unwrap();
                    if name.starts_with("OP_") {
                        assert!(
                            text.contains(&format!("${name}")),
                            "{case}: {workload}: {} has no env var {name}",
                            binary.display()
                        );
                    }
                }
            }
        }
    }
    assert!(parsed >= 30, "only {parsed} command lines parsed");
}
