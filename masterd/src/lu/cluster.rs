//! Cluster-wide operations: verify (config and per group) and set params.

use std::collections::{BTreeMap, HashMap};

use crate::error::Error;
use luxi::opcodes::{self, Dependency, Input, JobRef, OpCode};
use objects::enums::{KNOWN_DISK_TEMPLATES, KNOWN_HYPERVISORS};
use objects::{error_chain, AdminState};
use serde_json::{json, Value};

use super::common::expand_group;
use super::{inval, Ctx, ExecFuture, LogicalUnit};
use crate::config::{Changes, ConfigData};
use crate::locking::{Level, LockRequest, Mode};

/// Collects verify findings and writes them to the job log as Ganeti does.
struct Report<'a> {
    ctx: &'a Ctx,
    error_codes: bool,
    ignore: &'a [String],
    bad: bool,
}

impl<'a> Report<'a> {
    fn new(ctx: &'a Ctx, error_codes: bool, ignore: &'a [String]) -> Self {
        Report {
            ctx,
            error_codes,
            ignore,
            bad: false,
        }
    }

    fn error(&mut self, code: &str, obj_type: &str, obj: &str, msg: &str) {
        let level = if self.ignore.iter().any(|i| i == code) {
            "WARNING"
        } else {
            self.bad = true;
            "ERROR"
        };
        let line = if self.error_codes {
            format!("  - {level}:{code}:{obj_type}:{obj}:{msg}")
        } else {
            format!("  - {level}: {obj_type} {obj}: {msg}")
        };
        self.ctx.op.log("message-list", json!([line]));
    }
}

/// `OP_CLUSTER_VERIFY`: submits one config job and one job per group.
pub struct Verify {
    op: opcodes::ClusterVerify,
    groups: Vec<String>,
}

impl Verify {
    pub fn new(op: opcodes::ClusterVerify) -> Self {
        Verify {
            op,
            groups: Vec::new(),
        }
    }
}

impl LogicalUnit for Verify {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.groups = match &self.op.group_name {
            Some(g) => vec![expand_group(cfg, g)?.name.clone()],
            None => {
                let mut v: Vec<String> = cfg.groups.values().map(|g| g.name.clone()).collect();
                v.sort();
                v
            }
        };
        Ok(LockRequest::new())
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let o = &self.op;
            let priority = ctx.common.priority;
            let mut jobs = Vec::new();
            if o.group_name.is_none() {
                let op = opcodes::ClusterVerifyConfig {
                    ignore_errors: o.ignore_errors.clone(),
                    error_codes: o.error_codes,
                    debug_simulate_errors: o.debug_simulate_errors,
                    verbose: o.verbose,
                };
                jobs.push(vec![
                    Input::new(OpCode::ClusterVerifyConfig(op)).with_priority(priority)
                ]);
            }
            for g in &self.groups {
                let op = opcodes::ClusterVerifyGroup {
                    group_name: g.clone(),
                    ignore_errors: o.ignore_errors.clone(),
                    skip_checks: o.skip_checks.clone(),
                    error_codes: o.error_codes,
                    debug_simulate_errors: o.debug_simulate_errors,
                    verbose: o.verbose,
                    verify_clutter: false,
                };
                let mut input = Input::new(OpCode::ClusterVerifyGroup(op)).with_priority(priority);
                // Group verification waits for the config check, as Ganeti's.
                if o.group_name.is_none() {
                    input.common.depends =
                        Some(vec![Dependency(JobRef(-(jobs.len() as i64)), Vec::new())]);
                }
                jobs.push(vec![input]);
            }
            ctx.submit_jobs(jobs).await
        })
    }
}

/// `OP_CLUSTER_VERIFY_CONFIG`: consistency of the configuration itself.
pub struct VerifyConfig {
    op: opcodes::ClusterVerifyConfig,
}

impl VerifyConfig {
    pub fn new(op: opcodes::ClusterVerifyConfig) -> Self {
        VerifyConfig { op }
    }
}

