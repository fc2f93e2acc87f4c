//! Job queue benchmark with a no-op executor: jobs per second and
//! submit-to-done latency. It prints figures and never fails on them.
//!
//! `cargo test --release -p masterd --lib jobqueue::bench -- --ignored --nocapture`

use std::sync::Arc;
use std::time::{Duration, Instant};

use luxi::opcodes::Common;
use luxi::GanetiError;
use serde_json::{json, Value};

use super::*;

struct NoopExec;

struct NoopOp(Common);

impl QueueOp for NoopOp {
    fn common(&self) -> &Common {
        &self.0
    }

    fn summary(&self) -> String {
        "TEST_NOOP".into()
    }
}

impl OpExecutor for NoopExec {
    type Op = NoopOp;

    fn parse(&self, _op: &Value) -> Result<NoopOp, GanetiError> {
        Ok(NoopOp(Common::default()))
    }

    fn execute(&self, ctx: OpContext, _op: Arc<NoopOp>) -> OpFuture {
        Box::pin(async move {
            ctx.set_running();
            Ok(Value::Null)
        })
    }
}

/// Submits one job and waits until it is finished; returns the latency.
async fn submit_and_wait(q: &JobQueue) -> Duration {
    let t0 = Instant::now();
    let id = q
        .submit(vec![json!({"OP_ID": "OP_TEST_NOOP"})])
        .await
        .expect("submit");
    let fields = vec!["status".to_string()];
    let mut prev = Value::Null;
    loop {
        let r = q
            .wait_for_job_change(id, &fields, prev.clone(), json!(0), Duration::from_secs(10))
            .await
            .expect("wait");
        if r == json!("nochange") {
            continue;
        }
        if matches!(r[0][0].as_str(), Some("success" | "error" | "canceled")) {
            return t0.elapsed();
        }
        prev = r[0].clone();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn report(name: &str, mut lat: Vec<Duration>, elapsed: Duration) {
    lat.sort_unstable();
    println!(
        "{name}: {} jobs in {:.3} s = {:.0} jobs/s; submit-to-done p50 {:.2} ms, p99 {:.2} ms (goal: 1000+ jobs/s, p50 < 5 ms)",
        lat.len(),
        elapsed.as_secs_f64(),
        lat.len() as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
    );
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture in release mode"]
fn bench_job_queue() {
    let disk = tempfile::tempdir().expect("tempdir");
    run_bench("disk", disk.path());
    // The same on tmpfs: the queue's own cost, without the disk's fsync.
    if let Ok(shm) = tempfile::tempdir_in("/dev/shm") {
        run_bench("tmpfs", shm.path());
    }
}

fn run_bench(label: &str, dir: &std::path::Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let q = JobQueue::open(
        &dir.join("queue.db"),
        QueueOptions::default(),
        Arc::new(NoopExec),
    )
    .expect("open");
    rt.block_on(async {
        q.start();
        // One client at a time: latency without contention.
        let n = 300;
        let t0 = Instant::now();
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            lat.push(submit_and_wait(&q).await);
        }
        report(
            &format!("{label}, sequential (1 client)"),
            lat,
            t0.elapsed(),
        );

        // Many clients at once: throughput with group commit.
        for clients in [16usize, 64] {
            let per_client = 4000 / clients;
            let t0 = Instant::now();
            let tasks: Vec<_> = (0..clients)
                .map(|_| {
                    let q = Arc::clone(&q);
                    tokio::spawn(async move {
                        let mut lat = Vec::with_capacity(per_client);
                        for _ in 0..per_client {
                            lat.push(submit_and_wait(&q).await);
                        }
                        lat
                    })
                })
                .collect();
            let mut lat = Vec::new();
            for t in tasks {
                lat.extend(t.await.expect("client task"));
            }
            report(
                &format!("{label}, concurrent ({clients} clients)"),
                lat,
                t0.elapsed(),
            );
            q.auto_archive(-1, 60).await.expect("archive");
        }
    });
}
