use crate::kind::Kind;
use std::fmt;

/// One reason a configuration object was rejected: which object, which field, why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
pub struct ConfigError {
    /// The object's kind, e.g. `IPAddressPool`.
    pub kind: Kind,
    /// The object's name.
    pub name: String,
    /// The field path inside the object, e.g. `spec.addresses[1]`.
    pub field: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(
        kind: Kind,
        name: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            kind,
            name: name.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?}: {}: {}",
            self.kind, self.name, self.field, self.reason
        )
    }
}
