//! Puts the host back after a node-tier run that was killed before it could clean up: stops
//! the node's containers and shims, unmounts, removes its links, iptables chains, cgroups and
//! directories, and restores the kernel settings recorded when it started. The next run does
//! the same on its own; this is for a developer who wants the machine clean now.
//!
//!     cargo run -p opstack-test-harness --bin opstack-node-teardown

use opstack_test_harness::node::{host, node_bin_dir, state_dir};

fn main() -> std::process::ExitCode {
    let state = state_dir();
    if !state.exists() {
        println!("no node state at {}: nothing to do", state.display());
        return std::process::ExitCode::SUCCESS;
    }
    let problems = host::teardown(&state, &[node_bin_dir()]);
    if problems.is_empty() {
        println!("removed the node left at {}", state.display());
        std::process::ExitCode::SUCCESS
    } else {
        for problem in problems {
            eprintln!("{problem}");
        }
        std::process::ExitCode::FAILURE
    }
}
