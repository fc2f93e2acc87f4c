//! `gnt-os`: operating system definitions.

use clap::Subcommand;
use serde_json::Value;

use crate::commands::node::nice_sort;
use crate::ctx::{Ctx, JobOpts};
use crate::error::{exit, CliError};
use crate::jobs::submit_opcode;
use crate::opcodes::OpCode;
use crate::output;
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
