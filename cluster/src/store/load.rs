//! Reading the store directory into a [`Snapshot`], reparsing only files that changed.
use crate::{ObjectKey, Problem, Snapshot, Source};
use ferrolb_api::kind::Kind;
use ferrolb_api::objects::{DecodeError, Detail, Object};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What identifies a file's version without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    mtime_ns: i128,
    inode: u64,
}

impl Fingerprint {
    fn of(metadata: &std::fs::Metadata) -> Fingerprint {
        Fingerprint {
            len: metadata.len(),
            mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
            inode: metadata.ino(),
        }
    }
}

/// A user file's documents, kept for the store's life. Errors are boxed: most documents
/// decode, and an unboxed error would make each of them 100 bytes larger.
type Documents = Vec<(usize, Result<Object, Box<DecodeError>>)>;

/// A status file's partial objects, each as compact JSON, or why the file could not be read.
type Partials = Result<Vec<Arc<str>>, String>;

/// Reads a store directory, remembering parsed files between calls.
pub(super) struct Loader {
    dir: PathBuf,
    namespace: String,
    user_files: BTreeMap<PathBuf, (Fingerprint, Documents)>,
    /// Status files' partial objects as compact JSON, parsed again for each merge: a parsed
    /// `serde_json::Value` takes ten times the memory, and a speaker reads thousands.
    status_files: BTreeMap<PathBuf, (Fingerprint, Partials)>,
    seen: Vec<(PathBuf, Fingerprint)>,
    stale: Vec<(PathBuf, ObjectKey)>,
    /// Kinds left out of snapshots: a component that never reads them need not hold them.
    ignored: &'static [Kind],
    /// How much of each object is kept.
    detail: Detail,
    /// Whether the directory could not be read at the last look.
    unreadable: bool,
    /// Whether snapshots record where each object was defined.
    record_sources: bool,
    /// The status merges of the last load, by partial: reused while the object a partial
    /// merged into is the very same, so a reload with 10,000 unchanged Service statuses
    /// neither parses nor merges, and snapshots share the merged objects.
    merges: HashMap<Arc<str>, Merge>,
}

/// One partial merged into an object (or made one, for kinds a component owns). Its key is
/// the merged object's: not kept, as a speaker keeps 10,000 of these.
#[derive(Clone)]
struct Merge {
    base: Option<Object>,
    merged: Object,
}

impl Merge {
    /// Whether `current` (what the snapshot holds at the key now) is what this merged into.
    fn applies_to(&self, current: Option<&Object>) -> bool {
        match (&self.base, current) {
            (Some(base), Some(current)) => base.same(current),
            (None, None) => true,
            _ => false,
        }
    }
}

/// Reads a store directory once (for `ferrolbctl`).
pub fn load(dir: &Path, namespace: &str) -> Snapshot {
    Loader::new(dir, namespace).load()
}

impl Loader {
    pub(super) fn new(dir: &Path, namespace: &str) -> Loader {
        Loader {
            dir: dir.to_path_buf(),
            namespace: namespace.to_string(),
            user_files: BTreeMap::new(),
            status_files: BTreeMap::new(),
            seen: Vec::new(),
            stale: Vec::new(),
            ignored: &[],
            detail: Detail::Full,
            unreadable: false,
            record_sources: false,
            merges: HashMap::new(),
        }
    }

    /// Leaves out the kinds `reading` ignores, and keeps objects with its detail.
    pub(super) fn reading(mut self, reading: crate::Reading) -> Loader {
        self.ignored = reading.ignored;
        self.detail = reading.detail;
        self
    }

    /// Lists the files that make up the store with their fingerprints, in a stable order.
    fn scan(&self) -> Vec<(PathBuf, Fingerprint)> {
        let mut files = Vec::new();
        collect_yaml(&self.dir, &mut files);
        let mut status = Vec::new();
        collect_yaml_recursive(&self.dir.join("status"), &mut status);
        // A kind this component never reads (another speaker's thousands of statuses): not
        // read, and its changes load nothing again.
        status.retain(|(path, _)| !self.ignores_status_file(path));
        files.extend(status);
        files
    }

    /// A new snapshot if any file changed since the last load (one directory scan either way).
    /// A store directory that cannot be read (deleted, unmounted, no permission) changes
    /// nothing: read as empty, it would take every IP away.
    pub(super) fn load_if_changed(&mut self) -> Option<Snapshot> {
        if let Err(error) = std::fs::read_dir(&self.dir) {
            if !self.unreadable {
                tracing::error!(dir = %self.dir.display(), %error, "the store directory cannot be read: keeping the last objects");
            }
            self.unreadable = true;
            return None;
        }
        if std::mem::take(&mut self.unreadable) {
            tracing::info!(dir = %self.dir.display(), "the store directory can be read again");
        }
        let files = self.scan();
        (files != self.seen).then(|| self.load_files(files))
    }

