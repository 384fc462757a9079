//! Renderers whose render succeeds but whose output breaks the envelope: each is refused with
//! the envelope rule it breaks, and nothing of its output survives. The plugins are the hostile
//! builds of `tests/test-plugins/misbehaving` (`plugins/build.sh`), rendered for the devnet
//! sequencer through the same pipeline the controllers and `render` use.

mod common;

use common::*;
use opstack_operator::controller::pipeline::{KindPlugins, PipelineError, Sealed};
use opstack_operator::envelope::{self, EnvelopeError, Owner};
use opstack_operator::runtime::{Runtime, RuntimeConfig};
use serde_json::{Value, json};

fn render_sequencer_with(renderer: &[u8]) -> Result<Sealed, PipelineError> {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let plugin = runtime.load(renderer).expect("the hostile renderers load");
    render_sequencer(&devnet(), &KindPlugins::renderer(plugin))
}

/// Renders with `misbehaving-<feature>` and returns the envelope's errors, after checking that
/// the render was refused as a whole and that every error is the rule `reason` (the hostile
/// objects break nothing else, so any other reason is a gap in the test plugin or the envelope).
fn refused(feature: &str, reason: &str) -> Vec<EnvelopeError> {
    refused_for(feature, &[reason])
}

/// [`refused`] for a feature that breaks more than one rule: every error is one of `reasons`.
fn refused_for(feature: &str, reasons: &[&str]) -> Vec<EnvelopeError> {
    let error = match render_sequencer_with(&misbehaving(feature)) {
        Ok(sealed) => panic!(
            "{feature}: rendered {} objects instead of being refused: {:?}",
            sealed.objects.len(),
            sealed.objects
        ),
        Err(error) => error,
    };
    assert_eq!(error.reason(), "OutputRefused", "{feature}: {error}");
    let PipelineError::Envelope(errors) = error else {
        unreachable!("OutputRefused is the envelope's reason")
    };
    assert!(!errors.is_empty(), "{feature}: refused without a reason");
    for e in &errors {
        assert!(reasons.contains(&e.reason()), "{feature}: {e}");
    }
    errors
}

#[test]
fn the_devnet_sequencer_renders_with_the_bundled_renderer() {
    // The control for every refusal below: the same resource, network and pipeline are fine.
    let sealed = render_sequencer_with(&plugin_bytes("plugin_op_node")).unwrap();
    assert!(
        sealed.objects.iter().any(|o| o["kind"] == "StatefulSet"),
        "{:?}",
        sealed.objects
    );
}

#[test]
fn a_plugin_rendering_a_cluster_role_binding_is_refused_as_forbidden_kind() {
    let errors = refused("forbidden-kind", "ForbiddenKind");
    assert_eq!(
        errors,
        [EnvelopeError::ForbiddenKind {
            object: "ClusterRoleBinding/misbehaving-cluster-admin".into(),
            kind: "rbac.authorization.k8s.io/v1/ClusterRoleBinding".into(),
            owner_kind: "OpNode".into(),
            allowed: opstack_operator::envelope::allowed_kinds("OpNode").join(", "),
        }]
    );
}

#[test]
fn a_plugin_writing_into_kube_system_is_refused_as_foreign_namespace() {
    let errors = refused("foreign-namespace", "ForeignNamespace");
    assert_eq!(
        errors,
        [EnvelopeError::ForeignNamespace {
            object: "ConfigMap/misbehaving-coredns".into(),
            namespace: "kube-system".into(),
            expected: "default".into(),
        }]
    );
}

#[test]
fn a_plugin_rendering_a_privileged_host_pod_is_refused_for_pod_security() {
    // A StatefulSet is an allowed kind for an OpNode: the refusal must come from its pod.
    assert!(opstack_operator::envelope::allowed_kinds("OpNode").contains(&"apps/v1/StatefulSet"));
    let errors = refused_for(
        "privileged-pod",
        &["PodSecurity", "ForbiddenVolume", "ForbiddenPodField"],
    );
    // The host's network and root filesystem break both walls: the Pod Security controls and
    // the confinement's allow-lists of pod fields and volumes.
    for reason in ["ForbiddenVolume", "ForbiddenPodField"] {
        assert!(errors.iter().any(|e| e.reason() == reason), "{errors:?}");
    }
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for control in [
        "control 1 (Host namespaces): hostNetwork",
        "control 2 (Privileged)",
        "control 4 (HostPath volumes): volumes[host].hostPath",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(control)),
            "no {control:?} in {messages:#?}"
        );
    }
}

