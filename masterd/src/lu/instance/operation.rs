//! Startup, shutdown, reboot and reinstall.

use crate::error::Error;
use luxi::opcodes;
use objects::{AdminState, AdminStateSource, DiskTemplate};
use rpc::api;
use serde_json::Value;

use super::*;
use crate::config::{Changes, ConfigData};
use crate::locking::{LockRequest, Mode};
use crate::lu::common::{
    check_node_online, expand_instance, get_instance, get_node, instance_spec, rpc_error,
};
use crate::lu::{inval, wrong_state, Ctx, ExecFuture, LogicalUnit};

/// `OP_INSTANCE_STARTUP`.
pub struct Startup {
    op: opcodes::InstanceStartup,
    uuid: String,
}

impl Startup {
    pub fn new(op: opcodes::InstanceStartup) -> Self {
        Startup {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for Startup {
    fn check_arguments(&mut self) -> Result<(), Error> {
        check_beparams(&self.op.beparams)
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        if inst.admin_state == AdminState::Offline {
            return Err(wrong_state(format!(
                "Instance '{}' is marked offline, cannot start it",
                inst.name
            )));
        }
        check_hvparams(inst.hypervisor.as_str(), &self.op.hvparams)?;
        let pnode = &cfg.nodes[&inst.primary_node];
        if pnode.offline && !self.op.ignore_offline_nodes {
            return Err(wrong_state(format!(
                "Instance primary node offline, cannot start instance {} (node {})",
                inst.name, pnode.name
            )));
        }
        check_node_online(pnode)
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut inst = get_instance(ctx, &self.uuid)?;
            let pnode = get_node(ctx, &inst.primary_node)?;
            if !self.op.no_remember {
                set_admin_state(ctx, &self.uuid, AdminState::Up, AdminStateSource::Admin)?;
            }
            if is_running(ctx, &inst, &pnode).await? {
                ctx.feedback("Instance is already running");
                return Ok(Value::Null);
            }
            // Temporary parameters apply to this start only.
            inst.hvparams = objects::params::fill(&inst.hvparams, &self.op.hvparams);
            inst.beparams =
                objects::params::fill(&inst.beparams, &normalize_beparams(&self.op.beparams));
            start_on(ctx, &inst, &pnode, self.op.startup_paused).await?;
            Ok(Value::Null)
        })
    }
}

// ------------------------------------------------------------------ shutdown

/// `OP_INSTANCE_SHUTDOWN`.
pub struct Shutdown {
    op: opcodes::InstanceShutdown,
    uuid: String,
}

impl Shutdown {
    pub fn new(op: opcodes::InstanceShutdown) -> Self {
        Shutdown {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for Shutdown {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        let pnode = &cfg.nodes[&inst.primary_node];
        if pnode.offline && !self.op.ignore_offline_nodes {
            return Err(wrong_state(format!(
                "Instance primary node offline, cannot shutdown instance {} (node {})",
                inst.name, pnode.name
            )));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let inst = get_instance(ctx, &self.uuid)?;
            let pnode = get_node(ctx, &inst.primary_node)?;
            if !self.op.no_remember {
                let source = match self.op.admin_state_source.as_deref() {
                    Some("user") => AdminStateSource::User,
                    _ => AdminStateSource::Admin,
                };
                set_admin_state(ctx, &self.uuid, AdminState::Down, source)?;
            }
            if pnode.offline {
                ctx.feedback(format!(
                    "Primary node {} is offline, not contacting it",
                    pnode.name
                ));
                return Ok(Value::Null);
            }
            stop_on(ctx, &inst, &pnode, self.op.timeout).await?;
            set_disks_active(ctx, &self.uuid, false)?;
            Ok(Value::Null)
        })
    }

    fn settled_fields(&self) -> Vec<(&'static str, Value)> {
        // Ganeti: a shutdown without a source is the administrator's.
        vec![("admin_state_source", Value::from("admin"))]
    }
}

// ------------------------------------------------------------------ reboot

/// `OP_INSTANCE_REBOOT`.
pub struct Reboot {
    op: opcodes::InstanceReboot,
    uuid: String,
}

impl Reboot {
    pub fn new(op: opcodes::InstanceReboot) -> Self {
        Reboot {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for Reboot {
    fn check_arguments(&mut self) -> Result<(), Error> {
        if !["soft", "hard", "full"].contains(&self.op.reboot_type.as_str()) {
            return Err(inval(format!(
                "Invalid reboot type '{}': expected soft, hard or full",
                self.op.reboot_type
            )));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        if inst.admin_state == AdminState::Offline {
            return Err(wrong_state(format!(
                "Instance '{}' is marked offline, cannot reboot it",
                inst.name
            )));
        }
        check_node_online(&cfg.nodes[&inst.primary_node])
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let inst = get_instance(ctx, &self.uuid)?;
            let pnode = get_node(ctx, &inst.primary_node)?;
            let running = is_running(ctx, &inst, &pnode).await?;
            if running && self.op.reboot_type != "full" {
                let spec = instance_spec(&ctx.config().read(), &inst)?;
                let t = if self.op.reboot_type == "soft" {
                    api::RebootType::Soft
                } else {
                    api::RebootType::Hard
                };
                ctx.rpc()
                    .call(
                        &pnode,
                        &api::InstanceReboot {
                            instance: spec,
                            reboot_type: t,
                            shutdown_timeout_secs: self.op.shutdown_timeout,
                        },
                    )
                    .await
                    .map_err(|e| rpc_error("Could not reboot instance", e))?;
            } else {
                if running {
                    stop_on(ctx, &inst, &pnode, self.op.shutdown_timeout).await?;
                } else {
                    ctx.feedback("Instance was not running, starting it");
                }
                start_on(ctx, &inst, &pnode, false).await?;
            }
            set_admin_state(ctx, &self.uuid, AdminState::Up, AdminStateSource::Admin)?;
            Ok(Value::Null)
        })
    }
}

// ------------------------------------------------------------------ reinstall

/// `OP_INSTANCE_REINSTALL`.
pub struct Reinstall {
    op: opcodes::InstanceReinstall,
    uuid: String,
}

impl Reinstall {
    pub fn new(op: opcodes::InstanceReinstall) -> Self {
        Reinstall {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for Reinstall {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        if inst.admin_state == AdminState::Up {
            return Err(wrong_state(format!(
                "Instance '{}' is marked to be up, cannot reinstall",
                inst.name
            )));
        }
        if inst.disk_template == DiskTemplate::Diskless {
            return Err(inval(format!("Instance '{}' has no disks", inst.name)));
        }
        check_node_online(&cfg.nodes[&inst.primary_node])
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut inst = get_instance(ctx, &self.uuid)?;
            let pnode = get_node(ctx, &inst.primary_node)?;
            if is_running(ctx, &inst, &pnode).await? {
                return Err(wrong_state(format!(
                    "Instance {} is running, cannot reinstall",
                    inst.name
                )));
            }
            let mut changed = false;
            if let Some(os) = &self.op.os_type {
                inst.os = os.clone();
                changed = true;
            }
            if let Some(p) = &self.op.osparams {
                inst.osparams = p.clone();
                changed = true;
            }
            ctx.feedback("Running the instance OS create scripts...");
            let spec = instance_spec(&ctx.config().read(), &inst)?;
            ctx.rpc()
                .call(
                    &pnode,
                    &api::InstanceOsAdd {
                        instance: spec,
                        reinstall: true,
                        debug: ctx.common.debug_level.max(0) as u32,
                    },
                )
                .await
                .map_err(|e| {
                    rpc_error(
                        &format!(
                            "Could not install OS for instance {} on node {}",
                            inst.name, pnode.name
                        ),
                        e,
                    )
                })?;
            if changed {
                let mut ch = Changes::new();
                ch.instance(inst);
                ctx.commit(ch)?;
            }
            Ok(Value::Null)
        })
    }
}
