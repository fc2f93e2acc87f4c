//! Ganeti's query language ("query2"), server side: field definitions and
//! result statuses on the wire, a per-resource field registry, the filter
//! language, and the query driver.
//!
//! How the master serves a resource:
//!
//! 1. Declare its fields once, over its own row type `R` (e.g. an instance
//!    with references into the config and optional live data), in a
//!    [`FieldRegistry<R>`]: [`FieldDef`], the [`DataNeeds`] of the field
//!    (config, live node data, locks, or custom kinds), [`FieldFlags`] for
//!    host names and split timestamps, and a getter `Fn(&R) -> Cell`.
//!
//!    `R` may borrow (e.g. `InstRow<'a> { cfg: &'a Config, inst: &'a
//!    Instance, live: Option<&'a Live> }`): then build the registry per
//!    query with `fn instance_fields<'a>() -> FieldRegistry<InstRow<'a>>`
//!    (a few hundred small allocations). With an owned `R` (holding an
//!    `Arc` of the config snapshot) it can be built once and shared.
//! 2. On `Query(what, fields, filter)`: [`QueryRequest::from_args`] (or
//!    [`Filter::from_json`] for the filter alone), then [`PreparedQuery::new`] checks it against
//!    the registry. [`requested_names`] tells whether the user asked for
//!    names (look each up, report unknown ones, keep that order), otherwise
//!    take every item nicely sorted by name ([`nice_sort_by`]).
//! 3. If [`PreparedQuery::needs`] contains [`DataNeeds::LIVE`], optionally
//!    prune with [`PreparedQuery::matches`]`(row, DataNeeds::CONFIG)`, fetch
//!    the live data for the rows left, then [`PreparedQuery::run`] (or
//!    [`run_query`] in one go) gives the [`QueryResponse`].
//! 4. `QueryFields(what, fields)`: [`QueryFieldsRequest::from_args`], then
//!    [`FieldRegistry::query_fields`].
//! 5. Old calls (`QueryInstances(names, fields, use_locking)`, ...):
//!    [`ClassicQueryRequest::from_args`], `check_no_locking`, its `filter`,
//!    then [`PreparedQuery::run_legacy`] over all items nicely sorted.
//!
//! Errors are [`QueryError`]s; `GanetiError::from` gives their wire form.

mod error;
mod eval;
mod filter;
mod names;
mod registry;
mod request;
mod run;
mod types;

pub use error::QueryError;
pub use eval::CompiledFilter;
pub use filter::{
    make_simple_filter, requested_names, requested_values, Comparison, Filter, FilterRegex,
    FilterValue, MAX_FILTER_DEPTH, OP_AND, OP_CONTAINS, OP_EQUAL, OP_EQUAL_LEGACY, OP_GE, OP_GT,
    OP_LE, OP_LT, OP_NOT, OP_NOT_EQUAL, OP_OR, OP_REGEXP, OP_TRUE,
};
pub use names::{
    lookup_name, match_name_component, nice_cmp, nice_sort_by, nice_sort_key, NameLookup, NiceKey,
};
pub use registry::{DataNeeds, Field, FieldFlags, FieldRegistry, Getter};
pub use request::{ClassicQueryRequest, ItemType, QueryFieldsRequest, QueryRequest};
pub use run::{classic_filter, legacy_rows, run_query, CellCache, PreparedQuery};
pub use types::{Cell, FieldDef, FieldKind, QueryFieldsResponse, QueryResponse, ResultStatus};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod oracle_tests;
