//! One reconcile of one CR: dereference → validate → render (plugin) → envelope → apply →
//! status. A refusal at any step before apply writes nothing but the CR's status (and an
//! Event the first time): fail static.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use opstack_crds::{OpBatcher, OpNode, OpProposer, OptimismNetwork};
use serde_json::Value;

use super::admission;
use super::apply::{self, Outcome};
use super::chain_plugins::{self, ChainPluginError};
use super::l1;
use super::live;
use super::pipeline::{self, API_VERSION};
use super::secrets;
use super::shadow::{self, Baseline};
use super::status::{self, Conditions, Truth};
use super::{Context, ControllerError, Kind};
use crate::envelope::MANAGER;
use crate::rollout;
use crate::upgrade::{self, Readiness};

/// Set to `"true"` on a CR to stop every write the operator makes for it (status aside).
pub const ANNOTATION_PAUSED: &str = "optimism.io/paused";
use crate::validate::{self, Peers};

/// The reason of a render refused because a child's name belongs to someone else.
const NOT_OWNED: &str = "NotOwned";

/// Why a CR was refused: the reason (CamelCase) and a message naming the field and the fix.
struct Refusal {
    /// Which aspect failed: validity (host rules, Secrets) or the render (plugin, envelope).
    rendering: bool,
    reason: String,
    message: String,
}

impl Refusal {
    /// Refusals whose cause goes away without an event to this CR (a deleted CR's child
    /// collected, a namespace labelled): looked at again after the retry interval, not the
    /// resync.
    fn retried_soon(&self) -> bool {
        self.reason == NOT_OWNED || admission::REASONS.contains(&self.reason.as_str())
    }
}

