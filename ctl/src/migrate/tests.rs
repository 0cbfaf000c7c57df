use super::*;

/// MetalLB 0.15 as its manifests install it (the parts the checks read), written here.
const METALLB: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: controller, namespace: metallb-system}
  spec:
    selector: {matchLabels: {app: metallb, component: controller}}
    template:
      metadata: {labels: {app: metallb, component: controller}}
      spec: {containers: [{name: controller, image: "quay.io/metallb/controller:v0.15.2"}]}
- apiVersion: apps/v1
  kind: DaemonSet
  metadata: {name: speaker, namespace: metallb-system}
  spec:
    selector: {matchLabels: {app: metallb, component: speaker}}
    template:
      metadata: {labels: {app: metallb, component: speaker}}
      spec: {containers: [{name: speaker, image: "quay.io/metallb/speaker:v0.15.2"}]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: metallb-webhook-configuration}
webhooks:
- name: ipaddresspoolvalidationwebhook.metallb.io
  clientConfig:
    service: {name: metallb-webhook-service, namespace: metallb-system, path: /validate-metallb-io-v1beta1-ipaddresspool}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: bgppeers.metallb.io}
spec:
  group: metallb.io
  conversion:
    strategy: Webhook
    webhook:
      clientConfig: {service: {name: metallb-webhook-service, namespace: metallb-system, path: /convert}}
---
apiVersion: v1
kind: Service
metadata: {name: metallb-webhook-service, namespace: metallb-system}
spec: {selector: {component: controller}}
---
apiVersion: v1
kind: Secret
metadata:
  name: memberlist
  namespace: metallb-system
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: controller, uid: "1"}]
"#;

fn findings(text: &str) -> Vec<Finding> {
    check(&objects_of(text).unwrap(), "metallb-system")
}

#[test]
fn metallbs_own_install_shows_each_hazard() {
    let found = findings(METALLB);
    let text: Vec<&str> = found.iter().map(|f| f.what.as_str()).collect();
    assert_eq!(found.len(), 6, "{text:#?}");
    assert!(text[0].starts_with("ValidatingWebhookConfiguration metallb-webhook-configuration is served by MetalLB's controller"));
    assert!(
        text[1].starts_with("CRD bgppeers.metallb.io converts between versions through a webhook")
    );
    assert!(text[2].starts_with("Deployment controller already exists with selector"));
    assert!(text[3].starts_with("DaemonSet speaker already exists with selector"));
    assert!(text[4].starts_with("Service metallb-webhook-service selects MetalLB's controller"));
    assert!(
        text[5].starts_with(
            "Secret memberlist (the memberlist key) is owned by Deployment controller"
        )
    );
    assert!(found[5].fix.contains("remove"), "{}", found[5].fix);
}

#[test]
fn helm_installs_show_their_own_hazards() {
    let helm = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: ipaddresspools.metallb.io, labels: {app.kubernetes.io/managed-by: Helm}}
spec: {group: metallb.io}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: l2advertisements.metallb.io
  labels: {app.kubernetes.io/managed-by: Helm}
  annotations: {helm.sh/resource-policy: keep}
spec: {group: metallb.io}
---
apiVersion: v1
kind: Secret
metadata: {name: metallb-memberlist, namespace: metallb-system}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: metallb-speaker, namespace: metallb-system}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: metallb, app.kubernetes.io/component: speaker}}
  template:
    metadata: {labels: {app.kubernetes.io/name: metallb, app.kubernetes.io/component: speaker}}
    spec: {containers: [{name: speaker, image: "quay.io/metallb/speaker:v0.14.9"}]}
"#;
    let found = findings(helm);
    let text: Vec<&str> = found.iter().map(|f| f.what.as_str()).collect();
    assert_eq!(found.len(), 3, "{text:#?}");
    assert!(text[0].contains("ipaddresspools.metallb.io belongs to a Helm release"));
    assert!(text[1].contains("Secret metallb-memberlist"));
    assert!(text[2].contains("carry no component=speaker label"));
    assert!(
        found[2].fix.contains("app.kubernetes.io/component=speaker"),
        "{}",
        found[2].fix
    );
}

#[test]
fn both_speakers_everywhere_is_found_and_a_clean_cluster_is_clean() {
    let both = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: metallb-speaker, namespace: metallb-system}
spec:
  selector: {matchLabels: {component: speaker, app: metallb}}
  template:
    metadata: {labels: {component: speaker, app: metallb}}
    spec: {containers: [{name: speaker, image: "quay.io/metallb/speaker:v0.15.2"}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: speaker, namespace: metallb-system}
spec:
  selector: {matchLabels: {app: ferrolb, component: speaker}}
  template:
    metadata: {labels: {app: ferrolb, component: speaker}}
    spec: {containers: [{name: speaker, image: "ferrolb:dev"}]}
"#;
    let found = findings(both);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].what.contains("both run on every node"));
    // Moved node by node: each DaemonSet confined by a node label.
    let moving = both.replacen(
        "    spec: {containers: [{name: speaker, image: \"ferrolb:dev\"}]}",
        "    spec: {nodeSelector: {ferrolb.io/speaker: \"true\"}, containers: [{name: speaker, image: \"ferrolb:dev\"}]}",
        1,
    );
    assert!(findings(&moving).is_empty());
    // FerroLB's own manifests, alone.
    let manifests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/ferrolb");
    let mut objects = Vec::new();
    for file in [
        "controller/controller.yaml",
        "speaker/speaker.yaml",
        "controller/webhook.yaml",
    ] {
        let text = std::fs::read_to_string(manifests.join(file)).unwrap();
        objects.extend(objects_of(&text).unwrap());
    }
    assert!(check(&objects, "metallb-system").is_empty());
}
