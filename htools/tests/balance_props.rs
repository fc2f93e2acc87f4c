//! Properties of the balancing loop on generated clusters.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use htools::balance::{balance, group_stats, BalanceOptions};
use htools::gen::{generate, GenSpec};
use htools::{backend::text, loader};
use proptest::prelude::*;

fn load(spec: &GenSpec) -> htools::model::Cluster {
    let mut c = text::parse(&generate(spec)).expect("parse generated");
    loader::merge(&mut c, &Default::default()).expect("merge");
    c
}

fn n1_failures(c: &htools::model::Cluster) -> usize {
    c.nodes
        .iter()
        .filter(|n| !n.s.offline && n.s.fail_n1)
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_move_lowers_the_score_and_keeps_n1(
        seed in 1u64..10_000,
        nodes in 3usize..10,
        per_node in 2usize..8,
        excl in any::<bool>(),
        exhaustive in any::<bool>(),
    ) {
        let spec = GenSpec {
            nodes,
            instances: nodes * per_node,
            seed,
            node_mem: 32 * 1024,
            exclusion_tags: excl,
            ..Default::default()
        };
        let mut c = load(&spec);
        let all: Vec<usize> = (0..c.nodes.len()).collect();
        let insts: Vec<usize> = (0..c.instances.len()).collect();
        let n1_before = n1_failures(&c);
        let mut prev = group_stats(&c, &all).score();
        let opts = BalanceOptions { exhaustive, ..Default::default() };
        let mut scores = Vec::new();
        let plcs = balance(&mut c, &all, &insts, &opts, 1e-9, |cl, p, _| {
            let now = group_stats(cl, &(0..cl.nodes.len()).collect::<Vec<_>>()).score();
            scores.push((p.score, now));
        });
        for (reported, recomputed) in &scores {
            prop_assert!((reported - recomputed).abs() < 1e-9, "reported {reported} vs {recomputed}");
            prop_assert!(*recomputed < prev, "move did not lower the score: {prev} -> {recomputed}");
            prev = *recomputed;
        }
        prop_assert_eq!(plcs.len(), scores.len());
        if n1_before == 0 {
            prop_assert_eq!(n1_failures(&c), 0);
        }
        // the model stays consistent: reloading the instance placement gives
        // the same node lists
        for (i, inst) in c.instances.iter().enumerate() {
            prop_assert!(c.nodes[inst.pnode].plist.contains(&i));
            if inst.has_secondary() {
                prop_assert!(c.nodes[inst.snode].slist.contains(&i));
            }
        }
    }
}

#[test]
fn incremental_state_matches_a_fresh_load() {
    // After balancing, the node stats kept up to date move by move must be
    // those a fresh placement of the instances gives.
    let spec = GenSpec {
        nodes: 8,
        instances: 60,
        seed: 7,
        ..Default::default()
    };
    let mut c = load(&spec);
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    let insts: Vec<usize> = (0..c.instances.len()).collect();
    let plcs = balance(
        &mut c,
        &all,
        &insts,
        &BalanceOptions::default(),
        1e-9,
        |_, _, _| {},
    );
    assert!(!plcs.is_empty(), "generated cluster should need moves");
    let mut fresh = c.clone();
    for n in fresh.nodes.iter_mut() {
        let keep = n.clone();
        *n = htools::model::Node::new(
            &keep.name,
            keep.s.t_mem,
            keep.s.n_mem,
            keep.s.f_mem,
            keep.s.t_dsk,
            keep.s.f_dsk,
            keep.s.t_cpu,
            keep.s.n_cpu,
            keep.s.offline,
            keep.s.t_spindles,
            keep.s.f_spindles,
            keep.group,
            keep.s.excl_storage,
        );
        n.tags = keep.tags.clone();
    }
    // moving instances changes free memory/disk as Ganeti records them, so
    // compare the parts that are pure functions of the placement
    loader::merge(&mut fresh, &Default::default()).expect("merge");
    for (a, b) in c.nodes.iter().zip(fresh.nodes.iter()) {
        assert_eq!(a.s.n_pri, b.s.n_pri, "{}", a.name);
        assert_eq!(a.s.n_sec, b.s.n_sec, "{}", a.name);
        assert_eq!(a.s.r_mem, b.s.r_mem, "{}", a.name);
        assert_eq!(a.s.u_cpu, b.s.u_cpu, "{}", a.name);
        assert_eq!(a.s.conflicts, b.s.conflicts, "{}", a.name);
        assert!((a.s.util_load.dsk - b.s.util_load.dsk).abs() < 1e-9);
    }
}

