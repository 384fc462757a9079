//! What every OP Stack Go service (op-batcher, op-proposer, op-challenger, and op-node where it
//! applies) shares through `op-service`: the txmgr, signer, log, metrics and RPC flags, the
//! `OP_<SVC>_*` environment route for values that must stay out of argv, and one restricted pod.
//!
//! Key handling follows ethereum-optimism/optimism@v1.19.6: the three services take a signing
//! key from `--private-key`, `--mnemonic` + `--hd-path` or a remote signer (`--signer.*`), and the
//! remote signer wins when its endpoint and address are set (`SignerFactoryFromConfig` in
//! `op-service/crypto/signature.go`; flags in `op-service/txmgr/cli.go` and
//! `op-service/signer/cli.go`). No key flag reads a file, and a flag would put the key in argv,
//! so a private key goes in `<PREFIX>_PRIVATE_KEY` from a `secretKeyRef`, never in a flag: every
//! flag also has an env var, and urfave/cli takes the flag over the env var. Every flag used here
//! is in the flag lists of op-batcher, op-proposer and op-challenger alike
//! (`plugins/testdata/flags/`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements,
    SeccompProfile, Service, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::crds::conventions::secret_purpose;
use crate::crds::releases::Component;
use crate::crds::{
    ImageSpec, LoggingConfig, MetricsConfig, OptimismNetworkSpec, PodSecurityDefaults,
    PrivateKeySource, RemoteSigner, SecretKeyRef, ServiceRpcConfig, TxManagerConfig,
};
use crate::{Flags, PluginError, RenderInput, k8s};

/// Where the remote signer's mTLS Secret (`ca.crt`, `tls.crt`, `tls.key`) is mounted.
pub const SIGNER_TLS_DIR: &str = "/secrets/signer-tls";
const SIGNER_TLS_VOLUME: &str = "signer-tls";

/// Flags, environment and volumes of one service container, collected by the helpers below and
/// then handed to a [`k8s::ContainerBuilder`] with [`ServiceParts::apply`].
#[derive(Debug, Clone, Default)]
pub struct ServiceParts {
    /// `OP_BATCHER`, `OP_PROPOSER`, `OP_CHALLENGER`, …: the prefix of the binary's env vars.
    pub env_prefix: String,
    pub flags: Flags,
    /// Rendered sorted by name, whatever the order of the calls.
    pub env: BTreeMap<String, EnvVar>,
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
}

impl ServiceParts {
    pub fn new(env_prefix: &str) -> Self {
        ServiceParts {
            env_prefix: env_prefix.to_owned(),
            ..Default::default()
        }
    }

    /// The start of every service that signs L1 transactions (op-batcher, op-proposer,
    /// op-challenger): `--l1-eth-rpc` (or `<prefix>_L1_ETH_RPC` from its Secret) and the signing
    /// key (see [`ServiceParts::signing`]).
    pub fn l1_signer(
        env_prefix: &str,
        input: &RenderInput,
        network: &OptimismNetworkSpec,
        private_key: Option<&PrivateKeySource>,
        remote_signer: Option<&RemoteSigner>,
    ) -> Result<Self, PluginError> {
        let mut parts = ServiceParts::new(env_prefix);
        parts.l1_rpc(input, network, "l1-eth-rpc", "L1_ETH_RPC")?;
        parts.signing(input, private_key, remote_signer)?;
        Ok(parts)
    }

    /// `<prefix>_<suffix>` filled from a Secret key through `secretKeyRef`.
    pub fn secret_env(&mut self, suffix: &str, secret_name: &str, key: &str) -> &mut Self {
        let name = format!("{}_{suffix}", self.env_prefix);
        self.env
            .insert(name.clone(), k8s::secret_env(&name, secret_name, key));
        self
    }

