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
    /// Find an OP Stack chain's L1 contracts (from its SystemConfig, a registry copy or the
    /// built-in table), check them against L1, and print what was found, how, and at which block.
    Discover(opstack_operator::cli::discover::DiscoverArgs),
    /// Render CRs offline into the Kubernetes objects the operator would apply: admission,
    /// host validation, the plugins (bundled, or yours with --plugin) and the envelope.
    Render {
        /// YAML files with an OptimismNetwork and its components (`-` for standard input).
        #[arg(short = 'f', long = "filename", required = true, value_name = "FILE")]
        files: Vec<std::path::PathBuf>,
        /// A plugin for a kind, as `<Kind>=<file.wasm>`: a renderer replaces the bundled one, a
        /// policy checks the kind's rendered objects (repeatable; policies run in the order given).
        #[arg(long, value_name = "KIND=FILE")]
        plugin: Vec<String>,
        /// An annotation key a `--plugin` renderer may put on pod templates and Services, as
        /// `<Kind>=<key>` (repeatable): what a network's
        /// `spec.plugins.<kind>.renderer.allowedAnnotations` lists.
        #[arg(long, value_name = "KIND=KEY")]
        allow_annotation: Vec<String>,
        /// Namespace of documents that name none.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
    },
    /// Run the operator: reconcile every OptimismNetwork, OpNode, OpBatcher, OpProposer and
    /// OpChallenger into their children, until SIGTERM. Uses the in-cluster config or the kubeconfig.
    Run(opstack_operator::cli::run::RunArgs),
    /// Print the operator's ServiceAccount and rights: the cluster-wide install
    /// (`deploy/rbac.yaml`), or a namespaced one with `--namespace` (a Role per namespace and
    /// nothing cluster-wide).
    Rbac(opstack_operator::cli::rbac::RbacArgs),
    /// Tools for plugin files (`.wasm` components).
    Plugin {
        #[command(subcommand)]
        command: opstack_operator::cli::plugin::PluginCommand,
    },
    /// Tools for a chain's genesis file.
    Genesis {
        #[command(subcommand)]
        command: GenesisCommand,
    },
}

#[derive(Subcommand)]
enum GenesisCommand {
    /// Write a gzip-compressed genesis out as JSON (an OpNode's first init container runs this
    /// when the network's l2Genesis key ends in .gz).
    Unpack(opstack_operator::cli::genesis::UnpackArgs),
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
        Command::Discover(args) => {
            opstack_operator::cli::discover::run(args, &mut std::io::stdout().lock())
        }
        Command::Render {
            files,
            plugin,
            allow_annotation,
            namespace,
        } => {
            let args = opstack_operator::cli::render::RenderArgs {
                files,
                plugins: plugin,
                allowed_annotations: allow_annotation,
                namespace,
            };
            opstack_operator::cli::render::run(
                &args,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            )
            .map_err(Into::into)
        }
        Command::Rbac(args) => {
            opstack_operator::cli::rbac::run(&args, &mut std::io::stdout().lock())
                .map_err(Into::into)
        }
        Command::Run(args) => opstack_operator::cli::run::run(args).map_err(Into::into),
        Command::Plugin { command } => {
            opstack_operator::cli::plugin::run(command, &mut std::io::stdout().lock())
        }
        Command::Genesis {
            command: GenesisCommand::Unpack(args),
        } => opstack_operator::cli::genesis::unpack(&args)
            .map(|bytes| eprintln!("wrote {} ({bytes} bytes)", args.to.display()))
            .map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
