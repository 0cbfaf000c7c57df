//! `ferrolbctl validate`: the webhook's rules, offline, with each problem traced to its file.
use ferrolb_api::config::Config;
use ferrolb_api::objects::Object;
use ferrolb_cluster::ObjectKey;
use std::path::PathBuf;

pub struct Report {
    pub objects: usize,
    /// One line per problem: `file (document n): Kind "name": field: reason`.
    pub problems: Vec<String>,
}

pub fn validate(paths: &[PathBuf], namespace: &str) -> Report {
    let mut problems = Vec::new();
    for path in paths {
        if !path.exists() {
            problems.push(format!("{}: no such file or directory", path.display()));
        }
    }
    let snapshot = ferrolb_cluster::store::load_paths(paths, namespace);
    problems.extend(snapshot.problems.iter().map(ToString::to_string));
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
        objects: snapshot.objects.len(),
        problems,
    }
}
