//! hcheck: cluster health check, with a simulated rebalance.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use htools::alloc::can_evacuate;
use htools::balance::{balance, BalanceOptions};
use htools::cli::{split_cluster, DataOpts};
use htools::metrics::{optimal_score, ClusterStats};
use htools::model::Cluster;

#[derive(Parser, Debug)]
#[command(
    name = "hcheck",
    about = "Cluster health check for ganeti-rs (Ganeti-compatible)"
)]
struct Opts {
    #[command(flatten)]
    data: DataOpts,
    /// Shell-friendly output (yes/no; no argument means yes).
    #[arg(long = "machine-readable", value_name = "CHOICE", num_args = 0..=1, default_missing_value = "yes", require_equals = true)]
    machine_readable: Option<String>,
    /// Only check, do not simulate a rebalance.
    #[arg(long = "no-simulation")]
    no_simulation: bool,
    /// Skip the global N+1 (evacuation) check.
    #[arg(long = "no-capacity-checks")]
    no_capacity_checks: bool,
    /// Maximum number of moves of the simulated rebalance.
    #[arg(short = 'l', long = "max-length", value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    max_length: i64,
    /// Minimum score of the simulated rebalance.
    #[arg(
        short = 'e',
        long = "min-score",
        value_name = "SCORE",
        default_value_t = 1e-9
    )]
    min_score: f64,
    /// Minimum gain of the simulated rebalance.
    #[arg(
        short = 'g',
        long = "min-gain",
        value_name = "DELTA",
        default_value_t = 1e-2
    )]
    min_gain: f64,
    /// Score under which --min-gain applies.
    #[arg(long = "min-gain-limit", value_name = "SCORE", default_value_t = 1e-1)]
    min_gain_limit: f64,
    /// More output (repeatable).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less output (repeatable).
    #[arg(short = 'q', long = "quiet", action = clap::ArgAction::Count)]
    quiet: u8,
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn group_checks(c: &Cluster, nodes: &[usize], capacity: bool) -> (Vec<i64>, f64) {
    let n1 = nodes
        .iter()
        .filter(|&&n| !c.nodes[n].s.offline && c.nodes[n].s.fail_n1)
        .count() as i64;
    let conflicts = nodes
        .iter()
        .filter(|&&n| c.nodes[n].s.conflicts > 0)
        .count() as i64;
    let offline: Vec<usize> = nodes
        .iter()
        .copied()
        .filter(|&n| c.nodes[n].s.offline)
        .collect();
    let off_pri: i64 = offline.iter().map(|&n| c.nodes[n].plist.len() as i64).sum();
    // as Ganeti counts it: the number of offline nodes
    let off_sec = offline.len() as i64;
    let mut v = vec![n1, conflicts, off_pri, off_sec];
    if capacity {
        let gn1 = nodes
            .iter()
            .filter(|&&n| !can_evacuate(c, n, nodes))
            .count() as i64;
        v.push(gn1);
    }
    let score = ClusterStats::compute(nodes.iter().map(|&n| &c.nodes[n])).score();
    (v, score)
}

const COMMON: [(&str, &str); 5] = [
    ("N1_FAIL", "Nodes not N+1 happy"),
    ("CONFLICT_TAGS", "Nodes with conflicting instances"),
    ("OFFLINE_PRI", "Instances having the primary node offline"),
    ("OFFLINE_SEC", "Instances having a secondary node offline"),
    ("GN1_FAIL", "Nodes not directly evacuateable"),
];

fn quote(v: &str) -> String {
    if v.chars().all(|c| c.is_alphanumeric() || c == '.') {
        v.to_string()
    } else {
        format!("'{v}'")
    }
}

struct Printer {
    machine: bool,
    verbose: i32,
}

impl Printer {
    fn stats(
        &self,
        phase: &str,
        level: &str,
        title: &str,
        values: &[(String, String)],
        capacity: bool,
    ) {
        if self.machine {
            let mut keys: Vec<&str> = COMMON
                .iter()
                .take(if capacity { 5 } else { 4 })
                .map(|k| k.0)
                .collect();
            keys.push(last_key(level));
            for (k, (_, v)) in keys.iter().zip(values.iter()) {
                println!("HCHECK_{phase}_{level}_{k}={}", quote(v));
            }
        } else if self.verbose >= 1 {
            println!();
            println!("{title}");
            for (d, v) in values {
                println!("    {d}: {v}");
            }
        }
    }
}

