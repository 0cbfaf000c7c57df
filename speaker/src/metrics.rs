//! The speaker's metrics, with MetalLB's names where MetalLB has one, served on `--port`
//! with the health endpoints.
use ferrolb_bgp::session::{Counters, MessageCounts};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

pub type Labels = Vec<(String, String)>;

/// `metallb_speaker_announced`'s labels, as shared strings: a node may announce 10,000
/// Services, and a vector of eight strings per series took 5 MB there.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct AnnouncedLabels {
    ip: Arc<str>,
    node: Arc<str>,
    protocol: Arc<str>,
    service: Arc<str>,
}

/// A counter under its exact name, as MetalLB's Go client exposes it: the OpenMetrics
/// `Counter` would add `_total` (`metallb_layer2_requests_received_total`), and dashboards
/// look for MetalLB's names. Typed `unknown`, which Prometheus takes as untyped.
#[derive(Clone, Debug, Default)]
pub struct ExactCounter(Counter);

impl ExactCounter {
    pub fn inc(&self) {
        self.0.inc();
    }
    pub fn inc_by(&self, n: u64) {
        self.0.inc_by(n);
    }
}

impl prometheus_client::metrics::TypedMetric for ExactCounter {
    const TYPE: prometheus_client::metrics::MetricType =
        prometheus_client::metrics::MetricType::Unknown;
}

impl prometheus_client::encoding::EncodeMetric for ExactCounter {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.0.get())
    }
    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Unknown
    }
}

/// Layer 2 counters, per IP.
#[derive(Clone, Default)]
pub struct L2Metrics {
    requests_received: Family<Labels, ExactCounter>,
    responses_sent: Family<Labels, ExactCounter>,
    gratuitous_sent: Family<Labels, ExactCounter>,
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
    /// MetalLB's FRR mode's message counters.
    opens_sent: Family<Labels, ExactCounter>,
    opens_received: Family<Labels, ExactCounter>,
    notifications_sent: Family<Labels, ExactCounter>,
    updates_received: Family<Labels, ExactCounter>,
    keepalives_sent: Family<Labels, ExactCounter>,
    keepalives_received: Family<Labels, ExactCounter>,
    route_refresh_sent: Family<Labels, ExactCounter>,
    total_sent: Family<Labels, ExactCounter>,
    total_received: Family<Labels, ExactCounter>,
}

/// The peer as MetalLB labels it: `address:port`.
fn peer_label(peer: std::net::SocketAddr) -> Labels {
    vec![("peer".into(), peer.to_string())]
}

fn total(counts: &MessageCounts) -> u64 {
    counts.opens
        + counts.updates
        + counts.notifications
        + counts.keepalives
        + counts.route_refreshes
}

