//! The cluster model of ganeti-rs: cluster, node groups, nodes, instances,
//! disks, NICs; domain enums; parameter dictionaries and their
//! inheritance; validation; formatting an error's chain. No I/O happens
//! here.

pub mod enums;
pub mod error;
pub mod model;
pub mod params;
pub mod paths;
pub mod resolver;
pub mod validate;

pub use enums::{DiskMode, DiskTemplate, NicMode};
pub use error::error_chain;
pub use model::*;
pub use params::ParamDict;
