//! Where the control-plane binaries and the harness's bookkeeping files live.
//!
//! `tests/control-plane/setup.sh` builds the binaries into a cache outside the checkout,
//! keyed by the versions in `tests/control-plane/versions.env`. This module computes the same
//! path from the same file, so the script and the harness cannot disagree.

use std::path::{Path, PathBuf};

/// The versions file, shared with `setup.sh` (which sources it).
const VERSIONS_ENV: &str = include_str!("../../control-plane/versions.env");

/// The command that builds the binaries, for error messages.
pub const SETUP_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../control-plane/setup.sh");

/// Env var that names the bin directory explicitly (overrides the default cache path).
pub const BIN_DIR_ENV: &str = "OPSTACK_CONTROL_PLANE_BIN";

/// Env var that names the file where every started PID is recorded.
pub const PID_FILE_ENV: &str = "OPSTACK_HARNESS_PID_FILE";

/// The `KEY=value` entry of a versions.env (`file` names it in the panic); panics if it is
/// missing, since the file is compiled in and a missing key is a bug in this checkout, not in
/// the environment. Every setup script sources its versions.env; the harness reads the same one.
pub(crate) fn pinned_in(file: &str, versions_env: &'static str, key: &str) -> &'static str {
    versions_env
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{file} has no {key}=... line"))
}

fn pinned_version(key: &str) -> &'static str {
    pinned_in("tests/control-plane/versions.env", VERSIONS_ENV, key)
}

pub fn kubernetes_version() -> &'static str {
    pinned_version("KUBERNETES_VERSION")
}

pub fn etcd_version() -> &'static str {
    pinned_version("ETCD_VERSION")
}

/// An env var's value, treating an empty value as unset (as `${VAR:-default}` does in bash).
fn non_empty_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// `${OPSTACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opstack-operator}`, as in setup.sh.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = non_empty_env("OPSTACK_CACHE_DIR") {
        return dir;
    }
    let xdg_cache = non_empty_env("XDG_CACHE_HOME").unwrap_or_else(|| {
        non_empty_env("HOME")
            .expect("neither OPSTACK_CACHE_DIR, XDG_CACHE_HOME nor HOME is set")
            .join(".cache")
    });
    xdg_cache.join("opstack-operator")
}

/// The directory holding etcd, kube-apiserver and kube-controller-manager, and how it was chosen.
pub fn bin_dir() -> (PathBuf, &'static str) {
    match non_empty_env(BIN_DIR_ENV) {
        Some(dir) => (dir, "from OPSTACK_CONTROL_PLANE_BIN"),
        None => (
            cache_root().join("control-plane").join(format!(
                "k8s-{}-etcd-{}",
                kubernetes_version(),
                etcd_version()
            )),
            "the default cache path (set OPSTACK_CONTROL_PLANE_BIN to override)",
        ),
    }
}

/// The path of one binary; panics with where it looked and how to build it if it is missing.
pub fn require_binary(name: &str) -> PathBuf {
    let (dir, chosen_by) = bin_dir();
    let path = dir.join(name);
    if !is_executable(&path) {
        panic!(
            "control-plane binary {name} not found or not executable at {path}\n\
             looked in {dir} ({chosen_by})\n\
             build it with: bash {SETUP_SCRIPT}\n\
             (kubernetes {k8s}, etcd {etcd}; a cold build takes minutes, later runs reuse the cache)",
            path = path.display(),
            dir = dir.display(),
            k8s = kubernetes_version(),
            etcd = etcd_version(),
        );
    }
    path
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The file where every PID the harness starts is appended, for
/// `tests/control-plane/check-no-leftovers.sh`.
///
/// Default: one file per checkout under the cache dir, so two checkouts on one machine (a
/// developer's and CI's fresh clone) never read or truncate each other's records. The
/// script derives the same name from its own location.
pub fn pid_file() -> PathBuf {
    if let Some(path) = non_empty_env(PID_FILE_ENV) {
        return path;
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let checkout = checkout.canonicalize().unwrap_or(checkout);
    let key = checkout.to_string_lossy().replace('/', "_");
    cache_root()
        .join("harness-pids")
        .join(format!("{key}.pids"))
}
