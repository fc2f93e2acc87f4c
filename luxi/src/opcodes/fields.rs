//! The fields each Ganeti 3.0 opcode accepts (from Ganeti's opcode definitions),
//! besides the common ones. Used to refuse unknown opcodes and unknown fields.

/// Fields every opcode accepts.
pub const COMMON_FIELDS: &[&str] = &[
    "OP_ID",
    "dry_run",
    "debug_level",
    "priority",
    "depends",
    "comment",
    "reason",
];

/// `(OP_ID, fields)` for every opcode Ganeti 3.0 defines.
pub const OPCODE_FIELDS: &[(&str, &[&str])] = &[
    (
        "OP_CLUSTER_POST_INIT",
        &[],
    ),
    (
        "OP_CLUSTER_DESTROY",
        &[],
    ),
    (
        "OP_CLUSTER_QUERY",
        &[],
    ),
    (
        "OP_CLUSTER_VERIFY",
        &["debug_simulate_errors", "error_codes", "skip_checks", "ignore_errors", "verbose", "group_name", "verify_clutter"],
    ),
    (
        "OP_CLUSTER_VERIFY_CONFIG",
        &["debug_simulate_errors", "error_codes", "ignore_errors", "verbose"],
    ),
    (
        "OP_CLUSTER_VERIFY_GROUP",
        &["group_name", "debug_simulate_errors", "error_codes", "skip_checks", "ignore_errors", "verbose", "verify_clutter"],
    ),
    (
        "OP_CLUSTER_VERIFY_DISKS",
        &["group_name", "is_strict"],
    ),
    (
        "OP_GROUP_VERIFY_DISKS",
        &["group_name", "is_strict"],
    ),
    (
        "OP_CLUSTER_REPAIR_DISK_SIZES",
        &["instances"],
    ),
    (
        "OP_CLUSTER_CONFIG_QUERY",
        &["output_fields"],
    ),
    (
        "OP_CLUSTER_RENAME",
        &["name"],
    ),
    (
        "OP_CLUSTER_SET_PARAMS",
        &["force", "hv_state", "disk_state", "vg_name", "enabled_hypervisors", "hvparams", "beparams", "os_hvp", "osparams", "osparams_private_cluster", "diskparams", "candidate_pool_size", "max_running_jobs", "max_tracked_jobs", "uid_pool", "add_uids", "remove_uids", "maintain_node_health", "prealloc_wipe_disks", "nicparams", "ndparams", "ipolicy", "drbd_helper", "default_iallocator", "default_iallocator_params", "mac_prefix", "master_netdev", "master_netmask", "reserved_lvs", "hidden_os", "blacklisted_os", "use_external_mip_script", "enabled_disk_templates", "modify_etc_hosts", "file_storage_dir", "shared_file_storage_dir", "gluster_storage_dir", "install_image", "instance_communication_network", "zeroing_image", "compression_tools", "enabled_user_shutdown", "enabled_data_collectors", "data_collector_interval"],
    ),
    (
        "OP_CLUSTER_REDIST_CONF",
        &[],
    ),
    (
        "OP_CLUSTER_ACTIVATE_MASTER_IP",
        &[],
    ),
    (
        "OP_CLUSTER_DEACTIVATE_MASTER_IP",
        &[],
    ),
    (
        "OP_CLUSTER_RENEW_CRYPTO",
        &["node_certificates", "renew_ssh_keys", "ssh_key_type", "ssh_key_bits", "verbose", "debug"],
    ),
    (
        "OP_QUERY",
        &["what", "use_locking", "fields", "qfilter"],
    ),
    (
        "OP_QUERY_FIELDS",
        &["what", "fields"],
    ),
    (
        "OP_OOB_COMMAND",
        &["node_names", "node_uuids", "command", "timeout", "ignore_status", "power_delay"],
    ),
    (
        "OP_RESTRICTED_COMMAND",
        &["use_locking", "nodes", "node_uuids", "command"],
    ),
    (
        "OP_NODE_REMOVE",
        &["node_name", "node_uuid"],
    ),
    (
        "OP_NODE_ADD",
        &["node_name", "hv_state", "disk_state", "primary_ip", "secondary_ip", "readd", "group", "master_capable", "vm_capable", "ndparams", "node_setup"],
    ),
    (
        "OP_NODE_QUERYVOLS",
        &["output_fields", "nodes"],
    ),
    (
        "OP_NODE_QUERY_STORAGE",
        &["output_fields", "storage_type", "nodes", "name"],
    ),
    (
        "OP_NODE_MODIFY_STORAGE",
        &["node_name", "node_uuid", "storage_type", "name", "changes"],
    ),
    (
        "OP_REPAIR_NODE_STORAGE",
        &["node_name", "node_uuid", "storage_type", "name", "ignore_consistency"],
    ),
    (
        "OP_NODE_SET_PARAMS",
        &["node_name", "node_uuid", "force", "hv_state", "disk_state", "master_candidate", "offline", "drained", "auto_promote", "master_capable", "vm_capable", "secondary_ip", "ndparams", "powered"],
    ),
    (
        "OP_NODE_POWERCYCLE",
        &["node_name", "node_uuid", "force"],
    ),
    (
        "OP_NODE_MIGRATE",
        &["node_name", "node_uuid", "mode", "live", "target_node", "target_node_uuid", "allow_runtime_changes", "ignore_ipolicy", "iallocator"],
    ),
    (
        "OP_NODE_EVACUATE",
        &["early_release", "node_name", "node_uuid", "remote_node", "remote_node_uuid", "iallocator", "mode", "ignore_soft_errors"],
    ),
    (
        "OP_INSTANCE_CREATE",
        &["instance_name", "force_variant", "wait_for_sync", "name_check", "ignore_ipolicy", "opportunistic_locking", "beparams", "disks", "disk_template", "group_name", "file_driver", "file_storage_dir", "hvparams", "hypervisor", "iallocator", "identify_defaults", "ip_check", "conflicts_check", "mode", "nics", "no_install", "osparams", "osparams_private", "osparams_secret", "os_type", "pnode", "pnode_uuid", "snode", "snode_uuid", "source_handshake", "source_instance_name", "source_shutdown_timeout", "source_x509_ca", "src_node", "src_node_uuid", "src_path", "compress", "start", "forthcoming", "commit", "tags", "instance_communication", "helper_startup_timeout", "helper_shutdown_timeout"],
    ),
    (
        "OP_INSTANCE_MULTI_ALLOC",
        &["opportunistic_locking", "iallocator", "instances"],
    ),
    (
        "OP_INSTANCE_REINSTALL",
        &["instance_name", "instance_uuid", "force_variant", "os_type", "osparams", "osparams_private", "osparams_secret"],
    ),
    (
        "OP_INSTANCE_REMOVE",
        &["instance_name", "instance_uuid", "shutdown_timeout", "ignore_failures"],
    ),
    (
        "OP_INSTANCE_RENAME",
        &["instance_name", "instance_uuid", "new_name", "name_check", "ip_check"],
    ),
    (
        "OP_INSTANCE_STARTUP",
        &["instance_name", "instance_uuid", "force", "ignore_offline_nodes", "hvparams", "beparams", "no_remember", "startup_paused", "shutdown_timeout"],
    ),
    (
        "OP_INSTANCE_SHUTDOWN",
        &["instance_name", "instance_uuid", "force", "ignore_offline_nodes", "shutdown_timeout", "no_remember", "admin_state_source"],
    ),
    (
        "OP_INSTANCE_REBOOT",
        &["instance_name", "instance_uuid", "shutdown_timeout", "ignore_secondaries", "reboot_type"],
    ),
    (
        "OP_INSTANCE_REPLACE_DISKS",
        &["instance_name", "instance_uuid", "early_release", "ignore_ipolicy", "mode", "disks", "remote_node", "remote_node_uuid", "iallocator"],
    ),
    (
        "OP_INSTANCE_FAILOVER",
        &["instance_name", "instance_uuid", "shutdown_timeout", "ignore_consistency", "target_node", "target_node_uuid", "ignore_ipolicy", "cleanup", "iallocator"],
    ),
    (
        "OP_INSTANCE_MIGRATE",
        &["instance_name", "instance_uuid", "mode", "live", "target_node", "target_node_uuid", "allow_runtime_changes", "ignore_ipolicy", "cleanup", "iallocator", "allow_failover", "ignore_hvversions"],
    ),
    (
        "OP_INSTANCE_MOVE",
        &["instance_name", "instance_uuid", "shutdown_timeout", "ignore_ipolicy", "target_node", "target_node_uuid", "compress", "ignore_consistency"],
    ),
    (
        "OP_INSTANCE_CONSOLE",
        &["instance_name", "instance_uuid"],
    ),
    (
        "OP_INSTANCE_ACTIVATE_DISKS",
        &["instance_name", "instance_uuid", "ignore_size", "wait_for_sync"],
    ),
    (
        "OP_INSTANCE_DEACTIVATE_DISKS",
        &["instance_name", "instance_uuid", "force"],
    ),
    (
        "OP_INSTANCE_RECREATE_DISKS",
        &["instance_name", "instance_uuid", "disks", "nodes", "node_uuids", "iallocator"],
    ),
    (
        "OP_INSTANCE_QUERY_DATA",
        &["use_locking", "instances", "static"],
    ),
    (
        "OP_INSTANCE_SET_PARAMS",
        &["instance_name", "instance_uuid", "force", "force_variant", "ignore_ipolicy", "nics", "disks", "beparams", "runtime_mem", "hvparams", "disk_template", "ext_params", "file_driver", "file_storage_dir", "pnode", "pnode_uuid", "remote_node", "remote_node_uuid", "iallocator", "os_name", "osparams", "osparams_private", "wait_for_sync", "offline", "conflicts_check", "hotplug", "instance_communication"],
    ),
    (
        "OP_INSTANCE_GROW_DISK",
        &["instance_name", "instance_uuid", "wait_for_sync", "disk", "amount", "absolute", "ignore_ipolicy"],
    ),
    (
        "OP_INSTANCE_CHANGE_GROUP",
        &["instance_name", "instance_uuid", "early_release", "iallocator", "target_groups"],
    ),
    (
        "OP_GROUP_ADD",
        &["group_name", "alloc_policy", "ndparams", "diskparams", "hv_state", "disk_state", "ipolicy"],
    ),
    (
        "OP_GROUP_ASSIGN_NODES",
        &["group_name", "force", "nodes", "node_uuids"],
    ),
    (
        "OP_GROUP_SET_PARAMS",
        &["group_name", "alloc_policy", "ndparams", "diskparams", "hv_state", "disk_state", "ipolicy"],
    ),
    (
        "OP_GROUP_REMOVE",
        &["group_name"],
    ),
    (
        "OP_GROUP_RENAME",
        &["group_name", "new_name"],
    ),
    (
        "OP_GROUP_EVACUATE",
        &["group_name", "early_release", "iallocator", "target_groups", "sequential", "force_failover"],
    ),
    (
        "OP_OS_DIAGNOSE",
        &["output_fields", "names"],
    ),
    (
        "OP_EXT_STORAGE_DIAGNOSE",
        &["output_fields", "names"],
    ),
    (
        "OP_BACKUP_PREPARE",
        &["instance_name", "instance_uuid", "mode"],
    ),
    (
        "OP_BACKUP_EXPORT",
        &["instance_name", "instance_uuid", "compress", "shutdown_timeout", "target_node", "target_node_uuid", "shutdown", "remove_instance", "ignore_remove_failures", "mode", "x509_key_name", "destination_x509_ca", "zero_free_space", "zeroing_timeout_fixed", "zeroing_timeout_per_mib", "long_sleep"],
    ),
    (
        "OP_BACKUP_REMOVE",
        &["instance_name", "instance_uuid"],
    ),
    (
        "OP_TAGS_GET",
        &["kind", "use_locking", "name"],
    ),
    (
        "OP_TAGS_SEARCH",
        &["pattern"],
    ),
    (
        "OP_TAGS_SET",
        &["kind", "tags", "name"],
    ),
    (
        "OP_TAGS_DEL",
        &["kind", "tags", "name"],
    ),
    (
        "OP_TEST_DELAY",
        &["duration", "on_master", "on_nodes", "on_node_uuids", "repeat", "interruptible", "no_locks"],
    ),
    (
        "OP_TEST_ALLOCATOR",
        &["direction", "mode", "name", "nics", "disks", "hypervisor", "iallocator", "tags", "memory", "vcpus", "os", "disk_template", "instances", "evac_mode", "target_groups", "spindle_use", "count", "group_name"],
    ),
    (
        "OP_TEST_JQUEUE",
        &["notify_waitlock", "notify_exec", "log_messages", "fail"],
    ),
    (
        "OP_TEST_OS_PARAMS",
        &["osparams_secret"],
    ),
    (
        "OP_TEST_DUMMY",
        &["result", "messages", "fail", "submit_jobs"],
    ),
    (
        "OP_NETWORK_ADD",
        &["network_name", "network", "gateway", "network6", "gateway6", "mac_prefix", "add_reserved_ips", "conflicts_check", "tags"],
    ),
    (
        "OP_NETWORK_REMOVE",
        &["network_name", "force"],
    ),
    (
        "OP_NETWORK_RENAME",
        &["network_name", "new_name"],
    ),
    (
        "OP_NETWORK_SET_PARAMS",
        &["network_name", "gateway", "network6", "gateway6", "mac_prefix", "add_reserved_ips", "remove_reserved_ips"],
    ),
    (
        "OP_NETWORK_CONNECT",
        &["group_name", "network_name", "network_mode", "network_link", "network_vlan", "conflicts_check"],
    ),
    (
        "OP_NETWORK_DISCONNECT",
        &["group_name", "network_name"],
    ),
];
