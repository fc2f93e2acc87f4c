//! Running a query: selected fields plus a filter over the caller's rows,
//! giving the `Query` response, or the plain rows of the old `QueryInstances`
//! / `QueryNodes` / `QueryGroups` / ... calls.

use std::borrow::Borrow;

use serde_json::Value;

use super::error::QueryError;
use super::eval::CompiledFilter;
use super::filter::{make_simple_filter, Filter, FilterValue};
use super::registry::{DataNeeds, FieldRegistry};
use super::types::{Cell, FieldDef, FieldKind, QueryResponse};

/// A query checked against a registry, ready to run over rows.
pub struct PreparedQuery<'r, R> {
    registry: &'r FieldRegistry<R>,
    /// Per requested field, its index in the registry (`None`: unknown).
    columns: Vec<Option<usize>>,
    defs: Vec<FieldDef>,
    filter: CompiledFilter,
}

impl<'r, R> PreparedQuery<'r, R> {
    /// Checks `filter` against `registry` (unknown filter fields and
    /// operators unfit for a field's kind are errors) and resolves `fields`
    /// (unknown ones become columns of kind `unknown`).
    pub fn new(
        registry: &'r FieldRegistry<R>,
        fields: &[String],
        filter: &Filter,
    ) -> Result<Self, QueryError> {
        let filter = CompiledFilter::new(registry, filter)?;
        Ok(PreparedQuery {
            registry,
            columns: fields.iter().map(|n| registry.index_of(n)).collect(),
            defs: registry.field_defs(fields),
            filter,
        })
    }

    /// The definitions of the requested fields, in order.
    pub fn fields(&self) -> &[FieldDef] {
        &self.defs
    }

    /// The requested fields the registry does not know.
    pub fn unknown_fields(&self) -> Vec<&str> {
        self.defs
            .iter()
            .filter(|d| d.kind == FieldKind::Unknown)
            .map(|d| d.name.as_str())
            .collect()
    }

    /// The data the requested fields and the filter need: the caller
    /// fetches live data only if this contains [`DataNeeds::LIVE`].
    pub fn needs(&self) -> DataNeeds {
        self.columns
            .iter()
            .flatten()
            .fold(self.filter_needs(), |acc, &i| {
                acc | self.registry.by_index(i).needs
            })
    }

    /// The data the filter alone needs.
    pub fn filter_needs(&self) -> DataNeeds {
        self.filter.needs(self.registry)
    }

    /// Whether `row` passes the filter, given the data its context holds.
    /// With less than [`PreparedQuery::filter_needs`] available this is a
    /// first pass: it may let rows through that the final pass drops, never
    /// the reverse; use it to prune rows before fetching live data.
    pub fn matches(&self, row: &R, available: DataNeeds) -> Result<bool, QueryError> {
        self.filter.matches(self.registry, row, available)
    }

    /// The requested cells of `row`.
    pub fn row(&self, row: &R) -> Vec<Cell> {
        self.columns
            .iter()
            .map(|c| match c {
                Some(i) => self.registry.by_index(*i).get(row),
                None => Cell::unknown(),
            })
            .collect()
    }

    /// Filters `rows` (all data available) and returns the response, rows
    /// in the order given. Ganeti's order is by name, nicely sorted
    /// ([`super::nice_sort_by`]), or the order of the requested names
    /// ([`super::requested_names`]): the caller's to establish.
    pub fn run<I>(&self, rows: I) -> Result<QueryResponse, QueryError>
    where
        I: IntoIterator,
        I::Item: Borrow<R>,
    {
        let mut data = Vec::new();
        for r in rows {
            let r = r.borrow();
            if self.matches(r, DataNeeds::ALL)? {
                data.push(self.row(r));
            }
        }
        Ok(QueryResponse {
            fields: self.defs.clone(),
            data,
        })
    }

    /// Like [`PreparedQuery::run`], but appends the response straight to
    /// `out` as JSON text, each row written as soon as it is read and then
    /// dropped: the same bytes as `serde_json::to_vec` of the response,
    /// without holding every cell of thousands of rows at once.
    pub fn write_json<I>(&self, rows: I, out: &mut Vec<u8>) -> Result<(), QueryError>
    where
        I: IntoIterator,
        I::Item: Borrow<R>,
    {
        self.write_envelope(rows, out, |r, out| {
            self.write_cells(r, out, |_, _| Ok(false))
        })
    }

    /// Like [`PreparedQuery::write_json`], reusing from `cache` the JSON
    /// text of the cells that read nothing but the configuration
    /// ([`DataNeeds::CONFIG`]), by row (`key`). Cells kept for another
    /// `version` of the configuration, or for other columns, are dropped
    /// first; cells needing anything else (live data) are always read.
    pub fn write_json_cached<I>(
        &self,
        rows: I,
        out: &mut Vec<u8>,
        cache: &mut CellCache,
        version: u64,
        key: impl Fn(&R) -> &str,
    ) -> Result<(), QueryError>
    where
        I: IntoIterator,
        I::Item: Borrow<R>,
    {
        if cache.version != version || cache.columns != self.columns {
            cache.version = version;
            cache.columns.clone_from(&self.columns);
            cache.rows.clear();
        }
        let kept: Vec<Option<usize>> = self
            .columns
            .iter()
            .map(|c| c.filter(|&i| DataNeeds::CONFIG.contains(self.registry.by_index(i).needs)))
            .collect();
        self.write_envelope(rows, out, |r, out| {
            let k = key(r);
            if !cache.rows.contains_key(k) {
                let mut texts = Vec::new();
                for i in kept.iter().flatten() {
                    let cell = self.registry.by_index(*i).get(r);
                    texts.push(
                        serde_json::to_string(&cell)
                            .map_err(json_error)?
                            .into_boxed_str(),
                    );
                }
                cache.rows.insert(k.to_string(), texts);
            }
            let mut texts = cache.rows.get(k).into_iter().flatten();
            self.write_cells(r, out, |j, out| match kept[j].and_then(|_| texts.next()) {
                Some(text) => {
                    out.extend_from_slice(text.as_bytes());
                    Ok(true)
                }
                None => Ok(false),
            })
        })
    }

