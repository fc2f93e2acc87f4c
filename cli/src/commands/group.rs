//! `gnt-group`: node group administration.

use clap::Subcommand;
use serde_json::{json, Value};

use crate::commands::{change_tags, expect_list, list_tags, TagOpts};
use crate::ctx::{Ctx, JobOpts};
use crate::error::{exit, CliError};
use crate::info::{format_generic_info, format_params_dict_info, Info};
use crate::jobs::{submit_or_send, JobExecutor};
use crate::opcodes::OpCode;
use crate::output;
use crate::params::split_key_val;
use crate::pyfmt::py_str;
use crate::query::{
    comma_join, generic_list, generic_list_fields, parse_fields, Formatter, ListFieldsOpts,
    ListOpts, ListRequest, Overrides,
};

/// Default fields of `gnt-group list`.
pub const LIST_DEF_FIELDS: &[&str] = &["name", "node_cnt", "pinst_cnt", "alloc_policy", "ndparams"];

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Add a new node group to the cluster
    Add {
        /// Node parameters: key=val,...
        #[arg(long = "node-parameters", allow_hyphen_values = true)]
        ndparams: Option<String>,
        /// Allocation policy: preferred, last_resort or unallocable
        #[arg(long = "alloc-policy")]
        alloc_policy: Option<String>,
        #[command(flatten)]
        job: JobOpts,
        group: String,
    },
    /// Alter the parameters of a node group
    Modify {
        /// Node parameters: key=val,...
        #[arg(long = "node-parameters", allow_hyphen_values = true)]
        ndparams: Option<String>,
        /// Allocation policy: preferred, last_resort or unallocable
        #[arg(long = "alloc-policy")]
        alloc_policy: Option<String>,
        #[command(flatten)]
        job: JobOpts,
        group: String,
    },
    /// Move all instances of a group to other groups
    Evacuate {
        /// Instance allocator
        #[arg(short = 'I', long = "iallocator")]
        iallocator: Option<String>,
        /// Destination node group (repeatable)
        #[arg(long = "to")]
        to: Vec<String>,
        /// Release locks early
        #[arg(long)]
        early_release: bool,
        /// Move instances one after the other
        #[arg(long)]
        sequential: bool,
        /// Fail over instead of migrating
        #[arg(long)]
        force_failover: bool,
        #[command(flatten)]
        job: JobOpts,
        group: String,
    },
    /// Remove an (empty) node group from the cluster
    Remove {
        #[command(flatten)]
        job: JobOpts,
        group: String,
    },
    /// Rename a node group
    Rename {
        #[command(flatten)]
        job: JobOpts,
        group: String,
        new_name: String,
    },
    /// Assign nodes to a group
    AssignNodes {
        /// Force the operation
        #[arg(short = 'f', long)]
        force: bool,
        #[command(flatten)]
        job: JobOpts,
        group: String,
        #[arg(required = true)]
        nodes: Vec<String>,
    },
    /// Lists the node groups in the cluster
    List {
        #[command(flatten)]
        list: ListOpts,
        names: Vec<String>,
    },
    /// Lists all available fields for node groups
    ListFields {
        #[command(flatten)]
        opts: ListFieldsOpts,
        fields: Vec<String>,
    },
    /// Show group information
    #[command(alias = "show")]
    Info { groups: Vec<String> },
    /// List the tags of the given group
    ListTags { group: String },
    /// Add tags to the given group
    AddTags {
        group: String,
        tags: Vec<String>,
        #[command(flatten)]
        opts: TagOpts,
    },
    /// Remove tags from the given group
    RemoveTags {
        group: String,
        tags: Vec<String>,
        #[command(flatten)]
        opts: TagOpts,
    },
}

/// Entry point of `gnt-group`.
pub fn main() -> i32 {
    crate::commands::run::<Cmd>("gnt-group", "Ganeti node group administration", dispatch)
}

