//! Re-reading pinned contracts after `cacheTimeout`: a changed value is reported, never
//! rewired (`docs/security.md`, "Chain safety"; condition reason `PinnedValueChanged`).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use opstack_crds::network::DiscoveredContracts;

use super::{ConditionSummary, Field};

/// One pinned value that L1 (or the registry) now answers differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub field: Field,
    pub pinned: Option<String>,
    pub observed: Option<String>,
}

/// What the controller does with a fresh discovery result for a network that has pinned ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RereadDecision {
    /// Same values: refresh `lastDiscoveryTime` and `l1BlockNumber`, nothing else.
    Unchanged,
    /// Different values: keep the pinned status exactly as it is, keep every child as it is,
    /// and report the change (condition + Event). Rewiring a sequencer, batcher or proposer to
    /// a new contract on an L1 answer alone would let a lying L1 endpoint redirect the chain;
    /// a person approves it.
    Changed { changes: Vec<Change> },
}

/// Compares the pinned status with a fresh result. Only values count: when or how they were
/// read (`l1BlockNumber`, `lastDiscoveryTime`, `discoveryMethod`) does not; addresses compare
/// case-insensitively (checksum case is presentation).
pub fn decide(pinned: &DiscoveredContracts, observed: &DiscoveredContracts) -> RereadDecision {
    let changes: Vec<Change> = Field::ALL
        .into_iter()
        .filter_map(|field| {
            let a = status_value(pinned, field);
            let b = status_value(observed, field);
            let same = match (&a, &b) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (None, None) => true,
                _ => false,
            };
            (!same).then_some(Change {
                field,
                pinned: a,
                observed: b,
            })
        })
        .collect();
    if changes.is_empty() {
        RereadDecision::Unchanged
    } else {
        RereadDecision::Changed { changes }
    }
}

fn status_value(status: &DiscoveredContracts, field: Field) -> Option<String> {
    let s = status;
    match field {
        Field::SystemConfig => s.system_config_addr.clone(),
        Field::OptimismPortal => s.optimism_portal_addr.clone(),
        Field::DisputeGameFactory => s.dispute_game_factory_addr.clone(),
        Field::L1CrossDomainMessenger => s.l1_cross_domain_messenger_addr.clone(),
        Field::L1StandardBridge => s.l1_standard_bridge_addr.clone(),
        Field::L1Erc721Bridge => s.l1_erc721_bridge_addr.clone(),
        Field::OptimismMintableErc20Factory => s.optimism_mintable_erc20_factory_addr.clone(),
        Field::BatchInbox => s.batch_inbox_addr.clone(),
        Field::UnsafeBlockSigner => s.unsafe_block_signer_addr.clone(),
        Field::StartBlock => s.start_block.map(|n| n.to_string()),
        Field::SystemConfigVersion => s.system_config_version.clone(),
    }
}

impl RereadDecision {
    /// The `ContractsDiscovered` condition for this decision. A change leaves the condition
    /// True (the pinned contracts are still the ones in use) with reason `PinnedValueChanged`,
    /// so it shows in `kubectl get` without turning the network un-Ready.
    pub fn condition(&self, observed_block: Option<i64>) -> ConditionSummary {
        match self {
            RereadDecision::Unchanged => ConditionSummary {
                type_: "ContractsDiscovered",
                status: true,
                reason: "Discovered".to_string(),
                message: "the pinned L1 contracts match what L1 says now".to_string(),
            },
            RereadDecision::Changed { changes } => {
                let at = observed_block
                    .map(|b| format!(" at L1 block {b}"))
                    .unwrap_or_default();
                let list: Vec<String> = changes
                    .iter()
                    .map(|c| {
                        format!(
                            "{}: pinned {}, now {}",
                            c.field,
                            c.pinned.as_deref().unwrap_or("absent"),
                            c.observed.as_deref().unwrap_or("absent")
                        )
                    })
                    .collect();
                ConditionSummary {
                    type_: "ContractsDiscovered",
                    status: true,
                    reason: "PinnedValueChanged".to_string(),
                    message: format!(
                        "L1 contracts changed since they were pinned{at} ({}); the pinned values \
                         stay in use and no component is rewired until the change is approved",
                        list.join("; ")
                    ),
                }
            }
        }
    }
}

