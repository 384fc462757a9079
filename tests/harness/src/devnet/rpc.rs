//! A tiny blocking JSON-RPC client over plain HTTP/1.1 (std only), for the devnet's own endpoints:
//! the L1, op-geth, op-node, op-batcher and op-proposer, all on addresses of this machine.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{Value, json};

use super::DevnetError;

/// How long one request may take (connect, send, read the whole answer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A JSON-RPC endpoint `http://<addr>/`.
#[derive(Clone, Debug)]
pub struct RpcClient {
    addr: SocketAddr,
}

impl RpcClient {
    pub fn new(addr: SocketAddr) -> RpcClient {
        RpcClient { addr }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<ip>:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Calls `method` and returns its `result`; a JSON-RPC error is [`DevnetError::Rpc`].
    pub fn call(&self, method: &str, params: Value) -> Result<Value, DevnetError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let rpc_error = |message: String| DevnetError::Rpc {
            url: self.url(),
            method: method.to_owned(),
            message,
        };
        let (status, payload) = self
            .request("POST", "/", Some(&body.to_string()))
            .map_err(rpc_error)?;
        let value: Value = serde_json::from_str(&payload)
            .map_err(|error| rpc_error(format!("HTTP {status}, not JSON ({error}): {payload}")))?;
        if let Some(error) = value.get("error") {
            return Err(rpc_error(error.to_string()));
        }
        match value.get("result") {
            Some(result) => Ok(result.clone()),
            None => Err(rpc_error(format!("HTTP {status}, no result: {payload}"))),
        }
    }

    /// `GET <path>`: the HTTP status and body (e.g. `/healthz` of the op-* services).
    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        self.request("GET", path, None)
    }

    fn request(&self, verb: &str, path: &str, body: Option<&str>) -> Result<(u16, String), String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .map_err(|error| format!("connect {}: {error}", self.addr))?;
        stream
            .set_read_timeout(Some(REQUEST_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(REQUEST_TIMEOUT)))
            .map_err(|error| error.to_string())?;
        let body = body.unwrap_or("");
        write!(
            stream,
            "{verb} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .map_err(|error| format!("send to {}: {error}", self.addr))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .map_err(|error| format!("read from {}: {error}", self.addr))?;
        let text = String::from_utf8_lossy(&response);
        let (head, payload) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("not an HTTP response: {text:?}"))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let payload = if chunked {
            dechunk(payload)
        } else {
            payload.to_owned()
        };
        Ok((status, payload))
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
    out
}

/// A JSON-RPC hex quantity (`"0x1a"`) as u64.
pub fn hex_u64(value: &Value) -> Option<u64> {
    let text = value.as_str()?;
    u64::from_str_radix(text.strip_prefix("0x")?, 16).ok()
}

/// A JSON-RPC hex quantity as u128 (balances).
pub fn hex_u128(value: &Value) -> Option<u128> {
    let text = value.as_str()?;
    u128::from_str_radix(text.strip_prefix("0x")?, 16).ok()
}

/// `0x`-prefixed hex data as bytes.
pub fn hex_bytes(value: &Value) -> Option<Vec<u8>> {
    alloy_primitives::hex::decode(value.as_str()?).ok()
}

/// A quantity as a JSON-RPC hex string.
pub fn quantity(value: u128) -> String {
    format!("{value:#x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_a_chunked_body() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }

    #[test]
    fn parses_quantities() {
        assert_eq!(hex_u64(&json!("0x1a")), Some(26));
        assert_eq!(hex_u64(&json!("1a")), None);
        assert_eq!(quantity(26), "0x1a");
    }
}
