//! Writing under `DIR/status/<component>/`: this component's partial objects, kept in memory
//! and written per bucket (`<kind>/<namespace>.yaml`, several documents each), always to a
//! hidden temporary file first and then renamed, so readers never see half a file.
//!
//! Buckets rather than a file per object: thousands of small files cost a create and a rename
//! each, which dominated a 10,000-Service start on an ordinary disk.
use crate::{ClusterError, Event, ObjectKey};
use ferrolb_api::kind::Kind;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One component's share of `status/`.
pub(super) struct OwnStatus {
    root: PathBuf,
    /// Bucket file (relative to `root`) → object name → partial object, as the YAML document
    /// written to the file: a parsed `serde_json::Value` takes ten times the memory, and
    /// rendering each once keeps a flush of a bucket of thousands a concatenation (the
    /// bucket is written out again while it fills).
    buckets: BTreeMap<PathBuf, BTreeMap<String, Box<str>>>,
    dirty: BTreeSet<PathBuf>,
}

fn render(value: &serde_json::Value) -> Result<Box<str>, ClusterError> {
    yaml_serde::to_string(value)
        .map(String::into_boxed_str)
        .map_err(|e| ClusterError::InvalidPatch(e.to_string()))
}

fn bucket(kind: &str, namespace: Option<&str>) -> PathBuf {
    Path::new(&kind.to_ascii_lowercase()).join(format!("{}.yaml", namespace.unwrap_or("_cluster")))
}

/// Names used in paths must not climb out of the store.
fn safe(part: &str) -> Result<&str, ClusterError> {
    if part.is_empty() || part.contains('/') || part.starts_with('.') {
        Err(ClusterError::InvalidPatch(format!(
            "{part:?} cannot be used as a file name"
        )))
    } else {
        Ok(part)
    }
}

impl OwnStatus {
    /// Picks up what the component wrote in an earlier run.
    pub(super) fn load(dir: &Path, component: &str) -> Result<OwnStatus, ClusterError> {
        let root = dir.join("status").join(safe(component)?);
        let mut own = OwnStatus {
            root,
            buckets: BTreeMap::new(),
            dirty: BTreeSet::new(),
        };
        remove_temporaries(&own.root);
        let Ok(kinds) = std::fs::read_dir(&own.root) else {
            return Ok(own);
        };
        for kind in kinds.flatten().filter(|k| k.path().is_dir()) {
            for file in std::fs::read_dir(kind.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = file.path();
                let Ok(relative) = path.strip_prefix(&own.root).map(Path::to_path_buf) else {
                    continue;
                };
                if path.extension().is_none_or(|e| e != "yaml")
                    || relative.to_string_lossy().contains("/.")
                {
                    continue;
                }
                // Rendered one document at a time, kept only if the whole file reads.
                let mut entries = Vec::new();
                let read = super::load::read_status_documents(&path, |value| {
                    if let Some(name) = value.pointer("/metadata/name").and_then(|n| n.as_str()) {
                        let rendered = render(&value).map_err(|e| e.to_string())?;
                        entries.push((name.to_string(), rendered));
                    }
                    Ok(())
                });
                match read {
                    Ok(()) => own.buckets.entry(relative).or_default().extend(entries),
                    Err(reason) => {
                        // Damaged: start it afresh, and rewrite it at the next flush.
                        tracing::warn!(path = %path.display(), %reason, "a status file of ours is damaged: rewriting it");
                        own.dirty.insert(relative.clone());
                        own.buckets.entry(relative).or_default();
                    }
                }
            }
        }
        Ok(own)
    }

    pub(super) fn apply(&mut self, partial: serde_json::Value) -> Result<(), ClusterError> {
        let field = |pointer: &str| partial.pointer(pointer).and_then(|v| v.as_str());
        let (Some(_), Some(kind), Some(name)) = (
            field("/apiVersion"),
            field("/kind"),
            field("/metadata/name"),
        ) else {
            return Err(ClusterError::InvalidPatch(
                "apiVersion, kind and metadata.name are required".into(),
            ));
        };
        let namespace = field("/metadata/namespace").map(safe).transpose()?;
        let bucket = bucket(safe(kind)?, namespace);
        let name = safe(name)?.to_string();
        self.buckets
            .entry(bucket.clone())
            .or_default()
            .insert(name, render(&partial)?);
        self.dirty.insert(bucket);
        Ok(())
    }

    /// The objects of `kind` this component has written (this run or an earlier one).
    pub(super) fn keys(&self, kind: Kind) -> Vec<ObjectKey> {
        let folder = kind.name().to_ascii_lowercase();
        self.buckets
            .iter()
            .filter(|(path, _)| path.starts_with(&folder))
            .flat_map(|(path, entries)| {
                let namespace = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .filter(|ns| *ns != "_cluster")
                    .map(str::to_string);
                entries
                    .keys()
                    .map(move |name| ObjectKey::new(kind, namespace.as_deref(), name))
            })
            .collect()
    }

