//! `gnt-node`: node administration.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::commands::{change_tags, expect_list, list_tags, TagOpts};
use crate::ctx::{Ctx, JobOpts};
use crate::error::{exit, CliError};
use crate::info::{format_generic_info, format_params_dict_info, Info};
use crate::jobs::{submit_opcode, submit_or_send, JobExecutor};
use crate::opcodes::OpCode;
use crate::output::{self, ask_user};
use crate::params::{parse_yes_no, split_key_val};
use crate::pyfmt::py_str;
use crate::query::{
    comma_overrides, generic_list, generic_list_fields, parse_fields, ListFieldsOpts, ListOpts,
    ListRequest,
};
use crate::table::generate_table;

/// Default fields of `gnt-node list`.
pub const LIST_DEF_FIELDS: &[&str] = &[
    "name",
    "dtotal",
    "dfree",
    "mtotal",
    "mnode",
    "mfree",
    "pinst_cnt",
    "sinst_cnt",
];

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Add a node to the cluster
    Add(AddArgs),
    /// Removes a node from the cluster
    Remove {
        #[command(flatten)]
        job: JobOpts,
        node: String,
    },
    /// Lists the nodes in the cluster
    List {
        #[command(flatten)]
        list: ListOpts,
        names: Vec<String>,
    },
    /// Lists all available fields for nodes
    ListFields {
        #[command(flatten)]
        opts: ListFieldsOpts,
        fields: Vec<String>,
    },
    /// Show information about the node(s)
    #[command(alias = "show")]
    Info { nodes: Vec<String> },
    /// Alters the parameters of a node
    Modify(ModifyArgs),
    /// Migrate all primary instances away from a node
    Migrate(MigrateArgs),
    /// Fail over all primary instances of a node to their secondaries
    Failover {
        /// Do not ask for confirmation
        #[arg(short = 'f', long)]
        force: bool,
        /// Ignore the consistency of the disks on the secondary
        #[arg(long)]
        ignore_consistency: bool,
        /// Instance allocator to choose the target nodes
        #[arg(short = 'I', long = "iallocator")]
        iallocator: Option<String>,
        #[arg(long, value_parser = ["low", "normal", "high"])]
        priority: Option<String>,
        node: String,
    },
    /// Relocate the primary and/or secondary instances from a node
    Evacuate(EvacuateArgs),
    /// List logical volumes on node(s)
    Volumes {
        #[command(flatten)]
        opts: TableOpts,
        nodes: Vec<String>,
    },
    /// List physical volumes (or other storage units) on node(s)
    ListStorage {
        #[command(flatten)]
        opts: TableOpts,
        /// Storage type: file, lvm-pv, lvm-vg, sharedfile, gluster
        #[arg(short = 't', long = "storage-type",
              value_parser = ["file", "lvm-pv", "lvm-vg", "sharedfile", "gluster"])]
        storage_type: Option<String>,
        nodes: Vec<String>,
    },
    /// Modify storage volume on a node
    ModifyStorage {
        /// Set the allocatable flag: yes or no
        #[arg(long)]
        allocatable: Option<String>,
        #[command(flatten)]
        job: JobOpts,
        node: String,
        #[arg(value_parser = ["file", "lvm-pv", "lvm-vg", "sharedfile", "gluster"])]
        storage_type: String,
        name: String,
    },
    /// Repairs a storage volume on a node
    RepairStorage {
        /// Ignore the consistency of the disks
        #[arg(long)]
        ignore_consistency: bool,
        #[command(flatten)]
        job: JobOpts,
        node: String,
        #[arg(value_parser = ["file", "lvm-pv", "lvm-vg", "sharedfile", "gluster"])]
        storage_type: String,
        name: String,
    },
    /// Tries to forcefully powercycle a node
    /// Executes a restricted command on node(s)
    RestrictedCommand {
        #[command(flatten)]
        job: JobOpts,
        /// Take the node locks exclusively (the default shares them)
        #[arg(long = "sync")]
        sync: bool,
        /// Prefix each output line with the node's name
        #[arg(short = 'M')]
        show_machine_names: bool,
        /// Run on every online node of this group
        #[arg(short = 'g', long = "node-group")]
        nodegroup: Option<String>,
        /// The command (a file of the nodes' restricted-commands directory)
        command: String,
        /// The nodes to run it on
        nodes: Vec<String>,
    },
    Powercycle {
        /// Force the operation (even on the master)
        #[arg(short = 'f', long)]
        force: bool,
        /// Do not ask for confirmation
        #[arg(long = "yes")]
        confirm: bool,
        #[command(flatten)]
        job: JobOpts,
        node: String,
    },
    /// Change power state of node by calling out-of-band helper
    Power(PowerArgs),
    /// List health of node(s) using out-of-band
    Health {
        #[command(flatten)]
        opts: OobTableOpts,
        nodes: Vec<String>,
    },
    /// List the tags of the given node
    ListTags { node: String },
    /// Add tags to the given node
    AddTags {
        node: String,
        tags: Vec<String>,
        #[command(flatten)]
        opts: TagOpts,
    },
    /// Remove tags from the given node
    RemoveTags {
        node: String,
        tags: Vec<String>,
        #[command(flatten)]
        opts: TagOpts,
    },
}

