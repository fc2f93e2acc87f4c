//! The node RPC API: one request type per call, its response type and its
//! default timeout.
//!
//! On the wire each call is `POST /<NAME>` with the request as a JSON body;
//! the answer is `{"ok": <response>}` or `{"error": {"kind", "message"}}`
//! (see [`Reply`]). The master uses these types through
//! [`crate::client::NodeClient::call`]; the types the calls carry are
//! re-exported here so that one `use rpc::api::*` names them all.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use crate::hypervisor::{
    ConsoleInfo, HotplugAction, HotplugDevice, HvNodeInfo, InstanceRuntimeInfo, InstanceState,
    MigrationStatus,
};
pub use crate::instance::{AttachedDisk, BeParams, DiskTls, HvParams, InstanceSpec, NicSpec};
pub use crate::storage::{
    BlockDevStatus, DeviceInfo, DiskSpec, DrbdEndpoint, DrbdLink, DrbdStatus, LocalDiskStatus,
};
pub use objects::{DiskMode, DiskTemplate, NicMode};

/// Version of this protocol; bumped on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// Timeouts of Ganeti's RPC classes.
pub mod timeouts {
    use std::time::Duration;
    /// Quick queries.
    pub const URGENT: Duration = Duration::from_secs(60);
    pub const FAST: Duration = Duration::from_secs(5 * 60);
    pub const NORMAL: Duration = Duration::from_secs(15 * 60);
    pub const SLOW: Duration = Duration::from_secs(3600);
    pub const FOUR_HOURS: Duration = Duration::from_secs(4 * 3600);
    pub const ONE_DAY: Duration = Duration::from_secs(86400);
}

/// A node RPC: the request type names the call and its response.
pub trait Call: Serialize + DeserializeOwned + Send + Sync {
    /// The call's name, the URL path after `/`.
    const NAME: &'static str;
    /// Default timeout of the whole call (connect, send, run, answer).
    const TIMEOUT: Duration;
    /// Whether running the call twice does no more than running it once;
    /// only such calls are sent again when a kept connection turns out to
    /// be closed.
    const IDEMPOTENT: bool = true;
    type Response: Serialize + DeserializeOwned + Send + 'static;
}

macro_rules! call {
    ($req:ty, $name:literal, $resp:ty, $timeout:expr) => {
        impl Call for $req {
            const NAME: &'static str = $name;
            const TIMEOUT: Duration = $timeout;
            type Response = $resp;
        }
    };
}

/// The body of every answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply<T> {
    Ok(T),
    Error(RpcError),
}

/// What went wrong on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RpcError {
    pub kind: ErrorKind,
    pub message: String,
}

impl RpcError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RpcError {
            kind,
            message: message.into(),
        }
    }
}

/// Classes of node errors, for callers that react differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request could not be understood (bad JSON, wrong types, bad
    /// method or path).
    BadRequest,
    /// No call of that name.
    UnknownCall,
    /// An argument names something that does not exist here.
    NotFound,
    /// The node cannot do this (unknown template, hypervisor without it).
    Unsupported,
    /// The operation was attempted and failed.
    Failed,
    /// Failure injected by a test hook.
    Injected,
    /// The call is refused (e.g. test hooks while disabled, a path outside
    /// the allow-list).
    Refused,
    /// A bug or an unexpected condition on the node.
    Internal,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ErrorKind::BadRequest => "bad request",
            ErrorKind::UnknownCall => "unknown call",
            ErrorKind::NotFound => "not found",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Failed => "failed",
            ErrorKind::Injected => "injected failure",
            ErrorKind::Refused => "refused",
            ErrorKind::Internal => "internal error",
        };
        f.write_str(s)
    }
}

// ---------------------------------------------------------------- version

/// Protocol and software version of the node daemon.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Version {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub protocol: u32,
    pub software: String,
}
call!(Version, "version", VersionInfo, timeouts::URGENT);

// ---------------------------------------------------------------- node

/// Resources of the node: memory and CPUs per hypervisor, space per
/// storage unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Hypervisors to ask, each with its cluster-level hvparams.
    #[serde(default)]
    pub hypervisors: Vec<(String, HvParams)>,
    /// Storage to measure; the node's file storage directory when empty.
    #[serde(default)]
    pub storage: Vec<StorageUnit>,
}

