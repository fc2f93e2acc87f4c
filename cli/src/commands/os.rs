//! `gnt-os`: operating system definitions.

use clap::Subcommand;
use serde_json::{json, Value};

use crate::commands::node::nice_sort;
use crate::ctx::{Ctx, JobOpts};
use crate::error::{exit, CliError};
use crate::info::{format_generic_info, Info};
use crate::jobs::{submit_opcode, submit_or_send};
use crate::opcodes::OpCode;
use crate::output;
use crate::params::{parse_yes_no, split_ident_key_val, split_key_val};
use crate::pyfmt::py_str;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Lists the valid OSes (and their variants) on the cluster
    List {
        /// Don't display column headers
        #[arg(long)]
        no_headers: bool,
        #[arg(long, value_parser = ["low", "normal", "high"])]
        priority: Option<String>,
    },
    /// Show detailed information about operating systems
    #[command(alias = "show")]
    Info {
        #[arg(long, value_parser = ["low", "normal", "high"])]
        priority: Option<String>,
        oses: Vec<String>,
    },
    /// Modify the OS parameters
    Modify {
        /// Hypervisor parameters for this OS: hv:key=val,... (repeatable)
        #[arg(
            short = 'H',
            long = "hypervisor-parameters",
            allow_hyphen_values = true
        )]
        hvparams: Vec<String>,
        /// OS parameters: key=val,...
        #[arg(short = 'O', long = "os-parameters", allow_hyphen_values = true)]
        osparams: Option<String>,
        /// Private OS parameters: key=val,...
        #[arg(long = "os-parameters-private", allow_hyphen_values = true)]
        osparams_private: Option<String>,
        /// Hide the OS (yes) or show it again (no)
        #[arg(long)]
        hidden: Option<String>,
        /// Blacklist the OS (yes) or allow it again (no)
        #[arg(long)]
        blacklisted: Option<String>,
        #[command(flatten)]
        job: JobOpts,
        os: String,
    },
    /// Diagnose all OSes on all nodes
    Diagnose {
        #[arg(long, value_parser = ["low", "normal", "high"])]
        priority: Option<String>,
    },
}

/// Entry point of `gnt-os`.
pub fn main() -> i32 {
    crate::commands::run::<Cmd>("gnt-os", "Ganeti operating system definitions", dispatch)
}

fn job_opts(priority: Option<String>) -> JobOpts {
    JobOpts {
        priority,
        no_dry_run_opt: true,
        ..JobOpts::default()
    }
}

fn diagnose_op(fields: &[&str]) -> OpCode {
    OpCode::new("OP_OS_DIAGNOSE")
        .set("output_fields", serde_json::json!(fields))
        .set("names", serde_json::json!([]))
}

