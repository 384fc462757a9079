//! Secrets: the user's are checked to exist (and hold their key) with `get` only; the host's
//! (engine JWT, p2p key) are created once and never rewritten. Values are never logged, put
//! in status or in Events.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use opstack_crds::conventions::{self, secret_purpose};
use opstack_crds::{OpNode, OptimismNetwork};
use serde_json::Value;

use super::{ControllerError, WriteCounter};
use crate::context;
use crate::envelope::{LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_PART_OF, MANAGER};

/// A user-named Secret that is not usable, with the field that names it and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretProblem {
    pub reason: &'static str,
    pub message: String,
}

/// A Secret the host generates for an `OpNode`: name and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub name: String,
    pub key: &'static str,
    pub purpose: &'static str,
}

/// The Secrets the host generates for `node` (an `OpNode` as JSON): the engine JWT unless the
/// user named one, the p2p key if p2p is on and the user named none.
pub fn generated(node: &Value) -> Vec<Generated> {
    let name = node
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut out = Vec::new();
    // Typed, so defaults (p2p on unless disabled) are the API's, as in `context::secrets`.
    let Ok(typed) = serde_json::from_value::<OpNode>(node.clone()) else {
        return out;
    };
    let op_node = &typed.spec.op_node;
    if op_node.engine.jwt_secret.secret_ref.is_none() {
        out.push(Generated {
            name: conventions::generated_jwt_secret(name),
            key: conventions::GENERATED_JWT_KEY,
            purpose: secret_purpose::JWT,
        });
    }
    if op_node.p2p.enabled && op_node.p2p.private_key.secret_ref.is_none() {
        out.push(Generated {
            name: conventions::generated_p2p_secret(name),
            key: conventions::GENERATED_P2P_KEY,
            purpose: secret_purpose::P2P_KEY,
        });
    }
    out
}

/// Where a purpose's Secret is named, and which key it must hold.
fn field_and_key(
    purpose: &str,
    resource: &Value,
    network: &OptimismNetwork,
) -> (String, Vec<String>) {
    let key_at = |pointer: &str| {
        resource
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(|k| vec![k.to_string()])
            .unwrap_or_default()
    };
    let network_name = network.metadata.name.clone().unwrap_or_default();
    match purpose {
        secret_purpose::JWT => (
            "spec.opNode.engine.jwtSecret.secretRef".into(),
            key_at("/spec/opNode/engine/jwtSecret/secretRef/key"),
        ),
        secret_purpose::P2P_KEY => (
            "spec.opNode.p2p.privateKey.secretRef".into(),
            key_at("/spec/opNode/p2p/privateKey/secretRef/key"),
        ),
        secret_purpose::SEQUENCER_KEY => (
            "spec.opNode.sequencer.signingKey.secretRef".into(),
            key_at("/spec/opNode/sequencer/signingKey/secretRef/key"),
        ),
        secret_purpose::PRIVATE_KEY => (
            "spec.privateKey.secretRef".into(),
            key_at("/spec/privateKey/secretRef/key"),
        ),
        secret_purpose::SIGNER_TLS => (
            "spec.remoteSigner.tlsSecretName".into(),
            vec!["ca.crt".into(), "tls.crt".into(), "tls.key".into()],
        ),
        secret_purpose::L1_RPC_URL => (
            format!("OptimismNetwork {network_name:?} spec.l1RpcUrlSecretRef"),
            network
                .spec
                .l1_rpc_url_secret_ref
                .iter()
                .map(|r| r.key.clone())
                .collect(),
        ),
        secret_purpose::L1_BEACON_URL => (
            format!("OptimismNetwork {network_name:?} spec.l1BeaconUrlSecretRef"),
            network
                .spec
                .l1_beacon_url_secret_ref
                .iter()
                .map(|r| r.key.clone())
                .collect(),
        ),
        other => (format!("a {other} Secret"), Vec::new()),
    }
}

