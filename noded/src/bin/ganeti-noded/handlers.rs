//! What each call does on the node. The functions are synchronous and run
//! on blocking threads; the server decodes requests and encodes answers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hypervisors::{Hypervisor, HypervisorError, Registry, StopOptions};
use objects::error_chain;
use objects::paths::Paths;
use rpc::api::*;
use storage::{StorageContext, StorageError};
use tracing::info;

use crate::os::{self, OsError, Script};
use crate::test_hooks::TestHooks;

/// How long OS scripts may run (create/import can copy whole images).
const OS_CREATE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
const OS_SHORT_TIMEOUT: Duration = Duration::from_secs(600);

/// Everything a call may use.
pub struct State {
    pub paths: Paths,
    pub node_name: String,
    pub registry: Registry,
    /// `None` unless started with `--enable-test-hooks`.
    pub hooks: Option<TestHooks>,
    /// Signalled when the node has left the cluster.
    pub left: tokio::sync::Notify,
    /// The TLS configuration new connections are served with.
    pub tls: crate::crypto::ServingTls,
}

pub type CallResult<T> = Result<T, RpcError>;

fn hv_err(e: HypervisorError) -> RpcError {
    let kind = match &e {
        HypervisorError::Unknown { .. } | HypervisorError::Unsupported { .. } => {
            ErrorKind::Unsupported
        }
        HypervisorError::InvalidName { .. } | HypervisorError::InvalidParameter { .. } => {
            ErrorKind::BadRequest
        }
        _ => ErrorKind::Failed,
    };
    RpcError::new(kind, error_chain(&e))
}

pub(crate) fn st_err(e: StorageError) -> RpcError {
    let kind = match &e {
        StorageError::Unsupported(_) => ErrorKind::Unsupported,
        StorageError::PathOutsideStorageDir { .. } | StorageError::InvalidPath { .. } => {
            ErrorKind::Refused
        }
        StorageError::InvalidName { .. } | StorageError::InvalidSize(_) => ErrorKind::BadRequest,
        StorageError::NotFound(_) | StorageError::NoVolumeGroup(_) | StorageError::NoVolume(_) => {
            ErrorKind::NotFound
        }
        StorageError::NoDeviceMapper(_) => ErrorKind::Unsupported,
        StorageError::InvalidDrbd { .. } => ErrorKind::BadRequest,
        StorageError::NotAssembled(_) => ErrorKind::NotFound,
        _ => ErrorKind::Failed,
    };
    RpcError::new(kind, error_chain(&e))
}

pub(crate) fn os_err(e: OsError) -> RpcError {
    let kind = match &e {
        OsError::NotFound { .. } => ErrorKind::NotFound,
        OsError::InvalidName(_) | OsError::UnknownParameters { .. } => ErrorKind::BadRequest,
        OsError::UnsupportedVariant { .. } => ErrorKind::Unsupported,
        _ => ErrorKind::Failed,
    };
    RpcError::new(kind, error_chain(&e))
}

fn failed(msg: impl Into<String>) -> RpcError {
    RpcError::new(ErrorKind::Failed, msg)
}

fn bad(msg: impl Into<String>) -> RpcError {
    RpcError::new(ErrorKind::BadRequest, msg)
}

impl State {
    /// The state of node `node_name` whose tree is `paths`.
    pub fn new(paths: Paths, node_name: String, hooks: Option<TestHooks>) -> State {
        State {
            registry: Registry::new(&paths),
            paths,
            node_name,
            hooks,
            left: tokio::sync::Notify::new(),
            tls: Default::default(),
        }
    }

    fn hv(&self, name: &str) -> CallResult<Arc<dyn Hypervisor>> {
        self.registry.get(name).map_err(hv_err)
    }

    pub(crate) fn storage(&self) -> CallResult<StorageContext> {
        StorageContext::from_paths(&self.paths)
            .map(|ctx| ctx.with_node_name(&self.node_name))
            .map_err(st_err)
    }

    /// Assembles every disk of `inst` on this node, as its primary
    /// (`on_primary`) or its secondary (a migration target).
    fn assemble_disks(
        &self,
        inst: &InstanceSpec,
        on_primary: bool,
    ) -> CallResult<Vec<AttachedDisk>> {
        let ctx = self.storage()?;
        inst.disks
            .iter()
            .map(|disk| {
                let in_context = |e| {
                    let mut err = st_err(e);
                    err.message = format!(
                        "disk {} of instance '{}': {}",
                        disk.index, inst.name, err.message
                    );
                    err
                };
                let dev = storage::open(&ctx, &inst.name, disk).map_err(in_context)?;
                let mut attached = dev.attach(disk.mode, on_primary).map_err(in_context)?;
                attached.index = disk.index;
                Ok(attached)
            })
            .collect()
    }

