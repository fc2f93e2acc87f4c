//! hbal: cluster balancer.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;

use htools::balance::{balance, BalanceOptions};
use htools::cli::{split_cluster, DataOpts};
use htools::metrics::{optimal_score, print_stats, ClusterStats};
use htools::output::{
    fmt_g, format_cmds, move_opcodes, node_fields, print_insts, print_nodes, solution_line,
    split_jobs, MoveJob, SH_TEMPLATE,
};

#[derive(Parser, Debug)]
#[command(
    name = "hbal",
    about = "Cluster balancer for ganeti-rs (Ganeti-compatible)"
)]
struct Opts {
    #[command(flatten)]
    data: DataOpts,
    /// Print the node list, optionally with these fields.
    #[arg(short = 'p', long = "print-nodes", value_name = "FIELDS", num_args = 0..=1, default_missing_value = "", require_equals = true)]
    print_nodes: Option<String>,
    /// Print the instance map.
    #[arg(long = "print-instances")]
    print_instances: bool,
    /// Print the commands ("-") or write them as a shell script to FILE.
    #[arg(short = 'C', long = "print-commands", value_name = "FILE", num_args = 0..=1, default_missing_value = "-", require_equals = true)]
    print_commands: Option<String>,
    /// Save the cluster state before and after balancing to FILE.original / FILE.balanced.
    #[arg(short = 'S', long = "save", value_name = "FILE")]
    save: Option<String>,
    /// Execute the moves through LUXI (needs -L).
    #[arg(short = 'X', long = "exec")]
    exec: bool,
    /// Only the first job set of the solution.
    #[arg(long = "first-job-group")]
    first_job_group: bool,
    /// Balance this node group.
    #[arg(short = 'G', long = "group", value_name = "GROUP")]
    group: Option<String>,
    /// Maximum number of moves.
    #[arg(short = 'l', long = "max-length", value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    max_length: i64,
    /// Stop when the score is at most this much above the optimum.
    #[arg(
        short = 'e',
        long = "min-score",
        value_name = "SCORE",
        default_value_t = 1e-9
    )]
    min_score: f64,
    /// Minimum gain per move once the score is below --min-gain-limit.
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
    /// Do not move disks (only failovers).
    #[arg(long = "no-disk-moves")]
    no_disk_moves: bool,
    /// Do not move instances between primary and secondary.
    #[arg(long = "no-instance-moves")]
    no_instance_moves: bool,
    /// Only move instances away from offline nodes.
    #[arg(short = 'E', long = "evac-mode")]
    evac_mode: bool,
    /// Only replace secondaries, unless the primary is drained.
    #[arg(long = "restricted-migration")]
    restricted_migration: bool,
    /// Ignore soft errors (policy, N+1, tags) when moving.
    #[arg(long = "ignore-soft-errors")]
    ignore_soft_errors: bool,
    /// Evaluate every instance in every round, as Ganeti does (slower on
    /// large clusters; ganeti-rs extension).
    #[arg(long = "exhaustive")]
    exhaustive: bool,
    /// Priority of the submitted jobs (low, normal, high).
    #[arg(long = "priority", value_name = "PRIO", value_parser = htools::cmdline::parse_priority)]
    priority: Option<i64>,
    /// Reason recorded in the submitted jobs.
    #[arg(long = "reason", value_name = "REASON")]
    reason: Option<String>,
    /// More output (repeatable).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less output (repeatable).
    #[arg(short = 'q', long = "quiet", action = clap::ArgAction::Count)]
    quiet: u8,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("HTOOLS_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn save(path: &str, ext: &str, msg: &str, c: &htools::model::Cluster) -> Result<()> {
    let out = format!("{path}.{ext}");
    std::fs::write(&out, htools::backend::text::serialize(c))
        .with_context(|| format!("writing '{out}'"))?;
    eprintln!("The cluster state {msg} has been written to file '{out}'");
    Ok(())
}

