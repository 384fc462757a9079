//! Leader election with a coordination Lease, so two replicas of the operator run safely: one
//! reconciles, the other waits to take over.
//!
//! The semantics are controller-runtime's (`k8s.io/client-go/tools/leaderelection`): a candidate
//! takes the Lease when it is free or its holder has not renewed it for `lease_duration`; the
//! leader renews it every `retry_period` and gives up leadership (the process exits, to start
//! again as a candidate) when it could not renew for `renew_deadline`; on shutdown it releases
//! the Lease so the standby takes over at its next try instead of after a whole lease duration.
//! Every write carries the resourceVersion it read, so two candidates never both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

/// The Lease and the timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This replica's name in the Lease (the pod name).
    pub identity: String,
    /// How long a holder that stopped renewing keeps the Lease.
    pub lease_duration: Duration,
    /// How long the leader tries to renew before it gives up leadership.
    pub renew_deadline: Duration,
    /// Between two tries, of a candidate or of the leader's renewals.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// The operator's defaults: a crashed leader's Lease is taken over within the lease
    /// duration plus one retry, 9 s, so the standby reconciles within the 15 s an on-call
    /// person expects (controller-runtime's 15/10/2 would take up to 17 s before it starts).
    pub fn new(namespace: &str, identity: &str) -> Self {
        LeaseSettings {
            namespace: namespace.to_string(),
            name: "opstack-operator".to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(8),
            renew_deadline: Duration::from_secs(5),
            retry_period: Duration::from_secs(1),
        }
    }
}

/// Why leadership could not be held.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error(
        "the Lease {namespace}/{name} could not be renewed for {deadline:?}: leadership is given up"
    )]
    LeadershipLost {
        namespace: String,
        name: String,
        deadline: Duration,
    },
}

/// What a candidate does with the Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, holding it.
    Create,
    /// Free, expired or already ours: write ourselves in as the holder.
    Take { transition: bool },
    /// Someone else holds it, for this long at most.
    Wait {
        holder: String,
        for_at_most: Duration,
    },
}

/// The decision for `identity` on the Lease `spec` (None: no Lease) at `now`.
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Create;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == identity {
        return Decision::Take { transition: false };
    }
    if holder.is_empty() {
        return Decision::Take { transition: true };
    }
    let duration_ms = i64::from(spec.lease_duration_seconds.unwrap_or(0)) * 1000;
    let renewed_ms = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map_or(0, |t| t.0.as_millisecond());
    let left_ms = renewed_ms + duration_ms - now.as_millisecond();
    if left_ms <= 0 {
        Decision::Take { transition: true }
    } else {
        Decision::Wait {
            holder,
            for_at_most: Duration::from_millis(left_ms as u64),
        }
    }
}

/// One try: whether this replica holds the Lease afterwards.
async fn try_take(api: &Api<Lease>, settings: &LeaseSettings) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let live = api.get_opt(&settings.name).await?;
    let decision = decide(
        live.as_ref().and_then(|l| l.spec.as_ref()),
        &settings.identity,
        now,
    );
    let held = |previous: Option<&LeaseSpec>, transition: bool| LeaseSpec {
        holder_identity: Some(settings.identity.clone()),
        lease_duration_seconds: Some(settings.lease_duration.as_secs() as i32),
        acquire_time: if transition {
            Some(MicroTime(now))
        } else {
            previous.and_then(|p| p.acquire_time.clone())
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(
            previous.and_then(|p| p.lease_transitions).unwrap_or(0) + i32::from(transition),
        ),
        ..LeaseSpec::default()
    };
    let result = match (decision, live) {
        (Decision::Create, _) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(settings.name.clone()),
                    namespace: Some(settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    lease_transitions: Some(0),
                    ..held(None, true)
                }),
            };
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
        (Decision::Take { transition }, Some(mut lease)) => {
            // `replace` sends the resourceVersion read above: a concurrent winner makes it a 409.
            lease.spec = Some(held(lease.spec.as_ref(), transition));
            api.replace(&settings.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        (Decision::Wait { .. }, _) | (Decision::Take { .. }, None) => return Ok(false),
    };
    match result {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}

/// Waits until this replica holds the Lease.
pub async fn acquire(client: &Client, settings: &LeaseSettings) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let mut waiting_logged = false;
    loop {
        match try_take(&api, settings).await {
            Ok(true) => {
                tracing::info!(lease = %settings.name, identity = %settings.identity, "leader: starting the controllers");
                return;
            }
            Ok(false) if !waiting_logged => {
                tracing::info!(lease = %settings.name, identity = %settings.identity, "standby: another replica leads");
                waiting_logged = true;
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, lease = %settings.name, "reading the Lease"),
        }
        tokio::time::sleep(settings.retry_period).await;
    }
}

/// Renews the Lease every retry period; returns when it could not for the renew deadline.
pub async fn hold(client: &Client, settings: &LeaseSettings) -> LeaderError {
    let api: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(settings.retry_period).await;
        match try_take(&api, settings).await {
            Ok(true) => last_renewed = tokio::time::Instant::now(),
            Ok(false) => tracing::warn!(lease = %settings.name, "another replica holds the Lease"),
            Err(error) => tracing::warn!(%error, lease = %settings.name, "renewing the Lease"),
        }
        if last_renewed.elapsed() >= settings.renew_deadline {
            return LeaderError::LeadershipLost {
                namespace: settings.namespace.clone(),
                name: settings.name.clone(),
                deadline: settings.renew_deadline,
            };
        }
    }
}

/// Gives the Lease up on shutdown, if this replica still holds it.
pub async fn release(client: &Client, settings: &LeaseSettings) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let Ok(Some(mut lease)) = api.get_opt(&settings.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    match api
        .replace(&settings.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => tracing::info!(lease = %settings.name, "released the Lease"),
        Err(error) => tracing::warn!(%error, lease = %settings.name, "releasing the Lease"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, renewed: Timestamp, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(seconds),
            renew_time: Some(MicroTime(renewed)),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_is_taken_only_when_missing_free_expired_or_already_ours() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let ago = |s: i64| Timestamp::from_second(1_000_000 - s).unwrap();
        assert_eq!(decide(None, "b", now), Decision::Create);
        assert_eq!(
            decide(Some(&held_by("b", ago(30), 10)), "b", now),
            Decision::Take { transition: false }
        );
        assert_eq!(
            decide(Some(&held_by("a", ago(3), 10)), "b", now),
            Decision::Wait {
                holder: "a".into(),
                for_at_most: Duration::from_secs(7)
            }
        );
        assert_eq!(
            decide(Some(&held_by("a", ago(10), 10)), "b", now),
            Decision::Take { transition: true }
        );
        let released = LeaseSpec {
            holder_identity: None,
            ..held_by("", ago(0), 1)
        };
        assert_eq!(
            decide(Some(&released), "b", now),
            Decision::Take { transition: true }
        );
    }
}
