//! What an `OpBatcher`, `OpProposer` or `OpChallenger` says about itself: the Prometheus metrics
//! op-service serves on `--metrics.port`. [`observe`] fetches them with a bounded GET; everything
//! after is pure: [`Metrics::parse`] (a strict reader of the text format, for the samples used
//! here), [`batcher_info`], [`proposer_info`] and [`challenger_info`] (the status blocks),
//! [`judge_batcher`], [`judge_proposer`] and [`judge_challenger`] (is it posting, proposing,
//! watching), so the rules are tested without a pod.
//!
//! The metrics carry counts and the times of events, never a transaction hash, an L1 inclusion
//! block, an output root or a game address; those stay unset. Every time reported is the wall
//! clock of the service when it saw its transaction confirmed (op-service's event metrics,
//! ethereum-optimism/optimism@v1.19.6 `op-service/metrics/event.go`: `Record` sets
//! `last_<event>_unix` to the current time), a few seconds after the L1 block's own time.
//!
//! Nothing volatile goes into status: no age of the last batch in a message, only what changes
//! when the service does something (counts, event times, block numbers) or never (its start
//! time, the tolerance). A probe of a service that did nothing writes nothing.
//!
//! Where to ask: the renderers put the metrics port on a ClusterIP Service named after the CR
//! ([`metrics_url`]).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use opstack_crds::services::{BatcherInfo, ChallengerInfo, L1TxRef, ProposalRef, ProposerInfo};

use super::op_node::Verdict;
use crate::controller::status::Truth;

/// The metric namespace of op-batcher: `op_batcher` and the process name `default`
/// (ethereum-optimism/optimism@v1.19.6 `op-batcher/metrics/metrics.go:21,132-136`, the name
/// from `op-batcher/batcher/service.go:225`).
pub const BATCHER_NAMESPACE: &str = "op_batcher_default";
/// The metric namespace of op-proposer (`op-proposer/metrics/metrics.go:17,57-61`, the name
/// from `op-proposer/proposer/service.go`, `initMetrics`).
pub const PROPOSER_NAMESPACE: &str = "op_proposer_default";
/// The metric namespace of op-challenger, with no process name (`op-challenger/metrics/
/// metrics.go:21`).
pub const CHALLENGER_NAMESPACE: &str = "op_challenger";

/// The largest metrics page read; op-batcher's is about 25 KiB.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Why the metrics could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("GET {url}: no answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("GET {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: the page is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: line {line}: {detail}")]
    Malformed {
        url: String,
        line: usize,
        detail: String,
    },
}

impl MetricsError {
    /// The condition reason for metrics that cannot be read.
    pub fn reason(&self) -> &'static str {
        match self {
            MetricsError::Timeout { .. }
            | MetricsError::Unreachable { .. }
            | MetricsError::Status { .. } => "MetricsUnreachable",
            MetricsError::TooLarge { .. } | MetricsError::Malformed { .. } => "MetricsMalformed",
        }
    }
}

/// `http://<cr>.<namespace>.svc:<port>/metrics`: the Service the renderers put in front of the
/// batcher's or proposer's pod, named after the CR.
pub fn metrics_url(name: &str, namespace: &str, port: i32) -> String {
    format!("http://{name}.{namespace}.svc:{port}/metrics")
}

/// A label set, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// Every sample of one metrics page, by metric name. Lines are checked strictly (a page that
/// does not parse is an error naming the line, never a half-read status); `# HELP`, `# TYPE` and
/// other comments are skipped, and sample timestamps ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    samples: BTreeMap<String, Vec<(Labels, f64)>>,
}

impl Metrics {
    /// Parses a page of the Prometheus text format 0.0.4 (what client_golang's `promhttp`
    /// serves without content negotiation). `url` only names the page in errors.
    pub fn parse(url: &str, text: &str) -> Result<Metrics, MetricsError> {
        let mut metrics = Metrics::default();
        for (index, line) in text.lines().enumerate() {
            let malformed = |detail: String| MetricsError::Malformed {
                url: url.to_owned(),
                line: index + 1,
                detail,
            };
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let (name, labels, value) = parse_sample(line).map_err(malformed)?;
            let series = metrics.samples.entry(name.clone()).or_default();
            if series.iter().any(|(seen, _)| *seen == labels) {
                return Err(malformed(format!("{name}{labels:?} appears twice")));
            }
            series.push((labels, value));
        }
        Ok(metrics)
    }

    /// The sample `name` whose labels are exactly `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples.get(name)?.iter().find_map(|(have, value)| {
            let same = have.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| have.get(*k).map(String::as_str) == Some(*v));
            same.then_some(*value)
        })
    }

    /// Whether any sample of `name` is on the page.
    pub fn has(&self, name: &str) -> bool {
        self.samples.contains_key(name)
    }
}

/// `name{labels} value [timestamp]`.
fn parse_sample(line: &str) -> Result<(String, Labels, f64), String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("no metric name in {line:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Labels::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = parse_labels(after_brace, &mut labels)?;
    }
    let mut fields = rest.split_whitespace();
    if !rest.starts_with([' ', '\t']) {
        return Err(format!("no space between {name} and its value"));
    }
    let value = fields
        .next()
        .ok_or_else(|| format!("{name} has no value"))?;
    let value = parse_value(value).ok_or_else(|| format!("{name}: {value:?} is not a number"))?;
    if let Some(timestamp) = fields.next()
        && timestamp.parse::<i64>().is_err()
    {
        return Err(format!("{name}: timestamp {timestamp:?} is not an integer"));
    }
    if let Some(extra) = fields.next() {
        return Err(format!("{name}: unexpected {extra:?} after the value"));
    }
    Ok((name.to_owned(), labels, value))
}

