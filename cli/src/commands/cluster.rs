//! `gnt-cluster`: cluster-wide administration.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::commands::{change_tags, expect_list, list_tags, TagOpts};
use crate::ctx::{Ctx, JobOpts};
use crate::error::{exit, CliError};
use crate::jobs::{submit_bare, submit_opcode, submit_or_send, JobExecutor};
use crate::opcodes::OpCode;
use crate::output;
use crate::params::{
    be_type, disk_dt_type, force_dict_type, hv_type, nd_type, nic_type, parse_yes_no,
    split_ident_key_val, split_key_val,
};
use crate::pyfmt::py_str;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Initialises a new cluster with this node as its master
    Init(crate::commands::bootstrap::InitArgs),
    /// Destroys the cluster: stops the daemons and removes its files
    Destroy {
        /// Confirm that the cluster is to be destroyed
        #[arg(long = "yes-do-it")]
        yes_do_it: bool,
    },
    /// Show cluster configuration
    #[command(alias = "show")]
    Info {
        /// Use roman numbers for positive integers (accepted, not used)
        #[arg(long = "roman")]
        roman: bool,
    },
    /// Does a check on the cluster configuration
    Verify(VerifyArgs),
    /// Alters the parameters of the cluster
    Modify(ModifyArgs),
    /// Check the disks of all instances and activate those needing it
    VerifyDisks {
        /// Only this node group
        #[arg(short = 'g', long = "node-group")]
        nodegroup: Option<String>,
        #[arg(long, value_parser = ["low", "normal", "high"])]
        priority: Option<String>,
    },
    /// Makes the current node the master
    #[command(alias = "masterfailover")]
    MasterFailover {
        /// Skip node agreement check (dangerous)
        #[arg(long = "no-voting")]
        no_voting: bool,
        /// Do not ask for confirmation of --no-voting
        #[arg(long = "yes-do-it")]
        yes_do_it: bool,
        /// Ignore offline nodes in the vote
        #[arg(long = "ignore-offline-nodes")]
        ignore_offline_nodes: bool,
    },
    /// Show the master node of the cluster
    Getmaster,
    /// Check whether the master daemon answers (exit code 0 or 1)
    MasterPing,
    /// Activate the master IP
    ActivateMasterIp,
    /// Deactivate the master IP
    DeactivateMasterIp {
        /// Do not ask for confirmation
        #[arg(long = "yes")]
        confirm: bool,
    },
    /// Update the recorded sizes of instance disks
    RepairDiskSizes {
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_parser = ["low", "normal", "high"])]
        priority: Option<String>,
        instances: Vec<String>,
    },
    /// Show the software version
    Version,
    /// Change or show the job queue's drain flag: drain, undrain or info
    Queue {
        #[arg(value_parser = ["drain", "undrain", "info"])]
        command: String,
    },
    /// Pause, resume or show the state of the watcher
    Watcher {
        #[arg(value_parser = ["pause", "continue", "info"])]
        command: String,
        /// How long to pause (e.g. 30m, 1h, 4h)
        duration: Option<String>,
    },
    /// Push the configuration and ssconf files to all nodes
    RedistConf {
        #[command(flatten)]
        job: JobOpts,
    },
    /// Renames the cluster
    Rename {
        /// Do not ask for confirmation
        #[arg(short = 'f', long)]
        force: bool,
        #[command(flatten)]
        job: JobOpts,
        /// The new name of the cluster
        new_name: String,
    },
    /// Renews cluster certificates, keys and secrets
    RenewCrypto(RenewCryptoArgs),
    /// Make, revoke and list RAPI API tokens (add, remove, list)
    RapiToken {
        #[command(subcommand)]
        cmd: crate::commands::rapi_token::TokenCmd,
    },
    /// Search the tags of all objects for a regular expression
    SearchTags {
        #[arg(long, value_parser = ["low", "normal", "high"])]
        priority: Option<String>,
        pattern: String,
    },
    /// List the tags of the cluster
    ListTags,
    /// Add tags to the cluster
    AddTags {
        tags: Vec<String>,
        #[command(flatten)]
        opts: TagOpts,
    },
    /// Remove tags from the cluster
    RemoveTags {
        tags: Vec<String>,
        #[command(flatten)]
        opts: TagOpts,
    },
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Increase the verbosity
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Print error codes in machine-readable form
    #[arg(long)]
    pub error_codes: bool,
    /// Simulate errors (for testing)
    #[arg(long = "debug-simulate-errors")]
    pub simulate_errors: bool,
    /// Skip the N+1 memory redundancy check
    #[arg(long = "no-nplus1-mem")]
    pub skip_nplusone_mem: bool,
    /// Error codes to ignore, comma-separated
    #[arg(short = 'I', long = "ignore-errors", value_delimiter = ',')]
    pub ignore_errors: Vec<String>,
    /// Verify only this node group
    #[arg(short = 'g', long = "node-group")]
    pub nodegroup: Option<String>,
    /// Also check for clutter left by earlier operations
    #[arg(long)]
    pub verify_clutter: bool,
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_parser = ["low", "normal", "high"])]
    pub priority: Option<String>,
}