    pub(super) fn load(&mut self) -> Snapshot {
        let files = self.scan();
        self.load_files(files)
    }

    fn load_files(&mut self, files: Vec<(PathBuf, Fingerprint)>) -> Snapshot {
        let status_dir = self.dir.join("status");
        let mut snapshot = Snapshot {
            synced: true,
            ..Snapshot::default()
        };
        let mut user_files = BTreeMap::new();
        let mut status_files = BTreeMap::new();
        for (path, fingerprint) in &files {
            if path.starts_with(&status_dir) {
                let parsed = match self.status_files.remove(path) {
                    Some((old, parsed)) if old == *fingerprint => parsed,
                    _ => read_status_file(path),
                };
                status_files.insert(path.clone(), (*fingerprint, parsed));
            } else {
                let documents = match self.user_files.remove(path) {
                    Some((old, documents)) if old == *fingerprint => documents,
                    Some((_, previous)) => keep_last_good(previous, self.read_user_file(path)),
                    None => self.read_user_file(path),
                };
                user_files.insert(path.clone(), (*fingerprint, documents));
            }
        }
        for (path, (_, documents)) in &user_files {
            self.add_user_objects(&mut snapshot, path, documents);
        }
        let mut stale = Vec::new();
        let mut merges = HashMap::new();
        for (path, (_, partials)) in &status_files {
            match partials {
                Ok(partials) => {
                    for text in partials {
                        if let Some(merge) = self.merges.get(text) {
                            let key = ObjectKey::of(&merge.merged);
                            if merge.applies_to(snapshot.objects.get(&key)) {
                                snapshot.objects.insert(key, merge.merged.clone());
                                merges.insert(text.clone(), merge.clone());
                                continue;
                            }
                        }
                        let Ok(partial) = serde_json::from_str::<serde_json::Value>(text) else {
                            continue;
                        };
                        let kind = partial.get("kind").and_then(|k| k.as_str());
                        if kind.is_some_and(|k| self.ignored.iter().any(|i| i.name() == k)) {
                            continue;
                        }
                        match merge_status(&mut snapshot, path, &partial, self.detail) {
                            Merged::Into { key, base } => {
                                if let Some(merged) = snapshot.objects.get(&key) {
                                    let merged = merged.clone();
                                    merges.insert(text.clone(), Merge { base, merged });
                                }
                            }
                            Merged::Stale(key) => stale.push((path.clone(), key)),
                            Merged::Failed => {}
                        }
                    }
                }
                Err(reason) => snapshot.problems.push(Problem {
                    source: path.display().to_string(),
                    document: None,
                    reason: reason.clone(),
                    object: None,
                }),
            }
        }
        // Built again at once from its sorted entries: full tree nodes, where inserting
        // 20,000 objects one by one leaves them about half full.
        snapshot.objects = std::mem::take(&mut snapshot.objects).into_iter().collect();
        self.user_files = user_files;
        self.status_files = status_files;
        self.seen = files;
        self.stale = stale;
        self.merges = merges;
        snapshot
    }

    /// Whether a status file (`status/<component>/<kind>/<namespace>.yaml`) holds a kind
    /// this component ignores.
    fn ignores_status_file(&self, path: &Path) -> bool {
        let kind_dir = path
            .parent()
            .and_then(Path::file_name)
            .and_then(|d| d.to_str());
        kind_dir.is_some_and(|dir| {
            self.ignored
                .iter()
                .any(|kind| kind.name().eq_ignore_ascii_case(dir))
        })
    }

    fn read_user_file(&self, path: &Path) -> Documents {
        read_user_file(path, self.detail, &self.namespace)
    }

    /// The key of an object written without a namespace, as [`default_namespace`] places it.
    fn with_default_namespace(&self, key: &ObjectKey) -> ObjectKey {
        let cluster_scoped = matches!(key.kind, Kind::Node | Kind::Namespace);
        if cluster_scoped || key.namespace.as_deref().is_some_and(|ns| !ns.is_empty()) {
            return key.clone();
        }
        let namespace = if key.kind.group() == "metallb.io" {
            &self.namespace
        } else {
            "default"
        };
        ObjectKey::new(key.kind, Some(namespace), &key.name)
    }

    /// Status files of the last load whose object no longer exists.
    pub(super) fn stale(&self) -> &[(PathBuf, ObjectKey)] {
        &self.stale
    }

