//! Hostile renderers for the sandbox tests. Built once per cargo feature (see `plugins/build.sh`);
//! without a feature it is a well-behaved renderer of one ConfigMap.
//!
//! Two families: features that attack the sandbox (loops, memory, traps, imports) and features
//! whose render succeeds with output the host's envelope must refuse (`forbidden-kind`,
//! `foreign-namespace`, `privileged-pod`, `foreign-secret`). The latter keep everything else
//! about their objects within the rules, so the one refusal a test sees is the one it targets.
//!
//! It uses the raw bindings rather than the SDK so that it can lie about its contract
//! version and stay independent of the SDK's conveniences.

#![cfg(target_arch = "wasm32")]

mod bindings {
    // The flattened canonical-ABI signatures are wide by nature.
    #![allow(clippy::too_many_arguments)]
    wit_bindgen::generate!({ world: "renderer", path: "../../../wit" });
}

use bindings::opstack::plugin::types::Role;
use bindings::{Guest, PluginError, PluginInfo, RenderInput, RenderOutput};

struct Misbehaving;

impl Guest for Misbehaving {
    fn info() -> PluginInfo {
        let contract_version = if cfg!(feature = "wrong-major") {
            "1.0.0"
        } else {
            "0.1.0"
        };
        PluginInfo {
            name: "misbehaving".into(),
            version: "0.0.0".into(),
            kinds: vec!["OpNode".into()],
            role: Role::Renderer,
            contract_version: contract_version.into(),
        }
    }

    fn validate(_input: RenderInput) -> Result<Vec<String>, PluginError> {
        Ok(Vec::new())
    }

    fn render(input: RenderInput) -> Result<RenderOutput, PluginError> {
        // Named after the CR and selecting its pods, as the envelope requires of every child:
        // the one rule a feature breaks is then the only one.
        let name = serde_json::from_str::<serde_json::Value>(&input.resource)
            .ok()
            .and_then(|r| r["metadata"]["name"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "misbehaving".into());
        let mut objects = vec![config_map(&name, &input.kind)];
        misbehave(&mut objects, &name, &input.kind);
        #[cfg(feature = "neighbour")]
        if let Ok(resource) = serde_json::from_str::<serde_json::Value>(&input.resource) {
            attack_neighbour(&mut objects, &name, &resource);
        }
        Ok(RenderOutput {
            objects,
            warnings: Vec::new(),
        })
    }
}

/// Does whatever the enabled feature asks for (nothing without a feature).
#[allow(unused_variables, clippy::ptr_arg)]
fn misbehave(objects: &mut Vec<String>, name: &str, kind: &str) {
    #[cfg(feature = "endless-loop")]
    endless_loop();
    #[cfg(feature = "memory-bomb")]
    memory_bomb(objects);
    #[cfg(feature = "memory-hold")]
    memory_hold();
    #[cfg(feature = "huge-output")]
    huge_output(objects);
    #[cfg(feature = "deep-recursion")]
    objects.push(format!("{}", recurse(u64::MAX - kind.len() as u64)));
    #[cfg(feature = "invalid-json")]
    objects.push("{\"apiVersion\": \"v1\", \"kind\": ".into());
    #[cfg(feature = "forbidden-import")]
    objects.push(format!(
        "{:?}",
        std::fs::read_to_string(std::hint::black_box("/etc/passwd")).ok()
    ));
    #[cfg(feature = "panic")]
    panic!("misbehaving plugin panics on purpose for {kind}");
    #[cfg(feature = "forbidden-kind")]
    objects.push(CLUSTER_ADMIN_BINDING.into());
    #[cfg(feature = "foreign-namespace")]
    objects.push(
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"misbehaving-coredns","namespace":"kube-system"},"data":{"coredns":"hijacked"}}"#
            .into(),
    );
    #[cfg(feature = "privileged-pod")]
    objects.push(stateful_set(name, PRIVILEGED_POD));
    #[cfg(feature = "foreign-secret")]
    objects.push(stateful_set(name, FOREIGN_SECRET_POD));
}

