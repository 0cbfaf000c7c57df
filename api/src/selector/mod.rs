//! Kubernetes label selectors, checked once and then matched cheaply.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A validated `metav1.LabelSelector`. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Requirement {
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Selector {
    /// Checks a selector with Kubernetes' rules (`LabelSelectorAsSelector`).
    pub fn new(selector: &LabelSelector) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            check_key(key)?;
            check_value(value)?;
            requirements.push(Requirement::In(
                key.clone(),
                BTreeSet::from([value.clone()]),
            ));
        }
        // The same expression twice (values in any order) is refused, as MetalLB refuses it:
        // it is a mistake, never a meaning.
        let mut expressions: Vec<Requirement> = Vec::new();
        for expression in selector.match_expressions.iter().flatten() {
            let requirement = requirement(expression)?;
            if expressions.contains(&requirement) {
                return Err(format!(
                    "duplicate definition of match expressions {:?}",
                    Selector {
                        requirements: vec![requirement]
                    }
                    .to_string()
                ));
            }
            expressions.push(requirement);
        }
        requirements.extend(expressions);
        requirements.sort();
        Ok(Selector { requirements })
    }

    /// A selector of `matchLabels` only.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Selector {
        let mut requirements: Vec<Requirement> = labels
            .iter()
            .map(|(k, v)| Requirement::In(k.clone(), BTreeSet::from([v.clone()])))
            .collect();
        requirements.sort();
        Selector { requirements }
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(key, values) => labels.get(key).is_none_or(|v| !values.contains(v)),
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::DoesNotExist(key) => !labels.contains_key(key),
        })
    }

    /// Whether some label set could match both selectors: false only when one requires a key
    /// the other forbids, or both require the same key to take values from disjoint sets.
    pub fn may_overlap(&self, other: &Selector) -> bool {
        for a in &self.requirements {
            for b in &other.requirements {
                let disjoint = match (a, b) {
                    (Requirement::In(k1, v1), Requirement::In(k2, v2)) => {
                        k1 == k2 && v1.is_disjoint(v2)
                    }
                    (Requirement::In(k1, v1), Requirement::NotIn(k2, v2))
                    | (Requirement::NotIn(k2, v2), Requirement::In(k1, v1)) => {
                        k1 == k2 && v1.is_subset(v2)
                    }
                    (
                        Requirement::In(k1, _) | Requirement::Exists(k1),
                        Requirement::DoesNotExist(k2),
                    )
                    | (
                        Requirement::DoesNotExist(k2),
                        Requirement::In(k1, _) | Requirement::Exists(k1),
                    ) => k1 == k2,
                    _ => false,
                };
                if disjoint {
                    return false;
                }
            }
        }
        true
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r {
                Requirement::In(k, v) if v.len() == 1 => {
                    format!("{k}={}", v.iter().next().map_or("", |s| s))
                }
                Requirement::In(k, v) => format!("{k} in ({})", join(v)),
                Requirement::NotIn(k, v) => format!("{k} notin ({})", join(v)),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn join(values: &BTreeSet<String>) -> String {
    values
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

fn requirement(expression: &LabelSelectorRequirement) -> Result<Requirement, String> {
    let key = expression.key.clone();
    check_key(&key)?;
    let values = expression.values.clone().unwrap_or_default();
    for value in &values {
        check_value(value)?;
    }
    let set: BTreeSet<String> = values.iter().cloned().collect();
    if set.len() != values.len() {
        return Err(format!(
            "duplicate definition of match expression value in label selector for key {key:?}"
        ));
    }
    match expression.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => Err(format!(
            "values: must be specified when operator is {:?}",
            expression.operator
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => Err(format!(
            "values: may not be specified when operator is {:?}",
            expression.operator
        )),
        "In" => Ok(Requirement::In(key, set)),
        "NotIn" => Ok(Requirement::NotIn(key, set)),
        "Exists" => Ok(Requirement::Exists(key)),
        "DoesNotExist" => Ok(Requirement::DoesNotExist(key)),
        other => Err(format!("{other:?} is not a valid label selector operator")),
    }
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name of at most 63 characters.
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let valid_prefix = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !valid_prefix {
            return Err(format!(
                "invalid label key {key:?}: the prefix must be a DNS subdomain"
            ));
        }
    }
    if name.is_empty() || !is_label_name(name) {
        return Err(format!(
            "invalid label key {key:?}: the name must be 63 characters or less, alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric"
        ));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {value:?}: must be 63 characters or less, alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric"
        ))
    }
}

fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    s.len() <= 63
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn matches_like_kubernetes() {
        let s = Selector::new(&LabelSelector {
            match_labels: Some(labels(&[("zone", "a")])),
            match_expressions: Some(vec![
                expr("tier", "In", &["web", "db"]),
                expr("gpu", "DoesNotExist", &[]),
            ]),
        })
        .unwrap();
        assert!(s.matches(&labels(&[("zone", "a"), ("tier", "web")])));
        assert!(!s.matches(&labels(&[("zone", "a"), ("tier", "web"), ("gpu", "1")])));
        assert!(!s.matches(&labels(&[("zone", "b"), ("tier", "web")])));
        assert!(Selector::default().matches(&labels(&[])));
    }

    #[test]
    fn rejects_bad_expressions() {
        for (e, reason) in [
            (expr("a", "In", &[]), "must be specified"),
            (expr("a", "Exists", &["x"]), "may not be specified"),
            (
                expr("a", "Near", &["x"]),
                "not a valid label selector operator",
            ),
            (expr("-a", "Exists", &[]), "invalid label key"),
            (
                expr("a", "In", &["x", "x"]),
                "duplicate definition of match expression value",
            ),
        ] {
            let err = Selector::new(&LabelSelector {
                match_expressions: Some(vec![e]),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.contains(reason), "{err}");
        }
    }

    /// MetalLB refuses one expression written twice, also with its values in another order;
    /// two expressions on one key that differ are a meaning, and stay.
    #[test]
    fn rejects_an_expression_written_twice() {
        let twice = |a: LabelSelectorRequirement, b: LabelSelectorRequirement| {
            Selector::new(&LabelSelector {
                match_expressions: Some(vec![a, b]),
                ..Default::default()
            })
        };
        let err = twice(
            expr("zone", "In", &["a", "b"]),
            expr("zone", "In", &["b", "a"]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            r#"duplicate definition of match expressions "zone in (a,b)""#
        );
        assert!(twice(expr("zone", "Exists", &[]), expr("zone", "Exists", &[])).is_err());
        twice(
            expr("zone", "In", &["a", "b"]),
            expr("zone", "NotIn", &["b"]),
        )
        .unwrap();
        twice(expr("zone", "In", &["a"]), expr("zone", "In", &["a", "b"])).unwrap();
    }

    #[test]
    fn overlap_detects_contradictions() {
        let a = Selector::from_labels(&labels(&[("rack", "1")]));
        let b = Selector::from_labels(&labels(&[("rack", "2")]));
        let c = Selector::from_labels(&labels(&[("zone", "x")]));
        assert!(!a.may_overlap(&b));
        assert!(a.may_overlap(&c));
        assert!(a.may_overlap(&Selector::default()));
    }
}
