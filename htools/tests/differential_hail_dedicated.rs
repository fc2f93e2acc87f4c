//! Differential test of hail against Debian's Ganeti 3.0 hail on generated
//! iallocator requests for dedicated groups (every node with exclusive
//! storage), where both must choose nodes by the lost-allocations metric:
//! the same success, the same chosen nodes and the same info text.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Map, Value};

use htools::gen::Rng;

mod common;
use common::*;

fn ispec(mem: i64, cpu: i64, dsk: i64, disks: i64, spindles: i64) -> Value {
    json!({
        "cpu-count": cpu, "disk-count": disks, "disk-size": dsk,
        "memory-size": mem, "nic-count": 1, "spindle-use": spindles
    })
}

/// A policy of `pairs` disjoint min/max pairs, small to large; returns the
/// policy and, per pair, a size (mem, cpu, disk) inside it.
fn policy(rng: &mut Rng, pairs: usize) -> (Value, Vec<(i64, i64, i64)>) {
    let mut minmax = Vec::new();
    let mut sizes = Vec::new();
    for j in 1..=pairs as i64 {
        let mem = 1024 * j + rng.range(-20, 20);
        let dsk = 10240 * j + rng.range(-50, 50);
        minmax.push(json!({
            "min": ispec(mem - 100, j, dsk - 500, 1, 1),
            "max": ispec(mem + 100, j, dsk + 500, 4, 4),
        }));
        sizes.push((mem + rng.range(-100, 101), j, dsk + rng.range(-500, 501)));
    }
    let pol = json!({
        "disk-templates": ["plain", "drbd"],
        "minmax": minmax,
        "spindle-ratio": 1.0,
        "std": ispec(1024, 1, 10240, 1, 1),
        "vcpu-ratio": 1.0,
    });
    (pol, sizes)
}

fn disk_inst(name: &str, mem: i64, cpu: i64, dsk: i64, dt: &str, nodes: Vec<String>) -> Value {
    json!({
        "disk_space_total": dsk, "disk_template": dt,
        "disks": [{"mode": "rw", "size": dsk, "spindles": 1}],
        "memory": mem, "nics": [], "nodes": nodes, "spindle_use": 1,
        "tags": [], "vcpus": cpu, "name": name, "hypervisor": "xen-pvm",
        "os": "debootstrap", "required_nodes": if dt == "drbd" { 2 } else { 1 },
    })
}

/// What to ask for.
#[derive(Clone, Copy, Debug)]
enum Ask {
    One {
        group: bool,
        drbd: bool,
    },
    /// One plain instance in the second group (not dedicated).
    InOther,
    Multi {
        group: bool,
        count: usize,
    },
}

/// A cluster with a dedicated group (and, if `second` is given, a second
/// group without exclusive storage of that allocation policy) and a
/// request.
fn request(seed: u64, pairs: usize, second: Option<&str>, ask: Ask) -> Value {
    let mut rng = Rng::new(seed);
    let (pol, sizes) = policy(&mut rng, pairs);
    let mut groups = Map::new();
    groups.insert(
        "uuid-ded".into(),
        json!({"alloc_policy": "preferred", "ipolicy": pol, "name": "ded",
               "networks": [], "tags": []}),
    );
    if let Some(p) = second {
        groups.insert(
            "uuid-other".into(),
            json!({"alloc_policy": p, "ipolicy": pol, "name": "other",
                   "networks": [], "tags": []}),
        );
    }
    let nnodes = 4 + rng.range(0, 4) as usize;
    let mut nodes = Map::new();
    let mut insts = Map::new();
    let node =
        |name: String, group: &str, excl: bool, rng: &mut Rng, insts: &mut Map<String, Value>| {
            let tmem = 4096 * rng.range(1, 4);
            let tdsk = 40960 * rng.range(1, 4);
            let tsp = rng.range(3, 9);
            let (mut fmem, mut fdsk, mut fsp) = (tmem, tdsk, tsp);
            // a few existing instances, within the node's means
            for k in 0..rng.range(0, 4) {
                let (mem, cpu, dsk) = sizes[rng.range(0, sizes.len() as i64) as usize];
                if mem >= fmem || dsk > fdsk || fsp < 1 {
                    break;
                }
                fmem -= mem;
                fdsk -= dsk;
                fsp -= 1;
                let iname = format!("{name}-i{k}");
                insts.insert(
                    iname.clone(),
                    disk_inst(&iname, mem, cpu, dsk, "plain", vec![name.clone()]),
                );
            }
            json!({
                "drained": false, "free_disk": fdsk, "free_memory": fmem,
                "free_spindles": fsp, "group": group, "master_candidate": true,
                "master_capable": true,
                "ndparams": {"exclusive_storage": excl, "spindle_count": 1},
                "offline": false, "primary_ip": "192.0.2.1", "reserved_cpus": 0,
                "reserved_memory": 0, "secondary_ip": "198.51.100.1", "tags": [],
                "total_cpus": 8, "total_disk": tdsk, "total_memory": tmem,
                "total_spindles": tsp, "vm_capable": true,
            })
        };
    for i in 0..nnodes {
        let name = format!("ded{i}");
        let v = node(name.clone(), "uuid-ded", true, &mut rng, &mut insts);
        nodes.insert(name, v);
    }
    if second.is_some() {
        for i in 0..3 {
            let name = format!("other{i}");
            let v = node(name.clone(), "uuid-other", false, &mut rng, &mut insts);
            nodes.insert(name, v);
        }
    }
    let new = |k: usize, drbd: bool, group: bool, rng: &mut Rng| {
        let (mem, cpu, dsk) = sizes[rng.range(0, sizes.len() as i64) as usize];
        let mut v = disk_inst(
            &format!("new{k}"),
            mem,
            cpu,
            dsk,
            if drbd { "drbd" } else { "plain" },
            Vec::new(),
        );
        if let Value::Object(o) = &mut v {
            o.remove("nodes");
            if group {
                o.insert("group_name".into(), json!("ded"));
            }
        }
        v
    };
    let req = match ask {
        Ask::One { group, drbd } => {
            let mut r = new(0, drbd, group, &mut rng);
            r["type"] = json!("allocate");
            r
        }
        Ask::InOther => {
            let mut r = new(0, false, false, &mut rng);
            r["type"] = json!("allocate");
            r["group_name"] = json!("other");
            r
        }
        Ask::Multi { group, count } => {
            // as Ganeti reads it, the group of a multi-allocation is the
            // request's, not the instances'
            let list: Vec<Value> = (0..count).map(|k| new(k, false, false, &mut rng)).collect();
            let mut r = json!({"type": "multi-allocate", "instances": list});
            if group {
                r["group_name"] = json!("ded");
            }
            r
        }
    };
    json!({
        "cluster_tags": [], "nodegroups": groups, "nodes": nodes,
        "instances": insts, "request": req,
        // on KVM, Ganeti takes a static node memory (4096 MiB by default)
        "enabled_hypervisors": [if seed.is_multiple_of(2) { "kvm" } else { "xen-pvm" }],
        "ipolicy": pol, "cluster_name": "cluster", "version": 2,
    })
}

