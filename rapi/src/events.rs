//! `GET /2/events`: job status changes, job log lines and object changes
//! as Server-Sent Events.
//!
//! The master has no change feed, so the first subscriber starts a
//! watcher that reads it over LUXI every [`POLL`] (from then on, for the
//! life of the daemon, so that reconnecting clients miss nothing):
//!
//! - jobs (`QueryJobs`): a job's status changes are derived from its
//!   timestamps, so none is lost between two reads: `queued` (received),
//!   `waiting` (its first opcode started), `running` (its first opcode
//!   ran), then its final status (ended); a status seen that the
//!   timestamps do not give (`canceling`) is reported as seen. Each new
//!   log line of a job is an event.
//! - objects (`Query` on instances, nodes and groups, `QueryClusterInfo`):
//!   an object whose serial number changed, a new one, a removed one; the
//!   cluster when its modification time changes.
//!
//! Every event has an id, `<epoch>-<seq>` (the epoch is the watcher's
//! start): a client that reconnects with `Last-Event-ID` gets every event
//! after it that is still kept (the last [`KEEP`]). When it asks for more
//! than is kept, or for an id of an earlier epoch (ganeti-rapi restarted),
//! it gets a `reset` event first: it should read the state again.
//!
//! Events (`event:` / `data:`):
//! - `job`: `{"job", "status", "timestamp", "summary"}`;
//! - `job-log`: `{"job", "serial", "timestamp", "type", "message"}`;
//! - `object`: `{"kind", "name", "uuid", "serial_no"}` (the cluster:
//!   `"mtime"`), with `"removed": true` for a removed object;
//! - `reset`: `{"reason"}`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use luxi::query::{Filter, ItemType, QueryRequest};
use luxi::request::Request;
use serde_json::{json, Value};
use tokio::sync::{watch, OnceCell};

use crate::ctx::{Ctx, Reply};
use crate::error::ApiError;
use crate::master::{Master, MasterError};

/// How often the watcher reads the master.
pub const POLL: Duration = Duration::from_millis(200);
/// Events kept for clients that reconnect.
pub const KEEP: usize = 10_000;
/// A comment is sent when nothing happened for this long.
const KEEPALIVE: Duration = Duration::from_secs(15);

const FINAL: [&str; 3] = ["success", "error", "canceled"];

/// One event.
#[derive(Debug, Clone)]
struct Event {
    seq: u64,
    kind: &'static str,
    data: Value,
}

/// The events kept, and the number of the next one.
struct Log {
    events: VecDeque<Event>,
    next: u64,
}

/// The watcher and the events it made.
pub struct Hub {
    epoch: u128,
    log: Mutex<Log>,
    /// The number of the last event made.
    latest: watch::Sender<u64>,
    started: OnceCell<()>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

/// What the watcher knows of a job.
#[derive(Default)]
struct JobSeen {
    /// Statuses reported so far.
    statuses: Vec<String>,
    /// Highest log serial reported.
    log_serial: i64,
    finished: bool,
}

/// What the watcher knows of the cluster.
#[derive(Default)]
struct Seen {
    jobs: HashMap<u64, JobSeen>,
    /// `(kind, uuid)` → (name, serial number).
    objects: BTreeMap<(&'static str, String), (String, Value)>,
    cluster_mtime: Option<Value>,
}

fn ts_seconds(v: &Value) -> Option<f64> {
    let a = v.as_array()?;
    Some(a.first()?.as_f64()? + a.get(1)?.as_f64()? / 1e6)
}

/// The statuses a job went through, with when, as its timestamps tell.
fn job_statuses(status: &str, row: &[Value]) -> Vec<(String, Value)> {
    // row: id, status, summary, received_ts, start_ts, end_ts, opstart, opexec, oplog
    let first = |v: &Value| {
        v.as_array()
            .and_then(|a| a.first())
            .cloned()
            .filter(|t| !t.is_null())
    };
    let mut out = vec![("queued".to_string(), row[3].clone())];
    if let Some(t) = first(&row[6]) {
        out.push(("waiting".to_string(), t));
    }
    if let Some(t) = first(&row[7]) {
        out.push(("running".to_string(), t));
    }
    if FINAL.contains(&status) {
        out.push((status.to_string(), row[5].clone()));
    } else if !out.iter().any(|(s, _)| s == status) {
        out.push((status.to_string(), Value::Null));
    }
    out
}

impl Hub {
    pub fn new() -> Self {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Hub {
            epoch,
            log: Mutex::new(Log {
                events: VecDeque::new(),
                next: 1,
            }),
            latest: watch::channel(0).0,
            started: OnceCell::new(),
        }
    }

