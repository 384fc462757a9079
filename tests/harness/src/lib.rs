//! A real Kubernetes control plane for the operator's tests: etcd, kube-apiserver and, on
//! request, kube-controller-manager, run as child processes on loopback ports (the way
//! controller-runtime's envtest does it). See `docs/testing.md` in the shared docs.
//!
//! The binaries are built by `tests/control-plane/setup.sh` into a cache outside the checkout;
//! this crate finds them through `OPSTACK_CONTROL_PLANE_BIN` or the same default path. A
//! missing binary or a control plane that does not come up is a panic naming the binary, the
//! place looked in, the end of its log and the command to build it: never a skipped test.
//!
//! Typical use, one control plane per test binary and one namespace per test:
//!
//! ```no_run
//! use opstack_test_harness::{ControlPlane, ControlPlaneConfig};
//!
//! fn control_plane() -> &'static ControlPlane {
//!     // The project's CRDs and a controller-manager; ControlPlaneConfig::default() has no
//!     // controller-manager, and the fields can be set by hand (e.g. other CRDs).
//!     ControlPlane::shared(ControlPlaneConfig::with_controller_manager)
//! }
//!
//! #[tokio::test]
//! async fn something() {
//!     let control_plane = control_plane();
//!     let namespace = control_plane.create_test_namespace("something").await;
//!     let admin = control_plane.admin_client();
//!     // ...
//! }
//! ```

mod binaries;
pub mod devnet;
pub mod image;
pub mod node;
mod pki;
pub mod pods;
mod process;

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

pub use binaries::{
    BIN_DIR_ENV, PID_FILE_ENV, SETUP_SCRIPT, bin_dir, cache_root, etcd_version, kubernetes_version,
    pid_file,
};
use process::ManagedProcess;

/// Namespace of the operator's service account.
pub const OPERATOR_NAMESPACE: &str = "opstack-system";
/// Name of the operator's service account.
pub const OPERATOR_SERVICE_ACCOUNT: &str = "opstack-operator";
/// The user name the apiserver sees for the operator's token (a service-account identity).
pub const OPERATOR_USER: &str = "system:serviceaccount:opstack-system:opstack-operator";
/// Groups of the operator's identity: the ones a real service-account token carries.
pub const OPERATOR_GROUPS: [&str; 3] = [
    "system:serviceaccounts",
    "system:serviceaccounts:opstack-system",
    "system:authenticated",
];
/// The admin user; in `system:masters`, which RBAC lets do anything.
pub const ADMIN_USER: &str = "opstack-test-admin";

/// Field manager the harness uses for what it applies (the CRDs).
const FIELD_MANAGER: &str = "opstack-test-harness";

/// Controllers the controller-manager runs: garbage collection and namespace deletion, plus the
/// workload controllers the operator's objects create children through. The names are the
/// ones `kube-controller-manager --help` lists for 1.37 (the older short names such as
/// `garbagecollector` are only aliases).
pub const CONTROLLERS: &str = "garbage-collector-controller,namespace-controller,\
                               statefulset-controller,deployment-controller,replicaset-controller";

/// With a node, also what pods, Services and volumes need: ServiceAccounts and the root CA in
/// every namespace, Endpoints, claims bound to volumes, node health, disruption budgets.
pub const NODE_CONTROLLERS: &str = "serviceaccount-controller,root-ca-certificate-publisher-controller,\
                                    endpoints-controller,endpointslice-controller,\
                                    persistentvolume-binder-controller,persistentvolume-protection-controller,\
                                    persistentvolumeclaim-protection-controller,node-lifecycle-controller,\
                                    disruption-controller,pod-garbage-collector-controller";

/// Set to keep the temp dir (logs, etcd data, kubeconfigs) after the run, for debugging.
pub const KEEP_TEMP_DIR_ENV: &str = "OPSTACK_HARNESS_KEEP_TMP";

const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
const ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(60);
const LOG_TAIL_LINES: usize = 30;

