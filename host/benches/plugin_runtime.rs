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

criterion_group!(benches, load, render);
criterion_main!(benches);
