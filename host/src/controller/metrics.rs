//! Prometheus metrics of the controllers: reconciles by kind and result (count and total
//! seconds) and plugin renders by kind and reason, served as text on `/metrics` by `run`.
//! Hand-written text format: three families do not justify a metrics dependency.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::runtime::Plugin;
use tokio::net::TcpListener;

/// (kind, namespace, name) → the next fork of the CR's chain: (fork, activation unix seconds,
/// whether its images follow it; `None`: unknown).
type NextForks = BTreeMap<(String, String, String), (String, i64, Option<bool>)>;

#[derive(Debug, Default)]
pub struct Metrics {
    /// (kind, result) → (reconciles, total seconds).
    reconciles: Mutex<BTreeMap<(String, String), (u64, f64)>>,
    /// (kind, reason) → renders.
    renders: Mutex<BTreeMap<(String, String), u64>>,
    next_forks: Mutex<NextForks>,
}

impl Metrics {
    /// One reconcile of `kind` that ended with `result` (`ok` or `error`) after `took`.
    pub fn reconciled(&self, kind: &str, result: &str, took: Duration) {
        let mut map = self.reconciles.lock().unwrap_or_else(|e| e.into_inner());
        let slot = map
            .entry((kind.to_string(), result.to_string()))
            .or_default();
        slot.0 += 1;
        slot.1 += took.as_secs_f64();
    }

    /// One plugin render of `kind`: `Rendered`, or the refusal's reason.
    pub fn rendered(&self, kind: &str, reason: &str) {
        let mut map = self.renders.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((kind.to_string(), reason.to_string()))
            .or_default() += 1;
    }

    /// The next fork of a CR's chain, or none.
    pub fn next_fork(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        next: Option<(&str, i64, Option<bool>)>,
    ) {
        let mut map = self.next_forks.lock().unwrap_or_else(|e| e.into_inner());
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        match next {
            Some((fork, time, ready)) => {
                map.insert(key, (fork.to_string(), time, ready));
            }
            None => {
                map.remove(&key);
            }
        }
    }

    /// Drops the per-CR series of a CR being deleted.
    pub fn forget(&self, kind: &str, namespace: &str, name: &str) {
        self.next_fork(kind, namespace, name, None);
    }

    /// The Prometheus text exposition (format 0.0.4), with the calls of `plugins` by digest.
    pub fn render(&self, plugins: &[Plugin]) -> String {
        let mut out = String::new();
        out.push_str("# HELP opstack_operator_reconciles_total Reconciles by kind and result.\n");
        out.push_str("# TYPE opstack_operator_reconciles_total counter\n");
        let reconciles = self
            .reconciles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((kind, result), (count, _)) in &reconciles {
            out.push_str(&format!(
                "opstack_operator_reconciles_total{{kind=\"{kind}\",result=\"{result}\"}} {count}\n"
            ));
        }
        out.push_str(
            "# HELP opstack_operator_reconcile_seconds_total Time spent reconciling, by kind and result.\n",
        );
        out.push_str("# TYPE opstack_operator_reconcile_seconds_total counter\n");
        for ((kind, result), (_, seconds)) in &reconciles {
            out.push_str(&format!(
                "opstack_operator_reconcile_seconds_total{{kind=\"{kind}\",result=\"{result}\"}} {seconds}\n"
            ));
        }
        out.push_str(
            "# HELP opstack_operator_plugin_renders_total Plugin renders by kind and reason.\n",
        );
        out.push_str("# TYPE opstack_operator_plugin_renders_total counter\n");
        let renders = self
            .renders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((kind, reason), count) in &renders {
            out.push_str(&format!(
                "opstack_operator_plugin_renders_total{{kind=\"{kind}\",reason=\"{reason}\"}} {count}\n"
            ));
        }
        // Seconds left, computed at scrape time so the figure is current between reconciles.
        out.push_str("# HELP opstack_operator_fork_activation_seconds Seconds until the next fork of the CR's chain activates, by CR, fork and whether the CR's images follow it (ready: true, false or unknown).\n");
        out.push_str("# TYPE opstack_operator_fork_activation_seconds gauge\n");
        let now = crate::upgrade::unix_now();
        let next_forks = self
            .next_forks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((kind, namespace, name), (fork, time, ready)) in &next_forks {
            let ready = match ready {
                Some(true) => "true",
                Some(false) => "false",
                None => "unknown",
            };
            out.push_str(&format!(
                "opstack_operator_fork_activation_seconds{{kind=\"{kind}\",namespace=\"{namespace}\",name=\"{name}\",fork=\"{fork}\",ready=\"{ready}\"}} {}\n",
                time - now
            ));
        }
        // Per digest, so a chain can tell its new renderer's failures from the old one's.
        let calls: Vec<_> = plugins
            .iter()
            .map(|plugin| (plugin_labels(plugin), plugin.call_stats()))
            .collect();
        out.push_str("# HELP opstack_operator_plugin_calls_total Plugin calls by plugin digest, call and result.\n");
        out.push_str("# TYPE opstack_operator_plugin_calls_total counter\n");
        for (labels, stats) in &calls {
            for ((call, result), (count, _)) in stats {
                out.push_str(&format!(
                    "opstack_operator_plugin_calls_total{{{labels},call=\"{call}\",result=\"{result}\"}} {count}\n"
                ));
            }
        }
        out.push_str("# HELP opstack_operator_plugin_call_seconds_total Time spent in plugin calls by plugin digest and call.\n");
        out.push_str("# TYPE opstack_operator_plugin_call_seconds_total counter\n");
        for (labels, stats) in &calls {
            let mut seconds: BTreeMap<&str, f64> = BTreeMap::new();
            for ((call, _), (_, took)) in stats {
                *seconds.entry(call).or_default() += took;
            }
            for (call, took) in seconds {
                out.push_str(&format!(
                    "opstack_operator_plugin_call_seconds_total{{{labels},call=\"{call}\"}} {took}\n"
                ));
            }
        }
        out
    }
}

