//! The OptimismNetwork's L1 step: the health probe behind `L1Connected` and discovery behind
//! `ContractsDiscovered` and `status.networkInfo.discoveredContracts`.
//!
//! Every decision is the discovery library's (`health::probe`/`ProbeState`/`l1_connected`,
//! `reread::reread_due`/`decide_pin`); this module only does the I/O (the L1 URL from the spec
//! or a Secret read by name, the registry ConfigMap) and turns decisions into conditions, a pin
//! and Events. Discovery runs only in a probe round, so the probe's backoff bounds every L1
//! call an outage costs, and an outage changes no child (this step never renders or applies).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::{Client, ResourceExt};
use opstack_crds::OptimismNetwork;
use opstack_crds::network::DiscoveredContracts;

use super::ControllerError;
use crate::discovery::health::{self, Backoff, ProbeState};
use crate::discovery::l1::{self, AlloyL1};
use crate::discovery::reread::{self, PinDecision};
use crate::discovery::{self, ConditionSummary, DiscoveryRequest, Method, Options, duration};

/// The probe state of each network (`namespace/name`): consecutive failures, when the next
/// probe is due, and the generation it was made for (a spec change probes at once).
#[derive(Debug, Default)]
pub struct ProbeStates {
    states: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    state: ProbeState,
    next: Instant,
    generation: Option<i64>,
    /// The conditions of the last probe round, repeated between rounds: the CR a reconcile
    /// sees may come from a cache that has not yet seen the last status write, so "keep what
    /// the status says" could write back an older status.
    connected: Option<ConditionSummary>,
    contracts: Option<ConditionSummary>,
}

impl ProbeStates {
    fn get(&self, key: &str) -> Option<Entry> {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Remembers the conditions a probe round decided, for the reconciles until the next one.
    fn remember(&self, key: &str, outcome: &L1Outcome) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = states.get_mut(key) {
            entry.connected = outcome.l1_connected.clone();
            if outcome.contracts.is_some() {
                entry.contracts = outcome.contracts.clone();
            }
        }
    }

    fn put(&self, key: String, entry: Entry) {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, entry);
    }
}

/// A Warning or Normal Event to publish (only when the condition it explains is new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

/// What the L1 step decided for one reconcile. `None` conditions keep their current value.
#[derive(Debug, Default)]
pub struct L1Outcome {
    pub l1_connected: Option<ConditionSummary>,
    pub contracts: Option<ConditionSummary>,
    /// The new `status.networkInfo.discoveredContracts`, when one is to be written.
    pub pin: Option<DiscoveredContracts>,
    pub note: Option<Note>,
    /// When to come back for the next probe.
    pub requeue: Option<Duration>,
}

