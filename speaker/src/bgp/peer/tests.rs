//! BGPPeers as MetalLB users write them, turned into sessions.
use super::*;
use ferrolb_api::config::{Config, ConfigObjects};
use ferrolb_api::objects::Object;

fn peers(yaml: &str) -> Vec<Peer> {
    let objects: Vec<Object> = Object::decode_yaml_stream(yaml)
        .into_iter()
        .map(|(_, o)| o.expect("decodes"))
        .collect();
    let raw = ConfigObjects::from_objects(&objects, "metallb-system");
    Config::build(&raw)
        .expect("valid")
        .peers
        .into_values()
        .collect()
}

fn one(spec: &str) -> Peer {
    let yaml = format!(
        "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: tor, namespace: metallb-system}}\nspec: {spec}\n"
    );
    peers(&yaml).remove(0)
}

const NODE_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);

#[test]
fn an_external_peer_gets_ttl_1_our_as_first_and_metallbs_timers() {
    let peer = one("{myASN: 64501, peerASN: 64500, peerAddress: 192.0.2.1}");
    let s = session(&peer, NODE_ID, &Neighbours::new()).expect("supported");
    assert_eq!(s.peer.address, "192.0.2.1:179".parse().expect("an address"));
    assert_eq!(s.peer.ttl, Some(1));
    assert_eq!(s.config.local_as, 64501);
    assert_eq!(s.config.peer_as, PeerAs::Is(64500));
    assert_eq!(s.config.router_id, NODE_ID);
    assert_eq!(s.config.hold_time, 90, "MetalLB's default hold time");
    assert_eq!(s.config.graceful_restart, None);
    let route = Route {
        local_pref: Some(150),
        ..Route::default()
    };
    let path = path(&peer, &route);
    assert_eq!(path.attributes.local_pref, None, "never to external peers");
    assert_eq!(
        path.attributes.as_path.expect("a path")[0].asns,
        vec![64501]
    );
    assert_eq!(path.next_hop, None, "next hop self");
}

#[test]
fn an_internal_peer_gets_an_empty_path_and_the_kernels_ttl() {
    let peer = one("{myASN: 64500, peerASN: 64500, peerAddress: 192.0.2.1}");
    assert!(internal(&peer));
    let s = session(&peer, NODE_ID, &Neighbours::new()).expect("supported");
    assert_eq!(s.peer.ttl, None);
    assert_eq!(
        path(&peer, &Route::default()).attributes.as_path,
        Some(vec![])
    );
    assert_eq!(
        path(&peer, &Route::default()).attributes.local_pref,
        Some(100),
        "always to internal peers"
    );
    let dynamic = one("{myASN: 64500, dynamicASN: internal, peerAddress: 192.0.2.1}");
    assert!(internal(&dynamic));
    assert_eq!(
        session(&dynamic, NODE_ID, &Neighbours::new())
            .expect("supported")
            .config
            .peer_as,
        PeerAs::Internal
    );
}

#[test]
fn the_peers_fields_reach_the_session() {
    let peer = one(
        "{myASN: 64501, peerASN: 64500, peerAddress: \"2001:db8::1\", peerPort: 1179, \
         sourceAddress: \"2001:db8::11\", routerID: 10.1.1.1, holdTime: 9s, keepaliveTime: 3s, \
         connectTime: 5s, password: s3cret, ebgpMultiHop: true, enableGracefulRestart: true}",
    );
    let s = session(&peer, NODE_ID, &Neighbours::new()).expect("supported");
    assert_eq!(
        s.peer.address,
        "[2001:db8::1]:1179".parse().expect("an address")
    );
    assert_eq!(
        s.peer.local_address,
        Some("2001:db8::11".parse().expect("an IP"))
    );
    assert_eq!(s.peer.ttl, Some(255), "multihop");
    assert_eq!(s.peer.password.as_deref(), Some("s3cret"));
    assert_eq!(s.config.router_id, Ipv4Addr::new(10, 1, 1, 1));
    assert_eq!(s.config.hold_time, 9);
    assert_eq!(s.config.keepalive, Some(Duration::from_secs(3)));
    assert_eq!(s.config.connect_retry, Duration::from_secs(5));
    assert_eq!(s.config.graceful_restart, Some((120, true)));
    assert!(
        s.config.extended_next_hop,
        "IPv4 routes over an IPv6 session"
    );
}

