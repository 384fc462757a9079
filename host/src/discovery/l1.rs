//! The four L1 reads discovery needs, behind a trait so the pipeline can be tested with fakes,
//! and their alloy implementation.

use std::future::{Future, IntoFuture};
use std::time::Duration;

use alloy_primitives::{Address, Bytes, TxKind};
use alloy_provider::network::Ethereum;
use alloy_provider::{Provider, RootProvider};
use alloy_rpc_client::RpcClient;
use alloy_rpc_types_eth::{TransactionInput, TransactionRequest};
use alloy_transport::{RpcError, TransportErrorKind};

use super::DiscoveryError;

/// What an `eth_call` to a getter produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call returned (possibly nothing: a contract without the getter but with a fallback,
    /// or an address without code).
    Returned(Bytes),
    /// The call reverted: the usual answer of a contract that lacks the getter.
    Reverted,
}

/// Reads from L1. Every state read takes an explicit block number: discovery never reads
/// `latest` or `pending` (alloy's `Provider::call` defaults to `pending`: alloy-provider 2.5.0,
/// `src/provider/trait.rs`), so all values come from the one block it pinned.
pub trait L1Reader: Sync {
    /// `eth_chainId`.
    fn chain_id(&self) -> impl Future<Output = Result<u64, DiscoveryError>> + Send;
    /// `eth_blockNumber`.
    fn block_number(&self) -> impl Future<Output = Result<u64, DiscoveryError>> + Send;
    /// `eth_getCode(address, block)`.
    fn code_at(
        &self,
        address: Address,
        block: u64,
    ) -> impl Future<Output = Result<Bytes, DiscoveryError>> + Send;
    /// `eth_call({to, input}, block)`; `label` names the call in errors (`optimismPortal() on 0x…`).
    fn call(
        &self,
        to: Address,
        input: Bytes,
        block: u64,
        label: &str,
    ) -> impl Future<Output = Result<CallOutcome, DiscoveryError>> + Send;
}

/// Installs ring as rustls' process-wide crypto provider, if none is yet.
///
/// reqwest is built with `rustls-no-provider` so that only ring (kube's provider) is linked;
/// it then needs a process default before the first client is built. Idempotent: whoever
/// comes first (kube's client or this) wins, and both want ring.
pub fn ensure_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An [`L1Reader`] over HTTP(S) JSON-RPC with alloy, with a deadline on every call.
#[derive(Clone, Debug)]
pub struct AlloyL1 {
    provider: RootProvider<Ethereum>,
    timeout: Duration,
}

impl AlloyL1 {
    /// A reader for `url` whose every call gives up after `timeout`. No retries: the caller's
    /// backoff decides when to try again, so an outage costs a bounded number of calls.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, DiscoveryError> {
        ensure_crypto_provider();
        let invalid = |detail: String| DiscoveryError::InvalidSpec {
            field: "spec.l1RpcUrl".to_string(),
            value: redact(url),
            detail,
        };
        let parsed: reqwest::Url = url.parse().map_err(|e| invalid(format!("{e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid(
                "only http:// and https:// endpoints are supported".into(),
            ));
        }
        let client = reqwest::Client::builder()
            // A second, outer deadline: tokio's below gives the clean Timeout error.
            .timeout(timeout + Duration::from_secs(1))
            .build()
            .map_err(|e| invalid(format!("could not build an HTTP client: {e}")))?;
        let rpc = RpcClient::new_http_with_client(client, parsed);
        Ok(Self {
            provider: RootProvider::new(rpc),
            timeout,
        })
    }

    async fn deadline<T>(
        &self,
        call: impl FnOnce() -> String,
        request: impl IntoFuture<Output = Result<T, RpcError<TransportErrorKind>>>,
    ) -> Result<T, DiscoveryError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(result) => result.map_err(|e| classify(call(), e)),
            Err(_) => Err(DiscoveryError::Timeout {
                call: call(),
                after: self.timeout,
            }),
        }
    }
}

impl L1Reader for AlloyL1 {
    async fn chain_id(&self) -> Result<u64, DiscoveryError> {
        self.deadline(|| "eth_chainId".into(), self.provider.get_chain_id())
            .await
    }

    async fn block_number(&self) -> Result<u64, DiscoveryError> {
        self.deadline(
            || "eth_blockNumber".into(),
            self.provider.get_block_number(),
        )
        .await
    }

