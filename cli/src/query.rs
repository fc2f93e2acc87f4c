//! Listing resources with LUXI's `Query` and `QueryFields`, formatted as
//! Ganeti's `GenericList`, `FormatQueryResult` and `GenericListFields`.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::error::{exit, CliError};
use crate::output;
use crate::pyfmt::py_str;
use crate::qlang;
use crate::table::{format_table, Column};
use crate::timefmt::format_time_value;
use crate::units::{default_unit, format_unit, Unit};

/// Result status of one value (Ganeti's `RS_*`).
pub const RS_NORMAL: i64 = 0;
pub const RS_UNKNOWN: i64 = 1;
pub const RS_NODATA: i64 = 2;
pub const RS_UNAVAIL: i64 = 3;
pub const RS_OFFLINE: i64 = 4;

/// The options of every `list` command.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ListOpts {
    /// Comma-separated list of output fields; `+f1,f2` adds to the defaults
    #[arg(short = 'o', long = "output", value_name = "FIELDS")]
    pub output: Option<String>,
    /// Don't display column headers
    #[arg(long)]
    pub no_headers: bool,
    /// Separator between output fields (default: aligned columns)
    #[arg(long, allow_hyphen_values = true)]
    pub separator: Option<String>,
    /// Units for sizes: h (human-readable), m, g or t
    #[arg(long, value_enum)]
    pub units: Option<Unit>,
    /// Use verbose descriptions for missing values
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Treat the argument as a query filter
    #[arg(short = 'F', long = "filter")]
    pub force_filter: bool,
}

/// The options of every `list-fields` command.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ListFieldsOpts {
    /// Don't display column headers
    #[arg(long)]
    pub no_headers: bool,
    /// Separator between output fields
    #[arg(long, allow_hyphen_values = true)]
    pub separator: Option<String>,
}

/// Ganeti's `ParseFields`: `None` gives the defaults, `+a,b` extends them.
pub fn parse_fields(selected: Option<&str>, default: &[&str]) -> Vec<String> {
    let default: Vec<String> = default.iter().map(|s| s.to_string()).collect();
    match selected {
        None => default,
        Some(s) => match s.strip_prefix('+') {
            Some(more) => default
                .into_iter()
                .chain(more.split(',').map(str::to_string))
                .collect(),
            None => s.split(',').map(str::to_string).collect(),
        },
    }
}

/// A field definition of a query response.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    pub name: String,
    pub title: String,
    pub kind: String,
    pub doc: String,
}

/// A parsed `Query` response.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse {
    pub fields: Vec<FieldDef>,
    pub data: Vec<Vec<(i64, Value)>>,
}

fn parse_fields_defs(method: &str, v: &Value) -> Result<Vec<FieldDef>, CliError> {
    let Some(fields) = v.get("fields").and_then(Value::as_array) else {
        return Err(CliError::bad_reply(method, "no field definitions"));
    };
    fields
        .iter()
        .map(|f| {
            let s = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string);
            match (s("name"), s("title"), s("kind")) {
                (Some(name), Some(title), Some(kind)) => Ok(FieldDef {
                    name,
                    title,
                    kind,
                    doc: s("doc").unwrap_or_default(),
                }),
                _ => Err(CliError::bad_reply(
                    method,
                    format!("invalid field definition {f}"),
                )),
            }
        })
        .collect()
}

/// Parses and checks the shape of a `Query` result.
pub fn parse_query_response(v: &Value) -> Result<QueryResponse, CliError> {
    let fields = parse_fields_defs("Query", v)?;
    let Some(rows) = v.get("data").and_then(Value::as_array) else {
        return Err(CliError::bad_reply("Query", "no data"));
    };
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(cells) = row.as_array().filter(|c| c.len() == fields.len()) else {
            return Err(CliError::bad_reply(
                "Query",
                format!("row {row} does not match the {} fields", fields.len()),
            ));
        };
        let mut out = Vec::with_capacity(cells.len());
        for cell in cells {
            match cell.as_array().map(Vec::as_slice) {
                Some([st, val]) if st.is_i64() => out.push((st.as_i64().unwrap_or(0), val.clone())),
                _ => {
                    return Err(CliError::bad_reply(
                        "Query",
                        format!("invalid value {cell}"),
                    ))
                }
            }
        }
        data.push(out);
    }
    Ok(QueryResponse { fields, data })
}

