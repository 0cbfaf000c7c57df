//! The kustomizations build, and hold what the README and MIGRATION.md say they hold.
use std::process::Command;

fn kustomize(dir: &str) -> Option<Vec<serde_json::Value>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir);
    let output = Command::new("kubectl")
        .args(["kustomize", &path.display().to_string()])
        .output()
        .ok()?;
    assert!(
        output.status.success(),
        "{dir}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    Some(
        text.split("\n---\n")
            .map(|doc| {
                let value: serde_json::Value =
                    yaml_serde::from_str(doc).unwrap_or_else(|e| panic!("{dir}: {e}\n{doc}"));
                value
            })
            .collect(),
    )
}

fn names(objects: &[serde_json::Value], kind: &str) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .map(|o| o["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn the_kustomizations_build_and_hold_what_they_say() {
    let Some(everything) = kustomize("manifests/ferrolb") else {
        // As the lab tests: skipped on a machine without the tool, never under CI.
        assert!(
            std::env::var("CI").is_err(),
            "kubectl is missing, and CI must not pass by skipping"
        );
        eprintln!("skipped: no kubectl");
        return;
    };
    assert_eq!(names(&everything, "Deployment"), ["controller"]);
    assert_eq!(names(&everything, "DaemonSet"), ["speaker"]);
    assert_eq!(names(&everything, "CustomResourceDefinition").len(), 9);
    assert_eq!(
        names(&everything, "ValidatingWebhookConfiguration"),
        ["metallb-webhook-configuration"]
    );
    assert_eq!(names(&everything, "Service"), ["metallb-webhook-service"]);

    // The speaker reads its own pod (the owner of its statuses: METALLB_POD_NAME) and
    // removes a lost node's statuses with one deletecollection per kind.
    let daemonset = everything
        .iter()
        .find(|o| o["kind"] == "DaemonSet")
        .expect("one");
    let env = &daemonset["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .into_iter()
            .flatten()
            .any(|e| e["name"] == "METALLB_POD_NAME"
                && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"),
        "{env}"
    );
    let role = everything
        .iter()
        .find(|o| o["kind"] == "Role" && o["metadata"]["name"] == "ferrolb:speaker")
        .expect("the speaker's Role");
    let allows = |resource: &str, verb: &str| {
        role["rules"].as_array().into_iter().flatten().any(|rule| {
            let has = |field: &str, value: &str| {
                rule[field]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|v| v == value)
            };
            has("resources", resource) && has("verbs", verb)
        })
    };
    for (resource, verb) in [
        ("pods", "get"),
        ("pods", "list"),
        ("servicel2statuses", "deletecollection"),
        ("servicebgpstatuses", "deletecollection"),
    ] {
        assert!(
            allows(resource, verb),
            "the speaker may not {verb} {resource}: {role}"
        );
    }

    let migration = kustomize("manifests/migration/speakers").expect("kubectl ran once");
    assert_eq!(names(&migration, "DaemonSet"), ["ferrolb-speaker"]);
    assert!(
        names(&migration, "Namespace").is_empty(),
        "MetalLB's namespace is left alone"
    );
    assert!(names(&migration, "Deployment").is_empty());
    let speaker = migration
        .iter()
        .find(|o| o["kind"] == "DaemonSet")
        .expect("one");
    let pod = &speaker["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["ferrolb.io/speaker"], "true");
    assert_eq!(pod["serviceAccountName"], "ferrolb-speaker");
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"], "memberlist",
        "the same memberlist key as MetalLB's speakers"
    );

    let monitored = kustomize("manifests/ferrolb-with-monitoring").expect("kubectl ran once");
    assert_eq!(names(&monitored, "PodMonitor"), ["controller", "speaker"]);
    assert_eq!(names(&monitored, "PrometheusRule"), ["ferrolb"]);
}
