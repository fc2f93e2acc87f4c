//! What survives a crash: jobs found running at start-up, queued jobs that
//! no longer parse, and `kill -9` in the middle of a run.

use super::*;

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
            "jobqueue::tests::durability::crash_child",
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

/// A new master's queue made from a candidate's copy: the jobs as the old
/// master last pushed them (a running one then fails as interrupted), and
/// ids above every id the old master handed out, archived jobs included.
#[test]
fn a_queue_made_from_a_copy_fails_running_jobs_and_never_reuses_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.db");
    let exec = Arc::new(TestExec::default());
    let (copy, running, last_id) = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let q = JobQueue::open(&old, QueueOptions::default(), exec.clone()).unwrap();
        rt.block_on(async {
            q.start();
            let done = q.submit(vec![noop()]).await.unwrap();
            wait_final(&q, done).await;
            let running = q.submit(vec![gate("never")]).await.unwrap();
            wait_status(&q, running, |s| s == "running").await;
            (q.snapshot(), running, q.last_id())
        })
    };
    // The copy lacks the old master's later (archived) jobs.
    let last_id = last_id + 5;
    let new = dir.path().join("new.db");
    assert_eq!(JobQueue::import(&new, &copy, last_id).unwrap(), copy.len());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let q = JobQueue::open(&new, QueueOptions::default(), Arc::new(TestExec::default())).unwrap();
    rt.block_on(async {
        q.start();
        assert_eq!(field(&q, running, "status"), json!("error"));
        let next = q.submit(vec![noop()]).await.unwrap();
        assert_eq!(next, last_id + 1);
        wait_final(&q, next).await;
    });
    // A copy that is not a job is refused.
    let bad = vec![(99, false, "{\"not\": \"a job\"}".to_string())];
    assert!(JobQueue::import(&dir.path().join("bad.db"), &bad, 99).is_err());
}