/// Reads a `Query` result from its JSON text straight into a
/// [`QueryResponse`], without a tree of the whole answer first; an answer
/// of another shape gets the errors of [`parse_query_response`].
pub fn parse_query_text(text: &str) -> Result<QueryResponse, CliError> {
    #[derive(serde::Deserialize)]
    struct Def {
        name: String,
        title: String,
        kind: String,
        #[serde(default)]
        doc: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        fields: Vec<Def>,
        data: Vec<Vec<(i64, Value)>>,
    }
    if let Ok(a) = serde_json::from_str::<Answer>(text) {
        if a.data.iter().all(|row| row.len() == a.fields.len()) {
            return Ok(QueryResponse {
                fields: a
                    .fields
                    .into_iter()
                    .map(|d| FieldDef {
                        name: d.name,
                        title: d.title,
                        kind: d.kind,
                        doc: d.doc.unwrap_or_default(),
                    })
                    .collect(),
                data: a.data,
            });
        }
    }
    let v: Value =
        serde_json::from_str(text).map_err(|e| CliError::bad_reply("Query", e.to_string()))?;
    parse_query_response(&v)
}

/// Formats one value of a column.
pub type Formatter = Box<dyn Fn(&Value) -> String>;

/// Per-field formatting that replaces the kind's default.
pub type Overrides = HashMap<String, (Formatter, bool)>;

/// `",".join(str(item) for item in value)`.
pub fn comma_join(v: &Value) -> String {
    match v {
        Value::Array(items) => items.iter().map(py_str).collect::<Vec<_>>().join(","),
        other => py_str(other),
    }
}

/// Adds the comma-joining override for each of `fields`.
pub fn comma_overrides(fields: &[&str]) -> Overrides {
    let mut o = Overrides::new();
    for f in fields {
        o.insert(f.to_string(), (Box::new(comma_join) as Formatter, false));
    }
    o
}

/// The text shown for a value with an abnormal status.
pub fn format_result_error(status: i64, verbose: bool) -> String {
    let (v, t) = match status {
        RS_UNKNOWN => ("(unknown)", "??"),
        RS_NODATA => ("(nodata)", "?"),
        RS_OFFLINE => ("(offline)", "*"),
        RS_UNAVAIL => ("(unavail)", "-"),
        _ => ("(unknown status)", "?"),
    };
    if verbose { v } else { t }.to_string()
}

fn format_bool(v: &Value) -> String {
    let truthy = match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    };
    if truthy { "Y" } else { "N" }.into()
}

/// Whether the overall result had unknown fields or missing values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultStatus {
    Normal,
    Unknown,
    Incomplete,
}

/// Formats a query response as table lines (Ganeti's `FormatQueryResult`).
pub fn format_query_result(
    resp: &QueryResponse,
    unit: Option<Unit>,
    overrides: &Overrides,
    separator: Option<&str>,
    header: bool,
    verbose: bool,
) -> (ResultStatus, Vec<String>) {
    let unit = unit.unwrap_or_else(|| default_unit(separator));
    let columns: Vec<Column> = resp
        .fields
        .iter()
        .map(|f| {
            let right = match overrides.get(&f.name) {
                Some((_, r)) => *r,
                None => matches!(f.kind.as_str(), "number" | "float" | "unit"),
            };
            Column::new(f.title.clone(), right)
        })
        .collect();
    let mut unknown = 0;
    let mut abnormal = 0;
    let rows: Vec<Vec<String>> = resp
        .data
        .iter()
        .map(|row| {
            row.iter()
                .zip(&resp.fields)
                .map(|((st, val), f)| {
                    if *st != RS_NORMAL {
                        if *st == RS_UNKNOWN {
                            unknown += 1;
                        }
                        abnormal += 1;
                        return format_result_error(*st, verbose);
                    }
                    if let Some((fmt, _)) = overrides.get(&f.name) {
                        return fmt(val);
                    }
                    match f.kind.as_str() {
                        "bool" => format_bool(val),
                        "unit" => match val.as_f64() {
                            Some(n) => format_unit(n, unit),
                            None => py_str(val),
                        },
                        "timestamp" => format_time_value(val),
                        _ => py_str(val),
                    }
                })
                .collect()
        })
        .collect();
    let table = format_table(&rows, &columns, header, separator);
    let status = if unknown > 0 || (resp.data.is_empty() && has_unknown_fields(&resp.fields)) {
        ResultStatus::Unknown
    } else if abnormal > 0 {
        ResultStatus::Incomplete
    } else {
        ResultStatus::Normal
    };
    (status, table)
}

