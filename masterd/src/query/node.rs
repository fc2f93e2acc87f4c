//! The `node` query resource.

use luxi::query::{Cell, DataNeeds, FieldDef, FieldFlags, FieldKind, FieldRegistry};
use objects::{Instance, Node};
use rpc::api::NodeInfoResult;
use serde_json::json;

use super::common_fields;
use super::live::{Live, NodeAnswer};
use crate::config::ConfigData;

/// One node with its instances and live data.
pub struct NodeRow<'a> {
    pub cfg: &'a ConfigData,
    pub node: &'a Node,
    pub pinst: Vec<&'a Instance>,
    pub sinst: Vec<&'a Instance>,
    pub live: Option<&'a NodeAnswer<NodeInfoResult>>,
}

impl<'a> NodeRow<'a> {
    pub fn new(
        cfg: &'a ConfigData,
        node: &'a Node,
        pinst: Vec<&'a Instance>,
        sinst: Vec<&'a Instance>,
        live: Option<&'a Live>,
    ) -> Self {
        NodeRow {
            cfg,
            node,
            pinst,
            sinst,
            live: live.and_then(|l| l.node_info.get(&node.uuid)),
        }
    }

    fn with_live(&self, f: impl Fn(&NodeInfoResult) -> Option<serde_json::Value>) -> Cell {
        if self.node.offline {
            return Cell::offline();
        }
        match self.live {
            Some(NodeAnswer::Data(d)) => f(d).map_or_else(Cell::unavail, Cell::normal),
            Some(NodeAnswer::Offline) => Cell::offline(),
            _ => Cell::nodata(),
        }
    }

    /// Ganeti's one-letter role.
    pub fn role(&self) -> &'static str {
        if self.cfg.cluster.master_node == self.node.uuid {
            "M"
        } else if self.node.master_candidate {
            "C"
        } else if self.node.drained {
            "D"
        } else if self.node.offline {
            "O"
        } else {
            "R"
        }
    }
}

