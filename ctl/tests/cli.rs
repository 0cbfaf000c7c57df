//! `ferrolbctl` as users run it: the real binary on real files.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ferrolbctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrolbctl"))
        .args(args)
        .output()
        .expect("ferrolbctl runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn seed(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/examples/seed")
        .join(name);
    assert!(
        path.exists(),
        "the seed configurations are missing: {}",
        path.display()
    );
    path.display().to_string()
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .display()
        .to_string()
}

#[test]
fn seed_objects_validate_unchanged() {
    let out = ferrolbctl(&[
        "validate",
        &seed("ipaddresspool.yaml"),
        &seed("service.yaml"),
    ]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(stdout(&out), "valid: 2 objects\n");
}

#[test]
fn seed_helm_values_validate_unchanged() {
    let out = ferrolbctl(&["validate", &seed("values.yaml")]);
    assert!(out.status.success(), "{}", stdout(&out));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("values.yaml");
    std::fs::write(&bad, "speaker:\n  memberlist:\n    mlBindPort: seven\n").unwrap();
    let out = ferrolbctl(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(
            "(document 1): Helm values: speaker.memberlist.mlBindPort: seven is not a port number"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn seed_configmaps_validate_convert_and_the_result_validates() {
    for name in ["configmap-layer2-list.yaml", "configmap-layer2-range.yaml"] {
        let out = ferrolbctl(&["validate", &seed(name)]);
        assert!(out.status.success(), "{name}: {}", stdout(&out));
        let converted = ferrolbctl(&["convert-configmap", &seed(name)]);
        assert!(
            converted.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&converted.stderr)
        );
        let text = stdout(&converted);
        assert!(
            text.contains("kind: IPAddressPool") && text.contains("kind: L2Advertisement"),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("converted.yaml");
        std::fs::write(&file, &text).unwrap();
        let out = ferrolbctl(&["validate", file.to_str().unwrap()]);
        assert!(out.status.success(), "{name} converted: {}", stdout(&out));
        assert_eq!(stdout(&out), "valid: 2 objects\n");
    }
}

#[test]
fn the_standalone_example_validates() {
    let out = ferrolbctl(&["validate", &repo("examples/standalone")]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn problems_name_file_object_field_and_reason_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pools.yaml"),
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: good, namespace: metallb-system}\nspec:\n  addresses: [198.51.100.0/24]\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bad, namespace: metallb-system}\nspec:\n  addresses: [198.51.100.9-198.51.100.1]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "kind: [\n").unwrap();
    let out = ferrolbctl(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines.iter().any(|l| l.contains("broken.yaml (document 1)")),
        "{text}"
    );
    let pool_line = lines
        .iter()
        .find(|l| l.contains("pools.yaml"))
        .expect("a line for pools.yaml");
    assert!(
        pool_line.contains(
            "pools.yaml (document 2): IPAddressPool \"bad\": spec.addresses[0]: invalid IP range"
        ),
        "{pool_line}"
    );
}

#[test]
fn a_missing_path_is_a_problem() {
    let out = ferrolbctl(&["validate", "/nonexistent/ferrolb"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("no such file or directory"));
}

#[test]
fn a_bad_configmap_fails_conversion_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("cm.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config, namespace: metallb-system}\ndata:\n  config: |\n    address-pools:\n    - name: x\n      protocol: layer2\n      addresses: [198.51.100.0/33]\n").unwrap();
    let out = ferrolbctl(&["convert-configmap", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid CIDR"));
    let out = ferrolbctl(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("ConfigMap \"config\": legacy MetalLB configuration"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn get_services_json_shows_status_and_the_pool_annotation() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["pool.yaml", "web.yaml", "nodes.yaml"] {
        std::fs::copy(
            repo(&format!("examples/standalone/{file}")),
            dir.path().join(file),
        )
        .unwrap();
    }
    let store =
        ferrolb_cluster::store::FileStore::open(dir.path(), "metallb-system", "ferrolb-controller")
            .unwrap();
    store
        .apply(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "demo", "annotations": {"metallb.io/ip-allocated-from-pool": "demo"}},
            "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.10"}]}}
        }))
        .unwrap();
    store.flush().unwrap();
    let store_dir = dir.path().to_str().unwrap();
    let out = ferrolbctl(&["--store", store_dir, "get", "services", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    let web = &list["items"][0];
    assert_eq!(web["kind"], "Service");
    assert_eq!(
        web["status"]["loadBalancer"]["ingress"][0]["ip"],
        "198.51.100.10"
    );
    assert_eq!(
        web["metadata"]["annotations"]["metallb.io/ip-allocated-from-pool"],
        "demo"
    );
    assert_eq!(web["spec"]["ports"][0]["port"], 80);

    let table = stdout(&ferrolbctl(&["--store", store_dir, "get", "services"]));
    assert!(
        table.lines().nth(1).unwrap().split_whitespace().eq([
            "demo",
            "web",
            "LoadBalancer",
            "198.51.100.10",
            "demo"
        ]),
        "{table}"
    );
    let yaml = stdout(&ferrolbctl(&[
        "--store", store_dir, "get", "pools", "-o", "yaml",
    ]));
    assert!(
        yaml.contains("kind: IPAddressPool") && yaml.contains("198.51.100.10-198.51.100.20"),
        "{yaml}"
    );
}

/// `bgp announce` refuses bad input in words before it opens any session.
#[test]
fn bgp_announce_refuses_bad_input_before_connecting() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let routes = dir.path().join("routes.txt");
    std::fs::write(&routes, "198.51.100.0/24\nnot-a-prefix\n").expect("written");
    let base = [
        "bgp",
        "announce",
        "--peer",
        "192.0.2.1",
        "--peer-as",
        "64500",
        "--local-as",
        "64501",
        "--local-address",
        "192.0.2.11",
    ];
    let routes = routes.display().to_string();
    for (extra, said) in [
        (
            vec!["--routes", routes.as_str()],
            "not a prefix: not-a-prefix",
        ),
        (
            vec!["--count", "10", "--from", "255.255.255.250"],
            "--count runs past the end of IPv4",
        ),
        (vec!["--community", "70000:1"], "number too large"),
        (
            vec!["--large-community", "1:2"],
            "a large community is A:B:C",
        ),
        (
            vec!["--hold-time", "2"],
            "--hold-time is 0 or at least 3 seconds",
        ),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra.iter().copied());
        let out = ferrolbctl(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(said), "{extra:?}: {stderr}");
    }
}

