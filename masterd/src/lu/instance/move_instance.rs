//! `OP_INSTANCE_MOVE` (`gnt-instance move -n NODE`): an instance whose
//! disks are not mirrored (`file`, `plain`) goes to another node. It is
//! shut down, its disks are made on the target node and copied there from
//! the source node (which serves each one over NBD with TLS to the target
//! only, on a port of the cluster's pool), the configuration then names
//! the target, the source's copies go, and the instance starts on the
//! target if it is marked up.

use luxi::opcodes;
use objects::{AdminState, DiskTemplate};
use rpc::api;
use rpc::storage::{DrbdEndpoint, DrbdLink};
use serde_json::Value;

use super::*;
use crate::config::{Changes, ConfigData};
use crate::error::Error;
use crate::locking::{Level, LockRequest, Mode};
use crate::lu::common::{
    check_target_node, expand_instance, expand_node, get_instance, get_node, replication_ip,
    rpc_error,
};
use crate::lu::instance_storage::{create_disks, disks_and_nodes, release_ports, remove_disk};
use crate::lu::ipolicy;
use crate::lu::undo::Undo;
use crate::lu::{inval, wrong_state, Ctx, ExecFuture, LogicalUnit};

/// Ganeti's `DTS_COPYABLE`.
const COPYABLE: &[DiskTemplate] = &[DiskTemplate::Plain, DiskTemplate::File];

/// `OP_INSTANCE_MOVE`.
pub struct Move {
    op: opcodes::InstanceMove,
    uuid: String,
    target: String,
}

impl Move {
    pub fn new(op: opcodes::InstanceMove) -> Self {
        Move {
            op,
            uuid: String::new(),
            target: String::new(),
        }
    }
}

/// A node as one end of a copy.
fn endpoint(node: &objects::Node) -> DrbdEndpoint {
    DrbdEndpoint {
        node: node.name.clone(),
        ip: replication_ip(node).to_string(),
    }
}

