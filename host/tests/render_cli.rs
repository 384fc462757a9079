//! `opstack-operator render` on the examples: the bundled plugins, the envelope and the rules a
//! node operator relies on, checked on the binary a user runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_json::Value;

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn render(files: &[&Path]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opstack-operator"));
    command.arg("render");
    for file in files {
        command.arg("-f").arg(file);
    }
    command.output().expect("run opstack-operator")
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "examples missing");
    files
}

fn rendered_objects(file: &Path) -> Vec<Value> {
    let output = render(&[file]);
    assert!(
        output.status.success(),
        "render {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn pod_spec(object: &Value) -> Option<&Value> {
    object.pointer("/spec/template/spec")
}

/// Every container (and init container) of every workload: (workload, container).
fn containers(objects: &[Value]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for object in objects {
        let Some(pod) = pod_spec(object) else {
            continue;
        };
        let workload = format!(
            "{}/{}",
            object["kind"].as_str().unwrap(),
            object["metadata"]["name"].as_str().unwrap()
        );
        for list in ["containers", "initContainers"] {
            for container in pod[list].as_array().into_iter().flatten() {
                out.push((workload.clone(), container.clone()));
            }
        }
    }
    out
}

/// Flags and env vars of one binary, from the lists read off upstream source
/// (`plugins/testdata/flags/`; each file's header names the commit and files it was read from).
struct FlagList {
    flags: BTreeSet<String>,
    env: BTreeSet<String>,
}

fn flag_list(binary: &str) -> FlagList {
    let path = repo(&format!("plugins/testdata/flags/{binary}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut flags = BTreeSet::new();
    let mut env = BTreeSet::new();
    for line in text.lines().filter(|l| l.starts_with("--")) {
        let mut columns = line.split('\t');
        flags.insert(columns.next().unwrap().to_string());
        for var in columns.next().unwrap_or("-").split(',') {
            env.insert(var.trim().to_string());
        }
        // Aliases are real flag names too: "[alias: --a, --b]" in the meaning column.
        if let Some(aliases) = line.split("[alias: ").nth(1) {
            for alias in aliases.trim_end_matches(']').split([',', ';', ']']) {
                let alias = alias.trim();
                if alias.starts_with("--") {
                    flags.insert(alias.split_whitespace().next().unwrap().to_string());
                }
            }
        }
    }
    FlagList { flags, env }
}

/// Which binary a container runs, from its command or image.
fn binary_of(container: &Value) -> String {
    let command = container["command"][0].as_str().unwrap_or_default();
    let image = container["image"].as_str().unwrap_or_default();
    let basename = command.rsplit('/').next().unwrap_or_default();
    for binary in [
        "op-node",
        "op-reth",
        "op-batcher",
        "op-proposer",
        "op-challenger",
    ] {
        if basename == binary || (command.is_empty() && image.contains(binary)) {
            return binary.to_string();
        }
    }
    if basename == "geth" || image.contains("op-geth") {
        return "op-geth".to_string();
    }
    if command == "sh" || command == "/bin/sh" {
        return "shell".to_string();
    }
    panic!(
        "cannot tell which binary container {} runs: {container}",
        container["name"]
    )
}

fn flag_names(args: &[String]) -> Vec<String> {
    args.iter()
        .filter(|a| a.starts_with("--"))
        .map(|a| a.split('=').next().unwrap().to_string())
        .collect()
}

fn container_args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            container["command"]
                .as_array()
                .into_iter()
                .flatten()
                .skip(1),
        )
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

#[test]
fn render_of_each_example_prints_sealed_objects() {
    for file in examples() {
        let objects = rendered_objects(&file);
        assert!(
            objects.len() >= 2,
            "{}: only {} objects",
            file.display(),
            objects.len()
        );
        for object in &objects {
            let meta = &object["metadata"];
            assert_eq!(meta["namespace"], "default", "{object}");
            assert_eq!(
                meta["ownerReferences"][0]["apiVersion"],
                "optimism.io/v1alpha1"
            );
            assert_eq!(
                meta["labels"]["app.kubernetes.io/managed-by"],
                "opstack-operator"
            );
            assert!(
                meta["annotations"]["optimism.io/rendered-by"]
                    .as_str()
                    .unwrap()
                    .contains("@sha256:")
            );
        }
    }
}

#[test]
fn the_devnet_renders_every_component() {
    let objects = rendered_objects(&repo("examples/devnet-chain.yaml"));
    let kinds: BTreeSet<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "StatefulSet/devnet-sequencer",
        "StatefulSet/devnet-replica",
        "Service/devnet-sequencer",
        "Deployment/devnet-batcher",
        "Deployment/devnet-proposer",
        "StatefulSet/devnet-challenger",
    ] {
        assert!(
            kinds.contains(expected),
            "{expected} missing from {kinds:?}"
        );
    }
}

#[test]
fn every_rendered_flag_and_env_var_exists_in_its_binarys_flag_list() {
    let lists: BTreeMap<&str, FlagList> = [
        "op-node",
        "op-reth",
        "op-geth",
        "op-batcher",
        "op-proposer",
        "op-challenger",
    ]
    .into_iter()
    .map(|b| (b, flag_list(b)))
    .collect();
    let mut checked = 0;
    for file in examples() {
        for (workload, container) in containers(&rendered_objects(&file)) {
            let binary = binary_of(&container);
            let Some(list) = lists.get(binary.as_str()) else {
                continue;
            };
            let args = container_args(&container);
            for flag in flag_names(&args) {
                assert!(
                    list.flags.contains(&flag),
                    "{}: {workload} container {} renders {flag}, which {binary} does not have",
                    file.display(),
                    container["name"]
                );
                checked += 1;
            }
            for env in container["env"].as_array().into_iter().flatten() {
                let name = env["name"].as_str().unwrap();
                if name.starts_with("OP_") || name.starts_with("GETH_") {
                    assert!(
                        list.env.contains(name),
                        "{workload}: {binary} has no env var {name}"
                    );
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} flags checked");
}

#[test]
fn every_example_runs_the_release_tables_pair_and_no_probe_needs_a_shell() {
    use opstack_crds::releases::{Component, table};
    let mut nodes = 0;
    for file in examples() {
        for (workload, container) in containers(&rendered_objects(&file)) {
            let name = container["name"].as_str().unwrap();
            if let Some(component) = Component::of_container(name) {
                assert_eq!(
                    container["image"],
                    table().default_image(component),
                    "{}: {workload} {name}",
                    file.display()
                );
                nodes += usize::from(component == Component::OpNode);
            }
            assert_ne!(
                name,
                "op-geth",
                "{}: an example runs op-geth, which no current network can follow",
                file.display()
            );
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                assert!(
                    container[probe].get("exec").is_none(),
                    "{}: {workload} {name} {probe} execs a command; the images have no shell",
                    file.display()
                );
            }
        }
    }
    assert!(
        nodes >= 3,
        "only {nodes} op-node containers in the examples"
    );
}

#[test]
fn an_image_that_cannot_follow_its_chains_active_fork_is_refused_naming_the_fix() {
    let dir = tempdir();
    let pinned = dir.join("pinned.yaml");
    let example = std::fs::read_to_string(repo("examples/op-sepolia-replica.yaml")).unwrap();
    let old = "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:v1.18.1";
    std::fs::write(
        &pinned,
        example.replace(
            "  opNode:\n    syncMode: execution-layer\n",
            &format!("  opNode:\n    syncMode: execution-layer\n    image:\n      image: {old}\n"),
        ),
    )
    .unwrap();
    let output = render(&[&pinned]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(old) && stderr.contains("karst"), "{stderr}");
    assert!(stderr.contains("op-node:v1.21.0"), "{stderr}");
    assert!(output.stdout.is_empty(), "a refused chain prints nothing");
}

#[test]
fn removed_flags_are_never_rendered() {
    for file in examples() {
        for (workload, container) in containers(&rendered_objects(&file)) {
            for flag in flag_names(&container_args(&container)) {
                assert!(
                    ![
                        "--l2oo-address",
                        "--rollup.halt",
                        "--rollup.load-protocol-versions"
                    ]
                    .contains(&flag.as_str()),
                    "{workload} renders the removed flag {flag}"
                );
            }
        }
    }
}

#[test]
fn no_secret_value_reaches_a_rendered_object() {
    let hex_key = regex_lite_is_hex_key;
    for file in examples() {
        let objects = rendered_objects(&file);
        for object in &objects {
            assert_ne!(
                object["kind"], "Secret",
                "plugins never render Secrets; the host owns them"
            );
        }
        for (workload, container) in containers(&objects) {
            for arg in container_args(&container) {
                assert!(
                    !hex_key(&arg),
                    "{workload}: a key-like value on the command line: {arg}"
                );
            }
            for env in container["env"].as_array().into_iter().flatten() {
                let name = env["name"].as_str().unwrap();
                let sensitive = ["KEY", "JWT", "MNEMONIC", "SECRET"]
                    .iter()
                    .any(|s| name.contains(s));
                if sensitive {
                    assert!(
                        env.get("value").is_none(),
                        "{workload}: {name} has a literal value"
                    );
                }
            }
        }
    }
}

/// 64 hex digits (with or without 0x) anywhere in the string: the shape of a private key or JWT.
fn regex_lite_is_hex_key(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut run = 0;
    for &b in bytes {
        if b.is_ascii_hexdigit() {
            run += 1;
            if run >= 64 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

#[test]
fn bad_input_exits_non_zero_naming_the_field() {
    let bad = repo("crds/testdata/invalid/opnode-p2p-port-zero.yaml");
    let output = render(&[&bad]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("spec.opNode.p2p.listenPort"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "nothing is printed for a refused input"
    );
}

#[test]
fn a_second_sequencer_is_refused_before_anything_renders() {
    let dir = tempdir();
    let second = dir.join("second.yaml");
    std::fs::write(
        &second,
        "apiVersion: optimism.io/v1alpha1\nkind: OpNode\nmetadata:\n  name: devnet-sequencer-2\nspec:\n  optimismNetworkRef: { name: devnet }\n  nodeType: sequencer\n",
    )
    .unwrap();
    let output = render(&[&repo("examples/devnet-chain.yaml"), &second]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("already has sequencer \"devnet-sequencer\""),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn the_same_input_renders_identical_bytes() {
    let file = repo("examples/devnet-chain.yaml");
    let first = render(&[&file]).stdout;
    for _ in 0..3 {
        assert_eq!(render(&[&file]).stdout, first);
    }
}

#[test]
fn golden_render_of_each_example() {
    for file in examples() {
        let output = render(&[&file]);
        assert!(output.status.success());
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        // The digest depends on the build (paths end up in the .wasm), not on what it renders.
        insta::assert_snapshot!(
            name,
            redact_digests(&String::from_utf8(output.stdout).unwrap())
        );
    }
}

fn redact_digests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("@sha256:") {
        let (head, tail) = rest.split_at(at + "@sha256:".len());
        out.push_str(head);
        let digest_len = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        out.push_str("<digest>");
        rest = &tail[digest_len..];
    }
    out.push_str(rest);
    out
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("opstack-render-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
