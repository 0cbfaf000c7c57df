//! `ferrolb-controller`: assigns IPs to LoadBalancer Services, from a Kubernetes API or a store.
use clap::Parser;
use ferrolb_api::kind::Kind;
use ferrolb_cluster::component::CommonArgs;
use ferrolb_cluster::metallb_flags::WebhookMode;
use ferrolb_controller::memberlist_secret;
use ferrolb_controller::metrics::Metrics;
use ferrolb_controller::reconcile::Controller;
use ferrolb_controller::writer::Writer;
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.common.init_logging().map_err(anyhow::Error::msg)?;
    args.common
        .metallb
        .log_ignored("controller", &["--webhook-mode", "--ml-secret-name"]);
    if args.common.metallb.webhook_mode() == WebhookMode::OnlyWebhook {
        // MetalLB's webhook Deployment runs beside its controller: allocating here too would
        // make two controllers. FerroLB serves no webhook, so this process only stays alive.
        tracing::warn!(
            "--webhook-mode=onlywebhook: FerroLB serves no webhook, so this process does nothing; the controller runs in the Deployment without that flag"
        );
        let health = args.common.serve(String::new).await?;
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
    let cluster = args
        .common
        // The speakers' statuses (one per Service and node, tens of thousands in a large
        // cluster): the controller never reads them.
        .open_cluster(
            "ferrolb-controller",
            "ferrolb-controller",
            &[Kind::ServiceL2Status, Kind::ServiceBGPStatus],
        )
        .await?;
    let metrics = Arc::new(Metrics::new());
    let rendered = metrics.clone();
    let health = args.common.serve(move || rendered.render()).await?;
    tracing::info!(namespace = %args.common.namespace, lb_class = ?args.lb_class, "controller started");

    let mut controller = Controller::new(&args.common.namespace, args.lb_class.as_deref());
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
