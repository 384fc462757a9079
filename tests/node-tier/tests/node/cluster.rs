//! The node tier's shared pieces: the one cluster (control plane and node) of this test binary,
//! the images built here and imported into the node, the operator installed from `deploy/` and
//! a client pod to reach Services by their DNS names.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, PostParams};
use opstack_test_harness::image::StageRoot;
use opstack_test_harness::{ControlPlane, ControlPlaneConfig, pods};
use serde_json::json;

use crate::support::WORKSPACE;

/// How long a pod may take to become Ready on the node (image already imported).
pub const POD_TIMEOUT: Duration = Duration::from_secs(120);

/// The control plane with its node: one per test binary, so one per test run (every test that
/// needs pods lives in this binary), each test in its own namespace.
pub fn cluster() -> &'static ControlPlane {
    ControlPlane::shared(ControlPlaneConfig::with_node)
}

/// The target triple the node tier's images need, and the one `tests/run-all.sh` builds the
/// tests for, so that one build serves both.
const STATIC_TARGET: &str = "x86_64-unknown-linux-musl";

/// Where this test binary's own build put its binaries (`<target>/<triple>/<profile>`; the test
/// binary is `deps/<test>-<hash>` under it). The images take the operator's and the workload's
/// binaries from there: the same source and profile as the tests, static when the tests are
/// built for [`STATIC_TARGET`].
fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .ancestors()
        .nth(2)
        .expect("the test binary lives in <target>/<triple>/<profile>/deps")
        .to_owned();
    assert!(
        dir.parent()
            .and_then(|triple| triple.file_name())
            .is_some_and(|triple| triple == STATIC_TARGET),
        "the node tier packs static binaries into its images: build and run it with \
         --target {STATIC_TARGET} (tests/run-all.sh does); this test binary is in {}",
        dir.display()
    );
    dir
}

/// A static binary of the tests' build, for the images.
fn static_binary(package: &str) -> PathBuf {
    let path = build_dir().join(package);
    assert!(
        path.is_file(),
        "{} is missing: the node tier packs static binaries into its images; build them with\n  \
         OPSTACK_PLUGIN_DIR=<target>/wasm32-wasip2/plugin cargo build \
         --target {STATIC_TARGET} -p opstack-operator -p opstack-test-workload\n\
         (tests/run-all.sh does)",
        path.display()
    );
    path
}

/// The image `deploy/operator.yaml` names: the one the Deployment runs.
pub fn operator_image() -> String {
    let manifest = std::fs::read_to_string(format!("{WORKSPACE}/deploy/operator.yaml"))
        .expect("deploy/operator.yaml");
    manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("image: "))
        .expect("deploy/operator.yaml names an image")
        .trim()
        .to_owned()
}

/// The operator's and the test workload's images, built from their Containerfiles and imported
/// into the node once.
pub fn images() {
    static IMPORTED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = IMPORTED.get_or_init(|| {
        let node = cluster().node().expect("the cluster has a node");
        static_binary("opstack-operator");
        static_binary("opstack-test-workload");
        let binaries = build_dir();
        // The Containerfiles' build stages build with --release; the suite's images hold the
        // tests' own build of the same source (deps optimised, the workspace crates not), so
        // that a run compiles the dependency tree once instead of twice.
        let release = |stage_target: &str| {
            StageRoot::new(
                &format!("{stage_target}{STATIC_TARGET}/release/"),
                &binaries,
            )
        };
        let operator = node
            .build_image(
                Path::new(&format!("{WORKSPACE}/deploy/Containerfile")),
                &operator_image(),
                &[(
                    "build",
                    vec![
                        release("/src/target/"),
                        // The build stage's CA bundle is Debian's, as it is on this machine.
                        StageRoot::new("/etc/ssl/certs/", Path::new("/etc/ssl/certs")),
                    ],
                )],
            )
            .map_err(|e| e.to_string())?;
        node.import(&operator).map_err(|e| e.to_string())?;
        let workload = node
            .build_image(
                Path::new(&format!("{WORKSPACE}/tests/workload/Containerfile")),
                test_plugin_workload::IMAGE,
                &[("build", vec![release("/target/")])],
            )
            .map_err(|e| e.to_string())?;
        node.import(&workload).map_err(|e| e.to_string())
    });
    if let Err(error) = result {
        panic!("building and importing the node tier's images: {error}");
    }
}

