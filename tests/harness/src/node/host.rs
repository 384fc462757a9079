//! What a node changes on the host outside its own directory, and how it is put back.
//!
//! Measured by diffing the host before and after a node ran:
//! - sysctls: the kubelet sets `kernel.panic`, `kernel.panic_on_oops`, `vm.overcommit_memory`
//!   (and checks `vm.panic_on_oom`, `kernel.keys.*`); the bridge plugin sets
//!   `net.ipv4.ip_forward`. `panic_on_oops=1` left on a shared machine turns any oops into a
//!   reboot, so the values are recorded before the node starts and written back after.
//! - links: the node's veth pair and the pod bridge; each pod's veth goes with its namespace.
//! - iptables: kube-proxy's `KUBE-*` chains, the kubelet's canaries, portmap's `CNI-*` chains and
//!   our isolation chain, in every table, for IPv4 and IPv6.
//! - processes: containerd's shims outlive containerd and keep the containers running.
//! - mounts under the node's directory (overlay root filesystems, volumes, network namespaces).
//! - cgroups: `kubepods` in every hierarchy.
//! - hard-coded paths: `/var/lib/kubelet` (device plugins), `/var/lib/cni` (CNI result cache),
//!   `/run/containerd`, `/var/log/pods`, `/var/log/containers`.
//!
//! `record` writes what was there before into the state dir; `teardown` undoes everything from
//! that record. It is idempotent and needs nothing but the state dir, so the next run (or
//! `opstack-node-teardown`) can finish the job of a run that was killed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::config::{ISOLATION_CHAIN, NETWORK};

/// Kernel settings the node's parts change (see the module docs).
pub const SYSCTLS: &[&str] = &[
    "kernel.panic",
    "kernel.panic_on_oops",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.netfilter.nf_conntrack_max",
];

/// Paths outside the state dir that the node's parts create whether configured or not.
pub const HARD_CODED_PATHS: &[&str] = &[
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/run/containerd",
    "/var/run/netns",
    "/var/log/pods",
    "/var/log/containers",
    "/opt/containerd",
    "/var/run/nri",
];

/// The host as it was before the node started.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Before {
    pub sysctls: BTreeMap<String, String>,
    pub existing_paths: Vec<String>,
    /// Top-level cgroup directories per hierarchy (`cpu/user.slice`, ...).
    pub cgroups: Vec<String>,
}

const RECORD: &str = "host-before.json";

fn sysctl_path(name: &str) -> PathBuf {
    Path::new("/proc/sys").join(name.replace('.', "/"))
}

fn read_sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(sysctl_path(name))
        .ok()
        .map(|value| value.trim().to_owned())
}

fn top_level_cgroups() -> Vec<String> {
    let mut found = Vec::new();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    for hierarchy in hierarchies.flatten() {
        let Ok(children) = std::fs::read_dir(hierarchy.path()) else {
            continue;
        };
        for child in children.flatten() {
            if child.file_type().is_ok_and(|kind| kind.is_dir()) {
                found.push(format!(
                    "{}/{}",
                    hierarchy.file_name().to_string_lossy(),
                    child.file_name().to_string_lossy()
                ));
            }
        }
    }
    found.sort();
    found
}

/// Records the host's state into `<state>/host-before.json`.
pub fn record(state: &Path) -> std::io::Result<Before> {
    let before = Before {
        sysctls: SYSCTLS
            .iter()
            .filter_map(|name| Some((name.to_string(), read_sysctl(name)?)))
            .collect(),
        existing_paths: HARD_CODED_PATHS
            .iter()
            .filter(|path| Path::new(path).exists())
            .map(|path| path.to_string())
            .collect(),
        cgroups: top_level_cgroups(),
    };
    std::fs::create_dir_all(state)?;
    std::fs::write(
        state.join(RECORD),
        serde_json::to_vec_pretty(&before).expect("JSON"),
    )?;
    Ok(before)
}