#[derive(Args, Debug)]
pub struct ModifyArgs {
    /// Hypervisor parameters: hv:key=val,... (repeatable)
    #[arg(
        short = 'H',
        long = "hypervisor-parameters",
        allow_hyphen_values = true
    )]
    pub hvparams: Vec<String>,
    /// Default backend parameters: key=val,...
    #[arg(short = 'B', long = "backend-parameters", allow_hyphen_values = true)]
    pub beparams: Option<String>,
    /// Default NIC parameters: key=val,...
    #[arg(short = 'N', long = "nic-parameters", allow_hyphen_values = true)]
    pub nicparams: Option<String>,
    /// Default node parameters: key=val,...
    #[arg(long = "node-parameters", allow_hyphen_values = true)]
    pub ndparams: Option<String>,
    /// Disk template parameters: template:key=val,... (repeatable)
    #[arg(short = 'D', long = "disk-parameters", allow_hyphen_values = true)]
    pub diskparams: Vec<String>,
    /// Number of master candidates
    #[arg(short = 'C', long = "candidate-pool-size")]
    pub candidate_pool_size: Option<i64>,
    /// Maximum number of jobs running at once
    #[arg(long = "max-running-jobs")]
    pub max_running_jobs: Option<i64>,
    /// Maximum number of jobs tracked by the scheduler
    #[arg(long = "max-tracked-jobs")]
    pub max_tracked_jobs: Option<i64>,
    /// Comma-separated list of enabled hypervisors
    #[arg(long = "enabled-hypervisors")]
    pub enabled_hypervisors: Option<String>,
    /// Comma-separated list of enabled disk templates
    #[arg(long = "enabled-disk-templates")]
    pub enabled_disk_templates: Option<String>,
    /// MAC address prefix for new NICs
    #[arg(short = 'm', long = "mac-prefix")]
    pub mac_prefix: Option<String>,
    /// Network device of the master IP
    #[arg(long = "master-netdev")]
    pub master_netdev: Option<String>,
    /// Netmask (prefix length) of the master IP
    #[arg(long = "master-netmask")]
    pub master_netmask: Option<String>,
    /// LVM volume group
    #[arg(long = "vg-name")]
    pub vg_name: Option<String>,
    /// DRBD usermode helper
    #[arg(long = "drbd-usermode-helper")]
    pub drbd_helper: Option<String>,
    /// Keep nodes healthy (yes/no)
    #[arg(long = "maintain-node-health")]
    pub maintain_node_health: Option<String>,
    /// User-id pool: ranges such as 1000-2000,3000
    #[arg(long = "uid-pool")]
    pub uid_pool: Option<String>,
    /// User-ids to add to the pool
    #[arg(long = "add-uids")]
    pub add_uids: Option<String>,
    /// User-ids to remove from the pool
    #[arg(long = "remove-uids")]
    pub remove_uids: Option<String>,
    /// Default instance allocator
    #[arg(short = 'I', long = "default-iallocator")]
    pub default_iallocator: Option<String>,
    /// Parameters of the default instance allocator: key=val,...
    #[arg(long = "default-iallocator-params", allow_hyphen_values = true)]
    pub default_iallocator_params: Option<String>,
    /// Comma-separated logical volumes the cluster must ignore
    #[arg(long = "reserved-lvs")]
    pub reserved_lvs: Option<String>,
    /// Wipe disks before use (yes/no)
    #[arg(long = "prealloc-wipe-disks")]
    pub prealloc_wipe_disks: Option<String>,
    /// Use an external script to set up the master IP (yes/no)
    #[arg(long = "use-external-mip-script")]
    pub use_external_mip_script: Option<String>,
    /// Manage /etc/hosts (yes/no)
    #[arg(long = "modify-etc-hosts")]
    pub modify_etc_hosts: Option<String>,
    /// Allow user shutdown of instances (yes/no)
    #[arg(long = "user-shutdown")]
    pub enabled_user_shutdown: Option<String>,
    /// Directory of file disks
    #[arg(long = "file-storage-dir")]
    pub file_storage_dir: Option<String>,
    /// Directory of shared file disks
    #[arg(long = "shared-file-storage-dir")]
    pub shared_file_storage_dir: Option<String>,
    /// Image for instance installation helpers
    #[arg(long = "install-image")]
    pub install_image: Option<String>,
    /// Image for disk zeroing helpers
    #[arg(long = "zeroing-image")]
    pub zeroing_image: Option<String>,
    /// Network for instance communication
    #[arg(long = "instance-communication-network")]
    pub instance_communication_network: Option<String>,
    /// Comma-separated compression tools (empty: the defaults)
    #[arg(long = "compression-tools")]
    pub compression_tools: Option<String>,
    /// Enable data collectors: name=true|false,...
    #[arg(long = "enabled-data-collectors")]
    pub enabled_data_collectors: Option<String>,
    /// Data collector intervals in seconds: name=seconds,...
    #[arg(long = "data-collector-interval")]
    pub data_collector_interval: Option<String>,
    /// Allowed disk templates of the instance policy
    #[arg(long = "ipolicy-disk-templates")]
    pub ipolicy_disk_templates: Option<String>,
    /// vCPU ratio of the instance policy
    #[arg(long = "ipolicy-vcpu-ratio")]
    pub ipolicy_vcpu_ratio: Option<String>,
    /// Spindle ratio of the instance policy
    #[arg(long = "ipolicy-spindle-ratio")]
    pub ipolicy_spindle_ratio: Option<String>,
    /// Bounds of the instance policy: min:key=val,.../max:key=val,...[//...]
    #[arg(long = "ipolicy-bounds-specs")]
    pub ipolicy_bounds_specs: Option<String>,
    /// Standard specs of the instance policy: key=val,...
    #[arg(long = "ipolicy-std-specs")]
    pub ipolicy_std_specs: Option<String>,
    /// Force the operation
    #[arg(short = 'f', long)]
    pub force: bool,
    #[command(flatten)]
    pub job: JobOpts,
}

/// Entry point of `gnt-cluster`.
pub fn main() -> i32 {
    crate::commands::run::<Cmd>("gnt-cluster", "Ganeti cluster administration", dispatch)
}

