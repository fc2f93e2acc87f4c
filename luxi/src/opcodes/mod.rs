//! Opcodes: the operations a job runs, as Ganeti 3.0 spells them on the wire
//! (`{"OP_ID": "OP_INSTANCE_STARTUP", "instance_name": ..., ...}`), parsed
//! into typed values.
//!
//! Parsing refuses an unknown `OP_ID`, a field the opcode does not have in
//! Ganeti 3.0, a field of the wrong type, and a field that Ganeti has but
//! ganeti-rs does not act on yet when it is set to anything but its default
//! (so that a request is never silently half-honoured).

mod common;
mod introspect;
mod table;

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ErrorCode, GanetiError};
pub use common::{
    Common, Dependency, FinalStatus, JobRef, PRIORITY_DEFAULT, PRIORITY_HIGHEST, PRIORITY_LOWEST,
};
pub use table::{COMMON_FIELDS, OPCODES};

/// A parameter dictionary.
pub type Params = BTreeMap<String, Value>;

/// A parameter's default in Ganeti 3.0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dflt {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'static str),
    /// An empty list.
    List,
    /// An empty dict.
    Dict,
}

impl Dflt {
    pub fn to_value(self) -> Value {
        match self {
            Dflt::Null => Value::Null,
            Dflt::Bool(b) => Value::Bool(b),
            Dflt::Int(i) => Value::from(i),
            Dflt::Float(f) => Value::from(f),
            Dflt::Str(s) => Value::from(s),
            Dflt::List => Value::Array(Vec::new()),
            Dflt::Dict => Value::Object(Map::new()),
        }
    }
}

/// The parameters of a Ganeti 3.0 opcode (besides the common ones) with
/// their defaults; `None` for an unknown `OP_ID`.
pub fn opcode_params(op_id: &str) -> Option<&'static [(&'static str, Dflt)]> {
    OPCODES
        .iter()
        .find(|(id, _)| *id == op_id)
        .map(|(_, params)| *params)
}

/// Whether `name` is one of the fields every opcode carries (`OP_ID`
/// included).
pub fn is_common_field(name: &str) -> bool {
    name == "OP_ID" || COMMON_FIELDS.iter().any(|(f, _)| *f == name)
}

/// The dict of opcode `op_id` with every parameter, common ones included,
/// at Ganeti's default: what Ganeti's Python tools send for the parameters
/// a command leaves unset. `None` for an unknown `OP_ID`.
pub fn with_defaults(op_id: &str) -> Option<Map<String, Value>> {
    let params = opcode_params(op_id)?;
    let mut m = Map::new();
    m.insert("OP_ID".into(), Value::from(op_id));
    for (k, d) in COMMON_FIELDS.iter().chain(params) {
        m.insert((*k).to_string(), d.to_value());
    }
    Some(m)
}

fn default_true() -> bool {
    true
}

fn default_shutdown_timeout() -> u64 {
    120
}

/// `OP_TEST_DELAY`: sleeps on the master and/or nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestDelay {
    pub duration: f64,
    #[serde(default = "default_true")]
    pub on_master: bool,
    #[serde(default)]
    pub on_nodes: Vec<String>,
    #[serde(default)]
    pub on_node_uuids: Option<Vec<String>>,
    #[serde(default)]
    pub repeat: u64,
    #[serde(default)]
    pub interruptible: bool,
    #[serde(default = "default_true")]
    pub no_locks: bool,
}

/// `OP_CLUSTER_VERIFY`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterVerify {
    #[serde(default)]
    pub debug_simulate_errors: bool,
    #[serde(default)]
    pub error_codes: bool,
    #[serde(default)]
    pub skip_checks: Vec<String>,
    #[serde(default)]
    pub ignore_errors: Vec<String>,
    #[serde(default)]
    pub verbose: bool,
    #[serde(default)]
    pub group_name: Option<String>,
    #[serde(default)]
    pub verify_clutter: bool,
}

/// `OP_CLUSTER_VERIFY_CONFIG`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterVerifyConfig {
    #[serde(default)]
    pub debug_simulate_errors: bool,
    #[serde(default)]
    pub error_codes: bool,
    #[serde(default)]
    pub ignore_errors: Vec<String>,
    #[serde(default)]
    pub verbose: bool,
}

/// `OP_CLUSTER_VERIFY_GROUP`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterVerifyGroup {
    pub group_name: String,
    #[serde(default)]
    pub debug_simulate_errors: bool,
    #[serde(default)]
    pub error_codes: bool,
    #[serde(default)]
    pub skip_checks: Vec<String>,
    #[serde(default)]
    pub ignore_errors: Vec<String>,
    #[serde(default)]
    pub verbose: bool,
    #[serde(default)]
    pub verify_clutter: bool,
}

/// `OP_CLUSTER_VERIFY_DISKS`: one `OP_GROUP_VERIFY_DISKS` job per group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterVerifyDisks {
    #[serde(default)]
    pub group_name: Option<String>,
}

/// `OP_CLUSTER_REPAIR_DISK_SIZES`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterRepairDiskSizes {
    /// Instance names; empty: every instance.
    #[serde(default)]
    pub instances: Vec<String>,
}

/// `OP_GROUP_VERIFY_DISKS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupVerifyDisks {
    pub group_name: String,
}

/// `OP_CLUSTER_SET_PARAMS` (the parameters ganeti-rs acts on).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSetParams {
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub hvparams: Option<BTreeMap<String, Params>>,
    #[serde(default)]
    pub beparams: Option<Params>,
    #[serde(default)]
    pub nicparams: Option<Params>,
    #[serde(default)]
    pub ndparams: Option<Params>,
    #[serde(default)]
    pub candidate_pool_size: Option<u32>,
    #[serde(default)]
    pub enabled_hypervisors: Option<Vec<String>>,
    #[serde(default)]
    pub enabled_disk_templates: Option<Vec<String>>,
    #[serde(default)]
    pub default_iallocator: Option<String>,
    #[serde(default)]
    pub maintain_node_health: Option<bool>,
    #[serde(default)]
    pub max_running_jobs: Option<u32>,
    #[serde(default)]
    pub mac_prefix: Option<String>,
    #[serde(default)]
    pub file_storage_dir: Option<String>,
    #[serde(default)]
    pub shared_file_storage_dir: Option<String>,
    /// The volume group; empty to have none.
    #[serde(default)]
    pub vg_name: Option<String>,
    #[serde(default)]
    pub reserved_lvs: Option<Vec<String>>,
    /// Changes to the cluster's instance policy: `disk-templates`,
    /// `vcpu-ratio` and `spindle-ratio` (the specs are refused by name).
    #[serde(default)]
    pub ipolicy: Option<Params>,
}

