//! `gnt-cluster init`, `gnt-cluster destroy` and the node setup of
//! `gnt-node add`: the steps that happen before (or after) there is a
//! master to talk to. This module turns the options into the `setup`
//! crate's parameters and its errors into Ganeti's; `setup` makes the
//! cluster's files and starts and stops the daemons.

use clap::Args;
use luxi::error::ErrorCode;
use objects::error_chain;
use objects::paths::{Paths, HOSTNAME_ENV};
use serde_json::Value;
use setup::init::{InitError, InitParams};
use setup::join::JoinError;

use crate::error::{exit, CliError};
use crate::output;
use crate::params::split_key_val;

/// Options of `gnt-cluster init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Comma-separated list of hypervisors to enable (the first is the default)
    #[arg(long = "enabled-hypervisors")]
    pub enabled_hypervisors: Option<String>,
    /// Comma-separated list of disk templates to enable
    #[arg(long = "enabled-disk-templates")]
    pub enabled_disk_templates: Option<String>,
    /// Hypervisor parameters: hypervisor:option=value,...
    #[arg(short = 'H', long = "hypervisor-parameters")]
    pub hvparams: Vec<String>,
    /// Backend parameters: option=value,...
    #[arg(short = 'B', long = "backend-parameters")]
    pub beparams: Option<String>,
    /// NIC parameters: option=value,...
    #[arg(short = 'N', long = "nic-parameters")]
    pub nicparams: Option<String>,
    /// Size of the master candidate pool
    #[arg(short = 'C', long = "candidate-pool-size")]
    pub candidate_pool_size: Option<u32>,
    /// Prefix of the MAC addresses of instances (three bytes, aa:00:00)
    #[arg(long = "mac-prefix")]
    pub mac_prefix: Option<String>,
    /// Network device of the master IP
    #[arg(long = "master-netdev")]
    pub master_netdev: Option<String>,
    /// Default iallocator plugin (default: hail, when installed)
    #[arg(short = 'I', long = "default-iallocator")]
    pub default_iallocator: Option<String>,
    /// Directory of file-based disks
    #[arg(long = "file-storage-dir")]
    pub file_storage_dir: Option<String>,
    /// Directory of shared file-based disks
    #[arg(long = "shared-file-storage-dir")]
    pub shared_file_storage_dir: Option<String>,
    /// Secondary IP of the master (accepted; the primary IP is used)
    #[arg(short = 's', long = "secondary-ip")]
    pub secondary_ip: Option<String>,
    /// Volume group of the plain (LVM) disks (default xenvg when an LVM
    /// disk template is enabled)
    #[arg(long = "vg-name")]
    pub vg_name: Option<String>,
    /// Instance policy bounds: min:SPECS/max:SPECS[//min:SPECS/max:SPECS...],
    /// SPECS being cpu-count=N,disk-count=N,disk-size=N,memory-size=N,
    /// nic-count=N,spindle-use=N
    #[arg(long = "ipolicy-bounds-specs")]
    pub ipolicy_bounds_specs: Option<String>,
    /// Do not modify /etc/hosts (ganeti-rs never does)
    #[arg(long = "no-etc-hosts")]
    pub no_etc_hosts: bool,
    /// Do not install an SSH key (ganeti-rs does not use SSH)
    #[arg(long = "no-ssh-init")]
    pub no_ssh_init: bool,
    /// The cluster's name
    pub name: String,
}

