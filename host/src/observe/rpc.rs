//! A bounded JSON-RPC client for the operator's own components: one HTTP POST per call, a hard
//! deadline, no retries (the next probe is the retry), and errors that name the call and URL.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Why a call to a component failed: the variant names serve as condition reasons.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    #[error("{method} on {url}: no answer within {after:?}")]
    Timeout {
        method: String,
        url: String,
        after: Duration,
    },
    #[error("{method} on {url}: {detail}")]
    Unreachable {
        method: String,
        url: String,
        detail: String,
    },
    #[error("{method} on {url}: error {code}: {message}")]
    Failed {
        method: String,
        url: String,
        code: i64,
        message: String,
    },
    #[error("{method} on {url}: unexpected answer: {detail}")]
    Malformed {
        method: String,
        url: String,
        detail: String,
    },
}

impl RpcError {
    /// The condition reason for a node that does not answer properly.
    pub fn reason(&self) -> &'static str {
        match self {
            RpcError::Timeout { .. } | RpcError::Unreachable { .. } => "NodeUnreachable",
            RpcError::Failed { .. } | RpcError::Malformed { .. } => "NodeRpcError",
        }
    }
}

/// A client whose every call gives up after `timeout`.
#[derive(Clone, Debug)]
pub struct Rpc {
    http: reqwest::Client,
    timeout: Duration,
}

impl Rpc {
    pub fn new(timeout: Duration) -> Rpc {
        let http = super::http_client(timeout);
        Rpc { http, timeout }
    }

    /// Calls `method` with `params` at `url` and decodes the result.
    pub async fn call<T: DeserializeOwned>(
        &self,
        url: &str,
        method: &str,
        params: Value,
    ) -> Result<T, RpcError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let request = self.http.post(url).json(&body).send();
        let unreachable = |detail: String| RpcError::Unreachable {
            method: method.to_owned(),
            url: url.to_owned(),
            detail,
        };
        let malformed = |detail: String| RpcError::Malformed {
            method: method.to_owned(),
            url: url.to_owned(),
            detail,
        };
        let response = match tokio::time::timeout(self.timeout, request).await {
            Err(_) => {
                return Err(RpcError::Timeout {
                    method: method.to_owned(),
                    url: url.to_owned(),
                    after: self.timeout,
                });
            }
            Ok(Err(error)) if error.is_timeout() => {
                return Err(RpcError::Timeout {
                    method: method.to_owned(),
                    url: url.to_owned(),
                    after: self.timeout,
                });
            }
            Ok(Err(error)) => return Err(unreachable(super::without_url(&error))),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let answer: Value = match tokio::time::timeout(self.timeout, response.json()).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                return Err(malformed(format!(
                    "HTTP {status}: {}",
                    super::without_url(&error)
                )));
            }
            Err(_) => return Err(malformed(format!("HTTP {status}: the body did not arrive"))),
        };
        if let Some(error) = answer.get("error") {
            return Err(RpcError::Failed {
                method: method.to_owned(),
                url: url.to_owned(),
                code: error["code"].as_i64().unwrap_or_default(),
                message: error["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        serde_json::from_value(answer.get("result").cloned().unwrap_or(Value::Null))
            .map_err(|e| malformed(e.to_string()))
    }
}
