//! Adding and removing instances to and from nodes, with Ganeti's checks.
//!
//! Each operation works on a copy of a node's [`NodeStats`] and only reads
//! the node's maps (peers, exclusion tags), so candidate moves can be
//! evaluated without cloning nodes. Exclusion-tag changes that an operation
//! makes are recorded in a [`TagDelta`] so a later operation of the same move
//! sees them. [`commit_add_pri`] and friends then update the lists and maps
//! of the real node.

use std::collections::HashMap;

use crate::model::{Instance, Node, NodeStats};
use crate::types::{FailMode, OpResult};

/// Pending changes to a node's exclusion tag counts during one move.
#[derive(Debug, Default, Clone)]
pub struct TagDelta(Vec<(u32, i32)>);

impl TagDelta {
    fn get(&self, base: &HashMap<u32, u32>, t: u32) -> i64 {
        let b = base.get(&t).copied().unwrap_or(0) as i64;
        b + self
            .0
            .iter()
            .filter(|(k, _)| *k == t)
            .map(|(_, d)| *d as i64)
            .sum::<i64>()
    }
    fn bump(&mut self, t: u32, d: i32) {
        if let Some(e) = self.0.iter_mut().find(|(k, _)| *k == t) {
            e.1 += d;
        } else {
            self.0.push((t, d));
        }
    }
}

/// Read-only view of a node's maps during one move.
pub struct NodeView<'a> {
    pub node: &'a Node,
    pub tags: TagDelta,
}

impl<'a> NodeView<'a> {
    pub fn new(node: &'a Node) -> Self {
        NodeView {
            node,
            tags: TagDelta::default(),
        }
    }
    fn tag_count(&self, t: u32) -> i64 {
        self.tags.get(&self.node.ptags, t)
    }
    /// Adds the tags; returns the change in conflicting primaries.
    fn add_tags(&mut self, tags: &[u32]) -> i64 {
        let mut d = 0;
        for &t in tags {
            if self.tag_count(t) >= 1 {
                d += 1;
            }
            self.tags.bump(t, 1);
        }
        d
    }
    fn del_tags(&mut self, tags: &[u32]) -> i64 {
        let mut d = 0;
        for &t in tags {
            let c = self.tag_count(t);
            if c >= 2 {
                d -= 1;
            }
            if c >= 1 {
                self.tags.bump(t, -1);
            }
        }
        d
    }
    fn rejects(&self, tags: &[u32]) -> bool {
        tags.iter().any(|&t| self.tag_count(t) >= 1)
    }
}

fn inc_if<T: std::ops::Add<Output = T>>(c: bool, base: T, d: T) -> T {
    if c {
        base + d
    } else {
        base
    }
}
fn dec_if<T: std::ops::Sub<Output = T>>(c: bool, base: T, d: T) -> T {
    if c {
        base - d
    } else {
        base
    }
}

fn spindle_use(s: &NodeStats, add: bool, inst: &Instance, cur: f64) -> f64 {
    if s.excl_storage {
        return 0.0;
    }
    let su = inst.spindle_use as f64;
    if add {
        inc_if(inst.uses_local_storage(), cur, su)
    } else {
        dec_if(inst.uses_local_storage(), cur, su)
    }
}

fn new_free_spindles(s: &NodeStats, add: bool, inst: &Instance, cur: i64) -> i64 {
    if !s.excl_storage {
        return 0;
    }
    match inst.total_spindles() {
        None => {
            if add {
                -1
            } else {
                cur
            }
        }
        Some(sp) => {
            if add {
                cur - sp
            } else {
                cur + sp
            }
        }
    }
}

fn prospective_mem(s: &NodeStats, inst: &Instance, add: bool) -> (i64, i64) {
    let new_i_mem = if add {
        inc_if(inst.uses_memory(), s.i_mem, inst.mem)
    } else {
        dec_if(inst.uses_memory(), s.i_mem, inst.mem)
    };
    let mut tmp = *s;
    tmp.i_mem = new_i_mem;
    (new_i_mem, tmp.unallocated_mem())
}

