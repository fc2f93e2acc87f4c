//! The cluster score: Ganeti 3.0's metrics and weights, kept as running
//! sums so that a candidate move is scored by updating only the nodes it
//! touches.

use std::collections::HashMap;

use crate::model::{Instance, Node, NodeStats};

/// Number of metrics in the score.
pub const N_METRICS: usize = 20;

/// How a metric aggregates its per-node values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Standard deviation over online nodes.
    StdDev,
    /// Sum over online nodes.
    Sum,
    /// Sum over offline nodes.
    OfflineSum,
    /// Location/exclusion tag pairs shared by several instances.
    Map,
}

/// Weight, name and aggregation of each metric, in Ganeti's order.
pub const METRICS: [(f64, &str, Kind); N_METRICS] = [
    (0.5, "free_mem_cv", Kind::StdDev),
    (0.5, "free_disk_cv", Kind::StdDev),
    (1.0, "n1_cnt", Kind::Sum),
    (1.0, "reserved_mem_cv", Kind::StdDev),
    (4.0, "offline_all_cnt", Kind::OfflineSum),
    (16.0, "offline_pri_cnt", Kind::OfflineSum),
    (0.5, "vcpu_ratio_cv", Kind::StdDev),
    (1.0, "cpu_load_cv", Kind::StdDev),
    (1.0, "mem_load_cv", Kind::StdDev),
    (1.0, "disk_load_cv", Kind::StdDev),
    (1.0, "net_load_cv", Kind::StdDev),
    (2.0, "pri_tags_score", Kind::Sum),
    (0.5, "spindles_cv", Kind::StdDev),
    (0.5, "free_mem_cv_forth", Kind::StdDev),
    (0.5, "free_disk_cv_forth", Kind::StdDev),
    (0.5, "vcpu_ratio_cv_forth", Kind::StdDev),
    (0.5, "spindles_cv_forth", Kind::StdDev),
    (1.0, "location_score", Kind::Sum),
    (1.0, "location_exclusion_score", Kind::Map),
    (RESERVED_MEM_RTOTAL_COEFF, "reserved_mem_rtotal", Kind::Sum),
];

const RESERVED_MEM_RTOTAL_COEFF: f64 = 0.25;

/// Per-node values of each metric (the map metric is handled apart).
pub fn node_values(s: &NodeStats) -> [f64; N_METRICS] {
    let n1 = if s.fail_n1 {
        (s.n_sec + s.n_pri) as f64
    } else {
        0.0
    };
    let ipri = s.n_pri as f64;
    let ioff = ipri + s.n_sec as f64;
    [
        s.p_mem,
        s.p_dsk,
        n1,
        s.p_rem,
        ioff,
        ipri,
        s.cpu_eff(),
        s.util_load.cpu / s.util_pool.cpu,
        s.util_load.mem / s.util_pool.mem,
        s.util_load.dsk / s.util_pool.dsk,
        s.util_load.net / s.util_pool.net,
        s.conflicts as f64,
        s.inst_spindles / s.hi_spindles,
        s.p_mem_forth,
        s.p_dsk_forth,
        s.cpu_eff_forth(),
        s.inst_spindles_forth / s.hi_spindles,
        s.location_score as f64,
        0.0,
        s.p_rem,
    ]
}

/// Running statistics of a set of nodes.
#[derive(Debug, Clone)]
pub struct ClusterStats {
    /// Number of online nodes.
    pub n: f64,
    /// Sum of each metric's values (online or offline nodes as the kind
    /// says).
    pub sum: [f64; N_METRICS],
    /// Population variance, for the standard deviation metrics.
    pub var: [f64; N_METRICS],
    /// Count of each (location tag, exclusion tag) pair over the primary
    /// instances of online nodes.
    pub pairs: HashMap<(u32, u32), u32>,
    /// Value of the map metric: sum over pairs of (count - 1).
    pub map_value: f64,
    /// Number of nodes (online and offline); with none, the score is 0
    /// and there are no metrics, as in Ganeti.
    pub total_nodes: usize,
}

