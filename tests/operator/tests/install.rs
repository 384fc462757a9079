//! What an install grants and what it requires, on the real control plane: the operator's
//! rights in both installs against the committed files in `deploy/rights/` (as
//! `kubectl auth can-i --list` prints them), a namespaced install that runs a chain with nothing
//! cluster-wide but the CRDs, and a chain namespace without Pod Security "restricted" refused
//! until it is labelled.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use opstack_operator::cli::rbac::{RbacArgs, manifests};
use opstack_operator::controller::Settings;
use opstack_test_harness::{ControlPlane, OPERATOR_USER};
use serde::Deserialize;
use serde_json::{Value, json};
use support::*;

/// `kubectl auth can-i --list` for `user` in `namespace`, as the admin (who may impersonate),
/// with the test's random namespace names replaced by what they stand for.
fn rights(
    control_plane: &ControlPlane,
    user: &str,
    namespace: &str,
    names: &[(&str, &str)],
) -> String {
    let kubectl = opstack_test_harness::bin_dir().0.join("kubectl");
    let output = Command::new(&kubectl)
        .arg(format!(
            "--kubeconfig={}",
            control_plane.admin_kubeconfig().display()
        ))
        .args(["auth", "can-i", "--list"])
        .arg(format!("--as={user}"))
        .arg(format!("--namespace={namespace}"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", kubectl.display()));
    assert!(
        output.status.success(),
        "kubectl auth can-i: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    for (name, placeholder) in names {
        text = text.replace(name, placeholder);
    }
    text
}

/// Compares with the committed file `deploy/rights/<name>.snap` (`INSTA_UPDATE=always`
/// rewrites it after a deliberate change of the rules).
fn assert_rights(name: &str, rights: &str) {
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/rights"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, rights);
    });
}

fn kinds(yaml: &str) -> Vec<String> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).expect("YAML"))
        .filter(|document| !document.is_null())
        .map(|document| document["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_wide_install_grants_what_the_committed_rights_say_and_no_secrets_elsewhere() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let chain = control_plane.create_test_namespace("rights-chain").await;
    let other = control_plane.create_test_namespace("rights-other").await;
    install_rbac(&admin, std::slice::from_ref(&chain)).await;
    let names = [(chain.as_str(), "<chain>"), (other.as_str(), "<other>")];
    assert_rights(
        "cluster-wide-in-a-chain-namespace",
        &rights(control_plane, OPERATOR_USER, &chain, &names),
    );
    // A namespace that bound no Secret rights, and the one whose Secrets mint cluster tokens.
    let elsewhere = rights(control_plane, OPERATOR_USER, &other, &names);
    assert_eq!(
        elsewhere,
        rights(control_plane, OPERATOR_USER, "kube-system", &names)
    );
    assert!(!elsewhere.contains("secrets"), "{elsewhere}");
    assert_rights("cluster-wide-in-kube-system", &elsewhere);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaced_install_runs_a_chain_with_nothing_cluster_wide_but_the_crds() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    // Its own operator namespace, so its identity is not the one other tests bind cluster-wide.
    let operator_namespace = control_plane.create_test_namespace("ns-operator").await;
    let chain = control_plane.create_test_namespace("ns-chain").await;
    let install = manifests(&RbacArgs {
        namespaces: vec![chain.clone()],
        secrets_namespaces: Vec::new(),
        operator_namespace: operator_namespace.clone(),
    })
    .unwrap();
    assert_eq!(
        kinds(&install),
        ["ServiceAccount", "Role", "RoleBinding"],
        "{install}"
    );
    apply_yaml(&admin, &install, None).await;
    let user = format!("system:serviceaccount:{operator_namespace}:opstack-operator");
    let names = [
        (chain.as_str(), "<chain>"),
        (operator_namespace.as_str(), "<operator>"),
    ];
    assert_rights(
        "namespaced-in-a-watched-namespace",
        &rights(control_plane, &user, &chain, &names),
    );
    assert_rights(
        "namespaced-in-kube-system",
        &rights(control_plane, &user, "kube-system", &names),
    );

    // The operator as that ServiceAccount, with a token the API server issued for it.
    let token = Api::<ServiceAccount>::namespaced(admin.clone(), &operator_namespace)
        .create_token_request(
            "opstack-operator",
            &PostParams::default(),
            &TokenRequest {
                spec: Some(TokenRequestSpec {
                    expiration_seconds: Some(3600),
                    ..TokenRequestSpec::default()
                }),
                ..TokenRequest::default()
            },
        )
        .await
        .expect("a token for the operator's ServiceAccount")
        .status
        .and_then(|status| status.token)
        .expect("the token");
    let operator = Operator::run_as(
        control_plane.client_with_token(&token),
        Settings {
            namespaces: vec![chain.clone()],
            ..Settings::default()
        },
    )
    .await;
    // Applied means every step ran with the Role alone: the namespace's labels read, the
    // user's Secrets read, the JWT Secret created, the children applied, the status written.
    network_and_sequencer(&admin, &chain).await;
    Api::<StatefulSet>::namespaced(admin.clone(), &chain)
        .get("devnet-sequencer")
        .await
        .expect("the sequencer's StatefulSet");
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_without_pod_security_restricted_runs_nothing_until_it_is_labelled() {
    let control_plane = control_plane();
    let admin = control_plane.admin_client();
    let namespace = control_plane.create_test_namespace("not-restricted").await;
    let namespaces = Api::<Namespace>::all(admin.clone());
    let label = |level: &str| json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": level}}});
    namespaces
        .patch(
            &namespace,
            &PatchParams::default(),
            &Patch::Merge(&label("baseline")),
        )
        .await
        .unwrap();
    let operator = Operator::start_with(
        control_plane,
        Settings {
            namespaces: vec![namespace.clone()],
            // A labelled namespace sends the CR no event; the retry is what notices it.
            retry: Duration::from_secs(2),
            ..Settings::default()
        },
    )
    .await;
    apply_network_and_sequencer(&admin, &namespace).await;
    let refused = wait_for_condition(
        &admin,
        &namespace,
        "OpNode",
        "devnet-sequencer",
        "Valid",
        "False",
        Some("NamespaceNotRestricted"),
    )
    .await;
    let message = condition_message(&refused, "Valid");
    assert!(
        message.contains("pod-security.kubernetes.io/enforce=baseline")
            && message.contains(&format!(
                "kubectl label namespace {namespace} pod-security.kubernetes.io/enforce=restricted"
            )),
        "{message}"
    );
    wait_for_event(
        &admin,
        &namespace,
        "devnet-sequencer",
        "NamespaceNotRestricted",
    )
    .await;
    assert!(
        children(&admin, &namespace)
            .await
            .keys()
            .all(|child| !child.starts_with("StatefulSet/")),
        "a workload was applied in a namespace that does not enforce restricted"
    );

    namespaces
        .patch(
            &namespace,
            &PatchParams::default(),
            &Patch::Merge(&label("restricted")),
        )
        .await
        .unwrap();
    let started = Instant::now();
    wait_for_condition(
        &admin,
        &namespace,
        "OpNode",
        "devnet-sequencer",
        "Applied",
        "True",
        None,
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(30));
    operator.stop().await;
}
