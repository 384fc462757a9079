//! Every fixture's objects pass the host's envelope: allowed kinds, the 19 Pod Security
//! "restricted" controls, Secret references only to names the host passed, retained claims,
//! no service-account token. The check itself is the one the service renderers' tests use.

mod common;
#[path = "../../testdata/support.rs"]
mod support;

use common::*;

#[test]
fn every_fixture_passes_the_hosts_envelope() {
    for (name, input) in fixtures() {
        // Shown with the failure: which fixture the envelope refused.
        eprintln!("fixture {name}");
        support::assert_sealed(&render(&input), &input);
    }
}