/// A storage unit to measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageUnit {
    /// `file`, `sharedfile` or `plain`.
    pub kind: DiskTemplate,
    /// For `plain`: the volume group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfoResult {
    /// The node's name as it knows itself.
    pub name: String,
    /// Changes at each boot of the node.
    pub bootid: String,
    /// Per hypervisor, in the order asked.
    pub hypervisors: Vec<HvInfo>,
    pub storage: Vec<StorageInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HvInfo {
    pub name: String,
    /// Memory in MiB and CPUs.
    pub info: HvNodeInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageInfo {
    pub kind: DiskTemplate,
    /// The directory, as a path on the node; for `plain` the volume group.
    pub path: String,
    pub total_mib: u64,
    pub free_mib: u64,
    /// Why the unit could not be measured (a volume group this node does
    /// not have); the sizes are 0 then. The other units and the
    /// hypervisors are reported all the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
call!(NodeInfo, "node_info", NodeInfoResult, timeouts::URGENT);

/// Basic health checks of the node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeVerify {
    /// Hypervisors to verify, with their hvparams.
    #[serde(default)]
    pub hypervisors: Vec<(String, HvParams)>,
    /// Check the OS search path.
    #[serde(default)]
    pub os: bool,
    /// Check the file storage directories.
    #[serde(default)]
    pub file_storage: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeVerifyResult {
    pub name: String,
    /// Node time (seconds since the epoch), to compare clocks.
    pub time: f64,
    /// Per hypervisor: `None` when fine, else the problem.
    pub hypervisors: BTreeMap<String, Option<String>>,
    /// OS definitions found (when asked).
    pub os: Vec<OsInfo>,
    /// Problems with the file storage directories (when asked).
    pub file_storage: Vec<String>,
    /// The `serial_no` of the node's copy of the configuration (0: none),
    /// which a master candidate's must keep up with the master's.
    #[serde(default)]
    pub config_serial: u64,
}
call!(
    NodeVerify,
    "node_verify",
    NodeVerifyResult,
    timeouts::NORMAL
);

/// Fingerprints of cluster files, to find nodes whose copies differ
/// (`gnt-cluster verify`'s file check).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileChecksums {
    /// Paths as the cluster knows them (absolute, without the node's root).
    pub paths: Vec<String>,
}
call!(
    FileChecksums,
    "file_checksums",
    BTreeMap<String, Option<String>>,
    timeouts::FAST
);

/// From this node, tries a TCP connection to each target's node daemon
/// (`gnt-cluster verify`'s network test).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeNetTest {
    /// (node name, address).
    pub targets: Vec<(String, String)>,
    /// Port of the node daemons; 1811 when absent.
    #[serde(default)]
    pub port: Option<u16>,
}
// Answer: per target node, `None` when reachable, else the problem.
call!(
    NodeNetTest,
    "node_net_test",
    BTreeMap<String, Option<String>>,
    timeouts::FAST
);

// ---------------------------------------------------------------- instances

/// Assembles the instance's disks on this node, then starts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStart {
    pub instance: InstanceSpec,
    #[serde(default)]
    pub startup_paused: bool,
}
call!(InstanceStart, "instance_start", (), timeouts::NORMAL);

/// Stops the instance (its disks stay assembled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceShutdown {
    pub instance: InstanceSpec,
    /// Seconds the guest has to shut down cleanly before it is killed.
    #[serde(default = "default_shutdown_timeout")]
    pub timeout_secs: u64,
}
call!(InstanceShutdown, "instance_shutdown", (), timeouts::NORMAL);

fn default_shutdown_timeout() -> u64 {
    120
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RebootType {
    /// From inside the guest.
    Soft,
    /// Hypervisor-level stop and start.
    Hard,
    /// Stop, re-assemble disks, start.
    Full,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceReboot {
    pub instance: InstanceSpec,
    pub reboot_type: RebootType,
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
}
call!(InstanceReboot, "instance_reboot", (), timeouts::NORMAL);

/// Runtime information on one instance (`None`: not running here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub instance: String,
    pub hypervisor: String,
    #[serde(default)]
    pub hvparams: HvParams,
}
call!(
    InstanceInfo,
    "instance_info",
    Option<InstanceRuntimeInfo>,
    timeouts::URGENT
);

/// Names of the instances running here under the given hypervisors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceList {
    pub hypervisors: Vec<String>,
}
call!(InstanceList, "instance_list", Vec<String>, timeouts::URGENT);

/// Runtime information on every instance running here, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllInstancesInfo {
    pub hypervisors: Vec<(String, HvParams)>,
}

/// One running instance and the hypervisor that runs it; on the wire the
/// hypervisor's name beside the fields of the runtime information.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunningInstance {
    pub hypervisor: String,
    #[serde(flatten)]
    pub info: InstanceRuntimeInfo,
}

/// Read through a flat struct: serde's `flatten` buffers every entry of
/// every instance first, which cost the master about a millisecond per
/// thousand instances listed.
impl<'de> Deserialize<'de> for RunningInstance {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Flat {
            hypervisor: String,
            name: String,
            id: String,
            memory: u64,
            vcpus: u32,
            state: InstanceState,
            cpu_time: f64,
        }
        let f = Flat::deserialize(d)?;
        Ok(RunningInstance {
            hypervisor: f.hypervisor,
            info: InstanceRuntimeInfo {
                name: f.name,
                id: f.id,
                memory: f.memory,
                vcpus: f.vcpus,
                state: f.state,
                cpu_time: f.cpu_time,
            },
        })
    }
}
call!(
    AllInstancesInfo,
    "all_instances_info",
    BTreeMap<String, RunningInstance>,
    timeouts::URGENT
);

/// Changes the memory of a running instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceBalloonMemory {
    pub instance: InstanceSpec,
    pub memory_mib: u64,
}
call!(
    InstanceBalloonMemory,
    "instance_balloon_memory",
    (),
    timeouts::NORMAL
);

/// Checks that devices can be hotplugged into the running instance
/// (Ganeti's `hotplug_supported`); the error says why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotplugSupported {
    pub instance: InstanceSpec,
}
call!(HotplugSupported, "hotplug_supported", (), timeouts::URGENT);

/// Adds, removes or re-plugs a device of the running instance
/// (Ganeti's `hotplug_device`); `seq` is the device's position in the
/// instance (for an addition: the position it takes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotplugDeviceCall {
    pub instance: InstanceSpec,
    pub action: HotplugAction,
    pub device: HotplugDevice,
    pub seq: usize,
}
call!(HotplugDeviceCall, "hotplug_device", (), timeouts::NORMAL);

/// Tells a running instance that one of its disks grew (a ganeti-rs
/// call: Ganeti leaves the guest to find out at its next start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceDiskResized {
    pub instance: InstanceSpec,
    pub index: usize,
    pub size_mib: u64,
}
call!(
    InstanceDiskResized,
    "instance_disk_resized",
    (),
    timeouts::NORMAL
);

