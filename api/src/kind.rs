//! Every kind of object FerroLB reads or writes, with what the Kubernetes API needs to reach
//! it: one list, instead of one per place that names kinds.
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Service,
    Node,
    Namespace,
    Secret,
    ConfigMap,
    EndpointSlice,
    IPAddressPool,
    L2Advertisement,
    BGPAdvertisement,
    Community,
    BFDProfile,
    BGPPeer,
    ServiceL2Status,
    ServiceBGPStatus,
    ConfigurationState,
}

impl Kind {
    pub const ALL: [Kind; 15] = [
        Kind::Service,
        Kind::Node,
        Kind::Namespace,
        Kind::Secret,
        Kind::ConfigMap,
        Kind::EndpointSlice,
        Kind::IPAddressPool,
        Kind::L2Advertisement,
        Kind::BGPAdvertisement,
        Kind::Community,
        Kind::BFDProfile,
        Kind::BGPPeer,
        Kind::ServiceL2Status,
        Kind::ServiceBGPStatus,
        Kind::ConfigurationState,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Service => "Service",
            Kind::Node => "Node",
            Kind::Namespace => "Namespace",
            Kind::Secret => "Secret",
            Kind::ConfigMap => "ConfigMap",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::IPAddressPool => "IPAddressPool",
            Kind::L2Advertisement => "L2Advertisement",
            Kind::BGPAdvertisement => "BGPAdvertisement",
            Kind::Community => "Community",
            Kind::BFDProfile => "BFDProfile",
            Kind::BGPPeer => "BGPPeer",
            Kind::ServiceL2Status => "ServiceL2Status",
            Kind::ServiceBGPStatus => "ServiceBGPStatus",
            Kind::ConfigurationState => "ConfigurationState",
        }
    }

    /// The API group (`""` for the core group).
    pub fn group(self) -> &'static str {
        match self {
            Kind::Service | Kind::Node | Kind::Namespace | Kind::Secret | Kind::ConfigMap => "",
            Kind::EndpointSlice => "discovery.k8s.io",
            _ => "metallb.io",
        }
    }

    /// The version FerroLB reads and writes (BGPPeer is also read as v1beta1, and converted).
    pub fn version(self) -> &'static str {
        match self.group() {
            "" | "discovery.k8s.io" => "v1",
            _ if self == Kind::BGPPeer => "v1beta2",
            _ => "v1beta1",
        }
    }

    pub fn api_version(self) -> String {
        match self.group() {
            "" => self.version().to_string(),
            group => format!("{group}/{}", self.version()),
        }
    }

    /// The resource name in API paths.
    pub fn plural(self) -> String {
        let lower = self.name().to_ascii_lowercase();
        if lower.ends_with("status") {
            format!("{lower}es")
        } else if let Some(stem) = lower.strip_suffix('y') {
            format!("{stem}ies")
        } else {
            format!("{lower}s")
        }
    }

    /// Objects FerroLB creates itself (rather than reads from users): a status alone makes
    /// them exist.
    pub fn is_owned(self) -> bool {
        matches!(
            self,
            Kind::ServiceL2Status | Kind::ServiceBGPStatus | Kind::ConfigurationState
        )
    }

    pub fn is_namespaced(self) -> bool {
        !matches!(self, Kind::Node | Kind::Namespace)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind {0:?}")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(name: &str) -> Result<Kind, UnknownKind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| UnknownKind(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_plurals_are_the_api_paths() {
        for kind in Kind::ALL {
            assert_eq!(kind.name().parse::<Kind>(), Ok(kind));
        }
        assert_eq!(Kind::ServiceL2Status.plural(), "servicel2statuses");
        assert_eq!(Kind::IPAddressPool.plural(), "ipaddresspools");
        assert_eq!(Kind::BGPPeer.api_version(), "metallb.io/v1beta2");
        assert_eq!(Kind::Service.api_version(), "v1");
        assert_eq!(Kind::EndpointSlice.api_version(), "discovery.k8s.io/v1");
        assert!("Pod".parse::<Kind>().is_err());
    }

    /// The paths the Kubernetes backend watches and writes are the CRDs' own plurals.
    #[test]
    fn plurals_of_metallb_kinds_are_their_crds_plurals() {
        for crd in crate::crds::all() {
            let kind: Kind = crd.spec.names.kind.parse().expect("a kind FerroLB knows");
            assert_eq!(kind.plural(), crd.spec.names.plural, "{kind}");
        }
        assert_eq!(Kind::Community.plural(), "communities");
    }
}