/// Reads `a="x",b="y"}` into `labels`; returns what follows the `}`.
fn parse_labels<'a>(mut rest: &'a str, labels: &mut Labels) -> Result<&'a str, String> {
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("unterminated label set")?;
        let name = &rest[..name_end];
        if name.is_empty() {
            return Err(format!("no label name at {rest:?}"));
        }
        rest = rest[name_end..]
            .trim_start()
            .strip_prefix('=')
            .ok_or_else(|| format!("label {name} has no ="))?
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("label {name}'s value is not quoted"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label {name}'s value is not terminated")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => {
                        return Err(format!(
                            "label {name}: unknown escape \\{}",
                            other.map(|(_, c)| c).unwrap_or(' ')
                        ));
                    }
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} appears twice"));
        }
        rest = rest[end + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(format!("expected , or }} after label {name}"));
        }
    }
}

/// A sample value: a Go float (`1.7e+09`, `NaN`, `+Inf`, `-Inf`).
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')) =>
        {
            text.parse().ok()
        }
        _ => None,
    }
}

/// A client whose every GET gives up after `timeout`.
#[derive(Clone, Debug)]
pub struct Scraper {
    http: reqwest::Client,
    timeout: Duration,
}

impl Scraper {
    pub fn new(timeout: Duration) -> Scraper {
        let http = super::http_client(timeout);
        Scraper { http, timeout }
    }
}

/// GETs `url` (a `/metrics` page) and parses it: one request, bounded by the scraper's timeout
/// and [`MAX_BODY_BYTES`], no retries (the next probe is the retry).
pub async fn observe(scraper: &Scraper, url: &str) -> Result<Metrics, MetricsError> {
    let timeout = || MetricsError::Timeout {
        url: url.to_owned(),
        after: scraper.timeout,
    };
    let fetch = async {
        // The text format, not OpenMetrics or protobuf: the one [`Metrics::parse`] reads.
        let mut response = scraper
            .http
            .get(url)
            .header("Accept", "text/plain;version=0.0.4")
            .send()
            .await
            .map_err(|error| {
                if error.is_timeout() {
                    timeout()
                } else {
                    MetricsError::Unreachable {
                        url: url.to_owned(),
                        detail: super::without_url(&error),
                    }
                }
            })?;
        if !response.status().is_success() {
            return Err(MetricsError::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| {
            if error.is_timeout() {
                timeout()
            } else {
                MetricsError::Unreachable {
                    url: url.to_owned(),
                    detail: super::without_url(&error),
                }
            }
        })? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(MetricsError::TooLarge {
                    url: url.to_owned(),
                    limit: MAX_BODY_BYTES,
                });
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body).map_err(|e| MetricsError::Malformed {
            url: url.to_owned(),
            line: 0,
            detail: format!("not UTF-8: {e}"),
        })?;
        Metrics::parse(url, &text)
    };
    tokio::time::timeout(scraper.timeout, fetch)
        .await
        .unwrap_or_else(|_| Err(timeout()))
}

// --- What the metrics say -------------------------------------------------------------------

/// The names read here, with where the binaries define and set them
/// (ethereum-optimism/optimism@v1.19.6).
mod names {
    /// `1` once the service finished starting (`op-batcher/metrics/metrics.go:157-161`,
    /// `op-proposer/metrics/metrics.go:87-91`); set at the end of `initFromCLIConfig`.
    pub const UP: &str = "up";
    /// Ether of the signing account, read every 10 s (`op-service/metrics/balance.go:21-37`);
    /// 0 until first read.
    pub const BALANCE: &str = "balance";
    /// Batch transactions by `stage` (`submitted`, `success`, `failed`): an event vector
    /// (`op-batcher/metrics/metrics.go:238,348-350`; `op-service/metrics/event.go:46-60` makes
    /// `<name>_total` and `last_<name>_unix`). `success` is counted when a batch transaction is
    /// confirmed on L1 (`op-batcher/batcher/channel.go:62`), `failed` when sending it failed
    /// (`channel.go:56`).
    pub const BATCHER_TX_TOTAL: &str = "batcher_tx_total";
    pub const LAST_BATCHER_TX_UNIX: &str = "last_batcher_tx_unix";
    /// Channels held until the L2 safe head passes them: the one being filled and those sent or
    /// still to send (`op-batcher/metrics/metrics.go:226-230`; set in
    /// `op-batcher/batcher/channel_manager.go:193,390,562`).
    pub const CHANNEL_QUEUE_LENGTH: &str = "channel_queue_length";
    /// Block references by `layer` and `type` (`op-service/metrics/ref_metrics.go:91-95`): the
    /// batcher's newest L2 block loaded from the sequencer is `{layer="l2",type="loaded"}`
    /// (`op-batcher/metrics/metrics.go:359-361`), the proposer's last proposed L2 block
    /// `{layer="l2",type="proposed"}` (`op-proposer/metrics/metrics.go:114-121`, recorded after
    /// the proposal's transaction is mined: `op-proposer/proposer/driver.go:341-345`).
    pub const REFS_NUMBER: &str = "refs_number";
    /// The transaction manager's confirmations by receipt `status` (`success`, `failed` for a
    /// reverted one): an event vector (`op-service/txmgr/metrics/tx_metrics.go:47-56,117,161-163`).
    /// op-proposer's transaction manager sends nothing but proposals.
    pub const TXMGR_CONFIRM_TOTAL: &str = "txmgr_confirm_total";
    pub const TXMGR_LAST_CONFIRM_UNIX: &str = "txmgr_last_confirm_unix";
    /// The games op-challenger tracks by `status` (`in_progress`, `defender_won`,
    /// `challenger_won`), set on every game update (`op-challenger/metrics/metrics.go:205-210,
    /// 305-309`).
    pub const TRACKED_GAMES: &str = "tracked_games";
    /// Moves op-challenger made in games, a plain counter (`op-challenger/metrics/metrics.go:
    /// 151-154`, `RecordGameMove`), so on the page from the start.
    pub const MOVES: &str = "moves";
    /// The process start, from client_golang's process collector, which op-service registers
    /// (`op-service/metrics/registry.go:8-13`). No namespace.
    pub const PROCESS_START: &str = "process_start_time_seconds";
}

