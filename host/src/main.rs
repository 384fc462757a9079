//! `opstack-operator`: the binary's edge. Parses the command line and hands off to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "opstack-operator",
    version,
    about = "Kubernetes operator for OP Stack chains"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every CustomResourceDefinition as multi-document YAML (ready for `kubectl apply --server-side -f -`).
    Crds {
        /// Instead of printing, (re)write one file per CRD into this directory (e.g. `crds/generated`).
        #[arg(long, value_name = "DIR")]
        write: Option<std::path::PathBuf>,
    },
    /// Tools for plugin files (`.wasm` components).
    Plugin {
        #[command(subcommand)]
        command: opstack_operator::cli::plugin::PluginCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        Command::Crds { write: None } => {
            opstack_operator::cli::crds::run(&mut std::io::stdout().lock()).map_err(Into::into)
        }
        Command::Crds { write: Some(dir) } => opstack_operator::cli::crds::write_files(&dir)
            .map(|files| {
                for file in files {
                    eprintln!("wrote {}", file.display());
                }
            })
            .map_err(Into::into),
        Command::Plugin { command } => {
            opstack_operator::cli::plugin::run(command, &mut std::io::stdout().lock())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
