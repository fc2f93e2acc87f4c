//! Cluster-wide operations: set params (verify is in `cluster_verify`).

use crate::error::Error;
use luxi::opcodes;
use objects::enums::{KNOWN_DISK_TEMPLATES, KNOWN_HYPERVISORS};
use objects::error_chain;
use objects::params::ParamDict;
use serde_json::Value;

use super::{inval, Ctx, ExecFuture, LogicalUnit};
use crate::config::{Changes, ConfigData};
use crate::locking::{Level, LockRequest, Mode};

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
        if let Some(ip) = &self.op.ipolicy {
            check_ipolicy_change(ip)?;
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
        // Ganeti's CheckIpolicyVsDiskTemplates: the policy may allow only
        // enabled templates.
        if let Some(ip) = &self.op.ipolicy {
            check_ispecs(&updated_ipolicy(&cfg.cluster.ipolicy, ip))
                .map_err(|e| inval(format!("Invalid instance policy: {e}")))?;
        }
        if self.op.ipolicy.is_some() || self.op.enabled_disk_templates.is_some() {
            let enabled = self
                .op
                .enabled_disk_templates
                .as_ref()
                .unwrap_or(&cfg.cluster.enabled_disk_templates);
            let allowed: Vec<String> = self
                .op
                .ipolicy
                .as_ref()
                .and_then(|ip| ip.get("disk-templates"))
                .or_else(|| cfg.cluster.ipolicy.get("disk-templates"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let not_enabled: Vec<&String> =
                allowed.iter().filter(|t| !enabled.contains(t)).collect();
            if !not_enabled.is_empty() {
                return Err(inval(format!(
                    "The following disk templates are allowed by the ipolicy, but not \
                     enabled on the cluster: {}",
                    not_enabled
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
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
            if let Some(ip) = &o.ipolicy {
                c.ipolicy = updated_ipolicy(&c.ipolicy, ip);
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

/// The instance policy keys `gnt-cluster modify` can change, checked as
/// Ganeti checks them.
fn check_ipolicy_change(ip: &opcodes::Params) -> Result<(), Error> {
    for (k, v) in ip {
        match k.as_str() {
            "disk-templates" => {
                let Some(list) = v.as_array() else {
                    return Err(inval(format!(
                        "Invalid value for ipolicy parameter 'disk-templates': {v}"
                    )));
                };
                for t in list {
                    let name = t.as_str().unwrap_or_default();
                    if !KNOWN_DISK_TEMPLATES.contains(&name) {
                        return Err(inval(format!(
                            "Invalid disk template specified in ipolicy: {t}"
                        )));
                    }
                }
            }
            "vcpu-ratio" | "spindle-ratio" => {
                if !v.as_f64().is_some_and(|f| f > 0.0) {
                    return Err(inval(format!(
                        "Invalid value for ipolicy parameter '{k}': {v} (a positive number)"
                    )));
                }
            }
            "minmax" | "std" => {
                let specs: Vec<&Value> = match (k.as_str(), v) {
                    ("minmax", Value::Array(pairs)) => {
                        let mut specs = Vec::new();
                        for pair in pairs {
                            let Some(p) = pair.as_object() else {
                                return Err(inval(format!(
                                    "Invalid instance policy bounds {pair}: expected a dict"
                                )));
                            };
                            specs.extend(p.values());
                        }
                        specs
                    }
                    ("std", Value::Object(_)) => vec![v],
                    _ => {
                        return Err(inval(format!(
                            "Invalid value for ipolicy parameter '{k}': {v}"
                        )))
                    }
                };
                for spec in specs {
                    let Some(spec) = spec.as_object() else {
                        return Err(inval(format!("Invalid instance specification {spec}")));
                    };
                    for (name, n) in spec {
                        if !ISPECS_PARAMETERS.contains(&name.as_str()) {
                            return Err(inval(format!("Unknown parameter '{name}'")));
                        }
                        if !n.is_u64() {
                            return Err(inval(format!(
                                "Invalid value for instance specification '{name}': {n} \
                                 (a non-negative integer)"
                            )));
                        }
                    }
                }
            }
            other => {
                return Err(inval(format!(
                    "Changing the instance policy's '{other}' is not supported by ganeti-rs \
                     yet"
                )))
            }
        }
    }
    Ok(())
}

/// Ganeti's `ISPECS_PARAMETERS`.
const ISPECS_PARAMETERS: [&str; 6] = [
    "cpu-count",
    "disk-count",
    "disk-size",
    "memory-size",
    "nic-count",
    "spindle-use",
];

/// The cluster's policy after `change` (Ganeti's `GetUpdatedIPolicy`):
/// the bounds are replaced, the standard specs updated key by key, the
/// other keys replaced.
fn updated_ipolicy(old: &ParamDict, change: &opcodes::Params) -> ParamDict {
    let mut ip = old.clone();
    for (k, v) in change {
        match (k.as_str(), v, ip.get_mut(k)) {
            ("std", Value::Object(new), Some(Value::Object(cur))) => {
                for (name, n) in new {
                    cur.insert(name.clone(), n.clone());
                }
            }
            _ => {
                ip.insert(k.clone(), v.clone());
            }
        }
    }
    ip
}

/// Ganeti's `InstancePolicy.CheckISpecSyntax` (with the standard specs):
/// complete specs, each minimum at most its maximum, and the standard
/// specs within one pair of bounds.
fn check_ispecs(ip: &ParamDict) -> Result<(), String> {
    let Some(minmax) = ip.get("minmax") else {
        return Ok(());
    };
    let empty = serde_json::Map::new();
    let std = ip.get("std").and_then(Value::as_object).unwrap_or(&empty);
    let missing = |spec: &serde_json::Map<String, Value>, key: &str| {
        let gone: Vec<&str> = ISPECS_PARAMETERS
            .iter()
            .copied()
            .filter(|p| !spec.contains_key(*p))
            .collect();
        if gone.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "Missing instance specs parameters for {key}: {}",
                gone.join(", ")
            ))
        }
    };
    missing(std, "std")?;
    let pairs = minmax.as_array().cloned().unwrap_or_default();
    if pairs.is_empty() {
        return Err("Empty minmax specifications".into());
    }
    let mut std_is_good = false;
    for pair in &pairs {
        let (Some(min), Some(max)) = (
            pair.get("min").and_then(Value::as_object),
            pair.get("max").and_then(Value::as_object),
        ) else {
            return Err("Missing instance specification: min, max".into());
        };
        missing(min, "min")?;
        missing(max, "max")?;
        let mut good = true;
        for p in ISPECS_PARAMETERS {
            let (lo, hi) = (min[p].as_u64().unwrap_or(0), max[p].as_u64().unwrap_or(0));
            if lo > hi {
                return Err(format!(
                    "Invalid specification of min/max values for {p}: {lo}/{hi}"
                ));
            }
            let s = std.get(p).and_then(Value::as_u64).unwrap_or(lo);
            good &= lo <= s && s <= hi;
        }
        std_is_good |= good;
    }
    if !std_is_good {
        return Err("Invalid std specifications".into());
    }
    Ok(())
}

/// `OP_CLUSTER_REDIST_CONF` (`gnt-cluster redist-conf`): sends every
/// online node the ssconf values and the cluster files it keeps (Ganeti's
/// `RedistributeAncillaryFiles`): to every node the files all nodes need,
/// to the master candidates also the RAPI users. A node that cannot take
/// them is named in a warning, as in Ganeti; the job succeeds.
pub struct RedistConf;

impl RedistConf {
    pub fn new(_op: opcodes::ClusterRedistConf) -> Self {
        RedistConf
    }
}

/// The cluster files every node gets, and those only master candidates
/// get (paths below the root, as `upload_file` takes them).
pub(crate) const FILES_ALL: &[&str] = &[
    "var/lib/ganeti/known_hosts",
    "var/lib/ganeti/rapi.pem",
    "var/lib/ganeti/cluster-domain-secret",
    "var/lib/ganeti/hmac.key",
    "var/lib/ganeti/spice.pem",
    "var/lib/ganeti/spice-ca.pem",
    "var/lib/ganeti/vnc-cluster-password",
];
pub(crate) const FILES_CANDIDATES: &[&str] =
    &["var/lib/ganeti/rapi/users", "var/lib/ganeti/cluster-ca.key"];

impl LogicalUnit for RedistConf {
    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new().all(Level::Node, Mode::Shared))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let (nodes, master) = {
                let cfg = ctx.config().read();
                let mut nodes: Vec<objects::Node> =
                    cfg.nodes.values().filter(|n| !n.offline).cloned().collect();
                nodes.sort_by(|a, b| a.name.cmp(&b.name));
                (nodes, cfg.cluster.master_node.clone())
            };
            let values = ctx.ssconf_values();
            for node in &nodes {
                let req = rpc::api::WriteSsconfFiles {
                    values: values.clone(),
                };
                if let Err(e) = ctx.rpc().call(node, &req).await {
                    ctx.log_warning(format!(
                        "Copy of the ssconf files to node {} failed: {}",
                        node.name,
                        error_chain(&e)
                    ));
                }
                if node.uuid == master {
                    continue;
                }
                let files = FILES_ALL.iter().chain(
                    node.master_candidate
                        .then_some(FILES_CANDIDATES)
                        .into_iter()
                        .flatten(),
                );
                for rel in files {
                    let local = ctx.paths().root().join(rel);
                    let Ok(content) = std::fs::read_to_string(&local) else {
                        continue;
                    };
                    let req = rpc::api::UploadFile {
                        path: format!("/{rel}"),
                        content,
                        mode: 0o600,
                    };
                    if let Err(e) = ctx.rpc().call(node, &req).await {
                        ctx.log_warning(format!(
                            "Copy of file /{rel} to node {} failed: {}",
                            node.name,
                            error_chain(&e)
                        ));
                    }
                }
            }
            // The master candidates' copies of the configuration and queue.
            ctx.master().flush_replication().await;
            Ok(Value::Null)
        })
    }
}

/// `OP_CLUSTER_ACTIVATE_MASTER_IP` and `OP_CLUSTER_DEACTIVATE_MASTER_IP`:
/// the master node's `node_(de)activate_master_ip` with the cluster's
/// master IP, netmask and netdev.
pub struct MasterIp {
    activate: bool,
}

impl MasterIp {
    pub fn new(activate: bool) -> Self {
        MasterIp { activate }
    }
}

impl LogicalUnit for MasterIp {
    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new())
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let master = ctx.config().read().master_node().cloned();
            let master =
                master.ok_or_else(|| Error::exec("The configuration names no master node"))?;
            let params = ctx.master().master_network_params();
            let (result, what) = if self.activate {
                let req = rpc::api::NodeActivateMasterIp { params };
                (ctx.rpc().call(&master, &req).await, "activate")
            } else {
                let req = rpc::api::NodeDeactivateMasterIp { params };
                (ctx.rpc().call(&master, &req).await, "deactivate")
            };
            result.map_err(|e| {
                Error::exec(format!(
                    "Could not {what} the master IP: {}",
                    error_chain(&e)
                ))
            })?;
            Ok(Value::Null)
        })
    }
}

