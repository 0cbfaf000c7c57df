//! What the API server (or anyone reaching the webhook's port) sends the admission webhook:
//! answered, never a panic. The cluster it judges against holds a pool, a peer and its
//! BFD profile, so a request can collide with real objects.
#![no_main]
use ferrolb_api::objects::Object;
use ferrolb_cluster::{ObjectKey, Snapshot};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn cluster() -> &'static Snapshot {
    static CLUSTER: OnceLock<Snapshot> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let mut snapshot = Snapshot { synced: true, ..Snapshot::default() };
        let yaml = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a, namespace: metallb-system}\nspec: {addresses: [198.51.100.0/24, \"2001:db8::/64\"]}\n---\napiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: fast, namespace: metallb-system}\nspec: {echoMode: true}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: tor, namespace: metallb-system}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 192.0.2.1}\n";
        for (_, object) in Object::decode_yaml_stream(yaml) {
            let object = object.expect("the seed cluster decodes");
            snapshot.objects.insert(ObjectKey::of(&object), object);
        }
        snapshot
    })
}

fuzz_target!(|data: &[u8]| {
    let answer = ferrolb_controller::webhook::review(data, cluster(), "metallb-system");
    assert_eq!(answer["kind"], "AdmissionReview");
});
