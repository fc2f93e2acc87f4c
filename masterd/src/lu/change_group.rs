//! `OP_INSTANCE_CHANGE_GROUP` (`gnt-instance change-group`) and
//! `OP_GROUP_EVACUATE` (`gnt-group evacuate`): the iallocator's
//! `change-group` request computes how instances move into other node
//! groups, and the unit submits the jobs it proposes, as Ganeti's
//! `LUInstanceChangeGroup` and `LUGroupEvacuate` do.

use luxi::opcodes;
use objects::Instance;

use super::common::{expand_group, expand_instance};
use super::node::load_evacuation;
use super::{inval, Ctx, ExecFuture, LogicalUnit};
use crate::config::ConfigData;
use crate::error::Error;
use crate::locking::{Level, LockRequest, Mode};

/// The iallocator to use: the one given, else the cluster's default.
fn plugin(cfg: &ConfigData, given: Option<&String>) -> Result<String, Error> {
    given
        .cloned()
        .or_else(|| cfg.cluster.default_allocator().map(str::to_string))
        .ok_or_else(|| {
            inval(
                "No iallocator was specified, neither in the opcode nor as a cluster-wide \
                 default iallocator",
            )
        })
}

/// The target groups' UUIDs: those named in `given`, else every group
/// but `others` (sorted).
fn target_groups(
    cfg: &ConfigData,
    given: Option<&[String]>,
    others: &[String],
) -> Result<Vec<String>, Error> {
    match given {
        Some(names) if !names.is_empty() => names
            .iter()
            .map(|g| expand_group(cfg, g).map(|g| g.uuid.clone()))
            .collect(),
        _ => {
            let mut all: Vec<String> = cfg
                .groups
                .keys()
                .filter(|g| !others.contains(g))
                .cloned()
                .collect();
            all.sort();
            Ok(all)
        }
    }
}

/// The groups of an instance's nodes.
fn instance_groups(cfg: &ConfigData, inst: &Instance) -> Vec<String> {
    let mut groups: Vec<String> = inst
        .all_nodes()
        .iter()
        .filter_map(|n| cfg.nodes.get(n).map(|n| n.group.clone()))
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// The names of groups `uuids`, for messages.
fn group_names(cfg: &ConfigData, uuids: &[String]) -> String {
    uuids
        .iter()
        .map(|u| cfg.groups.get(u).map_or(u.as_str(), |g| g.name.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `OP_INSTANCE_CHANGE_GROUP`.
pub struct ChangeGroup {
    op: opcodes::InstanceChangeGroup,
    instance: String,
    targets: Vec<String>,
    plugin: String,
}

impl ChangeGroup {
    pub fn new(op: opcodes::InstanceChangeGroup) -> Self {
        ChangeGroup {
            op,
            instance: String::new(),
            targets: Vec::new(),
            plugin: String::new(),
        }
    }
}

impl LogicalUnit for ChangeGroup {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let name = self
            .op
            .instance_uuid
            .as_deref()
            .unwrap_or(&self.op.instance_name);
        let inst = expand_instance(cfg, name)?;
        self.instance = inst.name.clone();
        self.plugin = plugin(cfg, self.op.iallocator.as_ref())?;
        // The iallocator looks at every node; the moves run in their own
        // jobs.
        Ok(LockRequest::new()
            .some(Level::Instance, vec![inst.uuid.clone()], Mode::Exclusive)
            .all(Level::Node, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let inst = expand_instance(cfg, &self.instance)?;
        let used = instance_groups(cfg, inst);
        self.targets = target_groups(cfg, self.op.target_groups.as_deref(), &used)?;
        let conflicting: Vec<String> = self
            .targets
            .iter()
            .filter(|g| used.contains(g))
            .cloned()
            .collect();
        if !conflicting.is_empty() {
            return Err(inval(format!(
                "Can't use group(s) '{}' as targets, they are used by the instance '{}'",
                group_names(cfg, &conflicting),
                self.instance
            )));
        }
        if self.targets.is_empty() {
            return Err(inval("There are no possible target groups"));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let instances = vec![self.instance.clone()];
            let result = ctx
                .change_group(&self.plugin, &instances, &self.targets)
                .await
                .map_err(|e| {
                    inval(format!(
                        "Can't compute solution for changing group of instance '{}' using \
                         iallocator '{}': {}",
                        self.instance,
                        self.plugin,
                        e.message()
                    ))
                })?;
            let jobs = load_evacuation(ctx, &self.plugin, &result, self.op.early_release)?;
            ctx.feedback(format!(
                " - INFO: Iallocator returned {} job(s) for changing group of instance '{}'",
                jobs.len(),
                self.instance
            ));
            ctx.submit_jobs(jobs).await
        })
    }
}

/// `OP_GROUP_EVACUATE`.
pub struct GroupEvacuate {
    op: opcodes::GroupEvacuate,
    group: String,
    targets: Vec<String>,
    plugin: String,
}

impl GroupEvacuate {
    pub fn new(op: opcodes::GroupEvacuate) -> Self {
        GroupEvacuate {
            op,
            group: String::new(),
            targets: Vec::new(),
            plugin: String::new(),
        }
    }
}

impl LogicalUnit for GroupEvacuate {
    fn check_arguments(&mut self) -> Result<(), Error> {
        if self.op.sequential {
            return Err(inval(
                "Parameter 'sequential' of OP_GROUP_EVACUATE is not supported by ganeti-rs yet",
            ));
        }
        if self.op.force_failover {
            return Err(inval(
                "Parameter 'force_failover' of OP_GROUP_EVACUATE is not supported by \
                 ganeti-rs yet",
            ));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.group = expand_group(cfg, &self.op.group_name)?.uuid.clone();
        self.plugin = plugin(cfg, self.op.iallocator.as_ref())?;
        Ok(LockRequest::new()
            .all(Level::Instance, Mode::Shared)
            .all(Level::Node, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let name = cfg
            .groups
            .get(&self.group)
            .map(|g| g.name.clone())
            .unwrap_or_default();
        self.targets = target_groups(
            cfg,
            self.op.target_groups.as_deref(),
            std::slice::from_ref(&self.group),
        )?;
        if self.targets.contains(&self.group) {
            return Err(inval(format!(
                "Group '{name}' (the one being evacuated) can not be a target group"
            )));
        }
        if self.targets.is_empty() {
            return Err(inval(
                "There are no possible target groups for evacuating the group",
            ));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let (name, instances) = {
                let cfg = ctx.config().read();
                let mut names: Vec<String> = cfg
                    .instances
                    .values()
                    .filter(|i| instance_groups(&cfg, i).contains(&self.group))
                    .map(|i| i.name.clone())
                    .collect();
                names.sort();
                let name = cfg
                    .groups
                    .get(&self.group)
                    .map(|g| g.name.clone())
                    .unwrap_or_default();
                (name, names)
            };
            if instances.is_empty() {
                ctx.feedback(format!(
                    " - INFO: No instances to evacuate from group '{name}'"
                ));
                return ctx.submit_jobs(Vec::new()).await;
            }
            let result = ctx
                .change_group(&self.plugin, &instances, &self.targets)
                .await
                .map_err(|e| {
                    inval(format!(
                        "Can't compute group evacuation using iallocator '{}': {}",
                        self.plugin,
                        e.message()
                    ))
                })?;
            let jobs = load_evacuation(ctx, &self.plugin, &result, self.op.early_release)?;
            ctx.feedback(format!(
                " - INFO: Iallocator returned {} job(s) for evacuating node group {name}",
                jobs.len()
            ));
            ctx.submit_jobs(jobs).await
        })
    }
}
