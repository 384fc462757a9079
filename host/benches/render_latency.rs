//! Latency percentiles (criterion reports means): each call timed on its own, 20,000 calls
//! after 2,000 of warm-up. `cargo bench -p opstack-operator --bench render_latency`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use opstack_operator::runtime::{Runtime, RuntimeConfig, check_render_output};
use opstack_plugin_sdk::harness::{built_plugin, to_runtime_input};

const WARMUP: usize = 2_000;
const CALLS: usize = 20_000;

fn percentiles(name: &str, mut f: impl FnMut()) -> Duration {
    for _ in 0..WARMUP {
        f();
    }
    let mut samples: Vec<Duration> = (0..CALLS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort_unstable();
    let at = |p: f64| samples[((CALLS as f64 * p) as usize).min(CALLS - 1)];
    println!(
        "{name:<58} p50 {:>7.1} µs   p90 {:>7.1} µs   p99 {:>7.1} µs   p99.9 {:>7.1} µs",
        at(0.50).as_secs_f64() * 1e6,
        at(0.90).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        at(0.999).as_secs_f64() * 1e6
    );
    at(0.50)
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter this simple runner ignores.
    let wasm = std::fs::read(built_plugin("test_plugin_good")).unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        workers: 1,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugin = runtime.load(&wasm).unwrap();
    let sdk_input = test_plugin_good::fixture_input();
    let input = to_runtime_input(&sdk_input);
    let limits = runtime.limits().output.clone();
    println!(
        "input {} B of JSON (resource {} B + network spec {} B); plugin {} B",
        input.resource.len() + input.network.spec.len(),
        input.resource.len(),
        input.network.spec.len(),
        wasm.len()
    );

    let worker = percentiles("wasm, fresh sandbox per call, via worker thread", || {
        black_box(plugin.render(&input).unwrap());
    });
    let here = percentiles("wasm, fresh sandbox per call, calling thread", || {
        black_box(plugin.render_on_current_thread(&input).unwrap());
    });
    let native = percentiles("native, same render code + same output checks", || {
        let out = test_plugin_good::render(&sdk_input).unwrap();
        black_box(check_render_output(out.objects, out.warnings, &limits).unwrap());
    });
    let native_only = percentiles("native, render code only", || {
        black_box(test_plugin_good::render(&sdk_input).unwrap());
    });
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "ratio (p50) wasm calling thread / native with checks: {:.2}",
        ratio(here, native)
    );
    println!(
        "ratio (p50) wasm via worker / native with checks:     {:.2}",
        ratio(worker, native)
    );
    println!(
        "ratio (p50) wasm calling thread / native render only: {:.2}",
        ratio(here, native_only)
    );
}
