//! The project's CRDs, examples and invalid CRs against a real kube-apiserver: what the
//! schemas (and their CEL rules) accept and reject is decided by the apiserver, not by a
//! Rust-side validator. Also checks that RBAC is really on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::api::{DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::discovery::Scope;
use kube::{Api, Client};
use opstack_test_harness::{ControlPlane, ControlPlaneConfig, is_established};
use serde::Deserialize;

/// One control plane for every test in this binary; no controller-manager needed here.
fn control_plane() -> &'static ControlPlane {
    ControlPlane::shared(ControlPlaneConfig::default)
}

fn workspace_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// The `.yaml` files of a directory, sorted; fails the test if there are none, so an empty
/// or moved directory can never make a test pass vacuously.
fn yaml_files(relative_dir: &str) -> Vec<PathBuf> {
    let dir = workspace_path(relative_dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "{} has no .yaml files: this test needs at least one",
        dir.display()
    );
    files
}

/// Every non-empty document of a multi-document YAML file.
fn yaml_documents(path: &Path) -> Vec<DynamicObject> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(serde_yaml::Value::deserialize)
        .filter(|value| !matches!(value, Ok(serde_yaml::Value::Null)))
        .map(|value| {
            let value = value
                .unwrap_or_else(|error| panic!("{} is not valid YAML: {error}", path.display()));
            serde_yaml::from_value(value).unwrap_or_else(|error| {
                panic!(
                    "{}: a document is not a Kubernetes object: {error}",
                    path.display()
                )
            })
        })
        .collect()
}

/// Creates `object` with `dryRun=All`: the apiserver runs defaulting, schema validation and
/// CEL rules, and stores nothing. Namespaced objects go to `namespace`.
async fn dry_run_create(
    client: &Client,
    namespace: &str,
    object: &DynamicObject,
) -> Result<DynamicObject, kube::Error> {
    let types = object
        .types
        .as_ref()
        .expect("every document has apiVersion and kind");
    let gvk = GroupVersionKind::try_from(types).expect("a valid apiVersion");
    let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|error| panic!("the apiserver does not serve {gvk:?}: {error}"));
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), namespace, &resource),
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let mut object = object.clone();
    if capabilities.scope == Scope::Namespaced {
        object.metadata.namespace = Some(namespace.to_owned());
    }
    let params = PostParams {
        dry_run: true,
        field_manager: Some("opstack-test-harness".into()),
    };
    api.create(&params, &object).await
}

fn describe(object: &DynamicObject) -> String {
    let kind = object
        .types
        .as_ref()
        .map_or("?", |types| types.kind.as_str());
    format!("{kind}/{}", object.metadata.name.as_deref().unwrap_or("?"))
}

#[tokio::test]
async fn every_crd_installs_and_is_established() {
    let control_plane = control_plane();
    let expected: Vec<String> = opstack_crds::all_crds()
        .into_iter()
        .map(|crd| crd.metadata.name.expect("every CRD has a name"))
        .collect();
    assert!(!expected.is_empty(), "opstack_crds::all_crds() is empty");
    assert_eq!(control_plane.crd_names(), expected.as_slice());

    let api = Api::<CustomResourceDefinition>::all(control_plane.admin_client());
    for name in &expected {
        let crd = api
            .get(name)
            .await
            .unwrap_or_else(|error| panic!("CRD {name} is not on the apiserver: {error}"));
        assert!(is_established(&crd), "CRD {name} is not Established");
    }
}

#[tokio::test]
async fn every_example_is_accepted_by_a_server_side_dry_run() {
    let control_plane = control_plane();
    let client = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("examples").await;
    let mut checked = 0;
    let mut rejected = Vec::new();
    for file in yaml_files("examples") {
        let documents = yaml_documents(&file);
        assert!(!documents.is_empty(), "{} has no documents", file.display());
        for document in &documents {
            checked += 1;
            if let Err(error) = dry_run_create(&client, &namespace, document).await {
                rejected.push(format!(
                    "{} in {}: {error}",
                    describe(document),
                    file.display()
                ));
            }
        }
    }
    assert!(
        rejected.is_empty(),
        "the apiserver rejected {} of {checked} example objects:\n{}",
        rejected.len(),
        rejected.join("\n")
    );
}

/// The substring the apiserver's rejection must contain, from the file's first line
/// `# expect: <substring>`.
fn expected_rejection(path: &Path) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let first_line = text.lines().next().unwrap_or_default();
    first_line
        .strip_prefix("# expect:")
        .map(|substring| substring.trim().to_owned())
        .filter(|substring| !substring.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{}: the first line must be `# expect: <substring>`, found {first_line:?}",
                path.display()
            )
        })
}