    fn add_user_objects(&self, snapshot: &mut Snapshot, path: &Path, documents: &Documents) {
        let source = path.display().to_string();
        for (index, decoded) in documents {
            let problem = |reason: String| Problem {
                source: source.clone(),
                document: Some(index + 1),
                reason,
                object: None,
            };
            let object = match decoded {
                Ok(object) if self.ignored.contains(&object.kind()) => continue,
                Ok(object) => object.clone(),
                Err(e) if e.is_unsupported_kind() => {
                    snapshot.skipped.push(problem(e.to_string()));
                    continue;
                }
                Err(e) => {
                    snapshot.problems.push(Problem {
                        object: e.key().map(|key| self.with_default_namespace(key)),
                        ..problem(e.to_string())
                    });
                    continue;
                }
            };
            if object.name().is_empty() {
                snapshot
                    .problems
                    .push(problem(format!("{} without metadata.name", object.kind())));
                continue;
            }
            // The API server refuses such names; a file may hold anything.
            if let Err(reason) = check_names(&object) {
                snapshot.problems.push(problem(reason));
                continue;
            }
            let key = ObjectKey::of(&object);
            if snapshot.objects.contains_key(&key) {
                snapshot.problems.push(problem(format!(
                    "{key} is defined twice; the first definition is used"
                )));
                continue;
            }
            if self.record_sources {
                snapshot.sources.insert(
                    key.clone(),
                    Source {
                        file: source.clone(),
                        document: index + 1,
                    },
                );
            }
            snapshot.objects.insert(key, object);
        }
    }
}

/// Kubernetes' rules for names: a DNS-1123 subdomain for objects, a DNS-1123 label for
/// namespaces. Names become parts of paths, Event targets and label values here.
fn check_names(object: &Object) -> Result<(), String> {
    let name = object.name();
    if !is_dns_subdomain(name) {
        return Err(format!(
            "{} name {name:?} is not a valid name (lowercase letters, digits, '-' and '.', at most 253)",
            object.kind()
        ));
    }
    if let Some(namespace) = object.namespace().filter(|ns| !ns.is_empty())
        && !is_dns_label(namespace)
    {
        return Err(format!(
            "{} {name}: namespace {namespace:?} is not a valid name (lowercase letters, digits and '-', at most 63)",
            object.kind()
        ));
    }
    Ok(())
}

fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Namespaced objects written without a namespace: metallb.io kinds go to MetalLB's namespace,
/// the rest to `default`, as `kubectl apply` would put them.
fn default_namespace(object: &mut Object, metallb_namespace: &str) {
    let cluster_scoped = matches!(object, Object::Node(_) | Object::Namespace(_));
    if cluster_scoped || object.namespace().is_some_and(|ns| !ns.is_empty()) {
        return;
    }
    let namespace = if object.is_metallb() {
        metallb_namespace
    } else {
        "default"
    };
    object.set_namespace(namespace);
}

/// A file that no longer parses as YAML (a typo being fixed, a half-saved file) keeps the
/// objects of its last good version, so its Services do not vanish and lose their IPs for a
/// moment; the syntax error is still reported.
fn keep_last_good(previous: Documents, current: Documents) -> Documents {
    let syntax_error = |docs: &Documents| {
        docs.iter()
            .any(|(_, d)| matches!(d, Err(e) if matches!(&**e, DecodeError::Invalid { object, .. } if object == "YAML")))
    };
    if !syntax_error(&current) {
        return current;
    }
    let mut kept: Documents = previous.into_iter().filter(|(_, d)| d.is_ok()).collect();
    kept.extend(current.into_iter().filter(|(_, d)| d.is_err()));
    kept
}

/// A user file's documents, kept with `detail`, and in their default namespace when they
/// name none. Defaulted here, once per read, and not in each snapshot: a copy made there
/// would be a new object at every load, and miss the status merges made for the last.
fn read_user_file(path: &Path, detail: Detail, metallb_namespace: &str) -> Documents {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut documents: Documents = Object::decode_yaml_stream_as(&text, detail)
                .into_iter()
                .map(|(index, decoded)| {
                    let decoded = decoded.map(|mut object| {
                        default_namespace(&mut object, metallb_namespace);
                        object
                    });
                    (index, decoded.map_err(Box::new))
                })
                .collect();
            // The collect reuses the decoder's vector, five times larger per document: kept
            // for the store's life, that was 3.7 MB at 20,000 documents.
            documents.shrink_to_fit();
            documents
        }
        Err(e) => vec![(
            0,
            Err(Box::new(DecodeError::Invalid {
                object: "file".into(),
                key: None,
                reason: e.to_string(),
            })),
        )],
    }
}

/// A status file: partial objects, several per file.
fn read_status_file(path: &Path) -> Partials {
    let mut partials = Vec::new();
    read_status_documents(path, |document| {
        let text = serde_json::to_string(&document).map_err(|e| e.to_string())?;
        partials.push(Arc::from(text));
        Ok(())
    })?;
    Ok(partials)
}

