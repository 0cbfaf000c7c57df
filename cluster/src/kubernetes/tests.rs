//! The Kubernetes backend against kube-rs's tower-test mock: every request is checked.
use super::fake::{list, mock_cluster as mock, next};
use super::*;
use ferrolb_api::kind::Kind;
use http::Method;

fn mock_cluster(
    lists: BTreeMap<&'static str, serde_json::Value>,
) -> (
    KubeCluster,
    tokio::sync::mpsc::UnboundedReceiver<super::fake::Seen>,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    mock(lists, "metallb-system", "ferrolb-controller")
}

/// The first snapshot holding `count` objects (5 s at most).
async fn with_objects(cluster: &KubeCluster, count: usize) -> Arc<Snapshot> {
    let mut snapshots = cluster.snapshots();
    tokio::time::timeout(
        Duration::from_secs(5),
        snapshots.wait_for(|s| s.objects.len() == count),
    )
    .await
    .expect("no snapshot")
    .unwrap();
    snapshots.borrow().clone()
}

#[tokio::test]
async fn builds_one_snapshot_from_every_kind_once_all_are_listed() {
    let lists = BTreeMap::from([
        (
            "/apis/metallb.io/v1beta1/namespaces/metallb-system/ipaddresspools",
            list(
                "metallb.io/v1beta1",
                serde_json::json!([{
                    "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                    "metadata": {"name": "first", "namespace": "metallb-system", "resourceVersion": "1"},
                    "spec": {"addresses": ["198.51.100.0/24"]}
                }]),
            ),
        ),
        (
            "/api/v1/services",
            list(
                "v1",
                serde_json::json!([{
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "web", "namespace": "demo", "resourceVersion": "1"},
                    "spec": {"type": "LoadBalancer"}
                }]),
            ),
        ),
    ]);
    let (cluster, _seen, mut listed) = mock_cluster(lists);
    let mut snapshots = cluster.snapshots();
    tokio::time::timeout(
        Duration::from_secs(5),
        snapshots.wait_for(|s| !s.objects.is_empty()),
    )
    .await
    .expect("no snapshot")
    .unwrap();
    let snapshot = snapshots.borrow().clone();
    assert!(
        snapshot
            .get(&ObjectKey::new(
                Kind::IPAddressPool,
                Some("metallb-system"),
                "first"
            ))
            .is_some()
    );
    assert!(
        snapshot
            .get(&ObjectKey::new(Kind::Service, Some("demo"), "web"))
            .is_some()
    );
    assert_eq!(snapshot.objects.len(), 2);

    let mut paths = Vec::new();
    while let Ok(path) = listed.try_recv() {
        paths.push(path);
    }
    paths.sort();
    let ns = "/namespaces/metallb-system";
    let mut expected: Vec<String> = vec![
        "/api/v1/services".into(),
        "/apis/discovery.k8s.io/v1/endpointslices".into(),
        "/api/v1/nodes".into(),
        "/api/v1/namespaces".into(),
        format!("/api/v1{ns}/secrets"),
        format!("/api/v1{ns}/configmaps"),
        format!("/apis/metallb.io/v1beta1{ns}/ipaddresspools"),
        format!("/apis/metallb.io/v1beta1{ns}/l2advertisements"),
        format!("/apis/metallb.io/v1beta1{ns}/bgpadvertisements"),
        format!("/apis/metallb.io/v1beta1{ns}/communities"),
        format!("/apis/metallb.io/v1beta1{ns}/bfdprofiles"),
        format!("/apis/metallb.io/v1beta2{ns}/bgppeers"),
        format!("/apis/metallb.io/v1beta1{ns}/servicel2statuses"),
        format!("/apis/metallb.io/v1beta1{ns}/servicebgpstatuses"),
        format!("/apis/metallb.io/v1beta1{ns}/configurationstates"),
    ];
    expected.sort();
    assert_eq!(paths, expected);
}

