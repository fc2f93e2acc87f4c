//! `gnt-instance`: instance administration.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::commands::{change_tags, expect_list, list_tags, TagOpts};
use crate::ctx::{Ctx, JobOpts};
use crate::error::{exit, CliError};
use crate::jobs::{submit_or_send, JobExecutor};
use crate::opcodes::OpCode;
use crate::output::{self, ask_user, confirm_operation};
use crate::params::{
    be_type, force_dict_type, hv_type, parse_yes_no, split_ident_key_val, split_key_val,
};
use crate::pyfmt::{is_truthy, py_str};
use crate::query::{
    comma_overrides, generic_list, generic_list_fields, parse_fields, ListFieldsOpts, ListOpts,
    ListRequest,
};
use crate::units::parse_unit;

/// Default fields of `gnt-instance list`.
pub const LIST_DEF_FIELDS: &[&str] = &["name", "hypervisor", "os", "pnode", "status", "oper_ram"];

/// Fields shown comma-joined in `list`.
const LIST_COMMA_FIELDS: &[&str] = &[
    "tags",
    "disk.sizes",
    "nic.macs",
    "nic.ips",
    "nic.modes",
    "nic.links",
    "nic.bridges",
    "nic.networks",
    "snodes",
    "snodes.group",
    "snodes.group.uuid",
];

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Creates and adds a new instance to the cluster
    Add(AddArgs),
    /// Create a bunch of instances based on specs in a JSON file
    BatchCreate {
        /// Instance allocator for all instances
        #[arg(short = 'I', long = "iallocator")]
        iallocator: Option<String>,
        #[command(flatten)]
        job: JobOpts,
        /// JSON file: a list of OP_INSTANCE_CREATE parameter dictionaries
        file: String,
    },
    /// Shuts down the instance and removes it
    Remove(RemoveArgs),
    /// Lists the instances and their status
    List(ListArgs),
    /// Lists all available fields for instances
    ListFields(ListFieldsArgs),
    /// Show information on the specified instance(s)
    #[command(alias = "show")]
    Info(super::instance_info::InfoArgs),
    /// Starts one or more instances
    #[command(alias = "start")]
    Startup(StartupArgs),
    /// Stops one or more instances
    #[command(alias = "stop")]
    Shutdown(ShutdownArgs),
    /// Reboots one or more instances
    Reboot(RebootArgs),
    /// Rename the instance
    Rename(RenameArgs),
    /// Alters the parameters of an instance
    Modify(ModifyArgs),
    /// Reinstall a stopped instance
    Reinstall(ReinstallArgs),
    /// Opens a console on the specified instance
    Console(ConsoleArgs),
    /// Migrate instance to its secondary node (or another node)
    Migrate(MigrateArgs),
    /// Stops the instance, changes its primary node and starts it there
    Failover(FailoverArgs),
    /// Activate an instance's disks
    ActivateDisks {
        /// Ignore the recorded disk sizes
        #[arg(long)]
        ignore_size: bool,
        /// Wait for the disks to synchronise
        #[arg(long)]
        wait_for_sync: bool,
        #[command(flatten)]
        job: JobOpts,
        instance: String,
    },
    /// Deactivate an instance's disks
    DeactivateDisks {
        /// Deactivate even if the instance is running
        #[arg(short = 'f', long)]
        force: bool,
        #[command(flatten)]
        job: JobOpts,
        instance: String,
    },
    /// Grow an instance's disk
    GrowDisk {
        /// Don't wait for the disks to synchronise
        #[arg(long)]
        no_wait_for_sync: bool,
        /// The amount is the new size, not the growth
        #[arg(long)]
        absolute: bool,
        /// Ignore instance policy violations
        #[arg(long)]
        ignore_ipolicy: bool,
        #[command(flatten)]
        job: JobOpts,
        instance: String,
        /// Disk index
        disk: String,
        /// Growth (or new size with --absolute), e.g. 1G
        amount: String,
    },
    /// Move an instance to an arbitrary node (file and plain disks)
    Move {
        /// Do not ask for confirmation
        #[arg(short = 'f', long)]
        force: bool,
        /// Target node
        #[arg(short = 'n', long = "node")]
        node: Option<String>,
        /// Compression tool for the disk transfer
        #[arg(long, default_value = "none")]
        compress: String,
        /// Maximum time (in seconds) to wait for instance shutdown
        #[arg(long, default_value_t = 120)]
        shutdown_timeout: i64,
        /// Ignore the consistency of the disks
        #[arg(long)]
        ignore_consistency: bool,
        /// Ignore instance policy violations
        #[arg(long)]
        ignore_ipolicy: bool,
        #[command(flatten)]
        job: JobOpts,
        instance: String,
    },
    /// Replaces disks for the instance
    ReplaceDisks {
        /// Replace the disks on the primary node
        #[arg(short = 'p', long)]
        on_primary: bool,
        /// Replace the disks on the secondary node
        #[arg(short = 's', long)]
        on_secondary: bool,
        /// Replace faulty disks automatically
        #[arg(short = 'a', long)]
        auto: bool,
        /// New secondary node
        #[arg(short = 'n', long = "new-secondary")]
        new_secondary: Option<String>,
        /// Instance allocator to choose the new secondary
        #[arg(short = 'I', long = "iallocator")]
        iallocator: Option<String>,
        /// Comma-separated disk indices to act on
        #[arg(long)]
        disks: Option<String>,
        /// Release locks early
        #[arg(long)]
        early_release: bool,
        /// Ignore instance policy violations
        #[arg(long)]
        ignore_ipolicy: bool,
        #[command(flatten)]
        job: JobOpts,
        instance: String,
    },
    /// Recreate an instance's disks
    RecreateDisks {
        /// Disk changes: N[:size=SIZE,...]
        #[arg(long = "disk", allow_hyphen_values = true)]
        disks: Vec<String>,
        /// New nodes: pnode[:snode]
        #[arg(short = 'n', long = "node")]
        node: Option<String>,
        /// Instance allocator to choose the nodes
        #[arg(short = 'I', long = "iallocator")]
        iallocator: Option<String>,
        #[command(flatten)]
        job: JobOpts,
        instance: String,
    },
    /// Change group of instance
    ChangeGroup {
        /// Destination node group (repeatable)
        #[arg(long = "to")]
        to: Vec<String>,
        /// Instance allocator
        #[arg(short = 'I', long = "iallocator")]
        iallocator: Option<String>,
        /// Release locks early
        #[arg(long)]
        early_release: bool,
        #[command(flatten)]
        job: JobOpts,
        instance: String,
    },
    /// List the tags of the given instance
    ListTags { instance: String },
    /// Add tags to the given instance
    AddTags {
        instance: String,
        tags: Vec<String>,
        #[command(flatten)]
        opts: TagOpts,
    },
    /// Remove tags from given instance
    RemoveTags {
        instance: String,
        tags: Vec<String>,
        #[command(flatten)]
        opts: TagOpts,
    },
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub list: ListOpts,
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ListFieldsArgs {
    #[command(flatten)]
    pub opts: ListFieldsOpts,
    pub fields: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Disk template (diskless, file, sharedfile, plain, drbd, ...)
    #[arg(short = 't', long = "disk-template")]
    pub disk_template: Option<String>,
    /// Primary node and optional secondary node: pnode[:snode]
    #[arg(short = 'n', long = "node")]
    pub node: Option<String>,
    /// What OS to run
    #[arg(short = 'o', long = "os-type")]
    pub os: Option<String>,
    /// Disk parameters: N:size=SIZE[,mode=...]
    #[arg(long = "disk", allow_hyphen_values = true)]
    pub disks: Vec<String>,
    /// Size of the only disk (shortcut for --disk 0:size=SIZE)
    #[arg(short = 's', long = "os-size")]
    pub sd_size: Option<String>,
    /// Backend parameters: key=val,...
    #[arg(short = 'B', long = "backend-parameters", allow_hyphen_values = true)]
    pub beparams: Option<String>,
    /// Hypervisor and its parameters: hv[:key=val,...]
    #[arg(
        short = 'H',
        long = "hypervisor-parameters",
        allow_hyphen_values = true
    )]
    pub hypervisor: Option<String>,
    /// NIC parameters: N:key=val,...
    #[arg(long = "net", allow_hyphen_values = true)]
    pub nics: Vec<String>,
    /// Do not create any network cards for the instance
    #[arg(long)]
    pub no_nics: bool,
    /// OS parameters: key=val,...
    #[arg(short = 'O', long = "os-parameters", allow_hyphen_values = true)]
    pub osparams: Option<String>,
    /// Don't start the instance after creation
    #[arg(long)]
    pub no_start: bool,
    /// Do not install the OS (implies --no-start)
    #[arg(long)]
    pub no_install: bool,
    /// Don't check that the instance's IP is alive
    #[arg(long)]
    pub no_ip_check: bool,
    /// Don't check that the instance's name is resolvable
    #[arg(long)]
    pub no_name_check: bool,
    /// Don't check for conflicting IPs
    #[arg(long)]
    pub no_conflicts_check: bool,
    /// Don't wait for the disks to synchronise
    #[arg(long)]
    pub no_wait_for_sync: bool,
    /// Instance allocator to choose the nodes
    #[arg(short = 'I', long = "iallocator")]
    pub iallocator: Option<String>,
    /// Relative path under the cluster's file storage dir
    #[arg(long)]
    pub file_storage_dir: Option<String>,
    /// Driver to use for image files (loop, blktap, blktap2)
    #[arg(long)]
    pub file_driver: Option<String>,
    /// Node group
    #[arg(short = 'g', long = "node-group")]
    pub nodegroup: Option<String>,
    /// Comma-separated list of instance tags
    #[arg(long)]
    pub tags: Option<String>,
    /// Force an unknown OS variant
    #[arg(long)]
    pub force_variant: bool,
    /// Ignore instance policy violations
    #[arg(long)]
    pub ignore_ipolicy: bool,
    /// Opportunistically acquire node locks
    #[arg(long)]
    pub opportunistic_locking: bool,
    /// Only reserve the resources, do not create the instance yet
    #[arg(long)]
    pub forthcoming: bool,
    /// Create an instance whose resources were reserved (--forthcoming)
    #[arg(long)]
    pub commit: bool,
    /// Enable instance communication: yes or no
    #[arg(short = 'c', long = "communication")]
    pub communication: Option<String>,
    /// Startup timeout of the helper VM (seconds)
    #[arg(long)]
    pub helper_startup_timeout: Option<i64>,
    /// Shutdown timeout of the helper VM (seconds)
    #[arg(long)]
    pub helper_shutdown_timeout: Option<i64>,
    #[command(flatten)]
    pub job: JobOpts,
    /// The new instance's name
    pub name: String,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Maximum time (in seconds) to wait for instance shutdown
    #[arg(long, default_value_t = 120)]
    pub shutdown_timeout: i64,
    /// Remove the instance from the cluster even if it fails to shut down
    #[arg(long)]
    pub ignore_failures: bool,
    #[command(flatten)]
    pub job: JobOpts,
    pub instance: String,
}

