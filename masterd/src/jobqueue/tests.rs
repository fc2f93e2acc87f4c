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

/// Opcodes:
/// - `OP_TEST_NOOP`: succeeds at once with `true`.
/// - `OP_TEST_FAIL`: fails with `OpExecError("boom")`.
/// - `OP_TEST_PANIC`: panics.
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
                | "OP_TEST_PANIC"),
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

#[tokio::test]
async fn submitted_job_runs_to_success_with_all_fields() {
    let fx = fixture();
    let q = &fx.queue;
    let id = q.submit(vec![noop(), noop()]).await.unwrap();
    assert_eq!(id, 1);
    assert_eq!(wait_final(q, id).await, "success");
    let all = fields(job::JOB_FIELDS);
    let row = q
        .query_jobs(Some(&[id]), &all)
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    let get = |name: &str| row[all.iter().position(|f| f == name).unwrap()].clone();
    assert_eq!(get("id"), json!(1));
    assert_eq!(get("opstatus"), json!(["success", "success"]));
    assert_eq!(get("opresult"), json!([true, true]));
    assert_eq!(get("summary"), json!(["TEST_NOOP", "TEST_NOOP"]));
    assert_eq!(get("oppriority"), json!([0, 0]));
    assert_eq!(get("priority"), json!(0));
    assert_eq!(get("archived"), json!(false));
    for ts in ["received_ts", "start_ts", "end_ts"] {
        assert_eq!(get(ts).as_array().map(Vec::len), Some(2), "{ts}");
    }
    for ts in ["opstart", "opexec", "opend"] {
        assert!(
            get(ts).as_array().unwrap().iter().all(|t| t.is_array()),
            "{ts}"
        );
    }
    assert_eq!(get("ops")[0]["OP_ID"], json!("OP_TEST_NOOP"));
}

#[tokio::test]
async fn failed_opcode_fails_the_following_ones() {
    let fx = fixture();
    let q = &fx.queue;
    let id = q.submit(vec![noop(), fail(), noop()]).await.unwrap();
    assert_eq!(wait_final(q, id).await, "error");
    assert_eq!(
        field(q, id, "opstatus"),
        json!(["success", "error", "error"])
    );
    assert_eq!(
        field(q, id, "opresult"),
        json!([
            true,
            ["OpExecError", ["boom"]],
            ["OpExecError", ["Preceding opcode failed"]]
        ])
    );
}

#[tokio::test]
async fn invalid_opcode_refuses_the_job() {
    let fx = fixture();
    let q = &fx.queue;
    let err = q
        .submit(vec![noop(), json!({"OP_ID": "OP_NOPE"})])
        .await
        .unwrap_err();
    assert_eq!(err.class, "OpCodeUnknown");
    let err = q
        .submit(vec![json!({"OP_ID": "OP_TEST_NOOP", "priority": 99})])
        .await
        .unwrap_err();
    assert_eq!(err.class, "OpPrereqError");
    assert!(q.submit(vec![]).await.is_err());
    assert!(q.job_ids(true).is_empty());
}

#[tokio::test]
async fn best_priority_runs_first_then_lowest_id() {
    let fx = fixture_with(QueueOptions {
        max_running_jobs: 1,
        ..QueueOptions::default()
    });
    let q = &fx.queue;
    let blocker = q.submit(vec![gate("block")]).await.unwrap();
    wait_status(q, blocker, |s| s == "running").await;
    let low = q
        .submit(vec![json!({"OP_ID": "OP_TEST_NOOP", "priority": 10})])
        .await
        .unwrap();
    let normal_a = q.submit(vec![noop()]).await.unwrap();
    let high = q
        .submit(vec![json!({"OP_ID": "OP_TEST_NOOP", "priority": -10})])
        .await
        .unwrap();
    let normal_b = q.submit(vec![noop()]).await.unwrap();
    fx.exec.open("block");
    for id in [low, normal_a, high, normal_b] {
        assert_eq!(wait_final(q, id).await, "success");
    }
    assert_eq!(
        fx.exec.started(),
        vec![blocker, high, normal_a, normal_b, low]
    );
}

