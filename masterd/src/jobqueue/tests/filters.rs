//! Job filter rules and ad-hoc rate limits in the scheduler.

use super::*;

/// A rule from JSON predicates and action, with no reason.
async fn add_rule(q: &JobQueue, priority: i64, predicates: Value, action: Value) -> String {
    q.replace_filter(None, priority, &predicates, &action, &json!([]))
        .await
        .unwrap()
}

fn with_reason(mut op: Value, reason: &str) -> Value {
    op["reason"] = json!([["gnt:user", reason, 1]]);
    op
}

/// Submits a no-op job the rules let through and waits for its end: the
/// scheduler has then looked at every job queued before it.
async fn scheduler_pass(q: &JobQueue) {
    let id = q.submit(vec![with_reason(noop(), "probe")]).await.unwrap();
    assert_eq!(wait_final(q, id).await, "success");
}

#[tokio::test]
async fn reject_cancels_queued_jobs_and_new_ones() {
    let fx = fixture_with(QueueOptions {
        max_running_jobs: 1,
        ..QueueOptions::default()
    });
    let q = &fx.queue;
    let running = q.submit(vec![gate("a")]).await.unwrap();
    wait_status(q, running, |s| s == "running").await;
    let queued = q.submit(vec![noop()]).await.unwrap();
    add_rule(
        q,
        0,
        json!([["opcode", ["=", "OP_ID", "OP_TEST_NOOP"]]]),
        json!("REJECT"),
    )
    .await;
    assert_eq!(wait_final(q, queued).await, "canceled");
    assert_eq!(field(q, queued, "opresult"), json!([job::CANCELED_RESULT]));
    let later = q.submit(vec![noop()]).await.unwrap();
    assert_eq!(wait_final(q, later).await, "canceled");
    // The running job is not touched.
    fx.exec.open("a");
    assert_eq!(wait_final(q, running).await, "success");
    assert!(!fx.exec.started().contains(&queued));
}

#[tokio::test]
async fn pause_holds_jobs_until_the_rule_is_deleted() {
    let fx = fixture();
    let q = &fx.queue;
    let accept = add_rule(
        q,
        0,
        json!([["reason", ["=", "reason", "probe"]]]),
        json!("ACCEPT"),
    )
    .await;
    let pause = add_rule(
        q,
        1,
        json!([["jobid", [">", "id", "watermark"]]]),
        json!("PAUSE"),
    )
    .await;
    let held = q.submit(vec![noop()]).await.unwrap();
    scheduler_pass(q).await;
    assert_eq!(field(q, held, "status"), json!("queued"));
    let err = q.delete_filter("no-such-uuid").await.unwrap_err();
    assert!(err.message().contains("does not exist"), "{err:?}");
    q.delete_filter(&pause).await.unwrap();
    assert_eq!(wait_final(q, held).await, "success");
    let rules = q.filter_rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].uuid, accept);
}

#[tokio::test]
async fn continue_rules_are_skipped_and_jobs_before_the_watermark_run() {
    let fx = fixture();
    let q = &fx.queue;
    let before = q.submit(vec![noop()]).await.unwrap();
    assert_eq!(wait_final(q, before).await, "success");
    add_rule(q, 0, json!([]), json!("CONTINUE")).await;
    add_rule(
        q,
        5,
        json!([["jobid", ["<=", "id", "watermark"]]]),
        json!("REJECT"),
    )
    .await;
    // A job after the watermark: CONTINUE does nothing, REJECT does not
    // match.
    let after = q.submit(vec![noop()]).await.unwrap();
    assert_eq!(wait_final(q, after).await, "success");
}

#[tokio::test]
async fn rate_limit_lets_n_matching_jobs_run_at_once() {
    let fx = fixture();
    let q = &fx.queue;
    add_rule(
        q,
        0,
        json!([["opcode", ["=", "OP_ID", "OP_TEST_GATE"]]]),
        json!(["RATE_LIMIT", 1]),
    )
    .await;
    let first = q.submit(vec![gate("one")]).await.unwrap();
    let second = q.submit(vec![gate("two")]).await.unwrap();
    wait_status(q, first, |s| s == "running").await;
    scheduler_pass(q).await;
    assert_eq!(field(q, second, "status"), json!("queued"));
    fx.exec.open("one");
    assert_eq!(wait_final(q, first).await, "success");
    wait_status(q, second, |s| s == "running").await;
    fx.exec.open("two");
    assert_eq!(wait_final(q, second).await, "success");
}

#[tokio::test]
async fn a_rate_limit_reason_limits_its_bucket() {
    let fx = fixture();
    let q = &fx.queue;
    let limited = |g: &str| with_reason(gate(g), "rate-limit:1:evacuation");
    let first = q.submit(vec![limited("one")]).await.unwrap();
    let second = q.submit(vec![limited("two")]).await.unwrap();
    wait_status(q, first, |s| s == "running").await;
    scheduler_pass(q).await;
    assert_eq!(field(q, second, "status"), json!("queued"));
    fx.exec.open("one");
    wait_status(q, second, |s| s == "running").await;
    fx.exec.open("two");
    assert_eq!(wait_final(q, second).await, "success");
}

#[tokio::test]
async fn rules_are_kept_across_a_restart_and_bad_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let uuid = {
        let q = JobQueue::open(
            &path,
            QueueOptions::default(),
            Arc::new(TestExec::default()),
        )
        .unwrap();
        q.start();
        let err = q
            .replace_filter(None, 0, &json!([]), &json!("DROP"), &json!([]))
            .await
            .unwrap_err();
        assert!(err.message().contains("malformed FilterAction"), "{err:?}");
        let err = q
            .replace_filter(
                Some("not-a-uuid".into()),
                0,
                &json!([]),
                &json!("PAUSE"),
                &json!([]),
            )
            .await
            .unwrap_err();
        assert!(err.message().contains("Unable to parse UUID"), "{err:?}");
        assert!(q.filter_rules().is_empty());
        let uuid = add_rule(
            &q,
            3,
            json!([["opcode", ["=", "OP_ID", "OP_TEST_NOOP"]]]),
            json!("PAUSE"),
        )
        .await;
        // Replacing keeps the UUID.
        let same = q
            .replace_filter(
                Some(uuid.clone()),
                4,
                &json!([]),
                &json!("ACCEPT"),
                &json!([["gnt:user", "why", 7]]),
            )
            .await
            .unwrap();
        assert_eq!(same, uuid);
        uuid
    };
    let q = JobQueue::open(
        &path,
        QueueOptions::default(),
        Arc::new(TestExec::default()),
    )
    .unwrap();
    let rules = q.filter_rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].uuid, uuid);
    assert_eq!(rules[0].priority, 4);
    assert_eq!(rules[0].action, crate::jobqueue::filters::Action::Accept);
    // The reason given, then the master's own entry.
    let trail = rules[0].reason_trail.as_array().unwrap();
    assert_eq!(trail[0], json!(["gnt:user", "why", 7]));
    assert_eq!(trail[1][0], json!("luxid"));
}
