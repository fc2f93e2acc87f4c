//! Backups: `OP_BACKUP_PREPARE`, `OP_BACKUP_EXPORT` (`gnt-backup export`)
//! and `OP_BACKUP_REMOVE`; the import is `OP_INSTANCE_CREATE` in `import`
//! mode (`lu::instance::Create`).
//!
//! An export is made in a staging directory: the OS `export` script of
//! each disk writes its dump there, on the instance's primary node. When
//! the target node is another, each dump is copied to its staging
//! directory over NBD with mutual TLS (as `gnt-instance move` copies
//! disks). The target node then writes `config.ini` and renames the
//! staging directory into place, replacing an older export of the
//! instance only then; older exports of the instance on other nodes are
//! removed last. A failure before that point removes the staging
//! directories and starts the instance again if it was shut down for the
//! export.

use luxi::opcodes;
use objects::{AdminState, Instance, Node};
use rpc::api;
use rpc::storage::{DrbdEndpoint, DrbdLink};
use serde_json::{json, Value};

use crate::config::ConfigData;
use crate::error::Error;
use crate::locking::{Level, LockRequest, Mode};
use crate::lu::common::{
    check_node_not_drained, check_node_online, expand_instance, expand_node, get_instance,
    get_node, instance_spec, replication_ip, rpc_error,
};
use crate::lu::export_config::ExportedInstance;
use crate::lu::instance::{remove_instance, start_on, stop_on};
use crate::lu::instance_storage::release_ports;
use crate::lu::undo::Undo;
use crate::lu::{inval, Ctx, ExecFuture, LogicalUnit};

/// The export modes of Ganeti (`EXPORT_MODES`).
const MODES: &[&str] = &["local", "remote"];

fn check_mode(mode: &str) -> Result<(), Error> {
    match mode {
        "local" => Ok(()),
        "remote" => Err(inval(
            "Remote export mode (to another cluster) is not supported by ganeti-rs yet; \
             only 'local'",
        )),
        other => Err(inval(format!(
            "Invalid export mode '{other}'; expected one of {}",
            MODES.join(", ")
        ))),
    }
}

/// A node as one end of a copy.
fn endpoint(node: &Node) -> DrbdEndpoint {
    DrbdEndpoint {
        node: node.name.clone(),
        ip: replication_ip(node).to_string(),
    }
}

/// Copies the file `file` of the export directory `src_dir` on `source`
/// into the export directory `dst_dir` on `target`, over a port of the
/// cluster's pool held for the copy only.
pub(crate) async fn copy_dump(
    ctx: &Ctx,
    source: &Node,
    target: &Node,
    src_dir: &str,
    dst_dir: &str,
    file: &str,
) -> Result<(), Error> {
    let port = ctx.config().allocate_port().map_err(Error::Config)?;
    let link = DrbdLink {
        nodes: [endpoint(source), endpoint(target)],
        port,
    };
    let copied = async {
        let size = ctx
            .rpc()
            .call(
                source,
                &api::ExportFileServe {
                    dir: src_dir.to_string(),
                    file: file.to_string(),
                    link: link.clone(),
                },
            )
            .await
            .map_err(|e| rpc_error(&format!("Cannot serve {file} on node {}", source.name), e))?;
        let fetched = ctx
            .rpc()
            .call(
                target,
                &api::ExportFileFetch {
                    dir: dst_dir.to_string(),
                    file: file.to_string(),
                    size,
                    link: link.clone(),
                },
            )
            .await;
        let stopped = ctx
            .rpc()
            .call(
                source,
                &api::DiskExportStop {
                    disk: file.to_string(),
                },
            )
            .await;
        fetched.map_err(|e| {
            rpc_error(
                &format!(
                    "Cannot copy {file} from node {} to node {}",
                    source.name, target.name
                ),
                e,
            )
        })?;
        stopped.map_err(|e| {
            rpc_error(
                &format!("Cannot stop serving {file} on node {}", source.name),
                e,
            )
        })
    }
    .await;
    let released = release_ports(ctx, vec![port])
        .await
        .map_err(|e| Error::exec(format!("Cannot give back port {port}: {e}")));
    copied?;
    released
}

/// Removes the export or staging directory `name` of `node`; the undo
/// step of a staging directory.
async fn remove_dir(ctx: &Ctx, node: &Node, name: &str) -> Result<(), String> {
    ctx.rpc()
        .call(
            node,
            &api::ExportRemove {
                name: name.to_string(),
            },
        )
        .await
        .map_err(|e| objects::error_chain(&e))
}