/// `OP_CLUSTER_DESTROY`: refused while nodes other than the master or
/// instances remain (Ganeti's checks); returns the master node's UUID.
/// `gnt-cluster destroy` then stops the daemons and removes the files.
pub struct Destroy;

impl Destroy {
    pub fn new(_op: opcodes::ClusterDestroy) -> Self {
        Destroy
    }
}

impl LogicalUnit for Destroy {
    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new().bgl(Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        let master = &cfg.cluster.master_node;
        let others = cfg.nodes.keys().filter(|u| *u != master).count();
        if others > 0 || !cfg.nodes.contains_key(master) {
            return Err(inval(format!(
                "There are still {others} node(s) in this cluster."
            )));
        }
        if !cfg.instances.is_empty() {
            return Err(inval(format!(
                "There are still {} instance(s) in this cluster.",
                cfg.instances.len()
            )));
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let node = ctx.config().read().master_node().cloned();
            if let Some(node) = &node {
                let req = rpc::api::NodeDeactivateMasterIp {
                    params: ctx.master().master_network_params(),
                };
                if let Err(e) = ctx.rpc().call(node, &req).await {
                    ctx.log_warning(format!(
                        "Error disabling the master IP address: {}",
                        error_chain(&e)
                    ));
                }
            }
            let master = ctx.config().read().cluster.master_node.clone();
            Ok(Value::from(master))
        })
    }
}
