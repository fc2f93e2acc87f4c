//! RAPI beyond Ganeti, end to end: `/2/events` shows a client every
//! status change of a job it did not submit, in order, with the job's log
//! lines and the objects it changed; a client that reconnects with
//! `Last-Event-ID` gets what came after; `/metrics` describes the
//! cluster in Prometheus' text format.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::Value;
use tests::VCluster;

/// An event of the stream.
#[derive(Debug, Clone)]
struct Event {
    id: String,
    kind: String,
    data: Value,
}

/// `curl` following the stream (for at most two minutes).
struct Stream {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Stream {
    fn open(vc: &VCluster, last_id: Option<&str>) -> Stream {
        let mut cmd = Command::new("curl");
        cmd.args(["-k", "-s", "-N", "--max-time", "120", "-u", "viewer:pw"]);
        if let Some(id) = last_id {
            cmd.arg("-H").arg(format!("Last-Event-ID: {id}"));
        }
        let mut child = cmd
            .arg(format!("https://{}:5080/2/events", vc.master_ip()))
            .stdout(Stdio::piped())
            .spawn()
            .expect("running curl");
        let out = BufReader::new(child.stdout.take().expect("curl's output"));
        let mut s = Stream { child, out };
        // The stream opens with a comment once the watcher has read the
        // master: what happens from now on is an event.
        let mut line = String::new();
        s.out.read_line(&mut line).expect("reading the stream");
        assert_eq!(line, ": ganeti-rs events\n");
        s
    }

    /// The next event (comments skipped); `None` at the end.
    fn next(&mut self) -> Option<Event> {
        let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
        loop {
            let mut line = String::new();
            if self.out.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                if !kind.is_empty() {
                    return Some(Event {
                        id,
                        kind,
                        data: serde_json::from_str(&data).expect("event data is JSON"),
                    });
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("id: ") {
                id = v.to_string();
            } else if let Some(v) = line.strip_prefix("event: ") {
                kind = v.to_string();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = v.to_string();
            }
        }
    }

    /// Events until job `job` ends (its final status included).
    fn until_job_ends(&mut self, job: u64) -> Vec<Event> {
        let mut seen = Vec::new();
        while let Some(e) = self.next() {
            let done = e.kind == "job"
                && e.data["job"] == job
                && ["success", "error", "canceled"]
                    .contains(&e.data["status"].as_str().unwrap_or(""));
            seen.push(e);
            if done {
                return seen;
            }
        }
        panic!("the stream ended before job {job} did: {seen:?}");
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn statuses(events: &[Event], job: u64) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == "job" && e.data["job"] == job)
        .map(|e| e.data["status"].as_str().unwrap().to_string())
        .collect()
}

/// Submits a startup of `inst` over LUXI; its job id.
fn submit_startup(vc: &VCluster, inst: &str) -> u64 {
    vc.luxi()
        .submit_job(vec![
            serde_json::json!({"OP_ID": "OP_INSTANCE_STARTUP", "instance_name": inst}),
        ])
        .expect("submitting a startup")
}

#[test]
fn events_and_metrics() {
    let vc = VCluster::up("0.53", 2);
    std::fs::write(vc.paths().rapi_users(), "viewer pw read\n").unwrap();

    // A job submitted by someone else, over LUXI: every status, in order.
    let mut stream = Stream::open(&vc, None);
    vc.add_instance("node2", "web1", &["-t", "diskless"]);
    let create = vc
        .luxi()
        .query_jobs(None, &["id", "summary"])
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[1] == serde_json::json!(["INSTANCE_CREATE(web1)"]))
        .and_then(|r| r[0].as_u64())
        .expect("the creation job");
    let events = stream.until_job_ends(create);
    assert_eq!(
        statuses(&events, create),
        ["queued", "waiting", "running", "success"]
    );
    let logs: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == "job-log" && e.data["job"] == create)
        .map(|e| e.data["serial"].as_i64().unwrap())
        .collect();
    assert!(
        !logs.is_empty() && logs.windows(2).all(|w| w[0] < w[1]),
        "{logs:?}"
    );
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e.id.rsplit_once('-').unwrap().1.parse().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "ids in order: {ids:?}"
    );

    // The instance it made is an object event, with its serial number
    // (it may come in the same read as the job's end, or the next).
    vc.ok("gnt-instance", &["shutdown", "web1"]);
    let mut saw_instance = events
        .iter()
        .any(|e| e.kind == "object" && e.data["name"] == "web1");
    let mut after_shutdown = Vec::new();
    while !after_shutdown.iter().any(|e: &Event| {
        e.kind == "object" && e.data["name"] == "web1" && e.data["serial_no"].as_u64() >= Some(2)
    }) {
        let e = stream.next().expect("an event");
        saw_instance |= e.kind == "object" && e.data["name"] == "web1";
        after_shutdown.push(e);
    }
    assert!(saw_instance);
    drop(stream);

    // Reconnecting with the last id seen: what came after, nothing lost.
    let last = after_shutdown.last().unwrap().id.clone();
    let job = submit_startup(&vc, "web1");
    let mut again = Stream::open(&vc, Some(&last));
    let resumed = again.until_job_ends(job);
    let (_, last_seq) = last.rsplit_once('-').unwrap();
    let first_seq: u64 = resumed[0].id.rsplit_once('-').unwrap().1.parse().unwrap();
    assert_eq!(first_seq, last_seq.parse::<u64>().unwrap() + 1);
    assert_eq!(
        statuses(&resumed, job),
        ["queued", "waiting", "running", "success"]
    );
    drop(again);
    // An id of another run of ganeti-rapi: start over.
    let mut old = Stream::open(&vc, Some("1-5"));
    let reset = old.next().unwrap();
    assert_eq!(reset.kind, "reset");
    drop(old);

    // Metrics.
    let out = Command::new("curl")
        .args(["-k", "-s"])
        .arg(format!("https://{}:5080/metrics", vc.master_ip()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "# TYPE ganeti_jobs gauge",
        "ganeti_instances{status=\"running\"} 1",
        "ganeti_node_memory_total_bytes{node=\"node1\"} 8589934592",
        "ganeti_node_offline{node=\"node2\"} 0",
        "ganeti_group_nplus1_failures{group=\"default\"} 0",
        "ganeti_opcodes{opcode=\"OP_INSTANCE_CREATE\",status=\"success\"} 1",
        "ganeti_job_queue_depth 0",
        "# TYPE ganeti_job_duration_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    let success: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ganeti_jobs{status=\"success\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(success >= 4, "{success}");
}