/// Whether the pinned contracts are due for a re-read: never read, or read `cache_timeout` ago
/// or longer (`spec.contractAddresses.cacheTimeout`). A time in the future (clock skew) counts
/// as not due rather than as "now": a skewed clock must not cause a burst of L1 reads.
pub fn reread_due(last_discovery: Option<&Time>, cache_timeout: Duration, now: Timestamp) -> bool {
    let Some(Time(last)) = last_discovery else {
        return true;
    };
    let Ok(since) = Duration::try_from(now.duration_since(*last)) else {
        return false;
    };
    since >= cache_timeout
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned() -> DiscoveredContracts {
        DiscoveredContracts {
            system_config_addr: Some("0x229047fed2591dbec1eF1118d64F7aF3dB9EB290".into()),
            dispute_game_factory_addr: Some("0xe5965Ab5962eDc7477C8520243A95517CD252fA9".into()),
            unsafe_block_signer_addr: Some("0xAAAA45d9549EDA09E70937013520214382Ffc4A2".into()),
            start_block: Some(17_422_590),
            system_config_version: Some("3.14.2".into()),
            discovery_method: Some("system-config".into()),
            l1_block_number: Some(100),
            ..Default::default()
        }
    }

    #[test]
    fn a_reread_with_the_same_values_is_unchanged_whatever_the_block_or_case() {
        let mut again = pinned();
        again.l1_block_number = Some(7200);
        again.discovery_method = Some("superchain-registry".into());
        again.system_config_addr = Some("0x229047fed2591dbec1ef1118d64f7af3db9eb290".into());
        assert_eq!(decide(&pinned(), &again), RereadDecision::Unchanged);
    }

    #[test]
    fn a_changed_pinned_value_is_reported_not_rewired() {
        let mut again = pinned();
        again.dispute_game_factory_addr = Some("0x05F9613aDB30026FFd634f38e5C4dFd30a197Fa1".into());
        again.system_config_version = None;
        let decision = decide(&pinned(), &again);
        let RereadDecision::Changed { changes } = &decision else {
            panic!("expected a change, got {decision:?}");
        };
        assert_eq!(
            changes.iter().map(|c| c.field).collect::<Vec<_>>(),
            vec![Field::DisputeGameFactory, Field::SystemConfigVersion]
        );
        let condition = decision.condition(Some(7200));
        assert_eq!(condition.reason, "PinnedValueChanged");
        assert!(condition.status, "pinned contracts stay in use");
        assert!(condition.message.contains("disputeGameFactoryAddr: pinned 0xe5965Ab5962eDc7477C8520243A95517CD252fA9, now 0x05F9613aDB30026FFd634f38e5C4dFd30a197Fa1"), "{}", condition.message);
        assert!(
            condition
                .message
                .contains("systemConfigVersion: pinned 3.14.2, now absent")
        );
        assert!(condition.message.contains("no component is rewired"));
    }

    #[test]
    fn rereads_are_due_after_the_cache_timeout_only() {
        let t0: Timestamp = "2026-08-01T00:00:00Z".parse().unwrap();
        let day = Duration::from_secs(86_400);
        let later = |secs: i64| {
            t0.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(secs))
                .unwrap()
        };
        assert!(reread_due(None, day, t0));
        assert!(!reread_due(Some(&Time(t0)), day, later(86_399)));
        assert!(reread_due(Some(&Time(t0)), day, later(86_400)));
        assert!(
            !reread_due(Some(&Time(later(60))), day, t0),
            "a future time is not due"
        );
    }
}

