//! Opcodes: the operations a job runs, as Ganeti 3.0 spells them on the wire
//! (`{"OP_ID": "OP_INSTANCE_STARTUP", "instance_name": ..., ...}`), parsed
//! into typed values.
//!
//! Parsing refuses an unknown `OP_ID`, a field the opcode does not have in
//! Ganeti 3.0, a field of the wrong type, and a field that Ganeti has but
//! ganeti-rs does not act on yet when it is set to anything but its default
//! (so that a request is never silently half-honoured).

mod fields;
mod introspect;

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ErrorCode, GanetiError};
pub use fields::{COMMON_FIELDS, OPCODE_FIELDS};

/// A parameter dictionary.
pub type Params = BTreeMap<String, Value>;

/// Fields every opcode carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Common {
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub debug_level: i64,
    #[serde(default)]
    pub priority: i32,
    /// `[[job_id, [status, ...]], ...]`.
    #[serde(default)]
    pub depends: Option<Vec<(i64, Vec<String>)>>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub reason: Vec<Value>,
}

/// The lowest (most urgent) and highest opcode priorities.
pub const PRIORITY_HIGHEST: i32 = -20;
pub const PRIORITY_LOWEST: i32 = 19;

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

/// `OP_OS_DIAGNOSE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OsDiagnose {
    #[serde(default)]
    pub output_fields: Vec<String>,
    #[serde(default)]
    pub names: Vec<String>,
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

/// The opcodes ganeti-rs executes.
#[derive(Debug, Clone, PartialEq)]
pub enum OpCode {
    TestDelay(TestDelay),
    ClusterVerify(ClusterVerify),
    ClusterVerifyConfig(ClusterVerifyConfig),
    ClusterVerifyGroup(ClusterVerifyGroup),
    ClusterSetParams(ClusterSetParams),
    NodeAdd(NodeAdd),
    NodeRemove(NodeRemove),
    NodeSetParams(NodeSetParams),
    GroupAdd(GroupAdd),
    GroupRemove(GroupRemove),
    GroupRename(GroupRename),
    GroupAssignNodes(GroupAssignNodes),
    GroupSetParams(GroupSetParams),
    InstanceCreate(InstanceCreate),
    InstanceRemove(InstanceRemove),
    InstanceStartup(InstanceStartup),
    InstanceShutdown(InstanceShutdown),
    InstanceReboot(InstanceReboot),
    InstanceRename(InstanceRename),
    InstanceSetParams(InstanceSetParams),
    InstanceReinstall(InstanceReinstall),
    InstanceQueryData(InstanceQueryData),
    InstanceMigrate(InstanceMigrate),
    InstanceFailover(InstanceFailover),
    NodeMigrate(NodeMigrate),
    NodeEvacuate(NodeEvacuate),
    OsDiagnose(OsDiagnose),
    TagsGet(TagsGet),
    TagsSet(TagsChange),
    TagsDel(TagsChange),
    TagsSearch(TagsSearch),
}

/// An opcode with its common fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub op: OpCode,
    pub common: Common,
}

