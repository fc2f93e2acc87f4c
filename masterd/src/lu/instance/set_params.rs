//! `OP_INSTANCE_SET_PARAMS`.

use crate::error::Error;
use luxi::opcodes;
use objects::params::{be, get_u64};
use objects::{AdminState, Instance};
use rpc::api;
use serde_json::{json, Value};

use super::*;
use crate::config::{Changes, ConfigData};
use crate::locking::{LockRequest, Mode};
use crate::lu::common::{expand_instance, get_instance, instance_spec, rpc_error};
use crate::lu::{inval, wrong_state, Ctx, ExecFuture, LogicalUnit};

/// `OP_INSTANCE_SET_PARAMS`.
pub struct SetParams {
    op: opcodes::InstanceSetParams,
    uuid: String,
}

impl SetParams {
    pub fn new(op: opcodes::InstanceSetParams) -> Self {
        SetParams {
            op,
            uuid: String::new(),
        }
    }
}

impl LogicalUnit for SetParams {
    fn check_arguments(&mut self) -> Result<(), Error> {
        let o = &self.op;
        check_beparams(&o.beparams)?;
        if !o.nics.is_empty() || !o.disks.is_empty() {
            return Err(inval(
                "Adding, removing or changing NICs and disks is not supported by ganeti-rs yet",
            ));
        }
        if o.runtime_mem == Some(0) {
            return Err(inval("Runtime memory must be a positive number of MiB"));
        }
        if o.beparams.is_empty()
            && o.runtime_mem.is_none()
            && o.hvparams.is_empty()
            && o.os_name.is_none()
            && o.osparams.is_empty()
            && o.offline.is_none()
        {
            return Err(inval("No changes submitted"));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = &cfg.instances[&self.uuid];
        check_hvparams(inst.hypervisor.as_str(), &self.op.hvparams)?;
        if self.op.offline == Some(true) && inst.admin_state == AdminState::Up {
            return Err(wrong_state(format!(
                "Instance {} is marked to be up, cannot mark it offline",
                inst.name
            )));
        }
        let be = objects::params::update(&inst.beparams, &normalize_beparams(&self.op.beparams));
        let filled = cfg.cluster.fill_beparams(&Instance {
            beparams: be,
            ..inst.clone()
        });
        if let (Some(min), Some(max)) = (get_u64(&filled, be::MINMEM), get_u64(&filled, be::MAXMEM))
        {
            if min > max {
                return Err(inval(format!(
                    "Minimum memory ({min} MiB) cannot be larger than maximum memory ({max} MiB)"
                )));
            }
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut inst = get_instance(ctx, &self.uuid)?;
            let mut result = Vec::new();
            if let Some(mem) = self.op.runtime_mem {
                // Before anything changes: a refused balloon changes nothing.
                self.balloon(ctx, &inst, mem).await?;
                result.push(json!(["runtime_memory", mem]));
            }
            if !self.op.beparams.is_empty() {
                inst.beparams =
                    objects::params::update(&inst.beparams, &normalize_beparams(&self.op.beparams));
                for (k, v) in &self.op.beparams {
                    result.push(json!([format!("be/{k}"), v]));
                }
            }
            if !self.op.hvparams.is_empty() {
                inst.hvparams = objects::params::update(&inst.hvparams, &self.op.hvparams);
                for (k, v) in &self.op.hvparams {
                    result.push(json!([format!("hv/{k}"), v]));
                }
            }
            if let Some(os) = &self.op.os_name {
                inst.os = os.clone();
                result.push(json!(["os", os]));
            }
            if !self.op.osparams.is_empty() {
                inst.osparams = objects::params::update(&inst.osparams, &self.op.osparams);
                for (k, v) in &self.op.osparams {
                    result.push(json!([format!("os/{k}"), v]));
                }
            }
            if let Some(off) = self.op.offline {
                inst.admin_state = if off {
                    AdminState::Offline
                } else {
                    AdminState::Down
                };
                result.push(json!(["admin_state", inst.admin_state.as_str()]));
            }
            let mut ch = Changes::new();
            ch.instance(inst);
            ctx.commit(ch)?;
            Ok(Value::Array(result))
        })
    }
}

impl SetParams {
    /// Changes the memory of the running instance to `mem` MiB: within
    /// minmem..maxmem (after this opcode's changes) unless forced, and
    /// only if the node has the memory a growth needs.
    async fn balloon(&self, ctx: &Ctx, inst: &Instance, mem: u64) -> Result<(), Error> {
        let (node, spec, hvparams, min, max) = {
            let cfg = ctx.config().read();
            let be =
                objects::params::update(&inst.beparams, &normalize_beparams(&self.op.beparams));
            let proposed = Instance {
                beparams: be,
                ..inst.clone()
            };
            let filled = cfg.cluster.fill_beparams(&proposed);
            (
                cfg.nodes[&inst.primary_node].clone(),
                instance_spec(&cfg, inst)?,
                cfg.cluster.fill_hvparams(inst),
                get_u64(&filled, be::MINMEM).unwrap_or(0),
                get_u64(&filled, be::MAXMEM).unwrap_or(u64::MAX),
            )
        };
        let info = ctx
            .rpc()
            .call(
                &node,
                &api::InstanceInfo {
                    instance: inst.name.clone(),
                    hypervisor: inst.hypervisor.to_string(),
                    hvparams,
                },
            )
            .await
            .map_err(|e| rpc_error(&format!("Error checking node {}", node.name), e))?;
        let Some(info) = info else {
            return Err(wrong_state(format!(
                "Instance {} is not running",
                inst.name
            )));
        };
        if !self.op.force && (mem > max || mem < min) {
            return Err(inval(format!(
                "Instance {} must have memory between {min} and {max} MB of memory unless \
                 --force is given",
                inst.name
            )));
        }
        if mem > info.memory {
            let reason = format!("ballooning memory for instance {}", inst.name);
            check_free_memory(
                ctx,
                &node,
                inst.hypervisor.as_str(),
                mem - info.memory,
                &reason,
            )
            .await?;
        }
        ctx.rpc()
            .call(
                &node,
                &api::InstanceBalloonMemory {
                    instance: spec,
                    memory_mib: mem,
                },
            )
            .await
            .map_err(|e| rpc_error("Cannot modify instance runtime memory", e))?;
        Ok(())
    }
}
