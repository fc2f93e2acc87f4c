//! The resources, one module per family, and what they share: reading
//! objects through the master's query language and shaping them as
//! Ganeti's RAPI does (a list of `{"id", "uri"}`, or with `bulk=1` a list
//! of dicts of the resource's fields).

pub mod cluster;
pub mod filters;
pub mod groups;
pub mod instances;
pub mod jobs;
pub mod networks;
pub mod nodes;
pub mod query;
pub mod tags;

use std::borrow::Cow;

use axum::http::StatusCode;
use luxi::query::{
    classic_filter, ClassicQueryRequest, Filter, FilterValue, ItemType, QueryRequest,
};
use luxi::request::Request;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::ctx::{Ctx, Reply};
use crate::error::ApiError;

/// One column of a query answer.
#[derive(Deserialize)]
struct Column<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
}

/// A query answer, its values left as JSON text.
#[derive(Deserialize)]
struct Rows<'a> {
    #[serde(borrow)]
    fields: Vec<Column<'a>>,
    /// Each row as JSON text, read into its cells one row at a time.
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
}

/// One cell of a query answer: its status, its value as JSON text.
type RawCell<'a> = (i64, &'a RawValue);

/// Reads the cells of `row` into `cells`, whose room serves every row.
fn read_row<'a>(row: &'a RawValue, cells: &mut Vec<RawCell<'a>>) -> Result<(), ApiError> {
    struct Into<'v, 'a>(&'v mut Vec<RawCell<'a>>);
    impl<'de, 'v> serde::de::Visitor<'de> for Into<'v, 'de> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a row of [status, value] cells")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(cell) = seq.next_element::<RawCell<'de>>()? {
                self.0.push(cell);
            }
            Ok(())
        }
    }
    cells.clear();
    let mut de = serde_json::Deserializer::from_str(row.get());
    serde::Deserializer::deserialize_seq(&mut de, Into(cells)).map_err(bad_reply)?;
    de.end().map_err(bad_reply)
}

/// The master's reply message to a query that succeeded, read in one pass.
#[derive(Deserialize)]
struct Answered<'a> {
    success: bool,
    #[serde(borrow)]
    result: Rows<'a>,
}

/// The rows of the master's reply message `msg`: in one pass when it is a
/// query answer, else the master's error or a bad reply.
fn rows_of(msg: &str) -> Result<Rows<'_>, ApiError> {
    match serde_json::from_str::<Answered<'_>>(msg) {
        Ok(a) if a.success => Ok(a.result),
        _ => {
            let text = crate::master::result_of(msg)?;
            serde_json::from_str(text).map_err(bad_reply)
        }
    }
}

/// A change made to one field of each object before it is sent (Ganeti
/// adds `beparams.memory`, the old name of `maxmem`, to instances); the
/// other fields pass as the master wrote them.
#[derive(Clone, Copy)]
pub struct Fixup {
    pub field: &'static str,
    pub patch: fn(&mut Value),
}

/// How to read objects of one kind.
pub struct Items<'a> {
    pub what: ItemType,
    pub fields: &'a [&'a str],
    pub fixup: Option<Fixup>,
}

fn bad_reply(e: serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        format!("Invalid query answer from the master daemon: {e}"),
    )
}

