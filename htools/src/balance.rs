//! The greedy balancing loop (hbal).
//!
//! Each round considers every allowed move of every movable instance,
//! scored against running statistics (only the touched nodes are updated
//! per candidate), in parallel over instances, and applies the best one if
//! it improves the score enough. Lower bounds skip the moves that cannot
//! beat a move already known; on large clusters, instances that could not
//! gain enough when last evaluated are left out for a few rounds (see
//! [`Balancer`]).

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::bounds::{boundable, fixed_secondary, BucketBounds, TargetBounds, GROUP};
use crate::loader::common_count;
use crate::metrics::{loc_excl_delta, node_values, Change, ClusterStats, Partial, N_METRICS};
use crate::model::{Cluster, NodeStats};
use crate::moves::{apply_effect, MoveEffect};
use crate::nodeops::{add_pri, add_sec, check_migration, remove_pri, remove_sec, NodeView};
use crate::output::Placement;
use crate::types::{IMove, MirrorType, TemplateExt, NO_SECONDARY};

/// The algorithm options of hbal.
#[derive(Debug, Clone)]
pub struct BalanceOptions {
    /// `-l`: maximum number of moves (negative: unlimited).
    pub max_length: i64,
    /// `-e`: stop when the score is at most this above the optimum.
    pub min_score: f64,
    /// `-g`: minimum gain per move, once the score is below the limit.
    pub min_gain: f64,
    /// `--min-gain-limit`.
    pub min_gain_limit: f64,
    /// `--no-disk-moves` clears this.
    pub disk_moves: bool,
    /// `--no-instance-moves` clears this.
    pub instance_moves: bool,
    /// `-E`: only move instances on offline nodes.
    pub evac_mode: bool,
    /// `--restricted-migration`.
    pub restricted_migration: bool,
    /// `--ignore-soft-errors`.
    pub ignore_soft_errors: bool,
    /// Evaluate every instance in every round, as Ganeti does, even on
    /// large clusters (where by default an instance whose nodes did not
    /// change, and whose moves could not gain as much as a known move the
    /// last time it was evaluated, is left out for a few rounds).
    pub exhaustive: bool,
    /// Skip candidate moves that lower bounds rule out (the plan is the
    /// same either way; this only saves time).
    pub prune: bool,
}

impl Default for BalanceOptions {
    fn default() -> Self {
        BalanceOptions {
            max_length: -1,
            min_score: 1e-9,
            min_gain: 1e-2,
            min_gain_limit: 1e-1,
            disk_moves: true,
            instance_moves: true,
            evac_mode: false,
            restricted_migration: false,
            ignore_soft_errors: false,
            exhaustive: false,
            prune: true,
        }
    }
}

/// The moves Ganeti considers for one instance and target node.
pub fn possible_moves(
    mir: MirrorType,
    use_secondary: bool,
    inst_moves: bool,
    disk_moves: bool,
    restricted: bool,
    primary_drained: bool,
    tdx: usize,
) -> Vec<IMove> {
    match mir {
        MirrorType::None => vec![],
        MirrorType::External => {
            if inst_moves {
                vec![IMove::FailoverToAny(tdx)]
            } else {
                vec![]
            }
        }
        MirrorType::Internal => {
            if !disk_moves {
                vec![]
            } else if !inst_moves || (restricted && !primary_drained) {
                vec![IMove::ReplaceSecondary(tdx)]
            } else if use_secondary {
                if !restricted {
                    vec![
                        IMove::ReplaceSecondary(tdx),
                        IMove::ReplaceAndFailover(tdx),
                        IMove::ReplacePrimary(tdx),
                        IMove::FailoverAndReplace(tdx),
                    ]
                } else {
                    vec![
                        IMove::ReplaceSecondary(tdx),
                        IMove::ReplaceAndFailover(tdx),
                        IMove::FailoverAndReplace(tdx),
                    ]
                }
            } else {
                vec![IMove::ReplaceSecondary(tdx), IMove::ReplaceAndFailover(tdx)]
            }
        }
    }
}

/// Tolerance under which two scores count as equal (so that rounding
/// noise never makes a move look like an improvement).
fn eps(x: f64) -> f64 {
    1e-12 * x.abs().max(1.0)
}

struct Candidate {
    score: f64,
    inst: usize,
    mv: IMove,
    eff: MoveEffect,
}

