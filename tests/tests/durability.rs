//! kill -9 of the master daemon while 200 jobs are queued or running: after
//! a restart every job is found, none is lost or run twice, the ones that
//! were running are marked error with a message saying why, and the
//! configuration passes verify.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tests::VCluster;

const JOBS: usize = 200;

#[test]
fn kill_9_with_200_jobs_loses_none_and_runs_none_twice() {
    let vc = VCluster::up("0.31", 2);
    let mut c = vc.luxi();
    let mut ids = Vec::new();
    for _ in 0..JOBS {
        // One log line per execution: a job run twice would show two.
        let id = c
            .submit_job(vec![
                json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.2, "repeat": 1}),
            ])
            .unwrap();
        ids.push(id);
    }
    // Wait until some have finished, so the queue holds every state.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.query_jobs(Some(&ids), &["status"]).unwrap();
        let done = r
            .as_array()
            .unwrap()
            .iter()
            .filter(|row| row[0] == "success")
            .count();
        if done >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "jobs do not progress");
        let _ = c.wait_for_job_change(ids[done], &["status"], Value::Null, Value::Null, 2);
    }
    let pid = vc.masterd_pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The socket stops answering once the process is gone.
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() {
        std::thread::yield_now();
    }
    vc.restart_masterd();

    let statuses: Vec<String> = ids.iter().map(|id| vc.wait_job(*id)).collect();
    let mut c = vc.luxi();
    let rows = c
        .query_jobs(Some(&ids), &["id", "status", "oplog", "opresult"])
        .unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), JOBS, "every submitted job is found");
    let mut errors = 0;
    for (row, id) in rows.iter().zip(&ids) {
        assert_eq!(row[0], json!(id), "job {id} is found");
        let log = row[2][0].as_array().unwrap();
        assert!(log.len() <= 1, "job {id} ran twice: {log:?}");
        match row[1].as_str().unwrap() {
            "success" => assert_eq!(log.len(), 1, "job {id} succeeded without running"),
            "error" => {
                errors += 1;
                let msg = row[3][0].to_string();
                assert!(
                    msg.contains("master daemon"),
                    "job {id}: unclear error {msg}"
                );
            }
            other => panic!("job {id} ended {other}"),
        }
    }
    assert!(errors >= 1, "the jobs running at the kill are marked error");
    assert!(statuses.iter().filter(|s| *s == "success").count() > 20);
    let out = vc.ok("gnt-cluster", &["verify"]);
    assert!(!out.contains("ERROR"), "{out}");
}
