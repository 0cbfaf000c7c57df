//! `ferrolb-controller`: assigns IPs to LoadBalancer Services, from a Kubernetes API or a store.
use anyhow::Context;
use clap::Parser;
use ferrolb_cluster::Cluster;
use ferrolb_controller::metrics::{self, Metrics};
use ferrolb_controller::reconcile::{Actions, Controller};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long to wait before retrying writes that failed.
const RETRY: Duration = Duration::from_secs(1);

/// How long a write may take to show in the snapshot before it is made again.
const IN_FLIGHT: Duration = Duration::from_secs(10);

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
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        let actions = controller.reconcile(&snapshot);
        metrics.record(&actions.usage, actions.config_errors.is_empty());
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
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("controller stopped");
    Ok(())
}

/// Writes what passes decide, skipping a write identical to one made moments ago that the
/// snapshot does not show yet: without this, every pass during a burst would write again
/// everything still on its way.
#[derive(Default)]
struct Writer {
    recent: HashMap<String, (serde_json::Value, Instant)>,
}

impl Writer {
    /// Returns false when a write failed and should be retried.
    async fn execute(&mut self, cluster: &Cluster, actions: Actions) -> bool {
        let now = Instant::now();
        self.recent
            .retain(|_, (_, at)| now.duration_since(*at) < IN_FLIGHT);
        let mut ok = true;
        for partial in actions.applies {
            let key = format!(
                "{}/{}/{}",
                partial["kind"], partial["metadata"]["namespace"], partial["metadata"]["name"]
            );
            if self
                .recent
                .get(&key)
                .is_some_and(|(last, _)| *last == partial)
            {
                continue;
            }
            match cluster.apply(partial.clone()).await {
                Ok(()) => {
                    self.recent.insert(key, (partial, now));
                }
                Err(error) => {
                    tracing::error!(%error, "writing status failed");
                    ok = false;
                }
            }
        }
        if let Err(error) = cluster.flush() {
            tracing::error!(%error, "writing status failed");
            ok = false;
        }
        for event in actions.events {
            if let Err(error) = cluster.publish(event).await {
                tracing::warn!(%error, "publishing an event failed");
            }
        }
        ok
    }
}
