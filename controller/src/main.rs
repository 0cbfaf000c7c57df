//! `ferrolb-controller`: assigns IPs to LoadBalancer Services, from a Kubernetes API or a store.
use clap::Parser;
use ferrolb_api::kind::Kind;
use ferrolb_cluster::Reading;
use ferrolb_cluster::component::CommonArgs;
use ferrolb_cluster::metallb_flags::WebhookMode;
use ferrolb_controller::metrics::Metrics;
use ferrolb_controller::reconcile::Controller;
use ferrolb_controller::webhook::{self, rotation};
use ferrolb_controller::writer::Writer;
use ferrolb_controller::{admin, memberlist_secret};
use std::sync::Arc;
use std::time::Duration;

/// How long to wait before another pass when writes failed or are still in flight.
const RETRY: Duration = Duration::from_secs(1);

/// How often the webhook's certificate, its Secret and the webhook configuration are checked.
const WEBHOOK_REFRESH: Duration = Duration::from_secs(600);

/// The loop wakes at least this often to tell `/healthz` it is not stuck in a pass.
const HEARTBEAT: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(
    name = "ferrolb-controller",
    version,
    // A flag given twice takes its last value, as Go's flag package (and so MetalLB) does.
    args_override_self = true,
    about = "Assigns IPs from IPAddressPools to LoadBalancer Services"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Only handle Services with this loadBalancerClass (and those with none).
    #[arg(long, env = "METALLB_LB_CLASS")]
    lb_class: Option<String>,
    /// Port of the admission webhook (HTTPS), as MetalLB's.
    #[arg(long, default_value_t = 9443)]
    webhook_port: u16,
    /// The admin gRPC API's address (pools and their usage, allocations), for
    /// `ferrolbctl status pools|allocations`.
    #[arg(long, env = "FERROLB_CONTROLLER_ADMIN_ADDR", default_value = ferrolb_proto::CONTROLLER_ADMIN_ADDR)]
    admin_addr: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.common.init_logging().map_err(anyhow::Error::msg)?;
    args.common.metallb.log_ignored(
        "controller",
        &[
            "--webhook-mode",
            "--ml-secret-name",
            "--cert-dir",
            "--cert-service-name",
            "--webhook-secret",
            "--disable-cert-rotation",
        ],
    );
    let mode = args.common.metallb.webhook_mode();
    let cluster = args
        .common
        // The speakers' statuses (one per Service and node, tens of thousands in a large
        // cluster): the controller never reads them.
        .open_cluster(
            "ferrolb-controller",
            "ferrolb-controller",
            Reading {
                ignored: &[Kind::ServiceL2Status, Kind::ServiceBGPStatus],
                ..Reading::default()
            },
        )
        .await?;
    let metrics = Arc::new(Metrics::new());
    let rendered = metrics.clone();
    let health = args.common.serve(move || rendered.render()).await?;
    let cluster = Arc::new(cluster);
    // Alone, the webhook is what readiness means; beside the controller, the controller is.
    let ready_when_serving = (mode == WebhookMode::OnlyWebhook).then(|| health.clone());
    let webhook = (mode != WebhookMode::Disabled)
        .then(|| start_webhook(cluster.clone(), &args, ready_when_serving))
        .flatten();
    if mode == WebhookMode::OnlyWebhook {
        // MetalLB's webhook Deployment, beside its controller: only the webhook runs here.
        tracing::info!(
            serving = webhook.is_some(),
            "webhook only: no allocation in this process"
        );
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        let terminated = ferrolb_cluster::terminated();
        tokio::pin!(terminated);
        loop {
            health.beat();
            tokio::select! {
                () = &mut terminated => return Ok(()),
                _ = heartbeat.tick() => {}
            }
        }
    }
    tracing::info!(namespace = %args.common.namespace, lb_class = ?args.lb_class, webhook = webhook.is_some(), "controller started");

    let mut controller = Controller::new(&args.common.namespace, args.lb_class.as_deref());
    let published = admin::Published::default();
    admin::serve(args.admin_addr, &published).await?;
    let mut snapshots = cluster.snapshots();
    let mut writer = Writer::default();
    let ml_secret = args
        .common
        .metallb
        .ml_secret_name
        .clone()
        .filter(|n| !n.is_empty());
    // Listening from the start: a signal during a pass is not lost.
    let terminated = ferrolb_cluster::terminated();
    tokio::pin!(terminated);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    'passes: loop {
        health.beat();
        let snapshot = snapshots.borrow_and_update().clone();
        // The wall clock, read in this shell: it only dates the conditions written.
        let actions = controller.reconcile(&snapshot, k8s_openapi::jiff::Timestamp::now());
        if snapshot.synced {
            metrics.record(&actions.usage, actions.config_errors.is_empty());
            published.publish(&controller);
        }
        tracing::debug!(
            objects = snapshot.objects.len(),
            writes = actions.applies.len(),
            events = actions.events.len(),
            "pass done"
        );
        let mut retry = !writer.execute(&cluster, actions, &health).await;
        if let Some(name) = &ml_secret
            && memberlist_secret::missing(&snapshot, &args.common.namespace, name)
        {
            retry |= !create_memberlist_secret(&cluster, &args.common.namespace, name).await;
        }
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

/// Starts the admission webhook in the background (Kubernetes only: a file store has no API
/// server to call it): its certificate first, then HTTPS on `--webhook-port`.
fn start_webhook(
    cluster: Arc<ferrolb_cluster::Cluster>,
    args: &Args,
    ready_when_serving: Option<ferrolb_cluster::component::Health>,
) -> Option<tokio::task::JoinHandle<()>> {
    cluster.kube()?;
    let flags = &args.common.metallb;
    let settings = rotation::Settings {
        namespace: args.common.namespace.clone(),
        service: flags
            .cert_service_name
            .clone()
            .unwrap_or_else(|| rotation::DEFAULT_SERVICE.into()),
        secret: flags
            .webhook_secret
            .clone()
            .unwrap_or_else(|| rotation::DEFAULT_SECRET.into()),
        configuration: rotation::CONFIGURATION.into(),
        external: flags.disable_cert_rotation().then(|| {
            flags
                .cert_dir
                .clone()
                .unwrap_or_else(|| rotation::DEFAULT_CERT_DIR.into())
                .into()
        }),
    };
    let port = args.webhook_port;
    let snapshots = cluster.snapshots();
    Some(tokio::spawn(async move {
        let Some(kube) = cluster.kube() else { return };
        // Listening first: the CA goes into the webhook configuration (and the API server
        // starts calling) only once there is something to answer.
        let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(port, %error, "the webhook cannot listen: stopping");
                std::process::exit(1);
            }
        };
        // The first certificate, however long the API server takes to answer.
        let bundle = loop {
            // The wall clock, read in this shell: certificates are dated by it.
            let now = k8s_openapi::jiff::Timestamp::now().as_second();
            match rotation::refresh(kube, &settings, now).await {
                Ok(bundle) => break bundle,
                Err(error) => {
                    tracing::warn!(%error, "webhook certificate not ready; trying again");
                    tokio::time::sleep(RETRY * 5).await;
                }
            }
        };
        let acceptor = match webhook::server::acceptor(&bundle) {
            Ok(acceptor) => acceptor,
            Err(error) => {
                tracing::error!(%error, "the webhook certificate is unusable: stopping");
                std::process::exit(1);
            }
        };
        let (acceptor_tx, acceptor_rx) = tokio::sync::watch::channel(acceptor);
        tracing::info!(port, "webhook serving");
        if let Some(health) = ready_when_serving {
            health.set_ready();
        }
        let namespace = settings.namespace.clone();
        tokio::spawn(webhook::server::serve(
            listener,
            acceptor_rx,
            snapshots,
            namespace,
        ));
        rotation::keep_current(kube, &settings, &acceptor_tx, bundle, WEBHOOK_REFRESH).await;
    }))
}

/// Creates the missing memberlist Secret; false when it must be tried again.
async fn create_memberlist_secret(
    cluster: &ferrolb_cluster::Cluster,
    namespace: &str,
    name: &str,
) -> bool {
    let key = match memberlist_secret::new_key() {
        Ok(key) => key,
        Err(error) => {
            tracing::error!(%error, "no random source for the memberlist key");
            return false;
        }
    };
    match cluster
        .create_memberlist_secret(namespace, name, &key)
        .await
    {
        Ok(true) => {
            tracing::info!(secret = name, "memberlist Secret created");
            true
        }
        Ok(false) => true,
        Err(error) => {
            tracing::warn!(secret = name, %error, "creating the memberlist Secret failed; trying again");
            false
        }
    }
}
