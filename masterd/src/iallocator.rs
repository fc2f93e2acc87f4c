//! Running an iallocator plugin (Ganeti's external allocator protocol):
//! the cluster's state plus a request go to the plugin as a JSON file, the
//! answer comes back on its standard output. `hail` from our htools speaks
//! it, as do Ganeti's own plugins.

use std::path::PathBuf;
use std::sync::Arc;

use luxi::error::ErrorCode;

use crate::error::Error;
use objects::params::{be, get_u64};
use serde_json::{json, Map, Value};

use crate::master::Master;

/// The cluster part of an iallocator request, with live node data.
async fn cluster_data(master: &Arc<Master>) -> Map<String, Value> {
    let nodes: Vec<objects::Node> = master.config.read().nodes.values().cloned().collect();
    let live = crate::query::live::Live::fetch(master, nodes.clone(), true, false).await;
    let cfg = master.config.read();
    let c = &cfg.cluster;
    let mut groups = Map::new();
    for g in cfg.groups.values() {
        groups.insert(
            g.uuid.clone(),
            json!({"name": g.name, "alloc_policy": g.alloc_policy, "networks": [],
                   "ipolicy": objects::params::fill(&c.ipolicy, &g.ipolicy), "tags": g.tags}),
        );
    }
    let mut pri_mem: std::collections::HashMap<&str, (u64, u64)> = Default::default();
    for i in cfg.instances.values() {
        let mem = get_u64(&c.fill_beparams(i), be::MAXMEM).unwrap_or(0);
        let e = pri_mem.entry(i.primary_node.as_str()).or_default();
        e.0 += mem;
        if i.admin_state == objects::AdminState::Up {
            e.1 += mem;
        }
    }
    let mut nmap = Map::new();
    for n in &nodes {
        let mut o = json!({
            "tags": n.tags, "primary_ip": n.primary_ip, "secondary_ip": n.secondary_ip,
            "offline": n.offline, "drained": n.drained, "master_candidate": n.master_candidate,
            "group": n.group, "master_capable": n.master_capable, "vm_capable": n.vm_capable,
            "ndparams": objects::params::fill(&c.ndparams, &n.ndparams),
        });
        let info = live.node_info.get(&n.uuid).and_then(|a| a.data());
        match info {
            Some(d) if !n.offline => {
                let hv = d.hypervisors.first().map(|h| h.info.clone());
                let st = d.storage.first();
                let (ip, iu) = pri_mem.get(n.uuid.as_str()).copied().unwrap_or_default();
                if let (Some(hv), Some(o)) = (hv, o.as_object_mut()) {
                    o.insert("total_memory".into(), json!(hv.memory_total));
                    o.insert("reserved_memory".into(), json!(hv.memory_dom0));
                    o.insert("free_memory".into(), json!(hv.memory_free));
                    o.insert("total_cpus".into(), json!(hv.cpu_total));
                    o.insert("reserved_cpus".into(), json!(hv.cpu_dom0));
                    o.insert("total_disk".into(), json!(st.map_or(0, |s| s.total_mib)));
                    o.insert("free_disk".into(), json!(st.map_or(0, |s| s.free_mib)));
                    o.insert("total_spindles".into(), json!(0));
                    o.insert("free_spindles".into(), json!(0));
                    o.insert("i_pri_memory".into(), json!(ip));
                    o.insert("i_pri_up_memory".into(), json!(iu));
                }
            }
            _ => {
                // A node without live data cannot take instances.
                if let Some(o) = o.as_object_mut() {
                    o.insert("offline".into(), json!(true));
                }
            }
        }
        nmap.insert(n.name.clone(), o);
    }
    let mut imap = Map::new();
    for i in cfg.instances.values() {
        let bep = c.fill_beparams(i);
        let disks: Vec<Value> = i
            .disks
            .iter()
            .map(|d| json!({"size": d.size, "mode": d.mode, "spindles": d.spindles}))
            .collect();
        let mut nodes = vec![cfg.node_name(&i.primary_node).to_string()];
        nodes.extend(
            i.secondary_nodes()
                .iter()
                .map(|s| cfg.node_name(s).to_string()),
        );
        imap.insert(
            i.name.clone(),
            json!({
                "tags": i.tags, "admin_state": i.admin_state.as_str(),
                "vcpus": get_u64(&bep, be::VCPUS).unwrap_or(1),
                "memory": get_u64(&bep, be::MAXMEM).unwrap_or(0),
                "spindle_use": get_u64(&bep, be::SPINDLE_USE).unwrap_or(1),
                "os": i.os, "nodes": nodes,
                "nics": i.nics.iter().map(|n| json!({"mac": n.mac, "ip": n.ip, "network": n.network})).collect::<Vec<_>>(),
                "disks": disks,
                "disk_template": i.disk_template,
                "disk_space_total": i.disks.iter().map(|d| d.size).sum::<u64>(),
                "hypervisor": i.hypervisor,
            }),
        );
    }
    let mut top = Map::new();
    top.insert("version".into(), json!(2));
    top.insert("cluster_name".into(), json!(c.cluster_name));
    top.insert("cluster_tags".into(), json!(c.tags));
    top.insert("enabled_hypervisors".into(), json!(c.enabled_hypervisors));
    top.insert("ipolicy".into(), json!(c.ipolicy));
    top.insert("nodegroups".into(), Value::Object(groups));
    top.insert("nodes".into(), Value::Object(nmap));
    top.insert("instances".into(), Value::Object(imap));
    top
}