/// The entry of a cache for key `k`, computed by `make` the first time.
fn cached<T>(
    v: &mut Vec<Option<Option<T>>>,
    k: usize,
    make: impl FnOnce() -> Option<T>,
) -> Option<&T> {
    if v.len() <= k {
        v.resize_with(k + 1, || None);
    }
    v[k].get_or_insert_with(make).as_ref()
}

/// Per-round data shared by all candidate evaluations.
struct Round<'a> {
    c: &'a Cluster,
    st: &'a ClusterStats,
    /// The running sums of the round's starting point.
    base: Partial,
    opts: &'a BalanceOptions,
    is_online: &'a [bool],
    /// Metric values of each node at the start of the round.
    vals: &'a [[f64; N_METRICS]],
    ini: f64,
    /// Bounds of the changes on target nodes, when they can be had.
    bounds: Option<BucketBounds>,
    /// The best score a move is known to reach so far this round (lowered
    /// as instances are evaluated).
    known: Threshold,
}

/// Instances with fewer target nodes are evaluated without bounds.
const PRUNE_MIN_TARGETS: usize = 32;

/// Whether a lower bound of the scores of a kind of move rules it out
/// against the best score so far (with room for rounding).
fn ruled_out(lb: Option<f64>, cur: f64) -> bool {
    matches!(lb, Some(lb) if lb > cur + 1e-9 * cur.abs().max(1.0))
}

/// A candidate: score, move, touched nodes (and how many), new primary,
/// new secondary, new location score.
type Found = (
    f64,
    IMove,
    [(usize, NodeStats); 3],
    usize,
    usize,
    usize,
    i64,
);

/// Keeps the best candidate seen so far for one instance.
struct Best {
    cur: f64,
    found: Option<Found>,
    /// The least score offered.
    least: f64,
}

impl Best {
    /// Offers a candidate of score `sc`; `make` describes it (called only
    /// when the candidate is the best so far, so that losing candidates
    /// cost no copies of node stats).
    #[inline(always)]
    fn offer(&mut self, sc: f64, known: &Threshold, make: impl FnOnce() -> Found) {
        self.least = self.least.min(sc);
        if sc < self.cur - eps(self.cur) {
            self.cur = sc;
            self.found = Some(make());
            known.lower(sc);
        }
    }

    /// The best candidate, and a lower bound of the scores of all the
    /// instance's moves: the least offered and `ruled`, the least bound of
    /// those never offered.
    fn into_candidate(self, idx: usize, ruled: f64) -> (Option<Candidate>, f64) {
        let lb = self.least.min(ruled);
        let Some((score, mv, nodes, n, p, s, loc)) = self.found else {
            return (None, lb);
        };
        let cand = Candidate {
            score,
            inst: idx,
            mv,
            eff: MoveEffect {
                nodes: nodes[..n].to_vec(),
                new_pnode: p,
                new_snode: s,
                new_loc_score: loc,
            },
        };
        (Some(cand), lb)
    }
}