/// The metrics of one service, under its namespace.
struct Service<'a> {
    metrics: &'a Metrics,
    namespace: &'static str,
}

impl Service<'_> {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.metrics
            .get(&format!("{}_{name}", self.namespace), labels)
    }

    /// Whether the page is this service's: its `up` gauge is there.
    fn recognised(&self) -> bool {
        self.get(names::UP, &[]).is_some()
    }

    fn started(&self) -> bool {
        self.get(names::UP, &[]) == Some(1.0)
    }

    /// An event count: a vector's child appears at its first event, so an absent one is 0 on a
    /// page that is this service's.
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> Option<i64> {
        self.recognised()
            .then(|| self.get(name, labels).map_or(0, |n| n as i64))
    }

    /// An event time in whole seconds; `None` before the first event.
    fn event_time(&self, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        self.get(name, labels)
            .filter(|t| t.is_finite() && *t >= 1.0)
            .map(|t| t as u64)
    }

    fn start_time(&self) -> Option<u64> {
        self.metrics
            .get(names::PROCESS_START, &[])
            .filter(|t| t.is_finite() && *t >= 1.0)
            .map(|t| t as u64)
    }

    fn balance_is_zero(&self) -> bool {
        self.get(names::BALANCE, &[]) == Some(0.0)
    }
}

fn batcher(metrics: &Metrics) -> Service<'_> {
    Service {
        metrics,
        namespace: BATCHER_NAMESPACE,
    }
}

fn proposer(metrics: &Metrics) -> Service<'_> {
    Service {
        metrics,
        namespace: PROPOSER_NAMESPACE,
    }
}

fn challenger(metrics: &Metrics) -> Service<'_> {
    Service {
        metrics,
        namespace: CHALLENGER_NAMESPACE,
    }
}

const SUCCESS_STAGE: &[(&str, &str)] = &[("stage", "success")];
const FAILED_STAGE: &[(&str, &str)] = &[("stage", "failed")];
const SUCCESS_STATUS: &[(&str, &str)] = &[("status", "success")];
const FAILED_STATUS: &[(&str, &str)] = &[("status", "failed")];
const L2_LOADED: &[(&str, &str)] = &[("layer", "l2"), ("type", "loaded")];
const L2_PROPOSED: &[(&str, &str)] = &[("layer", "l2"), ("type", "proposed")];

fn time_of(seconds: u64) -> Option<Time> {
    k8s_openapi::jiff::Timestamp::from_second(seconds as i64)
        .ok()
        .map(Time)
}

fn rfc3339(seconds: u64) -> String {
    time_of(seconds)
        .map(|time| time.0.to_string())
        .unwrap_or_else(|| seconds.to_string())
}

/// The `status.batcherInfo` block: what the batcher's metrics say, nothing more. Empty when the
/// page is not op-batcher's.
pub fn batcher_info(metrics: &Metrics) -> BatcherInfo {
    let batcher = batcher(metrics);
    if !batcher.recognised() {
        return BatcherInfo::default();
    }
    BatcherInfo {
        last_batch_submitted: batcher
            .event_time(names::LAST_BATCHER_TX_UNIX, SUCCESS_STAGE)
            .map(|seconds| L1TxRef {
                block_number: None,
                transaction_hash: None,
                timestamp: time_of(seconds),
            }),
        pending_batches: batcher
            .get(names::CHANNEL_QUEUE_LENGTH, &[])
            .map(|n| n as i64),
        total_batches_submitted: batcher.count(names::BATCHER_TX_TOTAL, SUCCESS_STAGE),
    }
}

/// The `status.proposerInfo` block: what the proposer's metrics say, nothing more. Empty when
/// the page is not op-proposer's. `nextProposalDue` is not in the metrics: see
/// [`next_proposal_due`].
pub fn proposer_info(metrics: &Metrics) -> ProposerInfo {
    let proposer = proposer(metrics);
    if !proposer.recognised() {
        return ProposerInfo::default();
    }
    let confirmed = proposer.event_time(names::TXMGR_LAST_CONFIRM_UNIX, SUCCESS_STATUS);
    ProposerInfo {
        last_proposal_submitted: confirmed.map(|seconds| ProposalRef {
            output_root: None,
            l2_block_number: proposer
                .get(names::REFS_NUMBER, L2_PROPOSED)
                .map(|n| n as i64),
            game_addr: None,
            transaction_hash: None,
            timestamp: time_of(seconds),
        }),
        total_proposals_submitted: proposer.count(names::TXMGR_CONFIRM_TOTAL, SUCCESS_STATUS),
        next_proposal_due: None,
    }
}

