//! `ferrolbctl validate`: the webhook's rules, offline, with each problem traced to its file.
use ferrolb_api::config::Config;
use ferrolb_api::objects::Object;
use ferrolb_cluster::ObjectKey;
use std::path::PathBuf;

pub struct Report {
    pub objects: usize,
    /// One line per problem: `file (document n): Kind "name": field: reason`.
    pub problems: Vec<String>,
    /// Documents of kinds FerroLB does not read, skipped: `file (document n): reason`.
    pub skipped: Vec<String>,
}

pub fn validate(paths: &[PathBuf], namespace: &str) -> Report {
    let mut problems = Vec::new();
    for path in paths {
        if !path.exists() {
            problems.push(format!("{}: no such file or directory", path.display()));
        }
    }
    let snapshot = ferrolb_cluster::store::load_paths(paths, namespace);
    // Helm chart values are not objects: checked on their own, not reported as undecodable.
    let values = helm_values_documents(&snapshot);
    for (file, document, reasons) in &values {
        for reason in reasons {
            problems.push(format!(
                "{file} (document {document}): Helm values: {reason}"
            ));
        }
    }
    problems.extend(
        snapshot
            .problems
            .iter()
            .filter(|p| {
                !values
                    .iter()
                    .any(|(file, doc, _)| *file == p.source && Some(*doc) == p.document)
            })
            .map(ToString::to_string),
    );
    let at = |key: &ObjectKey| match snapshot.sources.get(key) {
        Some(source) => format!("{} (document {})", source.file, source.document),
        None => "?".to_string(),
    };
    for (key, object) in &snapshot.objects {
        if object.is_metallb() && key.namespace.as_deref() != Some(namespace) {
            problems.push(format!(
                "{}: {} {:?}: metadata.namespace: must be in the {namespace} namespace",
                at(key),
                key.kind,
                key.name
            ));
        }
        if let Object::ConfigMap(configmap) = object
            && configmap
                .data
                .as_ref()
                .is_some_and(|d| d.contains_key("config"))
            && let Err(e) = ferrolb_api::legacy::convert_configmap(configmap)
        {
            for line in e.to_string().lines() {
                problems.push(format!(
                    "{}: ConfigMap {:?}: legacy MetalLB configuration: {line}",
                    at(key),
                    key.name
                ));
            }
        }
    }
    if let Err(errors) = Config::build(&snapshot.config_objects(namespace)) {
        for error in errors {
            let key = ObjectKey::new(error.kind, Some(namespace), &error.name);
            problems.push(format!("{}: {error}", at(&key)));
        }
    }
    Report {
        objects: snapshot.objects.len() + values.len(),
        problems,
        skipped: snapshot.skipped.iter().map(ToString::to_string).collect(),
    }
}

/// The documents that failed to decode as objects but are Helm chart values: (file, document
/// from 1, problems found in them).
fn helm_values_documents(
    snapshot: &ferrolb_cluster::Snapshot,
) -> Vec<(String, usize, Vec<String>)> {
    let mut found = Vec::new();
    let files: std::collections::BTreeSet<&str> = snapshot
        .problems
        .iter()
        .map(|p| p.source.as_str())
        .collect();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (index, document) in yaml_serde::Deserializer::from_str(&text).enumerate() {
            let Ok(value) = <yaml_serde::Value as serde::Deserialize>::deserialize(document) else {
                break;
            };
            if crate::helm_values::looks_like_values(&value) {
                found.push((
                    file.to_string(),
                    index + 1,
                    crate::helm_values::check(&value),
                ));
            }
        }
    }
    found
}
