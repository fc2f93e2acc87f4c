//! Submitting jobs and following them to the end, as Ganeti's `SubmitOpCode`,
//! `SubmitOrSend`, `PollJob` and `JobExecutor` do.

use serde_json::{json, Value};

use crate::ctx::{Ctx, JobOpts};
use crate::error::{exec_error_from, maybe_encoded_error, CliError};
use crate::opcodes::OpCode;
use crate::output;
use crate::pyfmt::py_str;
use crate::timefmt::ctime;

/// Seconds the master may hold a `WaitForJobChange` call.
pub const WFJC_TIMEOUT: u64 = 60;

/// Job ids as the user typed them or as the master returned them.
pub fn job_id_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// How a followed job reports its progress.
pub trait Reporter {
    fn log_message(&mut self, job_id: &Value, timestamp: &Value, log_type: &str, msg: &Value);
    fn not_changed(&mut self, job_id: &Value, status: Option<&str>);
}

/// Prints log messages with their time, and a note when a job waits.
#[derive(Default)]
pub struct StdioReporter {
    notified_queued: bool,
    notified_waitlock: bool,
}

/// Renders a job log message as Ganeti's `FormatLogMessage`.
pub fn format_log_message(log_type: &str, msg: &Value) -> String {
    if log_type == "message" {
        if let Value::String(s) = msg {
            return s.clone();
        }
    }
    py_str(msg)
}

/// `[sec, usec]` as seconds.
pub fn merge_time(ts: &Value) -> f64 {
    match ts.as_array().map(Vec::as_slice) {
        Some([s, u]) => s.as_f64().unwrap_or(0.0) + u.as_f64().unwrap_or(0.0) / 1e6,
        _ => ts.as_f64().unwrap_or(0.0),
    }
}

impl Reporter for StdioReporter {
    fn log_message(&mut self, _job_id: &Value, ts: &Value, log_type: &str, msg: &Value) {
        output::out(&format!(
            "{} {}",
            ctime(merge_time(ts)),
            format_log_message(log_type, msg)
        ));
    }

    fn not_changed(&mut self, job_id: &Value, status: Option<&str>) {
        match status {
            Some("queued") if !self.notified_queued => {
                output::err(&format!("Job {} is waiting in queue", job_id_str(job_id)));
                self.notified_queued = true;
            }
            Some("waiting") if !self.notified_waitlock => {
                output::err(&format!(
                    "Job {} is trying to acquire all necessary locks",
                    job_id_str(job_id)
                ));
                self.notified_waitlock = true;
            }
            _ => {}
        }
    }
}

/// Drops log messages (`gnt-job wait`).
pub struct SilentReporter;

impl Reporter for SilentReporter {
    fn log_message(&mut self, _: &Value, _: &Value, _: &str, _: &Value) {}
    fn not_changed(&mut self, _: &Value, _: Option<&str>) {}
}

/// Follows a job until it ends and returns its per-opcode results; a failed
/// job becomes the error of its failed opcode (Ganeti's `GenericPollJob`).
pub fn poll_job(
    ctx: &mut Ctx,
    job_id: &Value,
    reporter: &mut dyn Reporter,
) -> Result<Value, CliError> {
    let mut prev_job_info = Value::Null;
    let mut prev_serial: Option<i64> = None;
    let mut status: Option<String> = None;
    loop {
        let result = ctx.call(
            "WaitForJobChange",
            json!([job_id, ["status"], prev_job_info, prev_serial, WFJC_TIMEOUT]),
        )?;
        if result.is_null() || result == json!(false) {
            return Err(CliError::JobLost(format!(
                "Job with id {} lost",
                job_id_str(job_id)
            )));
        }
        if result == json!("nochange") {
            reporter.not_changed(job_id, status.as_deref());
            continue;
        }
        let Some([job_info, log_entries]) = result.as_array().map(Vec::as_slice) else {
            return Err(CliError::bad_reply("WaitForJobChange", result.to_string()));
        };
        let Some(st) = job_info
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
        else {
            return Err(CliError::bad_reply("WaitForJobChange", result.to_string()));
        };
        status = Some(st.to_string());
        let entries = log_entries.as_array().cloned().unwrap_or_default();
        if !entries.is_empty() {
            for entry in &entries {
                let Some([serial, ts, log_type, msg]) = entry.as_array().map(Vec::as_slice) else {
                    return Err(CliError::bad_reply(
                        "WaitForJobChange",
                        format!("log entry {entry}"),
                    ));
                };
                reporter.log_message(job_id, ts, log_type.as_str().unwrap_or(""), msg);
                if let Some(s) = serial.as_i64() {
                    prev_serial = Some(prev_serial.map_or(s, |p| p.max(s)));
                }
            }
        } else if matches!(st, "success" | "error" | "canceling" | "canceled") {
            break;
        }
        prev_job_info = job_info.clone();
    }

    let jobs = ctx.call(
        "QueryJobs",
        json!([[job_id], ["status", "opstatus", "opresult"]]),
    )?;
    let row = jobs
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(Value::Null);
    if row.is_null() {
        return Err(CliError::JobLost(format!(
            "Job with id {} lost",
            job_id_str(job_id)
        )));
    }
    let Some([status, opstatus, opresult]) = row.as_array().map(Vec::as_slice) else {
        return Err(CliError::bad_reply("QueryJobs", row.to_string()));
    };
    match status.as_str() {
        Some("success") => return Ok(opresult.clone()),
        Some("canceling" | "canceled") => return Err(CliError::JobCanceled),
        _ => {}
    }
    let empty = Vec::new();
    let statuses = opstatus.as_array().unwrap_or(&empty);
    let results = opresult.as_array().unwrap_or(&empty);
    let mut has_ok = false;
    for (idx, (st, msg)) in statuses.iter().zip(results).enumerate() {
        match st.as_str() {
            Some("success") => has_ok = true,
            Some("error") => {
                if let Some(e) = maybe_encoded_error(msg) {
                    return Err(CliError::Ganeti(e));
                }
                if has_ok {
                    return Err(CliError::exec(format!(
                        "partial failure (opcode {idx}): {}",
                        py_str(msg)
                    )));
                }
                return Err(CliError::Ganeti(exec_error_from(msg)));
            }
            _ => {}
        }
    }
    Err(CliError::Ganeti(exec_error_from(opresult)))
}