fn config_map(name: &str, kind: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}-misbehaving"}},"data":{{"for":"{kind}"}}}}"#
    )
}

/// Makes the renderer's ServiceAccount a cluster admin: RBAC is never an allowed kind.
#[cfg(feature = "forbidden-kind")]
const CLUSTER_ADMIN_BINDING: &str = r#"{
  "apiVersion": "rbac.authorization.k8s.io/v1",
  "kind": "ClusterRoleBinding",
  "metadata": {"name": "misbehaving-cluster-admin"},
  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
  "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]
}"#;

/// A pod that owns its node: privileged, in the host's network namespace, with the host's root
/// filesystem mounted. Otherwise restricted, so only those three controls are broken.
#[cfg(feature = "privileged-pod")]
const PRIVILEGED_POD: &str = r#"{
  "automountServiceAccountToken": false,
  "hostNetwork": true,
  "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
  "containers": [{
    "name": "node",
    "image": "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:v1.13.0",
    "securityContext": {"privileged": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
    "volumeMounts": [{"name": "host", "mountPath": "/host"}]
  }],
  "volumes": [{"name": "host", "hostPath": {"path": "/"}}]
}"#;

/// A restricted pod that mounts another chain's batcher key, which this OpNode never declared.
#[cfg(feature = "foreign-secret")]
const FOREIGN_SECRET_POD: &str = r#"{
  "automountServiceAccountToken": false,
  "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
  "containers": [{
    "name": "node",
    "image": "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:v1.13.0",
    "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
    "volumeMounts": [{"name": "key", "mountPath": "/key", "readOnly": true}]
  }],
  "volumes": [{"name": "key", "secret": {"secretName": "other-chain-batcher-key"}}]
}"#;

/// A StatefulSet (an allowed kind for an OpNode) of the OpNode `name`, running `pod`.
#[cfg(any(
    feature = "privileged-pod",
    feature = "foreign-secret",
    feature = "neighbour"
))]
fn stateful_set(name: &str, pod: &str) -> String {
    stateful_set_labelled(name, pod, &identity(name))
}

/// The labels that select the OpNode `name`'s pods.
#[cfg(any(
    feature = "privileged-pod",
    feature = "foreign-secret",
    feature = "neighbour"
))]
fn identity(name: &str) -> String {
    format!(r#"{{"app.kubernetes.io/instance":"{name}","app.kubernetes.io/name":"op-node"}}"#)
}

/// A StatefulSet of the OpNode `name` whose pods wear `labels`.
#[cfg(any(
    feature = "privileged-pod",
    feature = "foreign-secret",
    feature = "neighbour"
))]
fn stateful_set_labelled(name: &str, pod: &str, labels: &str) -> String {
    let selector = identity(name);
    format!(
        r#"{{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{{"name":"{name}"}},
"spec":{{"serviceName":"{name}","selector":{{"matchLabels":{selector}}},
"template":{{"metadata":{{"labels":{labels}}},"spec":{pod}}}}}}}"#
    )
}

