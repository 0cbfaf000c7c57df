//! FerroLB's speaker: what this node announces (`plan`, pure: the election and the rules
//! both modes share), and the drivers that carry it out: layer 2 interface tasks
//! (`layer2`, over the `ferrolb-l2` crate), gossip membership (`membership`), statuses and
//! Events (`status`), conflict reports (`conflicts`). The binary (`main.rs`) wires them to
//! gossip and the cluster.
pub mod admin;
pub mod bgp;
pub mod config_state;
pub mod conflicts;
pub mod event_rate;
pub mod gossip_key;
pub mod layer2;
pub mod lost_nodes;
pub mod membership;
pub mod memory;
pub mod metrics;
pub mod plan;
pub mod returning_links;
pub mod speaker;
pub mod status;
pub mod unannounced;
