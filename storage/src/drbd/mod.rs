//! `drbd` disks without the DRBD kernel module: each node's copy is served
//! by a `qemu-storage-daemon`, and QEMU's block layer replicates writes
//! between the two daemons over NBD with TLS.
//!
//! ```text
//!            node A (primary: runs the guest)                      node B (secondary)
//!  guest QEMU ──NBD/TLS──┐                                 ┌──NBD/TLS── guest QEMU (after a
//!  OS scripts ─FUSE─NBD──┤                                 │            migration or failover)
//!                        v                                 v
//!  qemu-storage-daemon  [top]  export <uuid>               [top]  qemu-storage-daemon
//!                        │ mirror (write-blocking) ─┐   ┌─ mirror (write-blocking, idle)
//!                        v                          │   │  v
//!                       [vol] <── export <uuid>.data ┼───┘ [vol]
//!                        │                          └───NBD/TLS──> export <uuid>.data
//!                        v                                  v
//!                   data volume (LV or file)           data volume
//!                   meta volume  <── export <uuid>.meta    meta volume
//! ```
//!
//! Both nodes run the same stack on the node's secondary IP and the
//! disk's port: the data volume (`vol`), the disk as local users see it
//! (`top`), an NBD server with three exports (`<uuid>`: `top`;
//! `<uuid>.data`: `vol`, written by the peer's replication;
//! `<uuid>.meta`: the meta volume) that only the node itself and its peer
//! may use (mutual TLS with the cluster's certificates, an `authz-list`
//! of the two nodes' names), and a `write-blocking` mirror from `top` to
//! the peer's `<uuid>.data` (see [`replication`]). A write through `top`
//! is acknowledged once it is on both volumes (DRBD's protocol C). The
//! peer's writes arrive below `top`, so they are not sent back. Only the
//! node that runs the guest writes, so both nodes can take writes at any
//! time (DRBD's dual-primary), which is what live migration needs: the
//! guest's QEMU on each side uses its own node's daemon, and nothing
//! changes when it moves.
//!
//! The primary's copy is the sync source: when its daemon starts, or
//! reconnects, without knowing that the peer has every write, it copies
//! the whole disk (`sync: full`), having first marked the peer's copy
//! inconsistent in the peer's meta volume, and marks it consistent once
//! the copy is done ([`meta`]). When the peer goes away, writes go on
//! locally and the mirror's dirty bitmap records what the peer misses;
//! the node's supervisor ([`supervise`]) resumes the mirror once the peer
//! answers again, which copies only that.
//!
//! Who connects when: the primary connects to its secondary (at create,
//! assemble, relink and from the supervisor); the secondary connects back
//! only from its supervisor, once its copy is whole. A daemon opening a
//! connection serves no NBD handshake meanwhile, so two daemons opening
//! connections to each other at the same moment would wait on each other
//! for the servers' handshake limit; the peer's meta record is therefore
//! written by a `qemu-io` of its own (see [`replication`]).
//!
//! What differs from DRBD: a writer whose daemon restarts (or a disk that
//! was disconnected on request, or grown) resyncs its peer in full, since
//! QEMU 7.2's mirror cannot start from a saved bitmap; a guest's flush
//! flushes the local volume, and the peer's volume only receives the
//! writes (they are in its kernel, not necessarily on its disk); a peer
//! that stops answering without closing its connections holds writes for
//! as long as TCP takes to give up; there is no fencing: which copy is
//! current after a split is the master's decision (`on_primary`).

pub mod daemon;
pub mod layout;
pub mod meta;
pub mod replication;
pub mod state;
mod status;
mod supervise;
pub mod tls;

use std::path::PathBuf;

use tracing::{info, warn};

pub use layout::{DrbdDirs, Link, Volumes, META_SIZE_MIB};
pub use supervise::supervise;

