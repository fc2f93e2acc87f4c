//! `OP_INSTANCE_SET_PARAMS`.

use crate::error::Error;
use luxi::opcodes;
use objects::params::{be, get_u64, ParamDict};
use objects::{AdminState, Disk, DiskTemplate, Instance, Nic};
use rpc::api;
use serde_json::{json, Value};

use super::convert::{self, Conversion};
use super::devices::{self, Action, DiskParams, Kind, Mod, NicParams};
use super::nic_network::{check_conflicting_ip, connect_nic, is_pool, NetNic, Pools};
use super::*;
use crate::config::{timestamp, Changes, ConfigData};
use crate::locking::{Level, LockRequest, Mode};
use crate::lu::common::{
    disk_spec, expand_instance, get_instance, get_node, instance_spec, nic_spec, rpc_error,
};
use crate::lu::instance_storage::{
    allocate_ports, check_vg_space, create_disks, drbd_port, new_disk, release_ports, remove_disk,
    shutdown_disks, wait_for_sync, NewDisk, CREATABLE,
};
use crate::lu::ipolicy;
use crate::lu::undo::Undo;
use crate::lu::{inval, wrong_state, Ctx, ExecFuture, LogicalUnit};

/// `OP_INSTANCE_SET_PARAMS`.
pub struct SetParams {
    op: opcodes::InstanceSetParams,
    uuid: String,
    disk_mods: Vec<(Mod, DiskParams)>,
    nic_mods: Vec<(Mod, NicParams)>,
    /// `-t TEMPLATE`: the disk template conversion asked for.
    conversion: Option<Conversion>,
    /// Whether disk and NIC changes are hotplugged into the running
    /// instance (`--hotplug`, or `--hotplug-if-possible` where it is).
    hotplug: bool,
}

impl SetParams {
    pub fn new(op: opcodes::InstanceSetParams) -> Self {
        SetParams {
            op,
            uuid: String::new(),
            disk_mods: Vec::new(),
            nic_mods: Vec::new(),
            conversion: None,
            hotplug: false,
        }
    }
}

impl LogicalUnit for SetParams {
    fn check_arguments(&mut self) -> Result<(), Error> {
        let o = &self.op;
        check_beparams(&o.beparams)?;
        if o.runtime_mem == Some(0) {
            return Err(inval("Runtime memory must be a positive number of MiB"));
        }
        if o.beparams.is_empty()
            && o.runtime_mem.is_none()
            && o.hvparams.is_empty()
            && o.os_name.is_none()
            && o.osparams.is_empty()
            && o.offline.is_none()
            && o.nics.is_empty()
            && o.disks.is_empty()
            && o.disk_template.is_none()
        {
            return Err(inval("No changes submitted"));
        }
        self.disk_mods = devices::parse(Kind::Disk, &o.disks)?
            .into_iter()
            .map(|m| devices::disk_params(m.action, &m.params).map(|p| (m, p)))
            .collect::<Result<_, _>>()?;
        self.nic_mods = devices::parse(Kind::Nic, &o.nics)?
            .into_iter()
            .map(|m| devices::nic_params(m.action, &m.params).map(|p| (m, p)))
            .collect::<Result<_, _>>()?;
        if let Some(t) = &o.disk_template {
            let target = convert::target(t, !o.disks.is_empty())?;
            self.conversion = Some(Conversion {
                target,
                snode: None,
                file_driver: o.file_driver.clone(),
                file_subdir: o.file_storage_dir.clone(),
                wait_for_sync: o.wait_for_sync,
            });
        } else if o.remote_node.is_some() || o.file_driver.is_some() || o.file_storage_dir.is_some()
        {
            return Err(inval(
                "The secondary node, file driver and file storage directory are only used by \
                 a disk template conversion (disk_template)",
            ));
        }
        Ok(())
    }

