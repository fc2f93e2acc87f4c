//! `OP_INSTANCE_CONSOLE`: how to reach a running instance's console, as
//! its primary node's hypervisor says (Ganeti's console dict).

use luxi::opcodes;
use objects::AdminState;
use rpc::api;

use crate::config::ConfigData;
use crate::error::Error;
use crate::locking::{Level, LockRequest, Mode};
use crate::lu::common::{expand_instance, get_instance, get_node, instance_spec, rpc_error};
use crate::lu::instance::is_running;
use crate::lu::{Ctx, ExecFuture, LogicalUnit};

pub struct Console {
    op: opcodes::InstanceConsole,
    uuid: String,
}

impl Console {
    pub fn new(op: opcodes::InstanceConsole) -> Self {
        Console {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for Console {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let name = self
            .op
            .instance_uuid
            .as_deref()
            .unwrap_or(&self.op.instance_name);
        let inst = expand_instance(cfg, name)?;
        self.uuid = inst.uuid.clone();
        Ok(LockRequest::new()
            .some(Level::Instance, vec![self.uuid.clone()], Mode::Shared)
            .some(Level::Node, vec![inst.primary_node.clone()], Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        crate::lu::common::check_node_online(&cfg.nodes[&inst.primary_node])
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let inst = get_instance(ctx, &self.uuid)?;
            let node = get_node(ctx, &inst.primary_node)?;
            if !is_running(ctx, &inst, &node).await? {
                let state = match inst.admin_state {
                    AdminState::Up => "ERROR_down",
                    AdminState::Down => "ADMIN_down",
                    AdminState::Offline => "ADMIN_offline",
                };
                return Err(Error::exec(format!(
                    "Instance {} is not running (state {state})",
                    inst.name
                )));
            }
            let spec = instance_spec(&ctx.config().read(), &inst)?;
            let console = ctx
                .rpc()
                .call(&node, &api::InstanceConsole { instance: spec })
                .await
                .map_err(|e| {
                    rpc_error(
                        &format!("Cannot get the console of instance {}", inst.name),
                        e,
                    )
                })?;
            Ok(crate::query::instance::console_dict(&console))
        })
    }
}
