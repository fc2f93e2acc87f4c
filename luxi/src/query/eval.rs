//! Filters against a registry: checking them (fields exist, operators fit
//! the field kinds) and evaluating them on a row, with Ganeti 3.0's
//! semantics:
//!
//! - a leaf whose cell is not normal (no data, offline, unavailable, ...)
//!   is *true*: the filter has nothing to judge, so it lets the item pass
//!   (under `!` that becomes false);
//! - a leaf on a field whose data is not available yet (see
//!   [`DataNeeds`]) makes the whole filter pass, to be evaluated again once
//!   the data is there; `&` and `|` evaluate left to right and stop at the
//!   first false / true operand;
//! - strings compare by code point, numbers numerically, nothing else
//!   compares (booleans only take `?`).

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::error::QueryError;
use super::filter::{Comparison, Filter, FilterRegex, FilterValue};
use super::names::match_name_component;
use super::registry::{DataNeeds, Field, FieldFlags, FieldRegistry};
use super::types::{FieldKind, ResultStatus};

/// A filter whose fields are resolved to a registry's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFilter {
    filter: Filter<usize>,
}

impl CompiledFilter {
    /// Resolves the filter's fields in `registry` and checks that each
    /// operator suits its field's kind.
    pub fn new<R>(registry: &FieldRegistry<R>, filter: &Filter) -> Result<Self, QueryError> {
        check_kinds(registry, filter)?;
        let filter = filter.try_map_fields(&mut |name: &String| {
            registry
                .index_of(name)
                .ok_or_else(|| QueryError::UnknownFilterField(name.clone()))
        })?;
        Ok(CompiledFilter { filter })
    }

    /// The data the filter's fields need.
    pub fn needs<R>(&self, registry: &FieldRegistry<R>) -> DataNeeds {
        self.filter
            .fields()
            .into_iter()
            .fold(DataNeeds::NONE, |acc, &i| acc | registry.by_index(i).needs)
    }

    /// Whether `row` passes, given which data the row context holds. Fields
    /// needing data outside `available` make the filter pass (see the
    /// module doc).
    pub fn matches<R>(
        &self,
        registry: &FieldRegistry<R>,
        row: &R,
        available: DataNeeds,
    ) -> Result<bool, QueryError> {
        Ok(eval(&self.filter, registry, row, available)?.unwrap_or(true))
    }
}

fn check_kinds<R>(registry: &FieldRegistry<R>, filter: &Filter) -> Result<(), QueryError> {
    let field = |name: &String| {
        registry
            .get(name)
            .ok_or_else(|| QueryError::UnknownFilterField(name.clone()))
    };
    match filter {
        Filter::Empty => Ok(()),
        Filter::And(fs) | Filter::Or(fs) => fs.iter().try_for_each(|f| check_kinds(registry, f)),
        Filter::Not(f) => check_kinds(registry, f),
        Filter::True(name) => match field(name)?.def.kind {
            FieldKind::Bool | FieldKind::Other => Ok(()),
            kind => Err(QueryError::Type(format!(
                "Operator '?' needs a boolean field, but field '{name}' is of kind '{kind}'"
            ))),
        },
        Filter::Compare(cmp, name, value) => {
            let kind = field(name)?.def.kind;
            let op = cmp.op();
            match (kind, value) {
                (FieldKind::Other, _)
                | (FieldKind::Text, FilterValue::String(_))
                | (
                    FieldKind::Number | FieldKind::Float | FieldKind::Unit | FieldKind::Timestamp,
                    FilterValue::Number(_),
                ) => Ok(()),
                (FieldKind::Bool, _) => Err(QueryError::Type(format!(
                    "Field '{name}' is of kind 'bool' and can only be tested with '?', not with '{op}'"
                ))),
                (FieldKind::Text, FilterValue::Number(n)) => Err(QueryError::Type(format!(
                    "Unable to compare field '{name}' (kind 'text') with the integer {n} using '{op}': expected a string"
                ))),
                (_, FilterValue::String(s)) => Err(QueryError::Type(format!(
                    "Unable to compare field '{name}' (kind '{kind}') with the string {s:?} using '{op}': expected an integer"
                ))),
                (FieldKind::Unknown, _) => Err(QueryError::UnknownFilterField(name.clone())),
            }
        }
        Filter::Regex(name, _) => match field(name)?.def.kind {
            FieldKind::Text | FieldKind::Other => Ok(()),
            kind => Err(QueryError::Type(format!(
                "Operator '=~' needs a text field, but field '{name}' is of kind '{kind}'"
            ))),
        },
        Filter::Contains(name, _) => match field(name)?.def.kind {
            FieldKind::Other => Ok(()),
            kind => Err(QueryError::Type(format!(
                "Operator '=[]' needs a list field, but field '{name}' is of kind '{kind}'"
            ))),
        },
    }
}

/// Judges a leaf's (normal) value.
type LeafTest<'a, R> = dyn Fn(&Field<R>, &Value) -> Result<bool, QueryError> + 'a;

