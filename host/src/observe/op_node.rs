//! What an `OpNode` says about itself: op-node's `optimism_syncStatus` and `opp2p_peerStats`,
//! and whether its execution client answers. The calls are in [`observe`]; everything after is
//! pure: [`node_info`] (the status block) and [`judge`] (the `Synced` and `PeersConnected`
//! conditions), so the rules are tested without a node.
//!
//! Nothing volatile goes into status: no "observed at" time and no head age in a message, only
//! what changes when the chain does (heads, peers). A probe of a chain that did not move writes
//! nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use opstack_crds::opnode::{BlockRef, NodeInfo, SyncStatus};
use serde::Deserialize;
use serde_json::json;

use super::rpc::{Rpc, RpcError};
use crate::controller::status::Truth;

/// A block as op-node reports it (`eth.L1BlockRef` / `eth.L2BlockRef`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct RawBlock {
    pub hash: String,
    pub number: u64,
    pub timestamp: u64,
}

/// The heads of `optimism_syncStatus` this operator reports (op-node v1.19.6
/// `op-service/eth/sync_status.go`, field names as serialised).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct RawSyncStatus {
    pub current_l1: RawBlock,
    pub head_l1: RawBlock,
    pub unsafe_l2: RawBlock,
    pub safe_l2: RawBlock,
    pub finalized_l2: RawBlock,
}

/// `opp2p_peerStats` (op-node v1.19.6 `op-node/p2p/rpc_api.go`, `PeerStats`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct RawPeerStats {
    pub connected: u64,
}

/// One probe of a node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeObservation {
    pub sync: RawSyncStatus,
    /// `None` when op-node runs without P2P (`opp2p_*` then fails).
    pub peers: Option<u64>,
    /// The execution client's `eth_blockNumber`, or why it did not answer.
    pub execution_head: Result<u64, RpcError>,
}

/// Where to ask: op-node's RPC and the execution client's HTTP RPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeUrls {
    pub rollup: String,
    pub execution: String,
}

/// Asks the node: three calls, each bounded by the client's timeout. Only op-node's sync
/// status is required; without it the node does not serve a chain.
pub async fn observe(rpc: &Rpc, urls: &NodeUrls) -> Result<NodeObservation, RpcError> {
    let (sync, peers, execution) = tokio::join!(
        rpc.call::<RawSyncStatus>(&urls.rollup, "optimism_syncStatus", json!([])),
        rpc.call::<RawPeerStats>(&urls.rollup, "opp2p_peerStats", json!([])),
        rpc.call::<String>(&urls.execution, "eth_blockNumber", json!([])),
    );
    Ok(NodeObservation {
        sync: sync?,
        peers: peers.ok().map(|stats| stats.connected),
        execution_head: execution.and_then(|hex| {
            u64::from_str_radix(hex.trim_start_matches("0x"), 16).map_err(|e| RpcError::Malformed {
                method: "eth_blockNumber".into(),
                url: urls.execution.clone(),
                detail: e.to_string(),
            })
        }),
    })
}

fn time_of(seconds: u64) -> Option<Time> {
    k8s_openapi::jiff::Timestamp::from_second(seconds as i64)
        .ok()
        .map(Time)
}

fn block_ref(block: &RawBlock) -> BlockRef {
    BlockRef {
        block_number: Some(block.number as i64),
        block_hash: Some(block.hash.clone()),
        timestamp: time_of(block.timestamp),
    }
}

/// How far behind the wall clock the unsafe head may be for the node to count as synced: a
/// number of block times, and never less than a floor that rides out a slow L1 or a short
/// gossip gap without flapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncTolerance {
    pub blocks: u64,
    pub floor_seconds: u64,
}

impl Default for SyncTolerance {
    fn default() -> Self {
        SyncTolerance {
            blocks: 15,
            floor_seconds: 30,
        }
    }
}

impl SyncTolerance {
    pub fn seconds(&self, block_time: u64) -> u64 {
        (self.blocks * block_time.max(1)).max(self.floor_seconds)
    }
}

