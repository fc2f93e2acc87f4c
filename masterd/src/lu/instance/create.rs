//! `OP_INSTANCE_CREATE`.

use luxi::error::ErrorCode;

use crate::error::Error;
use luxi::opcodes;
use objects::enums::KNOWN_DISK_TEMPLATES;
use objects::params::{be, get_u64, ParamDict};
use objects::validate::{check_host_name, normalize_mac};
use objects::{
    AdminState, AdminStateSource, Disk, DiskMode, DiskTemplate, Hypervisor, Instance, Nic,
};
use rpc::api;
use serde_json::json;

use super::nic_network::{
    address_for_new_nic, check_conflicting_ip, check_ip_value, connect_nic, is_pool, unless_none,
    NetNic, Pools,
};
use super::*;
use crate::config::{new_uuid, timestamp, Changes, ConfigData};
use crate::locking::{Level, LockRequest, Mode};
use crate::lu::common::{check_target_node, expand_node, get_node, instance_spec, rpc_error};
use crate::lu::instance_storage::{
    allocate_ports, check_vg_space, create_disks, new_disk, wait_for_sync, NewDisk,
};
use crate::lu::ipolicy;
use crate::lu::undo::Undo;
use crate::lu::{exists, inval, Ctx, ExecFuture, LogicalUnit};

/// A disk's access mode (`rw` when not given); `Err` with the given
/// name when it is neither `rw` nor `ro`.
fn disk_mode(m: Option<&str>) -> Result<DiskMode, &str> {
    match m {
        None | Some("rw") => Ok(DiskMode::Rw),
        Some("ro") => Ok(DiskMode::Ro),
        Some(other) => Err(other),
    }
}

/// A size in MiB as Ganeti's `FormatUnit(size, "h")` writes it: `64M`,
/// `1.0G`, `2.5T`.
fn format_size(mib: u64) -> String {
    if mib < 1024 {
        format!("{mib}M")
    } else if mib < 1024 * 1024 {
        format!("{:.1}G", mib as f64 / 1024.0)
    } else {
        format!("{:.1}T", mib as f64 / (1024.0 * 1024.0))
    }
}

/// The hypervisor an instance gets: the one asked for, else the
/// cluster's first; it must be enabled.
pub(super) fn chosen_hypervisor(
    cfg: &ConfigData,
    asked: Option<&str>,
) -> Result<Hypervisor, Error> {
    let name = asked
        .map(str::to_string)
        .or_else(|| cfg.cluster.enabled_hypervisors.first().cloned())
        .unwrap_or_else(|| Hypervisor::Fake.to_string());
    name.parse::<Hypervisor>()
        .ok()
        .filter(|_| cfg.cluster.enabled_hypervisors.contains(&name))
        .ok_or_else(|| {
            inval(format!(
                "Selected hypervisor ({name}) not enabled in the cluster ({})",
                cfg.cluster.enabled_hypervisors.join(",")
            ))
        })
}

/// What the iallocator needs to place the instance `o` would create
/// (of `template`, on `hypervisor`): Ganeti's `CreateInstanceAllocRequest`.
pub(super) fn alloc_request(
    cfg: &ConfigData,
    o: &opcodes::InstanceCreate,
    template: DiskTemplate,
    hypervisor: Hypervisor,
) -> crate::iallocator::AllocRequest {
    let be = objects::params::fill(
        &cfg.cluster
            .beparams
            .get("default")
            .cloned()
            .unwrap_or_default(),
        &normalize_beparams(&o.beparams),
    );
    crate::iallocator::AllocRequest {
        name: o.instance_name.clone(),
        disk_template: template,
        memory: get_u64(&be, be::MAXMEM)
            .or_else(|| get_u64(&be, be::MEMORY))
            .unwrap_or(128),
        vcpus: get_u64(&be, be::VCPUS).unwrap_or(1),
        spindle_use: get_u64(&be, be::SPINDLE_USE).unwrap_or(1),
        disks: o.disks.iter().map(|d| d.size.unwrap_or(0)).collect(),
        nics: o.nics.len(),
        os: o.os_type.clone().unwrap_or_default(),
        tags: o.tags.clone(),
        hypervisor,
    }
}