use crate::error::{Result, StorageError};
use crate::qmp::Qmp;
use crate::{BlockDevice, DeviceInfo, DiskMode, DiskSpec, StorageContext};
use meta::{DataState, WriterState};
use rpc::instance::{AttachedDisk, DiskTls};
use rpc::storage::BlockDevStatus;
use state::{DiskLock, RunState};

/// A `drbd` disk on this node.
#[derive(Debug)]
pub struct DrbdDevice {
    ctx: StorageContext,
    dirs: DrbdDirs,
    instance: String,
    disk: DiskSpec,
    link: Link,
    volumes: Volumes,
}

impl DrbdDevice {
    /// The device of `disk`, a `drbd` disk of `instance`, on the node of
    /// `ctx` (which must know its name and be one of the link's nodes).
    pub fn open(ctx: &StorageContext, instance: &str, disk: &DiskSpec) -> Result<Self> {
        layout::check_disk_id(&disk.uuid)?;
        let link = Link::of(ctx, disk)?;
        let volumes = Volumes::of(ctx, instance, disk)?;
        Ok(DrbdDevice {
            ctx: ctx.clone(),
            dirs: DrbdDirs::new(ctx.paths()),
            instance: instance.to_string(),
            disk: disk.clone(),
            link,
            volumes,
        })
    }

    fn uuid(&self) -> &str {
        &self.disk.uuid
    }

    fn lock(&self) -> DiskLock {
        DiskLock::of(&self.dirs.state_file(self.uuid()))
    }

    fn live_pid(&self) -> Option<i32> {
        daemon::live_pid(
            &self.dirs.pid_file(self.uuid()),
            &self.dirs.qmp_socket(self.uuid()),
        )
    }

    fn qmp(&self) -> Result<Qmp> {
        daemon::qmp(self.uuid(), &self.dirs.qmp_socket(self.uuid()))
    }

    fn volume_path(&self, data: bool) -> Result<PathBuf> {
        let vol = if data {
            &self.volumes.data
        } else {
            &self.volumes.meta
        };
        vol.assemble()?.ok_or_else(|| StorageError::InvalidDrbd {
            disk: self.uuid().to_string(),
            reason: "a volume has no path".into(),
        })
    }

    /// The cap of background syncs from the disk's `resync-rate` (KiB/s,
    /// Ganeti's parameter), bytes/s.
    fn resync_rate(&self) -> u64 {
        self.disk
            .params
            .get("resync-rate")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .map(|kib| kib.saturating_mul(1024))
            .unwrap_or(0)
    }

    /// What the hypervisor uses: the local daemon's export over NBD/TLS.
    fn attachment(&self, mode: DiskMode) -> AttachedDisk {
        AttachedDisk {
            index: self.disk.index,
            path: None,
            uri: Some(self.uri()),
            mode,
            tls: Some(DiskTls {
                creds_dir: self.dirs.tls_dir(),
                hostname: self.link.local.node.clone(),
            }),
        }
    }

    /// `nbd://<local ip>:<port>/<uuid>`.
    pub fn uri(&self) -> String {
        format!(
            "nbd://{}/{}",
            layout::host_port(&self.link.local.ip, self.link.port),
            layout::exports::disk(self.uuid())
        )
    }