/// `OP_NODE_ADD`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeAdd {
    pub node_name: String,
    #[serde(default)]
    pub primary_ip: Option<String>,
    #[serde(default)]
    pub secondary_ip: Option<String>,
    #[serde(default)]
    pub readd: bool,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub master_capable: Option<bool>,
    #[serde(default)]
    pub vm_capable: Option<bool>,
    #[serde(default)]
    pub ndparams: Option<Params>,
    #[serde(default)]
    pub node_setup: bool,
}

/// `OP_NODE_REMOVE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeRemove {
    pub node_name: String,
    #[serde(default)]
    pub node_uuid: Option<String>,
}

/// `OP_NODE_MIGRATE`: one migration job per primary instance of the node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeMigrate {
    pub node_name: String,
    #[serde(default)]
    pub node_uuid: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub live: Option<bool>,
    #[serde(default)]
    pub target_node: Option<String>,
    #[serde(default)]
    pub target_node_uuid: Option<String>,
    #[serde(default = "default_true")]
    pub allow_runtime_changes: bool,
    #[serde(default)]
    pub ignore_ipolicy: bool,
    #[serde(default)]
    pub iallocator: Option<String>,
}

/// `OP_NODE_QUERYVOLS`: the logical volumes of nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeQueryvols {
    pub output_fields: Vec<String>,
    #[serde(default)]
    pub nodes: Vec<String>,
}

/// `OP_NODE_QUERY_STORAGE`: the storage units of nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeQueryStorage {
    pub output_fields: Vec<String>,
    /// The cluster's default storage type when absent.
    #[serde(default)]
    pub storage_type: Option<String>,
    #[serde(default)]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `OP_NODE_MODIFY_STORAGE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeModifyStorage {
    pub node_name: String,
    #[serde(default)]
    pub node_uuid: Option<String>,
    pub storage_type: String,
    pub name: String,
    pub changes: Params,
}

/// `OP_REPAIR_NODE_STORAGE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepairNodeStorage {
    pub node_name: String,
    #[serde(default)]
    pub node_uuid: Option<String>,
    pub storage_type: String,
    pub name: String,
    #[serde(default)]
    pub ignore_consistency: bool,
}

/// `OP_NODE_EVACUATE`: moves instances off a node, in jobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeEvacuate {
    pub node_name: String,
    #[serde(default)]
    pub node_uuid: Option<String>,
    #[serde(default)]
    pub early_release: bool,
    #[serde(default)]
    pub remote_node: Option<String>,
    #[serde(default)]
    pub remote_node_uuid: Option<String>,
    #[serde(default)]
    pub iallocator: Option<String>,
    /// `primary-only`, `secondary-only` or `all`.
    pub mode: String,
    #[serde(default)]
    pub ignore_soft_errors: bool,
}

/// `OP_OOB_COMMAND`: runs the out-of-band program of nodes (on the
/// master) with one of the OOB API's commands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OobCommand {
    /// Every node when empty.
    #[serde(default)]
    pub node_names: Vec<String>,
    #[serde(default)]
    pub node_uuids: Option<Vec<String>>,
    /// `power-on`, `power-off`, `power-cycle`, `power-status` or `health`.
    pub command: String,
    /// Seconds the program may run.
    #[serde(default = "default_oob_timeout")]
    pub timeout: u64,
    /// Power off nodes that are not marked offline.
    #[serde(default)]
    pub ignore_status: bool,
    /// Seconds between powering on one node and the next.
    #[serde(default = "default_power_delay")]
    pub power_delay: f64,
}

/// `OP_TEST_ALLOCATOR`: builds an iallocator request (`direction` `in`:
/// answers with the plugin's input) or runs a plugin on it (`out`: answers
/// with the plugin's output, unchecked).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestAllocator {
    /// `in` or `out`.
    pub direction: String,
    /// `allocate`, `multi-allocate`, `relocate`, `change-group` or
    /// `node-evacuate`.
    pub mode: String,
    /// The new instance (`allocate`; the name prefix for
    /// `multi-allocate`) or the instance to relocate.
    pub name: String,
    #[serde(default)]
    pub nics: Option<Vec<Value>>,
    #[serde(default)]
    pub disks: Option<Vec<Value>>,
    #[serde(default)]
    pub hypervisor: Option<String>,
    #[serde(default)]
    pub iallocator: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub vcpus: Option<u64>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub disk_template: Option<String>,
    #[serde(default)]
    pub instances: Option<Vec<String>>,
    #[serde(default)]
    pub evac_mode: Option<String>,
    #[serde(default)]
    pub target_groups: Option<Vec<String>>,
    #[serde(default = "default_one")]
    pub spindle_use: u64,
    #[serde(default = "default_one")]
    pub count: u64,
    #[serde(default)]
    pub group_name: Option<String>,
}

fn default_one() -> u64 {
    1
}

/// `OP_TEST_JQUEUE`: tests the job queue with a client that listens to the
/// job's log (`gnt-debug test-jobqueue`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestJqueue {
    #[serde(default)]
    pub notify_waitlock: bool,
    #[serde(default)]
    pub notify_exec: bool,
    #[serde(default)]
    pub log_messages: Vec<String>,
    #[serde(default)]
    pub fail: bool,
}

/// `OP_TEST_OS_PARAMS`: checks that secret OS parameters reach the master.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestOsParams {
    #[serde(default)]
    pub osparams_secret: Option<Params>,
}

/// `OP_TEST_DUMMY`: does what it is told (for tests of the job queue):
/// logs `messages`, fails when `fail` is true, submits `submit_jobs` and
/// answers with `result`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestDummy {
    pub result: Value,
    pub messages: Value,
    pub fail: Value,
    pub submit_jobs: Value,
}