impl ClusterStats {
    /// Computes the statistics from scratch (two passes for the variances).
    pub fn compute<'a>(nodes: impl Iterator<Item = &'a Node> + Clone) -> ClusterStats {
        let mut n = 0.0;
        let mut total_nodes = 0;
        let mut sum = [0.0; N_METRICS];
        let mut pairs: HashMap<(u32, u32), u32> = HashMap::new();
        for node in nodes.clone() {
            total_nodes += 1;
            let v = node_values(&node.s);
            let online = !node.s.offline;
            if online {
                n += 1.0;
                for (k, e) in node.inst_map.iter() {
                    *pairs.entry(*k).or_insert(0) += e;
                }
            }
            for (i, m) in METRICS.iter().enumerate() {
                let take = match m.2 {
                    Kind::OfflineSum => !online,
                    Kind::Map => false,
                    _ => online,
                };
                if take {
                    sum[i] += v[i];
                }
            }
        }
        let mut var = [0.0; N_METRICS];
        for node in nodes {
            if node.s.offline {
                continue;
            }
            let v = node_values(&node.s);
            for (i, m) in METRICS.iter().enumerate() {
                if m.2 == Kind::StdDev {
                    let d = v[i] - sum[i] / n;
                    var[i] += d * d;
                }
            }
        }
        for (i, m) in METRICS.iter().enumerate() {
            if m.2 == Kind::StdDev {
                var[i] /= n;
            }
        }
        let map_value = pairs.values().fold(0.0, |a, &c| a + (c as f64 - 1.0));
        ClusterStats {
            n,
            sum,
            var,
            pairs,
            map_value,
            total_nodes,
        }
    }

    /// The value of each metric.
    pub fn values(&self) -> [f64; N_METRICS] {
        let mut out = [0.0; N_METRICS];
        for (i, m) in METRICS.iter().enumerate() {
            out[i] = match m.2 {
                Kind::StdDev => self.var[i].sqrt(),
                Kind::Sum | Kind::OfflineSum => self.sum[i],
                Kind::Map => self.map_value,
            };
        }
        out
    }

    /// The cluster score.
    pub fn score(&self) -> f64 {
        if self.total_nodes == 0 {
            return 0.0;
        }
        score_of(&self.sum, &self.var, self.map_value)
    }
}

fn score_of(sum: &[f64; N_METRICS], var: &[f64; N_METRICS], map_value: f64) -> f64 {
    let mut total = 0.0;
    for (i, m) in METRICS.iter().enumerate() {
        let v = match m.2 {
            Kind::StdDev => var[i].sqrt(),
            Kind::Sum | Kind::OfflineSum => sum[i],
            Kind::Map => map_value,
        };
        total += m.0 * v;
    }
    total
}

/// A scratch copy of the running sums used to score one candidate.
#[derive(Clone)]
pub struct Scratch {
    n: f64,
    sum: [f64; N_METRICS],
    var: [f64; N_METRICS],
    map_value: f64,
}

impl Scratch {
    pub fn new(st: &ClusterStats) -> Self {
        Scratch {
            n: st.n,
            sum: st.sum,
            var: st.var,
            map_value: st.map_value,
        }
    }

    /// Replaces a node's contribution (Ganeti's `updateStatistics`).
    pub fn replace(&mut self, old: &NodeStats, new: &NodeStats) {
        self.replace_vals(&node_values(old), new);
    }

