//! `opstack-operator run`: the controllers against a cluster, until SIGTERM or Ctrl-C.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::controller::{self, ControllerError, Settings};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    Text,
}

/// Options of `run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Log format.
    #[arg(long, value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Watch only this namespace (repeat for more): the namespaced install, whose Roles grant
    /// nothing elsewhere (`opstack-operator rbac --namespace …`). Unset: every namespace.
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
    /// Reconciles at once, per kind.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Seconds between resyncs of a settled CR (how soon a Secret created later is noticed).
    #[arg(long, default_value_t = 300)]
    pub resync_seconds: u64,
    /// Seconds between two reads of a running component's live status (heads, peers).
    #[arg(long, default_value_t = 15)]
    pub status_seconds: u64,
    /// Days before a fork activation at which a CR whose images do not follow it gets a
    /// Warning Event (its `UpgradeReady` condition says so earlier, without one).
    #[arg(long, default_value_t = 14)]
    pub upgrade_notice_days: u64,
    /// Directory for compiled plugins (skips the compile on restart).
    #[arg(long, value_name = "DIR")]
    pub plugin_cache: Option<std::path::PathBuf>,
    /// Use this renderer for a kind instead of the bundled one, as `<Kind>=<file.wasm>`.
    #[arg(long, value_name = "KIND=FILE")]
    pub plugin: Vec<String>,
    /// Run workloads only in namespaces labelled `pod-security.kubernetes.io/enforce=restricted`
    /// (the API server's own Pod Security check as a second wall). `false` only where another
    /// admission controller enforces the restricted profile instead.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub require_restricted_namespaces: bool,
    /// Serve Prometheus metrics on `http://<ADDR>/metrics` (e.g. `0.0.0.0:8080`); off if unset.
    #[arg(long, value_name = "ADDR")]
    pub metrics_bind: Option<std::net::SocketAddr>,
}

/// Why `run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no Kubernetes configuration (in-cluster or kubeconfig): {0}")]
    Config(#[from] kube::config::InferConfigError),
    #[error("building the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    #[error("{0}")]
    Controller(#[from] ControllerError),
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("setting up logging: {0}")]
    Logging(String),
    #[error("--metrics-bind {address}: {source}")]
    MetricsBind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("--plugin {0:?}: expected <Kind>=<file.wasm> with Kind one of {kinds}", kinds = crate::bundled::KINDS.join(", "))]
    PluginArgument(String),
}

/// `<Kind>=<file.wasm>` arguments, by kind.
fn plugin_files(args: &[String]) -> Result<BTreeMap<String, PathBuf>, RunError> {
    args.iter()
        .map(|arg| {
            arg.split_once('=')
                .filter(|(kind, path)| crate::bundled::KINDS.contains(kind) && !path.is_empty())
                .map(|(kind, path)| (kind.to_string(), PathBuf::from(path)))
                .ok_or_else(|| RunError::PluginArgument(arg.clone()))
        })
        .collect()
}

/// Sets up logging (`RUST_LOG` filters, default `info`) in the chosen format.
pub fn init_logging(format: LogFormat) -> Result<(), RunError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| RunError::Logging(e.to_string()))
}

/// Resolves on SIGTERM (what the kubelet sends) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = terminate.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs the operator until a shutdown signal; in-flight reconciles finish first.
pub fn run(args: RunArgs) -> Result<(), RunError> {
    // kube and reqwest both use rustls. rustls panics at the first TLS connection when it finds
    // more than one provider compiled in and none installed as the process default; with ring
    // installed here it never has to choose (CryptoProvider::install_default, rustls 0.23 docs:
    // https://docs.rs/rustls/0.23.46/rustls/crypto/struct.CryptoProvider.html). Err: one is
    // installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_logging(args.log_format)?;
    let plugin_files = plugin_files(&args.plugin)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(async move {
        let config = kube::Config::infer().await?;
        tracing::info!(cluster = %config.cluster_url, "connecting");
        let client = kube::Client::try_from(config)?;
        let settings = Settings {
            concurrency: args.concurrency.max(1),
            resync: Duration::from_secs(args.resync_seconds.max(1)),
            status_interval: Duration::from_secs(args.status_seconds.max(1)),
            upgrade_notice: Duration::from_secs(args.upgrade_notice_days * 86_400),
            cache_dir: args.plugin_cache,
            instance: std::env::var("POD_NAME").ok(),
            plugin_files,
            require_restricted_namespaces: args.require_restricted_namespaces,
            namespaces: args.namespaces,
            ..Settings::default()
        };
        let context = controller::Context::new(client, settings).await?;
        tracing::info!(
            plugins = context.plugins.len(),
            "plugins loaded; starting the controllers"
        );
        let metrics = match args.metrics_bind {
            Some(address) => {
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .map_err(|source| RunError::MetricsBind { address, source })?;
                tracing::info!(%address, "serving /metrics");
                let context = context.clone();
                Some(tokio::spawn(controller::metrics::serve(
                    listener,
                    move || context.metrics_text(),
                )))
            }
            None => None,
        };
        controller::run(context, shutdown_signal()).await;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        tracing::info!("stopped");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_arguments_name_a_kind_and_a_file() {
        let files = plugin_files(&["OpNode=/p/node.wasm".to_string()]).unwrap();
        assert_eq!(files["OpNode"], PathBuf::from("/p/node.wasm"));
        assert!(plugin_files(&["Pod=/p/x.wasm".to_string()]).is_err());
        assert!(plugin_files(&["OpNode".to_string()]).is_err());
    }
}