/// The namespace's resources of one kind, oldest first (ties by name): "first wins".
async fn peers_of<K: Kind>(
    client: &kube::Client,
    namespace: &str,
) -> Result<Vec<K>, ControllerError> {
    let mut items = Api::<K>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items;
    items.sort_by(|a, b| {
        let key = |o: &K| {
            (
                o.meta().creation_timestamp.as_ref().map(|t| t.0),
                o.name_any(),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(items)
}

/// Reconciles one CR of kind `K`.
pub async fn reconcile<K: Kind>(
    cr: Arc<K>,
    context: Arc<Context>,
) -> Result<Action, ControllerError> {
    let started = std::time::Instant::now();
    let kind = K::kind(&()).to_string();
    let name = cr.name_any();
    let namespace = cr.namespace().unwrap_or_else(|| "default".into());
    context.reconciles.count(&kind);
    if cr.meta().deletion_timestamp.is_some() {
        // Garbage collection removes the children; nothing is (re)created meanwhile.
        context.metrics.forget(&kind, &namespace, &name);
        return Ok(Action::await_change());
    }
    let client = &context.client;
    let value = serde_json::to_value(cr.as_ref())?;
    let generation = cr.meta().generation;
    let uid = cr.meta().uid.clone().unwrap_or_default();
    let old_status = value.get("status").filter(|s| !s.is_null()).cloned();
    let mut conditions = Conditions::new(old_status.as_ref(), generation);
    let is_network = kind == "OptimismNetwork";
    let valid_type = if is_network {
        status::CONFIGURATION_VALID
    } else {
        status::VALID
    };

    // Paused: no writes at all but this status, until the annotation goes.
    let paused = cr
        .annotations()
        .get(ANNOTATION_PAUSED)
        .is_some_and(|v| v == "true");
    if paused {
        let message = format!(
            "metadata.annotations[{ANNOTATION_PAUSED}] is \"true\": the operator writes nothing for this resource; remove the annotation to resume"
        );
        let reported = conditions.was(status::PAUSED, Truth::True, "PausedByAnnotation", &message);
        conditions.set(status::PAUSED, Truth::True, "PausedByAnnotation", &message);
        let old_phase = old_status
            .as_ref()
            .and_then(|s| s.get("phase"))
            .and_then(Value::as_str)
            .unwrap_or("Pending")
            .to_string();
        // The network's phase enum has no Paused; its Paused condition says it.
        let phase = if is_network {
            old_phase.as_str()
        } else {
            "Paused"
        };
        write_status::<K>(
            &context,
            &namespace,
            &name,
            old_status.as_ref(),
            generation,
            NewStatus {
                phase,
                conditions,
                blocks: Vec::new(),
            },
        )
        .await?;
        if !reported {
            publish(
                &context,
                &cr.object_ref(&()),
                EventType::Normal,
                "Paused",
                "Pause",
                &message,
            )
            .await;
        }
        return Ok(Action::requeue(context.settings.resync));
    }
    if conditions.get(status::PAUSED).is_some() {
        conditions.set(
            status::PAUSED,
            Truth::False,
            "Resumed",
            "the pause annotation was removed",
        );
    }

    // Dereference: the namespace's peers, oldest first, and this CR's network.
    let networks: Vec<OptimismNetwork> = peers_of(client, &namespace).await?;
    let nodes: Vec<OpNode> = peers_of(client, &namespace).await?;
    let batchers: Vec<OpBatcher> = peers_of(client, &namespace).await?;
    let proposers: Vec<OpProposer> = peers_of(client, &namespace).await?;
    let network_name = pipeline::network_name(&kind, &value);

    let outcome = async {
        // Validate: the host's rules, then the Secrets the CR names.
        let peers = Peers {
            networks: &networks,
            nodes: &nodes,
            batchers: &batchers,
            proposers: &proposers,
        };
        if !is_network
            && context.settings.require_restricted_namespaces
            && let Err(error) = admission::check_namespace(client, &namespace).await?
        {
            return Ok(Err(Refusal {
                rendering: false,
                reason: error.reason().to_string(),
                message: error.to_string(),
            }));
        }
        if let Some(error) = validate::validate(&kind, &value, peers).into_iter().next() {
            return Ok(Err(Refusal {
                rendering: false,
                reason: error.reason().to_string(),
                message: error.to_string(),
            }));
        }
        let network = if is_network {
            serde_json::from_value::<OptimismNetwork>(value.clone())?
        } else {
            networks
                .iter()
                .find(|n| n.name_any() == network_name)
                .cloned()
                .expect("host validation checked that the network exists")
        };
        if let Some(problem) =
            secrets::check_user_secrets(client, &namespace, &kind, &value, &network).await?
        {
            return Ok(Err(Refusal {
                rendering: false,
                reason: problem.reason.to_string(),
                message: problem.message,
            }));
        }
        let peer_ids =
            secrets::peer_ids_of_references(client, &namespace, &kind, &value, &nodes).await?;
        let forks = if is_network {
            Vec::new()
        } else {
            fork_schedule(client, &namespace, &network).await?
        };
        // Dereference the chain's plugin ConfigMaps: for a network every plugin it names (its
        // PluginsReady), for the others those of their own kind.
        let kind_refs = chain_plugins::named_for(&network, &kind);
        let all_refs = if is_network {
            chain_plugins::named(&network)
        } else {
            kind_refs.clone()
        };
        let fetched =
            chain_plugins::fetch(client, &namespace, &all_refs, &context.plugin_config_maps)
                .await?;
        // Verify, load and render on a blocking thread: compiling and the plugins run there.
        let bundled = context
            .plugins
            .get(kind.as_str())
            .cloned()
            .ok_or_else(|| ControllerError::NoPlugin(kind.clone()))?;
        let runtime = context.runtime.clone();
        let (render_kind, render_value, render_uid) = (kind.clone(), value.clone(), uid.clone());
        let network_for_render = network.clone();
        let render_nodes = nodes.clone();
        let render_peer_ids = peer_ids.clone();
        let (plugins_ready, rendered) = tokio::task::spawn_blocking(move || {
            let plugins_ready =
                is_network.then(|| chain_plugins::check_all(&runtime, &all_refs, &fetched));
            let rendered = chain_plugins::select(&runtime, &bundled, &kind_refs, &fetched)
                .map_err(|errors| Refusal {
                    rendering: true,
                    reason: errors[0].reason().to_string(),
                    message: chain_plugins::on_network(&network_for_render, &errors),
                })
                .and_then(|selected| {
                    pipeline::render(
                        &render_kind,
                        &render_value,
                        &render_uid,
                        &network_for_render,
                        &render_nodes,
                        &render_peer_ids,
                        &selected.plugins,
                    )
                    .map(|sealed| (sealed, selected))
                    .map_err(|error| Refusal {
                        rendering: true,
                        reason: error.reason().to_string(),
                        message: error.to_string(),
                    })
                });
            (plugins_ready, rendered)
        })
        .await
        .map_err(|e| ControllerError::RenderTask(e.to_string()))?;
        if let Some((errors, loaded)) = plugins_ready {
            report_plugins_ready(
                &context,
                &cr.object_ref(&()),
                &mut conditions,
                &errors,
                &loaded,
            )
            .await;
        }
        Ok::<_, ControllerError>(
            rendered.map(|(sealed, selected)| (sealed, selected, network, peer_ids, forks)),
        )
    }
    .await?;

    // Shadow render: a CR whose children another renderer produced sees the diff first, and
    // a renderer that needs approval applies nothing until it has it.
    let (outcome, live) = match outcome {
        Err(refusal) => (Err(refusal), None),
        Ok((sealed, selected, network, peer_ids, forks)) => {
            let live = apply::owned_children(client, &namespace, &kind, &name, &uid).await?;
            // Never write over what is not this CR's: a child's name taken by another CR's
            // object, or by anything a user made, refuses the whole render.
            let foreign = apply::foreign_objects(
                client,
                &namespace,
                &sealed.objects,
                &live,
                &kind,
                &name,
                &uid,
            )
            .await?;
            if !foreign.is_empty() {
                let refusal = Refusal {
                    rendering: true,
                    reason: NOT_OWNED.to_string(),
                    message: format!(
                        "the names of its children are taken: {}; nothing was applied. Rename or delete those objects, or give this resource another name",
                        foreign.join(", ")
                    ),
                };
                (Err(refusal), Some(live))
            } else {
                let gate = shadow_step(
                    &context,
                    &cr.object_ref(&()),
                    &mut conditions,
                    ShadowRender {
                        kind: &kind,
                        value: &value,
                        uid: &uid,
                        network: &network,
                        nodes: &nodes,
                        peer_ids: &peer_ids,
                    },
                    &sealed,
                    &selected,
                    &live,
                )
                .await?;
                (gate.map(|()| (sealed, network, forks)), Some(live))
            }
        }
    };

    // Hardfork readiness of what was rendered: an image that cannot follow a fork already
    // active on the chain, or a broken op-node + execution-client mix, is refused like a bad
    // render (nothing applied, what runs keeps running).
    let now = upgrade::unix_now();
    let (outcome, readiness) = match outcome {
        Ok((sealed, network, forks)) if !is_network => match upgrade::judge(
            opstack_crds::releases::table(),
            &forks,
            &upgrade::running(&sealed.objects),
            now,
            context.settings.upgrade_notice.as_secs() as i64,
        ) {
            Ok(readiness) => (Ok((sealed, network)), Some(readiness)),
            Err(error) => (
                Err(Refusal {
                    rendering: true,
                    reason: error.reason().to_string(),
                    message: error.to_string(),
                }),
                None,
            ),
        },
        other => (other.map(|(sealed, network, _)| (sealed, network)), None),
    };

    let reference = cr.object_ref(&());
    match &outcome {
        Ok(_) => context.metrics.rendered(&kind, "Rendered"),
        Err(refusal) if refusal.rendering => context.metrics.rendered(&kind, &refusal.reason),
        Err(_) => {}
    }
    let (sealed, network) = match outcome {
        Ok(rendered) => rendered,
        Err(refusal) => {
            let reported = conditions.was(
                status::READY,
                Truth::False,
                &refusal.reason,
                &refusal.message,
            );
            if refusal.rendering && !is_network {
                conditions.set(
                    status::VALID,
                    Truth::True,
                    "Valid",
                    "references, keys and host rules check out",
                );
                conditions.set(
                    status::RENDERED,
                    Truth::False,
                    &refusal.reason,
                    &refusal.message,
                );
            } else {
                conditions.set(valid_type, Truth::False, &refusal.reason, &refusal.message);
            }
            conditions.set(
                status::READY,
                Truth::False,
                &refusal.reason,
                &refusal.message,
            );
            // Both phase enums (network and workload) spell it "Error".
            let phase = "Error";
            write_status::<K>(
                &context,
                &namespace,
                &name,
                old_status.as_ref(),
                generation,
                NewStatus {
                    phase,
                    conditions,
                    blocks: Vec::new(),
                },
            )
            .await?;
            if !reported {
                tracing::warn!(%kind, %name, %namespace, reason = %refusal.reason, message = %refusal.message, "refused; nothing applied");
                publish(
                    &context,
                    &reference,
                    EventType::Warning,
                    &refusal.reason,
                    "Refused",
                    &refusal.message,
                )
                .await;
            }
            // A name taken by a deleted CR's child frees itself when the garbage collector
            // gets to it, and a namespace's new label sends this CR no event: look again soon.
            let again = if refusal.retried_soon() {
                context.settings.retry
            } else {
                context.settings.resync
            };
            return Ok(Action::requeue(again));
        }
    };

    // Host-owned Secrets, after everything validated: a refused CR gets nothing.
    let owner = OwnerReference {
        api_version: API_VERSION.to_string(),
        kind: kind.clone(),
        name: name.clone(),
        uid: uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let mut done: Vec<String> = Vec::new();
    if kind == "OpNode" {
        for created in secrets::ensure_generated(
            client,
            &namespace,
            &value,
            &owner,
            &network_name,
            &context.writes,
        )
        .await?
        {
            done.push(format!("generated Secret/{created}"));
        }
    }

    // Apply what changed, then prune what is no longer rendered.
    // A new release of an OpNode (its op-node or execution-client image) waits for the nodes
    // that roll before it: its StatefulSet keeps the release it runs until they follow again.
    let is_workload = |object: &Value| {
        matches!(
            object.get("kind").and_then(Value::as_str),
            Some("StatefulSet" | "Deployment")
        ) && object.pointer("/metadata/name").and_then(Value::as_str) == Some(name.as_str())
    };
    let live_workload = live
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|object| is_workload(object))
        .cloned();
    let desired_workload = sealed.objects.iter().find(|object| is_workload(object));
    let release_change = kind == "OpNode"
        && desired_workload
            .is_some_and(|desired| rollout::changes_release(desired, live_workload.as_ref()));
    let gate = if release_change {
        let this: OpNode = serde_json::from_value(value.clone())?;
        let follow_timeout = network
            .spec
            .node_release
            .as_ref()
            .and_then(|r| {
                crate::discovery::duration::parse(
                    "spec.nodeRelease.followTimeout",
                    &r.follow_timeout,
                )
                .ok()
            })
            .unwrap_or(std::time::Duration::from_secs(30 * 60));
        rollout::gate(
            &this,
            &nodes,
            network.metadata.generation.unwrap_or_default(),
            follow_timeout,
            k8s_openapi::jiff::Timestamp::now(),
        )
    } else {
        rollout::Gate::Proceed
    };
    let mut keep = BTreeSet::new();
    let mut workload: Option<Value> = None;
    for object in &sealed.objects {
        let desired = apply::with_hash(object.clone());
        keep.insert(format!(
            "{}/{}",
            apply::type_of(&desired),
            desired
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ));
        if is_workload(&desired) && gate != rollout::Gate::Proceed {
            // Held back: the live StatefulSet stays as it is (and is not pruned).
            workload = live_workload.clone();
            continue;
        }
        let (outcome, live) = apply::apply(client, &namespace, &desired, &context.writes).await?;
        if release_change && is_workload(&desired) && outcome == Outcome::Updated {
            // The pod restarts on the new release: no answer of the old pod may vouch for it.
            context.live.nodes.forget(&uid);
        }
        let shown = format!(
            "{}/{}",
            desired
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            desired
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
        );
        match outcome {
            Outcome::Created => done.push(format!("created {shown}")),
            Outcome::Updated => done.push(format!("updated {shown}")),
            Outcome::Unchanged => {}
        }
        let child_kind = desired.get("kind").and_then(Value::as_str);
        if matches!(child_kind, Some("StatefulSet" | "Deployment"))
            && live.pointer("/metadata/name").and_then(Value::as_str) == Some(name.as_str())
        {
            workload = Some(live);
        }
    }
    for pruned in apply::prune(
        client,
        &namespace,
        live.as_deref().unwrap_or_default(),
        &keep,
        &context.writes,
    )
    .await?
    {
        done.push(format!("deleted {pruned}"));
    }

    // Status.
    let count = sealed.objects.len();
    let mut requeue = context.settings.resync;
    let mut blocks = Vec::new();
    let phase = if is_network {
        set_with_warnings(
            &context,
            &reference,
            &mut conditions,
            (status::CONFIGURATION_VALID, "Applied"),
            format!(
                "rendered by {} and applied: {count} object(s)",
                sealed.rendered_by
            ),
            &sealed.warnings,
        )
        .await;
        // L1: health and discovery. Runs after apply and touches no child, so an L1 outage
        // or a lying endpoint can only change this status.
        let network = serde_json::from_value::<OptimismNetwork>(value.clone())?;
        let found = l1::step(
            client,
            &namespace,
            &network,
            &context.probes,
            &context.settings.l1_backoff,
        )
        .await?;
        if let Some(wait) = found.requeue {
            requeue = requeue.min(wait.max(std::time::Duration::from_secs(1)));
        }
        if let Some(connected) = &found.l1_connected {
            // A healthy L1's head moves every probe: keep the first message while the
            // condition stays the same, so a healthy network costs no status write per probe.
            let same = conditions.get(status::L1_CONNECTED).is_some_and(|c| {
                c.get("status").and_then(Value::as_str) == Some(truth(connected.status).as_str())
                    && c.get("reason").and_then(Value::as_str) == Some(connected.reason.as_str())
            });
            if !(same && connected.status) {
                set_summary(&mut conditions, connected);
            }
        }
        let mut reported = true;
        if let Some(contracts) = &found.contracts {
            reported = conditions.was(
                status::CONTRACTS_DISCOVERED,
                truth(contracts.status),
                &contracts.reason,
                &contracts.message,
            );
            set_summary(&mut conditions, contracts);
        }
        if let Some(pin) = &found.pin {
            context.writes.count()?;
            let patch = serde_json::json!({"status": {"networkInfo": {
                "discoveredContracts": pin,
                "lastUpdated": pin.last_discovery_time,
            }}});
            Api::<OptimismNetwork>::namespaced(client.clone(), &namespace)
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        if let Some(note) = &found.note
            && !reported
        {
            tracing::info!(%kind, %name, %namespace, reason = %note.reason, message = %note.message, "L1 discovery");
            let type_ = if note.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            publish(
                &context,
                &cr.object_ref(&()),
                type_,
                &note.reason,
                "Discover",
                &note.message,
            )
            .await;
        }
        // Ready needs a valid configuration and contracts the components can use.
        let discovered = conditions.get(status::CONTRACTS_DISCOVERED).cloned();
        let discovered_true = discovered
            .as_ref()
            .and_then(|c| c.get("status"))
            .and_then(Value::as_str)
            == Some("True");
        let plugins_not_ready = conditions
            .get(status::PLUGINS_READY)
            .filter(|c| c.get("status").and_then(Value::as_str) == Some("False"))
            .cloned();
        if let Some(plugins) = plugins_not_ready {
            let text = |field: &str| {
                plugins
                    .get(field)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            conditions.set(
                status::READY,
                Truth::False,
                &text("reason"),
                &text("message"),
            );
            "Pending"
        } else if discovered_true {
            conditions.set(
                status::READY,
                Truth::True,
                "ConfigurationApplied",
                "the network's configuration is valid and applied, and its L1 contracts are pinned",
            );
            "Ready"
        } else {
            let text = |field: &str| {
                discovered
                    .as_ref()
                    .and_then(|c| c.get(field))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            conditions.set(
                status::READY,
                Truth::False,
                &text("reason").unwrap_or_else(|| "ContractsNotDiscovered".to_string()),
                &text("message")
                    .unwrap_or_else(|| "the L1 contracts are not discovered yet".to_string()),
            );
            "Pending"
        }
    } else {
        conditions.set(
            status::VALID,
            Truth::True,
            "Valid",
            "references, keys and host rules check out",
        );
        set_with_warnings(
            &context,
            &reference,
            &mut conditions,
            (status::RENDERED, "Rendered"),
            format!("{count} object(s) rendered by {}", sealed.rendered_by),
            &sealed.warnings,
        )
        .await;
        conditions.set(
            status::APPLIED,
            Truth::True,
            "Applied",
            &format!("{count} object(s) applied by server-side apply (field manager {MANAGER})"),
        );
        let (workload_ready, reason, message) = workload_readiness(workload.as_ref(), &name);
        conditions.set(status::WORKLOAD_READY, workload_ready, reason, &message);
        let (mut ready, mut reason, mut message) = (workload_ready, reason, message);
        let running = workload_ready == Truth::True;
        let found = match kind.as_str() {
            "OpNode" => {
                Some(live::opnode(&context, &value, &nodes, running, &mut conditions).await?)
            }
            "OpBatcher" => {
                Some(live::batcher(&context, &value, &network, running, &mut conditions).await?)
            }
            "OpProposer" => {
                Some(live::proposer(&context, &value, &network, running, &mut conditions).await?)
            }
            "OpChallenger" => {
                Some(live::challenger(&context, &value, &network, running, &mut conditions).await?)
            }
            _ => None,
        };
        if let Some(found) = found {
            if let Some(verdict) = found.ready {
                (ready, reason, message) = (verdict.status, verdict.reason, verdict.message);
            }
            if let Some(wait) = found.requeue {
                requeue = requeue.min(wait);
            }
            blocks.extend(found.block);
        }
        conditions.set(status::READY, ready, reason, &message);
        let rollout = (kind == "OpNode")
            .then(|| rollout_step(&mut conditions, &gate, workload.as_ref(), desired_workload));
        if let Some((reason, warning)) = rollout_event(&gate) {
            let condition = conditions.get(status::UPGRADE_ROLLOUT).cloned();
            let text = |field: &str| {
                condition
                    .as_ref()
                    .and_then(|c| c.get(field))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let (status_now, message) = (text("status"), text("message"));
            let truth = if status_now == "True" {
                Truth::True
            } else {
                Truth::False
            };
            if !conditions.was(status::UPGRADE_ROLLOUT, truth, reason, &message) {
                tracing::info!(%kind, %name, %namespace, %reason, %message, "release rollout");
                publish(
                    &context,
                    &reference,
                    if warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason,
                    "Rollout",
                    &message,
                )
                .await;
            }
        }
        if let Some(readiness) = &readiness {
            blocks.push((
                "upgrade",
                upgrade_step(
                    &context,
                    &reference,
                    &mut conditions,
                    UpgradeFacts {
                        readiness,
                        objects: &sealed.objects,
                        now,
                        rollout,
                        network_generation: network.metadata.generation,
                    },
                )
                .await,
            ));
        }
        if ready == Truth::True {
            "Running"
        } else {
            "Pending"
        }
    };
    write_status::<K>(
        &context,
        &namespace,
        &name,
        old_status.as_ref(),
        generation,
        NewStatus {
            phase,
            conditions,
            blocks,
        },
    )
    .await?;
    if !done.is_empty() {
        let note = done.join(", ");
        tracing::info!(%kind, %name, %namespace, elapsed_ms = started.elapsed().as_millis() as u64, %note, "applied");
        publish(
            &context,
            &reference,
            EventType::Normal,
            "Applied",
            "Apply",
            &note,
        )
        .await;
    } else {
        tracing::debug!(%kind, %name, %namespace, elapsed_ms = started.elapsed().as_millis() as u64, "up to date");
    }
    Ok(Action::requeue(requeue))
}

/// Sets condition `type_` True with `message` followed by the render's warnings (the plugins'
/// own, and policies that failed under `Ignore`), and raises a Warning Event when they change:
/// once per distinct set of warnings, not once per reconcile.
async fn set_with_warnings(
    context: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    conditions: &mut Conditions,
    (type_, reason): (&str, &str),
    mut message: String,
    warnings: &[String],
) {
    if !warnings.is_empty() {
        message.push_str(&format!("; warnings: {}", warnings.join("; ")));
        if !conditions.was(type_, Truth::True, reason, &message) {
            publish(
                context,
                reference,
                EventType::Warning,
                "RenderWarnings",
                "Render",
                &warnings.join("; "),
            )
            .await;
        }
    }
    conditions.set(type_, Truth::True, reason, &message);
}

/// Sets the network's `PluginsReady` from the load of every plugin it names, with a Warning
/// Event when it turns false (or its reason changes).
async fn report_plugins_ready(
    context: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    conditions: &mut Conditions,
    errors: &[ChainPluginError],
    loaded: &[String],
) {
    let Some(first) = errors.first() else {
        let message = if loaded.is_empty() {
            "the network names no plugins of its own; the bundled renderers serve every kind"
                .to_string()
        } else {
            format!("loaded and verified: {}", loaded.join("; "))
        };
        conditions.set(
            status::PLUGINS_READY,
            Truth::True,
            "PluginsLoaded",
            &message,
        );
        return;
    };
    let message = chain_plugins::describe(errors);
    let reported = conditions.was(
        status::PLUGINS_READY,
        Truth::False,
        first.reason(),
        &message,
    );
    conditions.set(
        status::PLUGINS_READY,
        Truth::False,
        first.reason(),
        &message,
    );
    if !reported {
        tracing::warn!(reason = first.reason(), %message, "a chain plugin cannot be used; its CRs keep their last applied children");
        publish(
            context,
            reference,
            EventType::Warning,
            first.reason(),
            "LoadPlugins",
            &message,
        )
        .await;
    }
}

/// What the shadow step needs to render the CR again with the previous renderer.
struct ShadowRender<'a> {
    kind: &'a str,
    value: &'a Value,
    uid: &'a str,
    network: &'a OptimismNetwork,
    nodes: &'a [OpNode],
    peer_ids: &'a std::collections::BTreeMap<String, String>,
}

/// When the live children were rendered by another renderer than `sealed`'s: renders with the
/// previous one (if this process still has it; else compares with the live objects), reports
/// the object-level diff (condition `RendererChanged` and an Event, once per change), and
/// refuses with `AwaitingApproval` when the chain's renderer needs an approval it lacks.
#[allow(clippy::too_many_arguments)]
async fn shadow_step(
    context: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    conditions: &mut Conditions,
    render: ShadowRender<'_>,
    sealed: &pipeline::Sealed,
    selected: &chain_plugins::Selected,
    live: &[Value],
) -> Result<Result<(), Refusal>, ControllerError> {
    let approved = selected.renderer.as_ref().is_none_or(|r| r.approved());
    let previous = previous_renderer(live);
    let changed = previous.as_deref().is_some_and(|p| p != sealed.rendered_by);
    if !changed && approved {
        // The children are already this renderer's and it is approved, but the status this
        // reconcile started from can predate the write that reported the approved diff (a
        // reconcile queued by the apply reads its CR before that write reaches the cache).
        // Never leave it saying the renderer waits for an approval it has.
        if conditions
            .get(status::RENDERER_CHANGED)
            .is_some_and(|c| c["reason"] == "AwaitingApproval")
        {
            conditions.set(
                status::RENDERER_CHANGED,
                Truth::True,
                "DiffReported",
                &format!(
                    "renderer {} approved and applied; its diff is in the CR's Events",
                    sealed.rendered_by
                ),
            );
        }
        return Ok(Ok(()));
    }
    let (diff, compared_with) = if changed {
        let old = previous
            .as_deref()
            .and_then(|id| id.rsplit_once("@sha256:"))
            .and_then(|(_, digest)| context.runtime.loaded(digest));
        let rendered_old = match old {
            Some(old) => {
                let (kind, value, uid) = (
                    render.kind.to_string(),
                    render.value.clone(),
                    render.uid.to_string(),
                );
                let (network, nodes) = (render.network.clone(), render.nodes.to_vec());
                let peer_ids = render.peer_ids.clone();
                tokio::task::spawn_blocking(move || {
                    pipeline::render(
                        &kind,
                        &value,
                        &uid,
                        &network,
                        &nodes,
                        &peer_ids,
                        &pipeline::KindPlugins::renderer(old),
                    )
                    .ok()
                })
                .await
                .map_err(|e| ControllerError::RenderTask(e.to_string()))?
            }
            None => None,
        };
        match rendered_old {
            Some(old) => (
                shadow::diff(&old.objects, &sealed.objects, Baseline::Rendered),
                "its output for this resource",
            ),
            None => (
                shadow::diff(live, &sealed.objects, Baseline::Live),
                "the live objects (the previous renderer is not loaded in this process, so fields it set and the new one drops are not listed)",
            ),
        }
    } else {
        (
            shadow::diff(live, &sealed.objects, Baseline::Live),
            "the live objects",
        )
    };
    let from = previous.unwrap_or_else(|| "nothing applied yet".to_string());
    let mut message = format!(
        "renderer {from} -> {}, compared with {compared_with}: {}",
        sealed.rendered_by,
        shadow::summary(&diff)
    );
    let reason = if approved {
        "DiffReported"
    } else {
        let renderer = selected
            .renderer
            .as_ref()
            .expect("only a chain's renderer can need approval");
        message.push_str(&format!(
            ". Nothing is applied until OptimismNetwork {} sets {}.approvedSha256 to {}",
            render.network.name_any(),
            renderer.field,
            renderer.sha256
        ));
        "AwaitingApproval"
    };
    // Conditions and Events cap what they hold; the head of the diff is what a reader needs.
    let message: String = message.chars().take(4000).collect();
    let reported = conditions.was(status::RENDERER_CHANGED, Truth::True, reason, &message);
    conditions.set(status::RENDERER_CHANGED, Truth::True, reason, &message);
    if !reported {
        tracing::info!(kind = render.kind, reason, %message, "renderer changed");
        publish(
            context,
            reference,
            EventType::Normal,
            "RendererChanged",
            "ShadowRender",
            &message,
        )
        .await;
    }
    if approved {
        Ok(Ok(()))
    } else {
        Ok(Err(Refusal {
            rendering: true,
            reason: "AwaitingApproval".to_string(),
            message,
        }))
    }
}

/// The renderer that produced the live children: the provenance annotation of the first child
/// that has one (a CR's children always come from one render).
fn previous_renderer(live: &[Value]) -> Option<String> {
    live.iter().find_map(|child| {
        child
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(crate::envelope::ANNOTATION_RENDERED_BY))
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

fn truth(status: bool) -> Truth {
    if status { Truth::True } else { Truth::False }
}

/// Sets a condition the discovery library summarised.
fn set_summary(conditions: &mut Conditions, summary: &crate::discovery::ConditionSummary) {
    conditions.set(
        summary.type_,
        truth(summary.status),
        &summary.reason,
        &summary.message,
    );
}

/// Whether the workload's pods are ready, from its live status.
fn workload_readiness(workload: Option<&Value>, name: &str) -> (Truth, &'static str, String) {
    let Some(workload) = workload else {
        return (
            Truth::Unknown,
            "NoWorkload",
            format!("the renderer produced no StatefulSet or Deployment named {name}"),
        );
    };
    // A rollout in progress: the ready pod may still be the old one.
    let rolling = workload.pointer("/status").is_some() && !rollout::rolled_out(workload);
    let kind = workload
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("workload");
    let wanted = workload
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let ready = workload
        .pointer("/status/readyReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if ready >= wanted && !rolling {
        (
            Truth::True,
            "WorkloadReady",
            format!("{kind} {name}: {ready}/{wanted} pods ready"),
        )
    } else {
        (
            Truth::False,
            "PodsNotReady",
            format!(
                "{kind} {name}: {ready}/{wanted} pods ready; see kubectl describe {} {name} and its pods' events",
                kind.to_ascii_lowercase()
            ),
        )
    }
}

/// The status a reconcile decided on: the phase, the conditions and the status blocks it owns
/// (the live figures, the upgrade readiness).
struct NewStatus<'a> {
    phase: &'a str,
    conditions: Conditions,
    blocks: Vec<(&'static str, Value)>,
}

async fn write_status<K: Kind>(
    context: &Context,
    namespace: &str,
    name: &str,
    old_status: Option<&Value>,
    generation: Option<i64>,
    new: NewStatus<'_>,
) -> Result<(), ControllerError> {
    let Some(patch) = status::patch_if_changed(
        old_status,
        generation,
        new.phase,
        new.conditions,
        new.blocks,
    ) else {
        return Ok(());
    };
    context.writes.count()?;
    Api::<K>::namespaced(context.client.clone(), namespace)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Reports a readiness: the `UpgradeReady` condition, a Warning Event once when an upgrade
/// falls due within the notice window, the seconds-left gauge, and the status block it returns.
/// What the upgrade status of a CR is made of.
struct UpgradeFacts<'a> {
    readiness: &'a Readiness,
    objects: &'a [Value],
    now: i64,
    /// Nodes only.
    rollout: Option<rollout::Rollout>,
    network_generation: Option<i64>,
}

async fn upgrade_step(
    context: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    conditions: &mut Conditions,
    facts: UpgradeFacts<'_>,
) -> Value {
    let UpgradeFacts {
        readiness,
        objects,
        now,
        rollout,
        network_generation,
    } = facts;
    let report = upgrade::report(readiness, now);
    let truth = match report.status {
        Some(true) => Truth::True,
        Some(false) => Truth::False,
        None => Truth::Unknown,
    };
    let reported = conditions.was(status::UPGRADE_READY, truth, report.reason, &report.message);
    conditions.set(status::UPGRADE_READY, truth, report.reason, &report.message);
    if report.warn && !reported {
        tracing::warn!(name = ?reference.name, namespace = ?reference.namespace, reason = report.reason, message = %report.message, "upgrade required");
        publish(
            context,
            reference,
            EventType::Warning,
            report.reason,
            "CheckUpgrade",
            &report.message,
        )
        .await;
    }
    let next = readiness.next();
    context.metrics.next_fork(
        reference.kind.as_deref().unwrap_or_default(),
        reference.namespace.as_deref().unwrap_or_default(),
        reference.name.as_deref().unwrap_or_default(),
        next.map(|a| (a.fork.as_str(), a.time, report.status)),
    );
    // Typed, so unset fields are left out as the stored status leaves them out: a null here
    // would differ from the stored status on every reconcile and cost a write each time.
    let block = opstack_crds::UpgradeStatus {
        next_fork: next.map(|a| a.fork.clone()),
        activation_time: next.map(|a| upgrade::rfc3339(a.time)),
        releases: upgrade::running(objects)
            .into_iter()
            .map(|r| opstack_crds::ComponentRelease {
                component: r.component.as_str().to_owned(),
                image: r.image,
                version: r.version.map(|v| v.to_string()),
            })
            .collect(),
        network_generation,
        rollout: rollout.map(|r| r.as_str().to_owned()),
    };
    serde_json::to_value(block).unwrap_or_default()
}

/// Sets `UpgradeRollout` from the gate and the workload as applied; returns where it stands.
fn rollout_step(
    conditions: &mut Conditions,
    gate: &rollout::Gate,
    workload: Option<&Value>,
    desired: Option<&Value>,
) -> rollout::Rollout {
    use rollout::{Gate, Rollout};
    let (state, truth, reason, message) = match gate {
        Gate::Wait { message, .. } => (
            Rollout::Waiting,
            Truth::False,
            "WaitingForNode",
            message.clone(),
        ),
        Gate::Halt { message, .. } => (
            Rollout::Halted,
            Truth::False,
            "RolloutHalted",
            message.clone(),
        ),
        Gate::Proceed => {
            let images = desired.map(rollout::release_images).unwrap_or_default();
            let shown = images
                .iter()
                .map(|(container, image)| format!("{container} {image}"))
                .collect::<Vec<_>>()
                .join(", ");
            let runs = workload
                .is_some_and(|w| rollout::rolled_out(w) && rollout::release_images(w) == images);
            if runs {
                (
                    Rollout::Complete,
                    Truth::True,
                    "RolloutComplete",
                    format!("the pod runs {shown}"),
                )
            } else {
                (
                    Rollout::Rolling,
                    Truth::False,
                    "RollingOut",
                    format!("the pod is being replaced to run {shown}"),
                )
            }
        }
    };
    conditions.set(status::UPGRADE_ROLLOUT, truth, reason, &message);
    state
}

/// The Event a gate's answer deserves, once: (reason, is a warning).
fn rollout_event(gate: &rollout::Gate) -> Option<(&'static str, bool)> {
    match gate {
        rollout::Gate::Proceed => None,
        rollout::Gate::Wait { .. } => Some(("WaitingForNode", false)),
        rollout::Gate::Halt { .. } => Some(("RolloutHalted", true)),
    }
}

/// The fork schedule of a network's chain ([`upgrade::schedule_of`]), with its rollup config
/// read from the ConfigMap it names when it names one.
async fn fork_schedule(
    client: &kube::Client,
    namespace: &str,
    network: &OptimismNetwork,
) -> Result<Vec<opstack_crds::releases::Activation>, ControllerError> {
    let source = network.spec.rollup_config.as_ref();
    let text = match (
        source.and_then(|s| s.inline.as_ref()),
        source.and_then(|s| s.config_map_ref.as_ref()),
    ) {
        (Some(inline), _) => Some(inline.clone()),
        (None, Some(reference)) => {
            let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
                Api::namespaced(client.clone(), namespace);
            config_maps
                .get_opt(&reference.name)
                .await?
                .and_then(|cm| cm.data)
                .and_then(|mut data| data.remove(&reference.key))
        }
        (None, None) => None,
    };
    Ok(upgrade::schedule_of(network, text.as_deref()))
}

/// Publishes an Event; a failure to record one is logged, never fails the reconcile.
async fn publish(
    context: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(error) = context.recorder.publish(&event, reference).await {
        tracing::warn!(%error, reason, "could not record an Event");
    }
}
