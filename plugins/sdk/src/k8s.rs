//! Builders for the objects every renderer needs, already compliant with the host's envelope:
//! Pod Security "restricted" contexts, Secrets mounted read-only as files, named ports.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    ExecAction, HTTPGetAction, PodSecurityContext, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec,
    TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::Flags;

/// The standard `app.kubernetes.io/*` labels of one component of one resource.
/// (The host stamps them too; rendering them keeps selectors and objects consistent.)
pub fn labels(name: &str, instance: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/component".to_owned(),
            component.to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), instance.to_owned()),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "opstack-operator".to_owned(),
        ),
        ("app.kubernetes.io/name".to_owned(), name.to_owned()),
    ])
}

/// Metadata with a name and labels; namespace and owner references are the host's job.
pub fn meta(name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(labels.clone()),
        ..Default::default()
    }
}

/// A container security context that passes Pod Security "restricted", with a read-only root.
pub fn restricted_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..Default::default()
    }
}

/// A pod security context that passes Pod Security "restricted", running as `uid`, with
/// volumes group-owned by `uid` so the process can write its data directory.
pub fn restricted_pod_security_context(uid: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        fs_group_change_policy: Some("OnRootMismatch".to_owned()),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..Default::default()
    }
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        localhost_profile: None,
    }
}

/// A named TCP container port.
pub fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: port,
        protocol: Some("TCP".to_owned()),
        ..Default::default()
    }
}

/// An HTTP GET probe on a named port.
pub fn http_probe(path: &str, port: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(port.to_owned()),
            scheme: Some("HTTP".to_owned()),
            ..Default::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(5),
        ..Default::default()
    }
}

/// A TCP-connect probe on a named port.
pub fn tcp_probe(port: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(port.to_owned()),
            host: None,
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(5),
        ..Default::default()
    }
}

/// A probe running a command in the container.
pub fn exec_probe(command: &[&str], period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command.iter().map(|s| (*s).to_owned()).collect()),
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(5),
        ..Default::default()
    }
}

