//! The operator library: CLI commands, plugin runtime, controllers.

pub mod cli;
pub mod discovery;
pub mod runtime;
