use super::*;
use serde_json::json;

fn decode(value: serde_json::Value) -> Result<Object, DecodeError> {
    Object::decode(value)
}

fn meta() -> serde_json::Value {
    json!({"name": "example", "namespace": "metallb-system"})
}

#[test]
fn kinds_whose_spec_metallb_does_not_require_decode_without_one() {
    for kind in [
        "L2Advertisement",
        "BGPAdvertisement",
        "Community",
        "BFDProfile",
    ] {
        for spec in [None, Some(serde_json::Value::Null), Some(json!({}))] {
            let mut value =
                json!({"apiVersion": "metallb.io/v1beta1", "kind": kind, "metadata": meta()});
            if let Some(spec) = spec.clone() {
                value["spec"] = spec;
            }
            let object = decode(value).unwrap_or_else(|e| panic!("{kind} with spec {spec:?}: {e}"));
            assert_eq!(object.kind().name(), kind);
        }
    }
    let Ok(Object::L2Advertisement(l2)) = decode(json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement", "metadata": meta(),
    })) else {
        panic!("an L2Advertisement");
    };
    assert_eq!(
        l2.spec,
        v1beta1::L2AdvertisementSpec::default(),
        "no spec means every pool, every node"
    );
}

#[test]
fn a_pool_without_spec_is_refused_naming_the_object() {
    let error = decode(
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": meta()}),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid IPAddressPool metallb-system/example: missing field `spec`"
    );
}

#[test]
fn a_peer_without_spec_is_refused_for_its_missing_asn() {
    let error =
        decode(json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": meta()}))
            .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid BGPPeer metallb-system/example: spec: missing field `myASN`"
    );
}

#[test]
fn an_empty_status_as_metallbs_converter_wrote_it_is_no_status() {
    for status in [json!({}), serde_json::Value::Null] {
        let Ok(Object::IPAddressPool(pool)) = decode(json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": meta(),
            "spec": {"addresses": ["192.0.2.0/24"]}, "status": status,
        })) else {
            panic!("a pool");
        };
        assert_eq!(pool.status, None);
    }
}

#[test]
fn a_wrong_field_is_named_by_its_path() {
    let error = decode(json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement", "metadata": meta(),
        "spec": {"nodeSelectors": [{"matchLabels": {"zone": 5}}]},
    }))
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("invalid L2Advertisement metallb-system/example: spec.nodeSelectors[0].matchLabels.zone: "),
        "{text}"
    );
}

#[test]
fn a_kind_ferrolb_does_not_read_is_told_apart_from_a_broken_one() {
    let deployment =
        decode(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta()}))
            .unwrap_err();
    assert!(deployment.is_unsupported_kind());
    let broken = decode(
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": meta()}),
    )
    .unwrap_err();
    assert!(!broken.is_unsupported_kind());
}

#[test]
fn a_spec_is_not_invented_outside_metallb_io() {
    let Ok(Object::Service(service)) =
        decode(json!({"apiVersion": "v1", "kind": "Service", "metadata": meta()}))
    else {
        panic!("a Service");
    };
    assert_eq!(service.spec, None);
}

#[test]
fn a_speaker_keeps_slim_services_and_slices_that_go_back_to_json_and_decode_the_same() {
    let yaml = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
  labels: {app: web}
  annotations: {metallb.io/loadBalancerIPs: 198.51.100.7}
spec:
  type: LoadBalancer
  loadBalancerClass: ferrolb
  externalTrafficPolicy: Local
  ports: [{port: 80}]
status:
  loadBalancer:
    ingress: [{ip: 198.51.100.7}, {hostname: lb.example}, {ip: "2001:db8::7"}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web, app: web}}
addressType: IPv4
endpoints:
- {addresses: [10.0.0.1], nodeName: n1}
- {addresses: [10.0.0.2], nodeName: n2, conditions: {ready: false}}
- {addresses: [10.0.0.3]}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
"#;
    let full: Vec<Object> = Object::decode_yaml_stream(yaml)
        .into_iter()
        .map(|(_, o)| o.unwrap())
        .collect();
    let slim: Vec<Object> = Object::decode_yaml_stream_as(yaml, Detail::Speaker)
        .into_iter()
        .map(|(_, o)| o.unwrap())
        .collect();
    assert!(matches!(full[0], Object::Service(_)));
    assert!(matches!(full[1], Object::EndpointSlice(_)));
    let Object::SlimService(service) = &slim[0] else {
        panic!("a slim Service: {:?}", slim[0]);
    };
    assert_eq!(
        **service,
        slim::Service {
            namespace: Some("demo".into()),
            name: "web".into(),
            labels: [("app".to_string(), "web".to_string())].into(),
            load_balancer: true,
            load_balancer_class: Some("ferrolb".into()),
            local_traffic: true,
            ips: [
                "198.51.100.7".parse().unwrap(),
                "2001:db8::7".parse().unwrap()
            ]
            .into(),
        }
    );
    assert!(service.is_ours(Some("ferrolb")) && !service.is_ours(None));
    assert_eq!(service.key().unwrap().to_string(), "demo/web");
    let Object::SlimEndpointSlice(slice) = &slim[1] else {
        panic!("a slim EndpointSlice: {:?}", slim[1]);
    };
    let endpoints: Vec<(Option<&str>, bool)> = slice
        .endpoints
        .iter()
        .map(|e| (e.node_name.as_deref(), e.ready))
        .collect();
    assert_eq!(
        endpoints,
        [(Some("n1"), true), (Some("n2"), false), (None, true)],
        "readiness unset counts as ready"
    );
    assert_eq!(slice.service.as_deref(), Some("web"));
    let (Some(a), Some(b)) = (&service.namespace, &slice.namespace) else {
        panic!("both have a namespace");
    };
    assert!(Arc::ptr_eq(a, b), "one copy of each namespace");
    assert!(matches!(slim[2], Object::Node(_)), "other kinds stay full");
    // Back to JSON (as status merges do) and decoded again: the same records, keys and kinds.
    for (object, full) in slim.iter().zip(&full).take(2) {
        let again = Object::decode(object.to_json().unwrap())
            .unwrap()
            .kept_as(Detail::Speaker);
        assert_eq!(&again, object);
        assert_eq!(ObjectKey::of(&again), ObjectKey::of(full));
    }
}