/// A volume of a Secret, mounted read-only with mode 0400: keys are files, never env vars.
pub fn secret_volume(volume: &str, secret_name: &str) -> Volume {
    Volume {
        name: volume.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret_name.to_owned()),
            default_mode: Some(0o400),
            optional: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A volume of a ConfigMap.
pub fn config_map_volume(volume: &str, config_map: &str) -> Volume {
    Volume {
        name: volume.to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.to_owned(),
            default_mode: Some(0o444),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An environment variable from one key of a Secret (`valueFrom.secretKeyRef`, not optional).
pub fn secret_env(name: &str, secret_name: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret_name.to_owned(),
                key: key.to_owned(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
    }
}

/// Mounts a volume at `path`. Never with `subPath`: subPath mounts do not see Secret rotation.
pub fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(read_only),
        ..Default::default()
    }
}

/// A container with the restricted security context, built step by step.
#[derive(Debug, Clone)]
pub struct ContainerBuilder {
    container: Container,
    flags: Flags,
}

impl ContainerBuilder {
    pub fn new(name: &str, image: &str) -> Self {
        ContainerBuilder {
            container: Container {
                name: name.to_owned(),
                image: Some(image.to_owned()),
                image_pull_policy: Some("IfNotPresent".to_owned()),
                security_context: Some(restricted_security_context()),
                termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
                ..Default::default()
            },
            flags: Flags::new(),
        }
    }

    /// The executable (`command`); args come from [`ContainerBuilder::flags`] and [`ContainerBuilder::arg`].
    pub fn command(mut self, command: &[&str]) -> Self {
        self.container.command = Some(command.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// Positional args placed before the flags (e.g. a subcommand such as `node`).
    pub fn arg(mut self, arg: &str) -> Self {
        self.container
            .args
            .get_or_insert_with(Vec::new)
            .push(arg.to_owned());
        self
    }

    /// The flags, rendered after the positional args in stable order.
    pub fn flags(mut self, flags: Flags) -> Self {
        self.flags = flags;
        self
    }

    pub fn port(mut self, name: &str, port: i32) -> Self {
        self.container
            .ports
            .get_or_insert_with(Vec::new)
            .push(container_port(name, port));
        self
    }

    /// A literal environment variable. Never for secrets: mount those as files.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.container
            .env
            .get_or_insert_with(Vec::new)
            .push(EnvVar {
                name: name.to_owned(),
                value: Some(value.to_owned()),
                value_from: None,
            });
        self
    }

    /// An environment variable filled from one key of a Secret (`valueFrom.secretKeyRef`): the
    /// route for a binary that takes a secret only as a value, never as a file (e.g.
    /// `OP_BATCHER_PRIVATE_KEY`). The value never appears in the rendered object.
    pub fn env_from_secret(mut self, name: &str, secret_name: &str, key: &str) -> Self {
        self.container
            .env
            .get_or_insert_with(Vec::new)
            .push(secret_env(name, secret_name, key));
        self
    }

    /// Any environment variable, e.g. one built with [`secret_env`].
    pub fn env_var(mut self, env: EnvVar) -> Self {
        self.container.env.get_or_insert_with(Vec::new).push(env);
        self
    }

    /// `imagePullPolicy` (`Always`, `IfNotPresent` or `Never`); `IfNotPresent` by default.
    pub fn pull_policy(mut self, policy: &str) -> Self {
        self.container.image_pull_policy = Some(policy.to_owned());
        self
    }

    pub fn mount(mut self, volume: &str, path: &str, read_only: bool) -> Self {
        self.container
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(mount(volume, path, read_only));
        self
    }

    pub fn readiness(mut self, probe: Probe) -> Self {
        self.container.readiness_probe = Some(probe);
        self
    }

    pub fn liveness(mut self, probe: Probe) -> Self {
        self.container.liveness_probe = Some(probe);
        self
    }

    pub fn startup(mut self, probe: Probe) -> Self {
        self.container.startup_probe = Some(probe);
        self
    }

    pub fn resources(mut self, resources: Option<ResourceRequirements>) -> Self {
        self.container.resources = resources;
        self
    }

    pub fn build(mut self) -> Container {
        let flags = self.flags.to_args();
        if !flags.is_empty() {
            self.container
                .args
                .get_or_insert_with(Vec::new)
                .extend(flags);
        }
        self.container
    }
}

/// A Service over the pods carrying `selector`, built step by step.
#[derive(Debug, Clone)]
pub struct ServiceBuilder {
    service: Service,
}

impl ServiceBuilder {
    pub fn new(
        name: &str,
        labels: &BTreeMap<String, String>,
        selector: &BTreeMap<String, String>,
    ) -> Self {
        ServiceBuilder {
            service: Service {
                metadata: meta(name, labels),
                spec: Some(ServiceSpec {
                    selector: Some(selector.clone()),
                    type_: Some("ClusterIP".to_owned()),
                    ..Default::default()
                }),
                status: None,
            },
        }
    }

    fn spec(&mut self) -> &mut ServiceSpec {
        self.service.spec.get_or_insert_with(Default::default)
    }

    /// No cluster IP: DNS resolves to the pods (what a StatefulSet's `serviceName` needs).
    pub fn headless(mut self) -> Self {
        self.spec().cluster_ip = Some("None".to_owned());
        self.spec().publish_not_ready_addresses = Some(true);
        self
    }

    /// `ClusterIP`, `NodePort` or `LoadBalancer`.
    pub fn type_(mut self, type_: &str) -> Self {
        self.spec().type_ = Some(type_.to_owned());
        self
    }

    /// A TCP port forwarding to the container port of the same name.
    pub fn port(mut self, name: &str, port: i32) -> Self {
        self.spec()
            .ports
            .get_or_insert_with(Vec::new)
            .push(ServicePort {
                name: Some(name.to_owned()),
                port,
                protocol: Some("TCP".to_owned()),
                target_port: Some(IntOrString::String(name.to_owned())),
                ..Default::default()
            });
        self
    }

    pub fn build(self) -> Service {
        self.service
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_restricted_by_default() {
        let c = ContainerBuilder::new("op-node", "img:1").build();
        let sc = c.security_context.unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.capabilities.unwrap().drop.unwrap(), ["ALL"]);
        assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    }

    #[test]
    fn positional_args_come_before_sorted_flags() {
        let mut flags = Flags::new();
        flags.set("z", 1).set("a", 2);
        let c = ContainerBuilder::new("c", "i")
            .arg("node")
            .flags(flags)
            .build();
        assert_eq!(c.args.unwrap(), ["node", "--a=2", "--z=1"]);
    }

    #[test]
    fn secret_volumes_are_read_only_files() {
        let v = secret_volume("jwt", "node-jwt");
        assert_eq!(v.secret.unwrap().default_mode, Some(0o400));
        assert_eq!(mount("jwt", "/secrets/jwt", true).sub_path, None);
    }

    #[test]
    fn headless_services_target_named_ports() {
        let l = labels("op-node", "a", "node");
        let s = ServiceBuilder::new("a", &l, &l)
            .headless()
            .port("rpc", 9545)
            .build();
        let spec = s.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(
            spec.ports.unwrap()[0].target_port,
            Some(IntOrString::String("rpc".into()))
        );
    }
}