fn default_oob_timeout() -> u64 {
    60
}

fn default_power_delay() -> f64 {
    2.0
}

/// `OP_NODE_POWERCYCLE`: asks a node to hard-powercycle itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodePowercycle {
    pub node_name: String,
    #[serde(default)]
    pub node_uuid: Option<String>,
    /// Allowed on the master only with this.
    #[serde(default)]
    pub force: bool,
}

/// `OP_NODE_SET_PARAMS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSetParams {
    pub node_name: String,
    #[serde(default)]
    pub node_uuid: Option<String>,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub master_candidate: Option<bool>,
    #[serde(default)]
    pub offline: Option<bool>,
    #[serde(default)]
    pub drained: Option<bool>,
    #[serde(default)]
    pub auto_promote: bool,
    #[serde(default)]
    pub master_capable: Option<bool>,
    #[serde(default)]
    pub vm_capable: Option<bool>,
    #[serde(default)]
    pub ndparams: Option<Params>,
    #[serde(default)]
    pub powered: Option<bool>,
}

/// `OP_GROUP_ADD`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupAdd {
    pub group_name: String,
    #[serde(default)]
    pub alloc_policy: Option<String>,
    #[serde(default)]
    pub ndparams: Option<Params>,
    #[serde(default)]
    pub diskparams: Option<BTreeMap<String, Params>>,
    #[serde(default)]
    pub ipolicy: Option<Params>,
}

/// `OP_GROUP_REMOVE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupRemove {
    pub group_name: String,
}

/// `OP_GROUP_RENAME`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupRename {
    pub group_name: String,
    pub new_name: String,
}

/// `OP_GROUP_ASSIGN_NODES`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupAssignNodes {
    pub group_name: String,
    #[serde(default)]
    pub force: bool,
    pub nodes: Vec<String>,
    #[serde(default)]
    pub node_uuids: Option<Vec<String>>,
}

/// `OP_GROUP_SET_PARAMS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupSetParams {
    pub group_name: String,
    #[serde(default)]
    pub alloc_policy: Option<String>,
    #[serde(default)]
    pub ndparams: Option<Params>,
}

/// One disk of `OP_INSTANCE_CREATE` (`{"size": 1024, "mode": "rw", ...}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskSpec {
    pub size: Option<u64>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub spindles: Option<u64>,
    #[serde(flatten)]
    pub other: Params,
}

/// One NIC of `OP_INSTANCE_CREATE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NicSpec {
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub vlan: Option<String>,
}

/// `OP_INSTANCE_CREATE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceCreate {
    pub instance_name: String,
    #[serde(default)]
    pub force_variant: bool,
    #[serde(default = "default_true")]
    pub wait_for_sync: bool,
    #[serde(default = "default_true")]
    pub name_check: bool,
    #[serde(default)]
    pub ignore_ipolicy: bool,
    #[serde(default)]
    pub opportunistic_locking: bool,
    #[serde(default)]
    pub beparams: Params,
    #[serde(default)]
    pub disks: Vec<DiskSpec>,
    pub disk_template: String,
    #[serde(default)]
    pub group_name: Option<String>,
    #[serde(default)]
    pub file_driver: Option<String>,
    #[serde(default)]
    pub file_storage_dir: Option<String>,
    #[serde(default)]
    pub hvparams: Params,
    #[serde(default)]
    pub hypervisor: Option<String>,
    #[serde(default)]
    pub iallocator: Option<String>,
    #[serde(default)]
    pub identify_defaults: bool,
    #[serde(default = "default_true")]
    pub ip_check: bool,
    #[serde(default = "default_true")]
    pub conflicts_check: bool,
    /// `create`, `import` or `remote-import`.
    pub mode: String,
    #[serde(default)]
    pub nics: Vec<NicSpec>,
    #[serde(default)]
    pub no_install: Option<bool>,
    #[serde(default)]
    pub osparams: Params,
    #[serde(default)]
    pub osparams_private: Option<Params>,
    #[serde(default)]
    pub osparams_secret: Option<Params>,
    #[serde(default)]
    pub os_type: Option<String>,
    #[serde(default)]
    pub pnode: Option<String>,
    #[serde(default)]
    pub pnode_uuid: Option<String>,
    #[serde(default)]
    pub snode: Option<String>,
    #[serde(default)]
    pub snode_uuid: Option<String>,
    #[serde(default = "default_true")]
    pub start: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub instance_communication: bool,
    #[serde(default)]
    pub helper_startup_timeout: Option<u64>,
    #[serde(default)]
    pub helper_shutdown_timeout: Option<u64>,
    #[serde(default)]
    pub compress: Option<String>,
    /// Import-only parameters: accepted, and meaningless for `create`.
    #[serde(default)]
    pub source_shutdown_timeout: Option<u64>,
    #[serde(default)]
    pub source_handshake: Option<Value>,
    #[serde(default)]
    pub source_instance_name: Option<String>,
    #[serde(default)]
    pub source_x509_ca: Option<String>,
    #[serde(default)]
    pub src_node: Option<String>,
    #[serde(default)]
    pub src_node_uuid: Option<String>,
    #[serde(default)]
    pub src_path: Option<String>,
}

/// `OP_INSTANCE_REMOVE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceRemove {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: u64,
    #[serde(default)]
    pub ignore_failures: bool,
}

/// `OP_INSTANCE_STARTUP`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceStartup {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub ignore_offline_nodes: bool,
    #[serde(default)]
    pub hvparams: Params,
    #[serde(default)]
    pub beparams: Params,
    #[serde(default)]
    pub no_remember: bool,
    #[serde(default)]
    pub startup_paused: bool,
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: u64,
}

/// `OP_INSTANCE_SHUTDOWN`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceShutdown {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub ignore_offline_nodes: bool,
    #[serde(default = "default_shutdown_timeout")]
    pub timeout: u64,
    #[serde(default)]
    pub no_remember: bool,
    #[serde(default)]
    pub admin_state_source: Option<String>,
}

