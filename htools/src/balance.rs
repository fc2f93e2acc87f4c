//! The greedy balancing loop (hbal).
//!
//! Each round scores every allowed move of every movable instance against
//! running statistics (only the touched nodes are updated per candidate),
//! in parallel over instances, and applies the best one if it improves the
//! score enough.

use rayon::prelude::*;

use crate::metrics::{ClusterStats, N_METRICS};
use crate::model::Cluster;
use crate::moves::{apply_effect, eval_move, score_effect, MoveEffect};
use crate::output::Placement;
use crate::types::{IMove, MirrorType, NO_SECONDARY};

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
            } else if !inst_moves {
                vec![IMove::ReplaceSecondary(tdx)]
            } else if restricted && !primary_drained {
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

/// The best move of one instance, if any beats `ini`.
fn best_for_instance(
    c: &Cluster,
    st: &ClusterStats,
    opts: &BalanceOptions,
    online: &[usize],
    is_online: &[bool],
    ini: f64,
    idx: usize,
) -> Option<Candidate> {
    let inst = &c.instances[idx];
    let force = opts.ignore_soft_errors;
    let opdx = inst.pnode;
    let osdx = inst.snode;
    let mir = inst.template.mirror_type();
    if mir == MirrorType::Internal && osdx == NO_SECONDARY {
        return None;
    }
    let use_secondary =
        osdx != NO_SECONDARY && osdx < is_online.len() && is_online[osdx] && opts.instance_moves;
    let mut best: Option<Candidate> = None;
    let consider = |mv: IMove, best: &mut Option<Candidate>| {
        if let Ok(eff) = eval_move(c, idx, mv, force) {
            let sc = score_effect(c, st, idx, &eff);
            let cur = best.as_ref().map(|b| b.score).unwrap_or(ini);
            if sc < cur - eps(cur) {
                *best = Some(Candidate {
                    score: sc,
                    inst: idx,
                    mv,
                    eff,
                });
            }
        }
    };
    if mir == MirrorType::Internal && use_secondary {
        consider(IMove::Failover, &mut best);
    }
    let drained = c.nodes[opdx].s.offline;
    for &t in online {
        if t == opdx || t == osdx {
            continue;
        }
        for mv in possible_moves(
            mir,
            use_secondary,
            opts.instance_moves,
            opts.disk_moves,
            opts.restricted_migration,
            drained,
            t,
        ) {
            consider(mv, &mut best);
        }
    }
    best
}

/// The score of the cluster restricted to `nodes`.
pub fn group_stats(c: &Cluster, nodes: &[usize]) -> ClusterStats {
    ClusterStats::compute(nodes.iter().map(|&i| &c.nodes[i]))
}

/// Exact score after an effect, recomputed over all nodes of the group.
fn exact_score_after(c: &Cluster, nodes: &[usize], st: &ClusterStats, idx: usize, eff: &MoveEffect) -> f64 {
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
    use crate::metrics::{node_values, Kind, METRICS};
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
            crate::metrics::loc_excl_delta(&st.pairs, inst, &c.nodes[inst.pnode], &c.nodes[eff.new_pnode])
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

/// One balancing step (Ganeti's `tryBalance`): the best move, applied, or
/// `None` when no move improves the score enough.
pub fn try_balance(
    c: &mut Cluster,
    nodes: &[usize],
    insts: &[usize],
    opts: &BalanceOptions,
) -> Option<Placement> {
    let st = group_stats(c, nodes);
    let ini = st.score();
    let online: Vec<usize> = nodes.iter().copied().filter(|&n| !c.nodes[n].s.offline).collect();
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
    let cref: &Cluster = c;
    let best = victims
        .par_iter()
        .enumerate()
        .filter_map(|(order, &i)| {
            best_for_instance(cref, &st, opts, &online, &is_online, ini, i).map(|b| (order, b))
        })
        .reduce_with(|a, b| {
            // lower score wins; on (near) ties the earlier instance wins
            let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
            if second.1.score < first.1.score - eps(first.1.score) {
                second
            } else {
                first
            }
        })?
        .1;
    let fin = exact_score_after(c, nodes, &st, best.inst, &best.eff);
    if !(fin < ini && (ini > opts.min_gain_limit || ini - fin >= opts.min_gain)) {
        return None;
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
    apply_effect(c, best.inst, &best.eff);
    Some(plc)
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
    loop {
        let cur = group_stats(c, nodes).score();
        let allowed = (opts.max_length < 0 || (plcs.len() as i64) < opts.max_length) && cur > min_score;
        if !allowed {
            break;
        }
        match try_balance(c, nodes, insts, opts) {
            Some(p) => {
                plcs.push(p);
                on_move(c, plcs.last().expect("just pushed"), plcs.len());
            }
            None => break,
        }
    }
    plcs
}
