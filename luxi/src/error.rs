//! Ganeti's error classes and their encoding on the wire:
//! `["OpPrereqError", ["Instance 'x' not known", "unknown_entity"]]`.

use serde_json::{json, Value};

/// The `ECODE_*` codes that accompany `OpPrereqError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Resolver,
    NoRes,
    TempNoRes,
    Inval,
    State,
    NoEnt,
    Exists,
    NotUnique,
    Fault,
    Environ,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Resolver => "resolver_error",
            ErrorCode::NoRes => "insufficient_resources",
            ErrorCode::TempNoRes => "temp_insufficient_resources",
            ErrorCode::Inval => "wrong_input",
            ErrorCode::State => "wrong_state",
            ErrorCode::NoEnt => "unknown_entity",
            ErrorCode::Exists => "already_exists",
            ErrorCode::NotUnique => "resource_not_unique",
            ErrorCode::Fault => "internal_error",
            ErrorCode::Environ => "environment_error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "resolver_error" => ErrorCode::Resolver,
            "insufficient_resources" => ErrorCode::NoRes,
            "temp_insufficient_resources" => ErrorCode::TempNoRes,
            "wrong_input" => ErrorCode::Inval,
            "wrong_state" => ErrorCode::State,
            "unknown_entity" => ErrorCode::NoEnt,
            "already_exists" => ErrorCode::Exists,
            "resource_not_unique" => ErrorCode::NotUnique,
            "internal_error" => ErrorCode::Fault,
            "environment_error" => ErrorCode::Environ,
            _ => return None,
        })
    }
}

/// An error as Ganeti encodes it: a class name and its arguments.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{class}: {}", self.message())]
pub struct GanetiError {
    /// The Python exception class name, e.g. `OpPrereqError`.
    pub class: String,
    /// The exception arguments.
    pub args: Vec<Value>,
}

impl GanetiError {
    pub fn new(class: &str, args: Vec<Value>) -> Self {
        GanetiError {
            class: class.to_string(),
            args,
        }
    }

    /// `OpPrereqError(msg, code)`: a prerequisite of an operation does not hold.
    pub fn prereq(msg: impl Into<String>, code: ErrorCode) -> Self {
        GanetiError::new(
            "OpPrereqError",
            vec![json!(msg.into()), json!(code.as_str())],
        )
    }

    /// `OpExecError(msg)`: the operation failed while executing.
    pub fn exec(msg: impl Into<String>) -> Self {
        GanetiError::new("OpExecError", vec![json!(msg.into())])
    }

    /// `ProgrammerError(msg)`: a request that is malformed for the server.
    pub fn programmer(msg: impl Into<String>) -> Self {
        GanetiError::new("ProgrammerError", vec![json!(msg.into())])
    }

    /// `LuxiError(msg)`: a protocol-level error.
    pub fn luxi(msg: impl Into<String>) -> Self {
        GanetiError::new("LuxiError", vec![json!(msg.into())])
    }

    /// `OpCodeUnknown(msg)`.
    pub fn opcode_unknown(msg: impl Into<String>) -> Self {
        GanetiError::new("OpCodeUnknown", vec![json!(msg.into())])
    }

    /// `ParameterError(msg)`: a wrongly typed or unknown parameter.
    pub fn parameter(msg: impl Into<String>) -> Self {
        GanetiError::new("ParameterError", vec![json!(msg.into())])
    }

    /// A submission to a drained queue, as Ganeti 3.0's luxid refuses it:
    /// `GenericError("Queue drained")` (the `JobQueueDrainError` class of
    /// its Python clients is no longer sent).
    pub fn queue_drained() -> Self {
        GanetiError::new("GenericError", vec![json!("Queue drained")])
    }

    /// Whether this is the refusal of a drained queue, in Ganeti 3.0's
    /// form or the older `JobQueueDrainError`.
    pub fn is_queue_drained(&self) -> bool {
        self.class == "JobQueueDrainError"
            || (self.class == "GenericError" && self.message() == "Queue drained")
    }

    /// `JobQueueFull(msg)`.
    pub fn queue_full() -> Self {
        GanetiError::new("JobQueueFull", vec![json!("Job queue is full")])
    }

    /// `JobLost(msg)`.
    pub fn job_lost(msg: impl Into<String>) -> Self {
        GanetiError::new("JobLost", vec![json!(msg.into())])
    }

    /// `QueryFilterParseError(msg, details)`.
    pub fn filter_parse(msg: impl Into<String>) -> Self {
        GanetiError::new("QueryFilterParseError", vec![json!(msg.into()), json!([])])
    }

    /// `HypervisorError(msg)`.
    pub fn hypervisor(msg: impl Into<String>) -> Self {
        GanetiError::new("HypervisorError", vec![json!(msg.into())])
    }

    /// `ConfigurationError(msg)`.
    pub fn configuration(msg: impl Into<String>) -> Self {
        GanetiError::new("ConfigurationError", vec![json!(msg.into())])
    }

    /// `TagError(msg)`.
    pub fn tag(msg: impl Into<String>) -> Self {
        GanetiError::new("TagError", vec![json!(msg.into())])
    }

    /// The first argument as text: the human-readable message.
    /// The same error with `note` appended to its message
    /// (`"<message>; <note>"`), class and code unchanged.
    pub fn with_note(mut self, note: impl AsRef<str>) -> Self {
        let msg = format!("{}; {}", self.message(), note.as_ref());
        match self.args.first_mut() {
            Some(first) => *first = Value::String(msg),
            None => self.args.push(Value::String(msg)),
        }
        self
    }

    pub fn message(&self) -> String {
        match self.args.first() {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        }
    }

    /// The `ECODE_*` of an `OpPrereqError`, if any.
    pub fn code(&self) -> Option<ErrorCode> {
        self.args
            .get(1)
            .and_then(Value::as_str)
            .and_then(ErrorCode::parse)
    }

    /// The wire encoding `[class, [args...]]`.
    pub fn encode(&self) -> Value {
        json!([self.class, self.args])
    }

    /// Decodes `[class, [args...]]`; anything else becomes a generic error.
    pub fn decode(v: &Value) -> GanetiError {
        if let Some([cls, Value::Array(args)]) = v.as_array().map(Vec::as_slice) {
            if let Some(cls) = cls.as_str() {
                return GanetiError::new(cls, args.clone());
            }
        }
        let msg = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        GanetiError::new("GenericError", vec![json!(msg)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prereq_error_encodes_like_ganeti() {
        let e = GanetiError::prereq("Instance 'x' not known", ErrorCode::NoEnt);
        assert_eq!(
            e.encode(),
            json!([
                "OpPrereqError",
                ["Instance 'x' not known", "unknown_entity"]
            ])
        );
        assert_eq!(GanetiError::decode(&e.encode()), e);
        assert_eq!(e.code(), Some(ErrorCode::NoEnt));
    }

    #[test]
    fn undecodable_error_becomes_generic() {
        let e = GanetiError::decode(&json!("boom"));
        assert_eq!(e.class, "GenericError");
        assert_eq!(e.message(), "boom");
    }
}