/// How to reach the console of an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceConsole {
    pub instance: InstanceSpec,
}
call!(
    InstanceConsole,
    "instance_console",
    ConsoleInfo,
    timeouts::URGENT
);

// ---------------------------------------------------------------- migration

/// Source node: opaque data the target needs to accept the instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationInfo {
    pub instance: InstanceSpec,
}
call!(MigrationInfo, "migration_info", String, timeouts::NORMAL);

/// Target node: prepare to receive the instance (disks are assembled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptInstance {
    pub instance: InstanceSpec,
    /// From [`MigrationInfo`].
    pub info: String,
    /// Address of this (the target) node.
    pub target: String,
}
call!(AcceptInstance, "accept_instance", (), timeouts::NORMAL);

/// Source node: send the instance to the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrateInstance {
    pub cluster_name: String,
    pub instance: InstanceSpec,
    pub target: String,
    pub live: bool,
}
call!(MigrateInstance, "migrate_instance", (), timeouts::SLOW);

/// Target node: keep (success) or drop (failure) the received instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalizeMigrationDst {
    pub instance: InstanceSpec,
    pub info: String,
    pub success: bool,
}
call!(
    FinalizeMigrationDst,
    "finalize_migration_dst",
    (),
    timeouts::NORMAL
);

/// Source node: stop the source (success) or keep it running (failure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalizeMigrationSrc {
    pub instance: InstanceSpec,
    pub success: bool,
    pub live: bool,
}
call!(
    FinalizeMigrationSrc,
    "finalize_migration_src",
    (),
    timeouts::NORMAL
);

/// Source node: progress of the migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetMigrationStatus {
    pub instance: InstanceSpec,
}
call!(
    GetMigrationStatus,
    "migration_status",
    MigrationStatus,
    timeouts::URGENT
);

// ---------------------------------------------------------------- block devices

/// Creates a disk of an instance on this node.
///
/// A `drbd` disk is created on both of its nodes, the secondary first (as
/// Ganeti does): each creates its volumes and its meta data and starts its
/// storage daemon; the primary then syncs its copy to the secondary (see
/// [`BlockdevFind`] for the progress).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockdevCreate {
    pub instance_name: String,
    pub disk: DiskSpec,
    /// Size in MiB; the disk's own size when absent.
    #[serde(default)]
    pub size: Option<u64>,
    /// Whether this node is the instance's primary.
    #[serde(default = "default_true")]
    pub on_primary: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockdevCreateResult {
    /// The device's path on this node, if it has one.
    pub path: Option<String>,
}
call!(
    BlockdevCreate,
    "blockdev_create",
    BlockdevCreateResult,
    timeouts::SLOW
);

/// Removes a disk and its data (a `drbd` disk: its daemon, then its
/// volumes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockdevRemove {
    pub instance_name: String,
    pub disk: DiskSpec,
}
call!(BlockdevRemove, "blockdev_remove", (), timeouts::NORMAL);

/// Makes a disk usable on this node; returns what the hypervisor needs.
/// Assembling an assembled disk is fine (and sets a `drbd` disk's role
/// from `on_primary`: the primary's copy is the one a sync copies from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockdevAssemble {
    pub instance_name: String,
    pub disk: DiskSpec,
    #[serde(default = "default_true")]
    pub on_primary: bool,
}
call!(
    BlockdevAssemble,
    "blockdev_assemble",
    AttachedDisk,
    timeouts::NORMAL
);

/// Makes a disk unused on this node (the data stays). A `drbd` disk's
/// daemon stops, with its exports and sockets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockdevShutdown {
    pub instance_name: String,
    pub disk: DiskSpec,
}
call!(BlockdevShutdown, "blockdev_shutdown", (), timeouts::NORMAL);

/// Grows a disk by `amount` MiB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockdevGrow {
    pub instance_name: String,
    pub disk: DiskSpec,
    pub amount: u64,
    #[serde(default)]
    pub dry_run: bool,
}
impl Call for BlockdevGrow {
    const NAME: &'static str = "blockdev_grow";
    const TIMEOUT: Duration = timeouts::NORMAL;
    /// Growing twice grows twice.
    const IDEMPOTENT: bool = false;
    type Response = ();
}

/// Copies the data of disk `src` into disk `dst`, both on this node (the
/// instance's primary): Ganeti's `blockdev_convert`, for disk template
/// conversions. `dst` must be created (a `drbd` one assembled as primary,
/// so that the copy reaches its peer) and as large as `src`; `src` must
/// not be in use (a `drbd` source is read from its data volume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockdevConvert {
    pub instance_name: String,
    pub src: DiskSpec,
    pub dst: DiskSpec,
}
call!(
    BlockdevConvert,
    "blockdev_convert",
    (),
    timeouts::FOUR_HOURS
);

/// Starts serving disk `disk` read-only to the other node of `link` (over
/// NBD with mutual TLS, on this node's end of the link), for
/// [`DiskImport`] there (`gnt-instance move`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskExportStart {
    pub instance_name: String,
    pub disk: DiskSpec,
    pub link: DrbdLink,
}
call!(DiskExportStart, "disk_export_start", (), timeouts::NORMAL);

/// Stops serving the disk with UUID `disk` (see [`DiskExportStart`]);
/// nothing to do when it is not served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskExportStop {
    pub disk: String,
}
call!(DiskExportStop, "disk_export_stop", (), timeouts::NORMAL);

