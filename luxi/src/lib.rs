//! LUXI, the language spoken to the master daemon: framing, requests and
//! responses, Ganeti's error encoding, opcodes, jobs, the query language, and
//! a client.

pub mod client;
pub mod error;
pub mod framing;
pub mod opcodes;
pub mod protocol;
pub mod query;
pub mod request;

pub use error::{ErrorCode, GanetiError};
