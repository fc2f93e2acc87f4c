//! Instances: create, remove, start, stop, reboot, rename, modify,
//! reinstall, query data, failover and migrate.

use luxi::error::{ErrorCode, GanetiError};
use luxi::opcodes;
use objects::enums::KNOWN_DISK_TEMPLATES;
use objects::params::{be, get_u64, ParamDict};
use objects::validate::{check_host_name, normalize_mac};
use objects::{AdminState, AdminStateSource, Disk, Instance, Nic};
use rpc::api;
use serde_json::{json, Value};

use super::common::{
    be_params, check_node_online, check_target_node, expand_instance, expand_node, get_instance,
    get_node, instance_spec, rpc_error,
};
use super::{exists, inval, wrong_state, Ctx, ExecFuture, LogicalUnit};
use crate::config::{new_uuid, timestamp, Changes, ConfigData};
use crate::locking::{Level, LockRequest, Mode};

/// Checks backend parameter names and types.
pub fn check_beparams(p: &ParamDict) -> Result<(), GanetiError> {
    for (k, v) in p {
        let ok = match k.as_str() {
            be::MAXMEM | be::MINMEM | be::MEMORY | be::VCPUS | be::SPINDLE_USE => {
                v.is_null()
                    || v.as_str() == Some("default")
                    || v.as_u64().is_some()
                    || v.as_str().and_then(|s| s.parse::<u64>().ok()).is_some()
            }
            be::AUTO_BALANCE | be::ALWAYS_FAILOVER => {
                v.is_null() || v.is_boolean() || v.as_str().is_some()
            }
            _ => return Err(inval(format!("Unknown backend parameter '{k}'"))),
        };
        if !ok {
            return Err(inval(format!(
                "Invalid value {v} for backend parameter '{k}'"
            )));
        }
    }
    Ok(())
}