fn has_unknown_fields(fields: &[FieldDef]) -> bool {
    fields.iter().any(|f| f.kind == "unknown")
}

/// Warns on stderr about unknown fields; true if there were some.
fn warn_unknown_fields(fields: &[FieldDef]) -> bool {
    let unknown: Vec<&str> = fields
        .iter()
        .filter(|f| f.kind == "unknown")
        .map(|f| f.name.as_str())
        .collect();
    if unknown.is_empty() {
        return false;
    }
    output::err(&format!(
        "Warning: Queried for unknown fields {}",
        unknown.join(", ")
    ));
    true
}

/// What a `list` command asks for.
pub struct ListRequest<'a> {
    pub resource: &'a str,
    pub fields: Vec<String>,
    pub names: &'a [String],
    pub opts: &'a ListOpts,
    pub overrides: Overrides,
    pub namefield: &'a str,
    pub qfilter: Option<Value>,
    pub isnumeric: bool,
}

/// Queries and prints a resource list; returns the exit code (14 when
/// fields were unknown).
pub fn generic_list(ctx: &mut Ctx, req: ListRequest<'_>) -> Result<i32, CliError> {
    let namefilter = qlang::make_filter(
        req.names,
        req.opts.force_filter,
        req.namefield,
        req.isnumeric,
    )?;
    let qfilter = match (namefilter, req.qfilter) {
        (None, q) => q,
        (Some(n), None) => Some(n),
        (Some(n), Some(q)) => Some(json!([qlang::OP_AND, n, q])),
    };
    let res = ctx.call_text("Query", json!([req.resource, req.fields, qfilter]))?;
    let resp = parse_query_text(&res)?;
    let found_unknown = warn_unknown_fields(&resp.fields);
    let (status, lines) = format_query_result(
        &resp,
        req.opts.units,
        &req.overrides,
        req.opts.separator.as_deref(),
        !req.opts.no_headers,
        req.opts.verbose,
    );
    output::out_lines(lines);
    if status == ResultStatus::Unknown || found_unknown {
        return Ok(exit::UNKNOWN_FIELD);
    }
    Ok(exit::SUCCESS)
}

/// Ganeti's user-visible names of field kinds.
fn kind_name(kind: &str) -> &str {
    match kind {
        "unknown" => "Unknown",
        "text" => "Text",
        "bool" => "Boolean",
        "number" => "Number",
        "float" => "Floating-point number",
        "unit" => "Storage size",
        "timestamp" => "Timestamp",
        "other" => "Custom",
        k => k,
    }
}

/// Lists the fields of a resource (`list-fields`).
pub fn generic_list_fields(
    ctx: &mut Ctx,
    resource: &str,
    fields: &[String],
    opts: &ListFieldsOpts,
) -> Result<i32, CliError> {
    let fields_arg = if fields.is_empty() {
        Value::Null
    } else {
        json!(fields)
    };
    let res = ctx.call("QueryFields", json!([resource, fields_arg]))?;
    let defs = parse_fields_defs("QueryFields", &res)?;
    let found_unknown = warn_unknown_fields(&defs);
    let columns = vec![
        Column::new("Name", false),
        Column::new("Type", false),
        Column::new("Title", false),
        Column::new("Description", false),
    ];
    let rows: Vec<Vec<String>> = defs
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                kind_name(&f.kind).to_string(),
                f.title.clone(),
                f.doc.clone(),
            ]
        })
        .collect();
    for l in format_table(&rows, &columns, !opts.no_headers, opts.separator.as_deref()) {
        output::out(&l);
    }
    Ok(if found_unknown {
        exit::UNKNOWN_FIELD
    } else {
        exit::SUCCESS
    })
}