/// What to start. The default installs the project's CRDs (`opstack_crds::all_crds()`) and
/// runs no controller-manager.
#[derive(Clone, Debug)]
pub struct ControlPlaneConfig {
    /// CRDs to install (server-side apply) and wait for until Established.
    pub crds: Vec<CustomResourceDefinition>,
    /// Also run kube-controller-manager (garbage collection, namespace deletion, workloads).
    pub controller_manager: bool,
    /// Also run a node (kubelet, containerd, kube-proxy, CoreDNS, volumes) and the scheduler, so
    /// pods run. Implies the controller-manager. See [`node`].
    pub node: bool,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        ControlPlaneConfig {
            crds: opstack_crds::all_crds(),
            controller_manager: false,
            node: false,
        }
    }
}

impl ControlPlaneConfig {
    /// The project's CRDs and a controller-manager (garbage collection is live).
    pub fn with_controller_manager() -> Self {
        ControlPlaneConfig {
            controller_manager: true,
            ..ControlPlaneConfig::default()
        }
    }

    /// The project's CRDs, a controller-manager, a scheduler and a node: a whole cluster.
    pub fn with_node() -> Self {
        ControlPlaneConfig {
            controller_manager: true,
            node: true,
            ..ControlPlaneConfig::default()
        }
    }
}

