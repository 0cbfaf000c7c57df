//! Membership compatible with hashicorp/memberlist, the gossip library MetalLB's speakers use,
//! so FerroLB and MetalLB speakers can share one cluster.
pub mod core;
pub mod driver;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod wire;