/// The `status.nodeInfo` block of an observation; `synced` as [`judge`] found it.
pub fn node_info(observation: &NodeObservation, synced: bool) -> NodeInfo {
    let sync = &observation.sync;
    NodeInfo {
        chain_head: Some(block_ref(&sync.unsafe_l2)),
        safe_head: Some(block_ref(&sync.safe_l2)),
        finalized_head: Some(block_ref(&sync.finalized_l2)),
        l1_head: Some(block_ref(&sync.head_l1)),
        sync_status: Some(SyncStatus {
            current_l1: Some(sync.current_l1.number as i64),
            unsafe_l2: Some(sync.unsafe_l2.number as i64),
            safe_l2: Some(sync.safe_l2.number as i64),
            finalized_l2: Some(sync.finalized_l2.number as i64),
            syncing: Some(!synced),
        }),
        peer_count: observation.peers.map(|peers| peers as i64),
        engine_connected: Some(observation.execution_head.is_ok()),
    }
}

/// A condition to set: status, reason, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: Truth,
    pub reason: &'static str,
    pub message: String,
}

/// `Synced` and `PeersConnected` for a probe (`Err`: the node did not answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub synced: Verdict,
    pub peers: Verdict,
}

impl Judgement {
    pub fn is_synced(&self) -> bool {
        self.synced.status == Truth::True
    }
}

fn rfc3339(seconds: u64) -> String {
    time_of(seconds)
        .map(|time| time.0.to_string())
        .unwrap_or_else(|| seconds.to_string())
}

