//! Hardfork readiness: whether the releases a CR's rendered pods would run follow its chain's
//! forks, judged from the release table (`crds/releases.toml`) and the chain's fork schedule.
//! Pure: the reconcile hands it the rendered objects, the schedule and the time.
//!
//! Three outcomes, strongest first:
//! - a refusal ([`UpgradeError`]): a fork already active on the chain that a rendered image
//!   cannot follow (the node would stop at it, or has), or an op-node + execution-client mix
//!   the table lists as broken. Nothing is applied; what runs keeps running.
//! - [`Readiness::Required`]: the next fork is not followed by some image. Within the notice
//!   window it is urgent (a Warning Event); further out, it is only reported.
//! - [`Readiness::Ready`] / [`Readiness::Unknown`] (an image whose tag names no release).

use opstack_crds::OptimismNetwork;
use opstack_crds::releases::{Activation, Component, Minimum, ReleaseTable, Version};
use serde_json::Value;

/// A component a rendered pod runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub component: Component,
    pub image: String,
    /// `None` when the tag names no release (a digest, a custom tag).
    pub version: Option<Version>,
}

/// Refusals. Variant names double as condition reasons.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpgradeError {
    #[error(
        "{component} image {image} cannot follow {fork}, active on this chain since {activated}: {component} follows it from {needs}; set the image to {current} (the operator's tested release) or remove the image override"
    )]
    ReleaseCannotFollowChain {
        component: Component,
        image: String,
        fork: String,
        activated: String,
        needs: Minimum,
        current: String,
    },
    #[error(
        "{a} image {a_image} and {b} image {b_image} do not work together: {why}; upgrade {b} to {needs} or later (the operator's tested pair is {pair})"
    )]
    IncompatibleNodePair {
        a: Component,
        a_image: String,
        b: Component,
        b_image: String,
        needs: Version,
        why: String,
        pair: String,
    },
}

impl UpgradeError {
    pub fn reason(&self) -> &'static str {
        match self {
            UpgradeError::ReleaseCannotFollowChain { .. } => "ReleaseCannotFollowChain",
            UpgradeError::IncompatibleNodePair { .. } => "IncompatibleNodePair",
        }
    }
}

/// A component that does not follow a fork.
#[derive(Debug, Clone, PartialEq)]
pub struct Lagging {
    pub component: Component,
    pub image: String,
    pub needs: Minimum,
}

/// What the reconcile reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    /// Every image follows every scheduled fork; `next` is the next one that concerns them.
    Ready { next: Option<Activation> },
    /// The next fork `next` is not followed by `lagging`; `urgent` when it is within the notice window.
    Required {
        next: Activation,
        lagging: Vec<Lagging>,
        urgent: bool,
    },
    /// Some image's release cannot be told from its tag, so readiness for `next` cannot be judged.
    Unknown {
        next: Activation,
        unknown: Vec<Running>,
    },
}

impl Readiness {
    pub fn next(&self) -> Option<&Activation> {
        match self {
            Readiness::Ready { next } => next.as_ref(),
            Readiness::Required { next, .. } | Readiness::Unknown { next, .. } => Some(next),
        }
    }
}

/// The fork schedule of `network`'s chain: from its rollup config (`rollup_config`, the JSON
/// the network gives inline or in its ConfigMap) when there is one, else the release table's
/// for its network name; then its L1's. A rollup config that is no JSON leaves the named
/// schedule: the renderer and the nodes report a broken config themselves.
pub fn schedule_of(network: &OptimismNetwork, rollup_config: Option<&str>) -> Vec<Activation> {
    let rollup_config = rollup_config.and_then(|text| serde_json::from_str::<Value>(text).ok());
    opstack_crds::releases::table().schedule(
        network.spec.network_name.as_deref(),
        rollup_config.as_ref(),
        network.spec.l1_chain_id,
    )
}

/// The components the workloads among `objects` run: their containers named after a
/// component (the bundled renderers name them so; init containers are helpers).
pub fn running(objects: &[Value]) -> Vec<Running> {
    let mut out = Vec::new();
    for object in objects {
        let containers = object
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array);
        for container in containers.into_iter().flatten() {
            let name = container.get("name").and_then(Value::as_str).unwrap_or("");
            let image = container.get("image").and_then(Value::as_str).unwrap_or("");
            if let Some(component) = Component::of_container(name) {
                out.push(Running {
                    component,
                    image: image.to_owned(),
                    version: Version::of_image(image),
                });
            }
        }
    }
    out
}

