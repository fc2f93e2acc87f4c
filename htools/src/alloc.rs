//! Allocation of new instances and relocation/evacuation of existing ones
//! (the iallocator requests, also used by hspace).

use crate::loader::common_count;
use crate::metrics::{ClusterStats, Scratch};
use crate::model::{Cluster, Instance, Node};
use crate::moves::{apply_effect, eval_move, score_effect};
use crate::nodeops::{add_pri, add_sec, commit_add_pri, commit_add_sec, NodeView};
use crate::types::{
    DiskTemplate, FailMode, IMove, IPolicy, ISpec, MirrorType, OpResult, TemplateExt, NO_SECONDARY,
};

/// Options of the allocation algorithms.
#[derive(Debug, Clone, Default)]
pub struct AllocOptions {
    /// `--ignore-soft-errors`.
    pub ignore_soft_errors: bool,
    /// Skip the global N+1 (redundancy) check of allocations.
    pub no_capacity_checks: bool,
    /// Only allocate on these nodes (names).
    pub restrict_to_nodes: Option<Vec<String>>,
    /// Score single-node placements over all the nodes, as Ganeti does,
    /// rather than by updating running sums (slower; the two differ in the
    /// last bits, most where a deviation is near zero, which can decide
    /// between placements that tie and shows in the printed score).
    pub exact_singles: bool,
    /// `--accept-existing-errors`: the global N+1 check leaves offline
    /// nodes out (their instances are an existing error).
    pub accept_existing: bool,
    /// Groups the global N+1 check leaves out (hspace's
    /// `--independent-groups` puts the groups that fail it here).
    pub capacity_ignore_groups: Vec<usize>,
}

fn compare_spec(
    which: std::cmp::Ordering,
    inst: &Instance,
    spec: &ISpec,
    excl: bool,
) -> OpResult<()> {
    if inst.mem.cmp(&spec.mem_size) == which {
        return Err(FailMode::Mem);
    }
    if inst
        .disks
        .iter()
        .any(|d| d.size.cmp(&spec.disk_size) == which)
    {
        return Err(FailMode::Disk);
    }
    if inst.vcpus.cmp(&spec.cpu_count) == which {
        return Err(FailMode::Cpu);
    }
    if excl {
        match inst.total_spindles() {
            None => return Err(FailMode::Spindles),
            Some(s) if s.cmp(&spec.spindle_use) == which => return Err(FailMode::Spindles),
            _ => {}
        }
    } else if inst.spindle_use.cmp(&spec.spindle_use) == which {
        return Err(FailMode::Spindles);
    }
    if inst.template != DiskTemplate::Diskless
        && (inst.disks.len() as i64).cmp(&spec.disk_count) == which
    {
        return Err(FailMode::DiskCount);
    }
    Ok(())
}

/// Whether an instance fits an instance policy (Ganeti's
/// `instMatchesPolicy`).
pub fn inst_matches_policy(inst: &Instance, pol: &IPolicy, excl: bool) -> OpResult<()> {
    if !pol.minmax.is_empty() {
        // as Ganeti's right fold: the pairs are tried from the last one,
        // so when none fits the error is the first pair's
        let mut res = Err(FailMode::Internal);
        for mm in pol.minmax.iter().rev() {
            res = compare_spec(std::cmp::Ordering::Less, inst, &mm.min, excl)
                .and_then(|_| compare_spec(std::cmp::Ordering::Greater, inst, &mm.max, excl));
            if res.is_ok() {
                break;
            }
        }
        res?;
    }
    if pol.disk_templates.contains(&inst.template) {
        Ok(())
    } else {
        Err(FailMode::Disk)
    }
}

/// The result of trying to allocate one instance within a set of nodes.
#[derive(Debug, Clone, Default)]
pub struct AllocSolution {
    pub failures: Vec<FailMode>,
    pub allocs: usize,
    /// Chosen nodes (primary, then secondary) and the resulting score.
    pub best: Option<(Vec<usize>, f64)>,
}

impl AllocSolution {
    /// Ganeti's description of a solution.
    pub fn describe(&self, c: &Cluster) -> String {
        describe_solution(
            c,
            &self.failures,
            self.allocs,
            self.best
                .as_ref()
                .map(|(n, score)| (n.as_slice(), format!("{score:.8}"))),
        )
    }
}