impl OpCode {
    /// The opcode's `OP_ID`.
    pub fn op_id(&self) -> &'static str {
        match self {
            OpCode::TestDelay(_) => "OP_TEST_DELAY",
            OpCode::ClusterVerify(_) => "OP_CLUSTER_VERIFY",
            OpCode::ClusterVerifyConfig(_) => "OP_CLUSTER_VERIFY_CONFIG",
            OpCode::ClusterVerifyGroup(_) => "OP_CLUSTER_VERIFY_GROUP",
            OpCode::ClusterSetParams(_) => "OP_CLUSTER_SET_PARAMS",
            OpCode::NodeAdd(_) => "OP_NODE_ADD",
            OpCode::NodeRemove(_) => "OP_NODE_REMOVE",
            OpCode::NodeSetParams(_) => "OP_NODE_SET_PARAMS",
            OpCode::GroupAdd(_) => "OP_GROUP_ADD",
            OpCode::GroupRemove(_) => "OP_GROUP_REMOVE",
            OpCode::GroupRename(_) => "OP_GROUP_RENAME",
            OpCode::GroupAssignNodes(_) => "OP_GROUP_ASSIGN_NODES",
            OpCode::GroupSetParams(_) => "OP_GROUP_SET_PARAMS",
            OpCode::InstanceCreate(_) => "OP_INSTANCE_CREATE",
            OpCode::InstanceRemove(_) => "OP_INSTANCE_REMOVE",
            OpCode::InstanceStartup(_) => "OP_INSTANCE_STARTUP",
            OpCode::InstanceShutdown(_) => "OP_INSTANCE_SHUTDOWN",
            OpCode::InstanceReboot(_) => "OP_INSTANCE_REBOOT",
            OpCode::InstanceRename(_) => "OP_INSTANCE_RENAME",
            OpCode::InstanceSetParams(_) => "OP_INSTANCE_SET_PARAMS",
            OpCode::InstanceReinstall(_) => "OP_INSTANCE_REINSTALL",
            OpCode::InstanceQueryData(_) => "OP_INSTANCE_QUERY_DATA",
            OpCode::InstanceMigrate(_) => "OP_INSTANCE_MIGRATE",
            OpCode::InstanceFailover(_) => "OP_INSTANCE_FAILOVER",
            OpCode::NodeMigrate(_) => "OP_NODE_MIGRATE",
            OpCode::NodeEvacuate(_) => "OP_NODE_EVACUATE",
            OpCode::OsDiagnose(_) => "OP_OS_DIAGNOSE",
            OpCode::TagsGet(_) => "OP_TAGS_GET",
            OpCode::TagsSet(_) => "OP_TAGS_SET",
            OpCode::TagsDel(_) => "OP_TAGS_DEL",
            OpCode::TagsSearch(_) => "OP_TAGS_SEARCH",
        }
    }

    /// The summary Ganeti shows for a job: `INSTANCE_STARTUP(inst1)`.
    pub fn summary(&self) -> String {
        let name = self.op_id().trim_start_matches("OP_");
        let arg: Option<&str> = match self {
            OpCode::TestDelay(_) => None,
            OpCode::ClusterVerifyGroup(o) => Some(&o.group_name),
            OpCode::NodeAdd(o) => Some(&o.node_name),
            OpCode::NodeRemove(o) => Some(&o.node_name),
            OpCode::NodeSetParams(o) => Some(&o.node_name),
            OpCode::GroupAdd(o) => Some(&o.group_name),
            OpCode::GroupRemove(o) => Some(&o.group_name),
            OpCode::GroupRename(o) => Some(&o.group_name),
            OpCode::GroupAssignNodes(o) => Some(&o.group_name),
            OpCode::GroupSetParams(o) => Some(&o.group_name),
            OpCode::InstanceCreate(o) => Some(&o.instance_name),
            OpCode::InstanceRemove(o) => Some(&o.instance_name),
            OpCode::InstanceStartup(o) => Some(&o.instance_name),
            OpCode::InstanceShutdown(o) => Some(&o.instance_name),
            OpCode::InstanceReboot(o) => Some(&o.instance_name),
            OpCode::InstanceRename(o) => Some(&o.instance_name),
            OpCode::InstanceSetParams(o) => Some(&o.instance_name),
            OpCode::InstanceReinstall(o) => Some(&o.instance_name),
            OpCode::InstanceMigrate(o) => Some(&o.instance_name),
            OpCode::InstanceFailover(o) => Some(&o.instance_name),
            OpCode::NodeMigrate(o) => Some(&o.node_name),
            OpCode::NodeEvacuate(o) => Some(&o.node_name),
            OpCode::TagsGet(o) => Some(&o.kind),
            OpCode::TagsSet(o) | OpCode::TagsDel(o) => Some(&o.kind),
            _ => None,
        };
        match arg {
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
    let Some((_, op_fields)) = OPCODE_FIELDS.iter().find(|(id, _)| *id == op_id) else {
        return Err(GanetiError::opcode_unknown(format!(
            "Unknown opcode '{op_id}'"
        )));
    };
    let mut common = Map::new();
    let mut body = Map::new();
    for (k, v) in obj {
        if COMMON_FIELDS.contains(&k.as_str()) {
            if k != "OP_ID" && !v.is_null() {
                common.insert(k.clone(), v.clone());
            }
        } else if op_fields.contains(&k.as_str()) {
            body.insert(k.clone(), v.clone());
        } else {
            return Err(bad_input(format!("Opcode {op_id} has no parameter '{k}'")));
        }
    }
    let common: Common = serde_json::from_value(Value::Object(common))
        .map_err(|e| bad_input(format!("Invalid common parameters for {op_id}: {e}")))?;
    if !(PRIORITY_HIGHEST..=PRIORITY_LOWEST).contains(&common.priority) {
        return Err(bad_input(format!(
            "Priority {} out of range {PRIORITY_HIGHEST}..{PRIORITY_LOWEST}",
            common.priority
        )));
    }
    let op = match op_id {
        "OP_TEST_DELAY" => OpCode::TestDelay(typed(op_id, &body)?),
        "OP_CLUSTER_VERIFY" => OpCode::ClusterVerify(typed(op_id, &body)?),
        "OP_CLUSTER_VERIFY_CONFIG" => OpCode::ClusterVerifyConfig(typed(op_id, &body)?),
        "OP_CLUSTER_VERIFY_GROUP" => OpCode::ClusterVerifyGroup(typed(op_id, &body)?),
        "OP_CLUSTER_SET_PARAMS" => OpCode::ClusterSetParams(typed(op_id, &body)?),
        "OP_NODE_ADD" => OpCode::NodeAdd(typed(op_id, &body)?),
        "OP_NODE_REMOVE" => OpCode::NodeRemove(typed(op_id, &body)?),
        "OP_NODE_SET_PARAMS" => OpCode::NodeSetParams(typed(op_id, &body)?),
        "OP_GROUP_ADD" => OpCode::GroupAdd(typed(op_id, &body)?),
        "OP_GROUP_REMOVE" => OpCode::GroupRemove(typed(op_id, &body)?),
        "OP_GROUP_RENAME" => OpCode::GroupRename(typed(op_id, &body)?),
        "OP_GROUP_ASSIGN_NODES" => OpCode::GroupAssignNodes(typed(op_id, &body)?),
        "OP_GROUP_SET_PARAMS" => OpCode::GroupSetParams(typed(op_id, &body)?),
        "OP_INSTANCE_CREATE" => OpCode::InstanceCreate(typed(op_id, &body)?),
        "OP_INSTANCE_REMOVE" => OpCode::InstanceRemove(typed(op_id, &body)?),
        "OP_INSTANCE_STARTUP" => OpCode::InstanceStartup(typed(op_id, &body)?),
        "OP_INSTANCE_SHUTDOWN" => OpCode::InstanceShutdown(typed(op_id, &body)?),
        "OP_INSTANCE_REBOOT" => OpCode::InstanceReboot(typed(op_id, &body)?),
        "OP_INSTANCE_RENAME" => OpCode::InstanceRename(typed(op_id, &body)?),
        "OP_INSTANCE_SET_PARAMS" => OpCode::InstanceSetParams(typed(op_id, &body)?),
        "OP_INSTANCE_REINSTALL" => OpCode::InstanceReinstall(typed(op_id, &body)?),
        "OP_INSTANCE_QUERY_DATA" => OpCode::InstanceQueryData(typed(op_id, &body)?),
        "OP_INSTANCE_MIGRATE" => OpCode::InstanceMigrate(typed(op_id, &body)?),
        "OP_INSTANCE_FAILOVER" => OpCode::InstanceFailover(typed(op_id, &body)?),
        "OP_NODE_MIGRATE" => OpCode::NodeMigrate(typed(op_id, &body)?),
        "OP_NODE_EVACUATE" => OpCode::NodeEvacuate(typed(op_id, &body)?),
        "OP_OS_DIAGNOSE" => OpCode::OsDiagnose(typed(op_id, &body)?),
        "OP_TAGS_GET" => OpCode::TagsGet(typed(op_id, &body)?),
        "OP_TAGS_SET" => OpCode::TagsSet(typed(op_id, &body)?),
        "OP_TAGS_DEL" => OpCode::TagsDel(typed(op_id, &body)?),
        "OP_TAGS_SEARCH" => OpCode::TagsSearch(typed(op_id, &body)?),
        other => {
            return Err(GanetiError::opcode_unknown(format!(
                "Opcode '{other}' is not supported by ganeti-rs yet"
            )))
        }
    };
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
                              "priority": -5, "force": false, "dry_run": false}),
        )
        .unwrap();
        assert_eq!(i.common.priority, -5);
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
    fn summary_names_the_object() {
        let i = parse(
            &json!({"OP_ID": "OP_INSTANCE_REBOOT", "instance_name": "i1",
                              "reboot_type": "hard"}),
        )
        .unwrap();
        assert_eq!(i.op.summary(), "INSTANCE_REBOOT(i1)");
    }
}
