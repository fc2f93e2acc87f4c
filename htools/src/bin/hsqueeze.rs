//! hsqueeze: powers off nodes the cluster does not need, or powers on
//! standby nodes when it needs more (Ganeti's hsqueeze).

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use htools::cli::DataOpts;
use htools::model::Cluster;
use htools::output::{format_cmds, move_jobs, show_commands, split_jobs, MoveJob};
use htools::squeeze::{self, Plan, STANDBY_AUTO};

#[derive(Parser, Debug)]
#[command(
    name = "hsqueeze",
    about = "Powers nodes off and on by the capacity the cluster needs, for ganeti-rs (Ganeti-compatible)"
)]
struct Opts {
    #[command(flatten)]
    data: DataOpts,
    /// Execute the plan through LUXI (needs -L).
    #[arg(short = 'X', long = "exec")]
    exec: bool,
    /// Below this capacity on some node (in multiples of the standard
    /// instance spec), standby nodes are powered on.
    #[arg(
        long = "minimal-resources",
        value_name = "FACTOR",
        default_value_t = 2.0
    )]
    minimal_resources: f64,
    /// The capacity each node keeps when nodes are powered off (in
    /// multiples of the standard instance spec).
    #[arg(
        long = "target-resources",
        value_name = "FACTOR",
        default_value_t = 2.0
    )]
    target_resources: f64,
    /// Save the cluster state before and after to FILE.original and
    /// FILE.squeezed.
    #[arg(short = 'S', long = "save", value_name = "FILE")]
    save: Option<String>,
    /// Print the commands ("-") or write them as a shell script to FILE.
    #[arg(short = 'C', long = "print-commands", value_name = "FILE", num_args = 0..=1, default_missing_value = "-", require_equals = true)]
    print_commands: Option<String>,
    /// Priority of the submitted jobs (low, normal, high).
    #[arg(long = "priority", value_name = "PRIO", value_parser = htools::cmdline::parse_priority)]
    priority: Option<i64>,
    /// Do not print the header line.
    #[arg(long = "no-headers")]
    no_headers: bool,
    /// More output (repeatable).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("HTOOLS_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn save(path: &Option<String>, ext: &str, msg: &str, c: &Cluster) -> Result<()> {
    if let Some(p) = path {
        let out = format!("{p}.{ext}");
        std::fs::write(&out, htools::backend::text::serialize(c))
            .with_context(|| format!("writing '{out}'"))?;
        eprintln!("The cluster state {msg} has been written to file '{out}'");
    }
    Ok(())
}

fn names(c: &Cluster, nodes: &[usize]) -> Vec<String> {
    nodes.iter().map(|&n| c.nodes[n].name.clone()).collect()
}

/// Groups the moves into job sets as Ganeti's hsqueeze does: from the
/// last move back to the first (so the sets break where the later moves
/// conflict), each set and the sets in the order of the moves.
fn split_from_last(mut jobs: Vec<MoveJob>) -> Vec<Vec<MoveJob>> {
    jobs.reverse();
    let mut sets = split_jobs(&jobs);
    sets.reverse();
    for s in sets.iter_mut() {
        s.reverse();
    }
    sets
}

/// The job sets of the moves, one job per move.
fn move_jobsets(c: &Cluster, sets: &[Vec<MoveJob>]) -> Vec<(String, Vec<Vec<Value>>)> {
    sets.iter()
        .map(|js| {
            let insts: Vec<&str> = js
                .iter()
                .map(|j| c.instances[j.inst].name.as_str())
                .collect();
            (
                format!("Moving instances {}", insts.join(", ")),
                js.iter().map(|j| j.ops.clone()).collect(),
            )
        })
        .collect()
}

/// One job that sets the nodes offline (or online) and powers them off (on).
fn power_jobset(c: &Cluster, nodes: &[usize], on: bool) -> (String, Vec<Vec<Value>>) {
    let mut ops: Vec<Value> = nodes
        .iter()
        .map(|&n| {
            json!({
                "OP_ID": "OP_NODE_SET_PARAMS",
                "node_name": c.nodes[n].name,
                "force": false,
                "offline": !on,
                "auto_promote": false,
            })
        })
        .collect();
    ops.push(json!({
        "OP_ID": "OP_OOB_COMMAND",
        "node_names": names(c, nodes),
        "command": if on { "power-on" } else { "power-off" },
        "timeout": 60,
        "ignore_status": false,
        "power_delay": 2.0,
    }));
    let desc = if on {
        "Powering on nodes"
    } else {
        "Powering off nodes"
    };
    (desc.to_string(), vec![ops])
}