    /// Creates the volumes and the meta data (this node's copy is the
    /// sync source when `on_primary`), then assembles the disk. Creating
    /// an existing disk again keeps its data and meta data. On failure the
    /// volumes this call created are removed.
    pub fn create(&self, on_primary: bool) -> Result<AttachedDisk> {
        if self.disk.size == 0 {
            return Err(StorageError::InvalidSize("a disk must not be 0 MiB".into()));
        }
        let lock = self.lock();
        let _held = lock.lock();
        let mut created: Vec<&dyn BlockDevice> = Vec::new();
        let result = (|| {
            for (vol, size) in [
                (&self.volumes.data, self.volumes.data_size_mib),
                (&self.volumes.meta, self.volumes.meta_size_mib),
            ] {
                let existed = vol.exists()?;
                vol.create(size)?;
                if !existed {
                    created.push(vol.as_ref());
                }
            }
            let meta = self.volume_path(false)?;
            let fresh = created.len() == 2;
            let me = &self.link.local.node;
            match meta::read_data(&meta, self.uuid()) {
                Ok(Some(_)) => {}
                Ok(None) => meta::write_data(&meta, &DataState::new(self.uuid(), on_primary, me))?,
                Err(_) if fresh => {
                    meta::write_data(&meta, &DataState::new(self.uuid(), on_primary, me))?
                }
                Err(e) => return Err(e),
            }
            if !matches!(meta::read_writer(&meta, self.uuid()), Ok(Some(_))) {
                meta::write_writer(&meta, &WriterState::new(self.uuid(), on_primary, false))?;
            }
            self.assemble_locked(on_primary)
        })();
        if result.is_err() {
            if let Err(e) = self.stop_locked() {
                warn!(disk = self.uuid(), error = %objects::error_chain(&e), "cannot stop the storage daemon of a failed creation");
            }
            for vol in created {
                if let Err(e) = vol.remove() {
                    warn!(disk = self.uuid(), error = %objects::error_chain(&e), "cannot remove a volume of a failed creation");
                }
            }
        } else {
            info!(disk = self.uuid(), instance = %self.instance, on_primary, "drbd disk created");
        }
        result
    }

    /// Starts the disk's storage daemon (if it does not run) and, on the
    /// primary, connects it to its peer; sets the node's role from
    /// `on_primary`. A peer that does not answer leaves the disk
    /// degraded, not failed: the supervisor connects once it answers, and
    /// connects a secondary.
    pub fn assemble(&self, on_primary: bool) -> Result<AttachedDisk> {
        let lock = self.lock();
        let _held = lock.lock();
        self.assemble_locked(on_primary)
    }

    fn assemble_locked(&self, on_primary: bool) -> Result<AttachedDisk> {
        let uuid = self.uuid();
        self.dirs.prepare(uuid)?;
        let data = self.volume_path(true)?;
        let meta = self.volume_path(false)?;
        if meta::read_data(&meta, uuid)?.is_none() {
            return Err(StorageError::Meta {
                disk: uuid.to_string(),
                path: meta,
                reason: "no meta data: the disk was not created on this node".into(),
            });
        }
        let state_file = self.dirs.state_file(uuid);
        if self.live_pid().is_some() {
            let mut st = match RunState::load(&state_file)? {
                Some(st) => st,
                None => self.new_state(data, meta, on_primary, false),
            };
            st.standalone = false;
            st.death_reported = false;
            let mut q = self.qmp()?;
            self.relink(&mut q, &mut st)?;
            self.set_role(&mut q, &mut st, on_primary)?;
            self.ensure_connected(&mut q, &mut st);
            st.save(&state_file)?;
            return Ok(self.attachment(self.disk.mode));
        }
        self.cleanup_locked()?;
        tls::write_creds(self.ctx.paths(), &self.dirs.tls_dir())?;
        let writer = meta::read_writer(&meta, uuid)?;
        let skip = on_primary && writer.as_ref().is_some_and(|w| w.primary && w.peer_in_sync);
        // Running: the peer's state is only known to the running daemon.
        meta::write_writer(&meta, &WriterState::new(uuid, on_primary, false))?;
        let spec = daemon::DaemonSpec {
            disk: uuid,
            data: &data,
            meta: &meta,
            link: &self.link,
            dirs: &self.dirs,
        };
        let started = daemon::start(
            uuid,
            &daemon::args(&spec),
            &self.dirs.log_file(uuid),
            &self.dirs.pid_file(uuid),
            &self.dirs.qmp_socket(uuid),
        );
        if let Err(e) = started {
            if let Some(w) = &writer {
                let _ = meta::write_writer(&meta, w);
            }
            let _ = self.cleanup_locked();
            return Err(e);
        }
        info!(disk = uuid, instance = %self.instance, on_primary, uri = %self.uri(), "storage daemon started");
        let mut st = self.new_state(data, meta, on_primary, skip);
        st.save(&state_file)?;
        match self.qmp() {
            Ok(mut q) => self.ensure_connected(&mut q, &mut st),
            Err(e) => {
                warn!(disk = uuid, error = %objects::error_chain(&e), "cannot reach the new storage daemon")
            }
        }
        st.save(&state_file)?;
        Ok(self.attachment(self.disk.mode))
    }

