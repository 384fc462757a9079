//! `opstack-operator discover`: runs network discovery against an L1 endpoint and prints what
//! was found, how, and at which block. The same [`crate::discovery::discover`] the controller
//! calls, so what a chain operator sees here is what the operator would pin.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use opstack_crds::network::DiscoveryMethod;

use crate::discovery::l1::{AlloyL1, L1Reader};
use crate::discovery::{
    self, Contracts, Discovery, DiscoveryError, DiscoveryRequest, Field, Options, address,
    duration, registry, well_known,
};

#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["system_config", "network"])
))]
pub struct DiscoverArgs {
    /// L1 execution JSON-RPC endpoint (http:// or https://).
    #[arg(long = "l1-rpc", value_name = "URL")]
    pub l1_rpc: String,

    /// The chain's SystemConfig proxy on L1; every other address is read from its getters.
    #[arg(long, value_name = "ADDRESS")]
    pub system_config: Option<String>,

    /// A network by op-node `--network` name (op-mainnet, op-sepolia, …): looked up in
    /// --registry if given, else in the operator's built-in table.
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,

    /// The L1 chain id the endpoint must report. Defaults to the --network's L1; without
    /// either, the endpoint's own answer is used, unchecked (and the output says so).
    #[arg(long, value_name = "N")]
    pub l1_chain_id: Option<u64>,

    /// The L2 chain id, to look the chain up in --registry and cross-check L1 answers against
    /// it. Defaults to the --network's chain id.
    #[arg(long, value_name = "N")]
    pub chain_id: Option<u64>,

    /// A copy of the superchain-registry's `superchain/extra/addresses/addresses.json`, or of
    /// one chain's `superchain/configs/<superchain>/<chain>.toml`.
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,

    /// Read values this many blocks below the L1 head.
    #[arg(long, value_name = "N", default_value_t = Options::default().confirmations)]
    pub confirmations: u64,

    /// Deadline of each L1 call (Go duration: 10s, 1m, …).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub timeout: String,

    /// `text` for people; `json` prints the `status.networkInfo.discoveredContracts` the
    /// operator would pin.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Runs the command; the binary's `main` is sync, so this brings its own runtime.
pub fn run(args: DiscoverArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let (found, unchecked_chain) = runtime.block_on(discover(&args))?;
    match args.output {
        OutputFormat::Json => {
            let status = found.to_status(k8s_openapi::jiff::Timestamp::now());
            serde_json::to_writer_pretty(&mut *out, &status)?;
            writeln!(out)?;
        }
        OutputFormat::Text => out.write_all(describe(&found, unchecked_chain).as_bytes())?,
    }
    if unchecked_chain {
        eprintln!(
            "warning: no --l1-chain-id given; the endpoint's chain id {} was not checked",
            found.l1_chain_id
        );
    }
    Ok(())
}

/// Builds the request from the arguments and runs discovery; `true` if the L1 chain id was
/// taken from the endpoint itself.
async fn discover(args: &DiscoverArgs) -> anyhow::Result<(Discovery, bool)> {
    let timeout = duration::parse("--timeout", &args.timeout)?;
    let l1 = AlloyL1::new(&args.l1_rpc, timeout).map_err(|e| match e {
        DiscoveryError::InvalidSpec { value, detail, .. } => {
            anyhow::anyhow!("--l1-rpc {value:?}: {detail}")
        }
        other => other.into(),
    })?;
    let table = args.network.as_deref().and_then(well_known::by_name);

    let mut unchecked_chain = false;
    let l1_chain_id = match (args.l1_chain_id, table) {
        (Some(id), _) => id,
        (None, Some(entry)) => entry.l1_chain_id,
        (None, None) => {
            unchecked_chain = true;
            l1.chain_id().await.map_err(failed)?
        }
    };
    let mut given = Contracts::default();
    if let Some(value) = &args.system_config {
        given.system_config = Some(address::parse(
            "--system-config",
            Field::SystemConfig,
            value,
        )?);
    }
    let registry = match &args.registry {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("could not read --registry {}", path.display()))?;
            if bytes.len() > registry::MAX_REGISTRY_BYTES {
                anyhow::bail!(
                    "--registry {} is too large for a registry file",
                    path.display()
                );
            }
            Some(bytes)
        }
        None => None,
    };
    let request = DiscoveryRequest {
        l1_chain_id,
        chain_id: args.chain_id.or(table.map(|entry| entry.chain_id)),
        network_name: args.network.clone(),
        method: DiscoveryMethod::Auto,
        given,
        registry,
    };
    let options = Options {
        confirmations: args.confirmations,
        timeout,
    };
    let found = discovery::discover(&l1, &request, &options)
        .await
        .map_err(failed)?;
    Ok((found, unchecked_chain))
}

fn failed(error: DiscoveryError) -> anyhow::Error {
    anyhow::anyhow!("discovery failed ({}): {error}", error.reason())
}

/// The text report: method, blocks, every value, and what was tried first.
pub fn describe(found: &Discovery, unchecked_chain: bool) -> String {
    let mut text = format!("method: {}\n", found.method);
    let chain_note = if unchecked_chain {
        " (the endpoint's own answer, not checked)"
    } else {
        " (eth_chainId checked)"
    };
    text.push_str(&format!("l1 chain id: {}{chain_note}\n", found.l1_chain_id));
    match found.second_read_block {
        Some(second) => text.push_str(&format!(
            "l1 block: {} (values read there and confirmed at block {second})\n",
            found.block
        )),
        None => text.push_str(&format!(
            "l1 block: {} (contract code checked there)\n",
            found.block
        )),
    }
    text.push_str("contracts:\n");
    for field in Field::ALL {
        let value = found.contracts.display(field);
        let value = value.as_deref().unwrap_or("-");
        let mut notes = Vec::new();
        if field.is_contract() && found.contracts.address(field).is_some() {
            notes.push("has code");
        }
        if found.overridden.contains(&field) {
            notes.push("given, not discovered");
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!("  ({})", notes.join(", "))
        };
        text.push_str(&format!("  {:<34} {value}{notes}\n", field.status_name()));
    }
    if !found.attempts.is_empty() {
        text.push_str("tried first:\n");
        for attempt in &found.attempts {
            text.push_str(&format!("  {}: {}\n", attempt.method, attempt.outcome));
        }
    }
    text
}
