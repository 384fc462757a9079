//! Pod Security Standards, profile "restricted": the 19 controls the built-in admission runs
//! (baseline 1–12 plus restricted 13–19), read from `policy/check_*.go` of
//! kubernetes/pod-security-admission@8f84a87 (the code behind
//! https://kubernetes.io/docs/concepts/security/pod-security-standards/). The numbering is this
//! project's; `docs/security.md` lists the controls by number.
//!
//! The host runs this on every rendered pod template, whoever rendered it, so a chain's plugin
//! cannot smuggle a privileged pod past a namespace that does not enforce the profile itself.

use std::fmt;

use k8s_openapi::api::core::v1::{
    AppArmorProfile, Container, PodSecurityContext, PodSpec, Probe, SELinuxOptions, SeccompProfile,
    SecurityContext,
};

/// One broken control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSecurityViolation {
    /// Control number (1–19), as listed in `docs/security.md`.
    pub control: u8,
    /// Control name, e.g. `Privilege escalation`.
    pub name: &'static str,
    /// Where, e.g. `containers[op-node].securityContext.allowPrivilegeEscalation`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for PodSecurityViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "restricted control {} ({}): {}: {}",
            self.control, self.name, self.field, self.message
        )
    }
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

const SELINUX_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// Checks a pod spec against every control; an empty list means the pod is admitted.
pub fn check_restricted(pod: &PodSpec) -> Vec<PodSecurityViolation> {
    let mut found = Vec::new();
    let mut violate = |control: u8, name: &'static str, field: String, message: String| {
        found.push(PodSecurityViolation {
            control,
            name,
            field,
            message,
        })
    };

    // 1. Host namespaces.
    for (field, value) in [
        ("hostNetwork", pod.host_network),
        ("hostPID", pod.host_pid),
        ("hostIPC", pod.host_ipc),
    ] {
        if value == Some(true) {
            violate(
                1,
                "Host namespaces",
                field.into(),
                "must be unset or false".into(),
            );
        }
    }
    // 4. HostPath volumes; 13. Volume types.
    for volume in pod.volumes.iter().flatten() {
        let field = format!("volumes[{}]", volume.name);
        if volume.host_path.is_some() {
            violate(
                4,
                "HostPath volumes",
                format!("{field}.hostPath"),
                "hostPath volumes are forbidden".into(),
            );
        }
        let allowed = volume.config_map.is_some()
            || volume.csi.is_some()
            || volume.downward_api.is_some()
            || volume.empty_dir.is_some()
            || volume.ephemeral.is_some()
            || volume.persistent_volume_claim.is_some()
            || volume.projected.is_some()
            || volume.secret.is_some()
            || volume.image.is_some();
        if !allowed {
            violate(
                13,
                "Volume types",
                field,
                "only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret and image volumes are allowed".into(),
            );
        }
    }
    // 10. Sysctls.
    for sysctl in pod
        .security_context
        .as_ref()
        .and_then(|s| s.sysctls.as_ref())
        .into_iter()
        .flatten()
    {
        if !SAFE_SYSCTLS.contains(&sysctl.name.as_str()) {
            violate(
                10,
                "Sysctls",
                format!("securityContext.sysctls[{}]", sysctl.name),
                "not in the safe set".into(),
            );
        }
    }

    let pod_sc = pod.security_context.as_ref();
    let host_users_off = pod.host_users == Some(false);
    // 6, 7, 9, 11 at pod level.
    if let Some(sc) = pod_sc {
        check_shared_fields(
            SharedFields::from(sc),
            "securityContext",
            host_users_off,
            &mut violate,
        );
    }
    let pod_non_root = pod_sc.and_then(|s| s.run_as_non_root) == Some(true);
    let pod_seccomp_set = pod_sc.and_then(|s| s.seccomp_profile.as_ref()).is_some();

    for (list, container) in all_containers(pod) {
        let field = format!("{list}[{}]", container.name);
        let sc = container.security_context.as_ref();
        // 5. Host ports.
        for port in container.ports.iter().flatten() {
            if port.host_port.is_some_and(|p| p != 0) {
                violate(
                    5,
                    "Host ports",
                    format!("{field}.ports[{}].hostPort", port.container_port),
                    "must be unset or 0".into(),
                );
            }
        }
        // 12. Probe and lifecycle hosts.
        let probes = [
            ("livenessProbe", &container.liveness_probe),
            ("readinessProbe", &container.readiness_probe),
            ("startupProbe", &container.startup_probe),
        ];
        for (probe_name, probe) in probes {
            if probe.as_ref().is_some_and(probe_sets_host) {
                violate(
                    12,
                    "Probe host",
                    format!("{field}.{probe_name}"),
                    "httpGet.host and tcpSocket.host must be unset".into(),
                );
            }
        }
        if let Some(lifecycle) = &container.lifecycle {
            for (hook_name, hook) in [
                ("postStart", &lifecycle.post_start),
                ("preStop", &lifecycle.pre_stop),
            ] {
                let sets_host = hook.as_ref().is_some_and(|h| {
                    h.http_get.as_ref().is_some_and(|g| g.host.is_some())
                        || h.tcp_socket.as_ref().is_some_and(|t| t.host.is_some())
                });
                if sets_host {
                    violate(
                        12,
                        "Probe host",
                        format!("{field}.lifecycle.{hook_name}"),
                        "httpGet.host and tcpSocket.host must be unset".into(),
                    );
                }
            }
        }
        check_container_security(
            &field,
            sc,
            pod_non_root,
            pod_seccomp_set,
            host_users_off,
            &mut violate,
        );
    }
    found
}

