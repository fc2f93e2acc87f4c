//! The compact cluster model: groups, nodes, instances and the cluster.
//!
//! Indices: nodes, instances and groups are kept in vectors and refer to each
//! other by position. Tags that matter to the algorithms (exclusion,
//! location, migration) are interned to small integers.

use std::collections::HashMap;

use crate::types::{
    AllocPolicy, DiskTemplate, DynUtil, IPolicy, InstanceStatus, TemplateExt, NO_SECONDARY,
};

/// A node group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub uuid: String,
    pub alloc_policy: AllocPolicy,
    pub tags: Vec<String>,
    pub networks: Vec<String>,
    pub ipolicy: IPolicy,
}

impl Group {
    pub fn is_allocable(&self) -> bool {
        self.alloc_policy != AllocPolicy::Unallocable
    }
}

/// One disk of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disk {
    pub size: i64,
    pub spindles: Option<i64>,
}

/// A network interface of an instance (only what allocation needs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nic {
    pub network: Option<String>,
}

/// An instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub name: String,
    pub alias: String,
    pub mem: i64,
    pub dsk: i64,
    pub disks: Vec<Disk>,
    pub vcpus: i64,
    pub status: InstanceStatus,
    pub pnode: usize,
    pub snode: usize,
    pub util: DynUtil,
    pub movable: bool,
    pub auto_balance: bool,
    pub template: DiskTemplate,
    pub spindle_use: i64,
    pub tags: Vec<String>,
    /// Exclusion tags (interned), a subset of `tags`.
    pub excl_tags: Vec<u32>,
    /// Desired location tags (interned, sorted, unique).
    pub dsrd_loc_tags: Vec<u32>,
    /// Number of location tags primary and secondary have in common.
    pub location_score: i64,
    pub nics: Vec<Nic>,
    pub forthcoming: bool,
}

impl Instance {
    /// A new instance with Ganeti's defaults for the derived fields.
    pub fn new(
        name: &str,
        mem: i64,
        dsk: i64,
        disks: Vec<Disk>,
        vcpus: i64,
        status: InstanceStatus,
        tags: Vec<String>,
        auto_balance: bool,
        pnode: usize,
        snode: usize,
        template: DiskTemplate,
        spindle_use: i64,
        forthcoming: bool,
    ) -> Instance {
        Instance {
            name: name.to_string(),
            alias: name.to_string(),
            mem,
            dsk,
            disks,
            vcpus,
            status,
            pnode,
            snode,
            util: DynUtil::BASE,
            movable: template.supports_moves(),
            auto_balance,
            template,
            spindle_use,
            tags,
            excl_tags: Vec::new(),
            dsrd_loc_tags: Vec::new(),
            location_score: 0,
            nics: Vec::new(),
            forthcoming,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(
            self.status,
            InstanceStatus::Running | InstanceStatus::ErrorUp
        )
    }
    pub fn is_offline(&self) -> bool {
        self.status == InstanceStatus::AdminOffline
    }
    pub fn not_offline(&self) -> bool {
        !self.is_offline()
    }
    /// Whether the secondary must keep memory free for this instance.
    pub fn uses_sec_mem(&self) -> bool {
        self.not_offline() && self.auto_balance
    }
    pub fn uses_memory(&self) -> bool {
        if self.forthcoming {
            return false;
        }
        !matches!(
            self.status,
            InstanceStatus::AdminDown
                | InstanceStatus::AdminOffline
                | InstanceStatus::ErrorDown
                | InstanceStatus::UserDown
        )
    }
    pub fn uses_local_storage(&self) -> bool {
        self.template.uses_local_storage()
    }
    pub fn has_secondary(&self) -> bool {
        self.template == DiskTemplate::Drbd
    }
    pub fn total_spindles(&self) -> Option<i64> {
        self.disks
            .iter()
            .try_fold(0i64, |acc, d| d.spindles.map(|s| acc + s))
    }
    /// The nodes the instance lives on (primary, and secondary for DRBD).
    pub fn all_nodes(&self) -> Vec<usize> {
        if self.template == DiskTemplate::Drbd && self.snode != NO_SECONDARY {
            vec![self.pnode, self.snode]
        } else {
            vec![self.pnode]
        }
    }
}

/// A fast hasher for small integer keys (node indices), FxHash-style.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

const ID_HASH_K: u64 = 0x517c_c1b7_2722_0a95;

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(ID_HASH_K);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(ID_HASH_K);
    }
}

