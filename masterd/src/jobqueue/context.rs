//! The handle a running opcode gets: its job log, its waiting/running status
//! and whether a cancel was asked for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

use super::job::{LogEntry, OpStatus, Timestamp};
use super::{JobId, JobQueue};

/// Given to each running opcode (cheap to clone, `Send + Sync`).
#[derive(Clone)]
pub struct OpContext {
    pub(crate) queue: Arc<JobQueue>,
    pub(crate) job_id: JobId,
    pub(crate) op_index: usize,
    pub(crate) cancel: Arc<AtomicBool>,
}

impl std::fmt::Debug for OpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpContext")
            .field("job_id", &self.job_id)
            .field("op_index", &self.op_index)
            .finish()
    }
}

impl OpContext {
    pub fn job_id(&self) -> JobId {
        self.job_id
    }

    /// The index of the opcode within its job.
    pub fn op_index(&self) -> usize {
        self.op_index
    }

    /// The opcode's current priority (it may change while it waits for locks).
    pub fn priority(&self) -> i32 {
        self.queue
            .with_op(self.job_id, self.op_index, |_, op| op.priority)
            .unwrap_or(luxi::opcodes::PRIORITY_DEFAULT)
    }

    /// The opcode's input, as submitted (and filled in since).
    pub fn input(&self) -> Option<Value> {
        self.queue
            .with_op(self.job_id, self.op_index, |_, op| op.input.clone())
    }

    /// Sets fields of the opcode's input as the logical unit resolved them
    /// (Ganeti's units write back into their opcode, e.g. the UUID of the
    /// instance a name stands for, and `gnt-job info` shows the result).
    /// Only fields the input already has, unset (`null`), are written.
    pub fn fill_input(&self, fields: Vec<(&'static str, Value)>) {
        if fields.is_empty() {
            return;
        }
        self.queue
            .update_op(self.job_id, self.op_index, |entry, idx| {
                let Some(input) = entry.job.ops[idx].input.as_object_mut() else {
                    return false;
                };
                let mut changed = false;
                for (k, v) in fields {
                    if let Some(slot) = input.get_mut(k).filter(|s| s.is_null()) {
                        *slot = v;
                        changed = true;
                    }
                }
                changed
            });
    }

    /// Appends a message to the job log (`msg_type` such as `"message"`) and
    /// wakes the clients waiting for changes of the job. A
    /// `"message-list"` becomes one `"message"` entry per item, in one
    /// update (as Ganeti's job queue does).
    pub fn log(&self, msg_type: &str, msg: Value) {
        let (kind, msgs) = match (msg_type, msg) {
            ("message-list", Value::Array(items)) => ("message", items),
            (_, msg) => (msg_type, vec![msg]),
        };
        self.queue
            .update_op(self.job_id, self.op_index, |entry, idx| {
                let ts = Timestamp::now();
                for msg in msgs {
                    entry.log_serial += 1;
                    let serial = entry.log_serial;
                    entry.job.ops[idx].log.push(LogEntry {
                        serial,
                        ts,
                        kind: kind.to_string(),
                        msg,
                    });
                }
                true
            });
    }

    /// Marks the opcode as waiting (for locks); the job shows "waiting".
    pub fn set_waiting(&self) {
        self.queue
            .update_op(self.job_id, self.op_index, |entry, idx| {
                let op = &mut entry.job.ops[idx];
                if op.status == OpStatus::Running {
                    op.status = OpStatus::Waiting;
                    true
                } else {
                    false
                }
            });
    }

    /// Marks the opcode as running (its locks are held) and records the
    /// `opexec` timestamp. Has no effect once a cancel was asked for.
    pub fn set_running(&self) {
        self.queue
            .update_op(self.job_id, self.op_index, |entry, idx| {
                let op = &mut entry.job.ops[idx];
                if op.status == OpStatus::Waiting {
                    op.status = OpStatus::Running;
                    op.exec = Some(Timestamp::now());
                    true
                } else {
                    false
                }
            });
    }

    /// Whether a cancel was asked for while the opcode waited for locks: the
    /// logical unit should stop and return an error.
    pub fn is_canceled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }
}
