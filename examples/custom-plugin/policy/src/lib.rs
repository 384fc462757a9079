//! An example chain policy for `OpNode`: the rules a chain operator might hold every node to,
//! whoever rendered it. The host runs it after the renderer, on the SEALED objects (namespace,
//! `app.kubernetes.io/*` labels and owner references already stamped), and applies nothing
//! while it reports a violation.
//!
//! Each rule has a stable id (shown in the `PolicyViolation` condition, so alerts and runbooks
//! can key on it) and each message names the field, the value found and the fix.
//!
//! | rule id | what it requires |
//! | --- | --- |
//! | [`RULE_ALLOWED_REGISTRIES`] | every container image comes from [`ALLOWED_REGISTRIES`] |
//! | [`RULE_OP_RETH_MEMORY`] | the op-reth container requests at least [`OP_RETH_MIN_MEMORY`] |
//! | [`RULE_SEQUENCER_NO_DISCOVERY`] | a sequencer's op-node runs no p2p discovery |

mod quantity;

use opstack_plugin_sdk::serde_json::{self, Value};
use opstack_plugin_sdk::{
    CheckInput, CheckOutput, PluginError, PluginInfo, Policy, Violation, export_policy,
};

pub use quantity::parse_bytes;

pub const RULE_ALLOWED_REGISTRIES: &str = "images-from-allowed-registries";
pub const RULE_OP_RETH_MEMORY: &str = "op-reth-minimum-memory";
pub const RULE_SEQUENCER_NO_DISCOVERY: &str = "sequencer-no-p2p-discovery";

/// Registries images may come from (prefixes, trailing `/` included so that
/// `us-docker.pkg.dev/oplabs-tools-artifacts-fork/…` does not pass). Exactly the registries of
/// the bundled renderer's defaults, so a node that sets no image complies: op-node, op-reth and
/// op-geth ship from OP Labs' Artifact Registry, and the operator's own image unpacks a
/// compressed genesis for op-geth (the OP Stack images have no shell to do it).
pub const ALLOWED_REGISTRIES: &[&str] = &[
    "us-docker.pkg.dev/oplabs-tools-artifacts/",
    "ghcr.io/opstack-operator/",
];

/// op-reth below this runs out of page cache on a busy chain and falls behind the tip.
pub const OP_RETH_MIN_MEMORY: &str = "16Gi";

/// Container names of the bundled renderer, which a chain's own renderer keeps too.
const OP_NODE: &str = "op-node";
const OP_RETH: &str = "op-reth";

/// The example policy.
pub struct ExampleChainPolicy;

impl Policy for ExampleChainPolicy {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "example-chain-policy",
            env!("CARGO_PKG_VERSION"),
            &["OpNode"],
        )
    }

    fn check(input: &CheckInput) -> Result<CheckOutput, PluginError> {
        // One field is all this policy needs of the resource; reading it untyped keeps the
        // plugin free of the CRD types (a quarter of the size, far below the ConfigMap cap).
        let sequencer = input.input.resource_json()?["spec"]["nodeType"] == "sequencer";
        let mut out = CheckOutput::default();
        for text in &input.objects {
            let object: Value = serde_json::from_str(text).map_err(|e| {
                PluginError::Internal(format!("the host passed an object that is not JSON: {e}"))
            })?;
            let Some(pod) = object.pointer("/spec/template/spec") else {
                continue;
            };
            let id = format!(
                "{}/{}",
                object["kind"].as_str().unwrap_or_default(),
                object["metadata"]["name"].as_str().unwrap_or_default()
            );
            for (list, container) in containers(pod) {
                let violations = [
                    image_from_allowed_registry(list, container),
                    op_reth_memory(container),
                    no_discovery_on_a_sequencer(sequencer, container),
                ];
                out.violations
                    .extend(
                        violations
                            .into_iter()
                            .flatten()
                            .map(|(rule, message)| Violation {
                                object: id.clone(),
                                rule: rule.into(),
                                message,
                            }),
                    );
            }
        }
        Ok(out)
    }
}

export_policy!(ExampleChainPolicy);

/// Every container of a pod spec, init containers first, with the list it sits in.
fn containers(pod: &Value) -> impl Iterator<Item = (&'static str, &Value)> {
    ["initContainers", "containers"]
        .into_iter()
        .flat_map(move |list| {
            pod[list]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |c| (list, c))
        })
}

