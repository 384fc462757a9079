//! Confinement: a CR's children belong to that CR alone, can only be reached by that CR's own
//! pods, and carry no power the bundled renderers' output does not need (`docs/security.md`,
//! "The envelope", rules 8–13).
//!
//! Everything here is an allow-list over the canonical JSON of the typed object: a field that is
//! not known to be safe is refused, so a field Kubernetes adds later is refused until someone
//! decides it is safe. Two rules rewrite instead of refusing, because the value a plugin gives
//! there can only be wrong: server-populated metadata is cleared, and the pod template gets the
//! CR's identity labels.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{
    EnvelopeError, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, LABEL_PART_OF, MANAGER, Owner,
};

/// Metadata the API server owns. A plugin's value is at best ignored and at worst a finalizer
/// that never clears (the object can then never be deleted), so it is dropped.
const SERVER_METADATA: &[&str] = &[
    "finalizers",
    "managedFields",
    "uid",
    "resourceVersion",
    "generateName",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// Pod fields a chain's workload needs. Scheduling (node, priority, tolerations, runtime class,
/// affinity), host aliases, DNS overrides and service accounts are not among them: they are the
/// user's choice, and no CR has a field for them yet.
const POD_FIELDS: &[&str] = &[
    "containers",
    "initContainers",
    "volumes",
    "securityContext",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "terminationGracePeriodSeconds",
    "restartPolicy",
    "imagePullSecrets",
    "serviceAccountName",
    "serviceAccount",
    "hostname",
    "subdomain",
    "setHostnameAsFQDN",
    "hostUsers",
    "os",
    "dnsPolicy",
];

const SCHEDULING_FIELDS: &[&str] = &[
    "nodeName",
    "nodeSelector",
    "affinity",
    "tolerations",
    "priorityClassName",
    "priority",
    "preemptionPolicy",
    "runtimeClassName",
    "schedulerName",
    "topologySpreadConstraints",
    "overhead",
    "schedulingGates",
    "resourceClaims",
];

const CONTAINER_FIELDS: &[&str] = &[
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "workingDir",
    "env",
    "envFrom",
    "ports",
    "resources",
    "resizePolicy",
    "volumeMounts",
    "securityContext",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "restartPolicy",
];

/// Volume sources a pod may use: its own configuration, Secrets (checked by name elsewhere),
/// scratch space and facts about itself. Never a claim named directly (a StatefulSet's claims
/// come from its templates, so a claim named here is someone else's), never a token.
const VOLUME_SOURCES: &[&str] = &[
    "configMap",
    "secret",
    "emptyDir",
    "downwardAPI",
    "projected",
];
const PROJECTED_SOURCES: &[&str] = &["configMap", "secret", "downwardAPI"];

/// Pod template annotations a plugin may set: none of them changes what runs or who can reach
/// it. Sidecar injectors, mesh and AppArmor annotations are not here.
const POD_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/default-container"];
const POD_ANNOTATION_PREFIXES: &[&str] = &["optimism.io/", "prometheus.io/"];

/// Service fields that keep a Service inside the cluster.
const SERVICE_FIELDS: &[&str] = &[
    "ports",
    "selector",
    "type",
    "clusterIP",
    "clusterIPs",
    "publishNotReadyAddresses",
    "sessionAffinity",
    "sessionAffinityConfig",
    "ipFamilies",
    "ipFamilyPolicy",
    "internalTrafficPolicy",
    "trafficDistribution",
];
/// Service fields that only mean something for a Service exposed outside the cluster: allowed
/// when the CR's own spec asked for NodePort or LoadBalancer.
const EXPOSED_SERVICE_FIELDS: &[&str] = &[
    "externalTrafficPolicy",
    "healthCheckNodePort",
    "loadBalancerSourceRanges",
    "loadBalancerClass",
    "allocateLoadBalancerNodePorts",
];

/// Confines one sealed object of `kind` (already stamped) to `owner`: rewrites what the host
/// owns and returns every rule it breaks.
pub(super) fn confine(kind: &str, object: &mut Value, owner: &Owner) -> Vec<EnvelopeError> {
    let id = format!(
        "{kind}/{}",
        object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    );
    let mut errors = Vec::new();
    clear_server_metadata(object.get_mut("metadata"));
    check_name(kind, object, &id, owner, &mut errors);
    match kind {
        "StatefulSet" | "Deployment" => check_workload(kind, object, &id, owner, &mut errors),
        "Service" => check_service(object, &id, owner, &mut errors),
        "PodDisruptionBudget" => check_selector(
            object.pointer("/spec/selector"),
            "spec.selector",
            &id,
            owner,
            &mut errors,
        ),
        "NetworkPolicy" => check_selector(
            object.pointer("/spec/podSelector"),
            "spec.podSelector",
            &id,
            owner,
            &mut errors,
        ),
        _ => {}
    }
    errors
}

fn clear_server_metadata(metadata: Option<&mut Value>) {
    if let Some(Value::Object(metadata)) = metadata {
        for field in SERVER_METADATA {
            metadata.remove(*field);
        }
    }
}

/// A child is named after its CR (`<cr>` or `<cr>-…`), as a valid DNS name: it cannot take the
/// name of another CR's child or of anything else in the namespace.
fn check_name(
    kind: &str,
    object: &Value,
    id: &str,
    owner: &Owner,
    errors: &mut Vec<EnvelopeError>,
) {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !within_prefix(name, &owner.name) {
        errors.push(EnvelopeError::NameOutsideScope {
            object: id.to_string(),
            field: "metadata.name".into(),
            name: name.to_string(),
            owner: owner.name.clone(),
        });
    }
    // Services are DNS labels (RFC 1035); the other kinds DNS subdomains (RFC 1123).
    let problem = if kind == "Service" {
        dns_label_problem(name, true)
    } else {
        dns_subdomain_problem(name)
    };
    if let Some(rule) = problem {
        errors.push(EnvelopeError::InvalidName {
            object: id.to_string(),
            name: name.to_string(),
            rule,
        });
    }
}

fn within_prefix(name: &str, owner: &str) -> bool {
    name == owner
        || name
            .strip_prefix(owner)
            .is_some_and(|rest| rest.starts_with('-'))
}

fn dns_label_problem(name: &str, rfc1035: bool) -> Option<String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || (!rfc1035 && c.is_ascii_digit()));
    let last_ok = name
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > 63 || !valid_chars || !first_ok || !last_ok {
        Some(format!(
            "a DNS label: at most 63 characters, lowercase letters, digits and '-', starting with a {} and ending with a letter or digit",
            if rfc1035 { "letter" } else { "letter or digit" }
        ))
    } else {
        None
    }
}

