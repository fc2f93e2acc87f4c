//! Bounds on how much adding an instance to a node can change each metric,
//! so that hbal can skip a kind of move for an instance when no target node
//! can make it beat the best score found so far.
//!
//! Adding an instance changes metric `j` of a node by an amount between
//! `a_lo + b_lo * c[j]` and `a_hi + b_hi * c[j]`, where `a` and `b` depend
//! on the node and `c` on the instance. Taking the least and greatest `a`
//! and `b` over the online nodes bounds the change on any target at once.

use crate::metrics::{Change, N_METRICS};
use crate::model::{Instance, Node, NodeStats};

#[derive(Debug, Clone, Copy, PartialEq)]
struct Ab {
    a_lo: f64,
    b_lo: f64,
    a_hi: f64,
    b_hi: f64,
}

const ZERO: Ab = Ab {
    a_lo: 0.0,
    b_lo: 0.0,
    a_hi: 0.0,
    b_hi: 0.0,
};

/// A change that only grows the value (a count).
const GROWS: Ab = Ab {
    a_lo: 0.0,
    b_lo: 0.0,
    a_hi: f64::INFINITY,
    b_hi: 0.0,
};

fn exact(a: f64, b: f64) -> Ab {
    Ab {
        a_lo: a,
        b_lo: b,
        a_hi: a,
        b_hi: b,
    }
}

/// Whether the node's stats can be bounded (no exclusive storage, no zero
/// totals).
pub fn boundable(s: &NodeStats) -> bool {
    !s.excl_storage
        && s.t_mem > 0.0
        && s.t_dsk > 0.0
        && s.t_cpu > 0.0
        && s.cpu_speed > 0.0
        && s.hi_spindles > 0.0
        && s.util_pool.cpu > 0.0
        && s.util_pool.mem > 0.0
        && s.util_pool.dsk > 0.0
        && s.util_pool.net > 0.0
}

/// The N+1 count can only grow if the node's flag agrees with its memory.
fn n1_ab(s: &NodeStats, x: f64) -> Ab {
    if s.fail_n1 == (s.unallocated_mem() <= s.r_mem) {
        GROWS
    } else {
        Ab { a_lo: -x, ..GROWS }
    }
}

/// Per metric, for a node with stats `s` and metric values `x`, the change
/// when it becomes an instance's primary (Ganeti's `addPri`).
fn pri_ab(s: &NodeStats, x: &[f64; N_METRICS]) -> [Ab; N_METRICS] {
    let mut r = [ZERO; N_METRICS];
    let tm = s.t_mem;
    let td = s.t_dsk;
    let cs = s.t_cpu * s.cpu_speed;
    r[0] = exact(s.unallocated_mem() as f64 / tm - x[0], 1.0 / tm);
    r[1] = exact(s.f_dsk as f64 / td - x[1], 1.0 / td);
    r[2] = n1_ab(s, x[2]);
    r[6] = exact(s.u_cpu as f64 / s.t_cpu / s.cpu_speed - x[6], 1.0 / cs);
    r[7] = exact(0.0, 1.0 / s.util_pool.cpu);
    r[8] = exact(0.0, 1.0 / s.util_pool.mem);
    r[9] = exact(0.0, 1.0 / s.util_pool.dsk);
    r[10] = exact(0.0, 1.0 / s.util_pool.net);
    r[11] = GROWS;
    r[12] = exact(0.0, 1.0 / s.hi_spindles);
    r[13] = exact(s.f_mem_forth as f64 / tm - x[13], 1.0 / tm);
    r[14] = exact(s.f_dsk_forth as f64 / td - x[14], 1.0 / td);
    r[15] = exact(
        s.u_cpu_forth as f64 / s.t_cpu / s.cpu_speed - x[15],
        1.0 / cs,
    );
    r[16] = exact(0.0, 1.0 / s.hi_spindles);
    r[17] = GROWS;
    r
}

/// Per metric, the change when the node becomes an instance's secondary
/// (Ganeti's `addSec`); `rmax` bounds the memory it already reserves for
/// any one peer.
fn sec_ab(s: &NodeStats, x: &[f64; N_METRICS], rmax: i64) -> [Ab; N_METRICS] {
    let mut r = [ZERO; N_METRICS];
    let tm = s.t_mem;
    let td = s.t_dsk;
    r[1] = exact(s.f_dsk as f64 / td - x[1], 1.0 / td);
    r[2] = n1_ab(s, x[2]);
    let rem = Ab {
        a_lo: s.r_mem as f64 / tm - x[3],
        b_lo: 0.0,
        a_hi: s.r_mem.max(rmax) as f64 / tm - x[3],
        b_hi: 1.0 / tm,
    };
    r[3] = rem;
    r[19] = rem;
    r[9] = exact(0.0, 1.0 / s.util_pool.dsk);
    r[12] = exact(0.0, 1.0 / s.hi_spindles);
    r[14] = exact(s.f_dsk_forth as f64 / td - x[14], 1.0 / td);
    r[16] = exact(0.0, 1.0 / s.hi_spindles);
    r
}

