//! Reboot groups (hroller): colouring the graph of nodes that must not
//! reboot together, as Ganeti's hroller does.

use std::collections::BTreeMap;

use crate::model::Cluster;
use crate::moves::{apply_effect, eval_move};
use crate::nodeops::{add_pri, commit_add_pri, commit_remove_pri, remove_pri, NodeView};
use crate::types::{DiskTemplate, IMove, NO_SECONDARY};

/// An undirected multigraph over node indices `lo..=hi` (adjacency lists
/// keep duplicate edges, as Ganeti's do, since degrees count them).
pub struct Graph {
    pub lo: usize,
    pub adj: Vec<Vec<usize>>,
}

impl Graph {
    fn deg(&self, v: usize) -> usize {
        self.adj[v - self.lo].len()
    }
    fn neigh(&self, v: usize) -> &[usize] {
        &self.adj[v - self.lo]
    }
    fn vertices(&self) -> std::ops::Range<usize> {
        self.lo..self.lo + self.adj.len()
    }
}

/// Builds the reboot graph of the selected `nodes`: primary and secondary
/// of each DRBD instance are connected, and (unless `offline_maintenance`)
/// so are the primaries of instances sharing a secondary.
pub fn reboot_graph(c: &Cluster, nodes: &[usize], offline_maintenance: bool) -> Option<Graph> {
    let lo = *nodes.iter().min()?;
    let hi = *nodes.iter().max()?;
    let valid = |x: usize| nodes.contains(&x);
    let mut edges = Vec::new();
    for i in &c.instances {
        if i.template == DiskTemplate::Drbd && i.snode != crate::types::NO_SECONDARY {
            edges.push((i.pnode, i.snode));
            edges.push((i.snode, i.pnode));
        }
    }
    if !offline_maintenance {
        for n in &c.nodes {
            let prims: Vec<usize> = n.slist.iter().map(|&i| c.instances[i].pnode).collect();
            for &a in &prims {
                for &b in &prims {
                    if !edges.contains(&(a, b)) {
                        edges.push((a, b));
                    }
                }
            }
        }
    }
    let mut adj = vec![Vec::new(); hi - lo + 1];
    for (a, b) in edges {
        if valid(a) && valid(b) {
            adj[a - lo].insert(0, b);
        }
    }
    Some(Graph { lo, adj })
}

fn color_node(g: &Graph, cmap: &BTreeMap<usize, usize>, v: usize) -> usize {
    let used: Vec<usize> = g
        .neigh(v)
        .iter()
        .filter_map(|n| cmap.get(n).copied())
        .collect();
    (0..).find(|c| !used.contains(c)).unwrap_or(0)
}

fn color_lf(g: &Graph) -> BTreeMap<usize, usize> {
    let mut order: Vec<usize> = g.vertices().collect();
    order.sort_by_key(|&v| g.deg(v));
    let mut cmap = BTreeMap::new();
    for &v in order.iter().rev() {
        let c = color_node(g, &cmap, v);
        cmap.insert(v, c);
    }
    cmap
}

fn color_dynamic(
    g: &Graph,
    key: impl Fn(&BTreeMap<usize, usize>, usize) -> (usize, usize),
) -> BTreeMap<usize, usize> {
    let mut left: Vec<usize> = g.vertices().collect();
    let mut cmap = BTreeMap::new();
    while !left.is_empty() {
        let mut best = 0;
        for i in 0..left.len() {
            if key(&cmap, left[i]) >= key(&cmap, left[best]) {
                best = i;
            }
        }
        let v = left.remove(best);
        let c = color_node(g, &cmap, v);
        cmap.insert(v, c);
    }
    cmap
}

fn by_color(cmap: &BTreeMap<usize, usize>) -> Vec<Vec<usize>> {
    let mut m: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (&v, &c) in cmap {
        m.entry(c).or_default().push(v);
    }
    m.into_values().collect()
}