/// Problems in a configuration, as `(code, object type, object, message)`.
pub fn config_problems(cfg: &ConfigData) -> Vec<(&'static str, &'static str, String, String)> {
    let mut out = Vec::new();
    if cfg.master_node().is_none() {
        out.push((
            "ECLUSTERCFG",
            "cluster",
            cfg.cluster.cluster_name.clone(),
            format!(
                "master node {} is not in the configuration",
                cfg.cluster.master_node
            ),
        ));
    }
    for n in cfg.nodes.values() {
        if !cfg.groups.contains_key(&n.group) {
            out.push((
                "ECLUSTERCFG",
                "node",
                n.name.clone(),
                format!("node belongs to a non-existing group {}", n.group),
            ));
        }
    }
    let mut macs: HashMap<&str, &str> = HashMap::new();
    for i in cfg.instances.values() {
        if !cfg.nodes.contains_key(&i.primary_node) {
            out.push((
                "ECLUSTERCFG",
                "instance",
                i.name.clone(),
                format!(
                    "primary node {} is not in the configuration",
                    i.primary_node
                ),
            ));
        }
        for d in &i.disks {
            for n in &d.nodes {
                if !cfg.nodes.contains_key(n) {
                    out.push((
                        "ECLUSTERCFG",
                        "instance",
                        i.name.clone(),
                        format!("disk {} is on unknown node {n}", d.iv_name),
                    ));
                }
            }
        }
        if !cfg
            .cluster
            .enabled_hypervisors
            .iter()
            .any(|h| h == i.hypervisor.as_str())
        {
            out.push((
                "ECLUSTERCFG",
                "instance",
                i.name.clone(),
                format!("hypervisor {} is not enabled", i.hypervisor),
            ));
        }
        for nic in &i.nics {
            if let Some(other) = macs.insert(&nic.mac, &i.name) {
                out.push((
                    "ECLUSTERCFG",
                    "instance",
                    i.name.clone(),
                    format!("MAC address {} is also used by instance {other}", nic.mac),
                ));
            }
        }
    }
    out
}

impl LogicalUnit for VerifyConfig {
    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new().bgl(Mode::Shared))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            ctx.feedback("* Verifying cluster config");
            let problems = config_problems(&ctx.config().read());
            let mut report = Report::new(ctx, self.op.error_codes, &self.op.ignore_errors);
            for (code, ty, obj, msg) in problems {
                report.error(code, ty, &obj, &msg);
            }
            if self.op.debug_simulate_errors {
                report.error("ECLUSTERCFG", "cluster", "", "simulated error");
            }
            Ok(json!(!report.bad))
        })
    }
}

/// `OP_CLUSTER_VERIFY_GROUP`: nodes answer, instances run where and as the
/// configuration says.
pub struct VerifyGroup {
    op: opcodes::ClusterVerifyGroup,
    group: String,
}

impl VerifyGroup {
    pub fn new(op: opcodes::ClusterVerifyGroup) -> Self {
        VerifyGroup {
            op,
            group: String::new(),
        }
    }
}

