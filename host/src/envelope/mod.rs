//! The envelope: what every rendered object must satisfy before the host applies it, whoever
//! rendered it (`docs/security.md`, "The envelope"). Plugin output is untrusted input.
//!
//! Policy on the namespace: an object without a namespace gets the CR's; an object naming any
//! other namespace is **rejected**, not rewritten, because a plugin that asks for another
//! namespace is either buggy or hostile and the user should hear about it.
//!
//! `seal` is pure: it takes the parsed objects and the CR's identity and returns the objects to
//! apply, or every reason to refuse them. The controller and `render` share it.

mod confine;
pub mod pod_security;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, PodTemplateSpec, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use confine::looks_like_a_key;
pub use pod_security::{PodSecurityViolation, check_restricted};

/// Label and annotation keys the host owns on every child.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
/// The component a pod runs (`op-node`, `op-batcher`, ...): with the instance, the identity the
/// host forces on pod templates and requires in every selector.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const MANAGER: &str = "opstack-operator";
/// Provenance: which plugin (name and sha256) rendered the object.
pub const ANNOTATION_RENDERED_BY: &str = "optimism.io/rendered-by";

/// Largest number of objects one CR may render.
pub const MAX_OBJECTS: usize = 64;

/// The component whose pods a CR of `kind` runs (`app.kubernetes.io/name`); none for a network,
/// which renders no pods.
pub fn component(kind: &str) -> Option<&'static str> {
    match kind {
        "OpNode" => Some("op-node"),
        "OpBatcher" => Some("op-batcher"),
        "OpProposer" => Some("op-proposer"),
        "OpChallenger" => Some("op-challenger"),
        _ => None,
    }
}

/// What the CR's own spec asks of its Services (`spec.service`): a renderer may expose a
/// Service outside the cluster, or annotate it, only as far as this says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceExposure {
    /// `ClusterIP`, `NodePort` or `LoadBalancer`.
    pub type_: String,
    pub annotations: BTreeMap<String, String>,
}

impl ServiceExposure {
    /// From `spec.service` of a CR; ClusterIP and no annotations when it has none.
    pub fn of(resource: &Value) -> Self {
        let service = resource.pointer("/spec/service");
        ServiceExposure {
            type_: service
                .and_then(|s| s.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP")
                .to_string(),
            annotations: service
                .and_then(|s| s.get("annotations"))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect(),
        }
    }
}

/// Who asked for the objects: the CR and the plugin that rendered them.
#[derive(Debug, Clone)]
pub struct Owner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// The `OptimismNetwork` the CR belongs to (its own name for a network).
    pub network: String,
    /// Secret names the CR may reference: the ones its spec declares and the ones the host
    /// generated for it. Anything else is refused.
    pub allowed_secrets: BTreeSet<String>,
    /// `<plugin name>@sha256:<digest>` of the renderer.
    pub rendered_by: String,
    /// What the CR's spec asks of its Services.
    pub service: ServiceExposure,
    /// Annotation keys the user allowed this renderer on pod templates and Services
    /// (`spec.plugins.<kind>.renderer.allowedAnnotations` of the network).
    pub allowed_annotations: BTreeSet<String>,
}