/// `OP_INSTANCE_REBOOT`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceReboot {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: u64,
    #[serde(default)]
    pub ignore_secondaries: bool,
    /// `soft`, `hard` or `full`.
    pub reboot_type: String,
}

/// `OP_INSTANCE_RENAME`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceRename {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    pub new_name: String,
    #[serde(default = "default_true")]
    pub name_check: bool,
    #[serde(default)]
    pub ip_check: bool,
}

/// `OP_INSTANCE_SET_PARAMS` (the parameters ganeti-rs acts on).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceSetParams {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub force_variant: bool,
    #[serde(default)]
    pub ignore_ipolicy: bool,
    #[serde(default)]
    pub beparams: Params,
    #[serde(default)]
    pub hvparams: Params,
    #[serde(default)]
    pub os_name: Option<String>,
    #[serde(default)]
    pub osparams: Params,
    #[serde(default)]
    pub offline: Option<bool>,
    #[serde(default)]
    pub runtime_mem: Option<u64>,
    #[serde(default = "default_true")]
    pub wait_for_sync: bool,
    #[serde(default = "default_true")]
    pub conflicts_check: bool,
    #[serde(default)]
    pub hotplug: bool,
    /// Hotplug when the hypervisor can, else change at the next restart
    /// (Ganeti 3.0.2's gnt-instance modify always sends it).
    #[serde(default)]
    pub hotplug_if_possible: bool,
    #[serde(default)]
    pub nics: Vec<Value>,
    #[serde(default)]
    pub disks: Vec<Value>,
    /// Converts the instance's disks to this template.
    #[serde(default)]
    pub disk_template: Option<String>,
    /// The secondary node of a conversion to a mirrored template.
    #[serde(default)]
    pub remote_node: Option<String>,
    #[serde(default)]
    pub remote_node_uuid: Option<String>,
    /// File disks made by a conversion: their driver and their directory
    /// below the file storage directory.
    #[serde(default)]
    pub file_driver: Option<String>,
    #[serde(default)]
    pub file_storage_dir: Option<String>,
}

/// `OP_INSTANCE_REINSTALL`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceReinstall {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default)]
    pub force_variant: bool,
    #[serde(default)]
    pub os_type: Option<String>,
    #[serde(default)]
    pub osparams: Option<Params>,
}

/// `OP_INSTANCE_GROW_DISK`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceGrowDisk {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default = "default_true")]
    pub wait_for_sync: bool,
    /// The disk's index.
    pub disk: usize,
    /// MiB: the increase, or the new size when `absolute`.
    pub amount: u64,
    #[serde(default)]
    pub absolute: bool,
    #[serde(default)]
    pub ignore_ipolicy: bool,
}

/// `OP_INSTANCE_RECREATE_DISKS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecreateDisks {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    /// `[[index, {size, mode, spindles}], ...]`, or (deprecated) indices;
    /// empty: every disk.
    #[serde(default)]
    pub disks: Vec<Value>,
    /// New nodes, primary first.
    #[serde(default)]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub node_uuids: Option<Vec<String>>,
    #[serde(default)]
    pub iallocator: Option<String>,
}

/// `OP_INSTANCE_REPLACE_DISKS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceReplaceDisks {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    /// Ganeti's locks are released as the disks are done; ganeti-rs keeps
    /// them to the end (no other difference).
    #[serde(default)]
    pub early_release: bool,
    #[serde(default)]
    pub ignore_ipolicy: bool,
    /// `replace_on_primary`, `replace_on_secondary`,
    /// `replace_new_secondary` or `replace_auto`.
    pub mode: String,
    #[serde(default)]
    pub disks: Vec<usize>,
    #[serde(default)]
    pub remote_node: Option<String>,
    #[serde(default)]
    pub remote_node_uuid: Option<String>,
    #[serde(default)]
    pub iallocator: Option<String>,
}

/// `OP_INSTANCE_CHANGE_GROUP`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceChangeGroup {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    /// Ganeti's locks are released as the moves are done; ganeti-rs
    /// passes it on to the replacements.
    #[serde(default)]
    pub early_release: bool,
    #[serde(default)]
    pub iallocator: Option<String>,
    /// Group names; none: every group the instance does not use.
    #[serde(default)]
    pub target_groups: Option<Vec<String>>,
}

/// `OP_GROUP_EVACUATE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupEvacuate {
    pub group_name: String,
    #[serde(default)]
    pub early_release: bool,
    #[serde(default)]
    pub iallocator: Option<String>,
    /// Group names; none: every other group.
    #[serde(default)]
    pub target_groups: Option<Vec<String>>,
    #[serde(default)]
    pub sequential: bool,
    #[serde(default)]
    pub force_failover: bool,
}

/// `OP_INSTANCE_ACTIVATE_DISKS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceActivateDisks {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default)]
    pub ignore_size: bool,
    #[serde(default)]
    pub wait_for_sync: bool,
}

/// `OP_INSTANCE_DEACTIVATE_DISKS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceDeactivateDisks {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default)]
    pub force: bool,
}

/// `OP_INSTANCE_QUERY_DATA`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceQueryData {
    #[serde(default)]
    pub use_locking: bool,
    #[serde(default)]
    pub instances: Vec<String>,
    #[serde(default, rename = "static")]
    pub static_only: bool,
}

/// `OP_INSTANCE_MIGRATE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceMigrate {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub live: Option<bool>,
    #[serde(default)]
    pub target_node: Option<String>,
    #[serde(default)]
    pub target_node_uuid: Option<String>,
    #[serde(default = "default_true")]
    pub allow_runtime_changes: bool,
    #[serde(default)]
    pub ignore_ipolicy: bool,
    #[serde(default)]
    pub cleanup: bool,
    #[serde(default)]
    pub iallocator: Option<String>,
    #[serde(default)]
    pub allow_failover: bool,
    #[serde(default)]
    pub ignore_hvversions: bool,
}

/// `OP_INSTANCE_FAILOVER`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceFailover {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: u64,
    #[serde(default)]
    pub ignore_consistency: bool,
    #[serde(default)]
    pub target_node: Option<String>,
    #[serde(default)]
    pub target_node_uuid: Option<String>,
    #[serde(default)]
    pub ignore_ipolicy: bool,
    #[serde(default)]
    pub cleanup: bool,
    #[serde(default)]
    pub iallocator: Option<String>,
}