#[tokio::test]
async fn change_priority_reorders_queued_jobs() {
    let fx = fixture_with(QueueOptions {
        max_running_jobs: 1,
        ..QueueOptions::default()
    });
    let q = &fx.queue;
    let blocker = q.submit(vec![gate("block")]).await.unwrap();
    wait_status(q, blocker, |s| s == "running").await;
    let a = q.submit(vec![noop()]).await.unwrap();
    let b = q.submit(vec![noop()]).await.unwrap();
    let (ok, msg) = q.change_priority(b, -5).await.unwrap();
    assert!(ok, "{msg}");
    assert_eq!(field(q, b, "priority"), json!(-5));
    let (ok, _) = q.change_priority(blocker, 3).await.unwrap();
    assert!(!ok, "a running opcode's priority does not change");
    fx.exec.open("block");
    wait_final(q, a).await;
    wait_final(q, b).await;
    assert_eq!(fx.exec.started(), vec![blocker, b, a]);
    let (ok, msg) = q.change_priority(a, 1).await.unwrap();
    assert!(!ok);
    assert_eq!(msg, format!("Job {a} is finished"));
}

#[tokio::test]
async fn max_running_jobs_is_respected() {
    let fx = fixture_with(QueueOptions {
        max_running_jobs: 3,
        ..QueueOptions::default()
    });
    let q = &fx.queue;
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(q.submit(vec![gate("go")]).await.unwrap());
    }
    wait_until(|| fx.exec.started().len() == 3).await;
    assert_eq!(q.running_jobs(), 3);
    let queued: Vec<_> = ids
        .iter()
        .filter(|&&id| field(q, id, "status") == json!("queued"))
        .collect();
    assert_eq!(queued.len(), 5);
    fx.exec.open("go");
    for id in ids {
        assert_eq!(wait_final(q, id).await, "success");
    }
    assert_eq!(fx.exec.started().len(), 8);
}

#[tokio::test]
async fn dependent_job_waits_queued_and_runs_after_success() {
    let fx = fixture();
    let q = &fx.queue;
    let first = q.submit(vec![gate("first")]).await.unwrap();
    let dep = q
        .submit(vec![
            json!({"OP_ID": "OP_TEST_NOOP", "depends": [[first, ["success"]]]}),
        ])
        .await
        .unwrap();
    wait_status(q, first, |s| s == "running").await;
    // As in Ganeti 3.0, the dependent job stays queued (not started).
    assert_eq!(field(q, dep, "status"), json!("queued"));
    assert_eq!(fx.exec.started(), vec![first]);
    fx.exec.open("first");
    assert_eq!(wait_final(q, dep).await, "success");
    assert_eq!(fx.exec.started(), vec![first, dep]);
}

#[tokio::test]
async fn dependency_in_wrong_status_fails_the_job() {
    let fx = fixture();
    let q = &fx.queue;
    let first = q.submit(vec![fail()]).await.unwrap();
    let dep = q
        .submit(vec![
            json!({"OP_ID": "OP_TEST_NOOP", "depends": [[first, ["success"]]]}),
            noop(),
        ])
        .await
        .unwrap();
    assert_eq!(wait_final(q, dep).await, "error");
    assert_eq!(
        field(q, dep, "opresult"),
        json!([
            ["OpExecError", [format!("Dependency job {first} finished with status 'error', not one of 'success' as required")]],
            ["OpExecError", ["Preceding opcode failed"]]
        ])
    );
    // An empty status list accepts any final status.
    let any = q
        .submit(vec![
            json!({"OP_ID": "OP_TEST_NOOP", "depends": [[first, []]]}),
        ])
        .await
        .unwrap();
    assert_eq!(wait_final(q, any).await, "success");
    // An unknown job is an error.
    let lost = q
        .submit(vec![
            json!({"OP_ID": "OP_TEST_NOOP", "depends": [[9999, []]]}),
        ])
        .await
        .unwrap();
    assert_eq!(wait_final(q, lost).await, "error");
    assert_eq!(
        field(q, lost, "opresult")[0],
        json!(["OpExecError", ["Dependency error: Job 9999 not found"]])
    );
}