/// What a new instance needs, for an `allocate` request.
pub struct AllocRequest {
    pub name: String,
    pub disk_template: objects::DiskTemplate,
    pub memory: u64,
    pub vcpus: u64,
    pub spindle_use: u64,
    pub disks: Vec<u64>,
    pub nics: usize,
    pub os: String,
    pub tags: Vec<String>,
    pub hypervisor: objects::Hypervisor,
}

/// Asks plugin `name` where to put a new instance; returns node names.
pub async fn allocate(
    master: &Arc<Master>,
    name: &str,
    req: &AllocRequest,
) -> Result<Vec<String>, Error> {
    let mut request = alloc_body(req);
    request["type"] = json!("allocate");
    node_list(name, run(master, name, request).await?)
}

/// One instance of an `allocate` or `multi-allocate` request.
fn alloc_body(req: &AllocRequest) -> Value {
    let mirrored = req.disk_template == objects::DiskTemplate::Drbd;
    json!({
        "name": req.name, "disk_template": req.disk_template,
        "tags": req.tags, "os": req.os, "vcpus": req.vcpus, "memory": req.memory,
        "spindle_use": req.spindle_use,
        "disks": req.disks.iter().map(|s| json!({"size": s, "mode": "rw"})).collect::<Vec<_>>(),
        "disk_space_total": req.disks.iter().sum::<u64>(),
        "nics": (0..req.nics).map(|_| json!({"mac": "auto", "ip": null, "network": null})).collect::<Vec<_>>(),
        "required_nodes": if mirrored { 2 } else { 1 }, "hypervisor": req.hypervisor,
    })
}

/// What a `multi-allocate` answer says: the instances placed (name,
/// node names) and those that could not be.
pub type MultiAllocation = (Vec<(String, Vec<String>)>, Vec<String>);

/// Asks plugin `name` where to put several new instances at once
/// (Ganeti's `multi-allocate` request).
pub async fn multi_allocate(
    master: &Arc<Master>,
    name: &str,
    reqs: &[AllocRequest],
) -> Result<MultiAllocation, Error> {
    let request = json!({
        "type": "multi-allocate",
        "instances": reqs.iter().map(alloc_body).collect::<Vec<_>>(),
    });
    let result = run(master, name, request).await?;
    serde_json::from_value(result.clone()).map_err(|e| {
        Error::exec(format!(
            "Iallocator '{name}' gave an invalid multi-allocate answer {result}: {e}"
        ))
    })
}

/// Asks plugin `name` for a new node for instance `instance`, away from
/// the nodes `from` (Ganeti's `relocate` request); returns node names.
pub async fn relocate(
    master: &Arc<Master>,
    name: &str,
    instance: &str,
    from: &[String],
) -> Result<Vec<String>, Error> {
    let request = json!({
        "type": "relocate", "name": instance, "required_nodes": 1,
        "relocate_from": from,
    });
    node_list(name, run(master, name, request).await?)
}

