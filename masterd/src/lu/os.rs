//! `OP_OS_DIAGNOSE`: the OS definitions of the cluster's nodes.

use std::collections::BTreeMap;

use luxi::error::GanetiError;
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
    per_node: BTreeMap<String, noded::api::OsInfo>,
}

impl LogicalUnit for Diagnose {
    fn check_arguments(&mut self) -> Result<(), GanetiError> {
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

    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        Ok(LockRequest::new())
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), GanetiError> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let nodes: Vec<objects::Node> = ctx
                .master
                .config
                .read()
                .nodes
                .values()
                .filter(|n| !n.offline && n.vm_capable)
                .cloned()
                .collect();
            let answers = ctx
                .master
                .rpc
                .call_many(&nodes, &noded::api::OsDiagnose {})
                .await;
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
            let cluster = ctx.master.config.cluster();
            let mut rows = Vec::new();
            for (name, seen) in &oses {
                if !self.op.names.is_empty() && !self.op.names.contains(name) {
                    continue;
                }
                // Valid only if every answering node has a valid copy.
                let valid =
                    seen.per_node.len() == answering && seen.per_node.values().all(|o| o.valid);
                let first = seen.per_node.values().next();
                let variants = first.map(|o| o.variants.clone()).unwrap_or_default();
                let params: Vec<Value> = first
                    .map(|o| o.parameters.iter().map(|(k, d)| json!([k, d])).collect())
                    .unwrap_or_default();
                let api: Vec<u32> = first.map(|o| o.api_versions.clone()).unwrap_or_default();
                let node_status: BTreeMap<&String, Value> = seen
                    .per_node
                    .iter()
                    .map(|(n, o)| {
                        (
                            n,
                            json!([[
                                o.path,
                                o.valid,
                                o.diagnose,
                                o.variants,
                                o.parameters,
                                o.api_versions
                            ]]),
                        )
                    })
                    .collect();
                let row: Vec<Value> = self
                    .op
                    .output_fields
                    .iter()
                    .map(|f| match f.as_str() {
                        "name" => json!(name),
                        "valid" => json!(valid),
                        "variants" => json!(variants),
                        "parameters" => json!(params),
                        "api_versions" => json!(api),
                        "blacklisted" | "hidden" => json!(false),
                        "os_hvp" => json!({}),
                        "osparams" => {
                            json!(cluster.osparams.get(name).cloned().unwrap_or_default())
                        }
                        "trusted" => json!(true),
                        "node_status" => json!(node_status),
                        _ => Value::Null,
                    })
                    .collect();
                rows.push(Value::Array(row));
            }
            Ok(Value::Array(rows))
        })
    }
}
