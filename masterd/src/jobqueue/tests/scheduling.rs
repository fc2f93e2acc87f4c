//! Running jobs: results, failures, priorities, `max_running_jobs` and
//! dependencies.

use super::*;

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
async fn private_and_secret_os_parameters_are_stored_and_shown_redacted() {
    let fx = fixture();
    let q = &fx.queue;
    let id = q
        .submit(vec![json!({"OP_ID": "OP_TEST_NOOP",
            "osparams_secret": {"password": "s3cr3t-value"},
            "osparams_private": {"key": "pr1vate-value"}})])
        .await
        .unwrap();
    assert_eq!(wait_final(q, id).await, "success");
    let ops = field(q, id, "ops");
    assert_eq!(ops[0]["osparams_secret"], json!({"password": "<redacted>"}));
    assert_eq!(ops[0]["osparams_private"], json!({"key": "<redacted>"}));
    for suffix in ["", "-wal"] {
        let file = format!("{}{suffix}", fx.path.display());
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("s3cr3t-value"), "the secret is in {file}");
        assert!(
            !text.contains("pr1vate-value"),
            "the private value is in {file}"
        );
    }
}

#[tokio::test]
async fn a_message_list_becomes_one_message_per_line() {
    let fx = fixture();
    let q = &fx.queue;
    let id = q
        .submit(vec![json!({"OP_ID": "OP_TEST_LOGLIST"})])
        .await
        .unwrap();
    assert_eq!(wait_final(q, id).await, "success");
    let log = field(q, id, "oplog");
    let entries: Vec<(Value, Value, Value)> = log[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].clone(), e[2].clone(), e[3].clone()))
        .collect();
    assert_eq!(
        entries,
        vec![
            (json!(1), json!("message"), json!("first")),
            (json!(2), json!("message"), json!("second")),
            (json!(3), json!("message"), json!("third")),
        ]
    );
}
