//! `ferrolb-speaker`: makes the Service IPs this node owns reachable (layer 2: ARP and NDP),
//! agreeing with the other speakers on who is alive through memberlist-compatible gossip.
use anyhow::Context;
use clap::Parser;
use ferrolb_api::kind::Kind;
use ferrolb_api::objects::Detail;
use ferrolb_cluster::component::CommonArgs;
use ferrolb_cluster::{Cluster, Reading};
use ferrolb_gossip::core::Config as GossipCore;
use ferrolb_gossip::driver::{Gossip, GossipConfig};
use ferrolb_speaker::layer2::interfaces;
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::speaker::{Options, Speaker};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "ferrolb-speaker",
    version,
    // A flag given twice takes its last value, as Go's flag package (and so MetalLB) does.
    args_override_self = true,
    about = "Announces the Service IPs this node owns (layer 2: ARP and NDP)"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// This node's name, as in its Node object.
    #[arg(long, env = "METALLB_NODE_NAME")]
    node_name: String,
    /// Only announce Services with this loadBalancerClass (without it: those with none).
    #[arg(long, env = "METALLB_LB_CLASS")]
    lb_class: Option<String>,
    /// The address gossip binds to and other speakers reach (default: this Node's InternalIP).
    #[arg(long, env = "METALLB_ML_BIND_ADDR")]
    ml_bindaddr: Option<IpAddr>,
    #[arg(long, env = "METALLB_ML_BIND_PORT", default_value_t = 7946)]
    ml_bindport: u16,
    /// The label selector of the speaker pods whose IPs gossip joins (Kubernetes; the file
    /// store uses the Nodes' InternalIPs). The default also finds MetalLB's speakers, for a
    /// cluster migrating node by node.
    #[arg(long, env = "METALLB_ML_LABELS", default_value = "component=speaker")]
    ml_labels: String,
    /// A directory with a `secretkey` file: gossip is encrypted with a key derived from it,
    /// as MetalLB derives it.
    #[arg(long, env = "METALLB_ML_SECRET_KEY_PATH")]
    ml_secret_key_path: Option<PathBuf>,
    /// The admin gRPC API's address (members, announcements, BGP and BFD sessions), for
    /// `ferrolbctl status`.
    #[arg(long, env = "FERROLB_SPEAKER_ADMIN_ADDR", default_value = ferrolb_proto::SPEAKER_ADMIN_ADDR)]
    admin_addr: SocketAddr,
    /// Announce owned IPs again this often (gratuitous ARP / unsolicited NA), e.g. `30s`;
    /// by default only when an IP is taken over (then every 1.1 s for 5 s).
    #[arg(long, env = "FERROLB_L2_REFRESH", value_parser = parse_duration)]
    l2_refresh: Option<Duration>,
    /// On SIGTERM (a drain), first announce every BGP route again with the
    /// GRACEFUL_SHUTDOWN community (RFC 8326) and wait this long, e.g. `5s`, so routers
    /// move traffic away before the routes are withdrawn; by default they are withdrawn at
    /// once. Sessions with graceful restart are left as they are.
    #[arg(long, env = "FERROLB_BGP_GRACEFUL_SHUTDOWN", value_parser = parse_duration)]
    bgp_graceful_shutdown: Option<Duration>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    ferrolb_api::config::parse_go_duration(text)
}

