//! Tests of the job queue with a test executor whose opcodes wait on gates
//! the test opens.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use luxi::opcodes::Common;
use luxi::GanetiError;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::*;

mod control;
mod durability;
mod filters;
mod scheduling;

/// Opcodes:
/// - `OP_TEST_NOOP`: succeeds at once with `true`.
/// - `OP_TEST_FAIL`: fails with `OpExecError("boom")`.
/// - `OP_TEST_PANIC`: panics.
/// - `OP_TEST_LOGLIST`: logs a `message-list` of two lines, then a message.
/// - `OP_TEST_GATE {"gate"}`: running; logs "started"; succeeds with the gate
///   name once the test opens the gate.
/// - `OP_TEST_LOCKWAIT {"gate"}`: stays "waiting" until the gate opens (then
///   succeeds) or a cancel is asked for (then fails).
#[derive(Default)]
pub(crate) struct TestExec {
    gates: Mutex<Option<watch::Sender<HashSet<String>>>>,
    /// Job ids in the order their opcodes started.
    pub(crate) started: Mutex<Vec<JobId>>,
}

impl TestExec {
    fn gates(&self) -> watch::Sender<HashSet<String>> {
        self.gates
            .lock()
            .unwrap()
            .get_or_insert_with(|| watch::Sender::new(HashSet::new()))
            .clone()
    }

    pub(crate) fn open(&self, gate: &str) {
        self.gates().send_modify(|g| {
            g.insert(gate.to_string());
        });
    }

    fn started(&self) -> Vec<JobId> {
        self.started.lock().unwrap().clone()
    }
}

/// A parsed test opcode.
pub(crate) struct TestOp {
    id: String,
    gate: String,
    common: Common,
}

impl QueueOp for TestOp {
    fn common(&self) -> &Common {
        &self.common
    }

    fn summary(&self) -> String {
        let id = self.id.strip_prefix("OP_").unwrap_or(&self.id);
        if self.gate.is_empty() {
            id.to_string()
        } else {
            format!("{id}({})", self.gate)
        }
    }
}

impl OpExecutor for TestExec {
    type Op = TestOp;

    fn parse(&self, op: &Value) -> Result<TestOp, GanetiError> {
        let id = match op.get("OP_ID").and_then(Value::as_str) {
            Some(
                id @ ("OP_TEST_NOOP" | "OP_TEST_FAIL" | "OP_TEST_GATE" | "OP_TEST_LOCKWAIT"
                | "OP_TEST_PANIC" | "OP_TEST_LOGLIST"),
            ) => id.to_string(),
            other => {
                return Err(GanetiError::opcode_unknown(format!(
                    "Unknown opcode {}",
                    other.unwrap_or("(none)")
                )))
            }
        };
        let obj = op.as_object().expect("the queue hands over dicts only");
        Ok(TestOp {
            common: Common::from_dict(&id, obj)?,
            gate: op["gate"].as_str().unwrap_or_default().to_string(),
            id,
        })
    }

    fn execute(&self, ctx: OpContext, op: Arc<TestOp>) -> OpFuture {
        let mut gates = self.gates().subscribe();
        self.started.lock().unwrap().push(ctx.job_id());
        Box::pin(async move {
            let gate = op.gate.clone();
            match op.id.as_str() {
                "OP_TEST_NOOP" => {
                    ctx.set_running();
                    Ok(json!(true))
                }
                "OP_TEST_PANIC" => panic!("test executor panics on purpose"),
                "OP_TEST_LOGLIST" => {
                    ctx.set_running();
                    ctx.log("message-list", json!(["first", "second"]));
                    ctx.log("message", json!("third"));
                    Ok(json!(true))
                }
                "OP_TEST_FAIL" => {
                    ctx.set_running();
                    Err(GanetiError::exec("boom"))
                }
                "OP_TEST_GATE" => {
                    ctx.set_running();
                    ctx.log("message", json!("started"));
                    let _ = gates.wait_for(|g| g.contains(&gate)).await;
                    Ok(json!(gate))
                }
                "OP_TEST_LOCKWAIT" => loop {
                    if ctx.is_canceled() {
                        return Err(GanetiError::exec("canceled while waiting for locks"));
                    }
                    if gates.borrow_and_update().contains(&gate) {
                        ctx.set_running();
                        return Ok(json!(gate));
                    }
                    // Wake on a gate change or, to see a cancel, shortly.
                    let _ = tokio::time::timeout(Duration::from_millis(2), gates.changed()).await;
                },
                other => Err(GanetiError::exec(format!("unexpected opcode {other}"))),
            }
        })
    }
}

fn noop() -> Value {
    json!({"OP_ID": "OP_TEST_NOOP"})
}

fn fail() -> Value {
    json!({"OP_ID": "OP_TEST_FAIL"})
}

fn gate(name: &str) -> Value {
    json!({"OP_ID": "OP_TEST_GATE", "gate": name})
}

fn fields(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    exec: Arc<TestExec>,
    queue: Arc<JobQueue>,
}

fn fixture_with(opts: QueueOptions) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let exec = Arc::new(TestExec::default());
    let queue = JobQueue::open(&path, opts, exec.clone()).unwrap();
    queue.start();
    Fixture {
        _dir: dir,
        path,
        exec,
        queue,
    }
}

fn fixture() -> Fixture {
    fixture_with(QueueOptions::default())
}

fn field(q: &JobQueue, id: JobId, name: &str) -> Value {
    q.job_field(id, name).unwrap_or(Value::Null)
}

/// Waits (via WaitForJobChange) until `pred` holds for the job's status.
async fn wait_status(q: &JobQueue, id: JobId, pred: impl Fn(&str) -> bool) -> String {
    let f = fields(&["status"]);
    let mut prev = Value::Null;
    let mut serial = Value::Null;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = field(q, id, "status");
        if let Some(s) = status.as_str() {
            if pred(s) {
                return s.to_string();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} stuck in {status}"
        );
        let r = q
            .wait_for_job_change(id, &f, prev.clone(), serial.clone(), Duration::from_secs(5))
            .await
            .unwrap();
        if r != json!("nochange") {
            prev = r[0].clone();
            if let Some(last) = r[1].as_array().and_then(|l| l.last()) {
                serial = last[0].clone();
            }
        }
    }
}

async fn wait_final(q: &JobQueue, id: JobId) -> String {
    wait_status(q, id, |s| matches!(s, "success" | "error" | "canceled")).await
}

/// Waits until `cond` holds, re-checking whenever the executor starts an
/// opcode or a job changes; fails after a generous limit.
async fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