fn dns_subdomain_problem(name: &str) -> Option<String> {
    if name.len() > 253
        || name
            .split('.')
            .any(|label| dns_label_problem(label, false).is_some())
    {
        Some(
            "a DNS subdomain: at most 253 characters, dot-separated labels of lowercase letters, digits and '-'"
                .into(),
        )
    } else {
        None
    }
}

/// One pod per CR (a sequencer, batcher or proposer must never run twice), selected only by the
/// CR's own labels, with a pod template confined like the rest.
fn check_workload(
    kind: &str,
    object: &mut Value,
    id: &str,
    owner: &Owner,
    errors: &mut Vec<EnvelopeError>,
) {
    if let Some(replicas) = object.pointer("/spec/replicas").and_then(Value::as_i64)
        && replicas > 1
    {
        errors.push(EnvelopeError::TooManyReplicas {
            object: id.to_string(),
            replicas,
        });
    }
    if kind == "Deployment" {
        // A rolling update starts the new pod before the old one stops: two signers at once.
        let strategy = object
            .pointer("/spec/strategy/type")
            .and_then(Value::as_str)
            .unwrap_or("RollingUpdate");
        if strategy != "Recreate" {
            errors.push(EnvelopeError::UpdateStrategy {
                object: id.to_string(),
                strategy: strategy.to_string(),
            });
        }
    }
    if let Some(service) = object.pointer("/spec/serviceName").and_then(Value::as_str)
        && !service.is_empty()
        && !within_prefix(service, &owner.name)
    {
        errors.push(EnvelopeError::NameOutsideScope {
            object: id.to_string(),
            field: "spec.serviceName".into(),
            name: service.to_string(),
            owner: owner.name.clone(),
        });
    }
    check_selector(
        object.pointer("/spec/selector"),
        "spec.selector",
        id,
        owner,
        errors,
    );
    if let Some(templates) = object
        .pointer_mut("/spec/volumeClaimTemplates")
        .and_then(Value::as_array_mut)
    {
        for template in templates {
            clear_server_metadata(template.get_mut("metadata"));
        }
    }
    if let Some(template) = object.pointer_mut("/spec/template") {
        confine_pod_template(template, id, owner, errors);
    }
}