/// The instance's factor of each metric's change on its new primary.
fn pri_c(inst: &Instance) -> [f64; N_METRICS] {
    let mut c = [0.0; N_METRICS];
    let mem = if inst.uses_memory() { inst.mem } else { 0 } as f64;
    let dsk = if inst.uses_local_storage() {
        inst.dsk
    } else {
        0
    } as f64;
    let vcpus = if inst.not_offline() { inst.vcpus } else { 0 } as f64;
    let su = if inst.uses_local_storage() {
        inst.spindle_use
    } else {
        0
    } as f64;
    c[0] = -mem;
    c[1] = -dsk;
    c[6] = vcpus;
    c[7] = inst.util.cpu;
    c[8] = inst.util.mem;
    c[9] = inst.util.dsk;
    c[10] = inst.util.net;
    c[12] = su;
    c[13] = -(inst.mem as f64);
    c[14] = -dsk;
    c[15] = vcpus;
    c[16] = su;
    c
}

/// The instance's factor of each metric's change on its new secondary.
fn sec_c(inst: &Instance) -> [f64; N_METRICS] {
    let mut c = [0.0; N_METRICS];
    let su = if inst.uses_local_storage() {
        inst.spindle_use
    } else {
        0
    } as f64;
    let need = if inst.uses_sec_mem() { inst.mem } else { 0 } as f64;
    c[1] = -(inst.dsk as f64);
    c[3] = need;
    c[19] = need;
    c[9] = inst.util.dsk;
    c[12] = su;
    c[14] = -(inst.dsk as f64);
    c[16] = su;
    c
}

fn widen(v: f64) -> f64 {
    1e-12 * (1.0 + v.abs())
}

fn change(x: (f64, f64), ab: (f64, f64, f64, f64, f64, f64), c: f64) -> Change {
    // ab: least a_lo, least and greatest b_lo, greatest a_hi, least and
    // greatest b_hi
    let (alo, blo_min, blo_max, ahi, bhi_min, bhi_max) = ab;
    let mut dl = alo + if c >= 0.0 { c * blo_min } else { c * blo_max };
    let mut dh = ahi + if c >= 0.0 { c * bhi_max } else { c * bhi_min };
    if c == 0.0 {
        dl = alo;
        dh = ahi;
    }
    if dl == 0.0 && dh == 0.0 {
        return Change {
            xl: x.0,
            xh: x.1,
            dl,
            dh,
        };
    }
    dl -= widen(dl);
    dh += widen(dh);
    Change {
        xl: x.0,
        xh: x.1,
        dl,
        dh,
    }
}

/// Bounds of a role (primary or secondary) over a set of nodes.
#[derive(Debug, Clone)]
struct RoleBounds {
    x: [(f64, f64); N_METRICS],
    ab: [(f64, f64, f64, f64, f64, f64); N_METRICS],
}

impl RoleBounds {
    fn new() -> Self {
        let inf = f64::INFINITY;
        RoleBounds {
            x: [(inf, -inf); N_METRICS],
            ab: [(inf, inf, -inf, -inf, inf, -inf); N_METRICS],
        }
    }
    fn add(&mut self, x: &[f64; N_METRICS], ab: &[Ab; N_METRICS]) {
        for j in 0..N_METRICS {
            let e = &mut self.x[j];
            e.0 = e.0.min(x[j]);
            e.1 = e.1.max(x[j]);
            let a = &ab[j];
            let b = &mut self.ab[j];
            b.0 = b.0.min(a.a_lo);
            b.1 = b.1.min(a.b_lo);
            b.2 = b.2.max(a.b_lo);
            b.3 = b.3.max(a.a_hi);
            b.4 = b.4.min(a.b_hi);
            b.5 = b.5.max(a.b_hi);
        }
    }
    fn changes(&self, c: &[f64; N_METRICS]) -> [Change; N_METRICS] {
        let mut r = [Change::default(); N_METRICS];
        for j in 0..N_METRICS {
            r[j] = change(self.x[j], self.ab[j], c[j]);
        }
        r
    }
}

/// The largest memory a node reserves for one peer.
fn max_peer(node: &Node) -> i64 {
    node.peers.values().copied().max().unwrap_or(0)
}

/// Bounds for one balancing round: over all online nodes, as targets.
#[derive(Debug, Clone)]
pub struct TargetBounds {
    pri: RoleBounds,
    sec: RoleBounds,
}