impl Items<'_> {
    /// The query for these fields of every object, or of the one named
    /// (by name, as Ganeti's old query calls select).
    fn request(&self, name: Option<&str>) -> Request {
        let filter = match name {
            None => Filter::Empty,
            Some(n) => classic_filter(&[self.what.name_field()], &[FilterValue::from(n)]),
        };
        Request::Query(QueryRequest {
            what: self.what,
            fields: self.fields.iter().map(|f| (*f).to_string()).collect(),
            filter,
        })
    }

    /// Every object as a dict, as JSON text (`[{...}, ...]`).
    pub async fn all(&self, ctx: &Ctx) -> Result<Reply, ApiError> {
        if ctx.locking()? {
            return self.locked(ctx, None).await.map(Reply::Value);
        }
        let msg = ctx.call_message(&self.request(None)).await?;
        Ok(Reply::Json(self.dicts(rows_of(&msg)?, false)?))
    }

    /// The object named `name` as a dict; 404 if there is none.
    pub async fn one(&self, ctx: &Ctx, name: &str) -> Result<Map<String, Value>, ApiError> {
        let list = if ctx.locking()? {
            self.locked(ctx, Some(name)).await?
        } else {
            let msg = ctx.call_message(&self.request(Some(name))).await?;
            serde_json::from_str(&self.dicts(rows_of(&msg)?, true)?).map_err(bad_reply)?
        };
        match list {
            Value::Array(mut v) if !v.is_empty() => match v.swap_remove(0) {
                Value::Object(m) => Ok(m),
                _ => Err(ApiError::not_found()),
            },
            _ => Err(ApiError::not_found()),
        }
    }

    /// `lock=1`: the old query call with locking, which the master
    /// refuses as Ganeti 3.0 does; its answer if it ever takes it.
    async fn locked(&self, ctx: &Ctx, name: Option<&str>) -> Result<Value, ApiError> {
        let req = Request::Classic(
            self.what,
            ClassicQueryRequest {
                names: name.map(|n| vec![n.to_string()]).unwrap_or_default(),
                fields: self.fields.iter().map(|f| (*f).to_string()).collect(),
                use_locking: true,
            },
        );
        let rows = ctx.call(&req).await?;
        let rows = rows.as_array().cloned().unwrap_or_default();
        Ok(Value::Array(
            rows.into_iter()
                .map(|row| {
                    let vals = row.as_array().cloned().unwrap_or_default();
                    let mut m: Map<String, Value> = self
                        .fields
                        .iter()
                        .map(|f| (*f).to_string())
                        .zip(vals)
                        .collect();
                    if let Some(f) = self.fixup {
                        if let Some(v) = m.get_mut(f.field) {
                            (f.patch)(v);
                        }
                    }
                    Value::Object(m)
                })
                .collect(),
        ))
    }

    /// The rows of a query answer as a list of dicts, written straight
    /// from the answer's text. A value the master could not give (offline
    /// node, no data) is `null`, as with Ganeti's old query calls; a field
    /// the master does not know is an error, as there.
    fn dicts(&self, rows: Rows<'_>, one: bool) -> Result<String, ApiError> {
        let unknown: Vec<&str> = rows
            .fields
            .iter()
            .filter(|c| c.kind == "unknown")
            .map(|c| c.name.as_ref())
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Unknown output fields: {}", unknown.join(", ")),
            ));
        }
        let keys: Vec<String> = rows
            .fields
            .iter()
            .map(|c| Value::from(c.name.as_ref()).to_string())
            .collect();
        let patched = self
            .fixup
            .and_then(|f| rows.fields.iter().position(|c| c.name == f.field));
        let mut out = String::with_capacity(rows.data.len() * 1024);
        let mut cells = Vec::with_capacity(keys.len());
        out.push('[');
        for (i, row) in rows.data.iter().enumerate() {
            if one && i > 0 {
                break;
            }
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            read_row(row, &mut cells)?;
            for (j, (key, (status, v))) in keys.iter().zip(&cells).enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str(key);
                out.push(':');
                if *status != 0 {
                    out.push_str("null");
                } else if Some(j) == patched {
                    let mut value: Value = serde_json::from_str(v.get()).map_err(bad_reply)?;
                    if let Some(f) = self.fixup {
                        (f.patch)(&mut value);
                    }
                    out.push_str(&value.to_string());
                } else {
                    out.push_str(v.get());
                }
            }
            out.push('}');
        }
        out.push(']');
        Ok(out)
    }

    /// The names of every object.
    pub async fn names(&self, ctx: &Ctx) -> Result<Vec<String>, ApiError> {
        let req = Request::Query(QueryRequest {
            what: self.what,
            fields: vec!["name".into()],
            filter: Filter::Empty,
        });
        let msg = ctx.call_message(&req).await?;
        let rows = rows_of(&msg)?;
        let mut cells = Vec::with_capacity(1);
        let mut names = Vec::with_capacity(rows.data.len());
        for row in &rows.data {
            read_row(row, &mut cells)?;
            if let Some((0, v)) = cells.first() {
                names.push(serde_json::from_str::<String>(v.get()).map_err(bad_reply)?);
            }
        }
        Ok(names)
    }
}

/// Ganeti's index of a resource: `[{id_key: name, "uri": uri_prefix + name}]`
/// sorted by name.
pub fn uri_list(mut names: Vec<String>, id_key: &str, uri_prefix: &str) -> Value {
    names.sort();
    Value::Array(
        names
            .into_iter()
            .map(|n| json!({ id_key: n, "uri": format!("{uri_prefix}{n}") }))
            .collect(),
    )
}

