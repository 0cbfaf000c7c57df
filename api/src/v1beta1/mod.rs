//! `metallb.io/v1beta1`: every kind but BGPPeer's storage version.
mod bfd_profile;
mod bgp_advertisement;
mod bgp_peer;
mod community;
mod configuration_state;
mod ip_address_pool;
mod l2_advertisement;
mod service_status;

pub use bfd_profile::{BFDProfile, BFDProfileSpec};
pub use bgp_advertisement::{BGPAdvertisement, BGPAdvertisementSpec};
pub use bgp_peer::{BGPPeer, BGPPeerSpec, LegacyMatchExpression, LegacyNodeSelector};
pub use community::{Community, CommunityAlias, CommunitySpec};
pub use configuration_state::{
    ConfigurationResult, ConfigurationState, ConfigurationStateSpec, ConfigurationStateStatus,
};
pub use ip_address_pool::{
    IPAddressPool, IPAddressPoolSpec, IPAddressPoolStatus, ServiceAllocation,
};
pub use l2_advertisement::{L2Advertisement, L2AdvertisementSpec, PreferredNodeSelector};
pub use service_status::{
    InterfaceInfo, ServiceBGPStatus, ServiceBGPStatusSpec, ServiceBGPStatusStatus, ServiceL2Status,
    ServiceL2StatusSpec, ServiceL2StatusStatus,
};