/// The smallest of the LF, DSatur and DColor colourings, as groups of
/// vertices (by colour).
pub fn smallest_coloring(g: &Graph) -> Vec<Vec<usize>> {
    let lf = color_lf(g);
    let dsatur = color_dynamic(g, |cm, v| {
        let mut cs: Vec<usize> = g
            .neigh(v)
            .iter()
            .filter_map(|n| cm.get(n).copied())
            .collect();
        cs.sort_unstable();
        cs.dedup();
        (cs.len(), g.deg(v))
    });
    let dcolor = color_dynamic(g, |cm, v| {
        (
            g.neigh(v).iter().filter(|n| cm.contains_key(n)).count(),
            g.deg(v),
        )
    });
    let all = [by_color(&lf), by_color(&dsatur), by_color(&dcolor)];
    let mut best = &all[0];
    for a in &all[1..] {
        if a.len() < best.len() {
            best = a;
        }
    }
    best.clone()
}

/// Non-redundant (not DRBD) primaries of a node, the last placed first
/// (the order of Ganeti's instance lists, which each placement prepends
/// to).
fn non_redundant(c: &Cluster, n: usize) -> Vec<usize> {
    c.nodes[n]
        .plist
        .iter()
        .rev()
        .copied()
        .filter(|&i| c.instances[i].template != DiskTemplate::Drbd)
        .collect()
}

fn relocate(c: &mut Cluster, insts: &[usize], targets: &[usize]) -> bool {
    for &i in insts {
        let inst = c.instances[i].clone();
        let mut placed = false;
        for &t in targets {
            let mut v = NodeView::new(&c.nodes[t]);
            let mut st = c.nodes[t].s;
            if add_pri(&mut v, &mut st, &inst, inst.location_score, true).is_ok() {
                let old = inst.pnode;
                let mut vo = NodeView::new(&c.nodes[old]);
                let mut so = c.nodes[old].s;
                remove_pri(&mut vo, &mut so, &inst, inst.location_score);
                commit_remove_pri(&mut c.nodes[old], i, &inst);
                c.nodes[old].s = so;
                commit_add_pri(&mut c.nodes[t], i, &inst);
                c.nodes[t].s = st;
                c.instances[i].pnode = t;
                placed = true;
                break;
            }
        }
        if !placed {
            return false;
        }
    }
    true
}

/// Greedily picks the nodes of `group` that can be cleared together of
/// the instances `what` lists, by `relocate` to other nodes of the same
/// group among `targets` (Ganeti's `greedyClearNodes`); returns them with
/// the cluster once they are cleared.
fn clear_nodes(
    c: &Cluster,
    group: &[usize],
    targets: &[usize],
    what: fn(&Cluster, usize) -> Vec<usize>,
    relocate: fn(&mut Cluster, &[usize], &[usize]) -> bool,
) -> (Vec<usize>, Cluster) {
    let Some((&n, tail)) = group.split_first() else {
        return (Vec::new(), c.clone());
    };
    let others: Vec<usize> = targets.iter().copied().filter(|&t| t != n).collect();
    let grp = c.nodes[n].group;
    let same: Vec<usize> = others
        .iter()
        .copied()
        .filter(|&t| c.nodes[t].group == grp)
        .collect();
    let mut c2 = c.clone();
    if relocate(&mut c2, &what(c, n), &same) {
        let (mut r, after) = clear_nodes(&c2, tail, &others, what, relocate);
        r.insert(0, n);
        return (r, after);
    }
    clear_nodes(c, tail, targets, what, relocate)
}

/// Splits `group` into sub-groups each of which can be cleared at once
/// (Ganeti's `partitionNodes`), each with the cluster once it is cleared;
/// `None` if some node can never be cleared.
fn partition_nodes(
    c: &Cluster,
    group: &[usize],
    targets: &[usize],
    what: fn(&Cluster, usize) -> Vec<usize>,
    relocate: fn(&mut Cluster, &[usize], &[usize]) -> bool,
) -> Option<Vec<(Vec<usize>, Cluster)>> {
    let mut out = Vec::new();
    let mut rest = group.to_vec();
    while !rest.is_empty() {
        let (g, after) = clear_nodes(c, &rest, targets, what, relocate);
        if g.is_empty() {
            return None;
        }
        rest.retain(|n| !g.contains(n));
        out.push((g, after));
    }
    Some(out)
}

/// Splits a colour group into sub-groups whose non-redundant instances can
/// be moved away; `None` if some node can never be cleared.
pub fn partition_non_redundant(
    c: &Cluster,
    group: &[usize],
    targets: &[usize],
) -> Option<Vec<(Vec<usize>, Cluster)>> {
    partition_nodes(c, group, targets, non_redundant, relocate)
}