/// The best move of one instance, if any beats the round's initial score.
///
/// The instance's removal from its current nodes is computed once; each
/// target node then only needs the additions, and the score only the
/// replacement of the nodes whose state depends on the target.
///
/// Also returns a lower bound of the score of every move of the instance
/// (-inf when it cannot be bounded).
fn best_for_instance(r: &Round<'_>, idx: usize, targets: &[usize]) -> (Option<Candidate>, f64) {
    let c = r.c;
    let inst = &c.instances[idx];
    let force = r.opts.ignore_soft_errors;
    let opdx = inst.pnode;
    let osdx = inst.snode;
    let mir = inst.template.mirror_type();
    if mir == MirrorType::Internal && osdx == NO_SECONDARY {
        return (None, f64::NEG_INFINITY);
    }
    let use_secondary = osdx != NO_SECONDARY
        && osdx < r.is_online.len()
        && r.is_online[osdx]
        && r.opts.instance_moves;
    let op = &c.nodes[opdx];
    let base = &r.base;
    let vals = r.vals;
    let mut best = Best {
        cur: r.ini,
        found: None,
        least: f64::INFINITY,
    };
    let map_delta = |np: usize| -> f64 {
        if np == opdx {
            0.0
        } else {
            loc_excl_delta(&r.st.pairs, inst, op, &c.nodes[np])
        }
    };
    let dummy = op.s;
    let drained = op.s.offline;
    let targets = targets
        .iter()
        .copied()
        .filter(|&t| t != opdx && t != osdx && r.is_online[t]);

    if mir == MirrorType::External {
        if !r.opts.instance_moves {
            return (None, f64::NEG_INFINITY);
        }
        let mut vp = NodeView::new(op);
        let mut sp = op.s;
        remove_pri(&mut vp, &mut sp, inst, inst.location_score);
        let mut sc0 = base.clone();
        sc0.apply(&vals[opdx], &sp);
        let f = op.s.offline || force;
        for t in targets {
            let tn = &c.nodes[t];
            if check_migration(op, tn).is_err() {
                continue;
            }
            let mut vt = NodeView::new(tn);
            let mut st = tn.s;
            if add_pri(&mut vt, &mut st, inst, inst.location_score, f).is_err() {
                continue;
            }
            let sc = sc0.score_with(&[(&vals[t], &st)], map_delta(t));
            best.offer(sc, &r.known, || {
                (
                    sc,
                    IMove::FailoverToAny(t),
                    [(opdx, sp), (t, st), (usize::MAX, dummy)],
                    2,
                    t,
                    osdx,
                    inst.location_score,
                )
            });
        }
        return best.into_candidate(idx, f64::INFINITY);
    }
    if mir != MirrorType::Internal {
        return (None, f64::NEG_INFINITY);
    }
    let os = &c.nodes[osdx];
    // removal from the current nodes, shared by all moves
    let mut vp_r = NodeView::new(op);
    let mut sp_r = op.s;
    remove_pri(&mut vp_r, &mut sp_r, inst, inst.location_score);
    let vs_r = NodeView::new(os);
    let mut ss_r = os.s;
    remove_sec(&vs_r, &mut ss_r, inst);
    let mig_ps = check_migration(op, os).is_ok();

    // plain failover
    if use_secondary && mig_ps {
        let mut vs = NodeView::new(os);
        let mut ss = ss_r;
        let mut sp = sp_r;
        let vp = NodeView {
            node: op,
            tags: vp_r.tags.clone(),
        };
        if add_pri(
            &mut vs,
            &mut ss,
            inst,
            inst.location_score,
            op.s.offline || force,
        )
        .is_ok()
            && add_sec(
                &vp,
                &mut sp,
                inst,
                osdx,
                op.s.offline || force,
                op.s.offline,
            )
            .is_ok()
        {
            let sc = base.score_with(&[(&vals[opdx], &sp), (&vals[osdx], &ss)], map_delta(osdx));
            best.offer(sc, &r.known, || {
                (
                    sc,
                    IMove::Failover,
                    [(opdx, sp), (osdx, ss), (usize::MAX, dummy)],
                    2,
                    osdx,
                    opdx,
                    inst.location_score,
                )
            });
        }
    }
    let kinds = possible_moves(
        mir,
        use_secondary,
        r.opts.instance_moves,
        r.opts.disk_moves,
        r.opts.restricted_migration,
        drained,
        0,
    );
    let want = |m: fn(usize) -> IMove| {
        kinds
            .iter()
            .any(|k| std::mem::discriminant(k) == std::mem::discriminant(&m(0)))
    };
    let mut do_rs = want(IMove::ReplaceSecondary);
    let mut do_raf = want(IMove::ReplaceAndFailover);
    let mut do_rp = want(IMove::ReplacePrimary);
    let mut do_far = want(IMove::FailoverAndReplace);
    let force_s = os.s.offline || force;
    let force_p = op.s.offline || force;
    // sums with the secondary's removal applied (shared by r:, r: f)
    let mut sc_s = base.clone();
    sc_s.apply(&vals[osdx], &ss_r);
    // caches keyed by the instance's new location score
    let mut rs_cache: Vec<Option<Option<(NodeStats, Partial)>>> = Vec::new();
    let mut far_cache: Vec<Option<Option<(NodeStats, Partial)>>> = Vec::new();
    let mut rp_cache: Vec<Option<Option<NodeStats>>> = Vec::new();
    // sums with the primary's and the secondary's removal applied (r: p)
    let mut sc_ps: Option<Partial> = None;
    let ps_sums = || {
        let mut sc = base.clone();
        sc.apply(&vals[opdx], &sp_r);
        sc
    };
    // what each cache holds for a new location score `nl`: r: keeps the
    // primary (re-added with `nl`) and its sums, f r: the secondary turned
    // primary and its sums, r: p the secondary after a failover and back
    let rs_entry = |nl: i64| {
        let mut vp = NodeView {
            node: op,
            tags: vp_r.tags.clone(),
        };
        let mut sp = sp_r;
        add_pri(&mut vp, &mut sp, inst, nl, true).ok()?;
        let mut sc = sc_s.clone();
        sc.apply(&vals[opdx], &sp);
        Some((sp, sc))
    };
    let far_entry = |nl: i64| {
        let mut vs = NodeView::new(os);
        let mut ss = ss_r;
        add_pri(&mut vs, &mut ss, inst, nl, force_p).ok()?;
        let mut sc = ps_sums();
        sc.apply(&vals[osdx], &ss);
        sc.add_map_delta(map_delta(osdx));
        Some((ss, sc))
    };
    let rp_entry = |nl: i64| {
        let mut vs = NodeView::new(os);
        let mut ss = ss_r;
        add_pri(&mut vs, &mut ss, inst, nl, force_p).ok()?;
        remove_pri(&mut vs, &mut ss, inst, nl);
        Some(ss)
    };
    // Skip, for each bucket of similar target nodes, the kinds of move that
    // no target in it can make better than the best so far. The caches are
    // filled as the loop below would fill them.
    let prunable = inst.excl_tags.is_empty()
        && inst.dsrd_loc_tags.is_empty()
        && !inst.forthcoming
        && !op.s.offline
        && !os.s.offline
        && boundable(&op.s)
        && boundable(&os.s)
        && targets.clone().nth(PRUNE_MIN_TARGETS).is_some();
    // per bucket: whether each kind (r:, f r:, r: f, r: p) may win there
    let mut allowed: Vec<[bool; 4]> = Vec::new();
    // the least of the bounds of the moves ruled out
    let mut lb = f64::INFINITY;
    if let (Some(pb), true) = (&r.bounds, prunable) {
        let cur = best.cur.min(r.known.get());
        // the location score 0 entries, as the loop below would make them
        let rs_sc = if do_rs {
            let sc = cached(&mut rs_cache, 0, || rs_entry(0)).map(|(_, sc)| sc.clone());
            do_rs = sc.is_some();
            sc
        } else {
            None
        };
        let far_sc = if do_far && mig_ps {
            let sc = cached(&mut far_cache, 0, || far_entry(0)).map(|(_, sc)| sc.clone());
            do_far = sc.is_some();
            sc
        } else {
            None
        };
        let raf_fs = if do_raf {
            fixed_secondary(op, &vals[opdx], &sp_r, inst)
        } else {
            None
        };
        let rp_fs = if do_rp && mig_ps {
            let ss2 = cached(&mut rp_cache, 0, || rp_entry(0)).copied();
            do_rp = ss2.is_some();
            ss2.and_then(|ss2| fixed_secondary(os, &vals[osdx], &ss2, inst))
        } else {
            None
        };
        if rp_fs.is_some() {
            sc_ps.get_or_insert_with(ps_sums);
        }
        // per kind (r:, f r:, r: f, r: p): a lower bound of the score of
        // the moves onto these targets (+inf if not wanted, -inf if it
        // cannot be bounded)
        let bound = |tb: &TargetBounds, want: [bool; 4]| -> [f64; 4] {
            let as_sec = tb.as_secondary(inst);
            let as_pri = tb.as_primary(inst);
            let lb = |sc: &Option<Partial>, ch: &[&[Change; N_METRICS]]| match sc {
                Some(sc) => sc.lower_bound(ch),
                None => None,
            };
            let raf = raf_fs
                .as_ref()
                .and_then(|fs| sc_s.lower_bound(&[fs, &as_pri]));
            let rp = rp_fs.as_ref().and_then(|fs| lb(&sc_ps, &[fs, &as_pri]));
            let all = [lb(&rs_sc, &[&as_sec]), lb(&far_sc, &[&as_sec]), raf, rp];
            let mut out = [f64::INFINITY; 4];
            for k in 0..4 {
                if want[k] {
                    out[k] = all[k].unwrap_or(f64::NEG_INFINITY);
                }
            }
            out
        };
        // Unbounded (-inf) kinds may win, unwanted (+inf) ones may not; the
        // bounds of those ruled out go into the instance's lower bound.
        let mut ruled_lb = f64::INFINITY;
        let mut may_win = |tb: &TargetBounds, want: [bool; 4]| {
            bound(tb, want).map(|b| {
                let keep = b == f64::NEG_INFINITY || (b.is_finite() && !ruled_out(Some(b), cur));
                if !keep {
                    ruled_lb = ruled_lb.min(b);
                }
                keep
            })
        };
        // first over all targets at once, then bucket by bucket
        let want = may_win(&pb.all, [do_rs, do_far, do_raf, do_rp]);
        allowed = if want.iter().any(|&w| w) {
            let mut v = Vec::with_capacity(pb.buckets.len());
            for (g, bs) in pb.groups.iter().zip(pb.buckets.chunks(GROUP)) {
                let want = may_win(g, want);
                if want.iter().any(|&w| w) {
                    v.extend(bs.iter().map(|tb| may_win(tb, want)));
                } else {
                    v.extend(bs.iter().map(|_| want));
                }
            }
            v
        } else {
            vec![want; pb.buckets.len()]
        };
        lb = ruled_lb;
        for (k, flag) in [&mut do_rs, &mut do_far, &mut do_raf, &mut do_rp]
            .into_iter()
            .enumerate()
        {
            if !allowed.iter().any(|a| a[k]) {
                *flag = false;
            }
        }
    }
    let bucket_ok = |t: usize, k: usize| -> bool {
        allowed.is_empty() || allowed[r.bounds.as_ref().map(|b| b.bucket_of[t]).unwrap_or(0)][k]
    };
    if !(do_rs || do_raf || do_rp || do_far) {
        return best.into_candidate(idx, lb);
    }
    for t in targets {
        let tn = &c.nodes[t];
        if do_rs && bucket_ok(t, 0) {
            let nl = common_count(&op.loc_tags, &tn.loc_tags);
            if let Some((sp, sc0)) = cached(&mut rs_cache, nl as usize, || rs_entry(nl)) {
                let vt = NodeView::new(tn);
                let mut st = tn.s;
                if add_sec(&vt, &mut st, inst, opdx, force_s, false).is_ok() {
                    let sc = sc0.score_with(&[(&vals[t], &st)], 0.0);
                    best.offer(sc, &r.known, || {
                        (
                            sc,
                            IMove::ReplaceSecondary(t),
                            [(opdx, *sp), (osdx, ss_r), (t, st)],
                            3,
                            opdx,
                            t,
                            nl,
                        )
                    });
                }
            }
        }
        if do_raf && bucket_ok(t, 2) && check_migration(op, tn).is_ok() {
            let nl = common_count(&tn.loc_tags, &op.loc_tags);
            let mut vt = NodeView::new(tn);
            let mut st = tn.s;
            if add_pri(&mut vt, &mut st, inst, nl, force).is_ok() {
                let vp = NodeView {
                    node: op,
                    tags: vp_r.tags.clone(),
                };
                let mut sp = sp_r;
                if add_sec(&vp, &mut sp, inst, t, force_s, false).is_ok() {
                    let sc = sc_s.score_with(&[(&vals[opdx], &sp), (&vals[t], &st)], map_delta(t));
                    best.offer(sc, &r.known, || {
                        (
                            sc,
                            IMove::ReplaceAndFailover(t),
                            [(t, st), (opdx, sp), (osdx, ss_r)],
                            3,
                            t,
                            opdx,
                            nl,
                        )
                    });
                }
            }
        }
        if do_rp && bucket_ok(t, 3) && mig_ps && check_migration(os, tn).is_ok() {
            let nl = common_count(&tn.loc_tags, &os.loc_tags);
            if let Some(&ss2) = cached(&mut rp_cache, nl as usize, || rp_entry(nl)) {
                let mut vt = NodeView::new(tn);
                let mut st = tn.s;
                if add_pri(&mut vt, &mut st, inst, nl, force_p).is_ok() {
                    let vs = NodeView::new(os);
                    let mut ss = ss2;
                    if add_sec(&vs, &mut ss, inst, t, force_p, false).is_ok() {
                        let sc0 = sc_ps.get_or_insert_with(ps_sums);
                        let sc =
                            sc0.score_with(&[(&vals[osdx], &ss), (&vals[t], &st)], map_delta(t));
                        best.offer(sc, &r.known, || {
                            (
                                sc,
                                IMove::ReplacePrimary(t),
                                [(opdx, sp_r), (osdx, ss), (t, st)],
                                3,
                                t,
                                osdx,
                                nl,
                            )
                        });
                    }
                }
            }
        }
        if do_far && bucket_ok(t, 1) && mig_ps {
            let nl = common_count(&os.loc_tags, &tn.loc_tags);
            if let Some((ss, sc0)) = cached(&mut far_cache, nl as usize, || far_entry(nl)) {
                let vt = NodeView::new(tn);
                let mut st = tn.s;
                if add_sec(&vt, &mut st, inst, osdx, force_p, false).is_ok() {
                    let sc = sc0.score_with(&[(&vals[t], &st)], 0.0);
                    best.offer(sc, &r.known, || {
                        (
                            sc,
                            IMove::FailoverAndReplace(t),
                            [(t, st), (osdx, *ss), (opdx, sp_r)],
                            3,
                            osdx,
                            t,
                            nl,
                        )
                    });
                }
            }
        }
    }
    best.into_candidate(idx, lb)
}