/// `OP_INSTANCE_MOVE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceMove {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: u64,
    #[serde(default)]
    pub ignore_ipolicy: bool,
    #[serde(default)]
    pub target_node: Option<String>,
    #[serde(default)]
    pub target_node_uuid: Option<String>,
    /// Only `none`: the copy is not compressed.
    #[serde(default = "default_compress")]
    pub compress: String,
    #[serde(default)]
    pub ignore_consistency: bool,
}

fn default_compress() -> String {
    "none".to_string()
}

/// `OP_BACKUP_PREPARE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupPrepare {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    /// `local` or `remote`.
    pub mode: String,
}

/// `OP_BACKUP_EXPORT`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupExport {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    /// Only `none`: the dumps are not compressed.
    #[serde(default = "default_compress")]
    pub compress: String,
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: u64,
    /// The node that receives the export (`local` mode).
    #[serde(default)]
    pub target_node: Option<Value>,
    #[serde(default)]
    pub target_node_uuid: Option<String>,
    #[serde(default = "default_true")]
    pub shutdown: bool,
    #[serde(default)]
    pub remove_instance: bool,
    #[serde(default)]
    pub ignore_remove_failures: bool,
    #[serde(default = "default_export_mode")]
    pub mode: String,
    #[serde(default)]
    pub long_sleep: bool,
}

fn default_export_mode() -> String {
    "local".to_string()
}

/// `OP_BACKUP_REMOVE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupRemove {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
}

/// `OP_QUERY`: a query as a job (what the LUXI `Query` call answers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub what: String,
    #[serde(default)]
    pub fields: Vec<String>,
    #[serde(default)]
    pub qfilter: Option<Value>,
}

/// `OP_QUERY_FIELDS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryFields {
    pub what: String,
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

/// `OP_CLUSTER_QUERY`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterQuery {}

/// `OP_CLUSTER_CONFIG_QUERY`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterConfigQuery {
    pub output_fields: Vec<String>,
}

/// `OP_CLUSTER_DESTROY`: the master's last job, before
/// `gnt-cluster destroy` removes the cluster's files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterDestroy {}

/// `OP_CLUSTER_REDIST_CONF`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterRedistConf {}

/// `OP_CLUSTER_RENAME`: a new name (and with it, possibly, a new master
/// IP) for the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterRename {
    pub name: String,
}

/// `OP_CLUSTER_RENEW_CRYPTO`. In ganeti-rs the cluster certificate is the
/// CA that signs every node's certificate: `node_certificates` renews both
/// (a new CA, then a new certificate for every online node).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterRenewCrypto {
    #[serde(default)]
    pub node_certificates: bool,
    #[serde(default)]
    pub verbose: bool,
    #[serde(default)]
    pub debug: bool,
}

/// `OP_CLUSTER_POST_INIT`: runs the `cluster-init` post hooks on the
/// master after `gnt-cluster init`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterPostInit {}

/// `OP_RESTRICTED_COMMAND`: runs one of the commands of each node's
/// restricted-commands directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestrictedCommand {
    #[serde(default)]
    pub use_locking: bool,
    pub nodes: Vec<String>,
    #[serde(default)]
    pub node_uuids: Option<Vec<String>>,
    pub command: String,
}

/// `OP_EXT_STORAGE_DIAGNOSE`: the ExtStorage providers found on the
/// nodes, as an old-style query (one row of `output_fields` per provider).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtStorageDiagnose {
    #[serde(default)]
    pub output_fields: Vec<String>,
    #[serde(default)]
    pub names: Vec<String>,
}

/// `OP_CLUSTER_ACTIVATE_MASTER_IP`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterActivateMasterIp {}

/// `OP_CLUSTER_DEACTIVATE_MASTER_IP`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterDeactivateMasterIp {}

/// `OP_INSTANCE_CONSOLE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceConsole {
    pub instance_name: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
}

/// `OP_INSTANCE_MULTI_ALLOC`: several `OP_INSTANCE_CREATE`s placed
/// together.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceMultiAlloc {
    /// Accepted: ganeti-rs locks every node for the iallocator, which
    /// holds at least the locks an opportunistic allocation would get.
    #[serde(default)]
    pub opportunistic_locking: bool,
    #[serde(default)]
    pub iallocator: Option<String>,
    /// The instances, as `OP_INSTANCE_CREATE` dicts (with or without
    /// their `OP_ID`).
    #[serde(default)]
    pub instances: Vec<Value>,
}

/// `OP_OS_DIAGNOSE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OsDiagnose {
    #[serde(default)]
    pub output_fields: Vec<String>,
    #[serde(default)]
    pub names: Vec<String>,
}

/// `OP_NETWORK_ADD`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkAdd {
    pub network_name: String,
    /// The IPv4 subnet (`a.b.c.d/n`); Ganeti requires it.
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub network6: Option<String>,
    #[serde(default)]
    pub gateway6: Option<String>,
    #[serde(default)]
    pub mac_prefix: Option<String>,
    #[serde(default)]
    pub add_reserved_ips: Option<Vec<String>>,
    #[serde(default = "default_true")]
    pub conflicts_check: bool,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `OP_NETWORK_SET_PARAMS`. A value of `none` unsets the gateway,
/// IPv6 fields or MAC prefix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkSetParams {
    pub network_name: String,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub network6: Option<String>,
    #[serde(default)]
    pub gateway6: Option<String>,
    #[serde(default)]
    pub mac_prefix: Option<String>,
    #[serde(default)]
    pub add_reserved_ips: Option<Vec<String>>,
    #[serde(default)]
    pub remove_reserved_ips: Option<Vec<String>>,
}

/// `OP_NETWORK_REMOVE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkRemove {
    pub network_name: String,
    #[serde(default)]
    pub force: bool,
}

