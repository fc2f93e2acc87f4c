//! The `job` query resource.

use luxi::query::{Cell, DataNeeds, FieldDef, FieldFlags, FieldKind, FieldRegistry};

use crate::jobqueue::{JobId, JobQueue};

/// One job.
pub struct JobRow<'a> {
    pub id: JobId,
    pub queue: &'a JobQueue,
}

fn field<'a>(name: &'static str) -> impl Fn(&JobRow<'a>) -> Cell + Send + Sync + 'static {
    move |r: &JobRow<'a>| {
        r.queue
            .job_field(r.id, name)
            .map_or_else(Cell::unavail, Cell::normal)
    }
}

/// The job fields.
pub fn registry<'a>() -> FieldRegistry<JobRow<'a>> {
    use FieldKind::*;
    let c = DataNeeds::CONFIG;
    let mut r: FieldRegistry<JobRow<'a>> = FieldRegistry::new();
    r.add(FieldDef::new("id", "ID", Number, "Job ID"), c, |r| {
        Cell::normal(r.id)
    });
    for (name, title, kind, doc) in [
        ("status", "Status", Text, "Job status"),
        ("priority", "Priority", Number, "Current job priority"),
        ("ops", "OpCodes", Other, "List of all opcodes"),
        (
            "opresult",
            "OpCode_result",
            Other,
            "List of opcodes results",
        ),
        ("opstatus", "OpCode_status", Other, "List of opcodes status"),
        ("oplog", "OpCode_log", Other, "List of opcode output logs"),
        (
            "opstart",
            "OpCode_start",
            Other,
            "List of opcode start timestamps (before acquiring locks)",
        ),
        (
            "opexec",
            "OpCode_exec",
            Other,
            "List of opcode execution start timestamps (after acquiring locks)",
        ),
        (
            "opend",
            "OpCode_end",
            Other,
            "List of opcode execution end timestamps",
        ),
        (
            "oppriority",
            "OpCode_prio",
            Other,
            "List of opcode priorities",
        ),
        ("summary", "Summary", Other, "List of per-opcode summaries"),
        (
            "received_ts",
            "Received",
            Other,
            "Timestamp of when job was received",
        ),
        ("start_ts", "Start", Other, "Timestamp of job start"),
        ("end_ts", "End", Other, "Timestamp of job end"),
        ("archived", "Archived", Bool, "Whether job is archived"),
    ] {
        let flags = if name.ends_with("_ts") {
            FieldFlags::Timestamp
        } else {
            FieldFlags::Normal
        };
        r.add_flagged(FieldDef::new(name, title, kind, doc), c, flags, field(name));
    }
    r
}
