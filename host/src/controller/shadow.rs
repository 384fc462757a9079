//! The shadow render's diff: what a new renderer would change, object by object, before any of
//! it is applied. Pure: the caller renders with the old and the new plugin (or, when the old
//! one is not loaded in this process, reads the live children) and reports the result.

use std::collections::BTreeMap;

use serde_json::Value;

use super::apply::ANNOTATION_APPLIED_HASH;
use crate::envelope::ANNOTATION_RENDERED_BY;

/// Field paths listed per changed object; the rest are counted.
const PATHS_PER_OBJECT: usize = 6;

/// What a renderer change does to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
    /// The fields that differ, as `spec.template.spec.containers[op-node].image`.
    Changed(Vec<String>),
}

/// One object's change, as `Kind/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChange {
    pub object: String,
    pub change: Change,
}

/// How to compare a new object with an old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// The old renderer's own output: every field counts, both ways.
    Rendered,
    /// Live objects: fields only on the live side are the apiserver's defaults and status, so
    /// only the new object's fields are compared.
    Live,
}

/// The object-level diff from `old` to `new` (both sealed objects, or live ones for
/// [`Baseline::Live`]). Provenance and applied-hash annotations are left out: they change with
/// every renderer by design.
pub fn diff(old: &[Value], new: &[Value], baseline: Baseline) -> Vec<ObjectChange> {
    let old: BTreeMap<String, &Value> = old.iter().map(|o| (object_id(o), o)).collect();
    let new: BTreeMap<String, &Value> = new.iter().map(|o| (object_id(o), o)).collect();
    let mut changes = Vec::new();
    for (id, object) in &new {
        match old.get(id) {
            None => changes.push(ObjectChange {
                object: id.clone(),
                change: Change::Added,
            }),
            Some(before) => {
                let mut paths = Vec::new();
                compare(
                    &comparable(before),
                    &comparable(object),
                    "",
                    baseline,
                    &mut paths,
                );
                if !paths.is_empty() {
                    changes.push(ObjectChange {
                        object: id.clone(),
                        change: Change::Changed(paths),
                    });
                }
            }
        }
    }
    for id in old.keys().filter(|id| !new.contains_key(*id)) {
        changes.push(ObjectChange {
            object: id.clone(),
            change: Change::Removed,
        });
    }
    changes
}

/// `Kind/name`.
pub fn object_id(object: &Value) -> String {
    format!(
        "{}/{}",
        object.get("kind").and_then(Value::as_str).unwrap_or("?"),
        object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
    )
}

