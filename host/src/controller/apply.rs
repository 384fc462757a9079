//! Applying sealed children: server-side apply with one field manager, skipped when the live
//! object already matches, and pruning of children the CR no longer renders.

use std::collections::BTreeSet;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ControllerError;
use super::WriteCounter;
use crate::envelope::{self, LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGER};

/// Hash of what the operator last applied to a child. Together with the field-by-field
/// comparison it notices a field the renderer stopped setting, which a comparison of only the
/// fields we set cannot.
pub const ANNOTATION_APPLIED_HASH: &str = "optimism.io/applied-hash";

/// What applying one child did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Created,
    Updated,
}

/// `apiVersion` and `kind` of an object, as in the envelope's allow-list (`apps/v1/StatefulSet`).
pub fn type_of(object: &Value) -> String {
    format!(
        "{}/{}",
        object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
}

fn api_resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

fn dynamic_api(
    client: &Client,
    namespace: &str,
    api_version: &str,
    kind: &str,
) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &api_resource(api_version, kind))
}

/// Stamps the applied-hash annotation on a sealed object.
pub fn with_hash(mut object: Value) -> Value {
    let digest = hex(&Sha256::digest(
        serde_json::to_vec(&object).expect("JSON values serialise"),
    ));
    object["metadata"]["annotations"][ANNOTATION_APPLIED_HASH] = Value::String(digest);
    object
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether every field of `desired` is in `live` with the same value. Fields only in `live`
/// (defaults, other managers' fields, status) do not count; lists must match element by
/// element. An empty map, list or null in `desired` matches an absent field: the apiserver
/// drops them, as it drops `omitempty` zero values.
pub fn is_subset(desired: &Value, live: Option<&Value>) -> bool {
    match (desired, live) {
        (Value::Null, None) => true,
        (Value::Object(d), None) if d.is_empty() => true,
        (Value::Array(d), None) if d.is_empty() => true,
        // Go's `omitempty` drops false, 0 and "" of non-pointer fields (e.g. volumeMounts'
        // readOnly): absent on the live object means exactly that value.
        (Value::Bool(false), None) => true,
        (Value::Number(n), None) if n.as_f64() == Some(0.0) => true,
        (Value::String(s), None) if s.is_empty() => true,
        (_, None) => false,
        (Value::Object(d), Some(Value::Object(l))) => {
            d.iter().all(|(key, value)| is_subset(value, l.get(key)))
        }
        (Value::Array(d), Some(Value::Array(l))) => {
            d.len() == l.len() && d.iter().zip(l).all(|(d, l)| is_subset(d, Some(l)))
        }
        (Value::Number(d), Some(Value::Number(l))) => d.as_f64() == l.as_f64(),
        (d, Some(l)) => d == l,
    }
}

/// The first field where `live` differs from `desired` (as for [`is_subset`]), for the log
/// line that says why a child was written.
pub fn first_difference(desired: &Value, live: Option<&Value>, path: &str) -> Option<String> {
    match (desired, live) {
        (Value::Object(d), Some(Value::Object(l))) => d
            .iter()
            .find_map(|(key, value)| first_difference(value, l.get(key), &format!("{path}.{key}"))),
        (Value::Array(d), Some(Value::Array(l))) if d.len() == l.len() => d
            .iter()
            .zip(l)
            .enumerate()
            .find_map(|(i, (d, l))| first_difference(d, Some(l), &format!("{path}[{i}]"))),
        _ if is_subset(desired, live) => None,
        _ => Some(path.to_string()),
    }
}

/// Applies `desired` (sealed, hashed) unless the live object already matches. Returns what was
/// done and the live object.
pub async fn apply(
    client: &Client,
    namespace: &str,
    desired: &Value,
    writes: &WriteCounter,
) -> Result<(Outcome, Value), ControllerError> {
    let api_version = desired
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = desired
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = desired
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let api = dynamic_api(client, namespace, api_version, kind);
    let live = api.get_opt(name).await?;
    let live = live.map(serde_json::to_value).transpose()?;
    if let Some(live) = &live
        && is_subset(desired, Some(live))
    {
        return Ok((Outcome::Unchanged, live.clone()));
    }
    if let Some(live) = &live {
        tracing::debug!(%kind, %name, field = ?first_difference(desired, Some(live), ""), "live object differs");
    }
    writes.count()?;
    let applied = api
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(desired),
        )
        .await?;
    let outcome = if live.is_some() {
        Outcome::Updated
    } else {
        Outcome::Created
    };
    Ok((outcome, serde_json::to_value(applied)?))
}

