//! `ferrolb-controller`: assigns IPs to LoadBalancer Services, from a Kubernetes API or a store.
use anyhow::Context;
use clap::Parser;
use ferrolb_cluster::component::{self, Health, LogFormat};
use ferrolb_controller::metrics::Metrics;
use ferrolb_controller::reconcile::Controller;
use ferrolb_controller::writer::Writer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long to wait before another pass when writes failed or are still in flight.
const RETRY: Duration = Duration::from_secs(1);

/// The loop wakes at least this often to tell `/healthz` it is not stuck in a pass.
const HEARTBEAT: Duration = Duration::from_secs(10);

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
    /// `text` for people, `json` (one object per line) for log collectors.
    #[arg(long, env = "FERROLB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    component::init_logging(&args.log_level, args.log_format).map_err(anyhow::Error::msg)?;
    let cluster = component::open_cluster(component::Source {
        store: args.store.as_deref(),
        kubeconfig: args.kubeconfig.as_deref(),
        namespace: &args.namespace,
        component: "ferrolb-controller",
        store_component: "ferrolb-controller",
        ignored: &[],
    })
    .await?;
    let metrics = Arc::new(Metrics::new());
    let health = Health::new();
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("binding port {}", args.port))?;
    let rendered = metrics.clone();
    tokio::spawn(component::serve_http(
        listener,
        move || rendered.render(),
        health.clone(),
    ));
    tracing::info!(namespace = %args.namespace, lb_class = ?args.lb_class, "controller started");

    let mut controller = Controller::new(&args.namespace, args.lb_class.as_deref());
    let mut snapshots = cluster.snapshots();
    let mut writer = Writer::default();
    // Listening from the start: a signal during a pass is not lost.
    let terminated = ferrolb_cluster::terminated();
    tokio::pin!(terminated);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    'passes: loop {
        health.beat();
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
        if snapshot.synced {
            health.set_ready();
        }
        let retry_at = tokio::time::Instant::now() + RETRY;
        // Waits for the next pass, beating meanwhile: a quiet cluster is no stuck loop.
        loop {
            tokio::select! {
                changed = snapshots.changed() => match changed {
                    Ok(()) => break,
                    Err(_) => break 'passes,
                },
                () = tokio::time::sleep_until(retry_at), if retry => break,
                _ = heartbeat.tick() => health.beat(),
                () = &mut terminated => break 'passes,
            }
        }
    }
    tracing::info!("controller stopped");
    Ok(())
}
