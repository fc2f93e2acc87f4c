//! Allocation on dedicated clusters (Ganeti's `Dedicated` module).
//!
//! A node group is dedicated when all its nodes use exclusive storage:
//! whole disks belong to one instance, so what matters when placing an
//! instance is not the balance of the group but how many future instances
//! of each size of the policy the placement prevents. Such placements are
//! ranked by the "lost allocations" metric: for each minimal instance of
//! the policy's min/max pairs (largest disk first), how many fewer of them
//! the nodes can still take, then the free disk left on the nodes.

use std::cmp::Ordering;

use crate::alloc::{alloc_nodes, inst_matches_policy, AllocOptions};
use crate::model::{Cluster, Instance, NodeStats};
use crate::nodeops::{add_pri, add_sec, NodeView};
use crate::types::{AllocPolicy, DiskTemplate, FailMode, IPolicy, InstanceStatus, NO_SECONDARY};

/// Upper bound on the instances counted on one node, so that a policy
/// whose minimal instance takes no resources cannot loop forever.
const MAX_COUNT: i64 = 1 << 20;

/// The lost-allocations metric: allocations lost per test instance, then
/// the free disk left on the chosen nodes. Smaller is better.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Metric {
    pub lost: Vec<i64>,
    pub free_disk: i64,
}

impl std::fmt::Display for Metric {
    /// Ganeti's rendering of the metric, e.g. `([0,0,1],20490)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lost: Vec<String> = self.lost.iter().map(|x| x.to_string()).collect();
        write!(f, "([{}],{})", lost.join(","), self.free_disk)
    }
}

/// Whether the allocation targets are dedicated: every node uses
/// exclusive storage, except the nodes outside `group` (or, without a
/// group, outside every allocable group).
pub fn is_dedicated(c: &Cluster, group: Option<&str>) -> bool {
    let selected = |g: usize| match group {
        Some(name) => c.groups[g].name == name,
        None => c.groups[g].alloc_policy != AllocPolicy::Unallocable,
    };
    c.nodes
        .iter()
        .all(|n| n.s.excl_storage || !selected(n.group))
}

/// The instances whose remaining allocations the metric counts: the
/// minimal instance of each min/max pair, largest disk first.
pub fn test_instances(pol: &IPolicy) -> Vec<Instance> {
    let mut mins: Vec<_> = pol.minmax.iter().map(|mm| mm.min).collect();
    mins.sort_by_key(|s| std::cmp::Reverse(s.disk_size));
    mins.iter()
        .map(|s| {
            Instance::new(
                "minimalspecinstance",
                s.mem_size,
                s.disk_size,
                Vec::new(),
                s.cpu_count,
                InstanceStatus::Running,
                Vec::new(),
                false,
                NO_SECONDARY,
                NO_SECONDARY,
                DiskTemplate::Plain,
                s.spindle_use,
                false,
            )
        })
        .collect()
}

/// How many copies of each test instance still fit on a node, one after
/// the other, as primaries.
pub fn allocation_vector(tests: &[Instance], node: &crate::model::Node, s: &NodeStats) -> Vec<i64> {
    tests
        .iter()
        .map(|t| {
            let mut view = NodeView::new(node);
            let mut cur = *s;
            let mut n = 0;
            while n < MAX_COUNT && add_pri(&mut view, &mut cur, t, 0, false).is_ok() {
                n += 1;
            }
            n
        })
        .collect()
}

fn lost(before: &[i64], after: &[i64]) -> Vec<i64> {
    before.iter().zip(after).map(|(b, a)| b - a).collect()
}

