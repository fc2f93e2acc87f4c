//! Live-migration benchmark on a 2-node virtual cluster with real QEMU
//! (TCG) running the test guest; prints figures and never fails on them:
//! for each migration, QEMU's total time and downtime (from the job log)
//! and the job's submit-to-done time, and the time the master adds around
//! QEMU's migration (the difference).
//!
//! Environment: BENCH_MEMORY (guest MiB, default 256), BENCH_MIGRATIONS
//! (default 6), BENCH_MIGRATION_BANDWIDTH (MiB/s, default Ganeti's 32),
//! BENCH_MIGRATION_DOWNTIME (ms, default Ganeti's 30).
//!
//! Run with `scripts/bench-migrate.sh` (release build).

// A benchmark run by hand: a failed step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use tests::guest::{kvm_cluster_with, serial_socket, Serial};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A Ganeti timestamp `[seconds, microseconds]` in seconds.
fn ts(v: &Value) -> f64 {
    v[0].as_f64().unwrap_or(0.0) + v[1].as_f64().unwrap_or(0.0) / 1e6
}

/// `(total, downtime)` in ms from the job log's "migration completed" line.
fn qemu_figures(oplog: &Value) -> Option<(u64, u64)> {
    let text = oplog.to_string();
    let at = text.find("migration completed: total time ")?;
    let rest = &text[at + "migration completed: total time ".len()..];
    let total: u64 = rest.split(' ').next()?.parse().ok()?;
    let d = rest.find("downtime ")?;
    let down: u64 = rest[d + "downtime ".len()..]
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    Some((total, down))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let memory = env_u64("BENCH_MEMORY", 256);
    let runs = env_u64("BENCH_MIGRATIONS", 6);
    let bandwidth = env_u64("BENCH_MIGRATION_BANDWIDTH", 32);
    let downtime = env_u64("BENCH_MIGRATION_DOWNTIME", 30);
    let vc = kvm_cluster_with(
        "0.92",
        2,
        &format!("migration_bandwidth={bandwidth},migration_downtime={downtime}"),
    );
    let mem = format!("maxmem={memory},minmem={memory}");
    vc.add_instance(
        "node1",
        "bench1",
        &["-t", "diskless", "--no-nics", "-B", &mem],
    );
    // Wait until the guest counts: migrations of a guest that is still
    // booting are not what users do.
    Serial::connect(&serial_socket(&vc, "bench1")).counter();

    println!(
        "live migration of a {memory} MiB guest (TCG), bandwidth {bandwidth} MiB/s, \
         max downtime {downtime} ms, {runs} runs"
    );
    println!(
        "{:>4} {:>8} {:>12} {:>12} {:>12} {:>12}",
        "run", "to", "qemu total", "downtime", "job", "master adds"
    );
    let mut c = vc.luxi();
    let (mut totals, mut downs, mut jobs, mut extra) = (vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let target = if run % 2 == 0 { "node2" } else { "node1" };
        let id = c
            .submit_job(vec![json!({
                "OP_ID": "OP_INSTANCE_MIGRATE", "instance_name": "bench1",
                "target_node": target, "mode": "live",
            })])
            .expect("submit");
        let status = vc.wait_job(id);
        let r = c
            .query_jobs(Some(&[id]), &["received_ts", "end_ts", "oplog", "opresult"])
            .expect("QueryJobs");
        if status != "success" {
            println!("run {run}: job {id} {status}: {}", r[0][3]);
            continue;
        }
        let job_ms = (ts(&r[0][1]) - ts(&r[0][0])) * 1000.0;
        let Some((total, down)) = qemu_figures(&r[0][2]) else {
            println!("run {run}: no QEMU figures in the job log");
            continue;
        };
        let adds = job_ms - total as f64;
        println!(
            "{run:>4} {target:>8} {:>9} ms {:>9} ms {:>9.0} ms {:>9.0} ms",
            total, down, job_ms, adds
        );
        totals.push(total as f64);
        downs.push(down as f64);
        jobs.push(job_ms);
        extra.push(adds);
    }
    if totals.is_empty() {
        println!("no successful migration");
        return;
    }
    println!(
        "median: QEMU total {:.0} ms, downtime {:.0} ms, job {:.0} ms, master adds {:.0} ms \
         (goal: under 200 ms)",
        median(totals),
        median(downs),
        median(jobs),
        median(extra)
    );
}