/// Asks plugin `name` how to move `instances` off their node (Ganeti's
/// `node-evacuate` request, `mode` being `primary-only`, `secondary-only`
/// or `all`); returns the answer's `[moved, failed, jobs]`.
pub async fn node_evacuate(
    master: &Arc<Master>,
    name: &str,
    mode: &str,
    instances: &[String],
    ignore_soft_errors: bool,
) -> Result<Value, Error> {
    let request = json!({
        "type": "node-evacuate", "evac_mode": mode, "instances": instances,
        "ignore_soft_errors": ignore_soft_errors,
    });
    run(master, name, request).await
}

/// Asks plugin `name` how to move `instances` into the groups
/// `target_groups` (UUIDs; Ganeti's `change-group` request); returns the
/// answer's `[moved, failed, jobs]`.
pub async fn change_group(
    master: &Arc<Master>,
    name: &str,
    instances: &[String],
    target_groups: &[String],
) -> Result<Value, Error> {
    let request = json!({
        "type": "change-group", "instances": instances, "target_groups": target_groups,
    });
    run(master, name, request).await
}

fn node_list(name: &str, result: Value) -> Result<Vec<String>, Error> {
    let nodes: Vec<String> = result
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if nodes.is_empty() {
        return Err(Error::exec(format!("Iallocator '{name}' returned no node")));
    }
    Ok(nodes)
}

/// The whole input a plugin gets for `request`: the cluster's data with
/// the request (Ganeti's `in_text`).
pub async fn input_text(master: &Arc<Master>, request: Value) -> String {
    let mut top = cluster_data(master).await;
    top.insert("request".into(), request);
    Value::Object(top).to_string()
}

/// Runs plugin `name` on `request`; its standard output, unchecked
/// (Ganeti's `out_text`). Fails when the plugin cannot be found or run or
/// exits with an error.
pub async fn run_text(master: &Arc<Master>, name: &str, request: Value) -> Result<String, Error> {
    let plugin = objects::plugins::find_iallocator(master.paths.root(), name).ok_or_else(|| {
        Error::prereq(
            format!("Can't find the iallocator '{name}'"),
            ErrorCode::NoEnt,
        )
    })?;
    let text = input_text(master, request).await;
    let file = tempfile_in(master)?;
    std::fs::write(&file, text)
        .map_err(|e| Error::exec(format!("Cannot write the iallocator request: {e}")))?;
    let out = tokio::process::Command::new(&plugin)
        .arg(&file)
        .output()
        .await
        .map_err(|e| Error::exec(format!("Cannot run iallocator {}: {e}", plugin.display())));
    if std::env::var_os("GANETI_KEEP_IALLOCATOR_INPUT").is_none() {
        let _ = std::fs::remove_file(&file);
    }
    let out = out?;
    if !out.status.success() {
        return Err(Error::exec(format!(
            "Iallocator '{name}' failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs plugin `name` on the cluster data plus `request`; the answer's
/// `result` when it says `success`.
async fn run(master: &Arc<Master>, name: &str, request: Value) -> Result<Value, Error> {
    let out = run_text(master, name, request).await?;
    let mut answer: Value = serde_json::from_str(&out)
        .map_err(|e| Error::exec(format!("Iallocator '{name}' gave an invalid answer: {e}")))?;
    if answer.get("success").and_then(Value::as_bool) != Some(true) {
        return Err(Error::prereq(
            format!(
                "Can't compute nodes using iallocator '{name}': {}",
                answer
                    .get("info")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given")
            ),
            ErrorCode::NoRes,
        ));
    }
    Ok(answer
        .get_mut("result")
        .map(Value::take)
        .unwrap_or(Value::Null))
}

fn tempfile_in(master: &Master) -> Result<PathBuf, Error> {
    let dir = master.paths.run_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::exec(format!("Cannot create {}: {e}", dir.display())))?;
    let n: u64 = rand::random();
    Ok(dir.join(format!("iallocator-{n:016x}.json")))
}