impl TargetBounds {
    /// `None` if some online node cannot be bounded.
    pub fn new(nodes: &[Node], online: &[usize], vals: &[[f64; N_METRICS]]) -> Option<Self> {
        let mut pri = RoleBounds::new();
        let mut sec = RoleBounds::new();
        for &k in online {
            let node = &nodes[k];
            if !boundable(&node.s) || !node.loc_tags.is_empty() {
                return None;
            }
            pri.add(&vals[k], &pri_ab(&node.s, &vals[k]));
            sec.add(&vals[k], &sec_ab(&node.s, &vals[k], max_peer(node)));
        }
        Some(TargetBounds { pri, sec })
    }

    /// The changes of a target node that becomes `inst`'s primary.
    pub fn as_primary(&self, inst: &Instance) -> [Change; N_METRICS] {
        self.pri.changes(&pri_c(inst))
    }

    /// The changes of a target node that becomes `inst`'s secondary.
    pub fn as_secondary(&self, inst: &Instance) -> [Change; N_METRICS] {
        self.sec.changes(&sec_c(inst))
    }
}

/// The changes of one node, whose metric values were `orig` and whose stats
/// are now `s`, when it becomes `inst`'s secondary for some primary.
pub fn fixed_secondary(
    node: &Node,
    orig: &[f64; N_METRICS],
    s: &NodeStats,
    inst: &Instance,
) -> Option<[Change; N_METRICS]> {
    if !boundable(s) {
        return None;
    }
    let now = crate::metrics::node_values(s);
    let mut rb = RoleBounds::new();
    rb.add(&now, &sec_ab(s, &now, max_peer(node)));
    let mut ch = rb.changes(&sec_c(inst));
    for j in 0..N_METRICS {
        // measured from the original value
        let shift = now[j] - orig[j];
        ch[j].xl = orig[j];
        ch[j].xh = orig[j];
        if shift != 0.0 {
            ch[j].dl += shift - widen(shift);
            ch[j].dh += shift + widen(shift);
        }
    }
    Some(ch)
}

/// Nodes per bucket of [`BucketBounds`].
const BUCKET: usize = 16;
/// Buckets per group of [`BucketBounds`].
pub const GROUP: usize = 8;

/// The online nodes in buckets of similar nodes, each with its bounds, so
/// that a kind of move can be ruled out bucket by bucket.
#[derive(Debug, Clone)]
pub struct BucketBounds {
    /// Bounds over all the online nodes.
    pub all: TargetBounds,
    /// Bounds over each run of [`GROUP`] consecutive buckets.
    pub groups: Vec<TargetBounds>,
    pub buckets: Vec<TargetBounds>,
    /// Bucket of each node (by index; meaningless for offline nodes).
    pub bucket_of: Vec<usize>,
}

impl BucketBounds {
    /// `None` if some online node cannot be bounded.
    pub fn new(nodes: &[Node], online: &[usize], vals: &[[f64; N_METRICS]]) -> Option<Self> {
        if online.is_empty() {
            return None;
        }
        // order the nodes by how far each metric is from its mean, in
        // units of its spread, weighted as in the score
        let n = online.len() as f64;
        let mut mean = [0.0; N_METRICS];
        let mut sd = [0.0; N_METRICS];
        for &k in online {
            for j in 0..N_METRICS {
                mean[j] += vals[k][j] / n;
            }
        }
        for &k in online {
            for j in 0..N_METRICS {
                sd[j] += (vals[k][j] - mean[j]).powi(2) / n;
            }
        }
        let key = |k: usize| -> f64 {
            let mut v = 0.0;
            for j in 0..N_METRICS {
                let s = sd[j].sqrt();
                if s > 0.0 && s.is_finite() {
                    v += crate::metrics::METRICS[j].0 * (vals[k][j] - mean[j]) / s;
                }
            }
            v
        };
        let mut order: Vec<(f64, usize)> = online.iter().map(|&k| (key(k), k)).collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut bucket_of = vec![0; nodes.len()];
        let mut buckets = Vec::new();
        let mut groups = Vec::new();
        for chunk in order.chunks(BUCKET * GROUP) {
            let ks: Vec<usize> = chunk.iter().map(|&(_, k)| k).collect();
            groups.push(TargetBounds::new(nodes, &ks, vals)?);
        }
        for (b, chunk) in order.chunks(BUCKET).enumerate() {
            let ks: Vec<usize> = chunk.iter().map(|&(_, k)| k).collect();
            for &k in &ks {
                bucket_of[k] = b;
            }
            buckets.push(TargetBounds::new(nodes, &ks, vals)?);
        }
        Some(BucketBounds {
            all: TargetBounds::new(nodes, online, vals)?,
            groups,
            buckets,
            bucket_of,
        })
    }
}
