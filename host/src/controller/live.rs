//! The live step of a reconcile, after apply: once a component's pods are ready, ask the
//! component itself how it is doing (see [`crate::observe`]) and report it: the status block the
//! CRD declares for it (`nodeInfo`, …) and the conditions users ask about (`Synced`,
//! `PeersConnected`). `Ready` then means "serves a current chain", not "a port opened".
//!
//! Bounded: at most one probe per component per [`Settings::status_interval`](super::Settings)
//! (a reconcile sooner, e.g. the one the status write itself triggers, reuses the last answers),
//! each call with a deadline, and the reconcile requeues after that interval while pods run. A
//! component that does not answer keeps its last status block; the conditions say why.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opstack_crds::conventions::endpoint;
use opstack_crds::{MetricsConfig, OpBatcher, OpChallenger, OpNode, OpProposer, OptimismNetwork};
use serde_json::Value;

use super::Context;
use super::status::{self, Conditions, Truth};
use crate::context::opnode_endpoints;
use crate::observe::op_node::{self, NodeUrls, SyncTolerance, Verdict};
use crate::observe::services::{self, Tolerance};

/// The last answers of each component, by CR uid: what a reconcile sooner than the interval
/// reuses instead of asking again.
#[derive(Debug)]
pub struct Throttle<T> {
    last: Mutex<HashMap<String, (Instant, T)>>,
}