/// This node's name: `GANETI_HOSTNAME`, else the host name.
pub fn my_name() -> String {
    if let Ok(n) = std::env::var(HOSTNAME_ENV) {
        if !n.is_empty() {
            return n;
        }
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

fn list(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .map(|v| {
            v.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn dict(opt: &str, s: &Option<String>) -> Result<objects::ParamDict, CliError> {
    Ok(match s {
        Some(v) => split_key_val(opt, v)?.into_iter().collect(),
        None => objects::ParamDict::new(),
    })
}

/// The instance specs every bound of the policy names.
const ISPECS: [&str; 6] = [
    "cpu-count",
    "disk-count",
    "disk-size",
    "memory-size",
    "nic-count",
    "spindle-use",
];

/// `--ipolicy-bounds-specs`: `min:k=v,.../max:k=v,...`, pairs separated by
/// `//`, each bound with every spec (sizes in MiB, or with a unit).
/// One instance specification (`key=val,...`; sizes with units) of
/// `ident` (`min`, `max`, `std`); `complete`: every parameter needed.
pub fn parse_ispec(
    opt: &str,
    ident: &str,
    specs: &str,
    complete: bool,
) -> Result<serde_json::Map<String, Value>, CliError> {
    let mut spec = serde_json::Map::new();
    for (k, v) in split_key_val(opt, specs)? {
        if !ISPECS.contains(&k.as_str()) {
            return Err(CliError::invalid(format!("Unknown parameter '{k}'")));
        }
        let text = crate::pyfmt::py_str(&v);
        let n = if k == "disk-size" || k == "memory-size" {
            crate::units::parse_unit(&text).ok()
        } else {
            text.parse::<u64>().ok()
        };
        let Some(n) = n else {
            return Err(CliError::invalid(format!(
                "'{text}' (in {k} of {ident}) is not a valid integer"
            )));
        };
        spec.insert(k, Value::from(n));
    }
    let missing: Vec<&str> = ISPECS
        .iter()
        .copied()
        .filter(|k| !spec.contains_key(*k))
        .collect();
    if complete && !missing.is_empty() {
        return Err(CliError::invalid(format!(
            "Missing parameters in ipolicy spec {ident}: {}",
            missing.join(", ")
        )));
    }
    Ok(spec)
}

pub fn parse_bounds_specs(opt: &str, value: &str) -> Result<Value, CliError> {
    let mut pairs = Vec::new();
    for pair in value.split("//") {
        let mut out = serde_json::Map::new();
        for section in pair.split('/') {
            if section.is_empty() {
                return Err(CliError::invalid(format!(
                    "Empty section in option '{opt}'"
                )));
            }
            let (ident, specs) = section.split_once(':').unwrap_or((section, ""));
            if ident != "min" && ident != "max" {
                return Err(CliError::invalid(format!(
                    "Invalid key in bounds instance specifications: {ident}"
                )));
            }
            if out.contains_key(ident) {
                return Err(CliError::invalid(format!(
                    "Duplicated parameter '{ident}' in parsing {opt}: {section}"
                )));
            }
            let spec = parse_ispec(opt, ident, specs, true)?;
            out.insert(ident.to_string(), Value::Object(spec));
        }
        pairs.push(Value::Object(out));
    }
    Ok(Value::Array(pairs))
}

/// `gnt-cluster init`.
pub fn init(a: InitArgs) -> Result<i32, CliError> {
    let paths = Paths::from_env();
    let master = my_name();
    let ip = objects::resolver::resolve(&paths, &master).ok_or_else(|| {
        CliError::prereq(
            format!("Cannot resolve this node's name '{master}' to an address"),
            ErrorCode::Resolver,
        )
    })?;
    let mut hvparams = Vec::new();
    for h in &a.hvparams {
        let (hv, rest) = h.split_once(':').unwrap_or((h.as_str(), ""));
        let params: objects::ParamDict = if rest.is_empty() {
            objects::ParamDict::new()
        } else {
            split_key_val("-H", rest)?.into_iter().collect()
        };
        hvparams.push((hv.to_string(), params));
    }
    let beparams: objects::ParamDict = dict("-B", &a.beparams)?
        .into_iter()
        .map(|(k, v)| {
            let v = match v.as_str().and_then(|s| crate::units::parse_unit(s).ok()) {
                Some(n) if k.contains("mem") => Value::from(n),
                _ => v,
            };
            (k, v)
        })
        .collect();
    let enabled_disk_templates = list(&a.enabled_disk_templates);
    let vg_name = init_vg_name(a.vg_name.as_deref(), &enabled_disk_templates)?;
    let params = InitParams {
        cluster_name: a.name.clone(),
        master_name: master.clone(),
        master_ip: ip.to_string(),
        enabled_hypervisors: list(&a.enabled_hypervisors),
        enabled_disk_templates,
        file_storage_dir: a.file_storage_dir.clone(),
        shared_file_storage_dir: a.shared_file_storage_dir.clone(),
        hvparams,
        beparams,
        nicparams: dict("-N", &a.nicparams)?,
        candidate_pool_size: a.candidate_pool_size,
        mac_prefix: a.mac_prefix.clone(),
        master_netdev: a.master_netdev.clone(),
        default_iallocator: a.default_iallocator.clone(),
        vg_name,
        ipolicy_minmax: a
            .ipolicy_bounds_specs
            .as_deref()
            .map(|v| parse_bounds_specs("--ipolicy-bounds-specs", v))
            .transpose()?,
    };
    setup::init::create_cluster(&paths, &params).map_err(|e| match e {
        InitError::Daemon(d) => CliError::exec(error_chain(&d)),
        other => CliError::invalid(error_chain(&other)),
    })?;
    Ok(exit::SUCCESS)
}

/// The volume group of a new cluster, as Ganeti's `gnt-cluster init`
/// chooses it: the one given, else `xenvg` when an LVM disk template is
/// enabled (the defaults, `file` and `diskless`, use none).
fn init_vg_name(given: Option<&str>, templates: &[String]) -> Result<Option<String>, CliError> {
    let lvm = objects::enums::lvm_enabled(templates);
    match given {
        Some("") if lvm => Err(CliError::invalid(
            "LVM disk templates are enabled, but vg name not set.",
        )),
        Some("") => Ok(None),
        Some(vg) => {
            if !lvm {
                output::out(
                    "You specified a volume group with --vg-name, but you did not enable any \
                     disk template that uses lvm.",
                );
            }
            Ok(Some(vg.to_string()))
        }
        None if lvm => Ok(Some("xenvg".to_string())),
        None => Ok(None),
    }
}

/// Installs the cluster certificates on a new node and starts its node
/// daemon (Ganeti does this over SSH).
pub fn node_setup(node: &str) -> Result<(), CliError> {
    let paths = Paths::from_env();
    setup::join::join_node(&paths, &my_name(), node).map_err(|e| match e {
        JoinError::NotVirtual { .. } => CliError::invalid(e.to_string()),
        JoinError::Unresolvable(_) => CliError::prereq(e.to_string(), ErrorCode::Resolver),
        other => CliError::exec(error_chain(&other)),
    })
}

/// `gnt-cluster destroy --yes-do-it`.
pub fn destroy(ctx: &mut crate::ctx::Ctx, yes_do_it: bool) -> Result<i32, CliError> {
    if !yes_do_it {
        output::err(
            "Destroying a cluster is irreversible. If you really want to destroy this cluster, \
             supply the --yes-do-it option.",
        );
        return Ok(exit::FAILURE);
    }
    // The master's checks first (no other node, no instance), as Ganeti's
    // OP_CLUSTER_DESTROY.
    crate::jobs::submit_opcode(ctx, crate::opcodes::OpCode::new("OP_CLUSTER_DESTROY"), None)?;
    let paths = Paths::from_env();
    setup::destroy::destroy_cluster(&paths, &my_name())
        .map_err(|e| CliError::exec(format!("Cannot remove the cluster files: {e}")))?;
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod bounds_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bounds_specs_parse_into_min_max_pairs_with_sizes_in_mib() {
        let all = "cpu-count=1,disk-count=0,disk-size=1G,memory-size=64,nic-count=0,spindle-use=0";
        let v =
            parse_bounds_specs("--ipolicy-bounds-specs", &format!("min:{all}/max:{all}")).unwrap();
        assert_eq!(v[0]["min"]["disk-size"], json!(1024));
        assert_eq!(v[0]["max"]["memory-size"], json!(64));
    }

    #[test]
    fn bounds_specs_with_a_missing_spec_or_an_unknown_bound_are_refused() {
        let e = parse_bounds_specs("--ipolicy-bounds-specs", "min:cpu-count=1").unwrap_err();
        assert!(
            e.to_string()
                .contains("Missing parameters in ipolicy spec min: disk-count"),
            "{e}"
        );
        let e = parse_bounds_specs("--ipolicy-bounds-specs", "mid:cpu-count=1").unwrap_err();
        assert!(
            e.to_string()
                .contains("Invalid key in bounds instance specifications: mid"),
            "{e}"
        );
    }
}
