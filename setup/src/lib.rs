//! Creating a cluster and joining a node: what happens before there is a
//! master to talk to, or after it is gone. `gnt-cluster init`,
//! `gnt-cluster destroy` and the node setup of `gnt-node add` are built on
//! it; no daemon links it.
//!
//! - [`init`]: the checks of `gnt-cluster init`, the master's directory
//!   tree, the cluster CA and the master's certificate, the first
//!   configuration, then the node and master daemons.
//! - [`join`]: a new node's certificates and node daemon, on a virtual
//!   cluster (Ganeti does this over SSH).
//! - [`destroy`]: stopping the daemons and removing the cluster's files
//!   (configuration, queue, certificates, ssconf files).
//! - [`failover`]: `gnt-cluster master-failover` on the new master's
//!   node (the configuration part runs as `ganeti-masterd
//!   --master-failover`, as the first configuration does with `--init`).
//! - [`daemons`]: finding, starting and stopping `ganeti-masterd` and
//!   `ganeti-noded`, as Ganeti's `daemon-util` does.
//! - [`tree`]: a node's directories and the cluster's files in them.
//!
//! # Who writes the first configuration
//!
//! The configuration store is the master's SQLite database, which only
//! `masterd` knows how to write. Rather than link it (and SQLite, the job
//! queue and the logical units) into every `gnt-*` binary, the work is
//! split at the one step that needs it: this crate does everything else
//! and builds the first configuration as objects
//! ([`objects::FirstConfig`]: cluster, default group, master node), then
//! runs `ganeti-masterd --init`, which reads it as JSON on its standard
//! input, stores it and exits. The master daemon is then started as
//! before. So the format of the database stays private to `masterd`, the
//! `gnt-*` binaries link only `objects`, `luxi`, `rpc` and this crate, and
//! the checks that a user's options get (names, hypervisors, disk
//! templates, the default iallocator) still happen in `gnt-cluster init`
//! itself, before anything but the tree and the certificates is written,
//! with the same messages as before.

pub mod daemons;
pub mod destroy;
pub mod failover;
pub mod init;
pub mod join;
pub mod lvm;
pub mod tree;
