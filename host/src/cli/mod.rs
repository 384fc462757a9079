//! One module per subcommand of the `opstack-operator` binary.

pub mod crds;
pub mod discover;
pub mod genesis;
pub mod plugin;
pub mod rbac;
pub mod render;
pub mod run;
