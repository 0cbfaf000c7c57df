//! Writing under `DIR/status/<component>/`: always to a hidden temporary file, then renamed.
use crate::{ClusterError, Event, ObjectKey};
use std::path::{Path, PathBuf};

/// `status/<component>/<kind>/<namespace or _cluster>/<name>.yaml`
fn object_path(
    dir: &Path,
    component: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> PathBuf {
    dir.join("status")
        .join(component)
        .join(kind.to_ascii_lowercase())
        .join(namespace.unwrap_or("_cluster"))
        .join(format!("{name}.yaml"))
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

pub(super) fn apply(
    dir: &Path,
    component: &str,
    partial: &serde_json::Value,
) -> Result<(), ClusterError> {
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
    let path = object_path(dir, safe(component)?, safe(kind)?, namespace, safe(name)?);
    let yaml =
        serde_yaml::to_string(partial).map_err(|e| ClusterError::InvalidPatch(e.to_string()))?;
    write_atomically(&path, yaml.as_bytes())
}

pub(super) fn delete(dir: &Path, component: &str, key: &ObjectKey) -> Result<(), ClusterError> {
    let path = object_path(
        dir,
        safe(component)?,
        key.kind,
        key.namespace.as_deref(),
        safe(&key.name)?,
    );
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ClusterError::Io { path, source }),
    }
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
    std::fs::write(&temporary, contents).map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}
