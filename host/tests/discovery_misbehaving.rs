//! Discovery against an L1 endpoint that misbehaves: a tiny JSON-RPC server on 127.0.0.1 that
//! answers like an honest node except in the one way each test chooses. In every case nothing
//! is pinned, and each case has its own reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alloy_primitives::{Address, U256};
use alloy_sol_types::SolValue;
use k8s_openapi::jiff::Timestamp;
use opstack_crds::network::DiscoveryMethod;
use opstack_operator::discovery::health::{self, Backoff, ProbeState};
use opstack_operator::discovery::l1::AlloyL1;
use opstack_operator::discovery::reread::{PinDecision, decide_pin};
use opstack_operator::discovery::{
    Contracts, Discovery, DiscoveryError, DiscoveryRequest, Options, discover,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHAIN_ID: u64 = 1;
const HEAD: u64 = 1000;
const SYSTEM_CONFIG: Address =
    alloy_primitives::address!("0x229047fed2591dbec1eF1118d64F7aF3dB9EB290");

/// How the endpoint misbehaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    /// `eth_chainId` answers another chain.
    WrongChainId,
    /// This JSON-RPC method never answers in time.
    Hang(&'static str),
    /// This JSON-RPC method answers HTTP 200 with a body that is not JSON.
    GarbageBody(&'static str),
    /// `eth_call` answers a result that is not hex.
    GarbageResult,
    /// This getter's answer changes on every call.
    Changing([u8; 4]),
    /// This getter answers a word that is not an ABI address.
    NotAnAddress([u8; 4]),
    /// `eth_getCode` answers nothing for this address.
    NoCodeAt(Address),
    /// Every request gets HTTP 503.
    Unavailable,
}

struct MockL1 {
    url: String,
    requests: Arc<AtomicUsize>,
}

/// A deterministic address for each getter, so an honest answer is stable across reads.
fn address_for(selector: [u8; 4]) -> Address {
    let mut bytes = [0x11u8; 20];
    bytes[16..].copy_from_slice(&selector);
    Address::from(bytes)
}

const BATCH_INBOX: [u8; 4] = [0xda, 0xc6, 0xe6, 0x3a];
const OPTIMISM_PORTAL: [u8; 4] = [0x0a, 0x49, 0xcb, 0x03];
const DISPUTE_GAME_FACTORY: [u8; 4] = [0xf2, 0xb4, 0xe6, 0x17];
const START_BLOCK: [u8; 4] = [0x48, 0xcd, 0x4c, 0xb1];
const VERSION: [u8; 4] = [0x54, 0xfd, 0x4d, 0x50];

impl MockL1 {
    async fn start(fault: Fault) -> MockL1 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let calls = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (counter, calls) = (counter.clone(), calls.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, fault, &counter, &calls).await;
                });
            }
        });
        MockL1 { url, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// One HTTP/1.1 exchange (`Connection: close`), enough for alloy's reqwest client.
async fn serve(
    mut stream: TcpStream,
    fault: Fault,
    counter: &AtomicUsize,
    calls: &AtomicUsize,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let body = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buffer).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0usize);
            if body.len() >= length {
                break body.to_string();
            }
        }
    };
    counter.fetch_add(1, Ordering::SeqCst);
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let method = request["method"].as_str().unwrap_or_default().to_string();
    let (status, payload) = answer(fault, &method, &request, calls).await;
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

