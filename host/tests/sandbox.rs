//! Each misbehaving plugin ends in its own typed error, within its limit, and the host goes on.
//! Needs the guests built by `plugins/build.sh`.

mod common;

use std::time::Instant;

use common::*;
use opstack_operator::runtime::{Error, Limits, Runtime, RuntimeConfig};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).unwrap()
}

fn render_misbehaving(feature: &str) -> Error {
    let runtime = runtime();
    let plugin = runtime
        .load(&misbehaving(feature))
        .unwrap_or_else(|e| panic!("{feature} refused at load: {e}"));
    let err = plugin
        .render(&fixture_input())
        .expect_err("a misbehaving plugin must not render");
    // The same runtime renders with a good plugin right after.
    let good = runtime.load(&plugin_bytes(GOOD)).unwrap();
    let rendered = good
        .render(&fixture_input())
        .expect("good plugin renders after a bad one");
    assert_eq!(rendered.objects.len(), 3);
    err
}

#[test]
fn endless_loop_is_stopped_within_deadline() {
    let runtime = runtime();
    let plugin = runtime.load(&misbehaving("endless-loop")).unwrap();
    let deadline = runtime.limits().deadline;
    let started = Instant::now();
    let err = plugin.render(&fixture_input()).unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, Error::Timeout { deadline });
    assert!(took >= deadline, "stopped early, after {took:?}");
    // The rule is "stopped, and not much later than the deadline"; the bound leaves room for a
    // loaded CI machine delaying the ticker thread (the actual lateness is a benchmark figure).
    assert!(
        took <= deadline * 2,
        "stopped after {took:?}, deadline {deadline:?}"
    );
}

