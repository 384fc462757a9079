//! Criterion benchmarks of the plugin runtime. Needs `plugins/build.sh` first.
//! `cargo bench -p opstack-operator --bench plugin_runtime`; figures in BENCHMARKS.md.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use opstack_operator::runtime::{Runtime, RuntimeConfig, check_render_output};
use opstack_plugin_sdk::harness::{built_plugin, to_runtime_input};

fn wasm() -> Vec<u8> {
    std::fs::read(built_plugin("test_plugin_good")).unwrap()
}

fn config(cache_dir: Option<PathBuf>) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir,
        workers: 1,
        ..RuntimeConfig::default()
    }
}

fn load(c: &mut Criterion) {
    let wasm = wasm();
    let mut group = c.benchmark_group("load");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("compile (no cache)", |b| {
        b.iter_batched(
            || Runtime::new(config(None)).unwrap(),
            |rt| black_box(rt.load(&wasm).unwrap()),
            BatchSize::PerIteration,
        )
    });
    let dir = std::env::temp_dir().join(format!("opstack-bench-cache-{}", std::process::id()));
    Runtime::new(config(Some(dir.clone())))
        .unwrap()
        .load(&wasm)
        .unwrap();
    group.bench_function("load from disk cache", |b| {
        b.iter_batched(
            || Runtime::new(config(Some(dir.clone()))).unwrap(),
            |rt| black_box(rt.load(&wasm).unwrap()),
            BatchSize::PerIteration,
        )
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn render(c: &mut Criterion) {
    let runtime = Runtime::new(config(None)).unwrap();
    let plugin = runtime.load(&wasm()).unwrap();
    let sdk_input = test_plugin_good::fixture_input();
    let input = to_runtime_input(&sdk_input);
    let limits = runtime.limits().output.clone();
    let mut group = c.benchmark_group("render OpNode (~5 KB in, 3 objects out)");
    group.bench_function("wasm, fresh sandbox per call, on a worker", |b| {
        b.iter(|| black_box(plugin.render(&input).unwrap()))
    });
    group.bench_function("wasm, fresh sandbox per call, calling thread", |b| {
        b.iter(|| black_box(plugin.render_on_current_thread(&input).unwrap()))
    });
    group.bench_function("native, same render code + same output checks", |b| {
        b.iter(|| {
            let out = test_plugin_good::render(&sdk_input).unwrap();
            black_box(check_render_output(out.objects, out.warnings, &limits).unwrap())
        })
    });
    group.bench_function("native, render code only", |b| {
        b.iter(|| black_box(test_plugin_good::render(&sdk_input).unwrap()))
    });
    group.finish();
}

/// What a reconcile pays to verify a chain's renderer from its ConfigMap when the plugin is
/// already compiled: the digest check (hashing the bytes once per ConfigMap resourceVersion)
/// and the lookup of the loaded plugin. The example renderer is the size of a real one.
fn chain_plugin(c: &mut Criterion) {
    use std::collections::BTreeMap;

    use opstack_operator::controller::chain_plugins::{self, Fetched, PluginRef};
    use opstack_operator::runtime::{Role, sha256_hex};

    let wasm = std::fs::read(built_plugin("example_chain_renderer")).unwrap();
    let runtime = Runtime::new(config(None)).unwrap();
    runtime.load(&wasm).unwrap();
    let reference = PluginRef {
        field: "spec.plugins.opNode.renderer".into(),
        kind: "OpNode",
        role: Role::Renderer,
        config_map: "chain-plugins".into(),
        key: "renderer.wasm".into(),
        sha256: sha256_hex(&wasm),
        failure_policy: opstack_crds::FailurePolicy::Fail,
        require_approval: false,
        approved_sha256: None,
        allowed_annotations: Vec::new(),
    };
    let fetched = || {
        let mut fetched = Fetched::default();
        fetched.insert(
            "chain-plugins",
            BTreeMap::from([("renderer.wasm".to_string(), wasm.clone())]),
        );
        fetched
    };
    let mut group = c.benchmark_group(format!(
        "verify a loaded ConfigMap renderer ({} KB)",
        wasm.len() / 1000
    ));
    let same_version = fetched();
    group.bench_function("same resourceVersion (digest known)", |b| {
        b.iter(|| black_box(chain_plugins::load(&runtime, &reference, &same_version).unwrap()))
    });
    group.bench_function("new resourceVersion (bytes hashed)", |b| {
        b.iter_batched(
            fetched,
            |fetched| black_box(chain_plugins::load(&runtime, &reference, &fetched).unwrap()),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, load, render, chain_plugin);
criterion_main!(benches);
