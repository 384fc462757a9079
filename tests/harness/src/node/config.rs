//! The node's configuration files, as pure functions of its addresses and paths, so every
//! setting has its reason next to it and can be read without starting anything.

use std::path::Path;

use serde_json::json;

/// Addresses and names of the one test node. Fixed, because a node leaves host state outside its
/// own directories (see `host.rs`) and a fixed set of names is what a crashed run's successor can
/// find and remove. Two runs at once on one machine are serialised by a lock instead.
pub struct Network {
    pub node_name: &'static str,
    /// On a host-only veth pair: the kubelet refuses a loopback node IP, and this machine has no
    /// `dummy` link driver.
    pub node_ip: &'static str,
    pub node_link: &'static str,
    pub node_link_peer: &'static str,
    pub bridge: &'static str,
    pub pod_cidr: &'static str,
    pub pod_gateway: &'static str,
    pub service_cidr: &'static str,
    /// The first address of the service range: the `kubernetes` Service.
    pub kubernetes_service_ip: &'static str,
    pub cluster_domain: &'static str,
}

pub const NETWORK: Network = Network {
    node_name: "opstk-node",
    node_ip: "10.201.0.1",
    node_link: "opstk-node0",
    node_link_peer: "opstk-node1",
    bridge: "opstk-cni0",
    pod_cidr: "10.202.0.0/24",
    pod_gateway: "10.202.0.1",
    service_cidr: "10.203.0.0/24",
    kubernetes_service_ip: "10.203.0.1",
    cluster_domain: "cluster.local",
};

/// The iptables chain that keeps pod traffic on this machine (see `host.rs`).
pub const ISOLATION_CHAIN: &str = "OPSTK-ISOLATE";

/// The sandbox image every pod starts with; built from `tests/node/pause.c`.
pub const PAUSE_IMAGE: &str = "localhost/opstack-test/pause:1";

/// The StorageClass the volume provisioner serves, marked as the cluster's default.
pub const STORAGE_CLASS: &str = "opstk-local";
/// The provisioner name PVCs of that class are handed to.
pub const PROVISIONER: &str = "opstack.test/local-volume";

/// Where everything of one running node lives.
pub struct Paths<'a> {
    pub state: &'a Path,
    pub bin: &'a Path,
}

impl Paths<'_> {
    pub fn containerd_socket(&self) -> std::path::PathBuf {
        self.state.join("containerd/containerd.sock")
    }
}

/// containerd 2.x (config format 3). Everything under the node's own directory, so a teardown
/// knows where to look, and nothing that reaches out of this machine.
pub fn containerd_toml(paths: &Paths<'_>) -> String {
    let state = paths.state.display();
    format!(
        r#"version = 3
root = "{state}/containerd/root"
state = "{state}/containerd/state"
# The opt plugin would create /opt/containerd and NRI /var/run/nri; neither is used here.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri"]
# No drop-in configuration from /etc/containerd.
imports = []

[grpc]
  address = "{state}/containerd/containerd.sock"

[ttrpc]
  address = "{state}/containerd/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  # Exec, attach and port-forward streams are served on loopback only.
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{PAUSE_IMAGE}"
  [plugins."io.containerd.cri.v1.images".registry]
    # Every registry resolves to a closed loopback port: a missing image fails at once, and no
    # pull ever leaves this machine.
    config_path = "{state}/containerd/certs.d"

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  # runc cannot lower oom_score_adj without CAP_SYS_RESOURCE, which root lacks here; without
  # this every sandbox fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  # This kernel has no hugetlb cgroup controller.
  disable_hugetlb_controller = true
  # Pod network namespaces under our state dir instead of /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{state}/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{state}/runc"
        SystemdCgroup = false
"#
    )
}

/// The registry host config that sends every pull to a closed port (`config_path` above).
pub fn containerd_default_hosts_toml() -> &'static str {
    "server = \"http://127.0.0.1:1\"\n\n[host.\"http://127.0.0.1:1\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
}

/// The pod network: a bridge with the gateway on the host, no masquerade and no default route,
/// so pods reach each other, Services and the node, and nothing beyond this machine.
pub fn cni_conflist(state: &Path) -> String {
    let net = &NETWORK;
    serde_json::to_string_pretty(&json!({
        "cniVersion": "1.0.0",
        "name": "opstk-pods",
        "plugins": [
            {
                "type": "bridge",
                "bridge": net.bridge,
                "isGateway": true,
                "isDefaultGateway": false,
                "ipMasq": false,
                // A pod reaching itself through its own Service.
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": state.join("cni/ipam"),
                    "ranges": [[{ "subnet": net.pod_cidr, "gateway": net.pod_gateway }]],
                    "routes": [
                        { "dst": net.service_cidr },
                        { "dst": format!("{}/32", net.node_ip) },
                    ],
                },
            },
            { "type": "portmap", "capabilities": { "portMappings": true }, "snat": false },
        ],
    }))
    .expect("JSON")
}

pub struct KubeletPorts {
    pub port: u16,
    pub healthz_port: u16,
}