/// Normalises backend parameters: numeric strings become numbers.
fn normalize_beparams(p: &ParamDict) -> ParamDict {
    p.iter()
        .map(|(k, v)| {
            let v = match v.as_str().and_then(|s| s.parse::<u64>().ok()) {
                Some(n) => json!(n),
                None => v.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

/// Checks hypervisor parameter names against the hypervisor's.
fn check_hvparams(hv: &str, p: &ParamDict) -> Result<(), GanetiError> {
    let known = objects::params::default_hvparams(hv);
    for k in p.keys() {
        if !known.contains_key(k) {
            return Err(inval(format!(
                "Unknown parameter '{k}' for hypervisor {hv}"
            )));
        }
    }
    Ok(())
}

/// Locks of one instance and its nodes.
fn instance_locks(cfg: &ConfigData, uuid: &str, node_mode: Mode) -> LockRequest {
    let nodes = cfg
        .instances
        .get(uuid)
        .map(|i| i.all_nodes())
        .unwrap_or_default();
    LockRequest::new()
        .bgl(Mode::Shared)
        .some(Level::Instance, vec![uuid.to_string()], Mode::Exclusive)
        .some(Level::Node, nodes.clone(), node_mode)
        .some(Level::NodeRes, nodes, node_mode)
}

/// Whether the instance runs on `node`, as the node reports it.
async fn is_running(ctx: &Ctx, inst: &Instance, node: &objects::Node) -> Result<bool, GanetiError> {
    let hvparams = ctx
        .master
        .config
        .read()
        .cluster
        .hvparams
        .get(&inst.hypervisor)
        .cloned()
        .unwrap_or_default();
    let info = ctx
        .master
        .rpc
        .call(
            node,
            &api::InstanceInfo {
                instance: inst.name.clone(),
                hypervisor: inst.hypervisor.clone(),
                hvparams,
            },
        )
        .await
        .map_err(|e| rpc_error(&format!("Error checking node {}", node.name), e))?;
    Ok(info.is_some())
}

/// Refuses to start when the node lacks the instance's memory.
async fn check_free_memory(
    ctx: &Ctx,
    node: &objects::Node,
    hv: &str,
    needed: u64,
    reason: &str,
) -> Result<(), GanetiError> {
    let hvparams = ctx
        .master
        .config
        .read()
        .cluster
        .hvparams
        .get(hv)
        .cloned()
        .unwrap_or_default();
    let info = ctx
        .master
        .rpc
        .call(
            node,
            &api::NodeInfo {
                hypervisors: vec![(hv.to_string(), hvparams)],
                storage: vec![],
            },
        )
        .await
        .map_err(|e| rpc_error(&format!("Can't get data from node {}", node.name), e))?;
    let free = info
        .hypervisors
        .first()
        .map(|h| h.info.memory_free)
        .unwrap_or(0);
    if free < needed {
        return Err(GanetiError::prereq(
            format!(
                "Not enough memory on node {} for {reason}: needed {needed} MiB, \
                 available {free} MiB",
                node.name
            ),
            ErrorCode::NoRes,
        ));
    }
    Ok(())
}

async fn start_on(
    ctx: &Ctx,
    inst: &Instance,
    node: &objects::Node,
    paused: bool,
) -> Result<(), GanetiError> {
    let spec = instance_spec(&ctx.master.config.read(), inst)?;
    let reason = format!("starting instance {}", inst.name);
    check_free_memory(
        ctx,
        node,
        &inst.hypervisor,
        spec.beparams.min_memory(),
        &reason,
    )
    .await?;
    ctx.master
        .rpc
        .call(
            node,
            &api::InstanceStart {
                instance: spec,
                startup_paused: paused,
            },
        )
        .await
        .map_err(|e| rpc_error("Could not start instance", e))?;
    Ok(())
}

async fn stop_on(
    ctx: &Ctx,
    inst: &Instance,
    node: &objects::Node,
    timeout: u64,
) -> Result<(), GanetiError> {
    let spec = instance_spec(&ctx.master.config.read(), inst)?;
    ctx.master
        .rpc
        .call(
            node,
            &api::InstanceShutdown {
                instance: spec,
                timeout_secs: timeout,
            },
        )
        .await
        .map_err(|e| rpc_error("Could not shutdown instance", e))?;
    Ok(())
}

fn set_admin_state(
    ctx: &Ctx,
    uuid: &str,
    state: AdminState,
    source: AdminStateSource,
) -> Result<(), GanetiError> {
    let mut inst = get_instance(ctx, uuid)?;
    if inst.admin_state == state && inst.admin_state_source == source {
        return Ok(());
    }
    inst.admin_state = state;
    inst.admin_state_source = source;
    let mut ch = Changes::new();
    ch.instance(inst);
    ctx.master.commit(ch)?;
    Ok(())
}

fn random_mac(cfg: &ConfigData) -> String {
    loop {
        let b: [u8; 3] = rand::random();
        let mac = format!(
            "{}:{:02x}:{:02x}:{:02x}",
            cfg.cluster.mac_prefix, b[0], b[1], b[2]
        );
        if !cfg.mac_in_use(&mac) {
            return mac;
        }
    }
}

// ------------------------------------------------------------------ create

/// `OP_INSTANCE_CREATE`.
pub struct Create {
    op: opcodes::InstanceCreate,
    pnode: String,
    hypervisor: String,
}

impl Create {
    pub fn new(op: opcodes::InstanceCreate) -> Self {
        Create {
            op,
            pnode: String::new(),
            hypervisor: String::new(),
        }
    }
}

impl LogicalUnit for Create {
    fn check_arguments(&mut self) -> Result<(), GanetiError> {
        let o = &self.op;
        check_host_name("instance", &o.instance_name).map_err(|e| inval(e.to_string()))?;
        if o.mode != "create" {
            return Err(inval(format!(
                "Instance creation mode '{}' is not supported by ganeti-rs yet",
                o.mode
            )));
        }
        if !KNOWN_DISK_TEMPLATES.contains(&o.disk_template.as_str()) {
            return Err(inval(format!(
                "Disk template '{}' is not supported by ganeti-rs; supported: {}",
                o.disk_template,
                KNOWN_DISK_TEMPLATES.join(", ")
            )));
        }
        if o.src_node.is_some() || o.src_path.is_some() || o.source_x509_ca.is_some() {
            return Err(inval("Import parameters (src_node, src_path, source_x509_ca) are only valid in import mode"));
        }
        if o.disk_template == "diskless" && !o.disks.is_empty() {
            return Err(inval("Diskless instances cannot have disks"));
        }
        if o.disk_template != "diskless" && o.disks.is_empty() {
            return Err(inval(format!(
                "Disk template '{}' needs at least one disk",
                o.disk_template
            )));
        }
        for (i, d) in o.disks.iter().enumerate() {
            match d.size {
                Some(s) if s > 0 => {}
                Some(_) => {
                    return Err(inval(format!(
                        "Invalid disk size for disk {i}: must be positive"
                    )))
                }
                None => return Err(inval(format!("Missing disk size for disk {i}"))),
            }
            if let Some(m) = &d.mode {
                if m != "rw" && m != "ro" {
                    return Err(inval(format!(
                        "Invalid disk access mode '{m}' for disk {i}"
                    )));
                }
            }
        }
        for (i, n) in o.nics.iter().enumerate() {
            if let Some(mac) = &n.mac {
                if mac != "auto" && mac != "generate" {
                    normalize_mac(mac).map_err(|e| inval(format!("NIC {i}: {e}")))?;
                }
            }
            if let Some(mode) = &n.mode {
                if !["bridged", "routed", "openvswitch"].contains(&mode.as_str()) {
                    return Err(inval(format!("NIC {i}: invalid mode '{mode}'")));
                }
            }
        }
        check_beparams(&o.beparams)?;
        if o.no_install != Some(true) && o.os_type.is_none() {
            return Err(inval("No guest OS or OS variant specified"));
        }
        if o.pnode.is_some() && o.iallocator.is_some() {
            return Err(inval(
                "Give either a primary node or an iallocator, not both",
            ));
        }
        if o.snode.is_some() {
            return Err(inval(format!(
                "The '{}' disk template does not use a secondary node",
                o.disk_template
            )));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        let pn = self.op.pnode_uuid.as_deref().or(self.op.pnode.as_deref());
        let Some(pn) = pn else {
            // The iallocator picks the node: any may be chosen.
            if self.op.iallocator.is_none() && cfg.cluster.default_iallocator.is_empty() {
                return Err(inval(
                    "No iallocator or primary node given and no cluster-wide default \
                     iallocator found; please specify either an iallocator or a primary node",
                ));
            }
            return Ok(LockRequest::new()
                .bgl(Mode::Shared)
                .some(
                    Level::Instance,
                    vec![self.op.instance_name.clone()],
                    Mode::Exclusive,
                )
                .all(Level::Node, Mode::Exclusive)
                .all(Level::NodeRes, Mode::Exclusive));
        };
        self.pnode = expand_node(cfg, pn)?.uuid.clone();
        Ok(LockRequest::new()
            .bgl(Mode::Shared)
            .some(
                Level::Instance,
                vec![self.op.instance_name.clone()],
                Mode::Exclusive,
            )
            .some(Level::Node, vec![self.pnode.clone()], Mode::Exclusive)
            .some(Level::NodeRes, vec![self.pnode.clone()], Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), GanetiError> {
        if cfg.instance_by_name(&self.op.instance_name).is_some() {
            return Err(exists(format!(
                "Instance '{}' is already in the cluster",
                self.op.instance_name
            )));
        }
        if let Some(node) = cfg.nodes.get(&self.pnode) {
            check_target_node(node)?;
        }
        self.hypervisor = self
            .op
            .hypervisor
            .clone()
            .or_else(|| cfg.cluster.enabled_hypervisors.first().cloned())
            .unwrap_or_else(|| "fake".into());
        if !cfg.cluster.enabled_hypervisors.contains(&self.hypervisor) {
            return Err(inval(format!(
                "Selected hypervisor ({}) not enabled in the cluster ({})",
                self.hypervisor,
                cfg.cluster.enabled_hypervisors.join(",")
            )));
        }
        check_hvparams(&self.hypervisor, &self.op.hvparams)?;
        if !cfg
            .cluster
            .enabled_disk_templates
            .contains(&self.op.disk_template)
        {
            return Err(inval(format!(
                "Cannot create an instance with disk template '{}', as it is not enabled in \
                 the cluster. Enabled disk templates are: {}.",
                self.op.disk_template,
                cfg.cluster.enabled_disk_templates.join(",")
            )));
        }
        for n in &self.op.nics {
            if let Some(mac) = &n.mac {
                if let Some(other) = cfg.mac_owner(mac) {
                    return Err(GanetiError::prereq(
                        format!(
                            "MAC address {mac} already in use in cluster (instance {})",
                            other.name
                        ),
                        ErrorCode::NotUnique,
                    ));
                }
            }
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let master = &ctx.master;
            let o = &self.op;
            let now = timestamp();
            if self.pnode.is_empty() {
                let plugin = o
                    .iallocator
                    .clone()
                    .unwrap_or_else(|| master.config.read().cluster.default_iallocator.clone());
                let be = objects::params::fill(
                    &master
                        .config
                        .read()
                        .cluster
                        .beparams
                        .get("default")
                        .cloned()
                        .unwrap_or_default(),
                    &normalize_beparams(&o.beparams),
                );
                let req = crate::iallocator::AllocRequest {
                    name: o.instance_name.clone(),
                    disk_template: o.disk_template.clone(),
                    memory: get_u64(&be, be::MAXMEM)
                        .or_else(|| get_u64(&be, be::MEMORY))
                        .unwrap_or(128),
                    vcpus: get_u64(&be, be::VCPUS).unwrap_or(1),
                    spindle_use: get_u64(&be, be::SPINDLE_USE).unwrap_or(1),
                    disks: o.disks.iter().map(|d| d.size.unwrap_or(0)).collect(),
                    nics: o.nics.len(),
                    os: o.os_type.clone().unwrap_or_default(),
                    tags: o.tags.clone(),
                    hypervisor: self.hypervisor.clone(),
                };
                let nodes = crate::iallocator::allocate(master, &plugin, &req).await?;
                let node = {
                    let cfg = master.config.read();
                    let n = expand_node(&cfg, &nodes[0])?.clone();
                    check_target_node(&n)?;
                    n
                };
                ctx.feedback(format!(
                    "Selected nodes for instance {} via iallocator {plugin}: {}",
                    o.instance_name, node.name
                ));
                self.pnode = node.uuid.clone();
            }
            let pnode = get_node(ctx, &self.pnode)?;
            let uuid = new_uuid();
            let (disks, nics) = {
                let cfg = master.config.read();
                let dir = match o.disk_template.as_str() {
                    "sharedfile" if !cfg.cluster.shared_file_storage_dir.is_empty() => {
                        cfg.cluster.shared_file_storage_dir.clone()
                    }
                    "sharedfile" => "/srv/ganeti/shared-file-storage".to_string(),
                    _ if !cfg.cluster.file_storage_dir.is_empty() => {
                        cfg.cluster.file_storage_dir.clone()
                    }
                    _ => "/srv/ganeti/file-storage".to_string(),
                };
                let dir = o.file_storage_dir.clone().map_or(dir.clone(), |sub| {
                    format!("{dir}/{}", sub.trim_start_matches('/'))
                });
                let disks: Vec<Disk> = o
                    .disks
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        let duuid = new_uuid();
                        Disk {
                            logical_id: json!([
                                o.file_driver.clone().unwrap_or_else(|| "loop".into()),
                                format!(
                                    "{dir}/{}/{duuid}.{}.disk{i}",
                                    o.instance_name, o.disk_template
                                )
                            ]),
                            uuid: duuid,
                            name: d.name.clone(),
                            dev_type: o.disk_template.clone(),
                            nodes: vec![self.pnode.clone()],
                            iv_name: format!("disk/{i}"),
                            size: d.size.unwrap_or(0),
                            mode: d.mode.clone().unwrap_or_else(|| "rw".into()),
                            params: Default::default(),
                            spindles: d.spindles,
                            serial_no: 1,
                            ctime: now,
                            mtime: now,
                        }
                    })
                    .collect();
                let nics: Vec<Nic> = o
                    .nics
                    .iter()
                    .map(|n| {
                        let mac = match n.mac.as_deref() {
                            None | Some("auto") | Some("generate") => random_mac(&cfg),
                            Some(m) => m.to_ascii_lowercase(),
                        };
                        let mut p = ParamDict::new();
                        if let Some(m) = &n.mode {
                            p.insert("mode".into(), json!(m));
                        }
                        if let Some(l) = &n.link {
                            p.insert("link".into(), json!(l));
                        }
                        if let Some(v) = &n.vlan {
                            p.insert("vlan".into(), json!(v));
                        }
                        Nic {
                            uuid: new_uuid(),
                            name: n.name.clone(),
                            mac,
                            ip: n.ip.clone().filter(|ip| ip != "none"),
                            network: n.network.clone(),
                            nicparams: p,
                        }
                    })
                    .collect();
                (disks, nics)
            };
            let mut inst = Instance {
                uuid,
                name: o.instance_name.clone(),
                primary_node: self.pnode.clone(),
                os: o.os_type.clone().unwrap_or_default(),
                hypervisor: self.hypervisor.clone(),
                hvparams: o.hvparams.clone(),
                beparams: normalize_beparams(&o.beparams),
                osparams: o.osparams.clone(),
                admin_state: AdminState::Down,
                admin_state_source: AdminStateSource::Admin,
                disk_template: o.disk_template.clone(),
                disks,
                nics,
                disks_active: false,
                network_port: None,
                tags: o.tags.clone(),
                serial_no: 1,
                ctime: now,
                mtime: now,
            };
            let spec = instance_spec(&master.config.read(), &inst)?;

            // Create the disks, undoing the ones made if one fails.
            let mut created: Vec<api::DiskSpec> = Vec::new();
            for d in &spec.disks {
                ctx.feedback(format!(
                    "* creating instance disk {} on {}",
                    d.index, pnode.name
                ));
                let r = master
                    .rpc
                    .call(
                        &pnode,
                        &api::BlockdevCreate {
                            instance_name: inst.name.clone(),
                            disk: d.clone(),
                            size: None,
                            on_primary: true,
                        },
                    )
                    .await;
                if let Err(e) = r {
                    remove_disks(ctx, &inst.name, &pnode, &created).await;
                    return Err(rpc_error(
                        &format!(
                            "Can't create block device {} on node {}",
                            d.index, pnode.name
                        ),
                        e,
                    ));
                }
                created.push(d.clone());
            }
            if o.no_install != Some(true) {
                ctx.feedback("* running the instance OS create scripts...");
                let r = master
                    .rpc
                    .call(
                        &pnode,
                        &api::InstanceOsAdd {
                            instance: spec.clone(),
                            reinstall: false,
                            debug: ctx.common.debug_level.max(0) as u32,
                        },
                    )
                    .await;
                if let Err(e) = r {
                    remove_disks(ctx, &inst.name, &pnode, &created).await;
                    return Err(rpc_error(
                        &format!(
                            "Could not add os for instance {} on node {}",
                            inst.name, pnode.name
                        ),
                        e,
                    ));
                }
            }
            if o.start {
                inst.admin_state = AdminState::Up;
            }
            let mut ch = Changes::new();
            ch.instance(inst.clone());
            if let Err(e) = master.commit(ch) {
                remove_disks(ctx, &inst.name, &pnode, &created).await;
                return Err(e);
            }
            if o.start {
                ctx.feedback("* starting instance...");
                start_on(ctx, &inst, &pnode, false).await?;
            }
            Ok(json!([pnode.name]))
        })
    }
}

async fn remove_disks(
    ctx: &Ctx,
    name: &str,
    node: &objects::Node,
    disks: &[api::DiskSpec],
) -> Vec<String> {
    let mut failed = Vec::new();
    for d in disks {
        if let Err(e) = ctx
            .master
            .rpc
            .call(
                node,
                &api::BlockdevRemove {
                    instance_name: name.to_string(),
                    disk: d.clone(),
                },
            )
            .await
        {
            let msg = format!(
                "Could not remove disk {} on node {}: {}",
                d.index,
                node.name,
                objects::error_chain(&e)
            );
            ctx.feedback(format!("Warning: {msg}"));
            failed.push(msg);
        }
    }
    failed
}

// ------------------------------------------------------------------ remove

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
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Exclusive))
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), GanetiError> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let inst = get_instance(ctx, &self.uuid)?;
            let pnode = get_node(ctx, &inst.primary_node)?;
            ctx.feedback(format!(
                "Shutting down instance {} on node {}",
                inst.name, pnode.name
            ));
            if let Err(e) = stop_on(ctx, &inst, &pnode, self.op.shutdown_timeout).await {
                if self.op.ignore_failures {
                    ctx.feedback(format!("Warning: {}", e.message()));
                } else {
                    return Err(GanetiError::exec(format!(
                        "Could not shutdown instance {} on node {}: {}",
                        inst.name,
                        pnode.name,
                        e.message()
                    )));
                }
            }
            ctx.feedback(format!("Removing block devices for instance {}", inst.name));
            let spec = instance_spec(&ctx.master.config.read(), &inst)?;
            let mut failed = Vec::new();
            for node_uuid in inst.all_nodes() {
                let node = get_node(ctx, &node_uuid)?;
                failed.extend(remove_disks(ctx, &inst.name, &node, &spec.disks).await);
            }
            if !failed.is_empty() && !self.op.ignore_failures {
                // Keep the instance in the config, marked down: its disks
                // are partly gone and a retry can finish the job.
                set_admin_state(ctx, &self.uuid, AdminState::Down, AdminStateSource::Admin)?;
                return Err(GanetiError::exec(format!(
                    "Can't remove instance's disks: {}",
                    failed.join("; ")
                )));
            }
            ctx.feedback(format!(
                "Removing instance {} out of cluster config",
                inst.name
            ));
            let mut ch = Changes::new();
            ch.remove_instance(&self.uuid);
            ctx.master.commit(ch)?;
            Ok(Value::Null)
        })
    }
}

