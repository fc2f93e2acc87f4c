//! Benchmarks of the master daemon on a virtual cluster; prints figures and
//! never fails on them:
//! - trivial-job throughput through LUXI (OP_TEST_DELAY of 0 s, several
//!   clients submitting at once);
//! - submit-to-done latency of one job at a time, p50 and p99;
//! - creating instances (diskless, fake hypervisor) through SubmitManyJobs,
//!   timed per thousand so that a per-create cost growing with the cluster
//!   shows;
//! - `gnt-instance list` (the CLI end to end) and its LUXI Query alone.
//!
//! Environment: `BENCH_JOBS` trivial jobs for throughput (default 2000; 0
//! skips throughput and latency), `BENCH_INSTANCES` (default 1000),
//! `BENCH_NODES` (default 3; the design goal is 10,000 instances on 200
//! nodes).
//!
//! Run with `scripts/bench.sh` (release build).

// A benchmark run by hand: a failed step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: expected a number")),
        Err(_) => default,
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    percentile(v, 0.5)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let jobs = env_usize("BENCH_JOBS", 2000);
    let clients: usize = 8;
    let instances = env_usize("BENCH_INSTANCES", 1000);
    let nodes = env_usize("BENCH_NODES", 3);
    assert!(
        (1..=250).contains(&nodes),
        "BENCH_NODES={nodes}: expected 1 to 250 (one address per node in 127.0.91.0/24)"
    );
    // Memory enough for 10,000 instances of 128 MiB on one node.
    std::env::set_var("GANETI_FAKE_MEMORY", "10000000");
    let t = Instant::now();
    let vc = VCluster::up("0.91", nodes);
    println!(
        "virtual cluster of {nodes} nodes up in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut c = vc.luxi();
    if jobs > 0 {
        jobs_bench(&vc, &mut c, jobs, clients);
    }
    create_bench(&mut c, instances, nodes);
    list_bench(&vc, &mut c, instances, nodes);
}

/// Job throughput and submit-to-done latency.
fn jobs_bench(vc: &VCluster, c: &mut luxi::client::Client, jobs: usize, clients: usize) {
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
    for id in &ids {
        wait_done(c, *id);
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
    for _ in 0..500.min(jobs) {
        let t = Instant::now();
        let id = c
            .submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0})])
            .expect("SubmitJob");
        wait_done(c, id);
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "submit-to-done latency over {} jobs: p50 {:.2} ms, p99 {:.2} ms (goal: p50 < 5 ms)",
        lat.len(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3
    );
}

/// Creates `instances` running instances spread over the nodes, a thousand
/// jobs at a time, printing the time of each thousand.
fn create_bench(c: &mut luxi::client::Client, instances: usize, nodes: usize) {
    const CHUNK: usize = 1000;
    let t = Instant::now();
    let mut per_chunk = Vec::new();
    for start in (0..instances).step_by(CHUNK) {
        let tc = Instant::now();
        let chunk: Vec<Vec<Value>> = (start..instances.min(start + CHUNK))
            .map(|i| {
                vec![json!({
                    "OP_ID": "OP_INSTANCE_CREATE", "instance_name": format!("inst{i:05}"),
                    "disk_template": "diskless", "mode": "create", "os_type": "tiny",
                    "pnode": format!("node{}", i % nodes + 1), "name_check": false,
                    "ip_check": false, "nics": [{}], "beparams": {"maxmem": 128},
                })]
            })
            .collect();
        // The queue holds at most 5000 unfinished jobs, as Ganeti's.
        let res = c.submit_many_jobs(chunk).expect("SubmitManyJobs");
        for r in res.as_array().expect("list") {
            let id = r[1].as_u64().unwrap_or_else(|| panic!("job refused: {r}"));
            wait_done(c, id);
        }
        per_chunk.push(tc.elapsed());
    }
    let total = t.elapsed();
    let chunks: Vec<String> = per_chunk
        .iter()
        .map(|d| format!("{:.1}", d.as_secs_f64()))
        .collect();
    println!(
        "created {instances} running instances on {nodes} nodes in {:.1} s \
         ({:.1} ms each); seconds per thousand: {}",
        total.as_secs_f64(),
        ms(total) / instances.max(1) as f64,
        chunks.join(" ")
    );
}

/// `gnt-instance list` end to end, and its LUXI Query alone.
fn list_bench(vc: &VCluster, c: &mut luxi::client::Client, instances: usize, nodes: usize) {
    const RUNS: usize = 11;
    let mut cli = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = vc.ok("gnt-instance", &["list"]);
        cli.push(t.elapsed());
        assert_eq!(out.lines().count(), instances + 1, "one line per instance");
    }
    let fields = ["name", "os", "pnode", "status", "oper_ram"];
    let mut live = Vec::new();
    let mut config = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        c.query("instance", &fields, Value::Null).expect("Query");
        live.push(t.elapsed());
        let t = Instant::now();
        c.query("instance", &fields[..3], Value::Null)
            .expect("Query");
        config.push(t.elapsed());
    }
    println!(
        "gnt-instance list of {instances} instances on {nodes} nodes (live data): \
         median {:.1} ms; LUXI Query alone: median {:.1} ms, without live fields {:.1} ms \
         (goal: 10,000 on 200 nodes < 100 ms)",
        ms(median(&mut cli)),
        ms(median(&mut live)),
        ms(median(&mut config))
    );
}
