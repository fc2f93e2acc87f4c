//! hspace: cluster capacity estimation.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;

use htools::alloc::AllocOptions;
use htools::backend::simu::parse_unit;
use htools::capacity::{
    inst_from_spec, spec_of, standard, tiered_multi, total_resources, AllocRun, CStats, RSpec,
};
use htools::cli::DataOpts;
use htools::metrics::{print_stats, ClusterStats};
use htools::model::Cluster;
use htools::output::{node_fields, print_nodes};
use htools::types::{DiskTemplate, FailMode, TemplateExt};

#[derive(Parser, Debug)]
#[command(
    name = "hspace",
    about = "Cluster capacity estimation for ganeti-rs (Ganeti-compatible)"
)]
struct Opts {
    #[command(flatten)]
    data: DataOpts,
    /// Disk template of the instances to allocate.
    #[arg(long = "disk-template", value_name = "TEMPLATE")]
    disk_template: Option<String>,
    /// Spindle use of the instances to allocate.
    #[arg(long = "spindle-use", value_name = "N")]
    spindle_use: Option<i64>,
    /// Standard instance size: disk,ram,cpu[,spindles].
    #[arg(long = "standard-alloc", value_name = "SPEC")]
    standard_alloc: Option<String>,
    /// Initial tiered instance size: disk,ram,cpu[,spindles].
    #[arg(long = "tiered-alloc", value_name = "SPEC")]
    tiered_alloc: Option<String>,
    /// Stop after this many instances (per allocation mode).
    #[arg(short = 'l', long = "max-length", value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    max_length: i64,
    /// Shell-friendly output (yes/no; no argument means yes).
    #[arg(long = "machine-readable", value_name = "CHOICE", num_args = 0..=1, default_missing_value = "yes", require_equals = true)]
    machine_readable: Option<String>,
    /// Allocate even if the cluster is not N+1 happy.
    #[arg(long = "accept-existing-errors")]
    accept_existing: bool,
    /// Consider the groups independently: groups that fail the global N+1
    /// check get no instances and are left out of the check.
    #[arg(long = "independent-groups")]
    independent_groups: bool,
    /// Skip the global N+1 check of allocations.
    #[arg(long = "no-capacity-checks")]
    no_capacity_checks: bool,
    /// Ignore soft errors.
    #[arg(long = "ignore-soft-errors")]
    ignore_soft_errors: bool,
    /// Print the node list, optionally with these fields.
    #[arg(short = 'p', long = "print-nodes", value_name = "FIELDS", num_args = 0..=1, default_missing_value = "", require_equals = true)]
    print_nodes: Option<String>,
    /// Save the cluster state after each allocation mode to FILE.tiered / FILE.standard.
    #[arg(short = 'S', long = "save", value_name = "FILE")]
    save: Option<String>,
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn parse_spec(descr: &str, s: &str) -> Result<RSpec> {
    let f: Vec<&str> = s.split(',').collect();
    if !(3..=4).contains(&f.len()) {
        bail!("Invalid {descr} specification: '{s}', expected disk,ram,cpu");
    }
    Ok(RSpec {
        dsk: parse_unit(f[0]).with_context(|| format!("{descr} specs disk"))?,
        mem: parse_unit(f[1]).with_context(|| format!("{descr} specs memory"))?,
        cpu: f[2]
            .parse()
            .with_context(|| format!("{descr} specs cpus"))?,
        spn: match f.get(3) {
            Some(v) => v
                .parse()
                .with_context(|| format!("{descr} specs spindles"))?,
            None => 1,
        },
    })
}

fn key(out: &mut String, k: &str, v: impl std::fmt::Display) {
    let v = v.to_string();
    let q = if v.chars().any(|c| !(c.is_alphanumeric() || c == '.')) {
        format!("'{v}'")
    } else {
        v
    };
    out.push_str(&format!("HTS_{k}={q}\n"));
}

/// A list of names as Ganeti prints one (`["a","b"]`).
fn show_list(names: &[&str]) -> String {
    serde_json::to_string(names).unwrap_or_default()
}

fn eff(i: f64, t: f64) -> f64 {
    i / t
}

fn stats_keys(out: &mut String, ph: &str, cs: &CStats) {
    let k = |s: &str| format!("{ph}_{s}");
    key(out, &k("SCORE"), format!("{:.8}", cs.score));
    key(out, &k("INST_CNT"), cs.ninst);
    key(out, &k("MEM_FREE"), cs.fmem);
    key(out, &k("MEM_AVAIL"), cs.amem);
    key(out, &k("MEM_RESVD"), cs.fmem - cs.amem);
    key(out, &k("MEM_INST"), cs.imem);
    key(out, &k("MEM_OVERHEAD"), cs.xmem + cs.nmem);
    key(
        out,
        &k("MEM_EFF"),
        format!("{:.8}", eff(cs.imem as f64, cs.tmem)),
    );
    key(out, &k("DSK_FREE"), cs.fdsk);
    key(out, &k("DSK_AVAIL"), cs.adsk);
    key(out, &k("DSK_RESVD"), cs.fdsk - cs.adsk);
    key(out, &k("DSK_INST"), cs.idsk);
    key(
        out,
        &k("DSK_EFF"),
        format!("{:.8}", eff(cs.idsk as f64, cs.tdsk)),
    );
    key(out, &k("SPN_FREE"), cs.fspn);
    key(out, &k("SPN_INST"), cs.ispn);
    key(
        out,
        &k("SPN_EFF"),
        format!("{:.8}", eff(cs.ispn as f64, cs.tspn)),
    );
    key(out, &k("CPU_INST"), cs.icpu);
    key(
        out,
        &k("CPU_EFF"),
        format!("{:.8}", eff(cs.icpu as f64, cs.vcpu as f64)),
    );
    key(out, &k("MNODE_MEM_AVAIL"), cs.mmem);
    key(out, &k("MNODE_DSK_AVAIL"), cs.mdsk);
}

fn fmt_res(sp: &RSpec, spn: bool) -> String {
    let mut s = format!("MEM {}, DSK {}, CPU {}", sp.mem, sp.dsk, sp.cpu);
    if spn {
        s.push_str(&format!(", SPN {}", sp.spn));
    }
    s
}

fn show_double(x: f64) -> String {
    htools::backend::text::show_double(x)
}

fn print_eff(cs: &CStats, spn: bool) {
    let mut f = vec![
        ("memory", eff(cs.imem as f64, cs.tmem)),
        ("disk", eff(cs.idsk as f64, cs.tdsk)),
        ("vcpu", eff(cs.icpu as f64, cs.vcpu as f64)),
    ];
    if spn {
        f.push(("spindles", eff(cs.ispn as f64, cs.tspn)));
    }
    let len = f.iter().map(|x| x.0.len()).max().unwrap_or(0);
    for (n, v) in f {
        println!("  - {n:>len$} usage efficiency: {:5.2}%", v * 100.0);
    }
}

fn fail_name(f: FailMode) -> &'static str {
    f.name()
}

