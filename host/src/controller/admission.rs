//! Admission as the second wall: workloads run only in namespaces where the API server itself
//! enforces Pod Security "restricted".
//!
//! The envelope checks every pod template against the restricted profile, but a check in the
//! operator is one wall; the API server's Pod Security admission is a second, independent one,
//! and it also covers pods nothing of ours rendered. The operator does not label namespaces
//! itself: that takes `patch` on every Namespace in the cluster, a right it should not hold.
//! It refuses instead, and says which command fixes it (`docs/security.md`, "Admission").

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client};

use super::ControllerError;

/// The label Pod Security admission enforces, and the value the operator requires.
pub const LABEL_ENFORCE: &str = "pod-security.kubernetes.io/enforce";
pub const LABEL_ENFORCE_VERSION: &str = "pod-security.kubernetes.io/enforce-version";
pub const RESTRICTED: &str = "restricted";

/// The oldest Kubernetes minor whose "restricted" profile is the one the envelope checks
/// (seccomp and capabilities controls became part of it in v1.25, with Pod Security GA).
const OLDEST_MINOR: u32 = 25;

/// Why a namespace does not admit the operator's workloads. The variant names are the
/// conditions' reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamespaceError {
    #[error(
        "namespace {namespace:?} does not enforce Pod Security \"restricted\" ({found}); the operator runs workloads only where the API server enforces it. Fix: kubectl label namespace {namespace} {LABEL_ENFORCE}=restricted {LABEL_ENFORCE_VERSION}=latest --overwrite"
    )]
    NamespaceNotRestricted { namespace: String, found: String },
    #[error(
        "namespace {namespace:?} enforces Pod Security \"restricted\" at version {version:?}, older than v1.{OLDEST_MINOR} or not a version; the operator needs v1.{OLDEST_MINOR} or later. Fix: kubectl label namespace {namespace} {LABEL_ENFORCE_VERSION}=latest --overwrite"
    )]
    NamespaceEnforcesAnOldProfile { namespace: String, version: String },
}

/// Every reason [`NamespaceError`] gives.
pub const REASONS: &[&str] = &["NamespaceNotRestricted", "NamespaceEnforcesAnOldProfile"];

impl NamespaceError {
    pub fn reason(&self) -> &'static str {
        match self {
            NamespaceError::NamespaceNotRestricted { .. } => "NamespaceNotRestricted",
            NamespaceError::NamespaceEnforcesAnOldProfile { .. } => "NamespaceEnforcesAnOldProfile",
        }
    }
}

/// Whether a namespace with these labels enforces the restricted profile the envelope checks.
pub fn check_labels(
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), NamespaceError> {
    match labels.get(LABEL_ENFORCE).map(String::as_str) {
        Some(RESTRICTED) => {}
        other => {
            return Err(NamespaceError::NamespaceNotRestricted {
                namespace: namespace.to_string(),
                found: match other {
                    Some(level) => format!("{LABEL_ENFORCE}={level}"),
                    None => format!("no {LABEL_ENFORCE} label"),
                },
            });
        }
    }
    // Absent means "latest" (Pod Security admission's default).
    match labels.get(LABEL_ENFORCE_VERSION).map(String::as_str) {
        None | Some("latest") => Ok(()),
        Some(version) if minor_of(version).is_some_and(|minor| minor >= OLDEST_MINOR) => Ok(()),
        Some(version) => Err(NamespaceError::NamespaceEnforcesAnOldProfile {
            namespace: namespace.to_string(),
            version: version.to_string(),
        }),
    }
}

/// `v1.N` → N.
fn minor_of(version: &str) -> Option<u32> {
    version.strip_prefix("v1.")?.parse().ok()
}

/// Reads the namespace and checks its labels. A Role in the namespace that grants `get` on
/// `namespaces` is enough: the API server authorizes a Namespace's own GET within it.
pub async fn check_namespace(
    client: &Client,
    namespace: &str,
) -> Result<Result<(), NamespaceError>, ControllerError> {
    let object = Api::<Namespace>::all(client.clone()).get(namespace).await?;
    Ok(check_labels(
        namespace,
        &object.metadata.labels.unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_a_namespace_enforcing_restricted_admits_workloads() {
        assert_eq!(
            check_labels("chain", &labels(&[(LABEL_ENFORCE, RESTRICTED)])),
            Ok(())
        );
        for (given, found) in [
            (labels(&[]), "no pod-security.kubernetes.io/enforce label"),
            (
                labels(&[(LABEL_ENFORCE, "baseline")]),
                "pod-security.kubernetes.io/enforce=baseline",
            ),
            (
                labels(&[("pod-security.kubernetes.io/warn", RESTRICTED)]),
                "no pod-security.kubernetes.io/enforce label",
            ),
        ] {
            let error = check_labels("chain", &given).unwrap_err();
            assert_eq!(error.reason(), "NamespaceNotRestricted");
            let message = error.to_string();
            assert!(message.contains(found), "{message}");
            assert!(
                message.contains(
                    "kubectl label namespace chain pod-security.kubernetes.io/enforce=restricted"
                ),
                "{message}"
            );
        }
    }

    #[test]
    fn the_enforced_profile_must_be_latest_or_v1_25_and_later() {
        for version in ["latest", "v1.25", "v1.36"] {
            let given = labels(&[
                (LABEL_ENFORCE, RESTRICTED),
                (LABEL_ENFORCE_VERSION, version),
            ]);
            assert_eq!(check_labels("chain", &given), Ok(()), "{version}");
        }
        for version in ["v1.24", "1.30", "newest"] {
            let given = labels(&[
                (LABEL_ENFORCE, RESTRICTED),
                (LABEL_ENFORCE_VERSION, version),
            ]);
            let error = check_labels("chain", &given).unwrap_err();
            assert_eq!(error.reason(), "NamespaceEnforcesAnOldProfile", "{version}");
            assert!(error.to_string().contains(version));
        }
    }
}
