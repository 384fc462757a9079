//! The L1 health probe behind the `L1Connected` condition, and its backoff.
//!
//! During an L1 outage the operator keeps every child as it is, and costs the endpoint a
//! bounded number of calls (≤ 20 in 10 minutes, ≤ 1 per minute after 5 failures; see
//! `docs/security.md`, "Chain safety").
//! The probe is two cheap calls, and stops at the first failure; the backoff is pure so the
//! bound is a unit test, not a hope.

use std::time::Duration;

use super::l1::L1Reader;
use super::{ConditionSummary, DiscoveryError, trust};

/// What a successful probe saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L1Health {
    pub chain_id: u64,
    pub head: u64,
}

/// Calls made by one probe, at most.
pub const CALLS_PER_PROBE: u32 = 2;

/// `eth_chainId` (must equal `expected_chain_id`) then `eth_blockNumber`.
pub async fn probe<L: L1Reader>(
    l1: &L,
    expected_chain_id: u64,
) -> Result<L1Health, DiscoveryError> {
    let chain_id = l1.chain_id().await?;
    trust::check_chain_id(expected_chain_id, chain_id)?;
    let head = l1.block_number().await?;
    Ok(L1Health { chain_id, head })
}

/// When to probe next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Between probes while L1 answers.
    pub healthy_interval: Duration,
    /// After the first failure; doubles with each further failure …
    pub first_retry: Duration,
    /// … up to this.
    pub max_retry: Duration,
}

impl Default for Backoff {
    /// 15 s, 30 s, 60 s, then every 2 min: 8 probes (≤ 16 calls) in a 10-minute outage, and
    /// after 5 failures one probe per 2 minutes (≤ 1 call per minute).
    fn default() -> Self {
        Self {
            healthy_interval: Duration::from_secs(30),
            first_retry: Duration::from_secs(15),
            max_retry: Duration::from_secs(120),
        }
    }
}

impl Backoff {
    /// The wait before the next probe, after `consecutive_failures` failed probes in a row
    /// (0: the last probe succeeded).
    pub fn next_probe_after(&self, consecutive_failures: u32) -> Duration {
        if consecutive_failures == 0 {
            return self.healthy_interval;
        }
        let doublings = (consecutive_failures - 1).min(31);
        self.first_retry
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max_retry)
            .min(self.max_retry)
    }

    /// The most probes this policy makes in `window` when every probe fails, counting one at
    /// the start of the window (the worst case of an outage that begins right after a success).
    pub fn max_probes_during_outage(&self, window: Duration) -> u32 {
        let mut probes = 0;
        let mut elapsed = Duration::ZERO;
        while elapsed <= window {
            probes += 1;
            elapsed += self.next_probe_after(probes);
        }
        probes
    }
}

/// Consecutive failures, the only state the probe loop keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeState {
    pub consecutive_failures: u32,
}

impl ProbeState {
    /// Records a probe's result and returns when to probe next.
    pub fn record<T>(&mut self, result: &Result<T, DiscoveryError>, backoff: &Backoff) -> Duration {
        self.consecutive_failures = match result {
            Ok(_) => 0,
            Err(_) => self.consecutive_failures.saturating_add(1),
        };
        backoff.next_probe_after(self.consecutive_failures)
    }
}

/// The `L1Connected` condition for a probe result.
pub fn l1_connected(result: &Result<L1Health, DiscoveryError>) -> ConditionSummary {
    match result {
        Ok(health) => ConditionSummary {
            type_: "L1Connected",
            status: true,
            reason: "Connected".to_string(),
            message: format!("L1 chain {} at block {}", health.chain_id, health.head),
        },
        Err(error) => ConditionSummary {
            type_: "L1Connected",
            status: false,
            reason: error.reason().to_string(),
            message: format!("{error}; running components are left as they are"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_retry_up_to_the_cap() {
        let b = Backoff::default();
        let waits: Vec<u64> = (0..7).map(|n| b.next_probe_after(n).as_secs()).collect();
        assert_eq!(waits, vec![30, 15, 30, 60, 120, 120, 120]);
        assert_eq!(b.next_probe_after(u32::MAX), b.max_retry);
    }

    #[test]
    fn an_l1_outage_costs_at_most_20_calls_in_10_minutes() {
        let b = Backoff::default();
        let probes = b.max_probes_during_outage(Duration::from_secs(600));
        assert_eq!(probes, 8);
        assert!(probes * CALLS_PER_PROBE <= 20);
    }

    #[test]
    fn after_5_failures_an_outage_costs_at_most_one_call_per_minute() {
        let b = Backoff::default();
        for failures in 5..50 {
            let wait = b.next_probe_after(failures);
            assert!(
                wait >= Duration::from_secs(60) * CALLS_PER_PROBE,
                "{failures}: {wait:?}"
            );
        }
    }

    #[test]
    fn one_success_resets_the_backoff() {
        let b = Backoff::default();
        let mut state = ProbeState::default();
        let failure: Result<(), _> = Err(DiscoveryError::Timeout {
            call: "eth_chainId".into(),
            after: Duration::from_secs(10),
        });
        for _ in 0..6 {
            state.record(&failure, &b);
        }
        assert_eq!(state.consecutive_failures, 6);
        assert_eq!(state.record(&Ok(()), &b), b.healthy_interval);
        assert_eq!(state.consecutive_failures, 0);
    }

    #[test]
    fn the_condition_names_the_failure_as_its_reason() {
        let ok = l1_connected(&Ok(L1Health {
            chain_id: 1,
            head: 20,
        }));
        assert!(ok.status);
        assert_eq!(ok.reason, "Connected");
        let down = l1_connected(&Err(DiscoveryError::WrongChainId {
            expected: 1,
            got: 5,
        }));
        assert!(!down.status);
        assert_eq!(down.reason, "WrongChainId");
        assert!(down.message.contains("left as they are"));
    }
}
