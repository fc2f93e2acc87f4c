//! ganeti-masterd: the master daemon.

pub mod config;
pub mod jobqueue;
pub mod locking;
