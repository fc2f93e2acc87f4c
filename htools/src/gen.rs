//! Deterministic generator of Ganeti-format cluster files, for tests and
//! benchmarks.

use std::fmt::Write;

/// A small deterministic pseudo-random generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..hi` (`hi` exclusive; `lo` if empty).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }
}

/// What cluster to generate.
#[derive(Debug, Clone)]
pub struct GenSpec {
    pub nodes: usize,
    pub instances: usize,
    pub seed: u64,
    /// Node memory in MiB.
    pub node_mem: i64,
    /// Node disk in MiB.
    pub node_disk: i64,
    pub node_cpus: i64,
    /// Fraction of nodes that get most primaries (skew); 0 for uniform.
    pub hot_fraction: f64,
    /// Weight of a hot node relative to a cold one.
    pub hot_weight: i64,
    /// Share of instances (in percent) that are DRBD; the rest are plain.
    pub drbd_percent: i64,
    /// Exclusion tag prefix for some instances, as a cluster tag.
    pub exclusion_tags: bool,
    /// Number of offline nodes (taken from the end).
    pub offline: usize,
    /// Place instances only where every node keeps passing the N+1 check
    /// (free memory above the largest reservation for one peer).
    pub n1_safe: bool,
}

impl Default for GenSpec {
    fn default() -> Self {
        GenSpec {
            nodes: 50,
            instances: 1000,
            seed: 1,
            node_mem: 256 * 1024,
            node_disk: 16 * 1024 * 1024,
            node_cpus: 32,
            hot_fraction: 0.25,
            hot_weight: 4,
            drbd_percent: 100,
            exclusion_tags: false,
            offline: 0,
            n1_safe: false,
        }
    }
}

/// Generates the text of a cluster file.
pub fn generate(spec: &GenSpec) -> String {
    let mut rng = Rng::new(spec.seed);
    let n = spec.nodes.max(2);
    let nmem = 1024i64;
    let mut free_mem = vec![spec.node_mem - nmem; n];
    let mut free_dsk = vec![spec.node_disk; n];
    let mut reserved: Vec<std::collections::HashMap<usize, i64>> = vec![Default::default(); n];
    // largest reservation for one peer, per node
    let mut rmem = vec![0i64; n];
    let hot = ((n as f64) * spec.hot_fraction).ceil() as usize;
    let weight = |i: usize| if i < hot { spec.hot_weight } else { 1 };
    let total_w: i64 = (0..n).map(weight).sum();
    let mut insts = String::new();
    let mems = [512i64, 1024, 2048, 4096, 8192];
    let mut made = 0;
    let mut attempts = 0;
    while made < spec.instances && attempts < spec.instances * 20 {
        attempts += 1;
        let mem = mems[rng.range(0, mems.len() as i64) as usize];
        let dsk = rng.range(1, 10) * 10 * 1024;
        let vcpus = rng.range(1, 5);
        let mut r = rng.range(0, total_w);
        let mut p = 0;
        for i in 0..n {
            r -= weight(i);
            if r < 0 {
                p = i;
                break;
            }
        }
        let drbd = rng.range(0, 100) < spec.drbd_percent;
        let s = if drbd {
            let mut s = rng.range(0, n as i64 - 1) as usize;
            if s >= p {
                s += 1;
            }
            Some(s)
        } else {
            None
        };
        // capacity: primary memory and disk, secondary disk and N+1 reserve
        if free_mem[p] - mem < 2048 || free_dsk[p] - dsk < 1024 {
            continue;
        }
        if spec.n1_safe && free_mem[p] - mem <= rmem[p] + 1024 {
            continue;
        }
        if let Some(s) = s {
            let res = reserved[s].get(&p).copied().unwrap_or(0) + mem;
            if free_dsk[s] - dsk < 1024 {
                continue;
            }
            if spec.n1_safe {
                if free_mem[s] <= res.max(rmem[s]) + 1024 {
                    continue;
                }
            } else if res > free_mem[s] / 2 {
                continue;
            }
            reserved[s].insert(p, res);
            rmem[s] = rmem[s].max(res);
            free_dsk[s] -= dsk;
        }
        free_mem[p] -= mem;
        free_dsk[p] -= dsk;
        let tags = if spec.exclusion_tags && rng.range(0, 10) == 0 {
            format!("service:svc{}", rng.range(0, 5))
        } else {
            String::new()
        };
        let status = if rng.range(0, 20) == 0 {
            "ADMIN_down"
        } else {
            "running"
        };
        if status == "ADMIN_down" {
            free_mem[p] += mem;
        }
        let _ = writeln!(
            insts,
            "inst{made:05}.example.com|{mem}|{dsk}|{vcpus}|{status}|Y|node{p:04}.example.com|{}|{}|{tags}|1|-|N",
            s.map(|s| format!("node{s:04}.example.com")).unwrap_or_default(),
            if drbd { "drbd" } else { "plain" }
        );
        made += 1;
    }
    let mut out = String::from("default|uuid-default|preferred||\n\n");
    for i in 0..n {
        let off = if i >= n - spec.offline.min(n) {
            'Y'
        } else {
            'N'
        };
        let _ = writeln!(
            out,
            "node{i:04}.example.com|{}|{nmem}|{}|{}|{}|{}|{off}|uuid-default|16||N|0|1|1.000000",
            spec.node_mem, free_mem[i], spec.node_disk, free_dsk[i], spec.node_cpus
        );
    }
    out.push('\n');
    out.push_str(&insts);
    out.push('\n');
    if spec.exclusion_tags {
        out.push_str("htools:iextags:service\n");
    }
    out
}