fn check_container_security(
    field: &str,
    sc: Option<&SecurityContext>,
    pod_non_root: bool,
    pod_seccomp_set: bool,
    host_users_off: bool,
    violate: &mut impl FnMut(u8, &'static str, String, String),
) {
    let sc_field = format!("{field}.securityContext");
    // 14. Privilege escalation must be explicitly false.
    if sc.and_then(|s| s.allow_privilege_escalation) != Some(false) {
        violate(
            14,
            "Privilege escalation",
            format!("{sc_field}.allowPrivilegeEscalation"),
            "must be set to false".into(),
        );
    }
    // 15. Running as non-root.
    match sc.and_then(|s| s.run_as_non_root) {
        Some(false) if !host_users_off => violate(
            15,
            "Running as non-root",
            format!("{sc_field}.runAsNonRoot"),
            "must not be false".into(),
        ),
        None if !pod_non_root && !host_users_off => violate(
            15,
            "Running as non-root",
            format!("{sc_field}.runAsNonRoot"),
            "must be true here or in the pod's securityContext".into(),
        ),
        _ => {}
    }
    // 17. Seccomp must be set somewhere.
    if sc.and_then(|s| s.seccomp_profile.as_ref()).is_none() && !pod_seccomp_set {
        violate(
            17,
            "Seccomp",
            format!("{sc_field}.seccompProfile"),
            "must be RuntimeDefault or Localhost here or in the pod's securityContext".into(),
        );
    }
    // 18. Capabilities: drop ALL; add at most NET_BIND_SERVICE.
    let capabilities = sc.and_then(|s| s.capabilities.as_ref());
    if !capabilities
        .and_then(|c| c.drop.as_ref())
        .is_some_and(|d| d.iter().any(|c| c == "ALL"))
    {
        violate(
            18,
            "Capabilities",
            format!("{sc_field}.capabilities.drop"),
            "must include ALL".into(),
        );
    }
    for added in capabilities
        .and_then(|c| c.add.as_ref())
        .into_iter()
        .flatten()
    {
        if !BASELINE_CAPABILITIES.contains(&added.as_str()) {
            violate(
                3,
                "Capabilities",
                format!("{sc_field}.capabilities.add"),
                format!("{added} is not in the baseline set"),
            );
        }
        if added != "NET_BIND_SERVICE" {
            violate(
                18,
                "Capabilities",
                format!("{sc_field}.capabilities.add"),
                format!("{added} is not allowed; only NET_BIND_SERVICE"),
            );
        }
    }
    let Some(sc) = sc else { return };
    // 2. Privileged.
    if sc.privileged == Some(true) {
        violate(
            2,
            "Privileged",
            format!("{sc_field}.privileged"),
            "must be unset or false".into(),
        );
    }
    // 8 and 19. /proc mount.
    if sc.proc_mount.as_deref().is_some_and(|m| m != "Default") {
        violate(
            8,
            "/proc mount",
            format!("{sc_field}.procMount"),
            "must be unset or Default".into(),
        );
        violate(
            19,
            "/proc mount",
            format!("{sc_field}.procMount"),
            "must be unset or Default, even with user namespaces".into(),
        );
    }
    check_shared_fields(SharedFields::from(sc), &sc_field, host_users_off, violate);
}

/// The fields pod and container security contexts share, checked the same way at both levels:
/// AppArmor (6), SELinux (7), seccomp type (9), Windows HostProcess (11), non-root user (16).
struct SharedFields<'a> {
    app_armor: Option<&'a AppArmorProfile>,
    selinux: Option<&'a SELinuxOptions>,
    seccomp: Option<&'a SeccompProfile>,
    host_process: Option<bool>,
    run_as_user: Option<i64>,
}

