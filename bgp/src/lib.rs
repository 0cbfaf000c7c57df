//! BGP-4 for FerroLB's speakers, with no dependency on kube or the api crate: `packet` reads
//! and writes every message FerroLB exchanges (RFC 4271 and the extensions it uses), with
//! errors that say which NOTIFICATION they mean and how RFC 7606 treats them.
pub mod driver;
pub mod export;
pub mod packet;
pub mod session;