/// A condition reason from a method name (`system-config` → `SystemConfig`): condition
/// reasons are CamelCase, the status field keeps the CRD's spelling.
fn method_reason(method: &str) -> String {
    method
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn failed(reason: &str, message: String) -> ConditionSummary {
    ConditionSummary {
        type_: "ContractsDiscovered",
        status: false,
        reason: reason.to_string(),
        message,
    }
}

/// Removes the L1 URL (which may carry an API key) from a message, whatever form an HTTP
/// library printed it in: only [`l1::redact`]'s scheme://host:port/… may reach status or Events.
fn scrub(message: &str, url: &str) -> String {
    let mut out = message.replace(url, &l1::redact(url));
    if let Ok(parsed) = url.parse::<reqwest::Url>() {
        out = out.replace(parsed.as_str(), &l1::redact(url));
    }
    out
}

/// The L1 URL: `spec.l1RpcUrl`, or the Secret key `spec.l1RpcUrlSecretRef` names, read with
/// `get` by name (never listed). `Err` is the condition explaining what is missing.
async fn l1_url(
    client: &Client,
    namespace: &str,
    network: &OptimismNetwork,
) -> Result<Result<String, ConditionSummary>, ControllerError> {
    if let Some(url) = &network.spec.l1_rpc_url {
        return Ok(Ok(url.clone()));
    }
    let Some(reference) = &network.spec.l1_rpc_url_secret_ref else {
        return Ok(Err(failed(
            "NoL1Endpoint",
            "neither spec.l1RpcUrl nor spec.l1RpcUrlSecretRef is set; set one to the L1 \
             execution JSON-RPC endpoint"
                .to_string(),
        )));
    };
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&reference.name)
        .await?;
    let value = secret
        .as_ref()
        .and_then(|s| s.data.as_ref())
        .and_then(|d| d.get(&reference.key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    Ok(value.ok_or_else(|| {
        failed(
            "L1EndpointSecretMissing",
            format!(
                "spec.l1RpcUrlSecretRef names key {:?} of Secret {:?}, which {}; create it \
                 holding the L1 JSON-RPC URL",
                reference.key,
                reference.name,
                if secret.is_some() {
                    "lacks that key (or it is empty)"
                } else {
                    "does not exist"
                }
            ),
        )
    }))
}

/// The superchain-registry data `spec.contractAddresses.superchainRegistry` names, if any.
async fn registry(
    client: &Client,
    namespace: &str,
    network: &OptimismNetwork,
) -> Result<Option<Vec<u8>>, ControllerError> {
    let Some(source) = &network.spec.contract_addresses.superchain_registry else {
        return Ok(None);
    };
    let reference = &source.config_map_ref;
    let config_map = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(&reference.name)
        .await?;
    Ok(config_map.and_then(|cm| {
        cm.data
            .as_ref()
            .and_then(|d| d.get(&reference.key))
            .map(|v| v.clone().into_bytes())
            .or_else(|| {
                cm.binary_data
                    .as_ref()
                    .and_then(|d| d.get(&reference.key))
                    .map(|v| v.0.clone())
            })
    }))
}

/// Runs the L1 step for `network` (validated, configuration applied).
pub async fn step(
    client: &Client,
    namespace: &str,
    network: &OptimismNetwork,
    probes: &ProbeStates,
    backoff: &Backoff,
) -> Result<L1Outcome, ControllerError> {
    let key = format!("{namespace}/{}", network.name_any());
    let generation = network.metadata.generation;
    let now = Instant::now();
    let previous = probes.get(&key);
    let due = previous
        .as_ref()
        .is_none_or(|p| now >= p.next || p.generation != generation);
    if !due {
        // Between probes: the last round's conditions, no L1 call, no pin.
        return Ok(L1Outcome {
            l1_connected: previous.as_ref().and_then(|p| p.connected.clone()),
            contracts: previous.as_ref().and_then(|p| p.contracts.clone()),
            requeue: previous.map(|p| p.next.saturating_duration_since(now)),
            ..L1Outcome::default()
        });
    }

    let url = match l1_url(client, namespace, network).await? {
        Ok(url) => url,
        Err(condition) => {
            return Ok(L1Outcome {
                l1_connected: Some(ConditionSummary {
                    type_: "L1Connected",
                    ..condition.clone()
                }),
                note: Some(Note {
                    warning: true,
                    reason: condition.reason.clone(),
                    message: condition.message.clone(),
                }),
                contracts: Some(condition),
                ..L1Outcome::default()
            });
        }
    };
    let prepared =
        DiscoveryRequest::from_spec(&network.spec, registry(client, namespace, network).await?)
            .and_then(|request| Ok((request, Options::from_spec(&network.spec)?)))
            .and_then(|(request, options)| {
                let reader = AlloyL1::new(&url, options.timeout)?;
                Ok((request, options, reader))
            });
    let (request, options, reader) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            let condition = failed(error.reason(), scrub(&error.to_string(), &url));
            return Ok(L1Outcome {
                note: Some(Note {
                    warning: true,
                    reason: condition.reason.clone(),
                    message: condition.message.clone(),
                }),
                contracts: Some(condition),
                ..L1Outcome::default()
            });
        }
    };

    // The probe, with the library's backoff.
    let probed = health::probe(&reader, request.l1_chain_id).await;
    let mut state = previous.as_ref().map(|p| p.state).unwrap_or_default();
    let wait = state.record(&probed, backoff);
    probes.put(
        key.clone(),
        Entry {
            state,
            next: now + wait,
            generation,
            connected: None,
            contracts: previous.as_ref().and_then(|p| p.contracts.clone()),
        },
    );
    let outcome = discover_round(
        network,
        &url,
        &request,
        &options,
        &reader,
        &probed,
        previous.as_ref(),
        wait,
    )
    .await;
    probes.remember(&key, &outcome);
    Ok(outcome)
}

