//! The job model: a job, its opcodes, their statuses and log, and how a job
//! is shown through the job fields of `QueryJobs` and `Query("job")`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use luxi::opcodes::{FinalStatus, PRIORITY_DEFAULT};

use super::JobId;

/// The result recorded for opcodes of a job canceled by a user.
pub const CANCELED_RESULT: &str = "Job canceled by request";
/// The error recorded for opcodes following a failed one.
pub const PRECEDING_FAILED: &str = "Preceding opcode failed";
/// The error recorded for jobs found unfinished when the queue is opened.
pub const INTERRUPTED_MSG: &str =
    "Job was running when the master daemon stopped; its outcome is unknown";

/// A point in time as Ganeti shows it: seconds and microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timestamp(pub i64, pub i64);

impl Timestamp {
    pub fn now() -> Timestamp {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_secs() as i64, i64::from(d.subsec_micros()))
    }

    pub fn to_value(self) -> Value {
        json!([self.0, self.1])
    }
}

fn ts_value(ts: Option<Timestamp>) -> Value {
    ts.map_or(Value::Null, Timestamp::to_value)
}

/// The status of one opcode (Ganeti's `OP_STATUS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpStatus {
    Queued,
    Waiting,
    Running,
    Canceling,
    Canceled,
    Success,
    Error,
}

impl OpStatus {
    pub fn is_finalized(self) -> bool {
        matches!(
            self,
            OpStatus::Canceled | OpStatus::Success | OpStatus::Error
        )
    }
}

/// The status of a job (Ganeti's `JOB_STATUS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Waiting,
    Running,
    Canceling,
    Canceled,
    Success,
    Error,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Waiting => "waiting",
            JobStatus::Running => "running",
            JobStatus::Canceling => "canceling",
            JobStatus::Canceled => "canceled",
            JobStatus::Success => "success",
            JobStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "waiting" => JobStatus::Waiting,
            "running" => JobStatus::Running,
            "canceling" => JobStatus::Canceling,
            "canceled" => JobStatus::Canceled,
            "success" => JobStatus::Success,
            "error" => JobStatus::Error,
            _ => return None,
        })
    }

    pub fn is_finalized(self) -> bool {
        matches!(
            self,
            JobStatus::Canceled | JobStatus::Success | JobStatus::Error
        )
    }
}

/// One job log entry: `[serial, [sec, usec], type, message]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub serial: u64,
    pub ts: Timestamp,
    pub kind: String,
    pub msg: Value,
}

impl LogEntry {
    pub fn to_value(&self) -> Value {
        json!([self.serial, self.ts.to_value(), self.kind, self.msg])
    }
}

/// A dependency of an opcode on another job: the job must end in one of
/// `statuses` (any final status when empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    pub job: JobId,
    pub statuses: Vec<JobStatus>,
}

/// One opcode of a job and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuedOp {
    pub input: Value,
    pub summary: String,
    pub status: OpStatus,
    pub result: Value,
    pub log: Vec<LogEntry>,
    pub start: Option<Timestamp>,
    pub exec: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub priority: i32,
    pub depends: Vec<Dependency>,
}

impl QueuedOp {
    pub fn new(input: Value, summary: String, priority: i32, depends: Vec<Dependency>) -> Self {
        QueuedOp {
            input,
            summary,
            status: OpStatus::Queued,
            result: Value::Null,
            log: Vec::new(),
            start: None,
            exec: None,
            end: None,
            priority,
            depends,
        }
    }
}

/// A job: a list of opcodes run in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub ops: Vec<QueuedOp>,
    pub received: Timestamp,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    #[serde(default)]
    pub archived: bool,
}

impl Job {
    /// The job status derived from its opcodes, as Ganeti computes it.
    pub fn status(&self) -> JobStatus {
        let mut status = JobStatus::Queued;
        let mut all_success = true;
        for op in &self.ops {
            match op.status {
                OpStatus::Success => continue,
                OpStatus::Queued => {}
                OpStatus::Waiting => status = JobStatus::Waiting,
                OpStatus::Running => status = JobStatus::Running,
                OpStatus::Canceling => {
                    all_success = false;
                    status = JobStatus::Canceling;
                    break;
                }
                OpStatus::Error => {
                    all_success = false;
                    status = JobStatus::Error;
                    break;
                }
                OpStatus::Canceled => {
                    all_success = false;
                    status = JobStatus::Canceled;
                    break;
                }
            }
            all_success = false;
        }
        if all_success {
            JobStatus::Success
        } else {
            status
        }
    }