impl BgpMetrics {
    fn register(&self, registry: &mut Registry) {
        let bgp = registry.sub_registry_with_prefix("metallb_bgp");
        bgp.register(
            "session_up",
            "BGP session state (1 is up, 0 is down)",
            self.session_up.clone(),
        );
        // A counter: `_total` is added.
        bgp.register(
            "updates",
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
        let exact = [
            (
                "opens_sent",
                "Number of BGP open messages sent",
                &self.opens_sent,
            ),
            (
                "opens_received",
                "Number of BGP open messages received",
                &self.opens_received,
            ),
            (
                "notifications_sent",
                "Number of BGP notification messages sent",
                &self.notifications_sent,
            ),
            (
                "updates_total_received",
                "Number of BGP UPDATE messages received",
                &self.updates_received,
            ),
            (
                "keepalives_sent",
                "Number of BGP keepalive messages sent",
                &self.keepalives_sent,
            ),
            (
                "keepalives_received",
                "Number of BGP keepalive messages received",
                &self.keepalives_received,
            ),
            (
                "route_refresh_sent",
                "Number of BGP route refresh messages sent",
                &self.route_refresh_sent,
            ),
            (
                "total_sent",
                "Number of BGP messages sent",
                &self.total_sent,
            ),
            (
                "total_received",
                "Number of BGP messages received",
                &self.total_received,
            ),
        ];
        for (name, help, family) in exact {
            bgp.register(name, help, family.clone());
        }
    }

    pub fn session_up(&self, peer: std::net::SocketAddr, up: bool) {
        self.session_up
            .get_or_create(&peer_label(peer))
            .set(i64::from(up));
    }

    /// Adds what a session exchanged since `before` (both of the same session).
    pub fn exchanged(&self, peer: std::net::SocketAddr, before: &Counters, now: &Counters) {
        let label = peer_label(peer);
        let add = |family: &Family<Labels, ExactCounter>, then: u64, now: u64| {
            family
                .get_or_create(&label)
                .inc_by(now.saturating_sub(then));
        };
        let (sent, received) = ((&before.sent, &now.sent), (&before.received, &now.received));
        self.updates
            .get_or_create(&label)
            .inc_by(sent.1.updates.saturating_sub(sent.0.updates));
        add(&self.opens_sent, sent.0.opens, sent.1.opens);
        add(&self.opens_received, received.0.opens, received.1.opens);
        add(
            &self.notifications_sent,
            sent.0.notifications,
            sent.1.notifications,
        );
        add(
            &self.updates_received,
            received.0.updates,
            received.1.updates,
        );
        add(&self.keepalives_sent, sent.0.keepalives, sent.1.keepalives);
        add(
            &self.keepalives_received,
            received.0.keepalives,
            received.1.keepalives,
        );
        add(
            &self.route_refresh_sent,
            sent.0.route_refreshes,
            sent.1.route_refreshes,
        );
        add(&self.total_sent, total(sent.0), total(sent.1));
        add(&self.total_received, total(received.0), total(received.1));
    }

    /// A peer no longer configured: its series go.
    pub fn forget(&self, peer: std::net::SocketAddr) {
        let label = peer_label(peer);
        self.session_up.remove(&label);
        self.updates.remove(&label);
        self.announced.remove(&label);
        self.pending.remove(&label);
        for family in [
            &self.opens_sent,
            &self.opens_received,
            &self.notifications_sent,
            &self.updates_received,
            &self.keepalives_sent,
            &self.keepalives_received,
            &self.route_refresh_sent,
            &self.total_sent,
            &self.total_received,
        ] {
            family.remove(&label);
        }
    }

    /// What the peer holds from us, and what it should but does not yet.
    pub fn prefixes(&self, peer: std::net::SocketAddr, advertised: usize, wanted: usize) {
        let label = peer_label(peer);
        self.announced.get_or_create(&label).set(advertised as i64);
        self.pending
            .get_or_create(&label)
            .set(wanted.saturating_sub(advertised) as i64);
    }
}

/// BFD metrics by MetalLB's names, per peer (its address, as MetalLB's FRR mode labels
/// them), and how late this node's BFD packets leave.
#[derive(Clone, Default)]
pub struct BfdMetrics {
    session_up: Family<Labels, Gauge>,
    control_in: Family<Labels, ExactCounter>,
    control_out: Family<Labels, ExactCounter>,
    echo_in: Family<Labels, ExactCounter>,
    echo_out: Family<Labels, ExactCounter>,
    up_events: Family<Labels, ExactCounter>,
    down_events: Family<Labels, ExactCounter>,
    tx_lateness: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl BfdMetrics {
    fn register(&self, registry: &mut Registry) {
        let bfd = registry.sub_registry_with_prefix("metallb_bfd");
        bfd.register(
            "session_up",
            "BFD session state (1 is up, 0 is down)",
            self.session_up.clone(),
        );
        for (name, help, family) in [
            (
                "control_packet_input",
                "Number of received BFD control packets",
                &self.control_in,
            ),
            (
                "control_packet_output",
                "Number of sent BFD control packets",
                &self.control_out,
            ),
            (
                "echo_packet_input",
                "Number of received BFD echo packets",
                &self.echo_in,
            ),
            (
                "echo_packet_output",
                "Number of sent BFD echo packets",
                &self.echo_out,
            ),
            (
                "session_up_events",
                "Number of BFD session up events",
                &self.up_events,
            ),
            (
                "session_down_events",
                "Number of BFD session down events",
                &self.down_events,
            ),
        ] {
            bfd.register(name, help, family.clone());
        }
        registry.sub_registry_with_prefix("ferrolb_bfd").register(
            "tx_lateness_seconds",
            "How late the latest periodic BFD packets left, at worst, over the last second",
            self.tx_lateness.clone(),
        );
    }

    /// Brings the series to the driver's `now` from its `before` (a session added again
    /// starts its counts from zero).
    pub fn update(&self, before: &ferrolb_bfd::driver::Status, now: &ferrolb_bfd::driver::Status) {
        let label = |s: &ferrolb_bfd::driver::SessionStatus| {
            vec![("peer".to_string(), s.key.peer.to_string())]
        };
        for session in &now.sessions {
            let label = label(session);
            let previous = before
                .sessions
                .iter()
                .find(|p| p.key == session.key && p.local_discr == session.local_discr)
                .map(|p| p.counters)
                .unwrap_or_default();
            let (then, counts) = (previous, session.counters);
            self.session_up
                .get_or_create(&label)
                .set(i64::from(session.state == ferrolb_bfd::State::Up));
            for (family, then, now) in [
                (&self.control_in, then.control_in, counts.control_in),
                (&self.control_out, then.control_out, counts.control_out),
                (&self.up_events, then.up_events, counts.up_events),
                (&self.down_events, then.down_events, counts.down_events),
                // Echo mode is not run (the profile says so when it asks for it).
                (&self.echo_in, 0, 0),
                (&self.echo_out, 0, 0),
            ] {
                family
                    .get_or_create(&label)
                    .inc_by(now.saturating_sub(then));
            }
            self.tx_lateness
                .get_or_create(&label)
                .set(session.tx_lateness.as_secs_f64());
        }
        for gone in before
            .sessions
            .iter()
            .filter(|b| !now.sessions.iter().any(|s| s.key.peer == b.key.peer))
        {
            let label = label(gone);
            self.session_up.remove(&label);
            self.tx_lateness.remove(&label);
            for family in [
                &self.control_in,
                &self.control_out,
                &self.echo_in,
                &self.echo_out,
                &self.up_events,
                &self.down_events,
            ] {
                family.remove(&label);
            }
        }
    }
}

pub struct Metrics {
    registry: Registry,
    pub l2: L2Metrics,
    pub bgp: BgpMetrics,
    pub bfd: BfdMetrics,
    pub gossip: ferrolb_gossip::driver::GossipMetrics,
    /// `metallb_k8s_client_*` and `process_*`.
    pub config: ferrolb_cluster::metrics::ConfigMetrics,
    /// 1 for each Service IP this node announces: {ip, node, protocol, service}.
    announced: Family<AnnouncedLabels, Gauge>,
    /// A hash of the set last published: a pass that changes nothing rebuilds nothing.
    announced_hash: std::sync::atomic::AtomicU64,
    /// Claims of an owned IP by another speaker: gossip between the two is broken.
    split_brains: Family<Labels, Counter>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let l2 = L2Metrics::default();
        let bgp = BgpMetrics::default();
        bgp.register(&mut registry);
        let bfd = BfdMetrics::default();
        bfd.register(&mut registry);
        let gossip = ferrolb_gossip::driver::GossipMetrics::default();
        let announced = Family::<AnnouncedLabels, Gauge>::default();
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
        let config = ferrolb_cluster::metrics::ConfigMetrics::default();
        config.register(&mut registry);
        Metrics {
            registry,
            config,
            l2,
            bgp,
            bfd,
            gossip,
            announced,
            announced_hash: std::sync::atomic::AtomicU64::new(0),
            split_brains,
        }
    }

