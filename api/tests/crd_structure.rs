//! FerroLB's CRDs against MetalLB's, field by field, as the API server sees them: types,
//! formats, bounds, defaults, required fields, list and map markers, CEL rules (counted),
//! status subresources. MetalLB's side is `metallb_crds.json`, its structure only (no
//! descriptions, no rule text), written by `scripts/metallb-crd-structure`.
//!
//! Every difference left is listed in `ALLOWED` with the reason, and in the README.
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// (kind, version, field path, attribute): what may differ, and why.
const ALLOWED: &[(&str, &str, &str, &str, &str)] = &[
    (
        "BGPAdvertisement",
        "v1beta1",
        ".spec.localPref",
        "*",
        "LOCAL_PREF is 32 bits unsigned on the wire: bounded 0-4294967295 (MetalLB: int32, unbounded)",
    ),
    (
        "IPAddressPool",
        "v1beta1",
        ".spec.serviceAllocation.priority",
        "format",
        "an i32 says int32; MetalLB's int has no format",
    ),
];

const ATTRIBUTES: &[&str] = &[
    "type",
    "format",
    "minimum",
    "maximum",
    "enum",
    "default",
    "minLength",
    "maxLength",
    "pattern",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "cel",
    "required",
];

/// Path -> attributes, as the script computes them.
fn walk(schema: &Value, path: &str, required: bool, out: &mut BTreeMap<String, Value>) {
    let mut info = serde_json::Map::new();
    let default_type = if schema.get("properties").is_some() {
        "object"
    } else {
        ""
    };
    info.insert(
        "type".into(),
        schema.get("type").cloned().unwrap_or(json!(default_type)),
    );
    for key in ATTRIBUTES {
        if let Some(value) = schema.get(*key)
            && *key != "type"
        {
            info.insert((*key).into(), value.clone());
        }
    }
    if let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        info.insert("cel".into(), json!(rules.len()));
    }
    info.insert("required".into(), json!(required));
    out.insert(path.to_string(), Value::Object(info));
    let needed: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in properties {
            walk(
                sub,
                &format!("{path}.{name}"),
                needed.contains(&name.as_str()),
                out,
            );
        }
    }
    if let Some(items) = schema.get("items") {
        walk(items, &format!("{path}[]"), false, out);
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        walk(values, &format!("{path}{{}}"), false, out);
    }
}

/// Numbers compare by value (`4294967295.0` is `4294967295`).
fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn allowed(kind: &str, version: &str, path: &str, attribute: &str) -> bool {
    ALLOWED.iter().any(|(k, v, p, a, _)| {
        *k == kind && *v == version && *p == path && (*a == "*" || *a == attribute)
    })
}

#[test]
fn our_crds_check_what_metallbs_check() {
    let metallb: Value =
        serde_json::from_str(include_str!("metallb_crds.json")).expect("the fixture is JSON");
    let ours: BTreeMap<String, Value> = ferrolb_api::crds::all()
        .into_iter()
        .map(|crd| {
            let kind = crd.spec.names.kind.clone();
            (kind, serde_json::to_value(&crd).expect("serialisable"))
        })
        .collect();
    let mut differences = Vec::new();
    let mut used = Vec::new();
    for (kind, versions) in metallb.as_object().expect("an object") {
        if kind.starts_with('_') {
            continue;
        }
        let Some(crd) = ours.get(kind) else {
            differences.push(format!("{kind}: no CRD"));
            continue;
        };
        for (version, theirs) in versions.as_object().expect("versions") {
            let Some(ours) = crd["spec"]["versions"]
                .as_array()
                .and_then(|v| v.iter().find(|v| v["name"] == *version))
            else {
                differences.push(format!("{kind} {version}: not served"));
                continue;
            };
            let status = ours["subresources"].get("status").is_some();
            if json!(status) != theirs["status_subresource"] {
                differences.push(format!("{kind} {version}: status subresource {status}"));
            }
            let mut fields = BTreeMap::new();
            walk(&ours["schema"]["openAPIV3Schema"], "", false, &mut fields);
            let theirs = theirs["fields"].as_object().expect("fields");
            for (path, expected) in theirs {
                let Some(found) = fields.get(path) else {
                    differences.push(format!("{kind} {version} {path}: missing"));
                    continue;
                };
                for attribute in ATTRIBUTES {
                    let (a, b) = (expected.get(*attribute), found.get(*attribute));
                    if same(a, b) {
                        continue;
                    }
                    if allowed(kind, version, path, attribute) {
                        used.push((kind.clone(), version.clone(), path.clone()));
                        continue;
                    }
                    differences.push(format!(
                        "{kind} {version} {path} {attribute}: MetalLB {a:?}, FerroLB {b:?}"
                    ));
                }
            }
            for path in fields.keys().filter(|p| !theirs.contains_key(*p)) {
                differences.push(format!("{kind} {version} {path}: not in MetalLB's"));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences from MetalLB's CRDs:\n{}",
        differences.len(),
        differences.join("\n")
    );
    for (kind, version, path, _, why) in ALLOWED {
        assert!(
            used.iter()
                .any(|(k, v, p)| k == kind && v == version && p == path),
            "{kind} {version} {path} is allowed to differ ({why}) but does not: remove it"
        );
    }
}