    fn new_state(&self, data: PathBuf, meta: PathBuf, primary: bool, skip: bool) -> RunState {
        RunState {
            instance: self.instance.clone(),
            disk: self.uuid().to_string(),
            index: self.disk.index,
            size_mib: self.disk.size,
            link: self.link.clone(),
            data,
            meta,
            primary,
            resync_rate: self.resync_rate(),
            skip_sync_once: skip,
            peer_marked: skip.then_some(true),
            standalone: false,
            sync_paused: false,
            resync_total: None,
            sample: None,
            rate: None,
            death_reported: false,
        }
    }

    /// Makes this node the primary (sync source) or a secondary. A node
    /// that becomes primary without a healthy replication does not trust
    /// its peer's copy: the next connection syncs it in full.
    fn set_role(&self, q: &mut Qmp, st: &mut RunState, primary: bool) -> Result<()> {
        if st.primary == primary {
            return Ok(());
        }
        if primary {
            let job = replication::job(q, self.uuid())?;
            let healthy =
                job.as_ref().is_some_and(replication::Job::in_sync) && replication::probe(&st.link);
            if healthy {
                st.peer_marked = Some(true);
            } else {
                if job.is_some() {
                    replication::disconnect(q, self.uuid(), &st.link, true)?;
                }
                st.peer_marked = None;
            }
            st.skip_sync_once = false;
        }
        meta::write_writer(&st.meta, &WriterState::new(self.uuid(), primary, false))?;
        info!(disk = self.uuid(), primary, "drbd role changed");
        st.primary = primary;
        Ok(())
    }

    /// Moves a running daemon to the peer of the disk's link, when it
    /// changed (a new secondary): only that node (and this one) may
    /// connect from now on, and a primary syncs the new peer in full. The
    /// local address and the port cannot change while the daemon runs
    /// (its users are connected to them).
    fn relink(&self, q: &mut Qmp, st: &mut RunState) -> Result<()> {
        if st.link == self.link {
            return Ok(());
        }
        if st.link.local != self.link.local || st.link.port != self.link.port {
            return Err(StorageError::InvalidDrbd {
                disk: self.uuid().to_string(),
                reason: format!(
                    "its storage daemon serves {} on {}: shut the disk down to change them",
                    st.link.port, st.link.local.ip
                ),
            });
        }
        let rules = serde_json::json!([
            {"match": tls::node_identity(&self.link.local.node), "policy": "allow"},
            {"match": tls::node_identity(&self.link.peer.node), "policy": "allow"},
        ]);
        q.run(
            "qom-set",
            serde_json::json!({"path": "/objects/authz", "property": "rules", "value": rules}),
        )
        .map_err(|source| StorageError::Qmp {
            disk: self.uuid().to_string(),
            source,
        })?;
        replication::disconnect(q, self.uuid(), &st.link, true)?;
        info!(disk = self.uuid(), old = %st.link.peer.node, new = %self.link.peer.node, "drbd peer changed");
        st.link = self.link.clone();
        st.peer_marked = None;
        st.skip_sync_once = false;
        st.resync_total = None;
        Ok(())
    }