/// Memory a node reserves for each primary node it is secondary for.
pub type PeerMap = HashMap<usize, i64, std::hash::BuildHasherDefault<IdHasher>>;

/// The scalar (fixed-size, copyable) part of a node's state: everything the
/// score and the capacity checks need. Candidate moves are evaluated on
/// copies of this, without touching the node's lists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeStats {
    pub t_mem: f64,
    pub n_mem: i64,
    pub f_mem: i64,
    pub f_mem_forth: i64,
    pub i_mem: i64,
    pub x_mem: i64,
    pub t_dsk: f64,
    pub f_dsk: i64,
    pub f_dsk_forth: i64,
    pub t_cpu: f64,
    pub cpu_speed: f64,
    pub n_cpu: i64,
    pub u_cpu: i64,
    pub u_cpu_forth: i64,
    pub t_spindles: i64,
    pub f_spindles: i64,
    pub f_spindles_forth: i64,
    pub n_pri: usize,
    pub n_sec: usize,
    pub fail_n1: bool,
    pub r_mem: i64,
    pub p_mem: f64,
    pub p_mem_forth: f64,
    pub p_dsk: f64,
    pub p_dsk_forth: f64,
    pub p_rem: f64,
    pub p_cpu: f64,
    pub p_cpu_forth: f64,
    pub m_dsk: f64,
    pub lo_dsk: i64,
    pub hi_cpu: i64,
    pub vcpu_ratio: f64,
    pub hi_spindles: f64,
    pub inst_spindles: f64,
    pub inst_spindles_forth: f64,
    pub offline: bool,
    pub excl_storage: bool,
    pub util_pool: DynUtil,
    pub util_load: DynUtil,
    pub util_load_forth: DynUtil,
    pub location_score: i64,
    /// Primary instances sharing an exclusion tag (sum of counts minus
    /// distinct tags).
    pub conflicts: i64,
}

/// A node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub alias: String,
    pub group: usize,
    pub is_master: bool,
    pub tags: Vec<String>,
    pub s: NodeStats,
    pub plist: Vec<usize>,
    pub slist: Vec<usize>,
    pub plist_forth: Vec<usize>,
    pub slist_forth: Vec<usize>,
    /// Memory reserved for each primary node whose instances this node is
    /// secondary for.
    pub peers: PeerMap,
    /// Exclusion tag counts of the primary instances.
    pub ptags: HashMap<u32, u32>,
    /// (location tag, exclusion tag) pairs of the primary instances.
    pub inst_map: HashMap<(u32, u32), u32>,
    /// Location tags (interned, sorted).
    pub loc_tags: Vec<u32>,
    /// Migration tags (interned, sorted).
    pub mig_tags: Vec<u32>,
    /// Migration tags this node accepts (interned, sorted).
    pub rmig_tags: Vec<u32>,
    pub ipolicy: IPolicy,
    /// Runs KVM (as the LUXI and iallocator backends say): its node memory
    /// may be replaced by a static value (`--static-kvm-node-memory`).
    pub kvm: bool,
}

fn compute_pdsk(free: i64, total: f64) -> f64 {
    if total == 0.0 {
        1.0
    } else {
        free as f64 / total
    }
}

impl Node {
    /// A new node, as Ganeti creates it before instances are loaded.
    pub fn new(
        name: &str,
        t_mem: f64,
        n_mem: i64,
        f_mem: i64,
        t_dsk: f64,
        f_dsk: i64,
        t_cpu: f64,
        n_cpu: i64,
        offline: bool,
        t_spindles: i64,
        f_spindles: i64,
        group: usize,
        excl_storage: bool,
    ) -> Node {
        let pol = IPolicy::default();
        let p_dsk = if excl_storage {
            compute_pdsk(f_spindles, t_spindles as f64)
        } else {
            compute_pdsk(f_dsk, t_dsk)
        };
        Node {
            name: name.to_string(),
            alias: name.to_string(),
            group,
            is_master: false,
            tags: Vec::new(),
            s: NodeStats {
                t_mem,
                n_mem,
                f_mem,
                f_mem_forth: f_mem,
                i_mem: 0,
                x_mem: 0,
                t_dsk,
                f_dsk,
                f_dsk_forth: f_dsk,
                t_cpu,
                cpu_speed: 1.0,
                n_cpu,
                u_cpu: n_cpu,
                u_cpu_forth: n_cpu,
                t_spindles,
                f_spindles,
                f_spindles_forth: f_spindles,
                n_pri: 0,
                n_sec: 0,
                fail_n1: true,
                r_mem: 0,
                p_mem: 0.0,
                p_mem_forth: f_mem as f64 / t_mem,
                p_dsk,
                p_dsk_forth: p_dsk,
                p_rem: 0.0,
                p_cpu: n_cpu as f64 / t_cpu,
                p_cpu_forth: n_cpu as f64 / t_cpu,
                m_dsk: 0.0,
                lo_dsk: 0,
                hi_cpu: (pol.vcpu_ratio * t_cpu).floor() as i64,
                vcpu_ratio: pol.vcpu_ratio,
                hi_spindles: pol.spindle_ratio * t_spindles as f64,
                inst_spindles: 0.0,
                inst_spindles_forth: 0.0,
                offline,
                excl_storage,
                util_pool: DynUtil::BASE,
                util_load: DynUtil::ZERO,
                util_load_forth: DynUtil::ZERO,
                location_score: 0,
                conflicts: 0,
            },
            plist: Vec::new(),
            slist: Vec::new(),
            plist_forth: Vec::new(),
            slist_forth: Vec::new(),
            peers: PeerMap::default(),
            ptags: HashMap::new(),
            inst_map: HashMap::new(),
            loc_tags: Vec::new(),
            mig_tags: Vec::new(),
            rmig_tags: Vec::new(),
            ipolicy: pol,
            kvm: false,
        }
    }