    /// The disks of `inst` for its OS scripts, which need paths: assembled
    /// as on the primary; a `drbd` disk gets a FUSE export, served until
    /// the returned guards are dropped.
    pub(crate) fn os_disks(
        &self,
        inst: &InstanceSpec,
    ) -> CallResult<(Vec<AttachedDisk>, Vec<storage::drbd::FuseExport>)> {
        let mut disks = self.assemble_disks(inst, true)?;
        let ctx = self.storage()?;
        let mut guards = Vec::new();
        for (spec, attached) in inst.disks.iter().zip(disks.iter_mut()) {
            if spec.dev_type == DiskTemplate::Drbd {
                let fuse = storage::drbd::DrbdDevice::open(&ctx, &inst.name, spec)
                    .and_then(|d| d.local_path())
                    .map_err(st_err)?;
                attached.path = Some(fuse.path());
                guards.push(fuse);
            }
        }
        Ok((disks, guards))
    }

    /// The `drbd` devices of `disks`; any other template is refused.
    fn drbd_devices(
        &self,
        instance: &str,
        disks: &[DiskSpec],
    ) -> CallResult<Vec<storage::drbd::DrbdDevice>> {
        let ctx = self.storage()?;
        disks
            .iter()
            .map(|d| {
                if d.dev_type != DiskTemplate::Drbd {
                    return Err(RpcError::new(
                        ErrorKind::Unsupported,
                        format!(
                            "disk {} of instance '{instance}' is a {} disk, not drbd",
                            d.index, d.dev_type
                        ),
                    ));
                }
                storage::drbd::DrbdDevice::open(&ctx, instance, d).map_err(st_err)
            })
            .collect()
    }
}

fn bootid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------- node

pub fn version(_s: &State, _r: Version) -> CallResult<VersionInfo> {
    Ok(VersionInfo {
        protocol: PROTOCOL_VERSION,
        software: crate::SOFTWARE_VERSION.to_string(),
    })
}

pub fn node_info(s: &State, r: NodeInfo) -> CallResult<NodeInfoResult> {
    let mut hvs = Vec::new();
    for (name, params) in &r.hypervisors {
        let info = s.hv(name)?.node_info(params).map_err(hv_err)?;
        hvs.push(HvInfo {
            name: name.clone(),
            info,
        });
    }
    let ctx = s.storage()?;
    let units = if r.storage.is_empty() {
        vec![StorageUnit {
            kind: DiskTemplate::File,
            name: None,
        }]
    } else {
        r.storage
    };
    let mut storage_info = Vec::new();
    for unit in units {
        if unit.kind == DiskTemplate::Plain {
            let vg = unit.name.as_deref().ok_or_else(|| {
                RpcError::new(
                    ErrorKind::BadRequest,
                    "a space report of plain storage needs the volume group's name",
                )
            })?;
            let group = storage::lvm::Lvm::new()
                .vg(vg)
                .and_then(|g| g.ok_or_else(|| StorageError::NoVolumeGroup(vg.to_string())));
            storage_info.push(match group {
                Ok(g) => StorageInfo {
                    kind: unit.kind,
                    path: vg.to_string(),
                    total_mib: g.size_mib,
                    free_mib: g.free_mib,
                    error: None,
                },
                Err(e) => StorageInfo {
                    kind: unit.kind,
                    path: vg.to_string(),
                    total_mib: 0,
                    free_mib: 0,
                    error: Some(error_chain(&e)),
                },
            });
            continue;
        }
        let dir = match unit.kind {
            DiskTemplate::File => ctx.file_storage_dir(),
            DiskTemplate::SharedFile => ctx.shared_file_storage_dir(),
            other => {
                return Err(RpcError::new(
                    ErrorKind::Unsupported,
                    format!("no space report for storage of kind '{other}'"),
                ))
            }
        };
        let space = storage::space::space_info(dir).map_err(st_err)?;
        storage_info.push(StorageInfo {
            kind: unit.kind,
            path: dir.display().to_string(),
            total_mib: space.total_mib,
            free_mib: space.free_mib,
            error: None,
        });
    }
    Ok(NodeInfoResult {
        name: s.node_name.clone(),
        bootid: bootid(),
        hypervisors: hvs,
        storage: storage_info,
    })
}