/// The metric of placing `inst` on primary `p` (and secondary `s`).
pub fn placement_metric(
    c: &Cluster,
    inst: &Instance,
    p: usize,
    s: usize,
    force: bool,
) -> Result<Metric, FailMode> {
    let pn = &c.nodes[p];
    let tests = test_instances(&pn.ipolicy);
    inst_matches_policy(inst, &pn.ipolicy, pn.s.excl_storage)?;
    let mut pv = NodeView::new(pn);
    let mut ps = pn.s;
    add_pri(&mut pv, &mut ps, inst, 0, force)?;
    let mut m = Metric {
        lost: lost(
            &allocation_vector(&tests, pn, &pn.s),
            &allocation_vector(&tests, pn, &ps),
        ),
        free_disk: ps.f_dsk,
    };
    if s != NO_SECONDARY {
        let sn = &c.nodes[s];
        let mut ss = sn.s;
        add_sec(&NodeView::new(sn), &mut ss, inst, p, false, false)?;
        let l = lost(
            &allocation_vector(&tests, sn, &sn.s),
            &allocation_vector(&tests, sn, &ss),
        );
        for (a, b) in m.lost.iter_mut().zip(l) {
            *a += b;
        }
        m.free_disk += ss.f_dsk;
    }
    Ok(m)
}

/// The outcome of placing one instance in one group.
#[derive(Debug, Clone, Default)]
pub struct Solution {
    pub failures: Vec<FailMode>,
    pub allocs: usize,
    /// Chosen nodes (primary, then secondary) and their metric.
    pub best: Option<(Vec<usize>, Metric)>,
}

impl Solution {
    /// Ganeti's description of the solution.
    pub fn describe(&self, c: &Cluster) -> String {
        crate::alloc::describe_solution(
            c,
            &self.failures,
            self.allocs,
            self.best
                .as_ref()
                .map(|(n, m)| (n.as_slice(), m.to_string())),
        )
    }

    fn consider(&mut self, nodes: Vec<usize>, r: Result<Metric, FailMode>) {
        match r {
            Err(f) => self.failures.push(f),
            Ok(m) => {
                self.allocs += 1;
                // among equal metrics the one found last wins, as in Ganeti
                let better = match &self.best {
                    None => true,
                    Some((_, b)) => m.cmp(b) != Ordering::Greater,
                };
                if better {
                    self.best = Some((nodes, m));
                }
            }
        }
    }
}

/// Places `inst` within group `g` by the lost-allocations metric (Ganeti's
/// `findAllocation`); an error is a message about the group as a whole.
pub fn group_allocation(
    c: &Cluster,
    g: usize,
    inst: &Instance,
    count: usize,
    opts: &AllocOptions,
) -> Result<Solution, String> {
    let grp = &c.groups[g];
    if !crate::alloc::has_networks(c, g, inst) {
        return Err(format!(
            "The group {} is not connected to a network required by instance {}",
            grp.name, inst.name
        ));
    }
    let nodes = alloc_nodes(c, g, opts);
    let force = opts.ignore_soft_errors;
    let mut sol = Solution::default();
    match count {
        1 => {
            if nodes.is_empty() {
                return Err("No online nodes".into());
            }
            for &p in &nodes {
                sol.consider(vec![p], placement_metric(c, inst, p, NO_SECONDARY, force));
            }
        }
        2 => {
            if nodes.len() < 2 {
                return Err("Not enough online nodes".into());
            }
            for &p in &nodes {
                for &s in nodes.iter().filter(|&&s| s != p) {
                    sol.consider(vec![p, s], placement_metric(c, inst, p, s, force));
                }
            }
        }
        _ => return Err("Unsupported number of nodes, only one or two  supported".into()),
    }
    Ok(sol)
}

/// The log line of one group's attempt.
fn group_message(c: &Cluster, g: usize, r: &Result<Solution, String>) -> String {
    let grp = &c.groups[g];
    match r {
        Ok(sol) => format!(
            "Group {} ({}): {}",
            grp.name,
            grp.alloc_policy.as_str(),
            sol.describe(c)
        ),
        Err(e) => format!("Group {}: error {e}", grp.name),
    }
}