    /// The response's envelope around the rows that match the filter, each
    /// written by `row`.
    fn write_envelope<I>(
        &self,
        rows: I,
        out: &mut Vec<u8>,
        mut row: impl FnMut(&R, &mut Vec<u8>) -> Result<(), QueryError>,
    ) -> Result<(), QueryError>
    where
        I: IntoIterator,
        I::Item: Borrow<R>,
    {
        out.extend_from_slice(b"{\"fields\":");
        serde_json::to_writer(&mut *out, &self.defs).map_err(json_error)?;
        out.extend_from_slice(b",\"data\":[");
        let mut first = true;
        for r in rows {
            let r = r.borrow();
            if !self.matches(r, DataNeeds::ALL)? {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            row(r, out)?;
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }

    /// One row's cells as a JSON list; `reuse(j, out)` may write column
    /// `j`'s text itself (and says so), else the cell is read.
    fn write_cells(
        &self,
        r: &R,
        out: &mut Vec<u8>,
        mut reuse: impl FnMut(usize, &mut Vec<u8>) -> Result<bool, QueryError>,
    ) -> Result<(), QueryError> {
        out.push(b'[');
        for (j, c) in self.columns.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            if reuse(j, out)? {
                continue;
            }
            let cell = match c {
                Some(i) => self.registry.by_index(*i).get(r),
                None => Cell::unknown(),
            };
            serde_json::to_writer(&mut *out, &cell).map_err(json_error)?;
        }
        out.push(b']');
        Ok(())
    }

    /// The old result format: plain values, `null` where the status is not
    /// normal. Unknown fields fail the whole query, as in Ganeti.
    pub fn run_legacy<I>(&self, rows: I) -> Result<Vec<Vec<Value>>, QueryError>
    where
        I: IntoIterator,
        I::Item: Borrow<R>,
    {
        let unknown = self.unknown_fields();
        if !unknown.is_empty() {
            return Err(QueryError::UnknownOutputFields(
                unknown.into_iter().map(str::to_string).collect(),
            ));
        }
        legacy_rows(self.run(rows)?)
    }
}

/// The JSON text of cells that read only the configuration, kept between
/// queries by row, for one list of columns and one version of the
/// configuration (see [`PreparedQuery::write_json_cached`]).
#[derive(Debug, Default)]
pub struct CellCache {
    columns: Vec<Option<usize>>,
    version: u64,
    /// Per row key, the text of each configuration-only column, in order.
    rows: std::collections::HashMap<String, Vec<Box<str>>>,
}

impl CellCache {
    /// The columns and configuration version the kept cells are for.
    pub fn is_for<R>(&self, q: &PreparedQuery<'_, R>, version: u64) -> bool {
        self.version == version && self.columns == q.columns
    }
}

/// A value that cannot be written as JSON (a map with non-string keys,
/// which no field gives).
fn json_error(e: serde_json::Error) -> QueryError {
    QueryError::Internal(format!("cannot encode the query response: {e}"))
}

/// Runs `fields` and `filter` over `rows`, every row's data available.
pub fn run_query<R, I>(
    registry: &FieldRegistry<R>,
    rows: I,
    fields: &[String],
    filter: &Filter,
) -> Result<QueryResponse, QueryError>
where
    I: IntoIterator,
    I::Item: Borrow<R>,
{
    PreparedQuery::new(registry, fields, filter)?.run(rows)
}

/// Converts a `Query` response to the old format (Ganeti's `queryCompat`):
/// each row a list of plain values, `null` for non-normal cells; any
/// unknown field is an `OpPrereqError` "Unknown output fields selected".
pub fn legacy_rows(resp: QueryResponse) -> Result<Vec<Vec<Value>>, QueryError> {
    let unknown: Vec<String> = resp
        .fields
        .iter()
        .filter(|d| d.kind == FieldKind::Unknown)
        .map(|d| d.name.clone())
        .collect();
    if !unknown.is_empty() {
        return Err(QueryError::UnknownOutputFields(unknown));
    }
    Ok(resp
        .data
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|c| match c.status {
                    super::ResultStatus::Normal => c.value.unwrap_or(Value::Null),
                    _ => Value::Null,
                })
                .collect()
        })
        .collect())
}

/// The filter of the old `Query*` calls for `names` (Ganeti's
/// `handleClassicQuery`): an item is selected if any of `name_fields`
/// (`["name", "uuid"]` for most resources, `["id"]` for jobs) equals one of
/// the names; no names means every item. Names not found are silently
/// absent from the result; rows keep the (nicely sorted) order of all
/// items. Ganeti refuses `use_locking=true` on these calls with
/// `OpPrereqError("Sync queries are not allowed", "wrong_input")`.
pub fn classic_filter(name_fields: &[&str], names: &[FilterValue]) -> Filter {
    if names.is_empty() {
        return Filter::Empty;
    }
    Filter::Or(
        name_fields
            .iter()
            .map(|f| make_simple_filter(f, names.iter().cloned()))
            .collect(),
    )
}
