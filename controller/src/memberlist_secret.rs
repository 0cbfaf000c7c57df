//! The memberlist Secret (the speakers' gossip key), created by the controller when it is
//! missing, as MetalLB's controller does with `--ml-secret-name`: speakers never wait on a
//! manual step. An existing Secret is never touched.
use base64::Engine;
use ferrolb_api::kind::Kind;
use ferrolb_api::objects::Object;
use ferrolb_cluster::{ObjectKey, Snapshot};

/// MetalLB's key: 128 random bits, base64 without padding (22 characters).
const KEY_BYTES: usize = 16;

/// A new gossip key, from the operating system's random source.
pub fn new_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes))
}

/// Whether the synced snapshot shows no Secret `name` in `namespace`.
pub fn missing(snapshot: &Snapshot, namespace: &str, name: &str) -> bool {
    snapshot.synced
        && !matches!(
            snapshot.get(&ObjectKey::new(Kind::Secret, Some(namespace), name)),
            Some(Object::Secret(_))
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_metallbs_length_and_differ() {
        let a = new_key().unwrap();
        let b = new_key().unwrap();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&a)
            .unwrap();
        assert_eq!(decoded.len(), KEY_BYTES);
    }

    #[test]
    fn missing_only_once_the_view_is_synced_and_without_the_secret() {
        let secret = Object::decode(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "memberlist", "namespace": "metallb-system"},
        }))
        .unwrap();
        let mut snapshot = Snapshot::default();
        assert!(
            !missing(&snapshot, "metallb-system", "memberlist"),
            "not synced yet"
        );
        snapshot.synced = true;
        assert!(missing(&snapshot, "metallb-system", "memberlist"));
        snapshot.objects.insert(ObjectKey::of(&secret), secret);
        assert!(!missing(&snapshot, "metallb-system", "memberlist"));
        assert!(missing(&snapshot, "metallb-system", "metallb-memberlist"));
    }
}
