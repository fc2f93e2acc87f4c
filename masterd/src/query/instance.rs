//! The `instance` query resource.

use luxi::query::{Cell, DataNeeds, FieldDef, FieldFlags, FieldKind, FieldRegistry};
use std::cell::OnceCell;

use objects::params::{be, get_u64};
use objects::{AdminState, AdminStateSource, Instance, ParamDict};
use rpc::api::RunningInstance;
use serde_json::{json, Value};

use super::common_fields;
use super::live::{Live, NodeAnswer};
use crate::config::ConfigData;

/// What the nodes say about one instance.
pub enum LiveInst<'a> {
    /// Live data was not asked for.
    NotFetched,
    NodeOffline,
    NodeDown,
    /// Found running, on its primary node or elsewhere.
    Running {
        info: &'a RunningInstance,
        on_primary: bool,
    },
    NotRunning,
}

/// One instance with what queries need around it.
pub struct InstRow<'a> {
    pub cfg: &'a ConfigData,
    pub inst: &'a Instance,
    /// The primary node, looked up once for the row's fields.
    pub pnode: Option<&'a objects::Node>,
    pub live: LiveInst<'a>,
    /// Console descriptions (Ganeti's dicts) by instance UUID, when the
    /// `console` field was asked for.
    pub consoles: Option<&'a std::collections::HashMap<String, Value>>,
    /// The merged parameters, computed once per row for the several
    /// fields that read them.
    filled: Filled,
}

/// An instance's merged parameters, each computed on first use.
#[derive(Default)]
struct Filled {
    be: OnceCell<ParamDict>,
    hv: OnceCell<ParamDict>,
    nics: OnceCell<Vec<ParamDict>>,
}

/// Data kind of the `console` field: one RPC per running instance.
pub const CONSOLE: DataNeeds = DataNeeds::custom(8);

/// Ganeti's console dict (`InstanceConsole.ToDict`) for what a node said.
pub fn console_dict(c: &rpc::api::ConsoleInfo) -> Value {
    use rpc::api::ConsoleInfo as C;
    match c {
        C::Message { instance, message } => {
            json!({"instance": instance, "kind": "msg", "message": message})
        }
        C::Ssh {
            instance,
            host,
            user,
            command,
        } => json!({"instance": instance, "kind": "ssh", "host": host, "user": user,
                    "command": command}),
        C::Vnc {
            instance,
            host,
            port,
            display,
        } => json!({"instance": instance, "kind": "vnc", "host": host, "port": port,
                    "display": display}),
        C::Spice {
            instance,
            host,
            port,
        } => json!({"instance": instance, "kind": "spice", "host": host, "port": port}),
    }
}

impl<'a> InstRow<'a> {
    pub fn new(cfg: &'a ConfigData, inst: &'a Instance, live: Option<&'a Live>) -> Self {
        let live = match live {
            None => LiveInst::NotFetched,
            Some(l) => match l.instances.get(&inst.primary_node) {
                Some(NodeAnswer::Offline) => LiveInst::NodeOffline,
                Some(NodeAnswer::NoData) | None => LiveInst::NodeDown,
                Some(NodeAnswer::Data(map)) => match map.get(&inst.name) {
                    Some(info) => LiveInst::Running {
                        info,
                        on_primary: true,
                    },
                    None => {
                        // Running somewhere else?
                        let elsewhere = l.instances.iter().find_map(|(node, a)| {
                            (*node != inst.primary_node)
                                .then(|| a.data().and_then(|m| m.get(&inst.name)))
                                .flatten()
                        });
                        match elsewhere {
                            Some(info) => LiveInst::Running {
                                info,
                                on_primary: false,
                            },
                            None => LiveInst::NotRunning,
                        }
                    }
                },
            },
        };
        InstRow {
            cfg,
            inst,
            pnode: cfg.nodes.get(&inst.primary_node),
            live,
            consoles: None,
            filled: Filled::default(),
        }
    }

    /// The row with the console descriptions fetched for the query.
    pub fn with_consoles(
        mut self,
        consoles: Option<&'a std::collections::HashMap<String, Value>>,
    ) -> Self {
        self.consoles = consoles;
        self
    }