    /// A URL that is either literal (`--<flag>=<url>`) or kept in a Secret the host passes by
    /// `purpose` (then `<prefix>_<env_suffix>` from `secretKeyRef` and **no** flag, because the
    /// flag would win over the env var). `field` names the network's fields in errors.
    pub fn url_or_secret(
        &mut self,
        input: &RenderInput,
        flag: &str,
        env_suffix: &str,
        literal: Option<&str>,
        secret: Option<(&str, &SecretKeyRef)>,
    ) -> Result<bool, PluginError> {
        if let Some(url) = literal {
            self.flags.set(flag, url);
            return Ok(true);
        }
        if let Some((purpose, secret_ref)) = secret {
            let name = input.secret(purpose).ok_or_else(|| {
                PluginError::invalid(format!(
                    "OptimismNetwork {}: the URL for --{flag} is in a Secret, but the host passed \
                     no `{purpose}` Secret; check the network's Secret reference",
                    input.network.name
                ))
            })?;
            self.secret_env(env_suffix, name, &secret_ref.key);
            return Ok(true);
        }
        Ok(false)
    }

    /// The L1 execution RPC: `spec.l1RpcUrl` as `--<flag>`, or `spec.l1RpcUrlSecretRef` as
    /// `<prefix>_<env_suffix>` from the host's `l1-rpc-url` Secret.
    pub fn l1_rpc(
        &mut self,
        input: &RenderInput,
        network: &OptimismNetworkSpec,
        flag: &str,
        env_suffix: &str,
    ) -> Result<(), PluginError> {
        let found = self.url_or_secret(
            input,
            flag,
            env_suffix,
            network.l1_rpc_url.as_deref(),
            network
                .l1_rpc_url_secret_ref
                .as_ref()
                .map(|r| (secret_purpose::L1_RPC_URL, r)),
        )?;
        if !found {
            return Err(PluginError::invalid(format!(
                "OptimismNetwork {}: spec.l1RpcUrl is not set; set spec.l1RpcUrl or spec.l1RpcUrlSecretRef",
                input.network.name
            )));
        }
        Ok(())
    }

    /// The L1 beacon API, like [`ServiceParts::l1_rpc`] with `spec.l1BeaconUrl` /
    /// `spec.l1BeaconUrlSecretRef` and the host's `l1-beacon-url` Secret. `Ok(false)` if the
    /// network has neither.
    pub fn l1_beacon(
        &mut self,
        input: &RenderInput,
        network: &OptimismNetworkSpec,
        flag: &str,
        env_suffix: &str,
    ) -> Result<bool, PluginError> {
        self.url_or_secret(
            input,
            flag,
            env_suffix,
            network.l1_beacon_url.as_deref(),
            network
                .l1_beacon_url_secret_ref
                .as_ref()
                .map(|r| (secret_purpose::L1_BEACON_URL, r)),
        )
    }

    /// Transaction signing (see the module docs): exactly one of a private key, as
    /// `<prefix>_PRIVATE_KEY` from the host's `private-key` Secret (never `--private-key`), or a
    /// remote signer (`--signer.endpoint`, `--signer.address`, and mTLS files from the host's
    /// `signer-tls` Secret at absolute paths, or `--signer.tls.enabled=false`).
    pub fn signing(
        &mut self,
        input: &RenderInput,
        private_key: Option<&PrivateKeySource>,
        remote_signer: Option<&RemoteSigner>,
    ) -> Result<(), PluginError> {
        match (private_key, remote_signer) {
            (Some(key), None) => {
                let secret = input.secret(secret_purpose::PRIVATE_KEY).ok_or_else(|| {
                    PluginError::invalid(format!(
                        "spec.privateKey.secretRef: the host passed no `private-key` Secret for \
                         {} (expected Secret {:?}); check that it exists in the namespace",
                        input.kind, key.secret_ref.name
                    ))
                })?;
                self.secret_env("PRIVATE_KEY", secret, &key.secret_ref.key);
            }
            (None, Some(signer)) => {
                self.flags
                    .set("signer.endpoint", &signer.endpoint)
                    .set("signer.address", &signer.address);
                if signer.tls_secret_name.is_some() {
                    let secret = input.secret(secret_purpose::SIGNER_TLS).ok_or_else(|| {
                        PluginError::invalid(format!(
                            "spec.remoteSigner.tlsSecretName: the host passed no `signer-tls` \
                             Secret for {}; check that the Secret exists",
                            input.kind
                        ))
                    })?;
                    self.volumes
                        .push(k8s::secret_volume(SIGNER_TLS_VOLUME, secret));
                    self.mounts
                        .push(k8s::mount(SIGNER_TLS_VOLUME, SIGNER_TLS_DIR, true));
                    self.flags
                        .set("signer.tls.enabled", true)
                        .set("signer.tls.ca", format!("{SIGNER_TLS_DIR}/ca.crt"))
                        .set("signer.tls.cert", format!("{SIGNER_TLS_DIR}/tls.crt"))
                        .set("signer.tls.key", format!("{SIGNER_TLS_DIR}/tls.key"));
                } else {
                    self.flags.set("signer.tls.enabled", false);
                }
            }
            _ => {
                return Err(PluginError::invalid(
                    "spec.privateKey: set exactly one of spec.privateKey and spec.remoteSigner",
                ));
            }
        }
        Ok(())
    }

