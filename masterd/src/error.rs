//! The errors of the master's logical units and of what they call (node
//! RPC, the configuration store, the lock manager, iallocator plugins).
//!
//! They keep their sources, so that the log shows the whole chain; the job
//! queue encodes them as Ganeti's `[class, [args]]` (`OpPrereqError`,
//! `OpExecError`, ...) when it records an opcode's result, the only place
//! a client sees them.

use luxi::error::{ErrorCode, GanetiError};
use objects::error_chain;

use crate::config::ConfigError;
use crate::locking::LockError;
use crate::rpc::RpcFailure;

/// Why an opcode failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A prerequisite does not hold (`OpPrereqError` with its code).
    #[error("{msg}")]
    Prereq { msg: String, code: ErrorCode },
    /// The operation failed while it ran (`OpExecError`).
    #[error("{0}")]
    Exec(String),
    /// A node call failed; `what` says what the unit was doing.
    #[error("{what}")]
    Rpc {
        what: String,
        #[source]
        source: RpcFailure,
    },
    /// The configuration could not be saved (`ConfigurationError`).
    #[error("Could not save the configuration")]
    Config(#[source] ConfigError),
    /// The unit's locks could not be taken (`OpExecError`).
    #[error("Could not acquire the locks")]
    Locks(#[source] LockError),
    /// An error already in Ganeti's terms (an opcode that does not parse,
    /// a tag error, a malformed request).
    #[error(transparent)]
    Ganeti(#[from] GanetiError),
}

impl Error {
    /// `OpPrereqError(msg, code)`.
    pub fn prereq(msg: impl Into<String>, code: ErrorCode) -> Self {
        Error::Prereq {
            msg: msg.into(),
            code,
        }
    }

    /// `OpExecError(msg)`.
    pub fn exec(msg: impl Into<String>) -> Self {
        Error::Exec(msg.into())
    }

    /// `ProgrammerError(msg)`: what should not happen did.
    pub fn programmer(msg: impl Into<String>) -> Self {
        Error::Ganeti(GanetiError::programmer(msg))
    }

    /// `TagError(msg)`.
    pub fn tag(msg: impl Into<String>) -> Self {
        Error::Ganeti(GanetiError::tag(msg))
    }

    /// A node call that failed while doing `what`.
    pub fn rpc(what: impl Into<String>, source: RpcFailure) -> Self {
        Error::Rpc {
            what: what.into(),
            source,
        }
    }

    /// The message a user reads: this error and its sources.
    pub fn message(&self) -> String {
        match self {
            Error::Ganeti(g) => g.message(),
            other => error_chain(other),
        }
    }

    /// The same error with `note` appended to its message.
    pub fn with_note(self, note: impl AsRef<str>) -> Self {
        Error::Ganeti(self.encode().with_note(note))
    }

    /// Ganeti's encoding: the class a client expects and the whole message.
    pub fn encode(&self) -> GanetiError {
        match self {
            Error::Prereq { msg, code } => GanetiError::prereq(msg.clone(), *code),
            Error::Exec(_) | Error::Rpc { .. } | Error::Locks(_) => {
                GanetiError::exec(self.message())
            }
            Error::Config(_) => GanetiError::configuration(self.message()),
            Error::Ganeti(g) => g.clone(),
        }
    }
}

impl From<Error> for GanetiError {
    fn from(e: Error) -> GanetiError {
        e.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_node_call_keeps_its_source_and_reads_as_one_message() {
        let e = Error::rpc(
            "Could not start instance inst1 on node node2",
            RpcFailure::Offline {
                node: "node2".into(),
            },
        );
        assert!(std::error::Error::source(&e).is_some());
        let g = e.encode();
        assert_eq!(g.class, "OpExecError");
        assert_eq!(
            g.message(),
            "Could not start instance inst1 on node node2: node node2 is marked offline"
        );
    }

    #[test]
    fn a_prerequisite_keeps_its_code() {
        let g = Error::prereq("Instance 'x' not known", ErrorCode::NoEnt).encode();
        assert_eq!(g.class, "OpPrereqError");
        assert_eq!(g.code(), Some(ErrorCode::NoEnt));
    }
}
