//! What every FerroLB process does the same way: its logging, opening the cluster (a store
//! directory or a Kubernetes API), and serving `/metrics`, `/healthz` and `/readyz`.
use crate::kubernetes::KubeCluster;
use crate::store::FileStore;
use crate::{Cluster, ClusterError, Reading};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The options every component takes, with MetalLB's environment variables.
#[derive(Clone, Debug, clap::Args)]
pub struct CommonArgs {
    /// The kubeconfig to use (default: in-cluster, then $KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "KUBECONFIG", conflicts_with = "store")]
    pub kubeconfig: Option<PathBuf>,
    /// Run on a directory of YAML instead of a Kubernetes API.
    #[arg(long, env = "FERROLB_STORE")]
    pub store: Option<PathBuf>,
    /// The namespace of MetalLB's objects.
    #[arg(long, env = "METALLB_NAMESPACE", default_value = ferrolb_api::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// Port for /metrics, /healthz and /readyz.
    #[arg(long, env = "METALLB_PORT", default_value_t = 7472)]
    pub port: u16,
    /// Address to serve metrics on.
    #[arg(long, env = "METALLB_HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// MetalLB's levels (`all`, `debug`, `info`, `warn`, `error`, `none`), or a tracing
    /// filter such as `info,ferrolb_bgp=debug`.
    #[arg(long, env = "METALLB_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// `text` for people, `json` (one object per line) for log collectors.
    #[arg(long, env = "FERROLB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub metallb: crate::metallb_flags::MetallbFlags,
}

impl CommonArgs {
    pub fn init_logging(&self) -> Result<(), String> {
        init_logging(&self.log_level, self.log_format)
    }

    /// Opens the store or the Kubernetes API these options name (see [`Source`]).
    pub async fn open_cluster(
        &self,
        component: &str,
        store_component: &str,
        reading: Reading,
    ) -> Result<Cluster, ClusterError> {
        open_cluster(Source {
            store: self.store.as_deref(),
            kubeconfig: self.kubeconfig.as_deref(),
            namespace: &self.namespace,
            component,
            store_component,
            reading,
        })
        .await
    }

    /// Binds `--host`:`--port` and serves the metrics `render` writes and the health of the
    /// returned [`Health`] there, in the background.
    pub async fn serve(
        &self,
        render: impl Fn() -> String + Clone + Send + Sync + 'static,
    ) -> std::io::Result<Health> {
        let listener = tokio::net::TcpListener::bind((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("binding port {}: {e}", self.port))
            })?;
        let health = Health::new();
        tokio::spawn(serve_http(listener, render, health.clone()));
        Ok(health)
    }
}

/// Prometheus' text format of everything in `registry`.
pub fn encode_metrics(registry: &prometheus_client::registry::Registry) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

/// How the log is written: for people, or one JSON object per line for machines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// MetalLB's log levels in tracing's words: `all` is everything, `none` nothing; the others
/// are the same, and anything else is taken as a tracing filter.
fn tracing_filter(level: &str) -> &str {
    match level {
        "all" => "trace",
        "none" => "off",
        other => other,
    }
}

/// Sets up the log at `level` (MetalLB's level names, or a tracing filter such as
/// `info,ferrolb_bgp=debug`).
pub fn init_logging(level: &str, format: LogFormat) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(tracing_filter(level))
        .map_err(|e| format!("--log-level {level:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // A log that cannot be written (a full disk) must not stop the component: by
        // default the subscriber reports it on stderr, which panics when that fails too.
        .log_internal_errors(false);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
    Ok(())
}

/// Where a component's state comes from, and who it is there.
pub struct Source<'a> {
    /// The file store directory; the Kubernetes API when `None`.
    pub store: Option<&'a Path>,
    pub kubeconfig: Option<&'a Path>,
    pub namespace: &'a str,
    /// The component's name in Kubernetes (field manager, Event source).
    pub component: &'a str,
    /// Its name in the store: the folder of its status files, one per process.
    pub store_component: &'a str,
    /// What the component reads, and how much of it it keeps.
    pub reading: Reading,
}

