//! Prometheus metrics, served on `--port` (7472) with the health endpoints.
use crate::allocator::PoolUsage;
use ferrolb_cluster::metrics::ConfigMetrics;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;

type PoolGauge = Family<Vec<(String, String)>, Gauge>;

/// The allocator gauges MetalLB exports, per pool.
pub struct Metrics {
    registry: Registry,
    addresses_total: PoolGauge,
    addresses_in_use_total: PoolGauge,
    ipv4_addresses_total: PoolGauge,
    ipv4_addresses_in_use_total: PoolGauge,
    ipv6_addresses_total: PoolGauge,
    ipv6_addresses_in_use_total: PoolGauge,
    services_allocated_total: PoolGauge,
    config_valid: Gauge,
    /// `metallb_k8s_client_*` and `process_*`.
    pub config: ConfigMetrics,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let metallb = registry.sub_registry_with_prefix("metallb");
        let mut gauge = |name: &str, help: &str| {
            let family = PoolGauge::default();
            metallb.register(name, help, family.clone());
            family
        };
        let addresses_total = gauge(
            "allocator_addresses_total",
            "Number of usable IP addresses, per pool",
        );
        let addresses_in_use_total = gauge(
            "allocator_addresses_in_use_total",
            "Number of IP addresses in use, per pool",
        );
        let ipv4_addresses_total = gauge(
            "allocator_ipv4_addresses_total",
            "Number of usable IPv4 addresses, per pool",
        );
        let ipv4_addresses_in_use_total = gauge(
            "allocator_ipv4_addresses_in_use_total",
            "Number of IPv4 addresses in use, per pool",
        );
        let ipv6_addresses_total = gauge(
            "allocator_ipv6_addresses_total",
            "Number of usable IPv6 addresses, per pool",
        );
        let ipv6_addresses_in_use_total = gauge(
            "allocator_ipv6_addresses_in_use_total",
            "Number of IPv6 addresses in use, per pool",
        );
        let services_allocated_total = gauge(
            "allocator_services_allocated_total",
            "Number of services allocated, per pool",
        );
        let config_valid = Gauge::default();
        registry.register(
            "ferrolb_controller_config_valid",
            "1 when the current configuration is valid, 0 when the last valid one is kept",
            config_valid.clone(),
        );
        let config = ConfigMetrics::default();
        config.register(&mut registry);
        Metrics {
            registry,
            addresses_total,
            addresses_in_use_total,
            ipv4_addresses_total,
            ipv4_addresses_in_use_total,
            ipv6_addresses_total,
            ipv6_addresses_in_use_total,
            services_allocated_total,
            config_valid,
            config,
        }
    }

    /// Sets the gauges from the allocator's usage; pools that disappeared are dropped.
    pub fn record(&self, usage: &BTreeMap<String, PoolUsage>, config_valid: bool) {
        for family in [
            &self.addresses_total,
            &self.addresses_in_use_total,
            &self.ipv4_addresses_total,
            &self.ipv4_addresses_in_use_total,
            &self.ipv6_addresses_total,
            &self.ipv6_addresses_in_use_total,
            &self.services_allocated_total,
        ] {
            family.clear();
        }
        for (pool, u) in usage {
            let labels = vec![("pool".to_string(), pool.clone())];
            let v4 = u.capacity_v4.saturating_i64();
            let v6 = u.capacity_v6.saturating_i64();
            let used_v4 = i64::try_from(u.in_use_v4).unwrap_or(i64::MAX);
            let used_v6 = i64::try_from(u.in_use_v6).unwrap_or(i64::MAX);
            self.addresses_total
                .get_or_create(&labels)
                .set(v4.saturating_add(v6));
            self.addresses_in_use_total
                .get_or_create(&labels)
                .set(used_v4.saturating_add(used_v6));
            self.ipv4_addresses_total.get_or_create(&labels).set(v4);
            self.ipv4_addresses_in_use_total
                .get_or_create(&labels)
                .set(used_v4);
            self.ipv6_addresses_total.get_or_create(&labels).set(v6);
            self.ipv6_addresses_in_use_total
                .get_or_create(&labels)
                .set(used_v6);
            self.services_allocated_total
                .get_or_create(&labels)
                .set(i64::try_from(u.services).unwrap_or(i64::MAX));
        }
        self.config_valid.set(i64::from(config_valid));
        self.config.loaded(config_valid);
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