/// The score of the cluster restricted to `nodes`.
pub fn group_stats(c: &Cluster, nodes: &[usize]) -> ClusterStats {
    ClusterStats::compute(nodes.iter().map(|&i| &c.nodes[i]))
}

/// Exact score after an effect, recomputed over all nodes of the group.
fn exact_score_after(
    c: &Cluster,
    nodes: &[usize],
    st: &ClusterStats,
    idx: usize,
    eff: &MoveEffect,
) -> f64 {
    // Build the metric sums with the touched nodes substituted.
    let mut n = 0.0;
    let mut sum = [0.0; N_METRICS];
    let stats_of = |i: usize| -> crate::model::NodeStats {
        eff.nodes
            .iter()
            .find(|(k, _)| *k == i)
            .map(|(_, s)| *s)
            .unwrap_or(c.nodes[i].s)
    };
    use crate::metrics::{Kind, METRICS};
    for &i in nodes {
        let s = stats_of(i);
        let v = node_values(&s);
        let online = !s.offline;
        if online {
            n += 1.0;
        }
        for (k, m) in METRICS.iter().enumerate() {
            let take = match m.2 {
                Kind::OfflineSum => !online,
                Kind::Map => false,
                _ => online,
            };
            if take {
                sum[k] += v[k];
            }
        }
    }
    let mut var = [0.0; N_METRICS];
    for &i in nodes {
        let s = stats_of(i);
        if s.offline {
            continue;
        }
        let v = node_values(&s);
        for (k, m) in METRICS.iter().enumerate() {
            if m.2 == Kind::StdDev {
                let d = v[k] - sum[k] / n;
                var[k] += d * d;
            }
        }
    }
    let inst = &c.instances[idx];
    let map_value = st.map_value
        + if eff.new_pnode != inst.pnode {
            crate::metrics::loc_excl_delta(
                &st.pairs,
                inst,
                &c.nodes[inst.pnode],
                &c.nodes[eff.new_pnode],
            )
        } else {
            0.0
        };
    let mut total = 0.0;
    for (k, m) in METRICS.iter().enumerate() {
        let v = match m.2 {
            Kind::StdDev => (var[k] / n).sqrt(),
            Kind::Sum | Kind::OfflineSum => sum[k],
            Kind::Map => map_value,
        };
        total += m.0 * v;
    }
    total
}

