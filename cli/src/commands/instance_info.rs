//! `gnt-instance info`: an instance's configuration and state, laid out
//! as Ganeti's `ShowInstanceConfig` does.

use clap::Args;
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::error::{exit, CliError};
use crate::info::{format_generic_info, format_params_dict_info, Info};
use crate::jobs::submit_opcode;
use crate::opcodes::OpCode;
use crate::output;
use crate::pyfmt::{is_truthy, py_str};
use crate::units::{format_unit, Unit};

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Only show configuration data, not runtime data
    #[arg(short = 's', long = "static")]
    pub static_: bool,
    /// Show info on all instances of the cluster
    #[arg(long = "all")]
    pub show_all: bool,
    /// Use roman numbers for positive integers (accepted, not used)
    #[arg(long = "roman")]
    pub roman: bool,
    pub instances: Vec<String>,
}

pub(super) fn info(ctx: &mut Ctx, a: InfoArgs) -> Result<i32, CliError> {
    if a.instances.is_empty() && !a.show_all {
        output::err("No instance selected. Please pass in --all if you want to query all instances.\nNote that this can take a long time on a big cluster.");
        return Ok(exit::FAILURE);
    }
    if !a.instances.is_empty() && a.show_all {
        output::err("Cannot use --all if you specify instance names.");
        return Ok(exit::FAILURE);
    }
    let op = OpCode::new("OP_INSTANCE_QUERY_DATA")
        .set("instances", json!(a.instances))
        .set("static", a.static_)
        .set("use_locking", !a.static_);
    let result = submit_opcode(ctx, op, None)?;
    let Some(map) = result.as_object().filter(|m| !m.is_empty()) else {
        if result.is_object() || result.is_null() {
            output::out("No instances.");
            return Ok(exit::FAILURE);
        }
        return Err(CliError::bad_reply(
            "OP_INSTANCE_QUERY_DATA",
            "result is not a dictionary",
        ));
    };
    let items: Vec<Info> = map.values().map(format_instance_info).collect();
    output::out(&format_generic_info(&Info::List(items)));
    Ok(exit::SUCCESS)
}

fn field<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.get(k).unwrap_or(&Value::Null)
}

fn format_instance_info(inst: &Value) -> Info {
    let f = |k: &str| field(inst, k);
    let mut state = format!("configured to be {}", py_str(f("config_state")));
    if is_truthy(f("run_state")) {
        state.push_str(&format!(", actual state is {}", py_str(f("run_state"))));
    }
    let mut entries: Vec<(&str, Info)> = vec![
        ("Instance name", Info::py(f("name"))),
        ("UUID", Info::py(f("uuid"))),
        ("Serial number", Info::py(f("serial_no"))),
        (
            "Creation time",
            Info::s(crate::timefmt::format_time_value(f("ctime"))),
        ),
        (
            "Modification time",
            Info::s(crate::timefmt::format_time_value(f("mtime"))),
        ),
        ("State", Info::s(state)),
        ("Nodes", format_nodes_info(inst)),
        ("Operating system", Info::py(f("os"))),
        (
            "Operating system parameters",
            format_params_dict_info(f("os_instance"), f("os_actual")),
        ),
    ];
    if inst.get("network_port").is_some() {
        entries.push(("Allocated network port", Info::py(f("network_port"))));
    }
    entries.push(("Hypervisor", Info::py(f("hypervisor"))));
    if let Some(c) = vnc_console_info(inst) {
        entries.push(("console connection", Info::s(c)));
    }
    let mut be_actual = f("be_actual").clone();
    if let Some(m) = be_actual.as_object_mut() {
        let maxmem = m.get("maxmem").cloned().unwrap_or(Value::Null);
        m.insert("memory".into(), maxmem);
    }
    let nics: Vec<Info> = f("nics")
        .as_array()
        .map(|a| {
            a.iter()
                .enumerate()
                .map(|(i, n)| format_nic_info(i, n))
                .collect()
        })
        .unwrap_or_default();
    let disks: Vec<Info> = f("disks")
        .as_array()
        .map(|a| {
            a.iter()
                .enumerate()
                .map(|(i, d)| format_block_dev_info(i, true, d))
                .collect()
        })
        .unwrap_or_default();
    entries.extend([
        (
            "Hypervisor parameters",
            format_params_dict_info(f("hv_instance"), f("hv_actual")),
        ),
        (
            "Back-end parameters",
            format_params_dict_info(f("be_instance"), &be_actual),
        ),
        ("NICs", Info::List(nics)),
        ("Disk template", Info::py(f("disk_template"))),
        ("Disks", Info::List(disks)),
    ]);
    Info::ordered(entries)
}

