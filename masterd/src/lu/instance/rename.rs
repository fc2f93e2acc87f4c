//! `OP_INSTANCE_RENAME`.

use crate::error::Error;
use luxi::opcodes;
use objects::validate::check_host_name;
use objects::AdminState;
use rpc::api;
use serde_json::json;

use super::*;
use crate::config::{Changes, ConfigData};
use crate::locking::{Level, LockRequest, Mode};
use crate::lu::common::{expand_instance, get_instance, get_node, instance_spec};
use crate::lu::{exists, inval, wrong_state, Ctx, ExecFuture, LogicalUnit};

/// `OP_INSTANCE_RENAME`.
pub struct Rename {
    op: opcodes::InstanceRename,
    uuid: String,
}

impl Rename {
    pub fn new(op: opcodes::InstanceRename) -> Self {
        Rename {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for Rename {
    fn check_arguments(&mut self) -> Result<(), Error> {
        check_host_name("instance", &self.op.new_name).map_err(|e| inval(e.to_string()))?;
        if self.op.ip_check && !self.op.name_check {
            return Err(inval("IP address check requires a name check"));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Exclusive).some(
            Level::Instance,
            vec![self.op.new_name.clone()],
            Mode::Exclusive,
        ))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        if inst.admin_state == AdminState::Up {
            return Err(wrong_state(format!(
                "Instance {} is marked to be up, cannot rename",
                inst.name
            )));
        }
        if self.op.new_name != inst.name && cfg.instance_by_name(&self.op.new_name).is_some() {
            return Err(exists(format!(
                "Instance '{}' is already in the cluster",
                self.op.new_name
            )));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut inst = get_instance(ctx, &self.uuid)?;
            let pnode = get_node(ctx, &inst.primary_node)?;
            if is_running(ctx, &inst, &pnode).await? {
                return Err(wrong_state(format!(
                    "Instance {} is running, cannot rename",
                    inst.name
                )));
            }
            let old = inst.name.clone();
            inst.name = self.op.new_name.clone();
            let mut ch = Changes::new();
            ch.instance(inst.clone());
            ctx.commit(ch)?;
            if !inst.os.is_empty() {
                let spec = instance_spec(&ctx.config().read(), &inst)?;
                if let Err(e) = ctx
                    .rpc()
                    .call(
                        &pnode,
                        &api::OsRename {
                            instance: spec,
                            old_name: old.clone(),
                            debug: 0,
                        },
                    )
                    .await
                {
                    ctx.feedback(format!(
                        "Warning: Could not run OS rename script for instance {} on node {} \
                         (but the instance has been renamed in Ganeti): {}",
                        inst.name,
                        pnode.name,
                        objects::error_chain(&e)
                    ));
                }
            }
            Ok(json!(inst.name))
        })
    }
}