/// How the arguments of multi-instance commands select instances.
#[derive(Args, Debug, Clone, Default)]
pub struct MultiOpts {
    /// Do not ask for confirmation when more than one instance is affected
    #[arg(long = "force-multiple")]
    pub force_multi: bool,
    /// Filter by nodes (primary and secondary)
    #[arg(long = "node", group = "multi")]
    pub m_node: bool,
    /// Filter by nodes (primary only)
    #[arg(long = "primary", group = "multi")]
    pub m_primary: bool,
    /// Filter by nodes (secondary only)
    #[arg(long = "secondary", group = "multi")]
    pub m_secondary: bool,
    /// Select all instances in the cluster
    #[arg(long = "all", group = "multi")]
    pub m_all: bool,
    /// Filter by instance name [default]
    #[arg(long = "instance", group = "multi")]
    pub m_instance: bool,
    /// Filter by node tag
    #[arg(long = "node-tags", group = "multi")]
    pub m_node_tags: bool,
    /// Filter by primary node tag
    #[arg(long = "pri-node-tags", group = "multi")]
    pub m_pri_node_tags: bool,
    /// Filter by secondary node tag
    #[arg(long = "sec-node-tags", group = "multi")]
    pub m_sec_node_tags: bool,
    /// Filter by instance tag
    #[arg(long = "tags", group = "multi")]
    pub m_tags: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Cluster,
    NodesBoth,
    NodesPri,
    NodesSec,
    NodesBothByTags,
    NodesPriByTags,
    NodesSecByTags,
    Instances,
    InstancesByTags,
}

impl MultiOpts {
    fn mode(&self) -> Mode {
        if self.m_all {
            Mode::Cluster
        } else if self.m_node {
            Mode::NodesBoth
        } else if self.m_primary {
            Mode::NodesPri
        } else if self.m_secondary {
            Mode::NodesSec
        } else if self.m_node_tags {
            Mode::NodesBothByTags
        } else if self.m_pri_node_tags {
            Mode::NodesPriByTags
        } else if self.m_sec_node_tags {
            Mode::NodesSecByTags
        } else if self.m_tags {
            Mode::InstancesByTags
        } else {
            Mode::Instances
        }
    }
}

#[derive(Args, Debug)]
pub struct StartupArgs {
    /// Force the operation
    #[arg(short = 'f', long)]
    pub force: bool,
    #[command(flatten)]
    pub multi: MultiOpts,
    /// Temporary hypervisor parameters: key=val,...
    #[arg(
        short = 'H',
        long = "hypervisor-parameters",
        allow_hyphen_values = true
    )]
    pub hvparams: Option<String>,
    /// Temporary backend parameters: key=val,...
    #[arg(short = 'B', long = "backend-parameters", allow_hyphen_values = true)]
    pub beparams: Option<String>,
    /// Ignore offline nodes and do as much as possible
    #[arg(long = "ignore-offline")]
    pub ignore_offline: bool,
    /// Do not remember the state change
    #[arg(long)]
    pub no_remember: bool,
    /// Pause the instance at startup
    #[arg(long = "paused")]
    pub startup_paused: bool,
    #[command(flatten)]
    pub job: JobOpts,
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ShutdownArgs {
    /// Force the operation
    #[arg(short = 'f', long)]
    pub force: bool,
    #[command(flatten)]
    pub multi: MultiOpts,
    /// Maximum time (in seconds) to wait
    #[arg(long, default_value_t = 120)]
    pub timeout: i64,
    /// Ignore offline nodes and do as much as possible
    #[arg(long = "ignore-offline")]
    pub ignore_offline: bool,
    /// Do not remember the state change
    #[arg(long)]
    pub no_remember: bool,
    #[command(flatten)]
    pub job: JobOpts,
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RebootArgs {
    #[command(flatten)]
    pub multi: MultiOpts,
    /// Type of reboot: soft/hard/full
    #[arg(short = 't', long = "type", default_value = "hard",
          value_parser = ["soft", "hard", "full"])]
    pub reboot_type: String,
    /// Ignore errors from secondaries
    #[arg(long)]
    pub ignore_secondaries: bool,
    /// Maximum time (in seconds) to wait for instance shutdown
    #[arg(long, default_value_t = 120)]
    pub shutdown_timeout: i64,
    #[command(flatten)]
    pub job: JobOpts,
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Don't check that the instance's IP is alive
    #[arg(long)]
    pub no_ip_check: bool,
    /// Don't check that the new name is resolvable
    #[arg(long)]
    pub no_name_check: bool,
    #[command(flatten)]
    pub job: JobOpts,
    pub instance: String,
    pub new_name: String,
}