/// `k=v, k=v`, or `(empty)` (Ganeti's `_FmtDict`).
fn fmt_dict(v: &Value) -> String {
    match v.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", py_str(v)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "(empty)".into(),
    }
}

fn dispatch(ctx: &mut Ctx, cmd: Cmd) -> Result<i32, CliError> {
    match cmd {
        Cmd::Add {
            ndparams,
            alloc_policy,
            job,
            group,
        } => {
            let nd = match &ndparams {
                Some(p) => Value::Object(split_key_val("--node-parameters", p)?),
                None => Value::Null,
            };
            let op = OpCode::new("OP_GROUP_ADD")
                .set("group_name", group)
                .set("ndparams", nd)
                .set("alloc_policy", json!(alloc_policy))
                .set("diskparams", json!({}))
                .set("ipolicy", json!({}))
                .set("hv_state", json!({}))
                .set("disk_state", json!({}));
            let result = submit_or_send(ctx, op, &job)?;
            crate::commands::cluster::get_result(ctx, &result)
        }
        Cmd::Modify {
            ndparams,
            alloc_policy,
            job,
            group,
        } => {
            if ndparams.is_none() && alloc_policy.is_none() {
                output::err("Please give at least one of the parameters.");
                return Ok(exit::FAILURE);
            }
            let nd = match &ndparams {
                Some(p) => Value::Object(split_key_val("--node-parameters", p)?),
                None => Value::Null,
            };
            let op = OpCode::new("OP_GROUP_SET_PARAMS")
                .set("group_name", group.clone())
                .set("ndparams", nd)
                .set("alloc_policy", json!(alloc_policy))
                .set("hv_state", json!({}))
                .set("disk_state", json!({}))
                .set("diskparams", json!({}))
                .set("ipolicy", json!({}));
            let result = submit_or_send(ctx, op, &job)?;
            if let Some(changes) = result.as_array().filter(|c| !c.is_empty()) {
                output::out(&format!("Modified node group {group}"));
                for c in changes {
                    if let Some([param, data]) = c.as_array().map(Vec::as_slice) {
                        output::out(&format!(" - {:<5} -> {}", py_str(param), py_str(data)));
                    }
                }
            }
            Ok(exit::SUCCESS)
        }
        Cmd::Evacuate {
            iallocator,
            to,
            early_release,
            sequential,
            force_failover,
            mut job,
            group,
        } => {
            job.no_dry_run_opt = true;
            let target = if to.is_empty() {
                Value::Null
            } else {
                json!(to)
            };
            let op = OpCode::new("OP_GROUP_EVACUATE")
                .set("group_name", group)
                .set("iallocator", json!(iallocator))
                .set("target_groups", target)
                .set("early_release", early_release)
                .set("sequential", sequential)
                .set("force_failover", force_failover);
            let result = submit_or_send(ctx, op, &job)?;
            let Some(jobs) = result.get("jobs").and_then(Value::as_array) else {
                return Err(CliError::bad_reply(
                    "OP_GROUP_EVACUATE",
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
                output::out("All instances evacuated successfully.");
                Ok(exit::SUCCESS)
            } else {
                output::out(&format!("There were {bad} errors during the evacuation."));
                Ok(exit::FAILURE)
            }
        }
        Cmd::Remove { job, group } => {
            submit_or_send(
                ctx,
                OpCode::new("OP_GROUP_REMOVE").set("group_name", group),
                &job,
            )?;
            Ok(exit::SUCCESS)
        }
        Cmd::Rename {
            job,
            group,
            new_name,
        } => {
            let op = OpCode::new("OP_GROUP_RENAME")
                .set("group_name", group)
                .set("new_name", new_name);
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::AssignNodes {
            force,
            job,
            group,
            nodes,
        } => {
            let op = OpCode::new("OP_GROUP_ASSIGN_NODES")
                .set("group_name", group)
                .set("nodes", json!(nodes))
                .set("force", force);
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::List { list, names } => {
            let mut overrides = Overrides::new();
            for f in ["node_list", "pinst_list"] {
                overrides.insert(f.into(), (Box::new(comma_join) as Formatter, false));
            }
            overrides.insert("ndparams".into(), (Box::new(fmt_dict) as Formatter, false));
            generic_list(
                ctx,
                ListRequest {
                    resource: "group",
                    fields: parse_fields(list.output.as_deref(), LIST_DEF_FIELDS),
                    names: &names,
                    opts: &list,
                    overrides,
                    namefield: "name",
                    qfilter: None,
                    isnumeric: false,
                },
            )
        }
        Cmd::ListFields { opts, fields } => generic_list_fields(ctx, "group", &fields, &opts),
        Cmd::Info { groups } => info(ctx, &groups),
        Cmd::ListTags { group } => list_tags(ctx, "nodegroup", &group),
        Cmd::AddTags { group, tags, opts } => {
            change_tags(ctx, true, "nodegroup", &group, tags, &opts)
        }
        Cmd::RemoveTags { group, tags, opts } => {
            change_tags(ctx, false, "nodegroup", &group, tags, &opts)
        }
    }
}

/// Ganeti's `FormatPolicyInfo` for a group: its own settings or the
/// effective ones marked as defaults.
fn group_policy_info(custom: &Value, eff: &Value) -> Info {
    let empty = json!({});
    let mut out: Vec<(&str, Info)> = Vec::new();
    let (minmax, own) = match custom.get("minmax").and_then(Value::as_array) {
        Some(mm) if !mm.is_empty() => (mm.clone(), true),
        _ => (
            eff.get("minmax")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            false,
        ),
    };
    let bounds = minmax
        .iter()
        .enumerate()
        .map(|(k, m)| {
            Info::Ordered(
                ["min", "max"]
                    .iter()
                    .map(|key| {
                        let spec = m.get(*key).unwrap_or(&empty);
                        let own_spec = if own { spec } else { &empty };
                        (
                            format!("{key}/{k}"),
                            format_params_dict_info(own_spec, spec),
                            None,
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    out.push(("bounds specs", Info::List(bounds)));
    let list = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(py_str).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let dts = match custom.get("disk-templates") {
        Some(d) if !d.is_null() => list(d),
        _ => format!(
            "default ({})",
            list(eff.get("disk-templates").unwrap_or(&Value::Null))
        ),
    };
    out.push(("allowed disk templates", Info::s(dts)));
    for key in ["vcpu-ratio", "spindle-ratio"] {
        let text = match custom.get(key) {
            Some(v) => py_str(v),
            None => format!("default ({})", py_str(eff.get(key).unwrap_or(&Value::Null))),
        };
        out.push((key, Info::s(text)));
    }
    Info::ordered(out)
}

fn info(ctx: &mut Ctx, groups: &[String]) -> Result<i32, CliError> {
    let fields = [
        "name",
        "ndparams",
        "custom_ndparams",
        "diskparams",
        "custom_diskparams",
        "ipolicy",
        "custom_ipolicy",
    ];
    let res = ctx.call("QueryGroups", json!([groups, fields, false]))?;
    let mut out = Vec::new();
    for row in expect_list("QueryGroups", &res)? {
        let Some(r) = row.as_array().filter(|r| r.len() == fields.len()) else {
            return Err(CliError::bad_reply("QueryGroups", row.to_string()));
        };
        out.push(Info::ordered(vec![
            ("Node group", Info::py(&r[0])),
            ("Node parameters", format_params_dict_info(&r[2], &r[1])),
            ("Disk parameters", format_params_dict_info(&r[4], &r[3])),
            ("Instance policy", group_policy_info(&r[6], &r[5])),
        ]));
    }
    output::out(&format_generic_info(&Info::List(out)));
    Ok(exit::SUCCESS)
}