/// `OP_NETWORK_CONNECT`: a network joins a node group with a NIC mode
/// and link.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkConnect {
    pub group_name: String,
    pub network_name: String,
    pub network_mode: String,
    pub network_link: String,
    #[serde(default)]
    pub network_vlan: String,
    #[serde(default = "default_true")]
    pub conflicts_check: bool,
}

/// `OP_NETWORK_DISCONNECT`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkDisconnect {
    pub group_name: String,
    pub network_name: String,
}

/// `OP_TAGS_GET`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagsGet {
    pub kind: String,
    #[serde(default)]
    pub use_locking: bool,
    #[serde(default)]
    pub name: Option<String>,
}

/// `OP_TAGS_SET` and `OP_TAGS_DEL`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagsChange {
    pub kind: String,
    pub tags: Vec<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `OP_TAGS_SEARCH`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagsSearch {
    pub pattern: String,
}

/// Declares the opcodes ganeti-rs runs, each once: its variant of
/// [`OpCode`], its parameter struct, its `OP_ID` and the parameter its job
/// summary names (`INSTANCE_STARTUP(inst1)`). The parameter names and
/// Ganeti's defaults are in [`OPCODES`].
macro_rules! opcodes {
    ($($variant:ident($ty:ty) = $id:literal $(, summary: $field:ident)?;)*) => {
        /// The opcodes ganeti-rs runs.
        #[derive(Debug, Clone, PartialEq)]
        pub enum OpCode {
            $($variant($ty),)*
        }

        /// The `OP_ID`s of the opcodes ganeti-rs runs.
        pub const SUPPORTED: &[&str] = &[$($id),*];

        impl OpCode {
            /// The opcode's `OP_ID`.
            pub fn op_id(&self) -> &'static str {
                match self {
                    $(OpCode::$variant(_) => $id,)*
                }
            }

            /// The object a job summary names.
            fn summary_arg(&self) -> Option<&str> {
                match self {
                    $(OpCode::$variant(_o) => opcodes!(@arg _o $($field)?),)*
                }
            }

            /// The opcode's parameters, as Ganeti names them.
            fn params(&self) -> Result<Value, serde_json::Error> {
                match self {
                    $(OpCode::$variant(o) => serde_json::to_value(o),)*
                }
            }

            /// Parses the parameters of opcode `op_id`; `None` when
            /// ganeti-rs does not run it.
            fn parse_params(op_id: &str, body: &Map<String, Value>) -> Option<Result<OpCode, GanetiError>> {
                Some(match op_id {
                    $($id => typed(op_id, body).map(OpCode::$variant),)*
                    _ => return None,
                })
            }
        }
    };
    (@arg $o:ident) => { None };
    (@arg $o:ident $field:ident) => { Some($o.$field.as_str()) };
}

