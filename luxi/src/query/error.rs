//! What can go wrong with a query, and how each error goes on the wire.

use crate::error::{ErrorCode, GanetiError};

/// An error parsing, compiling or running a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The filter is not well-formed JSON of the filter language (a
    /// non-list, an unknown operator, a wrong number of operands, a value
    /// that is neither string nor integer, a bad regular expression).
    #[error("{0}")]
    Parse(String),
    /// The filter names a field the resource does not have.
    #[error("Can't find field named '{0}'")]
    UnknownFilterField(String),
    /// The filter applies an operator to a field or value it cannot take.
    #[error("{0}")]
    Type(String),
    /// The old-style queries (`QueryInstances`, ...) were asked for fields
    /// that do not exist.
    #[error("Unknown output fields selected: {}", .0.join(", "))]
    UnknownOutputFields(Vec<String>),
    /// The arguments of a query call are malformed.
    #[error("{0}")]
    Request(String),
    /// A getter broke its contract (e.g. a normal status without a value).
    #[error("Internal error: {0}")]
    Internal(String),
}

impl QueryError {
    /// The Ganeti error this becomes on the wire:
    /// - `Parse` → `QueryFilterParseError(msg, [])`,
    /// - `UnknownFilterField`, `Type` → `ParameterError(msg)` (what Ganeti
    ///   3.0's query daemon raises for them),
    /// - `UnknownOutputFields` → `OpPrereqError(msg, "wrong_input")`,
    /// - `Request` → `LuxiError(msg)` (a malformed call),
    /// - `Internal` → `ProgrammerError(msg)`.
    pub fn to_ganeti(&self) -> GanetiError {
        let msg = self.to_string();
        match self {
            QueryError::Parse(_) => GanetiError::filter_parse(msg),
            QueryError::UnknownFilterField(_) | QueryError::Type(_) => GanetiError::parameter(msg),
            QueryError::UnknownOutputFields(_) => GanetiError::prereq(msg, ErrorCode::Inval),
            QueryError::Request(_) => GanetiError::luxi(msg),
            QueryError::Internal(_) => GanetiError::programmer(msg),
        }
    }
}

impl From<QueryError> for GanetiError {
    fn from(e: QueryError) -> Self {
        e.to_ganeti()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_errors_become_query_filter_parse_error() {
        let e = QueryError::Parse("Unknown filter operator '~'".into()).to_ganeti();
        assert_eq!(
            e.encode(),
            json!(["QueryFilterParseError", ["Unknown filter operator '~'", []]])
        );
    }

    #[test]
    fn unknown_filter_field_becomes_parameter_error() {
        let e = QueryError::UnknownFilterField("x".into()).to_ganeti();
        assert_eq!(
            e.encode(),
            json!(["ParameterError", ["Can't find field named 'x'"]])
        );
    }

    #[test]
    fn unknown_output_fields_become_prereq_error_wrong_input() {
        let e = QueryError::UnknownOutputFields(vec!["a".into(), "b".into()]).to_ganeti();
        assert_eq!(
            e.encode(),
            json!([
                "OpPrereqError",
                ["Unknown output fields selected: a, b", "wrong_input"]
            ])
        );
    }
}