/// Gives `each` the documents of a status file in order, one at a time (a file of 10,000
/// partials is never held parsed at once: that took a speaker's heap to 38 MB at its
/// start), or the first reason the file cannot be read. The file is ours, but a disk or a
/// person may have damaged it: read it as untrusted (a YAML stream past a syntax error is
/// not read on, bytes that are not UTF-8 are an error like any other).
pub(super) fn read_status_documents(
    path: &Path,
    each: impl FnMut(serde_json::Value) -> Result<(), String>,
) -> Result<(), String> {
    each_status_document(&std::fs::read(path).map_err(|e| e.to_string())?, each)
}

/// [`read_status_documents`] on bytes already read.
pub fn each_status_document(
    bytes: &[u8],
    mut each: impl FnMut(serde_json::Value) -> Result<(), String>,
) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    for document in yaml_serde::Deserializer::from_str(text) {
        match <serde_json::Value as serde::Deserialize>::deserialize(document) {
            Ok(serde_json::Value::Null) => {}
            Ok(value) => each(value)?,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Merges a component's partial object over the user's object, or adds it when FerroLB owns
/// the kind. Partials for objects that no longer exist are stale and ignored.
/// Returns the key when the partial is stale: its object no longer exists.
/// What [`merge_status`] did with a partial.
enum Merged {
    /// Merged into the object at `key`, which was `base` before (None: made from the
    /// partial alone).
    Into {
        key: ObjectKey,
        base: Option<Object>,
    },
    /// The object it is about does not exist (any more).
    Stale(ObjectKey),
    /// Not merged; a problem was recorded.
    Failed,
}

fn merge_status(
    snapshot: &mut Snapshot,
    path: &Path,
    partial: &serde_json::Value,
    detail: Detail,
) -> Merged {
    let problem = |reason: String| Problem {
        source: path.display().to_string(),
        document: None,
        reason,
        object: None,
    };
    let field = |pointer: &str| partial.pointer(pointer).and_then(|v| v.as_str());
    let kind = field("/kind").and_then(|k| k.parse::<Kind>().ok());
    let (Some(kind), Some(name)) = (kind, field("/metadata/name")) else {
        snapshot.problems.push(problem(
            "a status file needs a known kind and metadata.name".into(),
        ));
        return Merged::Failed;
    };
    let key = ObjectKey::new(kind, field("/metadata/namespace"), name);
    let base = snapshot.objects.get(&key).cloned();
    let merged = match &base {
        Some(existing) => match existing.to_json() {
            Ok(mut merged) => {
                merge_json(&mut merged, partial);
                merged
            }
            Err(reason) => {
                snapshot.problems.push(problem(reason));
                return Merged::Failed;
            }
        },
        None if kind.is_owned() => partial.clone(),
        None => return Merged::Stale(key),
    };
    match Object::decode(merged) {
        Ok(object) => {
            snapshot.objects.insert(key.clone(), object.kept_as(detail));
            Merged::Into { key, base }
        }
        Err(e) => {
            snapshot.problems.push(problem(e.to_string()));
            Merged::Failed
        }
    }
}

/// JSON merge patch (RFC 7386): objects merge key by key, `null` removes a key, anything
/// else replaces.
fn merge_json(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(target), serde_json::Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge_json(
                        target.entry(key.clone()).or_insert(serde_json::Value::Null),
                        value,
                    );
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn is_yaml(path: &Path) -> bool {
    let visible = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| !n.starts_with('.'));
    visible
        && matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        )
}

fn collect_yaml(dir: &Path, out: &mut Vec<(PathBuf, Fingerprint)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut found: Vec<(PathBuf, Fingerprint)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path();
            let metadata = std::fs::metadata(&path).ok()?;
            (metadata.is_file() && is_yaml(&path)).then(|| (path, Fingerprint::of(&metadata)))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    out.extend(found);
}

fn collect_yaml_recursive(dir: &Path, out: &mut Vec<(PathBuf, Fingerprint)>) {
    collect_yaml(dir, out);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut subdirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    for sub in subdirs {
        collect_yaml_recursive(&sub, out);
    }
}

/// Reads files and store directories together, as one set of objects (for `ferrolbctl
/// validate`): a directory contributes its YAML files, not its `status/`.
pub fn load_paths(paths: &[PathBuf], namespace: &str) -> Snapshot {
    let loader = Loader {
        record_sources: true,
        ..Loader::new(Path::new("."), namespace)
    };
    let mut snapshot = Snapshot {
        synced: true,
        ..Snapshot::default()
    };
    for path in paths {
        let mut files = Vec::new();
        if path.is_dir() {
            collect_yaml(path, &mut files);
        } else {
            files.push((
                path.clone(),
                Fingerprint {
                    len: 0,
                    mtime_ns: 0,
                    inode: 0,
                },
            ));
        }
        for (file, _) in files {
            loader.add_user_objects(&mut snapshot, &file, &loader.read_user_file(&file));
        }
    }
    snapshot
}
