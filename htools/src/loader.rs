//! Turning raw backend data into a consistent cluster: tags, placement of
//! instances on nodes, N+1 reservations, memory accounting.

use crate::error::{Error, Result};
use crate::model::{Cluster, Instance, Node};
use crate::types::{DynUtil, NO_SECONDARY};

pub const EX_TAGS_PREFIX: &str = "htools:iextags:";
pub const MIGRATION_PREFIX: &str = "htools:migration:";
pub const ALLOW_MIGRATION_PREFIX: &str = "htools:allowmigration:";
pub const LOCATION_PREFIX: &str = "htools:nlocation:";
pub const DESIRED_LOCATION_PREFIX: &str = "htools:desiredlocation:";

/// Options that influence how data is merged.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// Instance utilisation data (name, load).
    pub util: Vec<(String, DynUtil)>,
    /// Extra exclusion tag prefixes (from `--exclusion-tags`).
    pub ex_tags: Vec<String>,
    pub select_instances: Vec<String>,
    pub exclude_instances: Vec<String>,
    /// `--ignore-dynu`: all instance utilisation is zero.
    pub ignore_dynu: bool,
    /// `--static-kvm-node-memory`: the node memory (MiB) of KVM nodes, in
    /// place of what the backend reports; 0 keeps the reported value.
    pub static_kvm_node_mem: i64,
}

/// The longest `.`-starting suffix shared by all names.
pub fn common_suffix(names: &[&str]) -> String {
    let Some((first, rest)) = names.split_first() else {
        return String::new();
    };
    for (i, c) in first.char_indices() {
        if c == '.' {
            let suf = &first[i..];
            if rest.iter().all(|n| n.ends_with(suf)) {
                return suf.to_string();
            }
        }
    }
    String::new()
}

/// Ganeti's name lookup: an exact match, or the unique name that starts
/// with `key.`.
pub fn lookup_name<'a>(names: &[&'a str], key: &str) -> Option<&'a str> {
    if let Some(n) = names.iter().find(|n| **n == key) {
        return Some(n);
    }
    let pre = format!("{key}.");
    let m: Vec<&&str> = names.iter().filter(|n| n.starts_with(&pre)).collect();
    if m.len() == 1 {
        Some(m[0])
    } else {
        None
    }
}

fn tags_with_prefixes(tags: &[String], prefixes: &[String]) -> Vec<String> {
    tags.iter()
        .filter(|t| prefixes.iter().any(|p| t.starts_with(p.as_str())))
        .cloned()
        .collect()
}

