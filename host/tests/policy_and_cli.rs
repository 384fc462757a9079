//! The policy world end to end, and `opstack-operator plugin inspect` on good and bad files.
//! Needs the guests built by `plugins/build.sh`.

mod common;

use std::process::Command;

use common::*;
use opstack_operator::controller::pipeline;
use opstack_operator::runtime::{CheckInput, Role, Runtime, RuntimeConfig};

const POLICY: &str = "test_plugin_policy";

#[test]
fn policy_plugin_reports_violations_of_rendered_objects() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let renderer = runtime.load(&plugin_bytes(GOOD)).unwrap();
    let policy = runtime.load(&plugin_bytes(POLICY)).unwrap();
    assert_eq!(policy.info().role, Role::Policy);

    let input = fixture_input();
    let rendered = renderer.render(&input).unwrap();
    let objects = rendered.objects.iter().map(|o| o.to_string()).collect();
    let out = policy.check(&CheckInput { input, objects }).unwrap();
    // op-node comes from the allowed registry, op-reth (ghcr.io) does not.
    assert_eq!(out.violations.len(), 1, "{:?}", out.violations);
    assert_eq!(out.violations[0].object, "StatefulSet/op-sepolia-replica-0");
    assert!(out.violations[0].message.contains("op-reth"));
}

#[test]
fn a_policy_cannot_be_called_as_a_renderer() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let policy = runtime.load(&plugin_bytes(POLICY)).unwrap();
    assert_eq!(
        policy.render(&fixture_input()).unwrap_err().reason(),
        "WrongRole"
    );
}

fn inspect(path: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_opstack-operator"))
        .args(["plugin", "inspect"])
        .arg(path)
        .output()
        .expect("the binary runs")
}

#[test]
fn plugin_inspect_prints_identity_digest_size_and_imports() {
    let path = plugin_dir().join(format!("{GOOD}.wasm"));
    let bytes = plugin_bytes(GOOD);
    let out = inspect(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "name:             test-minimal-op-node".to_owned(),
        "role:             renderer".to_owned(),
        "kinds:            OpNode".to_owned(),
        "contract version: 0.1.0".to_owned(),
        format!(
            "sha256:           {}",
            opstack_operator::runtime::sha256_hex(&bytes)
        ),
        format!("size:             {} bytes", bytes.len()),
        "  wasi:cli/".to_owned(),
    ] {
        assert!(
            stdout.contains(&expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn plugin_inspect_fails_with_a_reason_for_files_that_are_not_plugins() {
    let garbage = std::env::temp_dir().join(format!("not-a-plugin-{}.wasm", std::process::id()));
    std::fs::write(&garbage, b"definitely not wasm").unwrap();
    let cases = [
        (garbage.clone(), "not a WebAssembly binary"),
        (
            plugin_dir().join("misbehaving-forbidden-import.wasm"),
            "wasi:filesystem/",
        ),
        (
            plugin_dir().join("misbehaving-wrong-major.wasm"),
            "contract 1.0.0",
        ),
        (plugin_dir().join("no-such-file.wasm"), "cannot read"),
    ];
    for (path, reason) in cases {
        let out = inspect(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} was accepted", path.display());
        assert!(
            stderr.contains("is not a plugin the operator can run") && stderr.contains(reason),
            "{stderr}"
        );
    }
    std::fs::remove_file(garbage).unwrap();
}

/// Renders the devnet sequencer with the bundled renderer and the test policy, which the CR's
/// annotation makes fail (`error`, `loop`) or not (`None`).
fn sequencer_with_policy(
    fails: Option<&str>,
    failure_policy: opstack_crds::FailurePolicy,
) -> Result<pipeline::Sealed, pipeline::PipelineError> {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let renderer = runtime
        .load(opstack_operator::bundled::renderer("OpNode").unwrap())
        .unwrap();
    let policy = runtime.load(&plugin_bytes(POLICY)).unwrap();
    let mut devnet = devnet();
    if let Some(how) = fails {
        devnet.sequencer["metadata"]["annotations"]["test.optimism.io/policy-fails"] = how.into();
    }
    let plugins = pipeline::KindPlugins {
        policies: vec![pipeline::PolicyPlugin {
            plugin: policy,
            failure_policy,
        }],
        ..pipeline::KindPlugins::renderer(renderer)
    };
    render_sequencer(&devnet, &plugins)
}

#[test]
fn a_failing_policy_blocks_the_render_by_default() {
    use opstack_crds::FailurePolicy;
    for (how, cause) in [("error", "PluginInternalError"), ("loop", "PluginTimeout")] {
        let error = sequencer_with_policy(Some(how), FailurePolicy::default()).unwrap_err();
        assert_eq!(error.reason(), "PolicyFailed", "{how}: {error}");
        let pipeline::PipelineError::PolicyFailed { policy, source } = &error else {
            unreachable!()
        };
        assert!(
            policy.starts_with("test-images-from-our-registry@sha256:"),
            "{policy}"
        );
        assert_eq!(source.reason(), cause, "{how}: {error}");
    }
}

#[test]
fn a_failing_policy_marked_ignore_lets_the_render_through_with_a_warning() {
    use opstack_crds::FailurePolicy;
    let complying = sequencer_with_policy(None, FailurePolicy::Ignore).unwrap();
    let sealed = sequencer_with_policy(Some("error"), FailurePolicy::Ignore).unwrap();
    assert_eq!(sealed.objects, complying.objects);
    let warning = sealed
        .warnings
        .iter()
        .find(|w| w.contains("failurePolicy: Ignore"))
        .unwrap_or_else(|| {
            panic!(
                "no warning about the ignored failure: {:?}",
                sealed.warnings
            )
        });
    assert!(
        warning.contains("PluginInternalError") || warning.contains("failing on purpose"),
        "{warning}"
    );
}
