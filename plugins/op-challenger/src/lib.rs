//! The bundled renderer of `OpChallenger`: one op-challenger StatefulSet named after the
//! resource (one replica, its `--datadir` on a retained volume claim) and the headless Service
//! of the same name, which carries only the metrics port: op-challenger has no RPC server, so
//! readiness comes from its metrics server.
//!
//! Every flag is in `plugins/testdata/flags/op-challenger.txt` (the flags op-challenger defines,
//! read from its source at the commit named in the file's header), and a test checks each
//! rendered flag against it. The key reaches the binary only as `OP_CHALLENGER_PRIVATE_KEY` from
//! its Secret (why: `opstack_plugin_sdk::op_service`).

use std::collections::BTreeMap;

use opstack_plugin_sdk::crds::conventions::{
    L2_GENESIS_KEY, ROLLUP_CONFIG_KEY, config_map_purpose, endpoint,
};
use opstack_plugin_sdk::crds::releases::Component;
use opstack_plugin_sdk::crds::{
    ChainConfigSource, GameType, OpChallengerSpec, OptimismNetworkSpec,
};
use opstack_plugin_sdk::k8s::{self, ServiceBuilder};
use opstack_plugin_sdk::k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use opstack_plugin_sdk::k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodTemplateSpec,
    Volume, VolumeResourceRequirements,
};
use opstack_plugin_sdk::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use opstack_plugin_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta,
};
use opstack_plugin_sdk::op_service::{self, ServiceParts, enum_name};
use opstack_plugin_sdk::{
    PluginError, PluginInfo, RenderInput, RenderOutput, ValidatingRenderer, export_renderer,
};

/// Size of the datadir volume when `spec.storage` is unset.
pub const DEFAULT_STORAGE: &str = "50Gi";

const DATA_VOLUME: &str = "data";
const DATA_DIR: &str = "/data";
/// The rollup config and L2 genesis of a custom chain, each ConfigMap in its own directory.
const CHAIN_DIR: &str = "/chain";
const FACTORY_CONTRACT: &str = "DisputeGameFactoryProxy";
/// L1s whose genesis op-program and kona know; any other L1 needs `--l1-genesis`.
const KNOWN_L1_CHAIN_IDS: &[i64] = &[1, 11155111, 17000, 560048];

pub struct OpChallengerRenderer;

impl ValidatingRenderer for OpChallengerRenderer {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "op-challenger",
            env!("CARGO_PKG_VERSION"),
            &["OpChallenger"],
        )
    }

    fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
        render(input)
    }
}

export_renderer!(OpChallengerRenderer);

/// Renders an `OpChallenger` into its headless Service and StatefulSet.
pub fn render(input: &RenderInput) -> Result<RenderOutput, PluginError> {
    let challenger = input.op_challenger()?;
    let network: OptimismNetworkSpec = input.network_spec()?;
    let name = input.name()?;
    let spec = &challenger.spec;
    let mut out = RenderOutput::default();

    let mut parts = ServiceParts::l1_signer(
        "OP_CHALLENGER",
        input,
        &network,
        spec.private_key.as_ref(),
        spec.remote_signer.as_ref(),
    )?;
    if !parts.l1_beacon(input, &network, "l1-beacon", "L1_BEACON")? {
        return Err(PluginError::invalid(format!(
            "OptimismNetwork {}: spec.l1BeaconUrl is not set, and op-challenger needs the L1 \
             beacon API (--l1-beacon) to read blobs; set spec.l1BeaconUrl or \
             spec.l1BeaconUrlSecretRef",
            input.network.name
        )));
    }
    let target = &spec.rollup_node_ref.name;
    let l2 = op_service::require_endpoint(input, "rollupNodeRef", target, endpoint::EXECUTION_RPC)?;
    let rollup =
        op_service::require_endpoint(input, "rollupNodeRef", target, endpoint::ROLLUP_RPC)?;
    parts
        .flags
        .set("l2-eth-rpc", l2)
        .set("rollup-rpc", rollup)
        .set("datadir", DATA_DIR);
    game_flags(&mut parts, input, &network, spec, &mut out)?;
    chain_config(&mut parts, input, &network)?;

    let mut metrics = spec
        .metrics
        .clone()
        .unwrap_or_else(|| network.shared_config.metrics.clone());
    if !metrics.enabled {
        out.warn(
            "spec.metrics.enabled is false, but op-challenger's readiness comes from its metrics \
             server (it has no RPC server): metrics stay enabled",
        );
        metrics.enabled = true;
    }
    parts
        .txmgr(&spec.l1_transaction)
        .logging(&network.shared_config.logging)
        .metrics(&metrics);
    parts.mounts.push(k8s::mount(DATA_VOLUME, DATA_DIR, false));
    // A writable /tmp for the VM and pre-image server subprocesses under a read-only root.
    parts.mounts.push(k8s::mount("tmp", "/tmp", false));
    parts.volumes.push(Volume {
        name: "tmp".to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity("1Gi".to_owned())),
            ..Default::default()
        }),
        ..Default::default()
    });

    let container = parts
        .apply(op_service::service_container(
            Component::OpChallenger,
            &spec.image,
        ))
        .port("metrics", metrics.port)
        .readiness(k8s::tcp_probe("metrics", 10, 3))
        .liveness(k8s::tcp_probe("metrics", 20, 6))
        .resources(
            spec.resources
                .clone()
                .or_else(|| network.shared_config.resources.clone()),
        )
        .build();

    let labels = k8s::labels("op-challenger", &name, "challenger");
    let selector = op_service::selector(&labels);
    out.push(
        &ServiceBuilder::new(&name, &labels, &selector)
            .headless()
            .port("metrics", metrics.port)
            .build(),
    )?;
    let pod = op_service::restricted_pod(
        vec![container],
        parts.volumes,
        &network.shared_config.security,
    );
    out.push(&StatefulSet {
        metadata: k8s::meta(&name, &labels),
        spec: StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(name.clone()),
            selector: LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            volume_claim_templates: Some(vec![data_claim(spec)]),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".to_owned()),
                    when_scaled: Some("Retain".to_owned()),
                },
            ),
            ..Default::default()
        },
        status: None,
    })?;
    Ok(out)
}