#[tokio::test]
async fn relative_dependencies_resolve_within_submit_many() {
    let fx = fixture();
    let q = &fx.queue;
    let res = q
        .submit_many(vec![
            vec![gate("a")],
            vec![json!({"OP_ID": "OP_TEST_NOOP", "depends": [[-1, ["success"]]]})],
            vec![json!({"OP_ID": "OP_TEST_NOOP", "depends": [[-2, []], [-1, ["success"]]]})],
        ])
        .await;
    let ids: Vec<JobId> = res.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        field(q, ids[1], "ops")[0]["depends"],
        json!([[ids[0], ["success"]]])
    );
    assert_eq!(
        field(q, ids[2], "ops")[0]["depends"],
        json!([[ids[0], []], [ids[1], ["success"]]])
    );
    wait_status(q, ids[0], |s| s == "running").await;
    assert_eq!(field(q, ids[2], "status"), json!("queued"));
    fx.exec.open("a");
    assert_eq!(wait_final(q, ids[2]).await, "success");
    assert_eq!(fx.exec.started(), ids);
}

#[tokio::test]
async fn canceled_dependency_cancels_the_dependent_job() {
    let fx = fixture_with(QueueOptions {
        max_running_jobs: 1,
        ..QueueOptions::default()
    });
    let q = &fx.queue;
    let _blocker = q.submit(vec![gate("block")]).await.unwrap();
    let victim = q.submit(vec![noop()]).await.unwrap();
    let dep = q
        .submit(vec![
            json!({"OP_ID": "OP_TEST_NOOP", "depends": [[victim, ["success", "error"]]]}),
        ])
        .await
        .unwrap();
    assert!(q.cancel(victim, false).await.unwrap().0);
    fx.exec.open("block");
    assert_eq!(wait_final(q, dep).await, "canceled");
}

#[tokio::test]
async fn cancel_queued_job() {
    let fx = fixture_with(QueueOptions {
        max_running_jobs: 1,
        ..QueueOptions::default()
    });
    let q = &fx.queue;
    let blocker = q.submit(vec![gate("block")]).await.unwrap();
    let queued = q.submit(vec![noop(), noop()]).await.unwrap();
    let (ok, msg) = q.cancel(queued, false).await.unwrap();
    assert!(ok);
    assert_eq!(msg, format!("Job {queued} canceled"));
    assert_eq!(field(q, queued, "status"), json!("canceled"));
    assert_eq!(
        field(q, queued, "opstatus"),
        json!(["canceled", "canceled"])
    );
    // A running job cannot be canceled.
    wait_status(q, blocker, |s| s == "running").await;
    let (ok, msg) = q.cancel(blocker, false).await.unwrap();
    assert!(!ok);
    assert_eq!(
        msg,
        format!("Job {blocker} is no longer waiting in the queue")
    );
    fx.exec.open("block");
    assert_eq!(wait_final(q, blocker).await, "success");
    assert_eq!(
        fx.exec.started(),
        vec![blocker],
        "the canceled job never ran"
    );
    let (ok, msg) = q.cancel(777, false).await.unwrap();
    assert!(!ok);
    assert_eq!(msg, "Job 777 not found");
}

#[tokio::test]
async fn cancel_job_waiting_for_locks() {
    let fx = fixture();
    let q = &fx.queue;
    let id = q
        .submit(vec![
            json!({"OP_ID": "OP_TEST_LOCKWAIT", "gate": "never"}),
            noop(),
        ])
        .await
        .unwrap();
    wait_until(|| fx.exec.started() == vec![id]).await;
    assert_eq!(field(q, id, "status"), json!("waiting"));
    let (ok, msg) = q.cancel(id, false).await.unwrap();
    assert!(ok);
    assert_eq!(msg, format!("Job {id} will be canceled"));
    assert_eq!(wait_final(q, id).await, "canceled");
    assert_eq!(field(q, id, "opstatus"), json!(["canceled", "canceled"]));
    assert_eq!(
        field(q, id, "opresult"),
        json!(["Job canceled by request", "Job canceled by request"])
    );
}

#[tokio::test]
async fn drain_flag_refuses_submits_and_persists() {
    let fx = fixture();
    fx.queue.set_drain_flag(true).unwrap();
    assert!(fx.queue.drained());
    let err = fx.queue.submit(vec![noop()]).await.unwrap_err();
    assert_eq!(err.class, "JobQueueDrainError");
    let reopened = JobQueue::open(&fx.path, QueueOptions::default(), fx.exec.clone()).unwrap();
    assert!(reopened.drained());
    reopened.set_drain_flag(false).unwrap();
    let again = JobQueue::open(&fx.path, QueueOptions::default(), fx.exec.clone()).unwrap();
    assert!(!again.drained());
}