#[derive(Args, Debug)]
pub struct ModifyArgs {
    /// NIC changes: add[:key=val,...], N:remove, N[:modify],key=val,...
    #[arg(long = "net", allow_hyphen_values = true)]
    pub nics: Vec<String>,
    /// Disk changes: add:size=SIZE,..., N:remove, N:modify,key=val, attach/detach
    #[arg(long = "disk", allow_hyphen_values = true)]
    pub disks: Vec<String>,
    /// Convert the disks to this template
    #[arg(short = 't', long = "disk-template")]
    pub disk_template: Option<String>,
    /// Secondary node for a conversion to a mirrored template
    #[arg(short = 'n', long = "node")]
    pub node: Option<String>,
    /// Instance allocator (for disk template conversions)
    #[arg(short = 'I', long = "iallocator")]
    pub iallocator: Option<String>,
    /// New primary node (for an offline instance)
    #[arg(long = "new-primary")]
    pub new_primary: Option<String>,
    /// Don't wait for the disks to synchronise
    #[arg(long)]
    pub no_wait_for_sync: bool,
    /// Don't check for conflicting IPs
    #[arg(long)]
    pub no_conflicts_check: bool,
    /// Enable or disable instance communication: yes or no
    #[arg(short = 'c', long = "communication")]
    pub communication: Option<String>,
    /// Backend parameters: key=val,...
    #[arg(short = 'B', long = "backend-parameters", allow_hyphen_values = true)]
    pub beparams: Option<String>,
    /// Hypervisor parameters: key=val,...
    #[arg(
        short = 'H',
        long = "hypervisor-parameters",
        allow_hyphen_values = true
    )]
    pub hvparams: Option<String>,
    /// Change the OS
    #[arg(short = 'o', long = "os-type")]
    pub os: Option<String>,
    /// OS parameters: key=val,...
    #[arg(short = 'O', long = "os-parameters", allow_hyphen_values = true)]
    pub osparams: Option<String>,
    /// Force an unknown OS variant
    #[arg(long)]
    pub force_variant: bool,
    /// Mark the (stopped) instance offline
    #[arg(long = "offline", conflicts_with = "online")]
    pub offline: bool,
    /// Mark the instance online again
    #[arg(long = "online")]
    pub online: bool,
    /// Change the memory of the running instance
    #[arg(short = 'm', long = "runtime-memory")]
    pub runtime_mem: Option<String>,
    /// Force the operation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Ignore instance policy violations
    #[arg(long)]
    pub ignore_ipolicy: bool,
    /// Hotplug supported devices (NICs and disks)
    #[arg(long)]
    pub hotplug: bool,
    /// Hotplug devices where possible, else modify offline
    #[arg(long)]
    pub hotplug_if_possible: bool,
    #[command(flatten)]
    pub job: JobOpts,
    pub instance: String,
}

#[derive(Args, Debug)]
pub struct ReinstallArgs {
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Install this OS instead of the current one
    #[arg(short = 'o', long = "os-type")]
    pub os: Option<String>,
    /// Force an unknown OS variant
    #[arg(long)]
    pub force_variant: bool,
    /// OS parameters: key=val,...
    #[arg(short = 'O', long = "os-parameters", allow_hyphen_values = true)]
    pub osparams: Option<String>,
    #[command(flatten)]
    pub multi: MultiOpts,
    #[command(flatten)]
    pub job: JobOpts,
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// Show the command instead of executing it
    #[arg(long = "show-cmd")]
    pub show_command: bool,
    pub instance: String,
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do a non-live migration
    #[arg(long = "non-live")]
    pub non_live: bool,
    /// Override the migration mode (live, non-live)
    #[arg(long, value_parser = ["live", "non-live"])]
    pub migration_mode: Option<String>,
    /// Recover from a failed migration
    #[arg(long)]
    pub cleanup: bool,
    /// Target node
    #[arg(short = 'n', long = "target-node")]
    pub target_node: Option<String>,
    /// Instance allocator to choose the target node
    #[arg(short = 'I', long = "iallocator")]
    pub iallocator: Option<String>,
    /// Fall back to failover if migration is not possible
    #[arg(long)]
    pub allow_failover: bool,
    /// Ignore instance policy violations
    #[arg(long)]
    pub ignore_ipolicy: bool,
    /// Ignore differing hypervisor versions
    #[arg(long)]
    pub ignore_hvversions: bool,
    /// Don't change the instance's memory to make it fit
    #[arg(long = "no-runtime-changes")]
    pub no_runtime_changes: bool,
    #[command(flatten)]
    pub job: JobOpts,
    pub instance: String,
}

#[derive(Args, Debug)]
pub struct FailoverArgs {
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Ignore the consistency of the disks on the secondary
    #[arg(long)]
    pub ignore_consistency: bool,
    /// Maximum time (in seconds) to wait for instance shutdown
    #[arg(long, default_value_t = 120)]
    pub shutdown_timeout: i64,
    /// Target node
    #[arg(short = 'n', long = "target-node")]
    pub target_node: Option<String>,
    /// Instance allocator to choose the target node
    #[arg(short = 'I', long = "iallocator")]
    pub iallocator: Option<String>,
    /// Ignore instance policy violations
    #[arg(long)]
    pub ignore_ipolicy: bool,
    /// Recover from a failed failover
    #[arg(long)]
    pub cleanup: bool,
    #[command(flatten)]
    pub job: JobOpts,
    pub instance: String,
}

/// Entry point of `gnt-instance`.
pub fn main() -> i32 {
    crate::commands::run::<Cmd>("gnt-instance", "Ganeti instance administration", dispatch)
}