#[test]
fn a_plugin_mounting_another_chains_secret_is_refused_as_forbidden_secret_reference() {
    let errors = refused("foreign-secret", "ForbiddenSecretReference");
    assert_eq!(
        errors,
        [EnvelopeError::ForbiddenSecretReference {
            object: "StatefulSet/devnet-sequencer".into(),
            field: "volumes[key].secret".into(),
            secret: "other-chain-batcher-key".into(),
        }]
    );
}

/// What a hostile change must come to: refused with its rule, or rewritten by the host.
enum Expect {
    Refused(&'static str),
    Neutralised(fn(&[Value]) -> bool),
}

type Change = fn(&mut Vec<Value>);

/// The bundled renderer's sealed output for `resource` (of `kind`), and the owner it was sealed
/// for: the baseline every hostile change starts from.
fn bundled(kind: &str, resource: &Value, stem: &str) -> (Vec<Value>, Owner) {
    let devnet = devnet();
    // One runtime for the file: it keeps what it compiled, so each bundled plugin is compiled
    // once however many cases start from it.
    static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| Runtime::new(RuntimeConfig::default()).unwrap());
    let plugins = KindPlugins::renderer(runtime.load(&plugin_bytes(stem)).unwrap());
    let sealed = opstack_operator::controller::pipeline::render(
        kind,
        resource,
        DEVNET_UID,
        &devnet.network,
        &devnet.nodes,
        &Default::default(),
        &plugins,
    )
    .unwrap_or_else(|e| panic!("the bundled {kind} output is refused: {e}"));
    let allowed = sealed
        .objects
        .iter()
        .filter_map(|o| o.pointer("/spec/template/spec"))
        .flat_map(|pod| envelope::secret_references(&serde_json::from_value(pod.clone()).unwrap()))
        .map(|(_, secret)| secret)
        .collect();
    let owner = Owner::of(
        kind,
        resource,
        DEVNET_UID,
        "devnet".into(),
        allowed,
        sealed.rendered_by.clone(),
    );
    (sealed.objects, owner)
}

fn object<'a>(objects: &'a mut [Value], kind: &str, name: &str) -> &'a mut Value {
    objects
        .iter_mut()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} in the bundled output"))
}

fn sequencer_pod(objects: &mut [Value]) -> &mut Value {
    &mut object(objects, "StatefulSet", "devnet-sequencer")["spec"]["template"]["spec"]
}

fn rpc_service(objects: &mut [Value]) -> &mut Value {
    object(objects, "Service", "devnet-sequencer")
}

fn first_container(objects: &mut [Value]) -> &mut Value {
    &mut sequencer_pod(objects)["containers"][0]
}

fn push_volume(objects: &mut [Value], volume: Value) {
    sequencer_pod(objects)["volumes"]
        .as_array_mut()
        .unwrap()
        .push(volume);
}

const KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// One hostile change each to the sequencer's bundled output: a plugin that renders the
/// bundled objects plus that change.
fn sequencer_cases() -> Vec<(&'static str, Change, Expect)> {
    use Expect::*;
    vec![
        (
            "a LoadBalancer the CR did not ask for",
            |o| rpc_service(o)["spec"]["type"] = json!("LoadBalancer"),
            Refused("ForbiddenServiceField"),
        ),
        (
            "a NodePort the CR did not ask for",
            |o| rpc_service(o)["spec"]["type"] = json!("NodePort"),
            Refused("ForbiddenServiceField"),
        ),
        (
            "an ExternalName Service",
            |o| {
                let spec = &mut rpc_service(o)["spec"];
                spec["type"] = json!("ExternalName");
                spec["externalName"] = json!("attacker.example");
            },
            Refused("ForbiddenServiceField"),
        ),
        (
            "external IPs",
            |o| rpc_service(o)["spec"]["externalIPs"] = json!(["203.0.113.7"]),
            Refused("ForbiddenServiceField"),
        ),
        (
            "a fixed load-balancer IP",
            |o| rpc_service(o)["spec"]["loadBalancerIP"] = json!("203.0.113.7"),
            Refused("ForbiddenServiceField"),
        ),
        (
            "the kubernetes Service's cluster IP",
            |o| rpc_service(o)["spec"]["clusterIP"] = json!("10.96.0.1"),
            Refused("ForbiddenServiceField"),
        ),
        (
            "a node port on a ClusterIP Service",
            |o| rpc_service(o)["spec"]["ports"][0]["nodePort"] = json!(30545),
            Refused("ForbiddenServiceField"),
        ),
        (
            "a cloud load-balancer annotation",
            |o| {
                rpc_service(o)["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] =
                    json!("internet-facing")
            },
            Refused("ForbiddenAnnotation"),
        ),
        (
            "a Service selecting the replica's pods",
            |o| {
                rpc_service(o)["spec"]["selector"]["app.kubernetes.io/instance"] =
                    json!("devnet-replica")
            },
            Refused("UnscopedSelector"),
        ),
        (
            "a Service selecting every node of the namespace",
            |o| {
                rpc_service(o)["spec"]["selector"] = json!({"app.kubernetes.io/component": "node"});
            },
            Refused("UnscopedSelector"),
        ),
        (
            "a Service named like the replica's",
            |o| rpc_service(o)["metadata"]["name"] = json!("devnet-replica"),
            Refused("NameOutsideScope"),
        ),
        (
            "a ConfigMap named like the cluster's CA bundle",
            |o| {
                o.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "forged"}}))
            },
            Refused("NameOutsideScope"),
        ),
        (
            "a name that is no DNS name",
            |o| {
                o.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "devnet-sequencer-Config_1"}}))
            },
            Refused("InvalidName"),
        ),
        (
            "three sequencer replicas",
            |o| object(o, "StatefulSet", "devnet-sequencer")["spec"]["replicas"] = json!(3),
            Refused("TooManyReplicas"),
        ),
        (
            "a StatefulSet selecting the replica's pods",
            |o| {
                object(o, "StatefulSet", "devnet-sequencer")["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] =
                    json!("devnet-replica")
            },
            Refused("UnscopedSelector"),
        ),
        (
            "a StatefulSet governed by the replica's headless Service",
            |o| {
                object(o, "StatefulSet", "devnet-sequencer")["spec"]["serviceName"] =
                    json!("devnet-replica-p2p")
            },
            Refused("NameOutsideScope"),
        ),
        (
            "a pod under the replica's DNS subdomain",
            |o| sequencer_pod(o)["subdomain"] = json!("devnet-replica-p2p"),
            Refused("NameOutsideScope"),
        ),
        (
            "the operator's own ServiceAccount",
            |o| sequencer_pod(o)["serviceAccountName"] = json!("opstack-operator"),
            Refused("ForbiddenPodField"),
        ),
        (
            "a projected ServiceAccount token",
            |o| {
                push_volume(
                    o,
                    json!({"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}),
                )
            },
            Refused("ForbiddenVolume"),
        ),
        (
            "the replica's data claim",
            |o| {
                push_volume(
                    o,
                    json!({"name": "stolen", "persistentVolumeClaim": {"claimName": "data-devnet-replica-0"}}),
                )
            },
            Refused("ForbiddenVolume"),
        ),
        (
            "a CSI volume",
            |o| {
                push_volume(
                    o,
                    json!({"name": "csi", "csi": {"driver": "secrets-store.csi.k8s.io"}}),
                )
            },
            Refused("ForbiddenVolume"),
        ),
        (
            "an ephemeral claim",
            |o| {
                push_volume(
                    o,
                    json!({"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}),
                )
            },
            Refused("ForbiddenVolume"),
        ),
        (
            "a pinned node",
            |o| sequencer_pod(o)["nodeName"] = json!("control-plane"),
            Refused("ForbiddenPodField"),
        ),
        (
            "tolerating every taint",
            |o| sequencer_pod(o)["tolerations"] = json!([{"operator": "Exists"}]),
            Refused("ForbiddenPodField"),
        ),
        (
            "a system priority class",
            |o| sequencer_pod(o)["priorityClassName"] = json!("system-node-critical"),
            Refused("ForbiddenPodField"),
        ),
        (
            "another runtime class",
            |o| sequencer_pod(o)["runtimeClassName"] = json!("runc-unconfined"),
            Refused("ForbiddenPodField"),
        ),
        (
            "host aliases",
            |o| {
                sequencer_pod(o)["hostAliases"] =
                    json!([{"ip": "203.0.113.7", "hostnames": ["devnet-l1"]}])
            },
            Refused("ForbiddenPodField"),
        ),
        (
            "its own DNS servers",
            |o| {
                let pod = sequencer_pod(o);
                pod["dnsPolicy"] = json!("None");
                pod["dnsConfig"] = json!({"nameservers": ["203.0.113.53"]});
            },
            Refused("ForbiddenPodField"),
        ),
        (
            "a raw block device",
            |o| {
                first_container(o)["volumeDevices"] =
                    json!([{"name": "data", "devicePath": "/dev/xvda"}])
            },
            Refused("ForbiddenPodField"),
        ),
        (
            "a sidecar-injection annotation",
            |o| {
                object(o, "StatefulSet", "devnet-sequencer")["spec"]["template"]["metadata"]["annotations"] =
                    json!({"sidecar.istio.io/inject": "true"})
            },
            Refused("ForbiddenAnnotation"),
        ),
        (
            "a secrets-injector annotation",
            |o| {
                object(o, "StatefulSet", "devnet-sequencer")["spec"]["template"]["metadata"]["annotations"] =
                    json!({"vault.hashicorp.com/agent-inject": "true"})
            },
            Refused("ForbiddenAnnotation"),
        ),
        (
            "a literal private key in an env value",
            |o| {
                first_container(o)["env"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "OP_NODE_P2P_SEQUENCER_KEY", "value": KEY}))
            },
            Refused("LiteralKey"),
        ),
        (
            "a literal private key in an arg",
            |o| {
                first_container(o)["args"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!(format!("--p2p.sequencer.key=0x{KEY}")))
            },
            Refused("LiteralKey"),
        ),
        (
            "a mnemonic in an env value",
            |o| {
                first_container(o)["env"].as_array_mut().unwrap().push(json!({"name": "MNEMONIC", "value": "test test test test test test test test test test test junk"}))
            },
            Refused("LiteralKey"),
        ),
        (
            "another chain's Secret",
            |o| {
                push_volume(
                    o,
                    json!({"name": "key", "secret": {"secretName": "other-chain-batcher-key"}}),
                )
            },
            Refused("ForbiddenSecretReference"),
        ),
        (
            "a NetworkPolicy over the whole namespace",
            |o| {
                o.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "devnet-sequencer-deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}))
            },
            Refused("UnscopedSelector"),
        ),
        (
            "a PodDisruptionBudget over every node",
            |o| {
                o.push(json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "devnet-sequencer"}, "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app.kubernetes.io/component": "node"}}}}))
            },
            Refused("UnscopedSelector"),
        ),
        (
            "a pod template wearing the replica's identity",
            |o| {
                object(o, "StatefulSet", "devnet-sequencer")["spec"]["template"]["metadata"]["labels"]
                    ["app.kubernetes.io/instance"] = json!("devnet-replica");
            },
            Neutralised(|sealed| {
                sealed
                    .iter()
                    .filter(|o| o["kind"] == "StatefulSet")
                    .all(|s| {
                        s["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"]
                            == "devnet-sequencer"
                    })
            }),
        ),
        (
            "a pod template claiming another chain, to pass its sequencer's NetworkPolicy",
            |o| {
                object(o, "StatefulSet", "devnet-sequencer")["spec"]["template"]["metadata"]["labels"]
                    ["app.kubernetes.io/part-of"] = json!("other-chain");
            },
            Neutralised(|sealed| {
                sealed
                    .iter()
                    .filter(|o| o["kind"] == "StatefulSet")
                    .all(|s| {
                        s["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"]
                            == "devnet"
                    })
            }),
        ),
        (
            "the sequencer's NetworkPolicy opened to the whole namespace",
            |o| {
                object(o, "NetworkPolicy", "devnet-sequencer")["spec"]["podSelector"] = json!({});
            },
            Refused("UnscopedSelector"),
        ),
        (
            "a finalizer that never clears, on the object and its pods",
            |o| {
                let sts = object(o, "StatefulSet", "devnet-sequencer");
                sts["metadata"]["finalizers"] = json!(["example.com/never"]);
                sts["spec"]["template"]["metadata"]["finalizers"] = json!(["example.com/never"]);
            },
            Neutralised(|sealed| {
                !sealed
                    .iter()
                    .any(|o| o.to_string().contains("example.com/never"))
            }),
        ),
        (
            "server-owned metadata",
            |o| {
                let meta = &mut rpc_service(o)["metadata"];
                meta["uid"] = json!("uid-of-another-object");
                meta["resourceVersion"] = json!("1");
                meta["generateName"] = json!("x-");
            },
            Neutralised(|sealed| {
                sealed.iter().all(|o| {
                    ["uid", "resourceVersion", "generateName"]
                        .iter()
                        .all(|f| o["metadata"].get(f).is_none())
                })
            }),
        ),
    ]
}