#[tokio::test]
async fn full_queue_refuses_submits() {
    let fx = fixture_with(QueueOptions {
        max_running_jobs: 1,
        max_queued_jobs: 2,
    });
    let q = &fx.queue;
    q.submit(vec![gate("g")]).await.unwrap();
    q.submit(vec![gate("g")]).await.unwrap();
    let err = q.submit(vec![noop()]).await.unwrap_err();
    assert_eq!(err.class, "JobQueueFull");
}

#[tokio::test]
async fn archive_and_autoarchive() {
    let fx = fixture();
    let q = &fx.queue;
    let a = q.submit(vec![noop()]).await.unwrap();
    let b = q.submit(vec![noop()]).await.unwrap();
    let running = q.submit(vec![gate("hold")]).await.unwrap();
    wait_final(q, a).await;
    wait_final(q, b).await;
    wait_status(q, running, |s| s == "running").await;
    assert!(!q.archive(running).await.unwrap(), "unfinished jobs stay");
    assert!(q.archive(a).await.unwrap());
    assert!(!q.archive(a).await.unwrap(), "already archived");
    assert_eq!(q.job_ids(false), vec![b, running]);
    assert_eq!(q.job_ids(true), vec![a, b, running]);
    assert_eq!(
        q.query_jobs(None, &fields(&["id"])).unwrap(),
        vec![Some(vec![json!(b)]), Some(vec![json!(running)])]
    );
    // Archived jobs stay retrievable by id.
    assert_eq!(field(q, a, "archived"), json!(true));
    assert_eq!(field(q, a, "status"), json!("success"));
    let lost = q
        .wait_for_job_change(
            a,
            &fields(&["status"]),
            Value::Null,
            Value::Null,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert_eq!(lost.class, "JobLost");
    // Young jobs are kept by an age limit; a negative age takes all finished.
    assert_eq!(q.auto_archive(3600, 60).await.unwrap(), (0, 0));
    assert_eq!(q.auto_archive(-1, 60).await.unwrap(), (1, 0));
    assert_eq!(q.job_ids(false), vec![running]);
    fx.exec.open("hold");
    wait_final(q, running).await;
}

#[tokio::test]
async fn wait_for_job_change_wakes_on_log_and_status_and_times_out() {
    let fx = fixture();
    let q = &fx.queue;
    let id = q.submit(vec![gate("g")]).await.unwrap();
    let f = fields(&["status"]);
    wait_status(q, id, |s| s == "running").await;
    // The log entry "started" is newer than serial 0 (none seen).
    let r = q
        .wait_for_job_change(
            id,
            &f,
            json!(["running"]),
            Value::Null,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(r[0], json!(["running"]));
    let logs = r[1].as_array().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0][0], json!(1));
    assert_eq!(logs[0][2], json!("message"));
    assert_eq!(logs[0][3], json!("started"));
    // Nothing new: "nochange" after the timeout.
    let r = q
        .wait_for_job_change(
            id,
            &f,
            json!(["running"]),
            json!(1),
            Duration::from_millis(50),
        )
        .await
        .unwrap();
    assert_eq!(r, json!("nochange"));
    // A waiter is woken by the status change.
    let waiter = {
        let q = Arc::clone(q);
        let f = f.clone();
        tokio::spawn(async move {
            q.wait_for_job_change(
                id,
                &f,
                json!(["running"]),
                json!(1),
                Duration::from_secs(20),
            )
            .await
        })
    };
    fx.exec.open("g");
    let r = waiter.await.unwrap().unwrap();
    assert_eq!(r, json!([["success"], []]));
    // A finished job answers at once.
    let r = q
        .wait_for_job_change(
            id,
            &f,
            json!(["success"]),
            json!(1),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(r, json!([["success"], []]));
    let err = q
        .wait_for_job_change(4242, &f, Value::Null, Value::Null, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(err.class, "JobLost");
}

#[tokio::test]
async fn wait_for_job_change_wakes_on_log_message() {
    let fx = fixture();
    let q = &fx.queue;
    let id = q.submit(vec![gate("g")]).await.unwrap();
    let f = fields(&["status"]);
    let waiter = {
        let q = Arc::clone(q);
        let f = f.clone();
        tokio::spawn(async move {
            // Follow the status so that only a log entry ends the loop.
            let mut prev = Value::Null;
            loop {
                let r = q
                    .wait_for_job_change(id, &f, prev, Value::Null, Duration::from_secs(20))
                    .await
                    .unwrap();
                if !r[1].as_array().is_some_and(Vec::is_empty) || r == json!("nochange") {
                    return r;
                }
                prev = r[0].clone();
            }
        })
    };
    let r = waiter.await.unwrap();
    assert_eq!(r[1][0][3], json!("started"));
    fx.exec.open("g");
    wait_final(q, id).await;
}

#[test]
fn reopen_after_crash_fails_running_jobs_and_reruns_queued_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let exec = Arc::new(TestExec::default());
    let (running, queued, done) = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let q = JobQueue::open(
            &path,
            QueueOptions {
                max_running_jobs: 1,
                ..QueueOptions::default()
            },
            exec.clone(),
        )
        .unwrap();
        rt.block_on(async {
            q.start();
            let done = q.submit(vec![noop()]).await.unwrap();
            wait_final(&q, done).await;
            let running = q.submit(vec![gate("never"), noop()]).await.unwrap();
            let queued = q.submit(vec![noop()]).await.unwrap();
            wait_status(&q, running, |s| s == "running").await;
            (running, queued, done)
        })
        // The runtime and queue are dropped here without any shutdown.
    };
    assert_eq!(exec.started(), vec![done, running]);
    let exec2 = Arc::new(TestExec::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let q = JobQueue::open(&path, QueueOptions::default(), exec2.clone()).unwrap();
    rt.block_on(async {
        q.start();
        assert_eq!(field(&q, running, "status"), json!("error"));
        assert_eq!(
            field(&q, running, "opresult"),
            json!([
                ["OpExecError", [job::INTERRUPTED_MSG]],
                ["OpExecError", ["Preceding opcode failed"]]
            ])
        );
        assert_eq!(wait_final(&q, queued).await, "success");
        assert_eq!(field(&q, done, "status"), json!("success"));
        let next = q.submit(vec![noop()]).await.unwrap();
        assert_eq!(next, queued + 1, "ids are not reused");
        wait_final(&q, next).await;
    });
    assert_eq!(
        exec2.started(),
        vec![queued, queued + 1],
        "nothing ran twice"
    );
}

/// [`TestExec`] after an upgrade that dropped `OP_TEST_GATE`.
#[derive(Default)]
struct NoGateExec(TestExec);

impl OpExecutor for NoGateExec {
    type Op = TestOp;

    fn parse(&self, op: &Value) -> Result<TestOp, GanetiError> {
        match op["OP_ID"].as_str() {
            Some("OP_TEST_GATE") => Err(GanetiError::opcode_unknown("Unknown opcode OP_TEST_GATE")),
            _ => self.0.parse(op),
        }
    }

    fn execute(&self, ctx: OpContext, op: Arc<TestOp>) -> OpFuture {
        self.0.execute(ctx, op)
    }
}

#[test]
fn a_queued_job_that_no_longer_parses_fails_at_reopen_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (stale, fine) = {
        // Not started: the jobs stay queued.
        let q = JobQueue::open(
            &path,
            QueueOptions::default(),
            Arc::new(TestExec::default()),
        )
        .unwrap();
        rt.block_on(async {
            let stale = q.submit(vec![noop(), gate("g")]).await.unwrap();
            let fine = q.submit(vec![noop()]).await.unwrap();
            (stale, fine)
        })
    };
    let exec = Arc::new(NoGateExec::default());
    let q = JobQueue::open(&path, QueueOptions::default(), exec.clone()).unwrap();
    rt.block_on(async {
        q.start();
        assert_eq!(field(&q, stale, "status"), json!("error"));
        assert_eq!(
            field(&q, stale, "opresult"),
            json!([
                [
                    "OpExecError",
                    ["Job could not be read back: Unknown opcode OP_TEST_GATE"]
                ],
                ["OpExecError", ["Preceding opcode failed"]]
            ])
        );
        assert_eq!(wait_final(&q, fine).await, "success");
    });
    assert_eq!(exec.0.started(), vec![fine], "the stale job ran nothing");
}

