//! The storage of nodes: `gnt-node volumes` (`OP_NODE_QUERYVOLS`),
//! `list-storage` (`OP_NODE_QUERY_STORAGE`), `modify-storage`
//! (`OP_NODE_MODIFY_STORAGE`) and `repair-storage`
//! (`OP_REPAIR_NODE_STORAGE`).

use std::collections::BTreeMap;

use luxi::opcodes;
use objects::{error_chain, Cluster, Node};
use rpc::api::{self, StorageType};
use serde_json::{json, Value};

use super::common::{expand_node, rpc_error};
use super::instance_storage::plain_volume;
use super::{inval, Ctx, ExecFuture, LogicalUnit};
use crate::config::ConfigData;
use crate::error::Error;
use crate::locking::{Level, LockRequest, Mode};

/// The nodes named, or every node; refuses an unknown name.
fn wanted_nodes(cfg: &ConfigData, names: &[String]) -> Result<Vec<Node>, Error> {
    let mut nodes: Vec<Node> = if names.is_empty() {
        cfg.nodes.values().cloned().collect()
    } else {
        names
            .iter()
            .map(|n| expand_node(cfg, n).cloned())
            .collect::<Result<_, _>>()?
    };
    luxi::query::nice_sort_by(&mut nodes, |n| &n.name);
    nodes.dedup_by(|a, b| a.uuid == b.uuid);
    Ok(nodes)
}

fn check_fields(fields: &[String], valid: &[&str]) -> Result<(), Error> {
    let unknown: Vec<&str> = fields
        .iter()
        .map(String::as_str)
        .filter(|f| !valid.contains(f))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(inval(format!(
            "Unknown output fields selected: {}",
            unknown.join(",")
        )))
    }
}

fn shared_locks(nodes: &[Node]) -> LockRequest {
    LockRequest::new().some(
        Level::Node,
        nodes.iter().map(|n| n.uuid.clone()).collect(),
        Mode::Shared,
    )
}

/// `OP_NODE_QUERYVOLS`.
pub struct QueryVols {
    op: opcodes::NodeQueryvols,
    nodes: Vec<Node>,
}

impl QueryVols {
    pub fn new(op: opcodes::NodeQueryvols) -> Self {
        QueryVols {
            op,
            nodes: Vec::new(),
        }
    }
}

const VOLUME_FIELDS: &[&str] = &["node", "phys", "vg", "name", "size", "instance"];

impl LogicalUnit for QueryVols {
    fn check_arguments(&mut self) -> Result<(), Error> {
        check_fields(&self.op.output_fields, VOLUME_FIELDS)
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.nodes = wanted_nodes(cfg, &self.op.nodes)?;
        Ok(shared_locks(&self.nodes))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let online: Vec<Node> = self.nodes.iter().filter(|n| !n.offline).cloned().collect();
            let answers = ctx.rpc().call_many(&online, &api::NodeVolumes {}).await;
            // Which instance owns each volume, by node and `vg/lv`.
            let owners: BTreeMap<(String, String), String> = {
                let cfg = ctx.config().read();
                let mut m = BTreeMap::new();
                for inst in cfg.instances.values() {
                    for d in &inst.disks {
                        if let Some((vg, lv)) = plain_volume(d) {
                            for n in &d.nodes {
                                m.insert((n.clone(), format!("{vg}/{lv}")), inst.name.clone());
                            }
                        }
                    }
                }
                m
            };
            let mut rows = Vec::new();
            for (node, answer) in online.iter().zip(answers) {
                let vols = match answer {
                    Ok(v) => v,
                    Err(e) => {
                        ctx.feedback(format!(
                            "Warning: Can't compute volume data on node {}: {}",
                            node.name,
                            error_chain(&e)
                        ));
                        continue;
                    }
                };
                for v in vols {
                    let row: Vec<Value> = self
                        .op
                        .output_fields
                        .iter()
                        .map(|f| match f.as_str() {
                            "node" => json!(node.name),
                            "phys" => json!(v.device),
                            "vg" => json!(v.vg),
                            "name" => json!(v.name),
                            "size" => json!(v.size_mib.to_string()),
                            _ => json!(owners
                                .get(&(node.uuid.clone(), format!("{}/{}", v.vg, v.name)))
                                .map_or("-", String::as_str)),
                        })
                        .collect();
                    rows.push(Value::Array(row));
                }
            }
            Ok(Value::Array(rows))
        })
    }
}