    async fn code_at(&self, address: Address, block: u64) -> Result<Bytes, DiscoveryError> {
        self.deadline(
            || format!("eth_getCode({address}, block {block})"),
            self.provider
                .get_code_at(address)
                .number(block)
                .into_future(),
        )
        .await
    }

    async fn call(
        &self,
        to: Address,
        input: Bytes,
        block: u64,
        label: &str,
    ) -> Result<CallOutcome, DiscoveryError> {
        let request = TransactionRequest {
            to: Some(TxKind::Call(to)),
            input: TransactionInput::new(input),
            ..Default::default()
        };
        let call = || format!("eth_call {label} at block {block}");
        match tokio::time::timeout(
            self.timeout,
            self.provider.call(request).number(block).into_future(),
        )
        .await
        {
            Err(_) => Err(DiscoveryError::Timeout {
                call: call(),
                after: self.timeout,
            }),
            Ok(Ok(bytes)) => Ok(CallOutcome::Returned(bytes)),
            Ok(Err(RpcError::ErrorResp(payload))) if is_revert(payload.code, &payload.message) => {
                Ok(CallOutcome::Reverted)
            }
            Ok(Err(e)) => Err(classify(call(), e)),
        }
    }
}

/// Whether a JSON-RPC error is an EVM revert (geth: code 3 "execution reverted"; other
/// clients use -32000 or -32015 with "revert" in the message).
pub fn is_revert(code: i64, message: &str) -> bool {
    code == 3 || message.to_ascii_lowercase().contains("revert")
}

/// Maps an alloy error to ours: an answer we cannot parse is the endpoint misbehaving
/// (MalformedResponse); anything else is a failure to get an answer (Transport).
fn classify(call: String, error: RpcError<TransportErrorKind>) -> DiscoveryError {
    match error {
        RpcError::DeserError { err, text } => DiscoveryError::MalformedResponse {
            call,
            detail: format!("{err} (body starts with {:?})", truncate(&text, 120)),
        },
        RpcError::NullResp => DiscoveryError::MalformedResponse {
            call,
            detail: "null result".into(),
        },
        RpcError::ErrorResp(payload) => DiscoveryError::Transport {
            call,
            detail: format!(
                "the endpoint answered with JSON-RPC error {}: {}",
                payload.code,
                truncate(&payload.message, 200)
            ),
        },
        RpcError::Transport(TransportErrorKind::HttpError(http)) => DiscoveryError::Transport {
            call,
            detail: format!(
                "HTTP status {} ({})",
                http.status,
                truncate(&http.body, 120)
            ),
        },
        other => DiscoveryError::Transport {
            call,
            detail: error_chain(&other),
        },
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// The URL without what may be an API key (path, query, user info): errors end up in Events.
pub fn redact(url: &str) -> String {
    match url.parse::<reqwest::Url>() {
        Ok(parsed) => match parsed.host_str() {
            Some(host) => match parsed.port() {
                Some(port) => format!("{}://{host}:{port}/…", parsed.scheme()),
                None => format!("{}://{host}/…", parsed.scheme()),
            },
            None => "<url without host>".to_string(),
        },
        Err(_) => "<unparsable url>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverts_are_recognised_across_clients() {
        assert!(is_revert(3, "execution reverted"));
        assert!(is_revert(-32000, "execution reverted"));
        assert!(is_revert(
            -32015,
            "VM Exception while processing transaction: revert"
        ));
        assert!(!is_revert(-32000, "header not found"));
        assert!(!is_revert(-32601, "the method eth_call does not exist"));
    }

    #[test]
    fn urls_in_errors_lose_their_api_keys() {
        assert_eq!(
            redact("https://eth-mainnet.example/v2/SECRETKEY"),
            "https://eth-mainnet.example/…"
        );
        assert_eq!(
            redact("http://user:pw@127.0.0.1:8545/?key=x"),
            "http://127.0.0.1:8545/…"
        );
        assert_eq!(redact("not a url"), "<unparsable url>");
    }

    #[test]
    fn only_http_endpoints_are_accepted() {
        let err = AlloyL1::new("ws://127.0.0.1:8546", Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.reason(), "InvalidSpec");
        assert!(err.to_string().contains("spec.l1RpcUrl"), "{err}");
    }
}