/// The `status.challengerInfo` block: what the challenger's metrics say. Empty when the page is
/// not op-challenger's.
pub fn challenger_info(metrics: &Metrics) -> ChallengerInfo {
    let challenger = challenger(metrics);
    if !challenger.recognised() {
        return ChallengerInfo::default();
    }
    let games = |status: &str| {
        challenger
            .get(names::TRACKED_GAMES, &[("status", status)])
            .map(|n| n as i64)
    };
    let resolved = match (games("defender_won"), games("challenger_won")) {
        (None, None) => None,
        (defender, challenger) => Some(defender.unwrap_or(0) + challenger.unwrap_or(0)),
    };
    ChallengerInfo {
        active_games: games("in_progress"),
        total_challenges_made: challenger.count(names::MOVES, &[]),
        total_games_resolved: resolved,
        last_challenge: None,
    }
}

/// Is the challenger watching games? `True` once it has started (it then polls L1 and acts on
/// every game in its window on its own); `Unknown` while it starts or its metrics cannot be
/// read. The message holds only what changes with the games, never the L1 block it is at.
pub fn judge_challenger(observed: &Result<Metrics, MetricsError>) -> Verdict {
    let metrics = match observed {
        Ok(metrics) => metrics,
        Err(error) => return unreadable(error),
    };
    let challenger = challenger(metrics);
    if let Some(verdict) = not_running(&challenger, "op-challenger") {
        return verdict;
    }
    let info = challenger_info(metrics);
    let games = match info.active_games {
        Some(n) => format!("{n} game(s) in progress among those it tracks"),
        None => "no game tracked yet".to_owned(),
    };
    Verdict {
        status: Truth::True,
        reason: "Monitoring",
        message: format!("op-challenger is up; {games}"),
    }
}

/// When the next proposal is due at the latest: the last confirmed one plus the proposal
/// interval. op-proposer proposes once no game of its own is younger than the interval, measured
/// from the game's L1 block (`op-proposer/proposer/driver.go`, `FetchDGFOutput`), which is a little
/// earlier than the confirmation seen here; it also skips while the output root is unchanged.
/// `None` before the first proposal.
pub fn next_proposal_due(info: &ProposerInfo, proposal_interval: Duration) -> Option<Time> {
    let last = info.last_proposal_submitted.as_ref()?.timestamp.as_ref()?;
    let seconds = u64::try_from(last.0.as_second()).ok()?;
    time_of(seconds + proposal_interval.as_secs())
}

/// How long after its last confirmed transaction (or its start) a service may stay silent
/// before it counts as stalled: twice its cadence, and never less than a floor that rides out a
/// slow L1 or a resubmission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tolerance {
    pub seconds: u64,
}

impl Tolerance {
    pub const FLOOR_SECONDS: u64 = 60;

    /// The batcher's: `channel_blocks` is the longest a channel stays open, in L1 blocks:
    /// `spec.batching.maxChannelDuration` when set (not 0); without it the batcher closes a
    /// channel only when full or near the sequencing window's end, so pass the rollup config's
    /// `seq_window_size` less the sub-safety margin (`op-batcher/batcher/channel_builder.go:
    /// 221-239`). Then the transaction waits for inclusion and `confirmations`.
    pub fn batcher(channel_blocks: u64, confirmations: u64, l1_block_time: u64) -> Tolerance {
        Tolerance::of_cadence((channel_blocks + confirmations + 1) * l1_block_time.max(1))
    }

    /// The proposer's: one proposal per `proposal_interval`, then inclusion and `confirmations`.
    pub fn proposer(
        proposal_interval: Duration,
        confirmations: u64,
        l1_block_time: u64,
    ) -> Tolerance {
        Tolerance::of_cadence(
            proposal_interval.as_secs() + (confirmations + 1) * l1_block_time.max(1),
        )
    }

    fn of_cadence(seconds: u64) -> Tolerance {
        Tolerance {
            seconds: (2 * seconds).max(Self::FLOOR_SECONDS),
        }
    }
}

/// What a service's last events say, shared by both judgements.
struct Activity {
    started_at: Option<u64>,
    last_success: Option<u64>,
    last_failure: Option<u64>,
    successes: i64,
}

fn since(activity: &Activity) -> String {
    match (activity.last_success, activity.started_at) {
        (Some(at), _) => format!("since {}", rfc3339(at)),
        (None, Some(start)) => format!("since it started at {}", rfc3339(start)),
        (None, None) => "since it started".to_owned(),
    }
}

