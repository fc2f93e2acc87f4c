//! Capacity planning (hspace): cluster resource statistics and repeated
//! allocation of standard-size and tiered instances.

use crate::alloc::{try_alloc, AllocOptions};
use crate::metrics::ClusterStats;
use crate::model::{Cluster, Disk, Instance};
use crate::types::{DiskTemplate, FailMode, InstanceStatus, TemplateExt, NO_SECONDARY};

/// Cluster-wide resource statistics (Ganeti's `CStats`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CStats {
    pub fmem: i64,
    pub fdsk: i64,
    pub fspn: i64,
    pub amem: i64,
    pub adsk: i64,
    pub acpu: i64,
    pub mmem: i64,
    pub mdsk: i64,
    pub mcpu: i64,
    pub imem: i64,
    pub idsk: i64,
    pub ispn: i64,
    pub icpu: i64,
    pub tmem: f64,
    pub tdsk: f64,
    pub tspn: f64,
    pub tcpu: f64,
    pub vcpu: i64,
    pub ncpu: f64,
    pub xmem: i64,
    pub nmem: i64,
    pub score: f64,
    pub ninst: usize,
}

/// Totals over all nodes (Ganeti's `totalResources`).
pub fn total_resources(c: &Cluster) -> CStats {
    let mut cs = CStats::default();
    for n in &c.nodes {
        let s = &n.s;
        cs.fmem += s.unallocated_mem();
        cs.fdsk += s.f_dsk;
        cs.fspn += s.f_spindles;
        cs.amem += s.avail_mem();
        cs.adsk += s.avail_disk();
        cs.acpu += s.avail_cpu();
        cs.mmem = cs.mmem.max(s.avail_mem());
        cs.mdsk = cs.mdsk.max(s.avail_disk());
        cs.mcpu = cs.mcpu.max(s.avail_cpu());
        cs.imem += s.i_mem;
        cs.idsk += s.t_dsk.trunc() as i64 - s.f_dsk;
        cs.ispn += s.t_spindles - s.f_spindles;
        cs.icpu += s.u_cpu;
        cs.tmem += s.t_mem;
        cs.tdsk += s.t_dsk;
        cs.tspn += s.t_spindles as f64;
        cs.tcpu += s.t_cpu;
        cs.vcpu += s.hi_cpu;
        cs.ncpu += s.u_cpu as f64 / s.vcpu_ratio;
        cs.xmem += s.x_mem;
        cs.nmem += s.n_mem;
        cs.ninst += s.n_pri;
    }
    cs.score = ClusterStats::compute(c.nodes.iter()).score();
    cs
}

/// A requested instance size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RSpec {
    pub cpu: i64,
    pub mem: i64,
    pub dsk: i64,
    pub spn: i64,
}

/// A new instance of the given size.
pub fn inst_from_spec(sp: &RSpec, dt: DiskTemplate, su: i64) -> Instance {
    Instance::new(
        "new",
        sp.mem,
        sp.dsk,
        vec![Disk {
            size: sp.dsk,
            spindles: Some(sp.spn),
        }],
        sp.cpu,
        InstanceStatus::Running,
        Vec::new(),
        true,
        NO_SECONDARY,
        NO_SECONDARY,
        dt,
        su,
        false,
    )
}

pub fn spec_of(i: &Instance) -> RSpec {
    let spn = match i.disks.as_slice() {
        [Disk {
            spindles: Some(s), ..
        }] => *s,
        _ => 0,
    };
    RSpec {
        cpu: i.vcpus,
        mem: i.mem,
        dsk: i.dsk,
        spn,
    }
}

/// Shrinks an instance by one unit of the failing resource.
pub fn shrink(inst: &Instance, fm: FailMode) -> Option<Instance> {
    let mut i = inst.clone();
    match fm {
        FailMode::Mem => {
            let v = i.mem - 64;
            if v < 64 {
                return None;
            }
            i.mem = v;
        }
        FailMode::Disk => {
            if i.disks.iter().any(|d| d.size - 256 < 256) {
                return None;
            }
            for d in i.disks.iter_mut() {
                d.size -= 256;
            }
            i.dsk -= 256 * i.disks.len() as i64;
        }
        FailMode::Cpu => {
            let v = i.vcpus - 1;
            if v < 1 {
                return None;
            }
            i.vcpus = v;
        }
        FailMode::Spindles => match i.disks.as_mut_slice() {
            [Disk {
                spindles: Some(s), ..
            }] => {
                if *s - 1 < 1 {
                    return None;
                }
                *s -= 1;
            }
            _ => return None,
        },
        _ => return None,
    }
    Some(i)
}

