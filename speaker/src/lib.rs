//! FerroLB's speaker: which node announces each Service IP (the election), and layer 2
//! mode (ARP, NDP, interfaces). The binary (`main.rs`) ties them to gossip and the cluster.
pub mod election;
pub mod event_rate;
pub mod gossip_key;
pub mod layer2;
pub mod memory;
pub mod meta;
pub mod metrics;
pub mod returning_links;
pub mod speaker;
