//! The query2 filter language: JSON prefix lists such as
//! `["&", ["==", "name", "x"], ["=~", "pnode", "^node1"]]`, parsed into a
//! typed tree, written back to the same JSON, plus the helpers for name
//! filters.
//!
//! Operators (as Ganeti 3.0 accepts them):
//!
//! | JSON | meaning |
//! |---|---|
//! | `null` (also `[]` here) | no filter: every item |
//! | `["&", f...]` / `["|", f...]` | all / any of the sub-filters (`["&"]` is true, `["|"]` false) |
//! | `["!", f]` | negation |
//! | `["?", field]` | the (boolean) field is true |
//! | `["==", field, v]`, `["=", ...]` (legacy alias) | equality |
//! | `["!=", field, v]` | parsed as `["!", ["==", field, v]]` |
//! | `["<", ...]`, `[">", ...]`, `["<=", ...]`, `[">=", ...]` | ordering |
//! | `["=~", field, regex]` | the text field matches the regex (search, not anchored) |
//! | `["=[]", field, v]` | the list field contains `v` |
//!
//! Values are strings or integers, nothing else (Ganeti's `FilterValue`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

use super::error::QueryError;

/// How deep filters may nest; deeper input is refused rather than risking
/// the stack on input from the network.
pub const MAX_FILTER_DEPTH: usize = 64;

pub const OP_AND: &str = "&";
pub const OP_OR: &str = "|";
pub const OP_NOT: &str = "!";
pub const OP_TRUE: &str = "?";
pub const OP_EQUAL: &str = "==";
pub const OP_EQUAL_LEGACY: &str = "=";
pub const OP_NOT_EQUAL: &str = "!=";
pub const OP_LT: &str = "<";
pub const OP_LE: &str = "<=";
pub const OP_GT: &str = ">";
pub const OP_GE: &str = ">=";
pub const OP_REGEXP: &str = "=~";
pub const OP_CONTAINS: &str = "=[]";

/// A value on the right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FilterValue {
    String(String),
    Number(i64),
}

impl FilterValue {
    pub fn to_json(&self) -> Value {
        match self {
            FilterValue::String(s) => json!(s),
            FilterValue::Number(n) => json!(n),
        }
    }
}

impl fmt::Display for FilterValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterValue::String(s) => write!(f, "{s:?}"),
            FilterValue::Number(n) => write!(f, "{n}"),
        }
    }
}

impl From<&str> for FilterValue {
    fn from(s: &str) -> Self {
        FilterValue::String(s.to_string())
    }
}

impl From<String> for FilterValue {
    fn from(s: String) -> Self {
        FilterValue::String(s)
    }
}

impl From<&String> for FilterValue {
    fn from(s: &String) -> Self {
        FilterValue::String(s.clone())
    }
}

impl From<i64> for FilterValue {
    fn from(n: i64) -> Self {
        FilterValue::Number(n)
    }
}

/// A regular expression of `=~`, compiled once when the filter is parsed.
///
/// Ganeti uses PCRE; this uses the `regex` crate. Matching is a search
/// (unanchored) in both. The differences: no backreferences and no
/// look-around here (such a pattern is a parse error), and `regex` is
/// Unicode-aware by default (`\w`, `\d`, case folding), PCRE as Ganeti
/// builds it is byte/ASCII based.
#[derive(Clone)]
pub struct FilterRegex {
    source: String,
    regex: regex::Regex,
}

impl FilterRegex {
    pub fn new(source: &str) -> Result<Self, QueryError> {
        let regex = regex::Regex::new(source).map_err(|e| {
            QueryError::Parse(format!("Invalid regular expression '{source}': {e}"))
        })?;
        Ok(FilterRegex {
            source: source.to_string(),
            regex,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl fmt::Debug for FilterRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FilterRegex({:?})", self.source)
    }
}

impl PartialEq for FilterRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for FilterRegex {}

/// The comparisons of the filter language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparison {
    /// The operator on the wire.
    pub fn op(self) -> &'static str {
        match self {
            Comparison::Eq => OP_EQUAL,
            Comparison::Lt => OP_LT,
            Comparison::Le => OP_LE,
            Comparison::Gt => OP_GT,
            Comparison::Ge => OP_GE,
        }
    }

