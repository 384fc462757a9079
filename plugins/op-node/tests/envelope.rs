//! Every fixture's objects pass the host's envelope: allowed kinds, the 19 Pod Security
//! "restricted" controls, Secret references only to names the host passed, retained claims,
//! no service-account token.

mod common;

use common::*;
use opstack_operator::envelope::{Owner, seal};

#[test]
fn every_fixture_passes_the_hosts_envelope() {
    for (name, input) in fixtures() {
        let out = render(&input);
        let owner = Owner {
            api_version: "optimism.io/v1alpha1".into(),
            kind: "OpNode".into(),
            name: name.into(),
            namespace: "chain-a".into(),
            uid: "00000000-0000-0000-0000-000000000001".into(),
            network: input.network.name.clone(),
            allowed_secrets: input
                .network
                .secrets
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            rendered_by: "op-node@sha256:test".into(),
        };
        if let Err(errors) = seal(&out.objects, &owner) {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!(
                "{name}: the envelope refuses the render:\n{}",
                errors.join("\n")
            );
        }
    }
}
