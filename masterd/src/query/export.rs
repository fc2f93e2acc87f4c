//! The `export` query resource (`gnt-backup list`): one row per export
//! per node, as the nodes list them; a node that is offline or does not
//! answer gives one row whose export is offline or without data.

use std::sync::Arc;

use luxi::query::{Cell, DataNeeds, FieldDef, FieldFlags, FieldKind, FieldRegistry};

use crate::master::Master;

/// One row: a node and one of its exports (or why there is none).
pub struct ExportRow {
    pub node: String,
    pub export: Cell,
}

/// The export fields (Ganeti's names and titles).
pub fn registry() -> FieldRegistry<ExportRow> {
    let mut r: FieldRegistry<ExportRow> = FieldRegistry::new();
    r.add_flagged(
        FieldDef::new("node", "Node", FieldKind::Text, "Node name"),
        DataNeeds::LIVE,
        FieldFlags::Hostname,
        |row: &ExportRow| Cell::normal(row.node.as_str()),
    )
    .add(
        FieldDef::new("export", "Export", FieldKind::Text, "Export name"),
        DataNeeds::LIVE,
        |row: &ExportRow| row.export.clone(),
    );
    r
}

/// Asks every node (in parallel) for its exports; rows in the order of
/// the nodes' names.
pub async fn rows(master: &Arc<Master>) -> Vec<ExportRow> {
    let nodes: Vec<objects::Node> = {
        let cfg = master.config.read();
        let mut nodes: Vec<&objects::Node> = cfg.nodes.values().collect();
        luxi::query::nice_sort_by(&mut nodes, |n| &n.name);
        nodes.into_iter().cloned().collect()
    };
    let mut set = tokio::task::JoinSet::new();
    for (i, node) in nodes.iter().enumerate() {
        if node.offline {
            continue;
        }
        let (master, node) = (master.clone(), node.clone());
        set.spawn(async move { (i, master.rpc.call(&node, &rpc::api::ExportList {}).await) });
    }
    let mut answers: Vec<Option<Option<Vec<String>>>> = vec![None; nodes.len()];
    while let Some(Ok((i, r))) = set.join_next().await {
        answers[i] = Some(match r {
            Ok(list) => Some(list),
            Err(e) => {
                tracing::debug!("export_list on {} failed: {e}", nodes[i].name);
                None
            }
        });
    }
    let mut out = Vec::new();
    for (node, answer) in nodes.iter().zip(answers) {
        match answer {
            None => out.push(ExportRow {
                node: node.name.clone(),
                export: Cell::offline(),
            }),
            Some(None) => out.push(ExportRow {
                node: node.name.clone(),
                export: Cell::nodata(),
            }),
            Some(Some(list)) => out.extend(list.into_iter().map(|e| ExportRow {
                node: node.name.clone(),
                export: Cell::normal(e),
            })),
        }
    }
    out
}