    /// The job priority: the best priority of its unfinished opcodes.
    pub fn priority(&self) -> i32 {
        self.ops
            .iter()
            .filter(|op| !op.status.is_finalized())
            .map(|op| op.priority)
            .min()
            .unwrap_or(PRIORITY_DEFAULT)
    }

    pub fn is_finalized(&self) -> bool {
        self.status().is_finalized()
    }

    /// The highest log serial of the job (0 when it has no log).
    pub fn log_serial(&self) -> u64 {
        self.ops
            .iter()
            .flat_map(|op| op.log.last())
            .map(|e| e.serial)
            .max()
            .unwrap_or(0)
    }

    /// All job ids this job's opcodes depend on.
    pub fn dependencies(&self) -> impl Iterator<Item = JobId> + '_ {
        self.ops
            .iter()
            .flat_map(|op| op.depends.iter().map(|d| d.job))
    }

    /// Sets every unfinished opcode to `status` with `result`.
    pub fn mark_unfinished(&mut self, status: OpStatus, result: Value, now: Timestamp) {
        for op in self.ops.iter_mut().filter(|op| !op.status.is_finalized()) {
            op.status = status;
            op.result = result.clone();
            if status.is_finalized() {
                op.end = Some(now);
            }
        }
    }

    /// Log entries with a serial above `newer_than` (all when `None`).
    pub fn log_entries(&self, newer_than: Option<u64>) -> Vec<Value> {
        self.ops
            .iter()
            .flat_map(|op| op.log.iter())
            .filter(|e| newer_than.is_none_or(|n| e.serial > n))
            .map(LogEntry::to_value)
            .collect()
    }

    /// The value of one job field, or `None` for an unknown field name.
    pub fn field(&self, name: &str) -> Option<Value> {
        let per_op = |f: &dyn Fn(&QueuedOp) -> Value| -> Value {
            Value::Array(self.ops.iter().map(f).collect())
        };
        Some(match name {
            "id" => json!(self.id),
            "status" => json!(self.status().as_str()),
            "priority" => json!(self.priority()),
            "ops" => per_op(&|op| op.input.clone()),
            "opresult" => per_op(&|op| op.result.clone()),
            "opstatus" => per_op(&|op| json!(op.status)),
            "oplog" => per_op(&|op| Value::Array(op.log.iter().map(LogEntry::to_value).collect())),
            "opstart" => per_op(&|op| ts_value(op.start)),
            "opexec" => per_op(&|op| ts_value(op.exec)),
            "opend" => per_op(&|op| ts_value(op.end)),
            "oppriority" => per_op(&|op| json!(op.priority)),
            "summary" => per_op(&|op| json!(op.summary)),
            "received_ts" => self.received.to_value(),
            "start_ts" => ts_value(self.start),
            "end_ts" => ts_value(self.end),
            "archived" => json!(self.archived),
            _ => return None,
        })
    }
}

/// The field names a job has.
pub const JOB_FIELDS: &[&str] = &[
    "id",
    "status",
    "priority",
    "ops",
    "opresult",
    "opstatus",
    "oplog",
    "opstart",
    "opexec",
    "opend",
    "oppriority",
    "summary",
    "received_ts",
    "start_ts",
    "end_ts",
    "archived",
];

/// Resolves an opcode's `depends` against `own_id`, as Ganeti does:
/// relative (negative) ids count back from the job's own id, so `-1` is the
/// job submitted just before.
pub fn resolve_depends(
    deps: &[luxi::opcodes::Dependency],
    own_id: JobId,
) -> Result<Vec<Dependency>, String> {
    deps.iter()
        .map(|luxi::opcodes::Dependency(job, statuses)| {
            let job = if job.0 < 0 {
                let abs = own_id as i64 + job.0;
                if abs < 0 {
                    return Err(format!("Unable to resolve relative job ID {}", job.0));
                }
                abs as JobId
            } else {
                job.0 as JobId
            };
            let statuses = statuses
                .iter()
                .map(|s| match s {
                    FinalStatus::Success => JobStatus::Success,
                    FinalStatus::Error => JobStatus::Error,
                    FinalStatus::Canceled => JobStatus::Canceled,
                })
                .collect();
            Ok(Dependency { job, statuses })
        })
        .collect()
}

/// Resolved dependencies as the opcode's `depends` field shows them.
pub fn depends_value(deps: &[Dependency]) -> Value {
    Value::Array(
        deps.iter()
            .map(|d| {
                json!([
                    d.job,
                    d.statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>()
                ])
            })
            .collect(),
    )
}