    /// Applies the comparison to an ordering of field value vs filter value.
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Comparison::Eq => ord == Equal,
            Comparison::Lt => ord == Less,
            Comparison::Le => ord != Greater,
            Comparison::Gt => ord == Greater,
            Comparison::Ge => ord != Less,
        }
    }
}

/// A filter over fields of type `F`: names (`String`) as parsed, or
/// resolved field references once compiled against a registry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Filter<F = String> {
    /// No filter: every item passes.
    #[default]
    Empty,
    And(Vec<Filter<F>>),
    Or(Vec<Filter<F>>),
    Not(Box<Filter<F>>),
    /// `["?", field]`.
    True(F),
    /// `["==", field, value]` and the orderings.
    Compare(Comparison, F, FilterValue),
    /// `["=~", field, regex]`.
    Regex(F, FilterRegex),
    /// `["=[]", field, value]`.
    Contains(F, FilterValue),
}

impl<F> Filter<F> {
    /// Whether this is the empty filter.
    pub fn is_empty(&self) -> bool {
        matches!(self, Filter::Empty)
    }

    /// Every field the filter refers to, in order of appearance (with
    /// repetitions).
    pub fn fields(&self) -> Vec<&F> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields<'a>(&'a self, out: &mut Vec<&'a F>) {
        match self {
            Filter::Empty => {}
            Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| f.collect_fields(out)),
            Filter::Not(f) => f.collect_fields(out),
            Filter::True(x)
            | Filter::Compare(_, x, _)
            | Filter::Regex(x, _)
            | Filter::Contains(x, _) => out.push(x),
        }
    }

    /// Replaces every field by `f(field)`, stopping at the first error.
    pub fn try_map_fields<G, E>(
        &self,
        f: &mut impl FnMut(&F) -> Result<G, E>,
    ) -> Result<Filter<G>, E> {
        Ok(match self {
            Filter::Empty => Filter::Empty,
            Filter::And(fs) => Filter::And(
                fs.iter()
                    .map(|x| x.try_map_fields(f))
                    .collect::<Result<_, _>>()?,
            ),
            Filter::Or(fs) => Filter::Or(
                fs.iter()
                    .map(|x| x.try_map_fields(f))
                    .collect::<Result<_, _>>()?,
            ),
            Filter::Not(x) => Filter::Not(Box::new(x.try_map_fields(f)?)),
            Filter::True(x) => Filter::True(f(x)?),
            Filter::Compare(c, x, v) => Filter::Compare(*c, f(x)?, v.clone()),
            Filter::Regex(x, r) => Filter::Regex(f(x)?, r.clone()),
            Filter::Contains(x, v) => Filter::Contains(f(x)?, v.clone()),
        })
    }
}

impl Filter<String> {
    /// Parses a filter from its JSON form, e.g. from the third argument of
    /// the LUXI `Query` call.
    pub fn from_json(v: &Value) -> Result<Self, QueryError> {
        parse(v, 0)
    }

    /// The JSON form. `!=` comes back as `["!", ["==", ...]]` and `=` as
    /// `==`, as in Ganeti.
    pub fn to_json(&self) -> Value {
        let cmp = |op: &str, f: &String, v: Value| json!([op, f, v]);
        match self {
            Filter::Empty => Value::Null,
            Filter::And(fs) | Filter::Or(fs) => {
                let op = if matches!(self, Filter::And(_)) {
                    OP_AND
                } else {
                    OP_OR
                };
                let mut items = vec![json!(op)];
                items.extend(fs.iter().map(Filter::to_json));
                Value::Array(items)
            }
            Filter::Not(f) => json!([OP_NOT, f.to_json()]),
            Filter::True(f) => json!([OP_TRUE, f]),
            Filter::Compare(c, f, v) => cmp(c.op(), f, v.to_json()),
            Filter::Regex(f, r) => cmp(OP_REGEXP, f, json!(r.as_str())),
            Filter::Contains(f, v) => cmp(OP_CONTAINS, f, v.to_json()),
        }
    }
}