/// An executor for the crash tests: appends `job:op` to a file when an
/// opcode starts (a plain append survives `kill -9` of the process), then
/// behaves as [`TestExec`].
struct RecordingExec {
    record: PathBuf,
    inner: TestExec,
}

impl OpExecutor for RecordingExec {
    type Op = TestOp;

    fn parse(&self, op: &Value) -> Result<TestOp, GanetiError> {
        self.inner.parse(op)
    }

    fn execute(&self, ctx: OpContext, op: Arc<TestOp>) -> OpFuture {
        use std::io::Write;
        let line = format!("{}:{}\n", ctx.job_id(), ctx.op_index());
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.record)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .unwrap();
        self.inner.execute(ctx, op)
    }
}

const CHILD_ENV: &str = "JOBQUEUE_CRASH_CHILD_DIR";

/// The child side of `kill_9_mid_run_loses_no_job_and_runs_none_twice`:
/// submits jobs from several tasks, printing each id once submit returns,
/// until it is killed. Does nothing unless started by that test.
#[test]
#[ignore = "run as a child process by the kill -9 test"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        return;
    };
    let exec = Arc::new(RecordingExec {
        record: dir.join("started.log"),
        inner: TestExec::default(),
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let q = JobQueue::open(
        &dir.join("queue.db"),
        QueueOptions {
            max_running_jobs: 4,
            ..QueueOptions::default()
        },
        exec,
    )
    .unwrap();
    rt.block_on(async move {
        q.start();
        // One job that never finishes: it is running at the kill.
        let stuck = q.submit(vec![gate("never"), noop()]).await.unwrap();
        println!("SUBMITTED {stuck}");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..8 {
            let q = Arc::clone(&q);
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    let id = q.submit(vec![noop(), noop()]).await.unwrap();
                    if tx.send(id).is_err() {
                        return;
                    }
                }
            });
        }
        while let Some(id) = rx.recv().await {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "SUBMITTED {id}").unwrap();
            out.flush().unwrap();
        }
    });
}