fn desired_loc_score(node: &Node, inst: &Instance) -> i64 {
    let common = inst
        .dsrd_loc_tags
        .iter()
        .filter(|t| node.loc_tags.binary_search(t).is_ok())
        .count();
    (inst.dsrd_loc_tags.len() - common) as i64
}

/// Adds a primary instance (Ganeti's `addPriEx`); `loc_score` is the
/// instance's location score in its new place.
pub fn add_pri(
    v: &mut NodeView<'_>,
    s: &mut NodeStats,
    inst: &Instance,
    loc_score: i64,
    force: bool,
) -> OpResult<()> {
    let strict = !force;
    let uses_disk = inst.uses_local_storage();
    let l_cpu = s.vcpu_ratio;
    let i_online = inst.not_offline();

    let new_mem_forth = s.f_mem_forth - inst.mem;
    let new_mp_forth = new_mem_forth as f64 / s.t_mem;
    let new_dsk_forth = dec_if(uses_disk, s.f_dsk_forth, inst.dsk);
    let new_free_sp_forth = new_free_spindles(s, true, inst, s.f_spindles_forth);
    let new_inst_sp_forth = spindle_use(s, true, inst, s.inst_spindles_forth);
    let new_ucpu_forth = inc_if(i_online, s.u_cpu_forth, inst.vcpus);
    let new_pcpu_forth = new_ucpu_forth as f64 / s.t_cpu;
    let new_dp_forth = s.new_pdsk(new_free_sp_forth, new_dsk_forth);
    let new_load_forth = s.util_load_forth.plus(inst.util);

    let forth_violation = || -> OpResult<()> {
        if new_mem_forth <= 0 {
            Err(FailMode::Mem)
        } else if uses_disk && (new_dsk_forth <= 0 || new_dsk_forth < s.lo_dsk) {
            Err(FailMode::Disk)
        } else if uses_disk && s.excl_storage && new_free_sp_forth < 0 {
            Err(FailMode::Spindles)
        } else if uses_disk && new_inst_sp_forth > s.hi_spindles {
            Err(FailMode::Disk)
        } else if l_cpu >= 0.0 && l_cpu < new_pcpu_forth {
            Err(FailMode::Cpu)
        } else {
            Ok(())
        }
    };

    if inst.forthcoming {
        if strict {
            forth_violation()?;
        }
    } else {
        let (new_i_mem, new_free_mem) = prospective_mem(s, inst, true);
        let new_failn1 = new_free_mem <= s.r_mem;
        let new_dsk = dec_if(uses_disk, s.f_dsk, inst.dsk);
        let new_free_sp = new_free_spindles(s, true, inst, s.f_spindles);
        let new_inst_sp = spindle_use(s, true, inst, s.inst_spindles);
        let new_ucpu = inc_if(i_online, s.u_cpu, inst.vcpus);
        let new_pcpu = new_ucpu as f64 / s.t_cpu;
        if new_free_mem <= 0 {
            return Err(FailMode::Mem);
        }
        if uses_disk && new_dsk <= 0 {
            return Err(FailMode::Disk);
        }
        if strict && uses_disk && new_dsk < s.lo_dsk {
            return Err(FailMode::Disk);
        }
        if uses_disk && s.excl_storage && new_free_sp < 0 {
            return Err(FailMode::Spindles);
        }
        if strict && uses_disk && new_inst_sp > s.hi_spindles {
            return Err(FailMode::Disk);
        }
        if strict && new_failn1 && !s.fail_n1 {
            return Err(FailMode::Mem);
        }
        if strict && l_cpu >= 0.0 && l_cpu < new_pcpu {
            return Err(FailMode::Cpu);
        }
        if strict && v.rejects(&inst.excl_tags) {
            return Err(FailMode::Tags);
        }
        if strict {
            forth_violation()?;
        }
        s.n_pri += 1;
        s.i_mem = new_i_mem;
        s.f_dsk = new_dsk;
        s.fail_n1 = new_failn1;
        s.p_mem = new_free_mem as f64 / s.t_mem;
        s.p_dsk = s.new_pdsk(new_free_sp, new_dsk);
        s.u_cpu = new_ucpu;
        s.p_cpu = new_pcpu;
        s.util_load = s.util_load.plus(inst.util);
        s.inst_spindles = new_inst_sp;
        s.f_spindles = new_free_sp;
        s.location_score += loc_score + desired_loc_score(v.node, inst);
    }
    s.conflicts += v.add_tags(&inst.excl_tags);
    s.f_mem_forth = new_mem_forth;
    s.f_dsk_forth = new_dsk_forth;
    s.p_mem_forth = new_mp_forth;
    s.p_dsk_forth = new_dp_forth;
    s.u_cpu_forth = new_ucpu_forth;
    s.p_cpu_forth = new_pcpu_forth;
    s.util_load_forth = new_load_forth;
    s.inst_spindles_forth = new_inst_sp_forth;
    s.f_spindles_forth = new_free_sp_forth;
    Ok(())
}