/// Is the batcher posting? `True` when a batch transaction was confirmed within the tolerance
/// of `now` (seconds); `Unknown` while it starts or before its first batch is due; `False` when
/// it is overdue, with the likely cause the metrics show.
pub fn judge_batcher(
    observed: &Result<Metrics, MetricsError>,
    tolerance: Tolerance,
    now: u64,
) -> Verdict {
    let metrics = match observed {
        Ok(metrics) => metrics,
        Err(error) => return unreadable(error),
    };
    let batcher = batcher(metrics);
    if let Some(verdict) = not_running(&batcher, "op-batcher") {
        return verdict;
    }
    let activity = Activity {
        started_at: batcher.start_time(),
        last_success: batcher.event_time(names::LAST_BATCHER_TX_UNIX, SUCCESS_STAGE),
        last_failure: batcher.event_time(names::LAST_BATCHER_TX_UNIX, FAILED_STAGE),
        successes: batcher
            .count(names::BATCHER_TX_TOTAL, SUCCESS_STAGE)
            .unwrap_or(0),
    };
    let allowed = tolerance.seconds;
    let loaded = batcher
        .get(names::REFS_NUMBER, L2_LOADED)
        .map(|n| format!("; newest L2 block loaded from the sequencer: #{}", n as u64))
        .unwrap_or_else(|| "; no L2 block loaded from the sequencer yet".to_owned());
    if let Some(at) = activity.last_success
        && at + allowed >= now
    {
        return Verdict {
            status: Truth::True,
            reason: "BatchesConfirmed",
            message: format!(
                "last batch transaction confirmed at {}, within {allowed} s of now; {} confirmed \
                 since the batcher started",
                rfc3339(at),
                activity.successes,
            ),
        };
    }
    if activity.last_success.is_none()
        && let Some(start) = activity.started_at
        && start + allowed >= now
    {
        return Verdict {
            status: Truth::Unknown,
            reason: "AwaitingFirstBatch",
            message: format!(
                "no batch transaction confirmed yet; the batcher started at {} and has {allowed} s \
                 to post{loaded}",
                rfc3339(start),
            ),
        };
    }
    let quiet = since(&activity);
    if batcher.balance_is_zero() {
        return Verdict {
            status: Truth::False,
            reason: "NoFunds",
            message: format!(
                "no batch transaction confirmed {quiet} (more than {allowed} s ago), and the \
                 batcher's L1 balance reads 0 ETH: fund its account{loaded}"
            ),
        };
    }
    if let Some(failed) = activity.last_failure
        && activity.last_success.is_none_or(|at| failed > at)
    {
        return Verdict {
            status: Truth::False,
            reason: "BatchTransactionsFailing",
            message: format!(
                "no batch transaction confirmed {quiet} (more than {allowed} s ago); the last one \
                 failed at {}: see the batcher's logs{loaded}",
                rfc3339(failed),
            ),
        };
    }
    Verdict {
        status: Truth::False,
        reason: "BatchesOverdue",
        message: format!(
            "no batch transaction confirmed {quiet} (more than {allowed} s ago){loaded}; if the \
             sequencer's head moves, see the batcher's logs"
        ),
    }
}

/// Is the proposer proposing? `True` when a proposal transaction was confirmed within the
/// tolerance of `now`; `Unknown` while it starts or before its first proposal is due; `False`
/// when it is overdue or its last proposal reverted.
pub fn judge_proposer(
    observed: &Result<Metrics, MetricsError>,
    tolerance: Tolerance,
    now: u64,
) -> Verdict {
    let metrics = match observed {
        Ok(metrics) => metrics,
        Err(error) => return unreadable(error),
    };
    let proposer = proposer(metrics);
    if let Some(verdict) = not_running(&proposer, "op-proposer") {
        return verdict;
    }
    let activity = Activity {
        started_at: proposer.start_time(),
        last_success: proposer.event_time(names::TXMGR_LAST_CONFIRM_UNIX, SUCCESS_STATUS),
        last_failure: proposer.event_time(names::TXMGR_LAST_CONFIRM_UNIX, FAILED_STATUS),
        successes: proposer
            .count(names::TXMGR_CONFIRM_TOTAL, SUCCESS_STATUS)
            .unwrap_or(0),
    };
    let allowed = tolerance.seconds;
    // A reverted proposal is mined and counted, but creates no game: say so first, whatever the
    // time (`op-proposer/proposer/driver.go`, `sendTransaction`, only logs it).
    if let Some(reverted) = activity.last_failure
        && activity.last_success.is_none_or(|at| reverted > at)
    {
        return Verdict {
            status: Truth::False,
            reason: "ProposalReverted",
            message: format!(
                "the last proposal transaction, confirmed at {}, reverted: check the game type \
                 (spec.disputeGame.gameType) and that the factory lets this proposer create it \
                 (a permissioned game only takes its proposer)",
                rfc3339(reverted),
            ),
        };
    }
    if let Some(at) = activity.last_success
        && at + allowed >= now
    {
        let block = proposer
            .get(names::REFS_NUMBER, L2_PROPOSED)
            .map(|n| format!(" (L2 block #{})", n as u64))
            .unwrap_or_default();
        return Verdict {
            status: Truth::True,
            reason: "ProposalsConfirmed",
            message: format!(
                "last proposal{block} confirmed at {}, within {allowed} s of now; {} confirmed \
                 since the proposer started",
                rfc3339(at),
                activity.successes,
            ),
        };
    }
    // The proposer skips while the L2 head it proposes (safe with allowNonFinalized, else
    // finalized) is genesis or its output root is unchanged (`FetchDGFOutput`).
    const SKIPS: &str = "it proposes only once the L2 safe head (the finalized head without \
                         spec.proposal.allowNonFinalized) is past genesis and has moved since the \
                         last proposal";
    if activity.last_success.is_none()
        && let Some(start) = activity.started_at
        && start + allowed >= now
    {
        return Verdict {
            status: Truth::Unknown,
            reason: "AwaitingFirstProposal",
            message: format!(
                "no proposal yet; the proposer started at {} and has {allowed} s to propose; \
                 {SKIPS}",
                rfc3339(start),
            ),
        };
    }
    let quiet = since(&activity);
    if proposer.balance_is_zero() {
        return Verdict {
            status: Truth::False,
            reason: "NoFunds",
            message: format!(
                "no proposal confirmed {quiet} (more than {allowed} s ago), and the proposer's \
                 L1 balance reads 0 ETH: fund its account"
            ),
        };
    }
    Verdict {
        status: Truth::False,
        reason: "ProposalsOverdue",
        message: format!(
            "no proposal confirmed {quiet} (more than {allowed} s ago): {SKIPS}; if it has, see \
             the proposer's logs"
        ),
    }
}

fn unreadable(error: &MetricsError) -> Verdict {
    Verdict {
        status: Truth::Unknown,
        reason: error.reason(),
        message: format!("the metrics cannot be read: {error}"),
    }
}