/// Why the control plane could not be started.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("could not create or write {path}: {source}")]
    File { path: PathBuf, source: io::Error },
    #[error("could not generate the control plane's keys and certificates: {0}")]
    Pki(#[from] rcgen::Error),
    #[error("could not find a free loopback port: {0}")]
    FreePort(io::Error),
    #[error("could not start {name} ({program}): {source}\nbuild it with: bash {SETUP_SCRIPT}")]
    Spawn {
        name: String,
        program: PathBuf,
        source: io::Error,
    },
    #[error(
        "{name} exited during startup ({status}).\nlast lines of its log {log}:\n{tail}\n\
         (binaries from {bin_dir}; rebuild with: bash {SETUP_SCRIPT})"
    )]
    ExitedEarly {
        name: String,
        status: String,
        log: PathBuf,
        tail: String,
        bin_dir: PathBuf,
    },
    #[error(
        "{what} was not ready after {waited:?}; last error: {last_error}\n{logs}\n\
         (binaries from {bin_dir}; rebuild with: bash {SETUP_SCRIPT})"
    )]
    NotReady {
        what: String,
        waited: Duration,
        last_error: String,
        logs: String,
        bin_dir: PathBuf,
    },
    #[error("kube client: {0}")]
    Kube(#[from] kube::Error),
    #[error("could not build a tokio runtime for startup: {0}")]
    Runtime(io::Error),
    #[error("{0}")]
    Node(#[from] node::NodeError),
    #[error("the node did not start: {message}\n{logs}")]
    NodeStart { message: String, logs: String },
}

impl HarnessError {
    fn file(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| HarnessError::File {
            path: path.to_owned(),
            source,
        }
    }
}

/// A running control plane. Dropping it stops every process and removes its temp dir; a
/// shared one (in a static) is stopped when the test binary exits (see `process.rs`).
pub struct ControlPlane {
    api_url: String,
    temp_dir: PathBuf,
    ca_cert_der: Vec<u8>,
    admin_token: String,
    operator_token: String,
    admin_kubeconfig: PathBuf,
    operator_kubeconfig: PathBuf,
    crd_names: Vec<String>,
    controller_manager: bool,
    /// In start order; stopped in reverse (node processes, scheduler, controller-manager,
    /// apiserver, etcd).
    processes: Mutex<Vec<ManagedProcess>>,
    /// Torn down in `stop`, once every process is gone.
    node: Option<node::Node>,
}

impl ControlPlane {
    /// Starts a control plane, blocking until it is ready and the CRDs are Established.
    /// Panics with the reason if it cannot (see the crate docs).
    ///
    /// May be called from inside an async test: the startup work runs on its own thread with
    /// its own runtime.
    pub fn start(config: ControlPlaneConfig) -> ControlPlane {
        match Self::try_start(config) {
            Ok(control_plane) => control_plane,
            Err(error) => panic!("the test control plane did not start: {error}"),
        }
    }

    /// Like [`ControlPlane::start`], returning the reason instead of panicking.
    pub fn try_start(config: ControlPlaneConfig) -> Result<ControlPlane, HarnessError> {
        install_crypto_provider();
        // Look up every binary first: a missing one is a panic with the build command.
        let binaries = Binaries {
            etcd: binaries::require_binary("etcd"),
            kube_apiserver: binaries::require_binary("kube-apiserver"),
            kube_controller_manager: (config.controller_manager || config.node)
                .then(|| binaries::require_binary("kube-controller-manager")),
        };
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // Free ports are picked, released, then bound by the child: another
                    // process can take one in between. Rare; retry with fresh ports then.
                    let mut attempt = 1;
                    loop {
                        match start_once(&binaries, &config) {
                            Err(error) if attempt < 3 && is_port_clash(&error) => attempt += 1,
                            result => return result,
                        }
                    }
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// One control plane per test binary, started by the first caller with the config
    /// `config` returns; later callers get the same one (their closure is not called). Call it
    /// through one helper fn per test binary so every test asks for the same config.
    ///
    /// If the start failed, every later caller panics with the same reason at once instead of
    /// trying again.
    pub fn shared(config: impl FnOnce() -> ControlPlaneConfig) -> &'static ControlPlane {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        let started = SHARED.get_or_init(|| {
            let config = config();
            std::panic::catch_unwind(|| Self::try_start(config))
                .map_err(|panic| panic_message(panic.as_ref()))
                .and_then(|result| result.map_err(|error| error.to_string()))
        });
        match started {
            Ok(control_plane) => control_plane,
            Err(reason) => panic!("the shared test control plane did not start: {reason}"),
        }
    }

    /// `https://127.0.0.1:<port>`
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The temp dir holding logs, etcd's data and the kubeconfigs.
    pub fn temp_dir(&self) -> &Path {
        &self.temp_dir
    }

    /// Whether kube-controller-manager runs (garbage collection is live).
    pub fn has_controller_manager(&self) -> bool {
        self.controller_manager
    }

    /// PID of a process of this control plane ("etcd", "kube-apiserver",
    /// "kube-controller-manager"), e.g. to pause it in a fault test.
    pub fn pid_of(&self, name: &str) -> Option<u32> {
        self.processes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .find(|process| process.name == name)
            .map(ManagedProcess::pid)
    }

    /// Names of the CRDs installed at start.
    pub fn crd_names(&self) -> &[String] {
        &self.crd_names
    }

    /// The node, when the config asked for one ([`ControlPlaneConfig::with_node`]).
    pub fn node(&self) -> Option<&node::Node> {
        self.node.as_ref()
    }

    /// A kubeconfig for the admin (for `kubectl --kubeconfig`).
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// A kubeconfig for the operator's service-account identity.
    pub fn operator_kubeconfig(&self) -> &Path {
        &self.operator_kubeconfig
    }

    pub fn admin_config(&self) -> kube::Config {
        client_config(&self.api_url, &self.ca_cert_der, &self.admin_token)
    }

    pub fn operator_config(&self) -> kube::Config {
        client_config(&self.api_url, &self.ca_cert_der, &self.operator_token)
    }

    /// A client with admin rights (`system:masters`). Call inside the test's tokio runtime:
    /// a kube Client belongs to the runtime it was made in, so each test makes its own.
    pub fn admin_client(&self) -> Client {
        make_client(self.admin_config())
    }

    /// A client authenticated as the operator's service account
    /// ([`OPERATOR_USER`], groups [`OPERATOR_GROUPS`]). It has no permissions until a test
    /// binds a role to it. Call inside the test's tokio runtime.
    pub fn operator_client(&self) -> Client {
        make_client(self.operator_config())
    }

    /// A client authenticated by `token` (a service account's, from a TokenRequest). Call
    /// inside the test's tokio runtime.
    pub fn client_with_token(&self, token: &str) -> Client {
        make_client(client_config(&self.api_url, &self.ca_cert_der, token))
    }

    /// Creates a namespace with a unique name starting with `prefix` and returns the name.
    pub async fn create_test_namespace(&self, prefix: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let sanitized: String = prefix
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        let name = format!(
            "{}-{}-{}",
            sanitized.trim_matches('-'),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            &random_hex(3)
        );
        // Pod Security "restricted" is enforced, as the operator's users are told to: a pod the
        // renderers produce that breaks it is refused by the apiserver, not only by our checks.
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": {
                "opstack.test/harness": "true",
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            } }
        }))
        .expect("a Namespace literal");
        let admin = self.admin_client();
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|error| panic!("could not create test namespace {name}: {error}"));
        if self.node.is_some() {
            // A pod is refused until the namespace's `default` ServiceAccount exists.
            pods::wait_for_default_service_account(&admin, &name).await;
        }
        name
    }

    fn stop(&mut self) {
        if let Some(node) = &self.node {
            node.stop_provisioner();
        }
        let processes = self
            .processes
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while let Some(process) = processes.pop() {
            drop(process);
        }
        if let Some(node) = self.node.take() {
            node.tear_down();
        }
        remove_temp_dir(&self.temp_dir);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Binaries {
    etcd: PathBuf,
    kube_apiserver: PathBuf,
    kube_controller_manager: Option<PathBuf>,
}

/// The token of the node's kubelet: the Node authorizer knows it by this name and group.
const NODE_USER_GROUP: &str = "system:nodes";

/// Installs ring as rustls's process-wide crypto provider. kube picks its provider from the
/// crate features; once any other crate in the test binary enables aws-lc-rs too, rustls
/// cannot choose and panics at the first connection (shared docs, wasm-spike.md §4). Setting
/// it explicitly avoids that. Err means one is already installed, which is fine.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn client_config(api_url: &str, ca_cert_der: &[u8], token: &str) -> kube::Config {
    let mut config = kube::Config::new(api_url.parse().expect("the apiserver URL is valid"));
    config.root_cert = Some(vec![ca_cert_der.to_vec()]);
    // AuthInfo's token is a secrecy::SecretString; deserializing avoids depending on secrecy.
    config.auth_info = serde_json::from_value(serde_json::json!({ "token": token }))
        .expect("an AuthInfo with a token");
    config.read_timeout = Some(Duration::from_secs(60));
    config
}