pub fn node_verify(s: &State, r: NodeVerify) -> CallResult<NodeVerifyResult> {
    let mut hvs = BTreeMap::new();
    for (name, params) in &r.hypervisors {
        let problem = match s.hv(name) {
            Ok(hv) => hv.verify(params).unwrap_or_else(|e| Some(error_chain(&e))),
            Err(e) => Some(e.message),
        };
        hvs.insert(name.clone(), problem);
    }
    let os_list = if r.os {
        os::diagnose(&s.paths)
    } else {
        Vec::new()
    };
    let mut file_storage = Vec::new();
    if r.file_storage {
        let ctx = s.storage()?;
        for dir in [ctx.file_storage_dir(), ctx.shared_file_storage_dir()] {
            if let Some(problem) = check_writable_dir(dir) {
                file_storage.push(problem);
            }
        }
    }
    Ok(NodeVerifyResult {
        name: s.node_name.clone(),
        time: now(),
        hypervisors: hvs,
        os: os_list,
        file_storage,
        config_serial: crate::master_role::copy_serial(&s.paths),
    })
}

/// FNV-1a (64 bits) of `data`: stable across versions and machines;
/// enough to tell copies apart, not meant to resist forgery.
fn fingerprint(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}:{}", data.len())
}

pub fn file_checksums(s: &State, r: FileChecksums) -> CallResult<BTreeMap<String, Option<String>>> {
    let mut out = BTreeMap::new();
    for path in r.paths {
        let rel = path
            .strip_prefix('/')
            .ok_or_else(|| bad(format!("path '{path}' must be absolute")))?;
        if rel.split('/').any(|c| c == "..") {
            return Err(bad(format!("path '{path}' must not contain '..'")));
        }
        let sum = match std::fs::read(s.paths.root().join(rel)) {
            Ok(data) => Some(fingerprint(&data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(failed(format!("cannot read '{path}': {e}"))),
        };
        out.insert(path, sum);
    }
    Ok(out)
}

/// Time allowed for each connection of the network test.
const NET_TEST_TIMEOUT: Duration = Duration::from_secs(5);

pub fn node_net_test(_s: &State, r: NodeNetTest) -> CallResult<BTreeMap<String, Option<String>>> {
    let port = r.port.unwrap_or(objects::paths::NODED_PORT);
    let mut out = BTreeMap::new();
    for (name, ip) in r.targets {
        let ip: std::net::IpAddr = ip
            .parse()
            .map_err(|_| bad(format!("invalid address '{ip}' for node '{name}'")))?;
        let addr = std::net::SocketAddr::new(ip, port);
        let problem = std::net::TcpStream::connect_timeout(&addr, NET_TEST_TIMEOUT)
            .err()
            .map(|e| format!("cannot reach {addr}: {e}"));
        out.insert(name, problem);
    }
    Ok(out)
}

fn check_writable_dir(dir: &Path) -> Option<String> {
    match std::fs::metadata(dir) {
        Err(e) => Some(format!("storage directory '{}': {e}", dir.display())),
        Ok(m) if !m.is_dir() => Some(format!("'{}' is not a directory", dir.display())),
        Ok(_) => nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK)
            .err()
            .map(|e| format!("storage directory '{}' is not writable: {e}", dir.display())),
    }
}

// ---------------------------------------------------------------- instances

pub fn instance_start(s: &State, r: InstanceStart) -> CallResult<()> {
    let inst = &r.instance;
    let hv = s.hv(&inst.hypervisor)?;
    if hv
        .instance_info(&inst.name, &inst.hvparams)
        .map_err(hv_err)?
        .is_some()
    {
        info!(instance = %inst.name, "already running, not starting");
        return Ok(());
    }
    let disks = s.assemble_disks(inst, true)?;
    hv.start(inst, &disks, r.startup_paused).map_err(hv_err)?;
    info!(instance = %inst.name, "started");
    Ok(())
}

fn stop(s: &State, inst: &InstanceSpec, timeout_secs: u64) -> CallResult<()> {
    let hv = s.hv(&inst.hypervisor)?;
    if hv
        .instance_info(&inst.name, &inst.hvparams)
        .map_err(hv_err)?
        .is_none()
    {
        info!(instance = %inst.name, "not running, nothing to stop");
        // A process that died leaves its runtime files and devices (taps).
        if let Err(e) = hv.cleanup(&inst.name) {
            tracing::warn!(instance = %inst.name, error = %error_chain(&e), "cleanup of a dead instance failed");
        }
        return Ok(());
    }
    let opts = StopOptions {
        force: false,
        timeout: Duration::from_secs(timeout_secs),
        retry: false,
    };
    if let Err(e) = hv.stop(&inst.name, &inst.hvparams, opts) {
        info!(instance = %inst.name, error = %error_chain(&e), "clean stop failed, forcing");
        let force = StopOptions {
            force: true,
            retry: true,
            ..opts
        };
        match hv.stop(&inst.name, &inst.hvparams, force) {
            Ok(()) | Err(HypervisorError::NotRunning(_)) => {}
            Err(e) => return Err(hv_err(e)),
        }
    }
    if let Err(e) = hv.cleanup(&inst.name) {
        // The instance is stopped; leftovers do not undo that.
        tracing::warn!(instance = %inst.name, error = %error_chain(&e), "cleanup after stop failed");
    }
    info!(instance = %inst.name, "stopped");
    Ok(())
}

pub fn instance_shutdown(s: &State, r: InstanceShutdown) -> CallResult<()> {
    stop(s, &r.instance, r.timeout_secs)
}

pub fn instance_reboot(s: &State, r: InstanceReboot) -> CallResult<()> {
    let inst = &r.instance;
    let hv = s.hv(&inst.hypervisor)?;
    if hv
        .instance_info(&inst.name, &inst.hvparams)
        .map_err(hv_err)?
        .is_none()
    {
        return Err(failed(format!(
            "cannot reboot instance '{}': it is not running",
            inst.name
        )));
    }
    match r.reboot_type {
        RebootType::Soft => hv.reboot(inst).map_err(hv_err),
        RebootType::Hard | RebootType::Full => {
            stop(s, inst, r.shutdown_timeout_secs)?;
            if r.reboot_type == RebootType::Full {
                let ctx = s.storage()?;
                for disk in &inst.disks {
                    storage::open(&ctx, &inst.name, disk)
                        .and_then(|d| d.shutdown())
                        .map_err(st_err)?;
                }
            }
            let disks = s.assemble_disks(inst, true)?;
            hv.start(inst, &disks, false).map_err(hv_err)
        }
    }
}

pub fn instance_info(s: &State, r: InstanceInfo) -> CallResult<Option<InstanceRuntimeInfo>> {
    s.hv(&r.hypervisor)?
        .instance_info(&r.instance, &r.hvparams)
        .map_err(hv_err)
}

pub fn instance_list(s: &State, r: InstanceList) -> CallResult<Vec<String>> {
    let mut names = Vec::new();
    for name in &r.hypervisors {
        names.extend(
            s.hv(name)?
                .list_instances(&HvParams::new())
                .map_err(hv_err)?,
        );
    }
    names.sort();
    names.dedup();
    Ok(names)
}

pub fn all_instances_info(
    s: &State,
    r: AllInstancesInfo,
) -> CallResult<BTreeMap<String, RunningInstance>> {
    let mut out = BTreeMap::new();
    for (name, params) in &r.hypervisors {
        for info in s.hv(name)?.all_instances_info(params).map_err(hv_err)? {
            out.insert(
                info.name.clone(),
                RunningInstance {
                    hypervisor: name.clone(),
                    info,
                },
            );
        }
    }
    Ok(out)
}

pub fn instance_balloon_memory(s: &State, r: InstanceBalloonMemory) -> CallResult<()> {
    s.hv(&r.instance.hypervisor)?
        .balloon_memory(&r.instance, r.memory_mib)
        .map_err(hv_err)
}

pub fn instance_disk_resized(s: &State, r: InstanceDiskResized) -> CallResult<()> {
    s.hv(&r.instance.hypervisor)?
        .resize_disk(&r.instance, r.index, r.size_mib)
        .map_err(hv_err)
}

pub fn hotplug_supported(s: &State, r: HotplugSupported) -> CallResult<()> {
    s.hv(&r.instance.hypervisor)?
        .hotplug_supported(&r.instance)
        .map_err(hv_err)
}

pub fn hotplug_device(s: &State, r: HotplugDeviceCall) -> CallResult<()> {
    s.hv(&r.instance.hypervisor)?
        .hotplug_device(&r.instance, r.action, &r.device, r.seq)
        .map_err(hv_err)
}

pub fn instance_console(s: &State, r: InstanceConsole) -> CallResult<ConsoleInfo> {
    s.hv(&r.instance.hypervisor)?
        .console(&r.instance, &r.instance.primary_node)
        .map_err(hv_err)
}

// ---------------------------------------------------------------- migration

pub fn migration_info(s: &State, r: MigrationInfo) -> CallResult<String> {
    s.hv(&r.instance.hypervisor)?
        .migration_info(&r.instance)
        .map_err(hv_err)
}

pub fn accept_instance(s: &State, r: AcceptInstance) -> CallResult<()> {
    // The target is the secondary until the migration is over.
    let disks = s.assemble_disks(&r.instance, false)?;
    s.hv(&r.instance.hypervisor)?
        .accept_instance_with_disks(&r.instance, &r.info, &r.target, &disks)
        .map_err(hv_err)
}

pub fn migrate_instance(s: &State, r: MigrateInstance) -> CallResult<()> {
    s.hv(&r.instance.hypervisor)?
        .migrate_instance(&r.cluster_name, &r.instance, &r.target, r.live)
        .map_err(hv_err)
}

pub fn finalize_migration_dst(s: &State, r: FinalizeMigrationDst) -> CallResult<()> {
    s.hv(&r.instance.hypervisor)?
        .finalize_migration_dst(&r.instance, &r.info, r.success)
        .map_err(hv_err)
}

pub fn finalize_migration_src(s: &State, r: FinalizeMigrationSrc) -> CallResult<()> {
    s.hv(&r.instance.hypervisor)?
        .finalize_migration_src(&r.instance, r.success, r.live)
        .map_err(hv_err)
}

pub fn migration_status(s: &State, r: GetMigrationStatus) -> CallResult<MigrationStatus> {
    s.hv(&r.instance.hypervisor)?
        .migration_status(&r.instance)
        .map_err(hv_err)
}

// ---------------------------------------------------------------- block devices

pub fn blockdev_create(s: &State, r: BlockdevCreate) -> CallResult<BlockdevCreateResult> {
    let ctx = s.storage()?;
    let dev = storage::open(&ctx, &r.instance_name, &r.disk).map_err(st_err)?;
    let path = dev
        .create_on(r.size.unwrap_or(r.disk.size), r.on_primary)
        .map_err(st_err)?;
    info!(instance = %r.instance_name, disk = r.disk.index, path = %path.display(), "disk created");
    Ok(BlockdevCreateResult {
        path: Some(path.display().to_string()),
    })
}

pub fn blockdev_remove(s: &State, r: BlockdevRemove) -> CallResult<()> {
    let ctx = s.storage()?;
    storage::open(&ctx, &r.instance_name, &r.disk)
        .and_then(|d| d.remove())
        .map_err(st_err)
}

pub fn blockdev_assemble(s: &State, r: BlockdevAssemble) -> CallResult<AttachedDisk> {
    let ctx = s.storage()?;
    let mut attached = storage::open(&ctx, &r.instance_name, &r.disk)
        .and_then(|d| d.attach(r.disk.mode, r.on_primary))
        .map_err(st_err)?;
    attached.index = r.disk.index;
    Ok(attached)
}

pub fn blockdev_shutdown(s: &State, r: BlockdevShutdown) -> CallResult<()> {
    let ctx = s.storage()?;
    storage::open(&ctx, &r.instance_name, &r.disk)
        .and_then(|d| d.shutdown())
        .map_err(st_err)
}

pub fn blockdev_grow(s: &State, r: BlockdevGrow) -> CallResult<()> {
    let ctx = s.storage()?;
    storage::open(&ctx, &r.instance_name, &r.disk)
        .and_then(|d| d.grow(r.amount, r.dry_run))
        .map_err(st_err)
}

pub fn blockdev_convert(s: &State, r: BlockdevConvert) -> CallResult<()> {
    let ctx = s.storage()?;
    let in_context = |which: &str, d: &DiskSpec| {
        let which = which.to_string();
        let index = d.index;
        let instance = r.instance_name.clone();
        move |e: StorageError| {
            let mut err = st_err(e);
            err.message = format!(
                "{which} disk {index} of instance '{instance}': {}",
                err.message
            );
            err
        }
    };
    if r.dst.size < r.src.size {
        return Err(bad(format!(
            "the new disk ({} MiB) is smaller than the old one ({} MiB)",
            r.dst.size, r.src.size
        )));
    }
    // The source as it lies on this node: a drbd disk's data volume.
    let src_path = match r.src.dev_type {
        DiskTemplate::Drbd => storage::drbd::Volumes::of(&ctx, &r.instance_name, &r.src)
            .and_then(|v| v.data.assemble()),
        _ => storage::open(&ctx, &r.instance_name, &r.src).and_then(|d| d.assemble()),
    }
    .map_err(in_context("old", &r.src))?
    .ok_or_else(|| bad(format!("old disk {} has no local path", r.src.index)))?;
    // A drbd target is written through its storage daemon, which
    // replicates every write to the peer.
    let (dst_path, _fuse) = match r.dst.dev_type {
        DiskTemplate::Drbd => {
            let fuse = storage::drbd::DrbdDevice::open(&ctx, &r.instance_name, &r.dst)
                .and_then(|d| d.local_path())
                .map_err(in_context("new", &r.dst))?;
            (fuse.path(), Some(fuse))
        }
        _ => {
            let path = storage::open(&ctx, &r.instance_name, &r.dst)
                .and_then(|d| d.assemble())
                .map_err(in_context("new", &r.dst))?
                .ok_or_else(|| bad(format!("new disk {} has no local path", r.dst.index)))?;
            (path, None)
        }
    };
    let sparse = matches!(
        r.dst.dev_type,
        DiskTemplate::File | DiskTemplate::SharedFile
    );
    let written = storage::convert::copy_data(&src_path, &dst_path, r.src.size, sparse)
        .map_err(in_context("new", &r.dst))?;
    info!(instance = %r.instance_name, disk = r.src.index, from = %r.src.dev_type,
          to = %r.dst.dev_type, written, "disk data copied");
    Ok(())
}

pub fn disk_export_start(s: &State, r: DiskExportStart) -> CallResult<()> {
    let ctx = s.storage()?;
    storage::drbd::Link::from_ends(&ctx, &r.disk.uuid, &r.link)
        .and_then(|link| storage::transfer::start_export(&ctx, &r.instance_name, &r.disk, &link))
        .map_err(st_err)
}

pub fn disk_export_stop(s: &State, r: DiskExportStop) -> CallResult<()> {
    storage::transfer::stop_export(&s.storage()?, &r.disk).map_err(st_err)
}

pub fn disk_import(s: &State, r: DiskImport) -> CallResult<()> {
    let ctx = s.storage()?;
    storage::drbd::Link::from_ends(&ctx, &r.disk.uuid, &r.link)
        .and_then(|link| {
            storage::transfer::import(&ctx, &r.instance_name, &r.disk, &link, &r.source)
        })
        .map_err(st_err)
}

pub fn blockdev_info(s: &State, r: BlockdevInfo) -> CallResult<Vec<Option<DeviceInfo>>> {
    let ctx = s.storage()?;
    r.disks
        .iter()
        .map(|disk| {
            let dev = storage::open(&ctx, &r.instance_name, disk).map_err(st_err)?;
            match dev.info() {
                Ok(info) => Ok(Some(info)),
                Err(StorageError::NotFound(_)) => Ok(None),
                Err(e) => Err(st_err(e)),
            }
        })
        .collect()
}

pub fn blockdev_find(s: &State, r: BlockdevFind) -> CallResult<Option<BlockDevStatus>> {
    let ctx = s.storage()?;
    storage::open(&ctx, &r.instance_name, &r.disk)
        .and_then(|d| d.status())
        .map_err(st_err)
}

pub fn blockdev_getmirrorstatus(
    s: &State,
    r: BlockdevGetMirrorStatus,
) -> CallResult<Vec<Option<BlockDevStatus>>> {
    let ctx = s.storage()?;
    r.disks
        .iter()
        .map(|disk| {
            storage::open(&ctx, &r.instance_name, disk)
                .and_then(|d| d.status())
                .map_err(st_err)
        })
        .collect()
}

pub fn drbd_disconnect_net(s: &State, r: DrbdDisconnectNet) -> CallResult<()> {
    for dev in s.drbd_devices(&r.instance_name, &r.disks)? {
        dev.disconnect_net().map_err(st_err)?;
    }
    Ok(())
}

pub fn drbd_attach_net(s: &State, r: DrbdAttachNet) -> CallResult<()> {
    let primary = r.primary.as_ref().map(|p| *p == s.node_name);
    for dev in s.drbd_devices(&r.instance_name, &r.disks)? {
        dev.attach_net(primary).map_err(st_err)?;
    }
    Ok(())
}

pub fn drbd_wait_sync(s: &State, r: DrbdWaitSync) -> CallResult<DrbdSyncState> {
    let mut all_done = true;
    let mut min_resync: f64 = 100.0;
    for (dev, disk) in s
        .drbd_devices(&r.instance_name, &r.disks)?
        .iter()
        .zip(&r.disks)
    {
        let status = dev.status().map_err(st_err)?.ok_or_else(|| {
            RpcError::new(
                ErrorKind::NotFound,
                format!(
                    "disk {} of instance '{}' is not on this node",
                    disk.index, r.instance_name
                ),
            )
        })?;
        let d = status.drbd.unwrap_or(DrbdStatus {
            primary: false,
            daemon_running: false,
            peer_reachable: false,
            replicating: false,
            out_of_sync_bytes: 0,
            syncing: false,
            problem: None,
        });
        let connected = d.replicating && d.peer_reachable;
        if !(d.syncing || connected) {
            return Err(failed(format!(
                "disk {} of instance '{}' is not connected to its peer: {}",
                disk.index,
                r.instance_name,
                d.problem.unwrap_or_default()
            )));
        }
        all_done &= !d.syncing;
        if let Some(p) = status.sync_percent {
            min_resync = min_resync.min(p);
        }
    }
    Ok(DrbdSyncState {
        all_done,
        min_resync,
    })
}

pub fn blockdev_pause_resume_sync(
    s: &State,
    r: BlockdevPauseResumeSync,
) -> CallResult<Vec<(bool, Option<String>)>> {
    let ctx = s.storage()?;
    Ok(r.disks
        .iter()
        .map(|disk| {
            if disk.dev_type != DiskTemplate::Drbd {
                return (
                    false,
                    Some(format!("a {} disk has no sync to pause", disk.dev_type)),
                );
            }
            match storage::drbd::DrbdDevice::open(&ctx, &r.instance_name, disk)
                .and_then(|d| d.pause_sync(r.pause))
            {
                Ok(()) => (true, None),
                Err(e) => (false, Some(error_chain(&e))),
            }
        })
        .collect())
}

pub fn file_storage_dir_create(s: &State, r: FileStorageDirCreate) -> CallResult<()> {
    storage::dirs::create_dir(&s.storage()?, &r.path)
        .map(|_| ())
        .map_err(st_err)
}

pub fn file_storage_dir_remove(s: &State, r: FileStorageDirRemove) -> CallResult<()> {
    storage::dirs::remove_dir(&s.storage()?, &r.path).map_err(st_err)
}

pub fn file_storage_dir_rename(s: &State, r: FileStorageDirRename) -> CallResult<()> {
    storage::dirs::rename_dir(&s.storage()?, &r.old_path, &r.new_path).map_err(st_err)
}

// ---------------------------------------------------------------- OS

pub fn instance_os_add(s: &State, r: InstanceOsAdd) -> CallResult<()> {
    let inst = &r.instance;
    let os_def = os::find(&s.paths, &inst.os).map_err(os_err)?;
    if !os_def.trusted {
        return Err(RpcError::new(
            ErrorKind::Unsupported,
            format!(
                "OS '{}' has only an untrusted create script (create_untrusted), \
                 which needs an OS installation helper: not supported",
                os_def.name
            ),
        ));
    }
    let (disks, _paths) = s.os_disks(inst)?;
    let mut env = os::instance_env(&os_def, inst, &disks, r.debug).map_err(os_err)?;
    if r.reinstall {
        env.insert("INSTANCE_REINSTALL".into(), "1".into());
    }
    let log = os::log_file(&s.paths, "add", &inst.os, &inst.name);
    os::run_script(&os_def, Script::Create, &[], &env, &log, OS_CREATE_TIMEOUT).map_err(os_err)?;
    info!(instance = %inst.name, os = %inst.os, log = %log.display(), "OS created");
    Ok(())
}

pub fn os_rename(s: &State, r: OsRename) -> CallResult<()> {
    let inst = &r.instance;
    let os_def = os::find(&s.paths, &inst.os).map_err(os_err)?;
    let (disks, _paths) = s.os_disks(inst)?;
    let mut env = os::instance_env(&os_def, inst, &disks, r.debug).map_err(os_err)?;
    env.insert("OLD_INSTANCE_NAME".into(), r.old_name.clone());
    let log = os::log_file(
        &s.paths,
        "rename",
        &inst.os,
        &format!("{}-{}", r.old_name, inst.name),
    );
    os::run_script(&os_def, Script::Rename, &[], &env, &log, OS_SHORT_TIMEOUT).map_err(os_err)
}

pub fn os_diagnose(s: &State, _r: OsDiagnose) -> CallResult<Vec<OsInfo>> {
    Ok(os::diagnose(&s.paths))
}

pub fn os_validate(s: &State, r: OsValidate) -> CallResult<bool> {
    let os_def = match os::find(&s.paths, &r.os) {
        Ok(o) => o,
        Err(OsError::NotFound { .. }) if !r.required => return Ok(false),
        Err(e) => return Err(os_err(e)),
    };
    os_def.check_parameters(&r.osparams).map_err(os_err)?;
    let env = os::core_env(&os_def, &r.os, &r.osparams, 0).map_err(os_err)?;
    if os_def.api_version() >= 20 {
        let log = os::log_file(&s.paths, "verify", &r.os, "params");
        os::run_script(
            &os_def,
            Script::Verify,
            &["parameters"],
            &env,
            &log,
            OS_SHORT_TIMEOUT,
        )
        .map_err(os_err)?;
    }
    Ok(true)
}

// ---------------------------------------------------------------- files

pub fn write_ssconf_files(s: &State, r: WriteSsconfFiles) -> CallResult<()> {
    for key in r.values.keys() {
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad(format!(
                "invalid ssconf key '{key}': only letters, digits and '_' are allowed"
            )));
        }
    }
    for (key, value) in &r.values {
        rpc::tls::write_file_atomically(&s.paths.ssconf(key), value.as_bytes(), 0o644)
            .map_err(|e| failed(error_chain(&e)))?;
    }
    Ok(())
}