/// What the controller writes after a discovery run, given what is pinned now.
#[derive(Clone, Debug, PartialEq)]
pub enum PinDecision {
    /// Nothing was pinned: pin this.
    Pin(DiscoveredContracts),
    /// The values are those already pinned: write this (new block and time), touch no child.
    Refresh(DiscoveredContracts),
    /// L1 now says something else: keep the pinned status as it is and report
    /// ([`RereadDecision::condition`] + an Event).
    ReportChange(RereadDecision),
    /// Discovery failed: keep whatever is pinned (possibly nothing) and report why.
    KeepPinned {
        reason: &'static str,
        message: String,
    },
}

/// The one place that turns a discovery result into a status write. Only a result that passed
/// every check ([`super::discover`] returned `Ok`) can ever become pinned values.
pub fn decide_pin(
    pinned: Option<&DiscoveredContracts>,
    result: &Result<super::Discovery, super::DiscoveryError>,
    now: Timestamp,
) -> PinDecision {
    let found = match result {
        Ok(found) => found.to_status(now),
        Err(error) => {
            return PinDecision::KeepPinned {
                reason: error.reason(),
                message: error.to_string(),
            };
        }
    };
    match pinned {
        None => PinDecision::Pin(found),
        Some(pinned) => match decide(pinned, &found) {
            RereadDecision::Unchanged => PinDecision::Refresh(found),
            changed => PinDecision::ReportChange(changed),
        },
    }
}

#[cfg(test)]
mod pin_tests {
    use std::time::Duration;

    use super::*;
    use crate::discovery::{Discovery, DiscoveryError, Method, well_known};

    fn discovery() -> Discovery {
        Discovery {
            method: Method::WellKnown,
            l1_chain_id: 1,
            block: 100,
            second_read_block: None,
            contracts: well_known::by_name("op-mainnet").unwrap().contracts(),
            overridden: vec![],
            attempts: vec![],
        }
    }

    #[test]
    fn a_failed_discovery_pins_nothing_and_keeps_what_was_pinned() {
        let now = Timestamp::UNIX_EPOCH;
        let err = Err(DiscoveryError::Timeout {
            call: "eth_chainId".into(),
            after: Duration::from_secs(10),
        });
        let decision = decide_pin(None, &err, now);
        assert!(matches!(
            decision,
            PinDecision::KeepPinned {
                reason: "Timeout",
                ..
            }
        ));
        let pinned = discovery().to_status(now);
        let decision = decide_pin(Some(&pinned), &err, now);
        assert!(matches!(
            decision,
            PinDecision::KeepPinned {
                reason: "Timeout",
                ..
            }
        ));
    }

    #[test]
    fn a_first_discovery_is_pinned_and_a_same_value_one_refreshes() {
        let now = Timestamp::UNIX_EPOCH;
        let PinDecision::Pin(pinned) = decide_pin(None, &Ok(discovery()), now) else {
            panic!("expected Pin");
        };
        assert_eq!(pinned.discovery_method.as_deref(), Some("well-known"));
        assert_eq!(pinned.l1_block_number, Some(100));
        let mut later = discovery();
        later.block = 200;
        let decision = decide_pin(Some(&pinned), &Ok(later), now);
        assert!(
            matches!(&decision, PinDecision::Refresh(s) if s.l1_block_number == Some(200)),
            "{decision:?}"
        );
    }

    #[test]
    fn a_changed_value_on_reread_is_reported_and_not_pinned() {
        let now = Timestamp::UNIX_EPOCH;
        let pinned = discovery().to_status(now);
        let mut changed = discovery();
        changed.contracts.batch_inbox = None;
        let decision = decide_pin(Some(&pinned), &Ok(changed), now);
        assert!(
            matches!(&decision, PinDecision::ReportChange(RereadDecision::Changed { changes }) if changes[0].field == Field::BatchInbox),
            "{decision:?}"
        );
    }
}