impl LogicalUnit for VerifyGroup {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.group = expand_group(cfg, &self.op.group_name)?.uuid.clone();
        Ok(LockRequest::new().bgl(Mode::Shared).some(
            Level::NodeGroup,
            vec![self.group.clone()],
            Mode::Shared,
        ))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let (nodes, hv_params, instances) = {
                let cfg = ctx.config().read();
                let nodes: Vec<objects::Node> = cfg
                    .nodes
                    .values()
                    .filter(|n| n.group == self.group)
                    .cloned()
                    .collect();
                let hvs: Vec<(String, objects::ParamDict)> = cfg
                    .cluster
                    .enabled_hypervisors
                    .iter()
                    .map(|h| {
                        (
                            h.clone(),
                            cfg.cluster.hvparams.get(h).cloned().unwrap_or_default(),
                        )
                    })
                    .collect();
                let node_uuids: Vec<&String> = nodes.iter().map(|n| &n.uuid).collect();
                let instances: Vec<(String, String, AdminState, String)> = cfg
                    .instances
                    .values()
                    .filter(|i| node_uuids.contains(&&i.primary_node))
                    .map(|i| {
                        (
                            i.name.clone(),
                            i.primary_node.clone(),
                            i.admin_state,
                            cfg.node_name(&i.primary_node).to_string(),
                        )
                    })
                    .collect();
                (nodes, hvs, instances)
            };
            let group_name = ctx
                .config()
                .read()
                .groups
                .get(&self.group)
                .map(|g| g.name.clone())
                .unwrap_or_default();
            ctx.feedback(format!("* Verifying group {group_name}"));
            let mut report = Report::new(ctx, self.op.error_codes, &self.op.ignore_errors);
            ctx.feedback("* Gathering data (node daemons and instance lists)");
            let online: Vec<objects::Node> = nodes.iter().filter(|n| !n.offline).cloned().collect();
            let verify = rpc::api::NodeVerify {
                hypervisors: hv_params.clone(),
                os: false,
                file_storage: true,
            };
            let listing = rpc::api::AllInstancesInfo {
                hypervisors: hv_params,
            };
            let (verify_res, list_res) = tokio::join!(
                ctx.rpc().call_many(&online, &verify),
                ctx.rpc().call_many(&online, &listing)
            );
            // Where each instance actually runs.
            let mut running: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut answered: Vec<String> = Vec::new();
            for ((node, v), l) in online.iter().zip(verify_res).zip(list_res) {
                match v {
                    Err(e) => {
                        report.error(
                            "ENODERPC",
                            "node",
                            &node.name,
                            &format!("while contacting node: {}", error_chain(&e)),
                        );
                        continue;
                    }
                    Ok(res) => {
                        for (hv, problem) in &res.hypervisors {
                            if let Some(p) = problem {
                                report.error(
                                    "ENODEHV",
                                    "node",
                                    &node.name,
                                    &format!("hypervisor {hv} verify failure: '{p}'"),
                                );
                            }
                        }
                        for problem in &res.file_storage {
                            report.error("ENODEFILESTORAGEPATHS", "node", &node.name, problem);
                        }
                    }
                }
                match l {
                    Err(e) => report.error(
                        "ENODEHV",
                        "node",
                        &node.name,
                        &format!("cannot list instances: {}", error_chain(&e)),
                    ),
                    Ok(map) => {
                        answered.push(node.uuid.clone());
                        for name in map.keys() {
                            running
                                .entry(name.clone())
                                .or_default()
                                .push(node.uuid.clone());
                        }
                    }
                }
            }
            for (name, pnode, admin, pnode_name) in &instances {
                if !answered.contains(pnode) {
                    continue;
                }
                let where_ = running.remove(name).unwrap_or_default();
                let on_primary = where_.contains(pnode);
                match admin {
                    AdminState::Up if !on_primary => report.error(
                        "EINSTANCEDOWN",
                        "instance",
                        name,
                        &format!("instance not running on its primary node {pnode_name}"),
                    ),
                    AdminState::Down | AdminState::Offline if on_primary => report.error(
                        "EINSTANCEUP",
                        "instance",
                        name,
                        &format!("instance should not run on node {pnode_name}"),
                    ),
                    _ => {}
                }
                let cfg = ctx.config().read();
                for other in where_.iter().filter(|n| *n != pnode) {
                    report.error(
                        "EINSTANCEWRONGNODE",
                        "instance",
                        name,
                        &format!("instance running on wrong node {}", cfg.node_name(other)),
                    );
                }
            }
            // Instances running on this group's nodes that the config does
            // not know.
            let cfg = ctx.config().read();
            for (name, where_) in running {
                if cfg.instance_by_name(&name).is_none() {
                    for n in where_ {
                        report.error(
                            "ENODEORPHANINSTANCE",
                            "node",
                            cfg.node_name(&n),
                            &format!("instance {name} is unknown"),
                        );
                    }
                }
            }
            if self.op.debug_simulate_errors {
                report.error("ECLUSTERCFG", "cluster", "", "simulated error");
            }
            Ok(json!(!report.bad))
        })
    }
}

/// `OP_CLUSTER_SET_PARAMS`.
pub struct SetParams {
    op: opcodes::ClusterSetParams,
    /// The vm-capable nodes that must have the (new) volume group.
    vg_check_nodes: Vec<objects::Node>,
}

impl SetParams {
    pub fn new(op: opcodes::ClusterSetParams) -> Self {
        SetParams {
            op,
            vg_check_nodes: Vec::new(),
        }
    }
}

/// Ganeti's smallest volume group, in MiB.
const MIN_VG_SIZE: u64 = 20480;