// ------------------------------------------------------------------ startup

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
    fn check_arguments(&mut self) -> Result<(), GanetiError> {
        check_beparams(&self.op.beparams)
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), GanetiError> {
        let inst = &cfg.instances[&self.uuid];
        if inst.admin_state == AdminState::Offline {
            return Err(wrong_state(format!(
                "Instance '{}' is marked offline, cannot start it",
                inst.name
            )));
        }
        check_hvparams(&inst.hypervisor, &self.op.hvparams)?;
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
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), GanetiError> {
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
            Ok(Value::Null)
        })
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
    fn check_arguments(&mut self) -> Result<(), GanetiError> {
        if !["soft", "hard", "full"].contains(&self.op.reboot_type.as_str()) {
            return Err(inval(format!(
                "Invalid reboot type '{}': expected soft, hard or full",
                self.op.reboot_type
            )));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), GanetiError> {
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
                let spec = instance_spec(&ctx.master.config.read(), &inst)?;
                let t = if self.op.reboot_type == "soft" {
                    api::RebootType::Soft
                } else {
                    api::RebootType::Hard
                };
                ctx.master
                    .rpc
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

// ------------------------------------------------------------------ rename

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
    fn check_arguments(&mut self) -> Result<(), GanetiError> {
        check_host_name("instance", &self.op.new_name).map_err(|e| inval(e.to_string()))?;
        if self.op.ip_check && !self.op.name_check {
            return Err(inval("IP address check requires a name check"));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Exclusive).some(
            Level::Instance,
            vec![self.op.new_name.clone()],
            Mode::Exclusive,
        ))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), GanetiError> {
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
            ctx.master.commit(ch)?;
            if !inst.os.is_empty() {
                let spec = instance_spec(&ctx.master.config.read(), &inst)?;
                if let Err(e) = ctx
                    .master
                    .rpc
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

// ------------------------------------------------------------------ modify

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
    fn check_arguments(&mut self) -> Result<(), GanetiError> {
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

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Shared))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), GanetiError> {
        let inst = &cfg.instances[&self.uuid];
        check_hvparams(&inst.hypervisor, &self.op.hvparams)?;
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
            ctx.master.commit(ch)?;
            Ok(Value::Array(result))
        })
    }
}

