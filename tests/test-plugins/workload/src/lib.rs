//! An OpNode renderer for the node tier: instead of op-node and its execution client, the pod
//! runs the test workload (`tests/workload`, a small static HTTP server), so the tier can check
//! what the operator's apply gives a real pod without an OP Stack chain: the probe passes, the
//! host's JWT Secret is mounted with the rendered mode, the pod runs as the rendered non-root
//! user with its `fsGroup` on the claimed volume, and the Service answers by its DNS name.
//!
//! A chain uploads it like any chain plugin (a ConfigMap pinned by sha256), so it also exercises
//! the in-cluster operator's plugin loading.

use opstack_plugin_sdk::k8s::{self, ContainerBuilder, ServiceBuilder};
use opstack_plugin_sdk::k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use opstack_plugin_sdk::k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec,
    VolumeResourceRequirements,
};
use opstack_plugin_sdk::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use opstack_plugin_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta,
};
use opstack_plugin_sdk::{
    PluginError, PluginInfo, RenderInput, RenderOutput, Renderer, export_renderer,
};

/// The image the node tier builds from `tests/workload/Containerfile`.
pub const IMAGE: &str = "localhost/opstack-test/workload:1";
/// The user the pod runs as, and the group its volume is given to.
pub const USER: i64 = 10001;
pub const PORT: i32 = 8080;

pub struct WorkloadOpNode;

impl Renderer for WorkloadOpNode {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "test-workload-op-node",
            env!("CARGO_PKG_VERSION"),
            &["OpNode"],
        )
    }

    fn validate(input: &RenderInput) -> Result<Vec<String>, PluginError> {
        input.require_secret("jwt")?;
        Ok(Vec::new())
    }

    fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
        let name = input
            .resource_json()?
            .pointer("/metadata/name")
            .and_then(|name| name.as_str())
            .ok_or_else(|| PluginError::invalid("metadata.name is missing"))?
            .to_owned();
        let jwt = input.require_secret("jwt")?;
        // `app.kubernetes.io/name` is the kind's component whatever runs: with the instance it
        // is the identity the host requires in every selector.
        let labels = k8s::labels("op-node", &name, "test-workload");
        let selector = labels
            .iter()
            .filter(|(key, _)| key.as_str() != "app.kubernetes.io/managed-by")
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();

        let server = ContainerBuilder::new("server", IMAGE)
            .pull_policy("IfNotPresent")
            .arg("serve")
            .arg("--listen=0.0.0.0:8080")
            .arg("--data=/data")
            .arg("--inspect=/secrets/jwt/jwt.hex")
            .port("http", PORT)
            .mount("data", "/data", false)
            .mount("jwt", "/secrets/jwt", true)
            .readiness(k8s::http_probe("/healthz", "http", 2, 3))
            .liveness(k8s::http_probe("/healthz", "http", 10, 3))
            .build();
        let statefulset = StatefulSet {
            metadata: k8s::meta(&name, &labels),
            spec: StatefulSetSpec {
                replicas: Some(1),
                service_name: Some(name.clone()),
                selector: LabelSelector {
                    match_labels: Some(selector),
                    match_expressions: None,
                },
                persistent_volume_claim_retention_policy: Some(
                    StatefulSetPersistentVolumeClaimRetentionPolicy {
                        when_deleted: Some("Retain".into()),
                        when_scaled: Some("Retain".into()),
                    },
                ),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels.clone()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        automount_service_account_token: Some(false),
                        enable_service_links: Some(false),
                        security_context: Some(k8s::restricted_pod_security_context(USER)),
                        termination_grace_period_seconds: Some(5),
                        containers: vec![server],
                        volumes: Some(vec![k8s::secret_volume("jwt", jwt)]),
                        ..Default::default()
                    }),
                },
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("data".into()),
                        ..Default::default()
                    },
                    spec: Some(PersistentVolumeClaimSpec {
                        access_modes: Some(vec!["ReadWriteOnce".into()]),
                        resources: Some(VolumeResourceRequirements {
                            requests: Some(
                                [("storage".to_owned(), Quantity("64Mi".into()))].into(),
                            ),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            status: None,
        };
        let service = ServiceBuilder::new(&name, &labels, &selector_of(&statefulset))
            .port("http", PORT)
            .build();
        let mut out = RenderOutput::default();
        out.push(&statefulset)?;
        out.push(&service)?;
        Ok(out)
    }
}

fn selector_of(statefulset: &StatefulSet) -> std::collections::BTreeMap<String, String> {
    statefulset
        .spec
        .selector
        .match_labels
        .clone()
        .unwrap_or_default()
}

export_renderer!(WorkloadOpNode);