fn main() -> anyhow::Result<()> {
    // Before any thread starts: each would otherwise get its own allocator arena.
    ferrolb_speaker::memory::one_arena();
    // Two workers whatever the node's size: the speaker's work is a few sockets and timers,
    // and each worker thread costs memory (its stack). Reading the store, the one long
    // piece of work, runs on tokio's blocking pool, never on the workers.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    args.common.init_logging().map_err(anyhow::Error::msg)?;
    args.common
        .metallb
        .log_ignored("speaker", &["--ignore-exclude-lb", "--pod-name"]);
    let store_component = format!("ferrolb-speaker-{}", args.node_name);
    let reading = Reading {
        // Status objects are written by the speakers, never read by them.
        ignored: &[
            Kind::ServiceL2Status,
            Kind::ServiceBGPStatus,
            Kind::ConfigurationState,
        ],
        // Every Service and EndpointSlice of the cluster, for the speaker's life: slim.
        detail: Detail::Speaker,
    };
    let cluster = args
        .common
        .open_cluster("ferrolb-speaker", &store_component, reading)
        .await?;
    let pod = match &args.common.metallb.pod_name {
        Some(name) => match cluster.pod_reference(&args.common.namespace, name).await {
            Ok(reference) => reference,
            Err(error) => {
                tracing::warn!(pod = %name, %error, "reading this speaker's pod failed: its statuses will not name it as owner, and outlive it");
                None
            }
        },
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let rendered = metrics.clone();
    let health = args.common.serve(move || rendered.render()).await?;

    let bind_ip = match args.ml_bindaddr {
        Some(ip) => ip,
        None => own_address(&cluster, &args.node_name).await?,
    };
    let keyring = match &args.ml_secret_key_path {
        Some(dir) => Some(ferrolb_speaker::gossip_key::load_keyring(dir)?),
        None => {
            tracing::warn!(
                "gossip is NOT encrypted: anyone who can send to port {} can forge membership and move IPs; set --ml-secret-key-path (METALLB_ML_SECRET_KEY_PATH) to the memberlist Secret",
                args.ml_bindport
            );
            None
        }
    };
    let bind = SocketAddr::new(bind_ip, args.ml_bindport);
    let gossip = Gossip::start(GossipConfig {
        core: GossipCore::lan(&args.node_name, bind),
        bind,
        keyring,
        seeds: Vec::new(),
        metrics: metrics.gossip.clone(),
        stream_budget: ferrolb_gossip::driver::DEFAULT_STREAM_BUDGET,
    })
    .await
    .with_context(|| format!("binding gossip to {bind}"))?;
    let links = interfaces::watch_links()
        .await
        .context("reading the network interfaces")?;
    tracing::info!(node = %args.node_name, %bind, "speaker started");

    let options = Options {
        node: args.node_name,
        namespace: args.common.namespace,
        lb_class: args.lb_class,
        ml_port: args.ml_bindport,
        ml_labels: args.ml_labels,
        bgp_graceful_shutdown: args.bgp_graceful_shutdown,
        ignore_exclude_lb: args.common.metallb.ignore_exclude_lb(),
        pod,
    };
    let speaker = Speaker::new(
        options,
        cluster,
        gossip,
        metrics,
        health,
        links,
        args.l2_refresh,
    );
    ferrolb_speaker::admin::server::serve(args.admin_addr, speaker.admin()).await?;
    speaker.run(ferrolb_cluster::terminated()).await?;
    Ok(())
}

/// This node's InternalIP, from its Node object once the cluster is read.
async fn own_address(cluster: &Cluster, node: &str) -> anyhow::Result<IpAddr> {
    let mut snapshots = cluster.snapshots();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        if snapshot.synced
            && let Some(ip) = ferrolb_speaker::membership::node_addresses(&snapshot).get(node)
        {
            return Ok(*ip);
        }
        tokio::select! {
            changed = snapshots.changed() => changed.context("the cluster connection ended")?,
            () = tokio::time::sleep_until(deadline) => anyhow::bail!(
                "node {node} has no Node object with an InternalIP: pass --ml-bindaddr"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The speaker's arguments in MetalLB's DaemonSet (0.14 to today), and the environment
    /// it sets: FerroLB starts on them unchanged.
    #[test]
    fn metallbs_speaker_flags_are_accepted() {
        let args = Args::try_parse_from([
            "speaker",
            "--port=7472",
            "--log-level=info",
            "--node-name=n1",
            "--host=10.0.0.1",
            "--ml-bindaddr=10.0.0.1",
            "--ml-bindport=7946",
            "--ml-labels=app.kubernetes.io/name=metallb,app.kubernetes.io/component=speaker",
            "--ml-secret-key-path=/etc/ml_secret_key",
            "--ml-wan-config=false",
            "--enable-pprof",
            "--pod-name=speaker-x1",
            "--bgp-debounce-timeout=3s",
            "--frrk8s-namespace=frr-k8s-system",
            "--ignore-exclude-lb",
            "--tls-min-version=VersionTLS13",
            "--metrics-cert-dir=/certs",
            "--health-probe-port=8081",
            "--lb-class=example.com/lb",
            "--log-level=debug",
        ])
        .expect("MetalLB's speaker flags parse");
        assert!(args.common.metallb.ignore_exclude_lb());
        assert_eq!(
            args.common.log_level, "debug",
            "the last value wins, as in Go"
        );
        assert_eq!(args.ml_bindport, 7946);
        assert_eq!(args.lb_class.as_deref(), Some("example.com/lb"));
    }
}
