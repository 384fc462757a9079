//! Shared by the sandbox tests: where the built plugins are, and the fixture input.
#![allow(dead_code)]

use std::path::PathBuf;

use opstack_crds::{OpNode, OptimismNetwork};
use opstack_operator::controller::pipeline::{self, KindPlugins, PipelineError, Sealed};
use opstack_operator::runtime::{
    ContractAddress, Endpoint, NamedObject, NetworkContext, RenderInput, ResolvedReference,
};
use serde::Deserialize;
use serde_json::Value;

/// `$OPSTACK_PLUGIN_DIR`, else `<target dir>/wasm32-wasip2/plugin`, where `plugins/build.sh` puts them.
pub fn plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OPSTACK_PLUGIN_DIR") {
        return dir.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("wasm32-wasip2/plugin")
}

/// The bytes of a built plugin; a missing one fails the test with the command that builds it.
pub fn plugin_bytes(stem: &str) -> Vec<u8> {
    let path = plugin_dir().join(format!("{stem}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}\nbuild the test plugins first: `plugins/build.sh` \
             (cargo build --profile plugin --target wasm32-wasip2 ...); set OPSTACK_PLUGIN_DIR to look elsewhere",
            path.display()
        )
    })
}

pub const GOOD: &str = "test_plugin_good";

pub fn misbehaving(feature: &str) -> Vec<u8> {
    plugin_bytes(&format!("misbehaving-{feature}"))
}

/// The ~5 KB OpNode input the good plugin and the benchmarks use.
pub fn fixture_input() -> RenderInput {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/test-plugins/good/fixtures/opnode-input.json");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture exists")).unwrap();
    input_from_json(&doc)
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn list<T>(v: &Value, f: impl Fn(&Value) -> T) -> Vec<T> {
    v.as_array().into_iter().flatten().map(f).collect()
}

pub fn input_from_json(doc: &Value) -> RenderInput {
    let net = &doc["network"];
    let named = |o: &Value| NamedObject {
        purpose: s(&o["purpose"]),
        name: s(&o["name"]),
    };
    RenderInput {
        kind: s(&doc["kind"]),
        resource: doc["resource"].to_string(),
        network: NetworkContext {
            name: s(&net["name"]),
            spec: net["spec"].to_string(),
            contracts: list(&net["contracts"], |c| ContractAddress {
                name: s(&c["name"]),
                address: s(&c["address"]),
            }),
            secrets: list(&net["secrets"], named),
            config_maps: list(&net["configMaps"], named),
        },
        references: list(&doc["references"], |r| ResolvedReference {
            field: s(&r["field"]),
            kind: s(&r["kind"]),
            name: s(&r["name"]),
            endpoints: list(&r["endpoints"], |e| Endpoint {
                name: s(&e["name"]),
                url: s(&e["url"]),
            }),
        }),
    }
}

/// Resident set size of this process, in KiB, from /proc/self/status (`VmRSS` or `VmHWM`).
pub fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// The owner uid the pipeline stamps in offline renders of the devnet.
pub const DEVNET_UID: &str = "00000000-0000-0000-0000-000000000001";

/// The devnet example's network, its OpNodes, and the sequencer as the resource to render.
pub struct Devnet {
    pub network: OptimismNetwork,
    pub nodes: Vec<OpNode>,
    pub sequencer: Value,
    pub batcher: Value,
}

pub fn devnet() -> Devnet {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/devnet-chain.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let documents: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .map(|mut v| {
            v["metadata"]["namespace"] = "default".into();
            v
        })
        .collect();
    let of_kind = |kind: &'static str| documents.iter().filter(move |d| d["kind"] == kind);
    let network = of_kind("OptimismNetwork")
        .next()
        .expect("the devnet has a network");
    let sequencer = of_kind("OpNode")
        .find(|d| d["spec"]["nodeType"] == "sequencer")
        .expect("the devnet has a sequencer");
    Devnet {
        network: serde_json::from_value(network.clone()).unwrap(),
        nodes: of_kind("OpNode")
            .map(|n| serde_json::from_value(n.clone()).unwrap())
            .collect(),
        sequencer: sequencer.clone(),
        batcher: of_kind("OpBatcher")
            .next()
            .expect("the devnet has a batcher")
            .clone(),
    }
}

/// Renders `devnet`'s sequencer through the pipeline the controllers and `render` use.
pub fn render_sequencer(devnet: &Devnet, plugins: &KindPlugins) -> Result<Sealed, PipelineError> {
    pipeline::render(
        "OpNode",
        &devnet.sequencer,
        DEVNET_UID,
        &devnet.network,
        &devnet.nodes,
        &Default::default(),
        plugins,
    )
}
