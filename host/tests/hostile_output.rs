//! Renderers whose render succeeds but whose output breaks the envelope: each is refused with
//! the envelope rule it breaks, and nothing of its output survives. The plugins are the hostile
//! builds of `tests/test-plugins/misbehaving` (`plugins/build.sh`), rendered for the devnet
//! sequencer through the same pipeline the controllers and `render` use.

mod common;

use common::*;
use opstack_operator::controller::pipeline::{KindPlugins, PipelineError, Sealed};
use opstack_operator::envelope::EnvelopeError;
use opstack_operator::runtime::{Runtime, RuntimeConfig};

fn render_sequencer_with(renderer: &[u8]) -> Result<Sealed, PipelineError> {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let plugin = runtime.load(renderer).expect("the hostile renderers load");
    render_sequencer(&devnet(), &KindPlugins::renderer(plugin))
}

/// Renders with `misbehaving-<feature>` and returns the envelope's errors, after checking that
/// the render was refused as a whole and that every error is the rule `reason` (the hostile
/// objects break nothing else, so any other reason is a gap in the test plugin or the envelope).
fn refused(feature: &str, reason: &str) -> Vec<EnvelopeError> {
    let error = match render_sequencer_with(&misbehaving(feature)) {
        Ok(sealed) => panic!(
            "{feature}: rendered {} objects instead of being refused: {:?}",
            sealed.objects.len(),
            sealed.objects
        ),
        Err(error) => error,
    };
    assert_eq!(error.reason(), "OutputRefused", "{feature}: {error}");
    let PipelineError::Envelope(errors) = error else {
        unreachable!("OutputRefused is the envelope's reason")
    };
    assert!(!errors.is_empty(), "{feature}: refused without a reason");
    for e in &errors {
        assert_eq!(e.reason(), reason, "{feature}: {e}");
    }
    errors
}

#[test]
fn the_devnet_sequencer_renders_with_the_bundled_renderer() {
    // The control for every refusal below: the same resource, network and pipeline are fine.
    let sealed = render_sequencer_with(&plugin_bytes("plugin_op_node")).unwrap();
    assert!(
        sealed.objects.iter().any(|o| o["kind"] == "StatefulSet"),
        "{:?}",
        sealed.objects
    );
}

#[test]
fn a_plugin_rendering_a_cluster_role_binding_is_refused_as_forbidden_kind() {
    let errors = refused("forbidden-kind", "ForbiddenKind");
    assert_eq!(
        errors,
        [EnvelopeError::ForbiddenKind {
            object: "ClusterRoleBinding/misbehaving-cluster-admin".into(),
            kind: "rbac.authorization.k8s.io/v1/ClusterRoleBinding".into(),
            owner_kind: "OpNode".into(),
            allowed: opstack_operator::envelope::allowed_kinds("OpNode").join(", "),
        }]
    );
}

#[test]
fn a_plugin_writing_into_kube_system_is_refused_as_foreign_namespace() {
    let errors = refused("foreign-namespace", "ForeignNamespace");
    assert_eq!(
        errors,
        [EnvelopeError::ForeignNamespace {
            object: "ConfigMap/misbehaving-coredns".into(),
            namespace: "kube-system".into(),
            expected: "default".into(),
        }]
    );
}

#[test]
fn a_plugin_rendering_a_privileged_host_pod_is_refused_for_pod_security() {
    // A StatefulSet is an allowed kind for an OpNode: the refusal must come from its pod.
    assert!(opstack_operator::envelope::allowed_kinds("OpNode").contains(&"apps/v1/StatefulSet"));
    let errors = refused("privileged-pod", "PodSecurity");
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for control in [
        "control 1 (Host namespaces): hostNetwork",
        "control 2 (Privileged)",
        "control 4 (HostPath volumes): volumes[host].hostPath",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(control)),
            "no {control:?} in {messages:#?}"
        );
    }
}

#[test]
fn a_plugin_mounting_another_chains_secret_is_refused_as_forbidden_secret_reference() {
    let errors = refused("foreign-secret", "ForbiddenSecretReference");
    assert_eq!(
        errors,
        [EnvelopeError::ForbiddenSecretReference {
            object: "StatefulSet/misbehaving".into(),
            field: "volumes[key].secret".into(),
            secret: "other-chain-batcher-key".into(),
        }]
    );
}
