//! The file store: a directory of Kubernetes YAML instead of an API server (`--store DIR`).
//!
//! - Every `*.yaml`/`*.yml` file directly in DIR holds objects, several per file.
//! - FerroLB writes only under `DIR/status/<component>/`: the partial objects it applies, a
//!   file per kind and namespace, each written to a temporary name and renamed, so readers
//!   never see half a file. A component's files are its field manager's share: they are
//!   merged over the user's objects when the store is read.
//! - The directory is read again when the kernel reports a change in it (inotify), and every
//!   [`changes::SAFETY_POLL`] anyway; only files whose size, mtime or inode changed are
//!   parsed again. Without inotify it is polled every [`POLL_INTERVAL`].
mod changes;
mod load;
mod write;

pub use load::{each_status_document, load, load_paths};

use crate::{ClusterError, Event, ObjectKey, Reading, Snapshot};
use ferrolb_api::kind::Kind;
use load::Loader;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use write::OwnStatus;

/// How often the directory is checked for changes when the kernel cannot report them. A check
/// is a directory scan and a `stat` per file (a few dozen syscalls).
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// How often new status and Events are written out: a burst of thousands becomes one write.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// How many Events a component keeps in its `events.log.json`.
const EVENTS_KEPT: usize = 500;

/// A running file store: the current snapshot, refreshed in the background.
pub struct FileStore {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    own: Arc<Mutex<OwnStatus>>,
    events: Arc<Mutex<EventLog>>,
    flusher: tokio::task::JoinHandle<()>,
    poller: tokio::task::JoinHandle<()>,
    /// Wakes the flusher: something was recorded.
    written: Arc<tokio::sync::Notify>,
}

impl FileStore {
    /// Loads `dir` and starts watching it. `namespace` is MetalLB's: metallb.io objects without
    /// a namespace belong to it. `component` names this process's share of `status/`.
    pub fn open(dir: &Path, namespace: &str, component: &str) -> Result<FileStore, ClusterError> {
        FileStore::open_reading(dir, namespace, component, Reading::default())
    }

    /// As [`FileStore::open`], leaving out of every snapshot the kinds `reading` ignores and
    /// keeping objects with its detail.
    pub fn open_reading(
        dir: &Path,
        namespace: &str,
        component: &str,
        reading: Reading,
    ) -> Result<FileStore, ClusterError> {
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
        // Watched before the first read: a change made while it runs is reported.
        let mut changes = changes::Changes::new(dir, POLL_INTERVAL);
        tracing::debug!(notified = changes.notified(), store = %dir.display(), "store watched");
        let mut loader = Loader::new(dir, namespace).reading(reading);
        let own = Arc::new(Mutex::new(OwnStatus::load(dir, component)?));
        let first = Arc::new(loader.load());
        remove_stale(&loader, &own);
        // What loading and removing stale status marked for writing goes out at once.
        let written = Arc::new(tokio::sync::Notify::new());
        written.notify_one();
        let poller_own = own.clone();
        let poller_written = written.clone();
        log_problems(&first, None);
        let (sender, snapshots) = watch::channel(first);
        let poller = tokio::spawn(async move {
            let mut loader = Some(loader);
            // A directory watched for the first time may have been written before its watch:
            // then the store is read again at once rather than at the safety poll.
            let mut look_again = false;
            loop {
                if !look_again {
                    changes.next().await;
                }
                let Some(mut this) = loader.take().filter(|_| !sender.is_closed()) else {
                    return;
                };
                let previous = sender.borrow().clone();
                let own = poller_own.clone();
                // Reading, parsing and comparing a large store is blocking work: it runs off
                // the runtime's threads, so it never holds up packets or timers (a speaker
                // that stopped answering pings would soon be declared dead).
                let checked = tokio::task::spawn_blocking(move || {
                    let next = this.load_if_changed();
                    let read = next.is_some();
                    if read {
                        remove_stale(&this, &own);
                    }
                    let changed = next.filter(|next| *previous != *next).inspect(|next| {
                        log_problems(next, Some(&previous));
                    });
                    (this, read, changed)
                })
                .await;
                let Ok((this, read, changed)) = checked else {
                    return;
                };
                loader = Some(this);
                if read {
                    // Stale status removed: written out.
                    poller_written.notify_one();
                }
                // Directories made since (a component's first status) are watched too.
                look_again = changes.watch_directories();
                if let Some(next) = changed {
                    sender.send_replace(Arc::new(next));
                }
            }
        });
        let events = Arc::new(Mutex::new(EventLog::default()));
        let flusher = tokio::spawn(flush(
            own.clone(),
            events.clone(),
            dir.to_path_buf(),
            component.to_string(),
            written.clone(),
        ));
        Ok(FileStore {
            snapshots,
            own,
            events,
            flusher,
            poller,
            written,
        })
    }

