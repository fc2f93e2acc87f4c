//! `OP_INSTANCE_CREATE` in `import` mode (`gnt-backup import`,
//! `gnt-instance add --src-node/--src-dir`): the export's `config.ini`
//! fills what the opcode leaves unset (Ganeti's `_ReadExportParams`), and
//! the OS `import` script of each disk reads its dump, copied first to the
//! new primary node when the export is on another node.

use luxi::opcodes::{self, DiskSpec, NicSpec};
use objects::paths::EXPORT_DIR;
use objects::Node;
use rpc::api;
use serde_json::Value;

use crate::error::Error;
use crate::lu::backup::copy_dump;
use crate::lu::common::{check_node_online, expand_node, rpc_error};
use crate::lu::export_config::{ExportedInstance, Ini};
use crate::lu::undo::Undo;
use crate::lu::{inval, Ctx};

/// Where the export to import is, and what it says.
pub struct Source {
    pub node: Node,
    /// The export's name (its directory in the node's export directory).
    pub export: String,
    pub info: ExportedInstance,
}

/// The source node the opcode names, if any.
pub fn src_node_name(op: &opcodes::InstanceCreate) -> Option<&str> {
    op.src_node_uuid.as_deref().or(op.src_node.as_deref())
}

/// The export's name from the opcode's `src_path` (default: the
/// instance's name): a name in the export directory, or Ganeti's path of
/// one (`/srv/ganeti/export/NAME`).
fn export_name(op: &opcodes::InstanceCreate) -> Result<String, Error> {
    let path = op.src_path.as_deref().unwrap_or(&op.instance_name);
    let path = path.trim_end_matches('/');
    let name = if path.starts_with('/') {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if dir != EXPORT_DIR && !dir.ends_with(EXPORT_DIR) {
            return Err(inval(format!(
                "Cannot import from '{path}': ganeti-rs imports only exports in the export \
                 directory {EXPORT_DIR}"
            )));
        }
        name
    } else {
        path
    };
    if name.is_empty() || name.starts_with('.') || name.contains('/') {
        return Err(inval(format!(
            "Invalid export name '{name}': expected the name of an export in {EXPORT_DIR}"
        )));
    }
    Ok(name.to_string())
}

/// The opcode's own checks of an import.
pub fn check_source(op: &opcodes::InstanceCreate) -> Result<(), Error> {
    if src_node_name(op).is_none() && op.src_path.as_deref().is_some_and(|p| p.starts_with('/')) {
        return Err(inval(
            "Importing an instance from a path requires a source node option",
        ));
    }
    export_name(op).map(|_| ())
}

/// Finds the export (on the source node, or on any node) and reads it.
pub async fn read_export(ctx: &Ctx, op: &opcodes::InstanceCreate) -> Result<Source, Error> {
    let export = export_name(op)?;
    let node = match src_node_name(op) {
        Some(n) => expand_node(&ctx.config().read(), n)?.clone(),
        None => {
            let nodes: Vec<Node> = ctx
                .config()
                .read()
                .nodes
                .values()
                .filter(|n| !n.offline)
                .cloned()
                .collect();
            let mut found = None;
            for node in nodes {
                if let Ok(list) = ctx.rpc().call(&node, &api::ExportList {}).await {
                    if list.contains(&export) {
                        found = Some(node);
                        break;
                    }
                }
            }
            found.ok_or_else(|| inval(format!("No export found for relative path {export}")))?
        }
    };
    check_node_online(&node)?;
    let text = ctx
        .rpc()
        .call(
            &node,
            &api::ExportInfo {
                name: export.clone(),
            },
        )
        .await
        .map_err(|e| {
            rpc_error(
                &format!("No export or invalid export found in dir {EXPORT_DIR}/{export}"),
                e,
            )
        })?;
    let info = Ini::parse(&text)
        .map_err(|e| e.to_string())
        .and_then(|ini| ExportedInstance::from_ini(&ini).map_err(|e| e.to_string()))
        .map_err(|e| {
            Error::prereq(
                format!(
                    "Invalid export {EXPORT_DIR}/{export} on node {}: {e}",
                    node.name
                ),
                luxi::error::ErrorCode::Environ,
            )
        })?;
    Ok(Source { node, export, info })
}