/// MetalLB's documentation's most common layer 2 configuration, and a folder of manifests
/// with kinds FerroLB does not read beside MetalLB's.
#[test]
fn metallbs_documented_layer2_setup_and_a_whole_manifests_folder_validate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("l2.yaml"),
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: first-pool\n  namespace: metallb-system\nspec:\n  addresses:\n  - 192.168.1.240-192.168.1.250\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: example\n  namespace: metallb-system\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("deployment.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: controller, namespace: metallb-system}\nspec: {replicas: 1}\n",
    )
    .unwrap();
    let out = ferrolbctl(&["validate", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("skipped: ")
            && text.contains("deployment.yaml (document 1): unsupported kind \"Deployment\""),
        "{text}"
    );
    assert!(text.ends_with("valid: 2 objects\n"), "{text}");
}

#[test]
fn migrate_check_reads_a_dump_and_says_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("crds.yaml"),
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apiextensions.k8s.io/v1\n  kind: CustomResourceDefinition\n  metadata: {name: bgppeers.metallb.io}\n  spec:\n    group: metallb.io\n    conversion: {strategy: Webhook}\n",
    )
    .unwrap();
    let out = ferrolbctl(&["migrate", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("problem: CRD bgppeers.metallb.io converts between versions")
            && text.contains("\n    fix: apply FerroLB's CRDs"),
        "{text}"
    );
    let clean = ferrolbctl(&["migrate", "check", &repo("manifests/ferrolb")]);
    assert!(clean.status.success(), "{}", stdout(&clean));
    assert!(
        stdout(&clean).starts_with("ok: nothing found"),
        "{}",
        stdout(&clean)
    );
}