fn make_client(config: kube::Config) -> Client {
    install_crypto_provider();
    Client::try_from(config)
        .unwrap_or_else(|error| panic!("could not build a kube client for the harness: {error}"))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else {
        "<non-string panic>".to_owned()
    }
}

fn is_port_clash(error: &HarnessError) -> bool {
    let text = error.to_string();
    text.contains("address already in use") || text.contains("bind: address already")
}

/// Random lowercase hex, `bytes` bytes long, from the kernel's RNG.
fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut buffer))
        .expect("reading /dev/urandom");
    buffer.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Reserves `count` distinct free loopback ports. All listeners are held until every port is
/// chosen, so the same port is never handed out twice.
fn free_ports(count: usize) -> Result<Vec<u16>, HarnessError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(HarnessError::FreePort)?;
    listeners
        .iter()
        .map(|listener| Ok(listener.local_addr()?.port()))
        .collect::<Result<Vec<_>, io::Error>>()
        .map_err(HarnessError::FreePort)
}

fn write_file(path: &Path, contents: &str) -> Result<(), HarnessError> {
    std::fs::write(path, contents).map_err(HarnessError::file(path))
}

fn remove_temp_dir(dir: &Path) {
    process::unregister_temp_dir(dir);
    if std::env::var_os(KEEP_TEMP_DIR_ENV).is_some() {
        eprintln!("opstack-test-harness: kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A kubeconfig for one identity. The CA is referenced by path; kubectl and kube read it.
fn kubeconfig_yaml(api_url: &str, ca_path: &Path, user: &str, token: &str) -> String {
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "opstack-test",
            "cluster": { "server": api_url, "certificate-authority": ca_path },
        }],
        "users": [{ "name": user, "user": { "token": token } }],
        "contexts": [{
            "name": user,
            "context": { "cluster": "opstack-test", "user": user, "namespace": "default" },
        }],
        "current-context": user,
    });
    serde_yaml::to_string(&kubeconfig).expect("a kubeconfig serializes")
}

