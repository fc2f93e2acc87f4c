//! Instance moves: evaluating them on copies of node stats, and applying
//! them to the cluster.

use crate::loader::common_count;
use crate::metrics::{loc_excl_delta, ClusterStats, Scratch};
use crate::model::{Cluster, NodeStats};
use crate::nodeops::{
    add_pri, add_sec, check_migration, commit_add_pri, commit_add_sec, commit_remove_pri,
    commit_remove_sec, remove_pri, remove_sec, NodeView,
};
use crate::types::{IMove, OpResult, NO_SECONDARY};

/// The outcome of a move: the new stats of each touched node and where
/// the instance ends up.
#[derive(Debug, Clone)]
pub struct MoveEffect {
    pub nodes: Vec<(usize, NodeStats)>,
    pub new_pnode: usize,
    pub new_snode: usize,
    pub new_loc_score: i64,
}

/// Evaluates a move of instance `idx` (Ganeti's `applyMoveEx`), without
/// changing the cluster.
pub fn eval_move(c: &Cluster, idx: usize, mv: IMove, force: bool) -> OpResult<MoveEffect> {
    let inst = &c.instances[idx];
    let opdx = inst.pnode;
    let osdx = inst.snode;
    let op = &c.nodes[opdx];
    match mv {
        IMove::Failover => {
            let os = &c.nodes[osdx];
            let mut vp = NodeView::new(op);
            let mut vs = NodeView::new(os);
            let mut sp = op.s;
            let mut ss = os.s;
            remove_pri(&mut vp, &mut sp, inst, inst.location_score);
            remove_sec(&vs, &mut ss, inst);
            check_migration(op, os)?;
            add_pri(
                &mut vs,
                &mut ss,
                inst,
                inst.location_score,
                op.s.offline || force,
            )?;
            add_sec(
                &vp,
                &mut sp,
                inst,
                osdx,
                op.s.offline || force,
                op.s.offline,
            )?;
            Ok(MoveEffect {
                nodes: vec![(opdx, sp), (osdx, ss)],
                new_pnode: osdx,
                new_snode: opdx,
                new_loc_score: inst.location_score,
            })
        }
        IMove::FailoverToAny(npdx) => {
            let np = &c.nodes[npdx];
            check_migration(op, np)?;
            let mut vn = NodeView::new(np);
            let mut sn = np.s;
            add_pri(
                &mut vn,
                &mut sn,
                inst,
                inst.location_score,
                op.s.offline || force,
            )?;
            let mut vp = NodeView::new(op);
            let mut sp = op.s;
            remove_pri(&mut vp, &mut sp, inst, inst.location_score);
            Ok(MoveEffect {
                nodes: vec![(opdx, sp), (npdx, sn)],
                new_pnode: npdx,
                new_snode: osdx,
                new_loc_score: inst.location_score,
            })
        }
        IMove::ReplacePrimary(npdx) => {
            let os = &c.nodes[osdx];
            let tgt = &c.nodes[npdx];
            let mut vp = NodeView::new(op);
            let mut sp = op.s;
            remove_pri(&mut vp, &mut sp, inst, inst.location_score);
            let mut vs = NodeView::new(os);
            let mut ss = os.s;
            remove_sec(&vs, &mut ss, inst);
            let nl = common_count(&tgt.loc_tags, &os.loc_tags);
            let force_p = op.s.offline || force;
            check_migration(op, os)?;
            check_migration(os, tgt)?;
            add_pri(&mut vs, &mut ss, inst, nl, force_p)?;
            remove_pri(&mut vs, &mut ss, inst, nl);
            let mut vt = NodeView::new(tgt);
            let mut st = tgt.s;
            add_pri(&mut vt, &mut st, inst, nl, force_p)?;
            add_sec(&vs, &mut ss, inst, npdx, force_p, false)?;
            Ok(MoveEffect {
                nodes: vec![(opdx, sp), (osdx, ss), (npdx, st)],
                new_pnode: npdx,
                new_snode: osdx,
                new_loc_score: nl,
            })
        }
        IMove::ReplaceSecondary(nsdx) => {
            let os = &c.nodes[osdx];
            let tgt = &c.nodes[nsdx];
            let mut vp = NodeView::new(op);
            let mut sp = op.s;
            remove_pri(&mut vp, &mut sp, inst, inst.location_score);
            let vs = NodeView::new(os);
            let mut ss = os.s;
            remove_sec(&vs, &mut ss, inst);
            let force_s = os.s.offline || force;
            let nl = common_count(&op.loc_tags, &tgt.loc_tags);
            let vt = NodeView::new(tgt);
            let mut st = tgt.s;
            add_sec(&vt, &mut st, inst, opdx, force_s, false)?;
            add_pri(&mut vp, &mut sp, inst, nl, true)?;
            Ok(MoveEffect {
                nodes: vec![(opdx, sp), (osdx, ss), (nsdx, st)],
                new_pnode: opdx,
                new_snode: nsdx,
                new_loc_score: nl,
            })
        }
        IMove::ReplaceAndFailover(npdx) => {
            let os = &c.nodes[osdx];
            let tgt = &c.nodes[npdx];
            let mut vp = NodeView::new(op);
            let mut sp = op.s;
            remove_pri(&mut vp, &mut sp, inst, inst.location_score);
            let vs = NodeView::new(os);
            let mut ss = os.s;
            remove_sec(&vs, &mut ss, inst);
            let nl = common_count(&tgt.loc_tags, &op.loc_tags);
            let force_s = os.s.offline || force;
            check_migration(op, tgt)?;
            let mut vt = NodeView::new(tgt);
            let mut st = tgt.s;
            add_pri(&mut vt, &mut st, inst, nl, force)?;
            add_sec(&vp, &mut sp, inst, npdx, force_s, false)?;
            Ok(MoveEffect {
                nodes: vec![(npdx, st), (opdx, sp), (osdx, ss)],
                new_pnode: npdx,
                new_snode: opdx,
                new_loc_score: nl,
            })
        }
        IMove::FailoverAndReplace(nsdx) => {
            let os = &c.nodes[osdx];
            let tgt = &c.nodes[nsdx];
            let mut vp = NodeView::new(op);
            let mut sp = op.s;
            remove_pri(&mut vp, &mut sp, inst, inst.location_score);
            let mut vs = NodeView::new(os);
            let mut ss = os.s;
            remove_sec(&vs, &mut ss, inst);
            let force_p = op.s.offline || force;
            let nl = common_count(&os.loc_tags, &tgt.loc_tags);
            check_migration(op, os)?;
            add_pri(&mut vs, &mut ss, inst, nl, force_p)?;
            let vt = NodeView::new(tgt);
            let mut st = tgt.s;
            add_sec(&vt, &mut st, inst, osdx, force_p, false)?;
            Ok(MoveEffect {
                nodes: vec![(nsdx, st), (osdx, ss), (opdx, sp)],
                new_pnode: osdx,
                new_snode: nsdx,
                new_loc_score: nl,
            })
        }
    }
}