    fn push(&self, kind: &'static str, data: Value) {
        let seq = {
            let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            let seq = log.next;
            log.next += 1;
            log.events.push_back(Event { seq, kind, data });
            while log.events.len() > KEEP {
                log.events.pop_front();
            }
            seq
        };
        self.latest.send_replace(seq);
    }

    /// Events after `after`; `Err` when some of them are no longer kept.
    fn since(&self, after: u64) -> Result<Vec<Event>, ()> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        match log.events.front() {
            Some(first) if first.seq > after + 1 => Err(()),
            None if log.next > after + 1 => Err(()),
            _ => Ok(log
                .events
                .iter()
                .filter(|e| e.seq > after)
                .cloned()
                .collect()),
        }
    }

    /// Starts the watcher, once; returns when it has read the master a
    /// first time (what exists then is the starting point, not events).
    async fn start(self: &Arc<Self>, master: Arc<Master>) -> Result<(), ApiError> {
        self.started
            .get_or_try_init(|| async {
                let mut seen = Seen::default();
                self.poll(&master, &mut seen, true).await?;
                let hub = self.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(POLL).await;
                        if let Err(e) = hub.poll(&master, &mut seen, false).await {
                            tracing::warn!(error = %objects::error_chain(&e), "events: cannot read the master");
                        }
                    }
                });
                Ok::<(), MasterError>(())
            })
            .await
            .map(|_| ())
            .map_err(ApiError::from)
    }

    /// Reads the master once; makes the events of what changed (none on
    /// the first read).
    async fn poll(&self, master: &Master, seen: &mut Seen, first: bool) -> Result<(), MasterError> {
        self.poll_jobs(master, seen, first).await?;
        for (kind, what) in [
            ("instance", ItemType::Instance),
            ("node", ItemType::Node),
            ("group", ItemType::Group),
        ] {
            self.poll_objects(master, seen, first, kind, what).await?;
        }
        let info = master.call(&Request::QueryClusterInfo).await?;
        let mtime = info.get("mtime").cloned();
        if seen.cluster_mtime != mtime {
            if !first {
                self.push(
                    "object",
                    json!({"kind": "cluster", "name": info.get("name"), "uuid": info.get("uuid"),
                           "mtime": mtime}),
                );
            }
            seen.cluster_mtime = mtime;
        }
        Ok(())
    }

    async fn poll_jobs(
        &self,
        master: &Master,
        seen: &mut Seen,
        first: bool,
    ) -> Result<(), MasterError> {
        let ids = master
            .call(&Request::QueryJobs {
                ids: None,
                fields: vec!["id".into(), "status".into()],
            })
            .await?;
        let mut wanted = Vec::new();
        for row in ids.as_array().into_iter().flatten() {
            let (Some(id), Some(status)) = (
                row.get(0).and_then(Value::as_u64),
                row.get(1).and_then(Value::as_str),
            ) else {
                continue;
            };
            let known = seen.jobs.get(&id);
            let changed =
                known.is_some_and(|j| j.statuses.last().map(String::as_str) != Some(status));
            if known.is_none_or(|j| !j.finished) || changed {
                wanted.push(id);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let fields = [
            "id",
            "status",
            "summary",
            "received_ts",
            "start_ts",
            "end_ts",
            "opstart",
            "opexec",
            "oplog",
        ];
        let rows = master
            .call(&Request::QueryJobs {
                ids: Some(wanted),
                fields: fields.iter().map(|f| (*f).to_string()).collect(),
            })
            .await?;
        for row in rows.as_array().into_iter().flatten() {
            let Some(row) = row.as_array().filter(|r| r.len() == fields.len()) else {
                continue;
            };
            let Some(id) = row[0].as_u64() else { continue };
            let status = row[1].as_str().unwrap_or_default().to_string();
            let job = seen.jobs.entry(id).or_default();
            // The job's new statuses and log lines, in the order they
            // happened (a status before a log line of the same instant).
            let mut new: Vec<(f64, &'static str, Value)> = Vec::new();
            for (st, when) in job_statuses(&status, row) {
                if job.statuses.contains(&st) {
                    continue;
                }
                let at = ts_seconds(&when).unwrap_or(f64::MAX);
                new.push((
                    at,
                    "job",
                    json!({"job": id, "status": st, "timestamp": when, "summary": row[2]}),
                ));
                job.statuses.push(st);
            }
            let lines = row[8]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|op| op.as_array().into_iter().flatten());
            let mut max_serial = job.log_serial;
            for l in lines {
                let serial = l.get(0).and_then(Value::as_i64).unwrap_or(0);
                if serial <= job.log_serial {
                    continue;
                }
                max_serial = max_serial.max(serial);
                let at = l.get(1).and_then(ts_seconds).unwrap_or(f64::MAX);
                new.push((
                    at,
                    "job-log",
                    json!({"job": id, "serial": serial, "timestamp": l.get(1),
                           "type": l.get(2), "message": l.get(3)}),
                ));
            }
            job.log_serial = max_serial;
            new.sort_by(|a, b| a.0.total_cmp(&b.0));
            if !first {
                for (_, kind, data) in new {
                    self.push(kind, data);
                }
            }
            job.finished = FINAL.contains(&status.as_str());
        }
        Ok(())
    }

    async fn poll_objects(
        &self,
        master: &Master,
        seen: &mut Seen,
        first: bool,
        kind: &'static str,
        what: ItemType,
    ) -> Result<(), MasterError> {
        let resp = master
            .call(&Request::Query(QueryRequest {
                what,
                fields: vec!["name".into(), "uuid".into(), "serial_no".into()],
                filter: Filter::Empty,
            }))
            .await?;
        let mut now: BTreeMap<String, (String, Value)> = BTreeMap::new();
        for row in resp["data"].as_array().into_iter().flatten() {
            let cell = |i: usize| {
                row.get(i)
                    .and_then(|c| c.get(1))
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            let uuid = cell(1).as_str().unwrap_or_default().to_string();
            now.insert(
                uuid,
                (cell(0).as_str().unwrap_or_default().to_string(), cell(2)),
            );
        }
        let before: Vec<(String, (String, Value))> = seen
            .objects
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, u), v)| (u.clone(), v.clone()))
            .collect();
        for (uuid, (name, serial)) in &before {
            if !now.contains_key(uuid) {
                if !first {
                    self.push(
                        "object",
                        json!({"kind": kind, "name": name, "uuid": uuid, "serial_no": serial,
                               "removed": true}),
                    );
                }
                seen.objects.remove(&(kind, uuid.clone()));
            }
        }
        for (uuid, (name, serial)) in now {
            let key = (kind, uuid.clone());
            if seen.objects.get(&key) != Some(&(name.clone(), serial.clone())) {
                if !first {
                    self.push(
                        "object",
                        json!({"kind": kind, "name": name, "uuid": uuid, "serial_no": serial}),
                    );
                }
                seen.objects.insert(key, (name, serial));
            }
        }
        Ok(())
    }

    fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    /// The event after which a client reconnecting with `last_id` should
    /// resume, or `None` when it must start over (another epoch).
    fn resume_point(&self, last_id: Option<&str>) -> Result<u64, &'static str> {
        let Some(id) = last_id else {
            return Ok(*self.latest.borrow());
        };
        let Some((epoch, seq)) = id.split_once('-') else {
            return Err("invalid Last-Event-ID");
        };
        match (epoch.parse::<u128>(), seq.parse::<u64>()) {
            (Ok(e), Ok(s)) if e == self.epoch && s <= *self.latest.borrow() => Ok(s),
            (Ok(_), Ok(_)) => Err("events of an earlier run of ganeti-rapi"),
            _ => Err("invalid Last-Event-ID"),
        }
    }
}

