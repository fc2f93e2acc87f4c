//! `OP_OS_DIAGNOSE`: the OS definitions of the cluster's nodes.

use std::collections::BTreeMap;

use crate::error::Error;
use luxi::opcodes;
use serde_json::{json, Value};

use super::{inval, Ctx, ExecFuture, LogicalUnit};
use crate::config::ConfigData;
use crate::locking::LockRequest;

const FIELDS: &[&str] = &[
    "name",
    "valid",
    "variants",
    "parameters",
    "api_versions",
    "blacklisted",
    "hidden",
    "os_hvp",
    "osparams",
    "trusted",
    "node_status",
];

pub struct Diagnose {
    op: opcodes::OsDiagnose,
}

impl Diagnose {
    pub fn new(op: opcodes::OsDiagnose) -> Self {
        Diagnose { op }
    }
}

/// What the nodes say about one OS.
#[derive(Default)]
struct Seen {
    /// Per node name: (path, valid, diagnose, variants, params, api versions).
    per_node: BTreeMap<String, rpc::api::OsInfo>,
}

impl LogicalUnit for Diagnose {
    fn check_arguments(&mut self) -> Result<(), Error> {
        if let Some(f) = self
            .op
            .output_fields
            .iter()
            .find(|f| !FIELDS.contains(&f.as_str()))
        {
            return Err(inval(format!("Unknown output fields selected: {f}")));
        }
        Ok(())
    }

    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new())
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let rows = ctx.os_rows().await;
            let out = rows
                .into_iter()
                .filter(|r| self.op.names.is_empty() || self.op.names.contains(&r.name))
                .map(|r| {
                    Value::Array(
                        self.op
                            .output_fields
                            .iter()
                            .map(|f| r.values.get(f.as_str()).cloned().unwrap_or(Value::Null))
                            .collect(),
                    )
                })
                .collect();
            Ok(Value::Array(out))
        })
    }
}

/// One OS definition as the cluster's nodes report it, by field.
pub struct OsRow {
    pub name: String,
    pub values: BTreeMap<&'static str, Value>,
}

/// Asks every online vm-capable node for its OS definitions and merges the
/// answers: an OS is valid only if every answering node has a valid copy.
pub async fn os_rows(master: &std::sync::Arc<crate::master::Master>) -> Vec<OsRow> {
    let nodes: Vec<objects::Node> = master
        .config
        .read()
        .nodes
        .values()
        .filter(|n| !n.offline && n.vm_capable)
        .cloned()
        .collect();
    let answers = master.rpc.call_many(&nodes, &rpc::api::OsDiagnose {}).await;
    let mut oses: BTreeMap<String, Seen> = BTreeMap::new();
    let mut answering = 0usize;
    for (node, a) in nodes.iter().zip(answers) {
        let Ok(list) = a else { continue };
        answering += 1;
        for os in list {
            oses.entry(os.name.clone())
                .or_default()
                .per_node
                .insert(node.name.clone(), os);
        }
    }
    let cluster = master.config.cluster();
    oses.into_iter()
        .map(|(name, seen)| {
            let valid = seen.per_node.len() == answering && seen.per_node.values().all(|o| o.valid);
            let first = seen.per_node.values().next();
            let variants = first.map(|o| o.variants.clone()).unwrap_or_default();
            let params: Vec<Value> = first
                .map(|o| o.parameters.iter().map(|(k, d)| json!([k, d])).collect())
                .unwrap_or_default();
            let mut api: Vec<u32> = first.map(|o| o.api_versions.clone()).unwrap_or_default();
            api.sort();
            let node_status: BTreeMap<&String, Value> = seen
                .per_node
                .iter()
                .map(|(n, o)| {
                    (
                        n,
                        // trusted (the 7th element): Ganeti marks an OS
                        // untrusted only when it ships `create_untrusted`,
                        // which the node daemon does not run.
                        json!([[
                            o.path,
                            o.valid,
                            o.diagnose,
                            o.variants,
                            o.parameters,
                            o.api_versions,
                            true
                        ]]),
                    )
                })
                .collect();
            let mut values = BTreeMap::new();
            values.insert("name", json!(name));
            values.insert("valid", json!(valid));
            values.insert("variants", json!(variants));
            values.insert("parameters", json!(params));
            values.insert("api_versions", json!(api));
            values.insert("blacklisted", json!(false));
            values.insert("hidden", json!(false));
            values.insert("os_hvp", json!({}));
            values.insert(
                "osparams",
                json!(cluster.osparams.get(&name).cloned().unwrap_or_default()),
            );
            values.insert("trusted", json!(true));
            values.insert("node_status", json!(node_status));
            OsRow { name, values }
        })
        .collect()
}
