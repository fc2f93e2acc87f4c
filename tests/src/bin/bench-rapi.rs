//! RAPI benchmark: prints figures, never fails on them.
//!
//! On a virtual cluster of `BENCH_NODES` nodes (default 3) with
//! `BENCH_INSTANCES` running instances (default 1000; the design goal's
//! case is 10,000 on 200 nodes):
//!
//! - bulk listing: `GET /2/instances?bulk=1` and `gnt-instance list`
//!   (goal: both under 100 ms), and names only, `GET /2/instances` (goal:
//!   under 20 ms); medians of 11 requests on one kept-alive connection
//!   (curl), so the TLS handshake is not counted. The master reuses the
//!   nodes' instance lists for up to a second between opcodes, so these
//!   medians mostly read kept lists; the "cold" figures are medians of
//!   requests each made right after a job, which asks every node again;
//! - throughput: requests per second of `GET /2/info` and
//!   `GET /2/instances/<name>` from 50 concurrent connections (wrk);
//! - load: 200 concurrent connections doing GETs and, one request in ten,
//!   job submissions (dry-run startups): errors, and ganeti-rapi's
//!   resident memory before and after.
//!
//! Needs curl and wrk (`scripts/bench-rapi.sh` installs them).

// A benchmark run by hand: a failed step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tests::VCluster;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn wait_done(c: &mut luxi::client::Client, id: u64) {
    loop {
        let r = c.query_jobs(Some(&[id]), &["status"]).expect("QueryJobs");
        let st = r[0][0].as_str().unwrap_or_default().to_string();
        if ["success", "error", "canceled"].contains(&st.as_str()) {
            assert_eq!(st, "success", "job {id}");
            return;
        }
        let _ = c.wait_for_job_change(id, &["status"], json!([st]), Value::Null, 5);
    }
}

/// Creates `instances` running diskless instances spread over the nodes.
fn create(c: &mut luxi::client::Client, instances: usize, nodes: usize) {
    const CHUNK: usize = 1000;
    let t = Instant::now();
    for start in (0..instances).step_by(CHUNK) {
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
        let res = c.submit_many_jobs(chunk).expect("SubmitManyJobs");
        for r in res.as_array().expect("a list") {
            let id = r[1].as_u64().unwrap_or_else(|| panic!("job refused: {r}"));
            wait_done(c, id);
        }
    }
    println!(
        "created {instances} running instances on {nodes} nodes in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

/// Runs a job that does nothing (`OP_TEST_DELAY` of 0 s) and waits for
/// it: the master then asks the nodes again for the next query.
fn run_a_job(c: &mut luxi::client::Client) {
    let id = c
        .submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.0})])
        .expect("SubmitJob");
    wait_done(c, id);
}

/// Median of `n` runs of `f`, each right after a job (so with live data
/// asked of every node), in ms.
fn cold_median(c: &mut luxi::client::Client, n: usize, mut f: impl FnMut() -> f64) -> f64 {
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            run_a_job(c);
            f()
        })
        .collect();
    median(&mut v)
}

/// One GET of `url` (a new connection; curl's time from the request sent
/// to the last byte, the TLS handshake left out), in ms.
fn curl_once(url: &str) -> f64 {
    let out = Command::new("curl")
        .args([
            "-k",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{time_appconnect} %{time_total}",
            url,
        ])
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .map(|t| t.parse::<f64>().unwrap_or(f64::NAN))
        .collect();
    assert_eq!(v.len(), 2, "curl: {text}");
    (v[1] - v[0]) * 1e3
}

/// Medians of `n` GETs of `url` on one connection: (total ms, bytes).
fn curl_median(url: &str, n: usize) -> (f64, u64) {
    let mut cmd = Command::new("curl");
    cmd.args(["-k", "-s", "-w", "%{time_total} %{size_download}\\n"]);
    for _ in 0..n {
        cmd.args(["-o", "/dev/null", url]);
    }
    let out = cmd.output().expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut times = Vec::new();
    let mut size = 0;
    for l in text.lines() {
        let mut it = l.split_whitespace();
        if let (Some(t), Some(s)) = (it.next(), it.next()) {
            times.push(t.parse::<f64>().unwrap_or(f64::NAN) * 1e3);
            size = s.parse().unwrap_or(0);
        }
    }
    assert_eq!(times.len(), n, "curl: {text}");
    // The first includes the TLS handshake.
    (median(&mut times[1..]), size)
}

