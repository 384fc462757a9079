//! A policy that allows container images only from one registry, and forbids op-node p2p
//! discovery on sequencers: the shape of a chain's own policy plugin.

use opstack_plugin_sdk::serde_json::{self, Value};
use opstack_plugin_sdk::{
    CheckInput, CheckOutput, PluginError, PluginInfo, Policy, Violation, export_policy,
};

/// Images must start with this.
pub const ALLOWED_REGISTRY: &str = "us-docker.pkg.dev/oplabs-tools-artifacts/";

/// An annotation on the checked resource that makes this policy fail instead of checking:
/// `error` returns an internal error, `loop` spins until the host's deadline. It is how the
/// tests show what a policy's `failurePolicy` does, without a second test plugin.
pub const FAIL_ANNOTATION: &str = "test.optimism.io/policy-fails";

pub struct ImagesFromOurRegistry;

impl Policy for ImagesFromOurRegistry {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "test-images-from-our-registry",
            env!("CARGO_PKG_VERSION"),
            &["OpNode"],
        )
    }

    fn check(input: &CheckInput) -> Result<CheckOutput, PluginError> {
        let resource: Value = serde_json::from_str(&input.input.resource).map_err(|e| {
            PluginError::Internal(format!("host passed a resource that is not JSON: {e}"))
        })?;
        match resource["metadata"]["annotations"][FAIL_ANNOTATION].as_str() {
            Some("error") => {
                return Err(PluginError::Internal(format!(
                    "failing on purpose ({FAIL_ANNOTATION})"
                )));
            }
            Some("loop") => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            _ => {}
        }
        let mut out = CheckOutput::default();
        for text in &input.objects {
            let object: Value = serde_json::from_str(text).map_err(|e| {
                PluginError::Internal(format!("host passed an object that is not JSON: {e}"))
            })?;
            let id = format!(
                "{}/{}",
                object["kind"].as_str().unwrap_or("?"),
                object["metadata"]["name"].as_str().unwrap_or("?")
            );
            let containers = object
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array);
            for container in containers.into_iter().flatten() {
                let image = container["image"].as_str().unwrap_or_default();
                if !image.starts_with(ALLOWED_REGISTRY) {
                    out.violations.push(Violation {
                        object: id.clone(),
                        rule: "images-from-our-registry".into(),
                        message: format!(
                            "container {} uses image {image}",
                            container["name"].as_str().unwrap_or("?")
                        ),
                    });
                }
            }
        }
        Ok(out)
    }
}

export_policy!(ImagesFromOurRegistry);