impl<'a> From<&'a PodSecurityContext> for SharedFields<'a> {
    fn from(sc: &'a PodSecurityContext) -> Self {
        SharedFields {
            app_armor: sc.app_armor_profile.as_ref(),
            selinux: sc.se_linux_options.as_ref(),
            seccomp: sc.seccomp_profile.as_ref(),
            host_process: sc.windows_options.as_ref().and_then(|w| w.host_process),
            run_as_user: sc.run_as_user,
        }
    }
}

impl<'a> From<&'a SecurityContext> for SharedFields<'a> {
    fn from(sc: &'a SecurityContext) -> Self {
        SharedFields {
            app_armor: sc.app_armor_profile.as_ref(),
            selinux: sc.se_linux_options.as_ref(),
            seccomp: sc.seccomp_profile.as_ref(),
            host_process: sc.windows_options.as_ref().and_then(|w| w.host_process),
            run_as_user: sc.run_as_user,
        }
    }
}

fn check_shared_fields(
    fields: SharedFields<'_>,
    at: &str,
    host_users_off: bool,
    violate: &mut impl FnMut(u8, &'static str, String, String),
) {
    if let Some(profile) = fields.app_armor
        && profile.type_ != "RuntimeDefault"
        && profile.type_ != "Localhost"
    {
        violate(
            6,
            "AppArmor",
            format!("{at}.appArmorProfile.type"),
            "must be RuntimeDefault or Localhost".into(),
        );
    }
    if let Some(selinux) = fields.selinux {
        check_selinux(
            selinux.type_.as_deref(),
            selinux.user.is_some(),
            selinux.role.is_some(),
            at,
            violate,
        );
    }
    if let Some(seccomp) = fields.seccomp
        && seccomp.type_ != "RuntimeDefault"
        && seccomp.type_ != "Localhost"
    {
        violate(
            9,
            "Seccomp",
            format!("{at}.seccompProfile.type"),
            format!("{:?} is not allowed; use RuntimeDefault", seccomp.type_),
        );
    }
    if fields.host_process == Some(true) {
        violate(
            11,
            "Windows HostProcess",
            format!("{at}.windowsOptions.hostProcess"),
            "must be unset or false".into(),
        );
    }
    if fields.run_as_user == Some(0) && !host_users_off {
        violate(
            16,
            "Non-root user",
            format!("{at}.runAsUser"),
            "must not be 0".into(),
        );
    }
}

fn check_selinux(
    type_: Option<&str>,
    sets_user: bool,
    sets_role: bool,
    at: &str,
    violate: &mut impl FnMut(u8, &'static str, String, String),
) {
    if type_.is_some_and(|t| !SELINUX_TYPES.contains(&t)) {
        violate(
            7,
            "SELinux",
            format!("{at}.seLinuxOptions.type"),
            "must be empty, container_t, container_init_t, container_kvm_t or container_engine_t"
                .into(),
        );
    }
    if sets_user || sets_role {
        violate(
            7,
            "SELinux",
            format!("{at}.seLinuxOptions"),
            "user and role must be unset".into(),
        );
    }
}

fn probe_sets_host(probe: &Probe) -> bool {
    probe.http_get.as_ref().is_some_and(|g| g.host.is_some())
        || probe.tcp_socket.as_ref().is_some_and(|t| t.host.is_some())
}

/// Every container of the pod with the list it is in. Ephemeral containers are checked
/// through their shared fields (security context, ports).
fn all_containers(pod: &PodSpec) -> Vec<(&'static str, Container)> {
    let mut all: Vec<(&'static str, Container)> = Vec::new();
    all.extend(pod.containers.iter().cloned().map(|c| ("containers", c)));
    all.extend(
        pod.init_containers
            .iter()
            .flatten()
            .cloned()
            .map(|c| ("initContainers", c)),
    );
    for ephemeral in pod.ephemeral_containers.iter().flatten() {
        all.push((
            "ephemeralContainers",
            Container {
                name: ephemeral.name.clone(),
                ports: ephemeral.ports.clone(),
                security_context: ephemeral.security_context.clone(),
                lifecycle: ephemeral.lifecycle.clone(),
                liveness_probe: ephemeral.liveness_probe.clone(),
                readiness_probe: ephemeral.readiness_probe.clone(),
                startup_probe: ephemeral.startup_probe.clone(),
                ..Default::default()
            },
        ));
    }
    all
}

/// The legacy AppArmor annotations on a pod template (control 6): `container.apparmor.security.beta.kubernetes.io/<c>`
/// must be `runtime/default` or `localhost/*`.
pub fn check_apparmor_annotations<'a>(
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Vec<PodSecurityViolation> {
    annotations
        .into_iter()
        .filter(|(key, _)| key.starts_with("container.apparmor.security.beta.kubernetes.io/"))
        .filter(|(_, value)| {
            value.as_str() != "runtime/default" && !value.starts_with("localhost/")
        })
        .map(|(key, _)| PodSecurityViolation {
            control: 6,
            name: "AppArmor",
            field: format!("metadata.annotations[{key}]"),
            message: "must be runtime/default or localhost/<profile>".into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::*;

    use super::*;

    /// A pod that passes every control: the baseline each test breaks in one place.
    fn compliant() -> PodSpec {
        PodSpec {
            automount_service_account_token: Some(false),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(1000),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            containers: vec![Container {
                name: "app".into(),
                security_context: Some(SecurityContext {
                    allow_privilege_escalation: Some(false),
                    capabilities: Some(Capabilities {
                        drop: Some(vec!["ALL".into()]),
                        add: None,
                    }),
                    ..Default::default()
                }),
                ports: Some(vec![ContainerPort {
                    container_port: 8545,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            volumes: Some(vec![Volume {
                name: "data".into(),
                empty_dir: Some(Default::default()),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    fn container_sc(pod: &mut PodSpec) -> &mut SecurityContext {
        pod.containers[0].security_context.as_mut().unwrap()
    }

    fn controls(pod: &PodSpec) -> Vec<u8> {
        let mut c: Vec<u8> = check_restricted(pod).iter().map(|v| v.control).collect();
        c.dedup();
        c
    }

    #[test]
    fn compliant_pod_passes_every_control() {
        assert_eq!(check_restricted(&compliant()), vec![]);
    }

    #[test]
    fn control_01_host_namespaces_are_refused() {
        let mut pod = compliant();
        pod.host_network = Some(true);
        assert_eq!(controls(&pod), [1]);
    }

    #[test]
    fn control_02_privileged_is_refused() {
        let mut pod = compliant();
        container_sc(&mut pod).privileged = Some(true);
        assert_eq!(controls(&pod), [2]);
    }

    #[test]
    fn control_03_capabilities_outside_baseline_are_refused() {
        let mut pod = compliant();
        container_sc(&mut pod).capabilities.as_mut().unwrap().add = Some(vec!["NET_RAW".into()]);
        assert!(controls(&pod).contains(&3));
    }

    #[test]
    fn control_04_host_path_volumes_are_refused() {
        let mut pod = compliant();
        pod.volumes = Some(vec![Volume {
            name: "host".into(),
            host_path: Some(HostPathVolumeSource {
                path: "/".into(),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        assert!(controls(&pod).contains(&4));
    }

    #[test]
    fn control_05_host_ports_are_refused() {
        let mut pod = compliant();
        pod.containers[0].ports.as_mut().unwrap()[0].host_port = Some(8545);
        assert_eq!(controls(&pod), [5]);
    }

    #[test]
    fn control_06_unconfined_apparmor_is_refused() {
        let mut pod = compliant();
        container_sc(&mut pod).app_armor_profile = Some(AppArmorProfile {
            type_: "Unconfined".into(),
            ..Default::default()
        });
        assert_eq!(controls(&pod), [6]);
        let annotations = std::collections::BTreeMap::from([(
            "container.apparmor.security.beta.kubernetes.io/app".to_string(),
            "unconfined".to_string(),
        )]);
        assert_eq!(check_apparmor_annotations(&annotations).len(), 1);
    }

    #[test]
    fn control_07_custom_selinux_user_or_type_is_refused() {
        let mut pod = compliant();
        container_sc(&mut pod).se_linux_options = Some(SELinuxOptions {
            type_: Some("spc_t".into()),
            ..Default::default()
        });
        assert_eq!(controls(&pod), [7]);
    }

    #[test]
    fn control_08_unmasked_proc_mount_is_refused() {
        let mut pod = compliant();
        container_sc(&mut pod).proc_mount = Some("Unmasked".into());
        assert!(controls(&pod).contains(&8));
    }

    #[test]
    fn control_09_unconfined_seccomp_is_refused() {
        let mut pod = compliant();
        pod.security_context.as_mut().unwrap().seccomp_profile = Some(SeccompProfile {
            type_: "Unconfined".into(),
            ..Default::default()
        });
        assert_eq!(controls(&pod), [9]);
    }

    #[test]
    fn control_10_unsafe_sysctls_are_refused() {
        let mut pod = compliant();
        pod.security_context.as_mut().unwrap().sysctls = Some(vec![Sysctl {
            name: "kernel.msgmax".into(),
            value: "1".into(),
        }]);
        assert_eq!(controls(&pod), [10]);
    }

    #[test]
    fn control_11_windows_host_process_is_refused() {
        let mut pod = compliant();
        container_sc(&mut pod).windows_options = Some(WindowsSecurityContextOptions {
            host_process: Some(true),
            ..Default::default()
        });
        assert_eq!(controls(&pod), [11]);
    }

    #[test]
    fn control_12_probe_host_is_refused() {
        let mut pod = compliant();
        pod.containers[0].liveness_probe = Some(Probe {
            http_get: Some(HTTPGetAction {
                host: Some("169.254.169.254".into()),
                port: k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(controls(&pod), [12]);
    }

    #[test]
    fn control_13_other_volume_types_are_refused() {
        let mut pod = compliant();
        pod.volumes = Some(vec![Volume {
            name: "nfs".into(),
            nfs: Some(NFSVolumeSource {
                server: "nfs".into(),
                path: "/".into(),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        assert_eq!(controls(&pod), [13]);
    }

    #[test]
    fn control_14_privilege_escalation_must_be_explicitly_false() {
        let mut pod = compliant();
        container_sc(&mut pod).allow_privilege_escalation = None;
        assert_eq!(controls(&pod), [14]);
    }

    #[test]
    fn control_15_non_root_must_be_required() {
        let mut pod = compliant();
        pod.security_context.as_mut().unwrap().run_as_non_root = None;
        assert_eq!(controls(&pod), [15]);
        let mut pod = compliant();
        container_sc(&mut pod).run_as_non_root = Some(false);
        assert_eq!(controls(&pod), [15]);
    }

    #[test]
    fn control_16_uid_zero_is_refused() {
        let mut pod = compliant();
        container_sc(&mut pod).run_as_user = Some(0);
        assert_eq!(controls(&pod), [16]);
    }

    #[test]
    fn control_17_seccomp_must_be_set() {
        let mut pod = compliant();
        pod.security_context.as_mut().unwrap().seccomp_profile = None;
        assert_eq!(controls(&pod), [17]);
    }

    #[test]
    fn control_18_capabilities_must_drop_all_and_add_only_net_bind_service() {
        let mut pod = compliant();
        container_sc(&mut pod).capabilities = None;
        assert_eq!(controls(&pod), [18]);
        let mut pod = compliant();
        container_sc(&mut pod).capabilities.as_mut().unwrap().add = Some(vec!["CHOWN".into()]);
        assert_eq!(controls(&pod), [18], "CHOWN is baseline but not restricted");
        let mut pod = compliant();
        container_sc(&mut pod).capabilities.as_mut().unwrap().add =
            Some(vec!["NET_BIND_SERVICE".into()]);
        assert_eq!(controls(&pod), Vec::<u8>::new());
    }

    #[test]
    fn control_19_proc_mount_is_refused_even_with_user_namespaces() {
        let mut pod = compliant();
        pod.host_users = Some(false);
        container_sc(&mut pod).proc_mount = Some("Unmasked".into());
        assert!(controls(&pod).contains(&19));
    }

    #[test]
    fn init_containers_are_checked_too() {
        let mut pod = compliant();
        pod.init_containers = Some(vec![Container {
            name: "init".into(),
            ..Default::default()
        }]);
        let violations = check_restricted(&pod);
        assert!(
            violations
                .iter()
                .any(|v| v.field.starts_with("initContainers[init]")),
            "{violations:?}"
        );
    }
}