#[tokio::test]
async fn applies_annotations_and_status_server_side() {
    let (cluster, mut seen, _listed) = mock_cluster(BTreeMap::new());
    cluster
        .apply(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "demo", "annotations": {"metallb.io/ip-allocated-from-pool": "first"}},
            "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}}
        }))
        .await
        .unwrap();

    let main = next(&mut seen).await;
    assert_eq!(main.method, Method::PATCH);
    assert_eq!(main.path, "/api/v1/namespaces/demo/services/web");
    assert!(
        main.query.contains("fieldManager=ferrolb-controller") && main.query.contains("force=true"),
        "{}",
        main.query
    );
    assert_eq!(main.content_type, "application/apply-patch+yaml");
    assert_eq!(
        main.body,
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "demo", "annotations": {"metallb.io/ip-allocated-from-pool": "first"}}})
    );

    let status = next(&mut seen).await;
    assert_eq!(status.method, Method::PATCH);
    assert_eq!(status.path, "/api/v1/namespaces/demo/services/web/status");
    assert!(status.query.contains("fieldManager=ferrolb-controller"));
    assert_eq!(
        status.body,
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "demo"}, "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}}})
    );
}

#[tokio::test]
async fn applies_pool_status_counters_to_the_status_subresource_only() {
    let (cluster, mut seen, _listed) = mock_cluster(BTreeMap::new());
    cluster
        .apply(serde_json::json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "first", "namespace": "metallb-system"},
            "status": {"assignedIPv4": 1, "assignedIPv6": 0, "availableIPv4": 255, "availableIPv6": 0}
        }))
        .await
        .unwrap();
    let request = next(&mut seen).await;
    assert_eq!(
        request.path,
        "/apis/metallb.io/v1beta1/namespaces/metallb-system/ipaddresspools/first/status"
    );
    assert_eq!(request.body["status"]["availableIPv4"], 255);
}

#[tokio::test]
async fn publishes_events() {
    let (cluster, mut seen, _listed) = mock_cluster(BTreeMap::new());
    cluster
        .publish(Event {
            regarding: crate::EventTarget {
                api_version: "v1".into(),
                kind: "Service".into(),
                namespace: Some("demo".into()),
                name: "web".into(),
                uid: Some("u-1".into()),
            },
            type_: EventType::Warning,
            reason: ferrolb_api::event_reason::EventReason::AllocationFailed,
            message: "no available IPs".into(),
        })
        .await
        .unwrap();
    let request = next(&mut seen).await;
    assert_eq!(request.method, Method::POST);
    assert_eq!(
        request.path,
        "/apis/events.k8s.io/v1/namespaces/demo/events"
    );
    assert_eq!(request.body["reason"], "AllocationFailed");
    assert_eq!(request.body["note"], "no available IPs");
    assert_eq!(request.body["type"], "Warning");
    assert_eq!(request.body["regarding"]["name"], "web");
    assert_eq!(request.body["regarding"]["uid"], "u-1");
    assert_eq!(request.body["reportingController"], "ferrolb-controller");
}

#[tokio::test]
async fn deletes_owned_objects_and_ignores_missing_ones() {
    let (cluster, mut seen, _listed) = mock_cluster(BTreeMap::new());
    cluster
        .delete(&ObjectKey::new(
            Kind::ServiceL2Status,
            Some("metallb-system"),
            "l2-web",
        ))
        .await
        .unwrap();
    let request = next(&mut seen).await;
    assert_eq!(request.method, Method::DELETE);
    assert_eq!(
        request.path,
        "/apis/metallb.io/v1beta1/namespaces/metallb-system/servicel2statuses/l2-web"
    );
}

/// A lost speaker's statuses: one delete of the collection, by its node label.
#[tokio::test]
async fn deletes_labelled_objects_in_one_request() {
    let (cluster, mut seen, _listed) = mock_cluster(BTreeMap::new());
    let deleted = cluster
        .delete_labelled(
            Kind::ServiceBGPStatus,
            "metallb-system",
            ("metallb.io/node", "n3"),
        )
        .await;
    let request = next(&mut seen).await;
    assert_eq!(request.method, Method::DELETE);
    assert_eq!(
        request.path,
        "/apis/metallb.io/v1beta1/namespaces/metallb-system/servicebgpstatuses"
    );
    assert!(
        request
            .query
            .contains("labelSelector=metallb.io%2Fnode%3Dn3"),
        "{}",
        request.query
    );
    deleted.expect("deleted");
}