fn run() -> Result<()> {
    let o: Opts = htools::cmdline::parse("hspace", false);
    let verbose = 1 + o.verbose as i32 - o.quiet as i32;
    let machine = match o.machine_readable.as_deref() {
        None | Some("no") => false,
        Some("yes") => true,
        Some(x) => bail!("Invalid machine-readable value '{x}', expected yes or no"),
    };
    o.data.check_backends()?;
    let (c, warnings) = o.data.load().context("failed to load data, aborting")?;
    if verbose != 0 && !warnings.is_empty() {
        eprintln!("Warning: cluster has inconsistent data:");
        for w in &warnings {
            eprintln!("  - {w}");
        }
        eprintln!();
    }
    let Some(&cluster_dt) = c.ipolicy.disk_templates.first() else {
        bail!("null list of disk templates received from cluster");
    };
    let dt = match &o.disk_template {
        Some(d) => DiskTemplate::parse(d)?,
        None => cluster_dt,
    };
    let su = o.spindle_use.unwrap_or(c.ipolicy.std.spindle_use);
    let excl = c.nodes.iter().any(|n| n.s.excl_storage);
    let fields = o.print_nodes.as_deref().map(|f| node_fields(Some(f)));
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    if let Some(f) = &fields {
        eprintln!("\nInitial cluster status:");
        eprintln!("{}", print_nodes(&c, &all, f));
    }
    if verbose > 2 {
        let st = ClusterStats::compute(c.nodes.iter());
        eprint!(
            "Initial coefficients: overall {:.8}\n{}",
            st.score(),
            print_stats("  ", &st)
        );
    }
    let ini = total_resources(&c);
    let mut out = String::new();
    if machine {
        key(&mut out, "CLUSTER_MEM", format!("{:.0}", ini.tmem));
        key(&mut out, "CLUSTER_DSK", format!("{:.0}", ini.tdsk));
        key(&mut out, "CLUSTER_CPU", format!("{:.0}", ini.tcpu));
        key(&mut out, "CLUSTER_VCPU", ini.vcpu);
        key(&mut out, "CLUSTER_SPN", format!("{:.0}", ini.tspn));
        key(&mut out, "CLUSTER_NODES", c.nodes.len());
        stats_keys(&mut out, "INI", &ini);
        print!("{out}");
        out.clear();
    } else {
        let mut res = format!(
            "MEM {:.0}, DSK {:.0}, CPU {:.0}, VCPU {}",
            ini.tmem, ini.tdsk, ini.tcpu, ini.vcpu
        );
        if excl {
            res.push_str(&format!(", SPN {:.0}", ini.tspn));
        }
        println!(
            "The cluster has {} nodes and the following resources:\n  {res}.",
            c.nodes.len()
        );
        println!(
            "There are {} initial instances on the cluster.",
            if ini.ninst > 0 {
                ini.ninst.to_string()
            } else {
                "no".into()
            }
        );
    }
    let bad_nodes: Vec<usize> = (0..c.nodes.len())
        .filter(|&n| !c.nodes[n].s.offline && c.nodes[n].s.fail_n1)
        .collect();
    let mut aopts = AllocOptions {
        ignore_soft_errors: o.ignore_soft_errors,
        no_capacity_checks: o.no_capacity_checks,
        restrict_to_nodes: None,
        // hspace prints no scores, and places thousands of instances
        exact_singles: false,
        accept_existing: o.accept_existing,
        capacity_ignore_groups: Vec::new(),
    };
    if verbose > 3 && !bad_nodes.is_empty() {
        let names: Vec<&str> = bad_nodes
            .iter()
            .map(|&n| c.nodes[n].name.as_str())
            .collect();
        eprintln!("Bad nodes: {}", show_list(&names));
    }
    // the groups that fail the global N+1 check as they are
    let bad_groups: Vec<usize> = if verbose > 3 || o.independent_groups {
        (0..c.groups.len())
            .filter(|&g| !htools::alloc::redundant_group(&c, g, &aopts))
            .collect()
    } else {
        Vec::new()
    };
    if verbose > 3 && !bad_groups.is_empty() {
        let names: Vec<&str> = bad_groups
            .iter()
            .map(|&g| c.groups[g].name.as_str())
            .collect();
        eprintln!("Bad groups: {}", show_list(&names));
    }
    let mut groups = c.groups.clone();
    if !o.accept_existing {
        for &n in &bad_nodes {
            groups[c.nodes[n].group].alloc_policy = htools::types::AllocPolicy::Unallocable;
        }
    }
    if o.independent_groups {
        for &g in &bad_groups {
            groups[g].alloc_policy = htools::types::AllocPolicy::Unallocable;
        }
        aopts.capacity_ignore_groups = bad_groups.clone();
    }
    let groups_remaining = groups.iter().any(|g| g.is_allocable());
    // allocation goes on unless there are N+1 failures that are neither
    // accepted nor confined to groups left out
    let stop =
        !(o.accept_existing || bad_nodes.is_empty() || (o.independent_groups && groups_remaining));
    let nodes: Vec<usize> = (0..c.nodes.len())
        .filter(|&n| !c.nodes[n].s.offline && groups[c.nodes[n].group].is_allocable())
        .collect();
    // -1 is "no limit"; other negative values are passed on as Ganeti does
    let limit = (o.max_length != -1).then_some(o.max_length);
    let tspecs: Vec<RSpec> = match &o.tiered_alloc {
        Some(s) => vec![parse_spec("tiered", s)?],
        None => c
            .ipolicy
            .minmax
            .iter()
            .map(|mm| RSpec {
                cpu: mm.max.cpu_count,
                mem: mm.max.mem_size,
                dsk: mm.max.disk_size,
                spn: mm.max.spindle_use,
            })
            .collect(),
    };
    let Some(&tspec) = tspecs.first() else {
        bail!("Empty list of specs received from the cluster");
    };
    let run_mode = |tiered_mode: bool, specs: &[RSpec]| -> (Cluster, AllocRun) {
        let mut c2 = c.clone();
        if stop {
            return (
                c2,
                AllocRun {
                    reasons: vec![(FailMode::N1, 1)],
                    allocated: vec![],
                },
            );
        }
        let insts: Vec<_> = specs.iter().map(|sp| inst_from_spec(sp, dt, su)).collect();
        let total = match (tiered_mode, insts.first()) {
            (true, _) => tiered_multi(&mut c2, &nodes, &insts, limit, &aopts),
            (false, Some(inst)) => standard(&mut c2, &nodes, inst, limit, &aopts),
            (false, None) => AllocRun {
                reasons: Vec::new(),
                allocated: Vec::new(),
            },
        };
        (c2, total)
    };
    // tiered
    let (tc, tr) = run_mode(true, &tspecs);
    print_ispec(
        machine,
        "TSPEC_INI",
        "Tiered (initial size)",
        &tspec,
        dt,
        excl,
    );
    if let Some(f) = &fields {
        eprintln!("\nTiered allocation status:");
        eprintln!("{}", print_nodes(&tc, &all, f));
    }
    if let Some(s) = &o.save {
        std::fs::write(format!("{s}.tiered"), htools::backend::text::serialize(&tc))?;
    }
    let mut spec_map: Vec<(RSpec, usize)> = Vec::new();
    for &i in &tr.allocated {
        let sp = spec_of(&tc.instances[i]);
        match spec_map.last_mut() {
            Some((s, n)) if *s == sp => *n += 1,
            _ => spec_map.push((sp, 1)),
        }
    }
    let tcs = total_resources(&tc);
    if machine {
        stats_keys(&mut out, "TRL", &tcs);
        let tspecs: Vec<String> = spec_map
            .iter()
            .map(|(s, n)| format!("{},{},{},{}={n}", s.mem, s.dsk, s.cpu, s.spn))
            .collect();
        key(&mut out, "TSPEC", tspecs.join(" "));
        // allocation deltas (used, pool, unavailable)
        let used = (ini.icpu, ini.ncpu, ini.imem, ini.idsk, ini.ispn);
        let pool = (
            tcs.icpu - ini.icpu,
            tcs.ncpu - ini.ncpu,
            tcs.imem - ini.imem,
            tcs.idsk - ini.idsk,
            tcs.ispn - ini.ispn,
        );
        let unav = (
            tcs.vcpu - tcs.icpu,
            tcs.tcpu - tcs.ncpu,
            tcs.tmem.trunc() as i64 - tcs.imem,
            tcs.tdsk.trunc() as i64 - tcs.idsk,
            tcs.tspn.trunc() as i64 - tcs.ispn,
        );
        for (name, (cpu, npu, mem, dsk, spn)) in [("USED", used), ("POOL", pool), ("UNAV", unav)] {
            key(&mut out, &format!("KM_{name}_CPU"), cpu);
            key(&mut out, &format!("KM_{name}_NPU"), show_double(npu));
            key(&mut out, &format!("KM_{name}_MEM"), mem);
            key(&mut out, &format!("KM_{name}_DSK"), dsk);
            key(&mut out, &format!("KM_{name}_SPN"), spn);
        }
        print!("{out}");
        out.clear();
    } else {
        println!("Tiered allocation results:");
        if spec_map.is_empty() {
            println!("  - no instances allocated");
        }
        for (s, n) in &spec_map {
            println!("  - {n:3} instances of spec {}", fmt_res(s, excl));
        }
        print_fr(&c, &tc, &tr, excl);
    }
    // standard
    let sspec = match &o.standard_alloc {
        Some(s) => parse_spec("standard", s)?,
        None => {
            let st = &c.ipolicy.std;
            RSpec {
                cpu: st.cpu_count,
                mem: st.mem_size,
                dsk: st.disk_size,
                spn: st.spindle_use,
            }
        }
    };
    let (sc, sr) = run_mode(false, &[sspec]);
    print_ispec(machine, "SPEC", "Standard (fixed-size)", &sspec, dt, excl);
    if let Some(f) = &fields {
        eprintln!("\nStandard allocation status:");
        eprintln!("{}", print_nodes(&sc, &all, f));
    }
    if let Some(s) = &o.save {
        std::fs::write(
            format!("{s}.standard"),
            htools::backend::text::serialize(&sc),
        )?;
    }
    if machine {
        let fcs = total_resources(&sc);
        stats_keys(&mut out, "FIN", &fcs);
        let num = c.instances.len();
        let fin = num + sr.allocated.len();
        key(
            &mut out,
            "ALLOC_USAGE",
            format!("{:.8}", num as f64 / fin as f64),
        );
        key(&mut out, "ALLOC_INSTANCES", sr.allocated.len());
        let main = sr
            .reasons
            .first()
            .map(|r| fail_name(r.0))
            .unwrap_or("FailInternal");
        key(&mut out, "ALLOC_FAIL_REASON", main.to_uppercase());
        for (m, n) in &sr.reasons {
            key(
                &mut out,
                &format!("ALLOC_{}_CNT", m.name().to_uppercase()),
                n,
            );
        }
        key(&mut out, "OK", 1);
        print!("{out}");
    } else {
        println!("Normal (fixed-size) allocation results:");
        println!("  - {:3} instances allocated", sr.allocated.len());
        print_fr(&c, &sc, &sr, excl);
    }
    Ok(())
}

