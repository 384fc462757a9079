//! `opstack-operator plugin ...`: tools for plugin files.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::runtime::{Plugin, Role, Runtime, RuntimeConfig};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Load a plugin in the sandbox exactly as the operator would, and print what it is:
    /// name, version, role, kinds, contract version, sha256, size and imports. Exits non-zero
    /// if the operator would refuse it.
    Inspect {
        /// The plugin's `.wasm` component.
        file: PathBuf,
    },
}

pub fn run(command: PluginCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        PluginCommand::Inspect { file } => {
            let runtime = Runtime::new(RuntimeConfig {
                workers: 1,
                ..RuntimeConfig::default()
            })?;
            let plugin = runtime.load_file(&file).with_context(|| {
                format!("{} is not a plugin the operator can run", file.display())
            })?;
            out.write_all(describe(&plugin).as_bytes())?;
            Ok(())
        }
    }
}

/// The report printed by `plugin inspect`.
pub fn describe(plugin: &Plugin) -> String {
    let info = plugin.info();
    let role = match info.role {
        Role::Renderer => "renderer",
        Role::Policy => "policy",
    };
    let mut text = format!(
        "name:             {}\nversion:          {}\nrole:             {role}\nkinds:            {}\n\
         contract version: {}\nsha256:           {}\nsize:             {} bytes\nimports:\n",
        info.name,
        info.version,
        info.kinds.join(", "),
        info.contract_version,
        plugin.sha256(),
        plugin.size(),
    );
    if plugin.imports().is_empty() {
        text.push_str("  (none)\n");
    }
    for import in plugin.imports() {
        text.push_str(&format!("  {import}\n"));
    }
    text
}
