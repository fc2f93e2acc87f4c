//! `gnt-network`: IP network administration.

use clap::Subcommand;
use serde_json::{json, Value};

use crate::commands::{change_tags, expect_list, list_tags, TagOpts};
use crate::ctx::{Ctx, JobOpts};
use crate::error::{exit, CliError};
use crate::jobs::{submit_opcode, submit_or_send};
use crate::opcodes::OpCode;
use crate::output;
use crate::params::{split_key_val, unescape_and_split};
use crate::pyfmt::py_str;
use crate::query::{
    comma_join, generic_list, generic_list_fields, parse_fields, Formatter, ListFieldsOpts,
    ListOpts, ListRequest, Overrides,
};

/// Default fields of `gnt-network list`.
pub const LIST_DEF_FIELDS: &[&str] = &[
    "name",
    "network",
    "gateway",
    "mac_prefix",
    "group_list",
    "tags",
];

/// A connection's parameters when `-N` leaves them out (Ganeti's
/// `NICC_DEFAULTS`).
const DEFAULT_NIC_MODE: &str = "bridged";
const DEFAULT_NIC_LINK: &str = "xen-br0";

/// The `--priority` option alone (commands that wait for their job).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PriorityOpt {
    /// Priority of the job
    #[arg(long, value_parser = ["low", "normal", "high"])]
    pub priority: Option<String>,
}