/// Ganeti's description of an allocation attempt: the failure counts and,
/// if there is a solution, its rendered metric and nodes.
pub fn describe_solution(
    c: &Cluster,
    failures: &[FailMode],
    allocs: usize,
    best: Option<(&[usize], String)>,
) -> String {
    let mut reasons = Vec::new();
    for fm in FailMode::ALL {
        let n = failures.iter().filter(|f| **f == fm).count();
        if n > 0 {
            reasons.push(format!("{}: {n}", fm.name()));
        }
    }
    match best {
        None => format!(
            "No valid allocation solutions, failure reasons: {}",
            if failures.is_empty() {
                "unknown reasons".to_string()
            } else {
                reasons.join(", ")
            }
        ),
        Some((nodes, metric)) => format!(
            "score: {metric}, successes {allocs}, failures {} ({}) for node(s) {}",
            failures.len(),
            reasons.join(", "),
            nodes
                .iter()
                .map(|&n| c.nodes[n].name.as_str())
                .collect::<Vec<_>>()
                .join("/")
        ),
    }
}

/// Places a (new or moved) instance on nodes, updating stats and lists.
/// Returns the index of the instance.
pub fn place_instance(
    c: &mut Cluster,
    mut inst: Instance,
    p: usize,
    s: usize,
    force: bool,
) -> OpResult<usize> {
    inst.pnode = p;
    inst.snode = s;
    inst.location_score = if s == NO_SECONDARY {
        0
    } else {
        common_count(&c.nodes[p].loc_tags, &c.nodes[s].loc_tags)
    };
    let mut vp = NodeView::new(&c.nodes[p]);
    let mut sp = c.nodes[p].s;
    add_pri(&mut vp, &mut sp, &inst, inst.location_score, force)?;
    let ss = if s != NO_SECONDARY {
        let vs = NodeView::new(&c.nodes[s]);
        let mut ss = c.nodes[s].s;
        add_sec(&vs, &mut ss, &inst, p, force, false)?;
        Some(ss)
    } else {
        None
    };
    let idx = c.instances.len();
    commit_add_pri(&mut c.nodes[p], idx, &inst);
    c.nodes[p].s = sp;
    if let Some(ss) = ss {
        commit_add_sec(&mut c.nodes[s], idx, &inst, p);
        c.nodes[s].s = ss;
    }
    c.instances.push(inst);
    Ok(idx)
}

/// Evaluates placing `inst` on `p` (and `s`); returns the new score.
fn eval_alloc(
    c: &Cluster,
    st: &ClusterStats,
    inst: &Instance,
    p: usize,
    s: usize,
    force: bool,
) -> OpResult<f64> {
    let pn = &c.nodes[p];
    inst_matches_policy(inst, &pn.ipolicy, pn.s.excl_storage)?;
    let loc = if s == NO_SECONDARY {
        0
    } else {
        common_count(&pn.loc_tags, &c.nodes[s].loc_tags)
    };
    let mut vp = NodeView::new(pn);
    let mut sp = pn.s;
    add_pri(&mut vp, &mut sp, inst, loc, force)?;
    let mut sc = Scratch::new(st);
    sc.replace(&pn.s, &sp);
    if s != NO_SECONDARY {
        let sn = &c.nodes[s];
        let vs = NodeView::new(sn);
        let mut ss = sn.s;
        add_sec(&vs, &mut ss, inst, p, false, false)?;
        sc.replace(&sn.s, &ss);
    }
    sc.add_map_delta(pairs_gained(st, inst, pn));
    Ok(sc.score())
}

/// The location/exclusion pairs an instance adds on its new primary.
fn pairs_gained(st: &ClusterStats, inst: &Instance, pn: &Node) -> f64 {
    let mut d = 0.0;
    if !inst.excl_tags.is_empty() && !pn.loc_tags.is_empty() && !pn.s.offline {
        let mut seen: Vec<(u32, u32)> = Vec::new();
        for &t in &inst.excl_tags {
            for &l in &pn.loc_tags {
                let k = (l, t);
                let cnt = st.pairs.get(&k).copied().unwrap_or(0) as usize
                    + seen.iter().filter(|x| **x == k).count();
                if cnt >= 1 {
                    d += 1.0;
                }
                seen.push(k);
            }
        }
    }
    d
}

