//! hail: the iallocator plugin (Ganeti's request JSON in, response out).

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use htools::alloc::{
    alloc_nodes, allocate_secondary, best_group_alloc, change_group, node_evacuate, place_instance,
    relocate, try_alloc_in_group, AllocOptions, EvacSolution,
};
use htools::backend::iallocator::{self, RequestKind};
use htools::dedicated;
use htools::loader;
use htools::model::{Cluster, Instance};
use htools::output::{node_fields, print_nodes};
use htools::types::NO_SECONDARY;

#[derive(Parser, Debug)]
#[command(
    name = "hail",
    about = "Iallocator plugin for ganeti-rs (Ganeti-compatible)"
)]
struct Opts {
    /// The request file ("-" for standard input).
    input: Vec<String>,
    /// Take the cluster from this Ganeti text file instead of the request.
    #[arg(short = 't', long = "text-data", value_name = "FILE")]
    text_data: Option<String>,
    /// Take the cluster from a simulated empty one instead of the request:
    /// alloc_policy,nodes,disk,mem,cpus[,spindles] (repeatable).
    #[arg(long = "simulate", alias = "simu", value_name = "SPEC")]
    simu: Vec<String>,
    /// Print the node list before and after, optionally with these fields.
    #[arg(short = 'p', long = "print-nodes", value_name = "FIELDS", num_args = 0..=1, default_missing_value = "", require_equals = true)]
    print_nodes: Option<String>,
    /// Save the cluster state to FILE.pre-ialloc / FILE.post-ialloc.
    #[arg(short = 'S', long = "save", value_name = "FILE")]
    save: Option<String>,
    /// Ignore soft errors (policy, N+1, tags).
    #[arg(long = "ignore-soft-errors")]
    ignore_soft_errors: bool,
    /// Node memory (MiB) assumed for KVM nodes, as Ganeti does; 0 uses the
    /// request's reserved_memory.
    #[arg(
        long = "static-kvm-node-memory",
        value_name = "N",
        default_value_t = 4096
    )]
    static_kvm_node_memory: i64,
    /// Skip the global N+1 redundancy check of allocations.
    #[arg(long = "no-capacity-checks")]
    no_capacity_checks: bool,
    /// Only allocate on these nodes (comma-separated).
    #[arg(
        long = "restrict-allocation-to",
        value_name = "NODES",
        value_delimiter = ','
    )]
    restrict: Option<Vec<String>>,
    /// Ignore dynamic utilisation data.
    #[arg(long = "ignore-dynu")]
    ignore_dynu: bool,
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

fn alloc_one(
    c: &Cluster,
    inst: &Instance,
    count: usize,
    group: Option<&str>,
    opts: &AllocOptions,
) -> Result<(Vec<usize>, String), String> {
    match group {
        None => {
            let (g, sol, msgs) = best_group_alloc(c, None, inst, count, opts)?;
            let mut all = vec![format!("Selected group: {}", c.groups[g].name)];
            all.extend(msgs);
            let nodes = sol.best.map(|b| b.0).unwrap_or_default();
            Ok((nodes, all.join(", ")))
        }
        Some(gn) => {
            let g = c
                .groups
                .iter()
                .position(|g| g.name == gn)
                .ok_or_else(|| format!("Unknown group '{gn}'"))?;
            let nodes = alloc_nodes(c, g, opts);
            let sol = try_alloc_in_group(c, g, &nodes, inst, count, opts);
            let pol = c.groups[g].alloc_policy.as_str();
            let msg = format!("Group {gn} ({pol}): {}", sol.describe(c));
            match sol.best {
                Some((n, _)) => Ok((n, msg)),
                None => Err(msg),
            }
        }
    }
}

fn names(c: &Cluster, ns: &[usize]) -> Value {
    json!(ns
        .iter()
        .map(|&n| c.nodes[n].name.clone())
        .collect::<Vec<_>>())
}

fn evac_result(c: &Cluster, es: &EvacSolution) -> (String, String) {
    let moved: Vec<Value> = es
        .moved
        .iter()
        .map(|(i, g, ns)| json!([c.instances[*i].name, c.groups[*g].name, names(c, ns)]))
        .collect();
    let failed: Vec<Value> = es
        .failed
        .iter()
        .map(|(i, m)| json!([c.instances[*i].name, m]))
        .collect();
    (
        format!(
            "{} instances failed to move and {} were moved successfully",
            failed.len(),
            moved.len()
        ),
        format!(
            "[{},{},[{}]]",
            Value::from(moved),
            Value::from(failed),
            es.jobs
                .iter()
                .map(|j| format!("[{}]", j.join(",")))
                .collect::<Vec<_>>()
                .join(",")
        ),
    )
}