    /// op-service txmgr settings that are set; unset ones keep the binary's default.
    pub fn txmgr(&mut self, tx: &TxManagerConfig) -> &mut Self {
        self.flags
            .set_opt("num-confirmations", tx.num_confirmations)
            .set_opt(
                "safe-abort-nonce-too-low-count",
                tx.safe_abort_nonce_too_low_count,
            )
            .set_opt("fee-limit-multiplier", tx.fee_limit_multiplier)
            .set_opt("resubmission-timeout", tx.resubmission_timeout.as_deref())
            .set_opt("network-timeout", tx.network_timeout.as_deref())
            .set_opt(
                "txmgr.receipt-query-interval",
                tx.receipt_query_interval.as_deref(),
            );
        self
    }

    /// `--log.level`, `--log.format`, `--log.color` (only when on).
    pub fn logging(&mut self, logging: &LoggingConfig) -> &mut Self {
        self.flags
            .set("log.level", enum_name(&logging.level))
            .set("log.format", enum_name(&logging.format))
            .switch_if("log.color", logging.color);
        self
    }

    /// `--metrics.enabled --metrics.addr=0.0.0.0 --metrics.port`, or nothing when disabled.
    pub fn metrics(&mut self, metrics: &MetricsConfig) -> &mut Self {
        if metrics.enabled {
            self.flags
                .switch("metrics.enabled")
                .set("metrics.addr", "0.0.0.0")
                .set("metrics.port", metrics.port);
        }
        self
    }

    /// `--rpc.addr=0.0.0.0 --rpc.port` and `--rpc.enable-admin` when asked.
    pub fn rpc(&mut self, rpc: &ServiceRpcConfig) -> &mut Self {
        self.flags
            .set("rpc.addr", "0.0.0.0")
            .set("rpc.port", rpc.port)
            .switch_if("rpc.enable-admin", rpc.enable_admin);
        self
    }

    /// Hands the flags, env vars and mounts to a container (volumes stay here, for the pod).
    pub fn apply(&self, mut container: k8s::ContainerBuilder) -> k8s::ContainerBuilder {
        container = container.flags(self.flags.clone());
        for mount in &self.mounts {
            container = container.mount(
                &mount.name,
                &mount.mount_path,
                mount.read_only.unwrap_or(true),
            );
        }
        for env in self.env.values() {
            container = container.env_var(env.clone());
        }
        container
    }
}

/// The serde name of a unit enum value of the API (`LogLevel::Info` → `info`).
pub fn enum_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// URL of a named endpoint of the object a spec reference points to (`field` as in the spec,
/// e.g. `sequencerRef`); `Invalid` naming the field when the host resolved none.
pub fn require_endpoint<'a>(
    input: &'a RenderInput,
    field: &str,
    target: &str,
    endpoint: &str,
) -> Result<&'a str, PluginError> {
    input.endpoint(field, endpoint).ok_or_else(|| {
        PluginError::invalid(format!(
            "spec.{field}: the host resolved no `{endpoint}` endpoint of OpNode {target:?}; \
             check that the OpNode exists in this namespace and renders its Service"
        ))
    })
}