/// Copies the disk with UUID `source`, served by the other node of `link`
/// ([`DiskExportStart`]), into disk `disk` of this node (created, as
/// large).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskImport {
    pub instance_name: String,
    pub disk: DiskSpec,
    pub link: DrbdLink,
    pub source: String,
}
call!(DiskImport, "disk_import", (), timeouts::FOUR_HOURS);

/// Path and size of disks (`None` for a disk missing on this node).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockdevInfo {
    pub instance_name: String,
    pub disks: Vec<DiskSpec>,
}
call!(
    BlockdevInfo,
    "blockdev_info",
    Vec<Option<DeviceInfo>>,
    timeouts::URGENT
);

/// Finds a disk on this node and reports its status (`None`: not here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockdevFind {
    pub instance_name: String,
    pub disk: DiskSpec,
}
call!(
    BlockdevFind,
    "blockdev_find",
    Option<BlockDevStatus>,
    timeouts::URGENT
);

/// Status of several disks on this node (Ganeti's
/// `blockdev_getmirrorstatus`; `None` for a disk not found here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockdevGetMirrorStatus {
    pub instance_name: String,
    pub disks: Vec<DiskSpec>,
}
call!(
    BlockdevGetMirrorStatus,
    "blockdev_getmirrorstatus",
    Vec<Option<BlockDevStatus>>,
    timeouts::URGENT
);

/// `drbd` disks: stop replicating to the peer (Ganeti's "standalone").
/// Writes made here meanwhile are not tracked: the next connection of a
/// primary syncs the peer in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrbdDisconnectNet {
    pub instance_name: String,
    pub disks: Vec<DiskSpec>,
}
call!(
    DrbdDisconnectNet,
    "drbd_disconnect_net",
    (),
    timeouts::NORMAL
);

/// `drbd` disks: (re)connect to the peer named in each disk's link (the
/// disks must be assembled here). `primary` names the node whose copy is
/// the sync source (the one running the guest); the node's role is kept
/// when absent. A primary whose peer lacks writes starts a sync; a
/// secondary never overwrites its peer.
///
/// `multimaster` is accepted for Ganeti's callers and changes nothing:
/// both nodes of a link always accept writes from their local users and
/// copy them to the other (what live migration needs), and only the node
/// running the guest writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrbdAttachNet {
    pub instance_name: String,
    pub disks: Vec<DiskSpec>,
    #[serde(default)]
    pub multimaster: bool,
    #[serde(default)]
    pub primary: Option<String>,
}
call!(DrbdAttachNet, "drbd_attach_net", (), timeouts::NORMAL);

/// `drbd` disks: how far their syncs are (Ganeti's `drbd_wait_sync`,
/// which answers at once: the master polls). Fails for a disk that is
/// neither connected to its peer nor syncing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrbdWaitSync {
    pub instance_name: String,
    pub disks: Vec<DiskSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrbdSyncState {
    /// No disk is syncing.
    pub all_done: bool,
    /// The lowest sync progress among the disks, percent (100 when done).
    pub min_resync: f64,
}
call!(
    DrbdWaitSync,
    "drbd_wait_sync",
    DrbdSyncState,
    timeouts::URGENT
);

/// Pauses (`pause`) or resumes the background syncs of disks (Ganeti's
/// `blockdev_pause_resume_sync`). A paused `drbd` disk still copies each
/// new write to its peer; only the copy of older differences waits.
/// Answers, per disk, whether it worked and why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockdevPauseResumeSync {
    pub instance_name: String,
    pub disks: Vec<DiskSpec>,
    pub pause: bool,
}
call!(
    BlockdevPauseResumeSync,
    "blockdev_pause_resume_sync",
    Vec<(bool, Option<String>)>,
    timeouts::NORMAL
);

/// Creates a directory for file-based disks (config path, below the file
/// or shared file storage directory); existing is fine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileStorageDirCreate {
    pub path: String,
}
call!(
    FileStorageDirCreate,
    "file_storage_dir_create",
    (),
    timeouts::FAST
);

/// Removes such a directory if it is empty (missing is fine; not empty
/// fails).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileStorageDirRemove {
    pub path: String,
}
call!(
    FileStorageDirRemove,
    "file_storage_dir_remove",
    (),
    timeouts::FAST
);

/// Renames such a directory (instance rename); already renamed is fine,
/// both existing fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileStorageDirRename {
    pub old_path: String,
    pub new_path: String,
}
call!(
    FileStorageDirRename,
    "file_storage_dir_rename",
    (),
    timeouts::FAST
);

// ---------------------------------------------------------------- node storage

/// The volume groups of this node and their sizes in MiB.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VgList {}
call!(VgList, "vg_list", BTreeMap<String, u64>, timeouts::URGENT);

/// One logical volume on one physical device (`gnt-node volumes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeVolume {
    pub vg: String,
    pub name: String,
    pub size_mib: u64,
    /// The physical device, e.g. `/dev/sdb1`.
    pub device: String,
}

/// Every logical volume of this node, once per device it lives on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeVolumes {}
call!(NodeVolumes, "node_volumes", Vec<NodeVolume>, timeouts::FAST);

/// Ganeti's storage types for the node storage calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageType {
    #[serde(rename = "lvm-vg")]
    LvmVg,
    #[serde(rename = "lvm-pv")]
    LvmPv,
    #[serde(rename = "file")]
    File,
}

impl StorageType {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageType::LvmVg => "lvm-vg",
            StorageType::LvmPv => "lvm-pv",
            StorageType::File => "file",
        }
    }
}