    fn locks(&mut self, cfg: &ConfigData) -> Result<LockRequest, Error> {
        self.uuid = expand_instance(cfg, &self.op.instance_name)?.uuid.clone();
        let mode = if self.disk_mods.is_empty() && self.conversion.is_none() {
            Mode::Shared
        } else {
            Mode::Exclusive
        };
        let mut nodes = cfg.instances[&self.uuid].all_nodes();
        if let Some(conv) = &mut self.conversion {
            let remote = self
                .op
                .remote_node_uuid
                .as_deref()
                .or(self.op.remote_node.as_deref());
            conv.snode = convert::secondary(cfg, conv.target, remote)?;
            nodes.extend(conv.snode.iter().cloned());
        }
        Ok(LockRequest::new()
            .bgl(Mode::Shared)
            .some(Level::Instance, vec![self.uuid.clone()], Mode::Exclusive)
            .some(Level::Node, nodes.clone(), mode)
            .some(Level::NodeRes, nodes, mode))
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
            beparams: be.clone(),
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
        if let Some(conv) = &self.conversion {
            convert::check(cfg, inst, conv)?;
        }
        let (sizes, mut template) = self.check_disk_mods(cfg, inst)?;
        if let Some(conv) = &self.conversion {
            template = conv.target;
        }
        let nics = self.check_nic_mods(cfg, inst)?;
        let resized =
            !(self.disk_mods.is_empty() && self.nic_mods.is_empty() && self.op.beparams.is_empty());
        if resized && !self.op.ignore_ipolicy {
            let group = cfg
                .nodes
                .get(&inst.primary_node)
                .and_then(|n| cfg.groups.get(&n.group));
            if let Some(group) = group {
                let spec = ipolicy::spec_of(&filled, sizes, nics, template.as_str());
                let found = ipolicy::violations(&ipolicy::group_policy(cfg, group), &spec);
                if !found.is_empty() {
                    return Err(inval(format!(
                        "Instance allocation to group {} ({}) violates policy: {}",
                        group.uuid,
                        group.name,
                        found.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            self.check_hotplug(ctx).await?;
            let mut result = Vec::new();
            if let Some(mem) = self.op.runtime_mem {
                // Before anything changes: a refused balloon changes nothing.
                let inst = get_instance(ctx, &self.uuid)?;
                self.balloon(ctx, &inst, mem).await?;
                result.push(json!(["runtime_memory", mem]));
            }
            // Each disk change is made on the nodes and committed on its
            // own, as Ganeti's; what a removal could not clean up on a node
            // is reported once the other changes are made.
            let mut leftovers = Vec::new();
            for (m, p) in self.disk_mods.clone() {
                match m.action {
                    Action::Add => self.add_disk(ctx, &m, &p, &mut result).await?,
                    Action::Remove => {
                        leftovers.extend(self.remove_disk(ctx, &m, &mut result).await?)
                    }
                    Action::Modify => self.modify_disk(ctx, &m, &p, &mut result)?,
                }
            }
            if let Some(conv) = &self.conversion {
                if conv.target != DiskTemplate::Drbd && self.op.remote_node.is_some() {
                    ctx.log_warning(
                        "Changing the disk template to a non-mirrored one, the secondary node \
                         will be ignored",
                    );
                }
                result.push(convert::convert(ctx, &self.uuid, conv).await?);
            }
            let mut inst = get_instance(ctx, &self.uuid)?;
            let mut pool_ops = Vec::new();
            if !self.nic_mods.is_empty() {
                let mut info = Vec::new();
                let mut applied = Vec::new();
                let (nics, ops) = {
                    let cfg = ctx.config().read();
                    apply_nic_mods(
                        &cfg,
                        &inst,
                        &self.nic_mods,
                        self.op.conflicts_check,
                        Some(&mut result),
                        Some(&mut info),
                        Some(&mut applied),
                    )?
                };
                for line in info {
                    ctx.log_info(line);
                }
                if self.hotplug {
                    for (action, idx, nic) in applied {
                        let (hv_action, key) = match action {
                            Action::Add => (api::HotplugAction::Add, format!("nic.{idx}")),
                            Action::Modify => (api::HotplugAction::Modify, format!("nic/{idx}")),
                            Action::Remove => (api::HotplugAction::Remove, format!("NIC/{idx}")),
                        };
                        let spec = nic_spec(&ctx.config().read(), &nic);
                        let msg = hotplug_device(
                            ctx,
                            &inst,
                            hv_action,
                            api::HotplugDevice::Nic(spec),
                            idx,
                        )
                        .await?;
                        result.push(json!([key, msg]));
                    }
                }
                inst.nics = nics;
                pool_ops = ops;
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
            for (net, ip, take) in &pool_ops {
                if *take {
                    ch.reserve_ip(net, ip);
                } else {
                    ch.release_ip(net, ip);
                }
            }
            ctx.commit(ch)?;
            if !leftovers.is_empty() {
                return Err(Error::exec(leftovers.join("; ")));
            }
            Ok(Value::Array(result))
        })
    }
}

/// The position of the disk `m` is about.
fn disk_index(inst: &Instance, m: &Mod) -> Result<usize, Error> {
    devices::existing_index(
        Kind::Disk,
        &m.ident,
        inst.disks
            .iter()
            .map(|d| (d.uuid.as_str(), d.name.as_deref())),
    )
}

/// The disks' positions renumbered (`disk/<index>`) after a change.
fn renumber(disks: &mut [Disk]) {
    for (i, d) in disks.iter_mut().enumerate() {
        d.iv_name = format!("disk/{i}");
    }
}

/// An address taken (`true`) or given back (`false`) in a network's pool
/// by NIC changes: `(network UUID, address, take)`.
pub(super) type PoolOp = (String, String, bool);

/// The NICs of `inst` after `mods` (Ganeti's `ApplyContainerMods` with its
/// NIC callbacks), and the addresses they take from and give back to
/// networks' pools; the change descriptions go to `result` and Ganeti's
/// info lines to `info` when given.
fn apply_nic_mods(
    cfg: &ConfigData,
    inst: &Instance,
    mods: &[(Mod, NicParams)],
    conflicts_check: bool,
    mut result: Option<&mut Vec<Value>>,
    mut info: Option<&mut Vec<String>>,
    mut applied: Option<&mut Vec<(Action, usize, Nic)>>,
) -> Result<(Vec<Nic>, Vec<PoolOp>), Error> {
    let mut nics = inst.nics.clone();
    let mut pools = Pools::default();
    let mut ops: Vec<PoolOp> = Vec::new();
    let mut describe = |v: Value| {
        if let Some(r) = result.as_deref_mut() {
            r.push(v);
        }
    };
    let mut say = |s: String| {
        if let Some(i) = info.as_deref_mut() {
            i.push(s);
        }
    };
    let pnode = inst.primary_node.as_str();
    let py = |v: &Option<String>| v.clone().unwrap_or_else(|| "None".to_string());
    let mac_for =
        |p: &NicParams, nics: &[Nic], net: Option<&str>| -> Result<Option<String>, Error> {
            match p.mac.as_deref() {
                None => Ok(None),
                Some("generate") => Ok(Some(random_mac_for(cfg, net))),
                Some(mac) => {
                    let owner = cfg.mac_owner(mac).filter(|o| o.uuid != inst.uuid);
                    if owner.is_some() || nics.iter().any(|n| n.mac == mac) {
                        return Err(Error::prereq(
                            format!("MAC address '{mac}' already in use in cluster"),
                            luxi::ErrorCode::NotUnique,
                        ));
                    }
                    Ok(Some(mac.to_string()))
                }
            }
        };
    for (m, p) in mods {
        let existing = |nics: &[Nic]| {
            devices::existing_index(
                Kind::Nic,
                &m.ident,
                nics.iter().map(|n| (n.uuid.as_str(), n.name.as_deref())),
            )
        };
        // The NIC's network after the change, and its connection.
        let settle = |old: Option<&str>| -> Result<Option<NetNic>, Error> {
            let name = match &p.network {
                Some(n) => n.as_deref(),
                None => old,
            };
            name.map(|n| {
                connect_nic(cfg, n, pnode).map_err(|e| match e {
                    Error::Prereq {
                        code: luxi::ErrorCode::Inval,
                        ..
                    } => inval(format!(
                        "No netparams found for the network {}, probably not connected",
                        cfg.expand_network(n).map_or(n, |x| x.name.as_str())
                    )),
                    other => other,
                })
            })
            .transpose()
        };
        // The address after the change: taken from the pool or checked.
        let mut address = |new_ip: Option<&str>,
                           net: Option<&NetNic>,
                           pools: &mut Pools,
                           ops: &mut Vec<PoolOp>|
         -> Result<Option<String>, Error> {
            let Some(ip) = new_ip else { return Ok(None) };
            let Some(net) = net else {
                if is_pool(ip) {
                    return Err(inval("ip=pool, but no network found"));
                }
                if conflicts_check {
                    check_conflicting_ip(cfg, ip, pnode)?;
                }
                return Ok(Some(ip.to_string()));
            };
            let obj = cfg
                .networks
                .get(&net.network)
                .ok_or_else(|| Error::programmer("network vanished"))?;
            let addr = if is_pool(ip) {
                let a = pools
                    .take_free(obj)
                    .ok_or_else(|| wrong_state("Unable to get a free IP from the address pool"))?;
                say(format!("Chose IP {a} from network {}", net.network_name));
                a
            } else {
                if !pools.take(obj, ip, conflicts_check) {
                    return Err(Error::prereq(
                        format!("IP {ip} not available in network {}", net.network_name),
                        luxi::ErrorCode::NotUnique,
                    ));
                }
                say(format!("Reserving IP {ip} in network {}", net.network_name));
                ip.to_string()
            };
            ops.push((net.network.clone(), addr.clone(), true));
            Ok(Some(addr))
        };
        match m.action {
            Action::Add => {
                let idx = devices::add_index(Kind::Nic, &m.ident, nics.len())?;
                let net = settle(None)?;
                let net_uuid = net.as_ref().map(|n| n.network.as_str());
                let mac =
                    mac_for(p, &nics, net_uuid)?.unwrap_or_else(|| random_mac_for(cfg, net_uuid));
                let ip = address(
                    p.ip.clone().flatten().as_deref(),
                    net.as_ref(),
                    &mut pools,
                    &mut ops,
                )?;
                let nic = Nic {
                    uuid: objects::ids::new_uuid(),
                    name: p.name.clone().flatten(),
                    mac: mac.clone(),
                    ip,
                    network: net.as_ref().map(|n| n.network.clone()),
                    nicparams: match &net {
                        Some(n) => n.netparams.clone(),
                        None => p.nicparams.clone().into_iter().collect(),
                    },
                };
                let filled = cfg.cluster.fill_nicparams(&nic);
                check_routed_ip(&filled, &nic)?;
                let text = |k: &str| {
                    filled
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                describe(json!([
                    format!("nic.{idx}"),
                    format!(
                        "add:mac={mac},ip={},mode={},link={},network={}",
                        py(&nic.ip),
                        text("mode"),
                        text("link"),
                        py(&p.network.clone().flatten())
                    )
                ]));
                if let Some(a) = applied.as_deref_mut() {
                    a.push((Action::Add, idx, nic.clone()));
                }
                nics.insert(idx, nic);
            }
            Action::Remove => {
                let idx = existing(&nics)?;
                describe(json!([format!("NIC/{idx}"), "remove"]));
                let old = nics.remove(idx);
                if let Some(a) = applied.as_deref_mut() {
                    a.push((Action::Remove, idx, old.clone()));
                }
                if let (Some(net), Some(ip)) = (old.network, old.ip) {
                    pools.release(cfg, &net, &ip);
                    ops.push((net, ip, false));
                }
            }
            Action::Modify => {
                let idx = existing(&nics)?;
                let others: Vec<Nic> = nics
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != idx)
                    .map(|(_, n)| n.clone())
                    .collect();
                let old = nics[idx].clone();
                let net = settle(old.network.as_deref())?;
                let net_uuid = net.as_ref().map(|n| n.network.clone());
                let net_changed = net_uuid != old.network;
                let mut mac = mac_for(p, &others, net_uuid.as_deref())?;
                if mac.is_none() && net_changed {
                    let prefix = |u: Option<&str>| {
                        u.and_then(|u| cfg.networks.get(u))
                            .and_then(|n| n.mac_prefix.clone())
                    };
                    if prefix(old.network.as_deref()) != prefix(net_uuid.as_deref()) {
                        mac = Some(random_mac_for(cfg, net_uuid.as_deref()));
                    }
                }
                let new_ip = match &p.ip {
                    Some(ip) => ip.clone(),
                    None => old.ip.clone(),
                };
                let ip = if (&new_ip, &net_uuid) != (&old.ip, &old.network) {
                    if let (Some(net), Some(ip)) = (&old.network, &old.ip) {
                        pools.release(cfg, net, ip);
                        ops.push((net.clone(), ip.clone(), false));
                    }
                    address(new_ip.as_deref(), net.as_ref(), &mut pools, &mut ops)?
                } else {
                    if old.network.is_some()
                        && (p.nicparams.contains_key("mode") || p.nicparams.contains_key("link"))
                    {
                        return Err(inval(
                            "Not allowed to change link or mode of a NIC that is connected to \
                             a network",
                        ));
                    }
                    new_ip
                };
                let nic = &mut nics[idx];
                if let Some(mac) = mac {
                    describe(json!([format!("nic.mac/{idx}"), mac]));
                    nic.mac = mac;
                }
                if p.ip.is_some() || ip != nic.ip {
                    describe(json!([format!("nic.ip/{idx}"), ip]));
                }
                nic.ip = ip;
                if let Some(name) = &p.name {
                    describe(json!([format!("nic.name/{idx}"), name]));
                    nic.name = name.clone();
                }
                if let Some(n) = &p.network {
                    describe(json!([format!("nic.network/{idx}"), n]));
                }
                nic.network = net_uuid;
                let own = match &net {
                    Some(n) => Some(n.netparams.clone()),
                    None if !p.nicparams.is_empty() => {
                        let own: ParamDict = p.nicparams.clone().into_iter().collect();
                        Some(objects::params::update(&nic.nicparams, &own))
                    }
                    None if net_changed => Some(ParamDict::new()),
                    None => None,
                };
                if let Some(own) = own {
                    let changed = own != nic.nicparams || !p.nicparams.is_empty();
                    nic.nicparams = own;
                    if changed {
                        for (k, v) in &cfg.cluster.fill_nicparams(nic) {
                            describe(json!([format!("nic.{k}/{idx}"), v]));
                        }
                    }
                }
                check_routed_ip(&cfg.cluster.fill_nicparams(nic), nic)?;
                if let Some(a) = applied.as_deref_mut() {
                    a.push((Action::Modify, idx, nic.clone()));
                }
            }
        }
    }
    devices::check_devices(
        Kind::Nic,
        nics.iter().map(|n| (n.uuid.as_str(), n.name.as_deref())),
    )?;
    Ok((nics, ops))
}

/// A routed NIC needs an address unless it is in a network (Ganeti's
/// check).
fn check_routed_ip(filled: &ParamDict, nic: &Nic) -> Result<(), Error> {
    if filled.get("mode").and_then(Value::as_str) == Some("routed")
        && nic.ip.is_none()
        && nic.network.is_none()
    {
        return Err(inval(
            "Cannot set the NIC IP address to None on a routed NIC if not attached to a network",
        ));
    }
    Ok(())
}

impl SetParams {
    /// Checks the disk changes against the instance, on a copy; returns
    /// the disk sizes and the disk template after them.
    fn check_disk_mods(
        &self,
        cfg: &ConfigData,
        inst: &Instance,
    ) -> Result<(Vec<u64>, DiskTemplate), Error> {
        let mut disks: Vec<(String, Option<String>, u64)> = inst
            .disks
            .iter()
            .map(|d| (d.uuid.clone(), d.name.clone(), d.size))
            .collect();
        let mut template = inst.disk_template;
        for (m, p) in &self.disk_mods {
            let ids = || disks.iter().map(|(u, n, _)| (u.as_str(), n.as_deref()));
            match m.action {
                Action::Add => {
                    let idx = devices::add_index(Kind::Disk, &m.ident, disks.len())?;
                    template = self.added_template(cfg, inst, template, p)?;
                    if !self.op.wait_for_sync && !inst.disks_active {
                        return Err(inval(
                            "Can't add a disk to an instance with deactivated disks and \
                             --no-wait-for-sync given",
                        ));
                    }
                    let name = p.name.clone().flatten();
                    disks.insert(
                        idx,
                        (format!("new disk {idx}"), name, p.size.unwrap_or_default()),
                    );
                }
                Action::Remove => {
                    let idx = devices::existing_index(Kind::Disk, &m.ident, ids())?;
                    if inst.admin_state == AdminState::Up
                        && !(self.op.hotplug || self.op.hotplug_if_possible)
                    {
                        return Err(wrong_state(format!(
                            "Instance '{}' is marked to be up, can't remove volume from a \
                             running instance without using hotplug",
                            inst.name
                        )));
                    }
                    disks.remove(idx);
                    if disks.is_empty() {
                        template = DiskTemplate::Diskless;
                    }
                }
                Action::Modify => {
                    let idx = devices::existing_index(Kind::Disk, &m.ident, ids())?;
                    if let Some(name) = &p.name {
                        disks[idx].1 = name.clone();
                    }
                }
            }
        }
        devices::check_devices(
            Kind::Disk,
            disks.iter().map(|(u, n, _)| (u.as_str(), n.as_deref())),
        )?;
        Ok((disks.iter().map(|d| d.2).collect(), template))
    }

    /// The template of a disk added to `inst` (whose disks are of
    /// `template` so far), checked.
    fn added_template(
        &self,
        cfg: &ConfigData,
        inst: &Instance,
        template: DiskTemplate,
        p: &DiskParams,
    ) -> Result<DiskTemplate, Error> {
        let t = match (template, p.template) {
            (DiskTemplate::Diskless, None) => {
                return Err(inval("Must specify disk type on diskless instance"))
            }
            (DiskTemplate::Diskless, Some(DiskTemplate::Drbd)) => {
                return Err(inval(
                    "A diskless instance cannot get a drbd disk: it has no secondary node; \
                     add a plain disk and convert it with 'gnt-instance modify -t drbd -n NODE'",
                ))
            }
            (DiskTemplate::Diskless, Some(t)) => t,
            (t, Some(other)) if other != t => {
                return Err(inval(format!(
                    "Instance has '{t}' disks; disks of another template ('{other}') are not \
                     supported by ganeti-rs"
                )))
            }
            (t, _) => t,
        };
        if !CREATABLE.contains(&t) {
            return Err(inval(format!(
                "Disks of template '{t}' cannot be added by ganeti-rs"
            )));
        }
        if !cfg.cluster.enabled_disk_templates.contains(&t.to_string()) {
            return Err(inval(format!(
                "Cannot create a disk of template '{t}', as it is not enabled in the cluster. \
                 Enabled disk templates are: {}.",
                cfg.cluster.enabled_disk_templates.join(",")
            )));
        }
        if t == DiskTemplate::Plain && cfg.cluster.volume_group().is_none() {
            return Err(inval(
                "The cluster has no volume group for plain disks; set one with \
                 'gnt-cluster modify --vg-name'",
            ));
        }
        if p.vg.is_some() || p.metavg.is_some() {
            let allowed = match t {
                DiskTemplate::Drbd => true,
                DiskTemplate::Plain => p.metavg.is_none(),
                _ => false,
            };
            if !allowed {
                return Err(inval(format!(
                    "Disk parameter '{}' is not supported by ganeti-rs for the '{t}' template",
                    if p.metavg.is_some() { "metavg" } else { "vg" }
                )));
            }
        }
        if t == DiskTemplate::Drbd && inst.secondary_nodes().is_empty() {
            return Err(Error::programmer(format!(
                "drbd instance {} has no secondary node",
                inst.name
            )));
        }
        Ok(t)
    }

    /// Checks the NIC changes against the instance, on a copy; returns
    /// the number of NICs after them.
    fn check_nic_mods(&self, cfg: &ConfigData, inst: &Instance) -> Result<usize, Error> {
        if self.nic_mods.is_empty() {
            return Ok(inst.nics.len());
        }
        apply_nic_mods(
            cfg,
            inst,
            &self.nic_mods,
            self.op.conflicts_check,
            None,
            None,
            None,
        )
        .map(|(n, _)| n.len())
    }

    /// `--disk add`: makes the disk on the instance's nodes (the
    /// secondary's copy first), then records it; removed again if a step
    /// before the record fails.
    async fn add_disk(
        &self,
        ctx: &Ctx,
        m: &Mod,
        p: &DiskParams,
        result: &mut Vec<Value>,
    ) -> Result<(), Error> {
        let mut inst = get_instance(ctx, &self.uuid)?;
        let (idx, template) = {
            let cfg = ctx.config().read();
            let idx = devices::add_index(Kind::Disk, &m.ident, inst.disks.len())?;
            (
                idx,
                self.added_template(&cfg, &inst, inst.disk_template, p)?,
            )
        };
        let pnode = get_node(ctx, &inst.primary_node)?;
        let snodes = if template == DiskTemplate::Drbd {
            inst.secondary_nodes()
                .iter()
                .map(|u| get_node(ctx, u))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        let mut undo = Undo::new(ctx);
        let mirrored = template == DiskTemplate::Drbd;
        let port = allocate_ports(ctx, &mut undo, usize::from(mirrored))?
            .first()
            .copied()
            .unwrap_or_default();
        let mut nodes = vec![pnode.uuid.clone()];
        nodes.extend(snodes.iter().map(|n| n.uuid.clone()));
        let file_dir = inst.disks.iter().find_map(|d| file_subdir(ctx, d));
        let disk = new_disk(
            &ctx.config().read(),
            NewDisk {
                template,
                instance: &inst.name,
                index: idx,
                size: p.size.unwrap_or_default(),
                mode: p.mode.unwrap_or_default(),
                name: p.name.clone().flatten(),
                spindles: None,
                vg: p.vg.as_deref(),
                metavg: p.metavg.as_deref().or(p.vg.as_deref()),
                nodes: &nodes,
                port,
                file_driver: None,
                file_subdir: file_dir.as_deref(),
                now: timestamp(),
            },
        );
        let spec = disk_spec(&ctx.config().read(), &disk, idx);
        let spec = match spec {
            Ok(s) => s,
            Err(e) => return Err(undo.unwind(e).await),
        };
        for node in snodes.iter().chain(std::iter::once(&pnode)) {
            if let Err(e) = check_vg_space(ctx, node, std::slice::from_ref(&disk)).await {
                return Err(undo.unwind(e).await);
            }
        }
        let specs = std::slice::from_ref(&spec);
        if let Err(e) = create_disks(ctx, &mut undo, &inst.name, &pnode, &snodes, specs).await {
            return Err(undo.unwind(e).await);
        }
        let (size, mode) = (disk.size, disk.mode);
        inst.disks.insert(idx, disk);
        renumber(&mut inst.disks);
        inst.disk_template = template;
        let mut ch = Changes::new();
        ch.instance(inst.clone());
        if let Err(e) = ctx.commit(ch) {
            return Err(undo.unwind(e).await);
        }
        undo.done();
        result.push(json!([
            format!("disk/{idx}"),
            format!("add:size={size},mode={}", mode.as_str())
        ]));
        if self.hotplug {
            let assembled = ctx
                .rpc()
                .call(
                    &pnode,
                    &api::BlockdevAssemble {
                        instance_name: inst.name.clone(),
                        disk: spec.clone(),
                        on_primary: true,
                    },
                )
                .await;
            match assembled {
                Err(e) => {
                    result.push(json!([format!("disk/{idx}"), "assemble:failed"]));
                    ctx.log_warning(format!(
                        "Can't assemble newly created disk {idx}: {}",
                        failure_message(&e)
                    ));
                }
                Ok(attached) => {
                    let device = api::HotplugDevice::Disk {
                        uuid: inst.disks[idx].uuid.clone(),
                        attached: Some(attached),
                    };
                    let msg =
                        hotplug_device(ctx, &inst, api::HotplugAction::Add, device, idx).await?;
                    result.push(json!([format!("disk/{idx}"), msg]));
                }
            }
        }
        if template == DiskTemplate::Drbd {
            if self.op.wait_for_sync {
                wait_for_sync(
                    ctx,
                    &inst.name,
                    &pnode,
                    &snodes,
                    std::slice::from_ref(&spec),
                )
                .await
                .map_err(|e| {
                    Error::exec(format!(
                        "Failed to sync disks of {}: {}",
                        inst.name,
                        objects::error_chain(&e)
                    ))
                })?;
            }
            // The new disk is active now; deactivated again if the
            // instance's disks are meant to be inactive.
            if !inst.disks_active {
                for node in snodes.iter().chain(std::iter::once(&pnode)) {
                    shutdown_disks(ctx, &inst.name, node, std::slice::from_ref(&spec)).await;
                }
            }
        }
        Ok(())
    }

    /// `--disk remove`: takes the disk out of the configuration, then off
    /// its nodes (primary first: it stops replicating). Returns what could
    /// not be removed from a node, to be removed by hand.
    async fn remove_disk(
        &self,
        ctx: &Ctx,
        m: &Mod,
        result: &mut Vec<Value>,
    ) -> Result<Vec<String>, Error> {
        let mut inst = get_instance(ctx, &self.uuid)?;
        let idx = disk_index(&inst, m)?;
        let pnode = get_node(ctx, &inst.primary_node)?;
        if !self.hotplug && is_running(ctx, &inst, &pnode).await? {
            return Err(wrong_state(format!(
                "Instance {} is running, can't remove volume from a running instance without \
                 using hotplug",
                inst.name
            )));
        }
        let spec = disk_spec(&ctx.config().read(), &inst.disks[idx], idx)?;
        let hotmsg = if self.hotplug {
            let device = api::HotplugDevice::Disk {
                uuid: inst.disks[idx].uuid.clone(),
                attached: None,
            };
            let msg = hotplug_device(ctx, &inst, api::HotplugAction::Remove, device, idx).await?;
            if msg == HOTPLUG_FAILED {
                // Ganeti removes it anyway, under a guest that still
                // writes to it; ganeti-rs keeps it.
                return Err(Error::exec(format!(
                    "Disk {idx} of instance {} is kept: it could not be unplugged from the \
                     running instance",
                    inst.name
                )));
            }
            shutdown_disks(ctx, &inst.name, &pnode, std::slice::from_ref(&spec)).await;
            Some(msg)
        } else {
            None
        };
        let disk = inst.disks.remove(idx);
        renumber(&mut inst.disks);
        if inst.disks.is_empty() {
            inst.disk_template = DiskTemplate::Diskless;
        }
        let mut ch = Changes::new();
        ch.instance(inst.clone());
        ctx.commit(ch)?;
        result.push(json!([format!("disk/{idx}"), "remove"]));
        if let Some(msg) = hotmsg {
            result.push(json!([format!("disk/{idx}"), msg]));
        }
        let mut nodes = vec![pnode];
        for u in &disk.nodes {
            if *u != inst.primary_node {
                nodes.push(get_node(ctx, u)?);
            }
        }
        let mut leftovers = Vec::new();
        for node in &nodes {
            if let Err(e) = remove_disk(ctx, inst.name.clone(), node.clone(), spec.clone()).await {
                let msg = format!(
                    "Disk {idx} of instance {} left the configuration, but could not be removed \
                     from node {}: {e}; remove it by hand on node {}",
                    inst.name, node.name, node.name
                );
                ctx.log_warning(&msg);
                leftovers.push(msg);
            }
        }
        if let Some(port) = drbd_port(&disk) {
            release_ports(ctx, vec![port])
                .await
                .map_err(|e| Error::exec(format!("Cannot give back port {port}: {e}")))?;
        }
        Ok(leftovers)
    }

    /// `--disk N:mode=...,name=...`: the configuration only.
    fn modify_disk(
        &self,
        ctx: &Ctx,
        m: &Mod,
        p: &DiskParams,
        result: &mut Vec<Value>,
    ) -> Result<(), Error> {
        let mut inst = get_instance(ctx, &self.uuid)?;
        let idx = disk_index(&inst, m)?;
        let disk = &mut inst.disks[idx];
        if let Some(mode) = p.mode {
            disk.mode = mode;
            result.push(json!([format!("disk.mode/{idx}"), mode.as_str()]));
        }
        if let Some(name) = &p.name {
            disk.name = name.clone();
            result.push(json!([format!("disk.name/{idx}"), name]));
        }
        disk.serial_no += 1;
        let mut ch = Changes::new();
        ch.instance(inst);
        ctx.commit(ch)?;
        Ok(())
    }
}

impl SetParams {
    /// Ganeti's `_CheckHotplug`: with `--hotplug` the primary must be
    /// able to hotplug into the instance; with `--hotplug-if-possible` the
    /// changes are hotplugged where it can.
    async fn check_hotplug(&mut self, ctx: &Ctx) -> Result<(), Error> {
        if !(self.op.hotplug || self.op.hotplug_if_possible) {
            return Ok(());
        }
        let inst = get_instance(ctx, &self.uuid)?;
        let (node, spec) = {
            let cfg = ctx.config().read();
            (
                get_node(ctx, &inst.primary_node)?,
                instance_spec(&cfg, &inst)?,
            )
        };
        let supported = ctx
            .rpc()
            .call(&node, &api::HotplugSupported { instance: spec })
            .await;
        match supported {
            Ok(()) => self.hotplug = true,
            Err(e) if self.op.hotplug => {
                return Err(wrong_state(format!(
                    "Hotplug is not possible: {}",
                    failure_message(&e)
                )))
            }
            Err(e) => {
                ctx.log_warning(failure_message(&e));
                ctx.log_info("Modification will take place without hotplugging.");
            }
        }
        Ok(())
    }
}

/// Ganeti's `_HotplugDevice`: asks the primary node to hotplug `device`
/// of `inst`; a failure is a warning. Returns the change's description
/// (`hotplug:done` or `hotplug:failed`).
async fn hotplug_device(
    ctx: &Ctx,
    inst: &Instance,
    action: api::HotplugAction,
    device: api::HotplugDevice,
    seq: usize,
) -> Result<&'static str, Error> {
    ctx.log_info("Trying to hotplug device...");
    let (node, spec) = {
        let cfg = ctx.config().read();
        (
            get_node(ctx, &inst.primary_node)?,
            instance_spec(&cfg, inst)?,
        )
    };
    let call = api::HotplugDeviceCall {
        instance: spec,
        action,
        device,
        seq,
    };
    match ctx.rpc().call(&node, &call).await {
        Ok(()) => {
            ctx.log_info("Hotplug done.");
            Ok("hotplug:done")
        }
        Err(e) => {
            ctx.log_warning(format!("Could not hotplug device: {}", failure_message(&e)));
            ctx.log_info("Continuing execution..");
            Ok(HOTPLUG_FAILED)
        }
    }
}

/// The change description of a hotplug that failed.
const HOTPLUG_FAILED: &str = "hotplug:failed";

/// What a node said when a call failed (its own message, without ours).
fn failure_message(e: &crate::rpc::RpcFailure) -> String {
    match e {
        crate::rpc::RpcFailure::Call(rpc::client::ClientError::Remote { error, .. }) => {
            error.message.clone()
        }
        other => objects::error_chain(other),
    }
}

/// The directory below the file storage directory that an instance's
/// file disk `d` lives in (`--file-storage-dir` at create), if any: new
/// file disks go beside it.
fn file_subdir(ctx: &Ctx, d: &Disk) -> Option<String> {
    if !matches!(d.dev_type, DiskTemplate::File | DiskTemplate::SharedFile) {
        return None;
    }
    let path = d.logical_id.get(1)?.as_str()?;
    let base = crate::lu::instance_storage::file_storage_dir(&ctx.config().read(), d.dev_type);
    let rest = path.strip_prefix(&base)?.trim_start_matches('/');
    // `<subdir>/<instance>/<file>`: what lies before the instance's dir.
    let mut parts: Vec<&str> = rest.split('/').collect();
    parts.truncate(parts.len().saturating_sub(2));
    (!parts.is_empty()).then(|| parts.join("/"))
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
