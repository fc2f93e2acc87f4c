//! The LUXI backend (`-L [SOCKET]`): the cluster as the master daemon
//! reports it, through the same queries Ganeti's htools make (nodes,
//! instances and groups with fixed field lists, and the cluster info); and
//! the execution of a move plan as jobs (`hbal -X`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::model::{Cluster, Disk, Group, Instance, Node};
use crate::types::{AllocPolicy, DiskTemplate, IPolicy, InstanceStatus, TemplateExt, NO_SECONDARY};

/// Node fields, in the order Ganeti's htools ask for them.
pub const NODE_FIELDS: [&str; 18] = [
    "name",
    "mtotal",
    "mnode",
    "mfree",
    "dtotal",
    "dfree",
    "ctotal",
    "cnos",
    "offline",
    "drained",
    "vm_capable",
    "ndp/spindle_count",
    "group.uuid",
    "tags",
    "ndp/exclusive_storage",
    "sptotal",
    "spfree",
    "ndp/cpu_speed",
];

/// Instance fields, in the order Ganeti's htools ask for them.
pub const INSTANCE_FIELDS: [&str; 14] = [
    "name",
    "disk_usage",
    "be/memory",
    "be/vcpus",
    "status",
    "pnode",
    "snodes",
    "tags",
    "be/auto_balance",
    "disk_template",
    "be/spindle_use",
    "disk.sizes",
    "disk.spindles",
    "forthcoming",
];

/// Group fields, in the order Ganeti's htools ask for them.
pub const GROUP_FIELDS: [&str; 5] = ["uuid", "name", "alloc_policy", "ipolicy", "tags"];

/// The master's LUXI socket: `path`, or the default under
/// `$GANETI_ROOTDIR` when it is empty.
pub fn socket_path(path: &str) -> PathBuf {
    if path.is_empty() {
        objects::paths::Paths::from_env().luxi_socket()
    } else {
        PathBuf::from(path)
    }
}

fn luxi_err(what: &str, e: luxi::client::ClientError) -> Error {
    Error::Invalid(format!("LUXI {what} failed: {}", objects::error_chain(&e)))
}

/// Connects to the master.
pub fn connect(socket: &str) -> Result<luxi::client::Client> {
    let path = socket_path(socket);
    let c = luxi::client::Client::connect(&path).map_err(|e| luxi_err("connection", e))?;
    let _ = c.set_timeout(Some(Duration::from_secs(60)));
    Ok(c)
}

/// The rows of a `Query` result, each a list of values (`None` where the
/// field has no normal value).
fn rows(res: &Value, what: &str) -> Result<Vec<Vec<Option<Value>>>> {
    let data = res
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::parse(format!("{what} query result"), "no 'data' list"))?;
    data.iter()
        .map(|row| {
            let cells = row.as_array().ok_or_else(|| {
                Error::parse(format!("{what} query result"), "a row is not a list")
            })?;
            Ok(cells
                .iter()
                .map(|cell| match cell.as_array().map(Vec::as_slice) {
                    Some([st, v]) if st.as_i64() == Some(0) => Some(v.clone()),
                    _ => None,
                })
                .collect())
        })
        .collect()
}

fn field(row: &[Option<Value>], i: usize) -> Option<&Value> {
    row.get(i).and_then(Option::as_ref)
}

fn int(row: &[Option<Value>], i: usize, def: i64) -> i64 {
    field(row, i)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        .unwrap_or(def)
}

fn float(row: &[Option<Value>], i: usize, def: f64) -> f64 {
    field(row, i).and_then(Value::as_f64).unwrap_or(def)
}

fn boolean(row: &[Option<Value>], i: usize, def: bool) -> bool {
    field(row, i).and_then(Value::as_bool).unwrap_or(def)
}

fn string(row: &[Option<Value>], i: usize, what: &str, owner: &str) -> Result<String> {
    field(row, i)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::parse(owner.to_string(), format!("no value for '{what}'")))
}

