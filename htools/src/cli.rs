//! Command-line options shared by the h* programs, and loading the
//! cluster they select.

use clap::Args;

use crate::backend::{self, Source};
use crate::error::{Error, Result};
use crate::loader::{self, MergeOptions};
use crate::model::Cluster;
use crate::types::DynUtil;

/// Backend selection and data-shaping options.
#[derive(Debug, Clone, Args, Default)]
pub struct DataOpts {
    /// Load the cluster from a Ganeti text file.
    #[arg(short = 't', long = "text-data", value_name = "FILE")]
    pub text_data: Option<String>,
    /// Simulate an empty cluster: alloc_policy,nodes,disk,mem,cpus[,spindles].
    #[arg(long = "simulate", alias = "simu", value_name = "SPEC")]
    pub simu: Vec<String>,
    /// Query the master over LUXI (default socket when none is given).
    #[arg(short = 'L', long = "luxi", value_name = "SOCKET", num_args = 0..=1, default_missing_value = "", require_equals = true)]
    pub luxi: Option<String>,
    /// Query a RAPI server (host, host:port, https://host:port) or read
    /// its saved answers (file://DIR).
    #[arg(short = 'm', value_name = "CLUSTER")]
    pub rapi: Option<String>,
    /// Mark these nodes offline (repeatable).
    #[arg(short = 'O', long = "offline", value_name = "NODE")]
    pub offline: Vec<String>,
    /// Override the vcpu ratio of the instance policy.
    #[arg(long = "max-cpu", value_name = "RATIO")]
    pub max_cpu: Option<f64>,
    /// Minimum free disk ratio to keep on nodes.
    #[arg(long = "min-disk", value_name = "RATIO", default_value_t = 0.0)]
    pub min_disk: f64,
    /// Ignore dynamic utilisation data.
    #[arg(long = "ignore-dynu")]
    pub ignore_dynu: bool,
    /// Instance utilisation file: "name cpu mem dsk net" per line.
    #[arg(short = 'U', long = "dynu-file", value_name = "FILE")]
    pub dynu_file: Option<String>,
    /// Extra exclusion tag prefixes, comma-separated.
    #[arg(long = "exclusion-tags", value_name = "TAGS", value_delimiter = ',')]
    pub exclusion_tags: Vec<String>,
    /// Only move these instances (comma-separated).
    #[arg(long = "select-instances", value_name = "INSTS", value_delimiter = ',')]
    pub select_instances: Vec<String>,
    /// Never move these instances (comma-separated).
    #[arg(
        long = "exclude-instances",
        value_name = "INSTS",
        value_delimiter = ','
    )]
    pub exclude_instances: Vec<String>,
    /// Node memory (MiB) assumed for KVM nodes, as Ganeti does; 0 uses what
    /// the cluster reports.
    #[arg(
        long = "static-kvm-node-memory",
        value_name = "N",
        default_value_t = 4096
    )]
    pub static_kvm_node_memory: i64,
}

impl DataOpts {
    /// Checks that at most one of the text, LUXI and RAPI backends is
    /// given; Ganeti's programs check this before they load anything.
    pub fn check_backends(&self) -> Result<()> {
        match self.source() {
            Err(e @ Error::Invalid(_)) if self.backend_count() > 1 => Err(e),
            _ => Ok(()),
        }
    }

    fn backend_count(&self) -> usize {
        [
            self.text_data.is_some(),
            self.luxi.is_some(),
            self.rapi.is_some(),
        ]
        .iter()
        .filter(|&&b| b)
        .count()
    }

    /// The selected source, or an error if none or several are given.
    pub fn source(&self) -> Result<Source> {
        let mut srcs = Vec::new();
        if let Some(t) = &self.text_data {
            srcs.push(Source::Text(t.clone()));
        }
        if let Some(l) = &self.luxi {
            srcs.push(Source::Luxi(l.clone()));
        }
        if let Some(m) = &self.rapi {
            srcs.push(Source::Rapi(m.clone()));
        }
        if srcs.len() > 1 {
            return Err(Error::Invalid(
                "Only one of the rapi, luxi, and data files options should be given.".into(),
            ));
        }
        if let Some(s) = srcs.pop() {
            return Ok(s);
        }
        if !self.simu.is_empty() {
            // Ganeti's getopt collects the specs last first: the last
            // --simulate becomes group-01
            return Ok(Source::Simu(self.simu.iter().rev().cloned().collect()));
        }
        Err(Error::Invalid("No backend selected! Exiting.".into()))
    }

    /// Loads and merges the cluster; returns it with the load warnings.
    pub fn load(&self) -> Result<(Cluster, Vec<String>)> {
        let src = self.source()?;
        let mut c = backend::load(&src)?;
        let util = match &self.dynu_file {
            Some(f) => parse_util_file(f)?,
            None => Vec::new(),
        };
        let warnings = loader::merge(
            &mut c,
            &MergeOptions {
                util,
                ex_tags: self.exclusion_tags.clone(),
                select_instances: self.select_instances.clone(),
                exclude_instances: self.exclude_instances.clone(),
                ignore_dynu: self.ignore_dynu,
                static_kvm_node_mem: self.static_kvm_node_memory,
            },
        )?;
        loader::set_node_status(&mut c, &self.offline, self.max_cpu, self.min_disk)?;
        Ok((c, warnings))
    }
}

/// Reads a utilisation file (`name cpu mem dsk net` per line).
pub fn parse_util_file(path: &str) -> Result<Vec<(String, DynUtil)>> {
    let data = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for line in data.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() != 5 {
            return Err(Error::parse(
                format!("utilisation file '{path}'"),
                format!("Cannot parse line {line}"),
            ));
        }
        let p = |v: &str| -> Result<f64> {
            v.parse().map_err(|_| {
                Error::parse(
                    format!("utilisation of {}", f[0]),
                    format!("cannot parse string '{v}'"),
                )
            })
        };
        out.push((
            f[0].to_string(),
            DynUtil {
                cpu: p(f[1])?,
                mem: p(f[2])?,
                dsk: p(f[3])?,
                net: p(f[4])?,
            },
        ));
    }
    Ok(out)
}

/// Splits a cluster into node groups: for each group (by index, in
/// ascending order) its nodes and the instances whose primary is there.
pub fn split_cluster(c: &Cluster) -> Vec<(usize, Vec<usize>, Vec<usize>)> {
    let mut gids: Vec<usize> = c.nodes.iter().map(|n| n.group).collect();
    gids.sort_unstable();
    gids.dedup();
    gids.into_iter()
        .map(|g| {
            let nodes: Vec<usize> = (0..c.nodes.len())
                .filter(|&i| c.nodes[i].group == g)
                .collect();
            let insts: Vec<usize> = (0..c.instances.len())
                .filter(|&i| c.nodes[c.instances[i].pnode].group == g)
                .collect();
            (g, nodes, insts)
        })
        .collect()
}
