//! The cluster model of ganeti-rs: cluster, node groups, nodes, instances,
//! disks, NICs; domain enums; parameter dictionaries and their
//! inheritance; validation; ids; formatting an error's chain. No I/O
//! happens here but two lookups on a node's tree: host names
//! ([`resolver`]) and iallocator plugins ([`plugins`]).

pub mod api_tokens;
pub mod enums;
pub mod error;
pub mod ids;
pub mod model;
pub mod network;
pub mod params;
pub mod paths;
pub mod plugins;
pub mod resolver;
pub mod validate;

pub use enums::{DiskMode, DiskTemplate, Hypervisor, NicMode};
pub use error::error_chain;
pub use model::*;
pub use network::Network;
pub use params::ParamDict;