impl SetParams {
    /// Changes the memory of the running instance to `mem` MiB: within
    /// minmem..maxmem (after this opcode's changes) unless forced, and
    /// only if the node has the memory a growth needs.
    async fn balloon(&self, ctx: &Ctx, inst: &Instance, mem: u64) -> Result<(), GanetiError> {
        let (node, spec, hvparams, min, max) = {
            let cfg = ctx.master.config.read();
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
            .master
            .rpc
            .call(
                &node,
                &api::InstanceInfo {
                    instance: inst.name.clone(),
                    hypervisor: inst.hypervisor.clone(),
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
            check_free_memory(ctx, &node, &inst.hypervisor, mem - info.memory, &reason).await?;
        }
        ctx.master
            .rpc
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
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        Ok(instance_locks(cfg, &self.uuid, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), GanetiError> {
        let inst = &cfg.instances[&self.uuid];
        if inst.admin_state == AdminState::Up {
            return Err(wrong_state(format!(
                "Instance '{}' is marked to be up, cannot reinstall",
                inst.name
            )));
        }
        if inst.disk_template == "diskless" {
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
            let spec = instance_spec(&ctx.master.config.read(), &inst)?;
            ctx.master
                .rpc
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
                ctx.master.commit(ch)?;
            }
            Ok(Value::Null)
        })
    }
}

// ------------------------------------------------------------------ query data

/// `OP_INSTANCE_QUERY_DATA`: everything `gnt-instance info` shows.
pub struct QueryData {
    op: opcodes::InstanceQueryData,
    uuids: Vec<String>,
}

impl QueryData {
    pub fn new(op: opcodes::InstanceQueryData) -> Self {
        QueryData {
            op,
            uuids: Vec::new(),
        }
    }
}

impl LogicalUnit for QueryData {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        self.uuids = if self.op.instances.is_empty() {
            cfg.instances.keys().cloned().collect()
        } else {
            self.op
                .instances
                .iter()
                .map(|n| expand_instance(cfg, n).map(|i| i.uuid.clone()))
                .collect::<Result<_, _>>()?
        };
        Ok(if self.op.use_locking {
            LockRequest::new().bgl(Mode::Shared).some(
                Level::Instance,
                self.uuids.clone(),
                Mode::Shared,
            )
        } else {
            LockRequest::new()
        })
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), GanetiError> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut out = serde_json::Map::new();
            for uuid in &self.uuids {
                let inst = get_instance(ctx, uuid)?;
                let pnode = get_node(ctx, &inst.primary_node)?;
                let run_state = if self.op.static_only {
                    Value::Null
                } else if pnode.offline {
                    ctx.feedback(format!(
                        "Warning: Primary node {} is marked offline, returning static \
                         information only for instance {}",
                        pnode.name, inst.name
                    ));
                    Value::Null
                } else {
                    let running = is_running(ctx, &inst, &pnode).await?;
                    json!(match (running, inst.admin_state, inst.admin_state_source) {
                        (true, _, _) => "up",
                        (false, AdminState::Down, AdminStateSource::User) => "user down",
                        (false, AdminState::Offline, _) => "offline",
                        (false, _, _) => "down",
                    })
                };
                let cfg = ctx.master.config.read();
                let group_name = |g: &str| {
                    cfg.groups
                        .get(g)
                        .map(|g| g.name.clone())
                        .unwrap_or_default()
                };
                let snodes = inst.secondary_nodes();
                let nics: Vec<Value> = inst
                    .nics
                    .iter()
                    .map(|n| {
                        let p = cfg.cluster.fill_nicparams(n);
                        json!([
                            n.name,
                            n.uuid,
                            n.ip,
                            n.mac,
                            p.get("mode"),
                            p.get("link"),
                            p.get("vlan"),
                            n.network,
                            Value::Null
                        ])
                    })
                    .collect();
                let disks: Vec<Value> = inst
                    .disks
                    .iter()
                    .map(|d| {
                        json!({
                            "iv_name": d.iv_name, "dev_type": d.dev_type,
                            "logical_id": d.logical_id, "drbd_info": null,
                            "pstatus": null, "sstatus": null, "children": [],
                            "mode": d.mode, "size": d.size, "spindles": d.spindles,
                            "name": d.name, "uuid": d.uuid,
                        })
                    })
                    .collect();
                let be_actual = cfg.cluster.fill_beparams(&inst);
                out.insert(
                    inst.name.clone(),
                    json!({
                        "name": inst.name,
                        "config_state": inst.admin_state.as_str(),
                        "run_state": run_state,
                        "pnode": pnode.name,
                        "pnode_group_uuid": pnode.group,
                        "pnode_group_name": group_name(&pnode.group),
                        "snodes": snodes.iter().map(|s| cfg.node_name(s)).collect::<Vec<_>>(),
                        "snodes_group_uuids": snodes.iter().map(|s| cfg.nodes.get(s).map(|n| n.group.clone())).collect::<Vec<_>>(),
                        "snodes_group_names": snodes.iter().map(|s| cfg.nodes.get(s).map(|n| group_name(&n.group))).collect::<Vec<_>>(),
                        "os": inst.os,
                        "nics": nics,
                        "disk_template": inst.disk_template,
                        "disks": disks,
                        "hypervisor": inst.hypervisor,
                        "network_port": inst.network_port,
                        "hv_instance": inst.hvparams,
                        "hv_actual": cfg.cluster.fill_hvparams(&inst),
                        "be_instance": inst.beparams,
                        "be_actual": be_actual,
                        "os_instance": inst.osparams,
                        "os_actual": objects::params::fill(
                            &cfg.cluster.osparams.get(&inst.os).cloned().unwrap_or_default(),
                            &inst.osparams),
                        "serial_no": inst.serial_no,
                        "mtime": inst.mtime,
                        "ctime": inst.ctime,
                        "uuid": inst.uuid,
                    }),
                );
            }
            Ok(Value::Object(out))
        })
    }
}