/// `plugin="<name>",sha256="<digest>"`. The name is the plugin's own: only characters that
/// cannot break the text format are kept.
fn plugin_labels(plugin: &Plugin) -> String {
    let name: String = plugin
        .info()
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@'))
        .take(64)
        .collect();
    format!("plugin=\"{name}\",sha256=\"{}\"", plugin.sha256())
}

/// Serves `GET /metrics` on `listener` until the task is dropped. One short request per
/// connection; anything else is a 404. Labels are kinds and CamelCase reasons, never user text.
/// `text` renders the body (e.g. from the controllers' [`super::Context`]).
pub async fn serve<F>(listener: TcpListener, text: F)
where
    F: Fn() -> String + Clone + Send + 'static,
{
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let text = text.clone();
        tokio::spawn(async move {
            // Read the whole request head (a client may send it in pieces), at most 8 KiB and
            // 5 s: answering after its first line and closing would reset a client still
            // writing its headers. A slow or silent peer is dropped.
            let mut request = Vec::with_capacity(1024);
            let head = tokio::time::timeout(Duration::from_secs(5), async {
                let mut chunk = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
            })
            .await;
            if head.is_err() || request.is_empty() {
                return;
            }
            let request = String::from_utf8_lossy(&request);
            let response = if request.starts_with("GET /metrics ") {
                let body = text();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            };
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_sent_in_pieces_gets_its_whole_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, || "up 1\n".to_string()));
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        for piece in ["GET /metrics HTTP/1.0\r\n", "Host: x\r\n", "\r\n"] {
            stream.write_all(piece.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("up 1\n"), "{answer}");
    }

    #[tokio::test]
    async fn metrics_are_served_on_get_metrics_and_nothing_else() {
        let metrics = std::sync::Arc::new(Metrics::default());
        metrics.reconciled("OptimismNetwork", "ok", Duration::from_millis(1));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let served = metrics.clone();
        let server = tokio::spawn(serve(listener, move || served.render(&[])));
        let get = |path: &'static str| async move {
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            stream
                .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        };
        let response = get("/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.contains(
            "opstack_operator_reconciles_total{kind=\"OptimismNetwork\",result=\"ok\"} 1"
        ));
        assert!(get("/").await.starts_with("HTTP/1.1 404"));
        server.abort();
    }

    #[test]
    fn reconciles_and_renders_are_counted_by_label() {
        let metrics = Metrics::default();
        metrics.reconciled("OpNode", "ok", Duration::from_millis(500));
        metrics.reconciled("OpNode", "ok", Duration::from_millis(250));
        metrics.reconciled("OpNode", "error", Duration::from_millis(10));
        metrics.rendered("OpNode", "PluginTimeout");
        let text = metrics.render(&[]);
        assert!(
            text.contains("opstack_operator_reconciles_total{kind=\"OpNode\",result=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(text.contains(
            "opstack_operator_reconcile_seconds_total{kind=\"OpNode\",result=\"ok\"} 0.75\n"
        ));
        assert!(text.contains(
            "opstack_operator_plugin_renders_total{kind=\"OpNode\",reason=\"PluginTimeout\"} 1\n"
        ));
    }
}
