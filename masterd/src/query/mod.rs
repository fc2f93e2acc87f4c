//! Queries: the `Query`, `QueryFields` and legacy `Query*` LUXI calls over
//! the resources instance, node, group and job. Fields are declared once
//! per resource (see the submodules); live fields are fetched from the
//! nodes in parallel only when a requested field or the filter needs them.

pub mod export;
pub mod filter_rule;
pub mod group;
pub mod instance;
pub mod job;
pub mod live;
pub mod network;
pub mod node;
pub mod os;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Arc;

use luxi::error::{ErrorCode, GanetiError};
use luxi::query::{
    Cell, CellCache, DataNeeds, FieldDef, FieldFlags, FieldKind, FieldRegistry, Filter,
    PreparedQuery, QueryError, QueryFieldsResponse, QueryResponse,
};
use serde_json::json;

use crate::master::Master;
use live::Live;

/// The fields every config object has, borrowed from its row.
pub struct Common<'r> {
    pub uuid: &'r str,
    pub serial_no: u64,
    pub ctime: f64,
    pub mtime: f64,
    pub tags: &'r [String],
}

/// Adds uuid, serial_no, ctime, mtime and tags, common to config objects.
pub fn common_fields<R, G>(r: &mut FieldRegistry<R>, get: G)
where
    G: Fn(&R) -> Common<'_> + Copy + Send + Sync + 'static,
{
    use FieldKind::*;
    let c = DataNeeds::CONFIG;
    r.add(
        FieldDef::new("uuid", "UUID", Text, "Object UUID"),
        c,
        move |x| Cell::normal(get(x).uuid),
    )
    .add(
        FieldDef::new(
            "serial_no",
            "SerialNo",
            Number,
            "Object serial number, incremented on each modification",
        ),
        c,
        move |x| Cell::normal(get(x).serial_no),
    )
    .add_flagged(
        FieldDef::new("ctime", "CTime", Timestamp, "Creation timestamp"),
        c,
        FieldFlags::Timestamp,
        move |x| Cell::normal(get(x).ctime),
    )
    .add_flagged(
        FieldDef::new("mtime", "MTime", Timestamp, "Modification timestamp"),
        c,
        FieldFlags::Timestamp,
        move |x| Cell::normal(get(x).mtime),
    )
    .add(FieldDef::new("tags", "Tags", Other, "Tags"), c, move |x| {
        Cell::normal(json!(get(x).tags))
    });
}

fn qerr(e: luxi::query::QueryError) -> GanetiError {
    e.into()
}

/// The resources a query may name.
fn unknown_resource(what: &str) -> GanetiError {
    GanetiError::prereq(format!("Resource type '{what}' unknown"), ErrorCode::Inval)
}

/// Sorts names the way Ganeti lists them (each name's sort key computed
/// once, not once per comparison).
fn sorted<T>(mut v: Vec<&T>, name: impl Fn(&T) -> &str) -> Vec<&T> {
    luxi::query::nice_sort_by(&mut v, |t| name(t));
    v
}