/// Failure counts, as Ganeti collapses them: every mode, in order.
pub fn collapse_failures(f: &[FailMode]) -> Vec<(FailMode, usize)> {
    FailMode::ALL
        .iter()
        .map(|&m| (m, f.iter().filter(|x| **x == m).count()))
        .collect()
}

/// The outcome of a capacity run.
#[derive(Debug, Clone)]
pub struct AllocRun {
    /// Failure counts of the last failed attempt, most frequent first.
    pub reasons: Vec<(FailMode, usize)>,
    /// Indices of the instances allocated, in order.
    pub allocated: Vec<usize>,
}

/// A limit on the number of allocations, as Ganeti's `-l` passes it down:
/// `None` is unbounded, `Some(n)` stops after `n` placements (a negative
/// `n` never stops an iteration, as in Ganeti).
pub type Limit = Option<i64>;

fn limit_reached(limit: Limit, done: usize) -> bool {
    matches!(limit, Some(n) if n >= 0 && done as i64 >= n)
}

/// Allocates copies of `inst` on `nodes` until one does not fit (or
/// `limit` are placed by this call), appending them to `out`. Each
/// placement is first chosen without the global N+1 check; only if the
/// result is not redundant are the candidates checked one by one (as
/// Ganeti's big and small steps do). Returns the failures of the last
/// attempt, which is the one that did not fit, or the one after the limit.
pub fn iterate_alloc(
    c: &mut Cluster,
    nodes: &[usize],
    inst: &Instance,
    limit: Limit,
    opts: &AllocOptions,
    out: &mut Vec<usize>,
) -> Vec<(FailMode, usize)> {
    let count = inst.template.required_nodes();
    let check = !opts.no_capacity_checks && inst.template != DiskTemplate::Drbd;
    let mut loose = opts.clone();
    loose.no_capacity_checks = true;
    let mut placed = 0usize;
    let mut strict_used = false;
    loop {
        let mut i = inst.clone();
        i.name = format!("new-{}", out.len());
        i.alias = i.name.clone();
        let sol = try_alloc(c, nodes, &i, count, &loose);
        let Some((mut ns, _)) = sol.best else {
            return collapse_failures(&sol.failures);
        };
        if limit_reached(limit, placed) && !strict_used {
            // Ganeti's last big step was redundant: its extra try is loose
            return collapse_failures(&sol.failures);
        }
        if check && !crate::alloc::redundant_after(c, &i, &ns, opts) {
            let strict = try_alloc(c, nodes, &i, count, opts);
            match strict.best {
                None => return collapse_failures(&strict.failures),
                Some((n2, _)) => ns = n2,
            }
            strict_used = true;
            if limit_reached(limit, placed) {
                return collapse_failures(&strict.failures);
            }
        }
        let s = ns.get(1).copied().unwrap_or(NO_SECONDARY);
        match crate::alloc::place_instance(c, i, ns[0], s, true) {
            Ok(idx) => {
                out.push(idx);
                placed += 1;
            }
            Err(f) => return collapse_failures(&[f]),
        }
    }
}

fn sort_reasons(mut r: Vec<(FailMode, usize)>) -> Vec<(FailMode, usize)> {
    r.sort_by_key(|x| std::cmp::Reverse(x.1));
    r
}

/// Standard (fixed-size) allocation.
pub fn standard(
    c: &mut Cluster,
    nodes: &[usize],
    inst: &Instance,
    limit: Limit,
    opts: &AllocOptions,
) -> AllocRun {
    let mut out = Vec::new();
    let r = iterate_alloc(c, nodes, inst, limit, opts, &mut out);
    AllocRun {
        reasons: sort_reasons(r),
        allocated: out,
    }
}

/// Tiered allocation (Ganeti's `tieredAlloc`) from each starting size in
/// turn (hspace's tiered mode has one start per min/max pair of the
/// policy): allocate as many as fit, then shrink the instance along its
/// most frequent failure and go on; if that allocates nothing more, shrink
/// along one failure mode until the instance fits again. Each start
/// continues on the cluster the previous one left, and the limit counts
/// the instances of all of them. The failure reasons are those of the
/// last start that ran.
pub fn tiered_multi(
    c: &mut Cluster,
    nodes: &[usize],
    starts: &[Instance],
    limit: Limit,
    opts: &AllocOptions,
) -> AllocRun {
    // one level of recursion per shrinking step (thousands for memory):
    // run on a thread with a stack large enough for that
    std::thread::scope(|s| {
        let h = std::thread::Builder::new()
            .stack_size(1 << 30)
            .spawn_scoped(s, || {
                let mut out = Vec::new();
                let mut reasons = Vec::new();
                for inst in starts {
                    let left = match limit {
                        Some(n) if n <= out.len() as i64 => break,
                        Some(n) => Some(n - out.len() as i64),
                        None => None,
                    };
                    reasons = tiered_rec(c, nodes, inst, left, opts, &mut out);
                }
                AllocRun {
                    reasons: sort_reasons(reasons),
                    allocated: out,
                }
            });
        match h {
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(_) => AllocRun {
                reasons: collapse_failures(&[FailMode::Internal]),
                allocated: Vec::new(),
            },
        }
    })
}