    fn pnode_offline(&self) -> bool {
        self.pnode.is_some_and(|n| n.offline)
    }

    /// Ganeti's instance status string.
    pub fn status(&self) -> Cell {
        if self.pnode_offline() {
            return Cell::normal("ERROR_nodeoffline");
        }
        let admin = self.inst.admin_state;
        let s = match &self.live {
            LiveInst::NotFetched => return Cell::nodata(),
            LiveInst::NodeOffline => "ERROR_nodeoffline",
            LiveInst::NodeDown => "ERROR_nodedown",
            LiveInst::Running {
                on_primary: false, ..
            } => "ERROR_wrongnode",
            LiveInst::Running { info, .. } => {
                let shut = matches!(info.info.state, rpc::api::InstanceState::Shutdown);
                match (shut, admin) {
                    (false, AdminState::Up) => "running",
                    (false, _) => "ERROR_up",
                    (true, AdminState::Up) => "ERROR_down",
                    (true, _) => "ADMIN_down",
                }
            }
            LiveInst::NotRunning => match admin {
                AdminState::Up => "ERROR_down",
                AdminState::Down if self.inst.admin_state_source == AdminStateSource::User => {
                    "USER_down"
                }
                AdminState::Down => "ADMIN_down",
                AdminState::Offline => "ADMIN_offline",
            },
        };
        Cell::normal(s)
    }

    fn live_info(&self) -> Result<Option<&RunningInstance>, Cell> {
        match &self.live {
            LiveInst::NotFetched | LiveInst::NodeDown => Err(Cell::nodata()),
            LiveInst::NodeOffline => Err(Cell::offline()),
            LiveInst::Running {
                info,
                on_primary: true,
            } => Ok(Some(info)),
            _ => Ok(None),
        }
    }

    /// The backend parameters, the cluster's filled in.
    fn be(&self) -> &ParamDict {
        self.filled
            .be
            .get_or_init(|| self.cfg.cluster.fill_beparams(self.inst))
    }

    /// The hypervisor parameters, the cluster's filled in.
    fn hv(&self) -> &ParamDict {
        self.filled
            .hv
            .get_or_init(|| self.cfg.cluster.fill_hvparams(self.inst))
    }

    /// Each NIC's parameters, the cluster's filled in.
    fn nicparams(&self) -> &[ParamDict] {
        self.filled.nics.get_or_init(|| {
            self.inst
                .nics
                .iter()
                .map(|n| self.cfg.cluster.fill_nicparams(n))
                .collect()
        })
    }
}

/// The name of the network of NIC `n`, if it is in one.
fn network_name<'a>(r: &InstRow<'a>, n: &objects::Nic) -> Option<&'a str> {
    let uuid = n.network.as_deref()?;
    r.cfg.networks.get(uuid).map(|net| net.name.as_str())
}

