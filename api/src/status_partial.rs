//! What a component writes to an object it does not own the spec of: the object's identity
//! and its status, typed, and nothing of its spec (server-side apply would take the spec's
//! fields over, defaults included).
use crate::kind::Kind;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusPartial<S> {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub status: S,
}

impl<S: Serialize> StatusPartial<S> {
    pub fn new(kind: Kind, metadata: ObjectMeta, status: S) -> StatusPartial<S> {
        StatusPartial {
            api_version: kind.api_version(),
            kind: kind.name(),
            metadata,
            status,
        }
    }

    /// As the cluster backends take it.
    pub fn to_json(&self) -> serde_json::Value {
        // A struct of strings, maps and the status: serialising cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1beta1::IPAddressPoolStatus;

    #[test]
    fn a_pool_status_partial_has_no_spec() {
        let metadata = ObjectMeta {
            name: Some("blue".into()),
            namespace: Some("metallb-system".into()),
            ..ObjectMeta::default()
        };
        let status = IPAddressPoolStatus {
            assigned_ipv4: 2,
            assigned_ipv6: 0,
            available_ipv4: 2,
            available_ipv6: 0,
        };
        assert_eq!(
            StatusPartial::new(Kind::IPAddressPool, metadata, status).to_json(),
            serde_json::json!({
                "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                "metadata": {"name": "blue", "namespace": "metallb-system"},
                "status": {"assignedIPv4": 2, "assignedIPv6": 0, "availableIPv4": 2, "availableIPv6": 0},
            })
        );
    }
}