/// Submits one job and returns its id as the master gave it.
pub fn send_job(ctx: &mut Ctx, ops: Vec<Value>) -> Result<Value, CliError> {
    let id = ctx.call("SubmitJob", json!([ops]))?;
    match &id {
        Value::Number(_) | Value::String(_) => Ok(id),
        other => Err(CliError::bad_reply("SubmitJob", other.to_string())),
    }
}

/// Submits one opcode, follows the job and returns the opcode's result
/// (Ganeti's `SubmitOpCode`).
pub fn submit_opcode(ctx: &mut Ctx, op: OpCode, jo: Option<&JobOpts>) -> Result<Value, CliError> {
    let op = ctx.finish_opcode(op, jo);
    let id = send_job(ctx, vec![op])?;
    if jo.is_some_and(|j| j.print_jobid) {
        output::out(&job_id_str(&id));
    }
    let results = poll_job(ctx, &id, &mut StdioReporter::default())?;
    Ok(results
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(Value::Null))
}

/// Submits an opcode exactly as built, without the generic options (as
/// Ganeti's commands that call `SubmitOpCode` without options do), follows
/// the job and returns the opcode's result.
pub fn submit_bare(ctx: &mut Ctx, op: OpCode) -> Result<Value, CliError> {
    let id = send_job(ctx, vec![op.into_value()])?;
    let results = poll_job(ctx, &id, &mut StdioReporter::default())?;
    Ok(results
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(Value::Null))
}

/// With `--submit`, submits and returns `CliError::Submitted` (printed as
/// `JobID: N`); otherwise like [`submit_opcode`] (Ganeti's `SubmitOrSend`).
pub fn submit_or_send(ctx: &mut Ctx, op: OpCode, jo: &JobOpts) -> Result<Value, CliError> {
    if jo.submit_only {
        let op = ctx.finish_opcode(op, Some(jo));
        let id = send_job(ctx, vec![op])?;
        if jo.print_jobid {
            output::out(&job_id_str(&id));
        }
        return Err(CliError::Submitted(job_id_str(&id)));
    }
    submit_opcode(ctx, op, Some(jo))
}

/// Several jobs, one per named item, submitted together and followed one
/// after the other (Ganeti's `JobExecutor`).
pub struct JobExecutor {
    verbose: bool,
    queue: Vec<(String, Value)>,
}

/// The outcome of one job of a [`JobExecutor`].
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub success: bool,
    pub result: Value,
}

const CHOOSE_BATCH: usize = 25;

impl JobExecutor {
    pub fn new(verbose: bool) -> Self {
        JobExecutor {
            verbose,
            queue: Vec::new(),
        }
    }

    /// Records a job for `name` made of one opcode.
    pub fn queue_job(&mut self, ctx: &Ctx, name: &str, op: OpCode, jo: &JobOpts) {
        self.queue
            .push((name.to_string(), ctx.finish_opcode(op, Some(jo))));
    }

