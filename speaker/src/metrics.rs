//! The speaker's metrics, with MetalLB's names where MetalLB has one, served on `--port`
//! with the health endpoints.
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub type Labels = Vec<(String, String)>;

/// Layer 2 counters, per IP.
#[derive(Clone, Default)]
pub struct L2Metrics {
    requests_received: Family<Labels, Counter>,
    responses_sent: Family<Labels, Counter>,
    gratuitous_sent: Family<Labels, Counter>,
    conflicts: Family<Labels, Counter>,
}

fn ip_label(ip: std::net::IpAddr) -> Labels {
    vec![("ip".into(), ip.to_string())]
}

impl L2Metrics {
    pub fn request(&self, ip: std::net::IpAddr) {
        self.requests_received.get_or_create(&ip_label(ip)).inc();
    }
    pub fn response(&self, ip: std::net::IpAddr) {
        self.responses_sent.get_or_create(&ip_label(ip)).inc();
    }
    pub fn gratuitous(&self, ip: std::net::IpAddr) {
        self.gratuitous_sent.get_or_create(&ip_label(ip)).inc();
    }
    pub fn conflict(&self, ip: std::net::IpAddr) {
        self.conflicts.get_or_create(&ip_label(ip)).inc();
    }
}

/// BGP metrics by MetalLB's names, per peer (its address, as MetalLB's FRR mode labels
/// them).
#[derive(Clone, Default)]
pub struct BgpMetrics {
    session_up: Family<Labels, Gauge>,
    updates: Family<Labels, Counter>,
    announced: Family<Labels, Gauge>,
    pending: Family<Labels, Gauge>,
}

fn peer_label(peer: std::net::IpAddr) -> Labels {
    vec![("peer".into(), peer.to_string())]
}

impl BgpMetrics {
    fn register(&self, registry: &mut Registry) {
        let bgp = registry.sub_registry_with_prefix("metallb_bgp");
        bgp.register(
            "session_up",
            "BGP session state (1 is up, 0 is down)",
            self.session_up.clone(),
        );
        bgp.register(
            "updates_total",
            "Number of BGP UPDATE messages sent",
            self.updates.clone(),
        );
        bgp.register(
            "announced_prefixes_total",
            "Number of prefixes currently being advertised on the BGP session",
            self.announced.clone(),
        );
        bgp.register(
            "pending_prefixes_total",
            "Number of prefixes that should be advertised on the BGP session but are not yet",
            self.pending.clone(),
        );
    }

    pub fn session_up(&self, peer: std::net::IpAddr, up: bool) {
        self.session_up
            .get_or_create(&peer_label(peer))
            .set(i64::from(up));
    }

    pub fn sent(&self, peer: std::net::IpAddr, messages: usize) {
        self.updates
            .get_or_create(&peer_label(peer))
            .inc_by(messages as u64);
    }

    /// A peer no longer configured: its series go.
    pub fn forget(&self, peer: std::net::IpAddr) {
        let label = peer_label(peer);
        self.session_up.remove(&label);
        self.updates.remove(&label);
        self.announced.remove(&label);
        self.pending.remove(&label);
    }

    /// What the peer holds from us, and what it should but does not yet.
    pub fn prefixes(&self, peer: std::net::IpAddr, advertised: usize, wanted: usize) {
        let label = peer_label(peer);
        self.announced.get_or_create(&label).set(advertised as i64);
        self.pending
            .get_or_create(&label)
            .set(wanted.saturating_sub(advertised) as i64);
    }
}

pub struct Metrics {
    registry: Registry,
    pub l2: L2Metrics,
    pub bgp: BgpMetrics,
    pub gossip: ferrolb_gossip::driver::GossipMetrics,
    /// 1 for each Service this node announces: {node, protocol, service}.
    announced: Family<Labels, Gauge>,
    /// Claims of an owned IP by another speaker: gossip between the two is broken.
    split_brains: Family<Labels, Counter>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let l2 = L2Metrics::default();
        let bgp = BgpMetrics::default();
        bgp.register(&mut registry);
        let gossip = ferrolb_gossip::driver::GossipMetrics::default();
        let announced = Family::<Labels, Gauge>::default();
        let split_brains = Family::<Labels, Counter>::default();
        {
            let layer2 = registry.sub_registry_with_prefix("metallb_layer2");
            layer2.register(
                "requests_received",
                "Number of layer2 requests received for owned IPs",
                l2.requests_received.clone(),
            );
            layer2.register(
                "responses_sent",
                "Number of layer2 responses sent for owned IPs",
                l2.responses_sent.clone(),
            );
            layer2.register(
                "gratuitous_sent",
                "Number of gratuitous layer2 packets sent for owned IPs",
                l2.gratuitous_sent.clone(),
            );
        }
        registry
            .sub_registry_with_prefix("ferrolb_layer2")
            .register(
                "conflicts",
                "Announcements of an owned IP seen from another MAC address",
                l2.conflicts.clone(),
            );
        registry
            .sub_registry_with_prefix("ferrolb_layer2")
            .register(
                "split_brains",
                "Owned IPs seen announced by another speaker, which gossip cannot reach",
                split_brains.clone(),
            );
        registry
            .sub_registry_with_prefix("metallb_speaker")
            .register(
                "announced",
                "Services being announced from this node",
                announced.clone(),
            );
        gossip.register(&mut registry);
        Metrics {
            registry,
            l2,
            bgp,
            gossip,
            announced,
            split_brains,
        }
    }

    /// Replaces the set of announced Services (`namespace/name`, by protocol name).
    pub fn set_announced<'a>(
        &self,
        node: &str,
        services: impl IntoIterator<Item = (&'static str, &'a str)>,
    ) {
        self.announced.clear();
        for (protocol, service) in services {
            self.announced
                .get_or_create(&vec![
                    ("node".into(), node.into()),
                    ("protocol".into(), protocol.into()),
                    ("service".into(), service.into()),
                ])
                .set(1);
        }
    }

    pub fn split_brain(&self, ip: std::net::IpAddr) {
        self.split_brains.get_or_create(&ip_label(ip)).inc();
    }

    pub fn render(&self) -> String {
        ferrolb_cluster::component::encode_metrics(&self.registry)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