    pub fn snapshots(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// Records a partial object; it reaches the disk at the next [`FileStore::flush`], done
    /// in the background every [`FLUSH_INTERVAL`].
    pub fn apply(&self, partial: serde_json::Value) -> Result<(), ClusterError> {
        let applied = lock(&self.own).apply(partial);
        self.written.notify_one();
        applied
    }

    /// The objects of `kind` this component has written, in this run or an earlier one.
    pub fn written_keys(&self, kind: Kind) -> Vec<ObjectKey> {
        lock(&self.own).keys(kind)
    }

    pub fn delete(&self, key: &ObjectKey) -> Result<(), ClusterError> {
        lock(&self.own).delete(key);
        self.written.notify_one();
        Ok(())
    }

    /// Deletes every object of `kind` in `namespace` labelled `label`: ours at the next
    /// flush, those in other components' shares at once. Returns how many were found.
    pub fn delete_labelled(
        &self,
        kind: Kind,
        namespace: &str,
        label: (&str, &str),
    ) -> Result<usize, ClusterError> {
        lock(&self.own).delete_labelled(kind, namespace, label)
    }

    /// Writes out every status change recorded so far.
    pub fn flush(&self) -> Result<(), ClusterError> {
        lock(&self.own).flush()
    }

    pub fn publish(&self, event: Event) -> Result<(), ClusterError> {
        tracing::info!(
            target: "ferrolb::event",
            object = %format!("{}/{}", event.regarding.namespace.as_deref().unwrap_or(""), event.regarding.name),
            reason = %event.reason,
            "{}",
            event.message
        );
        let mut log = lock(&self.events);
        log.events.push_back(event);
        while log.events.len() > EVENTS_KEPT {
            log.events.pop_front();
        }
        log.dirty = true;
        drop(log);
        self.written.notify_one();
        Ok(())
    }
}

/// The Events a component published, newest last.
#[derive(Default)]
struct EventLog {
    events: VecDeque<Event>,
    /// Whether the file is behind.
    dirty: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes status and Events out when they changed: woken by a write, then waiting
/// [`FLUSH_INTERVAL`] so a burst becomes one write; asleep while nothing is written, and
/// retrying every interval while writing fails.
async fn flush(
    own: Arc<Mutex<OwnStatus>>,
    log: Arc<Mutex<EventLog>>,
    dir: PathBuf,
    component: String,
    written: Arc<tokio::sync::Notify>,
) {
    // Failures in a row: logged when they start and when they end, not at every retry.
    let mut failing = 0u64;
    loop {
        if failing == 0 {
            written.notified().await;
        }
        tokio::time::sleep(FLUSH_INTERVAL).await;
        match lock(&own).flush() {
            Err(error) => {
                if failing == 0 {
                    tracing::warn!(%error, "writing status failed; retrying");
                }
                failing += 1;
            }
            Ok(()) if failing > 0 => {
                tracing::info!(retries = failing, "writing status works again");
                failing = 0;
            }
            Ok(()) => {}
        }
        let events: Vec<Event> = {
            let mut log = lock(&log);
            if !log.dirty {
                continue;
            }
            log.dirty = false;
            log.events.iter().cloned().collect()
        };
        if let Err(error) = write::events(&dir, &component, &events) {
            tracing::warn!(%error, "writing events failed; retrying");
            // Still behind: written again at the next try.
            lock(&log).dirty = true;
            failing += 1;
        }
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        self.poller.abort();
        self.flusher.abort();
    }
}

/// Drops this component's status for objects that were deleted, so that an object created
/// again under the same name starts clean.
fn remove_stale(loader: &Loader, own: &Mutex<OwnStatus>) {
    let mut own = lock(own);
    for (path, key) in loader.stale() {
        if own.owns(path) {
            own.delete(key);
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
    for skipped in &snapshot.skipped {
        if previous.is_none_or(|p| !p.skipped.contains(skipped)) {
            tracing::info!(source = %skipped.source, document = ?skipped.document, "not read: {}", skipped.reason);
        }
    }
}

#[cfg(test)]
mod tests;
