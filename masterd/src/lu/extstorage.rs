//! `OP_EXT_STORAGE_DIAGNOSE` (`gnt-storage diagnose` and `info`): the
//! ExtStorage providers of the online vm-capable nodes, merged as Ganeti
//! merges them: per node what the node found, per node group whether
//! every member has a valid copy, and the parameters every valid copy
//! declares.

use std::collections::{BTreeMap, BTreeSet};

use luxi::opcodes;
use objects::Node;
use rpc::api::{ExtStorageDiagnose, ExtStorageProvider};
use serde_json::{json, Value};

use super::{inval, Ctx, ExecFuture, LogicalUnit};
use crate::config::ConfigData;
use crate::error::Error;
use crate::locking::LockRequest;

const FIELDS: &[&str] = &["name", "node_status", "nodegroup_status", "parameters"];

/// `OP_EXT_STORAGE_DIAGNOSE`.
pub struct Diagnose {
    op: opcodes::ExtStorageDiagnose,
}

impl Diagnose {
    pub fn new(op: opcodes::ExtStorageDiagnose) -> Self {
        Diagnose { op }
    }
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
        // Ganeti takes no locks for this query either.
        Ok(LockRequest::new())
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let (nodes, groups) = {
                let cfg = ctx.config().read();
                let mut nodes: Vec<Node> = cfg
                    .nodes
                    .values()
                    .filter(|n| !n.offline && n.vm_capable)
                    .cloned()
                    .collect();
                luxi::query::nice_sort_by(&mut nodes, |n| &n.name);
                let groups: Vec<(String, Vec<String>)> = cfg
                    .groups
                    .values()
                    .map(|g| {
                        let members = cfg
                            .nodes
                            .values()
                            .filter(|n| n.group == g.uuid)
                            .map(|n| n.name.clone())
                            .collect();
                        (g.name.clone(), members)
                    })
                    .collect();
                (nodes, groups)
            };
            let answers = ctx.rpc().call_many(&nodes, &ExtStorageDiagnose {}).await;
            let answered: Vec<(String, Vec<ExtStorageProvider>)> = nodes
                .iter()
                .zip(answers)
                .filter_map(|(n, a)| a.ok().map(|list| (n.name.clone(), list)))
                .collect();
            let rows = merge(&answered, &groups);
            let mut unknown: Vec<&String> = self
                .op
                .names
                .iter()
                .filter(|n| !rows.contains_key(n.as_str()))
                .collect();
            unknown.dedup();
            if !unknown.is_empty() {
                return Err(Error::prereq(
                    format!("Some items were not found: {unknown:?}"),
                    luxi::error::ErrorCode::NoEnt,
                ));
            }
            let out = rows
                .iter()
                .filter(|(name, _)| self.op.names.is_empty() || self.op.names.contains(name))
                .map(|(_, values)| {
                    Value::Array(
                        self.op
                            .output_fields
                            .iter()
                            .map(|f| values.get(f.as_str()).cloned().unwrap_or(Value::Null))
                            .collect(),
                    )
                })
                .collect();
            Ok(Value::Array(out))
        })
    }
}

/// The rows of the providers, by name, from what each answering node
/// found (`answered`, in node order) and the groups with their members'
/// names.
fn merge(
    answered: &[(String, Vec<ExtStorageProvider>)],
    groups: &[(String, Vec<String>)],
) -> BTreeMap<String, BTreeMap<&'static str, Value>> {
    // Per provider, per answering node, what it found (possibly nothing).
    let mut by_provider: BTreeMap<String, BTreeMap<String, Option<&ExtStorageProvider>>> =
        BTreeMap::new();
    for (_, list) in answered {
        for p in list {
            by_provider
                .entry(p.name.clone())
                .or_insert_with(|| answered.iter().map(|(n, _)| (n.clone(), None)).collect());
        }
    }
    for (node, list) in answered {
        for p in list {
            if let Some(per_node) = by_provider.get_mut(&p.name) {
                per_node
                    .entry(node.clone())
                    .or_insert(None)
                    .get_or_insert(p);
            }
        }
    }
    by_provider
        .into_iter()
        .map(|(name, per_node)| {
            let node_status: BTreeMap<&String, Value> = per_node
                .iter()
                .map(|(n, p)| {
                    let entries = match p {
                        Some(p) => json!([[p.path, p.valid, p.diagnose, p.parameters]]),
                        None => json!([]),
                    };
                    (n, entries)
                })
                .collect();
            // A group is valid when each of its answering members has a
            // valid copy.
            let nodegroup_status: BTreeMap<&String, bool> = groups
                .iter()
                .map(|(g, members)| {
                    let ok = members.iter().all(|m| match per_node.get(m) {
                        Some(Some(p)) => p.valid,
                        Some(None) => false,
                        None => true,
                    });
                    (g, ok)
                })
                .collect();
            // The parameters common to the valid copies, up to the first
            // node without one (Ganeti's rule).
            let mut params: Option<BTreeSet<(String, String)>> = None;
            for p in per_node.values() {
                let Some(p) = p.filter(|p| p.valid) else {
                    break;
                };
                let these: BTreeSet<(String, String)> = p.parameters.iter().cloned().collect();
                params = Some(match params {
                    None => these,
                    Some(before) => before.intersection(&these).cloned().collect(),
                });
            }
            let parameters: Vec<Value> = params
                .unwrap_or_default()
                .into_iter()
                .map(|(k, d)| json!([k, d]))
                .collect();
            let mut values = BTreeMap::new();
            values.insert("name", json!(name));
            values.insert("node_status", json!(node_status));
            values.insert("nodegroup_status", json!(nodegroup_status));
            values.insert("parameters", json!(parameters));
            (name, values)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str, valid: bool, params: &[&str]) -> ExtStorageProvider {
        ExtStorageProvider {
            name: name.into(),
            path: format!("/srv/ganeti/extstorage/{name}"),
            valid,
            diagnose: if valid {
                String::new()
            } else {
                "broken".into()
            },
            parameters: params
                .iter()
                .map(|p| (p.to_string(), format!("{p} doc")))
                .collect(),
        }
    }

    #[test]
    fn a_group_is_valid_only_when_each_member_has_a_valid_copy() {
        let answered = vec![
            (
                "node1".to_string(),
                vec![
                    provider("a", true, &["pool", "size"]),
                    provider("b", true, &[]),
                ],
            ),
            ("node2".to_string(), vec![provider("a", true, &["pool"])]),
            ("node3".to_string(), vec![provider("a", false, &[])]),
        ];
        let groups = vec![
            (
                "g1".to_string(),
                vec!["node1".to_string(), "node2".to_string()],
            ),
            ("g2".to_string(), vec!["node3".to_string()]),
            ("empty".to_string(), vec![]),
        ];
        let rows = merge(&answered, &groups);
        assert_eq!(
            rows["a"]["nodegroup_status"],
            json!({"g1": true, "g2": false, "empty": true})
        );
        // node1 and node2 agree on `pool`; node3's invalid copy stops there.
        assert_eq!(rows["a"]["parameters"], json!([["pool", "pool doc"]]));
        assert_eq!(
            rows["b"]["nodegroup_status"],
            json!({"g1": false, "g2": false, "empty": true})
        );
        assert_eq!(rows["b"]["parameters"], json!([]));
        assert_eq!(rows["b"]["node_status"]["node2"], json!([]));
        assert_eq!(
            rows["a"]["node_status"]["node3"],
            json!([["/srv/ganeti/extstorage/a", false, "broken", []]])
        );
    }
}