type Plan = Vec<(usize, usize, usize, String)>;

/// The plan of a balancing run, and the cluster it leaves.
fn run(c: &htools::model::Cluster, opts: &BalanceOptions) -> (Plan, htools::model::Cluster) {
    let mut c = c.clone();
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    let insts: Vec<usize> = (0..c.instances.len()).collect();
    let plan = balance(&mut c, &all, &insts, opts, 1e-9, |_, _, _| {})
        .iter()
        .map(|p| (p.inst, p.new_pnode, p.new_snode, format!("{:.12}", p.score)))
        .collect();
    (plan, c)
}

fn plan(c: &htools::model::Cluster, prune: bool) -> Plan {
    let opts = BalanceOptions {
        prune,
        max_length: 20,
        ..Default::default()
    };
    run(c, &opts).0
}

fn striped(spec: &htools::gen::StripedSpec) -> htools::model::Cluster {
    let mut c = text::parse(&htools::gen::generate_striped(spec)).expect("parse generated");
    loader::merge(&mut c, &Default::default()).expect("merge");
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    /// The bounds only skip candidates that cannot win: the plan is the
    /// same with and without them.
    #[test]
    fn pruning_never_changes_the_plan(
        seed in 1u64..10_000,
        nodes in 34usize..42,
        per_node in 3usize..5,
        offline in 0usize..2,
        hot_weight in 1i64..5,
    ) {
        let spec = GenSpec {
            nodes,
            instances: nodes * per_node,
            seed,
            node_mem: 64 * 1024,
            hot_weight,
            offline,
            ..Default::default()
        };
        let c = load(&spec);
        prop_assert_eq!(plan(&c, true), plan(&c, false));
    }
}

#[test]
fn pruning_keeps_the_plan_of_a_striped_cluster() {
    let spec = htools::gen::StripedSpec {
        nodes: 36,
        instances: 288,
        skew_permille: 30,
        ..Default::default()
    };
    let c = striped(&spec);
    let with = plan(&c, true);
    assert!(!with.is_empty());
    assert_eq!(with, plan(&c, false));
}

/// On large clusters, instances whose moves could not beat a known move are
/// left out of a step; the plans must still be those of evaluating every
/// instance in every step, and end where no single move helps.
#[test]
fn leaving_out_instances_keeps_the_plan_of_large_clusters() {
    for (skew_permille, hot_percent) in [(20, 10), (40, 20)] {
        let spec = htools::gen::StripedSpec {
            nodes: 60,
            instances: 1200,
            skew_permille,
            hot_fraction: hot_percent as f64 / 100.0,
            ..Default::default()
        };
        let c = striped(&spec);
        let (lazy, end) = run(&c, &BalanceOptions::default());
        let every = BalanceOptions {
            exhaustive: true,
            ..Default::default()
        };
        let (full, _) = run(&c, &every);
        assert!(
            lazy.len() > 10,
            "skew {skew_permille}: {} moves",
            lazy.len()
        );
        assert_eq!(lazy, full, "skew {skew_permille}, hot {hot_percent}%");
        let mut end = end;
        let all: Vec<usize> = (0..end.nodes.len()).collect();
        let insts: Vec<usize> = (0..end.instances.len()).collect();
        assert!(htools::balance::try_balance(&mut end, &all, &insts, &every).is_none());
    }
}