/// Places `inst` in the best group (Ganeti's `findMGAllocation`), among
/// all groups with nodes or only group `only`: the chosen group, nodes
/// and the log lines, or the error text.
pub fn best_group(
    c: &Cluster,
    only: Option<usize>,
    inst: &Instance,
    count: usize,
    opts: &AllocOptions,
) -> Result<(usize, Vec<usize>, Vec<String>), String> {
    let mut groups: Vec<usize> = c
        .nodes
        .iter()
        .map(|n| n.group)
        .filter(|g| only.is_none_or(|o| o == *g))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let results: Vec<(usize, Result<Solution, String>)> = groups
        .iter()
        .map(|&g| (g, group_allocation(c, g, inst, count, opts)))
        .collect();
    let msgs: Vec<String> = results
        .iter()
        .map(|(g, r)| group_message(c, *g, r))
        .collect();
    let mut good: Vec<(usize, Vec<usize>, Metric)> = results
        .into_iter()
        .filter(|(g, _)| c.groups[*g].is_allocable())
        .filter_map(|(g, r)| r.ok().and_then(|s| s.best).map(|(n, m)| (g, n, m)))
        .collect();
    // Ganeti collects the groups in reverse, then sorts stably
    good.reverse();
    good.sort_by(|a, b| {
        c.groups[a.0]
            .alloc_policy
            .cmp(&c.groups[b.0].alloc_policy)
            .then_with(|| a.2.cmp(&b.2))
    });
    match good.into_iter().next() {
        None => Err(msgs.join(", ")),
        Some((g, nodes, _)) => {
            let mut log = vec![format!("Selected group: {}", c.groups[g].name)];
            log.extend(msgs);
            Ok((g, nodes, log))
        }
    }
}

/// The group of a request by name or UUID, with Ganeti's error text.
fn find_group(c: &Cluster, name: &str) -> Result<usize, String> {
    c.group_index(name)
        .ok_or_else(|| format!("Wrong number of elems found with name {name}"))
}

/// Which groups an allocation request targets, as Ganeti's hail decides
/// whether to use this metric: `None` if the request is no allocation;
/// else the one group named (a multi-allocation names one group only if
/// all its instances that name one agree), or no group for all.
pub fn request_target(kind: &crate::backend::iallocator::RequestKind) -> Option<Option<String>> {
    use crate::backend::iallocator::RequestKind;
    match kind {
        RequestKind::Allocate { group, .. } => Some(group.clone()),
        RequestKind::MultiAllocate(reqs) => {
            let mut named: Vec<&String> = reqs.iter().filter_map(|r| r.2.as_ref()).collect();
            named.sort();
            named.dedup();
            Some(match named.as_slice() {
                [one] => Some((*one).clone()),
                _ => None,
            })
        }
        _ => None,
    }
}

/// One allocation request on a dedicated cluster: the chosen nodes (the
/// instance is placed on them in `c`) and the response's info text, or
/// the failure text.
pub fn allocate(
    c: &mut Cluster,
    inst: Instance,
    count: usize,
    group: Option<&str>,
    opts: &AllocOptions,
) -> Result<(Vec<usize>, String), String> {
    let (nodes, info) = match group {
        None => {
            let (_, nodes, log) = best_group(c, None, &inst, count, opts)?;
            (nodes, log.join(", "))
        }
        Some(name) => {
            let g = find_group(c, name)?;
            let r = group_allocation(c, g, &inst, count, opts);
            let msg = group_message(c, g, &r);
            match r?.best {
                Some((nodes, _)) => (nodes, msg),
                None => return Err(msg),
            }
        }
    };
    place(c, inst, &nodes)?;
    Ok((nodes, info))
}

fn place(c: &mut Cluster, inst: Instance, nodes: &[usize]) -> Result<usize, String> {
    let name = inst.name.clone();
    let (p, s) = match nodes {
        [p] => (*p, NO_SECONDARY),
        [p, s] => (*p, *s),
        _ => return Err(format!("internal error: no nodes chosen for {name}")),
    };
    crate::alloc::place_instance(c, inst, p, s, true)
        .map_err(|f| format!("internal error placing {name}: {}", f.name()))
}

/// The outcome of a multi-allocation: instances placed (name, nodes) and
/// instances that did not fit (name, reason).
#[derive(Debug, Clone, Default)]
pub struct MultiResult {
    pub allocated: Vec<(String, Vec<usize>)>,
    pub failed: Vec<(String, String)>,
}