/// The score of a single-node placement computed as Ganeti's
/// `allocateOnSingle` does, over all the nodes scored (those of group
/// `only`, or all), rather than by updating running sums.
fn full_single_score(
    c: &Cluster,
    st: &ClusterStats,
    only: Option<usize>,
    inst: &Instance,
    p: usize,
    force: bool,
) -> Option<f64> {
    let pn = &c.nodes[p];
    let mut vp = NodeView::new(pn);
    let mut sp = pn.s;
    add_pri(&mut vp, &mut sp, inst, 0, force).ok()?;
    let mut placed = pn.clone();
    placed.s = sp;
    let nodes = c
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| only.is_none_or(|g| n.group == g))
        .map(|(i, n)| if i == p { &placed } else { n });
    let mut after = ClusterStats::compute(nodes);
    after.map_value += pairs_gained(st, inst, pn);
    Some(after.score())
}

/// Whether every node of the group of `p` could still fail over or
/// re-create its primaries after an allocation (a simplified form of
/// Ganeti's global N+1 check).
pub fn redundant_after(c: &Cluster, inst: &Instance, nodes: &[usize], opts: &AllocOptions) -> bool {
    redundant_after_in(c, inst, nodes, None, opts)
}

/// Whether the nodes the global N+1 check looks at can all be evacuated
/// within their group.
fn redundant(c: &Cluster, only: Option<usize>, opts: &AllocOptions) -> bool {
    (0..c.nodes.len())
        .filter(|&n| {
            let node = &c.nodes[n];
            only.is_none_or(|g| node.group == g)
                && !opts.capacity_ignore_groups.contains(&node.group)
                && !(opts.accept_existing && node.s.offline)
        })
        .all(|n| {
            let grp = c.nodes[n].group;
            let members: Vec<usize> = (0..c.nodes.len())
                .filter(|&m| c.nodes[m].group == grp)
                .collect();
            can_evacuate(c, n, &members)
        })
}

/// Whether group `g` passes the global N+1 check as it is (Ganeti's
/// `redundantGrp`).
pub fn redundant_group(c: &Cluster, g: usize, opts: &AllocOptions) -> bool {
    redundant(c, Some(g), opts)
}

/// As `redundant_after`, checking only the nodes of group `only` if given
/// (Ganeti checks the group alone when a request names its group).
fn redundant_after_in(
    c: &Cluster,
    inst: &Instance,
    nodes: &[usize],
    only: Option<usize>,
    opts: &AllocOptions,
) -> bool {
    let mut c2 = c.clone();
    if place_instance(
        &mut c2,
        inst.clone(),
        nodes[0],
        nodes.get(1).copied().unwrap_or(NO_SECONDARY),
        true,
    )
    .is_err()
    {
        return false;
    }
    redundant(&c2, only, opts)
}

pub fn can_evacuate(c: &Cluster, n: usize, members: &[usize]) -> bool {
    let mut c2 = c.clone();
    let prims = c2.nodes[n].plist.clone();
    let mut others = Vec::new();
    for i in prims {
        if c2.instances[i].template == DiskTemplate::Drbd {
            match eval_move(&c2, i, IMove::Failover, true) {
                Ok(eff) => apply_effect(&mut c2, i, &eff),
                Err(_) => return false,
            }
        } else {
            others.push(i);
        }
    }
    let escape: Vec<usize> = members.iter().copied().filter(|&m| m != n).collect();
    let (mut shared, mut local): (Vec<usize>, Vec<usize>) = others
        .into_iter()
        .partition(|&i| c2.instances[i].template.mirror_type() == MirrorType::External);
    shared.sort_unstable();
    for i in shared {
        let st = ClusterStats::compute(escape.iter().map(|&m| &c2.nodes[m]));
        let mut best: Option<(f64, crate::moves::MoveEffect)> = None;
        for &t in &escape {
            if let Ok(eff) = eval_move(&c2, i, IMove::FailoverToAny(t), true) {
                let sc = score_effect(&c2, &st, i, &eff);
                if best.as_ref().map(|b| sc <= b.0).unwrap_or(true) {
                    best = Some((sc, eff));
                }
            }
        }
        match best {
            Some((_, eff)) => apply_effect(&mut c2, i, &eff),
            None => return false,
        }
    }
    local.sort_by_key(|&i| std::cmp::Reverse(c2.instances[i].mem));
    for i in local {
        let inst = c2.instances[i].clone();
        let st = ClusterStats::compute(c2.nodes.iter());
        let mut best: Option<(f64, usize)> = None;
        for &t in &escape {
            let pn = &c2.nodes[t];
            if inst_matches_policy(&inst, &pn.ipolicy, pn.s.excl_storage).is_err() {
                continue;
            }
            let mut vp = NodeView::new(pn);
            let mut sp = pn.s;
            if add_pri(&mut vp, &mut sp, &inst, 0, true).is_ok() {
                let mut sc = Scratch::new(&st);
                sc.replace(&pn.s, &sp);
                let v = sc.score();
                if best.map(|b| v <= b.0).unwrap_or(true) {
                    best = Some((v, t));
                }
            }
        }
        match best {
            Some((_, t)) => {
                if place_instance(&mut c2, inst, t, NO_SECONDARY, true).is_err() {
                    return false;
                }
            }
            None => return false,
        }
    }
    true
}