fn confine_pod_template(
    template: &mut Value,
    id: &str,
    owner: &Owner,
    errors: &mut Vec<EnvelopeError>,
) {
    let metadata = template
        .as_object_mut()
        .expect("a typed pod template serialises as an object")
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    clear_server_metadata(Some(metadata));
    if let Value::Object(metadata) = metadata {
        metadata.remove("ownerReferences");
        let labels = metadata
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        for (key, value) in identity(owner) {
            labels[key] = Value::String(value);
        }
        labels[LABEL_MANAGED_BY] = Value::String(MANAGER.to_string());
        // The chain a pod belongs to: what a sequencer's NetworkPolicy admits its RPC clients
        // by, so no renderer may let its pods claim another chain's.
        labels[LABEL_PART_OF] = Value::String(owner.network.clone());
        if let Some(Value::Object(annotations)) = metadata.get("annotations") {
            for key in annotations.keys() {
                let allowed = POD_ANNOTATIONS.contains(&key.as_str())
                    || POD_ANNOTATION_PREFIXES.iter().any(|p| key.starts_with(p))
                    || owner.allowed_annotations.contains(key);
                if !allowed {
                    errors.push(EnvelopeError::ForbiddenAnnotation {
                        object: id.to_string(),
                        field: "spec.template.metadata.annotations".into(),
                        key: key.clone(),
                    });
                }
            }
        }
    }
    if let Some(pod) = template.get("spec") {
        check_pod(pod, id, owner, errors);
    }
}

fn check_pod(pod: &Value, id: &str, owner: &Owner, errors: &mut Vec<EnvelopeError>) {
    let field = |name: &str| format!("spec.template.spec.{name}");
    for (key, value) in pod.as_object().into_iter().flatten() {
        if SCHEDULING_FIELDS.contains(&key.as_str()) {
            errors.push(EnvelopeError::ForbiddenPodField {
                object: id.to_string(),
                field: field(key),
                rule: "scheduling is the user's choice, not the renderer's".into(),
            });
        } else if !POD_FIELDS.contains(&key.as_str()) {
            errors.push(EnvelopeError::ForbiddenPodField {
                object: id.to_string(),
                field: field(key),
                rule: format!(
                    "not among the pod fields a renderer may set ({})",
                    POD_FIELDS.join(", ")
                ),
            });
        } else if matches!(key.as_str(), "serviceAccountName" | "serviceAccount")
            && value
                .as_str()
                .is_some_and(|sa| !sa.is_empty() && sa != "default")
        {
            errors.push(EnvelopeError::ForbiddenPodField {
                object: id.to_string(),
                field: field(key),
                rule: format!(
                    "{value} is not the namespace's default ServiceAccount; the workloads never talk to the Kubernetes API"
                ),
            });
        } else if key == "subdomain"
            && value
                .as_str()
                .is_some_and(|s| !s.is_empty() && !within_prefix(s, &owner.name))
        {
            errors.push(EnvelopeError::NameOutsideScope {
                object: id.to_string(),
                field: field(key),
                name: value.as_str().unwrap_or_default().to_string(),
                owner: owner.name.clone(),
            });
        } else if key == "dnsPolicy" && value.as_str().is_some_and(|p| p != "ClusterFirst") {
            errors.push(EnvelopeError::ForbiddenPodField {
                object: id.to_string(),
                field: field(key),
                rule: format!("{value} is not ClusterFirst"),
            });
        }
    }
    for volume in pod
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = volume
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for source in volume.as_object().into_iter().flatten().map(|(k, _)| k) {
            if source == "name" {
                continue;
            }
            if !VOLUME_SOURCES.contains(&source.as_str()) {
                errors.push(EnvelopeError::ForbiddenVolume {
                    object: id.to_string(),
                    volume: name.to_string(),
                    uses: source.clone(),
                });
            }
        }
        let projected = volume
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for source in projected.flat_map(|s| s.as_object().into_iter().flatten()) {
            if !PROJECTED_SOURCES.contains(&source.0.as_str()) {
                errors.push(EnvelopeError::ForbiddenVolume {
                    object: id.to_string(),
                    volume: name.to_string(),
                    uses: format!("projected.{}", source.0),
                });
            }
        }
    }
    for list in ["containers", "initContainers"] {
        for container in pod
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            check_container(list, container, id, errors);
        }
    }
}

