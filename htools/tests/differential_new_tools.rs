//! Differential tests of hsqueeze, hroller's full evacuation and harep
//! against Debian's Ganeti 3.0 htools, on generated clusters.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use htools::gen::{generate, GenSpec, Rng};
use serde_json::{json, Value};

mod common;
use common::*;

fn compare(tool: &str, deb: &Path, args: &[&str], mask: fn(&str) -> String) -> Option<String> {
    let (_, theirs, terr) = run(deb, args);
    let (_, ours, oerr) = run(&our_bin(tool), args);
    let (t, o) = (mask(&theirs), mask(&ours));
    (t != o).then(|| format!("{tool} {args:?}\n--- ganeti\n{t}{terr}--- ours\n{o}{oerr}"))
}

fn same(s: &str) -> String {
    s.to_string()
}

/// Keeps the plan and the set of moves, not their order nor their job
/// sets: among moves of equal gain, which comes first is hbal's search's
/// choice (it breaks exact ties differently from Ganeti's).
fn mask_move_order(s: &str) -> String {
    let mut moves: Vec<&str> = Vec::new();
    let mut out = String::new();
    for l in s.lines() {
        let t = l.trim_start();
        if t.starts_with("gnt-instance ") {
            moves.push(t);
        } else if !t.starts_with("echo job") {
            out.push_str(l);
            out.push('\n');
        }
    }
    moves.sort_unstable();
    out.push_str(&moves.join("\n"));
    out
}

/// A cluster for hsqueeze: equal nodes, the master first; most instances
/// externally mirrored, some plain (their nodes stay on), some DRBD (their
/// secondaries stay on); some offline nodes tagged as standby.
fn squeeze_cluster(seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let nodes = rng.range(4, 10) as usize;
    let standby = rng.range(0, 3) as usize;
    let (tmem, tdsk, tcpu) = (rng.range(8, 33) * 1024, 500 * 1024, rng.range(8, 33));
    let mut free = vec![tmem - 1024; nodes + standby];
    let mut insts = String::new();
    let count = rng.range(0, 4 * nodes as i64);
    for k in 0..count {
        let p = rng.range(0, nodes as i64) as usize;
        let mem = [512, 1024, 2048, 4096][rng.range(0, 4) as usize];
        if free[p] - mem < 1024 {
            continue;
        }
        free[p] -= mem;
        let kind = rng.range(0, 10);
        let (tmpl, snode) = match kind {
            0 => ("plain", String::new()),
            1 => {
                let s = (p + 1) % nodes;
                ("drbd", format!("node-{s:02}"))
            }
            _ => ("ext", String::new()),
        };
        let _ = writeln!(
            insts,
            "inst-{k:03}|{mem}|10240|{}|running|Y|node-{p:02}|{snode}|{tmpl}||1",
            rng.range(1, 5)
        );
    }
    let mut out = String::from("group-01|fake-uuid-01|preferred||\n\n");
    for (n, f) in free.iter().enumerate() {
        let (flag, tags) = if n >= nodes {
            ('Y', "htools:standby:manual")
        } else if n == 0 {
            ('M', "")
        } else {
            ('N', "")
        };
        let f = if n >= nodes { tmem - 1024 } else { *f };
        let _ = writeln!(
            out,
            "node-{n:02}|{tmem}|1024|{f}|{tdsk}|{tdsk}|{tcpu}|{flag}|fake-uuid-01|1|{tags}"
        );
    }
    let std_mem = [512, 1024, 2048][rng.range(0, 3) as usize];
    let std_cpu = rng.range(1, 4);
    let _ = write!(
        out,
        "\n{insts}\n|{std_mem},{std_cpu},1024,1,1,1|128,1,1024,1,1,1;32768,8,1048576,16,8,12|ext,plain,drbd|4.0|32.0\n"
    );
    out
}

