//! MetalLB's Helm chart values (`values.yaml`): users bring them along when they switch. This
//! checks the settings FerroLB maps onto its own flags, and the shape of the rest.
use yaml_serde::Value;

/// Top-level keys of MetalLB's chart values, from 0.13 to the current chart (`tls`,
/// `frr-k8s` and `networkpolicies` came after 0.15).
const TOP_LEVEL_KEYS: [&str; 13] = [
    "imagePullSecrets",
    "nameOverride",
    "fullnameOverride",
    "loadBalancerClass",
    "rbac",
    "prometheus",
    "controller",
    "speaker",
    "crds",
    "frrk8s",
    "tls",
    "frr-k8s",
    "networkpolicies",
];

const LOG_LEVELS: [&str; 6] = ["all", "debug", "info", "warn", "error", "none"];

/// Whether a YAML document is chart values rather than a Kubernetes object: a mapping with
/// no `apiVersion`/`kind` and at least one of the chart's top-level keys.
pub fn looks_like_values(document: &Value) -> bool {
    let Some(map) = document.as_mapping() else {
        return false;
    };
    map.get("apiVersion").is_none()
        && map.get("kind").is_none()
        && map
            .keys()
            .filter_map(Value::as_str)
            .any(|k| TOP_LEVEL_KEYS.contains(&k))
}

/// Problems with the values, as `field: reason`.
pub fn check(values: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for key in values.as_mapping().into_iter().flat_map(|m| m.keys()) {
        match key.as_str() {
            Some(k) if TOP_LEVEL_KEYS.contains(&k) => {}
            _ => problems.push(format!(
                "{}: not a key of MetalLB's chart values",
                display(key)
            )),
        }
    }
    for component in ["controller", "speaker"] {
        let section = &values[component];
        if section.is_null() {
            continue;
        }
        if !section.is_mapping() {
            problems.push(format!("{component}: must be a mapping"));
            continue;
        }
        expect_bool(&mut problems, section, component, "enabled");
        if let Some(level) = present(&section["logLevel"])
            && !level.as_str().is_some_and(|l| LOG_LEVELS.contains(&l))
        {
            problems.push(format!(
                "{component}.logLevel: {} is not one of {}",
                display(level),
                LOG_LEVELS.join(", ")
            ));
        }
        let image = &section["image"];
        for field in ["repository", "tag", "pullPolicy"] {
            if let Some(value) = present(&image[field])
                && !value.is_string()
            {
                problems.push(format!("{component}.image.{field}: must be a string"));
            }
        }
    }
    let speaker = &values["speaker"];
    expect_bool(&mut problems, speaker, "speaker", "tolerateMaster");
    let memberlist = &speaker["memberlist"];
    expect_bool(&mut problems, memberlist, "speaker.memberlist", "enabled");
    if let Some(port) = present(&memberlist["mlBindPort"])
        && !port.as_u64().is_some_and(|p| (1..=65535).contains(&p))
    {
        problems.push(format!(
            "speaker.memberlist.mlBindPort: {} is not a port number",
            display(port)
        ));
    }
    if let Some(path) = present(&memberlist["mlSecretKeyPath"])
        && !path.as_str().is_some_and(|p| p.starts_with('/'))
    {
        problems.push(format!(
            "speaker.memberlist.mlSecretKeyPath: {} is not an absolute path",
            display(path)
        ));
    }
    expect_bool(
        &mut problems,
        &speaker["excludeInterfaces"],
        "speaker.excludeInterfaces",
        "enabled",
    );
    // FRR mode needs no counterpart: the speaker speaks BGP (with BFD and graceful restart)
    // itself, so `speaker.frr` is read only for its type.
    expect_bool(&mut problems, &speaker["frr"], "speaker.frr", "enabled");
    // MetalLB's TLS settings for the metrics endpoints: strings, whatever FerroLB makes of them.
    for field in [
        "cipherSuites",
        "curvePreferences",
        "minVersion",
        "controllerMetricsTLSSecret",
        "speakerMetricsTLSSecret",
    ] {
        if let Some(value) = present(&values["tls"][field])
            && !value.is_string()
        {
            problems.push(format!("tls.{field}: must be a string"));
        }
    }
    let policies = &values["networkpolicies"];
    expect_bool(&mut problems, policies, "networkpolicies", "enabled");
    expect_bool(&mut problems, policies, "networkpolicies", "defaultDeny");
    if let Some(port) = present(&policies["apiPort"])
        && !port.as_u64().is_some_and(|p| (1..=65535).contains(&p))
    {
        problems.push(format!(
            "networkpolicies.apiPort: {} is not a port number",
            display(port)
        ));
    }
    let crds = &values["crds"];
    expect_bool(&mut problems, crds, "crds", "enabled");
    if let Some(policy) = present(&crds["validationFailurePolicy"])
        && !matches!(policy.as_str(), Some("Fail" | "Ignore"))
    {
        problems.push(format!(
            "crds.validationFailurePolicy: {} is not Fail or Ignore",
            display(policy)
        ));
    }
    problems
}

