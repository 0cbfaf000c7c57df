//! The metrics both components serve beside their own, by MetalLB's names (its chart's
//! alerts read them): the configuration's health (`metallb_k8s_client_*`) and the process
//! (`process_*`, as Go's client reports them); and the Prometheus text format, for scrapers
//! that do not ask for OpenMetrics.
pub mod process;
pub mod text;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use process::ProcessCollector;

/// MetalLB's `metallb_k8s_client_*`: how reading the configuration goes.
#[derive(Clone, Debug, Default)]
pub struct ConfigMetrics {
    updates: Counter,
    update_errors: Counter,
    loaded: Gauge,
    stale: Gauge,
}

impl ConfigMetrics {
    /// Registers these and the process metrics.
    pub fn register(&self, registry: &mut Registry) {
        let k8s = registry.sub_registry_with_prefix("metallb_k8s_client");
        k8s.register(
            "updates",
            "Number of k8s object updates that have been processed.",
            self.updates.clone(),
        );
        k8s.register(
            "update_errors",
            "Number of k8s object updates that failed for some reason.",
            self.update_errors.clone(),
        );
        k8s.register(
            "config_loaded_bool",
            "1 if the MetalLB configuration was successfully loaded at least once.",
            self.loaded.clone(),
        );
        k8s.register(
            "config_stale_bool",
            "1 if running on a stale configuration, because the latest config failed to load.",
            self.stale.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector));
    }

    /// A new view of the cluster was acted on; `valid`: its configuration was accepted
    /// (otherwise the last valid one, if any, stays in force and is now stale).
    pub fn loaded(&self, valid: bool) {
        self.updates.inc();
        if valid {
            self.loaded.set(1);
            self.stale.set(0);
        } else {
            self.update_errors.inc();
            self.stale.set(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_metallbs() {
        let metrics = ConfigMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.loaded(true);
        metrics.loaded(false);
        let text = crate::component::encode_metrics(&registry);
        for line in [
            "metallb_k8s_client_updates_total 2",
            "metallb_k8s_client_update_errors_total 1",
            "metallb_k8s_client_config_loaded_bool 1",
            "metallb_k8s_client_config_stale_bool 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{name} "))),
                "{name} in\n{text}"
            );
        }
    }
}
