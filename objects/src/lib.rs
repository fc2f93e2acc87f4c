//! The cluster model of ganeti-rs: cluster, node groups, nodes, instances,
//! disks, NICs; parameter dictionaries and their inheritance; validation.
//! No I/O happens here.

pub mod paths;