#[tokio::test]
async fn every_invalid_cr_is_rejected_naming_the_field() {
    let control_plane = control_plane();
    let client = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("invalid").await;
    let mut failures = Vec::new();
    for file in yaml_files("crds/testdata/invalid") {
        let expected = expected_rejection(&file);
        let documents = yaml_documents(&file);
        assert_eq!(
            documents.len(),
            1,
            "{} must hold exactly one CR",
            file.display()
        );
        match dry_run_create(&client, &namespace, &documents[0]).await {
            Ok(_) => failures.push(format!(
                "{}: accepted, expected a rejection containing {expected:?}",
                file.display()
            )),
            Err(kube::Error::Api(status)) if status.message.contains(&expected) => {}
            Err(error) => failures.push(format!(
                "{}: rejected, but the message does not contain {expected:?}: {error}",
                file.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Collapses runs of whitespace, so text wrapped by kubectl compares equal to the schema's.
fn normalize_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The schema of `spec.<path>` in the served version of a CRD.
fn schema_at<'a>(crd: &'a CustomResourceDefinition, path: &[&str]) -> &'a JSONSchemaProps {
    let version = crd
        .spec
        .versions
        .iter()
        .find(|version| version.served)
        .expect("a served version");
    let mut schema = version
        .schema
        .as_ref()
        .and_then(|validation| validation.open_api_v3_schema.as_ref())
        .expect("a structural schema");
    for field in path {
        schema = schema
            .properties
            .as_ref()
            .and_then(|properties| properties.get(*field))
            .unwrap_or_else(|| panic!("the OpNode schema has no field {field} in {path:?}"));
    }
    schema
}

/// Runs `kubectl explain <field>` against the control plane, retrying for a while: the
/// apiserver publishes a new CRD's OpenAPI a moment after it is Established.
fn kubectl_explain(control_plane: &ControlPlane, field: &str, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(control_plane.admin_kubeconfig())
            .args(["explain", field])
            .output()
            .expect("kubectl runs (it is at /usr/bin/kubectl on the project's machines)");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() && normalize_whitespace(&stdout).contains(wanted) {
            return stdout;
        }
        if Instant::now() > deadline {
            panic!(
                "`kubectl explain {field}` did not show {wanted:?} within 60 s.\n\
                 exit status: {}\nstdout:\n{stdout}\nstderr:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test]
async fn kubectl_explain_shows_nested_field_descriptions() {
    let control_plane = control_plane();
    let opnode_crd = opstack_crds::all_crds()
        .into_iter()
        .find(|crd| crd.spec.names.kind == "OpNode")
        .expect("an OpNode CRD");
    let op_node = schema_at(&opnode_crd, &["spec", "opNode"]);
    let description = op_node
        .description
        .as_deref()
        .expect("spec.opNode has a description");
    kubectl_explain(
        control_plane,
        "opnode.spec.opNode",
        &normalize_whitespace(description),
    );

    // One level deeper, the field of spec.opNode with the longest description: long text
    // is wrapped by kubectl, which the whitespace-normalized comparison must survive.
    let (child_name, child) = op_node
        .properties
        .as_ref()
        .expect("spec.opNode has fields")
        .iter()
        .filter(|(_, schema)| schema.description.is_some())
        .max_by_key(|(_, schema)| schema.description.as_ref().map(String::len))
        .expect("a field of spec.opNode with a description");
    kubectl_explain(
        control_plane,
        &format!("opnode.spec.opNode.{child_name}"),
        &normalize_whitespace(child.description.as_deref().unwrap_or_default()),
    );
}

#[tokio::test]
async fn the_operator_identity_has_no_permissions_by_default() {
    let control_plane = control_plane();
    let namespace = control_plane.create_test_namespace("rbac").await;

    // The admin can list Secrets: the request itself is fine.
    Api::<Secret>::namespaced(control_plane.admin_client(), &namespace)
        .list(&ListParams::default())
        .await
        .expect("the admin can list Secrets");

    // The operator's service account, with nothing bound to it, cannot: RBAC is enforced.
    let denied = Api::<Secret>::namespaced(control_plane.operator_client(), &namespace)
        .list(&ListParams::default())
        .await
        .expect_err("the operator identity must not list Secrets without a role");
    match denied {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 403, "expected Forbidden, got {status:?}");
            assert!(
                status
                    .message
                    .contains("system:serviceaccount:opstack-system:opstack-operator"),
                "the denial names another user: {}",
                status.message
            );
        }
        other => panic!("expected a 403 from the apiserver, got {other}"),
    }
}