fn multi_response(allocated: Vec<Value>, failed: Vec<Value>) -> (String, String) {
    (
        format!(
            "{} instances failed to allocate and {} were allocated successfully",
            failed.len(),
            allocated.len()
        ),
        json!([allocated, failed]).to_string(),
    )
}

/// Answers a request; `dedicated` allocations rank placements by the
/// lost-allocations metric instead of the cluster score.
fn process(
    c: &mut Cluster,
    kind: RequestKind,
    opts: &AllocOptions,
    dedicated: bool,
) -> Result<(String, String), String> {
    match kind {
        RequestKind::Allocate {
            mut inst,
            required_nodes,
            group,
            restrict,
        } => {
            loader::set_instance_tags(c, &mut inst);
            let mut o = opts.clone();
            if o.restrict_to_nodes.is_none() {
                o.restrict_to_nodes = restrict;
            }
            let (nodes, info) = if dedicated {
                dedicated::allocate(c, *inst, required_nodes, group.as_deref(), &o)?
            } else {
                let (nodes, info) = alloc_one(c, &inst, required_nodes, group.as_deref(), &o)?;
                let s = nodes.get(1).copied().unwrap_or(NO_SECONDARY);
                let _ = place_instance(c, *inst, nodes[0], s, true);
                (nodes, info)
            };
            Ok((info, names(c, &nodes).to_string()))
        }
        RequestKind::MultiAllocate(mut reqs) if dedicated => {
            for r in reqs.iter_mut() {
                loader::set_instance_tags(c, &mut r.0);
            }
            let r = dedicated::multi_allocate(c, reqs, opts)?;
            let ok = r
                .allocated
                .iter()
                .map(|(n, ns)| json!([n, names(c, ns)]))
                .collect();
            let failed = r.failed.iter().map(|(n, m)| json!([n, m])).collect();
            Ok(multi_response(ok, failed))
        }
        RequestKind::MultiAllocate(reqs) => {
            let mut ok = Vec::new();
            for (mut inst, count, group) in reqs {
                loader::set_instance_tags(c, &mut inst);
                let name = inst.name.clone();
                let (nodes, _) = alloc_one(c, &inst, count, group.as_deref(), opts)?;
                let s = nodes.get(1).copied().unwrap_or(NO_SECONDARY);
                place_instance(c, inst, nodes[0], s, true)
                    .map_err(|f| format!("internal error placing {name}: {}", f.name()))?;
                ok.push(json!([name, names(c, &nodes)]));
            }
            Ok(multi_response(ok, Vec::new()))
        }
        RequestKind::Relocate {
            idx,
            required_nodes,
            from,
        } => {
            let nodes = relocate(c, idx, required_nodes, &from, opts)?;
            Ok(("success".into(), names(c, &nodes).to_string()))
        }
        RequestKind::NodeEvacuate { idxs, mode } => {
            let es = node_evacuate(c, mode, &idxs, opts);
            Ok(evac_result(c, &es))
        }
        RequestKind::AllocateSecondary { idx } => {
            let sol = allocate_secondary(c, idx, opts)?;
            let info = sol.describe(c);
            match sol.best {
                Some((ns, _)) if ns.len() == 2 => {
                    Ok((info, Value::String(c.nodes[ns[1]].name.clone()).to_string()))
                }
                _ => Err(info),
            }
        }
        RequestKind::ChangeGroup { idxs, groups } => {
            let es = change_group(c, &idxs, &groups, opts);
            Ok(evac_result(c, &es))
        }
    }
}