/// The node fields.
pub fn registry<'a>() -> FieldRegistry<NodeRow<'a>> {
    use FieldKind::*;
    let c = DataNeeds::CONFIG;
    let live = DataNeeds::LIVE;
    let mut r: FieldRegistry<NodeRow<'a>> = FieldRegistry::new();
    r.add_flagged(
        FieldDef::new("name", "Node", Text, "Node name"),
        c,
        FieldFlags::Hostname,
        |r| Cell::normal(r.node.name.as_str()),
    )
    .add(FieldDef::new("pip", "PrimaryIP", Text, "Primary IP address"), c, |r| {
        Cell::normal(r.node.primary_ip.as_str())
    })
    .add(FieldDef::new("sip", "SecondaryIP", Text, "Secondary IP address"), c, |r| {
        Cell::normal(r.node.secondary_ip.as_str())
    })
    .add(FieldDef::new("master", "IsMaster", Bool, "Whether node is master"), c, |r| {
        Cell::normal(r.cfg.cluster.master_node == r.node.uuid)
    })
    .add(FieldDef::new("master_candidate", "MasterC", Bool, "Whether node is a master candidate"), c, |r| {
        Cell::normal(r.node.master_candidate)
    })
    .add(FieldDef::new("master_capable", "MasterCapable", Bool, "Whether node can become a master candidate"), c, |r| {
        Cell::normal(r.node.master_capable)
    })
    .add(FieldDef::new("offline", "Offline", Bool, "Whether node is marked offline"), c, |r| {
        Cell::normal(r.node.offline)
    })
    .add(FieldDef::new("drained", "Drained", Bool, "Whether node is drained"), c, |r| {
        Cell::normal(r.node.drained)
    })
    .add(FieldDef::new("vm_capable", "VMCapable", Bool, "Whether node can host instances"), c, |r| {
        Cell::normal(r.node.vm_capable)
    })
    .add(FieldDef::new("powered", "Powered", Bool, "Whether node is thought to be powered on"), c, |r| {
        // Known only for a node with an out-of-band program, as in Ganeti.
        let g = r.cfg.groups.get(&r.node.group).map(|g| g.ndparams.clone()).unwrap_or_default();
        let nd = objects::params::fill(&objects::params::fill(&r.cfg.cluster.ndparams, &g), &r.node.ndparams);
        if nd.get("oob_program").and_then(|p| p.as_str()).is_some_and(|p| !p.is_empty()) {
            Cell::normal(r.node.powered)
        } else {
            Cell::unavail()
        }
    })
    .add(FieldDef::new("role", "Role", Text, "Node role; \"M\" for master, \"C\" for master candidate, \"R\" for regular, \"D\" for drained, \"O\" for offline"), c, |r| {
        Cell::normal(r.role())
    })
    .add(FieldDef::new("group", "Group", Text, "Node group"), c, |r| {
        Cell::normal(r.cfg.groups.get(&r.node.group).map(|g| g.name.clone()).unwrap_or_default())
    })
    .add(FieldDef::new("group.uuid", "GroupUUID", Text, "UUID of node group"), c, |r| {
        Cell::normal(r.node.group.as_str())
    })
    .add(FieldDef::new("ndparams", "NodeParameters", Other, "Merged node parameters"), c, |r| {
        let g = r.cfg.groups.get(&r.node.group).map(|g| g.ndparams.clone()).unwrap_or_default();
        let m = objects::params::fill(&objects::params::fill(&r.cfg.cluster.ndparams, &g), &r.node.ndparams);
        Cell::normal(json!(m))
    })
    .add(FieldDef::new("custom_ndparams", "CustomNodeParameters", Other, "Custom node parameters"), c, |r| {
        Cell::normal(json!(r.node.ndparams))
    })
    .add(FieldDef::new("pinst_cnt", "Pinst", Number, "Number of instances with this node as primary"), c, |r| {
        Cell::normal(r.pinst.len())
    })
    .add(FieldDef::new("sinst_cnt", "Sinst", Number, "Number of instances with this node as secondary"), c, |r| {
        Cell::normal(r.sinst.len())
    })
    .add(FieldDef::new("pinst_list", "PriInstances", Other, "List of instances with this node as primary"), c, |r| {
        let mut v: Vec<&str> = r.pinst.iter().map(|i| i.name.as_str()).collect();
        v.sort();
        Cell::normal(json!(v))
    })
    .add(FieldDef::new("sinst_list", "SecInstances", Other, "List of instances with this node as secondary"), c, |r| {
        let mut v: Vec<&str> = r.sinst.iter().map(|i| i.name.as_str()).collect();
        v.sort();
        Cell::normal(json!(v))
    })
    .add(FieldDef::new("bootid", "BootID", Text, "Random UUID renewed for each system reboot"), live, |r| {
        r.with_live(|d| Some(json!(d.bootid)))
    })
    .add(FieldDef::new("ctotal", "CTotal", Number, "Number of logical processors"), live, |r| {
        r.with_live(|d| d.hypervisors.first().map(|h| json!(h.info.cpu_total)))
    })
    .add(FieldDef::new("cnodes", "CNodes", Number, "Number of NUMA domains on node (if exported by hypervisor)"), live, |r| {
        r.with_live(|d| d.hypervisors.first().map(|h| json!(h.info.cpu_nodes)))
    })
    .add(FieldDef::new("csockets", "CSockets", Number, "Number of physical CPU sockets (if exported by hypervisor)"), live, |r| {
        r.with_live(|d| d.hypervisors.first().map(|h| json!(h.info.cpu_sockets)))
    })
    .add(FieldDef::new("cnos", "CNOs", Number, "Number of logical processors used by the node OS (dom0 for Xen)"), live, |r| {
        r.with_live(|d| d.hypervisors.first().map(|h| json!(h.info.cpu_dom0)))
    })
    .add(FieldDef::new("mtotal", "MTotal", Unit, "Total amount of memory of physical machine"), live, |r| {
        r.with_live(|d| d.hypervisors.first().map(|h| json!(h.info.memory_total)))
    })
    .add(FieldDef::new("mnode", "MNode", Unit, "Amount of memory used by node (dom0 for Xen)"), live, |r| {
        r.with_live(|d| d.hypervisors.first().map(|h| json!(h.info.memory_dom0)))
    })
    .add(FieldDef::new("mfree", "MFree", Unit, "Memory available for instance allocations"), live, |r| {
        r.with_live(|d| d.hypervisors.first().map(|h| json!(h.info.memory_free)))
    })
    .add(FieldDef::new("dtotal", "DTotal", Unit, "Total disk space in volume group or file storage"), live, |r| {
        r.with_live(|d| d.storage.first().map(|s| json!(s.total_mib)))
    })
    .add(FieldDef::new("dfree", "DFree", Unit, "Available disk space in volume group or file storage"), live, |r| {
        r.with_live(|d| d.storage.first().map(|s| json!(s.free_mib)))
    })
    .add(FieldDef::new("sptotal", "SpTotal", Number, "Total amount of spindles in physical volumes"), live, |r| {
        r.with_live(|_| Some(json!(0)))
    })
    .add(FieldDef::new("spfree", "SpFree", Number, "Available spindles in volume group"), live, |r| {
        r.with_live(|_| Some(json!(0)))
    });
    common_fields(&mut r, |r: &NodeRow<'a>| super::Common {
        uuid: &r.node.uuid,
        serial_no: r.node.serial_no,
        ctime: r.node.ctime,
        mtime: r.node.mtime,
        tags: &r.node.tags,
    });
    r
}