/// Node tags selected by cluster tags `<cprefix><p>` as `<p>:...`.
fn node_tags_by(ctags: &[String], cprefix: &str, ntags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = ctags
        .iter()
        .filter_map(|c| c.strip_prefix(cprefix))
        .flat_map(|p| {
            let pp = format!("{p}:");
            ntags
                .iter()
                .filter(move |t| t.starts_with(&pp))
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn recv_migration_tags(ctags: &[String], ntags: &[String]) -> Vec<String> {
    let migs: Vec<(String, String)> = ctags
        .iter()
        .filter_map(|c| c.strip_prefix(ALLOW_MIGRATION_PREFIX))
        .filter_map(|rest| {
            let (a, b) = rest.split_once("::")?;
            if b.contains("::") {
                None
            } else {
                Some((a.to_string(), b.to_string()))
            }
        })
        .collect();
    let mut out = Vec::new();
    for t in node_tags_by(ctags, MIGRATION_PREFIX, ntags) {
        for (a, b) in &migs {
            if *b == t {
                out.push(a.clone());
            }
        }
        out.push(t);
    }
    out.sort();
    out.dedup();
    out
}

fn intern_sorted(c: &mut Cluster, v: &[String]) -> Vec<u32> {
    let mut r: Vec<u32> = v.iter().map(|t| c.intern(t)).collect();
    r.sort_unstable();
    r.dedup();
    r
}

/// Places an instance on its nodes without checks (Ganeti's `setPri`).
fn set_pri(node: &mut Node, idx: usize, inst: &Instance) {
    let s = &mut node.s;
    if !inst.forthcoming {
        if inst.not_offline() {
            s.u_cpu += inst.vcpus;
        }
        s.n_pri += 1;
        s.p_cpu = s.u_cpu as f64 / s.t_cpu;
        s.util_load = s.util_load.plus(inst.util);
        if !s.excl_storage && inst.uses_local_storage() {
            s.inst_spindles += inst.spindle_use as f64;
        }
        let dsrd = inst
            .dsrd_loc_tags
            .iter()
            .filter(|t| node.loc_tags.binary_search(t).is_err())
            .count() as i64;
        s.location_score += inst.location_score + dsrd;
    }
    // forthcoming-tracking fields
    if inst.not_offline() {
        s.u_cpu_forth += inst.vcpus;
    }
    s.p_cpu_forth = s.u_cpu_forth as f64 / s.t_cpu;
    s.util_load_forth = s.util_load_forth.plus(inst.util);
    if !inst.uses_memory() {
        s.f_mem_forth -= inst.mem;
    }
    s.p_mem_forth = s.f_mem_forth as f64 / s.t_mem;
    if !s.excl_storage && inst.uses_local_storage() {
        s.inst_spindles_forth += inst.spindle_use as f64;
    }
    if inst.forthcoming {
        forthcoming_only(s, inst);
    }
    for &t in &inst.excl_tags {
        if node.ptags.get(&t).copied().unwrap_or(0) >= 1 {
            node.s.conflicts += 1;
        }
        // keep the count in step for duplicated tags
        *node.ptags.entry(t).or_insert(0) += 1;
    }
    for &t in &inst.excl_tags {
        if let Some(v) = node.ptags.get_mut(&t) {
            *v -= 1;
        }
    }
    crate::nodeops::commit_add_pri(node, idx, inst);
}

fn forthcoming_only(s: &mut crate::model::NodeStats, inst: &Instance) {
    if inst.uses_local_storage() {
        s.f_dsk_forth -= inst.dsk;
    }
    if s.excl_storage {
        s.f_spindles_forth = match inst.total_spindles() {
            None => -1,
            Some(x) => s.f_spindles_forth - x,
        };
    } else {
        s.f_spindles_forth = 0;
    }
    s.p_dsk_forth = s.new_pdsk(s.f_spindles_forth, s.f_dsk_forth);
}

fn set_sec(node: &mut Node, idx: usize, inst: &Instance) {
    let s = &mut node.s;
    if !inst.forthcoming {
        s.n_sec += 1;
        node.slist.push(idx);
        s.util_load.dsk += inst.util.dsk;
        if !s.excl_storage && inst.uses_local_storage() {
            s.inst_spindles += inst.spindle_use as f64;
        }
    }
    node.slist_forth.push(idx);
    s.util_load_forth.dsk += inst.util.dsk;
    if !s.excl_storage && inst.uses_local_storage() {
        s.inst_spindles_forth += inst.spindle_use as f64;
    }
    if inst.forthcoming {
        forthcoming_only(s, inst);
    }
}

fn build_peers(node: &mut Node, insts: &[Instance]) {
    let mut peers = crate::model::PeerMap::default();
    for &i in &node.slist {
        let inst = &insts[i];
        let mem = if inst.uses_sec_mem() && !inst.forthcoming {
            inst.mem
        } else {
            0
        };
        *peers.entry(inst.pnode).or_insert(0) += mem;
    }
    let rmem = peers.values().copied().max().unwrap_or(0);
    node.peers = peers;
    node.s.fail_n1 = node.s.f_mem < rmem;
    node.s.r_mem = rmem;
    node.s.p_rem = rmem as f64 / node.s.t_mem;
}

/// Gives a new instance (not yet in the cluster) its exclusion and
/// desired-location tags, as the cluster tags define them.
pub fn set_instance_tags(c: &mut Cluster, inst: &mut Instance) {
    let extags: Vec<String> = c
        .tags
        .iter()
        .filter_map(|t| t.strip_prefix(EX_TAGS_PREFIX))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let dsrd: Vec<String> = c
        .tags
        .iter()
        .filter_map(|t| t.strip_prefix(DESIRED_LOCATION_PREFIX))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let ex = tags_with_prefixes(&inst.tags, &extags);
    inst.excl_tags = ex.iter().map(|t| c.intern(t)).collect();
    let dl = tags_with_prefixes(&inst.tags, &dsrd);
    inst.dsrd_loc_tags = intern_sorted(c, &dl);
}

/// Merges raw backend data into a consistent cluster (Ganeti's
/// `mergeData` followed by `updateMissing`). Returns the warnings about
/// inconsistent data.
pub fn merge(c: &mut Cluster, opts: &MergeOptions) -> Result<Vec<String>> {
    // utilisation
    for inst in c.instances.iter_mut() {
        if opts.ignore_dynu {
            inst.util = DynUtil::ZERO;
        }
    }
    if !opts.ignore_dynu {
        for (name, u) in &opts.util {
            if let Some(i) = c.instances.iter_mut().find(|i| &i.name == name) {
                i.util = *u;
            }
        }
    }
    let mut extags: Vec<String> = opts.ex_tags.iter().map(|t| format!("{t}:")).collect();
    extags.extend(
        c.tags
            .iter()
            .filter_map(|t| t.strip_prefix(EX_TAGS_PREFIX))
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    );
    let dsrd: Vec<String> = c
        .tags
        .iter()
        .filter_map(|t| t.strip_prefix(DESIRED_LOCATION_PREFIX))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    // selected / excluded instances
    let inames: Vec<String> = c.instances.iter().map(|i| i.name.clone()).collect();
    let inames_ref: Vec<&str> = inames.iter().map(String::as_str).collect();
    let mut unknown = Vec::new();
    let mut resolve = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter_map(|k| match lookup_name(&inames_ref, k) {
                Some(n) => Some(n.to_string()),
                None => {
                    unknown.push(k.clone());
                    None
                }
            })
            .collect()
    };
    let sel = resolve(&opts.select_instances);
    let exc = resolve(&opts.exclude_instances);
    if !unknown.is_empty() {
        return Err(Error::Invalid(format!(
            "Unknown instance(s): {}",
            unknown.join(", ")
        )));
    }
    let mut all_names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
    all_names.extend(inames_ref.iter());
    let suffix = common_suffix(&all_names);
    let alias = |n: &str| -> String {
        if !suffix.is_empty() {
            if let Some(s) = n.strip_suffix(suffix.as_str()) {
                return s.to_string();
            }
        }
        n.to_string()
    };
    let ctags = c.tags.clone();
    for i in 0..c.instances.len() {
        let tags = c.instances[i].tags.clone();
        let ex = tags_with_prefixes(&tags, &extags);
        let ex_ids: Vec<u32> = ex.iter().map(|t| c.intern(t)).collect();
        let dl = tags_with_prefixes(&tags, &dsrd);
        let dl_ids = intern_sorted(c, &dl);
        let inst = &mut c.instances[i];
        inst.excl_tags = ex_ids;
        inst.dsrd_loc_tags = dl_ids;
        if exc.contains(&inst.name) || !(sel.is_empty() || sel.contains(&inst.name)) {
            inst.movable = false;
        }
        inst.alias = alias(&inst.name);
    }
    for n in 0..c.nodes.len() {
        let ntags = c.nodes[n].tags.clone();
        let loc = node_tags_by(&ctags, LOCATION_PREFIX, &ntags);
        let mig = node_tags_by(&ctags, MIGRATION_PREFIX, &ntags);
        let rmig = recv_migration_tags(&ctags, &ntags);
        let loc = intern_sorted(c, &loc);
        let mig = intern_sorted(c, &mig);
        let rmig = intern_sorted(c, &rmig);
        let node = &mut c.nodes[n];
        node.loc_tags = loc;
        node.mig_tags = mig;
        node.rmig_tags = rmig;
        node.alias = alias(&node.name);
    }
    // instance location scores
    for i in 0..c.instances.len() {
        let (p, s) = (c.instances[i].pnode, c.instances[i].snode);
        c.instances[i].location_score = if s == NO_SECONDARY {
            0
        } else {
            common_count(&c.nodes[p].loc_tags, &c.nodes[s].loc_tags)
        };
    }
    // place instances
    for i in 0..c.instances.len() {
        let inst = &c.instances[i];
        set_pri(&mut c.nodes[inst.pnode], i, inst);
        if inst.snode != NO_SECONDARY {
            set_sec(&mut c.nodes[inst.snode], i, inst);
        }
    }
    for n in 0..c.nodes.len() {
        build_peers(&mut c.nodes[n], &c.instances);
        let pol = c.groups[c.nodes[n].group].ipolicy.clone();
        c.nodes[n].set_policy(pol);
    }
    // instances split across groups are not moved
    for i in 0..c.instances.len() {
        let inst = &c.instances[i];
        if inst.snode != NO_SECONDARY && c.nodes[inst.pnode].group != c.nodes[inst.snode].group {
            c.instances[i].movable = false;
        }
    }
    Ok(update_missing(c, opts.static_kvm_node_mem))
}

pub fn common_count(a: &[u32], b: &[u32]) -> i64 {
    a.iter().filter(|t| b.binary_search(t).is_ok()).count() as i64
}

/// Computes instance memory, unaccounted memory and free-memory ratios
/// (Ganeti's `updateMissing`), with the node memory of KVM nodes set to
/// `static_kvm_mem` first if that is positive.
fn update_missing(c: &mut Cluster, static_kvm_mem: i64) -> Vec<String> {
    let mut msgs = Vec::new();
    if static_kvm_mem > 0 {
        for node in c.nodes.iter_mut().filter(|n| n.kvm) {
            node.s.n_mem = static_kvm_mem;
        }
    }
    for n in 0..c.nodes.len() {
        let imem: i64 = c.nodes[n]
            .plist
            .iter()
            .map(|&i| &c.instances[i])
            .filter(|i| i.uses_memory())
            .map(|i| i.mem)
            .sum();
        let idsk: i64 = c.nodes[n]
            .plist
            .iter()
            .chain(c.nodes[n].slist.iter())
            .map(|&i| c.instances[i].dsk)
            .sum();
        let node = &mut c.nodes[n];
        node.s.i_mem = imem;
        node.s.x_mem = node.s.missing_mem();
        node.s.p_mem = node.s.unallocated_mem() as f64 / node.s.t_mem;
        let delta_mem = node.s.x_mem;
        let delta_dsk = node.s.t_dsk.trunc() as i64 - node.s.f_dsk - idsk;
        if delta_mem > 512 || delta_dsk > 1024 {
            msgs.push(format!(
                "node {} is missing {} MB ram and {} GB disk",
                node.name,
                delta_mem,
                delta_dsk.div_euclid(1024)
            ));
        }
    }
    msgs.reverse();
    msgs
}

/// Marks nodes offline and applies `--max-cpu` / `--min-disk` (Ganeti's
/// `setNodeStatus`).
pub fn set_node_status(
    c: &mut Cluster,
    offline: &[String],
    mcpu: Option<f64>,
    mdsk: f64,
) -> Result<()> {
    let names: Vec<String> = c.nodes.iter().map(|n| n.name.clone()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut wrong = Vec::new();
    let mut off = Vec::new();
    for o in offline {
        match lookup_name(&refs, o) {
            Some(n) => off.push(n.to_string()),
            None => wrong.push(o.clone()),
        }
    }
    if !wrong.is_empty() {
        return Err(Error::Invalid(format!(
            "wrong node name(s) set as offline: {}",
            wrong.join(", ")
        )));
    }
    for n in c.nodes.iter_mut() {
        if let Some(m) = mcpu {
            n.set_mcpu(m);
        }
        n.set_mdsk(mdsk);
        if off.contains(&n.name) {
            n.s.offline = true;
        }
    }
    Ok(())
}