impl<T> Default for Throttle<T> {
    fn default() -> Self {
        Throttle {
            last: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> Throttle<T> {
    /// The answer for `uid`: the last one if younger than `interval`, else a fresh one from
    /// `probe` (remembered).
    pub async fn get_or_probe<F>(&self, uid: &str, interval: Duration, probe: F) -> T
    where
        F: Future<Output = T>,
    {
        let fresh = {
            let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            last.get(uid)
                .filter(|(at, _)| at.elapsed() < interval)
                .map(|(_, answer)| answer.clone())
        };
        if let Some(answer) = fresh {
            return answer;
        }
        let answer = probe.await;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        // Forget CRs not probed for a long time (deleted ones).
        last.retain(|_, (at, _)| at.elapsed() < 10 * interval);
        last.insert(uid.to_owned(), (Instant::now(), answer.clone()));
        answer
    }
}

impl<T> Throttle<T> {
    /// Drops the last answer for `uid`: the next call asks again.
    pub fn forget(&self, uid: &str) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.remove(uid);
    }
}

/// The live step's memory of the components' answers.
#[derive(Debug, Default)]
pub struct LiveAnswers {
    pub nodes: Throttle<Result<op_node::NodeObservation, crate::observe::rpc::RpcError>>,
    /// The metrics pages of batchers, proposers and challengers.
    pub services: Throttle<Result<services::Metrics, services::MetricsError>>,
}

/// What the live step found, for the rest of the status step.
#[derive(Debug, Default)]
pub struct Live {
    /// `Ready` as the component's own answers say (`None`: the workload's readiness stands).
    pub ready: Option<Verdict>,
    /// A status block to write (field name, value), when the component answered.
    pub block: Option<(&'static str, Value)>,
    /// When to look again.
    pub requeue: Option<Duration>,
}

/// Every OP Stack chain the operator knows builds a block every 2 s (the rollup config's
/// `block_time`); the tolerance's floor dominates for any block time up to 2 s.
const BLOCK_TIME_SECONDS: u64 = 2;

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// The live step of an `OpNode` (as JSON `value`) whose workload is `workload_ready`; `nodes`
/// are the namespace's OpNodes, to tell whether this one should have peers.
pub async fn opnode(
    context: &Context,
    value: &Value,
    nodes: &[OpNode],
    workload_ready: bool,
    conditions: &mut Conditions,
) -> Result<Live, serde_json::Error> {
    if !workload_ready {
        let message = "the node's pods are not ready yet";
        for type_ in [status::SYNCED, status::PEERS_CONNECTED] {
            conditions.set(type_, Truth::Unknown, "PodsNotReady", message);
        }
        return Ok(Live::default());
    }
    let node: OpNode = serde_json::from_value(value.clone())?;
    let endpoints = opnode_endpoints(&node, None);
    let url = |name: &str| {
        endpoints
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.url.clone())
            .unwrap_or_default()
    };
    let urls = NodeUrls {
        rollup: url(endpoint::ROLLUP_RPC),
        execution: url(endpoint::EXECUTION_RPC),
    };
    let uid = node.metadata.uid.clone().unwrap_or_default();
    let observed = context
        .live
        .nodes
        .get_or_probe(
            &uid,
            context.settings.status_interval,
            op_node::observe(&context.rpc, &urls),
        )
        .await;
    let network = &node.spec.optimism_network_ref.name;
    let others_on_network = nodes
        .iter()
        .filter(|n| {
            &n.spec.optimism_network_ref.name == network && n.metadata.name != node.metadata.name
        })
        .count();
    let expects_peers = node.spec.op_node.p2p.enabled && others_on_network > 0;
    let judged = op_node::judge(
        &observed,
        BLOCK_TIME_SECONDS,
        SyncTolerance::default(),
        now_seconds(),
        expects_peers,
    );
    conditions.set(
        status::SYNCED,
        judged.synced.status,
        judged.synced.reason,
        &judged.synced.message,
    );
    conditions.set(
        status::PEERS_CONNECTED,
        judged.peers.status,
        judged.peers.reason,
        &judged.peers.message,
    );
    let block = match &observed {
        Ok(observation) => Some((
            "nodeInfo",
            serde_json::to_value(op_node::node_info(observation, judged.is_synced()))?,
        )),
        Err(error) => {
            tracing::debug!(node = ?node.metadata.name, %error, "the node did not answer its probe");
            None
        }
    };
    Ok(Live {
        ready: Some(judged.synced),
        block,
        requeue: Some(context.settings.status_interval),
    })
}

/// A batcher's or proposer's metrics endpoint: its own `spec.metrics`, else the network's.
fn metrics_url(
    name: &str,
    namespace: &str,
    own: Option<&MetricsConfig>,
    network: &OptimismNetwork,
) -> Option<String> {
    let metrics = own.unwrap_or(&network.spec.shared_config.metrics);
    metrics
        .enabled
        .then(|| services::metrics_url(name, namespace, metrics.port))
}

/// When the L1's block time is unknown: Ethereum's. Only the tolerance depends on it, which
/// never falls under `Tolerance::FLOOR_SECONDS` anyway.
const L1_BLOCK_TIME_SECONDS: u64 = 12;

/// Whether the batcher posts: `BatchesSubmitted` and `status.batcherInfo`, from its metrics.
pub async fn batcher(
    context: &Context,
    value: &Value,
    network: &OptimismNetwork,
    workload_ready: bool,
    conditions: &mut Conditions,
) -> Result<Live, serde_json::Error> {
    let batcher: OpBatcher = serde_json::from_value(value.clone())?;
    let name = batcher.metadata.name.clone().unwrap_or_default();
    let namespace = batcher.metadata.namespace.clone().unwrap_or_default();
    let Some(url) = service_url(
        &name,
        &namespace,
        batcher.spec.metrics.as_ref(),
        network,
        workload_ready,
        status::BATCHES_SUBMITTED,
        conditions,
    ) else {
        return Ok(Live::default());
    };
    let observed = scrape(context, &batcher.metadata.uid, &url).await;
    let spec = &batcher.spec;
    let tolerance = Tolerance::batcher(
        spec.batching.max_channel_duration.unwrap_or(3600).max(0) as u64,
        spec.l1_transaction.num_confirmations.unwrap_or(10).max(0) as u64,
        L1_BLOCK_TIME_SECONDS,
    );
    let verdict = services::judge_batcher(&observed, tolerance, now_seconds());
    let block = match &observed {
        Ok(metrics) => Some((
            "batcherInfo",
            serde_json::to_value(services::batcher_info(metrics))?,
        )),
        Err(_) => None,
    };
    Ok(service_live(
        context,
        conditions,
        status::BATCHES_SUBMITTED,
        verdict,
        block,
    ))
}

/// Whether the proposer proposes: `ProposalsSubmitted` and `status.proposerInfo`.
pub async fn proposer(
    context: &Context,
    value: &Value,
    network: &OptimismNetwork,
    workload_ready: bool,
    conditions: &mut Conditions,
) -> Result<Live, serde_json::Error> {
    let proposer: OpProposer = serde_json::from_value(value.clone())?;
    let name = proposer.metadata.name.clone().unwrap_or_default();
    let namespace = proposer.metadata.namespace.clone().unwrap_or_default();
    let Some(url) = service_url(
        &name,
        &namespace,
        proposer.spec.metrics.as_ref(),
        network,
        workload_ready,
        status::PROPOSALS_SUBMITTED,
        conditions,
    ) else {
        return Ok(Live::default());
    };
    let observed = scrape(context, &proposer.metadata.uid, &url).await;
    let interval = crate::discovery::duration::parse(
        "spec.proposal.proposalInterval",
        &proposer.spec.proposal.proposal_interval,
    )
    .unwrap_or(Duration::from_secs(3600));
    let tolerance = Tolerance::proposer(
        interval,
        proposer
            .spec
            .l1_transaction
            .num_confirmations
            .unwrap_or(10)
            .max(0) as u64,
        L1_BLOCK_TIME_SECONDS,
    );
    let verdict = services::judge_proposer(&observed, tolerance, now_seconds());
    let block = match &observed {
        Ok(metrics) => {
            let mut info = services::proposer_info(metrics);
            info.next_proposal_due = services::next_proposal_due(&info, interval);
            Some(("proposerInfo", serde_json::to_value(info)?))
        }
        Err(_) => None,
    };
    Ok(service_live(
        context,
        conditions,
        status::PROPOSALS_SUBMITTED,
        verdict,
        block,
    ))
}

/// Whether the challenger watches games: `GamesMonitored` and `status.challengerInfo`. Its
/// renderer keeps its metrics on whatever the spec says (they are its readiness), so there is
/// always a page to read.
pub async fn challenger(
    context: &Context,
    value: &Value,
    network: &OptimismNetwork,
    workload_ready: bool,
    conditions: &mut Conditions,
) -> Result<Live, serde_json::Error> {
    if !workload_ready {
        conditions.set(
            status::GAMES_MONITORED,
            Truth::Unknown,
            "PodsNotReady",
            "its pod is not ready yet",
        );
        return Ok(Live::default());
    }
    let challenger: OpChallenger = serde_json::from_value(value.clone())?;
    let metrics = challenger
        .spec
        .metrics
        .as_ref()
        .unwrap_or(&network.spec.shared_config.metrics);
    let url = services::metrics_url(
        challenger.metadata.name.as_deref().unwrap_or_default(),
        challenger.metadata.namespace.as_deref().unwrap_or_default(),
        metrics.port,
    );
    let observed = scrape(context, &challenger.metadata.uid, &url).await;
    let verdict = services::judge_challenger(&observed);
    let block = match &observed {
        Ok(metrics) => Some((
            "challengerInfo",
            serde_json::to_value(services::challenger_info(metrics))?,
        )),
        Err(_) => None,
    };
    Ok(service_live(
        context,
        conditions,
        status::GAMES_MONITORED,
        verdict,
        block,
    ))
}

/// A service's metrics page: the last one if read within the status interval, else a fresh one.
async fn scrape(
    context: &Context,
    uid: &Option<String>,
    url: &str,
) -> Result<services::Metrics, services::MetricsError> {
    context
        .live
        .services
        .get_or_probe(
            uid.as_deref().unwrap_or_default(),
            context.settings.status_interval,
            services::observe(&context.scraper, url),
        )
        .await
}

/// A batcher's, proposer's or challenger's live result: its activity condition from `verdict`, its status
/// block when the metrics answered (else the last one stays), and a requeue so the condition
/// follows the component while it runs. `Ready` stays the workload's: a batcher with nothing
/// to post yet is still ready.
fn service_live(
    context: &Context,
    conditions: &mut Conditions,
    condition: &str,
    verdict: Verdict,
    block: Option<(&'static str, Value)>,
) -> Live {
    conditions.set(condition, verdict.status, verdict.reason, &verdict.message);
    Live {
        ready: None,
        block,
        requeue: Some(context.settings.status_interval),
    }
}

/// The metrics URL to scrape, or `None` (with the condition saying why) when there is nothing
/// to ask yet or the metrics are off.
fn service_url(
    name: &str,
    namespace: &str,
    own: Option<&MetricsConfig>,
    network: &OptimismNetwork,
    workload_ready: bool,
    condition: &str,
    conditions: &mut Conditions,
) -> Option<String> {
    if !workload_ready {
        conditions.set(
            condition,
            Truth::Unknown,
            "PodsNotReady",
            "its pod is not ready yet",
        );
        return None;
    }
    let url = metrics_url(name, namespace, own, network);
    if url.is_none() {
        conditions.set(
            condition,
            Truth::Unknown,
            "MetricsDisabled",
            "its metrics are off (spec.metrics.enabled or the network's sharedConfig.metrics): \
             the operator reads what it posted from them",
        );
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_component_is_asked_at_most_once_per_interval() {
        let throttle = Throttle::<u32>::default();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let probe = || async { calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 };
        let interval = Duration::from_millis(200);
        assert_eq!(throttle.get_or_probe("a", interval, probe()).await, 1);
        // A reconcile right after (the one its own status write triggers) reuses the answer.
        assert_eq!(throttle.get_or_probe("a", interval, probe()).await, 1);
        assert_eq!(throttle.get_or_probe("b", interval, probe()).await, 2);
        tokio::time::sleep(interval).await;
        assert_eq!(throttle.get_or_probe("a", interval, probe()).await, 3);
    }
}