/// The (primary, secondary) placements of a `count`-node instance on
/// `nodes`; secondaries are in the primary's group.
fn candidates(c: &Cluster, nodes: &[usize], count: usize) -> Vec<(usize, usize)> {
    let mut cands = Vec::new();
    if count == 1 {
        cands.extend(nodes.iter().map(|&p| (p, NO_SECONDARY)));
    } else {
        for &p in nodes {
            for &s in nodes {
                if s != p && c.nodes[s].group == c.nodes[p].group {
                    cands.push((p, s));
                }
            }
        }
    }
    cands
}

/// Tries all placements of `inst` on `nodes` (Ganeti's `tryAlloc`):
/// `count` 1 for single-node templates, 2 for DRBD. Scores are those of
/// the whole cluster, as hspace computes them.
pub fn try_alloc(
    c: &Cluster,
    nodes: &[usize],
    inst: &Instance,
    count: usize,
    opts: &AllocOptions,
) -> AllocSolution {
    try_alloc_on(c, &candidates(c, nodes, count), inst, opts)
}

/// As `try_alloc` on `nodes` of group `g`, with the scores of that group
/// alone, as Ganeti's `findAllocation` computes them for a request that
/// names its group.
pub fn try_alloc_in_group(
    c: &Cluster,
    g: usize,
    nodes: &[usize],
    inst: &Instance,
    count: usize,
    opts: &AllocOptions,
) -> AllocSolution {
    let st = group_stats(c, g);
    score_candidates(c, &st, Some(g), &candidates(c, nodes, count), inst, opts)
}

/// Scores the given (primary, secondary) placements and picks the best one
/// that passes the global N+1 check.
pub fn try_alloc_on(
    c: &Cluster,
    cands: &[(usize, usize)],
    inst: &Instance,
    opts: &AllocOptions,
) -> AllocSolution {
    let st = ClusterStats::compute(c.nodes.iter());
    score_candidates(c, &st, None, cands, inst, opts)
}

fn score_candidates(
    c: &Cluster,
    st: &ClusterStats,
    only: Option<usize>,
    cands: &[(usize, usize)],
    inst: &Instance,
    opts: &AllocOptions,
) -> AllocSolution {
    let force = opts.ignore_soft_errors;
    let mut sol = AllocSolution::default();
    // Ganeti checks N+1 lazily, best first, over all single-node
    // placements at once, but per primary node for pairs, and counts each
    // placement that fails it as FailN1.
    let mut runs: Vec<Vec<(f64, Vec<usize>)>> = Vec::new();
    let mut run_of: Option<usize> = None;
    for &(p, s) in cands {
        let key = (s != NO_SECONDARY).then_some(p);
        if runs.is_empty() || key != run_of {
            runs.push(Vec::new());
            run_of = key;
        }
        let scored = eval_alloc(c, st, inst, p, s, force).map(|v| {
            if s == NO_SECONDARY && opts.exact_singles {
                full_single_score(c, st, only, inst, p, force).unwrap_or(v)
            } else {
                v
            }
        });
        let nodes = if s == NO_SECONDARY {
            vec![p]
        } else {
            vec![p, s]
        };
        match (scored, runs.last_mut()) {
            (Ok(v), Some(run)) => run.push((v, nodes)),
            (Ok(v), None) => runs.push(vec![(v, nodes)]),
            (Err(f), _) => sol.failures.push(f),
        }
    }
    for mut good in runs {
        // best first; among equal scores Ganeti keeps the last one found
        good.reverse();
        good.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut dropped = 0;
        let mut found = None;
        for (v, ns) in good.iter() {
            if opts.no_capacity_checks || redundant_after_in(c, inst, ns, only, opts) {
                found = Some((ns.clone(), *v));
                break;
            }
            dropped += 1;
        }
        sol.allocs += good.len() - dropped;
        for _ in 0..dropped {
            sol.failures.insert(0, FailMode::N1);
        }
        // a later primary wins a tie
        if let Some(f) = found {
            if sol.best.as_ref().is_none_or(|b| f.1 <= b.1) {
                sol.best = Some(f);
            }
        }
    }
    sol
}

