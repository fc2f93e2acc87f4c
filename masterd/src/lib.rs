#![recursion_limit = "256"]
//! ganeti-masterd: the master daemon. It serves LUXI on a unix socket,
//! keeps the persistent job queue and the configuration (SQLite), takes
//! Ganeti's locks, runs one logical unit per opcode and talks to the node
//! daemons over mutual-TLS RPC.

pub mod bootstrap;
pub mod config;
pub mod error;
pub mod executor;
pub mod failover;
pub mod iallocator;
pub mod jobqueue;
pub mod locking;
pub mod lu;
pub mod luxi_server;
pub mod master;
pub mod query;
pub mod replication;
pub mod rpc;
pub mod watcher;

/// The software version reported to clients.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