#[test]
fn kill_9_mid_run_loses_no_job_and_runs_none_twice() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "jobqueue::tests::crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut submitted = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("SUBMITTED ") {
            submitted.push(id.trim().parse::<JobId>().unwrap());
            if submitted.len() >= 300 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        submitted.len() >= 300,
        "the child submitted {} jobs",
        submitted.len()
    );

    let record = dir.path().join("started.log");
    let exec = Arc::new(RecordingExec {
        record: record.clone(),
        inner: TestExec::default(),
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let q = JobQueue::open(&dir.path().join("queue.db"), QueueOptions::default(), exec).unwrap();
    rt.block_on(async {
        q.start();
        // Every id returned by submit is in the queue and finishes.
        let f = fields(&["status"]);
        for &id in &submitted {
            assert!(
                q.query_jobs(Some(&[id]), &f).unwrap()[0].is_some(),
                "job {id} was lost"
            );
        }
        for id in q.job_ids(false) {
            wait_final(&q, id).await;
        }
    });
    let stuck = submitted[0];
    assert_eq!(field(&q, stuck, "status"), json!("error"));
    assert_eq!(
        field(&q, stuck, "opresult")[0],
        json!(["OpExecError", [job::INTERRUPTED_MSG]])
    );
    // No opcode started twice, across both processes.
    let log = std::fs::read_to_string(&record).unwrap();
    let mut seen = HashSet::new();
    for line in log.lines() {
        assert!(seen.insert(line.to_string()), "opcode {line} started twice");
    }
    // Interrupted jobs are failed, all others succeeded.
    let (mut failed, mut total) = (0, 0);
    for id in q.job_ids(false) {
        let status = field(&q, id, "status");
        total += 1;
        if status == json!("error") {
            failed += 1;
            assert_eq!(
                field(&q, id, "opresult")
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| **r == json!(["OpExecError", [job::INTERRUPTED_MSG]]))
                    .count(),
                1,
                "job {id}"
            );
        } else {
            assert_eq!(status, json!("success"), "job {id}");
        }
    }
    println!(
        "{} jobs submitted before the kill, {total} in the queue, {failed} interrupted, {} opcode starts",
        submitted.len(),
        seen.len()
    );
}

