//! hsqueeze's planning: which nodes to power off because the cluster has
//! more capacity than it needs, or which standby nodes to power on because
//! it has too little (Ganeti's hsqueeze).
//!
//! Capacity is measured in multiples of the cluster's standard instance
//! spec: after the plan, every node must still be able to take one more
//! instance of `factor` times that spec. Only nodes that are no secondary
//! and hold externally mirrored instances alone may be powered off (their
//! instances migrate anywhere); only offline nodes tagged
//! `htools:standby:...` may be powered on. Each candidate set is judged on
//! the cluster as balancing leaves it once the nodes are switched.

use crate::balance::{balance, BalanceOptions};
use crate::model::{Cluster, Instance};
use crate::nodeops::{add_pri, NodeView};
use crate::output::Placement;
use crate::types::{DiskTemplate, ISpec, InstanceStatus, NO_SECONDARY};

/// The prefix of the node tags that mark standby nodes.
pub const STANDBY_PREFIX: &str = "htools:standby:";
/// The tag hsqueeze puts on the nodes it powers off.
pub const STANDBY_AUTO: &str = "htools:standby:auto";

/// What hsqueeze decided.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Too little capacity: power these nodes on, then make the moves.
    /// `enough` is false if even all standby nodes do not give enough.
    Online {
        nodes: Vec<usize>,
        enough: bool,
        moves: Vec<Placement>,
        after: Cluster,
    },
    /// Spare capacity: make the moves, then power these nodes off.
    Offline {
        nodes: Vec<usize>,
        moves: Vec<Placement>,
        after: Cluster,
    },
    /// Neither.
    NoAction,
}

/// An instance of `factor` times the spec (rounded down), externally
/// mirrored, to measure the capacity left on a node.
pub fn spec_instance(name: &str, factor: f64, spec: &ISpec) -> Instance {
    let scale = |v: i64| (factor * v as f64).floor() as i64;
    Instance::new(
        name,
        scale(spec.mem_size),
        0,
        Vec::new(),
        scale(spec.cpu_count),
        InstanceStatus::Running,
        Vec::new(),
        false,
        NO_SECONDARY,
        NO_SECONDARY,
        DiskTemplate::Ext,
        scale(spec.spindle_use),
        false,
    )
}

/// Online nodes, other than the master, that are no secondary and whose
/// primaries are all externally mirrored; the ones with most primaries
/// first.
pub fn offline_candidates(c: &Cluster) -> Vec<usize> {
    let mut v: Vec<usize> = (0..c.nodes.len())
        .filter(|&n| {
            let node = &c.nodes[n];
            !node.s.offline
                && !node.is_master
                && node.slist.is_empty()
                && node
                    .plist
                    .iter()
                    .all(|&i| !c.instances[i].uses_local_storage())
        })
        .collect();
    v.sort_by_key(|&n| std::cmp::Reverse(c.nodes[n].plist.len()));
    v
}

/// Offline nodes with a standby tag.
pub fn online_candidates(c: &Cluster) -> Vec<usize> {
    (0..c.nodes.len())
        .filter(|&n| {
            let node = &c.nodes[n];
            node.s.offline && node.tags.iter().any(|t| t.starts_with(STANDBY_PREFIX))
        })
        .collect()
}

/// Whether every node could take one more `inst` as a primary.
pub fn capacity_for(c: &Cluster, inst: &Instance) -> bool {
    c.nodes.iter().all(|n| {
        let mut s = n.s;
        add_pri(&mut NodeView::new(n), &mut s, inst, 0, false).is_ok()
    })
}

/// Whether no instance has its primary on an offline node.
pub fn all_on_online_nodes(c: &Cluster) -> bool {
    c.instances.iter().all(|i| !c.nodes[i.pnode].s.offline)
}

/// Balances the whole cluster for as long as a move lowers the score.
pub fn balance_fully(c: &mut Cluster) -> Vec<Placement> {
    let nodes: Vec<usize> = (0..c.nodes.len()).collect();
    let insts: Vec<usize> = (0..c.instances.len()).collect();
    let opts = BalanceOptions {
        min_gain: 0.0,
        min_gain_limit: 0.0,
        exhaustive: true,
        ..BalanceOptions::default()
    };
    balance(c, &nodes, &insts, &opts, f64::NEG_INFINITY, |_, _, _| {})
}

/// The cluster with `nodes` set offline (or online) and balanced, with the
/// moves that balancing made.
pub fn switch_nodes(c: &Cluster, nodes: &[usize], offline: bool) -> (Cluster, Vec<Placement>) {
    let mut c = c.clone();
    for &n in nodes {
        c.nodes[n].s.offline = offline;
    }
    let moves = balance_fully(&mut c);
    (c, moves)
}