fn last_key(level: &str) -> &'static str {
    if level.starts_with("GROUP") {
        "SCORE"
    } else {
        "NEED_REBALANCE"
    }
}

fn run() -> Result<bool> {
    let o: Opts = htools::cmdline::parse("hcheck", false);
    let verbose = 1 + o.verbose as i32 - o.quiet as i32;
    let machine = matches!(o.machine_readable.as_deref(), Some("yes"));
    let capacity = !o.no_capacity_checks;
    o.data.check_backends()?;
    let (mut c, warnings) = o.data.load().context("failed to load data, aborting")?;
    if verbose != 0 && !warnings.is_empty() {
        eprintln!("Warning: cluster has inconsistent data:");
        for w in &warnings {
            eprintln!("  - {w}");
        }
        eprintln!();
    }
    let groups = split_cluster(&c);
    if machine {
        for (i, g) in c.groups.iter().enumerate() {
            println!("HCHECK_GROUP_UUID_{i}={}", quote(&g.uuid));
        }
    }
    let p = Printer { machine, verbose };
    let report = |c: &Cluster, phase: &str, descr: &str, need_override: Option<bool>| -> bool {
        let mut totals = if groups.is_empty() {
            Vec::new()
        } else {
            vec![0i64; if capacity { 5 } else { 4 }]
        };
        for (g, nodes, _) in &groups {
            let (v, score) = group_checks(c, nodes, capacity);
            for (t, x) in totals.iter_mut().zip(v.iter()) {
                *t += x;
            }
            let mut vals: Vec<(String, String)> = v
                .iter()
                .enumerate()
                .map(|(i, x)| (COMMON[i].1.to_string(), x.to_string()))
                .collect();
            vals.push(("Group score".into(), format!("{score:.8}")));
            let lvl = if machine {
                format!("GROUP_{g}")
            } else {
                c.groups[*g].name.clone()
            };
            p.stats(
                phase,
                &lvl,
                &format!("Statistics for group {} {descr}", c.groups[*g].name),
                &vals,
                capacity,
            );
        }
        let need = need_override.unwrap_or(totals.iter().sum::<i64>() > 0);
        let mut vals: Vec<(String, String)> = totals
            .iter()
            .enumerate()
            .map(|(i, x)| (COMMON[i].1.to_string(), x.to_string()))
            .collect();
        vals.push((
            "Cluster is not healthy".into(),
            if machine {
                if need { "1" } else { "0" }.to_string()
            } else if need {
                "True".into()
            } else {
                "False".into()
            },
        ));
        if totals.is_empty() {
            vals[0].0 = COMMON[0].1.to_string();
        }
        p.stats(
            phase,
            "CLUSTER",
            &format!("Cluster statistics {descr}"),
            &vals,
            capacity,
        );
        need
    };
    // decide first, then print the header line before the statistics
    let need = {
        let mut t = 0;
        for (_, nodes, _) in &groups {
            t += group_checks(&c, nodes, capacity).0.iter().sum::<i64>();
        }
        t > 0
    };
    if verbose >= 1 && !machine {
        println!(
            "{}",
            if o.no_simulation {
                "Running in no-simulation mode."
            } else if need {
                "Cluster needs rebalancing."
            } else {
                "No need to rebalance cluster, no problems found."
            }
        );
    }
    report(&c, "INIT", "initially", None);
    let simulate = !o.no_simulation && need;
    if simulate {
        let opts = BalanceOptions {
            max_length: o.max_length,
            min_score: o.min_score,
            min_gain: o.min_gain,
            min_gain_limit: o.min_gain_limit,
            ..Default::default()
        };
        for (_, nodes, insts) in &groups {
            let st = ClusterStats::compute(nodes.iter().map(|&n| &c.nodes[n]));
            let min_cv = o.min_score + optimal_score(nodes.iter().map(|&n| &c.nodes[n]));
            if st.score() >= min_cv {
                balance(&mut c, nodes, insts, &opts, min_cv, |_, _, _| {});
            }
        }
    }
    if simulate || machine {
        // as Ganeti does, the final report repeats the initial verdict
        let _ = report(&c, "FINAL", "after rebalancing", Some(need));
    }
    if machine {
        println!("HCHECK_OK=1");
    }
    Ok(o.no_simulation || !need)
}