impl PriorityOpt {
    fn job_opts(&self) -> JobOpts {
        JobOpts {
            submit_only: false,
            print_jobid: false,
            dry_run: false,
            priority: self.priority.clone(),
            no_dry_run_opt: true,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Add a new IP network to the cluster
    Add {
        /// IP network in CIDR notation
        #[arg(long)]
        network: Option<String>,
        /// IP address of the router (gateway)
        #[arg(long)]
        gateway: Option<String>,
        /// Comma-separated list of reserved IPs to add
        #[arg(long = "add-reserved-ips")]
        add_reserved_ips: Option<String>,
        /// Specify the mac prefix for the instance IP addresses, in the format XX:XX:XX
        #[arg(short = 'm', long = "mac-prefix", value_name = "PREFIX")]
        mac_prefix: Option<String>,
        /// IP network in CIDR notation
        #[arg(long)]
        network6: Option<String>,
        /// IP6 address of the router (gateway)
        #[arg(long)]
        gateway6: Option<String>,
        /// Don't check for conflicting IPs
        #[arg(long = "no-conflicts-check")]
        no_conflicts_check: bool,
        /// Comma-separated list of instance tags
        #[arg(long)]
        tags: Option<String>,
        #[command(flatten)]
        job: JobOpts,
        network_name: String,
    },
    /// Lists the IP networks in the cluster. The available fields can be
    /// shown using the "list-fields" command (see the man page for
    /// details). The default list is (in order): name, network, gateway,
    /// mac_prefix, group_list, tags.
    List {
        #[command(flatten)]
        list: ListOpts,
        names: Vec<String>,
    },
    /// Lists all available fields for networks
    ListFields {
        #[command(flatten)]
        opts: ListFieldsOpts,
        fields: Vec<String>,
    },
    /// Show information about the network(s)
    Info { networks: Vec<String> },
    /// Alters the parameters of a network
    Modify {
        /// Comma-separated list of reserved IPs to add
        #[arg(long = "add-reserved-ips")]
        add_reserved_ips: Option<String>,
        /// Comma-delimited list of reserved IPs to remove
        #[arg(long = "remove-reserved-ips")]
        remove_reserved_ips: Option<String>,
        /// IP address of the router (gateway)
        #[arg(long)]
        gateway: Option<String>,
        /// Specify the mac prefix for the instance IP addresses, in the format XX:XX:XX
        #[arg(short = 'm', long = "mac-prefix", value_name = "PREFIX")]
        mac_prefix: Option<String>,
        /// IP network in CIDR notation
        #[arg(long)]
        network6: Option<String>,
        /// IP6 address of the router (gateway)
        #[arg(long)]
        gateway6: Option<String>,
        #[command(flatten)]
        job: JobOpts,
        network: String,
    },
    /// Map a given network to the specified node group with given mode and
    /// link (netparams)
    Connect {
        /// Don't check for conflicting IPs
        #[arg(long = "no-conflicts-check")]
        no_conflicts_check: bool,
        /// NIC parameters: mode=...,link=...,vlan=...
        #[arg(short = 'N', long = "nic-parameters", allow_hyphen_values = true)]
        nicparams: Option<String>,
        #[command(flatten)]
        prio: PriorityOpt,
        network: String,
        /// Node groups (default: all)
        groups: Vec<String>,
    },
    /// Unmap a given network from a specified node group
    Disconnect {
        #[command(flatten)]
        prio: PriorityOpt,
        network: String,
        /// Node groups (default: all)
        groups: Vec<String>,
    },
    /// Remove an (empty) network from the cluster
    Remove {
        /// Force the operation
        #[arg(short = 'f', long)]
        force: bool,
        #[command(flatten)]
        job: JobOpts,
        network: String,
    },
    /// List the tags of the given network
    ListTags { network: String },
    /// Add tags to the given network
    AddTags {
        network: String,
        tags: Vec<String>,
        #[command(flatten)]
        opts: TagOpts,
    },
    /// Remove tags from given network
    RemoveTags {
        network: String,
        tags: Vec<String>,
        #[command(flatten)]
        opts: TagOpts,
    },
}

/// Entry point of `gnt-network`.
pub fn main() -> i32 {
    crate::commands::run::<Cmd>("gnt-network", "Ganeti IP network administration", dispatch)
}

/// `--add-reserved-ips` / `--remove-reserved-ips`: a list, `[]` for an
/// empty value, null when not given (Ganeti's `_HandleReservedIPs`).
fn reserved_ips(v: &Option<String>) -> Value {
    match v.as_deref() {
        None => Value::Null,
        Some("") => json!([]),
        Some(s) => json!(unescape_and_split(s, ',')),
    }
}

/// `name (mode, link, vlan), ...` (the `group_list` column).
fn fmt_group_list(v: &Value) -> String {
    v.as_array()
        .map(|groups| {
            groups
                .iter()
                .map(|g| {
                    let f = |i: usize| g.get(i).map(py_str).unwrap_or_default();
                    format!("{} ({}, {}, {})", f(0), f(1), f(2), f(3))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| py_str(v))
}

/// The groups named, or every group of the cluster (by UUID).
fn groups_or_all(ctx: &mut Ctx, groups: Vec<String>) -> Result<Vec<String>, CliError> {
    if !groups.is_empty() {
        return Ok(groups);
    }
    let res = ctx.call("QueryGroups", json!([[], ["uuid"], false]))?;
    Ok(expect_list("QueryGroups", &res)?
        .iter()
        .filter_map(|row| row.get(0).map(py_str))
        .collect())
}

fn dispatch(ctx: &mut Ctx, cmd: Cmd) -> Result<i32, CliError> {
    match cmd {
        Cmd::Add {
            network,
            gateway,
            add_reserved_ips,
            mac_prefix,
            network6,
            gateway6,
            no_conflicts_check,
            tags,
            job,
            network_name,
        } => {
            if network.is_none() {
                return Err(CliError::invalid("The --network option must be given"));
            }
            let tags: Vec<String> = tags
                .map(|t| t.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            let op = OpCode::new("OP_NETWORK_ADD")
                .set("network_name", network_name)
                .set("gateway", json!(gateway))
                .set("network", json!(network))
                .set("gateway6", json!(gateway6))
                .set("network6", json!(network6))
                .set("mac_prefix", json!(mac_prefix))
                .set("add_reserved_ips", reserved_ips(&add_reserved_ips))
                .set("conflicts_check", !no_conflicts_check)
                .set("tags", json!(tags));
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::List { list, names } => {
            let mut overrides = Overrides::new();
            overrides.insert(
                "group_list".into(),
                (Box::new(fmt_group_list) as Formatter, false),
            );
            for f in ["inst_list", "tags"] {
                overrides.insert(f.into(), (Box::new(comma_join) as Formatter, false));
            }
            generic_list(
                ctx,
                ListRequest {
                    resource: "network",
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
        Cmd::ListFields { opts, fields } => generic_list_fields(ctx, "network", &fields, &opts),
        Cmd::Info { networks } => info(ctx, &networks),
        Cmd::Modify {
            add_reserved_ips,
            remove_reserved_ips,
            gateway,
            mac_prefix,
            network6,
            gateway6,
            job,
            network,
        } => {
            if add_reserved_ips.is_none()
                && remove_reserved_ips.is_none()
                && gateway.is_none()
                && mac_prefix.is_none()
                && network6.is_none()
                && gateway6.is_none()
            {
                output::err("Please give at least one of the parameters.");
                return Ok(exit::FAILURE);
            }
            let op = OpCode::new("OP_NETWORK_SET_PARAMS")
                .set("network_name", network)
                .set("gateway", json!(gateway))
                .set("add_reserved_ips", reserved_ips(&add_reserved_ips))
                .set("remove_reserved_ips", reserved_ips(&remove_reserved_ips))
                .set("mac_prefix", json!(mac_prefix))
                .set("gateway6", json!(gateway6))
                .set("network6", json!(network6));
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::Connect {
            no_conflicts_check,
            nicparams,
            prio,
            network,
            groups,
        } => {
            let given = match &nicparams {
                Some(p) => split_key_val("-N", p)?,
                None => Default::default(),
            };
            let get = |k: &str, default: &str| {
                given
                    .get(k)
                    .map(py_str)
                    .unwrap_or_else(|| default.to_string())
            };
            let (mode, link, vlan) = (
                get("mode", DEFAULT_NIC_MODE),
                get("link", DEFAULT_NIC_LINK),
                get("vlan", ""),
            );
            for group in groups_or_all(ctx, groups)? {
                let op = OpCode::new("OP_NETWORK_CONNECT")
                    .set("group_name", group)
                    .set("network_name", network.clone())
                    .set("network_mode", mode.clone())
                    .set("network_link", link.clone())
                    .set("network_vlan", vlan.clone())
                    .set("conflicts_check", !no_conflicts_check);
                submit_opcode(ctx, op, Some(&prio.job_opts()))?;
            }
            Ok(exit::SUCCESS)
        }
        Cmd::Disconnect {
            prio,
            network,
            groups,
        } => {
            for group in groups_or_all(ctx, groups)? {
                let op = OpCode::new("OP_NETWORK_DISCONNECT")
                    .set("group_name", group)
                    .set("network_name", network.clone());
                submit_opcode(ctx, op, Some(&prio.job_opts()))?;
            }
            Ok(exit::SUCCESS)
        }
        Cmd::Remove {
            force,
            job,
            network,
        } => {
            let op = OpCode::new("OP_NETWORK_REMOVE")
                .set("network_name", network)
                .set("force", force);
            submit_or_send(ctx, op, &job)?;
            Ok(exit::SUCCESS)
        }
        Cmd::ListTags { network } => list_tags(ctx, "network", &network),
        Cmd::AddTags {
            network,
            tags,
            opts,
        } => change_tags(ctx, true, "network", &network, tags, &opts),
        Cmd::RemoveTags {
            network,
            tags,
            opts,
        } => change_tags(ctx, false, "network", &network, tags, &opts),
    }
}

/// Greedy word wrap at `width` columns (Python's `textwrap.wrap` for text
/// without hyphens or tabs).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// The usage map, 64 addresses a line with their first and last index.
fn map_lines(map: &str) -> Vec<String> {
    let bytes = map.as_bytes();
    (0..bytes.len())
        .step_by(64)
        .map(|idx| {
            let line = String::from_utf8_lossy(&bytes[idx..(idx + 64).min(bytes.len())]);
            format!("     {idx:>4} {line:<64} {}", idx + 63)
        })
        .collect()
}

fn info(ctx: &mut Ctx, networks: &[String]) -> Result<i32, CliError> {
    let fields = [
        "name",
        "network",
        "gateway",
        "network6",
        "gateway6",
        "mac_prefix",
        "free_count",
        "reserved_count",
        "map",
        "group_list",
        "inst_list",
        "external_reservations",
        "serial_no",
        "uuid",
    ];
    let res = ctx.call("QueryNetworks", json!([networks, fields, false]))?;
    let rows = expect_list("QueryNetworks", &res)?.clone();
    for row in rows {
        let Some(r) = row.as_array().filter(|r| r.len() == fields.len()) else {
            return Err(CliError::bad_reply("QueryNetworks", row.to_string()));
        };
        let num = |v: &Value| v.as_u64().unwrap_or(0);
        let (free, reserved) = (num(&r[6]), num(&r[7]));
        let size = free + reserved;
        let uuid = py_str(&r[13]);
        let mut out = vec![
            format!("Network name: {}", py_str(&r[0])),
            format!("UUID: {uuid}"),
            format!("Serial number: {}", num(&r[12])),
            format!("  Subnet: {}", py_str(&r[1])),
            format!("  Gateway: {}", py_str(&r[2])),
            format!("  IPv6 Subnet: {}", py_str(&r[3])),
            format!("  IPv6 Gateway: {}", py_str(&r[4])),
            format!("  Mac Prefix: {}", py_str(&r[5])),
            format!("  Size: {size}"),
            format!(
                "  Free: {free} ({:.2}%)",
                100.0 * free as f64 / (size.max(1)) as f64
            ),
            "  Usage map:".to_string(),
        ];
        out.extend(map_lines(r[8].as_str().unwrap_or_default()));
        out.push("         (X) used    (.) free".to_string());
        let ext = r[11].as_str().unwrap_or_default();
        if !ext.is_empty() {
            out.push("  externally reserved IPs:".to_string());
            out.extend(wrap(ext, 64).into_iter().map(|l| format!("    {l}")));
        }
        match r[9].as_array().filter(|g| !g.is_empty()) {
            Some(groups) => {
                out.push("  connected to node groups:".to_string());
                for g in groups {
                    let f = |i: usize| g.get(i).map(py_str).unwrap_or_default();
                    out.push(format!(
                        "    {} (mode:{} link:{} vlan:{})",
                        f(0),
                        f(1),
                        f(2),
                        f(3)
                    ));
                }
            }
            None => out.push("  not connected to any node group".to_string()),
        }
        match r[10].as_array().filter(|i| !i.is_empty()) {
            Some(instances) => {
                out.push(format!("  used by {} instances:", instances.len()));
                output::out_lines(std::mem::take(&mut out));
                for name in instances {
                    let name = py_str(name);
                    let res = ctx.call(
                        "QueryInstances",
                        json!([[name], ["nic.ips", "nic.networks"], false]),
                    )?;
                    let row = expect_list("QueryInstances", &res)?
                        .first()
                        .cloned()
                        .unwrap_or(Value::Null);
                    let empty = Vec::new();
                    let ips = row.get(0).and_then(Value::as_array).unwrap_or(&empty);
                    let nets = row.get(1).and_then(Value::as_array).unwrap_or(&empty);
                    let used: Vec<String> = ips
                        .iter()
                        .zip(nets)
                        .enumerate()
                        .filter(|(_, (_, net))| net.as_str() == Some(uuid.as_str()))
                        .map(|(i, (ip, _))| format!("{i}:{}", py_str(ip)))
                        .collect();
                    output::out(&format!("    {name}: {}", used.join(", ")));
                }
            }
            None => out.push("  not used by any instances".to_string()),
        }
        output::out_lines(out);
    }
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usage_map_is_cut_in_lines_of_64() {
        let map = format!("X{}X", ".".repeat(126));
        let lines = map_lines(&map);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], format!("        0 X{} 63", ".".repeat(63)));
        assert_eq!(lines[1], format!("       64 {}X 127", ".".repeat(63)));
        let short = map_lines("XX..");
        assert_eq!(short, vec![format!("        0 XX..{} 63", " ".repeat(60))]);
    }

    #[test]
    fn reservations_wrap_at_64_columns() {
        let ext = (0..10)
            .map(|i| format!("10.0.0.{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let lines = wrap(&ext, 64);
        assert!(lines.iter().all(|l| l.len() <= 64), "{lines:?}");
        assert_eq!(lines.join(" "), ext);
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn group_lists_show_mode_link_and_vlan() {
        let v = json!([
            ["default", "bridged", "br0", ""],
            ["g2", "routed", "rt", "5"]
        ]);
        assert_eq!(
            fmt_group_list(&v),
            "default (bridged, br0, ), g2 (routed, rt, 5)"
        );
    }

    #[test]
    fn reserved_ip_options_distinguish_unset_and_empty() {
        assert_eq!(reserved_ips(&None), Value::Null);
        assert_eq!(reserved_ips(&Some(String::new())), json!([]));
        assert_eq!(
            reserved_ips(&Some("10.0.0.1,10.0.0.2".into())),
            json!(["10.0.0.1", "10.0.0.2"])
        );
    }
}
