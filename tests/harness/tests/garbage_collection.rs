//! With kube-controller-manager running, owner references really cascade: what later issues
//! rely on when they assert that deleting a CR removes what it owned.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use opstack_test_harness::{ControlPlane, ControlPlaneConfig};

fn control_plane() -> &'static ControlPlane {
    ControlPlane::shared(ControlPlaneConfig::with_controller_manager)
}

/// Polls `gone` until it returns true, or panics after `timeout` with `what`.
async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut gone: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !gone().await {
        assert!(
            started.elapsed() < timeout,
            "{what} did not happen within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn config_map(name: &str, owner: Option<&ConfigMap>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            owner_references: owner.map(|owner| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: owner.metadata.name.clone().expect("owner has a name"),
                    uid: owner
                        .metadata
                        .uid
                        .clone()
                        .expect("a created owner has a uid"),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("key".to_owned(), "value".to_owned())])),
        ..ConfigMap::default()
    }
}

#[tokio::test]
async fn deleting_an_owner_deletes_the_owned_config_map() {
    let control_plane = control_plane();
    assert!(control_plane.has_controller_manager());
    let namespace = control_plane.create_test_namespace("gc").await;
    let config_maps = Api::<ConfigMap>::namespaced(control_plane.admin_client(), &namespace);

    let owner = config_maps
        .create(&PostParams::default(), &config_map("owner", None))
        .await
        .expect("create the owner");
    config_maps
        .create(&PostParams::default(), &config_map("owned", Some(&owner)))
        .await
        .expect("create the owned ConfigMap");

    // Background propagation (the default): the owner goes at once, the garbage collector
    // then deletes what it owned. Without a controller-manager "owned" would stay forever.
    config_maps
        .delete("owner", &DeleteParams::background())
        .await
        .expect("delete the owner");
    wait_until(
        "garbage collection of the owned ConfigMap",
        Duration::from_secs(60),
        || async {
            config_maps
                .get_opt("owned")
                .await
                .expect("get the owned ConfigMap")
                .is_none()
        },
    )
    .await;
}

#[tokio::test]
async fn a_deleted_namespace_finishes_deleting() {
    let control_plane = control_plane();
    let namespace = control_plane.create_test_namespace("ns-delete").await;
    let config_maps = Api::<ConfigMap>::namespaced(control_plane.admin_client(), &namespace);
    config_maps
        .create(&PostParams::default(), &config_map("content", None))
        .await
        .expect("create a ConfigMap in the namespace");

    // The namespace controller empties the namespace and removes its finalizer; without it
    // the namespace would stay Terminating forever.
    let namespaces = Api::<Namespace>::all(control_plane.admin_client());
    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("delete the namespace");
    wait_until(
        "deletion of the namespace",
        Duration::from_secs(90),
        || async {
            namespaces
                .get_opt(&namespace)
                .await
                .expect("get the namespace")
                .is_none()
        },
    )
    .await;
}