/// `OP_BACKUP_PREPARE`: nothing to prepare for a local export (Ganeti
/// answers `None`); remote exports are refused.
pub struct Prepare {
    op: opcodes::BackupPrepare,
    uuid: String,
}

impl Prepare {
    pub fn new(op: opcodes::BackupPrepare) -> Self {
        Prepare {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for Prepare {
    fn check_arguments(&mut self) -> Result<(), Error> {
        check_mode(&self.op.mode)
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let name = self
            .op
            .instance_uuid
            .as_deref()
            .unwrap_or(&self.op.instance_name);
        self.uuid = expand_instance(cfg, name)?.uuid.clone();
        Ok(LockRequest::new().bgl(Mode::Shared).some(
            Level::Instance,
            vec![self.uuid.clone()],
            Mode::Exclusive,
        ))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        if let Some(node) = cfg.nodes.get(&inst.primary_node) {
            check_node_online(node)?;
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, _ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move { Ok(Value::Null) })
    }
}

/// `OP_BACKUP_EXPORT` in `local` mode.
pub struct Export {
    op: opcodes::BackupExport,
    uuid: String,
    target: String,
}

impl Export {
    pub fn new(op: opcodes::BackupExport) -> Self {
        Export {
            op,
            uuid: String::new(),
            target: String::new(),
        }
    }

    /// Whether the instance starts again after the export (Ganeti's
    /// `DoReboot`).
    fn restart(&self, inst: &Instance) -> bool {
        self.op.shutdown && inst.admin_state == AdminState::Up && !self.op.remove_instance
    }
}

impl LogicalUnit for Export {
    fn check_arguments(&mut self) -> Result<(), Error> {
        check_mode(&self.op.mode)?;
        if self.op.compress != "none" {
            return Err(inval(format!(
                "Compression '{}' of exports is not supported by ganeti-rs (only 'none')",
                self.op.compress
            )));
        }
        match &self.op.target_node {
            None if self.op.target_node_uuid.is_none() => {
                Err(inval("Target node must be specified"))
            }
            Some(v) if !v.is_string() => Err(inval(format!(
                "Invalid target node {v} for a local export: expected a node name"
            ))),
            _ => Ok(()),
        }
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let name = self
            .op
            .instance_uuid
            .as_deref()
            .unwrap_or(&self.op.instance_name);
        self.uuid = expand_instance(cfg, name)?.uuid.clone();
        let target = self
            .op
            .target_node_uuid
            .as_deref()
            .or(self.op.target_node.as_ref().and_then(Value::as_str))
            .unwrap_or_default();
        self.target = expand_node(cfg, target)?.uuid.clone();
        // Every node, as Ganeti: older exports of the instance go from
        // wherever they are.
        Ok(LockRequest::new()
            .bgl(Mode::Shared)
            .some(Level::Instance, vec![self.uuid.clone()], Mode::Exclusive)
            .all(Level::Node, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        if let Some(node) = cfg.nodes.get(&inst.primary_node) {
            check_node_online(node)?;
        }
        let up = inst.admin_state == AdminState::Up;
        if self.op.remove_instance && up && !self.op.shutdown {
            return Err(crate::lu::wrong_state(
                "Can not remove instance without shutting it down before",
            ));
        }
        let target = &cfg.nodes[&self.target];
        check_node_online(target)?;
        check_node_not_drained(target)?;
        if self.op.long_sleep && !self.op.shutdown {
            return Err(inval(
                "The long sleep option only makes sense when the instance can be shut down.",
            ));
        }
        // Ganeti exports a running instance that is kept from snapshots of
        // its disks; ganeti-rs takes none, so such an export needs the
        // instance shut down for the whole copy (refused here, before
        // anything changed, where Ganeti fails after its shutdown).
        if up && !self.op.remove_instance && !inst.disks.is_empty() {
            if !self.op.shutdown {
                return Err(crate::lu::wrong_state(
                    "Not all disks could be snapshotted, and you requested a live export; \
                     aborting",
                ));
            }
            if !self.op.long_sleep {
                return Err(crate::lu::wrong_state(
                    "Not all disks could be snapshotted, and you did not allow the instance \
                     to remain offline for a longer time through the --long-sleep option; \
                     aborting",
                ));
            }
        }
        Ok(())
    }

    fn settled_fields(&self) -> Vec<(&'static str, Value)> {
        vec![("target_node_uuid", Value::from(self.target.clone()))]
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let inst = get_instance(ctx, &self.uuid)?;
            let source = get_node(ctx, &inst.primary_node)?;
            let target = get_node(ctx, &self.target)?;
            let restart = self.restart(&inst);
            let mut undo = Undo::new(ctx);
            if self.op.shutdown {
                ctx.feedback(format!("Shutting down instance {}", inst.name));
                stop_on(ctx, &inst, &source, self.op.shutdown_timeout)
                    .await
                    .map_err(|e| {
                        Error::exec(format!(
                            "Could not shutdown instance {} on node {}: {}",
                            inst.name,
                            source.name,
                            e.message()
                        ))
                    })?;
                if restart {
                    let (inst, source) = (inst.clone(), source.clone());
                    undo.push(
                        format!("start instance {} again on node {}", inst.name, source.name),
                        async move {
                            start_on(ctx, &inst, &source, false)
                                .await
                                .map_err(|e| objects::error_chain(&e))
                        },
                    );
                }
            }
            let dumps = match self
                .dump_and_finalize(ctx, &mut undo, &inst, &source, &target)
                .await
            {
                Ok(d) => d,
                Err(e) => return Err(undo.unwind(e).await),
            };
            undo.done();
            if restart {
                ctx.feedback(format!("Starting instance {}", inst.name));
                if let Err(e) = start_on(ctx, &inst, &source, false).await {
                    ctx.feedback(format!("Failed to start instance: {}", e.message()));
                    return Err(Error::exec(format!(
                        "Could not start instance: {}",
                        e.message()
                    )));
                }
            }
            if self.op.remove_instance {
                ctx.feedback(format!("Removing instance {}", inst.name));
                remove_instance(
                    ctx,
                    &inst.uuid,
                    self.op.shutdown_timeout,
                    self.op.ignore_remove_failures,
                )
                .await?;
            }
            self.remove_older_exports(ctx, &inst.name, &target).await;
            Ok(json!([true, vec![true; dumps]]))
        })
    }
}

impl Export {
    /// Dumps every disk, brings the dumps to the target node and makes
    /// them the export there; answers the number of disks exported.
    async fn dump_and_finalize<'a>(
        &self,
        ctx: &'a Ctx,
        undo: &mut Undo<'a>,
        inst: &Instance,
        source: &Node,
        target: &Node,
    ) -> Result<usize, Error> {
        let (spec, exported) = {
            let cfg = ctx.config().read();
            let spec = instance_spec(&cfg, inst)?;
            let be = cfg.cluster.fill_beparams(inst);
            let exported = ExportedInstance {
                name: inst.name.clone(),
                os: inst.os.clone(),
                source: inst.primary_node.clone(),
                timestamp: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
                disk_template: inst.disk_template.to_string(),
                hypervisor: Some(inst.hypervisor.to_string()),
                tags: inst.tags.clone(),
                nics: spec
                    .nics
                    .iter()
                    .map(|n| crate::lu::export_config::ExportNic {
                        mac: n.mac.clone(),
                        ip: n.ip.clone(),
                        name: n.name.clone(),
                        network: n.network.clone(),
                        params: [
                            Some(("mode".to_string(), n.mode.as_str().to_string())),
                            Some(("link".to_string(), n.link.clone())),
                            n.vlan.clone().map(|v| ("vlan".to_string(), v)),
                        ]
                        .into_iter()
                        .flatten()
                        .collect(),
                    })
                    .collect(),
                disks: Vec::new(),
                hvparams: spec.hvparams.clone(),
                beparams: be,
                osparams: spec
                    .osparams
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect(),
            };
            (spec, exported)
        };
        let mut exported = exported;
        let final_staging = format!("{}.new", inst.name);
        // The dumps are made on the primary node: in the final staging
        // directory when it is the target, else in a hidden one.
        let same = source.uuid == target.uuid;
        let src_staging = if same {
            final_staging.clone()
        } else {
            format!(".{}.out", inst.name)
        };
        {
            let (source, dir) = (source.clone(), src_staging.clone());
            undo.push(
                format!("remove '{dir}' on node {}", source.name),
                async move { remove_dir(ctx, &source, &dir).await },
            );
        }
        let mut sizes = Vec::new();
        for disk in &spec.disks {
            ctx.feedback(format!(
                "Exporting disk/{} from node {} through the OS export script",
                disk.index, source.name
            ));
            let size = ctx
                .rpc()
                .call(
                    source,
                    &api::ExportDiskDump {
                        instance: spec.clone(),
                        index: disk.index,
                        dir: src_staging.clone(),
                        debug: ctx.common.debug_level.max(0) as u32,
                    },
                )
                .await
                .map_err(|e| {
                    rpc_error(
                        &format!(
                            "Export of disk/{} of instance {} failed on node {}",
                            disk.index, inst.name, source.name
                        ),
                        e,
                    )
                })?;
            sizes.push(size);
            exported.disks.push(crate::lu::export_config::ExportDisk {
                size: disk.size,
                name: disk.name.clone(),
                dump: Some(disk.uuid.clone()),
            });
        }
        if !same {
            {
                let (target, dir) = (target.clone(), final_staging.clone());
                undo.push(
                    format!("remove '{dir}' on node {}", target.name),
                    async move { remove_dir(ctx, &target, &dir).await },
                );
            }
            for (disk, size) in spec.disks.iter().zip(&sizes) {
                ctx.feedback(format!(
                    "Sending disk/{} ({size} bytes) from node {} to node {}",
                    disk.index, source.name, target.name
                ));
                copy_dump(
                    ctx,
                    source,
                    target,
                    &src_staging,
                    &final_staging,
                    &disk.uuid,
                )
                .await?;
            }
        }
        ctx.feedback(format!("Finalizing export on {}", target.name));
        ctx.rpc()
            .call(
                target,
                &api::FinalizeExport {
                    dir: final_staging.clone(),
                    name: inst.name.clone(),
                    config: exported.to_ini().to_text(),
                },
            )
            .await
            .map_err(|e| {
                rpc_error(
                    &format!(
                        "Export failed, errors in export finalization on {}",
                        target.name
                    ),
                    e,
                )
            })?;
        if !same {
            if let Err(e) = remove_dir(ctx, source, &src_staging).await {
                ctx.log_warning(format!(
                    "Could not remove the temporary files of the export ('{src_staging}') on \
                     node {}: {e}; remove them by hand",
                    source.name
                ));
            }
        }
        Ok(spec.disks.len())
    }

    /// Removes the exports of the instance on every node but `target`
    /// (Ganeti's `_CleanupExports`).
    async fn remove_older_exports(&self, ctx: &Ctx, name: &str, target: &Node) {
        let others: Vec<Node> = ctx
            .config()
            .read()
            .nodes
            .values()
            .filter(|n| n.uuid != target.uuid && !n.offline)
            .cloned()
            .collect();
        if others.is_empty() {
            return;
        }
        ctx.feedback(format!("Removing old exports for instance {name}"));
        for node in others {
            let Ok(list) = ctx.rpc().call(&node, &api::ExportList {}).await else {
                continue;
            };
            if list.iter().any(|e| e == name) {
                if let Err(e) = remove_dir(ctx, &node, name).await {
                    ctx.log_warning(format!(
                        "Could not remove older export for instance {name} on node {}: {e}",
                        node.name
                    ));
                }
            }
        }
    }
}

/// `OP_BACKUP_REMOVE`: removes the exports of an instance (which may no
/// longer exist) from every node.
pub struct Remove {
    op: opcodes::BackupRemove,
}

impl Remove {
    pub fn new(op: opcodes::BackupRemove) -> Self {
        Remove { op }
    }
}

impl LogicalUnit for Remove {
    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new()
            .bgl(Mode::Shared)
            .all(Level::Node, Mode::Exclusive))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let (name, known, nodes) = {
                let cfg = ctx.config().read();
                let given = self
                    .op
                    .instance_uuid
                    .as_deref()
                    .unwrap_or(&self.op.instance_name);
                let inst = cfg.expand_instance(given).map(|i| i.name.clone());
                let nodes: Vec<Node> = cfg.nodes.values().cloned().collect();
                (
                    inst.clone()
                        .unwrap_or_else(|| self.op.instance_name.clone()),
                    inst.is_some(),
                    nodes,
                )
            };
            let mut found = false;
            let mut failures = Vec::new();
            for node in nodes {
                if node.offline {
                    continue;
                }
                let list = match ctx.rpc().call(&node, &api::ExportList {}).await {
                    Ok(l) => l,
                    Err(e) => {
                        ctx.log_warning(format!(
                            "Failed to query node {} (continuing): {}",
                            node.name,
                            objects::error_chain(&e)
                        ));
                        continue;
                    }
                };
                if !list.contains(&name) {
                    continue;
                }
                found = true;
                if let Err(e) = remove_dir(ctx, &node, &name).await {
                    tracing::error!(
                        "Could not remove export for instance {name} on node {}: {e}",
                        node.name
                    );
                    failures.push(format!("on node {}: {e}", node.name));
                }
            }
            if !found {
                if known {
                    ctx.feedback(format!("No export of instance {name} found"));
                } else {
                    ctx.feedback(
                        "Export not found. If trying to remove an export belonging to a \
                         deleted instance please use its Fully Qualified Domain Name.",
                    );
                }
            }
            if !failures.is_empty() {
                return Err(Error::exec(format!(
                    "Could not remove the export of instance {name} {}",
                    failures.join("; ")
                )));
            }
            Ok(Value::Null)
        })
    }
}