/// A container running `binary` from the CR's image override or the release table's image of
/// it, with the restricted security context and the CR's pull policy.
pub fn service_container(binary: Component, image: &ImageSpec) -> k8s::ContainerBuilder {
    let mut container = k8s::ContainerBuilder::new(binary.as_str(), &image.or_release(binary))
        .command(&[binary.as_str()]);
    if let Some(policy) = image.pull_policy {
        container = container.pull_policy(&enum_name(&policy));
    }
    container
}

/// The Deployment of a service that signs with one key: exactly one replica and the `Recreate`
/// strategy, so a rollout stops the old pod before the new one starts and two pods never sign
/// with the same key (`docs/security.md`, "Chain safety").
pub fn single_signer_deployment(
    name: &str,
    labels: &BTreeMap<String, String>,
    pod: PodSpec,
) -> Deployment {
    Deployment {
        metadata: k8s::meta(name, labels),
        spec: DeploymentSpec {
            replicas: Some(1),
            revision_history_limit: Some(3),
            selector: LabelSelector {
                match_labels: Some(selector(labels)),
                match_expressions: None,
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".to_owned()),
                rolling_update: None,
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        },
        status: None,
    }
}

/// What differs between the Deployments of op-batcher and op-proposer (services with a JSON-RPC
/// server, one signing key and no state).
pub struct RpcService<'a> {
    /// Binary and container name, e.g. `op-batcher`; also the `app.kubernetes.io/name` label.
    /// Its image, unless the CR names one, is the release table's.
    pub binary: Component,
    /// `app.kubernetes.io/component` label, e.g. `batcher`.
    pub component: &'a str,
    pub image: &'a ImageSpec,
    pub tx: &'a TxManagerConfig,
    pub rpc: &'a ServiceRpcConfig,
    /// The resource's metrics; the network's shared setting when `None`.
    pub metrics: Option<&'a MetricsConfig>,
    /// The resource's resources; the network's shared default when `None`.
    pub resources: Option<&'a ResourceRequirements>,
}

/// How long a service may take to start serving its RPC before the liveness probe may kill it.
/// The RPC server starts last, after the dials of L1, L2 and the rollup node, each retried for up
/// to `dial.DefaultDialTimeout` (one minute: ethereum-optimism/optimism@v1.19.6
/// `op-service/dial/dial.go`; order in `op-batcher/batcher/service.go` and
/// `op-proposer/proposer/service.go`, `initFromCLIConfig`). A dial that runs out ends the
/// process, so this only has to outlast the retries: 48 × 5 s = 4 minutes.
const STARTUP_PROBE_PERIOD_SECONDS: i32 = 5;
const STARTUP_PROBE_FAILURES: i32 = 48;

impl RpcService<'_> {
    /// The CR's metrics setting, else the network's.
    fn metrics_config<'a>(&'a self, network: &'a OptimismNetworkSpec) -> &'a MetricsConfig {
        self.metrics.unwrap_or(&network.shared_config.metrics)
    }

    /// The labels of the Deployment's pods (and of the Service over them).
    fn labels(&self, name: &str) -> BTreeMap<String, String> {
        k8s::labels(self.binary.as_str(), name, self.component)
    }

    /// Adds the txmgr, logging (network), metrics and RPC flags to `parts` and renders the
    /// single-signer Deployment `name`: RPC and metrics ports, `/healthz` probes on the RPC port
    /// (served by op-service's RPC server on every route: ethereum-optimism/optimism@v1.19.6
    /// `op-service/rpc/handler.go`, `newHealthMiddleware`; plain HTTP, because the images have no
    /// shell to exec a probe in), resources, the restricted pod with the network's identity.
    pub fn deployment(
        &self,
        name: &str,
        mut parts: ServiceParts,
        network: &OptimismNetworkSpec,
    ) -> Deployment {
        let shared = &network.shared_config;
        let metrics = self.metrics_config(network);
        parts
            .txmgr(self.tx)
            .logging(&shared.logging)
            .metrics(metrics)
            .rpc(self.rpc);
        let mut container = parts
            .apply(service_container(self.binary, self.image))
            .port("rpc", self.rpc.port);
        if metrics.enabled {
            container = container.port("metrics", metrics.port);
        }
        let container = container
            .startup(k8s::http_probe(
                "/healthz",
                "rpc",
                STARTUP_PROBE_PERIOD_SECONDS,
                STARTUP_PROBE_FAILURES,
            ))
            .liveness(k8s::http_probe("/healthz", "rpc", 10, 6))
            .readiness(k8s::http_probe("/healthz", "rpc", 10, 3))
            .resources(self.resources.or(shared.resources.as_ref()).cloned())
            .build();
        let pod = restricted_pod(vec![container], parts.volumes, &shared.security);
        single_signer_deployment(name, &self.labels(name), pod)
    }

    /// The ClusterIP Service `name` over the Deployment's pods (its selector, so only this CR's
    /// pods): the RPC port and, when metrics are on, the metrics port. The operator reads the
    /// service's metrics through it (`http://<name>.<namespace>.svc:<metrics port>/metrics`).
    pub fn service(&self, name: &str, network: &OptimismNetworkSpec) -> Service {
        let labels = self.labels(name);
        let mut builder =
            k8s::ServiceBuilder::new(name, &labels, &selector(&labels)).port("rpc", self.rpc.port);
        let metrics = self.metrics_config(network);
        if metrics.enabled {
            builder = builder.port("metrics", metrics.port);
        }
        builder.build()
    }
}