fn print_ispec(machine: bool, prefix: &str, descr: &str, sp: &RSpec, dt: DiskTemplate, spn: bool) {
    if machine {
        let mut out = String::new();
        key(&mut out, &format!("{prefix}_MEM"), sp.mem);
        key(&mut out, &format!("{prefix}_DSK"), sp.dsk);
        key(&mut out, &format!("{prefix}_CPU"), sp.cpu);
        key(&mut out, &format!("{prefix}_SPN"), sp.spn);
        key(&mut out, &format!("{prefix}_RQN"), dt.required_nodes());
        key(&mut out, &format!("{prefix}_DISK_TEMPLATE"), dt.as_str());
        print!("{out}");
    } else {
        println!(
            "{descr} instance spec is:\n  {}, using disk template '{}'.",
            fmt_res(sp, spn),
            dt.as_str()
        );
    }
}

fn print_fr(ini: &Cluster, fin: &Cluster, r: &AllocRun, spn: bool) {
    let main = r
        .reasons
        .first()
        .map(|x| x.0.name())
        .unwrap_or("FailInternal");
    println!("  - most likely failure reason: {main}");
    println!(
        "  - initial cluster score: {:.8}",
        ClusterStats::compute(ini.nodes.iter()).score()
    );
    println!(
        "  -   final cluster score: {:.8}",
        ClusterStats::compute(fin.nodes.iter()).score()
    );
    print_eff(&total_resources(fin), spn);
}