/// Runs a command, returning its stdout; failures are reported by the caller's check.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The node IP on a veth pair that leads nowhere, and the chain that keeps pod traffic here.
pub fn set_up_network() -> Result<(), String> {
    let net = &NETWORK;
    if !link_exists(net.node_link) {
        run(
            "ip",
            &[
                "link",
                "add",
                net.node_link,
                "type",
                "veth",
                "peer",
                "name",
                net.node_link_peer,
            ],
        )?;
    }
    run(
        "ip",
        &[
            "addr",
            "replace",
            &format!("{}/32", net.node_ip),
            "dev",
            net.node_link,
        ],
    )?;
    run("ip", &["link", "set", net.node_link, "up"])?;
    run("ip", &["link", "set", net.node_link_peer, "up"])?;
    isolate_pods()
}

/// Pods have no default route, so nothing leaves the machine by accident; this chain makes it a
/// rule: a packet from a pod may be forwarded only to another pod (Service traffic is DNATed to a
/// pod or the node before it is forwarded, and traffic to the node is not forwarded at all).
fn isolate_pods() -> Result<(), String> {
    let net = &NETWORK;
    let _ = run("iptables", &["-w", "-N", ISOLATION_CHAIN]);
    run("iptables", &["-w", "-F", ISOLATION_CHAIN])?;
    run(
        "iptables",
        &[
            "-w",
            "-A",
            ISOLATION_CHAIN,
            "-s",
            net.pod_cidr,
            "!",
            "-d",
            net.pod_cidr,
            "-j",
            "DROP",
        ],
    )?;
    if run("iptables", &["-w", "-C", "FORWARD", "-j", ISOLATION_CHAIN]).is_err() {
        run(
            "iptables",
            &["-w", "-I", "FORWARD", "1", "-j", ISOLATION_CHAIN],
        )?;
    }
    Ok(())
}

/// PIDs of processes whose cgroup path contains `/kubepods` (the containers), or whose
/// executable is under one of `exe_dirs` (containerd's shims, and anything else of ours).
fn node_processes(exe_dirs: &[PathBuf]) -> Vec<i32> {
    let own = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != own)
        .filter(|&pid| {
            let in_pod = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|cgroups| cgroups.contains("/kubepods"));
            let ours = std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|exe| exe_dirs.iter().any(|dir| exe.starts_with(dir)));
            in_pod || ours
        })
        .collect()
}

fn is_zombie_or_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