/// Balancing state kept across rounds.
///
/// The best candidate each instance offered in the last round, re-scored
/// where still valid, gives a score the next round's best move must beat,
/// so that bounds rule out most instances and target buckets before any of
/// their moves is scored. That alone gives the plan of scoring every move.
///
/// On large clusters a round also leaves out the instances whose nodes did
/// not change since they were last evaluated (16 to 31 rounds at most) and
/// whose moves could then gain less, scaled up by how much the deviations
/// dropped since, than a move already known in this round. A round that
/// finds no move is repeated with every instance, so the loop stops where
/// Ganeti's would.
pub struct Balancer {
    /// Last round's candidates: instance and effect.
    prev: Vec<(usize, MoveEffect)>,
    /// Per instance: the round it was last evaluated in, the score then,
    /// and the lower bound of its moves' scores then.
    seen: Vec<Option<(usize, f64, f64)>>,
    /// Per node: the round of its last change.
    node_round: Vec<usize>,
    round: usize,
    /// The variances at the start of each round.
    var_hist: Vec<[f64; N_METRICS]>,
}

/// An instance whose nodes did not change is evaluated again at least
/// every this many rounds (plus up to as many again, spread over the
/// instances).
const REFRESH: usize = 16;
/// Clusters with fewer (instance, node) pairs are always evaluated
/// exhaustively.
const EXHAUSTIVE_BELOW: usize = 20_000;

