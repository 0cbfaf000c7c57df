//! What the API server checks, made MetalLB's: schemars describes the Rust types, and MetalLB's
//! CRDs (kubebuilder's) say more. Each difference that changes what the API server accepts,
//! stores or merges is closed here; `api/tests/crd_structure.rs` compares the result with
//! MetalLB's CRDs field by field.
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

/// Kinds MetalLB gives an (empty) status subresource that FerroLB's types have no status for.
const EMPTY_STATUS: &[&str] = &[
    "BFDProfile",
    "BGPAdvertisement",
    "BGPPeer",
    "Community",
    "L2Advertisement",
];

pub(super) fn as_metallb_validates(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let kind = crd.spec.names.kind.clone();
    let mut value = serde_json::to_value(&crd).expect("a CRD always serialises");
    let Some(versions) = value
        .pointer_mut("/spec/versions")
        .and_then(|v| v.as_array_mut())
    else {
        return crd;
    };
    for version in versions {
        let name = version["name"].as_str().unwrap_or_default().to_string();
        if EMPTY_STATUS.contains(&kind.as_str()) {
            version["subresources"] = json!({"status": {}});
        }
        let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") else {
            continue;
        };
        top_level(schema, &kind);
        widen_unsigned(schema);
        // v1beta1 BGPPeers have MetalLB's own legacy selector type, merged as any object.
        if !(kind == "BGPPeer" && name == "v1beta1") {
            mark_atomic_selectors(schema);
        }
        defaults(schema, &kind, &name);
        validations(schema, &kind, &name);
        if kind == "ConfigurationState" {
            conditions(schema);
        }
    }
    serde_json::from_value(value).expect("the edited CRD is still a CRD")
}

/// `apiVersion`, `kind` and `metadata` described as every CRD describes them; `spec` required
/// on IPAddressPool only (the most common L2Advertisement has none); an empty `status` where
/// MetalLB has one, and an empty `spec` on the status kinds.
fn top_level(schema: &mut Value, kind: &str) {
    if kind != "IPAddressPool"
        && let Some(required) = schema.get_mut("required").and_then(|r| r.as_array_mut())
    {
        required.retain(|field| field != "spec");
        if required.is_empty() {
            schema.as_object_mut().map(|o| o.remove("required"));
        }
    }
    let properties = &mut schema["properties"];
    properties["apiVersion"] = json!({"type": "string"});
    properties["kind"] = json!({"type": "string"});
    properties["metadata"] = json!({"type": "object"});
    if EMPTY_STATUS.contains(&kind) {
        properties["status"] = json!({"type": "object"});
    }
    if matches!(kind, "ServiceL2Status" | "ServiceBGPStatus") && properties.get("spec").is_none() {
        properties["spec"] = json!({"type": "object"});
    }
}

/// Integer formats the API server knows: `uint32` bounded nothing, so an ASN above 2^31 must
/// be accepted and one above 2^32-1 refused (`int64` with a maximum, as MetalLB's); one with a
/// smaller maximum of its own is an `int32`. `uint16`/`uint8` are no formats at all.
fn widen_unsigned(schema: &mut Value) {
    match schema {
        Value::Object(fields) => {
            match fields.get("format").and_then(|f| f.as_str()) {
                Some("uint32") => {
                    let small = fields
                        .get("maximum")
                        .and_then(Value::as_f64)
                        .is_some_and(|max| max <= f64::from(i32::MAX));
                    if small {
                        fields.insert("format".into(), "int32".into());
                    } else {
                        fields.insert("format".into(), "int64".into());
                        fields.insert("maximum".into(), json!(u32::MAX));
                    }
                }
                Some("uint16" | "uint8") => {
                    fields.remove("format");
                }
                _ => {}
            }
            fields.values_mut().for_each(widen_unsigned);
        }
        Value::Array(items) => items.iter_mut().for_each(widen_unsigned),
        _ => {}
    }
}

/// Label selectors (and secret references) are replaced whole, never merged key by key, as
/// Kubernetes' own types declare: `x-kubernetes-map-type: atomic` on the selector,
/// `x-kubernetes-list-type: atomic` on its expressions and their values.
fn mark_atomic_selectors(schema: &mut Value) {
    match schema {
        Value::Object(fields) => {
            let properties = fields.get("properties");
            let is_selector = properties.is_some_and(|p| {
                p.get("matchLabels").is_some() && p.get("matchExpressions").is_some()
            });
            let is_secret_reference = properties.is_some_and(|p| {
                p.get("name").is_some()
                    && p.get("namespace").is_some()
                    && p.as_object().is_some_and(|o| o.len() == 2)
            });
            if is_selector {
                fields.insert("x-kubernetes-map-type".into(), "atomic".into());
                if let Some(expressions) = fields
                    .get_mut("properties")
                    .and_then(|p| p.get_mut("matchExpressions"))
                {
                    expressions["x-kubernetes-list-type"] = "atomic".into();
                    if let Some(values) = expressions.pointer_mut("/items/properties/values") {
                        values["x-kubernetes-list-type"] = "atomic".into();
                    }
                }
            }
            if is_secret_reference {
                fields.insert("x-kubernetes-map-type".into(), "atomic".into());
            }
            fields.values_mut().for_each(mark_atomic_selectors);
        }
        Value::Array(items) => items.iter_mut().for_each(mark_atomic_selectors),
        _ => {}
    }
}

