//! Opcodes as Ganeti's Python CLI serialises them: every parameter of the
//! opcode is present, with Ganeti's default where the command leaves it
//! unset (`OpCode.__getstate__` sends all slots), plus `OP_ID` and the
//! generic fields (`comment`, `debug_level`, `depends`, `dry_run`,
//! `priority`, `reason`).

use serde_json::{json, Map, Value};

/// One opcode being built.
#[derive(Debug, Clone, PartialEq)]
pub struct OpCode(pub Map<String, Value>);

impl OpCode {
    /// The opcode `op_id` with all its parameters at Ganeti's defaults.
    pub fn new(op_id: &str) -> OpCode {
        let mut m = Map::new();
        m.insert("OP_ID".into(), json!(op_id));
        for (k, v) in [
            ("comment", Value::Null),
            ("debug_level", Value::Null),
            ("depends", Value::Null),
            ("dry_run", Value::Null),
            ("priority", json!(0)),
            ("reason", json!([])),
        ] {
            m.insert(k.into(), v);
        }
        for (k, v) in defaults(op_id) {
            m.insert(k.to_string(), v);
        }
        OpCode(m)
    }

    /// Sets a parameter.
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> OpCode {
        self.0.insert(key.to_string(), value.into());
        self
    }

    /// Sets a parameter when a value is given; leaves the default otherwise.
    pub fn set_opt<T: Into<Value>>(self, key: &str, value: Option<T>) -> OpCode {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    pub fn op_id(&self) -> &str {
        self.0.get("OP_ID").and_then(Value::as_str).unwrap_or("")
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// The parameters of each opcode the CLI sends, with Ganeti 3.0's defaults
/// (`null` where the parameter is optional without default).
fn defaults(op_id: &str) -> Vec<(&'static str, Value)> {
    let n = Value::Null;
    let empty = || json!({});
    match op_id {
        "OP_INSTANCE_CREATE" => vec![
            ("beparams", empty()),
            ("commit", json!(false)),
            ("compress", json!("none")),
            ("conflicts_check", json!(true)),
            ("disk_template", n.clone()),
            ("disks", n.clone()),
            ("file_driver", n.clone()),
            ("file_storage_dir", n.clone()),
            ("force_variant", json!(false)),
            ("forthcoming", json!(false)),
            ("group_name", n.clone()),
            ("helper_shutdown_timeout", n.clone()),
            ("helper_startup_timeout", n.clone()),
            ("hvparams", empty()),
            ("hypervisor", n.clone()),
            ("iallocator", n.clone()),
            ("identify_defaults", json!(false)),
            ("ignore_ipolicy", json!(false)),
            ("instance_communication", json!(false)),
            ("instance_name", n.clone()),
            ("ip_check", json!(true)),
            ("mode", n.clone()),
            ("name_check", json!(true)),
            ("nics", n.clone()),
            ("no_install", n.clone()),
            ("opportunistic_locking", json!(false)),
            ("os_type", n.clone()),
            ("osparams", empty()),
            ("osparams_private", n.clone()),
            ("osparams_secret", n.clone()),
            ("pnode", n.clone()),
            ("pnode_uuid", n.clone()),
            ("snode", n.clone()),
            ("snode_uuid", n.clone()),
            ("source_handshake", n.clone()),
            ("source_instance_name", n.clone()),
            ("source_shutdown_timeout", json!(120)),
            ("source_x509_ca", n.clone()),
            ("src_node", n.clone()),
            ("src_node_uuid", n.clone()),
            ("src_path", n.clone()),
            ("start", json!(true)),
            ("tags", json!([])),
            ("wait_for_sync", json!(true)),
        ],
        "OP_INSTANCE_REMOVE" => vec![
            ("ignore_failures", json!(false)),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("shutdown_timeout", json!(120)),
        ],
        "OP_INSTANCE_STARTUP" => vec![
            ("beparams", empty()),
            ("force", json!(false)),
            ("hvparams", empty()),
            ("ignore_offline_nodes", json!(false)),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("no_remember", json!(false)),
            ("shutdown_timeout", json!(120)),
            ("startup_paused", json!(false)),
        ],
        "OP_INSTANCE_SHUTDOWN" => vec![
            ("admin_state_source", n.clone()),
            ("force", json!(false)),
            ("ignore_offline_nodes", json!(false)),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("no_remember", json!(false)),
            ("timeout", json!(120)),
        ],
        "OP_INSTANCE_REBOOT" => vec![
            ("ignore_secondaries", json!(false)),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("reboot_type", n.clone()),
            ("shutdown_timeout", json!(120)),
        ],
        "OP_INSTANCE_RENAME" => vec![
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("ip_check", json!(true)),
            ("name_check", json!(true)),
            ("new_name", n.clone()),
        ],
        "OP_INSTANCE_SET_PARAMS" => vec![
            ("beparams", empty()),
            ("conflicts_check", json!(true)),
            ("disk_template", n.clone()),
            ("disks", json!([])),
            ("ext_params", empty()),
            ("file_driver", n.clone()),
            ("file_storage_dir", n.clone()),
            ("force", json!(false)),
            ("force_variant", json!(false)),
            ("hotplug", json!(false)),
            ("hotplug_if_possible", json!(false)),
            ("hvparams", empty()),
            ("iallocator", n.clone()),
            ("ignore_ipolicy", json!(false)),
            ("instance_communication", n.clone()),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("nics", json!([])),
            ("offline", n.clone()),
            ("os_name", n.clone()),
            ("osparams", empty()),
            ("osparams_private", n.clone()),
            ("pnode", n.clone()),
            ("pnode_uuid", n.clone()),
            ("remote_node", n.clone()),
            ("remote_node_uuid", n.clone()),
            ("runtime_mem", n.clone()),
            ("wait_for_sync", json!(true)),
        ],
        "OP_INSTANCE_REINSTALL" => vec![
            ("force_variant", json!(false)),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("os_type", n.clone()),
            ("osparams", n.clone()),
            ("osparams_private", n.clone()),
            ("osparams_secret", n.clone()),
        ],
        "OP_INSTANCE_MIGRATE" => vec![
            ("allow_failover", json!(false)),
            ("allow_runtime_changes", json!(true)),
            ("cleanup", json!(false)),
            ("iallocator", n.clone()),
            ("ignore_hvversions", json!(false)),
            ("ignore_ipolicy", json!(false)),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("live", n.clone()),
            ("mode", n.clone()),
            ("target_node", n.clone()),
            ("target_node_uuid", n.clone()),
        ],
        "OP_INSTANCE_FAILOVER" => vec![
            ("cleanup", json!(false)),
            ("iallocator", n.clone()),
            ("ignore_consistency", json!(false)),
            ("ignore_ipolicy", json!(false)),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("shutdown_timeout", json!(120)),
            ("target_node", n.clone()),
            ("target_node_uuid", n.clone()),
        ],
        "OP_INSTANCE_QUERY_DATA" => vec![
            ("instances", json!([])),
            ("static", json!(false)),
            ("use_locking", json!(false)),
        ],
        "OP_INSTANCE_ACTIVATE_DISKS" => vec![
            ("ignore_size", json!(false)),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("wait_for_sync", json!(false)),
        ],
        "OP_INSTANCE_DEACTIVATE_DISKS" => vec![
            ("force", json!(false)),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
        ],
        "OP_INSTANCE_GROW_DISK" => vec![
            ("absolute", json!(false)),
            ("amount", n.clone()),
            ("disk", n.clone()),
            ("ignore_ipolicy", json!(false)),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("wait_for_sync", json!(true)),
        ],
        "OP_INSTANCE_MOVE" => vec![
            ("compress", json!("none")),
            ("ignore_consistency", json!(false)),
            ("ignore_ipolicy", json!(false)),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("shutdown_timeout", json!(120)),
            ("target_node", n.clone()),
            ("target_node_uuid", n.clone()),
        ],
        "OP_TAGS_SEARCH" => vec![("pattern", n.clone())],
        "OP_INSTANCE_MULTI_ALLOC" => vec![
            ("iallocator", n.clone()),
            ("instances", json!([])),
            ("opportunistic_locking", json!(false)),
        ],
        "OP_NODE_QUERYVOLS" => vec![("nodes", json!([])), ("output_fields", n.clone())],
        "OP_NODE_QUERY_STORAGE" => vec![
            ("name", n.clone()),
            ("nodes", json!([])),
            ("output_fields", n.clone()),
            ("storage_type", n.clone()),
        ],
        "OP_NODE_POWERCYCLE" => vec![
            ("force", json!(false)),
            ("node_name", n.clone()),
            ("node_uuid", n.clone()),
        ],
        "OP_NODE_MODIFY_STORAGE" => vec![
            ("changes", n.clone()),
            ("name", n.clone()),
            ("node_name", n.clone()),
            ("node_uuid", n.clone()),
            ("storage_type", n.clone()),
        ],
        "OP_REPAIR_NODE_STORAGE" => vec![
            ("ignore_consistency", json!(false)),
            ("name", n.clone()),
            ("node_name", n.clone()),
            ("node_uuid", n.clone()),
            ("storage_type", n.clone()),
        ],
        "OP_CLUSTER_REPAIR_DISK_SIZES" => vec![("instances", json!([]))],
        "OP_INSTANCE_REPLACE_DISKS" => vec![
            ("disks", json!([])),
            ("early_release", json!(false)),
            ("iallocator", n.clone()),
            ("ignore_ipolicy", json!(false)),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("mode", n.clone()),
            ("remote_node", n.clone()),
            ("remote_node_uuid", n.clone()),
        ],
        "OP_INSTANCE_RECREATE_DISKS" => vec![
            ("disks", json!([])),
            ("iallocator", n.clone()),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("node_uuids", n.clone()),
            ("nodes", json!([])),
        ],
        "OP_INSTANCE_CHANGE_GROUP" => vec![
            ("early_release", json!(false)),
            ("iallocator", n.clone()),
            ("instance_name", n.clone()),
            ("instance_uuid", n.clone()),
            ("target_groups", n.clone()),
        ],
        "OP_NODE_MIGRATE" => vec![
            ("allow_runtime_changes", json!(true)),
            ("iallocator", n.clone()),
            ("ignore_ipolicy", json!(false)),
            ("live", n.clone()),
            ("mode", n.clone()),
            ("node_name", n.clone()),
            ("node_uuid", n.clone()),
            ("target_node", n.clone()),
            ("target_node_uuid", n.clone()),
        ],
        "OP_NODE_EVACUATE" => vec![
            ("early_release", json!(false)),
            ("iallocator", n.clone()),
            ("ignore_soft_errors", n.clone()),
            ("mode", n.clone()),
            ("node_name", n.clone()),
            ("node_uuid", n.clone()),
            ("remote_node", n.clone()),
            ("remote_node_uuid", n.clone()),
        ],
        "OP_NODE_ADD" => vec![
            ("disk_state", n.clone()),
            ("group", n.clone()),
            ("hv_state", n.clone()),
            ("master_capable", n.clone()),
            ("ndparams", n.clone()),
            ("node_name", n.clone()),
            ("node_setup", json!(false)),
            ("primary_ip", n.clone()),
            ("readd", json!(false)),
            ("secondary_ip", n.clone()),
            ("vm_capable", n.clone()),
        ],
        "OP_NODE_REMOVE" => vec![("node_name", n.clone()), ("node_uuid", n.clone())],
        "OP_NODE_SET_PARAMS" => vec![
            ("auto_promote", json!(false)),
            ("disk_state", n.clone()),
            ("drained", n.clone()),
            ("force", json!(false)),
            ("hv_state", n.clone()),
            ("master_candidate", n.clone()),
            ("master_capable", n.clone()),
            ("ndparams", n.clone()),
            ("node_name", n.clone()),
            ("node_uuid", n.clone()),
            ("offline", n.clone()),
            ("powered", n.clone()),
            ("secondary_ip", n.clone()),
            ("vm_capable", n.clone()),
        ],
        "OP_GROUP_ADD" => vec![
            ("alloc_policy", n.clone()),
            ("disk_state", n.clone()),
            ("diskparams", n.clone()),
            ("group_name", n.clone()),
            ("hv_state", n.clone()),
            ("ipolicy", n.clone()),
            ("ndparams", n.clone()),
        ],
        "OP_GROUP_REMOVE" => vec![("group_name", n.clone())],
        "OP_GROUP_SET_PARAMS" => vec![
            ("alloc_policy", n.clone()),
            ("disk_state", n.clone()),
            ("diskparams", n.clone()),
            ("group_name", n.clone()),
            ("hv_state", n.clone()),
            ("ipolicy", n.clone()),
            ("ndparams", n.clone()),
        ],
        "OP_GROUP_EVACUATE" => vec![
            ("early_release", json!(false)),
            ("force_failover", json!(false)),
            ("group_name", n.clone()),
            ("iallocator", n.clone()),
            ("sequential", json!(false)),
            ("target_groups", n.clone()),
        ],
        "OP_GROUP_RENAME" => vec![("group_name", n.clone()), ("new_name", n.clone())],
        "OP_GROUP_ASSIGN_NODES" => vec![
            ("force", json!(false)),
            ("group_name", n.clone()),
            ("node_uuids", n.clone()),
            ("nodes", n.clone()),
        ],
        "OP_CLUSTER_VERIFY" => vec![
            ("debug_simulate_errors", json!(false)),
            ("error_codes", json!(false)),
            ("group_name", n.clone()),
            ("ignore_errors", json!([])),
            ("skip_checks", json!([])),
            ("verbose", json!(false)),
            ("verify_clutter", json!(false)),
        ],
        "OP_CLUSTER_VERIFY_DISKS" => vec![("group_name", n.clone())],
        "OP_CLUSTER_SET_PARAMS" => [
            "add_uids",
            "beparams",
            "blacklisted_os",
            "candidate_pool_size",
            "compression_tools",
            "data_collector_interval",
            "default_iallocator",
            "default_iallocator_params",
            "disk_state",
            "diskparams",
            "drbd_helper",
            "enabled_data_collectors",
            "enabled_disk_templates",
            "enabled_hypervisors",
            "enabled_user_shutdown",
            "file_storage_dir",
            "gluster_storage_dir",
            "hidden_os",
            "hv_state",
            "hvparams",
            "install_image",
            "instance_communication_network",
            "ipolicy",
            "mac_prefix",
            "maintain_node_health",
            "master_netdev",
            "master_netmask",
            "max_running_jobs",
            "max_tracked_jobs",
            "modify_etc_hosts",
            "ndparams",
            "nicparams",
            "os_hvp",
            "osparams",
            "osparams_private_cluster",
            "prealloc_wipe_disks",
            "remove_uids",
            "reserved_lvs",
            "shared_file_storage_dir",
            "uid_pool",
            "use_external_mip_script",
            "vg_name",
            "zeroing_image",
        ]
        .into_iter()
        .map(|k| (k, n.clone()))
        .chain([("force", json!(false))])
        .collect(),
        "OP_TAGS_SET" | "OP_TAGS_DEL" => vec![
            ("kind", n.clone()),
            ("name", n.clone()),
            ("tags", n.clone()),
        ],
        "OP_OS_DIAGNOSE" => vec![("names", json!([])), ("output_fields", n.clone())],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_has_ganeti_defaults() {
        // As Ganeti 3.0's OpInstanceStartup(instance_name='x').__getstate__().
        let expected = json!({"OP_ID": "OP_INSTANCE_STARTUP", "beparams": {}, "comment": null,
            "debug_level": null, "depends": null, "dry_run": null, "force": false,
            "hvparams": {}, "ignore_offline_nodes": false, "instance_name": "x",
            "instance_uuid": null, "no_remember": false, "priority": 0, "reason": [],
            "shutdown_timeout": 120, "startup_paused": false});
        let op = OpCode::new("OP_INSTANCE_STARTUP").set("instance_name", "x");
        assert_eq!(op.into_value(), expected);
    }

    #[test]
    fn set_opt_keeps_default_when_absent() {
        let op = OpCode::new("OP_NODE_SET_PARAMS").set_opt("offline", None::<bool>);
        assert_eq!(op.0["offline"], Value::Null);
        let op = op.set_opt("offline", Some(true));
        assert_eq!(op.0["offline"], json!(true));
    }
}
