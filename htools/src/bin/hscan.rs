//! hscan: reads clusters over RAPI (or the local master over LUXI) and
//! saves each as a text file for `-t`, with a one-line summary.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use htools::backend::{self, Source};
use htools::loader::{merge, MergeOptions};
use htools::metrics::ClusterStats;
use htools::model::Cluster;
use htools::output::{node_fields, print_nodes};

#[derive(Parser, Debug)]
#[command(
    name = "hscan",
    about = "Scan clusters via RAPI and save node/instance data (ganeti-rs, Ganeti-compatible)"
)]
struct Opts {
    /// Print the node list of each cluster, optionally with these fields.
    #[arg(short = 'p', long = "print-nodes", value_name = "FIELDS", num_args = 0..=1, default_missing_value = "", require_equals = true)]
    print_nodes: Option<String>,
    /// Write the data files to this directory (default: the current one).
    #[arg(short = 'd', value_name = "PATH", default_value = ".")]
    output_dir: PathBuf,
    /// Without clusters: read the local master over LUXI (this socket).
    #[arg(short = 'L', long = "luxi", value_name = "SOCKET", num_args = 0..=1, default_missing_value = "", require_equals = true)]
    luxi: Option<String>,
    /// More output (repeatable; accepted).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Do not print the header line.
    #[arg(long = "no-headers")]
    no_headers: bool,
    /// Node memory (MiB) assumed for KVM nodes; 0 uses what the cluster
    /// reports.
    #[arg(
        long = "static-kvm-node-memory",
        value_name = "N",
        default_value_t = 4096
    )]
    static_kvm_node_memory: i64,
    /// The clusters (RAPI servers: host, host:port, https://host:port, or
    /// file://DIR).
    clusters: Vec<String>,
}

/// The one-line summary of a (merged) cluster: nodes, instances, nodes
/// and instances failing N+1, memory and disk, score.
fn summary(c: &Cluster) -> String {
    let bad: Vec<usize> = (0..c.nodes.len())
        .filter(|&n| !c.nodes[n].s.offline && c.nodes[n].s.fail_n1)
        .collect();
    let mut bad_i: Vec<usize> = bad
        .iter()
        .flat_map(|&n| c.nodes[n].slist.iter().chain(&c.nodes[n].plist).copied())
        .collect();
    bad_i.sort_unstable();
    bad_i.dedup();
    let t_mem: f64 = c.nodes.iter().map(|n| n.s.t_mem).sum();
    let f_mem: i64 = c.nodes.iter().map(|n| n.s.f_mem).sum();
    let t_dsk: f64 = c.nodes.iter().map(|n| n.s.t_dsk).sum();
    let f_dsk: i64 = c.nodes.iter().map(|n| n.s.f_dsk).sum();
    let score = ClusterStats::compute(c.nodes.iter()).score();
    format!(
        "{:5} {:5} {:5} {:5} {:6.0} {:6} {:6.0} {:6} {:.8}",
        c.nodes.len(),
        c.instances.len(),
        bad.len(),
        bad_i.len(),
        t_mem,
        f_mem,
        t_dsk / 1024.0,
        f_dsk.div_euclid(1024),
        score
    )
}

/// Loads, summarises and saves one cluster; false when it failed.
fn scan(o: &Opts, width: usize, name: &str, src: Source) -> bool {
    let raw = match backend::load(&src) {
        Ok(c) => c,
        Err(e) => {
            println!("\nError for {name}: failed to load data. Details:\n{e}");
            return false;
        }
    };
    let mut merged = raw.clone();
    let opts = MergeOptions {
        util: Vec::new(),
        ex_tags: Vec::new(),
        select_instances: Vec::new(),
        exclude_instances: Vec::new(),
        ignore_dynu: false,
        static_kvm_node_mem: o.static_kvm_node_memory,
    };
    if let Err(e) = merge(&mut merged, &opts) {
        println!("\nError for {name}: failed to process data. Details:\n{e}");
        return false;
    }
    print!("{name:<width$} ");
    let _ = std::io::stdout().flush();
    println!("{}", summary(&merged));
    if let Some(spec) = &o.print_nodes {
        let fields = node_fields((!spec.is_empty()).then_some(spec.as_str()));
        let all: Vec<usize> = (0..merged.nodes.len()).collect();
        print!("{}", print_nodes(&merged, &all, &fields));
    }
    let file = o
        .output_dir
        .join(format!("{}.data", name.replace('/', "_")));
    if let Err(e) = std::fs::write(&file, htools::backend::text::serialize(&raw)) {
        println!("\nError for {name}: cannot write {}: {e}", file.display());
        return false;
    }
    true
}

fn main() -> ExitCode {
    let o: Opts = htools::cmdline::parse("hscan", true);
    let local = "LOCAL";
    let width = o
        .clusters
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(local.len());
    if !o.no_headers {
        println!(
            "{:<width$} {:>5} {:>5} {:>5} {:>5} {:>6} {:>6} {:>6} {:>6} {:>10}",
            "Name",
            "Nodes",
            "Inst",
            "BNode",
            "BInst",
            "t_mem",
            "f_mem",
            "t_disk",
            "f_disk",
            "Score"
        );
    }
    let mut ok = true;
    if o.clusters.is_empty() {
        let sock = o.luxi.clone().unwrap_or_default();
        ok &= scan(&o, width, local, Source::Luxi(sock));
    }
    for c in &o.clusters {
        ok &= scan(&o, width, c, Source::Rapi(c.clone()));
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