/// Selector labels: the component labels minus `managed-by`, which the host may restamp.
/// A Deployment's or StatefulSet's selector is immutable; it must never depend on anything else.
pub fn selector(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| k.as_str() != "app.kubernetes.io/managed-by")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// One pod: the containers, Pod Security "restricted" with the network's identity, no service
/// account token (these workloads never call the Kubernetes API), no service links.
pub fn restricted_pod(
    containers: Vec<Container>,
    volumes: Vec<Volume>,
    security: &PodSecurityDefaults,
) -> PodSpec {
    PodSpec {
        containers,
        volumes: (!volumes.is_empty()).then_some(volumes),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(security.run_as_user),
            run_as_group: Some(security.run_as_group),
            fs_group: Some(security.fs_group),
            fs_group_change_policy: Some("OnRootMismatch".to_owned()),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NamedObject;

    fn input() -> RenderInput {
        let mut input = RenderInput {
            kind: "OpBatcher".into(),
            ..Default::default()
        };
        input.network.secrets = vec![
            NamedObject {
                purpose: "private-key".into(),
                name: "batcher-key".into(),
            },
            NamedObject {
                purpose: "signer-tls".into(),
                name: "signer-certs".into(),
            },
        ];
        input
    }

    #[test]
    fn a_private_key_becomes_a_secret_key_ref_env_and_never_a_flag() {
        let mut parts = ServiceParts::new("OP_BATCHER");
        let key = PrivateKeySource {
            secret_ref: SecretKeyRef {
                name: "batcher-key".into(),
                key: "pk".into(),
            },
        };
        parts.signing(&input(), Some(&key), None).unwrap();
        assert!(!parts.flags.contains("private-key"));
        let env = &parts.env["OP_BATCHER_PRIVATE_KEY"];
        assert_eq!(env.value, None);
        let selector = env.value_from.as_ref().unwrap().secret_key_ref.as_ref();
        assert_eq!(selector.unwrap().key, "pk");
    }

    #[test]
    fn a_remote_signer_without_tls_turns_tls_off() {
        let mut parts = ServiceParts::new("OP_BATCHER");
        let signer = RemoteSigner {
            endpoint: "http://signer:8080".into(),
            address: "0x0000000000000000000000000000000000000001".into(),
            tls_secret_name: None,
        };
        parts.signing(&input(), None, Some(&signer)).unwrap();
        assert!(
            parts
                .flags
                .to_args()
                .contains(&"--signer.tls.enabled=false".to_owned())
        );
        assert!(parts.env.is_empty() && parts.volumes.is_empty());
    }

    #[test]
    fn both_or_neither_key_source_is_invalid() {
        let mut parts = ServiceParts::new("OP_BATCHER");
        assert!(matches!(
            parts.signing(&input(), None, None),
            Err(PluginError::Invalid(_))
        ));
    }
}
