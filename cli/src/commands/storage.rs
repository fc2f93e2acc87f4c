//! `gnt-storage`: ExtStorage providers (`diagnose` and `info`), through
//! `OP_EXT_STORAGE_DIAGNOSE`.

use clap::Subcommand;
use serde_json::{json, Value};

use crate::commands::node::nice_sort;
use crate::ctx::{Ctx, JobOpts};
use crate::error::{exit, CliError};
use crate::jobs::submit_opcode;
use crate::opcodes::OpCode;
use crate::output;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Diagnose all ExtStorage providers
    Diagnose {
        #[arg(long, value_parser = ["low", "normal", "high"])]
        priority: Option<String>,
    },
    /// Show info about ExtStorage providers
    Info {
        #[arg(long, value_parser = ["low", "normal", "high"])]
        priority: Option<String>,
        /// Only these providers
        providers: Vec<String>,
    },
}

/// Entry point of `gnt-storage`.
pub fn main() -> i32 {
    crate::commands::run::<Cmd>(
        "gnt-storage",
        "ExtStorage provider administration",
        dispatch,
    )
}

fn dispatch(ctx: &mut Ctx, cmd: Cmd) -> Result<i32, CliError> {
    match cmd {
        Cmd::Diagnose { priority } => diagnose(ctx, priority),
        Cmd::Info {
            priority,
            providers,
        } => info(ctx, priority, providers),
    }
}

fn run_diagnose(
    ctx: &mut Ctx,
    priority: Option<String>,
    fields: &[&str],
) -> Result<Option<Vec<Value>>, CliError> {
    let op = OpCode::new("OP_EXT_STORAGE_DIAGNOSE")
        .set("output_fields", json!(fields))
        .set("names", json!([]));
    let jo = JobOpts {
        priority,
        ..JobOpts::default()
    };
    let result = submit_opcode(ctx, op, Some(&jo))?;
    Ok(result.as_array().filter(|a| !a.is_empty()).cloned())
}

/// The `(group, valid)` pairs of a `nodegroup_status` dict.
fn groups(v: &Value) -> Vec<(String, bool)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_bool().unwrap_or(false)))
                .collect()
        })
        .unwrap_or_default()
}

fn info(ctx: &mut Ctx, priority: Option<String>, mut wanted: Vec<String>) -> Result<i32, CliError> {
    let Some(rows) = run_diagnose(ctx, priority, &["name", "nodegroup_status", "parameters"])?
    else {
        output::err("Can't get the ExtStorage providers list");
        return Ok(exit::FAILURE);
    };
    let filter = !wanted.is_empty();
    for row in &rows {
        let name = row[0].as_str().unwrap_or_default();
        if filter {
            match wanted.iter().position(|w| w == name) {
                Some(i) => {
                    wanted.remove(i);
                }
                None => continue,
            }
        }
        let valid: Vec<String> = groups(&row[1])
            .into_iter()
            .filter(|(_, ok)| *ok)
            .map(|(g, _)| g)
            .collect();
        output::out(&format!("{name}:"));
        if valid.is_empty() {
            output::out("  - Invalid for all nodegroups");
        } else {
            output::out("  - Valid for nodegroups:");
            for g in nice_sort(valid) {
                output::out(&format!("      {g}"));
            }
            output::out("  - Supported parameters:");
            for p in row[2].as_array().into_iter().flatten() {
                output::out(&format!(
                    "      {}: {}",
                    p[0].as_str().unwrap_or_default(),
                    p[1].as_str().unwrap_or_default()
                ));
            }
        }
        output::out("");
    }
    for name in wanted {
        output::out(&format!("{name}: Not Found"));
        output::out("");
    }
    Ok(exit::SUCCESS)
}

/// One node's line of `diagnose`: `valid (path: ...) [parameters: ...]`
/// or `invalid - why (path: ...) [no parameters]`.
fn node_line(entries: &Value) -> (bool, String) {
    let Some(first) = entries.as_array().and_then(|a| a.first()) else {
        return (false, "ExtStorage provider not found".into());
    };
    let path = first[0].as_str().unwrap_or_default();
    let ok = first[1].as_bool().unwrap_or(false);
    let status = if ok {
        "valid".to_string()
    } else {
        format!("invalid - {}", first[2].as_str().unwrap_or_default())
    };
    let params: Vec<&str> = first[3]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p[0].as_str())
        .collect();
    let params = if params.is_empty() {
        " [no parameters]".to_string()
    } else {
        format!(" [parameters: {}]", params.join(", "))
    };
    (ok, format!("{status} (path: {path}){params}"))
}

fn diagnose(ctx: &mut Ctx, priority: Option<String>) -> Result<i32, CliError> {
    let Some(rows) = run_diagnose(ctx, priority, &["name", "node_status", "nodegroup_status"])?
    else {
        output::err("Can't get the list of ExtStorage providers");
        return Ok(exit::FAILURE);
    };
    for row in &rows {
        let name = row[0].as_str().unwrap_or_default();
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (node, entries) in row[1].as_object().into_iter().flatten() {
            let (ok, line) = node_line(entries);
            if ok {
                good.push((node.clone(), line));
            } else {
                bad.push((node.clone(), line));
            }
        }
        let (mut good_groups, mut bad_groups) = (Vec::new(), Vec::new());
        for (g, ok) in groups(&row[2]) {
            if ok {
                good_groups.push(g);
            } else {
                bad_groups.push(g);
            }
        }
        output::out(&format!("Provider: {name}"));
        output::out("---");
        for set in [good, bad] {
            let names = nice_sort(set.iter().map(|(n, _)| n.clone()).collect());
            for n in names {
                if let Some((_, line)) = set.iter().find(|(m, _)| *m == n) {
                    output::out(&format!("  Node: {n}, status: {line}"));
                }
            }
        }
        output::out("  --");
        for g in nice_sort(good_groups) {
            output::out(&format!("  For nodegroup: {g} --> valid"));
        }
        for g in nice_sort(bad_groups) {
            output::out(&format!("  For nodegroup: {g} --> invalid"));
        }
        output::out("");
    }
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lines_read_as_ganetis() {
        assert_eq!(
            node_line(&json!([[
                "/srv/ganeti/extstorage/a",
                true,
                "",
                [["pool", "doc"], ["x", ""]]
            ]])),
            (
                true,
                "valid (path: /srv/ganeti/extstorage/a) [parameters: pool, x]".to_string()
            )
        );
        assert_eq!(
            node_line(&json!([["/p", false, "File 'grow' is missing", []]])),
            (
                false,
                "invalid - File 'grow' is missing (path: /p) [no parameters]".to_string()
            )
        );
        assert_eq!(
            node_line(&json!([])),
            (false, "ExtStorage provider not found".to_string())
        );
    }
}