/// Removes a primary instance (Ganeti's `removePri`).
pub fn remove_pri(v: &mut NodeView<'_>, s: &mut NodeStats, inst: &Instance, loc_score: i64) {
    let uses_disk = inst.uses_local_storage();
    let i_online = inst.not_offline();
    if !inst.forthcoming {
        let (new_i_mem, new_free_mem) = prospective_mem(s, inst, false);
        let new_dsk = inc_if(uses_disk, s.f_dsk, inst.dsk);
        let new_free_sp = new_free_spindles(s, false, inst, s.f_spindles);
        let new_inst_sp = spindle_use(s, false, inst, s.inst_spindles);
        s.n_pri = s.n_pri.saturating_sub(1);
        s.i_mem = new_i_mem;
        s.f_dsk = new_dsk;
        s.fail_n1 = new_free_mem <= s.r_mem;
        s.p_mem = new_free_mem as f64 / s.t_mem;
        s.p_dsk = s.new_pdsk(new_free_sp, new_dsk);
        s.u_cpu = dec_if(i_online, s.u_cpu, inst.vcpus);
        s.p_cpu = s.u_cpu as f64 / s.t_cpu;
        s.util_load = s.util_load.minus(inst.util);
        s.inst_spindles = new_inst_sp;
        s.f_spindles = new_free_sp;
        s.location_score -= loc_score + desired_loc_score(v.node, inst);
    }
    s.conflicts += v.del_tags(&inst.excl_tags);
    let new_mem_forth = s.f_mem_forth + inst.mem;
    let new_dsk_forth = inc_if(uses_disk, s.f_dsk_forth, inst.dsk);
    let new_free_sp_forth = new_free_spindles(s, false, inst, s.f_spindles_forth);
    s.inst_spindles_forth = spindle_use(s, false, inst, s.inst_spindles_forth);
    s.f_mem_forth = new_mem_forth;
    s.f_dsk_forth = new_dsk_forth;
    s.p_mem_forth = new_mem_forth as f64 / s.t_mem;
    s.p_dsk_forth = s.new_pdsk(new_free_sp_forth, new_dsk_forth);
    s.f_spindles_forth = new_free_sp_forth;
    s.u_cpu_forth = dec_if(i_online, s.u_cpu_forth, inst.vcpus);
    s.p_cpu_forth = s.u_cpu_forth as f64 / s.t_cpu;
    s.util_load_forth = s.util_load_forth.minus(inst.util);
}

