//! FerroLB's controller: gives LoadBalancer Services their IPs from IPAddressPools.
pub mod allocator;
