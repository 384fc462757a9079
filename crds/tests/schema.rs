//! The generated schemas say what users need (`kubectl explain`, columns, status) and reject bad
//! input with a message naming the field. The same bad documents run against a real apiserver
//! in the control-plane tests.

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use opstack_crds::validation::admit;
use opstack_crds::{OpBatcher, OpChallenger, OpNode, OpProposer, OptimismNetwork, all_crds};
use serde::Deserialize;
use serde_json::Value;

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no YAML files in {}: the test would pass vacuously",
        dir.display()
    );
    files
}

fn documents(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

fn schema(crd: &CustomResourceDefinition) -> &JSONSchemaProps {
    crd.spec.versions[0]
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref()
        .unwrap()
}

fn properties_without_description(schema: &JSONSchemaProps, path: &str, missing: &mut Vec<String>) {
    for (name, property) in schema.properties.iter().flatten() {
        let here = format!("{path}.{name}");
        if property
            .description
            .as_deref()
            .unwrap_or("")
            .trim()
            .is_empty()
        {
            missing.push(here.clone());
        }
        properties_without_description(property, &here, missing);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(
        items,
    )) = &schema.items
    {
        properties_without_description(items, &format!("{path}[]"), missing);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool::Schema(
        values,
    )) = &schema.additional_properties
    {
        properties_without_description(values, &format!("{path}{{}}"), missing);
    }
}

#[test]
fn every_property_of_every_kind_has_a_description() {
    for crd in all_crds() {
        let mut missing = Vec::new();
        properties_without_description(schema(&crd), "", &mut missing);
        assert!(
            missing.is_empty(),
            "{}: properties without description: {missing:?}",
            crd.spec.names.kind
        );
    }
}

#[test]
fn every_kind_has_status_subresource_printer_columns_short_name_and_category() {
    let crds = all_crds();
    assert_eq!(crds.len(), 5);
    for crd in crds {
        let kind = &crd.spec.names.kind;
        let version = &crd.spec.versions[0];
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{kind}: no status subresource"
        );
        let columns = version
            .additional_printer_columns
            .as_ref()
            .expect("printer columns");
        for wanted in ["Network", "Ready", "Age"] {
            if kind == "OptimismNetwork" && wanted == "Network" {
                continue;
            }
            assert!(
                columns.iter().any(|c| c.name == wanted),
                "{kind}: no {wanted} column"
            );
        }
        assert!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| !s.is_empty()),
            "{kind}: no short name"
        );
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["opstack".to_string()][..]),
            "{kind}: category"
        );
        assert_eq!(crd.spec.group, "optimism.io");
        assert_eq!(version.name, "v1alpha1");
    }
}

#[test]
fn opnode_columns_answer_is_it_ok() {
    let crd = all_crds()
        .into_iter()
        .find(|c| c.spec.names.kind == "OpNode")
        .unwrap();
    let names: Vec<_> = crd.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Network",
            "Type",
            "Client",
            "Ready",
            "Head",
            "Safe",
            "Peers",
            "Synced",
            "NextFork",
            "ForkReady",
            "Age",
            "Reason"
        ]
    );
}