impl Owner {
    /// The owner of what `resource` (a CR of `kind`, uid `uid`) renders: name, namespace and
    /// Service exposure read from the resource itself.
    pub fn of(
        kind: &str,
        resource: &Value,
        uid: &str,
        network: String,
        allowed_secrets: BTreeSet<String>,
        rendered_by: String,
    ) -> Self {
        let metadata = |field: &str| {
            resource
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Owner {
            api_version: OWNER_API_VERSION.to_string(),
            kind: kind.to_string(),
            name: metadata("name"),
            namespace: metadata("namespace"),
            uid: uid.to_string(),
            network,
            allowed_secrets,
            rendered_by,
            service: ServiceExposure::of(resource),
            allowed_annotations: BTreeSet::new(),
        }
    }
}

/// API version of every kind that owns children.
pub const OWNER_API_VERSION: &str = "optimism.io/v1alpha1";

/// Why rendered objects were refused. Variant names double as metric labels.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("{object}: not an object with apiVersion, kind and metadata.name")]
    Malformed { object: String },
    #[error("{object}: kind {kind} is not allowed for a {owner_kind}; allowed: {allowed}")]
    ForbiddenKind {
        object: String,
        kind: String,
        owner_kind: String,
        allowed: String,
    },
    #[error("{object}: namespace {namespace:?} is not the resource's namespace {expected:?}")]
    ForeignNamespace {
        object: String,
        namespace: String,
        expected: String,
    },
    #[error("{object}: does not parse as {kind}: {reason}")]
    InvalidObject {
        object: String,
        kind: String,
        reason: String,
    },
    #[error("{object}: {violation}")]
    PodSecurity { object: String, violation: String },
    #[error(
        "{object}: {field} references Secret {secret:?}, which this resource neither declares nor owns"
    )]
    ForbiddenSecretReference {
        object: String,
        field: String,
        secret: String,
    },
    #[error(
        "{object}: automountServiceAccountToken must be false (the workloads never talk to the Kubernetes API)"
    )]
    ServiceAccountToken { object: String },
    #[error(
        "{object}: persistentVolumeClaimRetentionPolicy must be Retain on delete and scale, so chain data outlives the resource"
    )]
    VolumeNotRetained { object: String },
    #[error("{count} objects rendered; at most {max} are allowed")]
    TooManyObjects { count: usize, max: usize },
    #[error("{object} is rendered twice")]
    Duplicate { object: String },
    #[error(
        "{object}: {field} {name:?} is outside the resource's names: a child of {owner} is named {owner:?} or starts with \"{owner}-\""
    )]
    NameOutsideScope {
        object: String,
        field: String,
        name: String,
        owner: String,
    },
    #[error("{object}: metadata.name {name:?} is not {rule}")]
    InvalidName {
        object: String,
        name: String,
        rule: String,
    },
    #[error(
        "{object}: {field} must select only this resource's pods: it needs {label}, which the host puts on them"
    )]
    UnscopedSelector {
        object: String,
        field: String,
        label: String,
    },
    #[error(
        "{object}: spec.replicas is {replicas}; a resource runs at most one pod (two sequencers, batchers or proposers would sign twice)"
    )]
    TooManyReplicas { object: String, replicas: i64 },
    #[error(
        "{object}: spec.strategy.type is {strategy:?}; it must be \"Recreate\", so the old pod stops before the new one starts and there are never two signers"
    )]
    UpdateStrategy { object: String, strategy: String },
    #[error("{object}: {field}: {rule}")]
    ForbiddenPodField {
        object: String,
        field: String,
        rule: String,
    },
    #[error(
        "{object}: volume {volume:?} uses {uses}; allowed: configMap, secret, emptyDir, downwardAPI and projected configMap/secret/downwardAPI (chain data comes from volumeClaimTemplates)"
    )]
    ForbiddenVolume {
        object: String,
        volume: String,
        uses: String,
    },
    #[error(
        "{object}: {field} annotation {key:?} is not allowed: list it in the network's spec.plugins.<kind>.renderer.allowedAnnotations (or, for a Service, in the resource's spec.service.annotations)"
    )]
    ForbiddenAnnotation {
        object: String,
        field: String,
        key: String,
    },
    #[error("{object}: {field} = {value}: {rule}")]
    ForbiddenServiceField {
        object: String,
        field: String,
        value: String,
        rule: String,
    },
    #[error(
        "{object}: {field} holds what looks like a private key or mnemonic as a literal; keys reach a pod only through a Secret (secretKeyRef or a Secret volume)"
    )]
    LiteralKey { object: String, field: String },
}

impl EnvelopeError {
    /// A stable label for metrics and condition reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            EnvelopeError::Malformed { .. } => "Malformed",
            EnvelopeError::ForbiddenKind { .. } => "ForbiddenKind",
            EnvelopeError::ForeignNamespace { .. } => "ForeignNamespace",
            EnvelopeError::InvalidObject { .. } => "InvalidObject",
            EnvelopeError::PodSecurity { .. } => "PodSecurity",
            EnvelopeError::ForbiddenSecretReference { .. } => "ForbiddenSecretReference",
            EnvelopeError::ServiceAccountToken { .. } => "ServiceAccountToken",
            EnvelopeError::VolumeNotRetained { .. } => "VolumeNotRetained",
            EnvelopeError::TooManyObjects { .. } => "TooManyObjects",
            EnvelopeError::Duplicate { .. } => "Duplicate",
            EnvelopeError::NameOutsideScope { .. } => "NameOutsideScope",
            EnvelopeError::InvalidName { .. } => "InvalidName",
            EnvelopeError::UnscopedSelector { .. } => "UnscopedSelector",
            EnvelopeError::TooManyReplicas { .. } => "TooManyReplicas",
            EnvelopeError::UpdateStrategy { .. } => "UpdateStrategy",
            EnvelopeError::ForbiddenPodField { .. } => "ForbiddenPodField",
            EnvelopeError::ForbiddenVolume { .. } => "ForbiddenVolume",
            EnvelopeError::ForbiddenAnnotation { .. } => "ForbiddenAnnotation",
            EnvelopeError::ForbiddenServiceField { .. } => "ForbiddenServiceField",
            EnvelopeError::LiteralKey { .. } => "LiteralKey",
        }
    }
}