/// One storage unit of a node (`gnt-node list-storage`): a volume group,
/// a physical volume or a file storage directory. Sizes in MiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageUnitInfo {
    pub name: String,
    pub size: u64,
    pub used: u64,
    pub free: u64,
    pub allocatable: bool,
}

/// The storage units of a type on this node (`name`: only that one; for
/// `file`, the directory to measure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageList {
    pub kind: StorageType,
    #[serde(default)]
    pub name: Option<String>,
}
call!(
    StorageList,
    "storage_list",
    Vec<StorageUnitInfo>,
    timeouts::NORMAL
);

/// Changes a storage unit: only an LVM physical volume's `allocatable`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageModify {
    pub kind: StorageType,
    pub name: String,
    pub allocatable: bool,
}
call!(StorageModify, "storage_modify", (), timeouts::NORMAL);

/// Repairs a storage unit (`fix-consistency`: an LVM volume group loses
/// its missing physical volumes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageRepair {
    pub kind: StorageType,
    pub name: String,
}
impl Call for StorageRepair {
    const NAME: &'static str = "storage_execute";
    const TIMEOUT: Duration = timeouts::NORMAL;
    /// A repair changes the group; once is enough.
    const IDEMPOTENT: bool = false;
    type Response = ();
}

// ---------------------------------------------------------------- exports

/// Runs the OS `export` script of `instance` for its disk `index` (the
/// disk is assembled first); the script's output becomes the file named
/// after the disk's UUID in the directory `dir` of the node's export
/// directory (made if missing). Answers the dump's size in bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportDiskDump {
    pub instance: InstanceSpec,
    pub index: usize,
    pub dir: String,
    #[serde(default)]
    pub debug: u32,
}
call!(
    ExportDiskDump,
    "export_disk_dump",
    u64,
    timeouts::FOUR_HOURS
);

/// Starts serving the file `file` of the export directory `dir`
/// read-only to the other node of `link` (over NBD with mutual TLS, as
/// [`DiskExportStart`] serves a disk), for [`ExportFileFetch`] there;
/// [`DiskExportStop`] with `disk: file` stops it. Answers the file's size
/// in bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFileServe {
    pub dir: String,
    pub file: String,
    pub link: DrbdLink,
}
call!(ExportFileServe, "export_file_serve", u64, timeouts::NORMAL);

/// Copies the file `file` (of `size` bytes), served by the other node of
/// `link` ([`ExportFileServe`]), into the export directory `dir` of this
/// node under the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFileFetch {
    pub dir: String,
    pub file: String,
    pub size: u64,
    pub link: DrbdLink,
}
call!(
    ExportFileFetch,
    "export_file_fetch",
    (),
    timeouts::FOUR_HOURS
);

/// Writes `config` as `config.ini` into the export directory `dir` and
/// makes it the export `name`, replacing an older export of that name
/// only once the new one is whole (Ganeti's `finalize_export`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalizeExport {
    pub dir: String,
    pub name: String,
    pub config: String,
}
impl Call for FinalizeExport {
    const NAME: &'static str = "finalize_export";
    const TIMEOUT: Duration = timeouts::NORMAL;
    /// The staging directory is gone after the first run.
    const IDEMPOTENT: bool = false;
    type Response = ();
}

/// The `config.ini` of the export `name` (Ganeti's `export_info`); it
/// must have the `export` and `instance` sections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportInfo {
    pub name: String,
}
call!(ExportInfo, "export_info", String, timeouts::FAST);

/// The exports of this node, sorted (Ganeti's `export_list`); none when
/// the node has no export directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportList {}
call!(ExportList, "export_list", Vec<String>, timeouts::FAST);

/// Removes the export (or staging directory) `name` and its files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRemove {
    pub name: String,
}
impl Call for ExportRemove {
    const NAME: &'static str = "export_remove";
    const TIMEOUT: Duration = timeouts::FAST;
    /// A second run finds nothing to remove and says so.
    const IDEMPOTENT: bool = false;
    type Response = ();
}

/// Runs the OS `import` script of `instance` for its disk `index` (the
/// disk is assembled first), its input the file `file` of the export
/// directory `dir`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportDiskDump {
    pub instance: InstanceSpec,
    pub index: usize,
    pub dir: String,
    pub file: String,
    #[serde(default)]
    pub debug: u32,
}
call!(ImportDiskDump, "import_disk_dump", (), timeouts::FOUR_HOURS);

// ---------------------------------------------------------------- OS

/// Runs the OS `create` script for the instance (disks are assembled
/// first). `reinstall` sets `INSTANCE_REINSTALL=1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceOsAdd {
    pub instance: InstanceSpec,
    #[serde(default)]
    pub reinstall: bool,
    #[serde(default)]
    pub debug: u32,
}
call!(InstanceOsAdd, "instance_os_add", (), timeouts::ONE_DAY);

/// Runs the OS `rename` script (`instance` carries the new name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OsRename {
    pub instance: InstanceSpec,
    pub old_name: String,
    #[serde(default)]
    pub debug: u32,
}
call!(OsRename, "instance_run_rename", (), timeouts::FOUR_HOURS);

/// Lists the OS definitions of this node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OsDiagnose {}

/// One OS definition found on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    pub name: String,
    pub path: String,
    pub valid: bool,
    /// Why the OS is not valid; empty when it is.
    pub diagnose: String,
    pub variants: Vec<String>,
    /// (name, description).
    pub parameters: Vec<(String, String)>,
    pub api_versions: Vec<u32>,
    /// Whether the OS has a (trusted) `create` script; an OS with only
    /// `create_untrusted` is not trusted.
    #[serde(default = "default_true")]
    pub trusted: bool,
}
call!(OsDiagnose, "os_diagnose", Vec<OsInfo>, timeouts::FAST);

