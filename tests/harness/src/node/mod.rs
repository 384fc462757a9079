//! A real Kubernetes node beside the control plane: containerd 2 with runc, the CNI bridge,
//! the kubelet, kube-proxy (Services), CoreDNS (`*.svc.cluster.local`) and a volume provisioner,
//! all built on this machine (`tests/control-plane/setup.sh`, `tests/node/setup.sh`).
//!
//! One node per machine at a time: it uses fixed names (links, chains, a state directory) so the
//! next run can clean up after one that was killed, and a lock file makes a second run wait.
//! It needs root (network links, mounts, cgroups); without it, or without a binary, starting
//! fails with the reason. Never a skip.
//!
//! Traffic stays on this machine: the node IP sits on a veth pair that leads nowhere, pods have
//! no default route and no masquerade, a FORWARD rule drops anything from a pod to an address
//! outside the pod network, every image pull resolves to a closed loopback port, and CoreDNS has
//! no forwarder.

pub mod config;
pub mod host;
mod provisioner;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node as NodeObject;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::binaries;
use crate::image::{self, ImageSpec, ImageTar, StageRoot};
use config::{NETWORK, PAUSE_IMAGE, Paths};

/// The node's part of the test suite setup, for messages.
pub const NODE_SETUP_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../node/setup.sh");

const VERSIONS_ENV: &str = include_str!("../../../node/versions.env");

/// The pause image's Containerfile; `COPY --from=pause /out/pause` is the binary setup.sh built.
const PAUSE_CONTAINERFILE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../node/pause.Containerfile");

fn pinned(key: &str) -> &'static str {
    binaries::pinned_in("tests/node/versions.env", VERSIONS_ENV, key)
}

/// Where `tests/node/setup.sh` puts containerd, CoreDNS and pause.
pub fn node_bin_dir() -> PathBuf {
    binaries::cache_root().join("node").join(format!(
        "containerd-{}-coredns-{}",
        pinned("CONTAINERD_VERSION"),
        pinned("COREDNS_VERSION")
    ))
}

/// The node's working directory: fixed, so a later run finds what a killed one left.
pub fn state_dir() -> PathBuf {
    binaries::cache_root().join("node").join("run")
}

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(
        "the node tier needs root (network links, mounts, cgroups); this is uid {0}.\n\
         Run the tests as root, as CI does."
    )]
    NotRoot(u32),
    #[error("node binary {name} not found at {path}\nbuild it with: bash {script}")]
    MissingBinary {
        name: String,
        path: PathBuf,
        script: String,
    },
    #[error("the last run's node left host state that could not be removed:\n  {0}")]
    Stale(String),
    #[error("setting up the host for the node: {0}")]
    Host(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("image {reference}: {source}")]
    Image {
        reference: String,
        source: image::ImageError,
    },
    #[error("ctr images import {reference}: {message}")]
    Import { reference: String, message: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Every binary the node runs, looked up before anything starts.
pub(crate) struct NodeBinaries {
    pub kubelet: PathBuf,
    pub kube_proxy: PathBuf,
    pub kube_scheduler: PathBuf,
    pub containerd: PathBuf,
    pub ctr: PathBuf,
    pub coredns: PathBuf,
    pub node_bin_dir: PathBuf,
}

impl NodeBinaries {
    fn find() -> Result<NodeBinaries, NodeError> {
        let node_dir = node_bin_dir();
        let in_node_dir = |name: &str| {
            let path = node_dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(NodeError::MissingBinary {
                    name: name.to_owned(),
                    path,
                    script: NODE_SETUP_SCRIPT.to_owned(),
                })
            }
        };
        in_node_dir("containerd-shim-runc-v2")?;
        in_node_dir("pause")?;
        Ok(NodeBinaries {
            kubelet: binaries::require_binary("kubelet"),
            kube_proxy: binaries::require_binary("kube-proxy"),
            kube_scheduler: binaries::require_binary("kube-scheduler"),
            containerd: in_node_dir("containerd")?,
            ctr: in_node_dir("ctr")?,
            coredns: in_node_dir("coredns")?,
            node_bin_dir: node_dir,
        })
    }
}

/// The host prepared for a node: locked, cleaned of any earlier run, recorded, with the node IP
/// up. Made before the control plane starts, because the apiserver binds the node IP.
pub(crate) struct PreparedHost {
    pub binaries: NodeBinaries,
    pub state: PathBuf,
    _lock: File,
}

