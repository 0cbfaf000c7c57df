//! FerroLB's controller: gives LoadBalancer Services their IPs from IPAddressPools.
pub mod admin;
pub mod allocator;
pub mod memberlist_secret;
pub mod metrics;
pub mod reconcile;
pub mod service;
pub mod webhook;
pub mod writer;