#[tokio::test]
async fn clearing_removes_the_annotation_with_a_merge_patch_and_empties_ingress() {
    let (cluster, mut seen, _listed) = mock_cluster(BTreeMap::new());
    cluster
        .apply(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "demo", "annotations": {"metallb.io/ip-allocated-from-pool": null}},
            "status": {"loadBalancer": {"ingress": []}}
        }))
        .await
        .unwrap();
    let removal = next(&mut seen).await;
    assert_eq!(removal.method, Method::PATCH);
    assert_eq!(removal.path, "/api/v1/namespaces/demo/services/web");
    assert_eq!(removal.content_type, "application/merge-patch+json");
    assert_eq!(
        removal.body,
        serde_json::json!({"metadata": {"annotations": {"metallb.io/ip-allocated-from-pool": null}}})
    );
    let status = next(&mut seen).await;
    assert_eq!(status.path, "/api/v1/namespaces/demo/services/web/status");
    assert_eq!(status.content_type, "application/apply-patch+yaml");
    assert_eq!(
        status.body["status"],
        serde_json::json!({"loadBalancer": {"ingress": []}})
    );
}

#[tokio::test]
async fn lists_the_speaker_pods_by_label_for_their_ips() {
    let lists = BTreeMap::from([(
        "/api/v1/namespaces/metallb-system/pods",
        list(
            "v1",
            serde_json::json!([
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "speaker-a", "namespace": "metallb-system"},
                 "status": {"podIP": "192.0.2.11"}},
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "speaker-b", "namespace": "metallb-system"},
                 "status": {"podIP": "2001:db8::12"}},
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "speaker-pending", "namespace": "metallb-system"},
                 "status": {}}
            ]),
        ),
    )]);
    let (cluster, _seen, mut listed) = mock_cluster(lists);
    let ips = cluster
        .pod_ips("metallb-system", "app=ferrolb,component=speaker")
        .await
        .expect("listed");
    assert_eq!(
        ips,
        [
            "192.0.2.11".parse::<std::net::IpAddr>().unwrap(),
            "2001:db8::12".parse().unwrap()
        ]
    );
    let mut requests = Vec::new();
    while let Ok(path) = listed.try_recv() {
        requests.push(path);
    }
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("/api/v1/namespaces/metallb-system/pods?")
                && r.contains("labelSelector=app%3Dferrolb%2Ccomponent%3Dspeaker")),
        "{requests:?}"
    );
}

