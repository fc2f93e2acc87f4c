//! htools: cluster balancing, allocation and capacity planning for
//! ganeti-rs, compatible with Ganeti 3.0's htools.

pub mod alloc;
pub mod backend;
pub mod balance;
pub mod bounds;
pub mod capacity;
pub mod cli;
pub mod cmdline;
pub mod dedicated;
pub mod error;
pub mod gen;
pub mod loader;
pub mod metrics;
pub mod model;
pub mod moves;
pub mod nodeops;
pub mod output;
pub mod reboot;
pub mod repair;
pub mod squeeze;
pub mod types;

pub use error::{Error, Result};