/// The smallest of a non-negative score shared between threads (non-negative
/// floats order as their bit patterns do).
struct Threshold(AtomicU64);

impl Threshold {
    fn new(v: f64) -> Self {
        Threshold(AtomicU64::new(v.max(0.0).to_bits()))
    }
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    fn lower(&self, v: f64) {
        if v >= 0.0 {
            self.0.fetch_min(v.to_bits(), Ordering::Relaxed);
        }
    }
}

impl Balancer {
    pub fn new(c: &Cluster) -> Self {
        Balancer {
            prev: Vec::new(),
            seen: vec![None; c.instances.len()],
            node_round: vec![0; c.nodes.len()],
            // rounds count from 1: a node changed in round 0 never was
            round: 1,
            var_hist: vec![[0.0; N_METRICS]],
        }
    }

    /// The most an instance's moves may gain, if it can be told without
    /// evaluating them: its nodes did not change since it was last
    /// evaluated, recently, and the most its moves could gain then is
    /// scaled up by how much the deviations dropped since (see
    /// [`Balancer::slack`]).
    fn gain_bound(&self, c: &Cluster, i: usize, slack: &[f64]) -> Option<f64> {
        let (r, then, lb) = self.seen[i]?;
        let inst = &c.instances[i];
        let unchanged =
            |n: usize| n == NO_SECONDARY || n >= self.node_round.len() || self.node_round[n] < r;
        if self.round - r >= REFRESH + i % REFRESH
            || !unchanged(inst.pnode)
            || !unchanged(inst.snode)
        {
            return None;
        }
        if lb == f64::INFINITY {
            // no possible move
            return Some(f64::NEG_INFINITY);
        }
        let k = slack.len().checked_sub(self.round - r + 1)?;
        if !(lb.is_finite() && slack[k].is_finite()) {
            return None;
        }
        Some((then - lb) * slack[k])
    }

