//! `ferrolbctl migrate check`: what would break a switch from MetalLB to FerroLB, read from a
//! cluster or from objects dumped with `kubectl get -o yaml`. Each finding says what happens
//! and what to do; MIGRATION.md is the procedure.
use serde_json::Value;

#[cfg(test)]
mod tests;

/// Something that would break the switch, and how to avoid it.
#[derive(Debug, PartialEq, Eq)]
pub struct Finding {
    pub what: String,
    pub fix: String,
}

/// FerroLB's own workload names and selectors (manifests/ferrolb/).
const OURS: &[(&str, &str)] = &[("Deployment", "controller"), ("DaemonSet", "speaker")];

fn labels_of(object: &Value, path: &str) -> serde_json::Map<String, Value> {
    object
        .pointer(path)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("?")
}

fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or("")
}

fn images(object: &Value) -> Vec<&str> {
    object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str())
        .collect()
}

fn runs(object: &Value, image: &str) -> bool {
    images(object).iter().any(|i| i.contains(image))
}

/// Every finding among `objects` (Lists already flattened), for MetalLB's `namespace`.
pub fn check(objects: &[Value], namespace: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let in_namespace = |o: &&Value| o["metadata"]["namespace"].as_str() == Some(namespace);
    let workloads: Vec<&Value> = objects
        .iter()
        .filter(|o| matches!(kind(o), "Deployment" | "DaemonSet"))
        .filter(in_namespace)
        .collect();
    let metallb_controller = workloads
        .iter()
        .find(|o| kind(o) == "Deployment" && runs(o, "metallb/controller"));
    let metallb_speakers: Vec<&&Value> = workloads
        .iter()
        .filter(|o| kind(o) == "DaemonSet" && runs(o, "metallb/speaker"))
        .collect();
    let ferrolb_speakers: Vec<&&Value> = workloads
        .iter()
        .filter(|o| kind(o) == "DaemonSet" && runs(o, "ferrolb"))
        .collect();

    for webhook in objects
        .iter()
        .filter(|o| kind(o) == "ValidatingWebhookConfiguration")
    {
        let metallbs = webhook["webhooks"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|w| {
                w.pointer("/clientConfig/service/path")
                    .and_then(Value::as_str)
                    .is_some_and(|p| p.starts_with("/validate-metallb-io"))
            });
        if let (true, Some(controller)) = (metallbs, metallb_controller) {
            findings.push(Finding {
                what: format!(
                    "ValidatingWebhookConfiguration {} is served by MetalLB's controller (Deployment {}): both controllers would rewrite its CA, and while MetalLB's is stopped and FerroLB's not yet up, failurePolicy Fail refuses every change to metallb.io objects",
                    name(webhook),
                    name(controller)
                ),
                fix: "switch the controllers in one step (scale MetalLB's to 0, then apply FerroLB's, which takes the webhook over under the same names), or run FerroLB's with --webhook-mode=disabled until MetalLB's is gone".into(),
            });
        }
    }

    for crd in objects
        .iter()
        .filter(|o| kind(o) == "CustomResourceDefinition")
        .filter(|o| o["spec"]["group"] == "metallb.io")
    {
        if crd["spec"]["conversion"]["strategy"] == "Webhook" {
            findings.push(Finding {
                what: format!(
                    "CRD {} converts between versions through a webhook served by MetalLB's controller: once it is gone, every read of these objects fails",
                    name(crd)
                ),
                fix: "apply FerroLB's CRDs (manifests/crds, no conversion webhook) before MetalLB's controller stops".into(),
            });
        }
        let helm = labels_of(crd, "/metadata/labels")
            .get("app.kubernetes.io/managed-by")
            .is_some_and(|v| v == "Helm");
        let kept = labels_of(crd, "/metadata/annotations")
            .get("helm.sh/resource-policy")
            .is_some_and(|v| v == "keep");
        if helm && !kept {
            findings.push(Finding {
                what: format!(
                    "CRD {} belongs to a Helm release without helm.sh/resource-policy: keep: `helm uninstall` deletes it, and every object of it with it",
                    name(crd)
                ),
                fix: format!(
                    "kubectl annotate crd {} helm.sh/resource-policy=keep before uninstalling MetalLB",
                    name(crd)
                ),
            });
        }
    }

    for (our_kind, our_name) in OURS {
        if let Some(existing) = workloads
            .iter()
            .find(|o| kind(o) == *our_kind && name(o) == *our_name)
        {
            let selector = labels_of(existing, "/spec/selector/matchLabels");
            let ours = selector.get("app").is_some_and(|v| v == "ferrolb");
            if !ours {
                findings.push(Finding {
                    what: format!(
                        "{our_kind} {our_name} already exists with selector {}: selectors cannot change, so applying FerroLB's {our_kind} of the same name fails",
                        Value::Object(selector)
                    ),
                    fix: format!(
                        "delete {our_kind} {our_name} when its turn comes (MIGRATION.md), or rename FerroLB's in a kustomize overlay"
                    ),
                });
            }
        }
    }

    for service in objects
        .iter()
        .filter(|o| kind(o) == "Service")
        .filter(in_namespace)
        .filter(|o| name(o) == "metallb-webhook-service")
    {
        let selector = labels_of(service, "/spec/selector");
        if selector.get("app").is_none_or(|v| v != "ferrolb") {
            findings.push(Finding {
                what: format!(
                    "Service metallb-webhook-service selects MetalLB's controller ({}): applied over, FerroLB's would be merged into it (Helm's objects carry no last-applied state) and select no pod, and failurePolicy Fail would refuse every change",
                    Value::Object(selector)
                ),
                fix: format!(
                    "kubectl -n {namespace} delete service metallb-webhook-service right before applying FerroLB's controller (MIGRATION.md, step 4)"
                ),
            });
        }
    }
    let secrets: Vec<&str> = objects
        .iter()
        .filter(|o| kind(o) == "Secret")
        .filter(in_namespace)
        .map(name)
        .collect();
    for secret in objects
        .iter()
        .filter(|o| kind(o) == "Secret")
        .filter(in_namespace)
        .filter(|o| matches!(name(o), "memberlist" | "metallb-memberlist"))
    {
        let owners: Vec<String> = secret["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                format!(
                    "{} {}",
                    o["kind"].as_str().unwrap_or("?"),
                    o["name"].as_str().unwrap_or("?")
                )
            })
            .collect();
        if !owners.is_empty() {
            findings.push(Finding {
                what: format!(
                    "Secret {} (the memberlist key) is owned by {}: deleting MetalLB's controller deletes it, and speakers that restart afterwards get a new key the running ones do not have",
                    name(secret),
                    owners.join(", ")
                ),
                fix: format!(
                    "kubectl -n {namespace} patch secret {} --type=json -p '[{{\"op\":\"remove\",\"path\":\"/metadata/ownerReferences\"}}]'",
                    name(secret)
                ),
            });
        }
    }
    if secrets.contains(&"metallb-memberlist") && !secrets.contains(&"memberlist") {
        findings.push(Finding {
            what: "the memberlist key is in Secret metallb-memberlist (MetalLB's Helm chart); FerroLB's manifests read Secret memberlist, and speakers with different keys cannot gossip: two nodes could answer for one IP".into(),
            fix: "point FerroLB's speaker volume at metallb-memberlist (and its controller at it with --ml-secret-name=metallb-memberlist)".into(),
        });
    }
    for speaker in &metallb_speakers {
        let labels = labels_of(speaker, "/spec/template/metadata/labels");
        if labels.get("component").is_none_or(|v| v != "speaker") {
            findings.push(Finding {
                what: format!(
                    "MetalLB's speakers (DaemonSet {}) carry no component=speaker label: FerroLB's speakers, looking for --ml-labels=component=speaker, would not find them, and the two kinds would elect owners apart",
                    name(speaker)
                ),
                fix: format!(
                    "run FerroLB's speakers with --ml-labels matching both ({}), or label both pod templates alike",
                    labels
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            });
        }
    }
    let unconfined = |o: &Value| {
        o.pointer("/spec/template/spec/nodeSelector").is_none()
            && o.pointer("/spec/template/spec/affinity/nodeAffinity")
                .is_none()
    };
    if let (Some(metallb), Some(ferrolb)) = (
        metallb_speakers.iter().find(|o| unconfined(o)),
        ferrolb_speakers.iter().find(|o| unconfined(o)),
    ) {
        findings.push(Finding {
            what: format!(
                "MetalLB's speakers (DaemonSet {}) and FerroLB's (DaemonSet {}) both run on every node: each node would run two speakers",
                name(metallb),
                name(ferrolb)
            ),
            fix: "move node by node with a node label, as MIGRATION.md shows".into(),
        });
    }
    findings
}