impl LogicalUnit for Move {
    fn check_arguments(&mut self) -> Result<(), Error> {
        if self.op.compress != "none" {
            return Err(inval(format!(
                "Compression '{}' of the copy is not supported by ganeti-rs (only 'none')",
                self.op.compress
            )));
        }
        if self.op.target_node.is_none() && self.op.target_node_uuid.is_none() {
            return Err(inval("The target node must be given (-n NODE)"));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let inst = expand_instance(
            cfg,
            self.op
                .instance_uuid
                .as_deref()
                .unwrap_or(&self.op.instance_name),
        )?;
        self.uuid = inst.uuid.clone();
        let target = self
            .op
            .target_node_uuid
            .as_deref()
            .or(self.op.target_node.as_deref())
            .unwrap_or_default();
        self.target = expand_node(cfg, target)?.uuid.clone();
        let nodes = vec![inst.primary_node.clone(), self.target.clone()];
        Ok(LockRequest::new()
            .bgl(Mode::Shared)
            .some(Level::Instance, vec![self.uuid.clone()], Mode::Exclusive)
            .some(Level::Node, nodes.clone(), Mode::Exclusive)
            .some(Level::NodeRes, nodes, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        for (i, d) in inst.disks.iter().enumerate() {
            if !COPYABLE.contains(&d.dev_type) {
                return Err(wrong_state(format!(
                    "Instance disk {i} has disk type {} and is not suitable for copying",
                    d.dev_type
                )));
            }
        }
        let target = &cfg.nodes[&self.target];
        if target.uuid == inst.primary_node {
            return Err(wrong_state(format!(
                "Instance {} is already on the node {}",
                inst.name, target.name
            )));
        }
        check_target_node(target)?;
        if !self.op.ignore_ipolicy {
            if let Some(group) = cfg.groups.get(&target.group) {
                let be = cfg.cluster.fill_beparams(inst);
                let spec = ipolicy::spec_of(
                    &be,
                    inst.disks.iter().map(|d| d.size).collect(),
                    inst.nics.len(),
                    inst.disk_template.as_str(),
                );
                let found = ipolicy::violations(&ipolicy::group_policy(cfg, group), &spec);
                if !found.is_empty() {
                    return Err(inval(format!(
                        "Instance {} does not meet the instance policy of group {} of node {}: \
                         {}; use --ignore-ipolicy to move it anyway",
                        inst.name,
                        group.name,
                        target.name,
                        found.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let inst = get_instance(ctx, &self.uuid)?;
            let source = get_node(ctx, &inst.primary_node)?;
            let target = get_node(ctx, &self.target)?;
            let up = inst.admin_state == AdminState::Up;
            if up {
                let maxmem = crate::lu::common::be_params(&ctx.config().read(), &inst).maxmem;
                let reason = format!("failing over instance {}", inst.name);
                check_free_memory(ctx, &target, inst.hypervisor.as_str(), maxmem, &reason).await?;
            } else {
                ctx.log_info(
                    "Not checking memory on the secondary node as instance will not be started",
                );
            }
            ctx.log_info(format!(
                "Shutting down instance {} on source node {}",
                inst.name, source.name
            ));
            if let Err(e) = stop_on(ctx, &inst, &source, self.op.shutdown_timeout).await {
                let msg = format!(
                    "Could not shutdown instance {} on node {}",
                    inst.name, source.name
                );
                if !self.op.ignore_consistency {
                    return Err(Error::exec(format!("{msg}: {}", objects::error_chain(&e))));
                }
                ctx.log_warning(format!(
                    "{msg}. Proceeding anyway. Please make sure node {} is down. Error \
                     details: {}",
                    source.name,
                    objects::error_chain(&e)
                ));
            }
            let (specs, _) = disks_and_nodes(&ctx.config().read(), &inst)?;
            let mut undo = Undo::new(ctx);
            if up {
                // A failed copy leaves the instance where it was, running.
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
            if let Err(e) = create_disks(ctx, &mut undo, &inst.name, &target, &[], &specs).await {
                return Err(undo.unwind(e).await);
            }
            if let Err(e) = self
                .copy(ctx, &mut undo, &inst, &source, &target, &specs)
                .await
            {
                let err = Error::exec(format!(
                    "Errors during disk copy: {}",
                    objects::error_chain(&e)
                ));
                return Err(undo.unwind(err).await);
            }
            let mut moved = inst.clone();
            moved.primary_node = target.uuid.clone();
            for d in &mut moved.disks {
                d.nodes = vec![target.uuid.clone()];
            }
            let mut ch = Changes::new();
            ch.instance(moved.clone());
            if let Err(e) = ctx.commit(ch) {
                return Err(undo.unwind(e).await);
            }
            undo.done();
            ctx.log_info("Removing the disks on the original node");
            let mut leftovers = Vec::new();
            for spec in &specs {
                let r = remove_disk(ctx, inst.name.clone(), source.clone(), spec.clone()).await;
                if let Err(e) = r {
                    leftovers.push(format!(
                        "disk {} could not be removed from node {}: {e}; remove it by hand \
                         on node {}",
                        spec.index, source.name, source.name
                    ));
                }
            }
            if up {
                ctx.log_info(format!(
                    "Starting instance {} on node {}",
                    moved.name, target.name
                ));
                start_on(ctx, &moved, &target, false).await.map_err(|e| {
                    Error::exec(format!(
                        "Could not start instance {} on node {}: {}",
                        moved.name,
                        target.name,
                        objects::error_chain(&e)
                    ))
                })?;
            }
            if !leftovers.is_empty() {
                return Err(Error::exec(format!(
                    "Instance {} moved to node {}, but {}",
                    moved.name,
                    target.name,
                    leftovers.join("; ")
                )));
            }
            Ok(Value::Null)
        })
    }
}

impl Move {
    /// Copies each disk from `source` to `target`, where it was made.
    async fn copy<'a>(
        &self,
        ctx: &'a Ctx,
        undo: &mut Undo<'a>,
        inst: &objects::Instance,
        source: &objects::Node,
        target: &objects::Node,
        specs: &[api::DiskSpec],
    ) -> Result<(), Error> {
        for spec in specs {
            // The port is taken for the copy only, and given back after it
            // whatever happens.
            let port = ctx.config().allocate_port().map_err(Error::Config)?;
            let copied = self
                .copy_disk(ctx, undo, inst, source, target, spec, port)
                .await;
            let released = release_ports(ctx, vec![port])
                .await
                .map_err(|e| Error::exec(format!("Cannot give back port {port}: {e}")));
            copied?;
            released?;
        }
        Ok(())
    }

    /// Copies one disk over `port`.
    #[allow(clippy::too_many_arguments)]
    async fn copy_disk<'a>(
        &self,
        ctx: &'a Ctx,
        undo: &mut Undo<'a>,
        inst: &objects::Instance,
        source: &objects::Node,
        target: &objects::Node,
        spec: &api::DiskSpec,
        port: u16,
    ) -> Result<(), Error> {
        let link = DrbdLink {
            nodes: [endpoint(source), endpoint(target)],
            port,
        };
        ctx.feedback(format!(
            "Copying disk/{} ({}M) from node {} to node {}",
            spec.index, spec.size, source.name, target.name
        ));
        let start = api::DiskExportStart {
            instance_name: inst.name.clone(),
            disk: spec.clone(),
            link: link.clone(),
        };
        ctx.rpc().call(source, &start).await.map_err(|e| {
            rpc_error(
                &format!("Cannot export disk {} on node {}", spec.index, source.name),
                e,
            )
        })?;
        let stop = api::DiskExportStop {
            disk: spec.uuid.clone(),
        };
        {
            let (source, stop) = (source.clone(), stop.clone());
            undo.push(
                format!(
                    "stop the export of disk {} on node {}",
                    spec.index, source.name
                ),
                async move {
                    ctx.rpc()
                        .call(&source, &stop)
                        .await
                        .map_err(|e| objects::error_chain(&e))
                },
            );
        }
        let import = api::DiskImport {
            instance_name: inst.name.clone(),
            disk: spec.clone(),
            link,
            source: spec.uuid.clone(),
        };
        let copied = ctx.rpc().call(target, &import).await;
        let stopped = ctx.rpc().call(source, &stop).await;
        copied.map_err(|e| {
            rpc_error(
                &format!("Cannot copy disk {} to node {}", spec.index, target.name),
                e,
            )
        })?;
        stopped.map_err(|e| {
            rpc_error(
                &format!(
                    "Cannot stop the export of disk {} on node {}",
                    spec.index, source.name
                ),
                e,
            )
        })?;
        Ok(())
    }
}