opcodes! {
    TestDelay(TestDelay) = "OP_TEST_DELAY";
    ClusterVerify(ClusterVerify) = "OP_CLUSTER_VERIFY";
    ClusterVerifyConfig(ClusterVerifyConfig) = "OP_CLUSTER_VERIFY_CONFIG";
    ClusterVerifyGroup(ClusterVerifyGroup) = "OP_CLUSTER_VERIFY_GROUP", summary: group_name;
    ClusterSetParams(ClusterSetParams) = "OP_CLUSTER_SET_PARAMS";
    ClusterVerifyDisks(ClusterVerifyDisks) = "OP_CLUSTER_VERIFY_DISKS";
    ClusterRepairDiskSizes(ClusterRepairDiskSizes) = "OP_CLUSTER_REPAIR_DISK_SIZES";
    GroupVerifyDisks(GroupVerifyDisks) = "OP_GROUP_VERIFY_DISKS", summary: group_name;
    NodeAdd(NodeAdd) = "OP_NODE_ADD", summary: node_name;
    NodeRemove(NodeRemove) = "OP_NODE_REMOVE", summary: node_name;
    NodeSetParams(NodeSetParams) = "OP_NODE_SET_PARAMS", summary: node_name;
    GroupAdd(GroupAdd) = "OP_GROUP_ADD", summary: group_name;
    GroupRemove(GroupRemove) = "OP_GROUP_REMOVE", summary: group_name;
    GroupRename(GroupRename) = "OP_GROUP_RENAME";
    GroupAssignNodes(GroupAssignNodes) = "OP_GROUP_ASSIGN_NODES", summary: group_name;
    GroupSetParams(GroupSetParams) = "OP_GROUP_SET_PARAMS", summary: group_name;
    InstanceCreate(InstanceCreate) = "OP_INSTANCE_CREATE", summary: instance_name;
    InstanceRemove(InstanceRemove) = "OP_INSTANCE_REMOVE", summary: instance_name;
    InstanceStartup(InstanceStartup) = "OP_INSTANCE_STARTUP", summary: instance_name;
    InstanceShutdown(InstanceShutdown) = "OP_INSTANCE_SHUTDOWN", summary: instance_name;
    InstanceReboot(InstanceReboot) = "OP_INSTANCE_REBOOT", summary: instance_name;
    InstanceRename(InstanceRename) = "OP_INSTANCE_RENAME";
    InstanceSetParams(InstanceSetParams) = "OP_INSTANCE_SET_PARAMS", summary: instance_name;
    InstanceReinstall(InstanceReinstall) = "OP_INSTANCE_REINSTALL", summary: instance_name;
    InstanceQueryData(InstanceQueryData) = "OP_INSTANCE_QUERY_DATA";
    InstanceGrowDisk(InstanceGrowDisk) = "OP_INSTANCE_GROW_DISK", summary: instance_name;
    InstanceActivateDisks(InstanceActivateDisks) = "OP_INSTANCE_ACTIVATE_DISKS", summary: instance_name;
    InstanceRecreateDisks(InstanceRecreateDisks) = "OP_INSTANCE_RECREATE_DISKS", summary: instance_name;
    InstanceReplaceDisks(InstanceReplaceDisks) = "OP_INSTANCE_REPLACE_DISKS", summary: instance_name;
    InstanceChangeGroup(InstanceChangeGroup) = "OP_INSTANCE_CHANGE_GROUP", summary: instance_name;
    GroupEvacuate(GroupEvacuate) = "OP_GROUP_EVACUATE", summary: group_name;
    InstanceDeactivateDisks(InstanceDeactivateDisks) = "OP_INSTANCE_DEACTIVATE_DISKS", summary: instance_name;
    InstanceMigrate(InstanceMigrate) = "OP_INSTANCE_MIGRATE", summary: instance_name;
    InstanceFailover(InstanceFailover) = "OP_INSTANCE_FAILOVER", summary: instance_name;
    InstanceMove(InstanceMove) = "OP_INSTANCE_MOVE", summary: instance_name;
    InstanceConsole(InstanceConsole) = "OP_INSTANCE_CONSOLE", summary: instance_name;
    InstanceMultiAlloc(InstanceMultiAlloc) = "OP_INSTANCE_MULTI_ALLOC";
    BackupPrepare(BackupPrepare) = "OP_BACKUP_PREPARE", summary: instance_name;
    BackupExport(BackupExport) = "OP_BACKUP_EXPORT", summary: instance_name;
    BackupRemove(BackupRemove) = "OP_BACKUP_REMOVE", summary: instance_name;
    Query(Query) = "OP_QUERY", summary: what;
    QueryFields(QueryFields) = "OP_QUERY_FIELDS", summary: what;
    ClusterQuery(ClusterQuery) = "OP_CLUSTER_QUERY";
    ClusterConfigQuery(ClusterConfigQuery) = "OP_CLUSTER_CONFIG_QUERY";
    ClusterRedistConf(ClusterRedistConf) = "OP_CLUSTER_REDIST_CONF";
    ClusterActivateMasterIp(ClusterActivateMasterIp) = "OP_CLUSTER_ACTIVATE_MASTER_IP";
    ClusterDeactivateMasterIp(ClusterDeactivateMasterIp) = "OP_CLUSTER_DEACTIVATE_MASTER_IP";
    ClusterDestroy(ClusterDestroy) = "OP_CLUSTER_DESTROY";
    ClusterRename(ClusterRename) = "OP_CLUSTER_RENAME", summary: name;
    ClusterRenewCrypto(ClusterRenewCrypto) = "OP_CLUSTER_RENEW_CRYPTO";
    ClusterPostInit(ClusterPostInit) = "OP_CLUSTER_POST_INIT";
    RestrictedCommand(RestrictedCommand) = "OP_RESTRICTED_COMMAND";
    ExtStorageDiagnose(ExtStorageDiagnose) = "OP_EXT_STORAGE_DIAGNOSE";
    NodeMigrate(NodeMigrate) = "OP_NODE_MIGRATE", summary: node_name;
    NodeEvacuate(NodeEvacuate) = "OP_NODE_EVACUATE", summary: node_name;
    NodeQueryvols(NodeQueryvols) = "OP_NODE_QUERYVOLS";
    NodeQueryStorage(NodeQueryStorage) = "OP_NODE_QUERY_STORAGE";
    NodeModifyStorage(NodeModifyStorage) = "OP_NODE_MODIFY_STORAGE", summary: node_name;
    RepairNodeStorage(RepairNodeStorage) = "OP_REPAIR_NODE_STORAGE", summary: node_name;
    OobCommand(OobCommand) = "OP_OOB_COMMAND";
    TestAllocator(TestAllocator) = "OP_TEST_ALLOCATOR";
    TestJqueue(TestJqueue) = "OP_TEST_JQUEUE";
    TestOsParams(TestOsParams) = "OP_TEST_OS_PARAMS";
    TestDummy(TestDummy) = "OP_TEST_DUMMY";
    NodePowercycle(NodePowercycle) = "OP_NODE_POWERCYCLE", summary: node_name;
    OsDiagnose(OsDiagnose) = "OP_OS_DIAGNOSE";
    TagsGet(TagsGet) = "OP_TAGS_GET", summary: kind;
    TagsSet(TagsChange) = "OP_TAGS_SET";
    TagsDel(TagsChange) = "OP_TAGS_DEL";
    TagsSearch(TagsSearch) = "OP_TAGS_SEARCH", summary: pattern;
    NetworkAdd(NetworkAdd) = "OP_NETWORK_ADD", summary: network_name;
    NetworkSetParams(NetworkSetParams) = "OP_NETWORK_SET_PARAMS", summary: network_name;
    NetworkRemove(NetworkRemove) = "OP_NETWORK_REMOVE", summary: network_name;
    NetworkConnect(NetworkConnect) = "OP_NETWORK_CONNECT", summary: network_name;
    NetworkDisconnect(NetworkDisconnect) = "OP_NETWORK_DISCONNECT", summary: network_name;
}

/// An opcode with its common fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub op: OpCode,
    pub common: Common,
}

impl Input {
    /// The opcode with the common fields at their defaults.
    pub fn new(op: OpCode) -> Input {
        Input {
            op,
            common: Common::default(),
        }
    }

    /// The opcode with the given priority.
    pub fn with_priority(mut self, priority: i32) -> Input {
        self.common.priority = priority;
        self
    }

    /// The dict that goes on the wire: `OP_ID`, the opcode's parameters
    /// and the common fields. [`parse`] reads it back to the same value.
    pub fn to_dict(&self) -> Result<Value, GanetiError> {
        let encode = |what: &str, r: Result<Value, serde_json::Error>| match r {
            Ok(Value::Object(m)) => Ok(m),
            Ok(other) => Err(GanetiError::programmer(format!(
                "the {what} of {} encode to {other}, not a dict",
                self.op.op_id()
            ))),
            Err(e) => Err(GanetiError::programmer(format!(
                "cannot encode the {what} of {}: {e}",
                self.op.op_id()
            ))),
        };
        let mut dict = encode("parameters", self.op.params())?;
        dict.extend(encode("common fields", serde_json::to_value(&self.common))?);
        dict.insert("OP_ID".into(), Value::from(self.op.op_id()));
        Ok(Value::Object(dict))
    }
}

impl OpCode {
    /// The summary Ganeti shows for a job: `INSTANCE_STARTUP(inst1)`.
    pub fn summary(&self) -> String {
        let name = self.op_id().trim_start_matches("OP_");
        match self.summary_arg() {
            Some(a) => format!("{name}({a})"),
            None => name.to_string(),
        }
    }
}