    /// For each of the last rounds (oldest first, up to the current one),
    /// how much more the same change of the variances can be worth now: the
    /// gain `sqrt(v) - sqrt(v - d)` of a deviation grows at most
    /// `2 * sqrt(v_then / v_now)`-fold as its variance drops from `v_then`
    /// to `v_now`. Infinite if a variance dropped to zero.
    fn slack(&self, now: &[f64; N_METRICS]) -> Vec<f64> {
        let from = self.var_hist.len().saturating_sub(2 * REFRESH + 1);
        self.var_hist[from..]
            .iter()
            .map(|then| {
                let mut f: f64 = 1.0;
                for (k, m) in crate::metrics::METRICS.iter().enumerate() {
                    if m.2 != crate::metrics::Kind::StdDev || m.0 == 0.0 || then[k] <= now[k] {
                        continue;
                    }
                    f = f.max(if now[k] > 0.0 {
                        2.0 * (then[k] / now[k]).sqrt()
                    } else {
                        f64::INFINITY
                    });
                }
                f
            })
            .collect()
    }

    /// One balancing step (Ganeti's `tryBalance`): the best move, applied,
    /// or `None` when no move improves the score enough. Before giving up,
    /// a round leaves no instance out.
    pub fn step(
        &mut self,
        c: &mut Cluster,
        nodes: &[usize],
        insts: &[usize],
        opts: &BalanceOptions,
    ) -> Option<Placement> {
        match self.round_of(c, nodes, insts, opts, false) {
            Ok(p) => Some(p),
            Err(true) => self.round_of(c, nodes, insts, opts, true).ok(),
            Err(false) => None,
        }
    }

