//! `opstack-operator crds` and the committed CRD files under `crds/generated/`.

use std::path::Path;
use std::process::Command;

use opstack_operator::cli::crds::{file_name, to_yaml};

#[test]
fn committed_crd_yaml_matches_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/generated");
    let mut stale = Vec::new();
    for crd in opstack_crds::all_crds() {
        let path = dir.join(file_name(&crd));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != to_yaml(&crd).unwrap() {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "CRD YAML is out of date with the Rust types: {stale:?}\nregenerate with: cargo run -p opstack-operator -- crds --write crds/generated"
    );
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        files, 5,
        "crds/generated holds a file that no type generates"
    );
}

#[test]
fn crds_command_prints_five_apply_ready_documents() {
    let output = Command::new(env!("CARGO_BIN_EXE_opstack-operator"))
        .arg("crds")
        .output()
        .expect("run binary");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let kinds: Vec<String> = text
        .split("\n---\n")
        .map(|doc| doc.trim_start_matches("---\n"))
        .filter(|doc| !doc.trim().is_empty())
        .map(|doc| {
            let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
                serde_yaml::from_str(doc).expect("each document is a CRD");
            crd.spec.names.kind
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "OptimismNetwork",
            "OpNode",
            "OpBatcher",
            "OpProposer",
            "OpChallenger"
        ]
    );
}