fn bad_input(msg: String) -> GanetiError {
    GanetiError::prereq(msg, ErrorCode::Inval)
}

/// A value that leaves a parameter at its default.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) => false,
    }
}

fn typed<T: DeserializeOwned>(op_id: &str, body: &Map<String, Value>) -> Result<T, GanetiError> {
    // Refuse Ganeti parameters that we do not act on, when they ask for
    // something other than the default.
    let supported = introspect::struct_fields::<T>();
    for (k, v) in body {
        if !supported.contains(&k.as_str()) && !is_unset(v) {
            return Err(bad_input(format!(
                "Parameter '{k}' of {op_id} is not supported by ganeti-rs yet (got {v})"
            )));
        }
    }
    // `null` means "not set": the field takes its default, as in Ganeti.
    let known: Map<String, Value> = body
        .iter()
        .filter(|(k, v)| supported.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_json::from_value(Value::Object(known))
        .map_err(|e| bad_input(format!("Invalid parameters for opcode {op_id}: {e}")))
}

/// Parses an opcode dict.
pub fn parse(v: &Value) -> Result<Input, GanetiError> {
    let Value::Object(obj) = v else {
        return Err(bad_input(format!("Opcode must be a dict, got {v}")));
    };
    let op_id = match obj.get("OP_ID") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(bad_input(format!("OP_ID must be a string, got {other}"))),
        None => return Err(bad_input("Opcode without OP_ID".to_string())),
    };
    let Some(op_fields) = opcode_params(op_id) else {
        return Err(GanetiError::opcode_unknown(format!(
            "Unknown opcode '{op_id}'"
        )));
    };
    let mut body = Map::new();
    for (k, v) in obj {
        if is_common_field(k) {
            continue;
        }
        if !op_fields.iter().any(|(f, _)| f == k) {
            return Err(bad_input(format!("Opcode {op_id} has no parameter '{k}'")));
        }
        body.insert(k.clone(), v.clone());
    }
    let common = Common::from_dict(op_id, obj)?;
    let op = OpCode::parse_params(op_id, &body).unwrap_or_else(|| {
        Err(GanetiError::opcode_unknown(format!(
            "Opcode '{op_id}' is not supported by ganeti-rs yet"
        )))
    })?;
    Ok(Input { op, common })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_startup_with_common_fields() {
        let i = parse(
            &json!({"OP_ID": "OP_INSTANCE_STARTUP", "instance_name": "i1",
                              "priority": -10, "force": false, "dry_run": false}),
        )
        .unwrap();
        assert_eq!(i.common.priority, -10);
        match i.op {
            OpCode::InstanceStartup(o) => {
                assert_eq!(o.instance_name, "i1");
                assert_eq!(o.shutdown_timeout, 120);
            }
            other => panic!("wrong opcode {other:?}"),
        }
    }

    #[test]
    fn unknown_op_id_is_opcode_unknown() {
        let e = parse(&json!({"OP_ID": "OP_NO_SUCH_THING"})).unwrap_err();
        assert_eq!(e.class, "OpCodeUnknown");
        assert!(e.message().contains("OP_NO_SUCH_THING"));
    }

    #[test]
    fn unknown_field_is_refused_by_name() {
        let e = parse(&json!({"OP_ID": "OP_TEST_DELAY", "duration": 0, "bogus": 1})).unwrap_err();
        assert_eq!(e.class, "OpPrereqError");
        assert!(e.message().contains("'bogus'"), "{e}");
    }

    #[test]
    fn wrong_type_is_refused_with_field_name() {
        let e = parse(&json!({"OP_ID": "OP_TEST_DELAY", "duration": "soon"})).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::Inval));
        assert!(e.message().contains("OP_TEST_DELAY"), "{e}");
    }

    #[test]
    fn unsupported_ganeti_parameter_set_is_refused() {
        let e = parse(&json!({"OP_ID": "OP_INSTANCE_CREATE", "instance_name": "x",
            "disk_template": "diskless", "mode": "create", "forthcoming": true}))
        .unwrap_err();
        assert!(e.message().contains("forthcoming"), "{e}");
        // ...but the same parameter left at its default is fine.
        parse(&json!({"OP_ID": "OP_INSTANCE_CREATE", "instance_name": "x",
            "disk_template": "diskless", "mode": "create", "forthcoming": false}))
        .unwrap();
    }

    #[test]
    fn every_supported_opcode_is_a_ganeti_opcode_and_takes_its_defaults() {
        for id in SUPPORTED {
            let dict = with_defaults(id).unwrap_or_else(|| panic!("{id} is not in Ganeti 3.0"));
            // All parameters at Ganeti's defaults, as the Python CLI sends
            // them: at most a required parameter is missing.
            if let Err(e) = parse(&Value::Object(dict)) {
                assert!(e.message().contains("missing field"), "{id}: {e}");
            }
        }
        assert_eq!(OPCODES.len(), 75);
    }

    #[test]
    fn every_ganeti_opcode_runs() {
        let refused: Vec<&str> = OPCODES
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !SUPPORTED.contains(id))
            .collect();
        assert!(refused.is_empty(), "refused at submission: {refused:?}");
    }

    #[test]
    fn a_typed_opcode_encodes_to_a_dict_that_parses_back_to_it() {
        let input = parse(
            &json!({"OP_ID": "OP_INSTANCE_MIGRATE", "instance_name": "i1",
            "target_node": "node3", "live": true, "priority": 10, "comment": "why"}),
        )
        .unwrap();
        let dict = input.to_dict().unwrap();
        assert_eq!(dict["OP_ID"], "OP_INSTANCE_MIGRATE");
        assert_eq!(dict["target_node"], "node3");
        assert_eq!(dict["priority"], 10);
        assert_eq!(parse(&dict).unwrap(), input);
    }

    #[test]
    fn summary_names_the_object() {
        let i = parse(
            &json!({"OP_ID": "OP_INSTANCE_REBOOT", "instance_name": "i1",
                              "reboot_type": "hard"}),
        )
        .unwrap();
        assert_eq!(i.op.summary(), "INSTANCE_REBOOT(i1)");
    }
}