    /// Connects a primary to its peer if the disk does not replicate and
    /// the peer answers; problems are logged (the disk stays degraded).
    /// A secondary is left to the supervisor, which connects it within a
    /// second: when both nodes assemble at once (the master assembles
    /// them in parallel), two connections opened at the same moment wait
    /// on each other (see [`replication`]'s `add_peer_node`).
    fn ensure_connected(&self, q: &mut Qmp, st: &mut RunState) {
        if !st.primary {
            return;
        }
        if let Err(e) = supervise::connect_if_needed(q, &self.dirs, st) {
            warn!(disk = self.uuid(), error = %objects::error_chain(&e), "cannot connect to the peer");
        }
    }

    /// Stops the storage daemon: a mirror in sync is finished cleanly (a
    /// primary then records that its peer has every write), the FUSE
    /// helper, exports and sockets go, and so do the runtime files.
    pub fn shutdown(&self) -> Result<()> {
        let lock = self.lock();
        let _held = lock.lock();
        self.stop_locked()
    }

    fn stop_locked(&self) -> Result<()> {
        let uuid = self.uuid();
        let state_file = self.dirs.state_file(uuid);
        if let Some(pid) = self.live_pid() {
            let st = RunState::load(&state_file).ok().flatten();
            let clean = match self.qmp() {
                Ok(mut q) => replication::disconnect(&mut q, uuid, &self.link, false).unwrap_or_else(|e| {
                    warn!(disk = uuid, error = %objects::error_chain(&e), "cannot stop replicating cleanly");
                    false
                }),
                Err(e) => {
                    warn!(disk = uuid, error = %objects::error_chain(&e), "storage daemon does not answer");
                    false
                }
            };
            self.stop_fuse();
            daemon::stop(uuid, pid, &self.dirs.qmp_socket(uuid))?;
            if let Some(st) = st.filter(|st| st.primary) {
                meta::write_writer(&st.meta, &WriterState::new(uuid, true, clean))?;
            }
            info!(disk = uuid, peer_in_sync = clean, "storage daemon stopped");
        }
        self.cleanup_locked()
    }