impl PreparedHost {
    pub fn prepare() -> Result<PreparedHost, NodeError> {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        if uid != 0 {
            return Err(NodeError::NotRoot(uid));
        }
        let binaries = NodeBinaries::find()?;
        let state = state_dir();
        let lock_path = state.with_extension("lock");
        std::fs::create_dir_all(lock_path.parent().expect("the state dir has a parent"))
            .map_err(io_error(&lock_path))?;
        let lock = File::create(&lock_path).map_err(io_error(&lock_path))?;
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a file descriptor we own.
            if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                eprintln!(
                    "opstack-test-harness: another test run holds the node ({}); waiting",
                    lock_path.display()
                );
                // SAFETY: as above, blocking this time.
                unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
            }
        }
        let exe_dirs = [binaries.node_bin_dir.clone()];
        let leftovers = host::teardown(&state, &exe_dirs);
        if !leftovers.is_empty() {
            return Err(NodeError::Stale(leftovers.join("\n  ")));
        }
        host::record(&state).map_err(io_error(&state))?;
        // From here on, whatever happens, the host is put back when this process exits.
        let teardown_state = state.clone();
        crate::process::run_at_exit(move || {
            for problem in host::teardown(&teardown_state, &exe_dirs) {
                eprintln!("opstack-test-harness: node teardown: {problem}");
            }
        });
        host::set_up_network().map_err(NodeError::Host)?;
        Ok(PreparedHost {
            binaries,
            state,
            _lock: lock,
        })
    }
}

/// A running node; owned by the [`crate::ControlPlane`] it joined.
pub struct Node {
    state: PathBuf,
    ctr: PathBuf,
    images_dir: PathBuf,
    node_bin_dir: PathBuf,
    /// Set before the control plane stops, so the provisioner does not poll a gone API server.
    provisioner_stop: Arc<AtomicBool>,
    _lock: File,
}

/// Starts one of the node's processes under the control plane (name, program, args, extra env).
pub(crate) type Spawn<'a> =
    dyn FnMut(&str, &Path, &[String], &[(&str, String)]) -> Result<(), String> + 'a;

/// What the node needs from the control plane it joins.
pub(crate) struct Join<'a> {
    pub ca_pem: &'a str,
    pub kubelet_kubeconfig: String,
    pub admin_kubeconfig: &'a Path,
    pub admin_context: &'a str,
    pub kubelet_cert_pem: &'a str,
    pub kubelet_key_pem: &'a str,
    pub ports: [u16; 6],
}