#[test]
fn migrate_check_refuses_what_is_not_yaml_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dump.yaml"), "items: [\n\u{0}\u{7}").unwrap();
    let out = ferrolbctl(&["migrate", "check", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dump.yaml"), "{stderr}");
    // Objects of any shape (no kind, wrong types) are read past, not a crash.
    std::fs::write(
        dir.path().join("dump.yaml"),
        "- 5\n---\nkind: 7\nmetadata: {name: [1]}\nspec: {template: 3}\n---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: speaker, namespace: metallb-system}\nspec: {selector: 5, template: {spec: {containers: 9}}}\n",
    )
    .unwrap();
    let out = ferrolbctl(&["migrate", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout(&out).starts_with("problem: DaemonSet speaker already exists with selector {}"),
        "{}",
        stdout(&out)
    );
}

/// `ferrolbctl doctor` on the standalone example: before the controller ran, the Service
/// without its IP (exit 1); once it holds it, nothing (exit 0); then each planted problem
/// with its fix (exit 1). And a status command that reaches no API says so (exit 2).
#[tokio::test]
async fn doctor_finds_planted_problems_and_status_names_what_it_cannot_reach() {
    let dir = tempfile::tempdir().expect("a directory");
    for file in ["pool.yaml", "web.yaml", "nodes.yaml"] {
        std::fs::copy(
            repo(&format!("examples/standalone/{file}")),
            dir.path().join(file),
        )
        .expect("copying");
    }
    let store_dir = dir.path().display().to_string();
    let doctor = || ferrolbctl(&["--store", &store_dir, "doctor"]);
    let before = doctor();
    assert_eq!(before.status.code(), Some(1), "{}", stdout(&before));
    assert!(
        stdout(&before).contains("Service demo/web has no IP yet"),
        "{}",
        stdout(&before)
    );
    let store =
        ferrolb_cluster::store::FileStore::open(dir.path(), "metallb-system", "ferrolb-controller")
            .expect("the store");
    store
        .apply(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "demo", "annotations": {"metallb.io/ip-allocated-from-pool": "demo"}},
            "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.10"}]}}
        }))
        .expect("a status");
    store.flush().expect("written");
    let healthy = doctor();
    assert_eq!(healthy.status.code(), Some(0), "{}", stdout(&healthy));
    assert!(stdout(&healthy).starts_with("ok: no problem found"));
    std::fs::write(
        dir.path().join("planted.yaml"),
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: orphan, namespace: metallb-system}\nspec: {addresses: [203.0.113.0/28]}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy, namespace: kube-system}\ndata:\n  config.conf: |\n    mode: ipvs\n",
    )
    .expect("writing");
    // A speaker could announce web on no node: its Event is read from its log.
    let speaker =
        ferrolb_cluster::store::FileStore::open(dir.path(), "metallb-system", "ferrolb-speaker-n1")
            .expect("the store");
    let web = ferrolb_cluster::EventTarget {
        api_version: "v1".into(),
        kind: "Service".into(),
        namespace: Some("demo".into()),
        name: "web".into(),
        uid: None,
    };
    speaker
        .publish(ferrolb_cluster::Event::new(
            web,
            ferrolb_api::event_reason::EventReason::AnnounceFailed,
            "no node has eth9".into(),
        ))
        .expect("published");
    // Events are written in the background, within a flush interval.
    let log = dir.path().join("status/ferrolb-speaker-n1/events.log.json");
    for _ in 0..100 {
        if log.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Another component's log, damaged: its lines are skipped, the rest is still read.
    let damaged = dir.path().join("status/ferrolb-speaker-n2");
    std::fs::create_dir_all(&damaged).expect("a directory");
    std::fs::write(
        damaged.join("events.log.json"),
        "not JSON\n{\"reason\": \"announceFailed\"}\n\u{0}\u{ff}\n",
    )
    .expect("writing");
    let sick = doctor();
    assert_eq!(sick.status.code(), Some(1), "{}", stdout(&sick));
    let text = stdout(&sick);
    assert!(text.contains("IPVS mode without strictARP"), "{text}");
    assert!(text.contains("\"orphan\" is selected by no"), "{text}");
    assert!(
        text.contains("Service demo/web is not announced by layer 2: no node has eth9"),
        "{text}"
    );
    assert_eq!(text.matches("problem: ").count(), 3, "{text}");
    assert_eq!(text.matches("    fix: ").count(), 3, "{text}");
    // No speaker here (a port nothing listens on): the error says what it tried.
    let status = ferrolbctl(&["status", "--admin", "127.0.0.1:1"]);
    assert_eq!(status.status.code(), Some(2));
    let error = String::from_utf8_lossy(&status.stderr);
    assert!(
        error.contains("cannot reach a speaker's admin API at 127.0.0.1:1"),
        "{error}"
    );
}
