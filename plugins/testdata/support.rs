//! Test support shared by the bundled service renderers' tests (op-batcher, op-proposer,
//! op-challenger), included with `#[path = "../../testdata/support.rs"] mod support;`:
//! fixture builders for the render input, the built plugin, and the flag-list checks.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use opstack_plugin_sdk::harness::{Error, Harness, Rendered};
use opstack_plugin_sdk::serde_json::{Value, json};
use opstack_plugin_sdk::{
    ContractAddress, Endpoint, NamedObject, PluginError, RenderInput, RenderOutput,
    ResolvedReference,
};

pub const NAMESPACE: &str = "chain-a";
pub const FACTORY: &str = "0x05F9613aDB30026FFd634f38e5C4dFd30a197Fa1";
pub const SIGNER_ADDRESS: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/// A crate's fixtures, its built plugin, and the same render code linked natively.
pub struct Suite {
    pub plugin: &'static Harness,
    pub fixtures: Vec<(&'static str, RenderInput)>,
    pub native: fn(&RenderInput) -> Result<RenderOutput, PluginError>,
}

impl Suite {
    /// Every fixture rendered by the built plugin, by name.
    pub fn rendered(&self) -> Vec<(&'static str, Rendered)> {
        self.fixtures
            .iter()
            .map(|(name, input)| (*name, render(self.plugin, input)))
            .collect()
    }

    /// Runs `check` on every fixture's render.
    pub fn each(&self, check: impl Fn(&str, &Rendered)) {
        for (name, rendered) in self.rendered() {
            check(name, &rendered);
        }
    }

    /// The plugin's info names `name` and serves only `kind`.
    pub fn assert_info(&self, name: &str, kind: &str) {
        let info = self.plugin.plugin().info();
        assert_eq!(info.name, name);
        assert_eq!(info.kinds, [kind]);
    }

    /// Every fixture's objects pass the host's envelope.
    pub fn assert_sealed(&self) {
        for (name, input) in &self.fixtures {
            let rendered = render(self.plugin, input);
            eprintln!("sealing {name}");
            assert_sealed(&rendered, input);
        }
    }

    /// Same input, same output: the sandboxed plugin's objects, and the render code's own bytes
    /// before the host parses them (the same code, run natively).
    pub fn assert_same_bytes(&self) {
        for (name, input) in &self.fixtures {
            let first = render(self.plugin, input).canonical_json();
            assert_eq!(first, render(self.plugin, input).canonical_json(), "{name}");
            let native = (self.native)(input).unwrap().objects;
            assert_eq!(native, (self.native)(input).unwrap().objects, "{name}");
        }
    }
}

/// How the components reach L1 in a fixture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L1 {
    /// `spec.l1RpcUrl` / `spec.l1BeaconUrl`: plain URLs, rendered as flags.
    Literal,
    /// `spec.l1RpcUrlSecretRef` / `spec.l1BeaconUrlSecretRef`: URLs with an API key in a Secret.
    Secret,
}

/// Which chain a fixture runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    /// OP Sepolia by name; its contracts discovered by the host.
    Named,
    /// A devnet with its rollup config and genesis in a ConfigMap the user made.
    Custom,
}

/// How a fixture signs L1 transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    PrivateKey,
    RemoteSigner,
    RemoteSignerTls,
}