/// Allocations and multi-allocations (with and without a group, plain and
/// DRBD, 1 to 3 min/max pairs, with a second group that is unallocable,
/// so the cluster still counts as dedicated, or preferred, so that only
/// requests naming the dedicated group use the metric): Debian's hail and
/// ours answer the same.
#[test]
fn dedicated_allocations_match_ganeti() {
    let Some(deb) = debian_tool("hail") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // HAIL_DIFF_KEEP=<dir> keeps the generated requests for inspection
    let keep = std::env::var_os("HAIL_DIFF_KEEP").map(std::path::PathBuf::from);
    let out_dir = keep.as_deref().unwrap_or(dir.path());
    let asks = [
        Ask::One {
            group: false,
            drbd: false,
        },
        Ask::One {
            group: true,
            drbd: false,
        },
        Ask::One {
            group: false,
            drbd: true,
        },
        Ask::Multi {
            group: false,
            count: 3,
        },
        Ask::Multi {
            group: true,
            count: 3,
        },
        Ask::InOther,
    ];
    let mut failures = Vec::new();
    let (mut same, mut succeeded, mut total) = (0, 0, 0);
    for seed in 1..=8u64 {
        for pairs in 1..=3usize {
            for second in [None, Some("unallocable"), Some("preferred")] {
                for ask in asks {
                    let normal_path = second == Some("preferred");
                    // requests naming the other group are asked only when
                    // that group is allocable (preferred)
                    let skip = matches!(ask, Ask::InOther) && !normal_path;
                    if skip {
                        continue;
                    }
                    let body = request(seed * 31 + pairs as u64, pairs, second, ask);
                    let p = out_dir.join(format!("r{seed}-{pairs}-{total}.json"));
                    std::fs::write(&p, body.to_string()).expect("write");
                    let f = p.to_str().expect("utf8 path");
                    total += 1;
                    let (_, theirs, terr) = run(&deb, &[f]);
                    let (_, ours, oerr) = run(&our_bin("hail"), &[f]);
                    let t: Value = serde_json::from_str(&theirs).unwrap_or_default();
                    let o: Value = serde_json::from_str(&ours).unwrap_or_default();
                    if t.is_null() {
                        failures.push(format!("{f}: Ganeti's hail gave no response: {terr}"));
                        continue;
                    }
                    if t["success"] == json!(true) {
                        succeeded += 1;
                    }
                    if t == o {
                        same += 1;
                    } else {
                        failures.push(format!(
                            "{f} ({ask:?}, second group {second:?}):\n ganeti {theirs}\n ours   {ours}{oerr}"
                        ));
                    }
                }
            }
        }
    }
    eprintln!("dedicated requests: {same} of {total} answered as Ganeti ({succeeded} successful)");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // the requests must exercise successful placements, or the test shows little
    assert!(
        succeeded * 2 >= total,
        "only {succeeded} of {total} succeeded"
    );
}