/// `Ok(None)`: a field's data is not available; the whole filter passes.
fn eval<R>(
    filter: &Filter<usize>,
    registry: &FieldRegistry<R>,
    row: &R,
    available: DataNeeds,
) -> Result<Option<bool>, QueryError> {
    let leaf = |i: usize, test: &LeafTest<'_, R>| {
        let field = registry.by_index(i);
        if !available.contains(field.needs) {
            return Ok(None);
        }
        let cell = field.get(row);
        if cell.status != ResultStatus::Normal {
            return Ok(Some(true));
        }
        let Some(value) = cell.value.as_ref() else {
            return Err(QueryError::Internal(format!(
                "field '{}' has a normal status but no value",
                field.def.name
            )));
        };
        let value = match field.flags {
            FieldFlags::Timestamp => timestamp_seconds(field, value)?,
            _ => value,
        };
        test(field, value).map(Some)
    };
    match filter {
        Filter::Empty => Ok(Some(true)),
        Filter::And(fs) => {
            for f in fs {
                match eval(f, registry, row, available)? {
                    Some(true) => {}
                    other => return Ok(other),
                }
            }
            Ok(Some(true))
        }
        Filter::Or(fs) => {
            for f in fs {
                match eval(f, registry, row, available)? {
                    Some(false) => {}
                    other => return Ok(other),
                }
            }
            Ok(Some(false))
        }
        Filter::Not(f) => Ok(eval(f, registry, row, available)?.map(|b| !b)),
        Filter::True(i) => leaf(*i, &|field, v| match v {
            Value::Bool(b) => Ok(*b),
            other => Err(QueryError::Type(format!(
                "Unexpected value '{other}' of field '{}' in boolean context",
                field.def.name
            ))),
        }),
        Filter::Compare(cmp, i, fv) => leaf(*i, &|field, v| compare(field, *cmp, v, fv)),
        Filter::Regex(i, re) => leaf(*i, &|field, v| regex_match(field, re, v)),
        Filter::Contains(i, fv) => leaf(*i, &|field, v| contains(field, v, fv)),
    }
}

fn timestamp_seconds<'a, R>(field: &Field<R>, value: &'a Value) -> Result<&'a Value, QueryError> {
    match value.as_array().map(Vec::as_slice) {
        Some([secs @ Value::Number(_), Value::Number(_)]) => Ok(secs),
        _ => Err(QueryError::Internal(format!(
            "timestamp field '{}' returned {value}, not [seconds, microseconds]",
            field.def.name
        ))),
    }
}

fn compare<R>(
    field: &Field<R>,
    cmp: Comparison,
    value: &Value,
    fv: &FilterValue,
) -> Result<bool, QueryError> {
    if cmp == Comparison::Eq && field.flags == FieldFlags::Hostname {
        match (value, fv) {
            (Value::String(name), FilterValue::String(lookup)) => {
                return Ok(match_name_component(name, lookup))
            }
            (Value::Number(_), _) => {
                return Err(QueryError::Internal(format!(
                    "host name field '{}' returned a number",
                    field.def.name
                )))
            }
            _ => {}
        }
    }
    let ord = match (value, fv) {
        (Value::String(x), FilterValue::String(y)) => x.as_str().cmp(y.as_str()),
        (Value::Number(x), FilterValue::Number(y)) => cmp_number(x, *y),
        _ => {
            return Err(QueryError::Type(format!(
                "Invalid types in comparison, trying to compare {value} (field '{}') with {}",
                field.def.name,
                fv.to_json()
            )))
        }
    };
    Ok(cmp.holds(ord))
}

/// Compares a JSON number (integer or float) with an integer exactly.
fn cmp_number(x: &Number, y: i64) -> Ordering {
    if let Some(x) = x.as_i64() {
        x.cmp(&y)
    } else if x.is_u64() {
        // Above i64::MAX, so above any i64.
        Ordering::Greater
    } else {
        let x = x.as_f64().unwrap_or(f64::NAN);
        if x.fract() == 0.0 && x.abs() < 9.0e18 {
            // An integral float: compare exactly as integers.
            (x as i64).cmp(&y)
        } else {
            x.partial_cmp(&(y as f64)).unwrap_or(Ordering::Less)
        }
    }
}

fn regex_match<R>(field: &Field<R>, re: &FilterRegex, value: &Value) -> Result<bool, QueryError> {
    match value {
        Value::String(s) => Ok(re.is_match(s)),
        other => Err(QueryError::Type(format!(
            "Invalid value of field '{}' used in regexp matching, expecting string but got '{other}'",
            field.def.name
        ))),
    }
}

fn contains<R>(field: &Field<R>, value: &Value, fv: &FilterValue) -> Result<bool, QueryError> {
    let bad = |what: &str| {
        QueryError::Type(format!(
            "Operator '=[]' with {} needs field '{}' to be a list of {what}, got {value}",
            fv.to_json(),
            field.def.name
        ))
    };
    let Value::Array(items) = value else {
        return Err(match fv {
            FilterValue::String(_) => bad("strings"),
            FilterValue::Number(_) => bad("integers"),
        });
    };
    match fv {
        FilterValue::String(s) => {
            let mut found = false;
            for item in items {
                match item {
                    Value::String(x) => found |= x == s,
                    _ => return Err(bad("strings")),
                }
            }
            Ok(found)
        }
        FilterValue::Number(n) => {
            let mut found = false;
            for item in items {
                match item.as_i64() {
                    Some(x) => found |= x == *n,
                    None => return Err(bad("integers")),
                }
            }
            Ok(found)
        }
    }
}