fn frame(id: Option<&str>, kind: &str, data: &Value) -> Bytes {
    let mut s = String::new();
    if let Some(id) = id {
        s.push_str("id: ");
        s.push_str(id);
        s.push('\n');
    }
    s.push_str("event: ");
    s.push_str(kind);
    s.push_str("\ndata: ");
    s.push_str(&data.to_string());
    s.push_str("\n\n");
    Bytes::from(s)
}

/// `GET /2/events`.
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    let hub = ctx.state.events.clone();
    hub.start(ctx.state.master.clone()).await?;
    let mut first: Vec<Bytes> = vec![Bytes::from_static(b": ganeti-rs events\n\n")];
    let last_id = ctx
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let after = match hub.resume_point(last_id.as_deref()) {
        Ok(s) => s,
        Err(reason) => {
            let now = *hub.latest.borrow();
            first.push(frame(
                Some(&hub.id(now)),
                "reset",
                &json!({"reason": reason}),
            ));
            now
        }
    };
    let rx = hub.latest.subscribe();
    let state = (hub, rx, after, VecDeque::from(first));
    let stream =
        futures_util::stream::unfold(state, |(hub, mut rx, mut after, mut pending)| async move {
            loop {
                if let Some(b) = pending.pop_front() {
                    return Some((Ok::<Bytes, Infallible>(b), (hub, rx, after, pending)));
                }
                match hub.since(after) {
                    Ok(events) if !events.is_empty() => {
                        for e in events {
                            after = e.seq;
                            pending.push_back(frame(Some(&hub.id(e.seq)), e.kind, &e.data));
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(()) => {
                        let now = *hub.latest.borrow();
                        pending.push_back(frame(
                            Some(&hub.id(now)),
                            "reset",
                            &json!({"reason": "events were missed (the client fell behind)"}),
                        ));
                        after = now;
                        continue;
                    }
                }
                match tokio::time::timeout(KEEPALIVE, rx.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return None,
                    Err(_) => pending.push_back(Bytes::from_static(b": keepalive\n\n")),
                }
            }
        });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(Reply::Response(resp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_come_from_the_timestamps() {
        let t = |s: u64| json!([s, 0]);
        let row = vec![
            json!(1),
            json!("success"),
            json!(["TEST_DELAY"]),
            t(10),
            t(11),
            t(13),
            json!([t(11)]),
            json!([t(12)]),
            json!([[]]),
        ];
        let st: Vec<String> = job_statuses("success", &row)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(st, ["queued", "waiting", "running", "success"]);
        let row = vec![
            json!(2),
            json!("canceling"),
            json!([]),
            t(10),
            Value::Null,
            Value::Null,
            json!([t(11)]),
            json!([null]),
            json!([[]]),
        ];
        let st: Vec<String> = job_statuses("canceling", &row)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(st, ["queued", "waiting", "canceling"]);
    }

    #[test]
    fn reconnecting_clients_resume_or_start_over() {
        let hub = Hub::new();
        for i in 0..3 {
            hub.push("job", json!({"n": i}));
        }
        let id = hub.id(1);
        let after = hub.resume_point(Some(&id)).unwrap();
        let ev = hub.since(after).unwrap();
        assert_eq!(ev.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert!(hub.resume_point(Some("1-2")).is_err());
        assert!(hub.resume_point(Some("garbage")).is_err());
        assert_eq!(hub.resume_point(None).unwrap(), 3);
        for i in 0..KEEP {
            hub.push("job", json!({"n": i}));
        }
        assert!(hub.since(1).is_err(), "events 2.. are no longer all kept");
        assert!(hub.since(3).is_ok());
    }
}
