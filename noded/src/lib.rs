//! Node RPC: the typed API ([`api`]), its async client ([`client`]) and the
//! cluster's TLS files ([`tls`]).
//!
//! The server itself lives in the `ganeti-noded` binary, so depending on
//! this library brings in no server code.

pub mod api;
pub mod client;
pub mod tls;

/// The software version reported by `version`.
pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");