/// The table options of `gnt-node power` and `health`.
#[derive(Args, Debug)]
pub struct OobTableOpts {
    /// Don't display column headers
    #[arg(long)]
    pub no_headers: bool,
    /// Separator between output fields
    #[arg(long, allow_hyphen_values = true)]
    pub separator: Option<String>,
    /// Maximum time to wait for out-of-band helper
    #[arg(long = "oob-timeout", default_value_t = 60)]
    pub oob_timeout: u64,
    #[arg(long, value_parser = ["low", "normal", "high"])]
    pub priority: Option<String>,
}

#[derive(Args, Debug)]
pub struct PowerArgs {
    /// on, off, cycle or status
    #[arg(value_parser = ["on", "off", "cycle", "status"])]
    pub command: String,
    pub nodes: Vec<String>,
    #[command(flatten)]
    pub opts: OobTableOpts,
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Ignore the offline status of the nodes (power off nodes that are
    /// not marked offline, without marking them so first)
    #[arg(long)]
    pub ignore_status: bool,
    /// Lock all nodes and auto-promote as needed to MC status
    #[arg(long)]
    pub auto_promote: bool,
    /// Time in seconds to wait between power-ons
    #[arg(long = "power-delay", default_value_t = 2.0)]
    pub power_delay: f64,
    /// Accepted as Ganeti accepts it; the command always waits for its job
    #[arg(long = "submit")]
    pub submit_only: bool,
    /// Additionally print the job id as first line on stdout
    #[arg(long)]
    pub print_jobid: bool,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The node's secondary IP address
    #[arg(short = 's', long = "secondary-ip")]
    pub secondary_ip: Option<String>,
    /// Re-add a node that was removed or replaced
    #[arg(long)]
    pub readd: bool,
    /// Node group
    #[arg(short = 'g', long = "node-group")]
    pub nodegroup: Option<String>,
    /// Whether the node can become master: yes or no
    #[arg(long = "master-capable")]
    pub master_capable: Option<String>,
    /// Whether the node can host instances: yes or no
    #[arg(long = "vm-capable")]
    pub vm_capable: Option<String>,
    /// Node parameters: key=val,...
    #[arg(long = "node-parameters", allow_hyphen_values = true)]
    pub ndparams: Option<String>,
    /// Skip the node setup: the node already runs its node daemon with the
    /// cluster's certificates
    #[arg(long)]
    pub no_node_setup: bool,
    /// Accepted for compatibility
    #[arg(long)]
    pub no_ssh_key_check: bool,
    /// Accepted for compatibility
    #[arg(long)]
    pub force_join: bool,
    /// Increase the verbosity
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[arg(long, value_parser = ["low", "normal", "high"])]
    pub priority: Option<String>,
    /// The new node's name
    pub node: String,
}

#[derive(Args, Debug)]
pub struct ModifyArgs {
    /// Force the operation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Set the master candidate flag: yes or no
    #[arg(short = 'C', long = "master-candidate")]
    pub master_candidate: Option<String>,
    /// Set the drained flag: yes or no
    #[arg(short = 'D', long = "drained")]
    pub drained: Option<String>,
    /// Set the offline flag: yes or no
    #[arg(short = 'O', long = "offline")]
    pub offline: Option<String>,
    /// Set the master_capable flag: yes or no
    #[arg(long = "master-capable")]
    pub master_capable: Option<String>,
    /// Set the vm_capable flag: yes or no
    #[arg(long = "vm-capable")]
    pub vm_capable: Option<String>,
    /// The node's new secondary IP address
    #[arg(short = 's', long = "secondary-ip")]
    pub secondary_ip: Option<String>,
    /// Promote other nodes to master candidate if needed
    #[arg(long)]
    pub auto_promote: bool,
    /// Node parameters: key=val,...
    #[arg(long = "node-parameters", allow_hyphen_values = true)]
    pub ndparams: Option<String>,
    /// Set the powered flag: yes or no
    #[arg(long = "node-powered")]
    pub node_powered: Option<String>,
    #[command(flatten)]
    pub job: JobOpts,
    pub node: String,
}

/// Options of the plain tables of `volumes` and `list-storage`.
#[derive(Args, Debug, Clone)]
pub struct TableOpts {
    /// Don't display column headers
    #[arg(long)]
    pub no_headers: bool,
    /// Separator between output fields
    #[arg(long, allow_hyphen_values = true)]
    pub separator: Option<String>,
    /// Units for sizes: h, m, g or t
    #[arg(long, value_enum)]
    pub units: Option<crate::units::Unit>,
    /// Comma-separated list of output fields; `+f1,f2` adds to the defaults
    #[arg(short = 'o', long = "output", value_name = "FIELDS")]
    pub output: Option<String>,
    #[arg(long, value_parser = ["low", "normal", "high"])]
    pub priority: Option<String>,
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
    /// Target node
    #[arg(short = 'n', long = "target-node")]
    pub target_node: Option<String>,
    /// Instance allocator to choose the target nodes
    #[arg(short = 'I', long = "iallocator")]
    pub iallocator: Option<String>,
    /// Ignore instance policy violations
    #[arg(long)]
    pub ignore_ipolicy: bool,
    /// Don't change instances' memory to make them fit
    #[arg(long = "no-runtime-changes")]
    pub no_runtime_changes: bool,
    #[command(flatten)]
    pub job: JobOpts,
    pub node: String,
}

#[derive(Args, Debug)]
pub struct EvacuateArgs {
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Instance allocator to choose the new nodes
    #[arg(short = 'I', long = "iallocator")]
    pub iallocator: Option<String>,
    /// Ignore soft errors of the allocator
    #[arg(long)]
    pub ignore_soft_errors: bool,
    /// New secondary node (evacuates secondary instances only)
    #[arg(short = 'n', long = "new-secondary")]
    pub dst_node: Option<String>,
    /// Release locks early
    #[arg(long)]
    pub early_release: bool,
    /// Evacuate primary instances only
    #[arg(short = 'p', long)]
    pub primary_only: bool,
    /// Evacuate secondary instances only
    #[arg(short = 's', long)]
    pub secondary_only: bool,
    #[command(flatten)]
    pub job: JobOpts,
    pub node: String,
}

/// Entry point of `gnt-node`.
pub fn main() -> i32 {
    crate::commands::run::<Cmd>("gnt-node", "Ganeti node administration", dispatch)
}

fn dispatch(ctx: &mut Ctx, cmd: Cmd) -> Result<i32, CliError> {
    match cmd {
        Cmd::Add(a) => add(ctx, a),
        Cmd::Remove { job, node } => {
            let op = OpCode::new("OP_NODE_REMOVE").set("node_name", node);
            submit_opcode(ctx, op, Some(&job))?;
            Ok(exit::SUCCESS)
        }
        Cmd::List { list, names } => generic_list(
            ctx,
            ListRequest {
                resource: "node",
                fields: parse_fields(list.output.as_deref(), LIST_DEF_FIELDS),
                names: &names,
                opts: &list,
                overrides: comma_overrides(&["pinst_list", "sinst_list", "tags"]),
                namefield: "name",
                qfilter: None,
                isnumeric: false,
            },
        ),
        Cmd::ListFields { opts, fields } => generic_list_fields(ctx, "node", &fields, &opts),
        Cmd::Info { nodes } => info(ctx, &nodes),
        Cmd::Modify(a) => modify(ctx, a),
        Cmd::Migrate(a) => migrate(ctx, a),
        Cmd::Failover {
            force,
            ignore_consistency,
            iallocator,
            priority,
            node,
        } => failover(ctx, force, ignore_consistency, iallocator, priority, &node),
        Cmd::Evacuate(a) => evacuate(ctx, a),
        Cmd::Volumes { opts, nodes } => volumes(ctx, &opts, &nodes),
        Cmd::ListStorage {
            opts,
            storage_type,
            nodes,
        } => list_storage(ctx, &opts, storage_type, &nodes),
        Cmd::ModifyStorage {
            allocatable,
            job,
            node,
            storage_type,
            name,
        } => {
            let Some(alloc) = yes_no("--allocatable", &allocatable)? else {
                output::err("No changes to perform, exiting.");
                return Ok(exit::SUCCESS);
            };
            let op = OpCode::new("OP_NODE_MODIFY_STORAGE")
                .set("node_name", node)
                .set("storage_type", storage_type)
                .set("name", name)
                .set("changes", json!({"allocatable": alloc}));
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::RepairStorage {
            ignore_consistency,
            job,
            node,
            storage_type,
            name,
        } => {
            let op = OpCode::new("OP_REPAIR_NODE_STORAGE")
                .set("node_name", node)
                .set("storage_type", storage_type)
                .set("name", name)
                .set("ignore_consistency", ignore_consistency);
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::Powercycle {
            force,
            confirm,
            job,
            node,
        } => {
            if !confirm
                && !ask_user(&format!(
                    "Are you sure you want to hard powercycle node {node}?"
                ))
            {
                return Ok(2);
            }
            let op = OpCode::new("OP_NODE_POWERCYCLE")
                .set("node_name", node)
                .set("force", force);
            let result = submit_or_send(ctx, op, &job)?;
            if !result.is_null() && result != json!("") && result != json!(false) {
                output::err(&py_str(&result));
            }
            Ok(exit::SUCCESS)
        }
        Cmd::Power(a) => power(ctx, a),
        Cmd::RestrictedCommand {
            job,
            sync,
            show_machine_names,
            nodegroup,
            command,
            nodes,
        } => restricted_command(
            ctx,
            &job,
            sync,
            show_machine_names,
            nodegroup,
            &command,
            nodes,
        ),
        Cmd::Health { opts, nodes } => health(ctx, &opts, nodes),
        Cmd::ListTags { node } => list_tags(ctx, "node", &node),
        Cmd::AddTags { node, tags, opts } => change_tags(ctx, true, "node", &node, tags, &opts),
        Cmd::RemoveTags { node, tags, opts } => change_tags(ctx, false, "node", &node, tags, &opts),
    }
}

fn yes_no(opt: &str, v: &Option<String>) -> Result<Option<bool>, CliError> {
    v.as_deref().map(|s| parse_yes_no(opt, s)).transpose()
}

fn add(ctx: &mut Ctx, a: AddArgs) -> Result<i32, CliError> {
    let node = a.node.clone();
    let res = ctx.call(
        "QueryNodes",
        json!([[node], ["name", "sip", "master", "ndp/ssh_port"], false]),
    );
    let existing = match res {
        Ok(v) => expect_list("QueryNodes", &v)?.first().cloned(),
        Err(CliError::Ganeti(e)) if matches!(e.class.as_str(), "OpPrereqError" | "OpExecError") => {
            None
        }
        Err(e) => return Err(e),
    };
    let sip = if a.readd {
        let Some(row) = existing.as_ref() else {
            output::err(&format!(
                "Node {node} not in the cluster - please retry without '--readd'"
            ));
            return Ok(exit::FAILURE);
        };
        if row.get(2).and_then(Value::as_bool) == Some(true) {
            output::err(&format!("Node {node} is the master, cannot readd"));
            return Ok(exit::FAILURE);
        }
        row.get(1).cloned().unwrap_or(Value::Null)
    } else {
        if let Some(row) = existing.as_ref() {
            output::err(&format!(
                "Node {node} already in the cluster (as {}) - please retry with '--readd'",
                py_str(row.get(0).unwrap_or(&Value::Null))
            ));
            return Ok(exit::FAILURE);
        }
        json!(a.secondary_ip)
    };
    let cv = ctx.call("QueryConfigValues", json!([["cluster_name"]]))?;
    let cluster_name = expect_list("QueryConfigValues", &cv)?
        .first()
        .map(py_str)
        .unwrap_or_default();
    let _ = &cluster_name;
    if !a.no_node_setup {
        crate::commands::bootstrap::node_setup(&node)?;
    }
    let ndparams = match &a.ndparams {
        Some(p) => Value::Object(split_key_val("--node-parameters", p)?),
        None => Value::Null,
    };
    let job = JobOpts {
        priority: a.priority.clone(),
        no_dry_run_opt: true,
        ..JobOpts::default()
    };
    let op = OpCode::new("OP_NODE_ADD")
        .set("node_name", node)
        .set("secondary_ip", sip)
        .set("readd", a.readd)
        .set("group", json!(a.nodegroup))
        .set("vm_capable", json!(yes_no("--vm-capable", &a.vm_capable)?))
        .set("ndparams", ndparams)
        .set(
            "master_capable",
            json!(yes_no("--master-capable", &a.master_capable)?),
        )
        .set("disk_state", json!({}))
        .set("hv_state", json!({}))
        .set("node_setup", false);
    submit_opcode(ctx, op, Some(&job))?;
    Ok(exit::SUCCESS)
}

fn modify(ctx: &mut Ctx, a: ModifyArgs) -> Result<i32, CliError> {
    let mc = yes_no("--master-candidate", &a.master_candidate)?;
    let drained = yes_no("--drained", &a.drained)?;
    let offline = yes_no("--offline", &a.offline)?;
    let mcap = yes_no("--master-capable", &a.master_capable)?;
    let vmcap = yes_no("--vm-capable", &a.vm_capable)?;
    let powered = yes_no("--node-powered", &a.node_powered)?;
    let ndparams = match &a.ndparams {
        Some(p) => Some(Value::Object(split_key_val("--node-parameters", p)?)),
        None => None,
    };
    if mc.is_none()
        && drained.is_none()
        && offline.is_none()
        && mcap.is_none()
        && vmcap.is_none()
        && a.secondary_ip.is_none()
        && ndparams.is_none()
    {
        output::err("Please give at least one of the parameters.");
        return Ok(exit::FAILURE);
    }
    if offline == Some(false) && !a.force {
        let text = "You are setting this node online manually. If the configuration has changed, this can cause issues such as split brain. To safely bring a node back online, please use --readd instead. If you are confident that the configuration hasn't changed, continue?";
        if !ask_user(text) {
            return Ok(exit::FAILURE);
        }
    }
    let op = OpCode::new("OP_NODE_SET_PARAMS")
        .set("node_name", a.node.clone())
        .set("master_candidate", json!(mc))
        .set("offline", json!(offline))
        .set("drained", json!(drained))
        .set("master_capable", json!(mcap))
        .set("vm_capable", json!(vmcap))
        .set("secondary_ip", json!(a.secondary_ip))
        .set("force", a.force)
        .set("ndparams", json!(ndparams))
        .set("auto_promote", a.auto_promote)
        .set("powered", json!(powered))
        .set("hv_state", json!({}))
        .set("disk_state", json!({}));
    let result = submit_or_send(ctx, op, &a.job)?;
    if let Some(changes) = result.as_array().filter(|c| !c.is_empty()) {
        output::out(&format!("Modified node {}", a.node));
        for c in changes {
            if let Some([param, data]) = c.as_array().map(Vec::as_slice) {
                output::out(&format!(" - {:<5} -> {}", py_str(param), py_str(data)));
            }
        }
    }
    Ok(exit::SUCCESS)
}

fn table_job_opts(opts: &TableOpts) -> JobOpts {
    JobOpts {
        priority: opts.priority.clone(),
        no_dry_run_opt: true,
        ..JobOpts::default()
    }
}

fn volumes(ctx: &mut Ctx, opts: &TableOpts, nodes: &[String]) -> Result<i32, CliError> {
    let fields = parse_fields(
        opts.output.as_deref(),
        &["node", "phys", "vg", "name", "size", "instance"],
    );
    let op = OpCode::new("OP_NODE_QUERYVOLS")
        .set("nodes", json!(nodes))
        .set("output_fields", json!(fields));
    let result = submit_opcode(ctx, op, Some(&table_job_opts(opts)))?;
    let rows = rows_of("OP_NODE_QUERYVOLS", &result)?;
    let headers = [
        ("node", "Node"),
        ("phys", "PhysDev"),
        ("vg", "VG"),
        ("name", "Name"),
        ("size", "Size"),
        ("instance", "Instance"),
    ];
    for line in generate_table(
        (!opts.no_headers).then_some(&headers[..]),
        &fields,
        opts.separator.as_deref(),
        &rows,
        &["size"],
        &["size"],
        opts.units,
    ) {
        output::out(&line);
    }
    Ok(exit::SUCCESS)
}

fn rows_of(op_id: &str, result: &Value) -> Result<Vec<Vec<Value>>, CliError> {
    let Some(rows) = result.as_array() else {
        return Err(CliError::bad_reply(op_id, result.to_string()));
    };
    rows.iter()
        .map(|r| {
            r.as_array()
                .cloned()
                .ok_or_else(|| CliError::bad_reply(op_id, r.to_string()))
        })
        .collect()
}

fn list_storage(
    ctx: &mut Ctx,
    opts: &TableOpts,
    storage_type: Option<String>,
    nodes: &[String],
) -> Result<i32, CliError> {
    let fields = parse_fields(
        opts.output.as_deref(),
        &[
            "node",
            "type",
            "name",
            "size",
            "used",
            "free",
            "allocatable",
        ],
    );
    let op = OpCode::new("OP_NODE_QUERY_STORAGE")
        .set("nodes", json!(nodes))
        .set("storage_type", json!(storage_type))
        .set("output_fields", json!(fields));
    let result = submit_opcode(ctx, op, Some(&table_job_opts(opts)))?;
    let mut rows = rows_of("OP_NODE_QUERY_STORAGE", &result)?;
    for row in rows.iter_mut() {
        for (i, f) in fields.iter().enumerate() {
            if let Some(v) = row.get_mut(i) {
                let text = if f == "allocatable" {
                    if is_true(v) { "Y" } else { "N" }.to_string()
                } else {
                    py_str(v)
                };
                *v = Value::String(text);
            }
        }
    }
    let headers = [
        ("node", "Node"),
        ("type", "Type"),
        ("name", "Name"),
        ("size", "Size"),
        ("used", "Used"),
        ("free", "Free"),
        ("allocatable", "Allocatable"),
    ];
    let units = ["size", "used", "free"];
    for line in generate_table(
        (!opts.no_headers).then_some(&headers[..]),
        &fields,
        opts.separator.as_deref(),
        &rows,
        &units,
        &units,
        opts.units,
    ) {
        output::out(&line);
    }
    Ok(exit::SUCCESS)
}

fn is_true(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The primary instances of a node (`QueryNodes([node], [name, pinst_list])`).
fn primary_instances(ctx: &mut Ctx, node: &str) -> Result<(String, Vec<String>), CliError> {
    let res = ctx.call("QueryNodes", json!([[node], ["name", "pinst_list"], false]))?;
    let rows = expect_list("QueryNodes", &res)?;
    let Some([name, pinst]) = rows.first().and_then(|r| r.as_array()).map(Vec::as_slice) else {
        return Err(CliError::bad_reply("QueryNodes", res.to_string()));
    };
    let pinst: Vec<String> = pinst
        .as_array()
        .map(|a| a.iter().map(py_str).collect())
        .unwrap_or_default();
    Ok((py_str(name), nice_sort(pinst)))
}

/// Follows the jobs listed in an opcode result's `jobs` key.
fn follow_result_jobs(ctx: &mut Ctx, op_id: &str, result: &Value) -> Result<usize, CliError> {
    let Some(jobs) = result.get("jobs").and_then(Value::as_array) else {
        return Err(CliError::bad_reply(
            op_id,
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
    Ok(results.iter().filter(|r| !r.success).count())
}

fn migrate(ctx: &mut Ctx, a: MigrateArgs) -> Result<i32, CliError> {
    let (node, pinst) = primary_instances(ctx, &a.node)?;
    if pinst.is_empty() {
        output::out(&format!("No primary instances on node {node}, exiting."));
        return Ok(exit::SUCCESS);
    }
    if !(a.force || ask_user(&format!("Migrate instance(s) {}?", pinst.join(", ")))) {
        return Ok(exit::CONFIRMATION);
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
    let op = OpCode::new("OP_NODE_MIGRATE")
        .set("node_name", a.node.clone())
        .set("mode", json!(mode))
        .set("iallocator", json!(a.iallocator))
        .set("target_node", json!(a.target_node))
        .set("allow_runtime_changes", !a.no_runtime_changes)
        .set("ignore_ipolicy", a.ignore_ipolicy);
    let mut job = a.job.clone();
    job.no_dry_run_opt = true;
    let result = submit_or_send(ctx, op, &job)?;
    let bad = follow_result_jobs(ctx, "OP_NODE_MIGRATE", &result)?;
    if bad == 0 {
        output::out("All instances migrated successfully.");
        Ok(exit::SUCCESS)
    } else {
        output::out(&format!(
            "There were {bad} errors during the node migration."
        ));
        Ok(exit::FAILURE)
    }
}

fn failover(
    ctx: &mut Ctx,
    force: bool,
    ignore_consistency: bool,
    iallocator: Option<String>,
    priority: Option<String>,
    node: &str,
) -> Result<i32, CliError> {
    let (node, pinst) = primary_instances(ctx, node)?;
    if pinst.is_empty() {
        output::err(&format!("No primary instances on node {node}, exiting."));
        return Ok(exit::SUCCESS);
    }
    let quoted: Vec<String> = pinst.iter().map(|n| format!("'{n}'")).collect();
    if !force && !ask_user(&format!("Fail over instance(s) {}?", quoted.join(","))) {
        return Ok(2);
    }
    let job = JobOpts {
        priority,
        no_dry_run_opt: true,
        ..JobOpts::default()
    };
    let mut jex = JobExecutor::new(true);
    for name in &pinst {
        let op = OpCode::new("OP_INSTANCE_FAILOVER")
            .set("instance_name", name.as_str())
            .set("ignore_consistency", ignore_consistency)
            .set("iallocator", json!(iallocator));
        jex.queue_job(ctx, name, op, &job);
    }
    let results = jex.wait_or_show(ctx, true)?;
    let bad = results.iter().filter(|r| !r.success).count();
    if bad == 0 {
        output::out(&format!(
            "All {} instance(s) failed over successfully.",
            results.len()
        ));
    } else {
        output::out(&format!(
            "There were errors during the failover:\n{bad} error(s) out of {} instance(s).",
            results.len()
        ));
    }
    Ok(exit::SUCCESS)
}

fn evacuate(ctx: &mut Ctx, mut a: EvacuateArgs) -> Result<i32, CliError> {
    if a.dst_node.is_some() {
        output::err("New secondary node given (disabling iallocator), hence evacuating secondary instances only.");
        a.secondary_only = true;
        a.primary_only = false;
    }
    if a.secondary_only && a.primary_only {
        return Err(CliError::invalid(
            "Only one of the --primary-only and --secondary-only options can be passed",
        ));
    }
    let mode = if a.primary_only {
        "primary-only"
    } else if a.secondary_only {
        "secondary-only"
    } else {
        "all"
    };
    let mut fields = Vec::new();
    if !a.secondary_only {
        fields.push("pinst_list");
    }
    if !a.primary_only {
        fields.push("sinst_list");
    }
    let res = ctx.call("QueryNodes", json!([[a.node], fields, false]))?;
    let mut instances: Vec<String> = Vec::new();
    for row in expect_list("QueryNodes", &res)? {
        for list in row.as_array().into_iter().flatten() {
            for i in list.as_array().into_iter().flatten() {
                let n = py_str(i);
                if !instances.contains(&n) {
                    instances.push(n);
                }
            }
        }
    }
    if instances.is_empty() {
        output::err(&format!(
            "No instances to evacuate on node(s) {}, exiting.",
            a.node
        ));
        return Ok(exit::SUCCESS);
    }
    let text = format!(
        "Relocate instance(s) {} from node(s) {}?",
        nice_sort(instances).join(", "),
        a.node
    );
    if !(a.force || ask_user(&text)) {
        return Ok(exit::CONFIRMATION);
    }
    let op = OpCode::new("OP_NODE_EVACUATE")
        .set("node_name", a.node.clone())
        .set("mode", mode)
        .set("remote_node", json!(a.dst_node))
        .set("iallocator", json!(a.iallocator))
        .set("early_release", a.early_release)
        .set("ignore_soft_errors", a.ignore_soft_errors);
    let mut job = a.job.clone();
    job.no_dry_run_opt = true;
    let result = submit_or_send(ctx, op, &job)?;
    let bad = follow_result_jobs(ctx, "OP_NODE_EVACUATE", &result)?;
    if bad == 0 {
        output::out("All instances evacuated successfully.");
        Ok(exit::SUCCESS)
    } else {
        output::out(&format!("There were {bad} errors during the evacuation."));
        Ok(exit::FAILURE)
    }
}

/// Sorts names with embedded numbers numerically (Ganeti's `NiceSort`).
pub fn nice_sort(mut names: Vec<String>) -> Vec<String> {
    fn key(s: &str) -> Vec<(bool, u64, String)> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut digits = false;
        for c in s.chars() {
            if c.is_ascii_digit() != digits && !cur.is_empty() {
                out.push(part(&cur, digits));
                cur.clear();
            }
            digits = c.is_ascii_digit();
            cur.push(c);
        }
        if !cur.is_empty() {
            out.push(part(&cur, digits));
        }
        out
    }
    fn part(s: &str, digits: bool) -> (bool, u64, String) {
        if digits {
            (false, s.parse().unwrap_or(u64::MAX), String::new())
        } else {
            (true, 0, s.to_string())
        }
    }
    names.sort_by_key(|n| key(n));
    names
}

fn info(ctx: &mut Ctx, nodes: &[String]) -> Result<i32, CliError> {
    let fields = [
        "name",
        "pip",
        "sip",
        "pinst_list",
        "sinst_list",
        "master_candidate",
        "drained",
        "offline",
        "master_capable",
        "vm_capable",
        "powered",
        "ndparams",
        "custom_ndparams",
    ];
    let res = ctx.call("QueryNodes", json!([nodes, fields, false]))?;
    let rows = expect_list("QueryNodes", &res)?;
    let mut out = Vec::new();
    for row in rows {
        let Some(r) = row.as_array().filter(|r| r.len() == fields.len()) else {
            return Err(CliError::bad_reply("QueryNodes", row.to_string()));
        };
        let mut info = vec![
            ("Node name", Info::py(&r[0])),
            ("primary ip", Info::py(&r[1])),
            ("secondary ip", Info::py(&r[2])),
            ("master candidate", Info::py(&r[5])),
            ("drained", Info::py(&r[6])),
            ("offline", Info::py(&r[7])),
        ];
        if !r[10].is_null() {
            info.push(("powered", Info::py(&r[10])));
        }
        info.push(("master_capable", Info::py(&r[8])));
        info.push(("vm_capable", Info::py(&r[9])));
        if r[9].as_bool() == Some(true) {
            let names = |v: &Value| {
                let list: Vec<String> = v
                    .as_array()
                    .map(|a| a.iter().map(py_str).collect())
                    .unwrap_or_default();
                Info::List(nice_sort(list).into_iter().map(Info::Str).collect())
            };
            info.push(("primary for instances", names(&r[3])));
            info.push(("secondary for instances", names(&r[4])));
        }
        info.push(("node parameters", format_params_dict_info(&r[12], &r[11])));
        out.push(Info::ordered(info));
    }
    output::out(&format_generic_info(&Info::List(out)));
    Ok(exit::SUCCESS)
}

/// The Node/Status table of `gnt-node power` and `health`.
fn print_oob_table(opts: &OobTableOpts, rows: &[Vec<Value>]) {
    let headers = [("node", "Node"), ("status", "Status")];
    let fields = ["node".to_string(), "status".to_string()];
    for line in generate_table(
        (!opts.no_headers).then_some(&headers[..]),
        &fields,
        opts.separator.as_deref(),
        rows,
        &[],
        &[],
        None,
    ) {
        output::out(&line);
    }
}

/// One node's entry of an `OP_OOB_COMMAND` result,
/// `[[status, name], [status, data]]`: the name, the data's status and the
/// data.
fn oob_entry(entry: &Value) -> Result<(String, i64, Value), CliError> {
    let bad = || CliError::bad_reply("OP_OOB_COMMAND", entry.to_string());
    let [node, data] = entry.as_array().map(Vec::as_slice).ok_or_else(bad)? else {
        return Err(bad());
    };
    let name = node.get(1).map(py_str).ok_or_else(bad)?;
    let status = data.get(0).and_then(Value::as_i64).ok_or_else(bad)?;
    Ok((name, status, data.get(1).cloned().unwrap_or(Value::Null)))
}

/// `gnt-node power on|off|cycle|status [nodes]` (Ganeti's `PowerNode`).
fn power(ctx: &mut Ctx, a: PowerArgs) -> Result<i32, CliError> {
    let command = format!("power-{}", a.command);
    if command == "power-off" || command == "power-cycle" {
        if a.nodes.is_empty() {
            output::err("Please provide at least one node for this command");
            return Ok(exit::FAILURE);
        }
        if !a.force
            && !output::confirm_operation(&a.nodes, "nodes", &format!("power {}", a.command), "")
        {
            return Ok(exit::FAILURE);
        }
    }
    let jo = JobOpts {
        priority: a.opts.priority.clone(),
        no_dry_run_opt: true,
        ..JobOpts::default()
    };
    let mut ops = Vec::new();
    // Without --ignore-status, nodes are marked offline before they are
    // powered off (and stay so if powering off fails, as in Ganeti).
    if !a.ignore_status && command == "power-off" {
        for node in &a.nodes {
            let op = OpCode::new("OP_NODE_SET_PARAMS")
                .set("node_name", node.as_str())
                .set("offline", true)
                .set("auto_promote", a.auto_promote);
            ops.push(ctx.finish_opcode(op, Some(&jo)));
        }
    }
    let op = OpCode::new("OP_OOB_COMMAND")
        .set("node_names", json!(a.nodes))
        .set("command", command.as_str())
        .set("ignore_status", a.ignore_status)
        .set("timeout", a.opts.oob_timeout)
        .set("power_delay", a.power_delay);
    ops.push(ctx.finish_opcode(op, Some(&jo)));
    let id = crate::jobs::send_job(ctx, ops)?;
    if a.print_jobid {
        output::out(&crate::jobs::job_id_str(&id));
    }
    let results = crate::jobs::poll_job(ctx, &id, &mut crate::jobs::StdioReporter::default())?;
    let result = results
        .as_array()
        .and_then(|r| r.last())
        .cloned()
        .unwrap_or(Value::Null);
    let entries = expect_list("OP_OOB_COMMAND", &result)?;
    let mut errs = 0;
    let mut rows = Vec::new();
    for entry in entries {
        let (name, status, data) = oob_entry(entry)?;
        let text = if status != crate::query::RS_NORMAL {
            errs += 1;
            crate::query::format_result_error(status, true)
        } else if command == "power-status" {
            if data.get("powered").and_then(Value::as_bool) == Some(true) {
                "powered".to_string()
            } else {
                "unpowered".to_string()
            }
        } else {
            "invoked".to_string()
        };
        rows.push(vec![json!(name), json!(text)]);
    }
    print_oob_table(&a.opts, &rows);
    Ok(if errs > 0 {
        exit::FAILURE
    } else {
        exit::SUCCESS
    })
}

/// `gnt-node health [nodes]` (Ganeti's `Health`).
fn health(ctx: &mut Ctx, opts: &OobTableOpts, nodes: Vec<String>) -> Result<i32, CliError> {
    let jo = JobOpts {
        priority: opts.priority.clone(),
        no_dry_run_opt: true,
        ..JobOpts::default()
    };
    let op = OpCode::new("OP_OOB_COMMAND")
        .set("node_names", json!(nodes))
        .set("command", "health")
        .set("timeout", opts.oob_timeout);
    let result = submit_opcode(ctx, op, Some(&jo))?;
    let entries = expect_list("OP_OOB_COMMAND", &result)?;
    let mut errs = 0;
    let mut rows = Vec::new();
    for entry in entries {
        let (name, status, data) = oob_entry(entry)?;
        if status != crate::query::RS_NORMAL {
            errs += 1;
            rows.push(vec![
                json!(name),
                json!(crate::query::format_result_error(status, true)),
            ]);
            continue;
        }
        let items = data.as_array().cloned().unwrap_or_default();
        for (i, item) in items.iter().enumerate() {
            let pair = |k: usize| item.get(k).map(py_str).unwrap_or_default();
            let who = if i == 0 { name.clone() } else { String::new() };
            rows.push(vec![json!(who), json!(format!("{}={}", pair(0), pair(1)))]);
        }
    }
    print_oob_table(opts, &rows);
    Ok(if errs > 0 {
        exit::FAILURE
    } else {
        exit::SUCCESS
    })
}

/// `gnt-node restricted-command COMMAND NODE...`: the command's output per
/// node, as Ganeti prints it; exit code 1 when it failed on any node.
fn restricted_command(
    ctx: &mut Ctx,
    job: &JobOpts,
    sync: bool,
    show_machine_names: bool,
    nodegroup: Option<String>,
    command: &str,
    names: Vec<String>,
) -> Result<i32, CliError> {
    if names.is_empty() && nodegroup.is_none() {
        return Err(CliError::invalid("Node group or node names must be given"));
    }
    // The online ones of the named nodes (or of the group), in order.
    let mut filter = Vec::new();
    if !names.is_empty() {
        let mut or = vec![json!("|")];
        or.extend(names.iter().map(|n| json!(["=", "name", n])));
        filter.push(Value::Array(or));
    }
    if let Some(g) = &nodegroup {
        filter.push(json!(["|", ["=", "group", g], ["=", "group.uuid", g]]));
    }
    let qfilter = if filter.len() == 1 {
        filter.pop()
    } else {
        let mut and = vec![json!("&")];
        and.extend(filter);
        Some(Value::Array(and))
    };
    let resp = crate::query::query(ctx, "node", &["name", "offline"], qfilter)?;
    let mut online = Vec::new();
    let mut offline = Vec::new();
    for row in &resp.data {
        let name = row.first().and_then(|c| c.1.as_str()).unwrap_or_default();
        if row.get(1).and_then(|c| c.1.as_bool()) == Some(true) {
            offline.push(name.to_string());
        } else {
            online.push(name.to_string());
        }
    }
    for n in &names {
        if !online.contains(n) && !offline.contains(n) {
            return Err(CliError::prereq(
                format!("Node '{n}' not known"),
                luxi::ErrorCode::NoEnt,
            ));
        }
    }
    if !names.is_empty() {
        online.sort_by_key(|n| names.iter().position(|m| m == n));
    }
    if !offline.is_empty() {
        output::err(&format!(
            "Note: skipping offline node(s): {}",
            offline.join(", ")
        ));
    }
    let op = OpCode::new("OP_RESTRICTED_COMMAND")
        .set("command", command)
        .set("nodes", json!(online))
        .set("use_locking", sync);
    let result = submit_or_send(ctx, op, job)?;
    let mut code = exit::SUCCESS;
    for (node, r) in online.iter().zip(result.as_array().into_iter().flatten()) {
        let ok = r.get(0).and_then(Value::as_bool).unwrap_or(false);
        let text = r.get(1).and_then(Value::as_str).unwrap_or_default();
        output::out("------------------------------------------------");
        if ok {
            if show_machine_names {
                for line in text.lines() {
                    output::out(&format!("{node}: {line}"));
                }
            } else {
                output::out(&format!("Node: {node}"));
                output::out(text);
            }
        } else {
            code = exit::FAILURE;
            output::out(text);
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_sort_orders_numbers_numerically() {
        let v = nice_sort(vec!["node10".into(), "node2".into(), "node1".into()]);
        assert_eq!(v, vec!["node1", "node2", "node10"]);
    }
}