/// Removes a secondary instance (Ganeti's `removeSec`).
pub fn remove_sec(v: &NodeView<'_>, s: &mut NodeStats, inst: &Instance) {
    let uses_disk = inst.uses_local_storage();
    if !inst.forthcoming {
        let new_dsk = inc_if(uses_disk, s.f_dsk, inst.dsk);
        let new_free_sp = new_free_spindles(s, false, inst, s.f_spindles);
        let new_inst_sp = spindle_use(s, false, inst, s.inst_spindles);
        let pnode = inst.pnode;
        let old_peem = v.node.peers.get(&pnode).copied().unwrap_or(0);
        let new_peem = dec_if(inst.uses_sec_mem(), old_peem, inst.mem);
        let new_rmem = if old_peem < s.r_mem {
            s.r_mem
        } else {
            let others = v
                .node
                .peers
                .iter()
                .filter(|(k, _)| **k != pnode)
                .map(|(_, m)| *m)
                .max()
                .unwrap_or(0);
            if new_peem > 0 {
                others.max(new_peem)
            } else {
                others
            }
        };
        s.n_sec = s.n_sec.saturating_sub(1);
        s.f_dsk = new_dsk;
        s.r_mem = new_rmem;
        s.p_rem = new_rmem as f64 / s.t_mem;
        s.fail_n1 = s.unallocated_mem() <= new_rmem;
        s.p_dsk = s.new_pdsk(new_free_sp, new_dsk);
        s.util_load.dsk -= inst.util.dsk;
        s.inst_spindles = new_inst_sp;
        s.f_spindles = new_free_sp;
    }
    let new_dsk_forth = inc_if(uses_disk, s.f_dsk_forth, inst.dsk);
    let new_free_sp_forth = new_free_spindles(s, false, inst, s.f_spindles_forth);
    s.inst_spindles_forth = spindle_use(s, false, inst, s.inst_spindles_forth);
    s.f_dsk_forth = new_dsk_forth;
    s.p_dsk_forth = s.new_pdsk(new_free_sp_forth, new_dsk_forth);
    s.util_load_forth.dsk -= inst.util.dsk;
    s.f_spindles_forth = new_free_sp_forth;
}

/// Adds a secondary instance whose primary is `pdx` (Ganeti's
/// `addSecExEx`).
pub fn add_sec(
    v: &NodeView<'_>,
    s: &mut NodeStats,
    inst: &Instance,
    pdx: usize,
    force: bool,
    ignore_disks: bool,
) -> OpResult<()> {
    let strict = !force;
    let sec_needed_mem = if inst.uses_sec_mem() { inst.mem } else { 0 };
    let new_peem = v.node.peers.get(&pdx).copied().unwrap_or(0) + sec_needed_mem;
    let old_mem_forth = s.f_mem_forth;
    let new_dsk_forth = s.f_dsk_forth - inst.dsk;
    let new_free_sp_forth = new_free_spindles(s, true, inst, s.f_spindles_forth);
    let new_inst_sp_forth = spindle_use(s, true, inst, s.inst_spindles_forth);
    let new_dp_forth = s.new_pdsk(new_free_sp_forth, new_dsk_forth);
    let forth_violation = || -> OpResult<()> {
        if !inst.has_secondary() || new_dsk_forth <= 0 || new_dsk_forth < s.lo_dsk {
            Err(FailMode::Disk)
        } else if s.excl_storage && new_free_sp_forth < 0 {
            Err(FailMode::Spindles)
        } else if new_inst_sp_forth > s.hi_spindles {
            Err(FailMode::Disk)
        } else if sec_needed_mem >= old_mem_forth {
            Err(FailMode::Mem)
        } else {
            Ok(())
        }
    };
    if inst.forthcoming {
        if strict {
            forth_violation()?;
        }
    } else {
        let old_mem = s.unallocated_mem();
        let new_dsk = s.f_dsk - inst.dsk;
        let new_free_sp = new_free_spindles(s, true, inst, s.f_spindles);
        let new_inst_sp = spindle_use(s, true, inst, s.inst_spindles);
        let new_rmem = s.r_mem.max(new_peem);
        let new_failn1 = old_mem <= new_rmem;
        if !inst.has_secondary() {
            return Err(FailMode::Disk);
        }
        if !ignore_disks && new_dsk <= 0 {
            return Err(FailMode::Disk);
        }
        if strict && new_dsk < s.lo_dsk {
            return Err(FailMode::Disk);
        }
        if s.excl_storage && new_free_sp < 0 {
            return Err(FailMode::Spindles);
        }
        if strict && new_inst_sp > s.hi_spindles {
            return Err(FailMode::Disk);
        }
        if strict && sec_needed_mem >= old_mem {
            return Err(FailMode::Mem);
        }
        if strict && new_failn1 && !s.fail_n1 {
            return Err(FailMode::Mem);
        }
        if strict {
            forth_violation()?;
        }
        s.n_sec += 1;
        s.f_dsk = new_dsk;
        s.fail_n1 = new_failn1;
        s.r_mem = new_rmem;
        s.p_dsk = s.new_pdsk(new_free_sp, new_dsk);
        s.p_rem = new_rmem as f64 / s.t_mem;
        s.util_load.dsk += inst.util.dsk;
        s.inst_spindles = new_inst_sp;
        s.f_spindles = new_free_sp;
    }
    s.f_dsk_forth = new_dsk_forth;
    s.p_dsk_forth = new_dp_forth;
    s.util_load_forth.dsk += inst.util.dsk;
    s.inst_spindles_forth = new_inst_sp_forth;
    s.f_spindles_forth = new_free_sp_forth;
    Ok(())
}

