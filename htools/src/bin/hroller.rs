//! hroller: node reboot groups.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;

use htools::cli::DataOpts;
use htools::model::Cluster;
use htools::reboot::{
    migrate_off, moved_instances, partition_non_redundant, partition_secondaries, reboot_graph,
    smallest_coloring,
};

#[derive(Parser, Debug)]
#[command(
    name = "hroller",
    about = "Node reboot groups for ganeti-rs (Ganeti-compatible)"
)]
struct Opts {
    #[command(flatten)]
    data: DataOpts,
    /// Only consider nodes of this group.
    #[arg(short = 'G', long = "group", value_name = "GROUP")]
    group: Option<String>,
    /// Only consider nodes with one of these tags (comma-separated).
    #[arg(long = "node-tags", value_name = "TAGS", value_delimiter = ',')]
    node_tags: Option<Vec<String>>,
    /// Instances will be shut down: only DRBD pairs constrain the groups.
    #[arg(long = "offline-maintenance")]
    offline_maintenance: bool,
    /// Do not plan moves of non-redundant instances.
    #[arg(long = "ignore-non-redundant")]
    ignore_non_redundant: bool,
    /// Leave out nodes that hold non-redundant instances.
    #[arg(long = "skip-non-redundant")]
    skip_non_redundant: bool,
    /// Empty the nodes of a group completely before it reboots: fail
    /// over their primaries and move their secondaries away.
    #[arg(long = "full-evacuation")]
    full_evacuation: bool,
    /// Print the instance moves each reboot group needs.
    #[arg(long = "print-moves")]
    print_moves: bool,
    /// Only print the first reboot group, one node per line.
    #[arg(long = "one-step-only")]
    one_step_only: bool,
    /// Do not print the header line.
    #[arg(long = "no-headers")]
    no_headers: bool,
    /// Save the cluster state to FILE.original.
    #[arg(short = 'S', long = "save", value_name = "FILE")]
    save: Option<String>,
    /// Continue even without a master node.
    #[arg(short = 'f', long = "force")]
    force: bool,
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

fn run() -> Result<()> {
    let o: Opts = htools::cmdline::parse("hroller", false);
    o.data.check_backends()?;
    let (c, _) = o.data.load().context("failed to load data, aborting")?;
    let masters: Vec<&str> = c
        .nodes
        .iter()
        .filter(|n| n.is_master)
        .map(|n| n.name.as_str())
        .collect();
    match masters.len() {
        0 if !o.force => bail!("No master node found (maybe not supported by backend)."),
        0 => eprintln!("Warning: No master node found (maybe not supported by backend)."),
        1 => {}
        _ => bail!(
            "Found more than one master node: {}",
            serde_json::to_string(&masters).unwrap_or_default()
        ),
    }
    if let Some(s) = &o.save {
        let out = format!("{s}.original");
        std::fs::write(&out, htools::backend::text::serialize(&c))
            .with_context(|| format!("writing '{out}'"))?;
        eprintln!("The cluster state before hroller run has been written to file '{out}'");
    }
    let want_group = match &o.group {
        None => None,
        Some(g) => Some(
            c.groups
                .iter()
                .position(|x| &x.name == g)
                .context("Cannot find target group.")?,
        ),
    };
    let non_red = |n: usize| {
        c.nodes[n]
            .plist
            .iter()
            .any(|&i| c.instances[i].template != htools::types::DiskTemplate::Drbd)
    };
    let nodes: Vec<usize> = (0..c.nodes.len())
        .filter(|&n| !c.nodes[n].s.offline)
        .filter(|&n| !o.skip_non_redundant || !non_red(n))
        .filter(|&n| {
            o.node_tags
                .as_ref()
                .map(|t| c.nodes[n].tags.iter().any(|x| t.contains(x)))
                .unwrap_or(true)
        })
        .filter(|&n| want_group.map(|g| c.nodes[n].group == g).unwrap_or(true))
        .collect();
    let Some(graph) = reboot_graph(&c, &nodes, o.offline_maintenance) else {
        bail!("Cannot create node graph");
    };
    let coloring = smallest_coloring(&graph);
    let all_online: Vec<usize> = (0..c.nodes.len())
        .filter(|&n| !c.nodes[n].s.offline)
        .collect();
    // each reboot group with the cluster as it is while the group reboots
    let mut groups: Vec<(Vec<usize>, Cluster)> = if o.ignore_non_redundant {
        coloring.into_iter().map(|g| (g, c.clone())).collect()
    } else {
        let mut v = Vec::new();
        for g in &coloring {
            match partition_non_redundant(&c, g, &all_online) {
                Some(parts) => v.extend(parts),
                None => bail!("Not enough capacity to move non-redundant instances"),
            }
        }
        v
    };
    if o.full_evacuation {
        for (g, conf) in groups.iter_mut() {
            if !migrate_off(conf, g) {
                bail!("Failed to migrate instances off nodes");
            }
        }
        let mut v = Vec::new();
        for (g, conf) in &groups {
            match partition_secondaries(conf, g, &all_online) {
                Some(parts) => v.extend(parts),
                None => bail!("Not enough capacity to move secondaries"),
            }
        }
        groups = v;
    }
    for (g, _) in groups.iter_mut() {
        g.retain(|n| nodes.contains(n));
    }
    groups.sort_by_key(|(g, _)| std::cmp::Reverse(g.len()));
    // the master reboots last, within the last group
    let (mut without, mut with): (Vec<_>, Vec<_>) = groups
        .into_iter()
        .partition(|(g, _)| !g.iter().any(|&n| c.nodes[n].is_master));
    for (g, _) in with.iter_mut() {
        g.sort_by_key(|&n| c.nodes[n].is_master);
    }
    without.append(&mut with);
    let names =
        |g: &[usize]| -> Vec<String> { g.iter().map(|&n| c.nodes[n].name.clone()).collect() };
    let show = |g: &[usize], conf: &Cluster| {
        if o.one_step_only {
            for n in names(g) {
                println!("{n}");
            }
        } else {
            println!("{}", names(g).join(","));
        }
        if o.print_moves {
            for (i, p, s) in moved_instances(&c, conf) {
                let inst = &conf.instances[i].name;
                let p = &conf.nodes[p].name;
                match s {
                    Some(s) => println!("  {inst} {p} {}", conf.nodes[s].name),
                    None => println!("  {inst} {p}"),
                }
            }
        }
    };
    if o.one_step_only {
        if !o.no_headers {
            println!("'First Reboot Group'");
        }
        if let Some((g, conf)) = without.first() {
            show(g, conf);
        }
    } else {
        if !o.no_headers {
            println!("'Node Reboot Groups'");
        }
        for (g, conf) in &without {
            show(g, conf);
        }
    }
    Ok(())
}