/// A restricted pod mounting `volumes` (JSON array) at /v0, /v1, ...
#[cfg(feature = "neighbour")]
fn restricted_pod(volumes: &[String]) -> String {
    let mounts: Vec<String> = (0..volumes.len())
        .map(|i| format!(r#"{{"name":"v{i}","mountPath":"/v{i}","readOnly":true}}"#))
        .collect();
    let named: Vec<String> = volumes
        .iter()
        .enumerate()
        .map(|(i, source)| format!(r#"{{"name":"v{i}",{source}}}"#))
        .collect();
    format!(
        r#"{{"automountServiceAccountToken": false,
  "securityContext": {{"runAsNonRoot": true, "seccompProfile": {{"type": "RuntimeDefault"}}}},
  "containers": [{{"name": "node", "image": "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-node:v1.21.0",
    "securityContext": {{"allowPrivilegeEscalation": false, "capabilities": {{"drop": ["ALL"]}}}},
    "volumeMounts": [{}]}}],
  "volumes": [{}]}}"#,
        mounts.join(","),
        named.join(",")
    )
}

/// What a renderer of one chain might try on another chain's sequencer in the same namespace:
/// the CR's annotation `test.optimism.io/attack` picks the attack and
/// `test.optimism.io/victim` names the other chain's OpNode.
#[cfg(feature = "neighbour")]
fn attack_neighbour(objects: &mut Vec<String>, name: &str, resource: &serde_json::Value) {
    let annotations = &resource["metadata"]["annotations"];
    let victim = annotations["test.optimism.io/victim"]
        .as_str()
        .unwrap_or("victim");
    let own = identity(name);
    match annotations["test.optimism.io/attack"].as_str() {
        // The victim's RPC Service, under a name within this CR's prefix, pointed at this
        // CR's own pods: an apply would take it over and redirect the victim's clients.
        Some("take-over") => objects.push(format!(
            r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"{victim}"}},
"spec":{{"selector":{own},"ports":[{{"name":"rpc","port":9545}}]}}}}"#
        )),
        // A Service of this CR's that selects the victim's pods.
        Some("select") => objects.push(format!(
            r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"{name}-rpc"}},
"spec":{{"selector":{},"ports":[{{"name":"rpc","port":9545}}]}}}}"#,
            identity(victim)
        )),
        // A pod mounting the victim's engine JWT and its chain data.
        Some("mount") => objects.push(stateful_set(
            name,
            &restricted_pod(&[
                format!(r#""secret":{{"secretName":"{victim}-jwt"}}"#),
                format!(r#""persistentVolumeClaim":{{"claimName":"data-{victim}-0"}}"#),
            ]),
        )),
        // Pods wearing the victim's labels, to become endpoints of its Services.
        Some("impersonate") => objects.push(stateful_set_labelled(
            name,
            &restricted_pod(&[]),
            &format!(
                r#"{{"app.kubernetes.io/instance":"{victim}","app.kubernetes.io/name":"op-node","app.kubernetes.io/part-of":"devnet"}}"#
            ),
        )),
        _ => {}
    }
}

#[cfg(feature = "endless-loop")]
fn endless_loop() {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

#[cfg(feature = "memory-bomb")]
fn memory_bomb(objects: &mut Vec<String>) {
    // 1 GiB in 1 MiB pieces, each touched so the pages are real.
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    for i in 0..1024 {
        hoard.push(vec![i as u8; 1 << 20]);
    }
    objects.push(format!("{}", std::hint::black_box(&hoard).len()));
}

#[cfg(feature = "huge-output")]
fn huge_output(objects: &mut Vec<String>) {
    // 5,000 objects of ~1 KB: well under the memory cap, far over the output caps.
    let padding = "x".repeat(1000);
    for i in 0..5000 {
        objects.push(format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i}"}},"data":{{"pad":"{padding}"}}}}"#
        ));
    }
}

/// 56 of the 64 MiB a call may have, touched, held until the deadline stops the call: every
/// call at once holds its share of memory for a whole second.
#[cfg(feature = "memory-hold")]
fn memory_hold() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    for i in 0..56 {
        hoard.push(vec![i as u8; 1 << 20]);
    }
    loop {
        std::hint::black_box(&hoard);
    }
}

#[cfg(feature = "deep-recursion")]
fn recurse(depth: u64) -> u64 {
    // Scalars only, so every frame lives on the wasm stack (which the host bounds) rather than
    // on Rust's shadow stack in linear memory; the mixing step keeps LLVM from turning the
    // recursion into a loop.
    if depth == 0 {
        return 1;
    }
    let below = recurse(depth - 1);
    below.rotate_left(7) ^ depth.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

bindings::export!(Misbehaving with_types_in bindings);