fn batcher_cases() -> Vec<(&'static str, Change, Expect)> {
    use Expect::*;
    vec![
        (
            "two batchers",
            |o| object(o, "Deployment", "devnet-batcher")["spec"]["replicas"] = json!(2),
            Refused("TooManyReplicas"),
        ),
        (
            "a rolling update (two signers for a moment)",
            |o| {
                object(o, "Deployment", "devnet-batcher")["spec"]["strategy"] =
                    json!({"type": "RollingUpdate"})
            },
            Refused("UpdateStrategy"),
        ),
        (
            "a Deployment selecting the proposer's pods",
            |o| {
                object(o, "Deployment", "devnet-batcher")["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] =
                    json!("op-proposer")
            },
            Refused("UnscopedSelector"),
        ),
    ]
}

fn run_cases(
    kind: &str,
    resource: &Value,
    stem: &str,
    cases: Vec<(&'static str, Change, Expect)>,
) -> usize {
    let (baseline, owner) = bundled(kind, resource, stem);
    // The control: the bundled output, sealed again, passes unchanged.
    assert_eq!(
        envelope::seal(&baseline, &owner).expect("the bundled output passes"),
        baseline
    );
    let count = cases.len();
    for (what, change, expect) in cases {
        let mut objects = baseline.clone();
        change(&mut objects);
        match (envelope::seal(&objects, &owner), expect) {
            (Err(errors), Expect::Refused(reason)) => {
                assert!(
                    errors.iter().any(|e| e.reason() == reason),
                    "{what}: refused, but not as {reason}: {errors:#?}"
                );
                // Every message names the object it is about.
                for e in &errors {
                    assert!(e.to_string().contains('/'), "{what}: {e}");
                }
            }
            (Ok(sealed), Expect::Neutralised(neutral)) => {
                assert!(neutral(&sealed), "{what}: not neutralised: {sealed:#?}")
            }
            (Ok(_), Expect::Refused(reason)) => panic!("{what}: accepted; expected {reason}"),
            (Err(errors), Expect::Neutralised(_)) => {
                panic!("{what}: refused instead of neutralised: {errors:#?}")
            }
        }
    }
    count
}

#[test]
fn every_hostile_change_to_the_bundled_output_is_refused_with_its_rule_or_neutralised() {
    let devnet = devnet();
    let count = run_cases(
        "OpNode",
        &devnet.sequencer,
        "plugin_op_node",
        sequencer_cases(),
    ) + run_cases(
        "OpBatcher",
        &devnet.batcher,
        "plugin_op_batcher",
        batcher_cases(),
    );
    assert!(count >= 30, "only {count} hostile outputs");
}

#[test]
fn a_service_type_and_annotations_the_cr_asks_for_are_allowed() {
    let mut sequencer = devnet().sequencer;
    sequencer["spec"]["service"] = json!({
        "type": "LoadBalancer",
        "annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}
    });
    let (objects, _) = bundled("OpNode", &sequencer, "plugin_op_node");
    let rpc = objects
        .iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "devnet-sequencer")
        .unwrap();
    assert_eq!(rpc["spec"]["type"], "LoadBalancer");
    // Yet the same annotation with another value is the renderer's own, and refused.
    let (mut objects, owner) = bundled("OpNode", &sequencer, "plugin_op_node");
    rpc_service(&mut objects)["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] =
        json!("internet-facing");
    let errors = envelope::seal(&objects, &owner).unwrap_err();
    assert_eq!(errors[0].reason(), "ForbiddenAnnotation", "{errors:?}");
}