/// The objects of YAML documents, `List`s flattened (what `kubectl get -o yaml` writes).
pub fn objects_of(text: &str) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for document in yaml_serde::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(document).map_err(|e| e.to_string())?;
        flatten(value, &mut objects);
    }
    Ok(objects)
}

fn flatten(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Null => {}
        Value::Object(ref map) if map.get("items").is_some_and(Value::is_array) => {
            if let Some(Value::Array(items)) = map.get("items").cloned() {
                for item in items {
                    flatten(item, out);
                }
            }
        }
        other => out.push(other),
    }
}

/// The objects the checks read, from a cluster: MetalLB's namespace's Deployments,
/// DaemonSets and Secrets (names only), the ValidatingWebhookConfigurations and the CRDs.
pub async fn fetch(
    kubeconfig: Option<&std::path::Path>,
    namespace: &str,
) -> anyhow::Result<Vec<Value>> {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, ListParams};
    let client = ferrolb_cluster::kubernetes::client(kubeconfig).await?;
    let params = ListParams::default();
    let mut objects = Vec::new();
    fn typed<K: serde::Serialize + kube::Resource<DynamicType = ()>>(
        items: Vec<K>,
        out: &mut Vec<Value>,
    ) {
        for item in items {
            if let Ok(mut value) = serde_json::to_value(&item) {
                value["apiVersion"] = K::api_version(&()).into();
                value["kind"] = K::kind(&()).into();
                out.push(value);
            }
        }
    }
    typed(
        Api::<Deployment>::namespaced(client.clone(), namespace)
            .list(&params)
            .await?
            .items,
        &mut objects,
    );
    typed(
        Api::<DaemonSet>::namespaced(client.clone(), namespace)
            .list(&params)
            .await?
            .items,
        &mut objects,
    );
    let mut secrets = Api::<Secret>::namespaced(client.clone(), namespace)
        .list_metadata(&params)
        .await?
        .items;
    for secret in &mut secrets {
        secret.metadata.managed_fields = None;
    }
    for secret in secrets {
        objects.push(
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": secret.metadata}),
        );
    }
    typed(
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .list(&params)
            .await?
            .items,
        &mut objects,
    );
    typed(
        Api::<CustomResourceDefinition>::all(client)
            .list(&params)
            .await?
            .items,
        &mut objects,
    );
    Ok(objects)
}