impl Node {
    /// Starts containerd, the kubelet, kube-proxy, CoreDNS and the provisioner; returns their
    /// processes (to be stopped in reverse) and the node once it is Ready.
    pub(crate) async fn start(
        prepared: PreparedHost,
        join: Join<'_>,
        admin: &Client,
        admin_config: kube::Config,
        spawn: &mut Spawn<'_>,
        check_alive: &dyn Fn() -> Result<(), String>,
    ) -> Result<Node, String> {
        let PreparedHost {
            binaries,
            state,
            _lock,
        } = prepared;
        let paths = Paths {
            state: &state,
            bin: &binaries.node_bin_dir,
        };
        let [
            kubelet_port,
            kubelet_healthz,
            proxy_healthz,
            proxy_metrics,
            dns_health,
            dns_ready,
        ] = join.ports;
        let write = |relative: &str, contents: &str| -> Result<PathBuf, String> {
            let path = state.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            std::fs::write(&path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        };
        for dir in [
            "cni/ipam",
            "pod-logs",
            "volumes",
            "runc",
            "images",
            "kubelet/root",
        ] {
            std::fs::create_dir_all(state.join(dir)).map_err(|e| format!("{dir}: {e}"))?;
        }
        write("ca.crt", join.ca_pem)?;
        write("kubelet/pki/kubelet.crt", join.kubelet_cert_pem)?;
        write("kubelet/pki/kubelet.key", join.kubelet_key_pem)?;
        write("resolv.conf", "")?;
        let containerd_config = write("containerd/config.toml", &config::containerd_toml(&paths))?;
        write(
            "containerd/certs.d/_default/hosts.toml",
            config::containerd_default_hosts_toml(),
        )?;
        write(
            "cni/net.d/10-opstk-pods.conflist",
            &config::cni_conflist(&state),
        )?;
        let kubelet_config = write(
            "kubelet/config.json",
            &config::kubelet_config(
                &paths,
                &config::KubeletPorts {
                    port: kubelet_port,
                    healthz_port: kubelet_healthz,
                },
            ),
        )?;
        let kubelet_kubeconfig = write("kubelet/kubeconfig", &join.kubelet_kubeconfig)?;
        let proxy_config = write(
            "kube-proxy/config.json",
            &config::kube_proxy_config(
                join.admin_kubeconfig,
                &config::ProxyPorts {
                    healthz_port: proxy_healthz,
                    metrics_port: proxy_metrics,
                },
            ),
        )?;
        let corefile = write(
            "coredns/Corefile",
            &config::corefile(
                join.admin_kubeconfig,
                join.admin_context,
                &config::DnsPorts {
                    health_port: dns_health,
                    ready_port: dns_ready,
                },
            ),
        )?;

        // containerd finds its shim on PATH; runc and the CNI plugins are configured by path.
        let path_env = format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            binaries.node_bin_dir.display()
        );
        spawn(
            "containerd",
            &binaries.containerd,
            &[format!("--config={}", containerd_config.display())],
            &[("PATH", path_env.clone())],
        )?;
        let node = Node {
            state: state.clone(),
            ctr: binaries.ctr.clone(),
            images_dir: state.join("images"),
            node_bin_dir: binaries.node_bin_dir.clone(),
            provisioner_stop: Arc::default(),
            _lock,
        };
        wait_for(
            "containerd to answer",
            Duration::from_secs(30),
            check_alive,
            || async { node.ctr(&["version"]).map(drop) },
        )
        .await?;
        let pause = node
            .build_image(
                Path::new(PAUSE_CONTAINERFILE),
                PAUSE_IMAGE,
                &[(
                    "pause",
                    vec![StageRoot::new("/out/", &binaries.node_bin_dir)],
                )],
            )
            .map_err(|e| e.to_string())?;
        node.import(&pause).map_err(|e| e.to_string())?;

        spawn(
            "kubelet",
            &binaries.kubelet,
            &[
                format!("--config={}", kubelet_config.display()),
                format!("--kubeconfig={}", kubelet_kubeconfig.display()),
                format!("--root-dir={}", state.join("kubelet/root").display()),
                // Its default is /var/lib/kubelet/pki whatever --root-dir says.
                format!("--cert-dir={}", state.join("kubelet/pki").display()),
                format!("--node-ip={}", NETWORK.node_ip),
                format!("--hostname-override={}", NETWORK.node_name),
                "--v=1".to_owned(),
            ],
            &[("PATH", path_env.clone())],
        )?;
        spawn(
            "kube-proxy",
            &binaries.kube_proxy,
            &[
                format!("--config={}", proxy_config.display()),
                "--v=1".to_owned(),
            ],
            &[("PATH", path_env.clone())],
        )?;
        spawn(
            "coredns",
            &binaries.coredns,
            &[format!("-conf={}", corefile.display())],
            &[],
        )?;
        provisioner::start(
            admin_config,
            state.join("volumes"),
            node.provisioner_stop.clone(),
        );

        let nodes = Api::<NodeObject>::all(admin.clone());
        wait_for(
            "the node to be Ready",
            Duration::from_secs(120),
            check_alive,
            || async {
                let node = nodes
                    .get(NETWORK.node_name)
                    .await
                    .map_err(|e| e.to_string())?;
                let ready = node
                    .status
                    .and_then(|status| status.conditions)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|condition| condition.type_ == "Ready");
                match ready {
                    Some(condition) if condition.status == "True" => Ok(()),
                    Some(condition) => Err(format!(
                        "Ready={}: {}",
                        condition.status,
                        condition.message.unwrap_or_default()
                    )),
                    None => Err("not registered yet".into()),
                }
            },
        )
        .await?;
        wait_for(
            "CoreDNS to be ready",
            Duration::from_secs(30),
            check_alive,
            || async { http_ok(NETWORK.node_ip, dns_ready, "/ready") },
        )
        .await?;
        let storage_class: StorageClass = serde_json::from_value(serde_json::json!({
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": config::STORAGE_CLASS,
                "annotations": { "storageclass.kubernetes.io/is-default-class": "true" },
            },
            "provisioner": config::PROVISIONER,
            // Like a cloud disk: bound where the pod lands, deleted with its claim.
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete",
        }))
        .expect("a StorageClass");
        Api::<StorageClass>::all(admin.clone())
            .patch(
                config::STORAGE_CLASS,
                &PatchParams::apply("opstack-test-harness").force(),
                &Patch::Apply(&storage_class),
            )
            .await
            .map_err(|e| format!("StorageClass: {e}"))?;
        Ok(node)
    }

    /// Stops the volume provisioner's polling; first thing when the control plane stops.
    pub(crate) fn stop_provisioner(&self) {
        self.provisioner_stop.store(true, Ordering::Relaxed);
    }

    /// Puts the host back (see [`host`]); the node's processes must be stopped already.
    pub(crate) fn tear_down(self) {
        for problem in host::teardown(&self.state, std::slice::from_ref(&self.node_bin_dir)) {
            eprintln!("opstack-test-harness: node teardown: {problem}");
        }
    }

    /// `ctr` against the node's containerd, in the namespace the kubelet uses.
    fn ctr(&self, args: &[&str]) -> Result<String, String> {
        let socket = self.state.join("containerd/containerd.sock");
        let output = std::process::Command::new(&self.ctr)
            .arg("-a")
            .arg(&socket)
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .map_err(|e| format!("ctr: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    }

    /// Builds the image a Containerfile's final stage describes (see [`crate::image`]), with
    /// `COPY --from=<stage>` read from the directories given per stage.
    pub fn build_image(
        &self,
        containerfile: &Path,
        reference: &str,
        stages: &[(&str, Vec<StageRoot>)],
    ) -> Result<ImageTar, NodeError> {
        let image_error = |source| NodeError::Image {
            reference: reference.to_owned(),
            source,
        };
        let stages = stages
            .iter()
            .map(|(name, root)| (name.to_string(), root.clone()))
            .collect();
        let context = containerfile.parent().unwrap_or(Path::new("."));
        let spec =
            ImageSpec::from_containerfile(containerfile, context, &stages, &Default::default())
                .map_err(image_error)?;
        let file_name = reference.replace(['/', ':'], "_") + ".tar";
        image::write_image_tar(&spec, reference, &self.images_dir.join(file_name))
            .map_err(image_error)
    }

    /// Imports an image into the node's containerd under its reference (`imagePullPolicy:
    /// IfNotPresent` or `Never` then uses it; nothing is ever pulled).
    pub fn import(&self, image: &ImageTar) -> Result<(), NodeError> {
        let path = image.path.to_string_lossy().into_owned();
        self.ctr(&["images", "import", "--no-unpack=false", &path])
            .map(drop)
            .map_err(|message| NodeError::Import {
                reference: image.reference.clone(),
                message,
            })
    }

    /// Gives an imported image a second reference (`ctr images tag`): the same image under
    /// another tag, as a registry would serve a re-tagged release.
    pub fn tag(&self, reference: &str, new_reference: &str) -> Result<(), NodeError> {
        self.ctr(&["images", "tag", "--force", reference, new_reference])
            .map(drop)
            .map_err(|message| NodeError::Import {
                reference: new_reference.to_owned(),
                message,
            })
    }

    /// The node's name (its Node object).
    pub fn name(&self) -> &'static str {
        NETWORK.node_name
    }

    /// The node IP, on which Services' endpoints and the apiserver are reached.
    pub fn ip(&self) -> &'static str {
        NETWORK.node_ip
    }
}

/// Polls `probe` until it succeeds, or fails with the last error after `timeout` (or at once
/// when a process of the cluster died).
async fn wait_for<Fut>(
    what: &str,
    timeout: Duration,
    check_alive: &dyn Fn() -> Result<(), String>,
    mut probe: impl FnMut() -> Fut,
) -> Result<(), String>
where
    Fut: Future<Output = Result<(), String>>,
{
    let started = std::time::Instant::now();
    loop {
        check_alive()?;
        let last = match probe().await {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        if started.elapsed() > timeout {
            return Err(format!("waited {timeout:?} for {what}; last: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A plain HTTP GET on `ip:port`, Ok on 200.
fn http_ok(ip: &str, port: u16, path: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().expect("an address"),
        Duration::from_secs(2),
    )
    .map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(response.lines().next().unwrap_or_default().to_owned())
    }
}