/// Game types, prestates, the factory, the allowlist and the monitoring settings.
fn game_flags(
    parts: &mut ServiceParts,
    input: &RenderInput,
    network: &OptimismNetworkSpec,
    spec: &OpChallengerSpec,
    out: &mut RenderOutput,
) -> Result<(), PluginError> {
    if spec.game_types.contains(&GameType::SuperPermissioned) {
        return Err(PluginError::invalid(
            "spec.gameTypes: super-permissioned is not a game type op-challenger plays (it is \
             not among its playable types, and the binary refuses it in --game-types: \
             op-challenger/game/types/game_type.go of ethereum-optimism/optimism@v1.19.6); it \
             follows those games' lifecycle by itself. Remove it",
        ));
    }
    let mut game_types: Vec<String> = Vec::new();
    for game_type in &spec.game_types {
        let game_type = enum_name(game_type);
        if !game_types.contains(&game_type) {
            game_types.push(game_type);
        }
    }
    // Unset: the binary's default, which is cannon-kona alone (its --game-types default).
    let played: Vec<GameType> = if spec.game_types.is_empty() {
        out.warn(
            "spec.gameTypes is not set: op-challenger plays only its default, cannon-kona, and \
             silently skips games of every other type; list each type the chain uses, e.g. \
             [cannon, cannon-kona, permissioned]",
        );
        vec![GameType::CannonKona]
    } else {
        parts.flags.set("game-types", game_types.join(","));
        spec.game_types.clone()
    };

    let uses = |types: &[GameType]| played.iter().any(|t| types.contains(t));
    // Permissioned games run the VM too: op-challenger checks their cannon options (prestate
    // included) at start like the permissionless ones.
    let permissionless = uses(&[
        GameType::Cannon,
        GameType::CannonKona,
        GameType::SuperCannonKona,
    ]);
    let permissioned = uses(&[GameType::Permissioned]);
    let prestates = spec.prestates.clone().unwrap_or_default();
    let no_prestates = prestates.url.is_none()
        && prestates.cannon_url.is_none()
        && prestates.cannon_kona_url.is_none();
    if permissionless && no_prestates {
        return Err(PluginError::invalid(
            "spec.prestates: the cannon game types need absolute prestates; set \
             spec.prestates.url (or cannonUrl / cannonKonaUrl) to where they are published",
        ));
    }
    if permissioned && no_prestates {
        out.warn(
            "spec.prestates is not set: op-challenger checks the cannon absolute prestate for \
             permissioned games too and stops at start without one; set spec.prestates.url",
        );
    }
    parts
        .flags
        .set_opt("prestates-url", prestates.url.as_deref())
        .set_opt("cannon-prestates-url", prestates.cannon_url.as_deref())
        .set_opt(
            "cannon-kona-prestates-url",
            prestates.cannon_kona_url.as_deref(),
        );
    if (permissionless || permissioned) && !KNOWN_L1_CHAIN_IDS.contains(&network.l1_chain_id) {
        out.warn(format!(
            "L1 chain {} is not Ethereum mainnet, Sepolia, Holesky or Hoodi: op-challenger's \
             VMs need the L1 genesis (--l1-genesis), which this operator cannot pass yet, so \
             cannon games on this chain may fail to run",
            network.l1_chain_id
        ));
    }

    let game = &spec.dispute_game;
    let factory = game
        .factory_addr
        .as_deref()
        .or_else(|| input.contract(FACTORY_CONTRACT));
    if factory.is_none() && network.network_name.is_none() {
        return Err(PluginError::invalid(format!(
            "spec.disputeGame.factoryAddr: no DisputeGameFactory address is known for \
             OptimismNetwork {}; set spec.disputeGame.factoryAddr (or the network's \
             spec.contractAddresses.disputeGameFactoryAddr), or let discovery find it",
            input.network.name
        )));
    }
    parts
        .flags
        .set_opt("game-factory-address", factory)
        .set_opt(
            "game-allowlist",
            (!game.game_allowlist.is_empty()).then(|| game.game_allowlist.join(",")),
        )
        .set_opt("game-window", game.game_window.as_deref())
        .set_opt("max-concurrency", spec.monitoring.max_concurrency)
        .set_opt(
            "http-poll-interval",
            spec.monitoring.http_poll_interval.as_deref(),
        )
        .set_opt("max-pending-tx", spec.monitoring.max_pending_tx);
    Ok(())
}

