//! `GET /metrics`: the cluster in Prometheus' text format, read from the
//! master at each scrape (jobs, nodes, instances, groups) plus what
//! ganeti-rapi counts itself (requests, failed live node data).
//!
//! - `ganeti_jobs{status}`, `ganeti_opcodes{opcode,status}`: the jobs the
//!   master keeps (not archived), and their opcodes;
//! - `ganeti_job_queue_depth`: jobs queued or waiting for locks;
//! - `ganeti_job_queue_wait_seconds`, `ganeti_job_duration_seconds`:
//!   histograms of the time from submission to start and to end, over
//!   the kept jobs;
//! - `ganeti_node_memory_{total,free}_bytes`,
//!   `ganeti_node_disk_{total,free}_bytes`, `ganeti_node_offline`,
//!   `ganeti_node_drained`, per node;
//! - `ganeti_instances{status}`;
//! - `ganeti_group_nplus1_failures{group}`: nodes of the group that could
//!   not take over the memory of the instances they are secondary for,
//!   should one primary node fail (Ganeti's N+1 check of `gnt-cluster
//!   verify`);
//! - `ganeti_node_live_data_errors_total{node}`: scrapes at which the
//!   master had no live data from an online node (its node RPC failed),
//!   counted since ganeti-rapi started;
//! - `ganeti_rapi_requests_total{method,code}`: the requests ganeti-rapi
//!   answered since it started.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use luxi::query::{Filter, ItemType, QueryRequest};
use luxi::request::Request;
use serde_json::Value;

use crate::ctx::{Ctx, Reply};
use crate::error::ApiError;

/// Upper bounds of the latency histograms' buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// What ganeti-rapi counts itself.
#[derive(Default)]
pub struct Counters {
    /// `(method, status code)` → requests.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Node → scrapes without its live data.
    live_errors: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    /// Counts an answered request.
    pub fn request(&self, method: &str, code: u16) {
        let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *r.entry((method.to_string(), code)).or_default() += 1;
    }
}