// ------------------------------------------------------------------ failover / migrate

/// Templates whose disks every node can reach: they fail over or migrate
/// to any node.
const EXTERNAL_MIRROR: &[&str] = &["diskless", "sharedfile"];

fn movable(inst: &Instance, what: &str) -> Result<(), GanetiError> {
    if !EXTERNAL_MIRROR.contains(&inst.disk_template.as_str()) {
        return Err(inval(format!(
            "Instance's disk layout '{}' does not allow {what}s",
            inst.disk_template
        )));
    }
    Ok(())
}

/// Where a failover or migration goes: a node UUID, or the iallocator
/// plugin that will choose it once all nodes are locked.
enum Target {
    Node(String),
    Allocator(String),
}

fn target_of(
    cfg: &ConfigData,
    inst: &Instance,
    target: Option<&str>,
    iallocator: Option<&str>,
) -> Result<Target, GanetiError> {
    match (target, iallocator) {
        (Some(_), Some(_)) => Err(inval(
            "Give either a target node or an iallocator, not both",
        )),
        (Some(t), None) => {
            let n = expand_node(cfg, t)?;
            if n.uuid == inst.primary_node {
                return Err(inval(format!(
                    "Instance {} is already on the node {}",
                    inst.name, n.name
                )));
            }
            Ok(Target::Node(n.uuid.clone()))
        }
        (None, Some(a)) => Ok(Target::Allocator(a.to_string())),
        (None, None) if !cfg.cluster.default_iallocator.is_empty() => {
            Ok(Target::Allocator(cfg.cluster.default_iallocator.clone()))
        }
        (None, None) => Err(inval(format!(
            "No target node or iallocator given for instance {} and no cluster-wide \
             default iallocator found; please specify either an iallocator or a \
             target node (the '{}' template needs one)",
            inst.name, inst.disk_template
        ))),
    }
}