/// The chain's rollup config and L2 genesis: the files from the host's `rollup-config` and
/// `l2-genesis` ConfigMaps (`--rollup-config`, `--l2-genesis`: the flags that apply to every VM),
/// or `--network <name>` for a named network. op-challenger refuses both at once.
fn chain_config(
    parts: &mut ServiceParts,
    input: &RenderInput,
    network: &OptimismNetworkSpec,
) -> Result<(), PluginError> {
    let files = [
        (
            config_map_purpose::ROLLUP_CONFIG,
            ROLLUP_CONFIG_KEY,
            &network.rollup_config,
        ),
        (
            config_map_purpose::L2_GENESIS,
            L2_GENESIS_KEY,
            &network.l2_genesis,
        ),
    ];
    let mounted: BTreeMap<&str, String> = files
        .iter()
        .filter_map(|(purpose, inline_key, source)| {
            let config_map = input.config_map(purpose)?;
            let key = config_map_key(source.as_ref(), inline_key);
            let dir = format!("{CHAIN_DIR}/{purpose}");
            parts
                .volumes
                .push(k8s::config_map_volume(purpose, config_map));
            parts.mounts.push(k8s::mount(purpose, &dir, true));
            Some((*purpose, format!("{dir}/{key}")))
        })
        .collect();
    match (
        mounted.get(config_map_purpose::ROLLUP_CONFIG),
        mounted.get(config_map_purpose::L2_GENESIS),
    ) {
        (Some(rollup), Some(genesis)) => {
            parts
                .flags
                .set("rollup-config", rollup)
                .set("l2-genesis", genesis);
            Ok(())
        }
        (None, None) => match &network.network_name {
            Some(network_name) => {
                parts.flags.set("network", network_name);
                Ok(())
            }
            None => Err(PluginError::invalid(format!(
                "OptimismNetwork {}: a custom chain (no spec.networkName) needs spec.rollupConfig \
                 and spec.l2Genesis, and the host passed neither ConfigMap",
                input.network.name
            ))),
        },
        _ => Err(PluginError::invalid(format!(
            "OptimismNetwork {}: op-challenger takes the rollup config and the L2 genesis \
             either both as files or both from spec.networkName; set both spec.rollupConfig and \
             spec.l2Genesis, or both to fromNetworkName: true",
            input.network.name
        ))),
    }
}

/// The key of the document in the host's ConfigMap: the user's `configMapRef` key, else the
/// key the network renderer uses for an inline document.
fn config_map_key<'a>(source: Option<&'a ChainConfigSource>, inline_key: &'a str) -> &'a str {
    source
        .and_then(|s| s.config_map_ref.as_ref())
        .map_or(inline_key, |r| r.key.as_str())
}

/// The datadir claim: `spec.storage` or 50Gi with the cluster's default StorageClass.
fn data_claim(spec: &OpChallengerSpec) -> PersistentVolumeClaim {
    let (size, class, mode) = match &spec.storage {
        Some(s) => (
            s.size.clone(),
            s.storage_class_name.clone(),
            enum_name(&s.access_mode),
        ),
        None => (
            Quantity(DEFAULT_STORAGE.to_owned()),
            None,
            "ReadWriteOnce".to_owned(),
        ),
    };
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.to_owned()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![mode]),
            storage_class_name: class,
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), size)])),
                limits: None,
            }),
            ..Default::default()
        }),
        status: None,
    }
}
