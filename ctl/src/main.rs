//! `ferrolbctl`: FerroLB's command-line tool.
mod bgp;
mod doctor;
mod get;
mod helm_values;
mod migrate;
mod status;
mod table;
mod validate;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ferrolbctl",
    version,
    about = "Inspect and check FerroLB configurations"
)]
struct Cli {
    /// Read a file store directory instead of a Kubernetes API.
    #[arg(long, global = true, conflicts_with = "kubeconfig")]
    store: Option<PathBuf>,
    /// The kubeconfig to use (default: in-cluster, then $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// The namespace MetalLB's objects live in.
    #[arg(long, global = true, default_value = ferrolb_api::DEFAULT_NAMESPACE)]
    namespace: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lists Services with their IPs, pools, or layer 2 and BGP announcement status.
    Get {
        what: get::What,
        #[arg(short, long, value_enum)]
        output: Option<Output>,
    },
    /// Checks files or store directories with the admission webhook's rules; exit 1 with one
    /// line per problem (file, object, field, reason).
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Turns a legacy MetalLB ConfigMap into metallb.io objects, printed as YAML.
    ConvertConfigmap { file: PathBuf },
    /// Finds what often goes wrong (kube-proxy without strictARP, pools nobody announces,
    /// every node excluded, the memberlist Secret missing, MetalLB webhook leftovers, Services
    /// without an IP and why) and says how to fix each; exit 1 when it finds a problem.
    Doctor(doctor::Options),
    /// What a speaker is doing: its gossip members, layer 2 announcements, BGP and BFD
    /// sessions, from its admin gRPC API (run it on the speaker's node).
    Status(status::Status),
    /// BGP tools.
    #[command(subcommand)]
    Bgp(BgpCommand),
    /// Moving from MetalLB.
    #[command(subcommand)]
    Migrate(MigrateCommand),
}

#[derive(Subcommand)]
enum MigrateCommand {
    /// Lists what would break a switch from MetalLB, and how to avoid each; exit 1 when
    /// something is found. Reads the cluster (--kubeconfig, or in-cluster), or DIR: objects
    /// dumped with `kubectl get -o yaml` (Deployments, DaemonSets, Secrets,
    /// ValidatingWebhookConfigurations, CRDs).
    Check { dir: Option<PathBuf> },
}

#[derive(Subcommand)]
enum BgpCommand {
    /// Opens one session and announces routes until SIGTERM or SIGINT; prints a line when
    /// established and one when End-of-RIB is sent; exit 1 when the peer refuses.
    Announce(bgp::Announce),
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Wide,
    Json,
    Yaml,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { paths } => {
            let report = validate::validate(&paths, &cli.namespace);
            for line in &report.skipped {
                println!("skipped: {line}");
            }
            for line in &report.problems {
                println!("{line}");
            }
            if report.problems.is_empty() {
                println!("valid: {} objects", report.objects);
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(1))
            }
        }
        Command::ConvertConfigmap { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let converted = ferrolb_api::legacy::convert_configmap_yaml(&text)
                .with_context(|| format!("converting {}", file.display()))?;
            print!("{}", converted.to_yaml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bgp(BgpCommand::Announce(announce)) => announce.run().await,
        Command::Status(status) => status.run().await,
        Command::Doctor(options) => {
            doctor::run(
                cli.store.as_deref(),
                cli.kubeconfig.as_deref(),
                &cli.namespace,
                options,
            )
            .await
        }
        Command::Migrate(MigrateCommand::Check { dir }) => {
            let objects = match dir {
                Some(dir) => {
                    let mut objects = Vec::new();
                    let mut files: Vec<PathBuf> = if dir.is_dir() {
                        std::fs::read_dir(&dir)
                            .with_context(|| format!("reading {}", dir.display()))?
                            .filter_map(|e| e.ok().map(|e| e.path()))
                            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                            .collect()
                    } else {
                        vec![dir.clone()]
                    };
                    files.sort();
                    for file in files {
                        let text = std::fs::read_to_string(&file)
                            .with_context(|| format!("reading {}", file.display()))?;
                        objects.extend(
                            migrate::objects_of(&text)
                                .map_err(anyhow::Error::msg)
                                .with_context(|| format!("reading {}", file.display()))?,
                        );
                    }
                    objects
                }
                None => migrate::fetch(cli.kubeconfig.as_deref(), &cli.namespace).await?,
            };
            let findings = migrate::check(&objects, &cli.namespace);
            for finding in &findings {
                println!("problem: {}\n    fix: {}", finding.what, finding.fix);
            }
            if findings.is_empty() {
                println!(
                    "ok: nothing found that would break a switch ({} objects read)",
                    objects.len()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(1))
            }
        }
        Command::Get { what, output } => {
            let snapshot = get::snapshot(
                cli.store.as_deref(),
                cli.kubeconfig.as_deref(),
                &cli.namespace,
            )
            .await?;
            print!("{}", get::render(&snapshot, what, output)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
