//! The watcher's passes against fake nodes: what it submits (an ordinary
//! job with the watcher's reason), and what holds it back (a pause, an
//! opcode holding the instance, a drained queue, the retry limit).

use serde_json::Value;

use super::{create, env, Env};
use crate::locking::{Level, LockRequest, Mode};
use crate::watcher::{pause, Options, Watcher};

/// The watcher's restart jobs: (id, instance).
fn restart_jobs(e: &Env) -> Vec<(u64, String)> {
    e.queue
        .job_ids(false)
        .into_iter()
        .filter_map(|id| {
            let ops = e.queue.job_field(id, "ops")?;
            let op = &ops[0];
            (op["OP_ID"] == "OP_INSTANCE_STARTUP" && op["reason"][0][0] == "gnt:watcher")
                .then(|| (id, op["instance_name"].as_str().unwrap_or("").to_string()))
        })
        .collect()
}

async fn wait_done(e: &Env, id: u64) -> String {
    let fields = vec!["status".to_string()];
    let mut prev = Value::Null;
    loop {
        let r = e
            .queue
            .wait_for_job_change(
                id,
                &fields,
                prev.clone(),
                Value::Null,
                std::time::Duration::from_secs(10),
            )
            .await
            .unwrap();
        let status = r[0][0].as_str().unwrap_or_default().to_string();
        if ["success", "error", "canceled"].contains(&status.as_str()) {
            return status;
        }
        prev = r[0].clone();
    }
}

fn running_on(e: &Env, node: &str, name: &str) -> bool {
    e.on_nodes()
        .get(node)
        .is_some_and(|s| s.running.contains_key(name))
}

#[tokio::test]
async fn a_pass_restarts_a_killed_instance_with_a_job_marked_as_the_watchers() {
    let e = env(2);
    e.must(create("inst1", "node2", "file", 1)).await;
    let w = Watcher::new(&e.master, Options::default());
    w.pass(false).await;
    assert!(restart_jobs(&e).is_empty(), "it runs: nothing to do");
    e.nodes.kill("node2", "inst1");
    w.pass(false).await;
    let jobs = restart_jobs(&e);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].1, "inst1");
    assert_eq!(wait_done(&e, jobs[0].0).await, "success");
    assert!(running_on(&e, "node2", "inst1"));
    // Running again: left alone, the attempt remembered for the backoff.
    w.pass(false).await;
    assert_eq!(restart_jobs(&e).len(), 1);
    assert_eq!(w.notepad().instance["inst1"].restart_count, 1);
}

#[tokio::test]
async fn a_pause_an_opcode_or_a_drained_queue_holds_the_watcher_back() {
    let e = env(2);
    e.must(create("inst1", "node2", "file", 1)).await;
    let w = Watcher::new(&e.master, Options::default());
    e.nodes.kill("node2", "inst1");

    pause::set(&e.master.paths, Some(pause::now() + 3600.0)).unwrap();
    w.pass(false).await;
    assert!(restart_jobs(&e).is_empty(), "paused");
    pause::set(&e.master.paths, None).unwrap();

    let uuid = e
        .master
        .config
        .read()
        .instances
        .values()
        .next()
        .unwrap()
        .uuid
        .clone();
    let held = e
        .master
        .locks
        .try_acquire(LockRequest::new().some(Level::Instance, vec![uuid], Mode::Shared))
        .unwrap();
    w.pass(false).await;
    assert!(restart_jobs(&e).is_empty(), "an opcode holds the instance");
    drop(held);

    e.queue.set_drain_flag(true).unwrap();
    w.pass(false).await;
    assert!(restart_jobs(&e).is_empty(), "the queue is drained");
    e.queue.set_drain_flag(false).unwrap();

    w.pass(false).await;
    assert_eq!(restart_jobs(&e).len(), 1);
}

#[tokio::test]
async fn an_instance_that_keeps_dying_is_given_up_after_five_attempts() {
    let e = env(2);
    e.must(create("inst1", "node2", "file", 1)).await;
    let opts = Options {
        limits: crate::watcher::Limits {
            backoff: 0.0,
            ..Default::default()
        },
        ..Options::default()
    };
    let w = Watcher::new(&e.master, opts);
    for attempt in 1..=7 {
        e.nodes.kill("node2", "inst1");
        w.pass(false).await;
        if let Some((id, _)) = restart_jobs(&e).last() {
            wait_done(&e, *id).await;
        }
        assert_eq!(
            restart_jobs(&e).len(),
            attempt.min(5),
            "after pass {attempt}"
        );
    }
    assert_eq!(w.notepad().instance["inst1"].restart_count, 6);
}

/// The jobs whose first opcode is `op_id` (archived ones too): (id,
/// archived, reason source).
fn jobs_of(e: &Env, op_id: &str) -> Vec<(u64, bool, String)> {
    e.queue
        .job_ids(true)
        .into_iter()
        .filter_map(|id| {
            let ops = e.queue.job_field(id, "ops")?;
            (ops[0]["OP_ID"] == op_id).then(|| {
                (
                    id,
                    e.queue.job_field(id, "archived") == Some(Value::Bool(true)),
                    ops[0]["reason"][0][0].as_str().unwrap_or("").to_string(),
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn a_full_pass_verifies_the_disks_and_activates_those_that_need_it() {
    let e = super::with_instance("drbd").await;
    let w = Watcher::new(&e.master, Options::default());
    e.nodes.lose_disks("node2");
    w.pass(true).await;
    // The verification runs beside the passes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let activation = loop {
        if let Some(j) = jobs_of(&e, "OP_INSTANCE_ACTIVATE_DISKS").first() {
            break j.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no disk activation");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(activation.2, "gnt:watcher");
    let ops = e.queue.job_field(activation.0, "ops").unwrap();
    assert_eq!(ops[0]["instance_name"], "inst1");
    // (It fails here: a fake node's lost copy cannot be assembled; on real
    // nodes a copy whose daemon stopped is served again.)
    wait_done(&e, activation.0).await;
    // Ganeti's watcher archives its verification once read.
    let verify = jobs_of(&e, "OP_GROUP_VERIFY_DISKS");
    assert_eq!(verify.len(), 1);
    assert!(verify[0].1, "the verification job is archived");
    assert_eq!(verify[0].2, "gnt:watcher");
}