/// The current time in unix seconds, the clock every readiness judgement is made against.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// RFC 3339 UTC of unix seconds, for messages and status.
pub fn rfc3339(time: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(time)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| time.to_string())
}

/// Judges `running` against `schedule` at `now` (unix seconds); forks within `notice` seconds
/// are urgent.
pub fn judge(
    table: &ReleaseTable,
    schedule: &[Activation],
    running: &[Running],
    now: i64,
    notice: i64,
) -> Result<Readiness, Box<UpgradeError>> {
    let concerns = |activation: &Activation| {
        table.fork(&activation.fork).map(|fork| {
            running
                .iter()
                .filter_map(|r| fork.minimum.get(&r.component).map(|min| (r, min)))
                .collect::<Vec<_>>()
        })
    };
    for activation in schedule.iter().filter(|a| a.time <= now) {
        for (run, min) in concerns(activation).unwrap_or_default() {
            let follows = match (&run.version, min) {
                (_, Minimum::Never) => false,
                (Some(version), min) => min.admits(version),
                // Unknown release: a fork already behind us cannot be judged either; the node's
                // own sync status shows whether it follows.
                (None, _) => true,
            };
            if !follows {
                return Err(Box::new(UpgradeError::ReleaseCannotFollowChain {
                    component: run.component,
                    image: run.image.clone(),
                    fork: activation.fork.clone(),
                    activated: rfc3339(activation.time),
                    needs: min.clone(),
                    current: table.default_image(run.component),
                }));
            }
        }
    }
    check_pairs(table, running)?;
    let Some((next, affected)) = schedule
        .iter()
        .filter(|a| a.time > now)
        .filter_map(|a| concerns(a).filter(|c| !c.is_empty()).map(|c| (a, c)))
        .next()
    else {
        return Ok(Readiness::Ready { next: None });
    };
    let lagging: Vec<Lagging> = affected
        .iter()
        .filter(|(run, min)| match (&run.version, min) {
            (_, Minimum::Never) => true,
            (Some(version), min) => !min.admits(version),
            (None, _) => false,
        })
        .map(|(run, min)| Lagging {
            component: run.component,
            image: run.image.clone(),
            needs: (*min).clone(),
        })
        .collect();
    if !lagging.is_empty() {
        return Ok(Readiness::Required {
            next: next.clone(),
            lagging,
            urgent: next.time - now <= notice,
        });
    }
    let unknown: Vec<Running> = affected
        .iter()
        .filter(|(run, min)| run.version.is_none() && !matches!(min, Minimum::Never))
        .map(|(run, _)| (*run).clone())
        .collect();
    if !unknown.is_empty() {
        return Ok(Readiness::Unknown {
            next: next.clone(),
            unknown,
        });
    }
    Ok(Readiness::Ready {
        next: Some(next.clone()),
    })
}

fn check_pairs(table: &ReleaseTable, running: &[Running]) -> Result<(), Box<UpgradeError>> {
    let version_of = |component: Component| {
        running
            .iter()
            .find(|r| r.component == component)
            .and_then(|r| r.version.as_ref().map(|v| (r, v)))
    };
    for rule in &table.pairs {
        let (when_component, when_version) = &rule.when;
        let (needs_component, needs_version) = &rule.needs;
        if let (Some((a, a_version)), Some((b, b_version))) =
            (version_of(*when_component), version_of(*needs_component))
            && a_version >= when_version
            && b_version < needs_version
        {
            return Err(Box::new(UpgradeError::IncompatibleNodePair {
                a: a.component,
                a_image: a.image.clone(),
                b: b.component,
                b_image: b.image.clone(),
                needs: needs_version.clone(),
                why: rule.why.clone(),
                pair: format!(
                    "{} + {}",
                    table.default_image(Component::OpNode),
                    table.default_image(Component::OpReth)
                ),
            }));
        }
    }
    Ok(())
}

/// The `UpgradeReady` condition of a readiness.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// `None`: Unknown.
    pub status: Option<bool>,
    pub reason: &'static str,
    pub message: String,
    /// Worth a Warning Event: an upgrade is due within the notice window.
    pub warn: bool,
}

