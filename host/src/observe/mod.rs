//! Live status, from the components themselves: the operator asks each node its heads and
//! peers, and each batcher and proposer what it has posted, with bounded calls, and reports it
//! in the CR's status. The network's L1 is probed by discovery (`crate::discovery::health`).
//!
//! `rpc` does the bounded calls; `op_node` and `services` turn answers into status, purely.

pub mod op_node;
pub mod rpc;
pub mod services;

/// An HTTP client whose every request, connection included, gives up after `timeout`: a probe
/// must never hold a reconcile longer than the status timeout.
fn http_client(timeout: std::time::Duration) -> reqwest::Client {
    crate::discovery::l1::ensure_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .expect("an HTTP client with rustls and default settings builds")
}

/// reqwest's message without the URL it repeats (ours is in the error already).
pub(crate) fn without_url(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        error.to_string()
    } else {
        detail
    }
}
