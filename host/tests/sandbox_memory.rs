//! The host's memory stays bounded while plugins misbehave. A test binary of its own, so that
//! no other test allocates in the same process while RSS is measured.

mod common;

use common::*;
use opstack_operator::runtime::{Runtime, RuntimeConfig};

#[test]
fn process_memory_stays_bounded_across_misbehaving_plugins() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let input = fixture_input();
    let good = runtime.load(&plugin_bytes(GOOD)).unwrap();
    let bad: Vec<_> = [
        "memory-bomb",
        "huge-output",
        "deep-recursion",
        "panic",
        "invalid-json",
        "endless-loop",
    ]
    .into_iter()
    .map(|f| runtime.load(&misbehaving(f)).unwrap())
    .collect();
    // Warm up: one call each, so code pages and allocator arenas are in the baseline.
    for plugin in &bad {
        plugin.render(&input).unwrap_err();
    }
    good.render(&input).unwrap();
    let baseline = proc_status_kib("VmRSS");

    for _ in 0..5 {
        for plugin in &bad[..5] {
            plugin.render(&input).unwrap_err();
        }
        good.render(&input).unwrap();
    }
    let after = proc_status_kib("VmRSS");
    let peak = proc_status_kib("VmHWM");
    eprintln!("VmRSS baseline {baseline} KiB, after {after} KiB, peak {peak} KiB");
    assert!(
        after < baseline + 16 * 1024,
        "RSS grew from {baseline} KiB to {after} KiB"
    );
    // The 1 GiB bomb never materialises: at most the 64 MiB cap plus slack at any time.
    assert!(
        peak < baseline + 128 * 1024,
        "peak RSS {peak} KiB, baseline {baseline} KiB"
    );
}