/// `kubectl` of the cluster's Kubernetes version, as the admin.
pub fn kubectl(args: &[&str]) -> std::process::Output {
    let kubectl = opstack_test_harness::bin_dir().0.join("kubectl");
    Command::new(&kubectl)
        .arg(format!(
            "--kubeconfig={}",
            cluster().admin_kubeconfig().display()
        ))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", kubectl.display()))
}

/// Like [`kubectl`], panicking with its output unless it succeeds; returns stdout.
pub fn kubectl_ok(args: &[&str]) -> String {
    let output = kubectl(args);
    assert!(
        output.status.success(),
        "kubectl {}: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The operator's namespace and Deployment, as `deploy/` names them.
pub const OPERATOR_NAMESPACE: &str = "opstack-system";
pub const OPERATOR_DEPLOYMENT: &str = "opstack-operator";
pub const OPERATOR_SELECTOR: &str = "app.kubernetes.io/name=opstack-operator";

/// The operator installed exactly as `deploy/README.md` says (`kubectl apply --server-side` of
/// `deploy/rbac.yaml` and `deploy/operator.yaml`; the CRDs are installed with the cluster), once
/// its pod is Ready.
pub fn operator() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        images();
        for manifest in ["deploy/rbac.yaml", "deploy/operator.yaml"] {
            kubectl_ok(&[
                "apply",
                "--server-side",
                "--field-manager=opstack-test",
                "-f",
                &format!("{WORKSPACE}/{manifest}"),
            ]);
        }
        kubectl_ok(&[
            "rollout",
            "status",
            "--timeout=180s",
            &format!("--namespace={OPERATOR_NAMESPACE}"),
            &format!("deployment/{OPERATOR_DEPLOYMENT}"),
        ]);
    });
}

/// A chain namespace as `deploy/README.md` tells users to make one: Pod Security "restricted"
/// enforced (the harness labels every test namespace so) and the operator's Secret rights bound
/// in it.
pub async fn chain_namespace(cluster: &ControlPlane, prefix: &str) -> String {
    let namespace = cluster.create_test_namespace(prefix).await;
    kubectl_ok(&[
        "create",
        "rolebinding",
        "opstack-operator-secrets",
        &format!("--namespace={namespace}"),
        "--clusterrole=opstack-operator-secrets",
        &format!("--serviceaccount={OPERATOR_NAMESPACE}:opstack-operator"),
    ]);
    namespace
}

/// A restricted pod running the test workload's server, for `exec … get <url>` from inside the
/// cluster (DNS names, Service IPs, other pods).
pub async fn client_pod(admin: &Client, namespace: &str) -> String {
    images();
    let name = "client";
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": true, "runAsUser": 10002, "runAsGroup": 10002,
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "containers": [{
                "name": "client",
                "image": test_plugin_workload::IMAGE,
                "imagePullPolicy": "Never",
                "args": ["serve", "--listen=0.0.0.0:8080", "--data=/tmp"],
                "readinessProbe": { "httpGet": { "path": "/healthz", "port": 8080 }, "periodSeconds": 1 },
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "capabilities": { "drop": ["ALL"] },
                },
            }],
        },
    }))
    .expect("a Pod");
    Api::<Pod>::namespaced(admin.clone(), namespace)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("create the client pod in {namespace}: {e}"));
    pods::wait_ready(admin, namespace, name, POD_TIMEOUT).await;
    name.to_owned()
}

/// `GET url` from inside the cluster, through the client pod: the body, or the failure.
pub async fn get_from_client(
    admin: &Client,
    namespace: &str,
    client: &str,
    url: &str,
) -> Result<String, String> {
    let output = pods::exec(
        admin,
        namespace,
        client,
        "client",
        &["/usr/local/bin/opstack-test-workload", "get", url],
    )
    .await;
    if output.success() {
        Ok(output.stdout)
    } else {
        Err(format!("{} {}", output.status, output.stderr))
    }
}