    /// Like [`Scratch::replace`], with the old node's values precomputed.
    pub fn replace_vals(&mut self, a: &[f64; N_METRICS], new: &NodeStats) {
        let b = node_values(new);
        let online = !new.offline;
        let n = self.n;
        for (i, m) in METRICS.iter().enumerate() {
            match m.2 {
                Kind::StdDev if online => {
                    let (x, y) = (a[i], b[i]);
                    if x == y {
                        continue;
                    }
                    let ds = y - x;
                    let dss = y * y - x * x;
                    let dnnvar = (n * dss - 2.0 * self.sum[i] * ds) - ds * ds;
                    self.sum[i] += ds;
                    self.var[i] = (self.var[i] + dnnvar / (n * n)).max(0.0);
                }
                Kind::Sum if online => self.sum[i] += b[i] - a[i],
                Kind::OfflineSum if !online => self.sum[i] += b[i] - a[i],
                _ => {}
            }
        }
    }

    pub fn add_map_delta(&mut self, d: f64) {
        self.map_value += d;
    }

    pub fn score(&self) -> f64 {
        score_of(&self.sum, &self.var, self.map_value)
    }
}

/// The possible change of one metric of one node: its old value lies in
/// `xl..=xh` and it changes by `dl..=dh`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Change {
    pub xl: f64,
    pub xh: f64,
    pub dl: f64,
    pub dh: f64,
}

impl Change {
    /// The least change of n²·variance this can make, given `n` nodes and
    /// the metric's sum, and the magnitude of the terms (for rounding).
    fn min_nnvar_change(&self, n: f64, sum: f64) -> (f64, f64) {
        // f(x, d) = d (2 n x - 2 S) + (n - 1) d², linear in x and convex
        // in d: the least value is at an end of x's range, with d at the
        // vertex clamped to its range.
        let mut best = f64::INFINITY;
        let mut mag: f64 = 0.0;
        for x in [self.xl, self.xh] {
            let a = 2.0 * n * x - 2.0 * sum;
            let d = (-a / (2.0 * (n - 1.0))).clamp(self.dl.min(self.dh), self.dh.max(self.dl));
            let v = d * a + (n - 1.0) * d * d;
            mag = mag.max((d * a).abs() + ((n - 1.0) * d * d).abs());
            best = best.min(v);
        }
        (best, mag)
    }
}

/// Index of the map metric in [`METRICS`].
const MAP_METRIC: usize = 18;

/// Running sums for scoring many candidates from one starting point: like
/// [`Scratch`], and it also keeps each metric's weighted contribution, so a
/// candidate's score only needs the metrics its nodes change, and scoring
/// the last nodes of a candidate does not copy the sums.
#[derive(Clone)]
pub struct Partial {
    n: f64,
    sum: [f64; N_METRICS],
    var: [f64; N_METRICS],
    contrib: [f64; N_METRICS],
    /// Sum of the contributions, without the map metric's.
    total: f64,
    map_value: f64,
}

/// One metric's sum and variance after a node's value goes from `x` to
/// `y` (Ganeti's `updateStatistics`); `None` when it does not change.
#[inline(always)]
fn update_metric(
    kind: Kind,
    online: bool,
    n: f64,
    sum: f64,
    var: f64,
    x: f64,
    y: f64,
) -> Option<(f64, f64)> {
    if x == y {
        return None;
    }
    match kind {
        Kind::StdDev if online => {
            let ds = y - x;
            let dss = y * y - x * x;
            let dnnvar = (n * dss - 2.0 * sum * ds) - ds * ds;
            Some((sum + ds, (var + dnnvar / (n * n)).max(0.0)))
        }
        Kind::Sum if online => Some((sum + (y - x), var)),
        Kind::OfflineSum if !online => Some((sum + (y - x), var)),
        _ => None,
    }
}

#[inline(always)]
fn contribution(i: usize, sum: f64, var: f64) -> f64 {
    let m = &METRICS[i];
    match m.2 {
        Kind::StdDev => m.0 * var.sqrt(),
        Kind::Sum | Kind::OfflineSum => m.0 * sum,
        Kind::Map => 0.0,
    }
}