/// hsqueeze: the same plan (nodes to power off or on, and the commands)
/// on generated clusters, at several resource targets.
#[test]
fn hsqueeze_plans_match_ganeti() {
    let Some(deb) = debian_tool("hsqueeze") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for seed in 1..=12u64 {
        let f = dir.path().join(format!("squeeze-{seed}.data"));
        std::fs::write(&f, squeeze_cluster(seed)).expect("write");
        let p = f.to_str().expect("utf8");
        for extra in [
            &[][..],
            &["--target-resources=1.0"],
            &["--minimal-resources=6", "--target-resources=8"],
        ] {
            let mut args = vec!["-v", "-C", "-t", p];
            args.extend_from_slice(extra);
            failures.extend(compare("hsqueeze", &deb, &args, mask_move_order));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// hroller: the same reboot groups and moves with `--full-evacuation` and
/// `--print-moves` on generated clusters of DRBD and plain instances.
#[test]
fn hroller_full_evacuation_matches_ganeti() {
    let Some(deb) = debian_tool("hroller") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for seed in 1..=6u64 {
        let text = generate(&GenSpec {
            nodes: 6 + seed as usize,
            instances: 10 + 3 * seed as usize,
            seed,
            node_mem: 32 * 1024,
            drbd_percent: 70,
            offline: (seed % 3 == 0) as usize,
            ..Default::default()
        })
        .replacen("|N|uuid-default", "|M|uuid-default", 1);
        let f = dir.path().join(format!("roller-{seed}.data"));
        std::fs::write(&f, text).expect("write");
        let p = f.to_str().expect("utf8");
        for extra in [
            &["--full-evacuation"][..],
            &["--full-evacuation", "--one-step-only"],
            &["--full-evacuation", "--offline-maintenance"],
            &["--ignore-non-redundant", "--full-evacuation"],
            &["--skip-non-redundant"],
        ] {
            let mut args = vec!["--print-moves", "-t", p];
            args.extend_from_slice(extra);
            failures.extend(compare("hroller", &deb, &args, same));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A LUXI master that answers the queries htools make from fixed tables,
/// reports the given status for every job, and records submitted jobs.
struct FakeMaster {
    nodes: Vec<Value>,
    instances: Vec<Value>,
    groups: Vec<Value>,
    info: Value,
    job_status: &'static str,
    submitted: Mutex<Vec<Value>>,
}

impl FakeMaster {
    fn answer(&self, method: &str, args: &Value) -> Value {
        match method {
            "Query" => {
                let rows = match args[0].as_str() {
                    Some("node") => &self.nodes,
                    Some("instance") => &self.instances,
                    _ => &self.groups,
                };
                let fields: Vec<&str> = args[1]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let data: Vec<Value> = rows
                    .iter()
                    .map(|r| {
                        let row: Vec<Value> = fields
                            .iter()
                            .map(|f| match r.get(*f) {
                                Some(v) => json!([0, v]),
                                None => json!([1, null]),
                            })
                            .collect();
                        json!(row)
                    })
                    .collect();
                let defs: Vec<Value> = fields
                    .iter()
                    .map(|f| json!({"name": f, "title": f, "kind": "other", "doc": f}))
                    .collect();
                json!({"fields": defs, "data": data})
            }
            "QueryClusterInfo" => self.info.clone(),
            "QueryJobs" => {
                let n = args[0].as_array().map(Vec::len).unwrap_or(0);
                json!(vec![json!([self.job_status]); n])
            }
            "SubmitJob" => {
                let mut s = self.submitted.lock().unwrap();
                s.push(args[0].clone());
                json!(1000 + s.len())
            }
            "WaitForJobChange" => json!([["success"], []]),
            _ => Value::Null,
        }
    }

    fn serve(self: Arc<Self>, listener: UnixListener) {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let me = self.clone();
            std::thread::spawn(move || me.session(stream));
        }
    }

    fn session(&self, stream: UnixStream) {
        let mut w = stream.try_clone().expect("clone");
        let mut r = BufReader::new(stream);
        loop {
            let mut buf = Vec::new();
            match r.read_until(3, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            buf.pop();
            let Ok(req) = serde_json::from_slice::<Value>(&buf) else {
                return;
            };
            let method = req["method"].as_str().unwrap_or("");
            let result = self.answer(method, &req["args"]);
            let mut out = json!({"success": true, "result": result})
                .to_string()
                .into_bytes();
            out.push(3);
            if w.write_all(&out).is_err() {
                return;
            }
        }
    }
}

fn ispec(mem: i64, cpu: i64) -> Value {
    json!({"memory-size": mem, "cpu-count": cpu, "disk-size": 1024, "disk-count": 1,
           "nic-count": 1, "spindle-use": 1})
}

fn ipolicy() -> Value {
    json!({"minmax": [{"min": ispec(128, 1), "max": ispec(32768, 8)}], "std": ispec(1024, 1),
           "disk-templates": ["drbd", "plain", "ext"], "vcpu-ratio": 4.0, "spindle-ratio": 32.0})
}

/// A cluster for harep: DRBD and plain instances over nodes some of which
/// are offline, repair policies at cluster, group and instance level, and
/// some instances with records of earlier repairs.
fn repair_master(seed: u64, job_status: &'static str) -> FakeMaster {
    let mut rng = Rng::new(seed);
    let types = ["fix-storage", "migrate", "failover", "reinstall"];
    let pick = |rng: &mut Rng| types[rng.range(0, 4) as usize];
    let policy_tags = |rng: &mut Rng| -> Vec<String> {
        match rng.range(0, 6) {
            0 => vec![format!("ganeti:watcher:autorepair:{}", pick(rng))],
            1 => vec!["ganeti:watcher:autorepair:suspend:".into()],
            2 => vec![
                format!("ganeti:watcher:autorepair:{}", pick(rng)),
                format!("ganeti:watcher:autorepair:{}", pick(rng)),
            ],
            _ => vec![],
        }
    };
    let groups: Vec<Value> = (0..2)
        .map(|g| {
            json!({"uuid": format!("uuid-g{g}"), "name": format!("group{g}"),
                   "alloc_policy": "preferred", "ipolicy": ipolicy(), "tags": policy_tags(&mut rng)})
        })
        .collect();
    let n = 6usize;
    let nodes: Vec<Value> = (0..n)
        .map(|i| {
            json!({"name": format!("node{i}"), "mtotal": 32768, "mnode": 1024, "mfree": 16384,
                   "dtotal": 1_000_000, "dfree": 500_000, "ctotal": 16, "cnos": 1,
                   "offline": i > 0 && rng.range(0, 3) == 0, "drained": false, "vm_capable": true,
                   "ndp/spindle_count": 1, "group.uuid": format!("uuid-g{}", i % 2), "tags": [],
                   "ndp/exclusive_storage": false, "sptotal": 1, "spfree": 1, "ndp/cpu_speed": 1.0})
        })
        .collect();
    let instances: Vec<Value> = (0..10)
        .map(|k| {
            let p = rng.range(0, n as i64) as usize;
            let drbd = rng.range(0, 3) > 0;
            // secondaries in the primary's group
            let s = (p + 2) % n;
            let mut tags = policy_tags(&mut rng);
            match rng.range(0, 8) {
                0 => tags.push(format!(
                    "ganeti:watcher:autorepair:pending:{}:id-{k}:1000{k}:{}",
                    pick(&mut rng),
                    500 + k
                )),
                1 => tags.push(format!(
                    "ganeti:watcher:autorepair:result:{}:id-{k}:1000{k}:failure:{}",
                    pick(&mut rng),
                    500 + k
                )),
                2 => tags.push(format!(
                    "ganeti:watcher:autorepair:result:{}:id-{k}:1000{k}:success:{}",
                    pick(&mut rng),
                    500 + k
                )),
                _ => {}
            }
            json!({"name": format!("inst{k}"), "disk_usage": 10240, "be/memory": 1024,
                   "be/vcpus": 1, "status": "running", "pnode": format!("node{p}"),
                   "snodes": if drbd { vec![format!("node{s}")] } else { vec![] },
                   "tags": tags, "be/auto_balance": true,
                   "disk_template": if drbd { "drbd" } else { "plain" },
                   "be/spindle_use": 1, "disk.sizes": [10240], "disk.spindles": [null],
                   "forthcoming": false})
        })
        .collect();
    let info = json!({"tags": policy_tags(&mut rng), "ipolicy": ipolicy(), "master": "node0",
                      "default_hypervisor": "kvm", "enabled_hypervisors": ["kvm"]});
    FakeMaster {
        nodes,
        instances,
        groups,
        info,
        job_status,
        submitted: Mutex::new(Vec::new()),
    }
}

/// Masks what is random or time-dependent in harep's output: repair ids
/// and times in tags, and the opcodes of `jobs:` lines but their kinds.
fn mask_harep(out: &str) -> String {
    out.lines()
        .map(|l| {
            if let Some(j) = l.strip_prefix("jobs: ") {
                let v: Value = serde_json::from_str(j).unwrap_or_default();
                let ids: Vec<String> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|job| job.as_array().cloned().unwrap_or_default())
                    .map(|op| op["OP_ID"].as_str().unwrap_or("?").to_string())
                    .collect();
                return format!("jobs: {}\n", ids.join(","));
            }
            let mut f: Vec<String> = l.split(':').map(str::to_string).collect();
            // ganeti:watcher:autorepair:(pending|result):TYPE:ID:TIME:...
            if f.len() >= 7 && f[2] == "autorepair" && (f[3] == "pending" || f[3] == "result") {
                if !f[5].starts_with("id-") {
                    f[5] = "ID".into();
                }
                if f[6].len() >= 10 {
                    f[6] = "TIME".into();
                }
            }
            format!("{}\n", f.join(":"))
        })
        .collect()
}

fn start(master: FakeMaster, dir: &Path, name: &str) -> (String, Arc<FakeMaster>) {
    let sock = dir.join(name);
    let listener = UnixListener::bind(&sock).expect("bind");
    let m = Arc::new(master);
    let m2 = m.clone();
    std::thread::spawn(move || m2.serve(listener));
    (sock.to_str().expect("utf8").to_string(), m)
}

/// harep --dry-run: the same repairs decided, the same tag changes and
/// states, on generated clusters, with repair jobs still running and with
/// them finished (successfully or not).
#[test]
fn harep_actions_match_ganeti() {
    let Some(deb) = debian_tool("harep") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for seed in 1..=10u64 {
        for status in ["running", "success", "error"] {
            let (sock, _) = start(
                repair_master(seed, status),
                dir.path(),
                &format!("s{seed}-{status}"),
            );
            let arg = format!("--luxi={sock}");
            failures.extend(compare(
                "harep",
                &deb,
                &[&arg, "--dry-run", "--job-delay=0"],
                mask_harep,
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Without --dry-run, harep submits the repair job and then sets the
/// pending tag naming it.
#[test]
fn harep_submits_the_repair_then_tags_it_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut master = repair_master(1, "success");
    master.info["tags"] = json!(["ganeti:watcher:autorepair:reinstall"]);
    for g in master.groups.iter_mut() {
        g["tags"] = json!([]);
    }
    for n in master.nodes.iter_mut() {
        n["offline"] = json!(false);
    }
    master.nodes[1]["offline"] = json!(true);
    master.instances = vec![
        json!({"name": "inst0", "disk_usage": 10240, "be/memory": 1024,
        "be/vcpus": 1, "status": "running", "pnode": "node1", "snodes": ["node3"],
        "tags": [], "be/auto_balance": true, "disk_template": "drbd", "be/spindle_use": 1,
        "disk.sizes": [10240], "disk.spindles": [null], "forthcoming": false}),
    ];
    let (sock, m) = start(master, dir.path(), "submit");
    let arg = format!("--luxi={sock}");
    let (ok, out, err) = run(&our_bin("harep"), &[&arg, "--job-delay=0"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("Executing ArFailover repair on inst0"),
        "{out}"
    );
    let jobs = m.submitted.lock().unwrap().clone();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[0][0]["OP_ID"], "OP_INSTANCE_FAILOVER");
    assert_eq!(jobs[1][0]["OP_ID"], "OP_TAGS_SET");
    let tag = jobs[1][0]["tags"][0].as_str().unwrap_or("");
    assert!(
        tag.starts_with("ganeti:watcher:autorepair:pending:failover:") && tag.ends_with(":1001"),
        "{tag}"
    );
    assert!(out.contains("Pending repair: 1"), "{out}");
}
