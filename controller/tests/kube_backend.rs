//! One controller pass against a fake Kubernetes API (kube-rs's tower-test mock): the
//! Service's annotation and status, the pool counters, the ConfigurationState and the Event
//! are each checked as the request that carries them.
use ferrolb_cluster::Cluster;
use ferrolb_cluster::kubernetes::fake::{Seen, list, mock_cluster, next};
use ferrolb_controller::reconcile::Controller;
use ferrolb_controller::writer::Writer;
use http::Method;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn a_pass_writes_status_annotation_counters_state_and_an_event() {
    let lists = BTreeMap::from([
        (
            "/apis/metallb.io/v1beta1/namespaces/metallb-system/ipaddresspools",
            list(
                "metallb.io/v1beta1",
                json!([{
                    "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                    "metadata": {"name": "blue", "namespace": "metallb-system", "resourceVersion": "1"},
                    "spec": {"addresses": ["198.51.100.0/30"]}
                }]),
            ),
        ),
        (
            "/api/v1/services",
            list(
                "v1",
                json!([{
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "web", "namespace": "demo", "uid": "u-1", "resourceVersion": "1"},
                    "spec": {"type": "LoadBalancer", "ipFamilies": ["IPv4"], "ports": [{"port": 80}]}
                }]),
            ),
        ),
    ]);
    let (kube, mut seen, _listed) = mock_cluster(lists, "metallb-system", "ferrolb-controller");
    let cluster = Cluster::Kube(Box::new(kube));
    let mut snapshots = cluster.snapshots();
    tokio::time::timeout(
        Duration::from_secs(5),
        snapshots.wait_for(|s| s.objects.len() == 2),
    )
    .await
    .expect("the first snapshot")
    .unwrap();
    let snapshot = snapshots.borrow().clone();

    let actions = Controller::new("metallb-system", None)
        .reconcile(&snapshot, k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    assert!(
        Writer::default()
            .execute(
                &cluster,
                actions,
                &ferrolb_cluster::component::Health::new()
            )
            .await
    );

    let mut requests: Vec<Seen> = Vec::new();
    for _ in 0..6 {
        requests.push(next(&mut seen).await);
    }
    let find = |method: Method, path: &str| {
        requests
            .iter()
            .find(|r| r.method == method && r.path == path)
            .unwrap_or_else(|| {
                panic!(
                    "no {method} {path}; saw {:#?}",
                    requests
                        .iter()
                        .map(|r| (&r.method, &r.path))
                        .collect::<Vec<_>>()
                )
            })
    };

    let annotation = find(Method::PATCH, "/api/v1/namespaces/demo/services/web");
    assert!(
        annotation.query.contains("fieldManager=ferrolb-controller")
            && annotation.query.contains("force=true")
    );
    assert_eq!(annotation.content_type, "application/apply-patch+yaml");
    assert_eq!(
        annotation.body["metadata"]["annotations"],
        json!({"metallb.io/ip-allocated-from-pool": "blue"})
    );

    let status = find(Method::PATCH, "/api/v1/namespaces/demo/services/web/status");
    assert_eq!(
        status.body["status"],
        json!({"loadBalancer": {"ingress": [{"ip": "198.51.100.0"}]}})
    );

    let counters = find(
        Method::PATCH,
        "/apis/metallb.io/v1beta1/namespaces/metallb-system/ipaddresspools/blue/status",
    );
    assert_eq!(
        counters.body["status"],
        json!({"assignedIPv4": 1, "assignedIPv6": 0, "availableIPv4": 3, "availableIPv6": 0})
    );

    find(
        Method::PATCH,
        "/apis/metallb.io/v1beta1/namespaces/metallb-system/configurationstates/controller",
    );
    let state = find(
        Method::PATCH,
        "/apis/metallb.io/v1beta1/namespaces/metallb-system/configurationstates/controller/status",
    );
    assert_eq!(state.body["status"]["result"], "Valid");

    let event = find(
        Method::POST,
        "/apis/events.k8s.io/v1/namespaces/demo/events",
    );
    assert_eq!(event.body["reason"], "IPAllocated");
    assert_eq!(event.body["type"], "Normal");
    assert_eq!(event.body["regarding"]["uid"], "u-1");
    assert!(
        event.body["note"]
            .as_str()
            .unwrap()
            .contains("198.51.100.0")
    );
}