/// Whose a live object of a rendered name is, as far as this CR is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Controlled by this CR: apply over it.
    Owned,
    /// Made by this operator for this CR (its labels say so) and without any controller: its
    /// reference was lost (the CR was deleted with `--cascade=orphan` and created again). Apply
    /// adopts it by setting the reference.
    Adoptable,
    /// Someone else's: never written, never pruned. The text says whose.
    Foreign(String),
}

/// The adoption rule, pure: `live` is an object of a name this CR (`owner_kind`, `instance`,
/// `uid`) rendered.
pub fn ownership(live: &Value, owner_kind: &str, instance: &str, uid: &str) -> Ownership {
    let references = live
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let controller = references
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true));
    if let Some(controller) = controller {
        let text = |field: &str| {
            controller
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        return if text("uid") == uid {
            Ownership::Owned
        } else if text("kind") == owner_kind && text("name") == instance {
            // A deleted CR of the same name: the garbage collector removes it soon.
            Ownership::Foreign(format!(
                "left by a deleted {owner_kind}/{instance} (uid {}) until the garbage collector removes it",
                text("uid")
            ))
        } else {
            Ownership::Foreign(format!("controlled by {}/{}", text("kind"), text("name")))
        };
    }
    let label = |key: &str| {
        live.pointer("/metadata/labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    };
    let made_for_this = label(LABEL_MANAGED_BY) == Some(MANAGER)
        && label(LABEL_INSTANCE) == Some(instance)
        && label(envelope::LABEL_NAME) == envelope::component(owner_kind);
    if made_for_this {
        Ownership::Adoptable
    } else {
        Ownership::Foreign("not made by this operator for this resource".into())
    }
}

/// The rendered objects that already exist under someone else's ownership, as
/// `Kind/name (whose)`. Objects in `owned` (this CR's live children) are not looked up again.
pub async fn foreign_objects(
    client: &Client,
    namespace: &str,
    sealed: &[Value],
    owned: &[Value],
    owner_kind: &str,
    instance: &str,
    uid: &str,
) -> Result<Vec<String>, ControllerError> {
    let owned: BTreeSet<String> = owned
        .iter()
        .map(|o| format!("{}/{}", type_of(o), name_of(o)))
        .collect();
    let mut foreign = Vec::new();
    for object in sealed {
        if owned.contains(&format!("{}/{}", type_of(object), name_of(object))) {
            continue;
        }
        let (api_version, kind) = key_parts(object);
        let live = dynamic_api(client, namespace, &api_version, &kind)
            .get_opt(name_of(object))
            .await?;
        if let Some(live) = live {
            let live = serde_json::to_value(live)?;
            if let Ownership::Foreign(whose) = ownership(&live, owner_kind, instance, uid) {
                foreign.push(format!("{kind}/{} ({whose})", name_of(object)));
            }
        }
    }
    Ok(foreign)
}

/// Deletes the children in `live` (from [`owned_children`] before the apply) whose
/// `apiVersion/kind/name` is not in `keep`.
pub async fn prune(
    client: &Client,
    namespace: &str,
    live: &[Value],
    keep: &BTreeSet<String>,
    writes: &WriteCounter,
) -> Result<Vec<String>, ControllerError> {
    let mut pruned = Vec::new();
    for child in live {
        let key = format!("{}/{}", type_of(child), name_of(child));
        if !keep.contains(&key) {
            let (api_version, kind) = key_parts(child);
            writes.count()?;
            dynamic_api(client, namespace, &api_version, &kind)
                .delete(name_of(child), &DeleteParams::background())
                .await?;
            pruned.push(format!("{kind}/{}", name_of(child)));
        }
    }
    Ok(pruned)
}

/// The live children the CR `uid` owns, of every kind its renderer may produce (PVCs and
/// Secrets aside: the host owns those, never a renderer).
pub async fn owned_children(
    client: &Client,
    namespace: &str,
    owner_kind: &str,
    instance: &str,
    uid: &str,
) -> Result<Vec<Value>, ControllerError> {
    let selector = format!("{LABEL_MANAGED_BY}={MANAGER},{LABEL_INSTANCE}={instance}");
    let mut children = Vec::new();
    for allowed in envelope::allowed_kinds(owner_kind) {
        let (api_version, kind) = allowed
            .rsplit_once('/')
            .expect("allow-list entries are apiVersion/kind");
        if kind == "PersistentVolumeClaim" || kind == "Secret" {
            continue;
        }
        let api = dynamic_api(client, namespace, api_version, kind);
        for object in api.list(&ListParams::default().labels(&selector)).await? {
            if object.owner_references().iter().any(|r| r.uid == uid) {
                let mut value = serde_json::to_value(&object)?;
                // A list's items carry no apiVersion/kind of their own; the allow-list entry does.
                value["apiVersion"] = Value::String(api_version.to_string());
                value["kind"] = Value::String(kind.to_string());
                children.push(value);
            }
        }
    }
    Ok(children)
}

fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn key_parts(object: &Value) -> (String, String) {
    let text = |field: &str| {
        object
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (text("apiVersion"), text("kind"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live_with(references: Value, labels: Value) -> Value {
        json!({"metadata": {"name": "seq", "ownerReferences": references, "labels": labels}})
    }

    #[test]
    fn an_object_controlled_by_this_cr_is_owned() {
        let live = live_with(
            json!([{"kind": "OpNode", "name": "seq", "uid": "u1", "controller": true}]),
            json!({}),
        );
        assert_eq!(ownership(&live, "OpNode", "seq", "u1"), Ownership::Owned);
    }

    #[test]
    fn an_object_controlled_by_another_cr_is_foreign_whatever_its_labels() {
        let live = live_with(
            json!([{"kind": "OpNode", "name": "other", "uid": "u2", "controller": true}]),
            json!({LABEL_MANAGED_BY: MANAGER, LABEL_INSTANCE: "seq", envelope::LABEL_NAME: "op-node"}),
        );
        assert_eq!(
            ownership(&live, "OpNode", "seq", "u1"),
            Ownership::Foreign("controlled by OpNode/other".into())
        );
    }

    #[test]
    fn a_child_of_a_deleted_cr_of_the_same_name_is_foreign_until_collected() {
        let live = live_with(
            json!([{"kind": "OpNode", "name": "seq", "uid": "old", "controller": true}]),
            json!({}),
        );
        let Ownership::Foreign(whose) = ownership(&live, "OpNode", "seq", "new") else {
            panic!("a deleted CR's child was taken over");
        };
        assert!(whose.contains("deleted OpNode/seq (uid old)"), "{whose}");
    }

    #[test]
    fn an_orphan_made_for_this_cr_is_adopted_and_any_other_orphan_is_foreign() {
        let ours = json!({LABEL_MANAGED_BY: MANAGER, LABEL_INSTANCE: "seq", envelope::LABEL_NAME: "op-node"});
        assert_eq!(
            ownership(&live_with(json!([]), ours.clone()), "OpNode", "seq", "u1"),
            Ownership::Adoptable
        );
        // The same labels made for an OpBatcher of that name, an admin's object, or one with a
        // non-controller reference only: never taken over.
        assert!(matches!(
            ownership(
                &live_with(json!([]), ours.clone()),
                "OpBatcher",
                "seq",
                "u1"
            ),
            Ownership::Foreign(_)
        ));
        assert!(matches!(
            ownership(
                &live_with(json!([]), json!({"team": "infra"})),
                "OpNode",
                "seq",
                "u1"
            ),
            Ownership::Foreign(_)
        ));
    }

    #[test]
    fn defaults_on_the_live_object_do_not_count_as_a_change() {
        let desired = json!({"spec": {"replicas": 1, "template": {"containers": [{"name": "a"}]}, "empty": {}}});
        let live = json!({"spec": {"replicas": 1, "revisionHistoryLimit": 10,
            "template": {"containers": [{"name": "a", "imagePullPolicy": "Always"}]}}});
        assert!(is_subset(&desired, Some(&live)));
    }

    #[test]
    fn an_edited_or_missing_field_counts_as_a_change() {
        let desired = json!({"spec": {"replicas": 1, "ports": [{"port": 1}, {"port": 2}]}});
        let edited = json!({"spec": {"replicas": 2, "ports": [{"port": 1}, {"port": 2}]}});
        let shorter = json!({"spec": {"replicas": 1, "ports": [{"port": 1}]}});
        assert!(!is_subset(&desired, Some(&edited)));
        assert!(!is_subset(&desired, Some(&shorter)));
    }

    #[test]
    fn the_hash_changes_with_the_object() {
        let a = with_hash(json!({"metadata": {"name": "a"}, "data": {"k": "1"}}));
        let b = with_hash(json!({"metadata": {"name": "a"}, "data": {"k": "2"}}));
        assert_ne!(
            a["metadata"]["annotations"][ANNOTATION_APPLIED_HASH],
            b["metadata"]["annotations"][ANNOTATION_APPLIED_HASH]
        );
    }
}