fn dispatch(ctx: &mut Ctx, cmd: Cmd) -> Result<i32, CliError> {
    match cmd {
        Cmd::Init(a) => {
            crate::commands::bootstrap::init(a)?;
            // As Ganeti's init: the cluster-init post hooks, on the master.
            submit_bare(ctx, OpCode::new("OP_CLUSTER_POST_INIT"))?;
            Ok(exit::SUCCESS)
        }
        Cmd::Destroy { yes_do_it } => crate::commands::bootstrap::destroy(ctx, yes_do_it),
        Cmd::Info { .. } => super::cluster_info::info(ctx),
        Cmd::Verify(a) => verify(ctx, a),
        Cmd::Modify(a) => modify(ctx, a),
        Cmd::VerifyDisks {
            nodegroup,
            priority,
        } => verify_disks(ctx, nodegroup, priority),
        Cmd::Getmaster => getmaster(),
        Cmd::MasterFailover {
            no_voting,
            yes_do_it,
            ignore_offline_nodes,
        } => master_failover(no_voting, yes_do_it, ignore_offline_nodes),
        Cmd::RapiToken { cmd } => crate::commands::rapi_token::run(cmd),
        Cmd::MasterPing => Ok(match ctx.call("QueryClusterInfo", json!([])) {
            Ok(_) => exit::SUCCESS,
            Err(_) => exit::FAILURE,
        }),
        Cmd::ActivateMasterIp => {
            submit_bare(ctx, OpCode::new("OP_CLUSTER_ACTIVATE_MASTER_IP"))?;
            Ok(exit::SUCCESS)
        }
        Cmd::DeactivateMasterIp { confirm } => {
            if !confirm && !crate::output::ask_user("This will disable the master IP. All the open connections to the master IP will be closed. To reach the master you will need to use its node IP. Continue?") {
                return Ok(exit::FAILURE);
            }
            submit_bare(ctx, OpCode::new("OP_CLUSTER_DEACTIVATE_MASTER_IP"))?;
            Ok(exit::SUCCESS)
        }
        Cmd::RepairDiskSizes {
            dry_run,
            priority,
            instances,
        } => {
            let jo = JobOpts {
                dry_run,
                priority,
                ..JobOpts::default()
            };
            let op = OpCode::new("OP_CLUSTER_REPAIR_DISK_SIZES").set("instances", json!(instances));
            submit_opcode(ctx, op, Some(&jo))?;
            Ok(exit::SUCCESS)
        }
        Cmd::Version => version(ctx),
        Cmd::Queue { command } => queue(ctx, &command),
        Cmd::Watcher { command, duration } => watcher(ctx, &command, duration.as_deref()),
        Cmd::RedistConf { job } => {
            submit_or_send(ctx, OpCode::new("OP_CLUSTER_REDIST_CONF"), &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::Rename {
            force,
            job,
            new_name,
        } => rename(ctx, force, &job, &new_name),
        Cmd::RenewCrypto(a) => renew_crypto(ctx, &a),
        Cmd::SearchTags { priority, pattern } => search_tags(ctx, priority, &pattern),
        Cmd::ListTags => list_tags(ctx, "cluster", ""),
        Cmd::AddTags { tags, opts } => change_tags(ctx, true, "cluster", "", tags, &opts),
        Cmd::RemoveTags { tags, opts } => change_tags(ctx, false, "cluster", "", tags, &opts),
    }
}

/// The options of `gnt-cluster renew-crypto`. In ganeti-rs the cluster
/// certificate is the CA that signs the node certificates, so either of
/// `--new-cluster-certificate` and `--new-node-certificates` renews both.
#[derive(Args, Debug)]
pub struct RenewCryptoArgs {
    /// Generate a new cluster certificate (a new cluster CA)
    #[arg(long = "new-cluster-certificate")]
    pub new_cluster_cert: bool,
    /// Generate new node certificates
    #[arg(long = "new-node-certificates")]
    pub new_node_cert: bool,
    /// Generate a new RAPI certificate (not supported by ganeti-rs yet)
    #[arg(long = "new-rapi-certificate")]
    pub new_rapi_cert: bool,
    /// File with the new RAPI certificate (not supported by ganeti-rs yet)
    #[arg(long = "rapi-certificate")]
    pub rapi_cert: Option<String>,
    /// Generate a new SPICE certificate (not supported by ganeti-rs yet)
    #[arg(long = "new-spice-certificate")]
    pub new_spice_cert: bool,
    /// File with the new SPICE certificate (not supported by ganeti-rs yet)
    #[arg(long = "spice-certificate")]
    pub spice_cert: Option<String>,
    /// File with the CA of the SPICE certificate (not supported by ganeti-rs yet)
    #[arg(long = "spice-ca-certificate")]
    pub spice_cacert: Option<String>,
    /// Create a new HMAC key (not supported by ganeti-rs yet)
    #[arg(long = "new-confd-hmac-key")]
    pub new_confd_hmac_key: bool,
    /// Create a new cluster domain secret (not supported by ganeti-rs yet)
    #[arg(long = "new-cluster-domain-secret")]
    pub new_cds: bool,
    /// File with the new cluster domain secret (not supported by ganeti-rs yet)
    #[arg(long = "cluster-domain-secret")]
    pub cds: Option<String>,
    /// Renew the nodes' SSH keys (not supported by ganeti-rs yet)
    #[arg(long = "new-ssh-keys")]
    pub new_ssh_keys: bool,
    /// Type of the new SSH keys (not supported by ganeti-rs yet)
    #[arg(long = "ssh-key-type")]
    pub ssh_key_type: Option<String>,
    /// Length of the new SSH keys (not supported by ganeti-rs yet)
    #[arg(long = "ssh-key-bits")]
    pub ssh_key_bits: Option<String>,
    /// Skip the SSH host key check (accepted; ganeti-rs uses no SSH here)
    #[arg(long = "no-ssh-key-check")]
    pub no_ssh_key_check: bool,
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Show more output
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Show debug output
    #[arg(short = 'd', long, action = clap::ArgAction::Count)]
    pub debug: u8,
}

/// `gnt-cluster rename NEW_NAME`.
fn rename(ctx: &mut Ctx, force: bool, jo: &JobOpts, new_name: &str) -> Result<i32, CliError> {
    let old = ctx.call("QueryConfigValues", json!([["cluster_name"]]))?;
    let old = old
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !force
        && !crate::output::ask_user(&format!(
            "This will rename the cluster from '{old}' to '{new_name}'. If you are \
             connected over the network to the cluster name, the operation is very \
             dangerous as the IP address will be removed from the node and the change \
             may not go through. Continue?"
        ))
    {
        return Ok(exit::FAILURE);
    }
    let op = OpCode::new("OP_CLUSTER_RENAME").set("name", json!(new_name));
    let result = submit_or_send(ctx, op, jo)?;
    if let Some(name) = result.as_str().filter(|n| !n.is_empty()) {
        output::out(&format!("Cluster renamed from '{old}' to '{name}'"));
    }
    Ok(exit::SUCCESS)
}

/// `gnt-cluster renew-crypto`.
fn renew_crypto(ctx: &mut Ctx, a: &RenewCryptoArgs) -> Result<i32, CliError> {
    let unsupported = [
        ("--new-rapi-certificate", a.new_rapi_cert),
        ("--rapi-certificate", a.rapi_cert.is_some()),
        ("--new-spice-certificate", a.new_spice_cert),
        ("--spice-certificate", a.spice_cert.is_some()),
        ("--spice-ca-certificate", a.spice_cacert.is_some()),
        ("--new-confd-hmac-key", a.new_confd_hmac_key),
        ("--new-cluster-domain-secret", a.new_cds),
        ("--cluster-domain-secret", a.cds.is_some()),
        ("--new-ssh-keys", a.new_ssh_keys),
        ("--ssh-key-type", a.ssh_key_type.is_some()),
        ("--ssh-key-bits", a.ssh_key_bits.is_some()),
    ];
    if let Some((opt, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(CliError::invalid(format!(
            "gnt-cluster renew-crypto {opt} is not supported by ganeti-rs yet"
        )));
    }
    output::out(
        "Updating certificates now. Running \"gnt-cluster verify\"  is recommended after \
         this operation.",
    );
    if !a.force
        && !crate::output::ask_user(
            "This requires all daemons on all nodes to be restarted and may take some time. \
             Continue?",
        )
    {
        return Ok(exit::FAILURE);
    }
    if a.new_cluster_cert || a.new_node_cert {
        let op = OpCode::new("OP_CLUSTER_RENEW_CRYPTO")
            .set("node_certificates", json!(true))
            .set("verbose", json!(a.verbose))
            .set("debug", json!(a.debug > 0));
        submit_opcode(ctx, op, None)?;
    }
    output::out(
        "All requested certificates and keys have been replaced. Running \
         \"gnt-cluster verify\" now is recommended.",
    );
    Ok(exit::SUCCESS)
}

/// `gnt-cluster master-failover`: run on the node that is to become the
/// master (see `setup::failover`).
fn master_failover(
    no_voting: bool,
    yes_do_it: bool,
    ignore_offline_nodes: bool,
) -> Result<i32, CliError> {
    if no_voting
        && !yes_do_it
        && !output::ask_user(
            "This will perform the failover even if most other nodes are down, or if this node is outdated. This is dangerous as it can lead to a non-consistent cluster. Check the gnt-cluster(8) man page before proceeding. Continue?",
        )
    {
        return Ok(exit::FAILURE);
    }
    let paths = objects::paths::Paths::from_env();
    let me = crate::ctx::my_hostname();
    let opts = setup::failover::Options {
        no_voting,
        ignore_offline_nodes,
    };
    match setup::failover::master_failover(&paths, &me, opts) {
        Ok(o) => {
            for w in &o.warnings {
                output::err(w);
            }
            Ok(o.rcode)
        }
        Err(setup::failover::FailoverError::Ganeti(g)) => Err(CliError::Ganeti(g)),
        Err(setup::failover::FailoverError::Refused(m)) => {
            output::err(&m);
            Ok(exit::FAILURE)
        }
        Err(e) => Err(CliError::exec(objects::error_chain(&e))),
    }
}

fn getmaster() -> Result<i32, CliError> {
    let paths = objects::paths::Paths::from_env();
    let path = paths.ssconf("master_node");
    let master = std::fs::read_to_string(&path).map_err(|_| {
        CliError::Ganeti(luxi::GanetiError::configuration(format!(
            "Can't read ssconf file {}",
            path.display()
        )))
    })?;
    output::out(master.trim());
    Ok(exit::SUCCESS)
}

fn version(ctx: &mut Ctx) -> Result<i32, CliError> {
    let r = ctx.call("QueryClusterInfo", json!([]))?;
    let g = |k: &str| py_str(r.get(k).unwrap_or(&Value::Null));
    output::out(&format!("Software version: {}", g("software_version")));
    output::out(&format!("Internode protocol: {}", g("protocol_version")));
    output::out(&format!("Configuration format: {}", g("config_version")));
    output::out(&format!("OS api version: {}", g("os_api_version")));
    output::out(&format!("Export interface: {}", g("export_version")));
    output::out(&format!("VCS version: {}", g("vcs_version")));
    Ok(exit::SUCCESS)
}

fn queue(ctx: &mut Ctx, command: &str) -> Result<i32, CliError> {
    match command {
        "drain" | "undrain" => {
            ctx.call("SetDrainFlag", json!([command == "drain"]))?;
        }
        _ => {
            let r = ctx.call("QueryConfigValues", json!([["drain_flag"]]))?;
            let set = expect_list("QueryConfigValues", &r)?
                .first()
                .and_then(Value::as_bool)
                .unwrap_or(false);
            output::out(&format!(
                "The drain flag is {}",
                if set { "set" } else { "unset" }
            ));
        }
    }
    Ok(exit::SUCCESS)
}

fn show_watcher_pause(until: &Value) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    match until.as_f64() {
        Some(t) if t >= now => output::out(&format!(
            "The watcher is paused until {}.",
            crate::timefmt::ctime(t)
        )),
        _ => output::out("The watcher is not paused."),
    }
}

fn watcher(ctx: &mut Ctx, command: &str, duration: Option<&str>) -> Result<i32, CliError> {
    match command {
        "continue" => {
            ctx.call("SetWatcherPause", json!([null]))?;
            output::out("The watcher is no longer paused.");
        }
        "pause" => {
            let Some(d) = duration else {
                return Err(CliError::invalid("Missing pause duration"));
            };
            let secs = crate::commands::job::parse_timespec(d)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let r = ctx.call("SetWatcherPause", json!([now + secs as f64]))?;
            show_watcher_pause(&r);
        }
        _ => {
            let r = ctx.call("QueryConfigValues", json!([["watcher_pause"]]))?;
            let v = expect_list("QueryConfigValues", &r)?
                .first()
                .cloned()
                .unwrap_or(Value::Null);
            show_watcher_pause(&v);
        }
    }
    Ok(exit::SUCCESS)
}

fn search_tags(ctx: &mut Ctx, priority: Option<String>, pattern: &str) -> Result<i32, CliError> {
    let jo = JobOpts {
        priority,
        no_dry_run_opt: true,
        ..JobOpts::default()
    };
    let op = OpCode::new("OP_TAGS_SEARCH").set("pattern", pattern);
    let result = submit_opcode(ctx, op, Some(&jo))?;
    let Some(rows) = result.as_array().filter(|r| !r.is_empty()) else {
        return Ok(exit::FAILURE);
    };
    let mut lines: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                py_str(r.get(0).unwrap_or(&Value::Null)),
                py_str(r.get(1).unwrap_or(&Value::Null)),
            )
        })
        .collect();
    lines.sort();
    for (path, tag) in lines {
        output::out(&format!("{path} {tag}"));
    }
    Ok(exit::SUCCESS)
}