/// Expands the instance and its target of a failover or migration;
/// returns the instance's UUID, the target node's UUID (empty when an
/// iallocator chooses it) and the locks: the instance, its nodes and the
/// target, or every node for an iallocator.
fn move_locks(
    cfg: &ConfigData,
    name: &str,
    target: Option<&str>,
    iallocator: Option<&str>,
) -> Result<(String, String, Option<String>, LockRequest), GanetiError> {
    let inst = expand_instance(cfg, name)?;
    let req = LockRequest::new().bgl(Mode::Shared).some(
        Level::Instance,
        vec![inst.uuid.clone()],
        Mode::Exclusive,
    );
    match target_of(cfg, inst, target, iallocator)? {
        Target::Node(to) => {
            let mut nodes = inst.all_nodes();
            nodes.push(to.clone());
            let req = req.some(Level::Node, nodes.clone(), Mode::Exclusive).some(
                Level::NodeRes,
                nodes,
                Mode::Exclusive,
            );
            Ok((inst.uuid.clone(), to, None, req))
        }
        Target::Allocator(a) => {
            let req = req
                .all(Level::Node, Mode::Exclusive)
                .all(Level::NodeRes, Mode::Exclusive);
            Ok((inst.uuid.clone(), String::new(), Some(a), req))
        }
    }
}

