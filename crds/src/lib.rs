//! API types of the OP Stack operator (group `optimism.io`, version `v1alpha1`).
