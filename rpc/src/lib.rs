//! Node RPC: the typed API ([`api`]) with the types it carries
//! ([`instance`], [`hypervisor`], [`storage`]), its async client
//! ([`client`]) and the cluster's TLS files ([`tls`]).
//!
//! The server lives in the `ganeti-noded` binary and the drivers in the
//! `hypervisors` and `storage` crates, so depending on this crate brings
//! in no server or driver code.

pub mod api;
pub mod client;
pub mod hypervisor;
pub mod instance;
pub mod storage;
pub mod tls;
