//! The install manifests in `deploy/` are what a user applies: the operator's Deployment must
//! pass Pod Security "restricted" and pass only flags the binary knows.

use std::path::Path;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use opstack_operator::envelope::check_restricted;
use serde::Deserialize;

fn operator_deployment() -> Deployment {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/operator.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde_json::Value::deserialize(doc).unwrap())
        .find(|doc| doc["kind"] == "Deployment")
        .map(|doc| serde_json::from_value(doc).expect("the Deployment parses"))
        .expect("deploy/operator.yaml holds the operator's Deployment")
}

#[test]
fn the_operator_pod_passes_pod_security_restricted() {
    let deployment = operator_deployment();
    let pod = deployment.spec.template.spec.expect("pod spec");
    assert_eq!(check_restricted(&pod), vec![]);
    let container = &pod.containers[0];
    assert_eq!(
        container
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem),
        Some(true)
    );
}

#[test]
fn the_operator_is_started_with_flags_the_binary_knows() {
    let deployment = operator_deployment();
    let pod = deployment.spec.template.spec.expect("pod spec");
    let args = pod.containers[0].args.clone().expect("args");
    assert_eq!(args[0], "run");
    // clap rejects an unknown flag before it gets to --help.
    let output = Command::new(env!("CARGO_BIN_EXE_opstack-operator"))
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn deploy_rbac_is_what_the_rbac_command_prints() {
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/rbac.yaml"))
            .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_opstack-operator"))
        .arg("rbac")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stdout) == committed,
        "deploy/rbac.yaml is stale: regenerate it with `cargo run -p opstack-operator -- rbac > deploy/rbac.yaml`"
    );
}

/// `1Gi`, `256Mi` → bytes.
fn quantity_bytes(quantity: &str) -> usize {
    let (number, unit) = quantity.split_at(quantity.find(|c: char| !c.is_ascii_digit()).unwrap());
    let shift = match unit {
        "Ki" => 10,
        "Mi" => 20,
        "Gi" => 30,
        other => panic!("unit {other}"),
    };
    number.parse::<usize>().unwrap() << shift
}

#[test]
fn every_plugin_call_at_once_fits_a_quarter_of_the_operators_memory_limit() {
    use opstack_operator::runtime::RuntimeConfig;
    let pod = operator_deployment().spec.template.spec.unwrap();
    let limit = pod.containers[0]
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .map(|q| quantity_bytes(&q.0))
        .expect("the operator has a memory limit");
    let config = RuntimeConfig::default();
    // The rest is the operator itself: caches of the watched objects, the compiled plugins,
    // one compile at a time.
    assert!(
        config.memory_budget <= limit / 4,
        "{} > {limit} / 4",
        config.memory_budget
    );
    assert!(config.workers * config.limits.memory_bytes <= config.memory_budget);
}