async fn answer(
    fault: Fault,
    method: &str,
    request: &Value,
    calls: &AtomicUsize,
) -> (&'static str, String) {
    let reply = |result: Value| {
        json!({"jsonrpc": "2.0", "id": request["id"], "result": result}).to_string()
    };
    let hex = |bytes: Vec<u8>| json!(format!("0x{}", alloy_primitives::hex::encode(bytes)));
    match fault {
        Fault::Unavailable => return ("503 Service Unavailable", "upstream down".to_string()),
        Fault::Hang(m) if m == method => {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Fault::GarbageBody(m) if m == method => {
            return ("200 OK", "<html>this is not JSON-RPC{".to_string());
        }
        _ => {}
    }
    let result = match method {
        "eth_chainId" if fault == Fault::WrongChainId => json!("0xaa36a7"), // 11155111
        "eth_chainId" => json!(format!("{CHAIN_ID:#x}")),
        "eth_blockNumber" => json!(format!("{HEAD:#x}")),
        "eth_getCode" => {
            let address: Address = request["params"][0].as_str().unwrap().parse().unwrap();
            match fault {
                Fault::NoCodeAt(a) if a == address => json!("0x"),
                _ => json!("0x6080604052"),
            }
        }
        "eth_call" if fault == Fault::GarbageResult => json!("0xnot-hex"),
        "eth_call" => {
            let tx = &request["params"][0];
            let input = tx["input"].as_str().or(tx["data"].as_str()).unwrap();
            let input = alloy_primitives::hex::decode(input).unwrap();
            let selector: [u8; 4] = input[..4].try_into().unwrap();
            match (fault, selector) {
                (Fault::Changing(s), _) if s == selector => {
                    let n = calls.fetch_add(1, Ordering::SeqCst) as u8;
                    let mut changing = address_for(selector);
                    changing.0[0] = n + 1;
                    hex(changing.abi_encode())
                }
                (Fault::NotAnAddress(s), _) if s == selector => hex(U256::MAX.abi_encode()),
                (_, START_BLOCK) => hex(U256::from(17u64).abi_encode()),
                (_, VERSION) => hex("3.14.2".to_string().abi_encode()),
                _ => hex(address_for(selector).abi_encode()),
            }
        }
        _ => {
            return (
                "200 OK",
                json!({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": "method not found"}})
                    .to_string(),
            );
        }
    };
    ("200 OK", reply(result))
}

fn request() -> DiscoveryRequest {
    DiscoveryRequest {
        l1_chain_id: CHAIN_ID,
        chain_id: Some(901),
        network_name: None,
        method: DiscoveryMethod::Auto,
        given: Contracts {
            system_config: Some(SYSTEM_CONFIG),
            ..Contracts::default()
        },
        registry: None,
    }
}

async fn discover_against(mock: &MockL1) -> Result<Discovery, DiscoveryError> {
    let l1 = AlloyL1::new(&mock.url, Duration::from_millis(500)).unwrap();
    discover(&l1, &request(), &Options::default()).await
}

/// Runs discovery against a faulty endpoint and checks that nothing is pinned, neither on a
/// first discovery nor over an existing pin, and that the reason is `reason`.
async fn assert_pins_nothing(fault: Fault, reason: &str) -> DiscoveryError {
    let mock = MockL1::start(fault).await;
    let result = discover_against(&mock).await;
    let err = result
        .as_ref()
        .expect_err("a faulty endpoint must not yield a result")
        .clone();
    assert_eq!(err.reason(), reason, "{err}");

    let pinned = honest_status().await;
    for current in [None, Some(&pinned)] {
        match decide_pin(current, &result, Timestamp::now()) {
            PinDecision::KeepPinned { reason: r, .. } => assert_eq!(r, reason),
            other => panic!("{fault:?} led to {other:?}"),
        }
    }
    err
}

async fn honest_status() -> opstack_crds::network::DiscoveredContracts {
    let mock = MockL1::start(Fault::None).await;
    discover_against(&mock)
        .await
        .unwrap()
        .to_status(Timestamp::now())
}

#[tokio::test]
async fn an_honest_endpoint_is_discovered_from_at_a_block_two_deep() {
    let mock = MockL1::start(Fault::None).await;
    let found = discover_against(&mock).await.unwrap();
    assert_eq!(found.block, HEAD - 2);
    assert_eq!(
        found.contracts.optimism_portal,
        Some(address_for(OPTIMISM_PORTAL))
    );
    assert_eq!(
        found.contracts.dispute_game_factory,
        Some(address_for(DISPUTE_GAME_FACTORY))
    );
    assert_eq!(found.contracts.start_block, Some(17));
}

#[tokio::test]
async fn wrong_l1_chain_id_pins_nothing_after_one_call() {
    let mock = MockL1::start(Fault::WrongChainId).await;
    let err = assert_pins_nothing(Fault::WrongChainId, "WrongChainId").await;
    assert!(err.to_string().contains("11155111"), "{err}");
    let _ = discover_against(&mock).await;
    assert_eq!(mock.requests(), 1, "nothing is read from the wrong chain");
}

#[tokio::test]
async fn an_endpoint_that_hangs_times_out_and_pins_nothing() {
    for method in ["eth_chainId", "eth_blockNumber", "eth_call", "eth_getCode"] {
        let err = assert_pins_nothing(Fault::Hang(method), "Timeout").await;
        assert!(err.to_string().contains(method), "{err}");
        assert!(err.to_string().contains("l1RpcTimeout"), "{err}");
    }
}

#[tokio::test]
async fn garbage_json_is_a_malformed_response_and_pins_nothing() {
    for method in ["eth_chainId", "eth_call"] {
        let err = assert_pins_nothing(Fault::GarbageBody(method), "MalformedResponse").await;
        assert!(err.to_string().contains(method), "{err}");
    }
    assert_pins_nothing(Fault::GarbageResult, "MalformedResponse").await;
    let err = assert_pins_nothing(Fault::NotAnAddress(OPTIMISM_PORTAL), "MalformedResponse").await;
    assert!(err.to_string().contains("optimismPortal()"), "{err}");
}

#[tokio::test]
async fn values_that_change_between_reads_pin_nothing() {
    let err = assert_pins_nothing(Fault::Changing(BATCH_INBOX), "ValueChanged").await;
    let message = err.to_string();
    assert!(message.contains("batchInboxAddr"), "{message}");
    assert!(
        message.contains(&format!("block {}", HEAD - 2)),
        "{message}"
    );
    assert!(
        message.contains(&format!("block {}", HEAD - 3)),
        "{message}"
    );
}

#[tokio::test]
async fn a_discovered_address_without_code_pins_nothing() {
    let fault = Fault::NoCodeAt(address_for(DISPUTE_GAME_FACTORY));
    let err = assert_pins_nothing(fault, "NoCode").await;
    assert!(err.to_string().contains("disputeGameFactoryAddr"), "{err}");
}

#[tokio::test]
async fn an_unavailable_endpoint_is_a_transport_error_and_pins_nothing() {
    let err = assert_pins_nothing(Fault::Unavailable, "Transport").await;
    assert!(err.to_string().contains("503"), "{err}");
    assert!(err.is_l1_unavailable());
}

#[tokio::test]
async fn the_health_probe_costs_one_call_per_failure_and_backs_off() {
    let mock = MockL1::start(Fault::Unavailable).await;
    let l1 = AlloyL1::new(&mock.url, Duration::from_millis(500)).unwrap();
    let backoff = Backoff::default();
    let mut state = ProbeState::default();
    let mut waits = Vec::new();
    for _ in 0..6 {
        let result = health::probe(&l1, CHAIN_ID).await;
        let condition = health::l1_connected(&result);
        assert!(!condition.status);
        assert_eq!(condition.reason, "Transport");
        waits.push(state.record(&result, &backoff).as_secs());
    }
    assert_eq!(mock.requests(), 6, "a failed probe stops at its first call");
    assert_eq!(waits, vec![15, 30, 60, 120, 120, 120]);

    let healthy = MockL1::start(Fault::None).await;
    let l1 = AlloyL1::new(&healthy.url, Duration::from_millis(500)).unwrap();
    let result = health::probe(&l1, CHAIN_ID).await;
    assert_eq!(result.as_ref().unwrap().head, HEAD);
    assert_eq!(state.record(&result, &backoff), backoff.healthy_interval);
    assert!(health::l1_connected(&result).status);
}