/// A nearly balanced cluster for benchmarks: equal nodes, equal DRBD
/// instances whose primaries are striped over all nodes and whose
/// secondaries are spread over every other node, except that a share of
/// the instances has its primary on the first (hot) nodes. The number of
/// moves hbal needs grows with that share.
#[derive(Debug, Clone)]
pub struct StripedSpec {
    pub nodes: usize,
    pub instances: usize,
    /// Per mille of the instances placed on the hot nodes.
    pub skew_permille: usize,
    /// Share of the nodes, from the first, that are hot.
    pub hot_fraction: f64,
    /// Instance memory (MiB), disk (MiB) and VCPUs.
    pub inst_mem: i64,
    pub inst_dsk: i64,
    pub inst_vcpus: i64,
}

impl Default for StripedSpec {
    fn default() -> Self {
        StripedSpec {
            nodes: 50,
            instances: 1000,
            skew_permille: 10,
            hot_fraction: 0.1,
            inst_mem: 2048,
            inst_dsk: 20 * 1024,
            inst_vcpus: 2,
        }
    }
}

/// Generates the text of a striped cluster file (see [`StripedSpec`]).
/// Nodes are sized so that every instance fits with room to move.
pub fn generate_striped(spec: &StripedSpec) -> String {
    let n = spec.nodes.max(2);
    let m = spec.instances;
    let hot = ((n as f64 * spec.hot_fraction).ceil() as usize).clamp(1, n);
    let skewed = m * spec.skew_permille / 1000;
    let per_node = m.div_ceil(n) as i64;
    let nmem = 1024i64;
    let node_mem = nmem + 4 * per_node * spec.inst_mem;
    let node_dsk = 4 * per_node * spec.inst_dsk;
    let node_cpus = (per_node * spec.inst_vcpus).max(8);
    let mut free_mem = vec![node_mem - nmem; n];
    let mut free_dsk = vec![node_dsk; n];
    let mut insts = String::new();
    for k in 0..m {
        let p = if k < skewed { k % hot } else { k % n };
        let s = (p + 1 + (k / n) % (n - 1)) % n;
        free_mem[p] -= spec.inst_mem;
        free_dsk[p] -= spec.inst_dsk;
        free_dsk[s] -= spec.inst_dsk;
        let _ = writeln!(
            insts,
            "inst{k:05}.example.com|{}|{}|{}|running|Y|node{p:04}.example.com|node{s:04}.example.com|drbd||1|-|N",
            spec.inst_mem, spec.inst_dsk, spec.inst_vcpus
        );
    }
    let mut out = String::from("default|uuid-default|preferred||\n\n");
    for i in 0..n {
        let _ = writeln!(
            out,
            "node{i:04}.example.com|{node_mem}|{nmem}|{}|{node_dsk}|{}|{node_cpus}|N|uuid-default|16||N|0|1|1.000000",
            free_mem[i], free_dsk[i]
        );
    }
    out.push('\n');
    out.push_str(&insts);
    out.push('\n');
    out
}
