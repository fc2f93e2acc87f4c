//! `gnt-cluster verify`: the config check and one job per node group
//! (`OP_CLUSTER_VERIFY`, `OP_CLUSTER_VERIFY_CONFIG`,
//! `OP_CLUSTER_VERIFY_GROUP`), reporting with Ganeti's error codes.

use std::collections::{BTreeMap, HashMap};

use crate::error::Error;
use luxi::opcodes::{self, Dependency, Input, JobRef, OpCode};
use objects::{error_chain, AdminState};
use serde_json::{json, Value};

use super::common::expand_group;
use super::{Ctx, ExecFuture, LogicalUnit};
use crate::config::ConfigData;
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
            format!("  - {level}: {obj_type}{}: {msg}", item(obj))
        };
        self.ctx.op.log("message-list", json!([line]));
    }

    /// A finding that does not make the verification fail.
    fn warning(&mut self, code: &str, obj_type: &str, obj: &str, msg: &str) {
        let line = if self.error_codes {
            format!("  - WARNING:{code}:{obj_type}:{obj}:{msg}")
        } else {
            format!("  - WARNING: {obj_type}{}: {msg}", item(obj))
        };
        self.ctx.op.log("message-list", json!([line]));
    }
}

/// The object's name as Ganeti writes it after its type: `" name"`, or
/// nothing for the cluster.
fn item(obj: &str) -> String {
    if obj.is_empty() {
        String::new()
    } else {
        format!(" {obj}")
    }
}

/// Ganeti's smallest volume group, in MiB.
const MIN_VG_SIZE: u64 = 20480;

/// The LVM checks of a group: each vm-capable node has the cluster's
/// volume group (ENODELVM), each instance's volumes are where the config
/// says (EINSTANCEMISSINGDISK), and no volume of the group belongs to
/// nobody unless `reserved_lvs` names it (ENODEORPHANLV, a warning).
async fn verify_lvm(ctx: &Ctx, report: &mut Report<'_>, nodes: &[objects::Node]) {
    let (vg, reserved, expected) = {
        let cfg = ctx.config().read();
        let Some(vg) = cfg.cluster.volume_group().map(str::to_string) else {
            return;
        };
        // Anchored, as Ganeti matches them, against `vg/lv`.
        let reserved: Vec<regex::Regex> = cfg
            .cluster
            .reserved_lvs
            .iter()
            .filter_map(|r| regex::Regex::new(&format!("^(?:{r})$")).ok())
            .collect();
        // Node UUID to the volumes it should hold, with their instance.
        let mut expected: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for inst in cfg.instances.values() {
            for d in &inst.disks {
                for v in std::iter::once(d).chain(&d.children) {
                    if let Some((g, lv)) = super::instance_storage::plain_volume(v) {
                        for n in &v.nodes {
                            expected
                                .entry(n.clone())
                                .or_default()
                                .push((format!("{g}/{lv}"), inst.name.clone()));
                        }
                    }
                }
            }
        }
        (vg, reserved, expected)
    };
    let checked: Vec<objects::Node> = nodes
        .iter()
        .filter(|n| !n.offline && n.vm_capable)
        .cloned()
        .collect();
    let (vgs, vols) = tokio::join!(
        ctx.rpc().call_many(&checked, &rpc::api::VgList {}),
        ctx.rpc().call_many(&checked, &rpc::api::NodeVolumes {})
    );
    for ((node, vgs), vols) in checked.iter().zip(vgs).zip(vols) {
        match vgs {
            Err(_) => report.error("ENODELVM", "node", &node.name, "unable to check volume groups"),
            Ok(vgs) => match vgs.get(&vg) {
                None => report.error(
                    "ENODELVM",
                    "node",
                    &node.name,
                    &format!("volume group '{vg}' missing"),
                ),
                Some(&size) if size < MIN_VG_SIZE => report.error(
                    "ENODELVM",
                    "node",
                    &node.name,
                    &format!(
                        "volume group '{vg}' too small ({MIN_VG_SIZE} MiB required, {size} MiB found)"
                    ),
                ),
                Some(_) => {}
            },
        }
        let vols = match vols {
            Ok(v) => v,
            Err(e) => {
                report.error(
                    "ENODELVM",
                    "node",
                    &node.name,
                    &format!("LVM problem on node: {}", error_chain(&e)),
                );
                continue;
            }
        };
        let present: Vec<String> = vols
            .iter()
            .map(|v| format!("{}/{}", v.vg, v.name))
            .collect();
        let should = expected.get(&node.uuid).cloned().unwrap_or_default();
        for (volume, instance) in &should {
            if !present.contains(volume) {
                report.error(
                    "EINSTANCEMISSINGDISK",
                    "instance",
                    instance,
                    &format!("volume {volume} missing on node {}", node.name),
                );
            }
        }
        let mut seen: Vec<&String> = Vec::new();
        for volume in &present {
            if seen.contains(&volume) || !volume.starts_with(&format!("{vg}/")) {
                continue;
            }
            seen.push(volume);
            let known = should.iter().any(|(v, _)| v == volume);
            if !known && !reserved.iter().any(|r| r.is_match(volume)) {
                report.warning(
                    "ENODEORPHANLV",
                    "node",
                    &node.name,
                    &format!("volume {volume} is unknown"),
                );
            }
        }
    }
}

