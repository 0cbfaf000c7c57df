//! Input from users never panics: every decoder of user-written text gets arbitrary input.
use ferrolb_api::annotations::ServiceAnnotations;
use ferrolb_api::config::{BgpCommunity, Config, parse_go_duration};
use ferrolb_api::objects::Object;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// YAML-ish text: mostly the characters YAML cares about, so parsers get deep.
fn yamlish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("apiVersion: metallb.io/v1beta1\n".to_string()),
            Just("kind: IPAddressPool\n".to_string()),
            Just("kind: BGPPeer\n".to_string()),
            Just("apiVersion: metallb.io/v1beta2\n".to_string()),
            Just("metadata: {name: p, namespace: metallb-system}\n".to_string()),
            Just("spec:\n".to_string()),
            Just("  addresses: [".to_string()),
            Just("  holdTime: ".to_string()),
            Just("---\n".to_string()),
            "[ -~\n]{0,12}",
        ],
        0..20,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn object_streams(text in yamlish()) {
        let decoded = Object::decode_yaml_stream(&text);
        let objects: Vec<Object> = decoded.into_iter().filter_map(|(_, o)| o.ok()).collect();
        let _ = Config::build(&ferrolb_api::config::ConfigObjects::from_objects(&objects, "metallb-system"));
    }

    #[test]
    fn legacy_configmaps(config in yamlish()) {
        let indented: String = config.lines().map(|l| format!("    {l}\n")).collect();
        let text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: config}}\ndata:\n  config: |\n{indented}");
        let _ = ferrolb_api::legacy::convert_configmap_yaml(&text);
    }

    #[test]
    fn small_decoders(text in "\\PC{0,40}") {
        let _ = parse_go_duration(&text);
        let _ = text.parse::<BgpCommunity>();
        let _ = ferrolb_api::address::AddressRange::parse(&text);
        let annotations = BTreeMap::from([
            ("metallb.io/loadBalancerIPs".to_string(), text.clone()),
            ("metallb.io/address-pool".to_string(), text.clone()),
        ]);
        let _ = ServiceAnnotations::parse(&annotations);
    }

    #[test]
    fn peers_with_arbitrary_fields(
        hold in "\\PC{0,12}", keepalive in "\\PC{0,12}", connect in "\\PC{0,12}",
        address in "\\PC{0,20}", asn in any::<u32>(), port in any::<u16>(),
    ) {
        let yaml = format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: p, namespace: metallb-system}}\nspec:\n  myASN: {asn}\n  peerASN: 1\n  peerPort: {port}\n  peerAddress: {address:?}\n  holdTime: {hold:?}\n  keepaliveTime: {keepalive:?}\n  connectTime: {connect:?}\n"
        );
        let objects: Vec<Object> = Object::decode_yaml_stream(&yaml).into_iter().filter_map(|(_, o)| o.ok()).collect();
        let _ = Config::build(&ferrolb_api::config::ConfigObjects::from_objects(&objects, "metallb-system"));
    }
}