fn acceptable(c: &Cluster, nodes: &[usize], offline: bool, inst: &Instance) -> bool {
    let (after, _) = switch_nodes(c, nodes, offline);
    all_on_online_nodes(&after) && capacity_for(&after, inst)
}

/// The candidates that can be powered off together while every node keeps
/// room for `inst`; tried greedily from the end of the list (the nodes with
/// fewest instances) to its front.
pub fn greedy_offline(c: &Cluster, inst: &Instance, cands: &[usize]) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::new();
    for &n in cands.iter().rev() {
        let mut with = vec![n];
        with.extend(chosen.iter().copied());
        if acceptable(c, &with, true, inst) {
            chosen = with;
        }
    }
    chosen
}

/// The shortest prefix of the candidates whose powering on gives every
/// node room for `inst`, if any does.
pub fn try_online(c: &Cluster, inst: &Instance, cands: &[usize]) -> Option<Vec<usize>> {
    (0..=cands.len())
        .map(|k| &cands[..k])
        .find(|p| acceptable(c, p, false, inst))
        .map(<[usize]>::to_vec)
}

/// Plans for the cluster: `min` is the capacity below which standby nodes
/// are powered on, `target` the capacity to keep when powering nodes off
/// (both as instances of the standard spec times a factor).
pub fn plan(c: &Cluster, min: &Instance, target: &Instance) -> Plan {
    if !capacity_for(c, min) {
        let cands = online_candidates(c);
        let found = try_online(c, min, &cands);
        let enough = found.is_some();
        let nodes = found.unwrap_or(cands);
        let (after, moves) = switch_nodes(c, &nodes, false);
        return Plan::Online {
            nodes,
            enough,
            moves,
            after,
        };
    }
    let nodes = greedy_offline(c, target, &offline_candidates(c));
    if nodes.is_empty() {
        return Plan::NoAction;
    }
    let (after, moves) = switch_nodes(c, &nodes, true);
    Plan::Offline {
        nodes,
        moves,
        after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four 4 GiB nodes, the master first; one 512 MiB externally mirrored
    /// instance on each, and a plain one on the last node; a standard
    /// instance of 512 MiB and 1 CPU.
    fn cluster(extra_standby: bool) -> Cluster {
        let mut text = String::from("default|uuid-default|preferred||\n\n");
        for (n, flag) in ["M", "N", "N", "N"].iter().enumerate() {
            text.push_str(&format!(
                "node{n}|4096|0|3584|102400|102400|16|{flag}|uuid-default|1\n"
            ));
        }
        if extra_standby {
            text.push_str(
                "node9|4096|0|4096|102400|102400|16|Y|uuid-default|1|htools:standby:manual\n",
            );
        }
        text.push('\n');
        for n in 0..4 {
            text.push_str(&format!("i{n}|512|0|1|running|Y|node{n}||ext||1\n"));
        }
        text.push_str("p3|512|1024|1|running|Y|node3||plain||1\n");
        text.push_str(
            "\n\n|512,1,1024,1,1,1|128,1,1024,1,1,1;32768,8,1048576,16,8,12|ext,plain|4.0|32.0\n",
        );
        let mut c = crate::backend::text::parse(&text).expect("parse");
        crate::loader::merge(&mut c, &Default::default()).expect("merge");
        c
    }

    #[test]
    fn only_non_master_nodes_of_mirrored_instances_are_offline_candidates() {
        let c = cluster(false);
        let names: Vec<&str> = offline_candidates(&c)
            .iter()
            .map(|&n| c.nodes[n].name.as_str())
            .collect();
        assert_eq!(names, ["node1", "node2"]);
    }

    #[test]
    fn spare_nodes_are_powered_off_keeping_room_for_the_target() {
        let c = cluster(false);
        let std = c.ipolicy.std;
        let target = spec_instance("t", 2.0, &std);
        let Plan::Offline {
            nodes,
            moves,
            after,
        } = plan(&c, &spec_instance("m", 2.0, &std), &target)
        else {
            panic!("expected nodes to power off");
        };
        assert!(!nodes.is_empty());
        assert_eq!(moves.len(), nodes.len(), "one instance per node moves away");
        assert!(all_on_online_nodes(&after));
        assert!(capacity_for(&after, &target));
    }

    #[test]
    fn standby_nodes_are_powered_on_when_some_node_lacks_room() {
        let c = cluster(true);
        let std = c.ipolicy.std;
        // 8 standard instances (4 GiB) fit on no node
        let min = spec_instance("m", 8.0, &std);
        match plan(&c, &min, &spec_instance("t", 8.0, &std)) {
            Plan::Online { nodes, enough, .. } => {
                assert_eq!(nodes, vec![4]);
                assert!(!enough);
            }
            other => panic!("expected standby nodes to power on: {other:?}"),
        }
    }
}