/// The `UpgradeReady` condition `readiness` reports at `now`.
pub fn report(readiness: &Readiness, now: i64) -> Report {
    let when = |a: &Activation| {
        let days = (a.time - now) as f64 / 86_400.0;
        format!("{} at {} (in {days:.1} days)", a.fork, rfc3339(a.time))
    };
    match readiness {
        Readiness::Ready { next: None } => Report {
            status: Some(true),
            reason: "NoForkScheduled",
            message: "no fork the operator knows of is scheduled for this chain and its images"
                .to_owned(),
            warn: false,
        },
        Readiness::Ready { next: Some(next) } => Report {
            status: Some(true),
            reason: "ReleaseFollowsNextFork",
            message: format!("every image follows the next fork, {}", when(next)),
            warn: false,
        },
        Readiness::Required {
            next,
            lagging,
            urgent,
        } => {
            let images: Vec<String> = lagging
                .iter()
                .map(|l| format!("{} {} (follows it from {})", l.component, l.image, l.needs))
                .collect();
            let table = opstack_crds::releases::table();
            let fix: Vec<String> = lagging
                .iter()
                .map(|l| table.default_image(l.component))
                .collect();
            Report {
                status: Some(false),
                reason: "UpgradeRequired",
                warn: *urgent,
                message: format!(
                    "the chain activates {}; these images stop there: {}. Upgrade them before \
                     then ({}: remove the image override to take the operator's tested release, \
                     which upgrades op-node and its execution client together)",
                    when(next),
                    images.join(", "),
                    fix.join(", ")
                ),
            }
        }
        Readiness::Unknown { next, unknown } => {
            let images: Vec<String> = unknown
                .iter()
                .map(|r| format!("{} {}", r.component, r.image))
                .collect();
            Report {
                status: None,
                reason: "ReleaseUnknown",
                warn: false,
                message: format!(
                    "the chain activates {}, and the release of {} cannot be told from its tag; \
                     tag the image with its release (vMAJOR.MINOR.PATCH) to have it checked",
                    when(next),
                    images.join(", ")
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opstack_crds::releases::table;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn run(component: Component, tag: &str) -> Running {
        let image = format!("example.org/{component}:{tag}");
        Running {
            component,
            version: Version::of_image(&image),
            image,
        }
    }

    fn at(fork: &str, time: i64) -> Activation {
        Activation {
            fork: fork.into(),
            time,
        }
    }

    #[test]
    fn a_fork_days_away_that_an_image_does_not_follow_is_an_urgent_upgrade() {
        let schedule = [at("karst", NOW - 100 * DAY), at("lagoon", NOW + 3 * DAY)];
        let pods = [
            run(Component::OpNode, "v1.19.6"),
            run(Component::OpReth, "v2.9.0"),
        ];
        let readiness = judge(table(), &schedule, &pods, NOW, 14 * DAY).unwrap();
        let Readiness::Required {
            next,
            lagging,
            urgent,
        } = &readiness
        else {
            panic!("{readiness:?}")
        };
        assert_eq!(next.fork, "lagoon");
        assert!(urgent);
        assert_eq!(lagging.len(), 2);
        let report = report(&readiness, NOW);
        assert!(report.warn);
        assert_eq!(
            (report.status, report.reason),
            (Some(false), "UpgradeRequired")
        );
        assert!(
            report.message.contains("lagoon at 2027-01-"),
            "{}",
            report.message
        );
        assert!(
            report.message.contains("op-node:v1.21.0"),
            "{}",
            report.message
        );
    }

    #[test]
    fn a_fork_beyond_the_notice_window_is_reported_without_urgency() {
        let schedule = [at("lagoon", NOW + 30 * DAY)];
        let pods = [
            run(Component::OpNode, "v1.20.0"),
            run(Component::OpReth, "v2.9.0"),
        ];
        let readiness = judge(table(), &schedule, &pods, NOW, 14 * DAY).unwrap();
        assert!(matches!(
            readiness,
            Readiness::Required { urgent: false, .. }
        ));
    }

    #[test]
    fn the_current_pair_follows_every_scheduled_fork() {
        let schedule = table().schedule(Some("op-sepolia"), None, 11155111);
        let pods = [
            run(Component::OpNode, "v1.21.0"),
            run(Component::OpReth, "v2.10.0"),
        ];
        let readiness = judge(table(), &schedule, &pods, NOW - 300 * DAY, 14 * DAY).unwrap();
        assert!(
            matches!(readiness, Readiness::Ready { next: Some(_) }),
            "{readiness:?}"
        );
    }

    #[test]
    fn an_image_that_cannot_follow_an_active_fork_is_refused() {
        let schedule = [at("karst", NOW - DAY)];
        let error = judge(
            table(),
            &schedule,
            &[
                run(Component::OpNode, "v1.21.0"),
                run(Component::OpGeth, "v1.101702.3"),
            ],
            NOW,
            14 * DAY,
        )
        .unwrap_err();
        assert_eq!(error.reason(), "ReleaseCannotFollowChain");
        let text = error.to_string();
        assert!(text.contains("op-geth") && text.contains("karst"), "{text}");
        let old_node = judge(
            table(),
            &schedule,
            &[run(Component::OpNode, "v1.18.1")],
            NOW,
            14 * DAY,
        )
        .unwrap_err();
        assert!(
            old_node.to_string().contains("v1.19.1 or later"),
            "{old_node}"
        );
    }

    #[test]
    fn op_node_without_its_execution_client_pair_is_refused() {
        let error = judge(
            table(),
            &[],
            &[
                run(Component::OpNode, "v1.19.6"),
                run(Component::OpReth, "v2.3.1"),
            ],
            NOW,
            14 * DAY,
        )
        .unwrap_err();
        assert_eq!(error.reason(), "IncompatibleNodePair");
        assert!(error.to_string().contains("engine_getPayloadV5"));
        let older = judge(
            table(),
            &[],
            &[
                run(Component::OpNode, "v1.18.1"),
                run(Component::OpReth, "v2.3.2"),
            ],
            NOW,
            14 * DAY,
        )
        .unwrap_err();
        assert!(
            older.to_string().contains("upgrade op-node to v1.19.1"),
            "{older}"
        );
    }

    #[test]
    fn an_untagged_image_makes_readiness_unknown_not_refused() {
        let schedule = [at("karst", NOW - DAY), at("lagoon", NOW + DAY)];
        let pods = [Running {
            component: Component::OpNode,
            image: "example.org/op-node@sha256:00".into(),
            version: None,
        }];
        let readiness = judge(table(), &schedule, &pods, NOW, 14 * DAY).unwrap();
        assert!(
            matches!(readiness, Readiness::Unknown { .. }),
            "{readiness:?}"
        );
        assert_eq!(report(&readiness, NOW).status, None);
    }

    #[test]
    fn a_chain_without_known_forks_is_ready() {
        let pods = [
            run(Component::OpNode, "v1.19.6"),
            run(Component::OpGeth, "v1.101702.3"),
        ];
        let readiness = judge(table(), &[], &pods, NOW, 14 * DAY).unwrap();
        assert_eq!(readiness, Readiness::Ready { next: None });
    }

    #[test]
    fn forks_that_concern_none_of_the_pods_images_are_skipped() {
        // Glamsterdam (L1) concerns op-node and op-batcher, not op-proposer.
        let schedule = [at("glamsterdam", NOW + DAY)];
        let readiness = judge(
            table(),
            &schedule,
            &[run(Component::OpProposer, "v1.16.0")],
            NOW,
            14 * DAY,
        )
        .unwrap();
        assert_eq!(readiness, Readiness::Ready { next: None });
    }

    #[test]
    fn containers_named_after_a_component_are_what_a_pod_runs() {
        let objects = [
            serde_json::json!({"kind": "StatefulSet", "spec": {"template": {"spec": {
            "initContainers": [{"name": "geth-init", "image": "x/op-geth:v1.101702.3"}],
            "containers": [
                {"name": "op-node", "image": "x/op-node:v1.21.0"},
                {"name": "op-reth", "image": "x/op-reth@sha256:ab"},
                {"name": "sidecar", "image": "x/sidecar:v1.0.0"}
            ]}}}}),
        ];
        let found = running(&objects);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].version, Some("v1.21.0".parse().unwrap()));
        assert_eq!(found[1].version, None);
    }
}