/// One line per object, for an Event note or a condition message.
pub fn summary(changes: &[ObjectChange]) -> String {
    if changes.is_empty() {
        return "no object changes".to_string();
    }
    changes
        .iter()
        .map(|c| match &c.change {
            Change::Added => format!("{}: added", c.object),
            Change::Removed => format!("{}: removed", c.object),
            Change::Changed(paths) => {
                let shown: Vec<&str> = paths
                    .iter()
                    .take(PATHS_PER_OBJECT)
                    .map(String::as_str)
                    .collect();
                let more = paths.len().saturating_sub(PATHS_PER_OBJECT);
                let tail = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!("{}: changed {}{tail}", c.object, shown.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The object without what differs between renders by design.
fn comparable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(ANNOTATION_RENDERED_BY);
        annotations.remove(ANNOTATION_APPLIED_HASH);
    }
    object
}

fn compare(old: &Value, new: &Value, path: &str, baseline: Baseline, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (key, value) in n {
                let here = join(path, key);
                match o.get(key) {
                    Some(before) => compare(before, value, &here, baseline, out),
                    None if is_empty(value) => {}
                    None => out.push(here),
                }
            }
            if baseline == Baseline::Rendered {
                for (key, value) in o {
                    if !n.contains_key(key) && !is_empty(value) {
                        out.push(join(path, key));
                    }
                }
            }
        }
        (Value::Array(o), Value::Array(n)) => match (names(o), names(n)) {
            // Lists of named things (containers, ports, volumes) are compared by name, so
            // adding a sidecar reads as one added container, not as every index shifting.
            (Some(o_names), Some(n_names)) => {
                for (name, value) in &n_names {
                    let here = format!("{path}[{name}]");
                    match o_names.get(name) {
                        Some(before) => compare(before, value, &here, baseline, out),
                        None => out.push(here),
                    }
                }
                for name in o_names.keys().filter(|k| !n_names.contains_key(*k)) {
                    out.push(format!("{path}[{name}]"));
                }
            }
            _ if o.len() != n.len() => out.push(path.to_string()),
            _ => {
                for (i, (before, value)) in o.iter().zip(n).enumerate() {
                    compare(before, value, &format!("{path}[{i}]"), baseline, out);
                }
            }
        },
        (Value::Number(o), Value::Number(n)) if o.as_f64() == n.as_f64() => {}
        (o, n) if o == n => {}
        _ => out.push(path.to_string()),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The elements by `name`, when every element has a distinct one.
fn names(items: &[Value]) -> Option<BTreeMap<&str, &Value>> {
    let named: BTreeMap<&str, &Value> = items
        .iter()
        .map(|item| item.get("name").and_then(Value::as_str).map(|n| (n, item)))
        .collect::<Option<_>>()?;
    (named.len() == items.len() && !items.is_empty()).then_some(named)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn statefulset(image: &str, extra_container: bool) -> Value {
        let mut containers = vec![json!({"name": "op-node", "image": image, "args": ["--a"]})];
        if extra_container {
            containers.push(json!({"name": "exporter", "image": "exporter:1"}));
        }
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "seq", "annotations": {ANNOTATION_RENDERED_BY: "op-node@sha256:aa"}},
            "spec": {"template": {"spec": {"containers": containers}}}
        })
    }

    fn service() -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "seq"}, "spec": {"ports": [{"name": "rpc", "port": 9545}]}})
    }

    #[test]
    fn a_changed_image_is_reported_by_container_name_and_provenance_is_not_a_change() {
        let old = [statefulset("op-node:1", false), service()];
        let mut new_set = statefulset("op-node:2", false);
        new_set["metadata"]["annotations"][ANNOTATION_RENDERED_BY] = json!("custom@sha256:bb");
        let changes = diff(&old, &[new_set, service()], Baseline::Rendered);
        assert_eq!(
            changes,
            [ObjectChange {
                object: "StatefulSet/seq".into(),
                change: Change::Changed(vec![
                    "spec.template.spec.containers[op-node].image".into()
                ]),
            }]
        );
    }

    #[test]
    fn added_and_removed_objects_and_containers_are_listed() {
        let old = [statefulset("op-node:1", false), service()];
        let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "seq-pdb"}});
        let changes = diff(
            &old,
            &[statefulset("op-node:1", true), pdb],
            Baseline::Rendered,
        );
        assert_eq!(
            summary(&changes),
            "PodDisruptionBudget/seq-pdb: added; StatefulSet/seq: changed spec.template.spec.containers[exporter]; Service/seq: removed"
        );
    }

    #[test]
    fn against_live_objects_server_defaults_are_not_changes_but_dropped_fields_count_only_when_rendered()
     {
        let mut live = statefulset("op-node:1", false);
        live["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        live["status"] = json!({"replicas": 1});
        assert!(
            diff(
                &[live.clone()],
                &[statefulset("op-node:1", false)],
                Baseline::Live
            )
            .is_empty()
        );
        assert_eq!(
            diff(
                &[live],
                &[statefulset("op-node:1", false)],
                Baseline::Rendered
            )
            .len(),
            1
        );
    }

    #[test]
    fn the_summary_caps_paths_per_object() {
        let old = json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}});
        let data: serde_json::Map<String, Value> =
            (0..9).map(|i| (format!("k{i}"), json!("v"))).collect();
        let new = json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
        let text = summary(&diff(&[old], &[new], Baseline::Rendered));
        assert!(text.ends_with("data.k5 and 3 more"), "{text}");
    }
}