impl Partial {
    pub fn new(st: &ClusterStats) -> Self {
        let mut contrib = [0.0; N_METRICS];
        let mut total = 0.0;
        for (i, c) in contrib.iter_mut().enumerate() {
            *c = contribution(i, st.sum[i], st.var[i]);
            total += *c;
        }
        Partial {
            n: st.n,
            sum: st.sum,
            var: st.var,
            contrib,
            total,
            map_value: st.map_value,
        }
    }

    /// Replaces a node's contribution; `old` are its current values.
    pub fn apply(&mut self, old: &[f64; N_METRICS], new: &NodeStats) {
        let b = node_values(new);
        let online = !new.offline;
        for i in 0..N_METRICS {
            if let Some((s, v)) = update_metric(
                METRICS[i].2,
                online,
                self.n,
                self.sum[i],
                self.var[i],
                old[i],
                b[i],
            ) {
                self.sum[i] = s;
                self.var[i] = v;
                let c = contribution(i, s, v);
                self.total += c - self.contrib[i];
                self.contrib[i] = c;
            }
        }
    }

    pub fn add_map_delta(&mut self, d: f64) {
        self.map_value += d;
    }

    /// The score with these further node replacements (old values, new
    /// stats) and map metric change, leaving `self` as it is.
    pub fn score_with(&self, repl: &[(&[f64; N_METRICS], &NodeStats)], map_delta: f64) -> f64 {
        let mut newv = [[0.0; N_METRICS]; 3];
        for (k, (_, st)) in repl.iter().enumerate() {
            newv[k] = node_values(st);
        }
        let mut delta = 0.0;
        for i in 0..N_METRICS {
            let kind = METRICS[i].2;
            let mut s = self.sum[i];
            let mut v = self.var[i];
            let mut changed = false;
            for (k, (old, st)) in repl.iter().enumerate() {
                if let Some((s2, v2)) =
                    update_metric(kind, !st.offline, self.n, s, v, old[i], newv[k][i])
                {
                    s = s2;
                    v = v2;
                    changed = true;
                }
            }
            if changed {
                delta += contribution(i, s, v) - self.contrib[i];
            }
        }
        self.total + delta + METRICS[MAP_METRIC].0 * (self.map_value + map_delta)
    }

    pub fn score(&self) -> f64 {
        self.total + METRICS[MAP_METRIC].0 * self.map_value
    }

    /// A lower bound of the score after further changes of one or two
    /// nodes, each given per metric as a box of old values and changes
    /// (the map metric unchanged). `None` when it cannot be bounded.
    pub fn lower_bound(&self, changes: &[&[Change; N_METRICS]]) -> Option<f64> {
        let n = self.n;
        if n < 2.0 {
            return None;
        }
        let mut total = 0.0;
        for i in 0..N_METRICS {
            let kind = METRICS[i].2;
            let moved = changes.iter().any(|c| c[i].dl != 0.0 || c[i].dh != 0.0);
            if !moved || matches!(kind, Kind::OfflineSum | Kind::Map) {
                total += self.contrib[i];
                continue;
            }
            match kind {
                Kind::StdDev => {
                    let sum = self.sum[i];
                    let base = n * n * self.var[i];
                    let mut acc = base;
                    let mut mag = base.abs();
                    for c in changes {
                        let (v, m) = c[i].min_nnvar_change(n, sum);
                        acc += v;
                        mag += m;
                    }
                    if let [a, b] = changes {
                        let (a, b) = (&a[i], &b[i]);
                        let prod = [a.dl * b.dl, a.dl * b.dh, a.dh * b.dl, a.dh * b.dh];
                        let mx = prod.iter().cloned().fold(f64::MIN, f64::max);
                        acc -= 2.0 * mx;
                        mag += 2.0 * mx.abs();
                    }
                    if !acc.is_finite() {
                        return None;
                    }
                    let var = ((acc - 1e-12 * mag) / (n * n)).max(0.0);
                    total += METRICS[i].0 * var.sqrt();
                }
                _ => {
                    let lo: f64 = changes.iter().map(|c| c[i].dl).sum();
                    if !lo.is_finite() {
                        return None;
                    }
                    total += METRICS[i].0 * (self.sum[i] + lo);
                }
            }
        }
        Some(total + METRICS[MAP_METRIC].0 * self.map_value)
    }
}