/// The state of the mirrored (`drbd`) disks of the group's instances
/// whose disks are active, on each of their nodes that is online
/// (EINSTANCEFAULTYDISK, as Ganeti's): a status that cannot be had is an
/// error; a degraded copy is a warning while its local state is ok or
/// syncing, and an error otherwise.
async fn verify_mirrors(ctx: &Ctx, report: &mut Report<'_>, nodes: &[objects::Node]) {
    // (instance, node, the specs of its mirrored disks)
    let mut checks: Vec<(String, objects::Node, Vec<rpc::api::DiskSpec>)> = Vec::new();
    {
        let cfg = ctx.config().read();
        let in_group: Vec<&String> = nodes.iter().map(|n| &n.uuid).collect();
        let mut instances: Vec<&objects::Instance> = cfg
            .instances
            .values()
            .filter(|i| i.disks_active && in_group.contains(&&i.primary_node))
            .collect();
        instances.sort_by(|a, b| a.name.cmp(&b.name));
        for inst in instances {
            let specs: Vec<rpc::api::DiskSpec> = inst
                .disks
                .iter()
                .enumerate()
                .filter(|(_, d)| d.dev_type == objects::DiskTemplate::Drbd)
                .filter_map(|(i, d)| super::common::disk_spec(&cfg, d, i).ok())
                .collect();
            if specs.is_empty() {
                continue;
            }
            for n in inst.all_nodes() {
                if let Some(node) = cfg.nodes.get(&n).filter(|n| !n.offline) {
                    checks.push((inst.name.clone(), node.clone(), specs.clone()));
                }
            }
        }
    }
    for (instance, node, specs) in checks {
        let req = rpc::api::BlockdevGetMirrorStatus {
            instance_name: instance.clone(),
            disks: specs.clone(),
        };
        let status = match ctx.rpc().call(&node, &req).await {
            Ok(s) => s,
            Err(e) => {
                for d in &specs {
                    report.error(
                        "EINSTANCEFAULTYDISK",
                        "instance",
                        &instance,
                        &format!(
                            "couldn't retrieve status for disk/{} on {}: {}",
                            d.index,
                            node.name,
                            error_chain(&e)
                        ),
                    );
                }
                continue;
            }
        };
        for (d, st) in specs.iter().zip(&status) {
            let Some(st) = st else {
                report.error(
                    "EINSTANCEFAULTYDISK",
                    "instance",
                    &instance,
                    &format!(
                        "couldn't retrieve status for disk/{} on {}: not found",
                        d.index, node.name
                    ),
                );
                continue;
            };
            if !st.is_degraded {
                continue;
            }
            let local = match (st.sync_percent, st.ldisk_status) {
                (Some(_), _) => "syncing",
                (None, rpc::api::LocalDiskStatus::Okay) => "ok",
                (None, rpc::api::LocalDiskStatus::Unknown) => "unknown",
                (None, rpc::api::LocalDiskStatus::Faulty) => "faulty",
            };
            let msg = format!(
                "disk/{} on {} is degraded; local disk state is '{local}'",
                d.index, node.name
            );
            if matches!(local, "ok" | "syncing") {
                report.warning("EINSTANCEFAULTYDISK", "instance", &instance, &msg);
            } else {
                report.error("EINSTANCEFAULTYDISK", "instance", &instance, &msg);
            }
        }
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
            // The group verifications name their group by UUID, as
            // Ganeti's do (and their job summaries show it).
            Some(g) => vec![expand_group(cfg, g)?.uuid.clone()],
            None => {
                let mut v: Vec<(&str, String)> = cfg
                    .groups
                    .values()
                    .map(|g| (g.name.as_str(), g.uuid.clone()))
                    .collect();
                v.sort();
                v.into_iter().map(|(_, u)| u).collect()
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

/// The problem with a master candidate's copy of the configuration, if it
/// is older than `serial` (the master's before the last push).
pub fn candidate_lag(
    node: &objects::Node,
    master_uuid: &str,
    serial: u64,
    res: &rpc::api::NodeVerifyResult,
) -> Option<String> {
    if !node.master_candidate || node.uuid == master_uuid || res.config_serial >= serial {
        return None;
    }
    Some(if res.config_serial == 0 {
        format!(
            "Master candidate {} holds no copy of the configuration (the master's is at serial {serial})",
            node.name
        )
    } else {
        format!(
            "Master candidate {} holds configuration serial {}, the master's is {serial}: its copy lags",
            node.name, res.config_serial
        )
    })
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
            ctx.feedback(format!("* Verifying group '{group_name}'"));
            let mut report = Report::new(ctx, self.op.error_codes, &self.op.ignore_errors);
            ctx.feedback(format!("* Gathering data ({} nodes)", nodes.len()));
            let online: Vec<objects::Node> = nodes.iter().filter(|n| !n.offline).cloned().collect();
            // The candidates' copies of the configuration: pushed once
            // more, then any copy older than this is lagging.
            let (master_uuid, serial) = {
                let cfg = ctx.config().read();
                (cfg.cluster.master_node.clone(), cfg.cluster.serial_no)
            };
            ctx.master().flush_replication().await;
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
                        if let Some(msg) = candidate_lag(node, &master_uuid, serial, &res) {
                            report.error("ECLUSTERFILECHECK", "cluster", "", &msg);
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
            verify_lvm(ctx, &mut report, &nodes).await;
            verify_mirrors(ctx, &mut report, &nodes).await;
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

/// `OP_CLUSTER_VERIFY_DISKS`: submits one `OP_GROUP_VERIFY_DISKS` job per
/// node group (or for the group named).
pub struct VerifyDisks {
    op: opcodes::ClusterVerifyDisks,
    groups: Vec<String>,
}

impl VerifyDisks {
    pub fn new(op: opcodes::ClusterVerifyDisks) -> Self {
        VerifyDisks {
            op,
            groups: Vec::new(),
        }
    }
}

impl LogicalUnit for VerifyDisks {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.groups = match &self.op.group_name {
            // The group verifications name their group by UUID, as
            // Ganeti's do (and their job summaries show it).
            Some(g) => vec![expand_group(cfg, g)?.uuid.clone()],
            None => {
                let mut v: Vec<(&str, String)> = cfg
                    .groups
                    .values()
                    .map(|g| (g.name.as_str(), g.uuid.clone()))
                    .collect();
                v.sort();
                v.into_iter().map(|(_, u)| u).collect()
            }
        };
        Ok(LockRequest::new())
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let jobs = self
                .groups
                .iter()
                .map(|g| {
                    vec![
                        Input::new(OpCode::GroupVerifyDisks(opcodes::GroupVerifyDisks {
                            group_name: g.clone(),
                        }))
                        .with_priority(ctx.common.priority),
                    ]
                })
                .collect();
            ctx.submit_jobs(jobs).await
        })
    }
}

/// `OP_GROUP_VERIFY_DISKS`: which nodes could not be asked, which
/// instances with active disks need `activate-disks`, and which volumes
/// are missing: `[{node: error}, [instance], {instance: [[node, vg/lv]]}]`.
pub struct GroupVerifyDisks {
    op: opcodes::GroupVerifyDisks,
    group: String,
}

impl GroupVerifyDisks {
    pub fn new(op: opcodes::GroupVerifyDisks) -> Self {
        GroupVerifyDisks {
            op,
            group: String::new(),
        }
    }
}

impl LogicalUnit for GroupVerifyDisks {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let g = expand_group(cfg, &self.op.group_name)?;
        self.group = g.uuid.clone();
        let nodes: Vec<String> = cfg
            .nodes
            .values()
            .filter(|n| n.group == self.group)
            .map(|n| n.uuid.clone())
            .collect();
        Ok(LockRequest::new()
            .some(Level::NodeGroup, vec![self.group.clone()], Mode::Shared)
            .some(Level::Node, nodes, Mode::Shared))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            // The group's instances whose disks should be active, and
            // where each of their volumes and mirrored disks should be.
            let (nodes, volumes, mirrored) = {
                let cfg = ctx.config().read();
                let nodes: Vec<objects::Node> = cfg
                    .nodes
                    .values()
                    .filter(|n| n.group == self.group && n.vm_capable && !n.offline)
                    .cloned()
                    .collect();
                let mut volumes: BTreeMap<(String, String), String> = BTreeMap::new();
                let mut mirrored: BTreeMap<String, Vec<(String, rpc::api::DiskSpec)>> =
                    BTreeMap::new();
                for inst in cfg.instances.values() {
                    let in_group = cfg
                        .nodes
                        .get(&inst.primary_node)
                        .is_some_and(|n| n.group == self.group);
                    if !in_group || !inst.disks_active {
                        continue;
                    }
                    for (i, d) in inst.disks.iter().enumerate() {
                        for v in std::iter::once(d).chain(&d.children) {
                            if let Some((vg, lv)) = super::instance_storage::plain_volume(v) {
                                for n in &v.nodes {
                                    volumes.insert(
                                        (n.clone(), format!("{vg}/{lv}")),
                                        inst.name.clone(),
                                    );
                                }
                            }
                        }
                        if d.dev_type == objects::DiskTemplate::Drbd {
                            let spec = super::common::disk_spec(&cfg, d, i)?;
                            for n in &d.nodes {
                                mirrored
                                    .entry(n.clone())
                                    .or_default()
                                    .push((inst.name.clone(), spec.clone()));
                            }
                        }
                    }
                }
                (nodes, volumes, mirrored)
            };
            let mut node_errors = serde_json::Map::new();
            let mut offline: Vec<String> = Vec::new();
            let mut missing = volumes.clone();
            if !volumes.is_empty() {
                let answers = ctx.rpc().call_many(&nodes, &rpc::api::NodeVolumes {}).await;
                for (node, answer) in nodes.iter().zip(answers) {
                    match answer {
                        Ok(vols) => {
                            for v in vols {
                                missing
                                    .remove(&(node.uuid.clone(), format!("{}/{}", v.vg, v.name)));
                            }
                        }
                        Err(e) => {
                            node_errors.insert(node.name.clone(), json!(error_chain(&e)));
                            // Its volumes are unknown, not missing.
                            missing.retain(|(n, _), _| *n != node.uuid);
                        }
                    }
                }
            }
            for node in &nodes {
                let Some(disks) = mirrored.get(&node.uuid) else {
                    continue;
                };
                let mut by_instance: BTreeMap<&str, Vec<rpc::api::DiskSpec>> = BTreeMap::new();
                for (inst, spec) in disks {
                    by_instance
                        .entry(inst.as_str())
                        .or_default()
                        .push(spec.clone());
                }
                for (inst, specs) in by_instance {
                    let req = rpc::api::BlockdevGetMirrorStatus {
                        instance_name: inst.to_string(),
                        disks: specs,
                    };
                    match ctx.rpc().call(node, &req).await {
                        Ok(status) => {
                            let needs = status.iter().any(|s| {
                                s.as_ref().is_none_or(|s| {
                                    s.drbd.as_ref().is_some_and(|d| !d.daemon_running)
                                })
                            });
                            if needs && !offline.iter().any(|o| o == inst) {
                                offline.push(inst.to_string());
                            }
                        }
                        Err(e) => {
                            node_errors.insert(node.name.clone(), json!(error_chain(&e)));
                        }
                    }
                }
            }
            let cfg = ctx.config().read();
            let mut missing_out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for ((node, volume), inst) in missing {
                missing_out
                    .entry(inst)
                    .or_default()
                    .push(json!([cfg.node_name(&node), volume]));
            }
            offline.sort();
            Ok(json!([node_errors, offline, missing_out]))
        })
    }
}