/// Fills what the opcode leaves unset from the export, as Ganeti's
/// import does: the OS always; disks, NICs and tags when none are given;
/// the hypervisor when not chosen; each hypervisor, backend and OS
/// parameter the opcode does not set.
pub fn fill_opcode(op: &mut opcodes::InstanceCreate, info: &ExportedInstance) {
    op.os_type = Some(info.os.clone());
    if op.disks.is_empty() {
        op.disks = info
            .disks
            .iter()
            .map(|d| DiskSpec {
                size: Some(d.size),
                name: d.name.clone(),
                ..DiskSpec::default()
            })
            .collect();
    }
    if op.nics.is_empty() {
        op.nics = info
            .nics
            .iter()
            .map(|n| {
                let param = |k: &str| {
                    n.params
                        .iter()
                        .find(|(p, _)| p == k)
                        .map(|(_, v)| v.clone())
                };
                NicSpec {
                    mac: Some(n.mac.clone()),
                    ip: n.ip.clone(),
                    name: n.name.clone(),
                    network: n.network.clone(),
                    mode: param("mode"),
                    link: param("link"),
                    vlan: param("vlan").filter(|v| !v.is_empty()),
                }
            })
            .collect();
    }
    if op.tags.is_empty() {
        op.tags = info.tags.clone();
    }
    if op.hypervisor.is_none() {
        op.hypervisor = info.hypervisor.clone();
    }
    for (k, v) in &info.hvparams {
        op.hvparams.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (k, v) in &info.beparams {
        op.beparams.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (k, v) in &info.osparams {
        op.osparams
            .entry(k.clone())
            .or_insert_with(|| Value::from(crate::lu::export_config::py_str(v)));
    }
}

/// Runs the OS `import` script of each disk that has a dump, on the new
/// primary node `pnode`; the dumps are copied there first when the export
/// is on another node (and removed again afterwards). Then, when the
/// instance was exported under another name, the OS `rename` script.
pub async fn import_disks<'a>(
    ctx: &'a Ctx,
    undo: &mut Undo<'a>,
    source: &Source,
    spec: &api::InstanceSpec,
    pnode: &Node,
) -> Result<(), Error> {
    ctx.feedback("* running the instance OS import scripts...");
    let same = source.node.uuid == pnode.uuid;
    let dir = if same {
        source.export.clone()
    } else {
        format!(".{}.import", spec.name)
    };
    if !same {
        let (node, dir) = (pnode.clone(), dir.clone());
        undo.push(
            format!("remove '{dir}' on node {}", node.name),
            async move {
                ctx.rpc()
                    .call(&node, &api::ExportRemove { name: dir })
                    .await
                    .map_err(|e| objects::error_chain(&e))
            },
        );
    }
    for (disk, dumped) in spec.disks.iter().zip(&source.info.disks) {
        let Some(dump) = &dumped.dump else { continue };
        if !same {
            ctx.feedback(format!(
                "Sending disk/{} from node {} to node {}",
                disk.index, source.node.name, pnode.name
            ));
            copy_dump(ctx, &source.node, pnode, &source.export, &dir, dump).await?;
        }
        ctx.feedback(format!(
            "disk/{}: importing through the OS import script",
            disk.index
        ));
        ctx.rpc()
            .call(
                pnode,
                &api::ImportDiskDump {
                    instance: spec.clone(),
                    index: disk.index,
                    dir: dir.clone(),
                    file: dump.clone(),
                    debug: ctx.common.debug_level.max(0) as u32,
                },
            )
            .await
            .map_err(|e| {
                rpc_error(
                    &format!(
                        "Could not import disk/{} of instance {} on node {}",
                        disk.index, spec.name, pnode.name
                    ),
                    e,
                )
            })?;
    }
    if !same {
        if let Err(e) = ctx
            .rpc()
            .call(pnode, &api::ExportRemove { name: dir.clone() })
            .await
        {
            ctx.log_warning(format!(
                "Could not remove the copied dumps ('{dir}') on node {}: {}; remove them \
                 by hand",
                pnode.name,
                objects::error_chain(&e)
            ));
        }
    }
    if source.info.name != spec.name {
        let renamed = ctx
            .rpc()
            .call(
                pnode,
                &api::OsRename {
                    instance: spec.clone(),
                    old_name: source.info.name.clone(),
                    debug: ctx.common.debug_level.max(0) as u32,
                },
            )
            .await;
        if let Err(e) = renamed {
            ctx.log_warning(format!(
                "Failed to run rename script for {} on node {}: {}",
                spec.name,
                pnode.name,
                objects::error_chain(&e)
            ));
        }
    }
    Ok(())
}