fn run() -> Result<()> {
    let o: Opts = htools::cmdline::parse("hail", true);
    let input = match o.input.as_slice() {
        [] => bail!("This program needs an input file."),
        [one] => one,
        _ => bail!("Only one argument is accepted (the input file)"),
    };
    let verbose = 1 + o.verbose as i32;
    let body = if input == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(input).with_context(|| format!("reading '{input}'"))?
    };
    let (mut c, mut kind) = iallocator::parse(&body)?;
    let warnings = if o.text_data.is_some() || !o.simu.is_empty() {
        // the request is answered on this cluster instead of its own
        let data = htools::cli::DataOpts {
            text_data: o.text_data.clone(),
            simu: o.simu.clone(),
            ignore_dynu: o.ignore_dynu,
            static_kvm_node_memory: o.static_kvm_node_memory,
            ..Default::default()
        };
        let (other, warnings) = data.load().context("failed to load data, aborting")?;
        kind = iallocator::parse_with_cluster(&body, &other)?;
        c = other;
        warnings
    } else {
        loader::merge(
            &mut c,
            &loader::MergeOptions {
                ignore_dynu: o.ignore_dynu,
                static_kvm_node_mem: o.static_kvm_node_memory,
                ..Default::default()
            },
        )?
    };
    if !warnings.is_empty() {
        eprintln!("Warning: cluster has inconsistent data:");
        for w in &warnings {
            eprintln!("  - {w}");
        }
        eprintln!();
    }
    if verbose > 1 {
        eprintln!("Received request: {kind:?}");
    }
    if verbose > 2 {
        eprintln!("Received cluster data:");
        eprint!("{}", describe_cluster(&c));
    }
    let fields = o.print_nodes.as_deref().map(|f| node_fields(Some(f)));
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    if let Some(f) = &fields {
        eprintln!("Initial cluster status:");
        eprintln!("{}", print_nodes(&c, &all, f));
    }
    if let Some(s) = &o.save {
        std::fs::write(
            format!("{s}.pre-ialloc"),
            htools::backend::text::serialize(&c),
        )?;
    }
    let opts = AllocOptions {
        ignore_soft_errors: o.ignore_soft_errors,
        no_capacity_checks: o.no_capacity_checks,
        restrict_to_nodes: o.restrict.clone(),
        exact_singles: true,
        ..Default::default()
    };
    let dedicated_alloc = dedicated::request_target(&kind)
        .map(|g| dedicated::is_dedicated(&c, g.as_deref()))
        .unwrap_or(false);
    if verbose > 1 && dedicated_alloc {
        eprintln!("Allocation on a dedicated cluster; using lost-allocations metrics.");
    }
    let out = match process(&mut c, kind, &opts, dedicated_alloc) {
        Ok((info, result)) => {
            if let Some(f) = &fields {
                eprintln!("Final cluster status:");
                eprintln!("{}", print_nodes(&c, &all, f));
            }
            if let Some(s) = &o.save {
                std::fs::write(
                    format!("{s}.post-ialloc"),
                    htools::backend::text::serialize(&c),
                )?;
            }
            format_response(true, &format!("Request successful: {info}"), result)
        }
        Err(msg) => format_response(false, &format!("Request failed: {msg}"), "[]".into()),
    };
    println!("{out}");
    if out.is_empty() {
        bail!("empty response");
    }
    Ok(())
}

/// The cluster as hail received it, for `-v -v`: groups, nodes and the
/// instances with their state (in Ganeti's names for the run states).
fn describe_cluster(c: &Cluster) -> String {
    let mut out = String::new();
    for g in &c.groups {
        out.push_str(&format!(
            "  group {}: uuid = {}, allocPolicy = {}\n",
            g.name,
            g.uuid,
            g.alloc_policy.as_str()
        ));
    }
    for n in &c.nodes {
        out.push_str(&format!(
            "  node {}: group = {}, tMem = {}, fMem = {}, tDsk = {}, fDsk = {}, tCpu = {}, offline = {}\n",
            n.name,
            c.groups[n.group].name,
            n.s.t_mem,
            n.s.f_mem,
            n.s.t_dsk,
            n.s.f_dsk,
            n.s.t_cpu,
            n.s.offline
        ));
    }
    for i in &c.instances {
        let snode = if i.snode == NO_SECONDARY {
            String::new()
        } else {
            c.nodes[i.snode].name.clone()
        };
        out.push_str(&format!(
            "  instance {}: pNode = {}, sNode = {}, mem = {}, dsk = {}, vcpus = {}, runSt = {}\n",
            i.name,
            c.nodes[i.pnode].name,
            snode,
            i.mem,
            i.dsk,
            i.vcpus,
            run_state_name(i.status)
        ));
    }
    out
}

/// Ganeti's names for the instance run states.
fn run_state_name(s: htools::types::InstanceStatus) -> &'static str {
    use htools::types::InstanceStatus as S;
    match s {
        S::AdminDown => "StatusDown",
        S::AdminOffline => "StatusOffline",
        S::ErrorDown => "ErrorDown",
        S::ErrorUp => "ErrorUp",
        S::NodeDown => "NodeDown",
        S::NodeOffline => "NodeOffline",
        S::Running => "Running",
        S::UserDown => "UserDown",
        S::WrongNode => "WrongNode",
    }
}

fn format_response(success: bool, info: &str, result: String) -> String {
    format!(
        "{{\"success\":{},\"info\":{},\"result\":{}}}",
        success,
        Value::String(info.to_string()),
        result
    )
}
