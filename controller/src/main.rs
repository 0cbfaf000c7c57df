//! `ferrolb-controller`: assigns IPs to LoadBalancer Services, from a Kubernetes API or a store.
use anyhow::Context;
use clap::Parser;
use ferrolb_cluster::Cluster;
use ferrolb_controller::metrics::{self, Metrics};
use ferrolb_controller::reconcile::Controller;
use ferrolb_controller::writer::Writer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long to wait before another pass when writes failed or are still in flight.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Parser)]
#[command(
    name = "ferrolb-controller",
    version,
    about = "Assigns IPs from IPAddressPools to LoadBalancer Services"
)]
struct Args {
    /// The kubeconfig to use (default: in-cluster, then $KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "KUBECONFIG", conflicts_with = "store")]
    kubeconfig: Option<PathBuf>,
    /// Run on a directory of YAML instead of a Kubernetes API.
    #[arg(long, env = "FERROLB_STORE")]
    store: Option<PathBuf>,
    /// The namespace of MetalLB's objects.
    #[arg(long, env = "METALLB_NAMESPACE", default_value = ferrolb_api::DEFAULT_NAMESPACE)]
    namespace: String,
    /// Only handle Services with this loadBalancerClass (and those with none).
    #[arg(long, env = "METALLB_LB_CLASS")]
    lb_class: Option<String>,
    /// Port for /metrics, /healthz and /readyz.
    #[arg(long, env = "METALLB_PORT", default_value_t = 7472)]
    port: u16,
    /// Address to serve metrics on.
    #[arg(long, env = "METALLB_HOST", default_value = "0.0.0.0")]
    host: String,
    #[arg(long, env = "METALLB_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log_level).context("--log-level")?,
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        // A log that cannot be written (a full disk) must not stop the component: by
        // default the subscriber reports it on stderr, which panics when that fails too.
        .log_internal_errors(false)
        .init();
    let cluster = match &args.store {
        Some(dir) => Cluster::Store(ferrolb_cluster::store::FileStore::open(
            dir,
            &args.namespace,
            "ferrolb-controller",
        )?),
        None => Cluster::Kube(Box::new(
            ferrolb_cluster::kubernetes::KubeCluster::connect(
                args.kubeconfig.as_deref(),
                &args.namespace,
                "ferrolb-controller",
            )
            .await?,
        )),
    };
    let metrics = Arc::new(Metrics::new());
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("binding port {}", args.port))?;
    tokio::spawn(metrics::serve(listener, metrics.clone()));
    tracing::info!(namespace = %args.namespace, lb_class = ?args.lb_class, "controller started");

    let mut controller = Controller::new(&args.namespace, args.lb_class.as_deref());
    let mut snapshots = cluster.snapshots();
    let mut writer = Writer::default();
    // Listening from the start: a signal during a pass is not lost.
    let terminated = ferrolb_cluster::terminated();
    tokio::pin!(terminated);
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        let actions = controller.reconcile(&snapshot);
        if snapshot.synced {
            metrics.record(&actions.usage, actions.config_errors.is_empty());
        }
        tracing::debug!(
            objects = snapshot.objects.len(),
            writes = actions.applies.len(),
            events = actions.events.len(),
            "pass done"
        );
        let retry = !writer.execute(&cluster, actions).await;
        tokio::select! {
            changed = snapshots.changed() => if changed.is_err() { break },
            () = tokio::time::sleep(RETRY), if retry => {}
            () = &mut terminated => break,
        }
    }
    tracing::info!("controller stopped");
    Ok(())
}