    pub fn offline(&self) -> bool {
        self.s.offline
    }

    pub fn set_policy(&mut self, pol: IPolicy) {
        self.s.hi_cpu = (pol.vcpu_ratio * self.s.t_cpu).floor() as i64;
        self.s.vcpu_ratio = pol.vcpu_ratio;
        self.s.hi_spindles = pol.spindle_ratio * self.s.t_spindles as f64;
        self.ipolicy = pol;
    }

    pub fn set_mdsk(&mut self, v: f64) {
        self.s.m_dsk = v;
        self.s.lo_dsk = (v * self.s.t_dsk).floor() as i64;
    }

    pub fn set_mcpu(&mut self, v: f64) {
        self.s.hi_cpu = (v * self.s.t_cpu).floor() as i64;
        self.s.vcpu_ratio = v;
        self.ipolicy.vcpu_ratio = v;
    }
}

impl NodeStats {
    pub fn cpu_eff(&self) -> f64 {
        self.p_cpu / self.cpu_speed
    }
    pub fn cpu_eff_forth(&self) -> f64 {
        self.p_cpu_forth / self.cpu_speed
    }
    pub fn recorded_free_mem(&self) -> i64 {
        self.t_mem.trunc() as i64 - self.n_mem - self.i_mem
    }
    pub fn missing_mem(&self) -> i64 {
        self.recorded_free_mem() - self.f_mem
    }
    pub fn unallocated_mem(&self) -> i64 {
        self.recorded_free_mem() - self.x_mem.max(0)
    }
    pub fn avail_mem(&self) -> i64 {
        (self.unallocated_mem() - self.r_mem).max(0)
    }
    pub fn avail_disk(&self) -> i64 {
        if self.f_dsk < self.lo_dsk {
            0
        } else {
            self.f_dsk - self.lo_dsk
        }
    }
    pub fn avail_cpu(&self) -> i64 {
        if self.hi_cpu >= self.u_cpu {
            self.hi_cpu - self.u_cpu
        } else {
            0
        }
    }
    pub fn new_pdsk(&self, free_sp: i64, free_dsk: i64) -> f64 {
        if self.excl_storage {
            compute_pdsk(free_sp, self.t_spindles as f64)
        } else {
            compute_pdsk(free_dsk, self.t_dsk)
        }
    }
}

/// The whole cluster as loaded from a backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub groups: Vec<Group>,
    pub nodes: Vec<Node>,
    pub instances: Vec<Instance>,
    pub tags: Vec<String>,
    pub ipolicy: IPolicy,
    /// Interned tag strings.
    pub tag_names: Vec<String>,
}

impl Cluster {
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name == name || n.alias == name)
    }
    pub fn instance_index(&self, name: &str) -> Option<usize> {
        self.instances
            .iter()
            .position(|i| i.name == name || i.alias == name)
    }
    pub fn group_index(&self, name_or_uuid: &str) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.name == name_or_uuid || g.uuid == name_or_uuid)
    }
    /// Interns a tag string.
    pub fn intern(&mut self, tag: &str) -> u32 {
        if let Some(p) = self.tag_names.iter().position(|t| t == tag) {
            return p as u32;
        }
        self.tag_names.push(tag.to_string());
        (self.tag_names.len() - 1) as u32
    }
}