fn strings(row: &[Option<Value>], i: usize) -> Vec<String> {
    field(row, i)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_group(row: &[Option<Value>]) -> Result<Group> {
    let name = string(row, 1, "name", "group")?;
    let owner = format!("group '{name}'");
    let ipolicy = match field(row, 3) {
        Some(v) => super::iallocator::ipolicy(v, &owner)?,
        None => IPolicy::default(),
    };
    Ok(Group {
        uuid: string(row, 0, "uuid", &owner)?,
        alloc_policy: AllocPolicy::parse(&string(row, 2, "alloc_policy", &owner)?)?,
        tags: strings(row, 4),
        networks: Vec::new(),
        ipolicy,
        name,
    })
}

fn parse_node(row: &[Option<Value>], groups: &[Group]) -> Result<Node> {
    let name = string(row, 0, "name", "node")?;
    let owner = format!("node '{name}'");
    let guuid = string(row, 12, "group.uuid", &owner)?;
    let gdx = groups
        .iter()
        .position(|g| g.uuid == guuid)
        .ok_or_else(|| Error::unknown("group", guuid, format!(" for node {name}")))?;
    let offline = boolean(row, 8, false);
    let live = !offline && boolean(row, 10, true);
    let excl = boolean(row, 14, false);
    let sptotal = if excl {
        int(row, 15, 0)
    } else {
        int(row, 11, 1)
    };
    let mut n = Node::new(
        &name,
        float(row, 1, 0.0),
        int(row, 2, 0),
        int(row, 3, 0),
        float(row, 4, 0.0),
        int(row, 5, 0),
        float(row, 6, 0.0),
        int(row, 7, 0),
        !live || boolean(row, 9, false),
        sptotal,
        int(row, 16, 0),
        gdx,
        excl,
    );
    n.tags = strings(row, 13);
    n.s.cpu_speed = float(row, 17, 1.0);
    Ok(n)
}

fn parse_instance(row: &[Option<Value>], nodes: &[Node]) -> Result<Instance> {
    let name = string(row, 0, "name", "instance")?;
    let owner = format!("instance '{name}'");
    let lookup = |n: &str| {
        nodes
            .iter()
            .position(|x| x.name == n)
            .ok_or_else(|| Error::unknown("node", n, format!(" for instance {name}")))
    };
    let pidx = lookup(&string(row, 5, "pnode", &owner)?)?;
    let snodes = strings(row, 6);
    let sidx = match snodes.first() {
        Some(s) => lookup(s)?,
        None => NO_SECONDARY,
    };
    let status = InstanceStatus::parse(&string(row, 4, "status", &owner)?)
        .map_err(|e| Error::parse(owner.clone(), e.to_string()))?;
    let dt = DiskTemplate::parse(&string(row, 9, "disk_template", &owner)?)
        .map_err(|e| Error::parse(owner.clone(), e.to_string()))?;
    let sizes: Vec<i64> = field(row, 11)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let spindles: Vec<Option<i64>> = field(row, 12)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(Value::as_i64).collect())
        .unwrap_or_default();
    let disks = sizes
        .iter()
        .enumerate()
        .map(|(k, &size)| Disk {
            size,
            spindles: spindles.get(k).copied().flatten(),
        })
        .collect();
    Ok(Instance::new(
        &name,
        int(row, 2, 0),
        int(row, 1, 0),
        disks,
        int(row, 3, 1),
        status,
        strings(row, 7),
        boolean(row, 8, true),
        pidx,
        sidx,
        dt,
        int(row, 10, 1),
        boolean(row, 13, false),
    ))
}

/// Builds the cluster from the answers to the four queries.
pub fn from_answers(groups: &Value, nodes: &Value, insts: &Value, info: &Value) -> Result<Cluster> {
    let groups = rows(groups, "group")?
        .iter()
        .map(|r| parse_group(r))
        .collect::<Result<Vec<_>>>()?;
    let mut nodes = rows(nodes, "node")?
        .iter()
        .map(|r| parse_node(r, &groups))
        .collect::<Result<Vec<_>>>()?;
    let instances = rows(insts, "instance")?
        .iter()
        .map(|r| parse_instance(r, &nodes))
        .collect::<Result<Vec<_>>>()?;
    let tags = info
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let ipolicy = match info.get("ipolicy") {
        Some(v) if v.is_object() => super::iallocator::ipolicy(v, "cluster")?,
        _ => IPolicy::default(),
    };
    if let Some(master) = info.get("master").and_then(Value::as_str) {
        for n in nodes.iter_mut() {
            n.is_master = n.name == master;
        }
    }
    let kvm = info.get("default_hypervisor").and_then(Value::as_str) == Some("kvm");
    for n in nodes.iter_mut() {
        n.kvm = kvm;
    }
    Ok(Cluster {
        groups,
        nodes,
        instances,
        tags,
        ipolicy,
        tag_names: Vec::new(),
    })
}