impl Serialize for Filter<String> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Filter<String> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Filter::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// A JSON value shortened for an error message.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn parse(v: &Value, depth: usize) -> Result<Filter, QueryError> {
    if depth >= MAX_FILTER_DEPTH {
        return Err(QueryError::Parse(format!(
            "Filter nested too deep (at most {MAX_FILTER_DEPTH} levels allowed)"
        )));
    }
    let items = match v {
        Value::Null => return Ok(Filter::Empty),
        Value::Array(items) => items,
        other => {
            return Err(QueryError::Parse(format!(
                "Invalid filter: expected a list [operator, operands...] or null, got {}",
                show(other)
            )))
        }
    };
    let Some((op, args)) = items.split_first() else {
        return Ok(Filter::Empty);
    };
    let op = match op {
        Value::String(op) => op.as_str(),
        other => {
            return Err(QueryError::Parse(format!(
                "Invalid filter: the operator must be a string, got {}",
                show(other)
            )))
        }
    };
    let sub = |args: &[Value]| -> Result<Vec<Filter>, QueryError> {
        args.iter().map(|a| parse(a, depth + 1)).collect()
    };
    let cmp = |c: Comparison| -> Result<Filter, QueryError> {
        let (field, value) = field_value(op, args)?;
        Ok(Filter::Compare(c, field, value))
    };
    match op {
        OP_AND => Ok(Filter::And(sub(args)?)),
        OP_OR => Ok(Filter::Or(sub(args)?)),
        OP_NOT => match args {
            [f] => Ok(Filter::Not(Box::new(parse(f, depth + 1)?))),
            _ => Err(arity(op, "exactly one operand (a filter)", args.len())),
        },
        OP_TRUE => match args {
            [f] => Ok(Filter::True(field_name(op, f)?)),
            _ => Err(arity(op, "exactly one operand (a field name)", args.len())),
        },
        OP_EQUAL | OP_EQUAL_LEGACY => cmp(Comparison::Eq),
        OP_NOT_EQUAL => Ok(Filter::Not(Box::new(cmp(Comparison::Eq)?))),
        OP_LT => cmp(Comparison::Lt),
        OP_LE => cmp(Comparison::Le),
        OP_GT => cmp(Comparison::Gt),
        OP_GE => cmp(Comparison::Ge),
        OP_REGEXP => match args {
            [f, Value::String(re)] => Ok(Filter::Regex(field_name(op, f)?, FilterRegex::new(re)?)),
            [_, other] => Err(QueryError::Parse(format!(
                "Operator '{op}' expects a regular expression (a string) as second operand, got {}",
                show(other)
            ))),
            _ => Err(arity(op, "exactly two operands (a field name and a regular expression)", args.len())),
        },
        OP_CONTAINS => {
            let (field, value) = field_value(op, args)?;
            Ok(Filter::Contains(field, value))
        }
        other => Err(QueryError::Parse(format!(
            "Unknown filter operator '{other}' (known: &, |, !, ?, ==, =, !=, <, <=, >, >=, =~, =[])"
        ))),
    }
}

fn arity(op: &str, expected: &str, got: usize) -> QueryError {
    QueryError::Parse(format!(
        "Operator '{op}' expects {expected}, got {got} operand{}",
        if got == 1 { "" } else { "s" }
    ))
}

fn field_name(op: &str, v: &Value) -> Result<String, QueryError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(QueryError::Parse(format!(
            "Operator '{op}' expects a field name (a string) as first operand, got {}",
            show(other)
        ))),
    }
}