/// `wrk` for `secs` seconds with `conns` connections; its summary lines.
fn wrk(url: &str, conns: usize, secs: u64, script: Option<&str>) -> String {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t",
        "2",
        "-c",
        &conns.to_string(),
        "-d",
        &format!("{secs}s"),
        "--timeout",
        "10s",
    ]);
    if let Some(s) = script {
        cmd.args(["-s", s]);
    }
    let out = cmd.arg(url).output().expect("running wrk");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn wrk_figure(out: &str) -> String {
    let rps = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .map(str::trim)
        .unwrap_or("?");
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .map(str::trim)
        .collect();
    let latency = out
        .lines()
        .find(|l| l.trim().starts_with("Latency"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "{rps} requests/s ({latency}); errors: {}",
        if errors.is_empty() {
            "none".to_string()
        } else {
            errors.join("; ")
        }
    )
}

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let instances = env_usize("BENCH_INSTANCES", 1000);
    let nodes = env_usize("BENCH_NODES", 3);
    assert!(
        (1..=250).contains(&nodes),
        "BENCH_NODES={nodes}: expected 1 to 250 (one address per node in 127.0.92.0/24)"
    );
    std::env::set_var("GANETI_FAKE_MEMORY", "10000000");
    let t = Instant::now();
    let vc = VCluster::up("0.92", nodes);
    println!(
        "virtual cluster of {nodes} nodes up in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    std::fs::write(vc.paths().rapi_users(), "bench benchpw write\n").expect("users file");
    let mut c = vc.luxi();
    create(&mut c, instances, nodes);
    let base = format!("https://{}:5080", vc.master_ip());

    // Bulk listing.
    let (bulk, size) = curl_median(&format!("{base}/2/instances?bulk=1"), 12);
    let (names, _) = curl_median(&format!("{base}/2/instances"), 12);
    let mut cli = Vec::new();
    for _ in 0..11 {
        let t = Instant::now();
        vc.ok("gnt-instance", &["list"]);
        cli.push(ms(t.elapsed()));
    }
    let bulk_url = format!("{base}/2/instances?bulk=1");
    let bulk_cold = cold_median(&mut c, 5, || curl_once(&bulk_url));
    let cli_cold = cold_median(&mut c, 5, || {
        let t = Instant::now();
        vc.ok("gnt-instance", &["list"]);
        ms(t.elapsed())
    });
    println!(
        "GET /2/instances?bulk=1 ({instances} instances, {} KiB): median {bulk:.1} ms (goal < 100 ms); cold (right after a job, every node asked): {bulk_cold:.1} ms",
        size / 1024
    );
    println!("GET /2/instances (names only): median {names:.1} ms (goal < 20 ms)");
    println!(
        "gnt-instance list: median {:.1} ms (goal < 100 ms); cold: {cli_cold:.1} ms",
        median(&mut cli)
    );

    // Throughput.
    println!(
        "GET /2/info, 50 connections, 10 s: {}",
        wrk_figure(&wrk(&format!("{base}/2/info"), 50, 10, None))
    );
    println!(
        "GET /2/instances/inst00000, 50 connections, 10 s: {}",
        wrk_figure(&wrk(&format!("{base}/2/instances/inst00000"), 50, 10, None))
    );

    // 200 connections, GETs and job submissions.
    let pid = std::fs::read_to_string(vc.paths().rapi_pid())
        .expect("ganeti-rapi's pid file")
        .trim()
        .to_string();
    let before = rss_kib(&pid);
    let script = std::env::temp_dir().join(format!("bench-rapi-{}.lua", std::process::id()));
    std::fs::write(
        &script,
        r#"
local n = 0
request = function()
  n = n + 1
  if n % 10 == 0 then
    return wrk.format("PUT", "/2/instances/inst00000/startup?dry-run=1",
      {["Authorization"] = "Basic YmVuY2g6YmVuY2hwdw=="})
  end
  return wrk.format("GET", "/2/info")
end
"#,
    )
    .expect("writing the wrk script");
    let out = wrk(&base, 200, 10, script.to_str());
    let _ = std::fs::remove_file(&script);
    let after = rss_kib(&pid);
    println!(
        "200 connections, GET /2/info and one in ten a job submission, 10 s: {}",
        wrk_figure(&out)
    );
    println!(
        "ganeti-rapi resident memory: {} MiB before, {} MiB after",
        before / 1024,
        after / 1024
    );
}