/// A render input for `kind` with `spec` (merged over the fields every service has) on the
/// network described by `l1` and `chain`, with the host's Secrets, ConfigMaps, contracts and the
/// resolved reference `reference_field` → OpNode `node`.
pub fn input(
    kind: &str,
    name: &str,
    spec: Value,
    l1: L1,
    chain: Chain,
    signing: Signing,
    reference_field: &str,
) -> RenderInput {
    let mut full = json!({ "optimismNetworkRef": { "name": network_name(chain) } });
    full[reference_field] = json!({ "name": "node-a" });
    match signing {
        Signing::PrivateKey => {
            full["privateKey"] =
                json!({ "secretRef": { "name": format!("{name}-key"), "key": "private-key" } });
        }
        Signing::RemoteSigner => {
            full["remoteSigner"] = json!({ "endpoint": "http://op-signer.signers.svc:8080", "address": SIGNER_ADDRESS });
        }
        Signing::RemoteSignerTls => {
            full["remoteSigner"] = json!({
                "endpoint": "https://op-signer.signers.svc:8080",
                "address": SIGNER_ADDRESS,
                "tlsSecretName": "signer-client-tls",
            });
        }
    }
    merge(&mut full, spec);
    let resource = json!({
        "apiVersion": "optimism.io/v1alpha1",
        "kind": kind,
        "metadata": { "name": name, "namespace": NAMESPACE },
        "spec": full,
    });

    let mut secrets = Vec::new();
    let mut network = json!({
        "chainID": 11155420,
        "l1ChainID": 11155111,
        "sharedConfig": {
            "logging": { "level": "info", "format": "json" },
            "metrics": { "enabled": true, "port": 7300 },
            "resources": { "requests": { "cpu": "100m", "memory": "256Mi" }, "limits": { "memory": "1Gi" } },
            "security": { "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001 },
        },
    });
    match l1 {
        L1::Literal => {
            network["l1RpcUrl"] = json!("https://l1.example.org");
            network["l1BeaconUrl"] = json!("https://beacon.example.org");
        }
        L1::Secret => {
            network["l1RpcUrlSecretRef"] = json!({ "name": "l1-endpoints", "key": "rpc-url" });
            network["l1BeaconUrlSecretRef"] =
                json!({ "name": "l1-endpoints", "key": "beacon-url" });
            secrets.push(named("l1-rpc-url", "l1-endpoints"));
            secrets.push(named("l1-beacon-url", "l1-endpoints"));
        }
    }
    let mut config_maps = Vec::new();
    let mut contracts = Vec::new();
    match chain {
        Chain::Named => {
            network["networkName"] = json!("op-sepolia");
            contracts.push(ContractAddress {
                name: "DisputeGameFactoryProxy".into(),
                address: FACTORY.into(),
            });
            contracts.push(ContractAddress {
                name: "SystemConfigProxy".into(),
                address: "0x034edD2A225f7f429A63E0f1D2084B9E0A93b538".into(),
            });
        }
        Chain::Custom => {
            network["chainID"] = json!(901);
            network["l1ChainID"] = json!(900);
            network["rollupConfig"] =
                json!({ "configMapRef": { "name": "devnet-files", "key": "rollup-devnet.json" } });
            network["l2Genesis"] =
                json!({ "configMapRef": { "name": "devnet-files", "key": "genesis-devnet.json" } });
            config_maps.push(named("rollup-config", "devnet-files"));
            config_maps.push(named("l2-genesis", "devnet-files"));
        }
    }
    match signing {
        Signing::PrivateKey => secrets.push(named("private-key", &format!("{name}-key"))),
        Signing::RemoteSignerTls => secrets.push(named("signer-tls", "signer-client-tls")),
        Signing::RemoteSigner => {}
    }

    let mut input = RenderInput {
        kind: kind.into(),
        resource: resource.to_string(),
        ..Default::default()
    };
    input.network.name = network_name(chain).into();
    input.network.spec = network.to_string();
    input.network.secrets = secrets;
    input.network.config_maps = config_maps;
    input.network.contracts = contracts;
    input.references.push(ResolvedReference {
        field: reference_field.into(),
        kind: "OpNode".into(),
        name: "node-a".into(),
        endpoints: vec![
            endpoint("execution-rpc", "http://node-a.chain-a.svc:8545"),
            endpoint("execution-ws", "ws://node-a.chain-a.svc:8546"),
            endpoint("rollup-rpc", "http://node-a.chain-a.svc:9545"),
        ],
    });
    input
}

fn network_name(chain: Chain) -> &'static str {
    match chain {
        Chain::Named => "op-sepolia",
        Chain::Custom => "devnet",
    }
}

fn named(purpose: &str, name: &str) -> NamedObject {
    NamedObject {
        purpose: purpose.into(),
        name: name.into(),
    }
}

fn endpoint(name: &str, url: &str) -> Endpoint {
    Endpoint {
        name: name.into(),
        url: url.into(),
    }
}

/// Deep-merges `patch` into `base` (objects merge, anything else replaces).
pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch,
    }
}

/// Renders or panics with the plugin's error.
pub fn render(plugin: &Harness, input: &RenderInput) -> Rendered {
    plugin
        .render(input)
        .unwrap_or_else(|e| panic!("render failed: {e}"))
}

/// The problems of an `Invalid` render, panicking on success or any other failure.
pub fn invalid(plugin: &Harness, input: &RenderInput) -> Vec<String> {
    match plugin.render(input) {
        Err(Error::Invalid(problems)) => problems,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// The object of `kind`, panicking if there is not exactly one.
pub fn object<'a>(rendered: &'a Rendered, kind: &str) -> &'a Value {
    let found: Vec<&Value> = rendered
        .objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} in {:#?}",
        rendered.objects
    );
    found[0]
}

/// Every container (and init container) of every pod template.
pub fn containers(rendered: &Rendered) -> Vec<&Value> {
    rendered
        .objects
        .iter()
        .filter_map(|o| o.pointer("/spec/template/spec"))
        .flat_map(|pod| {
            ["containers", "initContainers"]
                .into_iter()
                .filter_map(move |field| pod[field].as_array())
                .flatten()
        })
        .collect()
}

