//! Where cluster data comes from: the text file, the iallocator request,
//! the simulation description, the master daemon over LUXI; RAPI later.

pub mod iallocator;
pub mod luxi;
pub mod simu;
pub mod text;

use crate::error::{Error, Result};
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
    /// `-m HOST`: the RAPI server (not available yet).
    Rapi(String),
}

/// Loads the raw (unmerged) cluster from a source.
pub fn load(src: &Source) -> Result<Cluster> {
    match src {
        Source::Text(path) => text::load_file(path),
        Source::Simu(specs) => simu::load(specs),
        Source::Luxi(sock) => luxi::load(sock),
        Source::Rapi(host) => Err(Error::Invalid(format!(
            "the RAPI backend (host '{host}') is not available in this version"
        ))),
    }
}