fn verify(ctx: &mut Ctx, a: VerifyArgs) -> Result<i32, CliError> {
    let skip: Vec<&str> = if a.skip_nplusone_mem {
        vec!["nplusone_mem"]
    } else {
        vec![]
    };
    let op = OpCode::new("OP_CLUSTER_VERIFY")
        .set("verbose", a.verbose)
        .set("error_codes", a.error_codes)
        .set("debug_simulate_errors", a.simulate_errors)
        .set("skip_checks", json!(skip))
        .set("ignore_errors", json!(a.ignore_errors))
        .set("group_name", json!(a.nodegroup))
        .set("verify_clutter", a.verify_clutter);
    let jo = JobOpts {
        dry_run: a.dry_run,
        priority: a.priority.clone(),
        ..JobOpts::default()
    };
    let result = submit_opcode(ctx, op, Some(&jo))?;
    let Some(jobs) = result.get("jobs").and_then(Value::as_array) else {
        return Err(CliError::bad_reply(
            "OP_CLUSTER_VERIFY",
            format!("result without job list: {result}"),
        ));
    };
    let submitted: Vec<(String, bool, Value)> = jobs
        .iter()
        .map(|j| {
            let ok = j.get(0).and_then(Value::as_bool).unwrap_or(false);
            (String::new(), ok, j.get(1).cloned().unwrap_or(Value::Null))
        })
        .collect();
    let results = JobExecutor::new(true).follow(ctx, submitted)?;
    let bad_jobs = results.iter().filter(|r| !r.success).count();
    let bad_results = results
        .iter()
        .filter(|r| {
            r.result
                .as_array()
                .and_then(|a| a.first())
                .is_none_or(|v| v.as_bool() != Some(true))
        })
        .count();
    if bad_jobs == 0 && bad_results == 0 {
        return Ok(exit::SUCCESS);
    }
    if bad_jobs > 0 {
        output::out(&format!(
            "{bad_jobs} job(s) failed while verifying the cluster."
        ));
    }
    Ok(exit::FAILURE)
}