fn format_nodes_info(inst: &Value) -> Info {
    let f = |k: &str| field(inst, k);
    let pgroup = format!(
        "{} (UUID {})",
        py_str(f("pnode_group_name")),
        py_str(f("pnode_group_uuid"))
    );
    let empty = Vec::new();
    let snodes = f("snodes").as_array().unwrap_or(&empty);
    let gnames = f("snodes_group_names").as_array().unwrap_or(&empty);
    let guuids = f("snodes_group_uuids").as_array().unwrap_or(&empty);
    let secs: Vec<String> = snodes
        .iter()
        .zip(gnames)
        .zip(guuids)
        .map(|((n, g), u)| {
            format!(
                "{} (group {}, group UUID {})",
                py_str(n),
                py_str(g),
                py_str(u)
            )
        })
        .collect();
    Info::List(vec![
        Info::ordered(vec![
            ("primary", Info::py(f("pnode"))),
            ("group", Info::s(pgroup)),
        ]),
        Info::ordered(vec![("secondaries", Info::s(secs.join(", ")))]),
    ])
}

fn vnc_console_info(inst: &Value) -> Option<String> {
    let bind = inst
        .get("hv_actual")
        .and_then(|h| h.get("vnc_bind_address"))
        .filter(|v| is_truthy(v))?;
    let bind = py_str(bind);
    let pnode = py_str(field(inst, "pnode"));
    let port = field(inst, "network_port");
    let display = port.as_i64().map(|p| p - 5900).unwrap_or(0);
    let is_ip4 = bind.parse::<std::net::Ipv4Addr>().is_ok();
    let s = if display > 0 && bind == "0.0.0.0" {
        format!("{pnode}:{} (display {display})", py_str(port))
    } else if display > 0 && is_ip4 {
        format!("{bind}:{} (node {pnode}) (display {display})", py_str(port))
    } else {
        format!("{pnode}:{bind}")
    };
    Some(format!("vnc to {s}"))
}