fn run() -> Result<ExitCode> {
    let o: Opts = htools::cmdline::parse("hbal", false);
    let verbose = 1 + o.verbose as i32 - o.quiet as i32;
    o.data.check_backends()?;
    let (mut c, warnings) = o.data.load().context("failed to load data, aborting")?;
    if verbose != 0 && !warnings.is_empty() {
        eprintln!("Warning: cluster has inconsistent data:");
        for w in &warnings {
            eprintln!("  - {w}");
        }
        eprintln!();
    }
    let mut out = std::io::stdout().lock();
    if verbose > 1 {
        writeln!(out, "Loaded cluster tags: {}", c.tags.join(","))?;
    }
    if c.instances.is_empty() {
        writeln!(out, "Cluster is empty, exiting.")?;
        return Ok(ExitCode::SUCCESS);
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
    if verbose > 1 && !split.is_empty() {
        eprintln!("Found instances belonging to multiple node groups:");
        for name in &split {
            eprintln!("  {name}");
        }
        eprintln!("These instances will not be moved.");
    }
    writeln!(
        out,
        "Loaded {} nodes, {} instances",
        c.nodes.len(),
        c.instances.len()
    )?;
    if verbose > 1 {
        let mut names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
        names.extend(c.instances.iter().map(|i| i.name.as_str()));
        let csf = htools::loader::common_suffix(&names);
        if !csf.is_empty() {
            writeln!(out, "Note: Stripping common suffix of '{csf}' from names")?;
        }
    }
    let ini_c = c.clone();
    if let Some(s) = &o.save {
        save(s, "original", "before balancing", &c)?;
    }
    let groups = split_cluster(&c);
    let (gname, nodes, insts) = match &o.group {
        None => {
            if groups.len() > 1 {
                eprintln!("Found multiple node groups:");
                for (g, _, _) in &groups {
                    eprintln!("  {}", c.groups[*g].name);
                }
                bail!("Aborting.");
            }
            let Some((g, n, i)) = groups.into_iter().next() else {
                bail!("No groups found by splitCluster?!");
            };
            (c.groups[g].name.clone(), n, i)
        }
        Some(gn) => {
            let Some(g) = c.groups.iter().position(|g| &g.name == gn) else {
                eprintln!("Node group {gn} not found. Node group list is:");
                for g in &c.groups {
                    eprintln!("  {}", g.name);
                }
                bail!("Aborting.");
            };
            match groups.into_iter().find(|(gg, _, _)| *gg == g) {
                Some((_, n, i)) => (gn.clone(), n, i),
                None => (gn.clone(), vec![], vec![]),
            }
        }
    };
    writeln!(
        out,
        "Group size {} nodes, {} instances",
        nodes.len(),
        insts.len()
    )?;
    writeln!(out, "Selected node group: {gname}")?;
    let bad_nodes: Vec<usize> = nodes
        .iter()
        .copied()
        .filter(|&n| !c.nodes[n].s.offline && c.nodes[n].s.fail_n1)
        .collect();
    let mut bad_insts: Vec<usize> = bad_nodes
        .iter()
        .flat_map(|&n| {
            c.nodes[n]
                .slist
                .iter()
                .chain(c.nodes[n].plist.iter())
                .copied()
        })
        .collect();
    bad_insts.sort_unstable();
    bad_insts.dedup();
    if verbose >= 1 {
        writeln!(
            out,
            "Initial check done: {} bad nodes, {} bad instances.",
            bad_nodes.len(),
            bad_insts.len()
        )?;
    }
    let policy_bad = nodes
        .iter()
        .filter(|n| !bad_nodes.contains(n))
        .filter(|&&n| htools::nodeops::policy_health(&c.nodes[n].s).is_err())
        .count();
    if !bad_nodes.is_empty() {
        writeln!(
            out,
            "Cluster is not N+1 happy, continuing but no guarantee that the cluster will end N+1 happy."
        )?;
    }
    if policy_bad > 0 {
        writeln!(
            out,
            "The cluster contains {policy_bad} policy-violating nodes."
        )?;
        if o.ignore_soft_errors {
            writeln!(out, "Continuing, ignoring soft errors.")?;
        } else {
            writeln!(out, "Continuing, but the set of moves might be too restricted; consider using the --ignore-soft-errors option.")?;
        }
    }
    if o.print_instances {
        eprintln!("\nInitial instance map:");
        eprint!("{}", print_insts(&c, &insts));
    }
    let fields = o.print_nodes.as_deref().map(|f| node_fields(Some(f)));
    if let Some(f) = &fields {
        eprintln!("\nInitial cluster status:");
        eprintln!("{}", print_nodes(&c, &nodes, f));
    }
    let st = ClusterStats::compute(nodes.iter().map(|&n| &c.nodes[n]));
    let ini_cv = st.score();
    let opt_cv = optimal_score(nodes.iter().map(|&n| &c.nodes[n]));
    if verbose > 2 {
        write!(
            out,
            "Initial coefficients: overall {ini_cv:.8}\n{}",
            print_stats("  ", &st)
        )?;
    } else {
        writeln!(out, "Initial score: {ini_cv:.8}")?;
    }
    if ini_cv - opt_cv < o.min_score {
        writeln!(
            out,
            "Cluster is already well balanced (initial score {},\noptimum score due to N+1 reservations {},\nminimum score {}).\nNothing to do, exiting",
            fmt_g(ini_cv, 6),
            fmt_g(opt_cv, 6),
            fmt_g(o.min_score, 6)
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "Trying to minimize the CV...")?;
    out.flush()?;
    let imlen = insts
        .iter()
        .map(|&i| c.instances[i].alias.len())
        .max()
        .unwrap_or(0);
    let nmlen = nodes
        .iter()
        .map(|&n| c.nodes[n].alias.len())
        .max()
        .unwrap_or(0);
    let opts = BalanceOptions {
        max_length: o.max_length,
        min_score: o.min_score,
        min_gain: o.min_gain,
        min_gain_limit: o.min_gain_limit,
        disk_moves: !o.no_disk_moves,
        instance_moves: !o.no_instance_moves,
        evac_mode: o.evac_mode,
        restricted_migration: o.restricted_migration,
        ignore_soft_errors: o.ignore_soft_errors,
        exhaustive: o.exhaustive,
        prune: true,
    };
    let mut jobs: Vec<MoveJob> = Vec::new();
    let before = c.clone();
    let plcs = balance(
        &mut c,
        &nodes,
        &insts,
        &opts,
        opt_cv + o.min_score,
        |_, p, pos| {
            let (line, cmds) = solution_line(&before, p, pos, nmlen, imlen);
            let mut inv: Vec<usize> = vec![p.new_pnode, p.new_snode, p.old_pnode, p.old_snode];
            inv.retain(|&n| n != htools::types::NO_SECONDARY);
            let mut seen = Vec::new();
            for n in inv {
                if !seen.contains(&n) {
                    seen.push(n);
                }
            }
            jobs.push(MoveJob {
                nodes: seen,
                inst: p.inst,
                cmds,
                ops: move_opcodes(&before, p),
            });
            let mut so = std::io::stdout().lock();
            let _ = writeln!(so, "{line}");
            let _ = so.flush();
        },
    );
    let fin_st = ClusterStats::compute(nodes.iter().map(|&n| &c.nodes[n]));
    let fin_cv = fin_st.score();
    if plcs.is_empty() {
        writeln!(out, "No solution found")?;
    } else if verbose > 2 {
        write!(
            out,
            "Final coefficients:   overall {fin_cv:.8}\n{}",
            print_stats("  ", &fin_st)
        )?;
    } else {
        writeln!(
            out,
            "Cluster score improved from {ini_cv:.8} to {fin_cv:.8}"
        )?;
    }
    if verbose >= 1 {
        writeln!(out, "Solution length={}", plcs.len())?;
    }
    let mut sets = split_jobs(&jobs);
    if o.first_job_group {
        sets.truncate(1);
    }
    let cmds = format_cmds(&sets);
    match o.print_commands.as_deref() {
        None => {}
        Some("-") => {
            writeln!(out)?;
            writeln!(
                out,
                "{}",
                if o.first_job_group {
                    "First set of jobs:"
                } else {
                    "Commands to run to reach the above solution:"
                }
            )?;
            for l in cmds.lines().filter(|l| *l != "  check") {
                writeln!(out, "  {l}")?;
            }
        }
        Some(path) => {
            std::fs::write(path, format!("{SH_TEMPLATE}{cmds}"))
                .with_context(|| format!("writing '{path}'"))?;
            writeln!(out, "The commands have been written to file '{path}'")?;
        }
    }
    if let Some(s) = &o.save {
        save(s, "balanced", "after balancing", &c)?;
    }
    if o.print_instances {
        eprintln!("\nFinal instance map:");
        eprint!("{}", print_insts(&c, &insts));
    }
    if let Some(f) = &fields {
        eprintln!("\nFinal cluster status:");
        eprintln!("{}", print_nodes(&c, &nodes, f));
    }
    if verbose > 3 {
        let fm = |cl: &htools::model::Cluster| -> (i64, i64) {
            nodes.iter().fold((0, 0), |(m, d), &n| {
                (m + cl.nodes[n].s.unallocated_mem(), d + cl.nodes[n].s.f_dsk)
            })
        };
        let (m0, d0) = fm(&ini_c);
        let (m1, d1) = fm(&c);
        writeln!(out, "Original: mem={m0} disk={d0}")?;
        writeln!(out, "Final:    mem={m1} disk={d1}")?;
    }
    if o.exec && !plcs.is_empty() {
        if o.data.luxi.is_none() {
            bail!("hbal: Execution of commands possible only on LUXI");
        }
        let sock = o.data.luxi.clone().unwrap_or_default();
        let jobsets: Vec<(String, Vec<Vec<serde_json::Value>>)> = sets
            .iter()
            .map(|js| {
                let names: Vec<&str> = js
                    .iter()
                    .map(|j| c.instances[j.inst].name.as_str())
                    .collect();
                (
                    format!("Executing jobset for instances {}", names.join(", ")),
                    js.iter()
                        .map(|j| {
                            let mut ops = j.ops.clone();
                            for op in ops.iter_mut() {
                                htools::cmdline::annotate_opcode(
                                    op,
                                    "hbal",
                                    o.priority,
                                    o.reason.as_deref(),
                                );
                            }
                            ops
                        })
                        .collect(),
                )
            })
            .collect();
        htools::backend::luxi::execute_jobsets(&sock, &jobsets, |msg| {
            let _ = writeln!(out, "{msg}");
            let _ = out.flush();
        })
        .context("hbal: executing the moves")?;
    }
    Ok(ExitCode::SUCCESS)
}