fn verify_disks(
    ctx: &mut Ctx,
    nodegroup: Option<String>,
    priority: Option<String>,
) -> Result<i32, CliError> {
    let jo = JobOpts {
        priority,
        no_dry_run_opt: true,
        ..JobOpts::default()
    };
    let op = OpCode::new("OP_CLUSTER_VERIFY_DISKS").set("group_name", json!(nodegroup));
    let result = submit_opcode(ctx, op, Some(&jo))?;
    let Some(jobs) = result.get("jobs").and_then(Value::as_array) else {
        return Err(CliError::bad_reply(
            "OP_CLUSTER_VERIFY_DISKS",
            format!("result without job list: {result}"),
        ));
    };
    let submitted = jobs
        .iter()
        .map(|j| {
            let ok = j.get(0).and_then(Value::as_bool).unwrap_or(false);
            (String::new(), ok, j.get(1).cloned().unwrap_or(Value::Null))
        })
        .collect();
    let mut rc = exit::SUCCESS;
    for outcome in JobExecutor::new(true).follow(ctx, submitted)? {
        if !outcome.success {
            output::out(&format!("Job failed: {}", py_str(&outcome.result)));
            continue;
        }
        let Some([bad_nodes, instances, missing]) = outcome
            .result
            .get(0)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        else {
            return Err(CliError::bad_reply(
                "OP_GROUP_VERIFY_DISKS",
                outcome.result.to_string(),
            ));
        };
        let empty = Map::new();
        let bad_nodes = bad_nodes.as_object().unwrap_or(&empty);
        let missing = missing.as_object().unwrap_or(&empty);
        for (node, text) in bad_nodes {
            let text = py_str(text);
            let tail: String = {
                let chars: Vec<char> = text.chars().collect();
                chars[chars.len().saturating_sub(400)..].iter().collect()
            };
            output::out(&format!("Error gathering data on node {node}: {tail}"));
            rc = exit::FAILURE;
            output::out("You need to fix these nodes first before fixing instances");
        }
        let instances: Vec<String> = instances
            .as_array()
            .map(|a| a.iter().map(py_str).collect())
            .unwrap_or_default();
        for iname in &instances {
            if missing.contains_key(iname) {
                continue;
            }
            let op = OpCode::new("OP_INSTANCE_ACTIVATE_DISKS").set("instance_name", iname.as_str());
            output::out(&format!("Activating disks for instance '{iname}'"));
            match submit_opcode(ctx, op, Some(&jo)) {
                Ok(_) => {}
                Err(e @ (CliError::NoMaster | CliError::Protocol(_))) => return Err(e),
                Err(e) => {
                    let (code, msg) = e.render();
                    rc |= code;
                    output::err(&format!(
                        "Error activating disks for instance {iname}: {msg}"
                    ));
                }
            }
        }
        if !missing.is_empty() {
            for (iname, ival) in missing {
                let mut vols: Vec<(String, String)> = ival
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| {
                        (
                            py_str(x.get(0).unwrap_or(&Value::Null)),
                            py_str(x.get(1).unwrap_or(&Value::Null)),
                        )
                    })
                    .collect();
                if vols.iter().all(|(n, _)| bad_nodes.contains_key(n)) {
                    output::out(&format!(
                        "Instance {iname} cannot be verified as it lives on broken nodes"
                    ));
                    continue;
                }
                output::out(&format!("Instance {iname} has missing logical volumes:"));
                vols.sort();
                for (node, vol) in vols {
                    if bad_nodes.contains_key(&node) {
                        output::out(&format!("\tbroken node {node} /dev/{vol}"));
                    } else {
                        output::out(&format!("\t{node} /dev/{vol}"));
                    }
                }
            }
            output::out("You need to replace or recreate disks for all the above instances if this message persists after fixing broken nodes.");
            rc = exit::FAILURE;
        } else if instances.is_empty() {
            output::out("No disks need to be activated.");
        }
    }
    Ok(rc)
}

