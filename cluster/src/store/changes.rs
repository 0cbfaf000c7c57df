//! When to read the store again: the kernel says when something in it changes (inotify), at
//! once and at no cost while nothing does; a slow poll catches what notification cannot (a
//! directory made before its watch was added, the kernel's event queue overflowing). Where
//! inotify cannot be had (its limits reached), the store is polled as before.
use futures::{FutureExt, StreamExt};
use inotify::{EventStream, Inotify, WatchMask, Watches};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The safety net's period while notification works.
pub const SAFETY_POLL: Duration = Duration::from_secs(2);

/// What a watch reports: files written, made, renamed or removed; the directory itself going.
fn mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MODIFY
        | WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::ATTRIB
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
}

pub struct Changes {
    dir: PathBuf,
    /// The directories watched so far.
    watched: std::collections::BTreeSet<PathBuf>,
    notified: Option<(EventStream<Vec<u8>>, Watches)>,
    /// How long to wait without an event before reading anyway.
    poll: Duration,
    /// The poll period without notification.
    fallback: Duration,
}

impl Changes {
    /// Watches `dir` and its `status/` tree; `fallback` is the poll period without inotify.
    /// `FERROLB_STORE_POLL=1` polls instead: for file systems the kernel cannot watch (some
    /// network mounts), and to compare the two.
    pub fn new(dir: &Path, fallback: Duration) -> Changes {
        let poll_only = std::env::var("FERROLB_STORE_POLL").is_ok_and(|v| v == "1");
        Changes::watching(dir, fallback, !poll_only)
    }

    /// As [`Changes::new`], told whether to ask the kernel.
    fn watching(dir: &Path, fallback: Duration, notify: bool) -> Changes {
        let notified = if !notify {
            None
        } else {
            notification()
                .inspect_err(|error| {
                    tracing::warn!(%error, "no inotify: the store is polled every {fallback:?}");
                })
                .ok()
        };
        let poll = if notified.is_some() {
            SAFETY_POLL
        } else {
            fallback
        };
        let mut changes = Changes {
            dir: dir.to_path_buf(),
            watched: std::collections::BTreeSet::new(),
            notified,
            poll,
            fallback,
        };
        changes.watch_directories();
        changes
    }

    /// Whether the kernel tells of changes (otherwise the store is polled).
    pub fn notified(&self) -> bool {
        self.notified.is_some()
    }

    /// Watches the store and every directory of its `status/` tree not watched yet; whether
    /// one was new (what it held before its watch was not reported: read it again).
    pub fn watch_directories(&mut self) -> bool {
        let Some((_, watches)) = self.notified.as_mut() else {
            return false;
        };
        let status = self.dir.join("status");
        let mut directories = vec![self.dir.clone(), status.clone()];
        for component in subdirectories(&status) {
            directories.extend(subdirectories(&component));
            directories.push(component);
        }
        // A directory removed took its watch with it: watched again if it comes back.
        self.watched.retain(|d| d.exists());
        let mut new = false;
        for directory in directories {
            if self.watched.contains(&directory) {
                continue;
            }
            match watches.add(&directory, mask()) {
                Ok(_) => {
                    self.watched.insert(directory);
                    new = true;
                }
                // Not made yet (`status/` of a new store): watched once it is.
                Err(_) if !directory.exists() => {}
                Err(error) => tracing::warn!(
                    directory = %directory.display(),
                    %error,
                    "not watched (the kernel's inotify limits?): changes in it are read within {SAFETY_POLL:?}"
                ),
            }
        }
        new
    }

    /// Waits until something changed (then takes every change already reported with it), or
    /// the poll period passed.
    pub async fn next(&mut self) {
        let Some((stream, _)) = self.notified.as_mut() else {
            tokio::time::sleep(self.poll).await;
            return;
        };
        tokio::select! {
            event = stream.next() => {
                if event.is_none() {
                    // The notification stream ended: poll from now on.
                    tracing::warn!("inotify stopped: the store is polled every {:?}", self.fallback);
                    self.notified = None;
                    self.poll = self.fallback;
                    return;
                }
                while let Some(Some(_)) = stream.next().now_or_never() {}
            }
            () = tokio::time::sleep(self.poll) => {}
        }
    }
}

fn notification() -> std::io::Result<(EventStream<Vec<u8>>, Watches)> {
    let inotify = Inotify::init()?;
    let watches = inotify.watches();
    Ok((inotify.into_event_stream(vec![0u8; 64 * 1024])?, watches))
}

fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without notification (a file system the kernel cannot watch), the store is polled at
    /// the fallback period, and changes are found by reading it.
    #[tokio::test]
    async fn without_notification_the_store_is_polled() {
        let dir = tempfile::tempdir().unwrap();
        let mut changes = Changes::watching(dir.path(), Duration::from_millis(40), false);
        assert!(!changes.notified());
        assert!(!changes.watch_directories());
        for _ in 0..3 {
            let started = tokio::time::Instant::now();
            changes.next().await;
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(35) && took < Duration::from_secs(1),
                "{took:?}"
            );
        }
    }

    /// A write, a new file, a rename and a change under `status/` are each noticed at once,
    /// long before the safety poll.
    #[tokio::test]
    async fn changes_are_noticed_at_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("status/other/service")).unwrap();
        let mut changes = Changes::new(dir.path(), Duration::from_secs(60));
        assert!(changes.notified());
        let file = dir.path().join("pool.yaml");
        type Action<'a> = (&'a str, Box<dyn Fn() + 'a>);
        let actions: [Action; 3] = [
            (
                "a new file",
                Box::new(|| std::fs::write(&file, "a").unwrap()),
            ),
            (
                "a rename",
                Box::new(|| {
                    std::fs::write(dir.path().join(".tmp"), "b").unwrap();
                    std::fs::rename(dir.path().join(".tmp"), &file).unwrap();
                }),
            ),
            (
                "a status file",
                Box::new(|| {
                    std::fs::write(dir.path().join("status/other/service/demo.yaml"), "c").unwrap();
                }),
            ),
        ];
        for (what, action) in actions {
            let started = tokio::time::Instant::now();
            action();
            changes.next().await;
            let took = started.elapsed();
            assert!(took < Duration::from_secs(1), "{what}: {took:?}");
        }
        // Quiet: nothing is reported until the safety poll.
        let started = tokio::time::Instant::now();
        changes.next().await;
        assert!(started.elapsed() >= SAFETY_POLL - Duration::from_millis(50));
        // A directory made afterwards is watched once the store is read again.
        std::fs::create_dir_all(dir.path().join("status/late/service")).unwrap();
        changes.next().await;
        assert!(
            changes.watch_directories(),
            "the new directories are watched"
        );
        assert!(!changes.watch_directories(), "and only once");
        let started = tokio::time::Instant::now();
        std::fs::write(dir.path().join("status/late/service/x.yaml"), "d").unwrap();
        changes.next().await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
