//! `gnt-job`: job queue inspection and control.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::error::{exit, CliError};
use crate::info::{format_generic_info, Info};
use crate::jobs::{poll_job, SilentReporter, StdioReporter};
use crate::output::{self, ask_user};
use crate::pyfmt::py_str;
use crate::qlang;
use crate::query::{
    format_query_result, generic_list, generic_list_fields, parse_fields, query, Formatter,
    ListFieldsOpts, ListOpts, ListRequest, Overrides,
};
use crate::timefmt::{format_timestamp, timestamp_parts};

/// Default fields of `gnt-job list`.
pub const LIST_DEF_FIELDS: &[&str] = &["id", "status", "summary"];

const JOBS_PENDING: &[&str] = &["queued", "waiting", "canceling"];
const JOBS_FINALIZED: &[&str] = &["canceled", "success", "error"];

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Lists the jobs and their status
    List(ListArgs),
    /// Lists all available fields for jobs
    ListFields {
        #[command(flatten)]
        opts: ListFieldsOpts,
        fields: Vec<String>,
    },
    /// Archive specified jobs
    Archive {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Auto archive jobs older than the given age (e.g. 1d, 4w, all)
    Autoarchive { age: String },
    /// Cancel jobs
    Cancel(CancelArgs),
    /// Show detailed information about the specified jobs
    #[command(alias = "show")]
    Info {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Wait for a job to finish
    Wait { id: String },
    /// Follows a job and prints its output as it arrives
    Watch { id: String },
    /// Change the priority of jobs
    ChangePriority(ChangePriorityArgs),
}

#[derive(Args, Debug, Clone, Default)]
pub struct StatusFilter {
    /// Select jobs pending execution or being cancelled
    #[arg(long, group = "status")]
    pub pending: bool,
    /// Select queued jobs only
    #[arg(long, group = "status")]
    pub queued: bool,
    /// Select waiting jobs only
    #[arg(long, group = "status")]
    pub waiting: bool,
}

impl StatusFilter {
    fn statuses(&self) -> Option<Vec<&'static str>> {
        if self.pending {
            Some(JOBS_PENDING.to_vec())
        } else if self.queued {
            Some(vec!["queued"])
        } else if self.waiting {
            Some(vec!["waiting"])
        } else {
            None
        }
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub list: ListOpts,
    /// Select jobs pending execution or being cancelled
    #[arg(long, group = "status")]
    pub pending: bool,
    /// Show jobs currently running only
    #[arg(long, group = "status")]
    pub running: bool,
    /// Show failed jobs only
    #[arg(long, group = "status")]
    pub error: bool,
    /// Show finished jobs only
    #[arg(long, group = "status")]
    pub finished: bool,
    /// Include archived jobs in list
    #[arg(long)]
    pub archived: bool,
    pub ids: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CancelArgs {
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Kill running jobs with SIGKILL
    #[arg(long)]
    pub kill: bool,
    /// Really use --kill
    #[arg(long = "yes-do-it", alias = "ya-rly")]
    pub yes_do_it: bool,
    #[command(flatten)]
    pub filter: StatusFilter,
    pub ids: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ChangePriorityArgs {
    /// The new priority
    #[arg(long, value_parser = ["low", "normal", "high"])]
    pub priority: Option<String>,
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    #[command(flatten)]
    pub filter: StatusFilter,
    pub ids: Vec<String>,
}

/// Entry point of `gnt-job`.
pub fn main() -> i32 {
    crate::commands::run::<Cmd>("gnt-job", "Ganeti job queue", dispatch)
}

fn dispatch(ctx: &mut Ctx, cmd: Cmd) -> Result<i32, CliError> {
    match cmd {
        Cmd::List(a) => list(ctx, a),
        Cmd::ListFields { opts, fields } => generic_list_fields(ctx, "job", &fields, &opts),
        Cmd::Archive { ids } => archive(ctx, &ids),
        Cmd::Autoarchive { age } => autoarchive(ctx, &age),
        Cmd::Cancel(a) => cancel(ctx, a),
        Cmd::Info { ids } => show(ctx, &ids),
        Cmd::Wait { id } => wait(ctx, &id, false),
        Cmd::Watch { id } => wait(ctx, &id, true),
        Cmd::ChangePriority(a) => change_priority(ctx, a),
    }
}

fn user_status(v: &Value) -> String {
    match v.as_str() {
        Some(
            s @ ("queued" | "waiting" | "canceling" | "running" | "canceled" | "success" | "error"),
        ) => s.to_string(),
        _ => py_str(v),
    }
}

/// The formatting `gnt-job` applies to job fields.
fn job_overrides() -> Overrides {
    let mut o = Overrides::new();
    o.insert("status".into(), (Box::new(user_status) as Formatter, false));
    o.insert(
        "summary".into(),
        (
            Box::new(|v: &Value| match v {
                Value::Array(a) => a.iter().map(py_str).collect::<Vec<_>>().join(","),
                other => py_str(other),
            }) as Formatter,
            false,
        ),
    );
    for f in ["opstart", "opexec", "opend"] {
        o.insert(
            f.into(),
            (
                Box::new(|v: &Value| {
                    let items: Vec<Value> = match v {
                        Value::Array(a) => a.iter().map(|t| json!(format_timestamp(t))).collect(),
                        _ => vec![],
                    };
                    py_str(&Value::Array(items))
                }) as Formatter,
                false,
            ),
        );
    }
    o
}

fn list(ctx: &mut Ctx, a: ListArgs) -> Result<i32, CliError> {
    let mut fields = parse_fields(a.list.output.as_deref(), LIST_DEF_FIELDS);
    if a.archived && !fields.iter().any(|f| f == "archived") {
        fields.push("archived".into());
    }
    let statuses: Option<Vec<&str>> = if a.pending {
        Some(JOBS_PENDING.to_vec())
    } else if a.running {
        Some(vec!["running"])
    } else if a.error {
        Some(vec!["error"])
    } else if a.finished {
        Some(JOBS_FINALIZED.to_vec())
    } else {
        None
    };
    let qfilter = statuses.and_then(|s| qlang::make_simple_filter("status", &s));
    generic_list(
        ctx,
        ListRequest {
            resource: "job",
            fields,
            names: &a.ids,
            opts: &ListOpts {
                units: None,
                ..a.list.clone()
            },
            overrides: job_overrides(),
            namefield: "id",
            qfilter,
            isnumeric: true,
        },
    )
}

fn parse_job_id(s: &str) -> Result<i64, CliError> {
    s.trim().parse().map_err(|_| {
        CliError::invalid(format!(
            "Invalid parameter passed as job id: expected integer, got value {s}"
        ))
    })
}

fn archive(ctx: &mut Ctx, ids: &[String]) -> Result<i32, CliError> {
    let mut rc = exit::SUCCESS;
    for id in ids {
        let n = parse_job_id(id)?;
        let res = ctx.call("ArchiveJob", json!([n]))?;
        if res != json!(true) {
            output::err(&format!("Failed to archive job with ID '{id}'"));
            rc = exit::FAILURE;
        }
    }
    Ok(rc)
}

/// Ganeti's `ParseTimespec`: seconds, or a number with s/m/h/d/w.
pub fn parse_timespec(value: &str) -> Result<i64, CliError> {
    if value.is_empty() {
        return Err(CliError::invalid("Empty time specification passed"));
    }
    let (num, mult) = match value.chars().last() {
        Some('s') => (&value[..value.len() - 1], 1),
        Some('m') => (&value[..value.len() - 1], 60),
        Some('h') => (&value[..value.len() - 1], 3600),
        Some('d') => (&value[..value.len() - 1], 86400),
        Some('w') => (&value[..value.len() - 1], 604_800),
        _ => (value, 1),
    };
    if num.is_empty() {
        return Err(CliError::invalid(
            "Invalid time specification (only suffix passed)",
        ));
    }
    num.parse::<i64>()
        .map(|n| n * mult)
        .map_err(|_| CliError::invalid(format!("Invalid time specification '{num}'")))
}

fn autoarchive(ctx: &mut Ctx, age: &str) -> Result<i32, CliError> {
    let age = if age == "all" {
        -1
    } else {
        parse_timespec(age)?
    };
    // Ganeti's client passes half its read timeout minus one as the
    // server-side time limit: (180 - 1) / 2.
    let res = ctx.call("AutoArchiveJobs", json!([age, 89]))?;
    let Some([count, left]) = res.as_array().map(Vec::as_slice) else {
        return Err(CliError::bad_reply("AutoArchiveJobs", res.to_string()));
    };
    output::out(&format!(
        "Archived {} jobs, {} unchecked left",
        py_str(count),
        py_str(left)
    ));
    Ok(exit::SUCCESS)
}

/// Ganeti's `_MultiJobAction`: act on the given jobs or on those with a
/// status, asking first in the latter case.
fn multi_job_action(
    ctx: &mut Ctx,
    ids: &[String],
    filter: &StatusFilter,
    force: bool,
    question: &str,
    action: impl Fn(&mut Ctx, i64) -> Result<Value, CliError>,
) -> Result<i32, CliError> {
    let statuses = filter.statuses();
    if ids.is_empty() == statuses.is_none() {
        return Err(CliError::invalid(
            "Either a status filter or job ID(s) must be specified and never both",
        ));
    }
    let jobs: Vec<i64> = match statuses {
        Some(st) => {
            let resp = query(
                ctx,
                "job",
                &["id", "status", "summary"],
                qlang::make_simple_filter("status", &st),
            )?;
            let jobs: Vec<i64> = resp
                .data
                .iter()
                .filter_map(|row| row.first().and_then(|(_, v)| v.as_i64()))
                .collect();
            if jobs.is_empty() {
                return Err(CliError::prereq(
                    "No jobs with the requested status have been found",
                    luxi::ErrorCode::State,
                ));
            }
            if !force {
                let (_, lines) =
                    format_query_result(&resp, None, &job_overrides(), None, true, false);
                for l in lines {
                    output::out(&l);
                }
                if !ask_user(question) {
                    return Ok(exit::CONFIRMATION);
                }
            }
            jobs
        }
        None => ids
            .iter()
            .map(|s| parse_job_id(s))
            .collect::<Result<_, _>>()?,
    };
    let mut rc = exit::SUCCESS;
    for id in jobs {
        let res = action(ctx, id)?;
        let Some([ok, msg]) = res.as_array().map(Vec::as_slice) else {
            return Err(CliError::bad_reply("job action", res.to_string()));
        };
        if ok != &json!(true) {
            rc = exit::FAILURE;
        }
        output::out(&py_str(msg));
    }
    Ok(rc)
}

fn cancel(ctx: &mut Ctx, a: CancelArgs) -> Result<i32, CliError> {
    let name = if a.kill {
        if !a.yes_do_it {
            return Err(CliError::invalid(
                "The --kill option must be confirmed with --yes-do-it",
            ));
        }
        "KILL"
    } else {
        "Cancel"
    };
    let kill = a.kill;
    multi_job_action(
        ctx,
        &a.ids,
        &a.filter,
        a.force,
        &format!("{name} job(s) listed above?"),
        |ctx, id| ctx.call("CancelJob", json!([id, kill])),
    )
}

fn change_priority(ctx: &mut Ctx, a: ChangePriorityArgs) -> Result<i32, CliError> {
    let Some(prio) = a.priority.as_deref() else {
        output::err("--priority option must be given.");
        return Ok(exit::FAILURE);
    };
    let value = match prio {
        "low" => 10,
        "high" => -10,
        _ => 0,
    };
    multi_job_action(
        ctx,
        &a.ids,
        &a.filter,
        a.force,
        "Change priority of job(s) listed above?",
        |ctx, id| ctx.call("ChangeJobPriority", json!([id, value])),
    )
}

fn wait(ctx: &mut Ctx, id: &str, watch: bool) -> Result<i32, CliError> {
    if watch {
        let msg = format!("Output from job {id} follows");
        output::out(&msg);
        output::out(&"-".repeat(msg.chars().count()));
    }
    // The id goes to the master as typed, as Ganeti's client sends it.
    let result = if watch {
        poll_job(ctx, &json!(id), &mut StdioReporter::default())
    } else {
        poll_job(ctx, &json!(id), &mut SilentReporter)
    };
    match result {
        Ok(_) => Ok(exit::SUCCESS),
        Err(e @ (CliError::NoMaster | CliError::Protocol(_))) => Err(e),
        Err(e) => {
            let (code, text) = e.render();
            output::err(&format!("Job {id} failed: {text}"));
            Ok(code)
        }
    }
}

fn calc_delta(from: (i64, i64), to: (i64, i64)) -> f64 {
    (to.0 - from.0) as f64 + (to.1 - from.1) as f64 / 1_000_000.0
}

fn job_timestamp(
    entries: &mut Vec<(String, Info, Option<u32>)>,
    name: &str,
    ts: &Value,
    prior: Option<&Value>,
) {
    if ts.is_null() {
        entries.push((name.into(), Info::s("unknown (None)"), Some(1)));
        return;
    }
    let mut text = format_timestamp(ts);
    if let (Some(p), Some(t)) = (prior.and_then(timestamp_parts), timestamp_parts(ts)) {
        text.push_str(&format!(" (delta {:.6}s)", calc_delta(p, t)));
    }
    entries.push((name.into(), Info::s(text), Some(1)));
}

fn op_timestamp(entries: &mut Vec<(String, Info, Option<u32>)>, name: &str, ts: &Value) {
    let text = if ts.is_array() {
        format_timestamp(ts)
    } else {
        "N/A".into()
    };
    entries.push((name.into(), Info::s(text), Some(2)));
}

fn show(ctx: &mut Ctx, ids: &[String]) -> Result<i32, CliError> {
    const FIELDS: &[&str] = &[
        "id",
        "status",
        "ops",
        "opresult",
        "opstatus",
        "oplog",
        "opstart",
        "opexec",
        "opend",
        "received_ts",
        "start_ts",
        "end_ts",
    ];
    let nums: Vec<i64> = ids
        .iter()
        .map(|s| parse_job_id(s))
        .collect::<Result<_, _>>()?;
    let filter = if nums.is_empty() {
        None
    } else {
        let mut f = vec![json!(qlang::OP_OR)];
        f.extend(nums.iter().map(|n| json!([qlang::OP_EQUAL, "id", n])));
        Some(Value::Array(f))
    };
    let resp = query(ctx, "job", FIELDS, filter)?;
    let mut container = Vec::new();
    for row in &resp.data {
        let v = |i: usize| row.get(i).map(|(_, v)| v.clone()).unwrap_or(Value::Null);
        let (rs_status, _) = row.get(1).cloned().unwrap_or((1, Value::Null));
        if rs_status != 0 {
            container.push(Info::s(format!("Job ID {} not found", py_str(&v(0)))));
            continue;
        }
        let mut info: Vec<(String, Info, Option<u32>)> = vec![
            ("Job ID".into(), Info::py(&v(0)), None),
            ("Status".into(), Info::s(user_status(&v(1))), None),
        ];
        let (recv, start, end) = (v(9), v(10), v(11));
        job_timestamp(&mut info, "Received", &recv, None);
        job_timestamp(&mut info, "Processing start", &start, Some(&recv));
        job_timestamp(&mut info, "Processing end", &end, Some(&start));
        let total = match (timestamp_parts(&recv), timestamp_parts(&end)) {
            (Some(r), Some(e)) if !end.is_null() => format!("{:.6} seconds", calc_delta(r, e)),
            _ => "N/A".into(),
        };
        info.push(("Total processing time".into(), Info::s(total), None));
        let empty = Vec::new();
        let arr = |x: &Value| x.as_array().cloned().unwrap_or_else(|| empty.clone());
        let (ops, res, st, logs, s_ts, x_ts, e_ts) = (
            arr(&v(2)),
            arr(&v(3)),
            arr(&v(4)),
            arr(&v(5)),
            arr(&v(6)),
            arr(&v(7)),
            arr(&v(8)),
        );
        let n = [
            ops.len(),
            res.len(),
            st.len(),
            logs.len(),
            s_ts.len(),
            x_ts.len(),
            e_ts.len(),
        ]
        .into_iter()
        .min()
        .unwrap_or(0);
        let mut opcodes = Vec::new();
        for i in 0..n {
            let mut oi: Vec<(String, Info, Option<u32>)> = vec![
                (
                    "Opcode".into(),
                    Info::py(ops[i].get("OP_ID").unwrap_or(&Value::Null)),
                    None,
                ),
                ("Status".into(), Info::py(&st[i]), None),
            ];
            op_timestamp(&mut oi, "Processing start", &s_ts[i]);
            op_timestamp(&mut oi, "Execution start", &x_ts[i]);
            op_timestamp(&mut oi, "Processing end", &e_ts[i]);
            oi.push(("Input fields".into(), Info::from_json(&ops[i]), None));
            oi.push(("Result".into(), Info::from_json(&res[i]), None));
            let mut exec_logs = Vec::new();
            for entry in logs[i].as_array().cloned().unwrap_or_default() {
                if let Some([serial, ts, ltype, msg]) = entry.as_array().map(Vec::as_slice) {
                    let lt = ltype.as_str().unwrap_or("");
                    exec_logs.push(Info::ordered(vec![
                        ("Time", Info::s(format_timestamp(ts))),
                        (
                            "Content",
                            Info::Inline(vec![
                                py_str(serial),
                                py_str(ltype),
                                crate::jobs::format_log_message(lt, msg),
                            ]),
                        ),
                    ]));
                }
            }
            oi.push(("Execution log".into(), Info::List(exec_logs), None));
            opcodes.push(Info::Ordered(oi));
        }
        info.push(("Opcodes".into(), Info::List(opcodes), None));
        container.push(Info::Ordered(info));
    }
    output::out(&format_generic_info(&Info::List(container)));
    Ok(exit::SUCCESS)
}