/// Ganeti's `ParseUidPool`: `1000-2000,3000` into sorted `[low, high]` pairs.
fn parse_uid_pool(value: &str) -> Result<Vec<(i64, i64)>, CliError> {
    let mut ranges = Vec::new();
    for def in value.split(',').filter(|d| !d.is_empty()) {
        let bounds: Vec<&str> = def.split('-').collect();
        if bounds.len() > 2 {
            return Err(CliError::invalid(format!(
                "Invalid user-id range definition. Only one hyphen allowed: {}",
                crate::pyfmt::py_repr(&json!(bounds))
            )));
        }
        let parse = |s: &str, which: &str| {
            s.trim().parse::<i64>().map_err(|_| {
                CliError::invalid(format!(
                    "Invalid user-id value for {which} boundary of user-id range: invalid literal for int() with base 10: '{s}'"
                ))
            })
        };
        let lower = parse(bounds[0], "lower")?;
        let higher = parse(bounds[bounds.len() - 1], "higher")?;
        ranges.push((lower, higher));
    }
    ranges.sort();
    Ok(ranges)
}

fn opt_bool(opt: &str, v: &Option<String>) -> Result<Option<bool>, CliError> {
    v.as_deref().map(|s| parse_yes_no(opt, s)).transpose()
}

/// `--ipolicy-*-ratio` values: a number or "default".
fn maybe_float(opt: &str, v: &Option<String>) -> Result<Option<Value>, CliError> {
    match v.as_deref().map(str::to_lowercase) {
        None => Ok(None),
        Some(s) if s == "default" => Ok(Some(json!("default"))),
        Some(s) => s
            .parse::<f64>()
            .map(|f| Some(json!(f)))
            .map_err(|_| CliError::invalid(format!("option {opt}: invalid value: '{s}'"))),
    }
}

