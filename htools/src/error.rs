//! Errors of the htools library.

use thiserror::Error;

/// Everything that can go wrong while loading, checking or computing.
#[derive(Debug, Error)]
pub enum Error {
    /// A line or field of an input could not be understood.
    #[error("{what}: {msg}")]
    Parse { what: String, msg: String },
    /// A name referred to something that does not exist.
    #[error("Unknown {kind} '{name}'{context}")]
    Unknown {
        kind: &'static str,
        name: String,
        context: String,
    },
    /// A request or option is inconsistent with the cluster.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing a file failed.
    #[error("cannot access '{path}'")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A JSON document could not be decoded.
    #[error("Invalid JSON in {what}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    pub fn parse(what: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Parse {
            what: what.into(),
            msg: msg.into(),
        }
    }
    pub fn unknown(
        kind: &'static str,
        name: impl Into<String>,
        context: impl Into<String>,
    ) -> Self {
        Error::Unknown {
            kind,
            name: name.into(),
            context: context.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