fn dispatch(ctx: &mut Ctx, cmd: Cmd) -> Result<i32, CliError> {
    match cmd {
        Cmd::List {
            no_headers,
            priority,
        } => list(ctx, no_headers, priority),
        Cmd::Diagnose { priority } => diagnose(ctx, priority),
        Cmd::Info { priority, oses } => info(ctx, priority, oses),
        Cmd::Modify {
            hvparams,
            osparams,
            osparams_private,
            hidden,
            blacklisted,
            job,
            os,
        } => {
            let mut hv = serde_json::Map::new();
            for h in &hvparams {
                let (name, params) = split_ident_key_val("-H", h)?;
                hv.insert(name, params);
            }
            let keyval = |opt: &str, v: &Option<String>| -> Result<Option<Value>, CliError> {
                match v {
                    Some(s) => {
                        let m = split_key_val(opt, s)?;
                        Ok((!m.is_empty()).then(|| json!({ os.as_str(): m })))
                    }
                    None => Ok(None),
                }
            };
            let osp = keyval("-O", &osparams)?;
            let osp_private = keyval("--os-parameters-private", &osparams_private)?;
            let ddm = |opt: &str, v: &Option<String>| -> Result<Option<Value>, CliError> {
                Ok(v.as_deref()
                    .map(|s| parse_yes_no(opt, s))
                    .transpose()?
                    .map(|b| json!([[if b { "add" } else { "remove" }, os.as_str()]])))
            };
            let hid = ddm("--hidden", &hidden)?;
            let blk = ddm("--blacklisted", &blacklisted)?;
            let os_hvp = (!hv.is_empty()).then(|| json!({ os.as_str(): hv }));
            if os_hvp.is_none()
                && osp.is_none()
                && osp_private.is_none()
                && hid.is_none()
                && blk.is_none()
            {
                output::err(
                    "At least one of OS parameters or hypervisor parameters must be passed",
                );
                return Ok(exit::FAILURE);
            }
            let op = OpCode::new("OP_CLUSTER_SET_PARAMS")
                .set("os_hvp", json!(os_hvp))
                .set("osparams", json!(osp))
                .set("osparams_private_cluster", json!(osp_private))
                .set("hidden_os", json!(hid))
                .set("blacklisted_os", json!(blk));
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(py_str).collect())
        .unwrap_or_default()
}

fn list(ctx: &mut Ctx, no_headers: bool, priority: Option<String>) -> Result<i32, CliError> {
    let result = submit_opcode(
        ctx,
        diagnose_op(&["name", "variants"]),
        Some(&job_opts(priority)),
    )?;
    let Some(rows) = result.as_array() else {
        return Err(CliError::bad_reply("OP_OS_DIAGNOSE", result.to_string()));
    };
    let mut names = Vec::new();
    for row in rows {
        let name = py_str(row.get(0).unwrap_or(&Value::Null));
        let variants = strings(row.get(1).unwrap_or(&Value::Null));
        if variants.is_empty() {
            names.push(name);
        } else {
            names.extend(variants.iter().map(|v| format!("{name}+{v}")));
        }
    }
    if !no_headers {
        // Ganeti pads the title to the widest name (its GenerateTable
        // drops the padding of the last column only for data rows).
        let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        output::out(&format!("{:<width$}", "Name"));
    }
    for n in names {
        output::out(&n);
    }
    Ok(exit::SUCCESS)
}

fn info(ctx: &mut Ctx, priority: Option<String>, mut oses: Vec<String>) -> Result<i32, CliError> {
    let fields = [
        "name",
        "valid",
        "variants",
        "parameters",
        "api_versions",
        "blacklisted",
        "hidden",
        "os_hvp",
        "osparams",
        "trusted",
    ];
    let result = submit_opcode(ctx, diagnose_op(&fields), Some(&job_opts(priority)))?;
    let Some(rows) = result.as_array() else {
        output::err("Can't get the OS list");
        return Ok(exit::FAILURE);
    };
    let filter = !oses.is_empty();
    let mut total_hvp = serde_json::Map::new();
    let mut total_osparams = serde_json::Map::new();
    for row in rows {
        let Some(r) = row.as_array().filter(|r| r.len() == fields.len()) else {
            return Err(CliError::bad_reply("OP_OS_DIAGNOSE", row.to_string()));
        };
        for (total, v) in [(&mut total_hvp, &r[7]), (&mut total_osparams, &r[8])] {
            if let Some(m) = v.as_object() {
                total.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        let name = py_str(&r[0]);
        if filter {
            match oses.iter().position(|o| *o == name) {
                Some(i) => {
                    oses.remove(i);
                }
                None => continue,
            }
        }
        output::out(&format!("{name}:"));
        output::out(&format!("  - valid: {}", py_str(&r[1])));
        output::out(&format!("  - hidden: {}", py_str(&r[6])));
        output::out(&format!("  - blacklisted: {}", py_str(&r[5])));
        if r[1].as_bool() == Some(true) {
            output::out("  - API versions:");
            let mut apis: Vec<Value> = r[4].as_array().cloned().unwrap_or_default();
            apis.sort_by_key(|v| v.as_i64().unwrap_or(0));
            for v in apis {
                output::out(&format!("    - {}", py_str(&v)));
            }
            output::out("  - variants:");
            for v in strings(&r[2]) {
                output::out(&format!("    - {v}"));
            }
            output::out("  - parameters:");
            for p in r[3].as_array().into_iter().flatten() {
                output::out(&format!(
                    "    - {}: {}",
                    py_str(p.get(0).unwrap_or(&Value::Null)),
                    py_str(p.get(1).unwrap_or(&Value::Null))
                ));
            }
        }
        output::out(&format!("  - trusted: {}", py_str(&r[9])));
        output::out("");
    }
    for name in oses {
        if !total_hvp.contains_key(&name) && !total_osparams.contains_key(&name) {
            output::out(&format!("{name}: "));
        } else {
            let empty = json!({});
            let info = Info::Ordered(vec![(
                name.clone(),
                Info::ordered(vec![
                    (
                        "OS-specific hypervisor parameters",
                        Info::from_json(total_hvp.get(&name).unwrap_or(&empty)),
                    ),
                    (
                        "OS parameters",
                        Info::from_json(total_osparams.get(&name).unwrap_or(&empty)),
                    ),
                ]),
                None,
            )]);
            output::out(&format_generic_info(&info));
        }
        output::out("");
    }
    Ok(exit::SUCCESS)
}

fn os_status(status: &Value, msg: &Value) -> String {
    if status.as_bool() == Some(true) {
        "valid".into()
    } else {
        format!("invalid - {}", py_str(msg))
    }
}

fn diagnose(ctx: &mut Ctx, priority: Option<String>) -> Result<i32, CliError> {
    let fields = [
        "name",
        "valid",
        "variants",
        "node_status",
        "hidden",
        "blacklisted",
    ];
    let result = submit_opcode(ctx, diagnose_op(&fields), Some(&job_opts(priority)))?;
    let Some(rows) = result.as_array() else {
        output::err("Can't get the OS list");
        return Ok(exit::FAILURE);
    };
    let mut has_bad = false;
    for row in rows {
        let Some(r) = row.as_array().filter(|r| r.len() == 6) else {
            return Err(CliError::bad_reply("OP_OS_DIAGNOSE", row.to_string()));
        };
        let mut valid = std::collections::BTreeMap::new();
        let mut bad = std::collections::BTreeMap::new();
        let mut hidden: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        if let Some(nodes) = r[3].as_object() {
            for (node, entries) in nodes {
                let mut entries = entries.as_array().cloned().unwrap_or_default();
                hidden.insert(node.clone(), vec![]);
                if entries.is_empty() {
                    bad.insert(node.clone(), "OS not found".to_string());
                    continue;
                }
                let first = entries.remove(0);
                let e = |i: usize| first.get(i).cloned().unwrap_or(Value::Null);
                let (path, status, msg, variants, params, api, trusted) =
                    (e(0), e(1), e(2), e(3), e(4), e(5), e(6));
                let mut m = format!("{} (path: {})", os_status(&status, &msg), py_str(&path));
                let apis: Vec<i64> = api
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default();
                let max_api = apis.iter().copied().max().unwrap_or(0);
                if apis.is_empty() {
                    m.push_str(" [no API versions declared]");
                } else {
                    m.push_str(&format!(" [API versions: {}]", strings(&api).join(", ")));
                }
                if max_api >= 15 {
                    let v = strings(&variants);
                    if v.is_empty() {
                        m.push_str(" [no variants]");
                    } else {
                        m.push_str(&format!(" [variants: {}]", v.join(", ")));
                    }
                }
                if max_api >= 20 {
                    let p: Vec<String> = params
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|x| py_str(x.get(0).unwrap_or(&Value::Null)))
                                .collect()
                        })
                        .unwrap_or_default();
                    if p.is_empty() {
                        m.push_str(" [no parameters]");
                    } else {
                        m.push_str(&format!(" [parameters: {}]", p.join(", ")));
                    }
                }
                m.push_str(if trusted.as_bool() == Some(true) {
                    " [trusted]"
                } else {
                    " [untrusted]"
                });
                if status.as_bool() == Some(true) {
                    valid.insert(node.clone(), m);
                } else {
                    bad.insert(node.clone(), m);
                }
                for h in entries {
                    let g = |i: usize| h.get(i).cloned().unwrap_or(Value::Null);
                    if let Some(list) = hidden.get_mut(node) {
                        list.push(format!(
                            "    [hidden] path: {}, status: {}",
                            py_str(&g(0)),
                            os_status(&g(1), &g(2))
                        ));
                    }
                }
            }
        }
        let status = if !valid.is_empty() && bad.is_empty() {
            "valid"
        } else if valid.is_empty() && !bad.is_empty() {
            has_bad = true;
            "invalid"
        } else {
            has_bad = true;
            "partial valid"
        };
        let mut st = format!("OS: {} [global status: {status}]", py_str(&r[0]));
        if r[4].as_bool() == Some(true) {
            st.push_str(" [hidden]");
        }
        if r[5].as_bool() == Some(true) {
            st.push_str(" [blacklisted]");
        }
        output::out(&st);
        let variants = strings(&r[2]);
        if !variants.is_empty() {
            output::out(&format!("  Variants: [{}]", variants.join(", ")));
        }
        for map in [&valid, &bad] {
            for node in nice_sort(map.keys().cloned().collect()) {
                output::out(&format!("  Node: {node}, status: {}", map[&node]));
                for msg in hidden.get(&node).into_iter().flatten() {
                    output::out(msg);
                }
            }
        }
        output::out("");
    }
    Ok(if has_bad {
        exit::FAILURE
    } else {
        exit::SUCCESS
    })
}