/// Records a new primary instance in the node's lists and maps (the stats
/// are updated by [`add_pri`]).
pub fn commit_add_pri(node: &mut Node, idx: usize, inst: &Instance) {
    if !inst.forthcoming {
        node.plist.push(idx);
        for &t in &inst.excl_tags {
            for &l in &node.loc_tags {
                *node.inst_map.entry((l, t)).or_insert(0) += 1;
            }
        }
    }
    node.plist_forth.push(idx);
    for &t in &inst.excl_tags {
        *node.ptags.entry(t).or_insert(0) += 1;
    }
}

pub fn commit_remove_pri(node: &mut Node, idx: usize, inst: &Instance) {
    if !inst.forthcoming {
        if let Some(p) = node.plist.iter().position(|&i| i == idx) {
            node.plist.remove(p);
        }
        for &t in &inst.excl_tags {
            for &l in &node.loc_tags {
                dec_map(&mut node.inst_map, (l, t));
            }
        }
    }
    if let Some(p) = node.plist_forth.iter().position(|&i| i == idx) {
        node.plist_forth.remove(p);
    }
    for &t in &inst.excl_tags {
        dec_map(&mut node.ptags, t);
    }
}

pub fn commit_add_sec(node: &mut Node, idx: usize, inst: &Instance, pdx: usize) {
    if !inst.forthcoming {
        node.slist.push(idx);
        let need = if inst.uses_sec_mem() { inst.mem } else { 0 };
        *node.peers.entry(pdx).or_insert(0) += need;
    }
    node.slist_forth.push(idx);
}

pub fn commit_remove_sec(node: &mut Node, idx: usize, inst: &Instance) {
    if !inst.forthcoming {
        if let Some(p) = node.slist.iter().position(|&i| i == idx) {
            node.slist.remove(p);
        }
        let pnode = inst.pnode;
        let old = node.peers.get(&pnode).copied().unwrap_or(0);
        let new = dec_if(inst.uses_sec_mem(), old, inst.mem);
        if new > 0 {
            node.peers.insert(pnode, new);
        } else {
            node.peers.remove(&pnode);
        }
    }
    if let Some(p) = node.slist_forth.iter().position(|&i| i == idx) {
        node.slist_forth.remove(p);
    }
}

fn dec_map<K: std::hash::Hash + Eq>(m: &mut HashMap<K, u32>, k: K) {
    if let Some(v) = m.get_mut(&k) {
        if *v > 1 {
            *v -= 1;
        } else {
            m.remove(&k);
        }
    }
}

/// Whether an instance may migrate from `src` to `dst` given the
/// migration tags.
pub fn check_migration(src: &Node, dst: &Node) -> OpResult<()> {
    if src
        .mig_tags
        .iter()
        .all(|t| dst.rmig_tags.binary_search(t).is_ok())
    {
        Ok(())
    } else {
        Err(FailMode::Mig)
    }
}

/// Whether the node violates its policy (Ganeti's `getPolicyHealth`).
pub fn policy_health(s: &NodeStats) -> OpResult<()> {
    if s.inst_spindles > s.hi_spindles {
        Err(FailMode::Disk)
    } else if s.p_cpu > s.vcpu_ratio {
        Err(FailMode::Cpu)
    } else {
        Ok(())
    }
}