pub fn upload_file(s: &State, r: UploadFile) -> CallResult<()> {
    let rel = r
        .path
        .strip_prefix('/')
        .ok_or_else(|| bad(format!("upload path '{}' must be absolute", r.path)))?;
    if !UPLOADABLE_FILES.contains(&rel) {
        return Err(RpcError::new(
            ErrorKind::Refused,
            format!(
                "'{}' is not a file a node accepts (allowed: /{})",
                r.path,
                UPLOADABLE_FILES.join(", /")
            ),
        ));
    }
    if r.mode & !0o777 != 0 {
        return Err(bad(format!("invalid file mode {:o}", r.mode)));
    }
    let target = s.paths.root().join(rel);
    rpc::tls::write_file_atomically(&target, r.content.as_bytes(), r.mode)
        .map_err(|e| failed(error_chain(&e)))
}

pub fn node_leave_cluster(s: &State, _r: NodeLeaveCluster) -> CallResult<()> {
    let dir = s.paths.data_dir();
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| failed(format!("cannot list '{}': {e}", dir.display())))?;
    let mut problems = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if entry
            .file_type()
            .map(|t| t.is_file() || t.is_symlink())
            .unwrap_or(false)
        {
            if let Err(e) = std::fs::remove_file(&path) {
                problems.push(format!("{}: {e}", path.display()));
            }
        }
    }
    // The copy of the job queue a master candidate kept.
    let queue = s.paths.queue_copy_dir();
    if let Err(e) = std::fs::remove_dir_all(&queue) {
        if e.kind() != std::io::ErrorKind::NotFound {
            problems.push(format!("{}: {e}", queue.display()));
        }
    }
    if !problems.is_empty() {
        return Err(failed(format!(
            "cannot remove cluster files: {}",
            problems.join("; ")
        )));
    }
    info!("left the cluster: cluster files removed");
    s.left.notify_one();
    Ok(())
}