    /// Removes what a daemon that is not running left: a FUSE helper and
    /// its mount, pid files, sockets, the runtime state.
    fn cleanup_locked(&self) -> Result<()> {
        let uuid = self.uuid();
        self.stop_fuse();
        daemon::unmount(uuid, &self.dirs.fuse_mount(uuid))?;
        for f in self.dirs.runtime_files(uuid) {
            match std::fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("remove", &f, e)),
            }
        }
        Ok(())
    }

    fn stop_fuse(&self) {
        let uuid = self.uuid();
        let qmp = self.dirs.fuse_qmp_socket(uuid);
        if let Some(pid) = daemon::live_pid(&self.dirs.fuse_pid_file(uuid), &qmp) {
            if let Err(e) = daemon::stop(uuid, pid, &qmp) {
                warn!(disk = uuid, error = %objects::error_chain(&e), "cannot stop the FUSE export");
            }
        }
    }

    /// Shuts the disk down and removes its volumes.
    pub fn remove(&self) -> Result<()> {
        let lock = self.lock();
        let _held = lock.lock();
        self.stop_locked()?;
        self.volumes.data.remove()?;
        self.volumes.meta.remove()?;
        for log in [
            self.dirs.log_file(self.uuid()),
            self.dirs.fuse_log_file(self.uuid()),
        ] {
            let _ = std::fs::remove_file(log);
        }
        info!(disk = self.uuid(), instance = %self.instance, "drbd disk removed");
        Ok(())
    }

    /// The disk's state on this node (`None`: its volumes are not here).
    pub fn status(&self) -> Result<Option<BlockDevStatus>> {
        if !self.volumes.data.exists()? || !self.volumes.meta.exists()? {
            return Ok(None);
        }
        let lock = self.lock();
        let _held = lock.lock();
        status::status(self).map(Some)
    }

    /// (Re)connects to the peer; `primary` sets the role first.
    pub fn attach_net(&self, primary: Option<bool>) -> Result<()> {
        let lock = self.lock();
        let _held = lock.lock();
        let (mut q, mut st) = self.running()?;
        self.relink(&mut q, &mut st)?;
        if let Some(p) = primary {
            self.set_role(&mut q, &mut st, p)?;
        }
        st.standalone = false;
        supervise::connect_if_needed(&mut q, &self.dirs, &mut st)?;
        st.save(&self.dirs.state_file(self.uuid()))
    }

    /// Stops replicating (and keeps it stopped until `attach_net` or an
    /// assemble); the next connection of a primary syncs in full.
    pub fn disconnect_net(&self) -> Result<()> {
        let lock = self.lock();
        let _held = lock.lock();
        let (mut q, mut st) = self.running()?;
        let clean = replication::disconnect(&mut q, self.uuid(), &self.link, false)?;
        info!(disk = self.uuid(), peer = %self.link.peer.node, peer_in_sync = clean, "replication stopped on request");
        st.standalone = true;
        st.peer_marked = None;
        st.skip_sync_once = false;
        st.resync_total = None;
        st.save(&self.dirs.state_file(self.uuid()))
    }

    /// Pauses or resumes the background sync.
    pub fn pause_sync(&self, pause: bool) -> Result<()> {
        let lock = self.lock();
        let _held = lock.lock();
        let (mut q, mut st) = self.running()?;
        if replication::job(&mut q, self.uuid())?.is_some() {
            if pause {
                replication::pause(&mut q, self.uuid())?;
            } else {
                replication::resume(&mut q, self.uuid())?;
            }
        }
        st.sync_paused = pause;
        st.save(&self.dirs.state_file(self.uuid()))
    }

    /// A QMP session and the runtime state of the running daemon.
    fn running(&self) -> Result<(Qmp, RunState)> {
        if self.live_pid().is_none() {
            return Err(StorageError::NotAssembled(self.uuid().to_string()));
        }
        let st = RunState::load(&self.dirs.state_file(self.uuid()))?
            .ok_or_else(|| StorageError::NotAssembled(self.uuid().to_string()))?;
        Ok((self.qmp()?, st))
    }

    /// A path to the disk for local programs (OS scripts): a FUSE export,
    /// served while the returned guard lives. The disk must be assembled.
    pub fn local_path(&self) -> Result<FuseExport> {
        let lock = self.lock();
        let _held = lock.lock();
        let uuid = self.uuid();
        if self.live_pid().is_none() {
            return Err(StorageError::NotAssembled(uuid.to_string()));
        }
        self.stop_fuse();
        let mount = self.dirs.fuse_mount(uuid);
        daemon::unmount(uuid, &mount)?;
        std::fs::File::create(&mount).map_err(|e| StorageError::io("create", &mount, e))?;
        let pidfile = self.dirs.fuse_pid_file(uuid);
        let qmp = self.dirs.fuse_qmp_socket(uuid);
        let started = daemon::start(
            uuid,
            &daemon::fuse_args(uuid, &self.link, &self.dirs),
            &self.dirs.fuse_log_file(uuid),
            &pidfile,
            &qmp,
        );
        let guard = FuseExport {
            disk: uuid.to_string(),
            dirs: self.dirs.clone(),
        };
        started?;
        if !daemon::is_mounted(&mount) {
            return Err(StorageError::Daemon {
                disk: uuid.to_string(),
                reason: format!("the FUSE export at '{}' is not mounted", mount.display()),
            });
        }
        Ok(guard)
    }
}

/// A `drbd` disk's FUSE export for local programs; stopped (helper,
/// mount, files) when dropped.
#[derive(Debug)]
pub struct FuseExport {
    disk: String,
    dirs: DrbdDirs,
}

impl FuseExport {
    pub fn path(&self) -> PathBuf {
        self.dirs.fuse_mount(&self.disk)
    }
}

