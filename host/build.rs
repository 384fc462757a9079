//! Bundles the default plugins into the operator binary.
//!
//! Each plugin is a `wasm32-wasip2` component built from `plugins/<crate>`. When
//! `OPSTACK_PLUGIN_DIR` names a directory that already holds them (the test runner builds them
//! once with `plugins/build.sh`), they are copied from there; otherwise this script builds them
//! with a nested cargo in its own target directory, so a plain `cargo build` or `cargo run` on
//! a fresh clone works. (A nested cargo cannot share the outer target directory: the outer
//! build holds its lock.)

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (package, file stem) of every bundled plugin.
const BUNDLED: &[(&str, &str)] = &[
    ("plugin-optimism-network", "plugin_optimism_network"),
    ("plugin-op-node", "plugin_op_node"),
    ("plugin-op-batcher", "plugin_op_batcher"),
    ("plugin-op-proposer", "plugin_op_proposer"),
    ("plugin-op-challenger", "plugin_op_challenger"),
];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Read when the script runs, not baked in with `env!` when it is compiled: a build script
    // compiled in one checkout is reused by another that shares the target directory, and
    // paths of the first checkout would make every build of the second rerun it (and rebuild
    // the operator and every test that links it).
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let workspace = Path::new(&manifest_dir)
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf();
    println!("cargo:rerun-if-env-changed=OPSTACK_PLUGIN_DIR");
    for watched in ["plugins", "crds/src", "crds/releases.toml", "wit"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let prebuilt = env::var_os("OPSTACK_PLUGIN_DIR").map(PathBuf::from);
    let source_dir = match prebuilt {
        Some(dir)
            if BUNDLED
                .iter()
                .all(|(_, stem)| dir.join(format!("{stem}.wasm")).is_file()) =>
        {
            // The prebuilt files themselves: the sources above may be older than the build.
            for (_, stem) in BUNDLED {
                println!(
                    "cargo:rerun-if-changed={}",
                    dir.join(format!("{stem}.wasm")).display()
                );
            }
            dir
        }
        _ => build_nested(&workspace, &out_dir),
    };
    for (_, stem) in BUNDLED {
        let from = source_dir.join(format!("{stem}.wasm"));
        let to = out_dir.join(format!("{stem}.wasm"));
        std::fs::copy(&from, &to)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
    }
}

fn build_nested(workspace: &Path, out_dir: &Path) -> PathBuf {
    // <target>/<profile>/build/<pkg>-<hash>/out → <target>/bundled-plugins
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|target| target.join("bundled-plugins"))
        .unwrap_or_else(|| workspace.join("target/bundled-plugins"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "--profile",
            "plugin",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for (package, _) in BUNDLED {
        command.args(["-p", package]);
    }
    // Flags meant for the host build must not leak into the guest build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("starting cargo to build the bundled plugins: {e}"));
    assert!(
        status.success(),
        "building the bundled plugins failed ({status}); run `plugins/build.sh` to see why (it also installs the wasm32-wasip2 target)"
    );
    target_dir.join("wasm32-wasip2/plugin")
}
