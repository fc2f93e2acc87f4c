//! The arguments of the LUXI query calls, typed: `Query(what, fields,
//! qfilter)`, `QueryFields(what, fields)` and the old
//! `QueryInstances/QueryNodes/QueryGroups/QueryNetworks(names, fields,
//! use_locking)`.

use std::fmt;

use serde_json::{json, Value};

use super::error::QueryError;
use super::filter::{Filter, FilterValue};
use super::run::classic_filter;

/// The resources a LUXI query can be about (Ganeti's `QR_*` that go via
/// LUXI, plus those served by opcodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemType {
    Cluster,
    Instance,
    Node,
    Group,
    Os,
    Export,
    Network,
    Lock,
    Job,
    Filter,
}

impl ItemType {
    pub const ALL: [ItemType; 10] = [
        ItemType::Cluster,
        ItemType::Instance,
        ItemType::Node,
        ItemType::Group,
        ItemType::Os,
        ItemType::Export,
        ItemType::Network,
        ItemType::Lock,
        ItemType::Job,
        ItemType::Filter,
    ];

    /// The wire string, e.g. `"instance"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Cluster => "cluster",
            ItemType::Instance => "instance",
            ItemType::Node => "node",
            ItemType::Group => "group",
            ItemType::Os => "os",
            ItemType::Export => "export",
            ItemType::Network => "network",
            ItemType::Lock => "lock",
            ItemType::Job => "job",
            ItemType::Filter => "filter",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ItemType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The field holding an item's name, which name filters use (Ganeti's
    /// `nameField`): `id` for jobs, `node` for exports, `name` otherwise.
    pub fn name_field(self) -> &'static str {
        match self {
            ItemType::Job => "id",
            ItemType::Export => "node",
            _ => "name",
        }
    }

    /// The field holding an item's UUID, or its best substitute (Ganeti's
    /// `uuidField`).
    pub fn uuid_field(self) -> &'static str {
        match self {
            ItemType::Job | ItemType::Export => self.name_field(),
            _ => "uuid",
        }
    }
}

impl fmt::Display for ItemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn arg_list<'a, const N: usize>(
    method: &str,
    args: &'a Value,
) -> Result<&'a [Value; N], QueryError> {
    args.as_array()
        .and_then(|items| items.as_slice().try_into().ok())
        .ok_or_else(|| {
            QueryError::Request(format!(
                "{method} expects a list of {N} arguments, got {args}"
            ))
        })
}

fn item_type(method: &str, v: &Value) -> Result<ItemType, QueryError> {
    v.as_str().and_then(ItemType::parse).ok_or_else(|| {
        let known: Vec<&str> = ItemType::ALL.iter().map(|t| t.as_str()).collect();
        QueryError::Request(format!(
            "{method}: unknown resource {v}, expected one of {}",
            known.join(", ")
        ))
    })
}

/// A list of strings; `null` counts as empty (the CLI sends `null` for
/// "all fields").
fn strings(method: &str, what: &str, v: &Value) -> Result<Vec<String>, QueryError> {
    let bad = || {
        QueryError::Request(format!(
            "{method}: {what} must be a list of strings, got {v}"
        ))
    };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

/// `Query(what, fields, qfilter)`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    pub what: ItemType,
    pub fields: Vec<String>,
    pub filter: Filter,
}

impl QueryRequest {
    /// Reads the positional arguments `[what, fields, qfilter]`.
    pub fn from_args(args: &Value) -> Result<Self, QueryError> {
        let [what, fields, filter] = arg_list("Query", args)?;
        Ok(QueryRequest {
            what: item_type("Query", what)?,
            fields: strings("Query", "fields", fields)?,
            filter: Filter::from_json(filter)?,
        })
    }

    /// The positional arguments, for a client.
    pub fn to_args(&self) -> Value {
        json!([self.what.as_str(), self.fields, self.filter.to_json()])
    }
}

/// `QueryFields(what, fields)`; no fields (or `null`) means all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryFieldsRequest {
    pub what: ItemType,
    pub fields: Vec<String>,
}

impl QueryFieldsRequest {
    pub fn from_args(args: &Value) -> Result<Self, QueryError> {
        let [what, fields] = arg_list("QueryFields", args)?;
        Ok(QueryFieldsRequest {
            what: item_type("QueryFields", what)?,
            fields: strings("QueryFields", "fields", fields)?,
        })
    }

    pub fn to_args(&self) -> Value {
        if self.fields.is_empty() {
            json!([self.what.as_str(), null])
        } else {
            json!([self.what.as_str(), self.fields])
        }
    }
}

/// The old calls `QueryInstances`, `QueryNodes`, `QueryGroups`,
/// `QueryNetworks`: `(names, fields, use_locking)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicQueryRequest {
    pub names: Vec<String>,
    pub fields: Vec<String>,
    pub use_locking: bool,
}