/// The libp2p peer IDs of the `OpNode`s `resource` (an `OpNode`) references, from their P2P
/// key Secrets (the host's generated one, or the one the target names): a replica's static peer
/// is its sequencer. A target whose Secret does not exist yet is left out; its reconcile creates
/// the Secret, and the change of the target reconciles this resource again. The key is read
/// only to derive the public peer ID and never leaves this function.
pub async fn peer_ids_of_references(
    client: &Client,
    namespace: &str,
    kind: &str,
    resource: &Value,
    nodes: &[OpNode],
) -> Result<BTreeMap<String, String>, ControllerError> {
    let mut ids = BTreeMap::new();
    if kind != "OpNode" {
        return Ok(ids);
    }
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    for field in context::opnode_reference_fields(kind) {
        let Some(target) = resource
            .pointer(&format!("/spec/{field}/name"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let Some(node) = nodes.iter().find(|n| n.name_any() == target) else {
            continue;
        };
        let p2p = &node.spec.op_node.p2p;
        if !p2p.enabled {
            continue;
        }
        let (secret, key) = match &p2p.private_key.secret_ref {
            Some(reference) => (reference.name.clone(), reference.key.clone()),
            None => (
                conventions::generated_p2p_secret(target),
                conventions::GENERATED_P2P_KEY.to_owned(),
            ),
        };
        let Some(found) = secrets.get_opt(&secret).await? else {
            continue;
        };
        let value = found
            .data
            .as_ref()
            .and_then(|data| data.get(&key))
            .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned());
        match value.as_deref().map(crate::peer_id::from_private_key_hex) {
            Some(Ok(id)) => {
                ids.insert(target.to_owned(), id);
            }
            Some(Err(error)) => tracing::warn!(
                %namespace, node = %target, secret = %secret, %error,
                "no peer ID for a referenced node: its P2P key is unusable"
            ),
            None => {}
        }
    }
    Ok(ids)
}

/// Checks that every Secret the CR names (not the host's own) exists and holds its key.
/// Reads each by name: the operator may `get` Secrets but never list or watch them.
pub async fn check_user_secrets(
    client: &Client,
    namespace: &str,
    kind: &str,
    resource: &Value,
    network: &OptimismNetwork,
) -> Result<Option<SecretProblem>, ControllerError> {
    let generated: Vec<String> = if kind == "OpNode" {
        generated(resource).into_iter().map(|g| g.name).collect()
    } else {
        Vec::new()
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    // The host's own Secrets are read (and created) later; reading one here finds a namespace
    // where the operator may not touch Secrets before anything is applied.
    if let Some(first) = generated.first()
        && let Err(problem) = read_secret(&api, namespace, first).await?
    {
        return Ok(Some(problem));
    }
    for named in context::secrets(kind, resource, network) {
        if generated.contains(&named.name) {
            continue;
        }
        let (field, keys) = field_and_key(&named.purpose, resource, network);
        let found = match read_secret(&api, namespace, &named.name).await? {
            Ok(found) => found,
            Err(problem) => return Ok(Some(problem)),
        };
        let Some(secret) = found else {
            return Ok(Some(SecretProblem {
                reason: "SecretNotFound",
                message: format!(
                    "{field}: Secret {:?} does not exist in namespace {namespace}; create it (kubectl create secret generic {} ...) or fix the name",
                    named.name, named.name
                ),
            }));
        };
        let data = secret.data.unwrap_or_default();
        if let Some(missing) = keys.iter().find(|k| !data.contains_key(*k)) {
            return Ok(Some(SecretProblem {
                reason: "SecretKeyNotFound",
                message: format!(
                    "{field}: Secret {:?} has no key {missing:?}; add it or fix the key",
                    named.name
                ),
            }));
        }
    }
    Ok(None)
}

/// The ClusterRole a namespace binds to let the operator read and create its Secrets
/// (`deploy/rbac.yaml`): Secret rights are never granted cluster-wide.
pub const SECRETS_ROLE: &str = "opstack-operator-secrets";

/// One Secret by name; a refusal of the API (no RoleBinding for [`SECRETS_ROLE`] in the
/// namespace) is a problem naming the fix, not an error to retry blindly.
async fn read_secret(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
) -> Result<Result<Option<Secret>, SecretProblem>, ControllerError> {
    match api.get_opt(name).await {
        Ok(found) => Ok(Ok(found)),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(Err(SecretProblem {
            reason: "SecretAccessDenied",
            message: format!(
                "the operator may not read Secrets in namespace {namespace} (reading {name:?}: {}); Secret rights are granted per namespace. Fix: kubectl create rolebinding {SECRETS_ROLE} --namespace {namespace} --clusterrole {SECRETS_ROLE} --serviceaccount <operator-namespace>:opstack-operator",
                status.message
            ),
        })),
        Err(error) => Err(error.into()),
    }
}

/// secp256k1's group order: a p2p key must be below it (and not zero).
const SECP256K1_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// 32 random bytes as 64 lowercase hex characters, no `0x`, no newline. Valid both as an
/// engine JWT secret and as a secp256k1 private key, and the one form every reader accepts:
/// op-node and op-geth trim the file and allow an optional `0x` (`ObtainJWTSecret` in
/// ethereum-optimism/optimism@v1.19.6 `op-service/rpc/jwt.go` and op-geth@v1.101702.3
/// `node/node.go`; `loadNetworkPrivKey` in optimism `op-node/p2p/cli/load_config.go`), while
/// op-reth parses a key file untrimmed (`get_secret_key` in paradigmxyz/reth
/// `crates/cli/util/src/load_secret_key.rs`), so a newline or prefix there fails.
pub fn random_key_hex() -> Result<String, ControllerError> {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| ControllerError::Random(e.to_string()))?;
        if bytes != [0u8; 32] && bytes < SECP256K1_ORDER {
            return Ok(bytes.iter().map(|b| format!("{b:02x}")).collect());
        }
    }
}