/// The volume group checks of `OP_CLUSTER_SET_PARAMS` against the config;
/// returns the nodes whose volume groups must then be looked at.
fn check_vg_name(
    cfg: &ConfigData,
    op: &opcodes::ClusterSetParams,
) -> Result<Vec<objects::Node>, Error> {
    let cluster = &cfg.cluster;
    let new_templates = op
        .enabled_disk_templates
        .as_deref()
        .unwrap_or(&cluster.enabled_disk_templates);
    let lvm_on = objects::enums::lvm_enabled(new_templates);
    let lvm_gets_enabled = lvm_on && !cluster.lvm_enabled();
    match op.vg_name.as_deref() {
        Some("") if lvm_on => {
            return Err(inval(
                "Cannot unset volume group if lvm-based disk templates are or get enabled.",
            ))
        }
        Some("")
            if cfg.instances.values().any(|i| {
                i.disks
                    .iter()
                    .any(|d| d.dev_type == objects::DiskTemplate::Plain)
            }) =>
        {
            return Err(inval(
                "Cannot disable lvm storage while lvm-based instances exist",
            ))
        }
        None if lvm_on && cluster.volume_group().is_none() => {
            return Err(inval(
                "Please specify a volume group when enabling lvm-based disk-templates.",
            ))
        }
        _ => {}
    }
    let check = (op.vg_name.as_deref().is_some_and(|v| !v.is_empty()) && lvm_on)
        || (cluster.volume_group().is_some() && lvm_gets_enabled);
    Ok(if check {
        cfg.nodes
            .values()
            .filter(|n| n.vm_capable)
            .cloned()
            .collect()
    } else {
        Vec::new()
    })
}

/// Every node of `nodes` that answers must have volume group `vg` of at
/// least [`MIN_VG_SIZE`] (a node that does not answer is a warning).
async fn check_vg_on_nodes(ctx: &Ctx, nodes: &[objects::Node], vg: &str) -> Result<(), Error> {
    let answers = ctx.rpc().call_many(nodes, &rpc::api::VgList {}).await;
    for (node, answer) in nodes.iter().zip(answers) {
        let vgs = match answer {
            Ok(v) => v,
            Err(e) => {
                ctx.feedback(format!(
                    "Warning: Error while gathering data on node {} (ignoring node): {}",
                    node.name,
                    error_chain(&e)
                ));
                continue;
            }
        };
        let problem = match vgs.get(vg) {
            None => format!("volume group '{vg}' missing"),
            Some(&size) if size < MIN_VG_SIZE => format!(
                "volume group '{vg}' too small ({MIN_VG_SIZE} MiB required, {size} MiB found)"
            ),
            Some(_) => continue,
        };
        return Err(Error::prereq(
            format!("Error on node '{}': {problem}", node.name),
            luxi::ErrorCode::Environ,
        ));
    }
    Ok(())
}