impl ClassicQueryRequest {
    /// Reads `[names, fields, use_locking]`; `method` names the call in
    /// error messages. Ganeti refuses `use_locking = true`; see
    /// [`ClassicQueryRequest::check_no_locking`].
    pub fn from_args(method: &str, args: &Value) -> Result<Self, QueryError> {
        let [names, fields, lock] = arg_list(method, args)?;
        let use_locking = match lock {
            Value::Bool(b) => *b,
            Value::Null => false,
            other => {
                return Err(QueryError::Request(format!(
                    "{method}: use_locking must be a boolean, got {other}"
                )))
            }
        };
        Ok(ClassicQueryRequest {
            names: strings(method, "names", names)?,
            fields: strings(method, "fields", fields)?,
            use_locking,
        })
    }

    pub fn to_args(&self) -> Value {
        json!([self.names, self.fields, self.use_locking])
    }

    /// Ganeti 3.0: `OpPrereqError("Sync queries are not allowed",
    /// "wrong_input")` when locking is asked for.
    pub fn check_no_locking(&self) -> Result<(), crate::GanetiError> {
        if self.use_locking {
            Err(crate::GanetiError::prereq(
                "Sync queries are not allowed",
                crate::ErrorCode::Inval,
            ))
        } else {
            Ok(())
        }
    }

    /// The filter for these names on `what`: name or UUID equal to one of
    /// them (short host names match), every item if there are none.
    pub fn filter(&self, what: ItemType) -> Filter {
        let names: Vec<FilterValue> = self.names.iter().map(FilterValue::from).collect();
        let mut fields = vec![what.name_field()];
        if what.uuid_field() != what.name_field() {
            fields.push(what.uuid_field());
        }
        classic_filter(&fields, &names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_args_parse_like_the_python_client_sends_them() {
        let args = json!(["instance", ["name", "pnode"], ["=~", "name", "^web"]]);
        let req = QueryRequest::from_args(&args).unwrap();
        assert_eq!(req.what, ItemType::Instance);
        assert_eq!(req.fields, ["name", "pnode"]);
        assert_eq!(req.filter.to_json(), json!(["=~", "name", "^web"]));
        assert_eq!(req.to_args(), args);
        let req = QueryRequest::from_args(&json!(["node", ["name"], null])).unwrap();
        assert_eq!(req.filter, Filter::Empty);
    }

    #[test]
    fn bad_query_args_are_named() {
        let e = QueryRequest::from_args(&json!(["instance", ["name"]])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Query expects a list of 3 arguments"),
            "{e}"
        );
        let e = QueryRequest::from_args(&json!(["vm", ["name"], null])).unwrap_err();
        assert!(e.to_string().contains("unknown resource \"vm\""), "{e}");
        let e = QueryRequest::from_args(&json!(["node", [1], null])).unwrap_err();
        assert!(
            e.to_string().contains("fields must be a list of strings"),
            "{e}"
        );
        let e = QueryRequest::from_args(&json!(["node", ["name"], ["=="]])).unwrap_err();
        assert!(matches!(e, QueryError::Parse(_)), "{e:?}");
    }

    #[test]
    fn query_fields_takes_null_as_all_fields() {
        let req = QueryFieldsRequest::from_args(&json!(["node", null])).unwrap();
        assert_eq!(
            req,
            QueryFieldsRequest {
                what: ItemType::Node,
                fields: vec![]
            }
        );
        assert_eq!(req.to_args(), json!(["node", null]));
    }

    #[test]
    fn classic_query_args_and_filter() {
        let req =
            ClassicQueryRequest::from_args("QueryInstances", &json!([["web1"], ["name"], false]))
                .unwrap();
        assert!(req.check_no_locking().is_ok());
        assert_eq!(
            req.filter(ItemType::Instance).to_json(),
            json!([
                "|",
                ["|", ["==", "name", "web1"]],
                ["|", ["==", "uuid", "web1"]]
            ])
        );
        assert_eq!(
            req.filter(ItemType::Job).to_json(),
            json!(["|", ["|", ["==", "id", "web1"]]])
        );
        let locked =
            ClassicQueryRequest::from_args("QueryNodes", &json!([[], ["name"], true])).unwrap();
        assert_eq!(
            locked.check_no_locking().unwrap_err().encode(),
            json!([
                "OpPrereqError",
                ["Sync queries are not allowed", "wrong_input"]
            ])
        );
        assert_eq!(locked.filter(ItemType::Node), Filter::Empty);
    }

    #[test]
    fn item_types_round_trip_and_know_their_name_fields() {
        for t in ItemType::ALL {
            assert_eq!(ItemType::parse(t.as_str()), Some(t));
        }
        assert_eq!(ItemType::Job.name_field(), "id");
        assert_eq!(ItemType::Export.name_field(), "node");
        assert_eq!(ItemType::Instance.uuid_field(), "uuid");
    }
}