fn nic_values(
    r: &InstRow<'_>,
    f: impl Fn(&InstRow<'_>, &objects::Nic, &ParamDict) -> Value,
) -> Cell {
    Cell::normal(Value::Array(
        r.inst
            .nics
            .iter()
            .zip(r.nicparams())
            .map(|(n, p)| f(r, n, p))
            .collect(),
    ))
}

const MAX_INDEXED: usize = 8;

/// The instance fields.
pub fn registry<'a>() -> FieldRegistry<InstRow<'a>> {
    use FieldKind::*;
    let c = DataNeeds::CONFIG;
    let live = DataNeeds::LIVE;
    let mut r: FieldRegistry<InstRow<'a>> = FieldRegistry::new();
    r.add_flagged(
        FieldDef::new("name", "Instance", Text, "Instance name"),
        c,
        FieldFlags::Hostname,
        |r| Cell::normal(r.inst.name.as_str()),
    )
    .add(
        FieldDef::new("console", "Console", Other, "Instance console information"),
        c | live | CONSOLE,
        |r| match r.consoles.and_then(|m| m.get(&r.inst.uuid)) {
            Some(v) => Cell::normal(v.clone()),
            None => Cell::unavail(),
        },
    )
    .add(
        FieldDef::new("os", "OS", Text, "Operating system"),
        c,
        |r| Cell::normal(r.inst.os.as_str()),
    )
    .add(
        FieldDef::new("hypervisor", "Hypervisor", Text, "Hypervisor name"),
        c,
        |r| Cell::normal(r.inst.hypervisor.as_str()),
    )
    .add_flagged(
        FieldDef::new("pnode", "Primary_node", Text, "Primary node"),
        c,
        FieldFlags::Hostname,
        |r| {
            Cell::normal(
                r.pnode
                    .map_or(r.inst.primary_node.as_str(), |n| n.name.as_str()),
            )
        },
    )
    .add(
        FieldDef::new(
            "pnode.group",
            "PrimaryNodeGroup",
            Text,
            "Primary node's group",
        ),
        c,
        |r| {
            let g = r
                .cfg
                .nodes
                .get(&r.inst.primary_node)
                .map(|n| n.group.as_str());
            Cell::normal(
                g.and_then(|g| r.cfg.groups.get(g))
                    .map(|g| g.name.clone())
                    .unwrap_or_default(),
            )
        },
    )
    .add(
        FieldDef::new(
            "pnode.group.uuid",
            "PrimaryNodeGroupUUID",
            Text,
            "Primary node's group UUID",
        ),
        c,
        |r| {
            Cell::normal(
                r.cfg
                    .nodes
                    .get(&r.inst.primary_node)
                    .map(|n| n.group.clone())
                    .unwrap_or_default(),
            )
        },
    )
    .add(
        FieldDef::new("snodes", "Secondary_Nodes", Other, "Secondary nodes"),
        c,
        |r| {
            Cell::normal(json!(r
                .inst
                .secondary_nodes()
                .iter()
                .map(|u| r.cfg.node_name(u))
                .collect::<Vec<_>>()))
        },
    )
    .add(
        FieldDef::new(
            "admin_state",
            "InstanceState",
            Text,
            "Desired state of the instance",
        ),
        c,
        |r| Cell::normal(r.inst.admin_state.as_str()),
    )
    .add(
        FieldDef::new(
            "admin_state_source",
            "InstanceStateSource",
            Text,
            "Who last changed the desired state",
        ),
        c,
        |r| {
            Cell::normal(match r.inst.admin_state_source {
                AdminStateSource::Admin => "admin",
                AdminStateSource::User => "user",
            })
        },
    )
    .add(
        FieldDef::new(
            "admin_up",
            "Autostart",
            Bool,
            "Desired state of the instance is up",
        ),
        c,
        |r| Cell::normal(r.inst.admin_state == AdminState::Up),
    )
    .add(
        FieldDef::new(
            "disks_active",
            "DisksActive",
            Bool,
            "Whether the disks are active",
        ),
        c,
        |r| Cell::normal(r.inst.disks_active),
    )
    .add(
        FieldDef::new(
            "disk_template",
            "Disk_template",
            Text,
            "Instance disk template",
        ),
        c,
        |r| Cell::normal(r.inst.disk_template.as_str()),
    )
    .add(
        FieldDef::new(
            "network_port",
            "Network_port",
            Other,
            "Instance network port if available",
        ),
        c,
        |r| Cell::normal(json!(r.inst.network_port)),
    )
    .add(
        FieldDef::new("status", "Status", Text, "Instance status"),
        c | live,
        |r| r.status(),
    )
    .add(
        FieldDef::new("oper_state", "Running", Bool, "Actual state of instance"),
        live,
        |r| match r.live_info() {
            Ok(i) => Cell::normal(i.is_some()),
            Err(c) => c,
        },
    )
    .add(
        FieldDef::new(
            "oper_ram",
            "Memory",
            Unit,
            "Actual memory usage as seen by hypervisor",
        ),
        live,
        |r| match r.live_info() {
            Ok(Some(i)) => Cell::normal(i.info.memory),
            Ok(None) => Cell::unavail(),
            Err(c) => c,
        },
    )
    .add(
        FieldDef::new(
            "oper_vcpus",
            "VCPUs",
            Number,
            "Actual number of VCPUs as seen by hypervisor",
        ),
        live,
        |r| match r.live_info() {
            Ok(Some(i)) => Cell::normal(i.info.vcpus),
            Ok(None) => Cell::unavail(),
            Err(c) => c,
        },
    )
    .add(
        FieldDef::new(
            "hvparams",
            "HypervisorParameters",
            Other,
            "Hypervisor parameters (merged)",
        ),
        c,
        |r| Cell::normal(json!(r.hv())),
    )
    .add(
        FieldDef::new(
            "beparams",
            "BackendParameters",
            Other,
            "Backend parameters (merged)",
        ),
        c,
        |r| Cell::normal(json!(r.be())),
    )
    .add(
        FieldDef::new(
            "osparams",
            "OpSysParameters",
            Other,
            "Operating system parameters (merged)",
        ),
        c,
        |r| Cell::normal(json!(r.inst.osparams)),
    )
    .add(
        FieldDef::new(
            "custom_hvparams",
            "CustomHypervisorParameters",
            Other,
            "Custom hypervisor parameters",
        ),
        c,
        |r| Cell::normal(json!(r.inst.hvparams)),
    )
    .add(
        FieldDef::new(
            "custom_beparams",
            "CustomBackendParameters",
            Other,
            "Custom backend parameters",
        ),
        c,
        |r| Cell::normal(json!(r.inst.beparams)),
    )
    .add(
        FieldDef::new(
            "custom_osparams",
            "CustomOpSysParameters",
            Other,
            "Custom operating system parameters",
        ),
        c,
        |r| Cell::normal(json!(r.inst.osparams)),
    )
    .add(
        FieldDef::new(
            "custom_nicparams",
            "CustomNicParameters",
            Other,
            "Custom network interface parameters",
        ),
        c,
        |r| {
            Cell::normal(json!(r
                .inst
                .nics
                .iter()
                .map(|n| &n.nicparams)
                .collect::<Vec<_>>()))
        },
    )
    .add(
        FieldDef::new(
            "disk_usage",
            "DiskUsage",
            Unit,
            "Total disk space used by instance on each of its nodes",
        ),
        c,
        |r| Cell::normal(r.inst.disks.iter().map(|d| d.size).sum::<u64>()),
    )
    .add(
        FieldDef::new("disk.count", "Disks", Number, "Number of disks"),
        c,
        |r| Cell::normal(r.inst.disks.len()),
    )
    .add(
        FieldDef::new("disk.sizes", "Disk_sizes", Other, "List of disk sizes"),
        c,
        |r| {
            Cell::normal(json!(r
                .inst
                .disks
                .iter()
                .map(|d| d.size)
                .collect::<Vec<_>>()))
        },
    )
    .add(
        FieldDef::new(
            "disk.spindles",
            "Disk_spindles",
            Other,
            "List of disk spindles",
        ),
        c,
        |r| {
            Cell::normal(json!(r
                .inst
                .disks
                .iter()
                .map(|d| d.spindles)
                .collect::<Vec<_>>()))
        },
    )
    .add(
        FieldDef::new("disk.names", "Disk_names", Other, "List of disk names"),
        c,
        |r| {
            Cell::normal(json!(r
                .inst
                .disks
                .iter()
                .map(|d| d.name.clone())
                .collect::<Vec<_>>()))
        },
    )
    .add(
        FieldDef::new("disk.uuids", "Disk_UUIDs", Other, "List of disk UUIDs"),
        c,
        |r| {
            Cell::normal(json!(r
                .inst
                .disks
                .iter()
                .map(|d| d.uuid.clone())
                .collect::<Vec<_>>()))
        },
    )
    .add(
        FieldDef::new("nic.count", "NICs", Number, "Number of network interfaces"),
        c,
        |r| Cell::normal(r.inst.nics.len()),
    )
    .add(
        FieldDef::new(
            "nic.macs",
            "NIC_MACs",
            Other,
            "List containing each network interface's MAC address",
        ),
        c,
        |r| nic_values(r, |_, n, _| json!(n.mac)),
    )
    .add(
        FieldDef::new(
            "nic.ips",
            "NIC_IPs",
            Other,
            "List containing each network interface's IP address",
        ),
        c,
        |r| nic_values(r, |_, n, _| json!(n.ip)),
    )
    .add(
        FieldDef::new(
            "nic.names",
            "NIC_Names",
            Other,
            "List containing each network interface's name",
        ),
        c,
        |r| nic_values(r, |_, n, _| json!(n.name)),
    )
    .add(
        FieldDef::new(
            "nic.uuids",
            "NIC_UUIDs",
            Other,
            "List containing each network interface's UUID",
        ),
        c,
        |r| nic_values(r, |_, n, _| json!(n.uuid)),
    )
    .add(
        FieldDef::new(
            "nic.modes",
            "NIC_modes",
            Other,
            "List containing each network interface's mode",
        ),
        c,
        |r| nic_values(r, |_, _, p| json!(p.get("mode"))),
    )
    .add(
        FieldDef::new(
            "nic.links",
            "NIC_links",
            Other,
            "List containing each network interface's link",
        ),
        c,
        |r| nic_values(r, |_, _, p| json!(p.get("link"))),
    )
    .add(
        FieldDef::new(
            "nic.vlans",
            "NIC_VLANs",
            Other,
            "List containing each network interface's VLAN",
        ),
        c,
        |r| nic_values(r, |_, _, p| json!(p.get("vlan"))),
    )
    .add(
        FieldDef::new(
            "nic.bridges",
            "NIC_bridges",
            Other,
            "List containing each network interface's bridge",
        ),
        c,
        |r| {
            nic_values(r, |_, _, p| {
                if p.get("mode").and_then(Value::as_str) == Some("bridged") {
                    json!(p.get("link"))
                } else {
                    Value::Null
                }
            })
        },
    )
    .add(
        FieldDef::new(
            "nic.networks",
            "NIC_networks",
            Other,
            "List containing each interface's network UUID",
        ),
        c,
        |r| nic_values(r, |_, n, _| json!(n.network)),
    )
    .add(
        FieldDef::new(
            "nic.networks.names",
            "NIC_networks_names",
            Other,
            "List containing each interface's network",
        ),
        c,
        |r| nic_values(r, |r, n, _| json!(network_name(r, n))),
    );
    for i in 0..MAX_INDEXED {
        r.add(
            FieldDef::new(
                &format!("disk.size/{i}"),
                &format!("Disk/{i}"),
                Unit,
                &format!("Disk size of {} disk", ordinal(i)),
            ),
            c,
            move |r| {
                r.inst
                    .disks
                    .get(i)
                    .map_or_else(Cell::unavail, |d| Cell::normal(d.size))
            },
        )
        .add(
            FieldDef::new(
                &format!("nic.mac/{i}"),
                &format!("NicMAC/{i}"),
                Text,
                &format!("MAC address of {} network interface", ordinal(i)),
            ),
            c,
            move |r| {
                r.inst
                    .nics
                    .get(i)
                    .map_or_else(Cell::unavail, |n| Cell::normal(n.mac.as_str()))
            },
        )
        .add(
            FieldDef::new(
                &format!("nic.ip/{i}"),
                &format!("NicIP/{i}"),
                Text,
                &format!("IP address of {} network interface", ordinal(i)),
            ),
            c,
            move |r| {
                r.inst
                    .nics
                    .get(i)
                    .map_or_else(Cell::unavail, |n| Cell::normal(json!(n.ip)))
            },
        )
        .add(
            FieldDef::new(
                &format!("nic.mode/{i}"),
                &format!("NicMode/{i}"),
                Text,
                &format!("Mode of {} network interface", ordinal(i)),
            ),
            c,
            move |r| {
                r.nicparams()
                    .get(i)
                    .map_or_else(Cell::unavail, |p| Cell::normal(json!(p.get("mode"))))
            },
        )
        .add(
            FieldDef::new(
                &format!("nic.link/{i}"),
                &format!("NicLink/{i}"),
                Text,
                &format!("Link of {} network interface", ordinal(i)),
            ),
            c,
            move |r| {
                r.nicparams()
                    .get(i)
                    .map_or_else(Cell::unavail, |p| Cell::normal(json!(p.get("link"))))
            },
        )
        .add(
            FieldDef::new(
                &format!("nic.network/{i}"),
                &format!("NicNetwork/{i}"),
                Text,
                &format!("Network of {} network interface", ordinal(i)),
            ),
            c,
            move |r| Cell::normal_or_unavail(r.inst.nics.get(i).and_then(|n| n.network.clone())),
        )
        .add(
            FieldDef::new(
                &format!("nic.network.name/{i}"),
                &format!("NicNetworkName/{i}"),
                Text,
                &format!("Network name of {} network interface", ordinal(i)),
            ),
            c,
            move |r| {
                Cell::normal_or_unavail(
                    r.inst
                        .nics
                        .get(i)
                        .and_then(|n| network_name(r, n))
                        .map(str::to_string),
                )
            },
        );
    }
    // Backend parameters, Ganeti's titles.
    for (name, title, kind) in [
        (be::MAXMEM, "ConfigMaxMem", Unit),
        (be::MINMEM, "ConfigMinMem", Unit),
        (be::VCPUS, "ConfigVCPUs", Number),
        (be::AUTO_BALANCE, "Auto_balance", Bool),
        (be::ALWAYS_FAILOVER, "always_failover", Bool),
        (be::SPINDLE_USE, "spindle_use", Number),
    ] {
        let key = name.to_string();
        r.add(
            FieldDef::new(
                &format!("be/{name}"),
                title,
                kind,
                &format!("The \"{name}\" backend parameter"),
            ),
            c,
            move |r| {
                let be = r.be();
                match kind {
                    Bool => be
                        .get(&key)
                        .map_or_else(Cell::unavail, |v| Cell::normal(v.clone())),
                    _ => get_u64(be, &key).map_or_else(Cell::unavail, Cell::normal),
                }
            },
        );
    }
    r.alias("be/memory", "be/maxmem");
    r.alias("vcpus", "be/vcpus");
    r.alias("sda_size", "disk.size/0");
    r.alias("sdb_size", "disk.size/1");
    r.alias("ip", "nic.ip/0");
    r.alias("mac", "nic.mac/0");
    r.alias("nic_mode", "nic.mode/0");
    r.alias("nic_link", "nic.link/0");
    r.alias("nic_network", "nic.network/0");
    // Hypervisor parameters of the hypervisors ganeti-rs knows.
    let mut hv_names: Vec<String> = objects::params::default_hvparams("kvm")
        .keys()
        .cloned()
        .collect();
    hv_names.extend(objects::params::default_hvparams("fake").keys().cloned());
    hv_names.sort();
    hv_names.dedup();
    for name in hv_names {
        let key = name.clone();
        r.add(
            FieldDef::new(
                &format!("hv/{name}"),
                &hv_title(&name),
                Other,
                &format!("The \"{name}\" hypervisor parameter"),
            ),
            c,
            move |r| {
                r.hv()
                    .get(&key)
                    .map_or_else(Cell::unavail, |v| Cell::normal(v.clone()))
            },
        );
    }
    common_fields(&mut r, |r: &InstRow<'a>| super::Common {
        uuid: &r.inst.uuid,
        serial_no: r.inst.serial_no,
        ctime: r.inst.ctime,
        mtime: r.inst.mtime,
        tags: &r.inst.tags,
    });
    r
}

fn hv_title(name: &str) -> String {
    match name {
        "acpi" => "ACPI",
        "boot_order" => "Boot_order",
        "cpu_type" => "cpu_type",
        "disk_type" => "Disk_type",
        "initrd_path" => "Initrd_path",
        "kernel_path" => "Kernel_path",
        "nic_type" => "NIC_type",
        "vnc_bind_address" => "VNC_bind_address",
        other => other,
    }
    .to_string()
}

fn ordinal(i: usize) -> String {
    match i {
        0 => "1st".into(),
        1 => "2nd".into(),
        2 => "3rd".into(),
        n => format!("{}th", n + 1),
    }
}