/// `Unknown` when the page is not the service's or the service has not finished starting.
fn not_running(service: &Service, binary: &str) -> Option<Verdict> {
    if !service.recognised() {
        return Some(Verdict {
            status: Truth::Unknown,
            reason: "MetricsUnrecognised",
            message: format!(
                "the metrics page has no {}_{}: it is not {binary}'s",
                service.namespace,
                names::UP
            ),
        });
    }
    (!service.started()).then(|| Verdict {
        status: Truth::Unknown,
        reason: "Starting",
        message: format!("{binary} has not finished starting"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://batcher.chain-a.svc:7300/metrics";

    // Recorded from the op-batcher and op-proposer of ethereum-optimism/optimism v1.19.6 on a
    // local devnet (dev L1 with 2-s blocks, calldata, proposal interval 12 s), once right after
    // they started and once about 75 s later.
    const BATCHER_START: &str = include_str!("testdata/op-batcher-start.prom");
    const BATCHER_RUNNING: &str = include_str!("testdata/op-batcher-running.prom");
    const PROPOSER_START: &str = include_str!("testdata/op-proposer-start.prom");
    const PROPOSER_RUNNING: &str = include_str!("testdata/op-proposer-running.prom");

    // Times on the recorded pages.
    const STARTED: u64 = 1_796_164_591;
    const LAST_BATCH: u64 = 1_796_164_666;
    const LAST_PROPOSAL: u64 = 1_796_164_658;

    fn parsed(text: &str) -> Metrics {
        Metrics::parse(URL, text).unwrap()
    }

    fn tolerance() -> Tolerance {
        Tolerance { seconds: 60 }
    }

    /// `page` with the sample lines starting with `prefix` replaced by `lines`.
    fn edited(page: &str, prefix: &str, lines: &[&str]) -> Metrics {
        let mut text: String = page
            .lines()
            .filter(|line| !line.starts_with(prefix))
            .map(|line| format!("{line}\n"))
            .collect();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        parsed(&text)
    }

    #[test]
    fn every_recorded_page_parses() {
        for page in [
            BATCHER_START,
            BATCHER_RUNNING,
            PROPOSER_START,
            PROPOSER_RUNNING,
        ] {
            let metrics = parsed(page);
            assert!(metrics.has(names::PROCESS_START));
        }
    }

    #[test]
    fn labels_values_and_escapes_are_read_exactly() {
        let metrics = parsed(concat!(
            "# HELP a_total with \\\\ and \\n\n",
            "# TYPE a_total counter\n",
            "a_total{stage=\"success\"} 36\n",
            "a_total{stage=\"failed\",error=\"said \\\"no\\\", twice\\\\\"} 2 1700000000000\n",
            "b 1.7961646665535793e+09\n",
            "c{quantile=\"0.5\"} NaN\n",
            "d{le=\"+Inf\",} +Inf\n",
        ));
        assert_eq!(metrics.get("a_total", &[("stage", "success")]), Some(36.0));
        assert_eq!(
            metrics.get(
                "a_total",
                &[("stage", "failed"), ("error", "said \"no\", twice\\")]
            ),
            Some(2.0)
        );
        assert_eq!(
            metrics.get("a_total", &[]),
            None,
            "labels must match exactly"
        );
        assert_eq!(metrics.get("b", &[]), Some(1_796_164_666.553_579_3));
        assert!(metrics.get("c", &[("quantile", "0.5")]).unwrap().is_nan());
        assert_eq!(metrics.get("d", &[("le", "+Inf")]), Some(f64::INFINITY));
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_it() {
        for (text, line) in [
            ("ok 1\nbroken{stage=\"x\" 1\n", 2),
            ("ok 1\nno_value\n", 2),
            ("value_not_a_number one\n", 1),
            ("x{a=\"1\",a=\"2\"} 1\n", 1),
            ("x{a=unquoted} 1\n", 1),
            ("x 1\nx 2\n", 2),
            ("x 1 2 3\n", 1),
        ] {
            match Metrics::parse(URL, text) {
                Err(MetricsError::Malformed { line: at, url, .. }) => {
                    assert_eq!((at, url.as_str()), (line, URL), "{text:?}");
                }
                other => panic!("{text:?}: expected Malformed, got {other:?}"),
            }
        }
    }

    #[test]
    fn batcher_info_reports_confirmed_batches_their_time_and_open_channels() {
        let info = batcher_info(&parsed(BATCHER_RUNNING));
        assert_eq!(info.total_batches_submitted, Some(36));
        assert_eq!(info.pending_batches, Some(1));
        let last = info.last_batch_submitted.unwrap();
        assert_eq!(last.timestamp, time_of(LAST_BATCH));
        assert_eq!(
            (last.block_number, last.transaction_hash),
            (None, None),
            "the metrics carry neither"
        );
    }

    #[test]
    fn batcher_info_before_the_first_batch_counts_zero_and_has_no_last_batch() {
        let info = batcher_info(&parsed(BATCHER_START));
        assert_eq!(info.total_batches_submitted, Some(0));
        assert_eq!(info.pending_batches, Some(0));
        assert_eq!(info.last_batch_submitted, None);
    }

    #[test]
    fn proposer_info_reports_confirmed_proposals_with_their_l2_block() {
        let info = proposer_info(&parsed(PROPOSER_RUNNING));
        assert_eq!(info.total_proposals_submitted, Some(6));
        let last = info.last_proposal_submitted.clone().unwrap();
        assert_eq!(last.l2_block_number, Some(35));
        assert_eq!(last.timestamp, time_of(LAST_PROPOSAL));
        assert_eq!(
            (last.output_root, last.game_addr, last.transaction_hash),
            (None, None, None),
            "the metrics carry none of them"
        );
        assert_eq!(info.next_proposal_due, None);
        assert_eq!(
            next_proposal_due(&info, Duration::from_secs(12)),
            time_of(LAST_PROPOSAL + 12)
        );
    }

    #[test]
    fn proposer_info_before_the_first_proposal_counts_zero() {
        let info = proposer_info(&parsed(PROPOSER_START));
        assert_eq!(info.total_proposals_submitted, Some(0));
        assert_eq!(info.last_proposal_submitted, None);
        assert_eq!(next_proposal_due(&info, Duration::from_secs(12)), None);
    }

    #[test]
    fn a_page_of_another_service_fills_nothing_and_is_unrecognised() {
        let proposer_page = parsed(PROPOSER_RUNNING);
        assert_eq!(batcher_info(&proposer_page), BatcherInfo::default());
        let verdict = judge_batcher(&Ok(proposer_page), tolerance(), LAST_BATCH);
        assert_eq!(
            (verdict.status, verdict.reason),
            (Truth::Unknown, "MetricsUnrecognised")
        );
        assert_eq!(
            proposer_info(&parsed(BATCHER_RUNNING)),
            ProposerInfo::default()
        );
    }

    #[test]
    fn a_batcher_with_a_recent_confirmed_batch_is_posting() {
        let verdict = judge_batcher(&Ok(parsed(BATCHER_RUNNING)), tolerance(), LAST_BATCH + 60);
        assert_eq!(verdict.status, Truth::True, "{verdict:?}");
        assert_eq!(verdict.reason, "BatchesConfirmed");
        assert!(
            verdict.message.contains("36 confirmed"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn a_batcher_whose_last_batch_is_older_than_the_tolerance_is_overdue() {
        let verdict = judge_batcher(&Ok(parsed(BATCHER_RUNNING)), tolerance(), LAST_BATCH + 61);
        assert_eq!(
            (verdict.status, verdict.reason),
            (Truth::False, "BatchesOverdue")
        );
        assert!(verdict.message.contains("#41"), "{}", verdict.message);
    }

    #[test]
    fn the_batcher_verdict_does_not_change_while_nothing_moves() {
        let stale = Ok(parsed(BATCHER_RUNNING));
        let first = judge_batcher(&stale, tolerance(), LAST_BATCH + 100);
        let later = judge_batcher(&stale, tolerance(), LAST_BATCH + 100_000);
        assert_eq!(
            first, later,
            "a probe of an idle batcher must not change status"
        );
        let fresh = judge_batcher(&stale, tolerance(), LAST_BATCH + 1);
        let still_fresh = judge_batcher(&stale, tolerance(), LAST_BATCH + 59);
        assert_eq!(fresh, still_fresh);
    }

    #[test]
    fn a_batcher_that_just_started_awaits_its_first_batch_then_is_overdue() {
        let starting = Ok(parsed(BATCHER_START));
        let verdict = judge_batcher(&starting, tolerance(), STARTED + 10);
        assert_eq!(
            (verdict.status, verdict.reason),
            (Truth::Unknown, "AwaitingFirstBatch")
        );
        let verdict = judge_batcher(&starting, tolerance(), STARTED + 61);
        assert_eq!(verdict.status, Truth::False);
        assert!(
            verdict.message.contains("since it started at"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn an_overdue_batcher_with_an_empty_account_is_told_to_fund_it() {
        // The recorded start page reads 0 ETH: the balance is first read 10 s after start.
        let verdict = judge_batcher(&Ok(parsed(BATCHER_START)), tolerance(), STARTED + 61);
        assert_eq!((verdict.status, verdict.reason), (Truth::False, "NoFunds"));
    }

    #[test]
    fn an_overdue_batcher_whose_last_transaction_failed_says_so() {
        let metrics = edited(
            BATCHER_RUNNING,
            "op_batcher_default_last_batcher_tx_unix{stage=\"failed\"}",
            &["op_batcher_default_last_batcher_tx_unix{stage=\"failed\"} 1.7961647e+09"],
        );
        let verdict = judge_batcher(&Ok(metrics), tolerance(), LAST_BATCH + 1_000);
        assert_eq!(verdict.reason, "BatchTransactionsFailing", "{verdict:?}");
        assert!(verdict.message.contains("failed at"));
    }

    #[test]
    fn a_batcher_that_has_not_finished_starting_is_unknown() {
        let metrics = edited(
            BATCHER_START,
            "op_batcher_default_up ",
            &["op_batcher_default_up 0"],
        );
        let verdict = judge_batcher(&Ok(metrics), tolerance(), STARTED);
        assert_eq!(
            (verdict.status, verdict.reason),
            (Truth::Unknown, "Starting")
        );
    }

    #[test]
    fn unreadable_metrics_are_unknown_with_the_reason_and_url() {
        let error = MetricsError::Timeout {
            url: URL.into(),
            after: Duration::from_secs(3),
        };
        for verdict in [
            judge_batcher(&Err(error.clone()), tolerance(), 0),
            judge_proposer(&Err(error.clone()), tolerance(), 0),
        ] {
            assert_eq!(verdict.status, Truth::Unknown);
            assert_eq!(verdict.reason, "MetricsUnreachable");
            assert!(verdict.message.contains(URL));
        }
    }

    #[test]
    fn a_proposer_with_a_recent_confirmed_proposal_is_proposing() {
        let verdict = judge_proposer(
            &Ok(parsed(PROPOSER_RUNNING)),
            tolerance(),
            LAST_PROPOSAL + 30,
        );
        assert_eq!(
            (verdict.status, verdict.reason),
            (Truth::True, "ProposalsConfirmed"),
            "{verdict:?}"
        );
        assert!(
            verdict.message.contains("L2 block #35"),
            "{}",
            verdict.message
        );
        assert!(verdict.message.contains("6 confirmed"));
    }

    #[test]
    fn a_proposer_whose_last_proposal_is_older_than_the_tolerance_is_overdue() {
        let stale = Ok(parsed(PROPOSER_RUNNING));
        let verdict = judge_proposer(&stale, tolerance(), LAST_PROPOSAL + 61);
        assert_eq!(
            (verdict.status, verdict.reason),
            (Truth::False, "ProposalsOverdue")
        );
        assert_eq!(
            verdict,
            judge_proposer(&stale, tolerance(), LAST_PROPOSAL + 100_000),
            "a probe of an idle proposer must not change status"
        );
    }

    #[test]
    fn a_proposer_that_just_started_awaits_its_first_proposal() {
        let verdict = judge_proposer(&Ok(parsed(PROPOSER_START)), tolerance(), STARTED + 5);
        assert_eq!(
            (verdict.status, verdict.reason),
            (Truth::Unknown, "AwaitingFirstProposal")
        );
        assert!(verdict.message.contains("genesis"));
    }

    #[test]
    fn a_reverted_last_proposal_is_false_whatever_the_time() {
        let metrics = edited(
            PROPOSER_RUNNING,
            "op_proposer_default_txmgr_last_confirm_unix{status=\"failed\"}",
            &[
                "op_proposer_default_txmgr_confirm_total{status=\"failed\"} 1",
                "op_proposer_default_txmgr_last_confirm_unix{status=\"failed\"} 1.79616467e+09",
            ],
        );
        let verdict = judge_proposer(&Ok(metrics), tolerance(), LAST_PROPOSAL + 20);
        assert_eq!(
            (verdict.status, verdict.reason),
            (Truth::False, "ProposalReverted"),
            "{verdict:?}"
        );
    }

    #[test]
    fn tolerances_are_twice_the_cadence_and_never_under_the_floor() {
        // The devnet: channels of 1 L1 block, 1 confirmation, 2-s blocks.
        assert_eq!(
            Tolerance::batcher(1, 1, 2).seconds,
            Tolerance::FLOOR_SECONDS
        );
        // Mainnet without maxChannelDuration: the sequencing window (3600) less the margin (10).
        assert_eq!(Tolerance::batcher(3590, 10, 12).seconds, 2 * 3601 * 12);
        assert_eq!(
            Tolerance::proposer(Duration::from_secs(3600), 10, 12).seconds,
            2 * (3600 + 11 * 12)
        );
    }

    // op-challenger is not in the devnet (its games need a prestate and a real factory), so
    // its page is written by hand: the names and labels of `op-challenger/metrics/metrics.go`
    // (v1.19.6), in the text format client_golang serves.
    const CHALLENGER_RUNNING: &str = "\
# TYPE op_challenger_up gauge
op_challenger_up 1
# TYPE op_challenger_moves counter
op_challenger_moves 3
# TYPE op_challenger_tracked_games gauge
op_challenger_tracked_games{status=\"challenger_won\"} 1
op_challenger_tracked_games{status=\"defender_won\"} 4
op_challenger_tracked_games{status=\"in_progress\"} 2
process_start_time_seconds 1.796164591e+09
";

    #[test]
    fn challenger_info_counts_moves_and_tracked_games_by_status() {
        let info = challenger_info(&parsed(CHALLENGER_RUNNING));
        assert_eq!(info.active_games, Some(2));
        assert_eq!(info.total_challenges_made, Some(3));
        assert_eq!(info.total_games_resolved, Some(5));
        assert_eq!(info.last_challenge, None);
    }

    #[test]
    fn a_started_challenger_is_monitoring_and_says_how_many_games_are_open() {
        let verdict = judge_challenger(&Ok(parsed(CHALLENGER_RUNNING)));
        assert_eq!(verdict.status, Truth::True);
        assert_eq!(verdict.reason, "Monitoring");
        assert!(
            verdict.message.contains("2 game(s) in progress"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn a_challenger_before_its_first_game_update_tracks_no_game_yet() {
        let page = edited(CHALLENGER_RUNNING, "op_challenger_tracked_games", &[]);
        let info = challenger_info(&page);
        assert_eq!((info.active_games, info.total_games_resolved), (None, None));
        let verdict = judge_challenger(&Ok(page));
        assert_eq!(verdict.status, Truth::True);
        assert!(
            verdict.message.contains("no game tracked yet"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn a_challenger_still_starting_or_another_page_is_unknown() {
        let starting = edited(
            CHALLENGER_RUNNING,
            "op_challenger_up",
            &["op_challenger_up 0"],
        );
        assert_eq!(judge_challenger(&Ok(starting)).reason, "Starting");
        let batcher = judge_challenger(&Ok(parsed(BATCHER_RUNNING)));
        assert_eq!(batcher.status, Truth::Unknown);
        assert_eq!(batcher.reason, "MetricsUnrecognised");
        assert_eq!(
            challenger_info(&parsed(BATCHER_RUNNING)),
            ChallengerInfo::default()
        );
    }

    #[test]
    fn the_metrics_url_is_the_crs_service() {
        assert_eq!(
            metrics_url("batcher", "chain-a", 7300),
            "http://batcher.chain-a.svc:7300/metrics"
        );
    }
}