#[test]
fn endless_loop_with_fuel_is_stopped_by_the_fuel_budget() {
    let limits = Limits {
        fuel: Some(10_000_000),
        ..Limits::default()
    };
    let runtime = Runtime::new(RuntimeConfig {
        limits,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugin = runtime.load(&misbehaving("endless-loop")).unwrap();
    // FuelExhausted, not Timeout: the budget stopped it before the deadline could.
    assert_eq!(
        plugin.render(&fixture_input()).unwrap_err(),
        Error::FuelExhausted { fuel: 10_000_000 }
    );
}

#[test]
fn memory_bomb_is_stopped_at_the_memory_limit() {
    let err = render_misbehaving("memory-bomb");
    assert!(
        matches!(
            &err,
            Error::ResourceLimitExceeded {
                resource: "memory",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn huge_output_is_refused_as_output_too_large() {
    let err = render_misbehaving("huge-output");
    assert_eq!(err.reason(), "OutputTooLarge", "{err:?}");
}

#[test]
fn deep_recursion_is_a_stack_overflow_not_an_abort() {
    assert_eq!(render_misbehaving("deep-recursion"), Error::StackOverflow);
}

#[test]
fn panic_is_a_trap_carrying_the_panic_message() {
    let err = render_misbehaving("panic");
    let Error::Trap { message } = &err else {
        panic!("expected a trap, got {err:?}")
    };
    assert!(
        message.contains("misbehaving plugin panics on purpose for OpNode"),
        "{message}"
    );
}

#[test]
fn invalid_json_is_invalid_output() {
    let err = render_misbehaving("invalid-json");
    assert_eq!(err.reason(), "InvalidOutput", "{err:?}");
}

#[test]
fn forbidden_import_is_refused_at_load() {
    let err = runtime()
        .load(&misbehaving("forbidden-import"))
        .expect_err("must be refused");
    let Error::ForbiddenImport { import } = &err else {
        panic!("expected ForbiddenImport, got {err:?}")
    };
    assert!(import.contains("wasi:filesystem/"), "{import}");
}

#[test]
fn imports_are_refused_before_the_plugin_is_compiled() {
    let cache = std::env::temp_dir().join(format!(
        "opstack-plugin-cache-imports-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&cache);
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.clone()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let err = runtime
        .load(&misbehaving("forbidden-import"))
        .expect_err("must be refused");
    assert_eq!(err.reason(), "ForbiddenImport", "{err:?}");
    // A compile writes its artifact to the cache; a refusal before it leaves none.
    let artifacts: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    assert!(artifacts.is_empty(), "compiled anyway: {artifacts:?}");
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn imports_read_from_the_binary_are_the_ones_the_engine_sees() {
    let wasm = plugin_bytes(GOOD);
    let plugin = runtime().load(&wasm).unwrap();
    assert_eq!(
        opstack_operator::runtime::component_imports(&wasm).unwrap(),
        plugin.imports()
    );
}

#[test]
fn other_contract_major_is_refused_at_load() {
    let err = runtime()
        .load(&misbehaving("wrong-major"))
        .expect_err("must be refused");
    assert_eq!(
        err,
        Error::IncompatibleContract {
            found: "1.0.0".into(),
            expected: "0.1.0".into()
        }
    );
}

#[test]
fn same_input_renders_byte_identical_output_100_times() {
    let runtime = runtime();
    let plugin = runtime.load(&plugin_bytes(GOOD)).unwrap();
    let input = fixture_input();
    let first = plugin.render(&input).unwrap();
    let first_bytes = first.canonical_json();
    let first_raw = serde_json::to_vec(&first.objects).unwrap();
    for i in 1..100 {
        let again = plugin.render(&input).unwrap();
        assert_eq!(again.canonical_json(), first_bytes, "render {i} differs");
        assert_eq!(
            serde_json::to_vec(&again.objects).unwrap(),
            first_raw,
            "render {i} differs before canonicalisation"
        );
    }
}

#[test]
fn good_plugin_reports_what_it_is() {
    let plugin = runtime().load(&plugin_bytes(GOOD)).unwrap();
    assert_eq!(plugin.info().name, "test-minimal-op-node");
    assert_eq!(plugin.info().kinds, ["OpNode"]);
    assert_eq!(plugin.info().contract_version, "0.1.0");
    assert!(plugin.size() < 1 << 20, "{} bytes", plugin.size());
    assert!(
        plugin.imports().iter().all(|i| i.starts_with("wasi:io/")
            || i.starts_with("wasi:cli/")
            || i.starts_with("wasi:random/")
            || i.starts_with("opstack:")),
        "{:?}",
        plugin.imports()
    );
}

#[test]
fn plugin_reported_input_errors_are_values_not_failures_of_the_sandbox() {
    let plugin = runtime().load(&plugin_bytes(GOOD)).unwrap();
    let mut input = fixture_input();
    input.resource = input.resource.replace("\"replica\"", "\"leader\"");
    let err = plugin.render(&input).unwrap_err();
    let Error::Invalid(problems) = &err else {
        panic!("expected Invalid, got {err:?}")
    };
    assert!(problems[0].contains("nodeType"), "{problems:?}");
    assert!(!err.is_plugin_fault());
}

#[test]
fn a_renderer_cannot_be_called_as_a_policy() {
    let plugin = runtime().load(&plugin_bytes(GOOD)).unwrap();
    let input = opstack_operator::runtime::CheckInput {
        input: fixture_input(),
        objects: vec![],
    };
    assert_eq!(plugin.check(&input).unwrap_err().reason(), "WrongRole");
}

#[test]
fn core_modules_garbage_and_oversized_files_are_not_plugins() {
    let runtime = runtime();
    for bytes in [&b"\0asm\x01\x00\x00\x00"[..], b"not wasm at all", b""] {
        assert_eq!(runtime.load(bytes).err().unwrap().reason(), "InvalidModule");
    }
    let mut truncated = plugin_bytes(GOOD);
    truncated.truncate(truncated.len() / 2);
    assert_eq!(
        runtime.load(&truncated).err().unwrap().reason(),
        "InvalidModule"
    );
    let oversized = vec![0u8; (1 << 20) + 1];
    assert_eq!(
        runtime.load(&oversized).err().unwrap().reason(),
        "ModuleTooLarge"
    );
}

#[test]
fn loading_the_same_bytes_twice_compiles_once() {
    let runtime = runtime();
    let bytes = plugin_bytes(GOOD);
    let started = Instant::now();
    let first = runtime.load(&bytes).unwrap();
    let compile = started.elapsed();
    let started = Instant::now();
    let second = runtime.load(&bytes).unwrap();
    let again = started.elapsed();
    assert_eq!(first.sha256(), second.sha256());
    assert!(
        again < compile / 10,
        "second load took {again:?}, first {compile:?}"
    );
}

#[test]
fn precompiled_artifacts_are_cached_on_disk_and_reused() {
    let dir =
        std::env::temp_dir().join(format!("opstack-plugin-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = RuntimeConfig {
        cache_dir: Some(dir.clone()),
        ..RuntimeConfig::default()
    };
    let bytes = plugin_bytes(GOOD);

    let first = Runtime::new(config.clone()).unwrap().load(&bytes).unwrap();
    let artifacts: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let name = artifacts[0].to_string_lossy().into_owned();
    assert!(
        name.starts_with(first.sha256()) && name.ends_with(".cwasm"),
        "{name}"
    );

    // A fresh runtime (a restarted operator) loads from the artifact and renders the same bytes.
    // Had it compiled again, the artifact would have been rewritten (a new file, renamed in).
    let artifact = dir.join(&name);
    let inode = || std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&artifact).unwrap());
    let before = inode();
    let second = Runtime::new(config).unwrap().load(&bytes).unwrap();
    assert_eq!(
        inode(),
        before,
        "the artifact was written again, not loaded"
    );
    let input = fixture_input();
    assert_eq!(
        first.render(&input).unwrap(),
        second.render(&input).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupted_cache_artifact_is_recompiled_not_trusted() {
    let dir = std::env::temp_dir().join(format!(
        "opstack-plugin-cache-corrupt-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let config = RuntimeConfig {
        cache_dir: Some(dir.clone()),
        ..RuntimeConfig::default()
    };
    let bytes = plugin_bytes(GOOD);
    Runtime::new(config.clone()).unwrap().load(&bytes).unwrap();
    let artifact = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&artifact, b"garbage").unwrap();
    let plugin = Runtime::new(config).unwrap().load(&bytes).unwrap();
    assert_eq!(plugin.render(&fixture_input()).unwrap().objects.len(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cache_dir_writable_by_others_is_used_through_a_private_subdirectory_and_never_trusted() {
    // What the kubelet gives the operator's /cache emptyDir: mode 0777, not the pod user's.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = std::env::temp_dir().join(format!(
        "opstack-plugin-cache-shared-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let config = || RuntimeConfig {
        cache_dir: Some(dir.clone()),
        ..RuntimeConfig::default()
    };
    let uid = unsafe { libc::geteuid() };
    let private = dir.join(format!("uid-{uid}"));
    Runtime::new(config())
        .unwrap()
        .load(&plugin_bytes(GOOD))
        .unwrap();
    let artifacts: Vec<_> = std::fs::read_dir(&private)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert_eq!(std::fs::metadata(&private).unwrap().mode() & 0o777, 0o700);
    // An artifact that is not ours, or that others may write, is never loaded: it is compiled
    // again and replaced by our own.
    std::fs::set_permissions(&artifacts[0], std::fs::Permissions::from_mode(0o666)).unwrap();
    Runtime::new(config())
        .unwrap()
        .load(&plugin_bytes(GOOD))
        .unwrap();
    let mode = std::fs::metadata(&artifacts[0]).unwrap().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "the writable artifact was trusted instead of replaced"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_runtime_forgets_its_least_recently_used_plugin_beyond_its_bound_but_never_a_pinned_one() {
    let runtime = Runtime::new(RuntimeConfig {
        max_loaded_plugins: 1,
        workers: 1,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let pinned = runtime.load(&plugin_bytes(GOOD)).unwrap();
    runtime.pin(&pinned);
    let first = runtime.load(&misbehaving("panic")).unwrap();
    let second = runtime.load(&misbehaving("invalid-json")).unwrap();
    assert!(
        runtime.loaded(first.sha256()).is_none(),
        "the bound was not kept"
    );
    assert!(runtime.loaded(second.sha256()).is_some());
    assert!(runtime.loaded(pinned.sha256()).is_some());
    // A forgotten plugin still works where it is held.
    assert_eq!(first.info().name, "misbehaving");
}
