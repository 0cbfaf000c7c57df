//! The file store: a directory of Kubernetes YAML instead of an API server (`--store DIR`).
//!
//! - Every `*.yaml`/`*.yml` file directly in DIR holds objects, several per file.
//! - FerroLB writes only under `DIR/status/<component>/`, one file per object it applies to,
//!   each written to a temporary name and renamed, so readers never see half a file. A
//!   component's files are its field manager's share: they are merged over the user's
//!   objects when the store is read.
//! - The directory is polled every [`POLL_INTERVAL`]; only files whose size, mtime or inode
//!   changed are parsed again.
mod load;
mod write;

pub use load::{load, load_paths};

use crate::{ClusterError, Event, ObjectKey, Snapshot};
use load::Loader;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often the directory is checked for changes: well inside the one second DESIGN.md allows.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How many Events a component keeps in its `events.yaml`.
const EVENTS_KEPT: usize = 500;

/// A running file store: the current snapshot, refreshed in the background.
pub struct FileStore {
    dir: PathBuf,
    component: String,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    events: Mutex<VecDeque<Event>>,
    poller: tokio::task::JoinHandle<()>,
}

impl FileStore {
    /// Loads `dir` and starts watching it. `namespace` is MetalLB's: metallb.io objects without
    /// a namespace belong to it. `component` names this process's share of `status/`.
    pub fn open(dir: &Path, namespace: &str, component: &str) -> Result<FileStore, ClusterError> {
        let metadata = std::fs::metadata(dir).map_err(|source| ClusterError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if !metadata.is_dir() {
            return Err(ClusterError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        let mut loader = Loader::new(dir, namespace);
        let own_status = dir.join("status").join(component);
        let first = Arc::new(loader.load());
        remove_stale(&loader, &own_status);
        log_problems(&first, None);
        let (sender, snapshots) = watch::channel(first);
        let poller = tokio::spawn(async move {
            let mut interval = tokio::time::interval(POLL_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if sender.is_closed() {
                    return;
                }
                if !loader.changed() {
                    continue;
                }
                let next = loader.load();
                remove_stale(&loader, &own_status);
                let previous = sender.borrow().clone();
                if *previous != next {
                    log_problems(&next, Some(&previous));
                    sender.send_replace(Arc::new(next));
                }
            }
        });
        Ok(FileStore {
            dir: dir.to_path_buf(),
            component: component.to_string(),
            snapshots,
            events: Mutex::new(VecDeque::new()),
            poller,
        })
    }

    pub fn snapshots(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    pub fn apply(&self, partial: serde_json::Value) -> Result<(), ClusterError> {
        write::apply(&self.dir, &self.component, &partial)
    }

    pub fn delete(&self, key: &ObjectKey) -> Result<(), ClusterError> {
        write::delete(&self.dir, &self.component, key)
    }

    pub fn publish(&self, event: Event) -> Result<(), ClusterError> {
        tracing::info!(
            target: "ferrolb::event",
            object = %format!("{}/{}", event.regarding.namespace.as_deref().unwrap_or(""), event.regarding.name),
            reason = %event.reason,
            "{}",
            event.message
        );
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        events.push_back(event);
        while events.len() > EVENTS_KEPT {
            events.pop_front();
        }
        write::events(&self.dir, &self.component, events.make_contiguous())
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

/// Removes this component's status for objects that were deleted, so that an object created
/// again under the same name starts clean.
fn remove_stale(loader: &Loader, own_status: &Path) {
    for path in loader.stale().iter().filter(|p| p.starts_with(own_status)) {
        if let Err(error) = std::fs::remove_file(path) {
            tracing::warn!(path = %path.display(), %error, "could not remove stale status");
        }
    }
}

/// Reports each problem once: those not already in the previous snapshot.
fn log_problems(snapshot: &Snapshot, previous: Option<&Snapshot>) {
    for problem in &snapshot.problems {
        if previous.is_none_or(|p| !p.problems.contains(problem)) {
            tracing::warn!(source = %problem.source, document = ?problem.document, "skipped: {}", problem.reason);
        }
    }
}

#[cfg(test)]
mod tests;