fn format_nic_info(idx: usize, nic: &Value) -> Info {
    let empty = Vec::new();
    let parts = nic.as_array().unwrap_or(&empty);
    let p = |i: usize| parts.get(i).cloned().unwrap_or(Value::Null);
    let network_name = match p(8) {
        v if is_truthy(&v) => v.get("name").cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Info::ordered(vec![
        (&*format!("nic/{idx}"), Info::s("")),
        ("MAC", Info::py(&p(3))),
        ("IP", Info::py(&p(2))),
        ("mode", Info::py(&p(4))),
        ("link", Info::py(&p(5))),
        ("vlan", Info::py(&p(6))),
        ("network", Info::py(&network_name)),
        ("UUID", Info::py(&p(1))),
        ("name", Info::py(&p(0))),
    ])
}

/// Local disk states (Ganeti's `LDS_*`).
const LDS_UNKNOWN: i64 = 3;
const LDS_FAULTY: i64 = 4;

fn block_status(dtype: &str, status: &Value) -> String {
    let Some(parts) = status.as_array().filter(|a| !a.is_empty()) else {
        return "not active".into();
    };
    let p = |i: usize| parts.get(i).cloned().unwrap_or(Value::Null);
    let or_na = |v: Value| {
        if v.is_null() {
            "N/A".to_string()
        } else {
            py_str(&v)
        }
    };
    let mut txt = format!("{} ({}:{})", py_str(&p(0)), or_na(p(1)), or_na(p(2)));
    let ldisk = p(6);
    if dtype == "drbd" {
        let sync = match p(3).as_f64() {
            Some(syncp) => {
                let mut s = format!("*RECOVERING* {syncp:5.2}%,");
                if is_truthy(&p(4)) {
                    s.push_str(&format!(" ETA {}s", py_str(&p(4))));
                } else {
                    s.push_str(" ETA unknown");
                }
                s
            }
            None => "in sync".into(),
        };
        let degr = if is_truthy(&p(5)) { "*DEGRADED*" } else { "ok" };
        let ld = match ldisk.as_i64() {
            Some(LDS_FAULTY) => " *MISSING DISK*",
            Some(LDS_UNKNOWN) => " *UNCERTAIN STATE*",
            _ => "",
        };
        txt.push_str(&format!(" {sync}, status {degr}{ld}"));
    } else if dtype == "plain" && ldisk.as_i64() == Some(LDS_FAULTY) {
        txt.push_str(" *FAILED* (failed drive?)");
    }
    txt
}

fn format_block_dev_info(idx: usize, top_level: bool, dev: &Value) -> Info {
    let f = |k: &str| field(dev, k);
    let dtype = py_str(f("dev_type"));
    let txt = if top_level {
        if f("iv_name").is_null() {
            format!("disk {idx}")
        } else {
            py_str(f("iv_name"))
        }
    } else {
        format!("child {idx}")
    };
    let nice_size = match f("size") {
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            format_unit(n.as_f64().unwrap_or(0.0), Unit::H)
        }
        other => py_str(other),
    };
    let mut data: Vec<(String, Info)> = vec![(txt, Info::s(format!("{dtype}, size {nice_size}")))];
    if top_level {
        if !f("spindles").is_null() {
            data.push(("spindles".into(), Info::py(f("spindles"))));
        }
        data.push(("access mode".into(), Info::py(f("mode"))));
    }
    if !f("logical_id").is_null() {
        if dtype == "drbd" {
            let di = f("drbd_info");
            let g = |k: &str| py_str(field(di, k));
            data.push((
                "nodeA".into(),
                Info::s(format!(
                    "{}, minor={}",
                    g("primary_node"),
                    g("primary_minor")
                )),
            ));
            data.push((
                "nodeB".into(),
                Info::s(format!(
                    "{}, minor={}",
                    g("secondary_node"),
                    g("secondary_minor")
                )),
            ));
            data.push(("port".into(), Info::s(g("port"))));
        } else if let (true, Some([vg, lv])) = (
            dtype == "plain",
            f("logical_id").as_array().map(Vec::as_slice),
        ) {
            data.push((
                "logical_id".into(),
                Info::s(format!("{}/{}", py_str(vg), py_str(lv))),
            ));
        } else {
            data.push(("logical_id".into(), Info::py(f("logical_id"))));
        }
    }
    if is_truthy(f("pstatus")) {
        data.push((
            "on primary".into(),
            Info::s(block_status(&dtype, f("pstatus"))),
        ));
    }
    if is_truthy(f("sstatus")) {
        data.push((
            "on secondary".into(),
            Info::s(block_status(&dtype, f("sstatus"))),
        ));
    }
    data.push(("name".into(), Info::py(f("name"))));
    data.push(("UUID".into(), Info::py(f("uuid"))));
    if let Some(children) = f("children").as_array().filter(|c| !c.is_empty()) {
        data.push((
            "child devices".into(),
            Info::List(
                children
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format_block_dev_info(i, false, c))
                    .collect(),
            ),
        ));
    }
    Info::Ordered(data.into_iter().map(|(k, v)| (k, v, None)).collect())
}