fn modify(ctx: &mut Ctx, a: ModifyArgs) -> Result<i32, CliError> {
    let mut hvparams = Map::new();
    for h in &a.hvparams {
        let (hv, params) = split_ident_key_val("-H", h)?;
        hvparams.insert(hv, params);
    }
    let mut diskparams = Map::new();
    for d in &a.diskparams {
        let (dt, params) = split_ident_key_val("-D", d)?;
        diskparams.insert(dt, params);
    }
    let mut beparams = match &a.beparams {
        Some(b) => split_key_val("-B", b)?,
        None => Map::new(),
    };
    let mut nicparams = match &a.nicparams {
        Some(n) => split_key_val("-N", n)?,
        None => Map::new(),
    };
    let mut ndparams = match &a.ndparams {
        Some(n) => Some(split_key_val("--node-parameters", n)?),
        None => None,
    };
    let iallocator_params = match &a.default_iallocator_params {
        Some(p) => Some(split_key_val("--default-iallocator-params", p)?),
        None => None,
    };
    let enabled_collectors = match &a.enabled_data_collectors {
        Some(p) => split_key_val("--enabled-data-collectors", p)?,
        None => Map::new(),
    };
    let collector_interval = match &a.data_collector_interval {
        Some(p) => split_key_val("--data-collector-interval", p)?,
        None => Map::new(),
    };
    let maintain_node_health = opt_bool("--maintain-node-health", &a.maintain_node_health)?;
    let prealloc_wipe_disks = opt_bool("--prealloc-wipe-disks", &a.prealloc_wipe_disks)?;
    let use_external_mip_script =
        opt_bool("--use-external-mip-script", &a.use_external_mip_script)?;
    let modify_etc_hosts = opt_bool("--modify-etc-hosts", &a.modify_etc_hosts)?;
    let enabled_user_shutdown = opt_bool("--user-shutdown", &a.enabled_user_shutdown)?;
    let vcpu_ratio = maybe_float("--ipolicy-vcpu-ratio", &a.ipolicy_vcpu_ratio)?;
    let spindle_ratio = maybe_float("--ipolicy-spindle-ratio", &a.ipolicy_spindle_ratio)?;
    let nothing = a.vg_name.is_none()
        && a.drbd_helper.is_none()
        && a.enabled_hypervisors.as_deref().unwrap_or("").is_empty()
        && hvparams.is_empty()
        && beparams.is_empty()
        && nicparams.is_empty()
        && ndparams.as_ref().is_none_or(|m| m.is_empty())
        && diskparams.is_empty()
        && a.candidate_pool_size.is_none()
        && a.max_running_jobs.is_none()
        && a.max_tracked_jobs.is_none()
        && a.uid_pool.is_none()
        && maintain_node_health.is_none()
        && a.add_uids.is_none()
        && a.remove_uids.is_none()
        && a.default_iallocator.is_none()
        && iallocator_params.is_none()
        && a.reserved_lvs.is_none()
        && a.mac_prefix.is_none()
        && a.master_netdev.is_none()
        && a.master_netmask.is_none()
        && use_external_mip_script.is_none()
        && prealloc_wipe_disks.is_none()
        && a.enabled_disk_templates.as_deref().unwrap_or("").is_empty()
        && a.ipolicy_disk_templates.is_none()
        && a.ipolicy_bounds_specs.is_none()
        && a.ipolicy_std_specs.is_none()
        && vcpu_ratio.is_none()
        && spindle_ratio.is_none()
        && modify_etc_hosts.is_none()
        && a.file_storage_dir.is_none()
        && a.install_image.is_none()
        && a.instance_communication_network.is_none()
        && a.zeroing_image.is_none()
        && a.shared_file_storage_dir.is_none()
        && a.compression_tools.is_none()
        && enabled_user_shutdown.is_none()
        && collector_interval.is_empty()
        && enabled_collectors.is_empty();
    if nothing {
        output::err("Please give at least one of the parameters.");
        return Ok(exit::FAILURE);
    }
    let dts: Option<Vec<String>> = a
        .enabled_disk_templates
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(str::to_string).collect());
    if let (Some(dts), Some(_)) = (&dts, &a.vg_name) {
        if !dts.iter().any(|d| d == "plain" || d == "drbd") {
            output::out("You specified a volume group with --vg-name, but you did not enable any of the following lvm-based disk templates: drbd, plain");
        }
    }
    if let (Some(dts), Some(h)) = (&dts, &a.drbd_helper) {
        if !dts.iter().any(|d| d == "drbd") && !h.is_empty() {
            output::out("You specified a DRBD usermode helper with  --drbd-usermode-helper while DRBD is not enabled.");
        }
    }
    let hvlist: Option<Vec<String>> = a
        .enabled_hypervisors
        .as_deref()
        .map(|s| s.split(',').map(str::to_string).collect());
    for params in hvparams.values_mut() {
        if let Value::Object(m) = params {
            force_dict_type(m, hv_type, false)?;
        }
    }
    for params in diskparams.values_mut() {
        if let Value::Object(m) = params {
            force_dict_type(m, disk_dt_type, false)?;
        }
    }
    force_dict_type(&mut beparams, be_type, false)?;
    force_dict_type(&mut nicparams, nic_type, false)?;
    if let Some(nd) = ndparams.as_mut() {
        force_dict_type(nd, nd_type, false)?;
    }
    let mut ipolicy = Map::new();
    if let Some(d) = &a.ipolicy_disk_templates {
        let list: Vec<&str> = if d.is_empty() {
            vec![]
        } else {
            d.split(',').collect()
        };
        ipolicy.insert("disk-templates".into(), json!(list));
    }
    if let Some(v) = vcpu_ratio {
        ipolicy.insert("vcpu-ratio".into(), v);
    }
    if let Some(v) = spindle_ratio {
        ipolicy.insert("spindle-ratio".into(), v);
    }
    if let Some(b) = &a.ipolicy_bounds_specs {
        let minmax = crate::commands::bootstrap::parse_bounds_specs("--ipolicy-bounds-specs", b)?;
        ipolicy.insert("minmax".into(), minmax);
    }
    if let Some(std) = &a.ipolicy_std_specs {
        let spec =
            crate::commands::bootstrap::parse_ispec("--ipolicy-std-specs", "std", std, false)?;
        ipolicy.insert("std".into(), Value::Object(spec));
    }
    let uids = |v: &Option<String>| -> Result<Value, CliError> {
        Ok(match v {
            Some(s) => json!(parse_uid_pool(s)?
                .into_iter()
                .map(|(l, h)| json!([l, h]))
                .collect::<Vec<_>>()),
            None => Value::Null,
        })
    };
    let reserved_lvs = a.reserved_lvs.as_deref().map(|s| {
        if s.is_empty() {
            vec![]
        } else {
            crate::params::unescape_and_split(s, ',')
        }
    });
    let master_netmask = match &a.master_netmask {
        Some(m) => match m.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                output::err("The --master-netmask option expects an int parameter.");
                return Ok(exit::FAILURE);
            }
        },
        None => None,
    };
    let compression_tools: Value = match a.compression_tools.as_deref() {
        None => Value::Null,
        Some("") => json!(["gzip", "gzip-fast", "gzip-slow"]),
        Some(s) => json!(s.split(',').collect::<Vec<_>>()),
    };
    const COLLECTORS: [&str; 6] = [
        "cpu-avg-load",
        "diskstats",
        "drbd",
        "inst-status-xen",
        "lv",
        "xen-cpu-avg-load",
    ];
    let enabled_collectors: Map<String, Value> = enabled_collectors
        .into_iter()
        .map(|(k, v)| {
            let on = py_str(&v).to_lowercase().starts_with('t');
            (k, json!(on))
        })
        .collect();
    let unknown: Vec<&str> = enabled_collectors
        .keys()
        .map(String::as_str)
        .filter(|k| !COLLECTORS.contains(k))
        .collect();
    if !unknown.is_empty() {
        output::err(&format!(
            "Data collector names not recognized: {}",
            unknown.join(", ")
        ));
    }
    let mut intervals = Map::new();
    for (k, v) in &collector_interval {
        match py_str(v).trim().parse::<f64>() {
            Ok(secs) if secs * 1e6 >= 1.0 => {
                intervals.insert(k.clone(), json!((secs * 1e6) as i64));
            }
            Ok(_) => {
                output::err("Some interval times where not above zero.");
                return Ok(exit::FAILURE);
            }
            Err(_) => {
                output::err(&format!(
                    "Can't transform all values to integers: {}",
                    py_str(&Value::Object(collector_interval.clone()))
                ));
                return Ok(exit::FAILURE);
            }
        }
    }
    let op = OpCode::new("OP_CLUSTER_SET_PARAMS")
        .set("vg_name", json!(a.vg_name))
        .set("drbd_helper", json!(a.drbd_helper))
        .set("enabled_hypervisors", json!(hvlist))
        .set("hvparams", Value::Object(hvparams))
        .set("os_hvp", Value::Null)
        .set("beparams", Value::Object(beparams))
        .set("nicparams", Value::Object(nicparams))
        .set("ndparams", json!(ndparams))
        .set("diskparams", Value::Object(diskparams))
        .set("ipolicy", Value::Object(ipolicy))
        .set("candidate_pool_size", json!(a.candidate_pool_size))
        .set("max_running_jobs", json!(a.max_running_jobs))
        .set("max_tracked_jobs", json!(a.max_tracked_jobs))
        .set("maintain_node_health", json!(maintain_node_health))
        .set("modify_etc_hosts", json!(modify_etc_hosts))
        .set("uid_pool", uids(&a.uid_pool)?)
        .set("add_uids", uids(&a.add_uids)?)
        .set("remove_uids", uids(&a.remove_uids)?)
        .set("default_iallocator", json!(a.default_iallocator))
        .set("default_iallocator_params", json!(iallocator_params))
        .set("prealloc_wipe_disks", json!(prealloc_wipe_disks))
        .set("mac_prefix", json!(a.mac_prefix))
        .set("master_netdev", json!(a.master_netdev))
        .set("master_netmask", json!(master_netmask))
        .set("reserved_lvs", json!(reserved_lvs))
        .set("use_external_mip_script", json!(use_external_mip_script))
        .set("hv_state", json!({}))
        .set("disk_state", json!({}))
        .set("enabled_disk_templates", json!(dts))
        .set("force", a.force)
        .set("file_storage_dir", json!(a.file_storage_dir))
        .set("install_image", json!(a.install_image))
        .set(
            "instance_communication_network",
            json!(a.instance_communication_network),
        )
        .set("zeroing_image", json!(a.zeroing_image))
        .set("shared_file_storage_dir", json!(a.shared_file_storage_dir))
        .set("compression_tools", compression_tools)
        .set("enabled_user_shutdown", json!(enabled_user_shutdown))
        .set("enabled_data_collectors", Value::Object(enabled_collectors))
        .set("data_collector_interval", Value::Object(intervals));
    let result = submit_or_send(ctx, op, &a.job)?;
    get_result(ctx, &result)
}

