//! FerroLB's controller: gives LoadBalancer Services their IPs from IPAddressPools.
pub mod allocator;
pub mod metrics;
pub mod reconcile;
pub mod service;
pub mod writer;