/// Finds a secondary for an instance that has none (Ganeti's
/// `tryAllocateSecondary`): the solution, on a copy of the cluster with the
/// instance taken off its primary and turned into DRBD.
pub fn allocate_secondary(
    c: &Cluster,
    idx: usize,
    opts: &AllocOptions,
) -> Result<AllocSolution, String> {
    let inst = c.instances[idx].clone();
    if inst.snode != NO_SECONDARY {
        return Err("Instance already has a secondary".into());
    }
    let p = inst.pnode;
    let mut c2 = c.clone();
    {
        let mut v = NodeView::new(&c.nodes[p]);
        let mut sp = c.nodes[p].s;
        crate::nodeops::remove_pri(&mut v, &mut sp, &inst, inst.location_score);
        crate::nodeops::commit_remove_pri(&mut c2.nodes[p], idx, &inst);
        c2.nodes[p].s = sp;
    }
    let mut i2 = inst.clone();
    i2.template = DiskTemplate::Drbd;
    let g = c.nodes[p].group;
    let cands: Vec<(usize, usize)> = (0..c2.nodes.len())
        .filter(|&s| s != p && c2.nodes[s].group == g)
        .map(|s| (p, s))
        .collect();
    Ok(try_alloc_on(&c2, &cands, &i2, opts))
}

/// Online nodes of group `g` that allocation may use.
pub fn alloc_nodes(c: &Cluster, g: usize, opts: &AllocOptions) -> Vec<usize> {
    (0..c.nodes.len())
        .filter(|&n| c.nodes[n].group == g && !c.nodes[n].s.offline)
        .filter(|&n| {
            opts.restrict_to_nodes
                .as_ref()
                .map(|r| r.contains(&c.nodes[n].name))
                .unwrap_or(true)
        })
        .collect()
}

pub fn has_networks(c: &Cluster, g: usize, inst: &Instance) -> bool {
    inst.nics.iter().all(|n| {
        n.network
            .as_ref()
            .map(|x| c.groups[g].networks.contains(x))
            .unwrap_or(true)
    })
}