#[tokio::test]
async fn panicking_opcode_fails_the_job_not_the_queue() {
    let fx = fixture();
    let q = &fx.queue;
    let id = q
        .submit(vec![json!({"OP_ID": "OP_TEST_PANIC"}), noop()])
        .await
        .unwrap();
    assert_eq!(wait_final(q, id).await, "error");
    let res = field(q, id, "opresult");
    assert_eq!(res[0][0], json!("OpExecError"));
    assert_eq!(res[1], json!(["OpExecError", ["Preceding opcode failed"]]));
    let next = q.submit(vec![noop()]).await.unwrap();
    assert_eq!(wait_final(q, next).await, "success");
}

#[tokio::test]
async fn submit_many_refuses_only_the_invalid_job() {
    let fx = fixture();
    let q = &fx.queue;
    let res = q
        .submit_many(vec![
            vec![noop()],
            vec![json!({"OP_ID": "OP_BAD"})],
            vec![noop()],
        ])
        .await;
    assert_eq!(res[0], Ok(1));
    assert_eq!(res[1].as_ref().unwrap_err().class, "OpCodeUnknown");
    assert_eq!(res[2], Ok(3), "ids are allocated for the whole call");
    assert_eq!(
        q.query_jobs(Some(&[2]), &fields(&["id"])).unwrap(),
        vec![None]
    );
    wait_final(q, 1).await;
    wait_final(q, 3).await;
}

#[tokio::test]
async fn reported_final_status_is_committed() {
    let fx = fixture();
    let q = &fx.queue;
    let id = q.submit(vec![noop()]).await.unwrap();
    assert_eq!(wait_final(q, id).await, "success");
    // Read the database from another connection, as after a crash.
    let conn = rusqlite::Connection::open(&fx.path).unwrap();
    let data: String = conn
        .query_row("SELECT data FROM jobs WHERE id = ?1", [id as i64], |r| {
            r.get(0)
        })
        .unwrap();
    let job: job::Job = serde_json::from_str(&data).unwrap();
    assert_eq!(job.status(), job::JobStatus::Success);
}

#[tokio::test]
async fn finished_job_cannot_be_canceled() {
    let fx = fixture();
    let q = &fx.queue;
    let id = q.submit(vec![noop()]).await.unwrap();
    wait_final(q, id).await;
    let (ok, msg) = q.cancel(id, false).await.unwrap();
    assert!(!ok);
    assert_eq!(msg, format!("Job {id} is no longer waiting in the queue"));
}

#[tokio::test]
async fn kill_stops_a_running_job() {
    let fx = fixture();
    let q = &fx.queue;
    let id = q.submit(vec![gate("never"), noop()]).await.unwrap();
    wait_status(q, id, |s| s == "running").await;
    let (ok, msg) = q.cancel(id, false).await.unwrap();
    assert!(!ok, "{msg}");
    let (ok, msg) = q.cancel(id, true).await.unwrap();
    assert!(ok, "{msg}");
    assert_eq!(wait_final(q, id).await, "error");
    assert_eq!(
        field(q, id, "opresult"),
        json!([
            ["OpExecError", [format!("Job {id} was killed by request")]],
            ["OpExecError", ["Preceding opcode failed"]]
        ])
    );
}

#[tokio::test]
async fn submit_extends_the_reason_trail() {
    let fx = fixture();
    let q = &fx.queue;
    let id = q
        .submit(vec![
            json!({"OP_ID": "OP_TEST_NOOP", "reason": [["gnt:client:gnt-debug", "test", 1]]}),
            noop(),
        ])
        .await
        .unwrap();
    let ops = field(q, id, "ops");
    let received = field(q, id, "received_ts");
    let ns = received[0].as_i64().unwrap() * 1_000_000_000 + received[1].as_i64().unwrap() * 1000;
    assert_eq!(
        ops[0]["reason"],
        json!([
            ["gnt:client:gnt-debug", "test", 1],
            ["gnt:opcode:test_noop", format!("job={id};index=0"), ns]
        ])
    );
    assert_eq!(
        ops[1]["reason"],
        json!([["gnt:opcode:test_noop", format!("job={id};index=1"), ns]])
    );
    wait_final(q, id).await;
}