    /// One round; `Err(true)` if it found no move but left instances out.
    fn round_of(
        &mut self,
        c: &mut Cluster,
        nodes: &[usize],
        insts: &[usize],
        opts: &BalanceOptions,
        final_check: bool,
    ) -> Result<Placement, bool> {
        let st = group_stats(c, nodes);
        let ini = st.score();
        let online: Vec<usize> = nodes
            .iter()
            .copied()
            .filter(|&n| !c.nodes[n].s.offline)
            .collect();
        let mut is_online = vec![false; c.nodes.len()];
        for &n in &online {
            is_online[n] = true;
        }
        let victims: Vec<usize> = insts
            .iter()
            .copied()
            .filter(|&i| {
                let inst = &c.instances[i];
                let evac_ok = !opts.evac_mode
                    || inst
                        .all_nodes()
                        .iter()
                        .any(|&n| n < c.nodes.len() && c.nodes[n].s.offline);
                evac_ok && inst.movable && inst.auto_balance
            })
            .collect();
        let vals: Vec<[f64; N_METRICS]> = c.nodes.iter().map(|n| node_values(&n.s)).collect();
        // A score some move is known to reach: last round's candidates
        // whose nodes did not change since, re-scored.
        let mut known = ini;
        if opts.prune {
            // valid unless a node of theirs changed in that last round
            let last = self.round - 1;
            for (i, eff) in &self.prev {
                if eff.nodes.iter().all(|(n, _)| self.node_round[*n] < last) {
                    known = known.min(crate::moves::score_effect(c, &st, *i, eff));
                }
            }
        }
        let round = Round {
            c,
            st: &st,
            base: Partial::new(&st),
            bounds: if !opts.prune {
                None
            } else {
                BucketBounds::new(&c.nodes, &online, &vals)
            },
            opts,
            is_online: &is_online,
            vals: &vals,
            ini,
            known: Threshold::new(known),
        };
        // The instances that may be left out are evaluated last, once the
        // others have lowered the known score.
        let mut first = Vec::new();
        let mut later = Vec::new();
        let small = victims.len().saturating_mul(online.len()) < EXHAUSTIVE_BELOW;
        self.var_hist.push(st.var);
        debug_assert_eq!(self.var_hist.len(), self.round + 1);
        let slack = self.slack(&st.var);
        let may_skip = opts.prune && !opts.exhaustive && !small && !final_check;
        for (order, &i) in victims.iter().enumerate() {
            match self.gain_bound(c, i, &slack) {
                Some(g) if may_skip => later.push((order, i, g)),
                _ => first.push((order, i)),
            }
        }
        let eval = |v: &[(usize, usize)]| -> Vec<(usize, usize, (Option<Candidate>, f64))> {
            v.par_iter()
                .map(|&(o, i)| (o, i, best_for_instance(&round, i, &online)))
                .collect()
        };
        let mut results = eval(&first);
        let gain = ini - round.known.get();
        let (skipped, mut rest): (Vec<_>, Vec<_>) =
            later.into_iter().partition(|&(_, _, g)| g < gain);
        // the most promising first, so that the known score drops early
        rest.sort_unstable_by(|a, b| b.2.total_cmp(&a.2));
        let rest: Vec<(usize, usize)> = rest.into_iter().map(|(o, i, _)| (o, i)).collect();
        results.extend(eval(&rest));
        results.sort_unstable_by_key(|&(o, _, _)| o);
        let now = self.round;
        self.round += 1;
        let mut best: Option<Candidate> = None;
        self.prev.clear();
        for (_, i, (cand, lb)) in results {
            self.seen[i] = Some((now, ini, lb));
            let Some(cand) = cand else { continue };
            self.prev.push((cand.inst, cand.eff.clone()));
            let better = match &best {
                None => true,
                Some(b) => cand.score < b.score - eps(b.score),
            };
            if better {
                best = Some(cand);
            }
        }
        let Some(best) = best else {
            return Err(!skipped.is_empty());
        };
        let fin = exact_score_after(c, nodes, &st, best.inst, &best.eff);
        if !(fin < ini && (ini > opts.min_gain_limit || ini - fin >= opts.min_gain)) {
            return Err(!skipped.is_empty());
        }
        let inst = &c.instances[best.inst];
        let plc = Placement {
            inst: best.inst,
            old_pnode: inst.pnode,
            old_snode: inst.snode,
            new_pnode: best.eff.new_pnode,
            new_snode: best.eff.new_snode,
            mv: best.mv,
            score: fin,
            running: inst.is_running(),
        };
        for (n, _) in &best.eff.nodes {
            self.node_round[*n] = now;
        }
        apply_effect(c, best.inst, &best.eff);
        Ok(plc)
    }
}

/// One balancing step without state across rounds.
pub fn try_balance(
    c: &mut Cluster,
    nodes: &[usize],
    insts: &[usize],
    opts: &BalanceOptions,
) -> Option<Placement> {
    Balancer::new(c).step(c, nodes, insts, opts)
}

/// Runs the balancing loop; `on_move` sees each accepted move (with its
/// 1-based position) as soon as it is applied.
pub fn balance(
    c: &mut Cluster,
    nodes: &[usize],
    insts: &[usize],
    opts: &BalanceOptions,
    min_score: f64,
    mut on_move: impl FnMut(&Cluster, &Placement, usize),
) -> Vec<Placement> {
    let mut plcs = Vec::new();
    let mut b = Balancer::new(c);
    loop {
        let cur = group_stats(c, nodes).score();
        let allowed =
            (opts.max_length < 0 || (plcs.len() as i64) < opts.max_length) && cur > min_score;
        if !allowed {
            break;
        }
        match b.step(c, nodes, insts, opts) {
            Some(p) => {
                on_move(c, &p, plcs.len() + 1);
                plcs.push(p);
            }
            None => break,
        }
    }
    plcs
}
