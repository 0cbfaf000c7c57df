//! The I/O side of a pass: writes what [`crate::reconcile`] decided, through either backend.
use crate::reconcile::Actions;
use ferrolb_cluster::Cluster;
use ferrolb_cluster::component::Health;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// How long a write may take to show in the snapshot before it is made again (the store shows
/// a write within ~250 ms, the Kubernetes API within milliseconds).
const IN_FLIGHT: Duration = Duration::from_secs(2);

/// Writes what passes decide, skipping a write identical to one made moments ago that the
/// snapshot does not show yet: without this, every pass during a burst would write again
/// everything still on its way.
#[derive(Default)]
pub struct Writer {
    recent: HashMap<String, (serde_json::Value, Instant)>,
}

impl Writer {
    /// Returns true when everything was written; false when a write failed or was held back
    /// as in flight, so another pass must follow soon (a Service deleted and created again
    /// within [`IN_FLIGHT`] needs the same write once more).
    /// Each answer from the cluster tells `health` the loop is moving: a first pass writing
    /// thousands of statuses is slow, not stuck.
    pub async fn execute(&mut self, cluster: &Cluster, actions: Actions, health: &Health) -> bool {
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
                ok = false;
                continue;
            }
            let written = cluster.apply(partial.clone()).await;
            health.beat();
            match written {
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
            health.beat();
        }
        ok
    }
}