fn check_container(list: &str, container: &Value, id: &str, errors: &mut Vec<EnvelopeError>) {
    let name = container
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let at = format!("spec.template.spec.{list}[{name}]");
    for key in container.as_object().into_iter().flatten().map(|(k, _)| k) {
        if !CONTAINER_FIELDS.contains(&key.as_str()) {
            errors.push(EnvelopeError::ForbiddenPodField {
                object: id.to_string(),
                field: format!("{at}.{key}"),
                rule: format!(
                    "not among the container fields a renderer may set ({})",
                    CONTAINER_FIELDS.join(", ")
                ),
            });
        }
    }
    for list in ["command", "args"] {
        let items = container
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (i, item) in items.enumerate() {
            if item.as_str().is_some_and(looks_like_a_key) {
                errors.push(EnvelopeError::LiteralKey {
                    object: id.to_string(),
                    field: format!("{at}.{list}[{i}]"),
                });
            }
        }
    }
    for env in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if env
            .get("value")
            .and_then(Value::as_str)
            .is_some_and(looks_like_a_key)
        {
            errors.push(EnvelopeError::LiteralKey {
                object: id.to_string(),
                field: format!(
                    "{at}.env[{}].value",
                    env.get("name").and_then(Value::as_str).unwrap_or_default()
                ),
            });
        }
    }
}

/// A private key (32 bytes as hex, with or without `0x`), a PEM private key or a BIP-39
/// mnemonic, as a whole value or after `--flag=`. Keys reach a pod only through a Secret.
pub fn looks_like_a_key(value: &str) -> bool {
    let value = value.trim();
    let after_flag = value
        .strip_prefix("--")
        .and_then(|flag| flag.split_once('='))
        .map(|(_, v)| v.trim());
    [Some(value), after_flag].into_iter().flatten().any(|v| {
        let hex = v.strip_prefix("0x").unwrap_or(v);
        let raw_key = hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit());
        let pem = v.contains("PRIVATE KEY-----");
        let words: Vec<&str> = v.split_whitespace().collect();
        let mnemonic = matches!(words.len(), 12 | 15 | 18 | 21 | 24)
            && words
                .iter()
                .all(|w| w.len() >= 3 && w.chars().all(|c| c.is_ascii_lowercase()));
        raw_key || pem || mnemonic
    })
}