    fn submit(&mut self, ctx: &mut Ctx) -> Result<Vec<(String, bool, Value)>, CliError> {
        let jobs: Vec<Value> = self.queue.iter().map(|(_, op)| json!([op])).collect();
        let res = ctx.call("SubmitManyJobs", json!([jobs]))?;
        let Some(rows) = res.as_array() else {
            return Err(CliError::bad_reply("SubmitManyJobs", res.to_string()));
        };
        let mut out = Vec::new();
        for ((name, _), row) in self.queue.iter().zip(rows) {
            let Some([ok, data]) = row.as_array().map(Vec::as_slice) else {
                return Err(CliError::bad_reply("SubmitManyJobs", row.to_string()));
            };
            out.push((name.clone(), ok.as_bool().unwrap_or(false), data.clone()));
        }
        Ok(out)
    }

    /// Waits for all jobs (or, with `wait` false, prints their ids) and
    /// returns one outcome per job in submission order.
    pub fn wait_or_show(&mut self, ctx: &mut Ctx, wait: bool) -> Result<Vec<JobOutcome>, CliError> {
        let submitted = self.submit(ctx)?;
        if !wait {
            let mut res = Vec::new();
            for (name, ok, data) in submitted {
                if ok {
                    output::out(&format!("{}: {name}", job_id_str(&data)));
                } else {
                    output::err(&format!("Failure for {name}: {}", py_str(&data)));
                }
                res.push(JobOutcome {
                    success: ok,
                    result: data,
                });
            }
            return Ok(res);
        }
        self.follow(ctx, submitted)
    }

    /// Follows already submitted jobs, given as `(name, submitted, id or
    /// error)`; an empty name is not shown (Ganeti's `GetResults`).
    pub fn follow(
        &self,
        ctx: &mut Ctx,
        submitted: Vec<(String, bool, Value)>,
    ) -> Result<Vec<JobOutcome>, CliError> {
        let for_name = |name: &str| {
            if name.is_empty() {
                String::new()
            } else {
                format!(" for {name}")
            }
        };
        let mut results: Vec<Option<JobOutcome>> = vec![None; submitted.len()];
        if self.verbose {
            let ok: Vec<String> = submitted
                .iter()
                .filter(|(_, ok, _)| *ok)
                .map(|(_, _, id)| job_id_str(id))
                .collect();
            if !ok.is_empty() {
                output::out(&format!("Submitted jobs {}", ok.join(", ")));
            }
        }
        let mut pending: Vec<(usize, String, Value)> = Vec::new();
        for (idx, (name, ok, data)) in submitted.into_iter().enumerate() {
            if ok {
                pending.push((idx, name, data));
            } else {
                output::err(&format!(
                    "Failed to submit job{}: {}",
                    for_name(&name),
                    py_str(&data)
                ));
                results[idx] = Some(JobOutcome {
                    success: false,
                    result: data,
                });
            }
        }
        while !pending.is_empty() {
            let (idx, name, id) = choose_job(ctx, &mut pending)?;
            let sid = job_id_str(&id);
            let fname = for_name(&name);
            output::out(&format!("Waiting for job {sid}{fname} ..."));
            let outcome = match poll_job(ctx, &id, &mut StdioReporter::default()) {
                Ok(r) => JobOutcome {
                    success: true,
                    result: r,
                },
                Err(CliError::JobLost(m)) => {
                    output::err(&format!(
                        "Job {sid}{fname} has been archived, cannot check its result"
                    ));
                    JobOutcome {
                        success: false,
                        result: json!(m),
                    }
                }
                Err(e @ (CliError::NoMaster | CliError::Io(_))) => return Err(e),
                Err(e) => {
                    let (_, text) = e.render();
                    output::err(&format!("Job {sid}{fname} has failed: {text}"));
                    JobOutcome {
                        success: false,
                        result: json!(text),
                    }
                }
            };
            results[idx] = Some(outcome);
        }
        Ok(results.into_iter().flatten().collect())
    }
}

/// Picks the next job to follow: the first of a batch that is neither
/// queued nor waiting, else the oldest.
fn choose_job(
    ctx: &mut Ctx,
    pending: &mut Vec<(usize, String, Value)>,
) -> Result<(usize, String, Value), CliError> {
    let ids: Vec<Value> = pending
        .iter()
        .take(CHOOSE_BATCH)
        .map(|(_, _, id)| id.clone())
        .collect();
    let res = ctx.call("QueryJobs", json!([ids, ["status"]]))?;
    let rows = res.as_array().cloned().unwrap_or_default();
    for (i, row) in rows.iter().enumerate().take(pending.len()) {
        let st = row
            .as_array()
            .and_then(|r| r.first())
            .and_then(Value::as_str);
        if matches!(st, Some("queued" | "waiting" | "canceling")) {
            continue;
        }
        return Ok(pending.remove(i));
    }
    Ok(pending.remove(0))
}