fn field_value(op: &str, args: &[Value]) -> Result<(String, FilterValue), QueryError> {
    let [f, v] = args else {
        return Err(arity(
            op,
            "exactly two operands (a field name and a value)",
            args.len(),
        ));
    };
    Ok((field_name(op, f)?, filter_value(op, v)?))
}

/// A string or an integer; a float without fractional part counts as an
/// integer (Ganeti reads JSON numbers as rationals).
fn filter_value(op: &str, v: &Value) -> Result<FilterValue, QueryError> {
    match v {
        Value::String(s) => Ok(FilterValue::String(s.clone())),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(FilterValue::Number(i))
            } else if n.is_u64() {
                Err(QueryError::Parse(format!(
                    "Operator '{op}' got the integer {n}, which is out of range"
                )))
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                    Ok(FilterValue::Number(f as i64))
                } else {
                    Err(QueryError::Parse(format!(
                        "Operator '{op}' expects an integral value, got the fractional value {n}"
                    )))
                }
            }
        }
        other => Err(QueryError::Parse(format!(
            "Operator '{op}' expects a string or an integer as value, got {}",
            show(other)
        ))),
    }
}

/// Ganeti's `MakeSimpleFilter`: `["|", ["==", field, n1], ["==", field, n2], ...]`,
/// or the empty filter if there are no names.
pub fn make_simple_filter<V: Into<FilterValue>>(
    field: &str,
    names: impl IntoIterator<Item = V>,
) -> Filter {
    let alts: Vec<Filter> = names
        .into_iter()
        .map(|n| Filter::Compare(Comparison::Eq, field.to_string(), n.into()))
        .collect();
    if alts.is_empty() {
        Filter::Empty
    } else {
        Filter::Or(alts)
    }
}

/// The values a pure name filter asks for: `Some` if the filter is empty,
/// or only ORs (at any depth) of `==`/`=` on `namefield`; `None` for any
/// other filter. The values keep the user's order, repetitions included
/// (Ganeti's `requestedNames`).
pub fn requested_values(filter: &Filter, namefield: &str) -> Option<Vec<FilterValue>> {
    match filter {
        Filter::Empty => Some(Vec::new()),
        Filter::Or(fs) => {
            let mut out = Vec::new();
            for f in fs {
                out.extend(requested_values(f, namefield)?);
            }
            Some(out)
        }
        Filter::Compare(Comparison::Eq, f, v) if f == namefield => Some(vec![v.clone()]),
        _ => None,
    }
}