/// [`uri_list`] written straight as JSON text.
pub fn uri_list_text(mut names: Vec<String>, id_key: &str, uri_prefix: &str) -> String {
    names.sort();
    let key = Value::from(id_key).to_string();
    let mut out = String::with_capacity(names.len() * (2 * 16 + uri_prefix.len() + 24));
    out.push('[');
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        out.push_str(&key);
        out.push(':');
        out.push_str(&Value::from(n.as_str()).to_string());
        out.push_str(",\"uri\":");
        out.push_str(&Value::from(format!("{uri_prefix}{n}")).to_string());
        out.push('}');
    }
    out.push(']');
    out
}

/// The list of a resource: names with URIs, or with `bulk=1` every field.
pub async fn list(
    ctx: &Ctx,
    items: &Items<'_>,
    id_key: &str,
    uri_prefix: &str,
) -> Result<Reply, ApiError> {
    if ctx.bulk()? {
        items.all(ctx).await
    } else {
        Ok(Reply::Json(uri_list_text(
            items.names(ctx).await?,
            id_key,
            uri_prefix,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(v: &mut Value) {
        *v = json!(v.as_i64().unwrap_or(0) + 1);
    }

    #[test]
    fn query_answers_become_dicts_with_null_for_missing_values() {
        let text = r#"{"fields": [{"name": "name", "title": "N", "kind": "text", "doc": ""},
                                  {"name": "mfree", "title": "M", "kind": "unit", "doc": ""}],
                       "data": [[[0, "node1"], [0, 1024]], [[0, "node2"], [4, null]]]}"#;
        let items = Items {
            what: ItemType::Node,
            fields: &["name", "mfree"],
            fixup: None,
        };
        let rows = || serde_json::from_str(text).unwrap();
        let out: Value = serde_json::from_str(&items.dicts(rows(), false).unwrap()).unwrap();
        assert_eq!(
            out,
            json!([{"name": "node1", "mfree": 1024}, {"name": "node2", "mfree": null}])
        );
        let items = Items {
            fixup: Some(Fixup {
                field: "mfree",
                patch: fix,
            }),
            ..items
        };
        let out: Value = serde_json::from_str(&items.dicts(rows(), true).unwrap()).unwrap();
        assert_eq!(out, json!([{"name": "node1", "mfree": 1025}]));
    }

    #[test]
    fn a_reply_message_gives_its_rows_or_the_masters_error() {
        let result = r#"{"fields": [{"name": "name", "title": "N", "kind": "text", "doc": ""}],
                         "data": [[[0, "node1"]]]}"#;
        let msg = luxi::protocol::format_response_json(result, Some(3_000_000));
        let rows = rows_of(&msg).unwrap();
        assert_eq!(rows.data[0].get(), r#"[[0, "node1"]]"#);
        let msg = luxi::protocol::format_response(
            Err(luxi::GanetiError::prereq(
                "Instance 'x' not known",
                luxi::error::ErrorCode::NoEnt,
            )),
            None,
        );
        let e = rows_of(&msg).err().unwrap();
        assert_eq!(e.status, StatusCode::NOT_FOUND, "{e:?}");
        let msg = luxi::protocol::format_response(Ok(json!([1, 2])), None);
        assert_eq!(rows_of(&msg).err().unwrap().status, StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn an_unknown_field_is_an_error() {
        let text = r#"{"fields": [{"name": "bogus", "title": "bogus", "kind": "unknown", "doc": ""}],
                       "data": [[[1, null]]]}"#;
        let items = Items {
            what: ItemType::Node,
            fields: &["bogus"],
            fixup: None,
        };
        let e = items
            .dicts(serde_json::from_str(text).unwrap(), false)
            .unwrap_err();
        assert_eq!(e.message.unwrap(), "Unknown output fields: bogus");
    }

    #[test]
    fn indexes_are_sorted_with_uris() {
        let names = vec!["b".to_string(), "a\"x".to_string()];
        let v = uri_list(names.clone(), "id", "/2/nodes/");
        assert_eq!(
            v,
            json!([{"id": "a\"x", "uri": "/2/nodes/a\"x"}, {"id": "b", "uri": "/2/nodes/b"}])
        );
        let text: Value = serde_json::from_str(&uri_list_text(names, "id", "/2/nodes/")).unwrap();
        assert_eq!(text, v);
    }
}
