//! A chain's own plugins on the binary a user runs: `render --plugin` with policies as well as
//! renderers, and `plugin configmap`, which packages a plugin for a network to name by sha256.
//! Needs the guests built by `plugins/build.sh`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use k8s_openapi::api::core::v1::ConfigMap;
use opstack_operator::runtime::sha256_hex;
use serde::Deserialize;
use serde_json::Value;

/// Images only from OP Labs' registry (tests/test-plugins/policy).
const POLICY: &str = "test_plugin_policy";
/// An image the test policy refuses.
const FOREIGN_IMAGE: &str = "ghcr.io/paradigmxyz/op-reth:v1.11.3";

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn wasm(stem: &str) -> PathBuf {
    let path = plugin_dir().join(format!("{stem}.wasm"));
    plugin_bytes(stem); // fails with the command that builds it, if it is missing
    path
}

fn operator(args: &[&str], files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opstack-operator"))
        .args(args)
        .args(files)
        .output()
        .expect("run opstack-operator")
}

/// `render -f <file> --plugin <plugin>...`.
fn render(file: &Path, plugins: &[String]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opstack-operator"));
    command.arg("render").arg("-f").arg(file);
    for plugin in plugins {
        command.arg("--plugin").arg(plugin);
    }
    command.output().expect("run opstack-operator")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The devnet example with `edit` applied to each OpNode in `nodes`, written to a file of its own.
fn devnet_with(file: &str, nodes: &[&str], edit: impl Fn(&mut Value)) -> PathBuf {
    let source = std::fs::read_to_string(repo("examples/devnet-chain.yaml")).unwrap();
    let mut docs = documents(&source);
    for node in nodes {
        let target = docs
            .iter_mut()
            .find(|d| d["kind"] == "OpNode" && d["metadata"]["name"] == *node)
            .unwrap_or_else(|| panic!("the devnet has no OpNode {node}"));
        edit(target);
    }
    let yaml: String = docs
        .iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect();
    let dir = std::env::temp_dir().join(format!("opstack-custom-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, yaml).unwrap();
    path
}

fn assert_refused(output: &Output, expected: &[&str]) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for part in expected {
        assert!(stderr.contains(part), "no {part:?} in:\n{stderr}");
    }
    assert!(
        output.stdout.is_empty(),
        "a refused chain prints nothing, got:\n{}",
        text(&output.stdout)
    );
}

#[test]
fn a_policy_given_with_plugin_that_the_chain_violates_refuses_the_whole_render() {
    let chain = devnet_with("foreign-image.yaml", &["devnet-replica"], |node| {
        node["spec"]["opReth"]["image"] = serde_json::json!({ "image": FOREIGN_IMAGE });
    });
    let output = render(&chain, &[format!("OpNode={}", wasm(POLICY).display())]);
    assert_refused(
        &output,
        &[
            "OpNode devnet-replica",
            "policy test-images-from-our-registry@sha256:",
            "StatefulSet/devnet-replica: images-from-our-registry",
            FOREIGN_IMAGE,
        ],
    );
}

#[test]
fn a_policy_the_chain_complies_with_changes_nothing_in_the_render() {
    let devnet = repo("examples/devnet-chain.yaml");
    let bundled = render(&devnet, &[]);
    let checked = render(&devnet, &[format!("OpNode={}", wasm(POLICY).display())]);
    assert!(checked.status.success(), "{}", text(&checked.stderr));
    assert!(!checked.stdout.is_empty());
    assert_eq!(text(&checked.stdout), text(&bundled.stdout));
}

#[test]
fn a_plugin_for_a_kind_it_does_not_serve_is_refused() {
    let output = render(
        &repo("examples/devnet-chain.yaml"),
        &[format!("OpBatcher={}", wasm(POLICY).display())],
    );
    assert_refused(
        &output,
        &["plugin for OpBatcher", "serves [\"OpNode\"], not OpBatcher"],
    );
}

#[test]
fn a_kind_has_one_renderer() {
    let renderer = format!("OpNode={}", wasm(GOOD).display());
    let output = render(
        &repo("examples/devnet-chain.yaml"),
        &[renderer.clone(), renderer],
    );
    assert_refused(&output, &["OpNode already has the renderer"]);
}

#[test]
fn a_renderer_whose_output_the_envelope_refuses_prints_nothing() {
    let output = render(
        &repo("examples/devnet-chain.yaml"),
        &[format!(
            "OpNode={}",
            wasm("misbehaving-forbidden-kind").display()
        )],
    );
    assert_refused(
        &output,
        &[
            "OpNode devnet-sequencer: the plugin's output was refused",
            "ClusterRoleBinding/misbehaving-cluster-admin",
        ],
    );
}

/// `plugin configmap --name <name> [extra...] <file>`, which must succeed.
fn configmap(name: &str, extra: &[&str], file: &Path) -> String {
    let mut args = vec!["plugin", "configmap", "--name", name];
    args.extend(extra);
    let output = operator(&args, &[file]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

/// The YAML under the `# Paste into ...` line, uncommented.
fn pasted_stanza(printed: &str) -> Value {
    let (_, comment) = printed
        .split_once("# Paste into ")
        .expect("the stanza follows the ConfigMap");
    let yaml: String = comment
        .lines()
        .skip(1)
        .map(|l| format!("{}\n", l.strip_prefix("#   ").expect("a comment line")))
        .collect();
    serde_yaml::from_str(&yaml).unwrap()
}

#[test]
fn plugin_configmap_holds_the_exact_bytes_and_names_them_by_sha256() {
    let file = wasm(GOOD);
    let bytes = std::fs::read(&file).unwrap();
    let printed = configmap(
        "chain-op-node",
        &["--key", "op-node.wasm", "-n", "chain-a"],
        &file,
    );
    let config_map: ConfigMap = serde_yaml::from_str(&printed).unwrap();
    assert_eq!(config_map.metadata.name.as_deref(), Some("chain-op-node"));
    assert_eq!(config_map.metadata.namespace.as_deref(), Some("chain-a"));
    let stored = &config_map.binary_data.as_ref().unwrap()["op-node.wasm"];
    assert!(stored.0 == bytes, "binaryData is not the file's bytes");
    let annotations = config_map.metadata.annotations.unwrap();
    assert_eq!(annotations["optimism.io/plugin-sha256"], sha256_hex(&bytes));
    assert_eq!(annotations["optimism.io/plugin-role"], "renderer");
    assert_eq!(
        annotations["optimism.io/plugin-name"],
        "test-minimal-op-node"
    );

    let stanza = pasted_stanza(&printed);
    assert_eq!(
        stanza["spec"]["plugins"]["opNode"]["renderer"],
        serde_json::json!({
            "configMapRef": {"name": "chain-op-node", "key": "op-node.wasm"},
            "sha256": sha256_hex(&bytes),
            "requireApproval": false,
        })
    );
    // The stanza is a valid `spec.plugins` of the CRD.
    serde_json::from_value::<opstack_crds::PluginsSpec>(stanza["spec"]["plugins"].clone()).unwrap();
}

#[test]
fn plugin_configmap_of_a_policy_names_it_as_a_policy_that_fails_closed() {
    let file = wasm(POLICY);
    let bytes = std::fs::read(&file).unwrap();
    let printed = configmap("chain-policy", &[], &file);
    let config_map: ConfigMap = serde_yaml::from_str(&printed).unwrap();
    assert_eq!(config_map.metadata.namespace, None);
    assert!(config_map.binary_data.unwrap()["plugin.wasm"].0 == bytes);
    assert_eq!(
        pasted_stanza(&printed)["spec"]["plugins"],
        serde_json::json!({"opNode": {"policies": [{
            "configMapRef": {"name": "chain-policy", "key": "plugin.wasm"},
            "sha256": sha256_hex(&bytes),
            "failurePolicy": "Fail",
        }]}})
    );
}

#[test]
fn plugin_configmap_and_inspect_refuse_what_the_operator_would_refuse_with_its_reason() {
    let dir = std::env::temp_dir().join(format!("opstack-configmap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A good plugin padded past the module size limit: valid bytes, one reason to refuse.
    let oversized = dir.join("oversized.wasm");
    let mut bytes = plugin_bytes(GOOD);
    bytes.resize((1 << 20) + 1, 0);
    std::fs::write(&oversized, &bytes).unwrap();
    let cases = [
        (
            oversized,
            "plugin is 1048577 bytes, more than the limit of 1048576 bytes",
        ),
        (
            wasm("misbehaving-forbidden-import"),
            "wasi:filesystem/types",
        ),
        (wasm("misbehaving-wrong-major"), "contract 1.0.0"),
    ];
    for (file, reason) in cases {
        for args in [
            &["plugin", "configmap", "--name", "x"][..],
            &["plugin", "inspect"][..],
        ] {
            let output = operator(args, &[&file]);
            let stderr = text(&output.stderr);
            assert!(
                !output.status.success(),
                "{args:?} {} accepted",
                file.display()
            );
            assert!(
                stderr.contains("is not a plugin the operator can run") && stderr.contains(reason),
                "{args:?} {}: {stderr}",
                file.display()
            );
            assert_eq!(
                stderr.matches(reason).count(),
                1,
                "the reason is said once: {stderr}"
            );
            assert!(output.stdout.is_empty(), "{args:?} printed something");
        }
    }
}

/// `render` with the example crates of `examples/custom-plugin/` (renderer, then policy) and
/// the runbook annotation its renderer adds, allowed as the example's network allows it.
fn render_example(file: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opstack-operator"));
    command.arg("render").arg("-f").arg(file);
    for stem in ["example_chain_renderer", "example_chain_policy"] {
        command
            .arg("--plugin")
            .arg(format!("OpNode={}", wasm(stem).display()));
    }
    command.args(["--allow-annotation", "OpNode=example.org/runbook"]);
    command.output().expect("run opstack-operator")
}

#[test]
fn the_example_policy_checks_what_the_example_renderer_rendered() {
    // The devnet's nodes request 512Mi (its sharedConfig); the example policy wants 16Gi for
    // op-reth, so it refuses the example renderer's StatefulSet.
    let output = render_example(&repo("examples/devnet-chain.yaml"));
    assert_refused(
        &output,
        &[
            "OpNode devnet-sequencer: policy example-chain-policy@sha256:",
            "StatefulSet/devnet-sequencer: op-reth-minimum-memory",
        ],
    );
}

#[test]
fn the_example_renderer_and_policy_render_a_devnet_that_meets_the_policy() {
    let chain = devnet_with(
        "op-reth-16gi.yaml",
        &["devnet-sequencer", "devnet-replica"],
        |node| {
            node["spec"]["resources"] =
                serde_json::json!({"executionClient": {"requests": {"memory": "16Gi"}}});
        },
    );
    let output = render_example(&chain);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let objects = documents(&text(&output.stdout));
    let of_nodes: Vec<&Value> = objects
        .iter()
        .filter(|o| o["metadata"]["ownerReferences"][0]["kind"] == "OpNode")
        .collect();
    assert!(!of_nodes.is_empty());
    for object in &of_nodes {
        let meta = &object["metadata"];
        assert!(
            meta["annotations"]["optimism.io/rendered-by"]
                .as_str()
                .unwrap()
                .starts_with("example-chain-op-node@sha256:"),
            "{meta}"
        );
        assert_eq!(meta["labels"]["example.org/team"], "rollup-infra", "{meta}");
    }
    assert!(
        of_nodes.iter().any(|o| o["kind"] == "PodDisruptionBudget"
            && o["metadata"]["name"] == "devnet-sequencer-pdb"),
        "the sequencer's PodDisruptionBudget is missing"
    );
}
