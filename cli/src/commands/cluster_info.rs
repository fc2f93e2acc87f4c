//! `gnt-cluster info`: the cluster's configuration, laid out as Ganeti's
//! `ShowClusterConfig` does.

use serde_json::{json, Map, Value};

use crate::commands::node::nice_sort;
use crate::ctx::Ctx;
use crate::error::{exit, CliError};
use crate::info::{format_generic_info, format_params_dict_info, Info};
use crate::output;
use crate::pyfmt::py_str;
use crate::timefmt::format_time_value;

/// Ganeti's `_FormatGroupedParams`: nested dicts with values as text.
fn grouped_params(v: &Value) -> Info {
    match v {
        Value::Object(m) => Info::Dict(
            m.iter()
                .map(|(k, v)| {
                    let inner = if v.is_object() {
                        grouped_params(v)
                    } else {
                        Info::py(v)
                    };
                    (k.clone(), inner)
                })
                .collect(),
        ),
        other => Info::py(other),
    }
}

fn comma_join(v: &Value) -> String {
    v.as_array()
        .map(|a| a.iter().map(py_str).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

fn uid_pool(v: &Value) -> String {
    v.as_array()
        .map(|ranges| {
            ranges
                .iter()
                .map(|r| match r.as_array().map(Vec::as_slice) {
                    Some([a, b]) if a == b => py_str(a),
                    Some([a, b]) => format!("{}-{}", py_str(a), py_str(b)),
                    _ => py_str(r),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn policy_info(ipolicy: &Value) -> Info {
    let mut out: Vec<(&str, Info)> = Vec::new();
    let bounds: Vec<Info> = ipolicy
        .get("minmax")
        .and_then(Value::as_array)
        .map(|mm| {
            mm.iter()
                .enumerate()
                .map(|(k, minmax)| {
                    Info::Ordered(
                        ["min", "max"]
                            .iter()
                            .map(|key| {
                                let spec = minmax.get(*key).cloned().unwrap_or(json!({}));
                                (
                                    format!("{key}/{k}"),
                                    format_params_dict_info(&spec, &spec),
                                    None,
                                )
                            })
                            .collect(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.push(("bounds specs", Info::List(bounds)));
    let std = ipolicy.get("std").cloned().unwrap_or(json!({}));
    out.push(("std", format_params_dict_info(&std, &std)));
    out.push((
        "allowed disk templates",
        Info::s(comma_join(
            ipolicy.get("disk-templates").unwrap_or(&Value::Null),
        )),
    ));
    for key in ["vcpu-ratio", "spindle-ratio"] {
        out.push((key, Info::py(ipolicy.get(key).unwrap_or(&Value::Null))));
    }
    Info::ordered(out)
}

fn data_collectors(r: &Value) -> Info {
    let enabled = r.get("enabled_data_collectors").and_then(Value::as_object);
    let interval = r.get("data_collector_interval");
    let mut out = std::collections::BTreeMap::new();
    if let Some(enabled) = enabled {
        for (k, active) in enabled {
            let us = interval
                .and_then(|i| i.get(k))
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            out.insert(
                k.clone(),
                Info::Dict(
                    [
                        ("active".to_string(), Info::py(active)),
                        ("interval".to_string(), Info::s(format!("{:.3}s", us / 1e6))),
                    ]
                    .into_iter()
                    .collect(),
                ),
            );
        }
    }
    Info::Dict(out)
}

pub(super) fn info(ctx: &mut Ctx) -> Result<i32, CliError> {
    let r = ctx.call("QueryClusterInfo", json!([]))?;
    if !r.is_object() {
        return Err(CliError::bad_reply("QueryClusterInfo", r.to_string()));
    }
    let f = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
    let tags = match f("tags").as_array().filter(|t| !t.is_empty()) {
        Some(t) => nice_sort(t.iter().map(py_str).collect()).join(", "),
        None => "(none)".into(),
    };
    let reserved = match f("reserved_lvs").as_array().filter(|t| !t.is_empty()) {
        Some(_) => comma_join(&f("reserved_lvs")),
        None => "(none)".into(),
    };
    let enabled_hv = f("enabled_hypervisors");
    let enabled: Vec<String> = enabled_hv
        .as_array()
        .map(|a| a.iter().map(py_str).collect())
        .unwrap_or_default();
    let hvparams: Map<String, Value> = f("hvparams")
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| enabled.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let arch = f("architecture");
    let arch_text = format!(
        "{} ({})",
        py_str(arch.get(0).unwrap_or(&Value::Null)),
        py_str(arch.get(1).unwrap_or(&Value::Null))
    );
    // Ganeti prints its built-in search paths (not prefixed by the root).
    let search = |kind: &str| {
        [
            "/srv/ganeti",
            "/usr/local/lib/ganeti",
            "/usr/lib/ganeti",
            "/usr/share/ganeti",
        ]
        .iter()
        .map(|d| format!("{d}/{kind}"))
        .collect::<Vec<_>>()
    };
    let os_path = search("os");
    let es_path = search("extstorage");
    let p = |k: &str| Info::py(&f(k));
    let params = Info::ordered(vec![
        ("candidate pool size", p("candidate_pool_size")),
        (
            "maximal number of jobs running simultaneously",
            p("max_running_jobs"),
        ),
        (
            "maximal number of jobs simultaneously tracked by the scheduler",
            p("max_tracked_jobs"),
        ),
        ("mac prefix", p("mac_prefix")),
        ("master netdev", p("master_netdev")),
        ("master netmask", p("master_netmask")),
        (
            "use external master IP address setup script",
            p("use_external_mip_script"),
        ),
        ("lvm volume group", p("volume_group_name")),
        ("lvm reserved volumes", Info::s(reserved)),
        ("drbd usermode helper", p("drbd_usermode_helper")),
        ("file storage path", p("file_storage_dir")),
        ("shared file storage path", p("shared_file_storage_dir")),
        ("gluster storage path", p("gluster_storage_dir")),
        ("maintenance of node health", p("maintain_node_health")),
        ("uid pool", Info::s(uid_pool(&f("uid_pool")))),
        ("default instance allocator", p("default_iallocator")),
        (
            "default instance allocator parameters",
            Info::from_json(&f("default_iallocator_params")),
        ),
        ("primary ip version", p("primary_ip_version")),
        ("preallocation wipe disks", p("prealloc_wipe_disks")),
        ("OS search path", Info::s(os_path.join(", "))),
        (
            "ExtStorage Providers search path",
            Info::s(es_path.join(", ")),
        ),
        (
            "enabled disk templates",
            Info::s(comma_join(&f("enabled_disk_templates"))),
        ),
        ("install image", p("install_image")),
        (
            "instance communication network",
            p("instance_communication_network"),
        ),
        ("zeroing image", p("zeroing_image")),
        (
            "compression tools",
            Info::from_json(&f("compression_tools")),
        ),
        ("enabled user shutdown", p("enabled_user_shutdown")),
        ("modify ssh setup", p("modify_ssh_setup")),
        ("ssh_key_type", p("ssh_key_type")),
        ("ssh_key_bits", p("ssh_key_bits")),
    ]);
    let data = Info::ordered(vec![
        ("Cluster name", p("name")),
        ("Cluster UUID", p("uuid")),
        ("Creation time", Info::s(format_time_value(&f("ctime")))),
        ("Modification time", Info::s(format_time_value(&f("mtime")))),
        ("Master node", p("master")),
        ("Architecture (this node)", Info::s(arch_text)),
        ("Tags", Info::s(tags)),
        ("Default hypervisor", p("default_hypervisor")),
        ("Enabled hypervisors", Info::s(enabled.join(", "))),
        (
            "Hypervisor parameters",
            grouped_params(&Value::Object(hvparams)),
        ),
        (
            "OS-specific hypervisor parameters",
            grouped_params(&f("os_hvp")),
        ),
        ("OS parameters", grouped_params(&f("osparams"))),
        ("Hidden OSes", Info::s(comma_join(&f("hidden_os")))),
        (
            "Blacklisted OSes",
            Info::s(comma_join(&f("blacklisted_os"))),
        ),
        ("Cluster parameters", params),
        ("Default node parameters", grouped_params(&f("ndparams"))),
        (
            "Default instance parameters",
            grouped_params(&f("beparams")),
        ),
        ("Default nic parameters", grouped_params(&f("nicparams"))),
        ("Default disk parameters", grouped_params(&f("diskparams"))),
        (
            "Instance policy - limits for instances",
            policy_info(&f("ipolicy")),
        ),
        ("Data collectors", data_collectors(&r)),
    ]);
    output::out(&format_generic_info(&data));
    Ok(exit::SUCCESS)
}