/// Ganeti's `base.GetResult`: when an opcode's result is only a list of
/// jobs, follows them and fails if any failed.
pub fn get_result(ctx: &mut Ctx, result: &Value) -> Result<i32, CliError> {
    let jobs = match result.as_object() {
        Some(m) if m.len() == 1 => m.get("jobs").and_then(Value::as_array),
        _ => None,
    };
    let Some(jobs) = jobs.filter(|jobs| {
        jobs.iter().all(|j| {
            j.as_array()
                .is_some_and(|p| p.len() == 2 && p[0].is_boolean())
        })
    }) else {
        return Ok(exit::SUCCESS);
    };
    let submitted = jobs
        .iter()
        .map(|j| (String::new(), j[0].as_bool().unwrap_or(false), j[1].clone()))
        .collect();
    let bad: Vec<Value> = JobExecutor::new(true)
        .follow(ctx, submitted)?
        .into_iter()
        .filter(|r| !r.success)
        .map(|r| r.result)
        .collect();
    if bad.is_empty() {
        return Ok(exit::SUCCESS);
    }
    for job in &bad {
        output::out(&format!("Job failed, result is '{}'.", py_str(job)));
    }
    output::out(&format!("{} job(s) failed.", py_str(&Value::Array(bad))));
    Ok(exit::FAILURE)
}