/// Change of the map metric when an instance's primary moves from `old`
/// to `new` (either may be offline, in which case it does not count).
pub fn loc_excl_delta(
    pairs: &HashMap<(u32, u32), u32>,
    inst: &Instance,
    old: &Node,
    new: &Node,
) -> f64 {
    if inst.excl_tags.is_empty() || inst.forthcoming {
        return 0.0;
    }
    if old.loc_tags.is_empty() && new.loc_tags.is_empty() {
        return 0.0;
    }
    let mut overlay: Vec<((u32, u32), i64)> = Vec::new();
    let get = |ov: &Vec<((u32, u32), i64)>, k: (u32, u32)| -> i64 {
        pairs.get(&k).copied().unwrap_or(0) as i64
            + ov.iter()
                .filter(|(kk, _)| *kk == k)
                .map(|(_, d)| d)
                .sum::<i64>()
    };
    let mut d = 0.0;
    if !old.s.offline {
        for &t in &inst.excl_tags {
            for &l in &old.loc_tags {
                let c = get(&overlay, (l, t));
                if c >= 2 {
                    d -= 1.0;
                }
                overlay.push(((l, t), -1));
            }
        }
    }
    if !new.s.offline {
        for &t in &inst.excl_tags {
            for &l in &new.loc_tags {
                let c = get(&overlay, (l, t));
                if c >= 1 {
                    d += 1.0;
                }
                overlay.push(((l, t), 1));
            }
        }
    }
    d
}

/// The lowest score reachable given the N+1 memory reservations (Ganeti's
/// `optimalCVScore`).
pub fn optimal_score<'a>(nodes: impl Iterator<Item = &'a Node> + Clone) -> f64 {
    let mems: Vec<f64> = nodes.clone().map(|n| n.s.t_mem).collect();
    if mems.len() <= 1 {
        return 0.0;
    }
    let total: f64 = mems.iter().fold(0.0, |a, b| a + b);
    let max = mems.iter().cloned().fold(f64::MIN, f64::max);
    let less = total - max;
    if less <= 0.0 {
        return 0.0;
    }
    let drbd: f64 = nodes.fold(0.0, |a, n| a + n.peers.values().sum::<i64>() as f64);
    RESERVED_MEM_RTOTAL_COEFF * (drbd / less - drbd / total)
}

/// The detailed metrics table (`-v -v -v`), each line prefixed by `lp`.
pub fn print_stats(lp: &str, st: &ClusterStats) -> String {
    let vals = st.values();
    let header = vec!["Field".to_string(), "Value".into(), "Weight".into()];
    let shown = if st.total_nodes == 0 { 0 } else { N_METRICS };
    let rows: Vec<Vec<String>> = METRICS
        .iter()
        .take(shown)
        .zip(vals.iter())
        .map(|(m, v)| vec![m.1.to_string(), format!("{v:.8}"), format!("x{:.2}", m.0)])
        .collect();
    crate::output::print_table(lp, &header, &rows, &[false, true, true])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_match_ganeti_order() {
        let names: Vec<&str> = METRICS.iter().map(|m| m.1).collect();
        assert_eq!(names[0], "free_mem_cv");
        assert_eq!(names[5], "offline_pri_cnt");
        assert_eq!(METRICS[5].0, 16.0);
        assert_eq!(names[19], "reserved_mem_rtotal");
        assert_eq!(METRICS[19].0, 0.25);
        assert_eq!(METRICS[18].2, Kind::Map);
    }
}