/// Creates the host's Secrets for an `OpNode` that do not exist yet. `create`, not apply: an
/// existing one is never rewritten, so keys are never rotated behind the user's back.
/// Returns the names created.
pub async fn ensure_generated(
    client: &Client,
    namespace: &str,
    node: &Value,
    owner: &OwnerReference,
    network: &str,
    writes: &WriteCounter,
) -> Result<Vec<String>, ControllerError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut created = Vec::new();
    for secret in generated(node) {
        if api.get_opt(&secret.name).await?.is_some() {
            continue;
        }
        let object = Secret {
            metadata: ObjectMeta {
                name: Some(secret.name.clone()),
                namespace: Some(namespace.to_string()),
                labels: Some(BTreeMap::from([
                    (LABEL_MANAGED_BY.to_string(), MANAGER.to_string()),
                    (LABEL_INSTANCE.to_string(), owner.name.clone()),
                    (LABEL_PART_OF.to_string(), network.to_string()),
                ])),
                annotations: Some(BTreeMap::from([(
                    "optimism.io/secret-purpose".to_string(),
                    secret.purpose.to_string(),
                )])),
                owner_references: Some(vec![owner.clone()]),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_string()),
            data: Some(BTreeMap::from([(
                secret.key.to_string(),
                ByteString(random_key_hex()?.into_bytes()),
            )])),
            ..Secret::default()
        };
        writes.count()?;
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => created.push(secret.name),
            // Another reconcile (or a previous run) made it first: keep theirs.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_64_lowercase_hex_characters() {
        let key = random_key_hex().unwrap();
        assert_eq!(key.len(), 64);
        assert!(key.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    }

    #[test]
    fn the_host_generates_what_the_user_did_not_name() {
        let node = serde_json::json!({"apiVersion": "optimism.io/v1alpha1", "kind": "OpNode",
            "metadata": {"name": "n"}, "spec": {"optimismNetworkRef": {"name": "x"},
            "nodeType": "replica", "opNode": {"p2p": {"enabled": true},
            "engine": {"jwtSecret": {"secretRef": {"name": "mine", "key": "jwt"}}}}}});
        let names: Vec<String> = generated(&node).into_iter().map(|g| g.name).collect();
        assert_eq!(names, vec!["n-p2p-key".to_string()]);
    }
}