/// Runs the OS `verify` script on parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OsValidate {
    /// Name with optional `+variant`.
    pub os: String,
    #[serde(default)]
    pub osparams: BTreeMap<String, String>,
    /// Fail when the OS is missing (else report `false`).
    #[serde(default = "default_true")]
    pub required: bool,
}
call!(OsValidate, "os_validate", bool, timeouts::FAST);

// ---------------------------------------------------------------- files

/// Replaces the node's ssconf files (`key` -> content of `ssconf_<key>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteSsconfFiles {
    pub values: BTreeMap<String, String>,
}
call!(WriteSsconfFiles, "write_ssconf_files", (), timeouts::FAST);

/// Writes one of the cluster files a node may receive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadFile {
    /// Path as the cluster knows it (absolute, without the node's root),
    /// e.g. `/var/lib/ganeti/known_hosts`; see [`UPLOADABLE_FILES`].
    pub path: String,
    pub content: String,
    /// Permission bits.
    #[serde(default = "default_mode")]
    pub mode: u32,
}

fn default_mode() -> u32 {
    0o600
}

/// Files that `upload_file` accepts, relative to the node's root.
pub const UPLOADABLE_FILES: &[&str] = &[
    "var/lib/ganeti/cluster-ca.pem",
    // The CA's key, which master candidates hold so that a new master can
    // sign the certificates of the nodes it adds.
    "var/lib/ganeti/cluster-ca.key",
    "var/lib/ganeti/known_hosts",
    "var/lib/ganeti/rapi.pem",
    "var/lib/ganeti/rapi/users",
    "var/lib/ganeti/cluster-domain-secret",
    "var/lib/ganeti/hmac.key",
    "var/lib/ganeti/spice.pem",
    "var/lib/ganeti/spice-ca.pem",
    "var/lib/ganeti/vnc-cluster-password",
    "etc/hosts",
];
call!(UploadFile, "upload_file", (), timeouts::NORMAL);

// ---------------------------------------------------------------- master role

/// Stores the master's configuration as this candidate's copy, unless the
/// copy already holds a newer one (`serial_no` only grows, so pushes that
/// arrive out of order, or from a master that was failed over, never
/// replace a newer copy). Answers the `serial_no` the copy holds after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteConfig {
    /// The cluster's `serial_no` of `data`.
    pub serial_no: u64,
    /// The whole configuration, JSON.
    pub data: String,
}
call!(WriteConfig, "write_config", u64, timeouts::FAST);

/// One job of the master's queue, as a candidate keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicatedJob {
    pub id: u64,
    pub archived: bool,
    /// The whole job, JSON, as the master's queue stores it.
    pub data: String,
}

/// Stores jobs of the master's queue in this candidate's copy (Ganeti's
/// `jobqueue_update`); each replaces the node's copy of that job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobqueueUpdate {
    pub jobs: Vec<ReplicatedJob>,
    /// The highest job id the master has handed out (Ganeti's queue
    /// `serial` file), so that a new master never hands out one again,
    /// even of a job archived before this node held a copy.
    #[serde(default)]
    pub last_id: u64,
}
call!(JobqueueUpdate, "jobqueue_update", (), timeouts::FAST);

/// Who this node thinks the master is: its `ssconf_master_node`, or
/// `None` when it has none (Ganeti's `master_node_name`, the vote of
/// `gnt-cluster master-failover`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MasterNodeName {}
call!(
    MasterNodeName,
    "master_node_name",
    Option<String>,
    timeouts::URGENT
);

/// Stops the master daemons of this node (`ganeti-masterd`, then
/// `ganeti-rapi`), as Ganeti's `node_stop_master`; the master daemon
/// pushes its last changes to the candidates before it exits. Answers the
/// programs that were running and were stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStopMaster {}
call!(
    NodeStopMaster,
    "node_stop_master",
    Vec<String>,
    timeouts::FAST
);

/// The master IP's parameters (Ganeti's `MasterNetworkParameters`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterNetworkParams {
    pub ip: String,
    pub netmask: u32,
    pub netdev: String,
}

/// Brings the master IP up on this node (Ganeti's
/// `node_activate_master_ip`). A loopback address on `lo` is already
/// served by the loopback device: the node only records that it holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeActivateMasterIp {
    pub params: MasterNetworkParams,
}
call!(
    NodeActivateMasterIp,
    "node_activate_master_ip",
    (),
    timeouts::FAST
);

/// Takes the master IP down on this node (Ganeti's
/// `node_deactivate_master_ip`); see [`NodeActivateMasterIp`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeDeactivateMasterIp {
    pub params: MasterNetworkParams,
}
call!(
    NodeDeactivateMasterIp,
    "node_deactivate_master_ip",
    (),
    timeouts::FAST
);

// ---------------------------------------------------------------- hooks

/// When a hook runs: before or after the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HooksPhase {
    Pre,
    Post,
}