/// `OP_INSTANCE_CREATE`.
pub struct Create {
    op: opcodes::InstanceCreate,
    /// The primary node's UUID; `None` until the iallocator chooses it.
    pnode: Option<String>,
    /// The secondary node's UUID, for a mirrored (`drbd`) template.
    snode: Option<String>,
    hypervisor: Hypervisor,
    /// The opcode's `disk_template`, checked.
    template: DiskTemplate,
    /// In `import` mode: where the export is, and what it says.
    import: Option<super::import::Source>,
}

impl Create {
    pub fn new(op: opcodes::InstanceCreate) -> Self {
        Create {
            op,
            pnode: None,
            snode: None,
            hypervisor: Hypervisor::Fake,
            template: DiskTemplate::Diskless,
            import: None,
        }
    }
}

impl Create {
    /// Each NIC's network connection (`None` outside networks) and
    /// address for primary node `pnode`, with the lines Ganeti logs about
    /// them; no address is taken yet.
    #[allow(clippy::type_complexity)]
    fn plan_nics(
        &self,
        cfg: &ConfigData,
        pnode: &str,
    ) -> Result<(Vec<(Option<NetNic>, Option<String>)>, Vec<String>), Error> {
        let mut pools = Pools::default();
        let mut out = Vec::new();
        let mut info = Vec::new();
        for (i, n) in self.op.nics.iter().enumerate() {
            let ip = unless_none(n.ip.as_deref());
            let Some(name) = unless_none(n.network.as_deref()) else {
                if let Some(ip) = ip.filter(|_| self.op.conflicts_check) {
                    check_conflicting_ip(cfg, ip, pnode)?;
                }
                out.push((None, ip.map(str::to_string)));
                continue;
            };
            let net = connect_nic(cfg, name, pnode)?;
            let values: Vec<String> = ["mode", "link", "vlan"]
                .iter()
                .filter_map(|k| net.netparams.get(*k))
                .map(|v| format!("'{}'", v.as_str().unwrap_or_default()))
                .collect();
            info.push(format!(
                "NIC/{i} inherits netparams [{}]",
                values.join(", ")
            ));
            let addr = match ip {
                Some(ip) => {
                    let a =
                        address_for_new_nic(cfg, &mut pools, i, &net, ip, self.op.conflicts_check)?;
                    if is_pool(ip) {
                        info.push(format!("Chose IP {a} from network {}", net.network_name));
                    }
                    Some(a)
                }
                None => None,
            };
            out.push((Some(net), addr));
        }
        Ok((out, info))
    }

    /// Refuses (unless `ignore_ipolicy`) an instance whose specs break the
    /// policy of the primary node's group.
    fn check_ipolicy(&self, cfg: &ConfigData, pnode: &str) -> Result<(), Error> {
        if self.op.ignore_ipolicy {
            return Ok(());
        }
        let Some(group) = cfg.nodes.get(pnode).and_then(|n| cfg.groups.get(&n.group)) else {
            return Ok(());
        };
        let be = objects::params::fill(
            &cfg.cluster
                .beparams
                .get("default")
                .cloned()
                .unwrap_or_default(),
            &normalize_beparams(&self.op.beparams),
        );
        let spec = ipolicy::spec_of(
            &be,
            self.op.disks.iter().map(|d| d.size.unwrap_or(0)).collect(),
            self.op.nics.len(),
            &self.op.disk_template,
        );
        let found = ipolicy::violations(&ipolicy::group_policy(cfg, group), &spec);
        if found.is_empty() {
            return Ok(());
        }
        Err(inval(format!(
            "Instance allocation to group {} ({}) violates policy: {}",
            group.uuid,
            group.name,
            found.join(", ")
        )))
    }
}

