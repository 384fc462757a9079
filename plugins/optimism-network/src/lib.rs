//! The bundled renderer of `OptimismNetwork`: the ConfigMap `<network>-chain-config` holding an
//! inline rollup config (`rollup.json`) and L2 genesis (`genesis.json`) so that nodes can mount
//! them. Nothing else: a network runs no workload, and with nothing inline it renders nothing.

use std::collections::BTreeMap;

use opstack_plugin_sdk::crds::ChainConfigSource;
use opstack_plugin_sdk::crds::conventions::{L2_GENESIS_KEY, ROLLUP_CONFIG_KEY, chain_config_map};
use opstack_plugin_sdk::k8s;
use opstack_plugin_sdk::k8s_openapi::api::core::v1::ConfigMap;
use opstack_plugin_sdk::{
    PluginError, PluginInfo, RenderInput, RenderOutput, ValidatingRenderer, export_renderer,
};

/// Most bytes of data one ConfigMap may hold (Kubernetes refuses more than 1 MiB in all), with
/// room left for its metadata.
pub const MAX_DATA_BYTES: usize = 1_000_000;

pub struct OptimismNetworkRenderer;

impl ValidatingRenderer for OptimismNetworkRenderer {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "optimism-network",
            env!("CARGO_PKG_VERSION"),
            &["OptimismNetwork"],
        )
    }

    fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
        render(input)
    }
}

export_renderer!(OptimismNetworkRenderer);

/// Renders an `OptimismNetwork` into the ConfigMap of its inline documents, if any.
pub fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
    let network = input.optimism_network()?;
    let name = input.name()?;
    let mut data = BTreeMap::new();
    let mut problems = Vec::new();
    for (field, key, source) in [
        (
            "spec.rollupConfig",
            ROLLUP_CONFIG_KEY,
            &network.spec.rollup_config,
        ),
        ("spec.l2Genesis", L2_GENESIS_KEY, &network.spec.l2_genesis),
    ] {
        let Some(inline) = source.as_ref().and_then(inline) else {
            continue;
        };
        match check_json_object(inline) {
            Ok(()) => {
                data.insert(key.to_owned(), inline.to_owned());
            }
            Err(problem) => problems.push(format!("{field}.inline: {problem}")),
        }
    }
    if !problems.is_empty() {
        return Err(PluginError::Invalid(problems));
    }
    let mut out = RenderOutput::default();
    if data.is_empty() {
        return Ok(out);
    }
    let size: usize = data.values().map(String::len).sum();
    if size > MAX_DATA_BYTES {
        return Err(PluginError::invalid(format!(
            "spec.rollupConfig.inline and spec.l2Genesis.inline are {size} bytes together, more \
             than one ConfigMap holds ({MAX_DATA_BYTES}); put the genesis in a ConfigMap of your \
             own and use spec.l2Genesis.configMapRef"
        )));
    }
    let labels = k8s::labels("optimism-network", &name, "chain-config");
    out.push(&ConfigMap {
        metadata: k8s::meta(&chain_config_map(&name), &labels),
        data: Some(data),
        ..Default::default()
    })?;
    Ok(out)
}

fn inline(source: &ChainConfigSource) -> Option<&str> {
    source.inline.as_deref()
}

/// The document must be one JSON object (what `rollup.json` and `genesis.json` are). Checked
/// without building the tree: a genesis with a large `alloc` must not use up the plugin's memory.
fn check_json_object(document: &str) -> Result<(), String> {
    if !document.trim_start().starts_with('{') {
        return Err("must be a JSON object (`{...}`), as in rollup.json / genesis.json".to_owned());
    }
    serde_json::from_str::<serde::de::IgnoredAny>(document)
        .map(|_| ())
        .map_err(|e| format!("is not valid JSON: {e}"))
}