/// Runs the node's hook scripts `etc/ganeti/hooks/<hpath>-<phase>.d/*` in
/// name order, each with exactly `env` (plus `PATH` if absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHooks {
    /// The operation's hooks path (`instance-start`, `node-add`, ...).
    pub hpath: String,
    pub phase: HooksPhase,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// Result of one hook script, as Ganeti's `HKR_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookStatus {
    /// Not run (not executable, or a name run-parts ignores).
    Skip,
    Fail,
    Success,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookResult {
    /// `<hpath>-<phase>.d/<script>`.
    pub script: String,
    pub status: HookStatus,
    /// Standard output and error, trimmed.
    pub output: String,
}
call!(RunHooks, "hooks_runner", Vec<HookResult>, timeouts::NORMAL);

// ---------------------------------------------------------------- test delay

/// Sleeps `duration` seconds on the node (`OP_TEST_DELAY` with
/// `on_nodes`). The default timeout is short: call it with
/// `call_with_timeout(duration + 5 s)`, as Ganeti does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestDelay {
    pub duration: f64,
}
call!(TestDelay, "test_delay", (), timeouts::URGENT);

// ---------------------------------------------------------------- leaving

/// The node leaves the cluster: the regular files of its data directory
/// (certificates, ssconf, cluster files) are removed and the daemon stops
/// listening once it has answered, then waits for new certificates as a
/// node that never joined.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeLeaveCluster {}
call!(NodeLeaveCluster, "node_leave_cluster", (), timeouts::NORMAL);

// ---------------------------------------------------------------- out of band

/// Runs a node's out-of-band program (`<program> <command> <node>`), on the
/// master, as Ganeti's `run_oob`; answers its standard output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOob {
    /// Absolute path of the program.
    pub program: String,
    /// One of the OOB API's commands (`power-on`, `health`, ...).
    pub command: String,
    /// The node the command is about.
    pub node: String,
    /// Seconds after which the program is killed.
    pub timeout: u64,
}
call!(RunOob, "run_oob", String, timeouts::NORMAL);

/// Asks the node to hard-powercycle itself, as Ganeti's `node_powercycle`.
/// ganeti-noded never powercycles a real machine: it refuses, except with
/// the fake hypervisor, which only records the request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodePowercycle {
    /// The cluster's default hypervisor.
    pub hypervisor: String,
    #[serde(default)]
    pub hvparams: HvParams,
}
call!(NodePowercycle, "node_powercycle", String, timeouts::NORMAL);

// ---------------------------------------------------------------- restricted commands

/// Runs command `command` of the node's restricted-commands directory
/// (`etc/ganeti/restricted-commands`) with an empty environment, under
/// Ganeti's checks (name, owner, permissions, one at a time); answers its
/// output. Any refusal answers only "Executing command '<c>' failed",
/// after a delay, as in Ganeti.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestrictedCommand {
    pub command: String,
}
impl Call for RestrictedCommand {
    const NAME: &'static str = "restricted_command";
    const TIMEOUT: Duration = timeouts::SLOW;
    const IDEMPOTENT: bool = false;
    type Response = String;
}

// ---------------------------------------------------------------- extstorage

/// Lists the ExtStorage providers of the node's search path, each with
/// its validity, as Ganeti's `extstorage_diagnose`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtStorageDiagnose {}

/// One (potential) ExtStorage provider found on a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtStorageProvider {
    pub name: String,
    /// Its directory.
    pub path: String,
    pub valid: bool,
    /// Why it is invalid; empty when valid.
    pub diagnose: String,
    /// `(name, documentation)` from its `parameters.list`.
    pub parameters: Vec<(String, String)>,
}
call!(
    ExtStorageDiagnose,
    "extstorage_diagnose",
    Vec<ExtStorageProvider>,
    timeouts::FAST
);

// ---------------------------------------------------------------- crypto renewal

/// First step of a certificate renewal: the node keeps its files but
/// stores the new CA certificate and its new certificate aside, and from
/// now on accepts clients signed by either CA (the master switches to its
/// new certificate between the two steps).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CryptoStage {
    /// The new cluster CA certificate (PEM, without its key).
    pub ca_cert: String,
    /// The node's new certificate and key (PEM), signed by the new CA.
    pub node_pem: String,
}
call!(CryptoStage, "crypto_stage", (), timeouts::URGENT);

/// Second step: the staged files replace the node's certificate and CA,
/// and new connections are served with them (only clients signed by the
/// new CA are accepted then). The answer still travels on the old session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CryptoActivate {}
call!(CryptoActivate, "crypto_activate", (), timeouts::URGENT);

/// Undoes [`CryptoStage`]: the staged files are dropped and only the
/// current CA is trusted again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CryptoAbort {}
call!(CryptoAbort, "crypto_abort", (), timeouts::URGENT);

// ---------------------------------------------------------------- test hooks

/// How an injected failure behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// Answer an error of kind [`ErrorKind::Injected`].
    Error,
    /// Never answer (the caller's timeout fires).
    Hang,
    /// The daemon exits at once without answering, leaving its pid file
    /// (a node that dies in the middle of a call).
    Crash,
}

/// Makes the next `count` calls of `call` fail (only with
/// `--enable-test-hooks`). A `count` of 0 clears the failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSetFailure {
    pub call: String,
    pub mode: FailureMode,
    pub count: u32,
}
call!(TestSetFailure, "test_set_failure", (), timeouts::URGENT);

