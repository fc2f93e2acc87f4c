//! Benchmarks of the master daemon on a virtual cluster; prints figures and
//! never fails on them:
//! - trivial-job throughput through LUXI (OP_TEST_DELAY of 0 s, several
//!   clients submitting at once);
//! - submit-to-done latency of one job at a time, p50 and p99;
//! - `gnt-instance list` time with 1000 instances on the fake hypervisor.
//!
//! Run with `scripts/bench.sh` (release build).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tests::VCluster;

fn wait_done(c: &mut luxi::client::Client, id: u64) {
    let mut prev = Value::Null;
    loop {
        let r = c
            .wait_for_job_change(id, &["status"], prev.clone(), Value::Null, 10)
            .expect("WaitForJobChange");
        if r == json!("nochange") {
            continue;
        }
        let status = r[0][0].clone();
        if matches!(status.as_str(), Some("success" | "error" | "canceled")) {
            return;
        }
        prev = r[0].clone();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn main() {
    let jobs: usize = std::env::var("BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let clients: usize = 8;
    let instances: usize = std::env::var("BENCH_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    std::env::set_var("GANETI_FAKE_MEMORY", "10000000");
    let vc = VCluster::up("0.91", 3);

    // Throughput.
    let t0 = Instant::now();
    let per = jobs / clients;
    let ids: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut c = vc.luxi();
                    (0..per)
                        .map(|_| {
                            c.submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0})])
                                .expect("SubmitJob")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect()
    });
    let submitted = t0.elapsed();
    let mut c = vc.luxi();
    for id in &ids {
        wait_done(&mut c, *id);
    }
    let total = t0.elapsed();
    println!(
        "job throughput: {} trivial jobs from {clients} clients: submitted in {:.3} s, all done in {:.3} s = {:.0} jobs/s",
        ids.len(),
        submitted.as_secs_f64(),
        total.as_secs_f64(),
        ids.len() as f64 / total.as_secs_f64()
    );

    // Latency, one job at a time.
    let mut lat = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        let id = c
            .submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0})])
            .expect("SubmitJob");
        wait_done(&mut c, id);
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "submit-to-done latency over {} jobs: p50 {:.2} ms, p99 {:.2} ms (goal: p50 < 5 ms)",
        lat.len(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3
    );

    // gnt-instance list with many instances.
    let t = Instant::now();
    let batch: Vec<Vec<Value>> = (0..instances)
        .map(|i| {
            vec![json!({
                "OP_ID": "OP_INSTANCE_CREATE", "instance_name": format!("inst{i:05}"),
                "disk_template": "diskless", "mode": "create", "os_type": "tiny",
                "pnode": format!("node{}", i % 3 + 1), "name_check": false, "ip_check": false,
                "nics": [{}], "beparams": {"maxmem": 128},
            })]
        })
        .collect();
    // In chunks: the queue holds at most 5000 unfinished jobs, as Ganeti's.
    for chunk in batch.chunks(2000) {
        let res = c.submit_many_jobs(chunk.to_vec()).expect("SubmitManyJobs");
        for r in res.as_array().expect("list") {
            let id = r[1].as_u64().unwrap_or_else(|| panic!("job refused: {r}"));
            wait_done(&mut c, id);
        }
    }
    println!(
        "created {instances} running instances on 3 nodes in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let out = vc.ok("gnt-instance", &["list"]);
        times.push(t.elapsed());
        assert_eq!(out.lines().count(), instances + 1);
    }
    times.sort();
    let mut q = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        c.query(
            "instance",
            &["name", "pnode", "status", "oper_ram"],
            Value::Null,
        )
        .expect("Query");
        q.push(t.elapsed());
    }
    q.sort();
    println!(
        "gnt-instance list of {instances} instances (live data from 3 nodes): median {:.1} ms; \
         LUXI Query alone: median {:.1} ms (goal: 10,000 on 200 nodes < 100 ms)",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&q, 0.5).as_secs_f64() * 1e3
    );
}