/// Loads the cluster from the master at `socket` (default when empty).
pub fn load(socket: &str) -> Result<Cluster> {
    let mut c = connect(socket)?;
    let nodes = c
        .query("node", &NODE_FIELDS, Value::Null)
        .map_err(|e| luxi_err("node query", e))?;
    let insts = c
        .query("instance", &INSTANCE_FIELDS, Value::Null)
        .map_err(|e| luxi_err("instance query", e))?;
    let groups = c
        .query("group", &GROUP_FIELDS, Value::Null)
        .map_err(|e| luxi_err("group query", e))?;
    let info = c
        .query_cluster_info()
        .map_err(|e| luxi_err("cluster info query", e))?;
    from_answers(&groups, &nodes, &insts, &info)
}

/// Submits each job set in turn (its jobs at once) and waits for all its
/// jobs before the next; `report` sees each set's description, and each
/// job's id and final status. Stops at the first job set with a job that
/// did not succeed.
pub fn execute_jobsets(
    socket: &str,
    jobsets: &[(String, Vec<Vec<Value>>)],
    mut report: impl FnMut(&str),
) -> Result<()> {
    let mut c = connect(socket)?;
    for (k, (desc, set)) in jobsets.iter().enumerate() {
        report(desc);
        let submitted = c
            .submit_many_jobs(set.clone())
            .map_err(|e| luxi_err("job submission", e))?;
        let mut ids = Vec::new();
        for entry in submitted.as_array().into_iter().flatten() {
            match entry.as_array().map(Vec::as_slice) {
                Some([ok, id]) if ok.as_bool() == Some(true) => {
                    ids.push(luxi::client::job_id(id).map_err(|e| luxi_err("job submission", e))?)
                }
                _ => {
                    return Err(Error::Invalid(format!(
                        "job set {} was not accepted: {entry}",
                        k + 1
                    )))
                }
            }
        }
        report(&format!("Submitted jobs {ids:?} (job set {})", k + 1));
        let mut failed = Vec::new();
        for id in &ids {
            let status = wait_job(&mut c, *id)?;
            if status == "success" {
                report(&format!("Job {id}: {status}"));
            } else {
                let why = c
                    .query_jobs(Some(&[*id]), &["opresult"])
                    .ok()
                    .and_then(|q| q.get(0).and_then(|j| j.get(0)).cloned())
                    .unwrap_or(Value::Null);
                report(&format!("Job {id}: {status}: {why}"));
                failed.push(*id);
            }
        }
        if !failed.is_empty() {
            return Err(Error::Invalid(format!(
                "jobs {failed:?} of job set {} did not succeed; stopping",
                k + 1
            )));
        }
    }
    Ok(())
}

/// Submits one job and waits for it; an error unless it succeeded.
pub fn run_job(c: &mut luxi::client::Client, ops: Vec<Value>) -> Result<u64> {
    let id = c
        .submit_job(ops)
        .map_err(|e| luxi_err("job submission", e))?;
    let status = wait_job(c, id)?;
    if status != "success" {
        return Err(Error::Invalid(format!(
            "Job {id} ended with status {status}"
        )));
    }
    Ok(id)
}

/// The statuses of jobs; an error if one is unknown.
pub fn job_statuses(c: &mut luxi::client::Client, ids: &[u64]) -> Result<Vec<String>> {
    let q = c
        .query_jobs(Some(ids), &["status"])
        .map_err(|e| luxi_err("job query", e))?;
    ids.iter()
        .enumerate()
        .map(|(k, id)| {
            q.get(k)
                .and_then(|j| j.get(0))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| Error::Invalid(format!("no status for job {id}")))
        })
        .collect()
}

