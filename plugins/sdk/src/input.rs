//! Typed access to the render input.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{PluginError, RenderInput, ResolvedReference};

impl RenderInput {
    /// The custom resource, deserialized into `T` (e.g. [`crate::crds::OpNode`]). A resource
    /// that does not fit `T` is the user's input error, reported as `Invalid`.
    pub fn resource<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_str(&self.resource).map_err(|e| {
            PluginError::invalid(format!("{} does not match its schema: {e}", self.kind))
        })
    }

    /// The custom resource as an untyped JSON tree.
    pub fn resource_json(&self) -> Result<Value, PluginError> {
        self.resource()
    }

    /// The `OptimismNetwork` spec, deserialized into `T` (e.g. [`crate::crds::OptimismNetworkSpec`]).
    pub fn network_spec<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_str(&self.network.spec).map_err(|e| {
            PluginError::invalid(format!(
                "OptimismNetwork {} does not match its schema: {e}",
                self.network.name
            ))
        })
    }

    /// `metadata.name` of the resource.
    pub fn name(&self) -> Result<String, PluginError> {
        self.metadata_string("name")
    }

    /// `metadata.namespace` of the resource (the host forces it on every object anyway).
    pub fn namespace(&self) -> Result<String, PluginError> {
        self.metadata_string("namespace")
    }

    fn metadata_string(&self, field: &str) -> Result<String, PluginError> {
        let resource = self.resource_json()?;
        resource
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| PluginError::invalid(format!("{} has no metadata.{field}", self.kind)))
    }

    /// Address of a discovered contract, by registry name (e.g. `DisputeGameFactoryProxy`).
    pub fn contract(&self, name: &str) -> Option<&str> {
        self.network
            .contracts
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.address.as_str())
    }

    /// Name of a host-owned Secret, by purpose (e.g. `jwt`).
    pub fn secret(&self, purpose: &str) -> Option<&str> {
        self.network
            .secrets
            .iter()
            .find(|s| s.purpose == purpose)
            .map(|s| s.name.as_str())
    }

    /// Name of a host-owned ConfigMap, by purpose (e.g. `rollup-config`).
    pub fn config_map(&self, purpose: &str) -> Option<&str> {
        self.network
            .config_maps
            .iter()
            .find(|s| s.purpose == purpose)
            .map(|s| s.name.as_str())
    }

    /// The reference the host followed for a spec field (e.g. `sequencerRef`).
    pub fn reference(&self, field: &str) -> Option<&ResolvedReference> {
        self.references.iter().find(|r| r.field == field)
    }

    /// URL of a named endpoint of a referenced object, e.g. `("sequencerRef", "rpc")`.
    pub fn endpoint(&self, field: &str, port: &str) -> Option<&str> {
        self.reference(field)?
            .endpoints
            .iter()
            .find(|e| e.name == port)
            .map(|e| e.url.as_str())
    }

    /// Like [`RenderInput::secret`], but a missing Secret is an `Invalid` error naming it.
    pub fn require_secret(&self, purpose: &str) -> Result<&str, PluginError> {
        self.secret(purpose).ok_or_else(|| {
            PluginError::invalid(format!(
                "the host provided no `{purpose}` Secret for {}",
                self.kind
            ))
        })
    }
}

macro_rules! typed_views {
    ($($method:ident => $ty:ident, $kind:literal;)*) => {
        impl RenderInput {
            $(
                #[doc = concat!("The resource as a typed [`crate::crds::", stringify!($ty), "`]; `Invalid` if this input is another kind.")]
                pub fn $method(&self) -> Result<crate::crds::$ty, PluginError> {
                    if self.kind != $kind {
                        return Err(PluginError::invalid(format!(concat!("expected a ", $kind, ", got a {}"), self.kind)));
                    }
                    self.resource()
                }
            )*
        }
    };
}

typed_views! {
    optimism_network => OptimismNetwork, "OptimismNetwork";
    op_node => OpNode, "OpNode";
    op_batcher => OpBatcher, "OpBatcher";
    op_proposer => OpProposer, "OpProposer";
    op_challenger => OpChallenger, "OpChallenger";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContractAddress, Endpoint, NamedObject};

    fn input() -> RenderInput {
        let mut input = RenderInput {
            kind: "OpNode".into(),
            resource: r#"{"apiVersion":"optimism.io/v1alpha1","kind":"OpNode","metadata":{"name":"a","namespace":"ns"},"spec":{}}"#.into(),
            ..Default::default()
        };
        input.network.contracts.push(ContractAddress {
            name: "L2OutputOracle".into(),
            address: "0x01".into(),
        });
        input.network.secrets.push(NamedObject {
            purpose: "jwt".into(),
            name: "a-jwt".into(),
        });
        input.references.push(ResolvedReference {
            field: "sequencerRef".into(),
            kind: "OpNode".into(),
            name: "seq".into(),
            endpoints: vec![Endpoint {
                name: "rpc".into(),
                url: "http://seq:9545".into(),
            }],
        });
        input
    }

    #[test]
    fn metadata_contracts_secrets_and_endpoints_are_found_by_name() {
        let input = input();
        assert_eq!(input.name().unwrap(), "a");
        assert_eq!(input.namespace().unwrap(), "ns");
        assert_eq!(input.contract("L2OutputOracle"), Some("0x01"));
        assert_eq!(input.secret("jwt"), Some("a-jwt"));
        assert_eq!(
            input.endpoint("sequencerRef", "rpc"),
            Some("http://seq:9545")
        );
        assert_eq!(input.endpoint("sequencerRef", "p2p"), None);
        assert!(matches!(
            input.require_secret("p2p-key"),
            Err(PluginError::Invalid(_))
        ));
    }

    #[test]
    fn a_typed_view_of_another_kind_is_invalid_input() {
        assert!(matches!(input().op_batcher(), Err(PluginError::Invalid(_))));
    }
}