/// Inside the cluster unless the CR's own spec asked otherwise: the type and the annotations
/// come from `spec.service`, never from the renderer alone.
fn check_service(object: &Value, id: &str, owner: &Owner, errors: &mut Vec<EnvelopeError>) {
    let refuse = |field: &str, value: String, rule: String| EnvelopeError::ForbiddenServiceField {
        object: id.to_string(),
        field: field.to_string(),
        value,
        rule,
    };
    let spec = object.get("spec").cloned().unwrap_or_default();
    let type_ = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let exposed = type_ != "ClusterIP";
    if exposed && type_ != owner.service.type_ {
        errors.push(refuse(
            "spec.type",
            type_.to_string(),
            format!(
                "only ClusterIP, or the type the resource's spec.service.type asks for ({})",
                owner.service.type_
            ),
        ));
    }
    for (key, value) in spec.as_object().into_iter().flatten() {
        let allowed = SERVICE_FIELDS.contains(&key.as_str())
            || (exposed && EXPOSED_SERVICE_FIELDS.contains(&key.as_str()));
        if !allowed {
            errors.push(refuse(
                &format!("spec.{key}"),
                value.to_string(),
                if EXPOSED_SERVICE_FIELDS.contains(&key.as_str()) {
                    "only for a NodePort or LoadBalancer Service the resource's spec.service asks for".into()
                } else {
                    "never set by a renderer (no external IPs, names or fixed load-balancer addresses)".into()
                },
            ));
        }
    }
    let pinned_ip = |ip: &Value| ip.as_str().is_some_and(|ip| !ip.is_empty() && ip != "None");
    if spec.get("clusterIP").is_some_and(pinned_ip) {
        errors.push(refuse(
            "spec.clusterIP",
            spec["clusterIP"].to_string(),
            "unset or \"None\" (headless): a fixed address could be another Service's".into(),
        ));
    }
    if spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .is_some_and(|ips| ips.iter().any(pinned_ip))
    {
        errors.push(refuse(
            "spec.clusterIPs",
            spec["clusterIPs"].to_string(),
            "unset or [\"None\"] (headless)".into(),
        ));
    }
    if !exposed {
        for port in spec
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(node_port) = port.get("nodePort").filter(|p| p.as_i64() != Some(0)) {
                errors.push(refuse(
                    "spec.ports[].nodePort",
                    node_port.to_string(),
                    "only on a NodePort or LoadBalancer Service the resource's spec.service asks for".into(),
                ));
            }
        }
    }
    if let Some(selector) = spec.get("selector") {
        check_labels_select_owner(selector, "spec.selector", id, owner, errors);
    }
    let annotations = object
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten();
    for (key, value) in annotations {
        let asked = owner.service.annotations.get(key).map(String::as_str) == value.as_str();
        if !asked
            && key != super::ANNOTATION_RENDERED_BY
            && !owner.allowed_annotations.contains(key)
        {
            errors.push(EnvelopeError::ForbiddenAnnotation {
                object: id.to_string(),
                field: "metadata.annotations".into(),
                key: key.clone(),
            });
        }
    }
}

/// The labels that identify the CR's pods: `app.kubernetes.io/instance: <cr>` and
/// `app.kubernetes.io/name: <component>`. Names are unique per kind in a namespace and the
/// component is fixed per kind, so together they name exactly one CR.
fn identity(owner: &Owner) -> BTreeMap<&'static str, String> {
    let mut labels = BTreeMap::from([(LABEL_INSTANCE, owner.name.clone())]);
    if let Some(component) = super::component(&owner.kind) {
        labels.insert(LABEL_NAME, component.to_string());
    }
    labels
}

/// A label selector (`matchLabels`, `matchExpressions`) that selects only the CR's pods: its
/// `matchLabels` hold the CR's identity. Expressions can only narrow it further.
fn check_selector(
    selector: Option<&Value>,
    field: &str,
    id: &str,
    owner: &Owner,
    errors: &mut Vec<EnvelopeError>,
) {
    let match_labels = selector
        .and_then(|s| s.get("matchLabels"))
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    check_labels_select_owner(
        &match_labels,
        &format!("{field}.matchLabels"),
        id,
        owner,
        errors,
    );
}

fn check_labels_select_owner(
    labels: &Value,
    field: &str,
    id: &str,
    owner: &Owner,
    errors: &mut Vec<EnvelopeError>,
) {
    for (key, value) in identity(owner) {
        if labels.get(key).and_then(Value::as_str) != Some(value.as_str()) {
            errors.push(EnvelopeError::UnscopedSelector {
                object: id.to_string(),
                field: field.to_string(),
                label: format!("{key}={value}"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_recognised_as_a_whole_value_or_after_a_flag() {
        let key = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        for value in [
            key.to_string(),
            format!("0x{key}"),
            format!("--private-key=0x{key}"),
            "-----BEGIN EC PRIVATE KEY-----".to_string(),
            "test test test test test test test test test test test junk".to_string(),
        ] {
            assert!(looks_like_a_key(&value), "{value}");
        }
        for value in [
            "--l2=http://devnet-sequencer:8551",
            "0x4200000000000000000000000000000000000016",
            &format!("https://prestates.example/0x{key}.json"),
            "--log.format=json",
        ] {
            assert!(!looks_like_a_key(value), "{value}");
        }
    }

    #[test]
    fn a_name_is_the_owner_or_starts_with_the_owner_and_a_dash() {
        assert!(within_prefix("node", "node"));
        assert!(within_prefix("node-p2p", "node"));
        assert!(!within_prefix("nodes", "node"));
        assert!(!within_prefix("other", "node"));
    }
}