/// MetalLB's most common L2Advertisement has no `spec`; a broken object and a missing CRD must
/// not stop the rest: each is reported, and everything else is acted on.
#[tokio::test]
async fn objects_are_decoded_one_at_a_time_and_a_missing_crd_stops_nothing() {
    let ns = "/namespaces/metallb-system";
    let l2 = format!("/apis/metallb.io/v1beta1{ns}/l2advertisements");
    let pools = format!("/apis/metallb.io/v1beta1{ns}/ipaddresspools");
    let peers = format!("/apis/metallb.io/v1beta2{ns}/bgppeers");
    let lists = BTreeMap::from([
        (
            &*Box::leak(l2.into_boxed_str()),
            // Items as a list returns them: without apiVersion and kind.
            list(
                "metallb.io/v1beta1",
                serde_json::json!([
                    {"metadata": {"name": "example", "namespace": "metallb-system", "resourceVersion": "1"}},
                ]),
            ),
        ),
        (
            &*Box::leak(pools.into_boxed_str()),
            list(
                "metallb.io/v1beta1",
                serde_json::json!([
                    {"metadata": {"name": "good", "namespace": "metallb-system", "resourceVersion": "1"},
                     "spec": {"addresses": ["198.51.100.0/24"]}},
                    {"metadata": {"name": "broken", "namespace": "metallb-system", "resourceVersion": "1"},
                     "spec": {"addresses": "198.51.100.0/24"}},
                ]),
            ),
        ),
        (&*Box::leak(peers.into_boxed_str()), serde_json::Value::Null),
    ]);
    let (cluster, _seen, _listed) = mock_cluster(lists);
    let mut snapshots = cluster.snapshots();
    tokio::time::timeout(Duration::from_secs(10), snapshots.wait_for(|s| s.synced))
        .await
        .expect("a missing CRD stalled the snapshot")
        .unwrap();
    let snapshot = snapshots.borrow().clone();
    let key = |kind, name| ObjectKey::new(kind, Some("metallb-system"), name);
    let Some(Object::L2Advertisement(l2)) = snapshot.get(&key(Kind::L2Advertisement, "example"))
    else {
        panic!("the spec-less L2Advertisement is missing: {snapshot:#?}");
    };
    assert_eq!(
        l2.spec,
        ferrolb_api::v1beta1::L2AdvertisementSpec::default()
    );
    assert!(snapshot.get(&key(Kind::IPAddressPool, "good")).is_some());
    assert!(snapshot.get(&key(Kind::IPAddressPool, "broken")).is_none());
    let problems: Vec<String> = snapshot.problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems.iter().any(|p| p.starts_with(
            "kubernetes: invalid IPAddressPool metallb-system/broken: spec.addresses: invalid type"
        )),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("BGPPeer: the API server does not know it (is its CRD installed?)")),
        "{problems:#?}"
    );
}

/// MetalLB's controller creates the memberlist Secret when it is missing: one POST, the key
/// as `stringData.secretkey`.
#[tokio::test]
async fn creates_the_memberlist_secret() {
    let (cluster, mut seen, _listed) = mock_cluster(BTreeMap::new());
    let cluster = crate::Cluster::Kube(Box::new(cluster));
    let created = cluster
        .create_memberlist_secret("metallb-system", "memberlist", "c2VjcmV0LWtleS0xMjM0NQ")
        .await
        .unwrap();
    assert!(created);
    let post = next(&mut seen).await;
    assert_eq!(post.method, Method::POST);
    assert_eq!(post.path, "/api/v1/namespaces/metallb-system/secrets");
    assert_eq!(post.body["metadata"]["name"], "memberlist");
    // The key's text is the Secret's bytes (base64 in the body), as MetalLB's controller
    // writes it.
    assert_eq!(
        post.body["data"],
        serde_json::json!({"secretkey": "YzJWamNtVjBMV3RsZVMweE1qTTBOUQ=="})
    );
}

/// Without the IPAddressPool kind nothing can be acted on safely (every Service would lose
/// its IPs): the snapshot waits for it.
#[tokio::test]
async fn a_missing_pool_kind_is_waited_for() {
    let pools: &'static str = "/apis/metallb.io/v1beta1/namespaces/metallb-system/ipaddresspools";
    let (cluster, _seen, _listed) =
        mock_cluster(BTreeMap::from([(pools, serde_json::Value::Null)]));
    let mut snapshots = cluster.snapshots();
    assert!(
        tokio::time::timeout(Duration::from_secs(1), snapshots.wait_for(|s| s.synced))
            .await
            .is_err(),
        "acted without pools"
    );
}

/// The speaker's statuses name its pod as owner: the pod is read once for its uid.
#[tokio::test]
async fn reads_the_own_pod_for_an_owner_reference() {
    let lists = BTreeMap::from([(
        "/api/v1/namespaces/metallb-system/pods/speaker-x1",
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "speaker-x1", "namespace": "metallb-system", "uid": "9f1c-uid"}
        }),
    )]);
    let (cluster, _seen, mut listed) = mock_cluster(lists);
    let reference = cluster
        .pod_reference("metallb-system", "speaker-x1")
        .await
        .expect("read");
    assert_eq!(
        serde_json::to_value(&reference).expect("serialises"),
        serde_json::json!({"apiVersion": "v1", "kind": "Pod", "name": "speaker-x1", "uid": "9f1c-uid"})
    );
    assert_eq!(
        listed.try_recv().ok().as_deref(),
        Some("/api/v1/namespaces/metallb-system/pods/speaker-x1")
    );
    // A pod that is not there is an error, not a reference without uid.
    assert!(
        cluster
            .pod_reference("metallb-system", "gone")
            .await
            .is_err()
    );
}