/// Runs a `Query` and returns its parsed response.
pub fn query(
    ctx: &mut Ctx,
    resource: &str,
    fields: &[&str],
    qfilter: Option<Value>,
) -> Result<QueryResponse, CliError> {
    let res = ctx.call_text("Query", json!([resource, fields, qfilter]))?;
    parse_query_text(&res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp() -> QueryResponse {
        let v = json!({"fields": [
            {"name": "name", "title": "Instance", "kind": "text", "doc": ""},
            {"name": "oper_ram", "title": "Memory", "kind": "unit", "doc": ""},
            {"name": "admin_up", "title": "Autostart", "kind": "bool", "doc": ""},
            {"name": "snodes", "title": "Secondary_Nodes", "kind": "other", "doc": ""}],
            "data": [
              [[0, "inst1"], [0, 1536], [0, true], [0, ["n2", "n3"]]],
              [[0, "i2"], [2, null], [0, false], [4, null]]]});
        parse_query_response(&v).unwrap()
    }

    #[test]
    fn fields_parse_like_ganeti() {
        assert_eq!(parse_fields(None, &["a", "b"]), vec!["a", "b"]);
        assert_eq!(parse_fields(Some("+c,d"), &["a"]), vec!["a", "c", "d"]);
        assert_eq!(parse_fields(Some("x,y"), &["a"]), vec!["x", "y"]);
    }

    #[test]
    fn formats_values_by_kind_and_status() {
        let (st, lines) = format_query_result(
            &resp(),
            None,
            &comma_overrides(&["snodes"]),
            None,
            true,
            false,
        );
        assert_eq!(st, ResultStatus::Incomplete);
        assert_eq!(
            lines,
            vec![
                "Instance Memory Autostart Secondary_Nodes",
                "inst1      1.5G Y         n2,n3",
                "i2            ? N         *",
            ]
        );
    }

    #[test]
    fn verbose_status_and_separator_units() {
        let (_, lines) =
            format_query_result(&resp(), None, &Overrides::new(), Some("|"), false, true);
        assert_eq!(
            lines,
            vec!["inst1|1536|Y|['n2', 'n3']", "i2|(nodata)|N|(offline)"]
        );
    }

    #[test]
    fn explicit_units_apply() {
        let (_, lines) = format_query_result(
            &resp(),
            Some(Unit::G),
            &Overrides::new(),
            Some(":"),
            false,
            false,
        );
        assert_eq!(lines[0], "inst1:1.5:Y:['n2', 'n3']");
    }

    #[test]
    fn unknown_values_make_the_result_unknown() {
        let v = json!({"fields": [{"name": "foo", "title": "foo", "kind": "unknown", "doc": ""}],
                       "data": [[[1, null]]]});
        let r = parse_query_response(&v).unwrap();
        let (st, lines) = format_query_result(&r, None, &Overrides::new(), None, true, false);
        assert_eq!(st, ResultStatus::Unknown);
        assert_eq!(lines, vec!["foo", "??"]);
    }

    #[test]
    fn text_answers_read_as_the_parsed_value_does() {
        let v = json!({"fields": [
            {"name": "name", "title": "Instance", "kind": "text", "doc": "Name"},
            {"name": "oper_ram", "title": "Memory", "kind": "unit"}],
            "data": [[[0, "inst1"], [0, 1536]], [[0, "i2"], [2, null]]]});
        assert_eq!(
            parse_query_text(&v.to_string()).unwrap(),
            parse_query_response(&v).unwrap()
        );
        for bad in [
            json!({"fields": []}),
            json!({"fields": [{"name": "a", "title": "A", "kind": "text"}], "data": [[[0]]]}),
            json!({"fields": [{"name": "a", "title": "A", "kind": "text"}], "data": [[]]}),
            json!({"fields": [{"name": "a", "title": "A", "kind": "text", "doc": 1}],
                   "data": [[[0, 1, 2]]]}),
        ] {
            assert_eq!(
                parse_query_text(&bad.to_string()).unwrap_err().to_string(),
                parse_query_response(&bad).unwrap_err().to_string(),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_responses_are_errors() {
        for bad in [
            json!({"fields": []}),
            json!({"data": []}),
            json!({"fields": [{"name": "a", "title": "A", "kind": "text"}], "data": [[[0]]]}),
            json!({"fields": [{"name": "a", "title": "A", "kind": "text"}], "data": [[]]}),
            json!([1, 2]),
        ] {
            assert!(parse_query_response(&bad).is_err(), "{bad}");
        }
    }
}