/// Names of every call the node daemon serves.
pub const CALLS: &[&str] = &[
    Version::NAME,
    NodeInfo::NAME,
    NodeVerify::NAME,
    FileChecksums::NAME,
    NodeNetTest::NAME,
    InstanceStart::NAME,
    InstanceShutdown::NAME,
    InstanceReboot::NAME,
    InstanceInfo::NAME,
    InstanceList::NAME,
    AllInstancesInfo::NAME,
    InstanceBalloonMemory::NAME,
    InstanceDiskResized::NAME,
    HotplugSupported::NAME,
    HotplugDeviceCall::NAME,
    InstanceConsole::NAME,
    MigrationInfo::NAME,
    AcceptInstance::NAME,
    MigrateInstance::NAME,
    FinalizeMigrationDst::NAME,
    FinalizeMigrationSrc::NAME,
    GetMigrationStatus::NAME,
    BlockdevCreate::NAME,
    BlockdevRemove::NAME,
    BlockdevAssemble::NAME,
    BlockdevShutdown::NAME,
    BlockdevGrow::NAME,
    BlockdevConvert::NAME,
    DiskExportStart::NAME,
    DiskExportStop::NAME,
    DiskImport::NAME,
    ExportDiskDump::NAME,
    ExportFileServe::NAME,
    ExportFileFetch::NAME,
    FinalizeExport::NAME,
    ExportInfo::NAME,
    ExportList::NAME,
    ExportRemove::NAME,
    ImportDiskDump::NAME,
    BlockdevInfo::NAME,
    BlockdevFind::NAME,
    BlockdevGetMirrorStatus::NAME,
    DrbdDisconnectNet::NAME,
    DrbdAttachNet::NAME,
    DrbdWaitSync::NAME,
    BlockdevPauseResumeSync::NAME,
    FileStorageDirCreate::NAME,
    FileStorageDirRemove::NAME,
    FileStorageDirRename::NAME,
    VgList::NAME,
    NodeVolumes::NAME,
    StorageList::NAME,
    StorageModify::NAME,
    StorageRepair::NAME,
    InstanceOsAdd::NAME,
    OsRename::NAME,
    OsDiagnose::NAME,
    OsValidate::NAME,
    WriteSsconfFiles::NAME,
    UploadFile::NAME,
    WriteConfig::NAME,
    JobqueueUpdate::NAME,
    MasterNodeName::NAME,
    NodeStopMaster::NAME,
    NodeActivateMasterIp::NAME,
    NodeDeactivateMasterIp::NAME,
    NodeLeaveCluster::NAME,
    RunHooks::NAME,
    TestDelay::NAME,
    TestSetFailure::NAME,
    RunOob::NAME,
    NodePowercycle::NAME,
    RestrictedCommand::NAME,
    ExtStorageDiagnose::NAME,
    CryptoStage::NAME,
    CryptoActivate::NAME,
    CryptoAbort::NAME,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_instance_reads_back_what_it_writes() {
        let r = RunningInstance {
            hypervisor: "fake".into(),
            info: InstanceRuntimeInfo {
                name: "inst1".into(),
                id: "7".into(),
                memory: 128,
                vcpus: 2,
                state: InstanceState::Paused,
                cpu_time: 1.5,
            },
        };
        let text = serde_json::to_string(&r).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["hypervisor"], "fake");
        assert_eq!(v["memory"], 128);
        assert_eq!(serde_json::from_str::<RunningInstance>(&text).unwrap(), r);
        let missing = r#"{"hypervisor": "fake", "name": "inst1"}"#;
        assert!(serde_json::from_str::<RunningInstance>(missing).is_err());
    }

    #[test]
    fn replies_have_the_documented_shape() {
        let ok: Reply<VersionInfo> = Reply::Ok(VersionInfo {
            protocol: 1,
            software: "x".into(),
        });
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            serde_json::json!({"ok": {"protocol": 1, "software": "x"}})
        );
        let err: Reply<()> = Reply::Error(RpcError::new(ErrorKind::BadRequest, "m"));
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            serde_json::json!({"error": {"kind": "bad_request", "message": "m"}})
        );
        let unit: Reply<()> = serde_json::from_str(r#"{"ok": null}"#).unwrap();
        assert_eq!(unit, Reply::Ok(()));
    }

    /// Pins the JSON shape of an instance as the master sends it.
    #[test]
    fn an_instance_spec_decodes_from_its_documented_json() {
        let json = serde_json::json!({
            "name": "inst1.example.com",
            "uuid": "6d1b1c3e-0000-4000-8000-000000000001",
            "primary_node": "node1.example.com",
            "secondary_nodes": [],
            "hypervisor": "fake",
            "hvparams": {"kernel_path": "/boot/vmlinuz", "acpi": true},
            "beparams": {"memory": 512, "minmem": 256, "vcpus": 2,
                         "auto_balance": true, "always_failover": false},
            "os": "tiny+default",
            "osparams": {"greeting": "hi"},
            "disks": [{"uuid": "d0", "index": 0, "size": 1024, "dev_type": "file",
                       "logical_id": "/srv/ganeti/file-storage/inst1/d0.file.disk0",
                       "mode": "rw"}],
            "nics": [{"mac": "aa:00:00:00:00:01", "ip": null, "mode": "bridged",
                      "link": "br0", "network": null}],
            "tags": ["web"]
        });
        let spec: InstanceSpec = serde_json::from_value(json).unwrap();
        assert_eq!(spec.beparams.maxmem, 512);
        assert_eq!(spec.beparams.min_memory(), 256);
        assert_eq!(spec.disks[0].dev_type, DiskTemplate::File);
        assert_eq!(spec.nics[0].mode, NicMode::Bridged);
        // Missing required fields are named.
        let err =
            serde_json::from_value::<InstanceSpec>(serde_json::json!({"name": "x"})).unwrap_err();
        assert!(err.to_string().contains("missing field `uuid`"), "{err}");
    }

    #[test]
    fn call_names_are_unique() {
        let mut names = CALLS.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CALLS.len());
    }
}