    pub(super) fn delete(&mut self, key: &ObjectKey) {
        let bucket = bucket(key.kind.name(), key.namespace.as_deref());
        if let Some(entries) = self.buckets.get_mut(&bucket)
            && entries.remove(&key.name).is_some()
        {
            self.dirty.insert(bucket);
        }
    }

    /// Deletes every object of `kind` in `namespace` labelled `label`, in every
    /// component's share: the statuses of a lost speaker, deleted by a survivor (in
    /// Kubernetes anyone may delete an object; here each component writes only its own
    /// files, so the survivor rewrites the lost one's). Ours go at the next flush; another
    /// share's bucket file is rewritten at once without them. Returns how many were found.
    pub(super) fn delete_labelled(
        &mut self,
        kind: Kind,
        namespace: &str,
        label: (&str, &str),
    ) -> Result<usize, ClusterError> {
        let bucket = bucket(kind.name(), Some(namespace));
        let labelled = |document: &str| {
            // Most documents do not even mention the value: no need to parse them.
            document.contains(label.1)
                && yaml_serde::from_str::<serde_json::Value>(document)
                    .is_ok_and(|v| v["metadata"]["labels"][label.0].as_str() == Some(label.1))
        };
        let mut found = 0;
        if let Some(entries) = self.buckets.get_mut(&bucket) {
            let before = entries.len();
            entries.retain(|_, document| !labelled(document));
            if entries.len() != before {
                found += before - entries.len();
                self.dirty.insert(bucket.clone());
            }
        }
        let Some(status) = self.root.parent() else {
            return Ok(found);
        };
        let shares = std::fs::read_dir(status).into_iter().flatten().flatten();
        for share in shares
            .map(|e| e.path())
            .filter(|p| p.is_dir() && *p != self.root)
        {
            let path = share.join(&bucket);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let documents = split_documents(&text);
            let kept: Vec<&str> = documents.iter().copied().filter(|d| !labelled(d)).collect();
            if kept.len() == documents.len() {
                continue;
            }
            found += documents.len() - kept.len();
            if kept.is_empty() {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(ClusterError::Io { path, source: e });
                    }
                    _ => {}
                }
            } else {
                let mut text = String::new();
                for document in kept {
                    text.push_str("---\n");
                    text.push_str(document);
                }
                write_atomically(&path, text.as_bytes())?;
            }
        }
        Ok(found)
    }

    /// Whether `path` is one of this component's bucket files.
    pub(super) fn owns(&self, path: &Path) -> bool {
        path.starts_with(&self.root)
    }

    /// Writes the buckets that changed; an emptied bucket's file is removed.
    pub(super) fn flush(&mut self) -> Result<(), ClusterError> {
        while let Some(bucket) = self.dirty.pop_first() {
            let path = self.root.join(&bucket);
            let entries = self.buckets.get(&bucket).filter(|e| !e.is_empty());
            let result = match entries {
                None => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ClusterError::Io {
                        path: path.clone(),
                        source: e,
                    }),
                    _ => Ok(()),
                },
                Some(entries) => {
                    let mut text = String::new();
                    for document in entries.values() {
                        text.push_str("---\n");
                        text.push_str(document);
                    }
                    write_atomically(&path, text.as_bytes())
                }
            };
            if let Err(error) = result {
                self.dirty.insert(bucket);
                return Err(error);
            }
        }
        Ok(())
    }
}

/// The documents of a bucket file as `flush` writes them: each after a `---` line.
fn split_documents(text: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let mut start = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            if let Some(s) = start {
                documents.push(&text[s..offset]);
            }
            start = Some(offset + line.len());
        }
        offset += line.len();
    }
    if let Some(s) = start {
        documents.push(&text[s..]);
    }
    documents
}

pub(super) fn events(dir: &Path, component: &str, events: &[Event]) -> Result<(), ClusterError> {
    // Kept outside the YAML object files: events are not objects the store serves.
    let path = dir
        .join("status")
        .join(safe(component)?)
        .join("events.log.json");
    let mut text = String::new();
    for event in events {
        text.push_str(
            &serde_json::to_string(event).map_err(|e| ClusterError::InvalidPatch(e.to_string()))?,
        );
        text.push('\n');
    }
    write_atomically(&path, text.as_bytes())
}

/// Removes the temporary files an earlier run of the component left (killed mid-write).
fn remove_temporaries(root: &Path) {
    let folders = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .chain([root.to_path_buf()]);
    for folder in folders {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Writes `contents` to a hidden temporary file beside `path`, then renames it over `path`:
/// a reader sees the old file or the new one, never a part.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), ClusterError> {
    let io = |source| ClusterError::Io {
        path: path.to_path_buf(),
        source,
    };
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io)?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("status");
    // Unique per process and per write, so concurrent writers never share a temporary file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let sequence = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = parent.join(format!(
        ".{file_name}.{}.{sequence}.tmp",
        std::process::id()
    ));
    // On the disk before the rename, so a crash leaves the old file or the whole new one;
    // and gone if any step fails (a full disk once left a new one per retry).
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        std::io::Write::write_all(&mut file, contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(parent)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.map_err(io)
}
