//! A dynamic volume provisioner for the node: what a cloud CSI driver does for a StatefulSet's
//! claims, with `local` volumes. A claim of the default StorageClass, once the scheduler has
//! picked the node (`WaitForFirstConsumer`), gets a fresh directory, root-owned and mode 0755
//! like the root of a new filesystem, as a PersistentVolume bound to that claim; the kubelet
//! applies the pod's `fsGroup` to it as it does to a CSI volume. A released volume's directory
//! and PersistentVolume are deleted (reclaim policy Delete).
//!
//! It polls instead of watching: the test cluster holds a handful of claims, and a poll needs no
//! resumption logic. It runs on a thread of its own until the control plane stops.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::config::{NETWORK, PROVISIONER, STORAGE_CLASS};

const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
const POLL: Duration = Duration::from_millis(500);

/// Starts polling on a thread of its own, with a client made there: a kube client belongs to
/// the runtime it was made in, and the harness's startup runtime ends once the node is up.
/// It stops once `stop` is set or the test process exits.
pub(super) fn start(config: kube::Config, volumes: PathBuf, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("volume-provisioner".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the provisioner");
            runtime.block_on(async move {
                let client = Client::try_from(config).expect("a client for the provisioner");
                let stopped = || stop.load(Ordering::Relaxed) || crate::process::exiting();
                while !stopped() {
                    if let Err(error) = provision_once(&client, &volumes).await
                        && !stopped()
                    {
                        eprintln!("opstack-test-harness: volume provisioner: {error}");
                    }
                    tokio::time::sleep(POLL).await;
                }
            });
        })
        .expect("could not start the volume provisioner thread");
}

/// The PersistentVolume for a claim, named after the claim's uid as external provisioners do.
fn volume_for(claim: &PersistentVolumeClaim, path: &Path) -> Option<PersistentVolume> {
    let spec = claim.spec.as_ref()?;
    let storage = spec
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")?
        .clone();
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("pvc-{}", claim.uid()?),
            "annotations": { PROVISIONED_BY: PROVISIONER },
        },
        "spec": {
            "capacity": { "storage": storage },
            "accessModes": spec.access_modes,
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "volumeMode": spec.volume_mode.clone().unwrap_or_else(|| "Filesystem".into()),
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": claim.namespace(),
                "name": claim.name_any(),
                "uid": claim.uid(),
            },
            "local": { "path": path },
            "nodeAffinity": { "required": { "nodeSelectorTerms": [{ "matchExpressions": [{
                "key": "kubernetes.io/hostname", "operator": "In", "values": [NETWORK.node_name],
            }]}]}},
        },
    }))
    .ok()
}

async fn provision_once(client: &Client, volumes: &Path) -> Result<(), kube::Error> {
    let claims = Api::<PersistentVolumeClaim>::all(client.clone());
    let pvs = Api::<PersistentVolume>::all(client.clone());
    for claim in claims.list(&ListParams::default()).await? {
        let wanted = claim.spec.as_ref().is_some_and(|spec| {
            spec.storage_class_name.as_deref() == Some(STORAGE_CLASS) && spec.volume_name.is_none()
        }) && claim.annotations().get(SELECTED_NODE).map(String::as_str)
            == Some(NETWORK.node_name)
            && claim
                .status
                .as_ref()
                .and_then(|status| status.phase.as_deref())
                == Some("Pending");
        if !wanted {
            continue;
        }
        let Some(uid) = claim.uid() else { continue };
        let dir = volumes.join(format!("pvc-{uid}"));
        if let Err(error) = std::fs::create_dir_all(&dir) {
            eprintln!(
                "opstack-test-harness: volume provisioner: {}: {error}",
                dir.display()
            );
            continue;
        }
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
        let Some(volume) = volume_for(&claim, &dir) else {
            continue;
        };
        match pvs.create(&PostParams::default(), &volume).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(error),
        }
    }
    for volume in pvs.list(&ListParams::default()).await? {
        let ours =
            volume.annotations().get(PROVISIONED_BY).map(String::as_str) == Some(PROVISIONER);
        let released = volume
            .status
            .as_ref()
            .and_then(|status| status.phase.as_deref())
            == Some("Released");
        if !(ours && released) {
            continue;
        }
        if let Some(path) = volume
            .spec
            .as_ref()
            .and_then(|spec| spec.local.as_ref())
            .map(|local| PathBuf::from(&local.path))
            && path.starts_with(volumes)
        {
            let _ = std::fs::remove_dir_all(&path);
        }
        match pvs
            .delete(&volume.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