/// Kinds a renderer of `owner_kind` may produce, as `apiVersion/kind`. Never RBAC, webhooks,
/// CRDs, Namespaces, PersistentVolumes(Claims), Secrets or ServiceAccounts.
pub fn allowed_kinds(owner_kind: &str) -> &'static [&'static str] {
    match owner_kind {
        "OptimismNetwork" => &["v1/ConfigMap"],
        "OpNode" | "OpChallenger" => &[
            "apps/v1/StatefulSet",
            "v1/Service",
            "v1/ConfigMap",
            "policy/v1/PodDisruptionBudget",
            "networking.k8s.io/v1/NetworkPolicy",
        ],
        "OpBatcher" | "OpProposer" => &[
            "apps/v1/Deployment",
            "v1/Service",
            "v1/ConfigMap",
            "policy/v1/PodDisruptionBudget",
            "networking.k8s.io/v1/NetworkPolicy",
        ],
        _ => &[],
    }
}

/// Checks every rendered object and stamps what the host owns (namespace, owner reference,
/// labels, provenance). All-or-nothing: one bad object refuses the whole render.
pub fn seal(objects: &[Value], owner: &Owner) -> Result<Vec<Value>, Vec<EnvelopeError>> {
    if objects.len() > MAX_OBJECTS {
        return Err(vec![EnvelopeError::TooManyObjects {
            count: objects.len(),
            max: MAX_OBJECTS,
        }]);
    }
    let mut errors = Vec::new();
    let mut sealed = Vec::new();
    let mut seen = BTreeSet::new();
    for object in objects {
        match seal_one(object, owner) {
            Ok((id, value)) => {
                if !seen.insert(id.clone()) {
                    errors.push(EnvelopeError::Duplicate { object: id });
                }
                sealed.push(value);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(sealed)
    } else {
        Err(errors)
    }
}

fn seal_one(object: &Value, owner: &Owner) -> Result<(String, Value), Vec<EnvelopeError>> {
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    let kind = object.get("kind").and_then(Value::as_str);
    let name = object.pointer("/metadata/name").and_then(Value::as_str);
    let (Some(api_version), Some(kind), Some(name)) = (api_version, kind, name) else {
        let object = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>")
            .to_string();
        return Err(vec![EnvelopeError::Malformed { object }]);
    };
    let id = format!("{kind}/{name}");
    let type_id = format!("{api_version}/{kind}");
    let allowed = allowed_kinds(&owner.kind);
    if !allowed.contains(&type_id.as_str()) {
        return Err(vec![EnvelopeError::ForbiddenKind {
            object: id,
            kind: type_id,
            owner_kind: owner.kind.clone(),
            allowed: allowed.join(", "),
        }]);
    }
    if let Some(namespace) = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        && namespace != owner.namespace
    {
        return Err(vec![EnvelopeError::ForeignNamespace {
            object: id,
            namespace: namespace.to_string(),
            expected: owner.namespace.clone(),
        }]);
    }
    // Parsing into the typed object drops fields Kubernetes does not know and gives one
    // canonical shape; the checks below then see exactly what will be applied.
    let (mut sealed, mut errors) = match kind {
        "StatefulSet" => {
            let mut sts = typed::<StatefulSet>(object, &id, kind)?;
            let errors = check_statefulset(&sts, &id, owner)
                .err()
                .unwrap_or_default();
            stamp(&mut sts.metadata, owner);
            (to_value(&sts), errors)
        }
        "Deployment" => {
            let mut deployment = typed::<Deployment>(object, &id, kind)?;
            let errors = check_pod_template(&deployment.spec.template, &id, owner)
                .err()
                .unwrap_or_default();
            stamp(&mut deployment.metadata, owner);
            (to_value(&deployment), errors)
        }
        "Service" => (stamped::<Service>(object, &id, kind, owner)?, Vec::new()),
        "ConfigMap" => (stamped::<ConfigMap>(object, &id, kind, owner)?, Vec::new()),
        "PodDisruptionBudget" => (
            stamped::<PodDisruptionBudget>(object, &id, kind, owner)?,
            Vec::new(),
        ),
        "NetworkPolicy" => (
            stamped::<NetworkPolicy>(object, &id, kind, owner)?,
            Vec::new(),
        ),
        _ => unreachable!("the allow-list only holds the kinds matched here"),
    };
    errors.extend(confine::confine(kind, &mut sealed, owner));
    if errors.is_empty() {
        Ok((id, sealed))
    } else {
        Err(errors)
    }
}

fn typed<T: DeserializeOwned>(
    object: &Value,
    id: &str,
    kind: &str,
) -> Result<T, Vec<EnvelopeError>> {
    serde_json::from_value(object.clone()).map_err(|e| {
        vec![EnvelopeError::InvalidObject {
            object: id.to_string(),
            kind: kind.to_string(),
            reason: e.to_string(),
        }]
    })
}

/// Parses an object of a kind without pod templates and stamps what the host owns.
fn stamped<T: DeserializeOwned + Serialize + kube::Resource>(
    object: &Value,
    id: &str,
    kind: &str,
    owner: &Owner,
) -> Result<Value, Vec<EnvelopeError>> {
    let mut parsed = typed::<T>(object, id, kind)?;
    stamp(parsed.meta_mut(), owner);
    Ok(to_value(&parsed))
}

fn to_value<T: Serialize>(object: &T) -> Value {
    serde_json::to_value(object).expect("Kubernetes objects always serialise")
}

fn check_statefulset(sts: &StatefulSet, id: &str, owner: &Owner) -> Result<(), Vec<EnvelopeError>> {
    let spec = &sts.spec;
    let mut errors = check_pod_template(&spec.template, id, owner)
        .err()
        .unwrap_or_default();
    if spec
        .volume_claim_templates
        .as_ref()
        .is_some_and(|t| !t.is_empty())
    {
        let retained = spec
            .persistent_volume_claim_retention_policy
            .as_ref()
            .is_some_and(|p| {
                p.when_deleted.as_deref() == Some("Retain")
                    && p.when_scaled.as_deref() == Some("Retain")
            });
        if !retained {
            errors.push(EnvelopeError::VolumeNotRetained {
                object: id.to_string(),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_pod_template(
    template: &PodTemplateSpec,
    id: &str,
    owner: &Owner,
) -> Result<(), Vec<EnvelopeError>> {
    let mut errors = Vec::new();
    let Some(pod) = &template.spec else {
        return Ok(());
    };
    let annotations = template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref());
    let violations = check_restricted(pod).into_iter().chain(
        annotations
            .map(pod_security::check_apparmor_annotations)
            .unwrap_or_default(),
    );
    errors.extend(violations.map(|v| EnvelopeError::PodSecurity {
        object: id.to_string(),
        violation: v.to_string(),
    }));
    if pod.automount_service_account_token != Some(false) {
        errors.push(EnvelopeError::ServiceAccountToken {
            object: id.to_string(),
        });
    }
    for (field, secret) in secret_references(pod) {
        if !owner.allowed_secrets.contains(&secret) {
            errors.push(EnvelopeError::ForbiddenSecretReference {
                object: id.to_string(),
                field,
                secret,
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Every Secret a pod can read, with where it is named: volumes, projected sources,
/// `env[].valueFrom.secretKeyRef`, `envFrom[].secretRef` and `imagePullSecrets`.
pub fn secret_references(pod: &PodSpec) -> Vec<(String, String)> {
    let mut refs = Vec::new();
    for volume in pod.volumes.iter().flatten() {
        if let Some(name) = volume.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            refs.push((format!("volumes[{}].secret", volume.name), name));
        }
        for source in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
        {
            if let Some(secret) = &source.secret {
                refs.push((
                    format!("volumes[{}].projected.secret", volume.name),
                    secret.name.clone(),
                ));
            }
        }
    }
    let containers = pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten());
    for container in containers {
        for env in container.env.iter().flatten() {
            if let Some(secret) = env
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
            {
                refs.push((
                    format!("containers[{}].env[{}]", container.name, env.name),
                    secret.name.clone(),
                ));
            }
        }
        for from in container.env_from.iter().flatten() {
            if let Some(secret) = &from.secret_ref {
                refs.push((
                    format!("containers[{}].envFrom", container.name),
                    secret.name.clone(),
                ));
            }
        }
    }
    for ephemeral in pod.ephemeral_containers.iter().flatten() {
        for env in ephemeral.env.iter().flatten() {
            if let Some(secret) = env
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
            {
                refs.push((
                    format!("ephemeralContainers[{}].env[{}]", ephemeral.name, env.name),
                    secret.name.clone(),
                ));
            }
        }
        for from in ephemeral.env_from.iter().flatten() {
            if let Some(secret) = &from.secret_ref {
                refs.push((
                    format!("ephemeralContainers[{}].envFrom", ephemeral.name),
                    secret.name.clone(),
                ));
            }
        }
    }
    for pull in pod.image_pull_secrets.iter().flatten() {
        refs.push(("imagePullSecrets".to_string(), pull.name.clone()));
    }
    refs
}

/// Namespace, owner reference, host labels and provenance, overriding whatever the plugin set
/// for those keys.
fn stamp(meta: &mut ObjectMeta, owner: &Owner) {
    meta.namespace = Some(owner.namespace.clone());
    meta.owner_references = Some(vec![OwnerReference {
        api_version: owner.api_version.clone(),
        kind: owner.kind.clone(),
        name: owner.name.clone(),
        uid: owner.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(LABEL_MANAGED_BY.to_string(), MANAGER.to_string());
    labels.insert(LABEL_INSTANCE.to_string(), owner.name.clone());
    labels.insert(LABEL_PART_OF.to_string(), owner.network.clone());
    if let Some(component) = component(&owner.kind) {
        labels.insert(LABEL_NAME.to_string(), component.to_string());
    }
    meta.annotations.get_or_insert_with(BTreeMap::new).insert(
        ANNOTATION_RENDERED_BY.to_string(),
        owner.rendered_by.clone(),
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn owner(kind: &str) -> Owner {
        Owner {
            api_version: "optimism.io/v1alpha1".into(),
            kind: kind.into(),
            name: "node".into(),
            namespace: "chain-a".into(),
            uid: "uid-1".into(),
            network: "devnet".into(),
            allowed_secrets: BTreeSet::from(["node-jwt".to_string()]),
            rendered_by: "op-node@sha256:00".into(),
            service: ServiceExposure::default(),
            allowed_annotations: BTreeSet::new(),
        }
    }

    fn restricted_pod(extra: Value) -> Value {
        let mut pod = json!({
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "c", "image": "img",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }]
        });
        merge(&mut pod, extra);
        pod
    }

    fn merge(into: &mut Value, from: Value) {
        if let (Value::Object(into), Value::Object(from)) = (into, from) {
            for (k, v) in from {
                into.insert(k, v);
            }
        }
    }

    fn statefulset(pod: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "node"},
            "spec": {
                "selector": {"matchLabels": {LABEL_INSTANCE: "node", LABEL_NAME: "op-node"}},
                "serviceName": "node",
                "template": {"spec": pod}
            }
        })
    }

    #[test]
    fn namespace_owner_labels_and_provenance_are_stamped() {
        let sealed = seal(&[statefulset(restricted_pod(json!({})))], &owner("OpNode")).unwrap();
        let meta = &sealed[0]["metadata"];
        assert_eq!(meta["namespace"], "chain-a");
        assert_eq!(meta["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(meta["ownerReferences"][0]["controller"], true);
        assert_eq!(meta["labels"][LABEL_MANAGED_BY], MANAGER);
        assert_eq!(meta["labels"][LABEL_PART_OF], "devnet");
        assert_eq!(
            meta["annotations"][ANNOTATION_RENDERED_BY],
            "op-node@sha256:00"
        );
    }

    #[test]
    fn foreign_namespace_is_rejected_not_rewritten() {
        let mut object = statefulset(restricted_pod(json!({})));
        object["metadata"]["namespace"] = json!("kube-system");
        let errors = seal(&[object], &owner("OpNode")).unwrap_err();
        assert_eq!(errors[0].reason(), "ForeignNamespace");
    }

    #[test]
    fn kinds_outside_the_allow_list_are_rejected() {
        for (api_version, kind) in [
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
            ("v1", "Secret"),
            ("v1", "PersistentVolumeClaim"),
            ("v1", "Namespace"),
            (
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
            ),
            ("apps/v1", "Deployment"),
        ] {
            let object =
                json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}});
            let errors = seal(&[object], &owner("OpNode")).unwrap_err();
            assert_eq!(errors[0].reason(), "ForbiddenKind", "{kind}");
        }
    }

    #[test]
    fn a_network_renders_only_config_maps() {
        let object = statefulset(restricted_pod(json!({})));
        assert_eq!(
            seal(&[object], &owner("OptimismNetwork")).unwrap_err()[0].reason(),
            "ForbiddenKind"
        );
    }

    #[test]
    fn privileged_pod_is_rejected_with_the_control() {
        let mut pod = restricted_pod(json!({}));
        pod["containers"][0]["securityContext"]["privileged"] = json!(true);
        let errors = seal(&[statefulset(pod)], &owner("OpNode")).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.to_string().contains("control 2 (Privileged)")),
            "{errors:?}"
        );
    }

    #[test]
    fn secret_of_another_resource_is_rejected_on_every_path() {
        let paths = [
            json!({"volumes": [{"name": "v", "secret": {"secretName": "other-chain-key"}}]}),
            json!({"volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": "other-chain-key"}}]}}]}),
            json!({"imagePullSecrets": [{"name": "other-chain-key"}]}),
        ];
        for extra in paths {
            let errors = seal(
                &[statefulset(restricted_pod(extra.clone()))],
                &owner("OpNode"),
            )
            .unwrap_err();
            assert!(
                errors
                    .iter()
                    .any(|e| e.reason() == "ForbiddenSecretReference"),
                "{extra}: {errors:?}"
            );
        }
        let mut pod = restricted_pod(json!({}));
        pod["containers"][0]["env"] = json!([{"name": "K", "valueFrom": {"secretKeyRef": {"name": "other-chain-key", "key": "k"}}}]);
        let errors = seal(&[statefulset(pod)], &owner("OpNode")).unwrap_err();
        assert_eq!(errors[0].reason(), "ForbiddenSecretReference");
        let mut pod = restricted_pod(json!({}));
        pod["containers"][0]["envFrom"] = json!([{"secretRef": {"name": "other-chain-key"}}]);
        assert_eq!(
            seal(&[statefulset(pod)], &owner("OpNode")).unwrap_err()[0].reason(),
            "ForbiddenSecretReference"
        );
    }

    #[test]
    fn declared_secret_is_allowed() {
        let pod = restricted_pod(
            json!({"volumes": [{"name": "jwt", "secret": {"secretName": "node-jwt"}}]}),
        );
        seal(&[statefulset(pod)], &owner("OpNode")).unwrap();
    }

    #[test]
    fn service_account_token_must_not_be_mounted() {
        let mut pod = restricted_pod(json!({}));
        pod.as_object_mut()
            .unwrap()
            .remove("automountServiceAccountToken");
        assert_eq!(
            seal(&[statefulset(pod)], &owner("OpNode")).unwrap_err()[0].reason(),
            "ServiceAccountToken"
        );
    }

    #[test]
    fn volume_claims_must_be_retained() {
        let mut object = statefulset(restricted_pod(json!({})));
        object["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "data"}}]);
        assert_eq!(
            seal(&[object.clone()], &owner("OpNode")).unwrap_err()[0].reason(),
            "VolumeNotRetained"
        );
        object["spec"]["persistentVolumeClaimRetentionPolicy"] =
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"});
        seal(&[object], &owner("OpNode")).unwrap();
    }

    #[test]
    fn too_many_objects_are_refused_whole() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        let objects: Vec<Value> = (0..=MAX_OBJECTS)
            .map(|i| {
                let mut c = cm.clone();
                c["metadata"]["name"] = json!(format!("cm-{i}"));
                c
            })
            .collect();
        assert_eq!(
            seal(&objects, &owner("OpNode")).unwrap_err()[0].reason(),
            "TooManyObjects"
        );
    }

    #[test]
    fn duplicates_and_malformed_objects_are_refused() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "node-x"}});
        assert_eq!(
            seal(&[cm.clone(), cm], &owner("OpNode")).unwrap_err()[0].reason(),
            "Duplicate"
        );
        assert_eq!(
            seal(&[json!({"kind": "ConfigMap"})], &owner("OpNode")).unwrap_err()[0].reason(),
            "Malformed"
        );
    }

    #[test]
    fn unknown_fields_are_dropped_by_the_typed_parse() {
        let mut object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "node-x"}, "data": {"a": "b"}});
        object["sneaky"] = json!(true);
        let sealed = seal(&[object], &owner("OpNode")).unwrap();
        assert!(sealed[0].get("sneaky").is_none());
    }
}