/// The first size reached by shrinking `inst` along `fm` that can be
/// allocated, as long as every smaller size still fails (also) for `fm`.
/// As Ganeti's `sufficesShrinking`, a size that cannot be shrunk any
/// further is not tried.
fn suffices_shrinking(
    c: &Cluster,
    nodes: &[usize],
    inst: &Instance,
    fm: FailMode,
    opts: &AllocOptions,
) -> Option<Instance> {
    let count = inst.template.required_nodes();
    let mut cur = inst.clone();
    loop {
        let next = shrink(&cur, fm)?;
        let sol = try_alloc(c, nodes, &cur, count, opts);
        if sol.best.is_some() {
            return Some(cur);
        }
        if !sol.failures.contains(&fm) {
            return None;
        }
        cur = next;
    }
}

fn tiered_rec(
    c: &mut Cluster,
    nodes: &[usize],
    inst: &Instance,
    limit: Limit,
    opts: &AllocOptions,
    out: &mut Vec<usize>,
) -> Vec<(FailMode, usize)> {
    let errs = iterate_alloc(c, nodes, inst, limit, opts, out);
    // as Ganeti, the limit left is compared with all instances placed so
    // far, including those of earlier steps and starts
    let total = out.len() as i64;
    if matches!(limit, Some(n) if n <= total) {
        return errs;
    }
    let newlimit = limit.map(|n| n - total);
    let mut sorted = errs.clone();
    sorted.sort_by_key(|x| x.1);
    let before = out.len();
    if let Some(next) = sorted.last().and_then(|&(top, _)| shrink(inst, top)) {
        let r = tiered_rec(c, nodes, &next, newlimit, opts, out);
        if out.len() > before {
            return r;
        }
    }
    // no progress: find a failure mode along which shrinking alone helps
    for &(fm, _) in sorted.iter().rev() {
        if let Some(i) = suffices_shrinking(c, nodes, inst, fm, opts) {
            return tiered_rec(c, nodes, &i, newlimit, opts, out);
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two empty nodes of 8 GiB and 100 GiB of disk.
    fn cluster() -> Cluster {
        let text = "default|uuid-default|preferred||\n\n\
                    n1|8192|0|8192|102400|102400|16|N|uuid-default|1||N|0|1|1.0\n\
                    n2|8192|0|8192|102400|102400|16|N|uuid-default|1||N|0|1|1.0\n\n\n";
        let mut c = crate::backend::text::parse(text).expect("parse");
        crate::loader::merge(&mut c, &Default::default()).expect("merge");
        c
    }

    fn starts() -> Vec<Instance> {
        [(2048, 10240, 2), (1024, 5120, 1)]
            .iter()
            .map(|&(mem, dsk, cpu)| {
                inst_from_spec(
                    &RSpec {
                        cpu,
                        mem,
                        dsk,
                        spn: 1,
                    },
                    DiskTemplate::Plain,
                    1,
                )
            })
            .collect()
    }

    fn run(limit: Limit) -> AllocRun {
        let mut c = cluster();
        let opts = AllocOptions {
            no_capacity_checks: true,
            ..Default::default()
        };
        tiered_multi(&mut c, &[0, 1], &starts(), limit, &opts)
    }

    #[test]
    fn the_limit_counts_the_instances_of_all_starts() {
        assert_eq!(run(Some(3)).allocated.len(), 3);
        let all = run(None).allocated.len();
        assert!(all > 3, "{all} instances without a limit");
    }

    #[test]
    fn a_negative_limit_stops_tiered_allocation_before_it_starts() {
        // Ganeti compares the limit with the instances placed so far
        let r = run(Some(-2));
        assert!(r.allocated.is_empty());
    }

    #[test]
    fn standard_allocation_with_a_negative_limit_is_unbounded() {
        let mut c = cluster();
        let opts = AllocOptions {
            no_capacity_checks: true,
            ..Default::default()
        };
        let inst = &starts()[0];
        let unbounded = standard(&mut c.clone(), &[0, 1], inst, None, &opts);
        let negative = standard(&mut c, &[0, 1], inst, Some(-2), &opts);
        // 8192 MiB per node: three of 2048 each (memory must stay free)
        assert_eq!(unbounded.allocated.len(), 6);
        assert_eq!(negative.allocated.len(), 6);
    }
}