impl LogicalUnit for Create {
    fn check_arguments(&mut self) -> Result<(), Error> {
        let o = &self.op;
        check_host_name("instance", &o.instance_name).map_err(|e| inval(e.to_string()))?;
        let importing = match o.mode.as_str() {
            "create" => false,
            "import" => true,
            _ => {
                return Err(inval(format!(
                    "Instance creation mode '{}' is not supported by ganeti-rs yet \
                     (supported: create, import)",
                    o.mode
                )))
            }
        };
        let template = o
            .disk_template
            .parse::<DiskTemplate>()
            .ok()
            .filter(|t| KNOWN_DISK_TEMPLATES.contains(&t.as_str()))
            .ok_or_else(|| {
                inval(format!(
                    "Disk template '{}' is not supported by ganeti-rs; supported: {}",
                    o.disk_template,
                    KNOWN_DISK_TEMPLATES.join(", ")
                ))
            })?;
        if !importing && (o.src_node.is_some() || o.src_path.is_some()) {
            return Err(inval(
                "Import parameters (src_node, src_path) are only valid in import mode",
            ));
        }
        if o.source_x509_ca.is_some() {
            return Err(inval(
                "source_x509_ca is only valid in remote-import mode, which ganeti-rs does \
                 not support yet",
            ));
        }
        if importing {
            super::import::check_source(o)?;
        }
        if o.identify_defaults {
            return Err(inval(
                "identify_defaults (resetting parameters equal to the cluster's defaults) is \
                 not supported by ganeti-rs yet",
            ));
        }
        if let Some(c) = o.compress.as_deref().filter(|c| *c != "none") {
            return Err(inval(format!(
                "Compression '{c}' of the import is not supported by ganeti-rs (only 'none')"
            )));
        }
        if template == DiskTemplate::Diskless && !o.disks.is_empty() {
            return Err(inval("Diskless instances cannot have disks"));
        }
        // An import takes its disks from the export when none are given.
        if template != DiskTemplate::Diskless && o.disks.is_empty() && !importing {
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
            disk_mode(d.mode.as_deref())
                .map_err(|m| inval(format!("Invalid disk access mode '{m}' for disk {i}")))?;
            for (k, v) in &d.other {
                match (k.as_str(), template) {
                    ("vg" | "metavg", DiskTemplate::Drbd) | ("vg", DiskTemplate::Plain) => {
                        let vg = v.as_str().unwrap_or_default();
                        objects::validate::check_lvm_name("volume group", vg)
                            .map_err(|e| inval(format!("Disk {i}: {e}")))?;
                    }
                    _ => {
                        return Err(inval(format!(
                            "Disk parameter '{k}' of disk {i} is not supported by ganeti-rs \
                             for the '{template}' template (got {v})"
                        )))
                    }
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
            if unless_none(n.network.as_deref()).is_some() && (n.mode.is_some() || n.link.is_some())
            {
                return Err(inval(
                    "If network is given, no mode or link is allowed to be passed",
                ));
            }
            check_ip_value(n.ip.as_deref(), n.network.as_deref())?;
        }
        check_beparams(&o.beparams)?;
        self.template = template;
        if !importing && o.no_install != Some(true) && o.os_type.is_none() {
            return Err(inval("No guest OS or OS variant specified"));
        }
        if o.pnode.is_some() && o.iallocator.is_some() {
            return Err(inval(
                "Give either a primary node or an iallocator, not both",
            ));
        }
        let snode_given = o.snode.is_some() || o.snode_uuid.is_some();
        if template == DiskTemplate::Drbd {
            if !snode_given && o.iallocator.is_none() && o.pnode.is_some() {
                return Err(inval("The networked disk templates need a mirror node"));
            }
        } else if snode_given {
            return Err(inval(format!(
                "The '{}' disk template does not use a secondary node",
                o.disk_template
            )));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        let pn = self.op.pnode_uuid.as_deref().or(self.op.pnode.as_deref());
        let Some(pn) = pn else {
            // The iallocator picks the node: any may be chosen.
            if self.op.iallocator.is_none() && cfg.cluster.default_allocator().is_none() {
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
        let pnode = expand_node(cfg, pn)?.uuid.clone();
        self.pnode = Some(pnode.clone());
        let mut nodes = vec![pnode.clone()];
        if let Some(sn) = self.op.snode_uuid.as_deref().or(self.op.snode.as_deref()) {
            let snode = expand_node(cfg, sn)?.uuid.clone();
            if snode == pnode {
                return Err(inval("The secondary node cannot be the primary node"));
            }
            self.snode = Some(snode.clone());
            nodes.push(snode);
        }
        if self.op.mode == "import" {
            match super::import::src_node_name(&self.op) {
                Some(src) => {
                    let src = expand_node(cfg, src)?.uuid.clone();
                    if !nodes.contains(&src) {
                        nodes.push(src);
                    }
                }
                // The export is looked for on every node.
                None => {
                    return Ok(LockRequest::new()
                        .bgl(Mode::Shared)
                        .some(
                            Level::Instance,
                            vec![self.op.instance_name.clone()],
                            Mode::Exclusive,
                        )
                        .all(Level::Node, Mode::Exclusive)
                        .all(Level::NodeRes, Mode::Exclusive))
                }
            }
        }
        Ok(LockRequest::new()
            .bgl(Mode::Shared)
            .some(
                Level::Instance,
                vec![self.op.instance_name.clone()],
                Mode::Exclusive,
            )
            .some(Level::Node, nodes.clone(), Mode::Exclusive)
            .some(Level::NodeRes, nodes, Mode::Exclusive))
    }

    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), Error> {
        if cfg.instance_by_name(&self.op.instance_name).is_some() {
            return Err(exists(format!(
                "Instance '{}' is already in the cluster",
                self.op.instance_name
            )));
        }
        for uuid in self.pnode.iter().chain(&self.snode) {
            if let Some(node) = cfg.nodes.get(uuid) {
                check_target_node(node)?;
            }
        }
        if self.template == DiskTemplate::Plain && cfg.cluster.volume_group().is_none() {
            return Err(inval(
                "The cluster has no volume group for plain disks; set one with \
                 'gnt-cluster modify --vg-name'",
            ));
        }
        self.hypervisor = chosen_hypervisor(cfg, self.op.hypervisor.as_deref())?;
        check_hvparams(self.hypervisor.as_str(), &self.op.hvparams)?;
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
        // An import's specs are known once its export is read (in exec,
        // which checks them again).
        let specs_known = self.op.mode != "import" || self.import.is_some();
        if let (Some(pnode), true) = (&self.pnode, specs_known) {
            self.check_ipolicy(cfg, pnode)?;
            self.plan_nics(cfg, pnode)?;
        }
        for n in &self.op.nics {
            if let Some(mac) = &n.mac {
                if let Some(other) = cfg.mac_owner(mac) {
                    return Err(Error::prereq(
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
            if self.op.mode == "import" {
                // What the export says fills what the opcode leaves unset;
                // the result is checked as a create's would be.
                let source = super::import::read_export(ctx, &self.op).await?;
                super::import::fill_opcode(&mut self.op, &source.info);
                self.import = Some(source);
                self.check_arguments()?;
                self.check_prereq(&ctx.config().read())?;
            }
            let o = &self.op;
            let now = timestamp();
            let pnode_uuid = match self.pnode.clone() {
                Some(uuid) => uuid,
                None => {
                    let plugin = match o.iallocator.clone() {
                        Some(p) => p,
                        None => ctx
                            .config()
                            .read()
                            .cluster
                            .default_allocator()
                            .map(str::to_string)
                            .ok_or_else(|| {
                                Error::programmer("no iallocator to place the instance")
                            })?,
                    };
                    let req =
                        alloc_request(&ctx.config().read(), o, self.template, self.hypervisor);
                    let nodes = ctx.allocate(&plugin, &req).await?;
                    let (node, second) = {
                        let cfg = ctx.config().read();
                        let n = expand_node(&cfg, &nodes[0])?.clone();
                        check_target_node(&n)?;
                        let second = match (self.template, nodes.get(1)) {
                            (DiskTemplate::Drbd, Some(s)) => {
                                let s = expand_node(&cfg, s)?.clone();
                                check_target_node(&s)?;
                                Some(s)
                            }
                            (DiskTemplate::Drbd, None) => {
                                return Err(Error::exec(format!(
                                    "Iallocator '{plugin}' returned one node; the drbd \
                                     template needs two"
                                )))
                            }
                            _ => None,
                        };
                        (n, second)
                    };
                    let names: Vec<&str> = std::iter::once(node.name.as_str())
                        .chain(second.as_ref().map(|s| s.name.as_str()))
                        .collect();
                    ctx.feedback(format!(
                        "Selected nodes for instance {} via iallocator {plugin}: {}",
                        o.instance_name,
                        names.join(", ")
                    ));
                    self.snode = second.map(|s| s.uuid);
                    self.check_ipolicy(&ctx.config().read(), &node.uuid)?;
                    node.uuid
                }
            };
            self.pnode = Some(pnode_uuid.clone());
            let pnode = get_node(ctx, &pnode_uuid)?;
            let snode = match &self.snode {
                Some(u) => Some(get_node(ctx, u)?),
                None => None,
            };
            // Each mirrored disk replicates on a port of its own, given
            // back if the create fails.
            let mut undo = Undo::new(ctx);
            let mirrored = self.template == DiskTemplate::Drbd;
            let ports = allocate_ports(ctx, &mut undo, if mirrored { o.disks.len() } else { 0 });
            let ports = match ports {
                Ok(p) => p,
                Err(e) => return Err(undo.unwind(e).await),
            };
            // The NICs' addresses are taken now, given back if the create
            // fails (Ganeti's reservations for the job).
            let plan = self.plan_nics(&ctx.config().read(), &pnode.uuid);
            let (planned, info) = match plan {
                Ok(p) => p,
                Err(e) => return Err(undo.unwind(e).await),
            };
            for line in info {
                ctx.log_info(line);
            }
            let taken: Vec<(String, String)> = planned
                .iter()
                .filter_map(|(net, ip)| Some((net.as_ref()?.network.clone(), ip.clone()?)))
                .collect();
            if !taken.is_empty() {
                let mut ch = Changes::new();
                for (net, ip) in &taken {
                    ch.reserve_ip(net, ip);
                }
                if let Err(e) = ctx.commit(ch) {
                    return Err(undo.unwind(e).await);
                }
                undo.push("give back the NICs' addresses".to_string(), async move {
                    let mut ch = Changes::new();
                    for (net, ip) in &taken {
                        ch.release_ip(net, ip);
                    }
                    ctx.commit(ch)
                        .map(|_| ())
                        .map_err(|e| objects::error_chain(&e))
                });
            }
            let uuid = new_uuid();
            let (disks, nics) = {
                let cfg = ctx.config().read();
                let mut nodes = vec![pnode.uuid.clone()];
                nodes.extend(snode.iter().map(|s| s.uuid.clone()));
                let disks: Vec<Disk> = o
                    .disks
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        let vg = d.other.get("vg").and_then(|v| v.as_str());
                        new_disk(
                            &cfg,
                            NewDisk {
                                template: self.template,
                                instance: &o.instance_name,
                                index: i,
                                size: d.size.unwrap_or(0),
                                mode: disk_mode(d.mode.as_deref()).unwrap_or_default(),
                                name: d.name.clone(),
                                spindles: d.spindles,
                                vg,
                                metavg: d.other.get("metavg").and_then(|v| v.as_str()).or(vg),
                                nodes: &nodes,
                                port: ports.get(i).copied().unwrap_or_default(),
                                file_driver: o.file_driver.as_deref(),
                                file_subdir: o.file_storage_dir.as_deref(),
                                now,
                            },
                        )
                    })
                    .collect();
                let nics: Vec<Nic> = o
                    .nics
                    .iter()
                    .zip(&planned)
                    .map(|(n, (net, ip))| {
                        let net_uuid = net.as_ref().map(|n| n.network.as_str());
                        let mac = match n.mac.as_deref() {
                            None | Some("auto") | Some("generate") => {
                                random_mac_for(&cfg, net_uuid)
                            }
                            Some(m) => m.to_ascii_lowercase(),
                        };
                        if let Some(net) = net {
                            return Nic {
                                uuid: new_uuid(),
                                name: n.name.clone(),
                                mac,
                                ip: ip.clone(),
                                network: Some(net.network.clone()),
                                nicparams: net.netparams.clone(),
                            };
                        }
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
                            ip: ip.clone(),
                            network: None,
                            nicparams: p,
                        }
                    })
                    .collect();
                (disks, nics)
            };
            let mut inst = Instance {
                uuid,
                name: o.instance_name.clone(),
                primary_node: pnode.uuid.clone(),
                os: o.os_type.clone().unwrap_or_default(),
                hypervisor: self.hypervisor,
                hvparams: o.hvparams.clone(),
                beparams: normalize_beparams(&o.beparams),
                osparams: o.osparams.clone(),
                admin_state: AdminState::Down,
                admin_state_source: AdminStateSource::Admin,
                disk_template: self.template,
                disks,
                nics,
                disks_active: false,
                network_port: None,
                tags: o.tags.clone(),
                serial_no: 1,
                ctime: now,
                mtime: now,
            };
            let spec = instance_spec(&ctx.config().read(), &inst);
            let spec = match spec {
                Ok(s) => s,
                Err(e) => return Err(undo.unwind(e).await),
            };
            for node in std::iter::once(&pnode).chain(&snode) {
                if let Err(e) = check_vg_space(ctx, node, &inst.disks).await {
                    return Err(undo.unwind(e).await);
                }
            }
            for d in &spec.disks {
                ctx.feedback(format!("* disk {}, size {}", d.index, format_size(d.size)));
            }
            // The secondary's copies first, then the primary's, as Ganeti
            // does; each disk made is removed again if a later step fails.
            ctx.feedback("* creating instance disks...");
            let made = create_disks(
                ctx,
                &mut undo,
                &inst.name,
                &pnode,
                snode.as_slice(),
                &spec.disks,
            )
            .await;
            if let Err(e) = made {
                return Err(undo.unwind(e).await);
            }
            // Into the configuration before the OS scripts run, as in
            // Ganeti; taken out again if they fail.
            ctx.feedback(format!("adding instance {} to cluster config", inst.name));
            ctx.feedback("adding disks to cluster config");
            let mut ch = Changes::new();
            ch.instance(inst.clone());
            if let Err(e) = ctx.commit(ch) {
                return Err(undo.unwind(e).await);
            }
            let added = inst.uuid.clone();
            undo.push(
                format!("remove instance {} from the configuration", inst.name),
                async move {
                    let mut ch = Changes::new();
                    ch.remove_instance(&added);
                    ctx.commit(ch)
                        .map(|_| ())
                        .map_err(|e| objects::error_chain(&e))
                },
            );
            if o.wait_for_sync && !spec.disks.is_empty() {
                if self.template == DiskTemplate::Drbd {
                    if let Err(e) =
                        wait_for_sync(ctx, &inst.name, &pnode, snode.as_slice(), &spec.disks).await
                    {
                        return Err(undo.unwind(e).await);
                    }
                } else {
                    // Ganeti checks twice (after wiping, after imaging);
                    // disks that do not mirror are always in sync.
                    for _ in 0..2 {
                        ctx.log_info(format!("Waiting for instance {} to sync disks", inst.name));
                        ctx.log_info(format!("Instance {}'s disks are in sync", inst.name));
                    }
                }
            }
            if let Some(source) = &self.import {
                if let Err(e) =
                    super::import::import_disks(ctx, &mut undo, source, &spec, &pnode).await
                {
                    return Err(undo.unwind(e).await);
                }
            } else if o.no_install != Some(true) && !spec.disks.is_empty() {
                // A diskless instance has nothing for the OS scripts to
                // install.
                ctx.feedback("* running the instance OS create scripts...");
                let r = ctx
                    .rpc()
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
                    let err = rpc_error(
                        &format!(
                            "Could not add os for instance {} on node {}",
                            inst.name, pnode.name
                        ),
                        e,
                    );
                    return Err(undo.unwind(err).await);
                }
            }
            // The instance and its disks are whole: a failed start leaves
            // it defined and stopped, as in Ganeti.
            undo.done();
            if o.start {
                // One update marks it up with its disks active, as Ganeti's.
                inst.admin_state = AdminState::Up;
                inst.disks_active = true;
                let mut ch = Changes::new();
                ch.instance(inst.clone());
                ctx.commit(ch)?;
                ctx.feedback("* starting instance...");
                start_on(ctx, &inst, &pnode, false).await?;
            }
            Ok(json!([pnode.name]))
        })
    }
}