/// A value that is set (an empty key like `tag:` counts as unset, as Helm treats it).
fn present(value: &Value) -> Option<&Value> {
    (!value.is_null()).then_some(value)
}

fn expect_bool(problems: &mut Vec<String>, section: &Value, path: &str, field: &str) {
    if let Some(value) = present(&section[field])
        && !value.is_bool()
    {
        problems.push(format!(
            "{path}.{field}: {} is not true or false",
            display(value)
        ));
    }
}

fn display(value: &Value) -> String {
    yaml_serde::to_string(value)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Value {
        yaml_serde::from_str(text).unwrap()
    }

    #[test]
    fn recognises_values_and_not_objects() {
        assert!(looks_like_values(&values("controller: {enabled: true}")));
        assert!(!looks_like_values(&values("apiVersion: v1\nkind: Service")));
        assert!(!looks_like_values(&values("just: text")));
    }

    /// The keys of every chart from 0.13 to the current one, as a user's values file carries
    /// them (written here, not copied from MetalLB's chart).
    #[test]
    fn accepts_the_keys_of_every_chart_version() {
        let problems = check(&values(
            "imagePullSecrets: []\nnameOverride: ''\nfullnameOverride: ''\nloadBalancerClass: ''\nrbac: {create: true}\ntls: {minVersion: VersionTLS12, cipherSuites: '', curvePreferences: '', controllerMetricsTLSSecret: '', speakerMetricsTLSSecret: ''}\nprometheus: {scrapeAnnotations: false}\ncontroller: {enabled: true, logLevel: info}\nspeaker: {enabled: true, logLevel: info, frr: {enabled: false}, memberlist: {enabled: true, mlBindPort: 7946}}\ncrds: {enabled: true, validationFailurePolicy: Fail}\nfrrk8s: {enabled: false, external: false}\nfrr-k8s: {prometheus: {serviceMonitor: {enabled: false}}}\nnetworkpolicies: {enabled: false, defaultDeny: false, apiPort: 6443}\n",
        ));
        assert!(problems.is_empty(), "{problems:#?}");
        let problems = check(&values(
            "tls: {minVersion: 12}\nnetworkpolicies: {enabled: sometimes, apiPort: 0}\n",
        ));
        assert_eq!(problems.len(), 3, "{problems:#?}");
    }

    #[test]
    fn reports_what_cannot_work() {
        let problems = check(&values(
            "controller: {logLevel: chatty}\nspeaker:\n  memberlist: {mlBindPort: 70000, mlSecretKeyPath: relative}\n  frr: {enabled: maybe}\ncrds: {validationFailurePolicy: Sometimes}\nspeakr: {}\n",
        ));
        let joined = problems.join("\n");
        for expected in [
            "controller.logLevel: chatty",
            "speaker.memberlist.mlBindPort: 70000",
            "speaker.memberlist.mlSecretKeyPath: relative",
            "speaker.frr.enabled: maybe",
            "crds.validationFailurePolicy: Sometimes",
            "speakr: not a key",
        ] {
            assert!(
                joined.contains(expected),
                "missing {expected:?} in\n{joined}"
            );
        }
        assert_eq!(problems.len(), 6);
    }
}
