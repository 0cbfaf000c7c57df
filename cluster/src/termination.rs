//! How the components learn they must stop. Both binaries run as PID 1 in their containers,
//! where the kernel ignores every signal without a handler: without one for SIGTERM, a
//! rollout would wait out its grace period and SIGKILL, with two controllers overlapping.
use tokio::signal::unix::{SignalKind, signal};

/// Resolves at SIGTERM (Kubernetes stopping the pod) or SIGINT. The handlers are installed
/// when this is called, not when the future is first polled, so a signal in between counts.
pub fn terminated() -> impl Future<Output = ()> {
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        match (terminate, interrupt) {
            (Ok(mut terminate), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            (Ok(mut only), Err(error)) | (Err(error), Ok(mut only)) => {
                tracing::warn!(%error, "listening for a stop signal failed");
                only.recv().await;
            }
            (Err(error), Err(_)) => {
                tracing::error!(%error, "cannot listen for stop signals: stop with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
    }
}