/// Scores a move's effect against the current statistics.
pub fn score_effect(c: &Cluster, st: &ClusterStats, idx: usize, eff: &MoveEffect) -> f64 {
    let mut sc = Scratch::new(st);
    for (n, new) in &eff.nodes {
        sc.replace(&c.nodes[*n].s, new);
    }
    let inst = &c.instances[idx];
    if eff.new_pnode != inst.pnode {
        sc.add_map_delta(loc_excl_delta(
            &st.pairs,
            inst,
            &c.nodes[inst.pnode],
            &c.nodes[eff.new_pnode],
        ));
    }
    sc.score()
}

/// Applies an evaluated move to the cluster.
pub fn apply_effect(c: &mut Cluster, idx: usize, eff: &MoveEffect) {
    let old = c.instances[idx].clone();
    let mut new = old.clone();
    new.pnode = eff.new_pnode;
    new.snode = eff.new_snode;
    new.location_score = eff.new_loc_score;
    // primary side
    commit_remove_pri(&mut c.nodes[old.pnode], idx, &old);
    if old.snode != NO_SECONDARY && old.has_secondary() {
        commit_remove_sec(&mut c.nodes[old.snode], idx, &old);
    }
    commit_add_pri(&mut c.nodes[new.pnode], idx, &new);
    if new.snode != NO_SECONDARY && new.has_secondary() {
        commit_add_sec(&mut c.nodes[new.snode], idx, &new, new.pnode);
    }
    for (n, s) in &eff.nodes {
        c.nodes[*n].s = *s;
    }
    c.instances[idx] = new;
}