/// The defaults MetalLB's CRDs set, in place of `nullable`: the API server fills them in.
fn defaults(schema: &mut Value, kind: &str, version: &str) {
    let defaults: &[(&str, Value)] = match (kind, version) {
        ("IPAddressPool", _) => &[("autoAssign", json!(true)), ("avoidBuggyIPs", json!(false))],
        ("BGPAdvertisement", _) => &[
            ("aggregationLength", json!(32)),
            ("aggregationLengthV6", json!(128)),
        ],
        ("BGPPeer", "v1beta2") => &[
            ("peerPort", json!(179)),
            ("disableMP", json!(false)),
            ("dualStackAddressFamily", json!(false)),
        ],
        _ => &[],
    };
    for (field, default) in defaults {
        if let Some(property) = schema
            .pointer_mut(&format!("/properties/spec/properties/{field}"))
            .and_then(|p| p.as_object_mut())
        {
            property.remove("nullable");
            property.insert("default".into(), default.clone());
        }
    }
}

/// The rules MetalLB has the API server check (CEL), each with its own message.
fn validations(schema: &mut Value, kind: &str, version: &str) {
    let rule = |rule: &str, message: &str| json!({"rule": rule, "message": message});
    let immutable = || {
        json!([rule(
            "self == oldSelf",
            "cannot change once written: write a new object instead"
        )])
    };
    match (kind, version) {
        ("BGPAdvertisement", _) => {
            schema["properties"]["spec"]["x-kubernetes-validations"] = json!([rule(
                "!has(self.serviceSelectors) || size(self.serviceSelectors) == 0 || ((!has(self.aggregationLength) || self.aggregationLength == 32) && (!has(self.aggregationLengthV6) || self.aggregationLengthV6 == 128))",
                "serviceSelectors work with the default aggregation lengths only (32 and 128)"
            )]);
        }
        ("BGPPeer", "v1beta2") => {
            let spec = &mut schema["properties"]["spec"]["properties"];
            spec["connectTime"]["x-kubernetes-validations"] = json!([
                rule(
                    "duration(self) >= duration('1s') && duration(self) <= duration('65535s')",
                    "connectTime must be from 1s to 65535s"
                ),
                rule(
                    "duration(self).getMilliseconds() % 1000 == 0",
                    "connectTime must be a whole number of seconds"
                ),
            ]);
            spec["enableGracefulRestart"]["x-kubernetes-validations"] = json!([rule(
                "self == oldSelf",
                "enableGracefulRestart cannot change once the peer exists: delete and create it again"
            )]);
        }
        ("ServiceL2Status" | "ServiceBGPStatus", _) => {
            let status = &mut schema["properties"]["status"]["properties"];
            for field in ["node", "serviceName", "serviceNamespace"] {
                status[field]["x-kubernetes-validations"] = immutable();
            }
        }
        _ => {}
    }
}

/// `status.conditions` as Kubernetes declares `metav1.Condition` lists: a map keyed by type,
/// each condition's fields bounded. `result` without the `null` of an optional enum.
fn conditions(schema: &mut Value) {
    let status = &mut schema["properties"]["status"]["properties"];
    if let Some(result) = status
        .pointer_mut("/result/enum")
        .and_then(|e| e.as_array_mut())
    {
        result.retain(|v| !v.is_null());
    }
    let conditions = &mut status["conditions"];
    conditions["x-kubernetes-list-type"] = "map".into();
    conditions["x-kubernetes-list-map-keys"] = json!(["type"]);
    let fields = &mut conditions["items"]["properties"];
    fields["message"]["maxLength"] = json!(32768);
    fields["observedGeneration"]["minimum"] = json!(0);
    fields["reason"]["maxLength"] = json!(1024);
    fields["reason"]["minLength"] = json!(1);
    fields["reason"]["pattern"] = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$".into();
    fields["status"]["enum"] = json!(["True", "False", "Unknown"]);
    fields["type"]["maxLength"] = json!(316);
    fields["type"]["pattern"] =
        "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
            .into();
}