fn kill_node_processes(exe_dirs: &[PathBuf], problems: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<i32> = node_processes(exe_dirs)
            .into_iter()
            .filter(|&pid| !is_zombie_or_gone(pid))
            .collect();
        if alive.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            problems.push(format!("processes still alive after SIGKILL: {alive:?}"));
            return;
        }
        for pid in alive {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Mount points at or under any of `roots`, deepest first.
fn mounts_under(roots: &[PathBuf]) -> Vec<PathBuf> {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        // mountinfo escapes spaces and other characters as octal.
        .map(|point| PathBuf::from(point.replace("\\040", " ")))
        .filter(|point| roots.iter().any(|root| point.starts_with(root)))
        .collect();
    found.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    found.dedup();
    found
}

fn unmount_all(roots: &[PathBuf], problems: &mut Vec<String>) {
    for _ in 0..5 {
        let points = mounts_under(roots);
        if points.is_empty() {
            return;
        }
        for point in points {
            let Ok(path) = std::ffi::CString::new(point.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            // SAFETY: a valid NUL-terminated path; MNT_DETACH cannot hang on a busy mount.
            unsafe {
                libc::umount2(path.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
    let left = mounts_under(roots);
    if !left.is_empty() {
        problems.push(format!("mounts left: {left:?}"));
    }
}

/// Deletes every chain whose name starts with one of `prefixes` in every table, after removing
/// the rules of other chains that jump to them.
fn remove_chains(program: &str, prefixes: &[&str], problems: &mut Vec<String>) {
    if Command::new(program).arg("--version").output().is_err() {
        return;
    }
    for table in ["filter", "nat", "mangle", "raw"] {
        let Ok(rules) = run(program, &["-w", "-t", table, "-S"]) else {
            continue;
        };
        let ours = |chain: &str| prefixes.iter().any(|prefix| chain.starts_with(prefix));
        let mut chains = Vec::new();
        for rule in rules.lines() {
            let words = crate::split_words(rule);
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            match words.as_slice() {
                ["-N", chain] if ours(chain) => chains.push(chain.to_string()),
                ["-A", chain, rest @ ..] if !ours(chain) => {
                    let jumps_to_ours = rest
                        .windows(2)
                        .any(|pair| (pair[0] == "-j" || pair[0] == "-g") && ours(pair[1]));
                    if jumps_to_ours {
                        let mut args = vec!["-w", "-t", table, "-D", chain];
                        args.extend(rest);
                        if let Err(error) = run(program, &args) {
                            problems.push(error);
                        }
                    }
                }
                _ => {}
            }
        }
        for chain in &chains {
            let _ = run(program, &["-w", "-t", table, "-F", chain]);
        }
        for chain in &chains {
            if let Err(error) = run(program, &["-w", "-t", table, "-X", chain]) {
                problems.push(error);
            }
        }
    }
}

fn remove_cgroups(before: &Before, problems: &mut Vec<String>) {
    fn remove_tree(dir: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)?.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                remove_tree(&entry.path())?;
            }
        }
        std::fs::remove_dir(dir)
    }
    for cgroup in top_level_cgroups() {
        if before.cgroups.contains(&cgroup) {
            continue;
        }
        let name = cgroup.rsplit('/').next().unwrap_or_default();
        if name.starts_with("kubepods") {
            let path = Path::new("/sys/fs/cgroup").join(&cgroup);
            // A cgroup can be removed only once its last process is gone; that can take a moment.
            let deadline = Instant::now() + Duration::from_secs(10);
            while let Err(error) = remove_tree(&path) {
                if Instant::now() > deadline {
                    problems.push(format!("cgroup {}: {error}", path.display()));
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Puts the host back as `<state>/host-before.json` says it was and removes the state dir.
/// `exe_dirs`: where the node's binaries are (their processes are killed). Returns what could
/// not be undone.
pub fn teardown(state: &Path, exe_dirs: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    let before: Before = match std::fs::read(state.join(RECORD)) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) if !state.exists() => return problems,
        Err(_) => Before::default(),
    };

    kill_node_processes(exe_dirs, &mut problems);

    let mut roots = vec![state.to_owned()];
    roots.extend(
        HARD_CODED_PATHS
            .iter()
            .filter(|path| !before.existing_paths.iter().any(|p| p == *path))
            .map(PathBuf::from),
    );
    unmount_all(&roots, &mut problems);

    // Pod veths vanish with their namespaces, once unmounted and without processes; wait for
    // the kernel to finish before the bridge goes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while veths_of_pods() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for link in [NETWORK.bridge, NETWORK.node_link] {
        if link_exists(link)
            && let Err(error) = run("ip", &["link", "del", link])
        {
            problems.push(error);
        }
    }

    for program in ["iptables", "ip6tables"] {
        remove_chains(program, &["KUBE-", "CNI-", ISOLATION_CHAIN], &mut problems);
    }

    for (name, value) in &before.sysctls {
        if read_sysctl(name).as_deref() != Some(value.as_str())
            && let Err(error) = std::fs::write(sysctl_path(name), value)
        {
            problems.push(format!("restore {name}={value}: {error}"));
        }
    }

    remove_cgroups(&before, &mut problems);

    for path in HARD_CODED_PATHS {
        if !before.existing_paths.iter().any(|p| p == path)
            && Path::new(path).exists()
            && let Err(error) = std::fs::remove_dir_all(path)
        {
            problems.push(format!("remove {path}: {error}"));
        }
    }
    if let Err(error) = std::fs::remove_dir_all(state)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        problems.push(format!("remove {}: {error}", state.display()));
    }
    problems
}

/// veth links whose peer was a pod: the CNI bridge plugin names them `veth<hex>`.
fn veths_of_pods() -> usize {
    std::fs::read_dir("/sys/class/net")
        .map(|links| {
            links
                .flatten()
                .filter(|link| {
                    let name = link.file_name();
                    let name = name.to_string_lossy();
                    name.starts_with("veth")
                        && std::fs::read_link(link.path().join("master"))
                            .is_ok_and(|master| master.ends_with(NETWORK.bridge))
                })
                .count()
        })
        .unwrap_or(0)
}