/// Runs `plugin` to choose the node instance `uuid` moves to (a relocate
/// request away from its primary) and checks the node can take it.
async fn choose_target(
    ctx: &Ctx,
    uuid: &str,
    plugin: &str,
    what: &str,
) -> Result<String, GanetiError> {
    let (name, from) = {
        let cfg = ctx.master.config.read();
        let inst = &cfg.instances[uuid];
        (
            inst.name.clone(),
            cfg.node_name(&inst.primary_node).to_string(),
        )
    };
    let nodes =
        crate::iallocator::relocate(&ctx.master, plugin, &name, std::slice::from_ref(&from))
            .await?;
    let cfg = ctx.master.config.read();
    let node = expand_node(&cfg, &nodes[0])?;
    if node.name == from {
        return Err(GanetiError::exec(format!(
            "Iallocator '{plugin}' chose the instance's own node {from}"
        )));
    }
    check_move(&cfg, uuid, &node.uuid, what)?;
    ctx.feedback(format!(
        "Selected nodes for instance {name} via iallocator {plugin}: {}",
        node.name
    ));
    Ok(node.uuid.clone())
}

/// The instance's disks allow `what` (failover or migration) and the target
/// node can take it.
fn check_move(cfg: &ConfigData, uuid: &str, target: &str, what: &str) -> Result<(), GanetiError> {
    movable(&cfg.instances[uuid], what)?;
    check_target_node(&cfg.nodes[target])
}

/// `OP_INSTANCE_FAILOVER`: stop on the primary, start on the target.
pub struct Failover {
    op: opcodes::InstanceFailover,
    uuid: String,
    target: String,
    allocator: Option<String>,
}