/// KubeletConfiguration for a single node on cgroup v1 without CAP_SYS_RESOURCE.
pub fn kubelet_config(paths: &Paths<'_>, ports: &KubeletPorts) -> String {
    let state = paths.state;
    let net = &NETWORK;
    serde_json::to_string_pretty(&json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        // Kubernetes >= 1.35 refuses cgroup v1 unless told otherwise; this machine has only v1.
        "failCgroupV1": false,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": false,
        "containerRuntimeEndpoint": format!("unix://{}", paths.containerd_socket().display()),
        "address": net.node_ip,
        "port": ports.port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports.healthz_port,
        "tlsCertFile": state.join("kubelet/pki/kubelet.crt"),
        "tlsPrivateKeyFile": state.join("kubelet/pki/kubelet.key"),
        "authentication": {
            "anonymous": { "enabled": false },
            "webhook": { "enabled": true },
            "x509": { "clientCAFile": state.join("ca.crt") },
        },
        "authorization": { "mode": "Webhook" },
        "clusterDomain": net.cluster_domain,
        // CoreDNS runs on the host, bound to the node IP.
        "clusterDNS": [net.node_ip],
        // An empty host resolv.conf: pods resolve cluster names and nothing else.
        "resolvConf": state.join("resolv.conf"),
        "podLogsDir": state.join("pod-logs"),
        // Evictions and image garbage collection would make tests flaky for nothing.
        "evictionHard": { "memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        // The kubelet's own iptables chains are not needed: kube-proxy does Services.
        "makeIPTablesUtilChains": false,
        // With true the kubelet refuses to start here; with false it sets kernel.panic,
        // kernel.panic_on_oops and vm.overcommit_memory, which the teardown restores.
        "protectKernelDefaults": false,
        "serializeImagePulls": false,
        "maxPods": 60,
        "registerNode": true,
        "shutdownGracePeriod": "0s",
    }))
    .expect("JSON")
}

pub struct ProxyPorts {
    pub healthz_port: u16,
    pub metrics_port: u16,
}

/// kube-proxy in iptables mode, leaving the host's conntrack and route_localnet settings alone.
pub fn kube_proxy_config(kubeconfig: &Path, ports: &ProxyPorts) -> String {
    let net = &NETWORK;
    serde_json::to_string_pretty(&json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": { "kubeconfig": kubeconfig },
        "hostnameOverride": net.node_name,
        "bindAddress": net.node_ip,
        "healthzBindAddress": format!("{}:{}", net.node_ip, ports.healthz_port),
        "metricsBindAddress": format!("{}:{}", net.node_ip, ports.metrics_port),
        "clusterCIDR": net.pod_cidr,
        "nodePortAddresses": [format!("{}/32", net.node_ip)],
        // Zero: do not touch nf_conntrack_max and the conntrack timeouts.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        // Node ports on 127.0.0.1 would need net.ipv4.conf.all.route_localnet=1.
        "iptables": { "localhostNodePorts": false },
    }))
    .expect("JSON")
}

pub struct DnsPorts {
    pub health_port: u16,
    pub ready_port: u16,
}

/// CoreDNS serving the cluster domain from the API, on the node IP, with no forwarder: a name
/// outside the cluster does not resolve.
pub fn corefile(kubeconfig: &Path, kubeconfig_context: &str, ports: &DnsPorts) -> String {
    let net = &NETWORK;
    format!(
        ".:53 {{\n    bind {ip}\n    ready {ip}:{ready}\n    health {ip}:{health}\n    errors\n    cache 5\n    kubernetes {domain} in-addr.arpa ip6.arpa {{\n        kubeconfig {kubeconfig} {kubeconfig_context}\n        pods insecure\n        ttl 5\n    }}\n}}\n",
        ip = net.node_ip,
        ready = ports.ready_port,
        health = ports.health_port,
        domain = net.cluster_domain,
        kubeconfig = kubeconfig.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_no_default_route_and_no_masquerade() {
        let conflist: serde_json::Value =
            serde_json::from_str(&cni_conflist(Path::new("/state"))).unwrap();
        let bridge = &conflist["plugins"][0];
        assert_eq!(bridge["isDefaultGateway"], false);
        assert_eq!(bridge["ipMasq"], false);
        let routes = bridge["ipam"]["routes"].as_array().unwrap();
        assert!(routes.iter().all(|route| route["dst"] != "0.0.0.0/0"));
        assert_eq!(conflist["plugins"][1]["snat"], false);
    }

    #[test]
    fn containerd_keeps_its_files_and_pulls_on_this_machine() {
        let toml = containerd_toml(&Paths {
            state: Path::new("/state"),
            bin: Path::new("/bin"),
        });
        assert!(toml.contains("root = \"/state/containerd/root\""));
        assert!(toml.contains("netns_mounts_under_state_dir = true"));
        assert!(toml.contains("restrict_oom_score_adj = true"));
        assert!(containerd_default_hosts_toml().contains("127.0.0.1:1"));
    }
}
