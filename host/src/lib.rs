//! The operator library: CLI commands, plugin runtime, controllers.

pub mod bundled;
pub mod cli;
pub mod context;
pub mod controller;
pub mod discovery;
pub mod envelope;
pub mod observe;
pub mod peer_id;
pub mod rollout;
pub mod runtime;
pub mod upgrade;
pub mod validate;
