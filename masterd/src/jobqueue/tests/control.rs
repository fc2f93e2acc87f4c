//! Controlling jobs: cancel, kill, drain, archive, WaitForJobChange, and
//! what submit refuses or records.

use super::*;

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
    assert_eq!(err.class, "GenericError");
    assert_eq!(err.message(), "Queue drained");
    // SubmitJobToDrainedQueue gets through.
    let id = fx
        .queue
        .submit_to_drained_queue(vec![noop()])
        .await
        .unwrap();
    assert_eq!(wait_final(&fx.queue, id).await, "success");
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