/// Opens the file store if one is given, the Kubernetes API otherwise.
pub async fn open_cluster(source: Source<'_>) -> Result<Cluster, ClusterError> {
    let Source {
        store,
        kubeconfig,
        namespace,
        component,
        store_component,
        reading,
    } = source;
    Ok(match store {
        Some(dir) => Cluster::Store(FileStore::open_reading(
            dir,
            namespace,
            store_component,
            reading,
        )?),
        None => Cluster::Kube(Box::new(
            KubeCluster::connect(kubeconfig, namespace, component, reading.detail).await?,
        )),
    })
}

/// How long the main loop may go without a beat before `/healthz` fails: the loops wake at
/// least every few seconds, so silence this long means a pass is stuck.
pub const STALL: Duration = Duration::from_secs(60);

/// What `/healthz` and `/readyz` answer. The component's loop calls `beat` each time it
/// wakes (it is alive while it does) and `set_ready` once it acts on a synced view.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<HealthState>,
}

#[derive(Default)]
struct HealthState {
    ready: AtomicBool,
    /// Milliseconds since `start` at the last beat.
    last_beat: AtomicU64,
    start: std::sync::OnceLock<tokio::time::Instant>,
}

impl Health {
    pub fn new() -> Health {
        let health = Health::default();
        health.beat();
        health
    }

    fn elapsed_ms(&self) -> u64 {
        let start = self.inner.start.get_or_init(tokio::time::Instant::now);
        u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The main loop is running.
    pub fn beat(&self) {
        let now = self.elapsed_ms();
        self.inner.last_beat.store(now, Ordering::Relaxed);
    }

    pub fn set_ready(&self) {
        self.inner.ready.store(true, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Relaxed)
    }

    /// Whether the main loop has beaten within `STALL`.
    pub fn is_alive(&self) -> bool {
        let since = self
            .elapsed_ms()
            .saturating_sub(self.inner.last_beat.load(Ordering::Relaxed));
        Duration::from_millis(since) < STALL
    }
}

/// Serves `/metrics` (what `metrics` renders), `/healthz` (the main loop beats) and
/// `/readyz` (the component acts on a synced view).
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    metrics: impl Fn() -> String + Clone + Send + Sync + 'static,
    health: Health,
) -> std::io::Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let answer = |ok: bool, what: &'static str| {
        if ok {
            (StatusCode::OK, "ok")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, what)
        }
    };
    let alive = health.clone();
    let router = axum::Router::new()
        // OpenMetrics to scrapers that ask for it (Prometheus does), MetalLB's Prometheus
        // text format to the others; each said in the content type.
        .route(
            "/metrics",
            get(move |headers: axum::http::HeaderMap| async move {
                let accept = headers
                    .get(axum::http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok());
                let openmetrics = metrics();
                if crate::metrics::text::wants_openmetrics(accept) {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            crate::metrics::text::OPENMETRICS_CONTENT_TYPE,
                        )],
                        openmetrics,
                    )
                } else {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            crate::metrics::text::PROMETHEUS_CONTENT_TYPE,
                        )],
                        crate::metrics::text::to_prometheus(&openmetrics),
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || async move { answer(alive.is_alive(), "the main loop is stuck") }),
        )
        .route(
            "/readyz",
            get(move || async move { answer(health.is_ready(), "not ready") }),
        );
    axum::serve(listener, router).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn healthy_while_the_loop_beats_and_ready_once_told() {
        let health = Health::new();
        assert!(health.is_alive() && !health.is_ready());
        tokio::time::advance(STALL / 2).await;
        health.beat();
        tokio::time::advance(STALL / 2).await;
        assert!(health.is_alive());
        tokio::time::advance(STALL).await;
        assert!(!health.is_alive(), "no beat for a whole STALL");
        health.set_ready();
        assert!(health.is_ready());
    }
}
