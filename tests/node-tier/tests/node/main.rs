//! The node tier: the operator and its children as real pods on a real node (kubelet,
//! containerd, CNI, kube-proxy, CoreDNS, volumes; see `opstack_test_harness::node`), from images
//! built on this machine. One node per test run: every test that needs pods is in this binary,
//! each in its own namespace, and a missing node part fails the tests here, never skips them.

#[path = "../../../operator/tests/support/mod.rs"]
mod support;

mod cluster;
mod devnet;
mod operator_in_cluster;
mod workload;