/// The storage type a request names, or the cluster's default (that of its
/// first enabled disk template); refused unless an enabled disk template
/// uses it, as Ganeti's `CheckStorageTypeEnabled`.
fn storage_type(cluster: &Cluster, given: Option<&str>) -> Result<StorageType, Error> {
    let name = match given {
        Some(t) => t.to_string(),
        None => {
            let first = cluster
                .enabled_disk_templates
                .first()
                .map(String::as_str)
                .unwrap_or_default();
            match first {
                "plain" | "drbd" => "lvm-vg".to_string(),
                "file" => "file".to_string(),
                other => {
                    return Err(inval(format!(
                        "Storage reporting for storage type '{other}' is not supported. \
                         Please use the --storage-type option to specify one of the \
                         supported storage types (file, lvm-pv, lvm-vg) or set the default \
                         disk template to one that supports storage reporting."
                    )))
                }
            }
        }
    };
    let st = match name.as_str() {
        "lvm-vg" => StorageType::LvmVg,
        "lvm-pv" => StorageType::LvmPv,
        "file" => StorageType::File,
        other => {
            return Err(inval(format!(
                "Storage type '{other}' is not supported by ganeti-rs; supported: file, \
                 lvm-pv, lvm-vg"
            )))
        }
    };
    let (templates, shown): (&[&str], &str) = match st {
        StorageType::LvmVg | StorageType::LvmPv => (&["plain", "drbd"], "lvm-vg"),
        StorageType::File => (&["file"], "file"),
    };
    if !cluster
        .enabled_disk_templates
        .iter()
        .any(|t| templates.contains(&t.as_str()))
    {
        return Err(inval(format!(
            "No disk template of storage type '{shown}' is enabled in this cluster. \
             Enabled disk templates are: {}",
            cluster.enabled_disk_templates.join(",")
        )));
    }
    Ok(st)
}

/// `OP_NODE_QUERY_STORAGE`.
pub struct QueryStorage {
    op: opcodes::NodeQueryStorage,
    nodes: Vec<Node>,
    kind: StorageType,
}

impl QueryStorage {
    pub fn new(op: opcodes::NodeQueryStorage) -> Self {
        QueryStorage {
            op,
            nodes: Vec::new(),
            kind: StorageType::File,
        }
    }
}

const STORAGE_FIELDS: &[&str] = &[
    "node",
    "type",
    "name",
    "size",
    "used",
    "free",
    "allocatable",
];

impl LogicalUnit for QueryStorage {
    fn check_arguments(&mut self) -> Result<(), Error> {
        check_fields(&self.op.output_fields, STORAGE_FIELDS)
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.nodes = wanted_nodes(cfg, &self.op.nodes)?;
        Ok(shared_locks(&self.nodes))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        self.kind = storage_type(&cfg.cluster, self.op.storage_type.as_deref())?;
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let online: Vec<Node> = self.nodes.iter().filter(|n| !n.offline).cloned().collect();
            let req = api::StorageList {
                kind: self.kind,
                name: self.op.name.clone(),
            };
            let answers = ctx.rpc().call_many(&online, &req).await;
            let mut rows = Vec::new();
            for (node, answer) in online.iter().zip(answers) {
                let mut units = match answer {
                    Ok(u) => u,
                    Err(e) => {
                        ctx.feedback(format!(
                            "Warning: Can't get storage data from node {}: {}",
                            node.name,
                            error_chain(&e)
                        ));
                        continue;
                    }
                };
                luxi::query::nice_sort_by(&mut units, |u| &u.name);
                for u in units {
                    let row: Vec<Value> = self
                        .op
                        .output_fields
                        .iter()
                        .map(|f| match f.as_str() {
                            "node" => json!(node.name),
                            "type" => json!(self.kind.as_str()),
                            "name" => json!(u.name),
                            "size" => json!(u.size),
                            "used" => json!(u.used),
                            "free" => json!(u.free),
                            _ => json!(u.allocatable),
                        })
                        .collect();
                    rows.push(Value::Array(row));
                }
            }
            Ok(Value::Array(rows))
        })
    }
}

