//! Errors of the command-line tools and their rendering as Ganeti's
//! `FormatError` prints them, with the exit code to use.

use luxi::client::ClientError;
use luxi::framing::FrameError;
use luxi::GanetiError;
use serde_json::{json, Value};

use crate::qlang::{FilterParseError, MakeFilterError};

/// Exit codes (Ganeti's `constants.EXIT_*`).
pub mod exit {
    pub const SUCCESS: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const NOTCLUSTER: i32 = 5;
    pub const NOTMASTER: i32 = 11;
    pub const NODESETUP_ERROR: i32 = 12;
    pub const CONFIRMATION: i32 = 13;
    pub const UNKNOWN_FIELD: i32 = 14;
}

/// What can make a command fail.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An error in Ganeti's encoding, from the master or raised here with
    /// one of Ganeti's classes (e.g. `OpPrereqError` for bad arguments).
    #[error(transparent)]
    Ganeti(#[from] GanetiError),
    /// The master's socket could not be reached.
    #[error("Cannot communicate with the config daemon.\nIs the process running and listening for connections?")]
    NoMaster,
    /// The connection broke or the master's reply could not be read.
    #[error("Unhandled protocol error while talking to the master daemon:\n{0}")]
    Protocol(String),
    /// A reply that does not have the shape the method defines.
    #[error("Unhandled protocol error while talking to the master daemon:\nunexpected reply to {method}: {detail}")]
    BadReply { method: String, detail: String },
    /// A query filter could not be parsed.
    #[error(transparent)]
    Filter(#[from] FilterParseError),
    /// The job disappeared from the queue.
    #[error("Error checking job status: {0}")]
    JobLost(String),
    /// The job was canceled.
    #[error("Unhandled Ganeti error: Job was canceled")]
    JobCanceled,
    /// Not a failure: the job was submitted with `--submit` (Ganeti's
    /// `JobSubmittedException`, printed as `JobID: N`, exit code 0).
    #[error("JobID: {0}")]
    Submitted(String),
    /// A local file could not be read.
    #[error("Unhandled exception: {0}")]
    Io(String),
}

impl CliError {
    /// `OpPrereqError(msg, "wrong_input")`: the user's input is invalid.
    pub fn invalid(msg: impl Into<String>) -> Self {
        CliError::Ganeti(GanetiError::prereq(msg, luxi::ErrorCode::Inval))
    }

    /// `OpPrereqError(msg, code)`.
    pub fn prereq(msg: impl Into<String>, code: luxi::ErrorCode) -> Self {
        CliError::Ganeti(GanetiError::prereq(msg, code))
    }

    /// `OpExecError(msg)`.
    pub fn exec(msg: impl Into<String>) -> Self {
        CliError::Ganeti(GanetiError::exec(msg))
    }

    /// A reply of an unexpected shape.
    pub fn bad_reply(method: &str, detail: impl Into<String>) -> Self {
        CliError::BadReply {
            method: method.to_string(),
            detail: detail.into(),
        }
    }

    /// The exit code and the message Ganeti prints for this error.
    pub fn render(&self) -> (i32, String) {
        match self {
            CliError::Ganeti(e) => format_ganeti_error(e),
            CliError::Filter(e) => {
                let mut s = format!("Error while parsing query filter: {e}\n");
                s.push_str(&e.details().join("\n"));
                (exit::FAILURE, s)
            }
            CliError::Submitted(id) => (exit::SUCCESS, format!("JobID: {id}")),
            other => (exit::FAILURE, other.to_string()),
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Connect { .. } => CliError::NoMaster,
            ClientError::Transport(FrameError::Closed) => {
                CliError::Protocol("the master daemon closed the connection".into())
            }
            ClientError::Transport(f) => CliError::Protocol(objects::error_chain(&f)),
            ClientError::Server(g) => CliError::Ganeti(g),
        }
    }
}

impl From<MakeFilterError> for CliError {
    fn from(e: MakeFilterError) -> Self {
        match e {
            MakeFilterError::Parse(p) => CliError::Filter(p),
            other => CliError::invalid(other.to_string()),
        }
    }
}

/// Python's `str(exception)`: the single argument, or the tuple of them.
fn exception_str(e: &GanetiError) -> String {
    match e.args.as_slice() {
        [] => String::new(),
        [Value::String(s)] => s.clone(),
        [v] => crate::pyfmt::py_str(v),
        args => {
            let inner: Vec<String> = args.iter().map(crate::pyfmt::py_repr).collect();
            format!("({})", inner.join(", "))
        }
    }
}

/// Renders an error of Ganeti's encoding as `FormatError` does.
pub fn format_ganeti_error(e: &GanetiError) -> (i32, String) {
    let msg = exception_str(e);
    let first = || e.message();
    let text = match e.class.as_str() {
        "ConfigurationError" => {
            return (
                2,
                format!("Corrupt configuration file: {msg}\nAborting."),
            )
        }
        "HooksAbort" => {
            let mut s = String::from("Failure: hooks execution failed:\n");
            if let Some(Value::Array(items)) = e.args.first() {
                for item in items {
                    if let Some([node, script, out]) = item.as_array().map(Vec::as_slice) {
                        let (node, script) = (crate::pyfmt::py_str(node), crate::pyfmt::py_str(script));
                        let out = crate::pyfmt::py_str(out);
                        if out.is_empty() {
                            s.push_str(&format!("  node: {node}, script: {script} (no output)\n"));
                        } else {
                            s.push_str(&format!(
                                "  node: {node}, script: {script}, output: {out}\n"
                            ));
                        }
                    }
                }
            }
            s
        }
        "HooksFailure" => format!("Failure: hooks general failure: {msg}"),
        "ResolverError" => format!("Failure: can't resolve hostname '{}'", first()),
        "OpPrereqError" => {
            if e.args.len() == 2 {
                format!(
                    "Failure: prerequisites not met for this operation:\nerror type: {}, error details:\n{}",
                    crate::pyfmt::py_str(&e.args[1]),
                    first()
                )
            } else {
                format!("Failure: prerequisites not met for this operation:\n{msg}")
            }
        }
        "OpExecError" => format!("Failure: command execution error:\n{msg}"),
        "TagError" => format!("Failure: invalid tag(s) given:\n{msg}"),
        "JobQueueDrainError" => {
            "Failure: the job queue is marked for drain and doesn't accept new requests".into()
        }
        "JobQueueFull" => "Failure: the job queue is full and doesn't accept new job submissions until old jobs are archived".into(),
        "TypeEnforcementError" => format!("Parameter Error: {msg}"),
        "ParameterError" => format!("Failure: unknown/wrong parameter name '{msg}'"),
        "JobLost" => format!("Error checking job status: {msg}"),
        "QueryFilterParseError" => {
            let mut s = format!("Error while parsing query filter: {}\n", first());
            if let Some(Value::Array(details)) = e.args.get(1) {
                let lines: Vec<String> = details.iter().map(crate::pyfmt::py_str).collect();
                s.push_str(&lines.join("\n"));
            }
            s
        }
        _ => format!("Unhandled Ganeti error: {msg}"),
    };
    (exit::FAILURE, text.trim_end_matches('\n').to_string())
}

/// Raises a job's per-opcode error value as Ganeti's `errors.MaybeRaise`
/// would: an encoded `[class, [args]]` becomes that error.
pub fn maybe_encoded_error(v: &Value) -> Option<GanetiError> {
    match v.as_array().map(Vec::as_slice) {
        Some([Value::String(_), Value::Array(_)]) => Some(GanetiError::decode(v)),
        _ => None,
    }
}

/// An `OpExecError` carrying `value` rendered as Python would.
pub fn exec_error_from(v: &Value) -> GanetiError {
    GanetiError::new("OpExecError", vec![json!(crate::pyfmt::py_str(v))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prereq_error_renders_type_and_details() {
        let e = CliError::Ganeti(GanetiError::prereq(
            "Instance 'x' not known",
            luxi::ErrorCode::NoEnt,
        ));
        assert_eq!(
            e.render(),
            (
                1,
                "Failure: prerequisites not met for this operation:\nerror type: unknown_entity, error details:\nInstance 'x' not known".to_string()
            )
        );
    }

    #[test]
    fn exec_error_renders_message() {
        let e = CliError::exec("Disk creation failed");
        assert_eq!(
            e.render().1,
            "Failure: command execution error:\nDisk creation failed"
        );
    }

    #[test]
    fn drained_queue_is_refused_as_ganeti_3_luxid_does() {
        let (code, text) = format_ganeti_error(&GanetiError::queue_drained());
        assert_eq!(code, 1);
        assert_eq!(text, "Unhandled Ganeti error: Queue drained");
        // The older class keeps its own message.
        let old = GanetiError::new("JobQueueDrainError", vec![]);
        assert_eq!(
            format_ganeti_error(&old).1,
            "Failure: the job queue is marked for drain and doesn't accept new requests"
        );
    }

    #[test]
    fn configuration_error_exits_with_two() {
        let (code, text) = format_ganeti_error(&GanetiError::configuration("bad"));
        assert_eq!(code, 2);
        assert_eq!(text, "Corrupt configuration file: bad\nAborting.");
    }

    #[test]
    fn unknown_classes_are_generic() {
        let e = GanetiError::new("HypervisorError", vec![json!("kvm died")]);
        assert_eq!(
            format_ganeti_error(&e).1,
            "Unhandled Ganeti error: kvm died"
        );
    }

    #[test]
    fn connection_failure_names_the_daemon() {
        let e = CliError::NoMaster;
        assert_eq!(
            e.render().1,
            "Cannot communicate with the config daemon.\nIs the process running and listening for connections?"
        );
    }
}