fn dispatch(ctx: &mut Ctx, cmd: Cmd) -> Result<i32, CliError> {
    match cmd {
        Cmd::Add(a) => add(ctx, a),
        Cmd::BatchCreate {
            iallocator,
            job,
            file,
        } => batch_create(ctx, iallocator, &job, &file),
        Cmd::Remove(a) => remove(ctx, a),
        Cmd::List(a) => generic_list(
            ctx,
            ListRequest {
                resource: "instance",
                fields: parse_fields(a.list.output.as_deref(), LIST_DEF_FIELDS),
                names: &a.names,
                opts: &a.list,
                overrides: comma_overrides(LIST_COMMA_FIELDS),
                namefield: "name",
                qfilter: None,
                isnumeric: false,
            },
        ),
        Cmd::ListFields(a) => generic_list_fields(ctx, "instance", &a.fields, &a.opts),
        Cmd::Info(a) => super::instance_info::info(ctx, a),
        Cmd::Startup(a) => startup(ctx, a),
        Cmd::Shutdown(a) => shutdown(ctx, a),
        Cmd::Reboot(a) => reboot(ctx, a),
        Cmd::Rename(a) => rename(ctx, a),
        Cmd::Modify(a) => modify(ctx, a),
        Cmd::Reinstall(a) => reinstall(ctx, a),
        Cmd::Console(a) => console(ctx, a),
        Cmd::Migrate(a) => migrate(ctx, a),
        Cmd::Failover(a) => failover(ctx, a),
        Cmd::ActivateDisks {
            ignore_size,
            wait_for_sync,
            mut job,
            instance,
        } => {
            job.no_dry_run_opt = true;
            let op = OpCode::new("OP_INSTANCE_ACTIVATE_DISKS")
                .set("instance_name", instance)
                .set("ignore_size", ignore_size)
                .set("wait_for_sync", wait_for_sync);
            let result = submit_or_send(ctx, op, &job)?;
            for row in result.as_array().into_iter().flatten() {
                let parts: Vec<String> = row
                    .as_array()
                    .map(|r| r.iter().map(py_str).collect())
                    .unwrap_or_default();
                output::out(&parts.join(":"));
            }
            Ok(exit::SUCCESS)
        }
        Cmd::DeactivateDisks {
            force,
            job,
            instance,
        } => {
            let op = OpCode::new("OP_INSTANCE_DEACTIVATE_DISKS")
                .set("instance_name", instance)
                .set("force", force);
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::GrowDisk {
            no_wait_for_sync,
            absolute,
            ignore_ipolicy,
            job,
            instance,
            disk,
            amount,
        } => {
            let disk: i64 = disk.parse().map_err(|_| {
                CliError::invalid(format!(
                    "Invalid disk index: invalid literal for int() with base 10: '{disk}'"
                ))
            })?;
            let amount = parse_unit(&amount).map_err(|_| {
                CliError::invalid(format!("Can't parse the given amount '{amount}'"))
            })?;
            let op = OpCode::new("OP_INSTANCE_GROW_DISK")
                .set("instance_name", instance)
                .set("disk", disk)
                .set("amount", amount)
                .set("wait_for_sync", !no_wait_for_sync)
                .set("absolute", absolute)
                .set("ignore_ipolicy", ignore_ipolicy);
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::Move {
            force,
            node,
            compress,
            shutdown_timeout,
            ignore_consistency,
            ignore_ipolicy,
            job,
            instance,
        } => {
            if !force {
                let text = format!(
                    "Instance {instance} will be moved. This requires a shutdown of the instance. Continue?"
                );
                if !ask_user(&text) {
                    return Ok(exit::FAILURE);
                }
            }
            let op = OpCode::new("OP_INSTANCE_MOVE")
                .set("instance_name", instance)
                .set("target_node", json!(node))
                .set("compress", compress)
                .set("shutdown_timeout", shutdown_timeout)
                .set("ignore_consistency", ignore_consistency)
                .set("ignore_ipolicy", ignore_ipolicy);
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::ReplaceDisks {
            on_primary,
            on_secondary,
            auto,
            new_secondary,
            iallocator,
            disks,
            early_release,
            ignore_ipolicy,
            job,
            instance,
        } => {
            let disks: Vec<i64> = match &disks {
                Some(d) => d
                    .split(',')
                    .map(|i| {
                        i.parse().map_err(|_| {
                            CliError::invalid(format!(
                                "Invalid disk index passed: invalid literal for int() with base 10: '{i}'"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?,
                None => vec![],
            };
            let count = [
                on_primary,
                on_secondary,
                auto,
                new_secondary.is_some(),
                iallocator.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if count != 1 {
                return Err(CliError::invalid(
                    "One and only one of the -p, -s, -a, -n and -I options must be passed",
                ));
            }
            let mode = if on_primary {
                "replace_on_primary"
            } else if on_secondary {
                "replace_on_secondary"
            } else if auto {
                if !disks.is_empty() {
                    return Err(CliError::invalid(
                        "Cannot specify disks when using automatic mode",
                    ));
                }
                "replace_auto"
            } else {
                "replace_new_secondary"
            };
            let op = OpCode::new("OP_INSTANCE_REPLACE_DISKS")
                .set("instance_name", instance)
                .set("disks", json!(disks))
                .set("remote_node", json!(new_secondary))
                .set("mode", mode)
                .set("iallocator", json!(iallocator))
                .set("early_release", early_release)
                .set("ignore_ipolicy", ignore_ipolicy);
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::RecreateDisks {
            disks,
            node,
            iallocator,
            job,
            instance,
        } => {
            let mut changes = Vec::new();
            for d in &disks {
                let (ident, dict) = split_ident_key_val("--disk", d)?;
                let idx: i64 = ident.parse().map_err(|_| {
                    CliError::invalid(format!(
                        "Invalid disk index passed: invalid literal for int() with base 10: '{ident}'"
                    ))
                })?;
                let Value::Object(mut dict) = dict else {
                    return Err(CliError::invalid(format!(
                        "Invalid disk/{idx} value: expected dict, got {}",
                        py_str(&dict)
                    )));
                };
                if let Some(size) = dict.get("size").cloned() {
                    let mib = parse_unit(&py_str(&size)).map_err(|e| {
                        CliError::invalid(format!("Invalid disk size for disk {idx}: {e}"))
                    })?;
                    dict.insert("size".into(), json!(mib));
                }
                if let Some(sp) = dict.get("spindles").cloned() {
                    let n: i64 = py_str(&sp).parse().map_err(|_| {
                        CliError::invalid(format!(
                            "Invalid spindles for disk {idx}: invalid literal for int() with base 10: '{}'",
                            py_str(&sp)
                        ))
                    })?;
                    dict.insert("spindles".into(), json!(n));
                }
                changes.push(json!([idx, dict]));
            }
            let nodes: Vec<String> = match &node {
                Some(n) => {
                    if iallocator.is_some() {
                        return Err(CliError::invalid(
                            "At most one of either --nodes or --iallocator can be passed",
                        ));
                    }
                    n.splitn(2, ':').map(str::to_string).collect()
                }
                None => vec![],
            };
            let op = OpCode::new("OP_INSTANCE_RECREATE_DISKS")
                .set("instance_name", instance)
                .set("disks", json!(changes))
                .set("nodes", json!(nodes))
                .set("iallocator", json!(iallocator));
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::ChangeGroup {
            to,
            iallocator,
            early_release,
            mut job,
            instance,
        } => {
            job.no_dry_run_opt = true;
            let target = if to.is_empty() {
                Value::Null
            } else {
                json!(to)
            };
            let op = OpCode::new("OP_INSTANCE_CHANGE_GROUP")
                .set("instance_name", instance.clone())
                .set("iallocator", json!(iallocator))
                .set("target_groups", target)
                .set("early_release", early_release);
            let result = submit_or_send(ctx, op, &job)?;
            let Some(jobs) = result.get("jobs").and_then(Value::as_array) else {
                return Err(CliError::bad_reply(
                    "OP_INSTANCE_CHANGE_GROUP",
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
            let results = JobExecutor::new(true).follow(ctx, submitted)?;
            let bad = results.iter().filter(|r| !r.success).count();
            if bad == 0 {
                output::out(&format!(
                    "Instance '{instance}' changed group successfully."
                ));
                Ok(exit::SUCCESS)
            } else {
                output::out(&format!(
                    "There were {bad} errors while changing group of instance '{instance}'."
                ));
                Ok(exit::FAILURE)
            }
        }
        Cmd::ListTags { instance } => list_tags(ctx, "instance", &instance),
        Cmd::AddTags {
            instance,
            tags,
            opts,
        } => change_tags(ctx, true, "instance", &instance, tags, &opts),
        Cmd::RemoveTags {
            instance,
            tags,
            opts,
        } => change_tags(ctx, false, "instance", &instance, tags, &opts),
    }
}

fn keyval(opt: &str, v: &Option<String>) -> Result<Map<String, Value>, CliError> {
    match v {
        Some(s) => split_key_val(opt, s),
        None => Ok(Map::new()),
    }
}

/// Parses `--disk`/`--net` style `N:key=val` values into a list indexed by N.
fn indexed_dicts(opt: &str, values: &[String], what: &str) -> Result<Vec<Value>, CliError> {
    let mut parsed = Vec::new();
    for v in values {
        let (ident, dict) = split_ident_key_val(opt, v)?;
        let idx: usize = ident.parse().map_err(|_| {
            CliError::invalid(format!(
                "Invalid {what} index passed: invalid literal for int() with base 10: '{ident}'"
            ))
        })?;
        parsed.push((idx, dict));
    }
    let max = parsed.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
    let mut out = vec![json!({}); max];
    for (idx, dict) in parsed {
        if !dict.is_object() {
            return Err(CliError::invalid(format!(
                "Invalid {what}/{idx} value: expected dict, got {}",
                py_str(&dict)
            )));
        }
        out[idx] = dict;
    }
    Ok(out)
}

fn add(ctx: &mut Ctx, a: AddArgs) -> Result<i32, CliError> {
    let op = create_opcode(&a, false)?;
    submit_or_send(ctx, op, &a.job)?;
    Ok(exit::SUCCESS)
}

/// Ganeti's `GenericInstanceCreate`: the `OP_INSTANCE_CREATE` of `a`, in
/// `create` mode or (`import`) in `import` mode, whose caller sets the
/// source; an import takes its disks and NICs from the export unless
/// given, and is never started.
pub fn create_opcode(a: &AddArgs, import: bool) -> Result<OpCode, CliError> {
    if import && a.forthcoming {
        return Err(CliError::invalid(
            "forthcoming instances can only be created, not imported",
        ));
    }
    if a.forthcoming && a.commit {
        return Err(CliError::invalid(
            "Creating an instance only forthcoming and commiting it are mutally exclusive",
        ));
    }
    let communication = match &a.communication {
        Some(c) => parse_yes_no("--communication", c)?,
        None => false,
    };
    let (pnode, snode) = match a.node.as_deref() {
        Some(n) => match n.split_once(':') {
            Some((p, s)) => (Some(p.to_string()), Some(s.to_string())),
            None => (Some(n.to_string()), None),
        },
        None => (None, None),
    };
    let (hypervisor, mut hvparams) = match &a.hypervisor {
        Some(h) => {
            let (hv, params) = split_ident_key_val("-H", h)?;
            let params = match params {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            (Some(hv), params)
        }
        None => (None, Map::new()),
    };
    let nics = if !a.nics.is_empty() {
        indexed_dicts("--net", &a.nics, "NIC")?
    } else if a.no_nics || import {
        vec![]
    } else {
        vec![json!({})]
    };
    let disk_template = a.disk_template.clone();
    let disks: Vec<Value> = if disk_template.as_deref() == Some("diskless") {
        if !a.disks.is_empty() || a.sd_size.is_some() {
            return Err(CliError::invalid(
                "Diskless instance but disk information passed",
            ));
        }
        vec![]
    } else {
        if a.disks.is_empty() && a.sd_size.is_none() && !import {
            return Err(CliError::invalid("No disk information specified"));
        }
        if !a.disks.is_empty() && a.sd_size.is_some() {
            return Err(CliError::invalid(
                "Please use either the '--disk' or '-s' option",
            ));
        }
        let raw = match &a.sd_size {
            Some(s) => vec![json!({"size": s})],
            None => indexed_dicts("--disk", &a.disks, "disk")?,
        };
        let mut disks = Vec::new();
        for (idx, d) in raw.into_iter().enumerate() {
            let mut d = match d {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            if let Some(size) = d.get("size").cloned() {
                if d.contains_key("adopt") {
                    return Err(CliError::invalid(format!(
                        "Only one of 'size' and 'adopt' allowed (disk {idx})"
                    )));
                }
                let mib = parse_unit(&py_str(&size)).map_err(|e| {
                    CliError::invalid(format!("Invalid disk size for disk {idx}: {e}"))
                })?;
                d.insert("size".into(), json!(mib));
            } else if d.contains_key("adopt") {
                if import {
                    return Err(CliError::invalid(
                        "Disk adoption not allowed for instance import",
                    ));
                }
                if d.contains_key("spindles") {
                    return Err(CliError::invalid(
                        "spindles is not a valid option when adopting a disk",
                    ));
                }
                d.insert("size".into(), json!(0));
            } else {
                return Err(CliError::invalid(format!(
                    "Missing size or adoption source for disk {idx}"
                )));
            }
            if let Some(sp) = d.get("spindles").cloned() {
                let n: i64 = py_str(&sp).parse().map_err(|_| {
                    CliError::invalid(format!("Invalid spindles value for disk {idx}"))
                })?;
                d.insert("spindles".into(), json!(n));
            }
            disks.push(Value::Object(d));
        }
        disks
    };
    let tags: Vec<String> = match &a.tags {
        Some(t) => t.split(',').map(str::to_string).collect(),
        None => vec![],
    };
    let mut beparams = keyval("-B", &a.beparams)?;
    force_dict_type(&mut beparams, be_type, false)?;
    force_dict_type(&mut hvparams, hv_type, false)?;
    if let Some(Value::String(u)) = hvparams.get_mut("usb_devices") {
        *u = u.replace(' ', ",");
    }
    let osparams = keyval("-O", &a.osparams)?;
    let op = OpCode::new("OP_INSTANCE_CREATE")
        .set("instance_name", a.name.clone())
        .set("disks", json!(disks))
        .set("disk_template", json!(disk_template))
        .set("group_name", json!(a.nodegroup))
        .set("nics", json!(nics))
        .set("conflicts_check", !a.no_conflicts_check)
        .set("pnode", json!(pnode))
        .set("snode", json!(snode))
        .set("ip_check", !a.no_ip_check)
        .set("name_check", !a.no_name_check)
        .set("wait_for_sync", !a.no_wait_for_sync)
        .set("file_storage_dir", json!(a.file_storage_dir))
        .set("file_driver", json!(a.file_driver))
        .set("iallocator", json!(a.iallocator))
        .set("hypervisor", json!(hypervisor))
        .set("hvparams", Value::Object(hvparams))
        .set("beparams", Value::Object(beparams))
        .set("osparams", Value::Object(osparams))
        .set("osparams_private", json!({}))
        .set("osparams_secret", json!({}))
        .set("mode", if import { "import" } else { "create" })
        .set("opportunistic_locking", a.opportunistic_locking)
        .set("start", !a.no_start && !import)
        .set("os_type", if import { Value::Null } else { json!(a.os) })
        .set("force_variant", a.force_variant && !import)
        .set("src_node", Value::Null)
        .set("src_path", Value::Null)
        .set("compress", "none")
        .set("tags", json!(tags))
        .set(
            "no_install",
            if import {
                Value::Null
            } else {
                json!(a.no_install)
            },
        )
        .set("identify_defaults", false)
        .set("ignore_ipolicy", a.ignore_ipolicy)
        .set("instance_communication", communication)
        .set("forthcoming", a.forthcoming)
        .set("commit", a.commit)
        .set("helper_startup_timeout", json!(a.helper_startup_timeout))
        .set("helper_shutdown_timeout", json!(a.helper_shutdown_timeout));
    Ok(op)
}

/// Ganeti's `BatchCreate`: one `OP_INSTANCE_MULTI_ALLOC` with an
/// `OP_INSTANCE_CREATE` per entry of the file, then the resulting jobs.
fn batch_create(
    ctx: &mut Ctx,
    iallocator: Option<String>,
    job: &JobOpts,
    file: &str,
) -> Result<i32, CliError> {
    let data = std::fs::read_to_string(file)
        .map_err(|e| crate::output::python_io_error(&e, file))
        .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()));
    let data = match data {
        Ok(d) => d,
        Err(e) => {
            output::err(&format!("Can't parse the instance definition file: {e}"));
            return Ok(exit::FAILURE);
        }
    };
    let Some(entries) = data.as_array().filter(|a| a.iter().all(Value::is_object)) else {
        output::err("The instance definition file is not List of Dictionary");
        return Ok(exit::FAILURE);
    };
    let template = OpCode::new("OP_INSTANCE_CREATE");
    let mut instances = Vec::new();
    for (idx, entry) in entries.iter().enumerate() {
        let Some(entry) = entry.as_object() else {
            continue;
        };
        let mut unknown: Vec<&str> = entry
            .keys()
            .map(String::as_str)
            .filter(|k| *k == "OP_ID" || !template.0.contains_key(*k))
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(CliError::invalid(format!(
                "Unknown fields in definition {idx}: {}",
                unknown.join(", ")
            )));
        }
        let mut op = template.clone();
        for (k, v) in entry {
            op = op.set(k, v.clone());
        }
        instances.push(op.into_value());
    }
    let mut job = job.clone();
    job.no_dry_run_opt = false;
    let op = OpCode::new("OP_INSTANCE_MULTI_ALLOC")
        .set("iallocator", json!(iallocator))
        .set("instances", Value::Array(instances));
    let result = submit_or_send(ctx, op, &job)?;
    let Some(jobs) = result.get("jobs").and_then(Value::as_array) else {
        return Err(CliError::bad_reply(
            "OP_INSTANCE_MULTI_ALLOC",
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
    let results = JobExecutor::new(true).follow(ctx, submitted)?;
    let bad = results.iter().filter(|r| !r.success).count();
    if bad == 0 {
        output::out("All instances created successfully.");
        Ok(exit::SUCCESS)
    } else {
        output::out(&format!("There were {bad} errors during the creation."));
        Ok(exit::FAILURE)
    }
}

/// Checks that instances exist (`QueryInstances(names, ["name"], false)`).
fn ensure_instances_exist(ctx: &mut Ctx, names: &[String]) -> Result<(), CliError> {
    let res = ctx.call("QueryInstances", json!([names, ["name"], false]))?;
    let rows = expect_list("QueryInstances", &res)?;
    for (name, row) in names.iter().zip(rows) {
        if row.get(0).is_none_or(Value::is_null) {
            return Err(CliError::prereq(
                format!("Instance '{name}' does not exist"),
                luxi::ErrorCode::NoEnt,
            ));
        }
    }
    Ok(())
}

fn remove(ctx: &mut Ctx, a: RemoveArgs) -> Result<i32, CliError> {
    if !a.force {
        ensure_instances_exist(ctx, std::slice::from_ref(&a.instance))?;
        let text = format!(
            "This will remove the volumes of the instance {} (including mirrors), thus removing all the data of the instance. Continue?",
            a.instance
        );
        if !ask_user(&text) {
            return Ok(exit::FAILURE);
        }
    }
    let op = OpCode::new("OP_INSTANCE_REMOVE")
        .set("instance_name", a.instance)
        .set("ignore_failures", a.ignore_failures)
        .set("shutdown_timeout", a.shutdown_timeout);
    submit_or_send(ctx, op, &a.job)?;
    Ok(exit::SUCCESS)
}

fn first_column(method: &str, res: &Value) -> Result<Vec<Value>, CliError> {
    Ok(expect_list(method, res)?
        .iter()
        .map(|r| r.get(0).cloned().unwrap_or(Value::Null))
        .collect())
}

fn flatten_names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(py_str).collect())
        .unwrap_or_default()
}

/// Ganeti's `_ExpandMultiNames`: the instances a multi-instance command acts on.
fn expand_multi_names(
    ctx: &mut Ctx,
    mode: Mode,
    names: &[String],
) -> Result<Vec<String>, CliError> {
    match mode {
        Mode::Cluster => {
            if !names.is_empty() {
                return Err(CliError::invalid("Cluster filter mode takes no arguments"));
            }
            let res = ctx.call("QueryInstances", json!([[], ["name"], false]))?;
            Ok(first_column("QueryInstances", &res)?
                .iter()
                .map(py_str)
                .collect())
        }
        Mode::Instances => {
            if names.is_empty() {
                return Err(CliError::invalid("No instance names passed"));
            }
            let res = ctx.call("QueryInstances", json!([names, ["name"], false]))?;
            Ok(first_column("QueryInstances", &res)?
                .iter()
                .map(py_str)
                .collect())
        }
        Mode::InstancesByTags => {
            if names.is_empty() {
                return Err(CliError::invalid("No instance tags passed"));
            }
            let res = ctx.call("QueryInstances", json!([[], ["name", "tags"], false]))?;
            let rows = expect_list("QueryInstances", &res)?;
            Ok(rows
                .iter()
                .filter(|r| flatten_names(&r[1]).iter().any(|t| names.contains(t)))
                .map(|r| py_str(&r[0]))
                .collect())
        }
        _ => {
            let by_tags = matches!(
                mode,
                Mode::NodesBothByTags | Mode::NodesPriByTags | Mode::NodesSecByTags
            );
            let rows = if by_tags {
                if names.is_empty() {
                    return Err(CliError::invalid("No node tags passed"));
                }
                let res = ctx.call(
                    "QueryNodes",
                    json!([[], ["name", "pinst_list", "sinst_list", "tags"], false]),
                )?;
                expect_list("QueryNodes", &res)?
                    .iter()
                    .filter(|r| flatten_names(&r[3]).iter().any(|t| names.contains(t)))
                    .cloned()
                    .collect::<Vec<_>>()
            } else {
                if names.is_empty() {
                    return Err(CliError::invalid("No node names passed"));
                }
                let res = ctx.call(
                    "QueryNodes",
                    json!([names, ["name", "pinst_list", "sinst_list"], false]),
                )?;
                expect_list("QueryNodes", &res)?.clone()
            };
            let pri: Vec<String> = rows.iter().flat_map(|r| flatten_names(&r[1])).collect();
            let sec: Vec<String> = rows.iter().flat_map(|r| flatten_names(&r[2])).collect();
            Ok(match mode {
                Mode::NodesBoth | Mode::NodesBothByTags => pri.into_iter().chain(sec).collect(),
                Mode::NodesPri | Mode::NodesPriByTags => pri,
                _ => sec,
            })
        }
    }
}

/// Ganeti's `GenericManyOps`: one job per selected instance.
fn many_ops(
    ctx: &mut Ctx,
    operation: &str,
    multi: &MultiOpts,
    names: &[String],
    job: &JobOpts,
    make: impl Fn(&str) -> OpCode,
) -> Result<i32, CliError> {
    let mode = multi.mode();
    let inames = expand_multi_names(ctx, mode, names)?;
    if inames.is_empty() {
        if mode == Mode::Cluster {
            output::out("Cluster is empty, no instances to shutdown");
            return Ok(exit::SUCCESS);
        }
        return Err(CliError::invalid(
            "Selection filter does not match any instances",
        ));
    }
    let multi_on = mode != Mode::Instances || inames.len() > 1;
    if multi_on && !multi.force_multi && !confirm_operation(&inames, "instances", operation, "") {
        return Ok(exit::FAILURE);
    }
    let mut jex = JobExecutor::new(multi_on);
    for name in &inames {
        jex.queue_job(ctx, name, make(name), job);
    }
    let results = jex.wait_or_show(ctx, !job.submit_only)?;
    Ok(if results.iter().all(|r| r.success) {
        exit::SUCCESS
    } else {
        exit::FAILURE
    })
}

fn startup(ctx: &mut Ctx, a: StartupArgs) -> Result<i32, CliError> {
    let hv = keyval("-H", &a.hvparams)?;
    let be = keyval("-B", &a.beparams)?;
    many_ops(ctx, "startup", &a.multi, &a.names, &a.job, |name| {
        let mut op = OpCode::new("OP_INSTANCE_STARTUP")
            .set("instance_name", name)
            .set("force", a.force)
            .set("ignore_offline_nodes", a.ignore_offline)
            .set("no_remember", a.no_remember)
            .set("startup_paused", a.startup_paused);
        if !hv.is_empty() {
            op = op.set("hvparams", Value::Object(hv.clone()));
        }
        if !be.is_empty() {
            op = op.set("beparams", Value::Object(be.clone()));
        }
        op
    })
}

fn shutdown(ctx: &mut Ctx, a: ShutdownArgs) -> Result<i32, CliError> {
    many_ops(ctx, "shutdown", &a.multi, &a.names, &a.job, |name| {
        OpCode::new("OP_INSTANCE_SHUTDOWN")
            .set("instance_name", name)
            .set("force", a.force)
            .set("timeout", a.timeout)
            .set("ignore_offline_nodes", a.ignore_offline)
            .set("no_remember", a.no_remember)
    })
}

fn reboot(ctx: &mut Ctx, a: RebootArgs) -> Result<i32, CliError> {
    many_ops(ctx, "reboot", &a.multi, &a.names, &a.job, |name| {
        OpCode::new("OP_INSTANCE_REBOOT")
            .set("instance_name", name)
            .set("reboot_type", a.reboot_type.clone())
            .set("ignore_secondaries", a.ignore_secondaries)
            .set("shutdown_timeout", a.shutdown_timeout)
    })
}

fn rename(ctx: &mut Ctx, a: RenameArgs) -> Result<i32, CliError> {
    if !a.force && a.no_name_check {
        let text = format!(
            "As you disabled the check of the DNS entry, please verify that '{}' is a FQDN. Continue?",
            a.new_name
        );
        if !ask_user(&text) {
            return Ok(exit::FAILURE);
        }
    }
    let op = OpCode::new("OP_INSTANCE_RENAME")
        .set("instance_name", a.instance.clone())
        .set("new_name", a.new_name)
        .set("ip_check", !a.no_ip_check)
        .set("name_check", !a.no_name_check);
    let result = submit_or_send(ctx, op, &a.job)?;
    if is_truthy(&result) {
        output::out(&format!(
            "Instance '{}' renamed to '{}'",
            a.instance,
            py_str(&result)
        ));
    }
    Ok(exit::SUCCESS)
}

/// Replaces "default" (any case) by Ganeti's `VALUE_DEFAULT` ("default").
fn normalise_default(m: &mut Map<String, Value>) {
    for v in m.values_mut() {
        if let Value::String(s) = v {
            if s.eq_ignore_ascii_case("default") {
                *s = "default".into();
            }
        }
    }
}

fn force_types_allowing_default(
    m: &mut Map<String, Value>,
    types: fn(&str) -> Option<crate::params::VType>,
) -> Result<(), CliError> {
    normalise_default(m);
    let defaults: Vec<String> = m
        .iter()
        .filter(|(_, v)| v.as_str() == Some("default"))
        .map(|(k, _)| k.clone())
        .collect();
    let mut rest: Map<String, Value> = m
        .iter()
        .filter(|(k, _)| !defaults.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    force_dict_type(&mut rest, types, false)?;
    for (k, v) in rest {
        m.insert(k, v);
    }
    Ok(())
}

/// Ganeti's `_ConvertNicDiskModifications`: `--net`/`--disk` values into
/// `[action, identifier, params]` entries.
fn convert_modifications(opt: &str, values: &[String]) -> Result<Vec<Value>, CliError> {
    const ACTIONS: [&str; 5] = ["add", "attach", "remove", "detach", "modify"];
    let mut out = Vec::new();
    for v in values {
        let (ident, params) = split_ident_key_val(opt, v)?;
        let mut params = match params {
            Value::Object(m) => m,
            other => {
                return Err(CliError::invalid(format!(
                    "Invalid {opt} value: expected dict, got {}",
                    py_str(&other)
                )))
            }
        };
        let (action, identifier) = if ACTIONS[..4].contains(&ident.as_str()) {
            (ident.clone(), json!(-1))
        } else {
            let mut action = "modify".to_string();
            let mut count = 0;
            for a in ACTIONS {
                if params.remove(a).is_some() {
                    count += 1;
                    action = a.to_string();
                }
            }
            if count > 1 {
                return Err(CliError::invalid(format!(
                    "Cannot do more than one of the following operations at the same time: {}",
                    ACTIONS.join(", ")
                )));
            }
            (action, json!(ident))
        };
        if (action == "remove" || action == "detach") && !params.is_empty() {
            return Err(CliError::invalid(
                "Not accepting parameters on removal/detach",
            ));
        }
        out.push(json!([action, identifier, params]));
    }
    Ok(out)
}

/// Ganeti's `_ParseDiskSizes`: sizes and spindles of disk changes as numbers.
fn parse_disk_sizes(mods: &mut [Value]) -> Result<(), CliError> {
    for m in mods.iter_mut() {
        let Some([action, _, Value::Object(params)]) = m.as_array_mut().map(Vec::as_mut_slice)
        else {
            continue;
        };
        if let Some(sp) = params.get("spindles").cloned() {
            let n: i64 = py_str(&sp).parse().map_err(|_| {
                CliError::invalid(format!("Invalid spindles value '{}'", py_str(&sp)))
            })?;
            params.insert("spindles".into(), json!(n));
        }
        if let Some(size) = params.get("size").cloned() {
            let mib = parse_unit(&py_str(&size)).map_err(|e| {
                CliError::Ganeti(luxi::GanetiError::new(
                    "UnitParseError",
                    vec![json!(e.to_string())],
                ))
            })?;
            params.insert("size".into(), json!(mib));
        } else if action == "add" {
            return Err(CliError::invalid("Missing required parameter 'size'"));
        }
    }
    Ok(())
}

fn modify(ctx: &mut Ctx, a: ModifyArgs) -> Result<i32, CliError> {
    let mut be = keyval("-B", &a.beparams)?;
    let mut hv = keyval("-H", &a.hvparams)?;
    let osparams = keyval("-O", &a.osparams)?;
    let communication = a
        .communication
        .as_deref()
        .map(|c| parse_yes_no("--communication", c))
        .transpose()?;
    if a.nics.is_empty()
        && a.disks.is_empty()
        && a.disk_template.is_none()
        && be.is_empty()
        && hv.is_empty()
        && a.os.is_none()
        && osparams.is_empty()
        && !a.offline
        && !a.online
        && a.runtime_mem.is_none()
        && a.new_primary.is_none()
        && communication.is_none()
    {
        output::err("Please give at least one of the parameters.");
        return Ok(exit::FAILURE);
    }
    force_types_allowing_default(&mut be, be_type)?;
    force_types_allowing_default(&mut hv, hv_type)?;
    if let Some(Value::String(u)) = hv.get_mut("usb_devices") {
        *u = u.replace(' ', ",");
    }
    let offline = if a.offline {
        Some(true)
    } else if a.online {
        Some(false)
    } else {
        None
    };
    let runtime_mem = match &a.runtime_mem {
        Some(m) => Some(
            parse_unit(m)
                .map_err(|e| CliError::invalid(format!("Invalid runtime memory '{m}': {e}")))?,
        ),
        None => None,
    };
    let nics = convert_modifications("--net", &a.nics)?;
    let mut disks = convert_modifications("--disk", &a.disks)?;
    parse_disk_sizes(&mut disks)?;
    let op = OpCode::new("OP_INSTANCE_SET_PARAMS")
        .set("instance_name", a.instance.clone())
        .set("nics", json!(nics))
        .set("disks", json!(disks))
        .set("disk_template", json!(a.disk_template))
        .set("remote_node", json!(a.node))
        .set("iallocator", json!(a.iallocator))
        .set("pnode", json!(a.new_primary))
        .set("wait_for_sync", !a.no_wait_for_sync)
        .set("conflicts_check", !a.no_conflicts_check)
        .set("instance_communication", json!(communication))
        .set("hvparams", Value::Object(hv.clone()))
        .set("beparams", Value::Object(be))
        .set("runtime_mem", json!(runtime_mem))
        .set("os_name", json!(a.os))
        .set("osparams", Value::Object(osparams))
        .set("osparams_private", json!({}))
        .set("force_variant", a.force_variant)
        .set("force", a.force)
        .set("offline", json!(offline))
        .set("ignore_ipolicy", a.ignore_ipolicy)
        .set("hotplug", a.hotplug)
        .set("hotplug_if_possible", a.hotplug_if_possible);
    let result = submit_or_send(ctx, op, &a.job)?;
    if is_truthy(&result) {
        output::out(&format!("Modified instance {}", a.instance));
        if let Some(changes) = result.as_array() {
            for c in changes {
                if let Some([param, data]) = c.as_array().map(Vec::as_slice) {
                    output::out(&format!(" - {:<5} -> {}", py_str(param), py_str(data)));
                }
            }
        }
        output::out("Please don't forget that most parameters take effect only at the next (re)start of the instance initiated by ganeti; restarting from within the instance will not be enough.");
        if !hv.is_empty() {
            output::out("Note that changing hypervisor parameters without performing a restart might lead to a crash while performing a live migration. This will be addressed in future Ganeti versions.");
        }
    }
    Ok(exit::SUCCESS)
}

fn reinstall(ctx: &mut Ctx, a: ReinstallArgs) -> Result<i32, CliError> {
    let mode = a.multi.mode();
    let inames = expand_multi_names(ctx, mode, &a.names)?;
    if inames.is_empty() {
        return Err(CliError::invalid(
            "Selection filter does not match any instances",
        ));
    }
    let os_msg = match &a.os {
        Some(os) => format!("change the OS to '{os}'"),
        None => "keep the same OS".to_string(),
    };
    let multi_on = mode != Mode::Instances || inames.len() > 1;
    if multi_on {
        let warn = format!(
            "Note: this will remove *all* data for the below instances! It will {os_msg}.\n"
        );
        if !a.multi.force_multi && !confirm_operation(&inames, "instances", "reinstall", &warn) {
            return Ok(exit::FAILURE);
        }
    } else if !(a.force || a.multi.force_multi) {
        let text = format!(
            "This will reinstall the instance '{}' (and {os_msg}) which removes all data. Continue?",
            inames[0]
        );
        if !ask_user(&text) {
            return Ok(exit::FAILURE);
        }
    }
    let osparams = match &a.osparams {
        Some(p) => Value::Object(split_key_val("-O", p)?),
        None => json!({}),
    };
    let mut jex = JobExecutor::new(multi_on);
    for name in &inames {
        let op = OpCode::new("OP_INSTANCE_REINSTALL")
            .set("instance_name", name.as_str())
            .set("os_type", json!(a.os))
            .set("force_variant", a.force_variant)
            .set("osparams", osparams.clone())
            .set("osparams_private", json!({}))
            .set("osparams_secret", json!({}));
        jex.queue_job(ctx, name, op, &a.job);
    }
    let results = jex.wait_or_show(ctx, !a.job.submit_only)?;
    Ok(if results.iter().all(|r| r.success) {
        exit::SUCCESS
    } else {
        exit::FAILURE
    })
}

/// Ganeti's `ShellQuote`: quotes unless only `[-.,=:/_+@A-Za-z0-9]`.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.,=:/_+@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn console(ctx: &mut Ctx, a: ConsoleArgs) -> Result<i32, CliError> {
    let cv = ctx.call("QueryConfigValues", json!([["cluster_name"]]))?;
    let cluster_name = expect_list("QueryConfigValues", &cv)?
        .first()
        .map(py_str)
        .unwrap_or_default();
    let res = ctx.call(
        "QueryInstances",
        json!([[a.instance], ["console", "oper_state"], false]),
    )?;
    let rows = expect_list("QueryInstances", &res)?;
    let Some(row) = rows.first() else {
        return Err(CliError::prereq(
            format!("Instance '{}' does not exist", a.instance),
            luxi::ErrorCode::NoEnt,
        ));
    };
    let console = row.get(0).cloned().unwrap_or(Value::Null);
    let oper_state = row.get(1).map(is_truthy).unwrap_or(false);
    if !is_truthy(&console) {
        return Err(CliError::exec(if oper_state {
            format!(
                "Console information for instance {} is unavailable",
                a.instance
            )
        } else {
            format!("Instance {} is not running, can't get console", a.instance)
        }));
    }
    let get = |k: &str| console.get(k).map(py_str).unwrap_or_default();
    match console.get("kind").and_then(Value::as_str) {
        Some("msg") => output::out(&get("message")),
        Some("vnc") => output::out(&format!(
            "Instance {} has VNC listening on {}:{} (display {}), URL <vnc://{}:{}/>",
            get("instance"),
            get("host"),
            get("port"),
            get("display"),
            get("host"),
            get("port")
        )),
        Some("spice") => output::out(&format!(
            "Instance {} has SPICE listening on {}:{}",
            get("instance"),
            get("host"),
            get("port")
        )),
        Some("ssh") => {
            let command = match console.get("command") {
                Some(Value::Array(parts)) => parts
                    .iter()
                    .map(|p| shell_quote(&py_str(p)))
                    .collect::<Vec<_>>()
                    .join(" "),
                Some(v) => py_str(v),
                None => String::new(),
            };
            let paths = objects::paths::Paths::from_env();
            let known_hosts = paths.data_dir().join("known_hosts");
            let host = get("host");
            // A node on this machine (a virtual cluster's 127.0.0.x): run
            // the console command here, without ssh.
            let local =
                objects::resolver::resolve(&paths, &host).is_some_and(|ip| ip.is_loopback());
            if local {
                let argv: Vec<String> = match console.get("command") {
                    Some(Value::Array(parts)) => parts.iter().map(py_str).collect(),
                    Some(v) => vec!["sh".into(), "-c".into(), py_str(v)],
                    None => Vec::new(),
                };
                let Some((prog, args)) = argv.split_first() else {
                    return Err(CliError::exec(format!(
                        "No console command for instance {}",
                        a.instance
                    )));
                };
                if a.show_command {
                    output::out(
                        &argv
                            .iter()
                            .map(|c| shell_quote(c))
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                    return Ok(exit::SUCCESS);
                }
                let status = std::process::Command::new(prog)
                    .args(args)
                    .status()
                    .map_err(|e| CliError::Io(format!("{prog}: {e}")))?;
                if !status.success() {
                    return Err(CliError::exec(format!(
                        "Connection to console of instance {} failed, please check cluster configuration",
                        a.instance
                    )));
                }
                return Ok(exit::SUCCESS);
            }
            let mut cmd = vec![
                "ssh".to_string(),
                "-oEscapeChar=none".into(),
                "-oHashKnownHosts=no".into(),
                format!("-oGlobalKnownHostsFile={}", known_hosts.display()),
                "-oUserKnownHostsFile=/dev/null".into(),
                "-oCheckHostIp=no".into(),
                "-oConnectTimeout=10".into(),
                format!("-oHostKeyAlias={cluster_name}"),
            ];
            if let Some(p) = console
                .get("port")
                .and_then(Value::as_i64)
                .filter(|p| *p != 0)
            {
                cmd.push(format!("-oPort={p}"));
            }
            cmd.push("-oBatchMode=yes".into());
            cmd.push("-oStrictHostKeyChecking=yes".into());
            let family =
                std::fs::read_to_string(paths.ssconf("primary_ip_family")).unwrap_or_default();
            cmd.push(if family.trim() == "10" { "-6" } else { "-4" }.into());
            cmd.extend(["-t".into(), "-t".into()]);
            cmd.push(format!("{}@{host}", get("user")));
            // In a virtual cluster the remote command runs in the node's root.
            if let Some(root) =
                std::env::var_os(objects::paths::ROOTDIR_ENV).filter(|r| !r.is_empty())
            {
                let base = std::path::Path::new(&root)
                    .parent()
                    .map(|p| p.to_path_buf())
                    .unwrap_or_default();
                let node_root = format!("{}/{host}", base.display());
                cmd.push(format!(
                    "export {}={};",
                    objects::paths::ROOTDIR_ENV,
                    shell_quote(&node_root)
                ));
                cmd.push(format!(
                    "export {}={};",
                    objects::paths::HOSTNAME_ENV,
                    shell_quote(&host)
                ));
            }
            cmd.push(command);
            if a.show_command {
                output::out(
                    &cmd.iter()
                        .map(|c| shell_quote(c))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            } else {
                let status = std::process::Command::new(&cmd[0])
                    .args(&cmd[1..])
                    .status()
                    .map_err(|e| CliError::Io(format!("ssh: {e}")))?;
                if !status.success() {
                    return Err(CliError::exec(format!(
                        "Connection to console of instance {} failed, please check cluster configuration",
                        a.instance
                    )));
                }
            }
        }
        other => {
            return Err(CliError::Ganeti(luxi::GanetiError::new(
                "GenericError",
                vec![json!(format!(
                    "Unknown console type '{}'",
                    other.unwrap_or("")
                ))],
            )))
        }
    }
    Ok(exit::SUCCESS)
}

fn migrate(ctx: &mut Ctx, a: MigrateArgs) -> Result<i32, CliError> {
    if a.iallocator.is_some() && a.target_node.is_some() {
        return Err(CliError::invalid(
            "Specify either an iallocator (-I), or a target node (-n) but not both",
        ));
    }
    if !a.force {
        ensure_instances_exist(ctx, std::slice::from_ref(&a.instance))?;
        let mut text = if a.cleanup {
            format!("Instance {} will be recovered from a failed migration. Note that the migration procedure (including cleanup)", a.instance)
        } else {
            format!(
                "Instance {} will be migrated. Note that migration",
                a.instance
            )
        };
        text.push_str(" might impact the instance if anything goes wrong (e.g. due to bugs in the hypervisor). Continue?");
        if !ask_user(&text) {
            return Ok(exit::FAILURE);
        }
    }
    if a.non_live && a.migration_mode.is_some() {
        return Err(CliError::invalid(
            "Only one of the --non-live and --migration-mode options can be passed",
        ));
    }
    let mode = if a.non_live {
        Some("non-live".to_string())
    } else {
        a.migration_mode.clone()
    };
    let op = OpCode::new("OP_INSTANCE_MIGRATE")
        .set("instance_name", a.instance)
        .set("mode", json!(mode))
        .set("cleanup", a.cleanup)
        .set("iallocator", json!(a.iallocator))
        .set("target_node", json!(a.target_node))
        .set("allow_failover", a.allow_failover)
        .set("allow_runtime_changes", !a.no_runtime_changes)
        .set("ignore_ipolicy", a.ignore_ipolicy)
        .set("ignore_hvversions", a.ignore_hvversions);
    submit_or_send(ctx, op, &a.job)?;
    Ok(exit::SUCCESS)
}

fn failover(ctx: &mut Ctx, a: FailoverArgs) -> Result<i32, CliError> {
    if a.iallocator.is_some() && a.target_node.is_some() {
        return Err(CliError::invalid(
            "Specify either an iallocator (-I), or a target node (-n) but not both",
        ));
    }
    if !a.force {
        ensure_instances_exist(ctx, std::slice::from_ref(&a.instance))?;
        let text = format!(
            "Failover will happen to image {}. This requires a shutdown of the instance. Continue?",
            a.instance
        );
        if !ask_user(&text) {
            return Ok(exit::FAILURE);
        }
    }
    if a.ignore_consistency {
        let text = format!(
            "To failover instance {}, the source node must be marked offline first. Is this already the case?",
            a.instance
        );
        if !ask_user(&text) {
            return Ok(exit::FAILURE);
        }
    }
    let op = OpCode::new("OP_INSTANCE_FAILOVER")
        .set("instance_name", a.instance)
        .set("ignore_consistency", a.ignore_consistency)
        .set("shutdown_timeout", a.shutdown_timeout)
        .set("iallocator", json!(a.iallocator))
        .set("target_node", json!(a.target_node))
        .set("ignore_ipolicy", a.ignore_ipolicy)
        .set("cleanup", a.cleanup);
    submit_or_send(ctx, op, &a.job)?;
    Ok(exit::SUCCESS)
}