impl LogicalUnit for SetParams {
    fn check_arguments(&mut self) -> Result<(), Error> {
        if let Some(hvs) = &self.op.enabled_hypervisors {
            if hvs.is_empty() {
                return Err(inval(
                    "Enabled hypervisors list must contain at least one member",
                ));
            }
            for h in hvs {
                if !KNOWN_HYPERVISORS.contains(&h.as_str()) {
                    return Err(inval(format!(
                        "Hypervisor '{h}' is not known; valid hypervisors are {}",
                        KNOWN_HYPERVISORS.join(", ")
                    )));
                }
            }
        }
        if let Some(ts) = &self.op.enabled_disk_templates {
            if ts.is_empty() {
                return Err(inval(
                    "Enabled disk templates list must contain at least one member",
                ));
            }
            for t in ts {
                if !KNOWN_DISK_TEMPLATES.contains(&t.as_str()) {
                    return Err(inval(format!(
                        "Disk template '{t}' is not supported by ganeti-rs; supported: {}",
                        KNOWN_DISK_TEMPLATES.join(", ")
                    )));
                }
            }
        }
        if let Some(hvp) = &self.op.hvparams {
            for h in hvp.keys() {
                if !KNOWN_HYPERVISORS.contains(&h.as_str()) {
                    return Err(inval(format!("Hypervisor '{h}' is not known")));
                }
            }
        }
        if let Some(be) = &self.op.beparams {
            super::instance::check_beparams(be)?;
        }
        if let Some(vg) = self.op.vg_name.as_deref().filter(|v| !v.is_empty()) {
            objects::validate::check_lvm_name("volume group", vg)
                .map_err(|e| inval(e.to_string()))?;
        }
        if let Some(lvs) = &self.op.reserved_lvs {
            for re in lvs {
                regex::Regex::new(re).map_err(|e| {
                    inval(format!(
                        "Invalid reserved logical volume pattern '{re}': {e}"
                    ))
                })?;
            }
        }
        Ok(())
    }

    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new()
            .bgl(Mode::Exclusive)
            .all(Level::Instance, Mode::Shared)
            .all(Level::Node, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        self.vg_check_nodes = check_vg_name(cfg, &self.op)?;
        if let Some(ts) = &self.op.enabled_disk_templates {
            if let Some(i) = cfg
                .instances
                .values()
                .find(|i| !ts.iter().any(|t| t == i.disk_template.as_str()))
            {
                return Err(inval(format!(
                    "Cannot disable disk template '{}', because instance '{}' is using it",
                    i.disk_template, i.name
                )));
            }
        }
        if let Some(hvs) = &self.op.enabled_hypervisors {
            if let Some(i) = cfg
                .instances
                .values()
                .find(|i| !hvs.iter().any(|h| h == i.hypervisor.as_str()))
            {
                return Err(inval(format!(
                    "Cannot disable hypervisor '{}', because instance '{}' is using it",
                    i.hypervisor, i.name
                )));
            }
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let o = &self.op;
            if !self.vg_check_nodes.is_empty() {
                let vg = match o.vg_name.as_deref() {
                    Some(v) => v.to_string(),
                    None => ctx.config().cluster().volume_group_name,
                };
                check_vg_on_nodes(ctx, &self.vg_check_nodes, &vg).await?;
            }
            let mut c = ctx.config().cluster();
            if let Some(hvp) = &o.hvparams {
                for (hv, params) in hvp {
                    let cur = c.hvparams.entry(hv.clone()).or_default();
                    *cur = objects::params::update(cur, params);
                }
            }
            if let Some(be) = &o.beparams {
                let cur = c.beparams.entry("default".into()).or_default();
                *cur = objects::params::update(cur, be);
            }
            if let Some(nic) = &o.nicparams {
                let cur = c.nicparams.entry("default".into()).or_default();
                *cur = objects::params::update(cur, nic);
            }
            if let Some(nd) = &o.ndparams {
                c.ndparams = objects::params::update(&c.ndparams, nd);
            }
            if let Some(v) = o.candidate_pool_size {
                if v < 1 {
                    return Err(inval("Candidate pool size must be at least 1"));
                }
                c.candidate_pool_size = v;
            }
            if let Some(v) = &o.enabled_hypervisors {
                c.enabled_hypervisors = v.clone();
            }
            if let Some(v) = &o.enabled_disk_templates {
                c.enabled_disk_templates = v.clone();
            }
            if let Some(v) = &o.default_iallocator {
                c.default_iallocator = v.clone();
            }
            if let Some(v) = o.maintain_node_health {
                c.maintain_node_health = v;
            }
            if let Some(v) = &o.mac_prefix {
                c.mac_prefix = v.clone();
            }
            if let Some(v) = &o.file_storage_dir {
                c.file_storage_dir = v.clone();
            }
            if let Some(v) = &o.shared_file_storage_dir {
                c.shared_file_storage_dir = v.clone();
            }
            if let Some(v) = &o.vg_name {
                if *v == c.volume_group_name {
                    ctx.feedback(
                        "Cluster LVM configuration already in desired state, not changing",
                    );
                } else {
                    c.volume_group_name = v.clone();
                }
            }
            if let Some(v) = &o.reserved_lvs {
                c.reserved_lvs = v.clone();
            }
            if o.max_running_jobs.is_some() {
                ctx.feedback("max_running_jobs takes effect when the master daemon restarts");
            }
            let mut ch = Changes::new();
            ch.cluster(c);
            ctx.commit(ch)?;
            Ok(Value::Null)
        })
    }
}
