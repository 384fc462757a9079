//! API types of the OP Stack operator (group `optimism.io`, version `v1alpha1`).
//!
//! The same types build natively (the operator) and for `wasm32-wasip2` (plugins deserialize
//! their input into them), so a plugin and the host can never disagree on a field.

pub mod common;
pub mod conventions;
pub mod network;
pub mod opnode;
pub mod releases;
pub mod services;

pub use common::*;
pub use network::*;
pub use opnode::*;
pub use services::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of every kind.
pub const GROUP: &str = "optimism.io";
/// API version of every kind.
pub const VERSION: &str = "v1alpha1";

/// Every CustomResourceDefinition of the operator, in a stable order.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        OptimismNetwork::crd(),
        OpNode::crd(),
        OpBatcher::crd(),
        OpProposer::crd(),
        OpChallenger::crd(),
    ]
}

#[cfg(feature = "validation")]
pub mod validation;
