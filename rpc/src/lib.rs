//! Node RPC: the typed API ([`api`]), its async client ([`client`]) and the
//! cluster's TLS files ([`tls`]).
//!
//! The server lives in the `ganeti-noded` binary, so depending on this
//! crate brings in no server code.

pub mod api;
pub mod client;
pub mod tls;