/// Each file in `crds/testdata/invalid` starts with `# expect: <text>`: the field its error must name.
#[test]
fn every_invalid_document_is_rejected_naming_its_field() {
    let mut checked = 0;
    for path in yaml_files(&repo_path("crds/testdata/invalid")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: first line must be `# expect: <field>`", path.display()))
            .trim()
            .to_string();
        let docs = documents(&path);
        assert_eq!(docs.len(), 1, "{}: one document per file", path.display());
        match admit(&docs[0]) {
            Ok(()) => panic!(
                "{}: accepted, but should be rejected naming {expected}",
                path.display()
            ),
            Err(err) => {
                let errors = err.field_errors();
                assert!(
                    errors.iter().any(|e| e.to_string().contains(&expected)),
                    "{}: rejected, but no error names {expected:?}: {err}",
                    path.display()
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} invalid documents");
}

#[test]
fn every_example_is_admitted_and_parses_into_its_type() {
    let mut ours = 0;
    for path in yaml_files(&repo_path("examples")) {
        for doc in documents(&path) {
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let parsed = match kind.as_str() {
                "OptimismNetwork" => {
                    serde_json::from_value::<OptimismNetwork>(doc.clone()).map(|_| ())
                }
                "OpNode" => serde_json::from_value::<OpNode>(doc.clone()).map(|_| ()),
                "OpBatcher" => serde_json::from_value::<OpBatcher>(doc.clone()).map(|_| ()),
                "OpProposer" => serde_json::from_value::<OpProposer>(doc.clone()).map(|_| ()),
                "OpChallenger" => serde_json::from_value::<OpChallenger>(doc.clone()).map(|_| ()),
                _ => continue,
            };
            parsed.unwrap_or_else(|e| panic!("{}: {kind} does not parse: {e}", path.display()));
            admit(&doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            ours += 1;
        }
    }
    assert!(
        ours >= 8,
        "examples hold only {ours} resources of our kinds"
    );
}

#[test]
fn the_devnet_example_has_every_kind() {
    let kinds: Vec<String> = documents(&repo_path("examples/devnet-chain.yaml"))
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect();
    for kind in [
        "OptimismNetwork",
        "OpNode",
        "OpBatcher",
        "OpProposer",
        "OpChallenger",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "devnet example lacks {kind}"
        );
    }
    assert_eq!(
        kinds.iter().filter(|k| *k == "OpNode").count(),
        2,
        "a sequencer and a replica"
    );
}

#[test]
fn a_document_of_an_unknown_kind_or_version_is_refused_with_the_fix() {
    let unknown = serde_json::json!({"apiVersion": "optimism.io/v1alpha1", "kind": "OpGeth", "metadata": {"name": "x"}});
    assert!(
        admit(&unknown)
            .unwrap_err()
            .to_string()
            .contains("not served")
    );
    let old = serde_json::json!({"apiVersion": "optimism.io/v1", "kind": "OpNode", "metadata": {"name": "x"}});
    assert!(
        admit(&old)
            .unwrap_err()
            .to_string()
            .contains("use optimism.io/v1alpha1")
    );
}

#[test]
fn defaults_make_a_minimal_replica_complete() {
    let doc = serde_json::json!({
        "apiVersion": "optimism.io/v1alpha1", "kind": "OpNode", "metadata": {"name": "r"},
        "spec": {"optimismNetworkRef": {"name": "n"}, "nodeType": "replica", "sequencerUrl": "https://seq.example"}
    });
    admit(&doc).expect("minimal replica is valid");
    let node: OpNode = serde_json::from_value(doc).unwrap();
    assert_eq!(
        node.spec.execution_client,
        opstack_crds::ExecutionClient::OpReth,
        "op-reth is the default"
    );
    assert_eq!(
        node.spec.op_node.p2p.listen_port, 9222,
        "op-node p2p port is 9222, not 9003"
    );
    assert_eq!(node.spec.op_node.rpc.port, 9545);
}

#[test]
fn execution_client_ports_default_to_distinct_values() {
    let node: OpNode = serde_json::from_value(serde_json::json!({
        "apiVersion": "optimism.io/v1alpha1", "kind": "OpNode", "metadata": {"name": "r"},
        "spec": {"optimismNetworkRef": {"name": "n"}, "nodeType": "replica", "opReth": {}}
    }))
    .unwrap();
    let networking = node.spec.op_reth.unwrap().networking;
    assert_eq!((networking.http.port, networking.ws.port), (8545, 8546));
    assert_eq!(
        opstack_crds::ElNetworking::default(),
        networking,
        "Default and serde defaults agree"
    );
}
