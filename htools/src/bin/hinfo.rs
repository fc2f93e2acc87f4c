//! hinfo: cluster information.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use htools::cli::{split_cluster, DataOpts};
use htools::metrics::{print_stats, ClusterStats};
use htools::output::{node_fields, print_insts, print_nodes, print_table};

#[derive(Parser, Debug)]
#[command(
    name = "hinfo",
    about = "Cluster information for ganeti-rs (Ganeti-compatible)"
)]
struct Opts {
    #[command(flatten)]
    data: DataOpts,
    /// Print the node list, optionally with these fields.
    #[arg(short = 'p', long = "print-nodes", value_name = "FIELDS", num_args = 0..=1, default_missing_value = "", require_equals = true)]
    print_nodes: Option<String>,
    /// Print the instance list.
    #[arg(long = "print-instances")]
    print_instances: bool,
    /// More output (repeatable).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less output (repeatable).
    #[arg(short = 'q', long = "quiet", action = clap::ArgAction::Count)]
    quiet: u8,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn run() -> Result<()> {
    let o: Opts = htools::cmdline::parse("hinfo", false);
    let verbose = 1 + o.verbose as i32 - o.quiet as i32;
    o.data.check_backends()?;
    let (c, warnings) = o.data.load().context("failed to load data, aborting")?;
    if verbose != 0 && !warnings.is_empty() {
        eprintln!("Warning: cluster has inconsistent data:");
        for w in &warnings {
            eprintln!("  - {w}");
        }
        eprintln!();
    }
    println!("Loaded cluster tags: {}", c.tags.join(","));
    if c.instances.is_empty() && verbose > 1 {
        println!("Cluster is empty.");
    }
    println!(
        "Loaded {}, {}, {}",
        plural(c.nodes.len(), "node", "nodes"),
        plural(c.instances.len(), "instance", "instances"),
        plural(c.groups.len(), "node group", "node groups")
    );
    if verbose > 2 {
        let mut names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
        names.extend(c.instances.iter().map(|i| i.name.as_str()));
        let csf = htools::loader::common_suffix(&names);
        if !csf.is_empty() {
            println!("Note: Stripping common suffix of '{csf}' from names");
        }
    }
    let split: Vec<&str> = c
        .instances
        .iter()
        .filter(|i| {
            i.snode != htools::types::NO_SECONDARY
                && c.nodes[i.pnode].group != c.nodes[i.snode].group
        })
        .map(|i| i.name.as_str())
        .collect();
    if split.is_empty() {
        if verbose > 1 {
            println!("No split instances found");
        }
    } else {
        println!("Found instances belonging to multiple node groups:");
        for n in split {
            eprintln!("  {n}");
        }
    }
    let mut rows = Vec::new();
    let mut happy = true;
    for (g, nodes, insts) in split_cluster(&c) {
        let bad: Vec<usize> = nodes
            .iter()
            .copied()
            .filter(|&n| !c.nodes[n].s.offline && c.nodes[n].s.fail_n1)
            .collect();
        let mut bad_i: Vec<usize> = bad
            .iter()
            .flat_map(|&n| {
                c.nodes[n]
                    .plist
                    .iter()
                    .chain(c.nodes[n].slist.iter())
                    .copied()
            })
            .collect();
        bad_i.sort_unstable();
        bad_i.dedup();
        happy &= bad.is_empty();
        let score = ClusterStats::compute(nodes.iter().map(|&n| &c.nodes[n])).score();
        rows.push(vec![
            c.groups[g].name.clone(),
            nodes.len().to_string(),
            insts.len().to_string(),
            bad.len().to_string(),
            bad_i.len().to_string(),
            if bad.is_empty() { "True" } else { "False" }.to_string(),
            format!("{score:.8}"),
        ]);
    }
    if verbose > 1 {
        let header: Vec<String> = [
            "Group",
            "Nodes",
            "Instances",
            "Bad_Nodes",
            "Bad_Instances",
            "N+1",
            "Score",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        print!(
            "Node group information:\n{}",
            print_table(
                "  ",
                &header,
                &rows,
                &[false, true, true, true, true, false, true]
            )
        );
    }
    println!("Cluster is N+1 {}", if happy { "happy" } else { "unhappy" });
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    if o.print_instances {
        eprintln!("\nInstances instance map:");
        eprint!(
            "{}",
            print_insts(&c, &(0..c.instances.len()).collect::<Vec<_>>())
        );
    }
    if let Some(f) = o.print_nodes.as_deref() {
        eprintln!("\nCluster status:");
        eprintln!("{}", print_nodes(&c, &all, &node_fields(Some(f))));
    }
    let st = ClusterStats::compute(c.nodes.iter());
    print!("Cluster coefficients:\n{}", print_stats("  ", &st));
    println!("Cluster score: {:.8}", st.score());
    Ok(())
}