impl Drop for FuseExport {
    fn drop(&mut self) {
        let d = &self.disk;
        let qmp = self.dirs.fuse_qmp_socket(d);
        let pidfile = self.dirs.fuse_pid_file(d);
        if let Some(pid) = daemon::live_pid(&pidfile, &qmp) {
            if let Err(e) = daemon::stop(d, pid, &qmp) {
                warn!(disk = d, error = %objects::error_chain(&e), "cannot stop the FUSE export");
            }
        }
        if let Err(e) = daemon::unmount(d, &self.dirs.fuse_mount(d)) {
            warn!(disk = d, error = %objects::error_chain(&e), "cannot unmount the FUSE export");
        }
        for f in [self.dirs.fuse_mount(d), pidfile, qmp] {
            let _ = std::fs::remove_file(f);
        }
    }
}

impl BlockDevice for DrbdDevice {
    /// Creates the disk as its primary (see [`DrbdDevice::create`]);
    /// returns the data volume's path.
    fn create(&self, size_mib: u64) -> Result<PathBuf> {
        self.create_on(size_mib, true)
    }

    fn create_on(&self, size_mib: u64, on_primary: bool) -> Result<PathBuf> {
        if size_mib != self.disk.size {
            return Err(StorageError::InvalidSize(format!(
                "a drbd disk is created with its own size ({} MiB), not {size_mib} MiB",
                self.disk.size
            )));
        }
        self.create(on_primary)?;
        self.volume_path(true)
    }

    fn remove(&self) -> Result<()> {
        DrbdDevice::remove(self)
    }

    /// Assembles as primary; a drbd disk has no local path (see
    /// [`DrbdDevice::local_path`]).
    fn assemble(&self) -> Result<Option<PathBuf>> {
        DrbdDevice::assemble(self, true).map(|_| None)
    }

    fn attach(&self, mode: DiskMode, on_primary: bool) -> Result<AttachedDisk> {
        DrbdDevice::assemble(self, on_primary).map(|mut a| {
            a.mode = mode;
            a
        })
    }

    fn shutdown(&self) -> Result<()> {
        DrbdDevice::shutdown(self)
    }

    /// Grows the data volume while the disk is not assembled; the next
    /// start of the primary syncs the peer in full.
    fn grow(&self, amount_mib: u64, dry_run: bool) -> Result<()> {
        if self.live_pid().is_some() {
            return Err(StorageError::InvalidDrbd {
                disk: self.uuid().to_string(),
                reason: "growing an assembled drbd disk is not supported: shut it down first"
                    .into(),
            });
        }
        self.volumes.data.grow(amount_mib, dry_run)?;
        if !dry_run {
            let meta = self.volume_path(false)?;
            if let Some(w) = meta::read_writer(&meta, self.uuid())? {
                meta::write_writer(&meta, &WriterState::new(self.uuid(), w.primary, false))?;
            }
        }
        Ok(())
    }

    fn exists(&self) -> Result<bool> {
        Ok(self.volumes.data.exists()? && self.volumes.meta.exists()?)
    }

    fn info(&self) -> Result<DeviceInfo> {
        let data = self.volumes.data.info()?;
        Ok(DeviceInfo {
            path: None,
            size_mib: data.size_mib,
        })
    }

    fn status(&self) -> Result<Option<BlockDevStatus>> {
        DrbdDevice::status(self)
    }
}

/// Whether the daemon of `disk` on the node of `dirs` runs.
pub fn daemon_running(dirs: &DrbdDirs, disk: &str) -> bool {
    daemon::live_pid(&dirs.pid_file(disk), &dirs.qmp_socket(disk)).is_some()
}

/// What a disk left on the node of `dirs`: runtime files and a FUSE
/// mount (nothing once it is shut down).
pub fn leftovers(dirs: &DrbdDirs, disk: &str) -> Vec<PathBuf> {
    let mut left: Vec<PathBuf> = dirs
        .runtime_files(disk)
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    let mount = dirs.fuse_mount(disk);
    if daemon::is_mounted(&mount) && !left.contains(&mount) {
        left.push(mount);
    }
    left
}