/// Longest a single hook script may run.
const HOOK_TIMEOUT: Duration = Duration::from_secs(600);

pub fn hooks_runner(s: &State, r: RunHooks) -> CallResult<Vec<HookResult>> {
    crate::hooks_runner::run_hooks(
        &s.paths.hooks_dir(),
        &r.hpath,
        r.phase,
        &r.env,
        HOOK_TIMEOUT,
    )
    .map_err(|e| match e {
        crate::hooks_runner::HooksError::InvalidPath(_) => bad(error_chain(&e)),
        _ => failed(error_chain(&e)),
    })
}

/// Longest delay `test_delay` accepts.
const MAX_TEST_DELAY: f64 = 86400.0;

pub fn test_delay(_s: &State, r: TestDelay) -> CallResult<()> {
    if !r.duration.is_finite() || !(0.0..=MAX_TEST_DELAY).contains(&r.duration) {
        return Err(bad(format!(
            "invalid delay {}: expected 0 to {MAX_TEST_DELAY} seconds",
            r.duration
        )));
    }
    std::thread::sleep(Duration::from_secs_f64(r.duration));
    Ok(())
}

pub fn test_set_failure(s: &State, r: TestSetFailure) -> CallResult<()> {
    let Some(hooks) = &s.hooks else {
        return Err(RpcError::new(
            ErrorKind::Refused,
            "test hooks are disabled (start ganeti-noded with --enable-test-hooks)",
        ));
    };
    if !CALLS.contains(&r.call.as_str()) {
        return Err(bad(format!(
            "cannot inject failures into unknown call '{}'",
            r.call
        )));
    }
    info!(call = %r.call, mode = ?r.mode, count = r.count, "test hook set");
    hooks.set(&r.call, r.mode, r.count);
    Ok(())
}