/// A multi-allocation request on a dedicated cluster (Ganeti's
/// `runDedicatedAllocation`). An instance without a group that fits no
/// group fails the whole request; one with a group is recorded as failed.
/// Ganeti's quirks are kept: after a placement, later instances only see
/// the group of that placement; and an instance with a group is placed
/// against the cluster as the request found it, ignoring the instances
/// placed before it, the state then continuing from that placement alone.
pub fn multi_allocate(
    c: &mut Cluster,
    reqs: Vec<(Instance, usize, Option<String>)>,
    opts: &AllocOptions,
) -> Result<MultiResult, String> {
    let original = c.clone();
    let mut only = None;
    let mut res = MultiResult::default();
    for (inst, count, group) in reqs {
        let name = inst.name.clone();
        match group {
            None => {
                let (g, nodes, _) = best_group(c, only, &inst, count, opts)?;
                place(c, inst, &nodes)?;
                only = Some(g);
                res.allocated.push((name, nodes));
            }
            Some(gn) => {
                let g = find_group(&original, &gn)?;
                let sol = group_allocation(&original, g, &inst, count, opts)?;
                match sol.best {
                    Some((nodes, _)) => {
                        *c = original.clone();
                        place(c, inst, &nodes)?;
                        only = Some(g);
                        res.allocated.push((name, nodes));
                    }
                    None => res.failed.push((name, sol.describe(&original))),
                }
            }
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ISpec, MinMaxISpecs};

    /// A group "ded" of three nodes with exclusive storage and a group
    /// "other" of one node without, of the given allocation policy; the
    /// policy's one min/max pair has a minimal instance of 1000 MiB,
    /// 10000 MiB of disk.
    fn cluster(other_policy: &str) -> Cluster {
        let pol = "1000,1,10000,1,1,1|1000,1,10000,1,1,1;4000,4,40000,4,4,4\
                   |plain,drbd|4.0|32.0";
        let text = format!(
            "ded|uuid-ded|preferred||\nother|uuid-other|{other_policy}||\n\n\
             n1|4096|0|4096|40960|40960|8|N|uuid-ded|5||Y|5|1|1.0\n\
             n2|4096|0|2048|40960|20480|8|N|uuid-ded|5||Y|5|1|1.0\n\
             n3|8192|0|8192|163840|163840|8|N|uuid-ded|5||Y|5|1|1.0\n\
             o1|8192|0|8192|81920|81920|8|N|uuid-other|5||N|5|1|1.0\n\
             \n\n\n|{pol}\nded|{pol}\nother|{pol}\n"
        );
        let mut c = crate::backend::text::parse(&text).expect("parse");
        crate::loader::merge(&mut c, &Default::default()).expect("merge");
        c
    }

    fn new_instance(mem: i64, dsk: i64) -> Instance {
        let spec = crate::capacity::RSpec {
            cpu: 1,
            mem,
            dsk,
            spn: 1,
        };
        crate::capacity::inst_from_spec(&spec, DiskTemplate::Plain, 1)
    }

    /// Allocates a plain instance in any group, without capacity checks.
    fn allocate_one(c: &mut Cluster, mem: i64, dsk: i64) -> (Vec<usize>, String) {
        let opts = AllocOptions {
            no_capacity_checks: true,
            ..Default::default()
        };
        allocate(c, new_instance(mem, dsk), 1, None, &opts).expect("allocates")
    }

    #[test]
    fn dedicated_means_exclusive_storage_on_every_targeted_node() {
        let c = cluster("unallocable");
        // the other group is unallocable, so it does not count
        assert!(is_dedicated(&c, None));
        assert!(is_dedicated(&c, Some("ded")));
        assert!(!is_dedicated(&c, Some("other")));
        let c = cluster("preferred");
        assert!(!is_dedicated(&c, None));
        assert!(is_dedicated(&c, Some("ded")));
    }

    #[test]
    fn allocation_vector_counts_the_minimal_instances_that_fit() {
        let c = cluster("unallocable");
        let tests = test_instances(&c.nodes[0].ipolicy);
        let count = |i: usize| allocation_vector(&tests, &c.nodes[i], &c.nodes[i].s);
        // n1: 4096 MiB free, 1000 each (memory must stay above zero)
        assert_eq!(count(0), vec![4]);
        // n2: 2048 MiB and 20480 MiB of disk free
        assert_eq!(count(1), vec![2]);
        // n3: 8192 MiB; its 5 spindles do not count, as the test
        // instances have no disks (as in Ganeti)
        assert_eq!(count(2), vec![8]);
    }

    #[test]
    fn allocation_prefers_the_node_where_fewest_allocations_are_lost() {
        let mut c = cluster("unallocable");
        // 1000 MiB, 30000 MiB of disk: n1 (disk-bound) loses three
        // minimal instances, n2 has not the disk, n3 (memory-bound, with
        // disk to spare) loses one
        let (nodes, info) = allocate_one(&mut c, 1000, 30000);
        assert_eq!(nodes, vec![2], "{info}");
        assert!(
            info.starts_with(
                "Selected group: ded, Group ded (preferred): score: ([1],133840), \
                 successes 2, failures 1 (FailDisk: 1) for node(s) n3"
            ),
            "{info}"
        );
        // the instance is placed: n3 has one spindle less
        assert_eq!(c.nodes[2].s.f_spindles, 4);
    }

    #[test]
    fn equal_losses_go_to_the_node_with_least_disk_left() {
        let mut c = cluster("unallocable");
        // 1500 MiB costs two minimal instances everywhere; n2 keeps the
        // least disk
        let (nodes, info) = allocate_one(&mut c, 1500, 10000);
        assert_eq!(nodes, vec![1], "{info}");
        assert!(info.contains("score: ([2],10480)"), "{info}");
    }

    #[test]
    fn multi_allocation_of_a_too_large_instance_fails_the_request() {
        let mut c = cluster("unallocable");
        let opts = AllocOptions::default();
        let reqs = vec![
            (new_instance(1000, 10000), 1, None),
            (new_instance(100_000, 10000), 1, None),
        ];
        let err = multi_allocate(&mut c, reqs, &opts).expect_err("second cannot fit");
        assert!(err.contains("No valid allocation solutions"), "{err}");
    }

    fn spec(mem: i64, dsk: i64, cpu: i64) -> ISpec {
        ISpec {
            mem_size: mem,
            disk_size: dsk,
            cpu_count: cpu,
            ..ISpec::DEF_MIN
        }
    }

    #[test]
    fn test_instances_are_the_minimal_specs_by_decreasing_disk() {
        let pol = IPolicy {
            minmax: vec![
                MinMaxISpecs {
                    min: spec(100, 1000, 1),
                    max: spec(200, 2000, 2),
                },
                MinMaxISpecs {
                    min: spec(300, 3000, 3),
                    max: spec(400, 4000, 4),
                },
            ],
            ..IPolicy::default()
        };
        let t = test_instances(&pol);
        let got: Vec<(i64, i64, i64)> = t.iter().map(|i| (i.mem, i.dsk, i.vcpus)).collect();
        assert_eq!(got, vec![(300, 3000, 3), (100, 1000, 1)]);
        assert!(t.iter().all(|i| i.disks.is_empty()));
    }

    #[test]
    fn metric_orders_by_lost_allocations_then_free_disk() {
        let a = Metric {
            lost: vec![0, 1],
            free_disk: 900,
        };
        let b = Metric {
            lost: vec![1, 0],
            free_disk: 100,
        };
        let c = Metric {
            lost: vec![0, 1],
            free_disk: 100,
        };
        assert!(a < b);
        assert!(c < a);
        assert_eq!(c.to_string(), "([0,1],100)");
        let neg = Metric {
            lost: vec![-1],
            free_disk: -5,
        };
        assert_eq!(neg.to_string(), "([-1],-5)");
    }

    #[test]
    fn equal_metrics_keep_the_last_placement() {
        let mut s = Solution::default();
        let m = Metric {
            lost: vec![1],
            free_disk: 10,
        };
        s.consider(vec![0], Ok(m.clone()));
        s.consider(vec![1], Err(FailMode::Mem));
        s.consider(vec![2], Ok(m.clone()));
        s.consider(
            vec![3],
            Ok(Metric {
                lost: vec![2],
                free_disk: 0,
            }),
        );
        assert_eq!(s.best.as_ref().map(|b| b.0.clone()), Some(vec![2]));
        assert_eq!(s.allocs, 3);
        assert_eq!(s.failures, vec![FailMode::Mem]);
    }
}
