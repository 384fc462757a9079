//! The operator library: CLI commands, plugin runtime, controllers.

pub mod cli;
