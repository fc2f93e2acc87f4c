//! Where cluster data comes from: the text file, the iallocator request,
//! the simulation description, the master daemon over LUXI, a RAPI server.

pub mod iallocator;
pub mod luxi;
pub mod rapi;
pub mod simu;
pub mod text;

use crate::error::Result;
use crate::model::Cluster;

/// A source of cluster data, as selected on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `-t FILE`: Ganeti's text format.
    Text(String),
    /// `--simu SPEC` (repeatable): generated empty nodes.
    Simu(Vec<String>),
    /// `-L [SOCKET]`: the master daemon over LUXI (empty: the default
    /// socket).
    Luxi(String),
    /// `-m CLUSTER`: a RAPI server, or `file://DIR` with its answers.
    Rapi(String),
}

/// Loads the raw (unmerged) cluster from a source.
pub fn load(src: &Source) -> Result<Cluster> {
    match src {
        Source::Text(path) => text::load_file(path),
        Source::Simu(specs) => simu::load(specs),
        Source::Luxi(sock) => luxi::load(sock),
        Source::Rapi(host) => rapi::load(host),
    }
}