const TEMP_DIR_PREFIX: &str = "opstack-control-plane-";

/// Starts everything once, on fixed ports. Runs on its own thread (see `try_start`).
fn start_once(
    binaries: &Binaries,
    config: &ControlPlaneConfig,
) -> Result<ControlPlane, HarnessError> {
    process::remove_stale_temp_dirs(TEMP_DIR_PREFIX);
    // The node IP must exist before the apiserver binds it.
    let prepared_node = if config.node {
        Some(node::PreparedHost::prepare()?)
    } else {
        None
    };
    let net = &node::config::NETWORK;
    // With a node, everything the pods reach listens on the node IP (a host-only link) instead
    // of loopback, which pods cannot reach.
    let listen_ip = if config.node {
        net.node_ip
    } else {
        "127.0.0.1"
    };
    let temp_dir = std::env::temp_dir().join(format!(
        "{TEMP_DIR_PREFIX}{}-{}",
        std::process::id(),
        random_hex(4)
    ));
    std::fs::create_dir_all(&temp_dir).map_err(HarnessError::file(&temp_dir))?;
    process::register_temp_dir(&temp_dir);

    // From here on, `control_plane` owns the processes and the dir: an early return drops it,
    // which kills what was started and removes the dir.
    let admin_token = random_hex(24);
    let operator_token = random_hex(24);
    let node_token = random_hex(24);
    let apiserver_sans: Vec<String> = if config.node {
        [
            net.node_ip,
            net.kubernetes_service_ip,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        .map(str::to_owned)
        .to_vec()
    } else {
        Vec::new()
    };
    let pki = pki::generate(&pki::PkiRequest {
        apiserver_sans: &apiserver_sans,
        node: config.node.then_some((net.node_name, net.node_ip)),
    })?;
    let ports = free_ports(11)?;
    let [
        etcd_client_port,
        etcd_peer_port,
        apiserver_port,
        controller_manager_port,
        scheduler_port,
        ref node_ports @ ..,
    ] = ports[..]
    else {
        unreachable!("free_ports(11) returns 11 ports")
    };
    let api_url = format!("https://{listen_ip}:{apiserver_port}");
    let mut control_plane = ControlPlane {
        api_url: api_url.clone(),
        temp_dir: temp_dir.clone(),
        ca_cert_der: pki.ca_cert_der.clone(),
        admin_token: admin_token.clone(),
        operator_token: operator_token.clone(),
        admin_kubeconfig: temp_dir.join("admin.kubeconfig"),
        operator_kubeconfig: temp_dir.join("operator.kubeconfig"),
        crd_names: Vec::new(),
        controller_manager: binaries.kube_controller_manager.is_some(),
        processes: Mutex::new(Vec::new()),
        node: None,
    };

    let path = |name: &str| temp_dir.join(name);
    write_file(&path("ca.crt"), &pki.ca_cert_pem)?;
    write_file(&path("apiserver.crt"), &pki.serving_cert_pem)?;
    write_file(&path("apiserver.key"), &pki.serving_key_pem)?;
    write_file(&path("service-account.key"), &pki.service_account_key_pem)?;
    write_file(
        &path("service-account.pub"),
        &pki.service_account_public_key_pem,
    )?;
    if let Some(node_pki) = &pki.node {
        write_file(
            &path("apiserver-kubelet-client.crt"),
            &node_pki.apiserver_kubelet_client_cert_pem,
        )?;
        write_file(
            &path("apiserver-kubelet-client.key"),
            &node_pki.apiserver_kubelet_client_key_pem,
        )?;
    }
    let node_user = format!("system:node:{}", net.node_name);
    // --token-auth-file: token,user,uid,"group1,group2"
    write_file(
        &path("tokens.csv"),
        &format!(
            "{admin_token},{ADMIN_USER},opstack-test-admin-uid,\"system:masters,system:authenticated\"\n\
             {operator_token},{OPERATOR_USER},opstack-operator-uid,\"{}\"\n\
             {node_token},{node_user},opstack-node-uid,\"{NODE_USER_GROUP},system:authenticated\"\n",
            OPERATOR_GROUPS.join(",")
        ),
    )?;
    write_file(
        &control_plane.admin_kubeconfig,
        &kubeconfig_yaml(&api_url, &path("ca.crt"), ADMIN_USER, &admin_token),
    )?;
    write_file(
        &control_plane.operator_kubeconfig,
        &kubeconfig_yaml(&api_url, &path("ca.crt"), OPERATOR_USER, &operator_token),
    )?;

    let etcd_client_url = format!("http://127.0.0.1:{etcd_client_port}");
    let etcd_peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
    let etcd_args = vec![
        "--name=harness".to_owned(),
        format!("--data-dir={}", path("etcd").display()),
        format!("--listen-client-urls={etcd_client_url}"),
        format!("--advertise-client-urls={etcd_client_url}"),
        format!("--listen-peer-urls={etcd_peer_url}"),
        format!("--initial-advertise-peer-urls={etcd_peer_url}"),
        format!("--initial-cluster=harness={etcd_peer_url}"),
        // Throwaway data: durability costs seconds of fsync per test run for nothing.
        "--unsafe-no-fsync=true".to_owned(),
        "--log-level=warn".to_owned(),
    ];
    control_plane.spawn("etcd", &binaries.etcd, &etcd_args)?;

    let mut apiserver_args = vec![
        format!("--etcd-servers={etcd_client_url}"),
        format!("--bind-address={listen_ip}"),
        // Without it the apiserver looks for a default route, and exits if there is none.
        format!("--advertise-address={listen_ip}"),
        format!("--secure-port={apiserver_port}"),
        format!("--cert-dir={}", path("apiserver-certs").display()),
        format!("--tls-cert-file={}", path("apiserver.crt").display()),
        format!("--tls-private-key-file={}", path("apiserver.key").display()),
        format!("--token-auth-file={}", path("tokens.csv").display()),
        "--service-account-issuer=https://kubernetes.default.svc".to_owned(),
        format!(
            "--service-account-key-file={}",
            path("service-account.pub").display()
        ),
        format!(
            "--service-account-signing-key-file={}",
            path("service-account.key").display()
        ),
        "--profiling=false".to_owned(),
    ];
    if config.node {
        apiserver_args.extend([
            // The kubelet is authorized as a node, and may only touch its own Node and pods.
            "--authorization-mode=Node,RBAC".to_owned(),
            "--enable-admission-plugins=NodeRestriction".to_owned(),
            format!("--service-cluster-ip-range={}", net.service_cidr),
            // logs, exec and port-forward: the apiserver calls the kubelet as a client it trusts.
            format!(
                "--kubelet-client-certificate={}",
                path("apiserver-kubelet-client.crt").display()
            ),
            format!(
                "--kubelet-client-key={}",
                path("apiserver-kubelet-client.key").display()
            ),
            format!(
                "--kubelet-certificate-authority={}",
                path("ca.crt").display()
            ),
            // The node's hostname resolves to 127.0.0.1 here, where the kubelet does not listen.
            "--kubelet-preferred-address-types=InternalIP,Hostname".to_owned(),
        ]);
    } else {
        apiserver_args.extend([
            "--authorization-mode=RBAC".to_owned(),
            // The endpoint reconciler publishes the advertise address as the `kubernetes`
            // Service's endpoint and refuses a loopback one; nothing here runs in a pod.
            "--endpoint-reconciler-type=none".to_owned(),
            "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
            // No controller mints service-account tokens here, so pods could not be admitted.
            "--disable-admission-plugins=ServiceAccount".to_owned(),
        ]);
    }
    control_plane.spawn("kube-apiserver", &binaries.kube_apiserver, &apiserver_args)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(HarnessError::Runtime)?;
    runtime.block_on(async {
        let admin = make_client(control_plane.admin_config());
        control_plane
            .wait_until_ready("kube-apiserver /readyz", STARTUP_TIMEOUT, || {
                let admin = admin.clone();
                async move {
                    let request = http::Request::get("/readyz")
                        .body(Vec::new())
                        .expect("a GET request");
                    admin.request_text(request).await.map(drop)
                }
            })
            .await?;

        if let Some(kube_controller_manager) = &binaries.kube_controller_manager {
            let controllers = if config.node {
                format!("{CONTROLLERS},{NODE_CONTROLLERS}")
            } else {
                CONTROLLERS.to_owned()
            };
            let mut controller_manager_args =
                control_plane.component_args(controller_manager_port, "controller-manager");
            controller_manager_args.push(format!("--controllers={controllers}"));
            if config.node {
                // Published into every namespace as kube-root-ca.crt, for in-cluster clients.
                controller_manager_args
                    .push(format!("--root-ca-file={}", path("ca.crt").display()));
            }
            control_plane.spawn(
                "kube-controller-manager",
                kube_controller_manager,
                &controller_manager_args,
            )?;
            control_plane
                .wait_until_healthy("kube-controller-manager", controller_manager_port)
                .await?;
        }
        if let Some(prepared) = prepared_node {
            let scheduler = prepared.binaries.kube_scheduler.clone();
            let scheduler_args = control_plane.component_args(scheduler_port, "scheduler");
            control_plane.spawn("kube-scheduler", &scheduler, &scheduler_args)?;
            control_plane
                .wait_until_healthy("kube-scheduler", scheduler_port)
                .await?;
            control_plane.install_crds(&admin, &config.crds).await?;
            let node_pki = pki.node.as_ref().expect("node certificates with a node");
            let join = node::Join {
                ca_pem: &pki.ca_cert_pem,
                kubelet_kubeconfig: kubeconfig_yaml(
                    &api_url,
                    &prepared.state.join("ca.crt"),
                    &node_user,
                    &node_token,
                ),
                admin_kubeconfig: &control_plane.admin_kubeconfig,
                admin_context: ADMIN_USER,
                kubelet_cert_pem: &node_pki.kubelet_cert_pem,
                kubelet_key_pem: &node_pki.kubelet_key_pem,
                ports: node_ports.try_into().expect("six node ports"),
            };
            let started = node::Node::start(
                prepared,
                join,
                &admin,
                control_plane.admin_config(),
                &mut |name, program, args, env| {
                    control_plane
                        .spawn_with_env(name, program, args, env)
                        .map_err(|e| e.to_string())
                },
                &|| {
                    control_plane
                        .check_processes_alive()
                        .map_err(|e| e.to_string())
                },
            )
            .await;
            match started {
                Ok(node) => control_plane.node = Some(node),
                Err(message) => {
                    return Err(HarnessError::NodeStart {
                        message,
                        logs: control_plane.all_log_tails(),
                    });
                }
            }
            Ok(())
        } else {
            control_plane.install_crds(&admin, &config.crds).await
        }
    })?;
    Ok(control_plane)
}

impl ControlPlane {
    fn spawn(&self, name: &str, program: &Path, args: &[String]) -> Result<(), HarnessError> {
        self.spawn_with_env(name, program, args, &[])
    }

    fn spawn_with_env(
        &self,
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
    ) -> Result<(), HarnessError> {
        let log_path = self.temp_dir.join(format!("{name}.log"));
        let process = process::spawn(name, program, args, env, &log_path).map_err(|source| {
            HarnessError::Spawn {
                name: name.to_owned(),
                program: program.to_owned(),
                source,
            }
        })?;
        self.processes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(process);
        Ok(())
    }

    /// The flags kube-controller-manager and kube-scheduler share: the admin's kubeconfig for
    /// everything, no leader election, a secure port on loopback with a self-signed cert.
    fn component_args(&self, port: u16, cert_dir: &str) -> Vec<String> {
        let kubeconfig = self.admin_kubeconfig.display();
        vec![
            format!("--kubeconfig={kubeconfig}"),
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            "--leader-elect=false".to_owned(),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--secure-port={port}"),
            format!(
                "--cert-dir={}",
                self.temp_dir.join(format!("{cert_dir}-certs")).display()
            ),
            "--profiling=false".to_owned(),
        ]
    }

    /// Waits for a component's `/healthz` on loopback (self-signed cert, no credentials needed).
    async fn wait_until_healthy(&self, name: &str, port: u16) -> Result<(), HarnessError> {
        let mut health_config = kube::Config::new(
            format!("https://127.0.0.1:{port}")
                .parse()
                .expect("a valid URL"),
        );
        health_config.accept_invalid_certs = true;
        let health_client = make_client(health_config);
        self.wait_until_ready(&format!("{name} /healthz"), STARTUP_TIMEOUT, || {
            let health_client = health_client.clone();
            async move {
                let request = http::Request::get("/healthz")
                    .body(Vec::new())
                    .expect("a GET request");
                health_client.request_text(request).await.map(drop)
            }
        })
        .await
    }

    /// Fails at once if a process has exited (with its log), else with every log's end.
    fn check_processes_alive(&self) -> Result<(), HarnessError> {
        let mut processes = self
            .processes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for process in processes.iter_mut() {
            if let Some(status) = process.exit_status() {
                return Err(HarnessError::ExitedEarly {
                    name: process.name.clone(),
                    status,
                    log: process.log_path.clone(),
                    tail: process.log_tail(LOG_TAIL_LINES),
                    bin_dir: binaries::bin_dir().0,
                });
            }
        }
        Ok(())
    }

    fn all_log_tails(&self) -> String {
        let processes = self
            .processes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        processes
            .iter()
            .map(|process| {
                format!(
                    "--- last lines of {} ({}):\n{}",
                    process.name,
                    process.log_path.display(),
                    process.log_tail(LOG_TAIL_LINES)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Polls `probe` until it succeeds, failing early if a process died.
    async fn wait_until_ready<F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: F,
    ) -> Result<(), HarnessError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), kube::Error>>,
    {
        let started = Instant::now();
        loop {
            self.check_processes_alive()?;
            let last_error = match probe().await {
                Ok(()) => return Ok(()),
                Err(error) => error.to_string(),
            };
            if started.elapsed() > timeout {
                return Err(HarnessError::NotReady {
                    what: what.to_owned(),
                    waited: started.elapsed(),
                    last_error,
                    logs: self.all_log_tails(),
                    bin_dir: binaries::bin_dir().0,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Server-side applies every CRD, then waits until each is Established.
    async fn install_crds(
        &mut self,
        admin: &Client,
        crds: &[CustomResourceDefinition],
    ) -> Result<(), HarnessError> {
        let api = Api::<CustomResourceDefinition>::all(admin.clone());
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(&name, &params, &Patch::Apply(crd)).await?;
            self.crd_names.push(name);
        }
        for name in &self.crd_names {
            self.wait_until_ready(
                &format!("CRD {name} Established"),
                ESTABLISHED_TIMEOUT,
                || {
                    let api = api.clone();
                    async move {
                        let crd = api.get(name).await?;
                        if is_established(&crd) {
                            Ok(())
                        } else {
                            Err(kube::Error::Service(
                                format!("CRD {name} is not Established yet").into(),
                            ))
                        }
                    }
                },
            )
            .await?;
        }
        Ok(())
    }
}

/// Whether a CRD has the condition `Established=True`.
pub fn is_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|condition| condition.type_ == "Established" && condition.status == "True")
        })
}

/// Splits on whitespace outside double quotes and drops the quotes; no escapes. Enough for what
/// the harness reads: `iptables -S` lines (quotes only around values with spaces, such as
/// `--comment "kubernetes service portals"`) and the Containerfile instructions it supports.
pub(crate) fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod split_words_tests {
    #[test]
    fn a_quoted_comment_is_one_word_of_a_rule() {
        assert_eq!(
            crate::split_words(
                r#"-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD"#
            ),
            [
                "-A",
                "FORWARD",
                "-m",
                "comment",
                "--comment",
                "kubernetes forwarding rules",
                "-j",
                "KUBE-FORWARD"
            ]
        );
    }
}
