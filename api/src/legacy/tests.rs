use super::*;

fn configmap(config: &str) -> String {
    let indented: String = config.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: metallb-system\n  name: config\ndata:\n  config: |\n{indented}"
    )
}

#[test]
fn converts_layer2_pools_with_one_l2advertisement_each() {
    let converted = convert_configmap_yaml(&configmap(
        "address-pools:\n- name: Default_Pool\n  protocol: layer2\n  addresses:\n  - 198.51.100.1-198.51.100.2\n- name: second\n  protocol: layer2\n  auto-assign: false\n  addresses: [203.0.113.0/28]",
    ))
    .unwrap();
    let names: Vec<_> = converted
        .pools
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["default-pool", "second"]);
    assert_eq!(converted.pools[1].spec.auto_assign, Some(false));
    let l2: Vec<_> = converted
        .l2_advertisements
        .iter()
        .map(|a| {
            (
                a.metadata.name.clone().unwrap(),
                a.spec.ip_address_pools.clone(),
            )
        })
        .collect();
    assert_eq!(
        l2,
        [
            ("l2advertisement1".into(), vec!["default-pool".to_string()]),
            ("l2advertisement2".into(), vec!["second".to_string()])
        ]
    );
    assert!(converted.to_yaml().contains("kind: L2Advertisement"));
}

#[test]
fn converts_bgp_peers_advertisements_communities_and_bfd() {
    let converted = convert_configmap_yaml(&configmap(
        r#"peers:
- peer-address: 192.0.2.1
  peer-asn: 64501
  my-asn: 64500
  bfd-profile: Fast_BFD
  node-selectors:
  - match-labels: {rack: "1"}
bgp-communities:
  no-advertise: 65535:65282
bfd-profiles:
- name: Fast_BFD
  receive-interval: 50
address-pools:
- name: bgp-pool
  protocol: bgp
  addresses: [198.51.100.0/24]
  bgp-advertisements:
  - aggregation-length: 24
    localpref: 100
    communities: [no-advertise]
  - {}
- name: plain
  protocol: bgp
  addresses: [203.0.113.0/24]
"#,
    ))
    .unwrap();
    let peer = &converted.peers[0];
    assert_eq!(peer.metadata.name.as_deref(), Some("peer1"));
    assert_eq!(peer.spec.hold_time.as_deref(), Some("90s"));
    assert_eq!(peer.spec.bfd_profile, "fast-bfd");
    assert_eq!(peer.spec.node_selectors.len(), 1);
    assert_eq!(
        converted.bfd_profiles[0].metadata.name.as_deref(),
        Some("fast-bfd")
    );
    let advs: Vec<_> = converted
        .bgp_advertisements
        .iter()
        .map(|a| {
            (
                a.metadata.name.clone().unwrap(),
                a.spec.ip_address_pools[0].clone(),
            )
        })
        .collect();
    assert_eq!(
        advs,
        [
            ("bgpadvertisement1".into(), "bgp-pool".into()),
            ("bgpadvertisement2".into(), "bgp-pool".into()),
            ("bgpadvertisement3".into(), "plain".into())
        ]
    );
    assert_eq!(
        converted.communities[0].metadata.name.as_deref(),
        Some("communities")
    );
    assert_eq!(
        converted.communities[0].spec.communities[0].value,
        "65535:65282"
    );
    assert!(converted.l2_advertisements.is_empty());
}

#[test]
fn rejects_what_metallb_rejected() {
    let err = |config: &str| {
        convert_configmap_yaml(&configmap(config))
            .unwrap_err()
            .to_string()
    };
    assert!(
        err("address-pools:\n- name: p\n  addresses: [198.51.100.0/24]")
            .contains("missing the protocol")
    );
    assert!(
        err("address-pools:\n- name: p\n  protocol: l3\n  addresses: [198.51.100.0/24]")
            .contains("unknown protocol")
    );
    assert!(
        err("address-pools:\n- name: p\n  protocol: layer2\n  addresses: [198.51.100.0/33]")
            .contains("invalid CIDR")
    );
    assert!(err("address-poolz: []").contains("unknown field"));
    assert!(
        err("address-pools:\n- name: \"123\"\n  protocol: layer2\n  addresses: [198.51.100.0/24]")
            .contains("no letter")
    );
    assert!(convert_configmap_yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n").is_err());
}

#[test]
fn names_follow_metallb() {
    assert_eq!(
        kubernetes_name("IPAddressPool", "01-numbered-addresspool").unwrap(),
        "numbered-addresspool"
    );
    assert_eq!(
        kubernetes_name("IPAddressPool", "Capitalized-AddressPool").unwrap(),
        "capitalized-addresspool"
    );
    assert_eq!(
        kubernetes_name("BFDProfile", "underscored_bfd_profile").unwrap(),
        "underscored-bfd-profile"
    );
    assert_eq!(
        kubernetes_name("IPAddressPool", "default").unwrap(),
        "default"
    );
}