/// What no component reads is not held: server-side apply's managedFields on every object,
/// and the container images in a Node's status.
#[tokio::test]
async fn managed_fields_and_node_images_are_not_kept() {
    let managed = serde_json::json!([{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:type": {}}}}]);
    let lists = BTreeMap::from([
        (
            "/api/v1/services",
            list(
                "v1",
                serde_json::json!([{
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "web", "namespace": "demo", "resourceVersion": "1", "managedFields": managed},
                    "spec": {"type": "LoadBalancer"}
                }]),
            ),
        ),
        (
            "/api/v1/nodes",
            list(
                "v1",
                serde_json::json!([{
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": "n1", "resourceVersion": "1", "managedFields": managed},
                    "status": {
                        "addresses": [{"type": "InternalIP", "address": "192.0.2.11"}],
                        "images": [{"names": ["registry.example/app:1.0"], "sizeBytes": 1000}]
                    }
                }]),
            ),
        ),
    ]);
    let (cluster, _seen, _listed) = mock_cluster(lists);
    let snapshot = with_objects(&cluster, 2).await;
    let service = snapshot.services().next().expect("the Service");
    assert_eq!(service.metadata.name.as_deref(), Some("web"));
    assert_eq!(service.metadata.managed_fields, None);
    let node = snapshot.nodes().next().expect("the Node");
    assert_eq!(node.metadata.managed_fields, None);
    let status = node.status.as_ref().expect("the status is kept");
    assert_eq!(status.images, None);
    assert_eq!(status.addresses.as_ref().map(Vec::len), Some(1));
}

/// A speaker's watches keep Services and EndpointSlices as slim records, as they arrive.
#[tokio::test]
async fn a_speaker_keeps_services_and_slices_slim() {
    let lists = BTreeMap::from([
        (
            "/api/v1/services",
            list(
                "v1",
                serde_json::json!([{
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "web", "namespace": "demo", "resourceVersion": "1"},
                    "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
                    "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}}
                }]),
            ),
        ),
        (
            "/apis/discovery.k8s.io/v1/endpointslices",
            list(
                "discovery.k8s.io/v1",
                serde_json::json!([{
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": "web-1", "namespace": "demo", "resourceVersion": "1",
                                 "labels": {"kubernetes.io/service-name": "web"}},
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": ["10.0.0.1"], "nodeName": "n1"}]
                }]),
            ),
        ),
    ]);
    let (cluster, _seen, _listed) = super::fake::mock_cluster_keeping(
        lists,
        "metallb-system",
        "ferrolb-speaker",
        ferrolb_api::objects::Detail::Speaker,
    );
    let snapshot = with_objects(&cluster, 2).await;
    let key = ObjectKey::new(Kind::Service, Some("demo"), "web");
    let Some(Object::SlimService(service)) = snapshot.get(&key) else {
        panic!("a slim Service: {:?}", snapshot.objects);
    };
    assert!(service.is_ours(None));
    assert_eq!(
        *service.ips,
        ["198.51.100.7".parse::<std::net::IpAddr>().unwrap()]
    );
    let key = ObjectKey::new(Kind::EndpointSlice, Some("demo"), "web-1");
    let Some(Object::SlimEndpointSlice(slice)) = snapshot.get(&key) else {
        panic!("a slim EndpointSlice: {:?}", snapshot.objects);
    };
    assert_eq!(slice.service.as_deref(), Some("web"));
    assert_eq!(slice.endpoints[0].node_name.as_deref(), Some("n1"));
}
