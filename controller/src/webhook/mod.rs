//! The validating admission webhook (`--webhook-mode`): the API server asks before it stores
//! a metallb.io object, and the controller answers with the api crate's rules, the same the
//! components apply when they read the configuration. MetalLB's webhook paths and names.
//!
//! - `review` (here): an AdmissionReview in, an AdmissionReview out; pure.
//! - `server`: HTTPS on `--webhook-port` (9443), TLS from `certs`.
//! - `certs`: the self-managed certificate: a CA and a serving certificate kept in a Secret,
//!   the CA put into the ValidatingWebhookConfiguration, renewed before they expire.
pub mod certs;
pub mod rotation;
pub mod server;

use ferrolb_api::config::Config;
use ferrolb_api::objects::Object;
use ferrolb_cluster::{ObjectKey, Snapshot};
use serde_json::{Value, json};
use std::collections::BTreeSet;

#[cfg(test)]
mod tests;

/// What the webhook says about one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Denied(String),
}

/// Answers an AdmissionReview (its JSON body) against the cluster as `snapshot` shows it.
pub fn review(body: &[u8], snapshot: &Snapshot, namespace: &str) -> Value {
    let Ok(review) = serde_json::from_slice::<Value>(body) else {
        return answer(
            &Value::Null,
            Decision::Denied("not an AdmissionReview".into()),
        );
    };
    let request = &review["request"];
    if !request.is_object() || !request["uid"].is_string() {
        return answer(
            &Value::Null,
            Decision::Denied("not an AdmissionReview".into()),
        );
    }
    let decision = decide(request, snapshot, namespace);
    if let Decision::Denied(reason) = &decision {
        tracing::info!(
            kind = %request["kind"]["kind"].as_str().unwrap_or("?"),
            name = %request["name"].as_str().unwrap_or("?"),
            "admission denied: {reason}"
        );
    }
    answer(&request["uid"], decision)
}

fn answer(uid: &Value, decision: Decision) -> Value {
    let response = match decision {
        Decision::Allowed => json!({"uid": uid, "allowed": true}),
        Decision::Denied(message) => json!({
            "uid": uid,
            "allowed": false,
            "status": {"code": 403, "reason": "Forbidden", "message": message},
        }),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// The decision for one AdmissionRequest: a new or changed metallb.io configuration object
/// must decode, live in MetalLB's namespace, and bring no configuration error the cluster
/// did not already have. Deletions and other kinds pass.
pub fn decide(request: &Value, snapshot: &Snapshot, namespace: &str) -> Decision {
    if !matches!(request["operation"].as_str(), Some("CREATE" | "UPDATE")) {
        return Decision::Allowed;
    }
    // Until every kind is read, a reference to an object not seen yet would look broken.
    if !snapshot.synced {
        return Decision::Denied(
            "the controller has not read the cluster yet; try again in a moment".into(),
        );
    }
    let object = match Object::decode(request["object"].clone()) {
        Ok(object) => object,
        Err(e) if e.is_unsupported_kind() => return Decision::Allowed,
        Err(e) => return Decision::Denied(e.to_string()),
    };
    let is_configuration = matches!(
        object,
        Object::IPAddressPool(_)
            | Object::L2Advertisement(_)
            | Object::BGPAdvertisement(_)
            | Object::BGPPeer(_)
            | Object::BFDProfile(_)
            | Object::Community(_)
    );
    if !is_configuration {
        return Decision::Allowed;
    }
    // The API server fills the namespace in before it asks.
    let object_namespace = object
        .namespace()
        .or_else(|| request["namespace"].as_str())
        .unwrap_or_default()
        .to_string();
    if object_namespace != namespace {
        return Decision::Denied(format!(
            "{} {:?} must be in the {namespace} namespace, where FerroLB reads it",
            object.kind(),
            object.name()
        ));
    }
    let mut object = object;
    object.set_namespace(&object_namespace);
    let errors = |objects: &std::collections::BTreeMap<ObjectKey, Object>| -> BTreeSet<String> {
        let config = ferrolb_api::config::ConfigObjects::from_objects(objects.values(), namespace);
        match Config::build(&config) {
            Ok(_) => BTreeSet::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    };
    let before = errors(&snapshot.objects);
    let mut after = snapshot.objects.clone();
    after.insert(ObjectKey::of(&object), object);
    let new: Vec<String> = errors(&after).difference(&before).cloned().collect();
    if new.is_empty() {
        Decision::Allowed
    } else {
        Decision::Denied(new.join("; "))
    }
}