/// The names a pure name filter asks for, in the order asked, without
/// repetitions, numbers ignored (as Ganeti's `getRequestedNames`).
///
/// `None` means "not a list of names": the caller takes every item and
/// lets the filter decide. That includes the empty filter and a name
/// filter without string names. With `Some(names)` the caller looks each
/// name up (reporting unknown ones) and returns items in that order; the
/// filter is still applied to them.
pub fn requested_names(filter: &Filter, namefield: &str) -> Option<Vec<String>> {
    let values = requested_values(filter, namefield)?;
    let mut names: Vec<String> = Vec::new();
    for v in values {
        if let FilterValue::String(s) = v {
            if !names.contains(&s) {
                names.push(s);
            }
        }
    }
    if names.is_empty() {
        None
    } else {
        Some(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(v: Value) -> String {
        match Filter::from_json(&v) {
            Err(QueryError::Parse(msg)) => msg,
            other => panic!("expected a parse error for {v}, got {other:?}"),
        }
    }

    #[test]
    fn null_and_empty_list_are_the_empty_filter() {
        assert_eq!(Filter::from_json(&Value::Null).unwrap(), Filter::Empty);
        assert_eq!(Filter::from_json(&json!([])).unwrap(), Filter::Empty);
    }

    #[test]
    fn every_operator_parses_to_its_node() {
        let f = Filter::from_json(&json!([
            "&",
            ["|", ["==", "name", "a"], ["=", "name", 5]],
            ["!", ["?", "admin_up"]],
            ["<", "mfree", 1],
            ["<=", "mfree", 2],
            [">", "mfree", 3],
            [">=", "mfree", 4],
            ["=~", "pnode", "^node1"],
            ["=[]", "tags", "web"]
        ]))
        .unwrap();
        let s = |x: &str| x.to_string();
        assert_eq!(
            f,
            Filter::And(vec![
                Filter::Or(vec![
                    Filter::Compare(Comparison::Eq, s("name"), "a".into()),
                    Filter::Compare(Comparison::Eq, s("name"), 5.into()),
                ]),
                Filter::Not(Box::new(Filter::True(s("admin_up")))),
                Filter::Compare(Comparison::Lt, s("mfree"), 1.into()),
                Filter::Compare(Comparison::Le, s("mfree"), 2.into()),
                Filter::Compare(Comparison::Gt, s("mfree"), 3.into()),
                Filter::Compare(Comparison::Ge, s("mfree"), 4.into()),
                Filter::Regex(s("pnode"), FilterRegex::new("^node1").unwrap()),
                Filter::Contains(s("tags"), "web".into()),
            ])
        );
    }

    #[test]
    fn not_equal_is_negated_equality() {
        let f = Filter::from_json(&json!(["!=", "name", "a"])).unwrap();
        assert_eq!(
            f,
            Filter::Not(Box::new(Filter::Compare(
                Comparison::Eq,
                "name".into(),
                "a".into()
            )))
        );
        assert_eq!(f.to_json(), json!(["!", ["==", "name", "a"]]));
    }

    #[test]
    fn filters_write_back_the_json_they_were_read_from() {
        let wire = json!([
            "&",
            ["==", "name", "x"],
            ["=~", "pnode", "^node1"],
            ["!", ["=[]", "tags", 3]],
            ["|", ["?", "admin_up"], [">=", "mfree", 1024]],
            null
        ]);
        let f = Filter::from_json(&wire).unwrap();
        assert_eq!(f.to_json(), wire);
        let via_serde: Filter = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(serde_json::to_value(&via_serde).unwrap(), wire);
    }

    #[test]
    fn a_non_list_filter_is_refused_with_what_was_expected() {
        let msg = parse_err(json!("name"));
        assert_eq!(
            msg,
            "Invalid filter: expected a list [operator, operands...] or null, got \"name\""
        );
        let msg = parse_err(json!({"op": "=="}));
        assert!(msg.starts_with("Invalid filter: expected a list"), "{msg}");
    }

    #[test]
    fn a_non_string_operator_is_refused() {
        assert_eq!(
            parse_err(json!([1, "name"])),
            "Invalid filter: the operator must be a string, got 1"
        );
    }

    #[test]
    fn an_unknown_operator_is_named() {
        let msg = parse_err(json!(["~~", "name", "x"]));
        assert!(msg.starts_with("Unknown filter operator '~~'"), "{msg}");
        // The brief's "=[" is not Ganeti's contains operator, "=[]" is.
        assert!(parse_err(json!(["=[", "tags", "x"])).contains("'=['"));
    }

    #[test]
    fn wrong_arity_names_the_operator_and_the_count() {
        assert_eq!(
            parse_err(json!(["==", "name"])),
            "Operator '==' expects exactly two operands (a field name and a value), got 1 operand"
        );
        assert_eq!(
            parse_err(json!(["!", ["?", "a"], ["?", "b"]])),
            "Operator '!' expects exactly one operand (a filter), got 2 operands"
        );
        assert_eq!(
            parse_err(json!(["?"])),
            "Operator '?' expects exactly one operand (a field name), got 0 operands"
        );
        assert!(parse_err(json!(["=~", "name", "a", "b"])).contains("got 3 operands"));
    }

    #[test]
    fn field_names_must_be_strings() {
        assert_eq!(
            parse_err(json!(["==", 5, 5])),
            "Operator '==' expects a field name (a string) as first operand, got 5"
        );
        assert!(parse_err(json!(["?", ["x"]])).contains("field name"));
    }

    #[test]
    fn values_must_be_strings_or_integers() {
        assert_eq!(
            parse_err(json!(["==", "admin_up", true])),
            "Operator '==' expects a string or an integer as value, got true"
        );
        assert!(parse_err(json!(["<", "mfree", 1.5])).contains("fractional value 1.5"));
        assert!(parse_err(json!(["=[]", "tags", null])).contains("got null"));
        assert_eq!(
            Filter::from_json(&json!(["==", "mfree", 2.0])).unwrap(),
            Filter::Compare(Comparison::Eq, "mfree".into(), 2.into())
        );
    }

    #[test]
    fn regex_operand_must_be_a_valid_string_pattern() {
        assert!(parse_err(json!(["=~", "name", 5])).contains("expects a regular expression"));
        let msg = parse_err(json!(["=~", "name", "(unclosed"]));
        assert!(
            msg.starts_with("Invalid regular expression '(unclosed'"),
            "{msg}"
        );
    }

    #[test]
    fn nested_errors_are_reported() {
        let msg = parse_err(json!(["&", ["==", "a", "b"], ["|", ["<", "x"]]]));
        assert!(msg.contains("Operator '<'"), "{msg}");
    }

    #[test]
    fn too_deep_nesting_is_an_error_not_a_crash() {
        let mut v = json!(["?", "x"]);
        for _ in 0..MAX_FILTER_DEPTH + 5 {
            v = json!(["!", v]);
        }
        assert!(parse_err(v).contains("nested too deep"));
    }

    #[test]
    fn simple_filter_is_an_or_of_equalities() {
        let f = make_simple_filter("name", ["a", "b"]);
        assert_eq!(
            f.to_json(),
            json!(["|", ["==", "name", "a"], ["==", "name", "b"]])
        );
        assert_eq!(make_simple_filter::<&str>("name", []), Filter::Empty);
        assert_eq!(
            make_simple_filter("id", [17i64]).to_json(),
            json!(["|", ["==", "id", 17]])
        );
    }

    #[test]
    fn requested_names_of_a_name_filter_keep_the_order_asked() {
        let f = Filter::from_json(&json!([
            "|",
            ["==", "name", "zeta"],
            ["|", ["=", "name", "alpha"], ["==", "name", "zeta"]]
        ]))
        .unwrap();
        assert_eq!(
            requested_names(&f, "name"),
            Some(vec!["zeta".to_string(), "alpha".to_string()])
        );
        assert_eq!(requested_values(&f, "name").map(|v| v.len()), Some(3));
    }

    #[test]
    fn requested_names_is_none_unless_the_filter_is_only_names() {
        let none = |v: Value| requested_names(&Filter::from_json(&v).unwrap(), "name");
        assert_eq!(none(Value::Null), None);
        assert_eq!(none(json!(["|"])), None);
        assert_eq!(
            none(json!(["|", ["==", "name", "a"], ["==", "pnode", "b"]])),
            None
        );
        assert_eq!(none(json!(["&", ["==", "name", "a"]])), None);
        assert_eq!(none(json!(["!=", "name", "a"])), None);
        assert_eq!(none(json!(["=~", "name", "a"])), None);
        assert_eq!(none(json!(["|", ["==", "name", 5]])), None);
        assert_eq!(
            none(json!(["==", "name", "a"])),
            Some(vec!["a".to_string()])
        );
    }

    #[test]
    fn fields_lists_every_field_referenced() {
        let f = Filter::from_json(&json!([
            "&",
            ["?", "a"],
            ["!", ["==", "b", 1]],
            ["=~", "a", "x"]
        ]))
        .unwrap();
        assert_eq!(f.fields(), vec!["a", "b", "a"]);
    }
}