/// Primaries of a node that have a secondary, the last placed first.
fn mirrored_primaries(c: &Cluster, n: usize) -> Vec<usize> {
    c.nodes[n]
        .plist
        .iter()
        .rev()
        .copied()
        .filter(|&i| c.instances[i].snode != NO_SECONDARY)
        .collect()
}

/// Fails over every mirrored instance whose primary is one of `nodes` to
/// its secondary, capacity permitting or not; false if one cannot move.
pub fn migrate_off(c: &mut Cluster, nodes: &[usize]) -> bool {
    let insts: Vec<usize> = nodes
        .iter()
        .flat_map(|&n| mirrored_primaries(c, n))
        .collect();
    for i in insts {
        match eval_move(c, i, IMove::Failover, true) {
            Ok(eff) => apply_effect(c, i, &eff),
            Err(_) => return false,
        }
    }
    true
}

/// Secondaries of a node, the last placed first.
fn secondaries(c: &Cluster, n: usize) -> Vec<usize> {
    c.nodes[n].slist.iter().rev().copied().collect()
}

/// Gives each instance a new secondary, the first of `targets` that takes
/// it.
fn find_secondaries(c: &mut Cluster, insts: &[usize], targets: &[usize]) -> bool {
    for &i in insts {
        let found = targets.iter().find_map(|&t| {
            if t == c.instances[i].pnode {
                return None;
            }
            eval_move(c, i, IMove::ReplaceSecondary(t), true).ok()
        });
        match found {
            Some(eff) => apply_effect(c, i, &eff),
            None => return false,
        }
    }
    true
}

/// Splits a group of nodes (their primaries failed over) into sub-groups
/// whose secondaries can move elsewhere at once (`--full-evacuation`).
pub fn partition_secondaries(
    c: &Cluster,
    group: &[usize],
    targets: &[usize],
) -> Option<Vec<(Vec<usize>, Cluster)>> {
    partition_nodes(c, group, targets, secondaries, find_secondaries)
}

/// The instances that moved between two states of the cluster, with their
/// new primary and secondary; swapping primary and secondary is no move.
pub fn moved_instances(before: &Cluster, after: &Cluster) -> Vec<(usize, usize, Option<usize>)> {
    let mut out = Vec::new();
    for (i, (a, b)) in before.instances.iter().zip(&after.instances).enumerate() {
        let has_sec = a.snode != NO_SECONDARY;
        let moved = a.pnode != b.pnode || (has_sec && a.snode != b.snode);
        let swapped = b.pnode == a.snode && b.snode == a.pnode;
        if moved && !swapped {
            out.push((i, b.pnode, has_sec.then_some(b.snode)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three nodes; a DRBD instance on node0/node1 and a plain one on node2.
    fn cluster() -> Cluster {
        let text = "default|uuid-default|preferred||\n\n\
                    node0|8192|0|7168|102400|92160|16|M|uuid-default|1\n\
                    node1|8192|0|8192|102400|92160|16|N|uuid-default|1\n\
                    node2|8192|0|7168|102400|92160|16|N|uuid-default|1\n\n\
                    d|1024|10240|1|running|Y|node0|node1|drbd||1\n\
                    p|1024|10240|1|running|Y|node2||plain||1\n\n\n";
        let mut c = crate::backend::text::parse(text).expect("parse");
        crate::loader::merge(&mut c, &Default::default()).expect("merge");
        c
    }

    #[test]
    fn a_failover_is_no_move_but_a_new_secondary_is() {
        let c = cluster();
        let mut after = c.clone();
        assert!(migrate_off(&mut after, &[0]));
        assert_eq!((after.instances[0].pnode, after.instances[0].snode), (1, 0));
        assert!(moved_instances(&c, &after).is_empty());
        let parts = partition_secondaries(&after, &[0], &[0, 1, 2]).expect("room on node2");
        assert_eq!(parts.len(), 1);
        let (group, cleared) = &parts[0];
        assert_eq!(group, &vec![0]);
        assert_eq!(moved_instances(&c, cleared), vec![(0, 1, Some(2))]);
    }
}