fn name(container: &Value) -> &str {
    container["name"].as_str().unwrap_or_default()
}

/// The OpNode field that sets a container's image, for the fix in a message.
fn image_field(container: &str) -> &'static str {
    match container {
        OP_NODE => "spec.opNode.image.image",
        OP_RETH => "spec.opReth.image.image",
        // op-geth and its one-time `geth init` init container.
        _ => "spec.opGeth.image.image",
    }
}

type Found = Option<(&'static str, String)>;

fn image_from_allowed_registry(list: &str, container: &Value) -> Found {
    let image = container["image"].as_str().unwrap_or_default();
    if ALLOWED_REGISTRIES.iter().any(|r| image.starts_with(r)) {
        return None;
    }
    let name = name(container);
    Some((
        RULE_ALLOWED_REGISTRIES,
        format!(
            "{list}[{name}].image is {image:?}, which is not from an allowed registry ({}); \
             set {} on the OpNode to an image from one of them, or unset it for the tested default",
            ALLOWED_REGISTRIES.join(", "),
            image_field(name)
        ),
    ))
}

fn op_reth_memory(container: &Value) -> Found {
    if name(container) != OP_RETH {
        return None;
    }
    let fix = format!(
        "set spec.resources.executionClient.requests.memory on the OpNode (or the network's \
         spec.sharedConfig.resources) to at least {OP_RETH_MIN_MEMORY}"
    );
    let resources = &container["resources"];
    // Kubernetes defaults a missing request to the limit, so a limit alone is the request.
    let (field, value) = match (
        resources["requests"]["memory"].as_str(),
        resources["limits"]["memory"].as_str(),
    ) {
        (Some(request), _) => ("requests", request),
        (None, Some(limit)) => ("limits", limit),
        (None, None) => {
            return Some((
                RULE_OP_RETH_MEMORY,
                format!("containers[{OP_RETH}].resources.requests.memory is not set; {fix}"),
            ));
        }
    };
    let minimum = parse_bytes(OP_RETH_MIN_MEMORY).expect("the minimum is a valid quantity");
    let problem = match parse_bytes(value) {
        Some(bytes) if bytes >= minimum => return None,
        Some(_) => format!("is {value}, below {OP_RETH_MIN_MEMORY}"),
        None => format!("is {value:?}, not a Kubernetes quantity"),
    };
    Some((
        RULE_OP_RETH_MEMORY,
        format!("containers[{OP_RETH}].resources.{field}.memory {problem}; {fix}"),
    ))
}

/// A sequencer announced through discv5 invites every peer on the network to dial the one
/// node that builds blocks; it should gossip only to the replicas it names as static peers.
/// op-node turns discovery off with `--p2p.no-discovery` (env `OP_NODE_P2P_NO_DISCOVERY`), or
/// runs no p2p at all with `--p2p.disable` (`OP_NODE_P2P_DISABLE`); either complies
/// (`plugins/testdata/flags/op-node.txt`).
fn no_discovery_on_a_sequencer(sequencer: bool, container: &Value) -> Found {
    if !sequencer || name(container) != OP_NODE {
        return None;
    }
    let off = [
        ("p2p.no-discovery", "OP_NODE_P2P_NO_DISCOVERY"),
        ("p2p.disable", "OP_NODE_P2P_DISABLE"),
    ];
    if off
        .iter()
        .any(|(flag, env)| switch_on(container, flag, env))
    {
        return None;
    }
    Some((
        RULE_SEQUENCER_NO_DISCOVERY,
        format!(
            "containers[{OP_NODE}] of a sequencer runs p2p discovery (neither --p2p.no-discovery \
             nor --p2p.disable is set); set spec.opNode.p2p.discovery.enabled: false on the \
             OpNode and list its replicas in spec.opNode.p2p.staticPeers"
        ),
    ))
}

/// Whether a boolean op-node flag is on, as `--flag`, `--flag=true` or the env var `"true"`.
/// The last occurrence wins, as in urfave/cli.
fn switch_on(container: &Value, flag: &str, env: &str) -> bool {
    let bare = format!("--{flag}");
    let from_args = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|arg| match arg.strip_prefix(bare.as_str()) {
            Some("") => Some(true),
            Some(value) => value.strip_prefix('=').map(|v| v == "true"),
            None => None,
        })
        .next_back();
    from_args.unwrap_or_else(|| {
        container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["name"] == env && e["value"] == "true")
    })
}