fn execute(o: &Opts, comment: &str, mut jobsets: Vec<(String, Vec<Vec<Value>>)>) -> Result<()> {
    if !o.exec {
        return Ok(());
    }
    let Some(sock) = &o.data.luxi else {
        bail!("Execution of commands possible only on LUXI");
    };
    let reason = format!("hsqueeze {} called", env!("CARGO_PKG_VERSION"));
    for (_, jobs) in jobsets.iter_mut() {
        for op in jobs.iter_mut().flatten() {
            htools::cmdline::annotate_opcode(op, "hsqueeze", o.priority, Some(&reason));
            op["comment"] = json!(format!("{comment} {}", env!("CARGO_PKG_VERSION")));
        }
    }
    htools::backend::luxi::execute_jobsets(sock, &jobsets, |msg| println!("{msg}"))
        .context("hsqueeze")?;
    Ok(())
}

fn run() -> Result<()> {
    let o: Opts = htools::cmdline::parse("hsqueeze", false);
    let verbose = 1 + o.verbose as i32;
    o.data.check_backends()?;
    let (c, warnings) = o.data.load().context("failed to load data, aborting")?;
    if verbose > 1 && !warnings.is_empty() {
        eprintln!("Warning: cluster has inconsistent data:");
        for w in &warnings {
            eprintln!("  - {w}");
        }
        eprintln!();
    }
    save(&o.save, "original", "before hsqueeze run", &c)?;
    let std = c.ipolicy.std;
    let target = squeeze::spec_instance("targetInstance", o.target_resources, &std);
    let min = squeeze::spec_instance("targetInstance", o.minimal_resources, &std);
    if verbose > 1 {
        println!(
            "Offline candidates: {}",
            names(&c, &squeeze::offline_candidates(&c)).join(",")
        );
        println!(
            "Online candidates: {}",
            names(&c, &squeeze::online_candidates(&c)).join(",")
        );
    }
    let cmds_dest = o.print_commands.as_deref();
    match squeeze::plan(&c, &min, &target) {
        Plan::Online {
            nodes,
            enough,
            moves,
            after,
        } => {
            if !o.no_headers {
                println!("'Nodes to online'");
            }
            for n in names(&c, &nodes) {
                println!("{n}");
            }
            if verbose > 1 && !enough {
                println!("Onlining all nodes will not yield enough capacity");
            }
            let sets = split_from_last(move_jobs(&c, &moves));
            if let Some(dest) = cmds_dest {
                let mut cmds = String::from("echo Power Commands\n");
                for &n in &nodes {
                    cmds.push_str(&format!("  gnt-node power -f on {}\n", c.nodes[n].alias));
                }
                cmds.push_str(&format_cmds(&sets));
                show_commands(dest, "Commands to run:", &cmds)
                    .with_context(|| format!("writing '{dest}'"))?;
            }
            let mut jobsets = vec![power_jobset(&c, &nodes, true)];
            jobsets.extend(move_jobsets(&c, &sets));
            execute(&o, &format!("expanding by {} nodes", nodes.len()), jobsets)?;
            save(&o.save, "squeezed", "after hsqueeze expansion", &after)?;
        }
        Plan::NoAction => {
            if !o.no_headers {
                println!("'No action'");
            }
            if let Some(dest) = cmds_dest {
                show_commands(dest, "Commands to run:", "echo Nothing to do")
                    .with_context(|| format!("writing '{dest}'"))?;
            }
            save(&o.save, "squeezed", "after hsqueeze doing nothing", &c)?;
        }
        Plan::Offline {
            nodes,
            moves,
            after,
        } => {
            if !o.no_headers {
                println!("'Nodes to offline'");
            }
            for n in names(&c, &nodes) {
                println!("{n}");
            }
            let sets = split_from_last(move_jobs(&c, &moves));
            if let Some(dest) = cmds_dest {
                let mut cmds = format_cmds(&sets);
                cmds.push_str("\necho Tagging Commands\n");
                for &n in &nodes {
                    cmds.push_str(&format!(
                        "  gnt-node add-tags {} {STANDBY_AUTO}\n",
                        c.nodes[n].alias
                    ));
                }
                cmds.push_str("\necho Power Commands\n");
                for &n in &nodes {
                    cmds.push_str(&format!("  gnt-node power -f off {}\n", c.nodes[n].alias));
                }
                show_commands(dest, "Commands to run:", &cmds)
                    .with_context(|| format!("writing '{dest}'"))?;
            }
            let mut jobsets = move_jobsets(&c, &sets);
            for &n in &nodes {
                jobsets.push((
                    format!("Tagging node {} with standby", c.nodes[n].name),
                    vec![vec![json!({
                        "OP_ID": "OP_TAGS_SET",
                        "kind": "node",
                        "name": c.nodes[n].name,
                        "tags": [STANDBY_AUTO],
                    })]],
                ));
            }
            jobsets.push(power_jobset(&c, &nodes, false));
            execute(&o, &format!("condensing by {} nodes", nodes.len()), jobsets)?;
            save(&o.save, "squeezed", "after hsqueeze run", &after)?;
        }
    }
    Ok(())
}