    /// Replaces the set of announced Service IPs: (protocol name, `namespace/name`, IP).
    pub fn set_announced<'a>(
        &self,
        node: &str,
        announced: impl IntoIterator<Item = (&'static str, &'a str, &'a str)>,
    ) {
        use std::hash::{Hash, Hasher};
        use std::sync::atomic::Ordering;
        let announced: Vec<(&'static str, &str, &str)> = announced.into_iter().collect();
        let mut hasher = std::hash::DefaultHasher::new();
        (node, &announced).hash(&mut hasher);
        let hash = hasher.finish();
        if self.announced_hash.swap(hash, Ordering::Relaxed) == hash {
            return;
        }
        self.announced.clear();
        use ferrolb_api::shared_names::shared_name;
        let node = shared_name(node);
        for (protocol, service, ip) in announced {
            self.announced
                .get_or_create(&AnnouncedLabels {
                    ip: ip.into(),
                    node: node.clone(),
                    protocol: shared_name(protocol),
                    service: service.into(),
                })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_metallbs() {
        let metrics = Metrics::new();
        let peer: std::net::SocketAddr = "192.0.2.1:179".parse().unwrap();
        metrics.bgp.session_up(peer, true);
        let mut counters = Counters::default();
        counters.sent.updates = 2;
        counters.sent.opens = 1;
        counters.received.keepalives = 4;
        metrics.bgp.exchanged(peer, &Counters::default(), &counters);
        let before = counters;
        counters.sent.updates = 3;
        metrics.bgp.exchanged(peer, &before, &counters);
        metrics.bgp.prefixes(peer, 2, 5);
        metrics.l2.request("203.0.113.1".parse().unwrap());
        metrics.l2.response("203.0.113.1".parse().unwrap());
        metrics.l2.gratuitous("203.0.113.1".parse().unwrap());
        metrics.set_announced("n1", [("layer2", "demo/web", "203.0.113.1")]);
        let text = metrics.render();
        for line in [
            "metallb_bgp_session_up{peer=\"192.0.2.1:179\"} 1",
            "metallb_bgp_updates_total{peer=\"192.0.2.1:179\"} 3",
            "metallb_bgp_announced_prefixes_total{peer=\"192.0.2.1:179\"} 2",
            "metallb_bgp_pending_prefixes_total{peer=\"192.0.2.1:179\"} 3",
            "metallb_bgp_opens_sent{peer=\"192.0.2.1:179\"} 1",
            "metallb_bgp_keepalives_received{peer=\"192.0.2.1:179\"} 4",
            "metallb_bgp_total_sent{peer=\"192.0.2.1:179\"} 4",
            "metallb_bgp_total_received{peer=\"192.0.2.1:179\"} 4",
            "metallb_bgp_updates_total_received{peer=\"192.0.2.1:179\"} 0",
            "metallb_layer2_requests_received{ip=\"203.0.113.1\"} 1",
            "metallb_layer2_responses_sent{ip=\"203.0.113.1\"} 1",
            "metallb_layer2_gratuitous_sent{ip=\"203.0.113.1\"} 1",
            "metallb_speaker_announced{ip=\"203.0.113.1\",node=\"n1\",protocol=\"layer2\",service=\"demo/web\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    /// The announced set is replaced as a whole, and a pass that repeats it leaves it be.
    #[test]
    fn announced_series_follow_the_set() {
        let metrics = Metrics::new();
        let series = |metrics: &Metrics| -> Vec<String> {
            let text = metrics.render();
            text.lines()
                .filter(|l| l.starts_with("metallb_speaker_announced{"))
                .map(str::to_string)
                .collect()
        };
        let both = [
            ("layer2", "demo/web", "203.0.113.1"),
            ("bgp", "demo/db", "203.0.113.2"),
        ];
        metrics.set_announced("n1", both);
        assert_eq!(series(&metrics).len(), 2);
        metrics.set_announced("n1", both);
        assert_eq!(series(&metrics).len(), 2);
        metrics.set_announced("n1", [("bgp", "demo/db", "203.0.113.2")]);
        assert_eq!(
            series(&metrics),
            [
                "metallb_speaker_announced{ip=\"203.0.113.2\",node=\"n1\",protocol=\"bgp\",service=\"demo/db\"} 1"
            ]
        );
        // Another node name is another set.
        metrics.set_announced("n2", [("bgp", "demo/db", "203.0.113.2")]);
        assert_eq!(
            series(&metrics),
            [
                "metallb_speaker_announced{ip=\"203.0.113.2\",node=\"n2\",protocol=\"bgp\",service=\"demo/db\"} 1"
            ]
        );
        metrics.set_announced("n1", []);
        assert!(series(&metrics).is_empty());
    }
}
