//! The `fake` hypervisor: instances are state files, nothing runs.
//!
//! As in Ganeti, each running instance is a file
//! `var/run/ganeti/fake-hypervisor/<name>` holding its id, memory (MiB) and
//! vCPUs, one per line (we add a fourth line, the state). Memory is
//! accounted against the node's: a start fails when the node cannot give
//! the instance its minimum memory. Migration moves the state file from
//! the source node's tree to the target's.
//!
//! The node's memory and CPUs are the host's unless `GANETI_FAKE_MEMORY`
//! (MiB) and `GANETI_FAKE_CPUS` say otherwise, so a virtual cluster can give
//! each node its own size.

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Mutex;

use objects::paths::Paths;
use tracing::debug;

use crate::error::{HypervisorError, Result};
use crate::linux::host_node_info;
use crate::{
    AttachedDisk, ConsoleInfo, HvNodeInfo, HvParams, Hypervisor, InstanceRuntimeInfo, InstanceSpec,
    InstanceState, MigrationStatus, StopOptions,
};

/// Environment variable: total node memory (MiB) the fake hypervisor reports.
pub const MEMORY_ENV: &str = "GANETI_FAKE_MEMORY";
/// Environment variable: number of CPUs the fake hypervisor reports.
pub const CPUS_ENV: &str = "GANETI_FAKE_CPUS";

/// The node size the fake hypervisor pretends to have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FakeNodeSize {
    /// Total memory in MiB; the host's when `None`.
    pub memory_mib: Option<u64>,
    /// CPU count; the host's when `None`.
    pub cpus: Option<u32>,
}

impl FakeNodeSize {
    /// From `GANETI_FAKE_MEMORY` / `GANETI_FAKE_CPUS`; unset or unparsable
    /// values mean the host's.
    pub fn from_env() -> Self {
        let num = |var: &str| {
            std::env::var(var)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        FakeNodeSize {
            memory_mib: num(MEMORY_ENV),
            cpus: num(CPUS_ENV).and_then(|c| u32::try_from(c).ok()),
        }
    }
}

/// The fake hypervisor of one node.
#[derive(Debug)]
pub struct FakeHypervisor {
    dir: PathBuf,
    size: FakeNodeSize,
    /// Serialises starts so that two cannot both take the last memory.
    lock: Mutex<()>,
}

impl FakeHypervisor {
    pub const NAME: &'static str = "fake";

    /// A fake hypervisor keeping its state under `paths`.
    pub fn new(paths: &Paths, size: FakeNodeSize) -> Self {
        FakeHypervisor {
            dir: paths.hypervisor_run_dir(Self::NAME),
            size,
            lock: Mutex::new(()),
        }
    }

    /// Sized from the environment (see [`FakeNodeSize::from_env`]).
    pub fn from_env(paths: &Paths) -> Self {
        Self::new(paths, FakeNodeSize::from_env())
    }

    fn state_file(&self, name: &str) -> Result<PathBuf> {
        let bad = |reason| HypervisorError::InvalidName {
            name: name.to_string(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("must not be empty"));
        }
        if name.starts_with('.') || name.contains('/') || name.contains('\0') {
            return Err(bad("must not start with '.' or contain '/'"));
        }
        Ok(self.dir.join(name))
    }