/// The names of a filter that is nothing but `name == "..."` alternatives
/// (`None` for any other filter, the empty one included, and for one that
/// also compares the name with a number).
fn only_names(filter: &Filter) -> Option<Vec<String>> {
    let values = luxi::query::requested_values(filter, "name")?;
    if values.is_empty() {
        return None;
    }
    values
        .into_iter()
        .map(|v| match v {
            luxi::query::FilterValue::String(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Checks that every name the filter asks for exists; Ganeti refuses a
/// query for an unknown object by name.
fn check_names(
    kind: &str,
    requested: Option<Vec<String>>,
    exists: impl Fn(&str) -> bool,
) -> Result<(), GanetiError> {
    for n in requested.unwrap_or_default() {
        if !exists(&n) {
            return Err(GanetiError::prereq(
                format!("{kind} name {n} not found"),
                ErrorCode::NoEnt,
            ));
        }
    }
    Ok(())
}

/// Where the rows of a query go: a [`QueryResponse`] ([`ToResponse`]),
/// or JSON text written row by row ([`ToJson`]).
pub trait Sink {
    type Out;
    fn run<R, I>(self, q: &PreparedQuery<'_, R>, rows: I) -> Result<Self::Out, QueryError>
    where
        I: IntoIterator,
        I::Item: Borrow<R>;
}

/// The JSON text of configuration-only cells of instance rows, kept
/// between queries for a few lists of columns (RAPI's bulk fields, the
/// CLI's defaults, ...). Always right: cells are kept for one version of
/// the configuration (the cluster's serial number, which every commit
/// bumps) and dropped when it changes; cells that read live data are
/// never kept.
#[derive(Default)]
pub struct CellCaches(std::sync::Mutex<Vec<CellCache>>);

/// Lists of columns whose cells are kept at once.
const CELL_CACHES: usize = 4;

/// Where the rows of a query go (continued): rows that have a stable key,
/// for sinks that can reuse kept cells.
pub trait KeyedSink: Sink {
    fn run_keyed<R, I>(
        self,
        q: &PreparedQuery<'_, R>,
        rows: I,
        caches: &CellCaches,
        version: u64,
        key: impl Fn(&R) -> &str,
    ) -> Result<Self::Out, QueryError>
    where
        I: IntoIterator,
        I::Item: Borrow<R>;
}

impl KeyedSink for ToResponse {
    fn run_keyed<R, I>(
        self,
        q: &PreparedQuery<'_, R>,
        rows: I,
        _: &CellCaches,
        _: u64,
        _: impl Fn(&R) -> &str,
    ) -> Result<QueryResponse, QueryError>
    where
        I: IntoIterator,
        I::Item: Borrow<R>,
    {
        q.run(rows)
    }
}

impl KeyedSink for ToJson<'_> {
    fn run_keyed<R, I>(
        self,
        q: &PreparedQuery<'_, R>,
        rows: I,
        caches: &CellCaches,
        version: u64,
        key: impl Fn(&R) -> &str,
    ) -> Result<(), QueryError>
    where
        I: IntoIterator,
        I::Item: Borrow<R>,
    {
        // A query that finds the cells in use by another goes without.
        let Ok(mut caches) = caches.0.try_lock() else {
            return q.write_json(rows, self.0);
        };
        let pos = match caches.iter().position(|c| c.is_for(q, version)) {
            Some(p) => p,
            None => {
                if caches.len() >= CELL_CACHES {
                    caches.remove(0);
                }
                caches.push(CellCache::default());
                caches.len() - 1
            }
        };
        // The most recently used last.
        let mut cache = caches.remove(pos);
        let result = q.write_json_cached(rows, self.0, &mut cache, version, key);
        caches.push(cache);
        result
    }
}

/// Collects the rows into a [`QueryResponse`].
pub struct ToResponse;

impl Sink for ToResponse {
    type Out = QueryResponse;
    fn run<R, I>(self, q: &PreparedQuery<'_, R>, rows: I) -> Result<QueryResponse, QueryError>
    where
        I: IntoIterator,
        I::Item: Borrow<R>,
    {
        q.run(rows)
    }
}

/// Appends the response as JSON text (the bytes `serde_json` gives for
/// the [`QueryResponse`]), each row written as it is read: a listing of
/// thousands of instances never holds all its cells at once.
pub struct ToJson<'a>(pub &'a mut Vec<u8>);

impl Sink for ToJson<'_> {
    type Out = ();
    fn run<R, I>(self, q: &PreparedQuery<'_, R>, rows: I) -> Result<(), QueryError>
    where
        I: IntoIterator,
        I::Item: Borrow<R>,
    {
        q.write_json(rows, self.0)
    }
}

/// Runs a query.
pub async fn query(
    master: &Arc<Master>,
    what: &str,
    fields: &[String],
    filter: &Filter,
) -> Result<QueryResponse, GanetiError> {
    query_into(master, what, fields, filter, ToResponse).await
}

/// Runs a query, its response appended to `out` as JSON text.
pub async fn query_json(
    master: &Arc<Master>,
    what: &str,
    fields: &[String],
    filter: &Filter,
    out: &mut Vec<u8>,
) -> Result<(), GanetiError> {
    query_into(master, what, fields, filter, ToJson(out)).await
}

/// Runs a query, its rows going to `sink`.
pub async fn query_into<S: KeyedSink>(
    master: &Arc<Master>,
    what: &str,
    fields: &[String],
    filter: &Filter,
    sink: S,
) -> Result<S::Out, GanetiError> {
    match what {
        "instance" => query_instances(master, fields, filter, sink).await,
        "node" => query_nodes(master, fields, filter, sink).await,
        "group" => query_groups(master, fields, filter, sink),
        "job" => query_jobs(master, fields, filter, sink),
        "os" => query_os(master, fields, filter, sink).await,
        "export" => query_exports(master, fields, filter, sink).await,
        "network" => query_networks(master, fields, filter, sink),
        "filter" => query_filter_rules(master, fields, filter, sink),
        other => Err(unknown_resource(other)),
    }
}

async fn query_instances<S: KeyedSink>(
    master: &Arc<Master>,
    fields: &[String],
    filter: &Filter,
    sink: S,
) -> Result<S::Out, GanetiError> {
    let started = std::time::Instant::now();
    let needs = {
        let reg = instance::registry();
        PreparedQuery::new(&reg, fields, filter)
            .map_err(qerr)?
            .needs()
    };
    let live = if needs.intersects(DataNeeds::LIVE) {
        // As Ganeti: the nodes of the instances the filter names, or all.
        let nodes = {
            let cfg = master.config.read();
            match luxi::query::requested_names(filter, "name") {
                Some(names) => {
                    let wanted: std::collections::HashSet<String> = names
                        .iter()
                        .filter_map(|n| cfg.expand_instance(n))
                        .flat_map(|i| i.all_nodes())
                        .collect();
                    cfg.nodes
                        .values()
                        .filter(|n| wanted.contains(&n.uuid))
                        .cloned()
                        .collect()
                }
                None => cfg.nodes.values().cloned().collect(),
            }
        };
        Some(Live::instances(master, nodes).await)
    } else {
        None
    };
    let fetched = started.elapsed();
    let consoles = match (&live, needs.intersects(instance::CONSOLE)) {
        (Some(live), true) => Some(consoles(master, live, filter).await),
        _ => None,
    };
    let cfg = master.config.read();
    let reg = instance::registry();
    check_names(
        "Instance",
        luxi::query::requested_names(filter, "name"),
        |n| cfg.expand_instance(n).is_some(),
    )?;
    let q = PreparedQuery::new(&reg, fields, filter).map_err(qerr)?;
    // A filter that only names instances can match no other row: the
    // others are skipped before their rows are built (the filter still
    // decides for the named ones). Names match as the filter's `==` on a
    // host name does, short names included.
    let insts: Vec<&objects::Instance> = match only_names(filter) {
        None => cfg.instances_by_name().collect(),
        Some(names) => {
            // In UUID order, then nicely sorted by name (stably), as
            // `instances_by_name` lists them.
            let mut found: Vec<&objects::Instance> =
                names.iter().flat_map(|n| cfg.instances_named(n)).collect();
            found.sort_by(|a, b| a.uuid.cmp(&b.uuid));
            found.dedup_by(|a, b| a.uuid == b.uuid);
            sorted(found, |i| &i.name)
        }
    };
    let rows = insts
        .into_iter()
        .map(|i| instance::InstRow::new(&cfg, i, live.as_ref()).with_consoles(consoles.as_ref()));
    let out = sink
        .run_keyed(
            &q,
            rows,
            &master.cell_caches,
            cfg.cluster.serial_no,
            |r: &instance::InstRow<'_>| r.inst.uuid.as_str(),
        )
        .map_err(qerr)?;
    tracing::debug!(
        live_ms = fetched.as_secs_f64() * 1e3,
        total_ms = started.elapsed().as_secs_f64() * 1e3,
        "instance query"
    );
    Ok(out)
}

/// The console descriptions of the instances that run on their primary
/// node (those the filter names, or all), asked of the nodes in parallel.
async fn consoles(
    master: &Arc<Master>,
    live: &Live,
    filter: &Filter,
) -> HashMap<String, serde_json::Value> {
    let mut calls = Vec::new();
    {
        let cfg = master.config.read();
        // The instances the filter names (each name expanded once), or all.
        let wanted: Option<std::collections::HashSet<&str>> =
            luxi::query::requested_names(filter, "name").map(|names| {
                names
                    .iter()
                    .filter_map(|n| cfg.expand_instance(n))
                    .map(|i| i.uuid.as_str())
                    .collect()
            });
        for i in cfg.instances.values() {
            if wanted
                .as_ref()
                .is_some_and(|w| !w.contains(i.uuid.as_str()))
            {
                continue;
            }
            let running = live
                .instances
                .get(&i.primary_node)
                .and_then(|a| a.data())
                .is_some_and(|m| m.contains_key(&i.name));
            if !running {
                continue;
            }
            if let (Some(node), Ok(spec)) = (
                cfg.nodes.get(&i.primary_node),
                crate::lu::common::instance_spec(&cfg, i),
            ) {
                calls.push((i.uuid.clone(), node.clone(), spec));
            }
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for (uuid, node, spec) in calls {
        let master = master.clone();
        set.spawn(async move {
            let r = master
                .rpc
                .call(&node, &rpc::api::InstanceConsole { instance: spec })
                .await;
            (uuid, r)
        });
    }
    let mut out = HashMap::new();
    while let Some(Ok((uuid, r))) = set.join_next().await {
        match r {
            Ok(c) => {
                out.insert(uuid, instance::console_dict(&c));
            }
            Err(e) => tracing::debug!("instance_console for {uuid} failed: {e}"),
        }
    }
    out
}

async fn query_nodes<S: Sink>(
    master: &Arc<Master>,
    fields: &[String],
    filter: &Filter,
    sink: S,
) -> Result<S::Out, GanetiError> {
    let needs = {
        let reg = node::registry();
        PreparedQuery::new(&reg, fields, filter)
            .map_err(qerr)?
            .needs()
    };
    let live = if needs.intersects(DataNeeds::LIVE) {
        let nodes = master.config.read().nodes.values().cloned().collect();
        Some(Live::fetch(master, nodes, true, false).await)
    } else {
        None
    };
    let cfg = master.config.read();
    let reg = node::registry();
    check_names("Node", luxi::query::requested_names(filter, "name"), |n| {
        cfg.expand_node(n).is_some()
    })?;
    let mut pinst: HashMap<&str, Vec<&objects::Instance>> = HashMap::new();
    let mut sinst: HashMap<String, Vec<&objects::Instance>> = HashMap::new();
    for i in cfg.instances.values() {
        pinst.entry(i.primary_node.as_str()).or_default().push(i);
        for s in i.secondary_nodes() {
            sinst.entry(s).or_default().push(i);
        }
    }
    let q = PreparedQuery::new(&reg, fields, filter).map_err(qerr)?;
    let rows = sorted(cfg.nodes.values().collect(), |n| &n.name)
        .into_iter()
        .map(|n| {
            node::NodeRow::new(
                &cfg,
                n,
                pinst.get(n.uuid.as_str()).cloned().unwrap_or_default(),
                sinst.get(&n.uuid).cloned().unwrap_or_default(),
                live.as_ref(),
            )
        });
    sink.run(&q, rows).map_err(qerr)
}

fn query_groups<S: Sink>(
    master: &Arc<Master>,
    fields: &[String],
    filter: &Filter,
    sink: S,
) -> Result<S::Out, GanetiError> {
    let cfg = master.config.read();
    let reg = group::registry();
    check_names("Group", luxi::query::requested_names(filter, "name"), |n| {
        cfg.expand_group(n).is_some()
    })?;
    let q = PreparedQuery::new(&reg, fields, filter).map_err(qerr)?;
    let rows = sorted(cfg.groups.values().collect(), |g| &g.name)
        .into_iter()
        .map(|g| {
            let mut nodes: Vec<&str> = cfg
                .nodes
                .values()
                .filter(|n| n.group == g.uuid)
                .map(|n| n.name.as_str())
                .collect();
            nodes.sort();
            let mut instances: Vec<&str> = cfg
                .instances
                .values()
                .filter(|i| {
                    cfg.nodes
                        .get(&i.primary_node)
                        .is_some_and(|n| n.group == g.uuid)
                })
                .map(|i| i.name.as_str())
                .collect();
            instances.sort();
            group::GroupRow {
                cfg: &cfg,
                group: g,
                nodes,
                instances,
            }
        });
    sink.run(&q, rows).map_err(qerr)
}

fn query_networks<S: Sink>(
    master: &Arc<Master>,
    fields: &[String],
    filter: &Filter,
    sink: S,
) -> Result<S::Out, GanetiError> {
    let cfg = master.config.read();
    let reg = network::registry();
    check_names(
        "Network",
        luxi::query::requested_names(filter, "name"),
        |n| cfg.expand_network(n).is_some(),
    )?;
    let q = PreparedQuery::new(&reg, fields, filter).map_err(qerr)?;
    let rows = sorted(cfg.networks.values().collect(), |n| &n.name)
        .into_iter()
        .map(|n| network::NetworkRow::new(&cfg, n));
    sink.run(&q, rows).map_err(qerr)
}

fn query_jobs<S: Sink>(
    master: &Arc<Master>,
    fields: &[String],
    filter: &Filter,
    sink: S,
) -> Result<S::Out, GanetiError> {
    let reg = job::registry();
    let q = PreparedQuery::new(&reg, fields, filter).map_err(qerr)?;
    let queue = master.queue();
    let ids: Vec<u64> = match luxi::query::requested_values(filter, "id").filter(|v| !v.is_empty())
    {
        Some(vals) => vals
            .iter()
            .filter_map(|v| {
                v.to_json()
                    .as_u64()
                    .or_else(|| v.to_json().as_str().and_then(|s| s.parse().ok()))
            })
            .collect(),
        // As Ganeti's: archived jobs are listed when their field is asked.
        None => queue.job_ids(fields.iter().any(|f| f == "archived")),
    };
    let rows = ids.into_iter().map(|id| job::JobRow { id, queue });
    sink.run(&q, rows).map_err(qerr)
}

/// The job queue's filter rules, named by UUID.
fn query_filter_rules<S: Sink>(
    master: &Arc<Master>,
    fields: &[String],
    filter: &Filter,
    sink: S,
) -> Result<S::Out, GanetiError> {
    let rules = master.queue().filter_rules();
    check_names(
        "Filter",
        luxi::query::requested_names(filter, "uuid"),
        |u| rules.iter().any(|r| r.uuid == u),
    )?;
    let reg = filter_rule::registry();
    let q = PreparedQuery::new(&reg, fields, filter).map_err(qerr)?;
    // Ganeti lists them in the nice order of their UUIDs.
    let rows = sorted(rules.iter().collect(), |r| &r.uuid);
    sink.run(&q, rows).map_err(qerr)
}

async fn query_os<S: Sink>(
    master: &Arc<Master>,
    fields: &[String],
    filter: &Filter,
    sink: S,
) -> Result<S::Out, GanetiError> {
    let rows = crate::lu::os::os_rows(master).await;
    let reg = os::registry();
    let q = PreparedQuery::new(&reg, fields, filter).map_err(qerr)?;
    sink.run(&q, rows.iter()).map_err(qerr)
}

async fn query_exports<S: Sink>(
    master: &Arc<Master>,
    fields: &[String],
    filter: &Filter,
    sink: S,
) -> Result<S::Out, GanetiError> {
    let reg = export::registry();
    let q = PreparedQuery::new(&reg, fields, filter).map_err(qerr)?;
    {
        let cfg = master.config.read();
        check_names("Node", luxi::query::requested_names(filter, "node"), |n| {
            cfg.expand_node(n).is_some()
        })?;
    }
    let rows = export::rows(master).await;
    sink.run(&q, rows.iter()).map_err(qerr)
}

/// `QueryFields(what, fields)`.
pub fn query_fields(
    what: &str,
    fields: Option<&[String]>,
) -> Result<QueryFieldsResponse, GanetiError> {
    let names: Vec<String> = fields.map(<[String]>::to_vec).unwrap_or_default();
    let resp = match what {
        "instance" => instance::registry().query_fields(&names),
        "node" => node::registry().query_fields(&names),
        "group" => group::registry().query_fields(&names),
        "job" => job::registry().query_fields(&names),
        "os" => os::registry().query_fields(&names),
        "export" => export::registry().query_fields(&names),
        "network" => network::registry().query_fields(&names),
        "filter" => filter_rule::registry().query_fields(&names),
        other => return Err(unknown_resource(other)),
    };
    Ok(resp)
}