/// `OP_NODE_MODIFY_STORAGE`: only an LVM physical volume's `allocatable`.
pub struct ModifyStorage {
    op: opcodes::NodeModifyStorage,
    node: Option<Node>,
    kind: StorageType,
    allocatable: bool,
}

impl ModifyStorage {
    pub fn new(op: opcodes::NodeModifyStorage) -> Self {
        ModifyStorage {
            op,
            node: None,
            kind: StorageType::LvmPv,
            allocatable: true,
        }
    }
}

impl LogicalUnit for ModifyStorage {
    fn check_arguments(&mut self) -> Result<(), Error> {
        let t = self.op.storage_type.as_str();
        if t != "lvm-pv" {
            return Err(inval(format!(
                "Storage units of type '{t}' can not be modified"
            )));
        }
        let other: Vec<&str> = self
            .op
            .changes
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "allocatable")
            .collect();
        if !other.is_empty() {
            return Err(inval(format!(
                "The following fields can not be modified for storage units of type '{t}': {}",
                other.join(", ")
            )));
        }
        match self.op.changes.get("allocatable") {
            Some(Value::Bool(b)) => self.allocatable = *b,
            Some(v) => {
                return Err(inval(format!(
                    "Invalid value {v} for 'allocatable': expected a boolean"
                )))
            }
            None => return Err(inval("No changes given for the storage unit")),
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let name = self.op.node_uuid.as_deref().unwrap_or(&self.op.node_name);
        let node = expand_node(cfg, name)?.clone();
        let req = shared_locks(std::slice::from_ref(&node));
        self.node = Some(node);
        Ok(req)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        self.kind = storage_type(&cfg.cluster, Some(&self.op.storage_type))?;
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let node = self
                .node
                .as_ref()
                .ok_or_else(|| Error::programmer("the node was not expanded"))?;
            let req = api::StorageModify {
                kind: self.kind,
                name: self.op.name.clone(),
                allocatable: self.allocatable,
            };
            ctx.rpc().call(node, &req).await.map_err(|e| {
                rpc_error(
                    &format!(
                        "Failed to modify storage unit '{}' on {}",
                        self.op.name, node.name
                    ),
                    e,
                )
            })?;
            Ok(Value::Null)
        })
    }
}

/// `OP_REPAIR_NODE_STORAGE`: `fix-consistency` of an LVM volume group.
pub struct RepairStorage {
    op: opcodes::RepairNodeStorage,
    node: Option<Node>,
}

impl RepairStorage {
    pub fn new(op: opcodes::RepairNodeStorage) -> Self {
        RepairStorage { op, node: None }
    }
}

impl LogicalUnit for RepairStorage {
    fn check_arguments(&mut self) -> Result<(), Error> {
        let t = self.op.storage_type.as_str();
        if t != "lvm-vg" {
            return Err(inval(format!(
                "Storage units of type '{t}' can not be repaired"
            )));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let name = self.op.node_uuid.as_deref().unwrap_or(&self.op.node_name);
        let node = expand_node(cfg, name)?.clone();
        let req = LockRequest::new().some(Level::Node, vec![node.uuid.clone()], Mode::Exclusive);
        self.node = Some(node);
        Ok(req)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        storage_type(&cfg.cluster, Some(&self.op.storage_type))?;
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let node = self
                .node
                .as_ref()
                .ok_or_else(|| Error::programmer("the node was not expanded"))?;
            ctx.feedback(format!(
                "Repairing storage unit '{}' on {} ...",
                self.op.name, node.name
            ));
            let req = api::StorageRepair {
                kind: StorageType::LvmVg,
                name: self.op.name.clone(),
            };
            ctx.rpc().call(node, &req).await.map_err(|e| {
                rpc_error(
                    &format!(
                        "Failed to repair storage unit '{}' on {}",
                        self.op.name, node.name
                    ),
                    e,
                )
            })?;
            Ok(Value::Null)
        })
    }
}