/// The rules. `now` and `block_time` in seconds; `expects_peers`: a node that should have P2P
/// peers (every node with P2P on: a replica follows the sequencer through them, the sequencer
/// gossips to them).
pub fn judge(
    observed: &Result<NodeObservation, RpcError>,
    block_time: u64,
    tolerance: SyncTolerance,
    now: u64,
    expects_peers: bool,
) -> Judgement {
    let observation = match observed {
        Ok(observation) => observation,
        Err(error) => {
            let verdict = Verdict {
                status: Truth::Unknown,
                reason: error.reason(),
                message: format!("the node does not answer: {error}"),
            };
            return Judgement {
                synced: verdict.clone(),
                peers: verdict,
            };
        }
    };
    let head = &observation.sync.unsafe_l2;
    let allowed = tolerance.seconds(block_time);
    let synced = if let Err(error) = &observation.execution_head {
        Verdict {
            status: Truth::False,
            reason: "ExecutionClientUnreachable",
            message: format!("op-node answers but its execution client does not: {error}"),
        }
    } else if head.timestamp + allowed >= now {
        Verdict {
            status: Truth::True,
            reason: "HeadCurrent",
            message: format!(
                "unsafe head #{} at {} is within {allowed} s of now; safe #{}, finalized #{}, L1 #{}",
                head.number,
                rfc3339(head.timestamp),
                observation.sync.safe_l2.number,
                observation.sync.finalized_l2.number,
                observation.sync.head_l1.number,
            ),
        }
    } else {
        Verdict {
            status: Truth::False,
            reason: "HeadBehind",
            message: format!(
                "unsafe head #{} at {} is more than {allowed} s old: the node is catching up or its \
                 source (the sequencer's gossip, or L1) is not moving; see its logs",
                head.number,
                rfc3339(head.timestamp),
            ),
        }
    };
    let peers = match observation.peers {
        None => Verdict {
            status: if expects_peers {
                Truth::False
            } else {
                Truth::True
            },
            reason: "P2PDisabled",
            message: "op-node runs without P2P (opp2p_peerStats is not served)".into(),
        },
        Some(0) if expects_peers => Verdict {
            status: Truth::False,
            reason: "NoPeers",
            message: "op-node has no connected peers: check the static peers and the P2P Service"
                .into(),
        },
        Some(count) => Verdict {
            status: Truth::True,
            reason: "PeersConnected",
            message: format!("{count} connected peer(s)"),
        },
    };
    Judgement { synced, peers }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation(head_time: u64, peers: Option<u64>) -> NodeObservation {
        let block = |number, timestamp| RawBlock {
            hash: format!("0x{number:064x}"),
            number,
            timestamp,
        };
        NodeObservation {
            sync: RawSyncStatus {
                current_l1: block(40, 1_000),
                head_l1: block(41, 1_002),
                unsafe_l2: block(100, head_time),
                safe_l2: block(90, head_time - 20),
                finalized_l2: block(50, head_time - 100),
            },
            peers,
            execution_head: Ok(100),
        }
    }

    #[test]
    fn a_node_whose_head_is_within_the_tolerance_is_synced() {
        let judged = judge(
            &Ok(observation(10_000, Some(1))),
            2,
            SyncTolerance::default(),
            10_010,
            true,
        );
        assert_eq!(judged.synced.status, Truth::True, "{judged:?}");
        assert_eq!(judged.peers.reason, "PeersConnected");
    }

    #[test]
    fn a_node_whose_head_is_older_than_the_tolerance_is_behind() {
        let judged = judge(
            &Ok(observation(10_000, Some(1))),
            2,
            SyncTolerance::default(),
            10_031,
            true,
        );
        assert_eq!(judged.synced.status, Truth::False);
        assert_eq!(judged.synced.reason, "HeadBehind");
    }

    #[test]
    fn the_synced_message_does_not_change_while_the_chain_stands_still() {
        let stale = Ok(observation(10_000, Some(1)));
        let first = judge(&stale, 2, SyncTolerance::default(), 20_000, true);
        let later = judge(&stale, 2, SyncTolerance::default(), 30_000, true);
        assert_eq!(
            first, later,
            "a probe of an unmoved chain must not change status"
        );
    }

    #[test]
    fn an_unreachable_node_is_unknown_with_the_reason() {
        let error = RpcError::Timeout {
            method: "optimism_syncStatus".into(),
            url: "http://node:9545".into(),
            after: std::time::Duration::from_secs(3),
        };
        let judged = judge(&Err(error), 2, SyncTolerance::default(), 0, true);
        assert_eq!(judged.synced.status, Truth::Unknown);
        assert_eq!(judged.synced.reason, "NodeUnreachable");
        assert!(judged.synced.message.contains("http://node:9545"));
    }

    #[test]
    fn no_peers_is_false_only_where_peers_are_expected() {
        let lonely = Ok(observation(10_000, Some(0)));
        assert_eq!(
            judge(&lonely, 2, SyncTolerance::default(), 10_000, true)
                .peers
                .reason,
            "NoPeers"
        );
        let no_p2p = Ok(observation(10_000, None));
        let judged = judge(&no_p2p, 2, SyncTolerance::default(), 10_000, false);
        assert_eq!(
            (judged.peers.status, judged.peers.reason),
            (Truth::True, "P2PDisabled")
        );
    }

    #[test]
    fn an_execution_client_that_does_not_answer_means_not_synced() {
        let mut broken = observation(10_000, Some(1));
        broken.execution_head = Err(RpcError::Unreachable {
            method: "eth_blockNumber".into(),
            url: "http://node:8545".into(),
            detail: "connection refused".into(),
        });
        let judged = judge(
            &Ok(broken.clone()),
            2,
            SyncTolerance::default(),
            10_000,
            true,
        );
        assert_eq!(judged.synced.reason, "ExecutionClientUnreachable");
        assert_eq!(node_info(&broken, false).engine_connected, Some(false));
    }

    #[test]
    fn node_info_carries_every_head_with_number_hash_and_time() {
        let info = node_info(&observation(10_000, Some(2)), true);
        assert_eq!(info.chain_head.as_ref().unwrap().block_number, Some(100));
        assert_eq!(info.safe_head.as_ref().unwrap().block_number, Some(90));
        assert_eq!(info.finalized_head.as_ref().unwrap().block_number, Some(50));
        assert_eq!(info.l1_head.as_ref().unwrap().block_number, Some(41));
        assert!(
            info.chain_head
                .unwrap()
                .block_hash
                .unwrap()
                .starts_with("0x")
        );
        assert_eq!(info.peer_count, Some(2));
        assert_eq!(info.sync_status.unwrap().syncing, Some(false));
    }
}
