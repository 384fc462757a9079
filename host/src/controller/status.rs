//! Conditions (`metav1.Condition`) and the status block the controllers write. Kept as JSON so
//! one piece of code serves the five kinds' status types.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

pub const READY: &str = "Ready";
pub const VALID: &str = "Valid";
pub const RENDERED: &str = "Rendered";
pub const APPLIED: &str = "Applied";
pub const WORKLOAD_READY: &str = "WorkloadReady";
/// The node's head is near the wall clock (it follows its source): from its own answers.
pub const SYNCED: &str = "Synced";
/// The node has the P2P peers it should have.
pub const PEERS_CONNECTED: &str = "PeersConnected";
/// The batcher's batch transactions land on L1.
pub const BATCHES_SUBMITTED: &str = "BatchesSubmitted";
/// The proposer's proposals land on L1.
pub const PROPOSALS_SUBMITTED: &str = "ProposalsSubmitted";
/// The challenger is up and watching games.
pub const GAMES_MONITORED: &str = "GamesMonitored";
pub const CONFIGURATION_VALID: &str = "ConfigurationValid";
pub const CONTRACTS_DISCOVERED: &str = "ContractsDiscovered";
pub const PAUSED: &str = "Paused";
/// Whether the CR's images follow the next fork of its chain (the release table's answer).
pub const UPGRADE_READY: &str = "UpgradeReady";
/// Whether a node runs its rendered release, or where its rollout to it stands.
pub const UPGRADE_ROLLOUT: &str = "UpgradeRollout";
pub const L1_CONNECTED: &str = "L1Connected";
/// Network: every plugin it names is present, matches its digest and loads.
pub const PLUGINS_READY: &str = "PluginsReady";
/// The last renderer change of a CR and what it changed (the shadow render's diff).
pub const RENDERER_CHANGED: &str = "RendererChanged";

/// Condition status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    pub fn as_str(self) -> &'static str {
        match self {
            Truth::True => "True",
            Truth::False => "False",
            Truth::Unknown => "Unknown",
        }
    }
}

/// The conditions of one reconcile, built on top of the ones the CR already has so that
/// `lastTransitionTime` only moves when a condition's status changes, and conditions not set
/// this round keep their value (and their older `observedGeneration`, which says so).
#[derive(Debug, Clone)]
pub struct Conditions {
    generation: Option<i64>,
    old: Vec<Value>,
    conditions: Vec<Value>,
}

impl Conditions {
    pub fn new(old_status: Option<&Value>, generation: Option<i64>) -> Self {
        let old: Vec<Value> = old_status
            .and_then(|s| s.get("conditions"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Conditions {
            generation,
            conditions: old.clone(),
            old,
        }
    }

    pub fn set(&mut self, type_: &str, status: Truth, reason: &str, message: &str) {
        let previous = self
            .old
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(type_));
        let transition = match previous {
            Some(previous)
                if previous.get("status").and_then(Value::as_str) == Some(status.as_str()) =>
            {
                previous
                    .get("lastTransitionTime")
                    .cloned()
                    .unwrap_or_else(now)
            }
            _ => now(),
        };
        let condition = json!({
            "type": type_,
            "status": status.as_str(),
            "reason": reason,
            "message": capped_message(message),
            "observedGeneration": self.generation,
            "lastTransitionTime": transition,
        });
        match self
            .conditions
            .iter_mut()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        {
            Some(slot) => *slot = condition,
            None => self.conditions.push(condition),
        }
    }

    pub fn get(&self, type_: &str) -> Option<&Value> {
        self.conditions
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
    }

    /// Whether `type_` is set to `status` with this reason and message already (before this
    /// round): a refusal already reported is not reported again as an Event.
    pub fn was(&self, type_: &str, status: Truth, reason: &str, message: &str) -> bool {
        self.old.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some(type_)
                && c.get("status").and_then(Value::as_str) == Some(status.as_str())
                && c.get("reason").and_then(Value::as_str) == Some(reason)
                && c.get("message").and_then(Value::as_str) == Some(message)
        })
    }

    pub fn into_values(self) -> Vec<Value> {
        self.conditions
    }
}

