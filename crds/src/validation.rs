//! Offline admission: the checks the apiserver runs on a document of one of our kinds, without
//! an apiserver. Schema rules (types, enums, patterns, ranges, required fields) come from the
//! generated OpenAPI schema, CEL rules from its `x-kubernetes-validations`, evaluated after the
//! schema's defaults are applied, as the apiserver does.
//!
//! `render` uses it so bad input fails before any plugin runs, and tests use it to show that
//! each rule rejects what it should. The real apiserver remains the reference: the control-plane
//! tests run the same bad documents against it.

use std::fmt;

use serde_json::Value;

use crate::all_crds;

/// One rejected field, phrased like the apiserver: `spec.nodeType: Unsupported value …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `spec.opNode.p2p.listenPort` or `spec.gameTypes[0]`.
    pub field: String,
    /// What is wrong and, where the rule says it, how to fix it.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a document could not be checked or was rejected.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error(
        "document has no `kind`; every resource needs `apiVersion: optimism.io/v1alpha1` and a `kind`"
    )]
    MissingKind,
    #[error(
        "kind {kind:?} is not served by this operator (known: OptimismNetwork, OpNode, OpBatcher, OpProposer, OpChallenger)"
    )]
    UnknownKind { kind: String },
    #[error("apiVersion {found:?} of {kind} is not served; use optimism.io/v1alpha1")]
    WrongApiVersion { kind: String, found: String },
    #[error("{} rejected:\n{}", .name, .errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        name: String,
        errors: Vec<FieldError>,
    },
}

impl AdmissionError {
    /// The rejected fields, when the document was checked and refused.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            AdmissionError::Invalid { errors, .. } => errors,
            _ => &[],
        }
    }
}

/// Checks one document (any of the five kinds) the way the apiserver would at admission.
pub fn admit(document: &Value) -> Result<(), AdmissionError> {
    let kind = document
        .get("kind")
        .and_then(Value::as_str)
        .ok_or(AdmissionError::MissingKind)?;
    let crd = all_crds()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .ok_or_else(|| AdmissionError::UnknownKind {
            kind: kind.to_string(),
        })?;
    let api_version = document
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if api_version != format!("{}/{}", crate::GROUP, crate::VERSION) {
        return Err(AdmissionError::WrongApiVersion {
            kind: kind.to_string(),
            found: api_version.to_string(),
        });
    }
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .map(|s| serde_json::to_value(s).expect("a CRD schema always serialises"))
        .expect("every derived CRD carries an openAPIV3Schema");

    let defaulted = kube_cel::apply_defaults(&schema, document);
    let mut errors = schema_errors(&schema, &defaulted);
    // CEL rules assume a structurally valid object, as on the apiserver, which skips them
    // when the schema already failed.
    if errors.is_empty()
        && let Err(cel) = kube_cel::Validator::new().validate(&schema, &defaulted, None)
    {
        errors.extend(cel.into_vec().into_iter().map(|e| FieldError {
            field: e.field_path,
            message: e.message,
        }));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        let name = document
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>");
        Err(AdmissionError::Invalid {
            name: format!("{kind} {name}"),
            errors,
        })
    }
}

fn schema_errors(schema: &Value, document: &Value) -> Vec<FieldError> {
    // The apiserver treats `nullable` and `x-kubernetes-*` itself; JSON Schema ignores unknown
    // keywords, and absent optional fields never reach `type` checks, so the schema is usable as is.
    let validator = match jsonschema::validator_for(schema) {
        Ok(v) => v,
        Err(e) => {
            return vec![FieldError {
                field: "<schema>".into(),
                message: e.to_string(),
            }];
        }
    };
    let mut errors: Vec<FieldError> = validator
        .iter_errors(document)
        .map(|e| {
            let field = pointer_to_field_path(&e.instance_path.to_string());
            // The apiserver names the missing field itself, not its parent.
            if let jsonschema::error::ValidationErrorKind::Required { property } = &e.kind {
                let property = property.as_str().unwrap_or_default();
                let field = if field == "<root>" {
                    property.to_string()
                } else {
                    format!("{field}.{property}")
                };
                return FieldError {
                    field,
                    message: "Required value".to_string(),
                };
            }
            FieldError {
                field,
                message: e.to_string(),
            }
        })
        .collect();
    errors.sort_by(|a, b| a.field.cmp(&b.field));
    errors
}

/// `/spec/gameTypes/0` → `spec.gameTypes[0]`, the way the apiserver names fields.
fn pointer_to_field_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.chars().all(|c| c.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&segment);
        }
    }
    if path.is_empty() {
        "<root>".to_string()
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::pointer_to_field_path;

    #[test]
    fn json_pointers_become_apiserver_field_paths() {
        assert_eq!(
            pointer_to_field_path("/spec/gameTypes/0"),
            "spec.gameTypes[0]"
        );
        assert_eq!(
            pointer_to_field_path("/spec/opNode/p2p/listenPort"),
            "spec.opNode.p2p.listenPort"
        );
        assert_eq!(pointer_to_field_path(""), "<root>");
    }
}