impl Failover {
    pub fn new(op: opcodes::InstanceFailover) -> Self {
        Failover {
            op,
            uuid: String::new(),
            target: String::new(),
            allocator: None,
        }
    }
}

impl LogicalUnit for Failover {
    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        let target = self
            .op
            .target_node_uuid
            .as_deref()
            .or(self.op.target_node.as_deref());
        let (uuid, to, allocator, req) = move_locks(
            cfg,
            &self.op.instance_name,
            target,
            self.op.iallocator.as_deref(),
        )?;
        self.uuid = uuid;
        self.target = to;
        self.allocator = allocator;
        Ok(req)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), GanetiError> {
        if self.allocator.is_some() {
            return movable(&cfg.instances[&self.uuid], "failover");
        }
        check_move(cfg, &self.uuid, &self.target, "failover")
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            if let Some(plugin) = &self.allocator {
                self.target = choose_target(ctx, &self.uuid, plugin, "failover").await?;
            }
            let mut inst = get_instance(ctx, &self.uuid)?;
            let source = get_node(ctx, &inst.primary_node)?;
            let target = get_node(ctx, &self.target)?;
            if inst.admin_state == AdminState::Up {
                let needed = be_params(&ctx.master.config.read(), &inst).min_memory();
                let reason = format!("failing over instance {}", inst.name);
                check_free_memory(ctx, &target, &inst.hypervisor, needed, &reason).await?;
            }
            ctx.feedback(format!(
                "* shutting down instance on source node {}",
                source.name
            ));
            if source.offline {
                if !self.op.ignore_consistency {
                    return Err(wrong_state(format!(
                        "Source node {} is offline; use --ignore-consistency to fail over anyway",
                        source.name
                    )));
                }
            } else if let Err(e) = stop_on(ctx, &inst, &source, self.op.shutdown_timeout).await {
                if !self.op.ignore_consistency {
                    return Err(GanetiError::exec(format!(
                        "Could not shutdown instance {} on node {}; proceed with \
                         --ignore-consistency to ignore it: {}",
                        inst.name,
                        source.name,
                        e.message()
                    )));
                }
                ctx.feedback(format!("Warning: {}", e.message()));
            }
            inst.set_primary(&target.uuid);
            let mut ch = Changes::new();
            ch.instance(inst.clone());
            ctx.master.commit(ch)?;
            if inst.admin_state == AdminState::Up {
                ctx.feedback(format!(
                    "* starting the instance on the target node {}",
                    target.name
                ));
                start_on(ctx, &inst, &target, false).await?;
            }
            Ok(Value::Null)
        })
    }
}

/// `OP_INSTANCE_MIGRATE`: live migration through the hypervisor.
pub struct Migrate {
    op: opcodes::InstanceMigrate,
    uuid: String,
    target: String,
    allocator: Option<String>,
}

impl Migrate {
    pub fn new(op: opcodes::InstanceMigrate) -> Self {
        Migrate {
            op,
            uuid: String::new(),
            target: String::new(),
            allocator: None,
        }
    }
}

impl LogicalUnit for Migrate {
    fn check_arguments(&mut self) -> Result<(), GanetiError> {
        if let Some(m) = &self.op.mode {
            if m != "live" && m != "non-live" {
                return Err(inval(format!("Invalid migration mode '{m}'")));
            }
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, GanetiError> {
        let target = self
            .op
            .target_node_uuid
            .as_deref()
            .or(self.op.target_node.as_deref());
        if self.op.cleanup {
            // The instance may run on any node: look at all of them.
            let inst = expand_instance(cfg, &self.op.instance_name)?;
            self.uuid = inst.uuid.clone();
            self.target = match target {
                Some(t) => expand_node(cfg, t)?.uuid.clone(),
                None => String::new(),
            };
            return Ok(LockRequest::new()
                .bgl(Mode::Shared)
                .some(Level::Instance, vec![inst.uuid.clone()], Mode::Exclusive)
                .all(Level::Node, Mode::Exclusive)
                .all(Level::NodeRes, Mode::Exclusive));
        }
        let (uuid, to, allocator, req) = move_locks(
            cfg,
            &self.op.instance_name,
            target,
            self.op.iallocator.as_deref(),
        )?;
        self.uuid = uuid;
        self.target = to;
        self.allocator = allocator;
        Ok(req)
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), GanetiError> {
        if self.op.cleanup {
            return movable(&cfg.instances[&self.uuid], "migration");
        }
        if self.allocator.is_some() {
            movable(&cfg.instances[&self.uuid], "migration")?;
        } else {
            check_move(cfg, &self.uuid, &self.target, "migration")?;
        }
        check_node_online(&cfg.nodes[&cfg.instances[&self.uuid].primary_node])
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            if self.op.cleanup {
                let target = (!self.target.is_empty()).then_some(self.target.as_str());
                return super::migrate::cleanup(ctx, &self.uuid, target).await;
            }
            if let Some(plugin) = &self.allocator {
                self.target = choose_target(ctx, &self.uuid, plugin, "migration").await?;
            }
            super::migrate::migrate(ctx, &self.uuid, &self.target, &self.op).await
        })
    }
}
