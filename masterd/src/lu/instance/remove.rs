//! `OP_INSTANCE_REMOVE`.

use crate::error::Error;
use luxi::opcodes;
use objects::{AdminState, AdminStateSource};
use serde_json::Value;

use super::*;
use crate::config::{Changes, ConfigData};
use crate::locking::{LockRequest, Mode};
use crate::lu::common::{expand_instance, get_instance, get_node, instance_spec};
use crate::lu::instance_storage::{drbd_port, remove_disks};
use crate::lu::{Ctx, ExecFuture, LogicalUnit};

/// `OP_INSTANCE_REMOVE`.
pub struct Remove {
    op: opcodes::InstanceRemove,
    uuid: String,
}

impl Remove {
    pub fn new(op: opcodes::InstanceRemove) -> Self {
        Remove {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for Remove {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Exclusive))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            remove_instance(
                ctx,
                &self.uuid,
                self.op.shutdown_timeout,
                self.op.ignore_failures,
            )
            .await?;
            Ok(Value::Null)
        })
    }
}

/// Shuts the instance down, removes its disks on every node and takes it
/// out of the configuration (Ganeti's `RemoveInstance`); with
/// `ignore_failures`, a failed shutdown or disk removal is a warning.
pub(crate) async fn remove_instance(
    ctx: &Ctx,
    uuid: &str,
    shutdown_timeout: u64,
    ignore_failures: bool,
) -> Result<(), Error> {
    let inst = get_instance(ctx, uuid)?;
    let pnode = get_node(ctx, &inst.primary_node)?;
    // Ganeti logs its steps here without telling the client:
    // `gnt-instance remove` prints nothing.
    tracing::info!(
        "Shutting down instance {} on node {}",
        inst.name,
        pnode.name
    );
    if let Err(e) = stop_on(ctx, &inst, &pnode, shutdown_timeout).await {
        if ignore_failures {
            ctx.feedback(format!("Warning: can't shutdown instance: {}", e.message()));
        } else {
            return Err(Error::exec(format!(
                "Could not shutdown instance {} on node {}: {}",
                inst.name,
                pnode.name,
                e.message()
            )));
        }
    }
    tracing::info!("Removing block devices for instance {}", inst.name);
    let spec = instance_spec(&ctx.config().read(), &inst)?;
    let mut failed = Vec::new();
    for node_uuid in inst.all_nodes() {
        let node = get_node(ctx, &node_uuid)?;
        failed.extend(remove_disks(ctx, &inst.name, &node, &spec.disks).await);
    }
    if !failed.is_empty() && !ignore_failures {
        // Keep the instance in the config, marked down: its disks
        // are partly gone and a retry can finish the job.
        set_admin_state(ctx, uuid, AdminState::Down, AdminStateSource::Admin)?;
        return Err(Error::exec(format!(
            "Can't remove instance's disks: {}",
            failed.join("; ")
        )));
    }
    if !failed.is_empty() {
        ctx.feedback("Warning: can't remove instance's disks");
    }
    tracing::info!("Removing instance {} out of cluster config", inst.name);
    let mut ch = Changes::new();
    ch.remove_instance(uuid);
    // The NICs' addresses go back to their networks' pools.
    for nic in &inst.nics {
        if let (Some(net), Some(ip)) = (&nic.network, &nic.ip) {
            ch.release_ip(net, ip);
        }
    }
    ctx.commit(ch)?;
    let ports: Vec<u16> = inst.disks.iter().filter_map(drbd_port).collect();
    if let Err(e) = ctx.config().release_ports(&ports) {
        ctx.feedback(format!(
            "Warning: could not give back the replication ports {ports:?}: {}",
            objects::error_chain(&e)
        ));
    }
    Ok(())
}