    fn ensure_dir(&self) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| HypervisorError::io("create", &self.dir, e))
    }

    fn is_alive(&self, name: &str) -> Result<bool> {
        Ok(self.state_file(name)?.exists())
    }

    fn mark_up(&self, instance: &InstanceSpec, memory: u64, state: InstanceState) -> Result<()> {
        self.ensure_dir()?;
        let file = self.state_file(&instance.name)?;
        let state = match state {
            InstanceState::Running => "running",
            InstanceState::Paused => "paused",
            InstanceState::Shutdown => "shutdown",
        };
        let text = format!("0\n{memory}\n{}\n{state}\n", instance.beparams.vcpus);
        // Write then rename, so a reader never sees half a file.
        let tmp = self.dir.join(format!(".{}.tmp", instance.name));
        fs::write(&tmp, text).map_err(|e| HypervisorError::io("write", &tmp, e))?;
        fs::rename(&tmp, &file).map_err(|e| HypervisorError::io("rename", &file, e))
    }

    fn mark_down(&self, name: &str) -> Result<()> {
        let file = self.state_file(name)?;
        match fs::remove_file(&file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(HypervisorError::io("remove", &file, e)),
        }
    }

    fn read_info(&self, name: &str) -> Result<Option<InstanceRuntimeInfo>> {
        let file = self.state_file(name)?;
        let text = match fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(HypervisorError::io("read", &file, e)),
        };
        let mut lines = text.lines().map(str::trim);
        let id = lines.next().unwrap_or("-1").to_string();
        let memory = lines.next().and_then(|l| l.parse().ok()).unwrap_or(0);
        let vcpus = lines.next().and_then(|l| l.parse().ok()).unwrap_or(1);
        let state = match lines.next() {
            Some("paused") => InstanceState::Paused,
            _ => InstanceState::Running,
        };
        Ok(Some(InstanceRuntimeInfo {
            name: name.to_string(),
            id,
            memory,
            vcpus,
            state,
            cpu_time: 0.0,
        }))
    }

    fn names(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(HypervisorError::io("list", &self.dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| HypervisorError::io("list", &self.dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                if !name.starts_with('.') {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Memory used by running instances, MiB.
    fn used_memory(&self, except: Option<&str>) -> Result<u64> {
        Ok(self
            .all_instances_info(&HvParams::new())?
            .iter()
            .filter(|i| Some(i.name.as_str()) != except)
            .map(|i| i.memory)
            .sum())
    }

    fn node_size(&self) -> Result<HvNodeInfo> {
        let mut info = match (self.size.memory_mib, self.size.cpus) {
            (Some(mem), Some(cpus)) => HvNodeInfo {
                memory_total: mem,
                memory_free: mem,
                memory_dom0: 0,
                memory_instances: 0,
                cpu_total: cpus,
                cpu_dom0: 0,
                cpu_nodes: 1,
                cpu_sockets: 1,
            },
            _ => host_node_info()?,
        };
        if let Some(mem) = self.size.memory_mib {
            info.memory_total = mem;
            info.memory_free = mem;
            info.memory_dom0 = 0;
        }
        if let Some(cpus) = self.size.cpus {
            info.cpu_total = cpus;
        }
        Ok(info)
    }

    /// Memory to start `instance` with: as much as possible up to maxmem,
    /// failing when even minmem is not free.
    fn startup_memory(&self, instance: &InstanceSpec) -> Result<u64> {
        let size = self.node_size()?;
        let free = size
            .memory_free
            .saturating_sub(self.used_memory(Some(&instance.name))?);
        let min = instance.beparams.min_memory();
        if free < min {
            return Err(HypervisorError::NotEnoughMemory {
                instance: instance.name.clone(),
                needed: min,
                free,
            });
        }
        Ok(instance.beparams.maxmem.min(free).max(min))
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is (): a poisoned lock holds nothing broken.
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Hypervisor for FakeHypervisor {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn start(
        &self,
        instance: &InstanceSpec,
        _disks: &[AttachedDisk],
        startup_paused: bool,
    ) -> Result<()> {
        let _guard = self.locked();
        if self.is_alive(&instance.name)? {
            return Err(HypervisorError::AlreadyRunning(instance.name.clone()));
        }
        let memory = self.startup_memory(instance)?;
        let state = if startup_paused {
            InstanceState::Paused
        } else {
            InstanceState::Running
        };
        self.mark_up(instance, memory, state)
    }

    fn stop(&self, instance_name: &str, _hvparams: &HvParams, _opts: StopOptions) -> Result<()> {
        if !self.is_alive(instance_name)? {
            return Err(HypervisorError::NotRunning(instance_name.to_string()));
        }
        self.mark_down(instance_name)
    }

    fn reboot(&self, instance: &InstanceSpec) -> Result<()> {
        if !self.is_alive(&instance.name)? {
            return Err(HypervisorError::NotRunning(instance.name.clone()));
        }
        Ok(())
    }

    fn instance_info(
        &self,
        instance_name: &str,
        _hvparams: &HvParams,
    ) -> Result<Option<InstanceRuntimeInfo>> {
        self.read_info(instance_name)
    }

    fn list_instances(&self, _hvparams: &HvParams) -> Result<Vec<String>> {
        self.names()
    }

    fn all_instances_info(&self, _hvparams: &HvParams) -> Result<Vec<InstanceRuntimeInfo>> {
        let mut out = Vec::new();
        for name in self.names()? {
            // An instance stopped meanwhile is simply not listed.
            if let Some(info) = self.read_info(&name)? {
                out.push(info);
            }
        }
        Ok(out)
    }

    fn node_info(&self, _hvparams: &HvParams) -> Result<HvNodeInfo> {
        let mut info = self.node_size()?;
        let used = self.used_memory(None)?;
        info.memory_instances = used;
        info.memory_free = info.memory_free.saturating_sub(used);
        Ok(info)
    }

    fn verify(&self, _hvparams: &HvParams) -> Result<Option<String>> {
        if self.dir.is_dir() {
            Ok(None)
        } else {
            Ok(Some(format!(
                "the required directory '{}' does not exist",
                self.dir.display()
            )))
        }
    }

    fn balloon_memory(&self, instance: &InstanceSpec, memory_mib: u64) -> Result<()> {
        let _guard = self.locked();
        let Some(info) = self.read_info(&instance.name)? else {
            return Err(HypervisorError::NotRunning(instance.name.clone()));
        };
        self.mark_up(instance, memory_mib, info.state)
    }

    /// The fake instance has no disk to look at: running is enough.
    fn resize_disk(&self, instance: &InstanceSpec, _index: usize, _size_mib: u64) -> Result<()> {
        let _guard = self.locked();
        match self.read_info(&instance.name)? {
            Some(_) => Ok(()),
            None => Err(HypervisorError::NotRunning(instance.name.clone())),
        }
    }

    fn console(&self, instance: &InstanceSpec, _primary_node: &str) -> Result<ConsoleInfo> {
        Ok(ConsoleInfo::Message {
            instance: instance.name.clone(),
            message: "Console not available for fake hypervisor".into(),
        })
    }

    fn can_migrate(&self) -> bool {
        true
    }

    fn migration_info(&self, _instance: &InstanceSpec) -> Result<String> {
        Ok(String::new())
    }

    fn accept_instance(&self, instance: &InstanceSpec, _info: &str, _target: &str) -> Result<()> {
        if self.is_alive(&instance.name)? {
            return Err(HypervisorError::Failed(format!(
                "cannot accept instance '{}': it is already running on this node",
                instance.name
            )));
        }
        Ok(())
    }

    fn migrate_instance(
        &self,
        _cluster_name: &str,
        instance: &InstanceSpec,
        target: &str,
        live: bool,
    ) -> Result<()> {
        if !self.is_alive(&instance.name)? {
            return Err(HypervisorError::NotRunning(instance.name.clone()));
        }
        debug!(instance = %instance.name, target, live, "fake migration");
        Ok(())
    }

    fn finalize_migration_dst(
        &self,
        instance: &InstanceSpec,
        _info: &str,
        success: bool,
    ) -> Result<()> {
        let _guard = self.locked();
        if success {
            let memory = self.startup_memory(instance)?;
            self.mark_up(instance, memory, InstanceState::Running)
        } else {
            self.mark_down(&instance.name)
        }
    }

    fn finalize_migration_src(
        &self,
        instance: &InstanceSpec,
        success: bool,
        _live: bool,
    ) -> Result<()> {
        if success {
            self.mark_down(&instance.name)?;
        }
        Ok(())
    }

    fn migration_status(&self, _instance: &InstanceSpec) -> Result<MigrationStatus> {
        Ok(MigrationStatus {
            status: "completed".into(),
            transferred_ram: None,
            total_ram: None,
            total_time_ms: None,
            downtime_ms: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::BeParams;

    fn spec(name: &str, maxmem: u64, minmem: u64) -> InstanceSpec {
        InstanceSpec {
            name: name.into(),
            uuid: format!("uuid-{name}"),
            primary_node: "node1".into(),
            secondary_nodes: vec![],
            hypervisor: "fake".into(),
            hvparams: HvParams::new(),
            beparams: BeParams {
                maxmem,
                minmem: Some(minmem),
                vcpus: 2,
                auto_balance: true,
                always_failover: false,
                spindle_use: 1,
            },
            os: "tiny".into(),
            osparams: Default::default(),
            disks: vec![],
            nics: vec![],
            tags: vec![],
        }
    }

    fn hv(root: &std::path::Path, memory: u64) -> FakeHypervisor {
        FakeHypervisor::new(
            &Paths::new(root),
            FakeNodeSize {
                memory_mib: Some(memory),
                cpus: Some(4),
            },
        )
    }

    const STOP: StopOptions = StopOptions {
        force: false,
        timeout: Duration::from_secs(1),
        retry: false,
    };

    #[test]
    fn start_writes_a_state_file_and_stop_removes_it() {
        let tmp = tempfile::tempdir().unwrap();
        let hv = hv(tmp.path(), 4096);
        let inst = spec("inst1", 512, 256);
        hv.start(&inst, &[], false).unwrap();
        let file = tmp.path().join("var/run/ganeti/fake-hypervisor/inst1");
        assert_eq!(fs::read_to_string(&file).unwrap(), "0\n512\n2\nrunning\n");
        assert_eq!(hv.list_instances(&HvParams::new()).unwrap(), vec!["inst1"]);
        let info = hv
            .instance_info("inst1", &HvParams::new())
            .unwrap()
            .unwrap();
        assert_eq!(
            (info.memory, info.vcpus, info.state),
            (512, 2, InstanceState::Running)
        );

        hv.stop("inst1", &HvParams::new(), STOP).unwrap();
        assert!(!file.exists());
        assert!(hv
            .instance_info("inst1", &HvParams::new())
            .unwrap()
            .is_none());
        assert!(matches!(
            hv.stop("inst1", &HvParams::new(), STOP),
            Err(HypervisorError::NotRunning(_))
        ));
    }

    #[test]
    fn starting_twice_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let hv = hv(tmp.path(), 4096);
        hv.start(&spec("inst1", 512, 512), &[], false).unwrap();
        let err = hv.start(&spec("inst1", 512, 512), &[], false).unwrap_err();
        assert!(matches!(err, HypervisorError::AlreadyRunning(_)), "{err}");
    }

    #[test]
    fn memory_is_accounted_against_the_node() {
        let tmp = tempfile::tempdir().unwrap();
        let hv = hv(tmp.path(), 1024);
        let none = HvParams::new();
        assert_eq!(hv.node_info(&none).unwrap().memory_free, 1024);
        hv.start(&spec("a", 600, 600), &[], false).unwrap();
        let info = hv.node_info(&none).unwrap();
        assert_eq!(
            (info.memory_total, info.memory_free, info.memory_instances),
            (1024, 424, 600)
        );
        assert_eq!(info.cpu_total, 4);

        // Not even minmem fits: refused, nothing written.
        let err = hv.start(&spec("b", 512, 512), &[], false).unwrap_err();
        match err {
            HypervisorError::NotEnoughMemory { needed, free, .. } => {
                assert_eq!((needed, free), (512, 424))
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(hv.list_instances(&none).unwrap(), vec!["a"]);

        // minmem fits but maxmem does not: started with what is free.
        hv.start(&spec("c", 1000, 200), &[], false).unwrap();
        assert_eq!(hv.instance_info("c", &none).unwrap().unwrap().memory, 424);
        assert_eq!(hv.node_info(&none).unwrap().memory_free, 0);

        hv.stop("a", &none, STOP).unwrap();
        assert_eq!(hv.node_info(&none).unwrap().memory_free, 600);
    }

    #[test]
    fn all_instances_info_lists_every_instance() {
        let tmp = tempfile::tempdir().unwrap();
        let hv = hv(tmp.path(), 4096);
        hv.start(&spec("a", 100, 100), &[], false).unwrap();
        hv.start(&spec("b", 200, 200), &[], true).unwrap();
        let all = hv.all_instances_info(&HvParams::new()).unwrap();
        let got: Vec<_> = all
            .iter()
            .map(|i| (i.name.as_str(), i.memory, i.state))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", 100, InstanceState::Running),
                ("b", 200, InstanceState::Paused)
            ]
        );
    }

    #[test]
    fn balloon_changes_the_memory_of_a_running_instance() {
        let tmp = tempfile::tempdir().unwrap();
        let hv = hv(tmp.path(), 4096);
        let inst = spec("a", 1000, 500);
        assert!(hv.balloon_memory(&inst, 600).is_err());
        hv.start(&inst, &[], false).unwrap();
        hv.balloon_memory(&inst, 600).unwrap();
        assert_eq!(
            hv.instance_info("a", &HvParams::new())
                .unwrap()
                .unwrap()
                .memory,
            600
        );
    }

    #[test]
    fn verify_reports_a_missing_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let hv = hv(tmp.path(), 4096);
        let problem = hv.verify(&HvParams::new()).unwrap().unwrap();
        assert!(problem.contains("fake-hypervisor"), "{problem}");
        hv.start(&spec("a", 1, 1), &[], false).unwrap();
        assert_eq!(hv.verify(&HvParams::new()).unwrap(), None);
    }

    #[test]
    fn bad_instance_names_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let hv = hv(tmp.path(), 4096);
        for name in ["", "../x", ".hidden", "a/b"] {
            let err = hv.start(&spec(name, 1, 1), &[], false).unwrap_err();
            assert!(
                matches!(err, HypervisorError::InvalidName { .. }),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn migration_moves_the_instance_between_nodes() {
        let src_root = tempfile::tempdir().unwrap();
        let dst_root = tempfile::tempdir().unwrap();
        let src = hv(src_root.path(), 4096);
        let dst = hv(dst_root.path(), 4096);
        let inst = spec("m", 512, 512);
        let none = HvParams::new();
        src.start(&inst, &[], false).unwrap();

        let info = src.migration_info(&inst).unwrap();
        dst.accept_instance(&inst, &info, "127.0.0.2").unwrap();
        src.migrate_instance("cluster", &inst, "127.0.0.2", true)
            .unwrap();
        assert_eq!(src.migration_status(&inst).unwrap().status, "completed");
        dst.finalize_migration_dst(&inst, &info, true).unwrap();
        src.finalize_migration_src(&inst, true, true).unwrap();

        assert!(src.list_instances(&none).unwrap().is_empty());
        assert_eq!(dst.list_instances(&none).unwrap(), vec!["m"]);
        // The target now refuses to accept it again.
        assert!(dst.accept_instance(&inst, "", "127.0.0.2").is_err());
    }

    #[test]
    fn a_failed_migration_leaves_the_source_running() {
        let src_root = tempfile::tempdir().unwrap();
        let dst_root = tempfile::tempdir().unwrap();
        let src = hv(src_root.path(), 4096);
        let dst = hv(dst_root.path(), 4096);
        let inst = spec("m", 512, 512);
        src.start(&inst, &[], false).unwrap();
        dst.accept_instance(&inst, "", "t").unwrap();
        dst.finalize_migration_dst(&inst, "", false).unwrap();
        src.finalize_migration_src(&inst, false, true).unwrap();
        assert_eq!(src.list_instances(&HvParams::new()).unwrap(), vec!["m"]);
        assert!(dst.list_instances(&HvParams::new()).unwrap().is_empty());
    }
}
