//! The reasons of the Events FerroLB publishes, spelled as MetalLB spells them (users filter
//! on them), each with whether it warns.
use std::fmt;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum EventReason {
    /// The controller gave a Service its IPs.
    #[serde(rename = "IPAllocated")]
    IpAllocated,
    /// The controller could not give a Service IPs (or read its annotations).
    AllocationFailed,
    /// A Service's IPs were taken back.
    ClearAssignment,
    /// A Service uses an annotation prefix MetalLB deprecated.
    #[serde(rename = "deprecatedAnnotation")]
    DeprecatedAnnotation,
    /// A speaker announces a Service.
    #[serde(rename = "nodeAssigned")]
    NodeAssigned,
    /// Another MAC claims an IP a speaker announces.
    #[serde(rename = "addressConflict")]
    AddressConflict,
    /// Nobody announces a Service by layer 2: no node that could has an interface its
    /// L2Advertisements name.
    #[serde(rename = "announceFailed")]
    AnnounceFailed,
    /// A speaker runs a BGPPeer without some field, or cannot open its session at all.
    #[serde(rename = "notHonoured")]
    NotHonoured,
    /// A speaker's BGP session is not up: why (refused, no answer, a NOTIFICATION).
    #[serde(rename = "sessionDown")]
    SessionDown,
    /// An object could not be read (a field of the wrong type, a missing required field): it
    /// is left out, and everything else goes on.
    InvalidObject,
    /// A Service was given IPs from a pool that no advertisement selects: nothing announces
    /// them (MetalLB gives them silently).
    NotAnnounced,
}

impl EventReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EventReason::IpAllocated => "IPAllocated",
            EventReason::AllocationFailed => "AllocationFailed",
            EventReason::ClearAssignment => "ClearAssignment",
            EventReason::DeprecatedAnnotation => "deprecatedAnnotation",
            EventReason::NodeAssigned => "nodeAssigned",
            EventReason::AddressConflict => "addressConflict",
            EventReason::AnnounceFailed => "announceFailed",
            EventReason::NotHonoured => "notHonoured",
            EventReason::SessionDown => "sessionDown",
            EventReason::InvalidObject => "InvalidObject",
            EventReason::NotAnnounced => "NotAnnounced",
        }
    }

    /// Whether the Event is a Warning (otherwise Normal).
    pub fn warns(self) -> bool {
        matches!(
            self,
            EventReason::AllocationFailed
                | EventReason::DeprecatedAnnotation
                | EventReason::AddressConflict
                | EventReason::AnnounceFailed
                | EventReason::NotHonoured
                | EventReason::SessionDown
                | EventReason::InvalidObject
                | EventReason::NotAnnounced
        )
    }
}

impl fmt::Display for EventReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialised_as_metallb_spells_them() {
        for reason in [
            EventReason::IpAllocated,
            EventReason::AllocationFailed,
            EventReason::ClearAssignment,
            EventReason::DeprecatedAnnotation,
            EventReason::NodeAssigned,
            EventReason::AddressConflict,
            EventReason::AnnounceFailed,
            EventReason::NotHonoured,
            EventReason::SessionDown,
            EventReason::InvalidObject,
            EventReason::NotAnnounced,
        ] {
            let json = serde_json::to_value(reason).expect("serialises");
            assert_eq!(json, reason.as_str());
            assert_eq!(
                serde_json::from_value::<EventReason>(json).ok(),
                Some(reason)
            );
        }
    }
}
