use super::*;

/// An AdmissionReview as the API server sends it (trimmed to what the webhook reads, with
/// the fields it does not read kept so the shape is real).
fn request(operation: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "metallb.io", "version": "v1beta1", "kind": object["kind"]},
            "resource": {"group": "metallb.io", "version": "v1beta1", "resource": "ipaddresspools"},
            "requestKind": {"group": "metallb.io", "version": "v1beta1", "kind": object["kind"]},
            "name": object["metadata"]["name"],
            "namespace": "metallb-system",
            "operation": operation,
            "userInfo": {"username": "admin", "groups": ["system:masters"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        }
    }))
    .unwrap()
}

fn pool(name: &str, addresses: &[&str]) -> Value {
    json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": "metallb-system", "uid": "x"},
        "spec": {"addresses": addresses},
    })
}

fn snapshot_with(objects: &[Value]) -> Snapshot {
    let mut snapshot = Snapshot {
        synced: true,
        ..Snapshot::default()
    };
    for value in objects {
        let object = Object::decode(value.clone()).unwrap();
        snapshot.objects.insert(ObjectKey::of(&object), object);
    }
    snapshot
}

fn verdict(response: &Value) -> (bool, String) {
    let r = &response["response"];
    assert_eq!(r["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(response["kind"], "AdmissionReview");
    assert_eq!(response["apiVersion"], "admission.k8s.io/v1");
    (
        r["allowed"].as_bool().unwrap(),
        r["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[test]
fn a_valid_pool_is_allowed_and_an_overlapping_one_denied_with_the_reason() {
    let snapshot = snapshot_with(&[pool("first", &["198.51.100.0/24"])]);
    let ok = review(
        &request("CREATE", pool("second", &["203.0.113.0/24"])),
        &snapshot,
        "metallb-system",
    );
    assert_eq!(verdict(&ok), (true, String::new()));
    let overlap = review(
        &request("CREATE", pool("second", &["198.51.100.128/25"])),
        &snapshot,
        "metallb-system",
    );
    let (allowed, message) = verdict(&overlap);
    assert!(!allowed);
    assert!(message.contains("overlaps"), "{message}");
    assert_eq!(overlap["response"]["status"]["code"], 403);
}

#[test]
fn a_broken_object_is_denied_naming_the_field() {
    let snapshot = snapshot_with(&[]);
    let bad = json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "bad", "namespace": "metallb-system"},
        "spec": {"addresses": "198.51.100.0/24"},
    });
    let (allowed, message) = verdict(&review(
        &request("CREATE", bad),
        &snapshot,
        "metallb-system",
    ));
    assert!(!allowed);
    assert!(
        message.contains("spec.addresses: invalid type"),
        "{message}"
    );
    let bad_range = pool("bad", &["198.51.100.9-198.51.100.1"]);
    let (allowed, message) = verdict(&review(
        &request("UPDATE", bad_range),
        &snapshot,
        "metallb-system",
    ));
    assert!(!allowed);
    assert!(message.contains("spec.addresses[0]"), "{message}");
}

#[test]
fn an_update_is_judged_against_the_object_it_replaces() {
    // Narrowing a pool is no overlap with its own old self.
    let snapshot = snapshot_with(&[pool("first", &["198.51.100.0/24"])]);
    let narrower = review(
        &request("UPDATE", pool("first", &["198.51.100.0/25"])),
        &snapshot,
        "metallb-system",
    );
    assert!(verdict(&narrower).0);
}

#[test]
fn problems_already_in_the_cluster_do_not_block_unrelated_changes() {
    // Two overlapping pools got in while the webhook was off: a new unrelated one passes.
    let snapshot = snapshot_with(&[
        pool("a", &["198.51.100.0/24"]),
        pool("b", &["198.51.100.0/25"]),
    ]);
    let unrelated = review(
        &request("CREATE", pool("c", &["203.0.113.0/24"])),
        &snapshot,
        "metallb-system",
    );
    assert!(verdict(&unrelated).0);
}

#[test]
fn metallbs_documented_objects_pass_and_other_namespaces_do_not() {
    let snapshot = snapshot_with(&[pool("first-pool", &["192.168.1.240-192.168.1.250"])]);
    let l2 = json!({"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
        "metadata": {"name": "example", "namespace": "metallb-system"}});
    assert!(verdict(&review(&request("CREATE", l2), &snapshot, "metallb-system")).0);
    let elsewhere = json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "x", "namespace": "default"}, "spec": {"addresses": ["203.0.113.0/24"]}});
    let (allowed, message) = verdict(&review(
        &request("CREATE", elsewhere),
        &snapshot,
        "metallb-system",
    ));
    assert!(!allowed);
    assert!(
        message.contains("must be in the metallb-system namespace"),
        "{message}"
    );
}

#[test]
fn deletions_other_kinds_and_garbage() {
    let snapshot = snapshot_with(&[]);
    assert!(
        verdict(&review(
            &request("DELETE", pool("x", &["not an address"])),
            &snapshot,
            "metallb-system"
        ))
        .0
    );
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "metallb-system"}});
    assert!(
        verdict(&review(
            &request("CREATE", service),
            &snapshot,
            "metallb-system"
        ))
        .0
    );
    for garbage in [&b""[..], b"{", b"[]", b"{\"request\": 5}", &[0xff; 64]] {
        let response = review(garbage, &snapshot, "metallb-system");
        assert_eq!(response["response"]["allowed"], false, "{garbage:?}");
    }
}

#[test]
fn nothing_is_judged_before_the_cluster_is_read() {
    let snapshot = Snapshot::default();
    let (allowed, message) = verdict(&review(
        &request("CREATE", pool("a", &["203.0.113.0/24"])),
        &snapshot,
        "metallb-system",
    ));
    assert!(!allowed);
    assert!(message.contains("not read the cluster yet"), "{message}");
}