/// The one container's args.
pub fn args(rendered: &Rendered) -> Vec<String> {
    let containers = containers(rendered);
    assert_eq!(containers.len(), 1);
    containers[0]["args"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// The value of `--flag=value` in `args`, if rendered.
pub fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    args.iter().find_map(|a| a.strip_prefix(prefix.as_str()))
}

/// Whether `--flag` is rendered, as a switch or with a value.
pub fn has_flag(args: &[String], name: &str) -> bool {
    let bare = format!("--{name}");
    args.iter()
        .any(|a| a == &bare || a.starts_with(&format!("{bare}=")))
}

/// The env var of the one container, by name.
pub fn env<'a>(rendered: &'a Rendered, name: &str) -> Option<&'a Value> {
    containers(rendered)[0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
}

/// Flags and env vars of a binary, from `plugins/testdata/flags/<binary>.txt`.
pub struct FlagList {
    pub flags: BTreeSet<String>,
    pub env: BTreeSet<String>,
}

pub fn flag_list(binary: &str) -> FlagList {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/flags")
        .join(format!("{binary}.txt"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut list = FlagList {
        flags: BTreeSet::new(),
        env: BTreeSet::new(),
    };
    for line in text.lines().filter(|l| l.starts_with("--")) {
        let mut fields = line.split('\t');
        list.flags
            .insert(fields.next().unwrap().trim_start_matches("--").to_owned());
        for env in fields.next().unwrap_or("").split(',') {
            list.env.insert(env.trim().to_owned());
        }
    }
    assert!(
        list.flags.len() > 20,
        "{} lists too few flags",
        path.display()
    );
    list
}

/// Panics naming every flag or `OP_*` env var of `rendered` that `binary` does not know.
pub fn assert_flags_known(rendered: &Rendered, binary: &str) {
    let list = flag_list(binary);
    let mut unknown = Vec::new();
    for container in containers(rendered) {
        for arg in container["args"].as_array().into_iter().flatten() {
            let arg = arg.as_str().unwrap();
            let Some(flag) = arg.strip_prefix("--") else {
                unknown.push(format!("positional arg {arg:?}"));
                continue;
            };
            let name = flag.split('=').next().unwrap();
            if !list.flags.contains(name) {
                unknown.push(format!("--{name}"));
            }
        }
        for env in container["env"].as_array().into_iter().flatten() {
            let name = env["name"].as_str().unwrap();
            if name.starts_with("OP_") && !list.env.contains(name) {
                unknown.push(format!("env {name}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "{binary} does not know {unknown:?} (plugins/testdata/flags/{binary}.txt)"
    );
}

/// Every pod template: no service account token, read-only root, restricted contexts.
pub fn assert_restricted(rendered: &Rendered) {
    for object in &rendered.objects {
        let Some(pod) = object.pointer("/spec/template/spec") else {
            continue;
        };
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        for container in pod["containers"].as_array().unwrap() {
            let sc = &container["securityContext"];
            assert_eq!(sc["readOnlyRootFilesystem"], true);
            assert_eq!(sc["allowPrivilegeEscalation"], false);
            assert_eq!(sc["runAsNonRoot"], true);
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        }
    }
}

/// The one Deployment `name`: one replica, `Recreate` (one signer per key).
pub fn assert_single_signer_deployment(rendered: &Rendered, name: &str) {
    let deployment = object(rendered, "Deployment");
    assert_eq!(deployment["metadata"]["name"], name);
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        deployment["spec"]["strategy"],
        json!({ "type": "Recreate" })
    );
}

/// The one Service, `name`, ClusterIP: it selects exactly the Deployment's pods (its selector
/// equals the Deployment's, which carries the CR's `instance` label) and forwards `ports`
/// (name, port) to the container ports of the same names.
pub fn assert_service_over_own_pods(rendered: &Rendered, name: &str, ports: &[(&str, i64)]) {
    let service = object(rendered, "Service");
    let deployment = object(rendered, "Deployment");
    assert_eq!(service["metadata"]["name"], name);
    assert_eq!(service["spec"]["type"], "ClusterIP");
    let selector = &service["spec"]["selector"];
    assert_eq!(selector, &deployment["spec"]["selector"]["matchLabels"]);
    assert_eq!(selector["app.kubernetes.io/instance"], name);
    let expected: Vec<Value> = ports
        .iter()
        .map(|(port_name, port)| {
            json!({ "name": port_name, "port": port, "protocol": "TCP", "targetPort": port_name })
        })
        .collect();
    assert_eq!(service["spec"]["ports"], json!(expected));
    let container_ports: Vec<&Value> = containers(rendered)[0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["name"])
        .collect();
    for (port_name, _) in ports {
        assert!(
            container_ports.contains(&&json!(port_name)),
            "the container has no port {port_name}: {container_ports:?}"
        );
    }
}

/// Every probe is an HTTP GET or a TCP connect: the OP Stack images have no shell or tools to
/// exec a probe command in.
pub fn assert_probes_need_no_shell(rendered: &Rendered) {
    for container in containers(rendered) {
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            let Some(probe) = container.get(probe) else {
                continue;
            };
            assert!(
                probe.get("exec").is_none(),
                "{} execs a command: {probe}",
                container["name"]
            );
            assert!(probe.get("httpGet").is_some() || probe.get("tcpSocket").is_some());
        }
    }
}

/// The key is `<env>` from the `private-key` Secret `secret` (key `private-key`), never a flag.
pub fn assert_private_key_env(rendered: &Rendered, env_name: &str, secret: &str) {
    let var = env(rendered, env_name).unwrap_or_else(|| panic!("no {env_name}"));
    assert_eq!(
        var["valueFrom"]["secretKeyRef"],
        json!({ "name": secret, "key": "private-key", "optional": false })
    );
    assert!(!has_flag(&args(rendered), "private-key"));
    assert!(!has_flag(&args(rendered), "signer.endpoint"));
    assert_keys_only_through_secret_key_refs(rendered);
}

/// A remote signer: endpoint and address flags, TLS on (`"true"`) or off, and no key env var.
pub fn assert_remote_signer(rendered: &Rendered, key_env: &str, tls: &str) {
    let args = args(rendered);
    assert!(
        flag(&args, "signer.endpoint")
            .unwrap()
            .contains("op-signer")
    );
    assert_eq!(flag(&args, "signer.address"), Some(SIGNER_ADDRESS));
    assert_eq!(flag(&args, "signer.tls.enabled"), Some(tls));
    assert!(!has_flag(&args, "private-key"));
    assert!(env(rendered, key_env).is_none());
}

/// The host's envelope accepts every object: allowed kinds, namespace, the 19 Pod Security
/// "restricted" controls, Secret references only to the Secrets the host passed, no service
/// account token, retained claims.
pub fn assert_sealed(rendered: &Rendered, input: &RenderInput) {
    sealed_objects(rendered, input);
}

/// [`assert_sealed`] for a chain's renderer whose network allows it the annotation keys
/// `allowed` on pod templates and Services (`allowedAnnotations`).
pub fn assert_sealed_allowing(rendered: &Rendered, input: &RenderInput, allowed: &[&str]) {
    sealed_objects_allowing(rendered, input, allowed);
}

/// The objects as the host's envelope seals them (namespace, `app.kubernetes.io/*` labels,
/// owner reference, provenance stamped); a refusal fails the test with every reason.
pub fn sealed_objects(rendered: &Rendered, input: &RenderInput) -> Vec<Value> {
    sealed_objects_allowing(rendered, input, &[])
}

fn sealed_objects_allowing(
    rendered: &Rendered,
    input: &RenderInput,
    allowed: &[&str],
) -> Vec<Value> {
    use opstack_operator::envelope::{Owner, seal};
    let resource = input.resource_json().unwrap();
    let owner = Owner::of(
        &input.kind,
        &resource,
        "00000000-0000-0000-0000-000000000001",
        input.network.name.clone(),
        input
            .network
            .secrets
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        "test@sha256:00".into(),
    );
    let owner = Owner {
        allowed_annotations: allowed.iter().map(|k| k.to_string()).collect(),
        ..owner
    };
    seal(&rendered.objects, &owner).unwrap_or_else(|errors| {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("the envelope refuses the objects: {errors:#?}");
    })
}

/// No literal env value and no arg carries a secret: every env var that is not a plain
/// setting comes from a `secretKeyRef`, and no `--private-key` / `--mnemonic` is rendered.
pub fn assert_keys_only_through_secret_key_refs(rendered: &Rendered) {
    for container in containers(rendered) {
        for arg in container["args"].as_array().into_iter().flatten() {
            let arg = arg.as_str().unwrap();
            for forbidden in ["--private-key", "--mnemonic", "--hd-path"] {
                assert!(
                    !arg.starts_with(forbidden),
                    "{arg} puts a key on the command line"
                );
            }
        }
        for env in container["env"].as_array().into_iter().flatten() {
            assert!(
                env.get("value").is_none(),
                "env {} has a literal value; secrets come only from secretKeyRef",
                env["name"]
            );
            assert!(env.pointer("/valueFrom/secretKeyRef/name").is_some());
        }
    }
}