/// A Prometheus histogram.
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: [0; BUCKETS.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

/// A label value, escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header_of(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Seconds of a `[sec, usec]` timestamp.
fn ts(v: &Value) -> Option<f64> {
    let a = v.as_array()?;
    Some(a.first()?.as_f64()? + a.get(1)?.as_f64()? / 1e6)
}

/// The values of a query answer: one map of field to value per row,
/// `None` for a value the master could not give.
async fn query(
    ctx: &Ctx,
    what: ItemType,
    fields: &[&str],
) -> Result<Vec<Vec<Option<Value>>>, ApiError> {
    let resp = ctx
        .call(&Request::Query(QueryRequest {
            what,
            fields: fields.iter().map(|f| (*f).to_string()).collect(),
            filter: Filter::Empty,
        }))
        .await?;
    Ok(resp["data"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    row.as_array()
                        .map(|cells| {
                            cells
                                .iter()
                                .map(|c| (c[0] == 0).then(|| c[1].clone()))
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default())
}

fn text(v: &Option<Value>) -> String {
    v.as_ref()
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn num(v: &Option<Value>) -> Option<f64> {
    v.as_ref().and_then(Value::as_f64)
}

fn flag(v: &Option<Value>) -> bool {
    v.as_ref().and_then(Value::as_bool).unwrap_or(false)
}

const MIB: f64 = 1024.0 * 1024.0;

/// `GET /metrics`.
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut out = String::new();
    write_jobs(&ctx, &mut out).await?;
    let node_group = write_nodes(&ctx, &mut out).await?;
    write_instances(&ctx, &mut out, &node_group).await?;
    write_rapi(&ctx, &mut out);
    let mut resp = out.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(Reply::Response(resp))
}

async fn write_jobs(ctx: &Ctx, out: &mut String) -> Result<(), ApiError> {
    let fields = [
        "status",
        "summary",
        "opstatus",
        "received_ts",
        "start_ts",
        "end_ts",
    ];
    let rows = ctx
        .call(&Request::QueryJobs {
            ids: None,
            fields: fields.iter().map(|f| (*f).to_string()).collect(),
        })
        .await?;
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_op: BTreeMap<(String, String), u64> = BTreeMap::new();
    let (mut wait, mut total) = (Histogram::new(), Histogram::new());
    let mut depth = 0;
    for row in rows
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| !r.is_null())
    {
        let status = row[0].as_str().unwrap_or("unknown").to_string();
        if status == "queued" || status == "waiting" {
            depth += 1;
        }
        let summaries = row[1].as_array().cloned().unwrap_or_default();
        let opstatus = row[2].as_array().cloned().unwrap_or_default();
        for (s, st) in summaries.iter().zip(&opstatus) {
            let name = s.as_str().unwrap_or_default();
            let op = format!("OP_{}", name.split('(').next().unwrap_or_default());
            *by_op
                .entry((op, st.as_str().unwrap_or("unknown").to_string()))
                .or_default() += 1;
        }
        *by_status.entry(status).or_default() += 1;
        if let Some(recv) = ts(&row[3]) {
            if let Some(start) = ts(&row[4]) {
                wait.observe((start - recv).max(0.0));
            }
            if let Some(end) = ts(&row[5]) {
                total.observe((end - recv).max(0.0));
            }
        }
    }
    header_of(
        out,
        "ganeti_jobs",
        "gauge",
        "Jobs kept by the master, by status",
    );
    for st in [
        "queued",
        "waiting",
        "running",
        "canceling",
        "success",
        "error",
        "canceled",
    ] {
        let _ = writeln!(
            out,
            "ganeti_jobs{{status=\"{st}\"}} {}",
            by_status.get(st).unwrap_or(&0)
        );
    }
    header_of(
        out,
        "ganeti_opcodes",
        "gauge",
        "Opcodes of the kept jobs, by opcode and status",
    );
    for ((op, st), n) in &by_op {
        let _ = writeln!(
            out,
            "ganeti_opcodes{{opcode=\"{}\",status=\"{}\"}} {n}",
            label(op),
            label(st)
        );
    }
    header_of(
        out,
        "ganeti_job_queue_depth",
        "gauge",
        "Jobs queued or waiting for locks",
    );
    let _ = writeln!(out, "ganeti_job_queue_depth {depth}");
    wait.write(
        out,
        "ganeti_job_queue_wait_seconds",
        "Time from submission to start, over the kept jobs",
    );
    total.write(
        out,
        "ganeti_job_duration_seconds",
        "Time from submission to end, over the kept finished jobs",
    );
    Ok(())
}

/// What the N+1 check needs of a node.
struct NodeMem {
    name: String,
    group: String,
    /// Free memory (MiB), if the node answered.
    mfree: Option<f64>,
}

/// Writes the node metrics; returns each node's group and free memory.
async fn write_nodes(ctx: &Ctx, out: &mut String) -> Result<Vec<NodeMem>, ApiError> {
    let rows = query(
        ctx,
        ItemType::Node,
        &[
            "name", "group", "offline", "drained", "mtotal", "mfree", "dtotal", "dfree",
        ],
    )
    .await?;
    let metrics = [
        ("ganeti_node_memory_total_bytes", "Memory of the node", 4),
        (
            "ganeti_node_memory_free_bytes",
            "Free memory of the node",
            5,
        ),
        ("ganeti_node_disk_total_bytes", "Disk space of the node", 6),
        (
            "ganeti_node_disk_free_bytes",
            "Free disk space of the node",
            7,
        ),
    ];
    for (name, help, col) in metrics {
        header_of(out, name, "gauge", help);
        for r in &rows {
            if let Some(v) = num(&r[col]) {
                let _ = writeln!(
                    out,
                    "{name}{{node=\"{}\"}} {}",
                    label(&text(&r[0])),
                    v * MIB
                );
            }
        }
    }
    for (name, help, col) in [
        ("ganeti_node_offline", "1 if the node is offline", 2),
        ("ganeti_node_drained", "1 if the node is drained", 3),
    ] {
        header_of(out, name, "gauge", help);
        for r in &rows {
            let _ = writeln!(
                out,
                "{name}{{node=\"{}\"}} {}",
                label(&text(&r[0])),
                u8::from(flag(&r[col]))
            );
        }
    }
    {
        let mut errors = ctx
            .state
            .counters
            .live_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for r in &rows {
            let node = text(&r[0]);
            let entry = errors.entry(node).or_default();
            if !flag(&r[2]) && r[5].is_none() {
                *entry += 1;
            }
        }
        header_of(
            out,
            "ganeti_node_live_data_errors_total",
            "counter",
            "Scrapes at which the master had no live data from an online node",
        );
        for (node, n) in errors.iter() {
            let _ = writeln!(
                out,
                "ganeti_node_live_data_errors_total{{node=\"{}\"}} {n}",
                label(node)
            );
        }
    }
    Ok(rows
        .iter()
        .map(|r| NodeMem {
            name: text(&r[0]),
            group: text(&r[1]),
            mfree: num(&r[5]),
        })
        .collect())
}

async fn write_instances(ctx: &Ctx, out: &mut String, nodes: &[NodeMem]) -> Result<(), ApiError> {
    let rows = query(
        ctx,
        ItemType::Instance,
        &["status", "pnode", "snodes", "be/maxmem", "be/auto_balance"],
    )
    .await?;
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    // (secondary, primary) → memory needed on the secondary.
    let mut needed: BTreeMap<(String, String), f64> = BTreeMap::new();
    for r in &rows {
        *by_status.entry(text(&r[0])).or_default() += 1;
        if !flag(&r[4]) {
            continue;
        }
        let mem = num(&r[3]).unwrap_or(0.0);
        let snodes = r[2]
            .as_ref()
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for s in snodes.iter().filter_map(Value::as_str) {
            *needed.entry((s.to_string(), text(&r[1]))).or_default() += mem;
        }
    }
    header_of(out, "ganeti_instances", "gauge", "Instances by status");
    for (st, n) in &by_status {
        let _ = writeln!(out, "ganeti_instances{{status=\"{}\"}} {n}", label(st));
    }
    let mut failing: BTreeMap<String, u64> = BTreeMap::new();
    for n in nodes {
        let count = failing.entry(n.group.clone()).or_default();
        let Some(free) = n.mfree else { continue };
        if needed
            .iter()
            .any(|((sec, _), mem)| *sec == n.name && *mem > free)
        {
            *count += 1;
        }
    }
    header_of(
        out,
        "ganeti_group_nplus1_failures",
        "gauge",
        "Nodes of the group without the memory to take over from a failed primary",
    );
    for (g, n) in &failing {
        let _ = writeln!(
            out,
            "ganeti_group_nplus1_failures{{group=\"{}\"}} {n}",
            label(g)
        );
    }
    Ok(())
}

fn write_rapi(ctx: &Ctx, out: &mut String) {
    header_of(
        out,
        "ganeti_rapi_requests_total",
        "counter",
        "Requests answered by ganeti-rapi",
    );
    let r = ctx
        .state
        .counters
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    for ((m, c), n) in r.iter() {
        let _ = writeln!(
            out,
            "ganeti_rapi_requests_total{{method=\"{}\",code=\"{c}\"}} {n}",
            label(m)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let mut h = Histogram::new();
        h.observe(0.003);
        h.observe(0.2);
        h.observe(1000.0);
        let mut out = String::new();
        h.write(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.25\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"300\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