fn now() -> Value {
    // Whole seconds: the apiserver stores RFC 3339 with second precision anyway.
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH);
    serde_json::to_value(Time(now)).unwrap_or(Value::Null)
}

/// The status fields the controllers own, or `None` when the CR already has exactly these,
/// so an unchanged CR gets no status write.
pub fn patch_if_changed(
    old_status: Option<&Value>,
    generation: Option<i64>,
    phase: &str,
    conditions: Conditions,
    blocks: Vec<(&str, Value)>,
) -> Option<Value> {
    let mut new = json!({
        "observedGeneration": generation,
        "phase": phase,
        "conditions": conditions.into_values(),
    });
    let mut fields = vec!["observedGeneration", "phase", "conditions"];
    for (field, value) in &blocks {
        new[*field] = value.clone();
        fields.push(field);
    }
    let same = old_status.is_some_and(|old| {
        fields
            .iter()
            .all(|field| old.get(*field) == new.get(*field))
    });
    (!same).then(|| json!({ "status": new }))
}

/// The API server refuses a condition message over 32768 bytes, and with it the whole status
/// write: a longer message (many refused objects, each with its reason) is cut to fit.
pub const MAX_CONDITION_MESSAGE: usize = 32768;

fn capped_message(message: &str) -> String {
    if message.len() <= MAX_CONDITION_MESSAGE {
        return message.to_string();
    }
    let note = " … (cut to fit a condition; the operator's log has the whole message)";
    let end = message.floor_char_boundary(MAX_CONDITION_MESSAGE - note.len());
    format!("{}{note}", &message[..end])
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_condition_message_is_cut_to_what_the_api_server_accepts() {
        let long = "é".repeat(MAX_CONDITION_MESSAGE);
        let capped = capped_message(&long);
        assert!(capped.len() <= MAX_CONDITION_MESSAGE, "{}", capped.len());
        assert!(capped.ends_with("has the whole message)"));
        assert_eq!(capped_message("short"), "short");
    }

    use super::*;

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let old = json!({"conditions": [{
            "type": "Ready", "status": "False", "reason": "PodsNotReady", "message": "a",
            "observedGeneration": 1, "lastTransitionTime": "2020-01-01T00:00:00Z"
        }]});
        let mut same = Conditions::new(Some(&old), Some(2));
        same.set(READY, Truth::False, "Other", "b");
        assert_eq!(
            same.get(READY).unwrap()["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        let mut flipped = Conditions::new(Some(&old), Some(2));
        flipped.set(READY, Truth::True, "Ready", "c");
        assert_ne!(
            flipped.get(READY).unwrap()["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
    }

    #[test]
    fn an_unchanged_status_is_not_written() {
        let mut conditions = Conditions::new(None, Some(1));
        conditions.set(READY, Truth::True, "Ready", "ok");
        let patch =
            patch_if_changed(None, Some(1), "Running", conditions.clone(), Vec::new()).unwrap();
        let status = patch["status"].clone();
        let again = Conditions::new(Some(&status), Some(1));
        let mut again = again;
        again.set(READY, Truth::True, "Ready", "ok");
        assert!(patch_if_changed(Some(&status), Some(1), "Running", again, Vec::new()).is_none());
    }

    #[test]
    fn a_status_block_that_did_not_change_is_not_written_and_one_that_did_is() {
        let mut conditions = Conditions::new(None, Some(1));
        conditions.set(READY, Truth::True, "Ready", "ok");
        let info = || vec![("nodeInfo", json!({"chainHead": {"blockNumber": 7}}))];
        let patch = patch_if_changed(None, Some(1), "Running", conditions.clone(), info()).unwrap();
        let status = patch["status"].clone();
        assert_eq!(status["nodeInfo"]["chainHead"]["blockNumber"], 7);
        let mut again = Conditions::new(Some(&status), Some(1));
        again.set(READY, Truth::True, "Ready", "ok");
        assert!(
            patch_if_changed(Some(&status), Some(1), "Running", again.clone(), info()).is_none()
        );
        let moved = vec![("nodeInfo", json!({"chainHead": {"blockNumber": 8}}))];
        assert!(patch_if_changed(Some(&status), Some(1), "Running", again, moved).is_some());
    }
}