#[test]
fn what_ferrolb_cannot_do_is_said_not_ignored() {
    let vrf = one("{myASN: 64501, peerASN: 64500, peerAddress: 192.0.2.1, vrf: red}");
    assert_eq!(
        session(&vrf, NODE_ID, &Neighbours::new()),
        Err(Unsupported::Vrf("tor".into(), "red".into()))
    );
}

#[test]
fn an_unnumbered_peer_is_the_link_local_neighbour_found_on_its_interface() {
    let unnumbered = one("{myASN: 64501, peerASN: 64500, interface: eth1}");
    assert_eq!(
        session(&unnumbered, NODE_ID, &Neighbours::new()),
        Err(Unsupported::NoNeighbour("tor".into(), "eth1".into()))
    );
    let neighbour: SocketAddrV6 = "[fe80::1%7]:0".parse().unwrap();
    let found = Neighbours::from([("eth1".to_string(), neighbour)]);
    let s = session(&unnumbered, NODE_ID, &found).expect("found");
    assert_eq!(s.peer.address, "[fe80::1%7]:179".parse().unwrap());
    assert!(
        s.config.extended_next_hop,
        "IPv4 routes by extended next hop"
    );
    assert_eq!(s.peer.ttl, Some(1), "external, one hop");
    // Another interface's neighbour is not this peer's.
    let elsewhere = Neighbours::from([("eth2".to_string(), neighbour)]);
    assert!(session(&unnumbered, NODE_ID, &elsewhere).is_err());
}

#[test]
fn a_router_id_from_a_name_is_stable_and_never_zero() {
    assert_eq!(router_id_from_name("n1"), router_id_from_name("n1"));
    assert_ne!(router_id_from_name("n1"), router_id_from_name("n2"));
    assert!(!router_id_from_name("").is_unspecified());
}

fn profile(echo_mode: bool) -> BfdProfile {
    BfdProfile {
        name: "fast".into(),
        receive_interval_ms: 50,
        transmit_interval_ms: 60,
        detect_multiplier: 4,
        echo_interval_ms: 50,
        echo_mode,
        passive_mode: true,
        minimum_ttl: 250,
    }
}

#[test]
fn a_bfd_profile_runs_under_the_session_and_only_echo_mode_is_said_not_honoured() {
    let plain =
        one("{myASN: 64501, peerASN: 64500, peerAddress: 192.0.2.1, sourceAddress: 192.0.2.11}");
    let mut with_bfd = plain.clone();
    with_bfd.bfd_profile = Some("fast".into());
    assert!(not_honoured(&with_bfd, Some(&profile(false))).is_empty());
    let notes = not_honoured(&with_bfd, Some(&profile(true)));
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("asks for echo mode"), "{notes:?}");
    let session = session(&with_bfd, NODE_ID, &Neighbours::new()).expect("a session");
    let spec = bfd_spec(&with_bfd, &session, &profile(true));
    assert_eq!(
        spec.key.peer,
        "192.0.2.1".parse::<IpAddr>().expect("an address")
    );
    assert_eq!(spec.key.interface, None);
    assert!(!spec.key.multihop);
    assert_eq!(spec.local, Some("192.0.2.11".parse().expect("an address")));
    assert_eq!(spec.settings.desired_min_tx, Duration::from_millis(60));
    assert_eq!(spec.settings.required_min_rx, Duration::from_millis(50));
    assert_eq!(spec.settings.detect_mult, 4);
    assert!(spec.settings.passive);
    assert_eq!(spec.minimum_ttl, 250);
    // A multihop peer gets a multihop session.
    let mut far = with_bfd.clone();
    far.ebgp_multi_hop = true;
    assert!(bfd_spec(&far, &session, &profile(false)).key.multihop);
}