/// Waits until a job has finished and returns its final status.
fn wait_job(c: &mut luxi::client::Client, id: u64) -> Result<String> {
    let finished = ["success", "error", "canceled"];
    let mut prev_info = Value::Null;
    let mut prev_serial = json!(-1);
    loop {
        let r = c
            .wait_for_job_change(id, &["status"], prev_info.clone(), prev_serial.clone(), 10)
            .map_err(|e| luxi_err("job wait", e))?;
        if let Some(arr) = r.as_array() {
            if let Some(info) = arr.first() {
                if let Some(st) = info.get(0).and_then(Value::as_str) {
                    if finished.contains(&st) {
                        return Ok(st.to_string());
                    }
                }
                prev_info = info.clone();
            }
            if let Some(logs) = arr.get(1).and_then(Value::as_array) {
                if let Some(last) = logs.last().and_then(|l| l.get(0)) {
                    prev_serial = last.clone();
                }
            }
        }
        // "nochange" or a non-final status: ask for the status outright
        let q = c
            .query_jobs(Some(&[id]), &["status"])
            .map_err(|e| luxi_err("job query", e))?;
        if let Some(st) = q.get(0).and_then(|j| j.get(0)).and_then(Value::as_str) {
            if finished.contains(&st) {
                return Ok(st.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: Value) -> Value {
        json!([0, v])
    }

    #[test]
    fn builds_the_cluster_from_query_answers() {
        let groups = json!({"fields": [], "data": [[ok(json!("uuid-g")), ok(json!("default")), ok(json!("preferred")), [1, null], ok(json!([]))]]});
        let node = |name: &str| {
            json!([
                ok(json!(name)),
                ok(json!(4096)),
                ok(json!(512)),
                ok(json!(3000)),
                ok(json!(100000)),
                ok(json!(90000)),
                ok(json!(4)),
                ok(json!(1)),
                ok(json!(false)),
                ok(json!(false)),
                ok(json!(true)),
                ok(json!(1)),
                ok(json!("uuid-g")),
                ok(json!(["rack:a"])),
                ok(json!(false)),
                ok(json!(0)),
                ok(json!(0)),
                ok(json!(1.0))
            ])
        };
        let nodes = json!({"fields": [], "data": [node("node1"), node("node2")]});
        let insts = json!({"fields": [], "data": [[
            ok(json!("inst1")), ok(json!(1024)), ok(json!(512)), ok(json!(1)), ok(json!("running")),
            ok(json!("node1")), ok(json!(["node2"])), ok(json!([])), ok(json!(true)), ok(json!("drbd")),
            ok(json!(1)), ok(json!([1024])), ok(json!([null])), ok(json!(false))]]});
        let info = json!({"tags": ["htools:iextags:service"], "master": "node1"});
        let c = from_answers(&groups, &nodes, &insts, &info).unwrap();
        assert_eq!(c.groups.len(), 1);
        assert_eq!(c.nodes.len(), 2);
        assert!(c.nodes[0].is_master);
        assert_eq!(c.nodes[1].tags, vec!["rack:a".to_string()]);
        let i = &c.instances[0];
        assert_eq!((i.pnode, i.snode, i.mem, i.dsk), (0, 1, 512, 1024));
        assert_eq!(i.template, DiskTemplate::Drbd);
        assert_eq!(c.tags, vec!["htools:iextags:service".to_string()]);
    }

    #[test]
    fn a_node_with_no_data_is_offline() {
        let groups = json!({"data": [[ok(json!("g")), ok(json!("default")), ok(json!("preferred")), [1, null], ok(json!([]))]]});
        let nodes = json!({"data": [[ok(json!("n1")), [4, null], [4, null], [4, null], [4, null], [4, null], [4, null], [4, null],
            ok(json!(true)), ok(json!(false)), ok(json!(true)), ok(json!(1)), ok(json!("g")), ok(json!([])), ok(json!(false)),
            [4, null], [4, null], ok(json!(1.0))]]});
        let c = from_answers(&groups, &nodes, &json!({"data": []}), &json!({})).unwrap();
        assert!(c.nodes[0].offline());
    }
}