/// Allocation across groups (Ganeti's `findBestAllocGroup`): the chosen
/// group and solution, and the log messages; or the error text.
pub fn best_group_alloc(
    c: &Cluster,
    allowed: Option<&[usize]>,
    inst: &Instance,
    count: usize,
    opts: &AllocOptions,
) -> Result<(usize, AllocSolution, Vec<String>), String> {
    let mut groups: Vec<usize> = c.nodes.iter().map(|n| n.group).collect();
    groups.sort_unstable();
    groups.dedup();
    if let Some(a) = allowed {
        groups.retain(|g| a.contains(g));
    }
    let mut msgs = Vec::new();
    let mut valid = Vec::new();
    for &g in &groups {
        if has_networks(c, g, inst) {
            valid.push(g);
        } else {
            msgs.push(format!(
                "group {} is not connected to a network required by instance {}",
                c.groups[g].name, inst.name
            ));
        }
    }
    let mut good: Vec<(usize, AllocSolution)> = Vec::new();
    for &g in &valid {
        let nodes = alloc_nodes(c, g, opts);
        let gname = &c.groups[g].name;
        let pol = c.groups[g].alloc_policy.as_str();
        if nodes.is_empty() || (count == 2 && nodes.len() < 2) {
            msgs.push(format!(
                "Group {gname}: error {}",
                if count == 1 {
                    "No online nodes"
                } else {
                    "Not enough online nodes"
                }
            ));
            continue;
        }
        // scored on the whole cluster, as Ganeti's findBestAllocGroup does
        let sol = try_alloc(c, &nodes, inst, count, opts);
        msgs.push(format!("Group {gname} ({pol}): {}", sol.describe(c)));
        if sol.best.is_some() && c.groups[g].is_allocable() {
            good.push((g, sol));
        }
    }
    good.reverse();
    good.sort_by(|a, b| {
        let ka = (
            c.groups[a.0].alloc_policy,
            a.1.best.as_ref().map(|x| x.1).unwrap_or(f64::MAX),
        );
        let kb = (
            c.groups[b.0].alloc_policy,
            b.1.best.as_ref().map(|x| x.1).unwrap_or(f64::MAX),
        );
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    match good.into_iter().next() {
        Some((g, sol)) => Ok((g, sol, msgs)),
        None => Err(if groups.is_empty() && allowed.is_some() {
            format!("no groups for evacuation: allowed groups was {allowed:?}")
        } else {
            msgs.join(", ")
        }),
    }
}

/// Evacuation mode of a node-evacuate request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvacMode {
    ChangePrimary,
    ChangeSecondary,
    ChangeAll,
}

impl EvacMode {
    pub fn parse(s: &str) -> Option<EvacMode> {
        match s {
            "primary-only" => Some(EvacMode::ChangePrimary),
            "secondary-only" => Some(EvacMode::ChangeSecondary),
            "all" => Some(EvacMode::ChangeAll),
            _ => None,
        }
    }
}

/// The outcome of evacuating or moving instances.
#[derive(Debug, Clone, Default)]
pub struct EvacSolution {
    /// (instance, group, nodes) of moved instances.
    pub moved: Vec<(usize, usize, Vec<usize>)>,
    /// (instance, reason) of instances that could not move.
    pub failed: Vec<(usize, String)>,
    /// One job (list of opcodes as JSON) per moved instance.
    pub jobs: Vec<Vec<String>>,
}

/// The opcodes of a move (Ganeti's `iMoveToJob`), named after `c`, as
/// JSON objects with Ganeti's key order.
pub fn move_to_job(c: &Cluster, idx: usize, mv: IMove) -> Vec<String> {
    let inst = &c.instances[idx];
    let name = serde_json::Value::String(inst.name.clone()).to_string();
    let node = |n: usize| serde_json::Value::String(c.nodes[n].name.clone()).to_string();
    let mig = |target: Option<usize>| {
        let tgt = target
            .map(|t| format!(",\"target_node\":{}", node(t)))
            .unwrap_or_default();
        if inst.forthcoming {
            format!(
                "{{\"OP_ID\":\"OP_INSTANCE_FAILOVER\",\"instance_name\":{name},\"shutdown_timeout\":120,\"ignore_consistency\":false{tgt},\"ignore_ipolicy\":false,\"cleanup\":false}}"
            )
        } else {
            format!(
                "{{\"OP_ID\":\"OP_INSTANCE_MIGRATE\",\"instance_name\":{name}{tgt},\"allow_runtime_changes\":false,\"ignore_ipolicy\":false,\"cleanup\":false,\"allow_failover\":true,\"ignore_hvversions\":true}}"
            )
        }
    };
    let rep = |n: usize| {
        format!(
            "{{\"OP_ID\":\"OP_INSTANCE_REPLACE_DISKS\",\"instance_name\":{name},\"early_release\":false,\"ignore_ipolicy\":false,\"mode\":\"replace_new_secondary\",\"disks\":[],\"remote_node\":{}}}",
            node(n)
        )
    };
    match mv {
        IMove::Failover => vec![mig(None)],
        IMove::FailoverToAny(n) => vec![mig(Some(n))],
        IMove::ReplacePrimary(n) => vec![mig(None), rep(n), mig(None)],
        IMove::ReplaceSecondary(n) => vec![rep(n)],
        IMove::ReplaceAndFailover(n) => vec![rep(n), mig(None)],
        IMove::FailoverAndReplace(n) => vec![mig(None), rep(n)],
    }
}

fn group_stats(c: &Cluster, g: usize) -> ClusterStats {
    ClusterStats::compute(c.nodes.iter().filter(|n| n.group == g))
}

/// Moves one instance to the best of `avail` with a single-node move
/// (replace secondary for DRBD, failover-to-any for shared storage).
fn evac_one_node(
    c: &mut Cluster,
    idx: usize,
    g: usize,
    avail: &[usize],
    force: bool,
) -> Result<Vec<String>, String> {
    let mk: fn(usize) -> IMove = match c.instances[idx].template.mirror_type() {
        MirrorType::None => return Err("Can't relocate/evacuate non-mirrored instances".into()),
        MirrorType::Internal => IMove::ReplaceSecondary,
        MirrorType::External => IMove::FailoverToAny,
    };
    let st = group_stats(c, g);
    let mut best: Option<(f64, usize, crate::moves::MoveEffect)> = None;
    let mut msg = String::new();
    for &t in avail {
        match eval_move(c, idx, mk(t), force) {
            Err(fm) => msg.push_str(&format!(" Node {} failed: {};", c.nodes[t].name, fm.name())),
            Ok(eff) => {
                let sc = score_effect(c, &st, idx, &eff);
                if best
                    .as_ref()
                    .map(|b| sc <= b.0 || b.0.is_nan())
                    .unwrap_or(true)
                {
                    best = Some((sc, t, eff));
                }
            }
        }
    }
    let Some((_, t, eff)) = best else {
        return Err(format!("Can't find any good node: {msg}"));
    };
    apply_effect(c, idx, &eff);
    Ok(move_to_job(c, idx, mk(t)))
}

/// Moves a DRBD instance to a new pair of nodes (change-all evacuation).
fn evac_drbd_all(
    c: &mut Cluster,
    idx: usize,
    g: usize,
    avail: &[usize],
    force: bool,
) -> Result<Vec<String>, String> {
    let mut best: Option<(f64, Cluster, Vec<IMove>)> = None;
    let mut last_err = String::from("no nodes available");
    for &tp in avail {
        for &ts in avail {
            if tp == ts {
                continue;
            }
            let mut c2 = c.clone();
            let mut ops = Vec::new();
            let steps: Vec<(IMove, &str)> = {
                let mut v = Vec::new();
                if c2.nodes[c2.instances[idx].pnode].s.offline {
                    v.push((IMove::Failover, "Failing over to the secondary"));
                }
                v.push((
                    IMove::ReplaceSecondary(tp),
                    "Changing secondary to new primary",
                ));
                v.push((IMove::Failover, "Failing over to new primary"));
                v.push((
                    IMove::ReplaceSecondary(ts),
                    "Changing secondary to final secondary",
                ));
                v
            };
            let mut ok = true;
            for (mv, what) in steps {
                match eval_move(&c2, idx, mv, force) {
                    Ok(eff) => {
                        apply_effect(&mut c2, idx, &eff);
                        ops.push(mv);
                    }
                    Err(fm) => {
                        last_err = format!("Allocation failed: {what}: {}", fm.name());
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                continue;
            }
            let sc = group_stats(&c2, g).score();
            if best
                .as_ref()
                .map(|b| sc <= b.0 || b.0.is_nan())
                .unwrap_or(true)
            {
                best = Some((sc, c2, ops));
            }
        }
    }
    let Some((_, c2, ops)) = best else {
        return Err(format!(
            "Can't find any good nodes for relocation: {last_err}"
        ));
    };
    *c = c2;
    Ok(ops
        .into_iter()
        .flat_map(|m| move_to_job(c, idx, m))
        .collect())
}

fn evac_instance(
    c: &mut Cluster,
    mode: EvacMode,
    idx: usize,
    g: usize,
    avail: &[usize],
    force: bool,
) -> Result<Vec<String>, String> {
    let t = c.instances[idx].template;
    match t {
        DiskTemplate::Plain | DiskTemplate::File => Err(format!(
            "Instances of type {} cannot be relocated",
            t.as_str()
        )),
        DiskTemplate::Drbd => match mode {
            EvacMode::ChangePrimary => {
                let eff =
                    eval_move(c, idx, IMove::Failover, force).map_err(|f| f.name().to_string())?;
                apply_effect(c, idx, &eff);
                Ok(move_to_job(c, idx, IMove::Failover))
            }
            EvacMode::ChangeSecondary => evac_one_node(c, idx, g, avail, force),
            EvacMode::ChangeAll => evac_drbd_all(c, idx, g, avail, force),
        },
        _ => {
            if mode == EvacMode::ChangeSecondary {
                return Err(format!(
                    "Instances with disk template '{}' can't execute change secondary",
                    t.as_str()
                ));
            }
            evac_one_node(c, idx, g, avail, force)
        }
    }
}

fn record(c: &Cluster, es: &mut EvacSolution, idx: usize, r: Result<Vec<String>, String>) {
    match r {
        Ok(job) => {
            let inst = &c.instances[idx];
            es.moved
                .push((idx, c.nodes[inst.pnode].group, inst.all_nodes()));
            es.jobs.push(job);
        }
        Err(m) => es.failed.push((idx, m)),
    }
}

/// Node evacuation (Ganeti's `tryNodeEvac`).
pub fn node_evacuate(
    c: &mut Cluster,
    mode: EvacMode,
    idxs: &[usize],
    opts: &AllocOptions,
) -> EvacSolution {
    let mut evac_nodes: Vec<usize> = Vec::new();
    for &i in idxs {
        let inst = &c.instances[i];
        let with_sec = inst.template == DiskTemplate::Drbd && inst.snode != NO_SECONDARY;
        if mode != EvacMode::ChangeSecondary {
            evac_nodes.push(inst.pnode);
        }
        if mode != EvacMode::ChangePrimary && with_sec {
            evac_nodes.push(inst.snode);
        }
    }
    let mut es = EvacSolution::default();
    for &i in idxs {
        let g = c.nodes[c.instances[i].pnode].group;
        let pdx = c.instances[i].pnode;
        let avail: Vec<usize> = (0..c.nodes.len())
            .filter(|&n| {
                c.nodes[n].group == g
                    && !c.nodes[n].s.offline
                    && n != pdx
                    && !evac_nodes.contains(&n)
            })
            .collect();
        let r = evac_instance(c, mode, i, g, &avail, opts.ignore_soft_errors);
        record(c, &mut es, i, r);
    }
    es
}

/// Moving instances to other groups (Ganeti's `tryChangeGroup`).
pub fn change_group(
    c: &mut Cluster,
    idxs: &[usize],
    targets: &[usize],
    opts: &AllocOptions,
) -> EvacSolution {
    let evac_groups: Vec<usize> = idxs
        .iter()
        .map(|&i| c.nodes[c.instances[i].pnode].group)
        .collect();
    let all: Vec<usize> = if targets.is_empty() {
        (0..c.groups.len()).collect()
    } else {
        targets.to_vec()
    };
    let target: Vec<usize> = all
        .into_iter()
        .filter(|g| !evac_groups.contains(g))
        .collect();
    let mut es = EvacSolution::default();
    for &i in idxs {
        let inst = c.instances[i].clone();
        let r = (|| {
            let count = inst.template.required_nodes();
            let (g, _, _) = best_group_alloc(c, Some(&target), &inst, count, opts)?;
            let avail: Vec<usize> = (0..c.nodes.len())
                .filter(|&n| c.nodes[n].group == g && !c.nodes[n].s.offline)
                .collect();
            evac_instance(c, EvacMode::ChangeAll, i, g, &avail, false)
        })();
        record(c, &mut es, i, r);
    }
    es
}

/// Relocation of one instance's secondary (DRBD) or primary (shared
/// storage) away from `from` (Ganeti's `processRelocate`); the new nodes.
pub fn relocate(
    c: &mut Cluster,
    idx: usize,
    count: usize,
    from: &[usize],
    opts: &AllocOptions,
) -> Result<Vec<usize>, String> {
    if count != 1 {
        return Err(format!("Exchange {count} nodes mode is not implemented"));
    }
    let inst = c.instances[idx].clone();
    let (exp, kind, mode) = match inst.template.mirror_type() {
        MirrorType::None => return Err("Can't relocate non-mirrored instances".into()),
        MirrorType::Internal => (inst.snode, "secondary", EvacMode::ChangeSecondary),
        MirrorType::External => (inst.pnode, "primary", EvacMode::ChangePrimary),
    };
    if from != [exp] {
        return Err(format!(
            "Unsupported request: excluded nodes not equal to instance's {kind}({exp} versus {from:?})"
        ));
    }
    let es = node_evacuate(c, mode, &[idx], opts);
    if let Some((_, m)) = es.failed.first() {
        return Err(m.clone());
    }
    let inst = &c.instances[idx];
    Ok(match inst.template.mirror_type() {
        MirrorType::Internal => vec![inst.snode],
        _ => vec![inst.pnode],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ISpec, MinMaxISpecs};

    fn spec(mem: i64, cpu: i64) -> ISpec {
        ISpec {
            mem_size: mem,
            cpu_count: cpu,
            ..ISpec::DEF_MIN
        }
    }

    #[test]
    fn policy_failure_is_the_first_pairs_when_no_pair_fits() {
        let pol = IPolicy {
            minmax: vec![
                // too little memory for the first pair
                MinMaxISpecs {
                    min: spec(1024, 1),
                    max: ISpec {
                        mem_size: 4096,
                        cpu_count: 8,
                        ..ISpec::DEF_MAX
                    },
                },
                // too many vcpus for the second
                MinMaxISpecs {
                    min: spec(128, 1),
                    max: ISpec {
                        mem_size: 1024,
                        cpu_count: 1,
                        ..ISpec::DEF_MAX
                    },
                },
            ],
            ..IPolicy::default()
        };
        let spec = crate::capacity::RSpec {
            cpu: 2,
            mem: 512,
            dsk: 1024,
            spn: 1,
        };
        let inst = crate::capacity::inst_from_spec(&spec, DiskTemplate::Plain, 1);
        assert_eq!(inst_matches_policy(&inst, &pol, false), Err(FailMode::Mem));
        let mut fits_second = inst.clone();
        fits_second.vcpus = 1;
        assert_eq!(inst_matches_policy(&fits_second, &pol, false), Ok(()));
    }
}