/// The rest of a probe round: the `L1Connected` condition and, when due, discovery.
#[allow(clippy::too_many_arguments)] // one round's inputs, each from a different source
async fn discover_round(
    network: &OptimismNetwork,
    url: &str,
    request: &DiscoveryRequest,
    options: &Options,
    reader: &AlloyL1,
    probed: &Result<health::L1Health, discovery::DiscoveryError>,
    previous: Option<&Entry>,
    wait: Duration,
) -> L1Outcome {
    let generation = network.metadata.generation;
    // A wrong chain id answers: discovery then reports it as its own reason.
    let reachable = match probed {
        Ok(_) => true,
        Err(error) => !error.is_l1_unavailable(),
    };
    let mut connected = health::l1_connected(probed);
    connected.message = scrub(&connected.message, url);
    let mut outcome = L1Outcome {
        l1_connected: Some(connected),
        // Unless this round decides otherwise, the last round's verdict stands.
        contracts: previous.and_then(|p| p.contracts.clone()),
        requeue: Some(wait),
        ..L1Outcome::default()
    };
    let pinned = network
        .status
        .as_ref()
        .and_then(|s| s.network_info.as_ref())
        .and_then(|i| i.discovered_contracts.as_ref());
    if !reachable {
        // An outage: what is pinned stays pinned and in use; with nothing pinned, say why.
        if pinned.is_none()
            && let Err(error) = probed
        {
            outcome.contracts = Some(failed(error.reason(), scrub(&error.to_string(), url)));
        }
        return outcome;
    }

    // Discovery: on first success, after cacheTimeout, and after a spec change.
    let cache_timeout = match duration::parse(
        "spec.contractAddresses.cacheTimeout",
        &network.spec.contract_addresses.cache_timeout,
    ) {
        Ok(timeout) => timeout,
        Err(error) => {
            outcome.contracts = Some(failed(error.reason(), error.to_string()));
            return outcome;
        }
    };
    let spec_changed = previous.is_some_and(|p| p.generation != generation);
    let timestamp =
        Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH);
    let due = pinned.is_none_or(|p| {
        spec_changed || reread::reread_due(p.last_discovery_time.as_ref(), cache_timeout, timestamp)
    });
    // A failed discovery is tried again each probe round (so at the probe's backoff).
    let failed_before = match previous.and_then(|p| p.contracts.as_ref()) {
        Some(contracts) => !contracts.status,
        None => network
            .status
            .as_ref()
            .and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == "ContractsDiscovered")
            })
            .is_some_and(|c| c.status != "True"),
    };
    if !due && !failed_before {
        return outcome;
    }
    let found = discovery::discover(reader, request, options).await;
    match reread::decide_pin(pinned, &found, timestamp) {
        PinDecision::Pin(contracts) | PinDecision::Refresh(contracts) => {
            let method = contracts.discovery_method.clone().unwrap_or_default();
            let block = contracts.l1_block_number.unwrap_or_default();
            let message = format!(
                "L1 contracts found by {method} and checked at L1 block {block}; pinned in \
                 status.networkInfo.discoveredContracts"
            );
            outcome.contracts = Some(ConditionSummary {
                type_: "ContractsDiscovered",
                status: true,
                reason: method_reason(&method),
                message: message.clone(),
            });
            if pinned.is_none() {
                outcome.note = Some(Note {
                    warning: false,
                    reason: "ContractsPinned".to_string(),
                    message,
                });
            }
            outcome.pin = Some(contracts);
        }
        PinDecision::ReportChange(decision) => {
            let block = found
                .as_ref()
                .ok()
                .and_then(|d| i64::try_from(d.block).ok());
            let condition = decision.condition(block);
            outcome.note = Some(Note {
                warning: true,
                reason: condition.reason.clone(),
                message: condition.message.clone(),
            });
            outcome.contracts = Some(condition);
        }
        PinDecision::KeepPinned { reason, message } => {
            let message = scrub(&message, url);
            outcome.note = Some(Note {
                warning: true,
                reason: reason.to_string(),
                message: message.clone(),
            });
            outcome.contracts = Some(failed(reason, message));
        }
    }
    outcome
}

/// The method of a pin as its condition reason (for callers that only have the status).
pub fn reason_of(method: Method) -> String {
    method_reason(method.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_become_camel_case_reasons() {
        assert_eq!(reason_of(Method::SystemConfig), "SystemConfig");
        assert_eq!(reason_of(Method::SuperchainRegistry), "SuperchainRegistry");
        assert_eq!(reason_of(Method::Manual), "Manual");
    }

    #[test]
    fn the_url_never_survives_in_a_message() {
        let url = "https://l1.example/v2/SECRETKEY";
        let message = "error sending request for url (https://l1.example/v2/SECRETKEY)";
        let scrubbed = scrub(message, url);
        assert!(!scrubbed.contains("SECRETKEY"), "{scrubbed}");
        assert!(scrubbed.contains("https://l1.example/…"));
    }
}
