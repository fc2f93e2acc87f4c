//! The `kvm` hypervisor: QEMU processes driven over QMP, as Ganeti's
//! `hv_kvm`.
//!
//! Each instance is one daemonized `qemu-system-x86_64` (the `kvm_path`
//! hvparam) with a QMP socket, an optional serial console socket and a pid
//! file under the node's root (see [`runtime`]). Whether an instance runs
//! is decided by its pid file, `/proc/<pid>` and the process's command
//! line (which must name the instance's QMP socket on this node), never by
//! the runtime file alone. Details (run state, ballooned memory) come
//! from QMP.

pub mod cmdline;
mod hotplug;
mod migration;
pub mod nics;
pub mod params;
pub mod process;
pub mod qemu;
pub mod reset_guard;
pub mod runtime;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use objects::paths::Paths;
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::error::{HypervisorError, Result};
use crate::linux::host_node_info;
use crate::qmp::Qmp;
use crate::{
    AttachedDisk, ConsoleInfo, HotplugAction, HotplugDevice, HvNodeInfo, HvParams, Hypervisor,
    InstanceRuntimeInfo, InstanceSpec, InstanceState, MigrationStatus, StopOptions,
};

use cmdline::{LaunchMode, NodeFiles};
use params::{KvmParams, DEFAULT_KVM_PATH};
use runtime::{KvmDirs, KvmRuntime, LaunchSpec};

/// How long a QMP command may take (QEMU under TCG on a busy host is slow).
const QMP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a status query may take before we fall back to the runtime file.
const QMP_QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long QEMU may take to start (until `-daemonize` returns).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a QEMU gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Instances queried at once by `all_instances_info`.
const ALL_INFO_WORKERS: usize = 8;
/// The binary used when the default `kvm_path` does not exist.
const QEMU_BINARY: &str = "qemu-system-x86_64";

/// The KVM hypervisor of one node.
pub struct KvmHypervisor {
    paths: Paths,
    dirs: KvmDirs,
    /// Instances whose start, stop or migration bookkeeping is under way
    /// (one at a time per instance).
    busy: Arc<(Mutex<HashSet<String>>, Condvar)>,
    /// One QMP session at a time per socket (QEMU serves one client).
    qmp_locks: QmpLocks,
    /// The instances guarded against silent reboots around a migration.
    reset_guards: reset_guard::Guards,
    /// Instances paused by a non-live migration (to resume on failure).
    stopped_for_migration: Mutex<HashMap<String, bool>>,
    /// The QEMU binaries' versions (for their workarounds).
    versions: qemu::Versions,
}

impl std::fmt::Debug for KvmHypervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvmHypervisor")
            .field("dir", &self.dirs.base())
            .finish()
    }
}

/// A lock per QMP socket, shared with the post-migration watches.
type QmpLocks = Arc<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent at every await-free step: a panic
    // elsewhere does not make it unusable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl KvmHypervisor {
    pub const NAME: &'static str = "kvm";

    /// The KVM hypervisor of the node rooted at `paths`.
    pub fn new(paths: &Paths) -> Self {
        KvmHypervisor {
            paths: paths.clone(),
            dirs: KvmDirs::new(paths),
            busy: Arc::default(),
            qmp_locks: QmpLocks::default(),
            reset_guards: reset_guard::Guards::default(),
            stopped_for_migration: Mutex::new(HashMap::new()),
            versions: qemu::Versions::default(),
        }
    }

    /// Waits until no other thread works on instance `name`, then holds it
    /// until the guard is dropped.
    fn instance_lock(&self, name: &str) -> InstanceGuard {
        let (set, cv) = &*self.busy;
        let mut busy = lock(set);
        while busy.contains(name) {
            busy = cv.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        busy.insert(name.to_string());
        InstanceGuard {
            busy: self.busy.clone(),
            name: name.to_string(),
        }
    }

    /// The runtime directories (tests look at them).
    pub fn dirs(&self) -> &KvmDirs {
        &self.dirs
    }

    fn check_name(name: &str) -> Result<()> {
        let bad = |reason| HypervisorError::InvalidName {
            name: name.to_string(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("must not be empty"));
        }
        if name.starts_with('.') || name.contains(['/', '\0', ',']) {
            return Err(bad("must not start with '.' or contain '/' or ','"));
        }
        Ok(())
    }

    /// The pid of the instance's live QEMU on this node.
    fn live_pid(&self, name: &str) -> Option<i32> {
        process::live_pid(&self.dirs.pid_file(name), &self.dirs.qmp_socket(name))
    }

    fn running_pid(&self, name: &str) -> Result<i32> {
        Self::check_name(name)?;
        self.live_pid(name)
            .ok_or_else(|| HypervisorError::NotRunning(name.to_string()))
    }

    /// Runs `f` in a QMP session with the instance's QEMU.
    fn with_qmp<T>(
        &self,
        name: &str,
        timeout: Duration,
        f: impl FnOnce(&mut Qmp) -> std::result::Result<T, crate::qmp::QmpError>,
    ) -> Result<T> {
        let sock = self.dirs.qmp_socket(name);
        let sock_lock = lock(&*self.qmp_locks)
            .entry(sock.clone())
            .or_default()
            .clone();
        let _session = lock(&sock_lock);
        let mut qmp = Qmp::connect(&sock, timeout).map_err(|e| qmp_error(name, e))?;
        f(&mut qmp).map_err(|e| qmp_error(name, e))
    }

    /// What guards instance `name` against a silent reboot.
    fn reset_guard(&self, name: &str) -> reset_guard::ResetGuard {
        reset_guard::ResetGuard {
            guards: self.reset_guards.clone(),
            locks: self.qmp_locks.clone(),
            sock: self.dirs.qmp_socket(name),
            name: name.to_string(),
        }
    }

    /// Ends a reset guard (around a migration) before an operation of
    /// the instance's own: its reset and power-off act as configured again.
    fn end_reset_guard(&self, name: &str, params: &KvmParams) {
        if let Err(e) = self.reset_guard(name).disarm(params) {
            warn!(instance = name, error = %e, "cannot restore the instance's reset actions");
        }
    }

    fn qmp_command(&self, name: &str, command: &str, args: Option<Value>) -> Result<Value> {
        self.with_qmp(name, QMP_TIMEOUT, |q| q.execute(command, args))
    }

    /// The QEMU binary for `params`: `kvm_path` when it exists; for
    /// Ganeti's default `/usr/bin/kvm` only, `qemu-system-x86_64` on PATH.
    fn kvm_binary(params: &KvmParams) -> Result<PathBuf> {
        let path = &params.kvm_path;
        if path.is_file() {
            return Ok(path.clone());
        }
        if path == Path::new(DEFAULT_KVM_PATH) {
            if let Some(found) = find_in_path(QEMU_BINARY) {
                return Ok(found);
            }
            return Err(HypervisorError::Failed(format!(
                "kvm_path '{DEFAULT_KVM_PATH}' does not exist and {QEMU_BINARY} is not on PATH"
            )));
        }
        Err(HypervisorError::InvalidParameter {
            name: "kvm_path".into(),
            reason: format!("'{}' does not exist", path.display()),
        })
    }

    fn node_files(&self, name: &str) -> NodeFiles {
        NodeFiles {
            pidfile: self.dirs.pid_file(name),
            qmp: self.dirs.qmp_socket(name),
            serial: self.dirs.serial_socket(name),
            serial_log: self.dirs.serial_log(name),
        }
    }

    /// Starts QEMU for `launch` on this node and writes its runtime file.
    /// On failure nothing is left (no process, taps or runtime files).
    fn launch(&self, launch: &LaunchSpec, mode: &LaunchMode, memory: u64) -> Result<KvmRuntime> {
        let name = &launch.name;
        // This QEMU makes every drive with `-drive`, hotplugged or not.
        let mut launch = launch.clone();
        for d in &mut launch.disk_devs {
            d.blockdev = false;
        }
        let launch = &launch;
        let params = KvmParams::parse(&launch.hvparams)?;
        let binary = Self::kvm_binary(&params)?;
        self.dirs.prepare(name)?;
        // Leftovers of a QEMU that died: its sockets would make QEMU fail.
        self.dirs.remove(name)?;
        if mode.incoming.is_none() {
            // A new boot: keep the last one's console for a post-mortem.
            let log = self.dirs.serial_log(name);
            if log.exists() {
                let old = log.with_extension("serial.old");
                fs::rename(&log, &old).map_err(|e| HypervisorError::io("rename", &log, e))?;
            }
        }
        let taps: Vec<String> = (0..launch.nics.len())
            .map(|i| nics::tap_name(self.paths.root(), name, i))
            .collect();
        let argv = cmdline::build(launch, &params, &self.node_files(name), &taps, mode)?;
        nics::setup_taps(name, &launch.nics, &taps)?;
        let rt = KvmRuntime {
            launch: launch.clone(),
            kvm_path: binary.clone(),
            argv: argv.clone(),
            taps: taps.clone(),
            memory,
            incoming: mode.incoming.is_some(),
            was_running: None,
        };
        let undo = |e: HypervisorError| {
            if let Some(pid) = self.live_pid(name) {
                let _ = process::kill_qemu(name, pid, &self.dirs.qmp_socket(name), KILL_GRACE);
            }
            nics::remove_taps(&taps);
            let _ = self.dirs.remove(name);
            e
        };
        self.write_nic_files(name, &taps).map_err(undo)?;
        rt.save(&self.dirs).map_err(undo)?;
        self.run_qemu(name, &binary, &argv).map_err(undo)?;
        info!(instance = %name, pid = ?self.live_pid(name), incoming = ?mode.incoming, "QEMU started");
        Ok(rt)
    }

    fn write_nic_files(&self, name: &str, taps: &[String]) -> Result<()> {
        let dir = self.dirs.nic_dir(name);
        if let Ok(entries) = fs::read_dir(&dir) {
            // Files of NICs unplugged since.
            for e in entries.flatten() {
                let stale = e
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<usize>().ok())
                    .is_none_or(|i| i >= taps.len());
                if stale {
                    runtime::remove_file(&e.path())?;
                }
            }
        }
        if taps.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(&dir).map_err(|e| HypervisorError::io("create", &dir, e))?;
        for (i, tap) in taps.iter().enumerate() {
            let f = dir.join(i.to_string());
            fs::write(&f, tap).map_err(|e| HypervisorError::io("write", &f, e))?;
        }
        Ok(())
    }

    /// Runs QEMU, which daemonizes once it is set up; its messages go to
    /// the instance's log file.
    fn run_qemu(&self, name: &str, binary: &Path, argv: &[String]) -> Result<()> {
        let log_path = self.dirs.log_file(name);
        let log =
            fs::File::create(&log_path).map_err(|e| HypervisorError::io("create", &log_path, e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| HypervisorError::io("open", &log_path, e))?;
        debug!(instance = name, binary = %binary.display(), ?argv, "running QEMU");
        let mut child = Command::new(binary)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| HypervisorError::io("run", binary, e))?;
        let deadline = Instant::now() + START_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HypervisorError::Failed(format!(
                        "QEMU of instance '{name}' did not finish starting within {}s",
                        START_TIMEOUT.as_secs()
                    )));
                }
                Err(e) => return Err(HypervisorError::io("wait for", binary, e)),
            }
        };
        let log_text = || {
            let text = fs::read_to_string(&log_path).unwrap_or_default();
            let text = text.trim();
            if text.is_empty() {
                "no message".to_string()
            } else {
                text.to_string()
            }
        };
        if !status.success() {
            return Err(HypervisorError::Failed(format!(
                "QEMU of instance '{name}' failed to start ({status}): {}",
                log_text()
            )));
        }
        if self.live_pid(name).is_none() {
            return Err(HypervisorError::Failed(format!(
                "QEMU of instance '{name}' exited right after starting: {}",
                log_text()
            )));
        }
        Ok(())
    }

    /// Removes everything a stopped instance left: taps, sockets, pid and
    /// runtime files.
    fn remove_leftovers(&self, name: &str) -> Result<()> {
        let mut taps = KvmRuntime::load(&self.dirs, name)
            .ok()
            .flatten()
            .map(|rt| rt.taps)
            .unwrap_or_default();
        if let Ok(entries) = fs::read_dir(self.dirs.nic_dir(name)) {
            for e in entries.flatten() {
                if let Ok(tap) = fs::read_to_string(e.path()) {
                    let tap = tap.trim().to_string();
                    if !tap.is_empty() && !taps.contains(&tap) {
                        taps.push(tap);
                    }
                }
            }
        }
        nics::remove_taps(&taps);
        self.dirs.remove(name)
    }

    /// Kills the instance's QEMU (if it is ours) and removes its files.
    fn kill_and_clean(&self, name: &str) -> Result<()> {
        if let Some(pid) = self.live_pid(name) {
            process::kill_qemu(name, pid, &self.dirs.qmp_socket(name), KILL_GRACE)?;
        }
        self.remove_leftovers(name)
    }

    /// Memory to start with: `maxmem` when the host has it available,
    /// down to `minmem`; an error when not even that is available.
    fn startup_memory(&self, instance: &InstanceSpec) -> Result<u64> {
        let host = host_node_info()?;
        let min = instance.beparams.min_memory();
        if host.memory_free < min {
            return Err(HypervisorError::NotEnoughMemory {
                instance: instance.name.clone(),
                needed: min,
                free: host.memory_free,
            });
        }
        Ok(instance.beparams.maxmem.min(host.memory_free).max(min))
    }

    fn info_of(&self, name: &str, timeout: Duration) -> Result<Option<InstanceRuntimeInfo>> {
        Self::check_name(name)?;
        let Some(pid) = self.live_pid(name) else {
            return Ok(None);
        };
        let rt = KvmRuntime::load(&self.dirs, name).ok().flatten();
        if rt.as_ref().is_some_and(|rt| rt.incoming) {
            // A migration target: the instance is not here (yet).
            return Ok(None);
        }
        let (rt_memory, vcpus) = rt
            .as_ref()
            .map(|rt| (rt.memory, rt.launch.vcpus))
            .unwrap_or((0, 1));
        let queried = self.with_qmp(name, timeout, |q| {
            let status = q.execute("query-status", None)?;
            let balloon = q.execute("query-balloon", None).ok();
            Ok((status, balloon))
        });
        let (state, memory) = match queried {
            Ok((status, balloon)) => {
                let state = match status.get("status").and_then(Value::as_str) {
                    Some("running") => InstanceState::Running,
                    Some("shutdown") => InstanceState::Shutdown,
                    _ => InstanceState::Paused,
                };
                let memory = balloon
                    .and_then(|b| b.get("actual").and_then(Value::as_u64))
                    .map(|bytes| bytes >> 20)
                    .unwrap_or(rt_memory);
                (state, memory)
            }
            Err(e) => {
                // The process runs; its details are what we last knew.
                warn!(instance = name, error = %e, "QMP query failed, using the runtime file");
                (InstanceState::Running, rt_memory)
            }
        };
        Ok(Some(InstanceRuntimeInfo {
            name: name.to_string(),
            id: pid.to_string(),
            memory,
            vcpus,
            state,
            cpu_time: process::cpu_time(pid),
        }))
    }

    fn soft_stop(&self, name: &str, pid: i32, params: &KvmParams, timeout: Duration) -> Result<()> {
        let qmp = self.dirs.qmp_socket(name);
        let deadline = Instant::now() + timeout;
        self.qmp_command(name, "system_powerdown", None)?;
        let mut next_status_check = Instant::now();
        loop {
            if process::wait_gone(pid, &qmp, Duration::from_millis(100)) {
                return Ok(());
            }
            if params.user_shutdown && Instant::now() >= next_status_check {
                // With -no-shutdown QEMU stays after the guest powered off.
                next_status_check = Instant::now() + Duration::from_millis(500);
                let status = self.qmp_command(name, "query-status", None);
                if status.is_ok_and(|s| s["status"] == "shutdown") {
                    let _ = self.qmp_command(name, "quit", None);
                    if process::wait_gone(pid, &qmp, KILL_GRACE) {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(HypervisorError::Failed(format!(
                    "instance '{name}' did not shut down within {}s of the ACPI power-down request",
                    timeout.as_secs_f64()
                )));
            }
        }
    }
}

/// Holds an instance for one thread (see [`KvmHypervisor::instance_lock`]).
struct InstanceGuard {
    busy: Arc<(Mutex<HashSet<String>>, Condvar)>,
    name: String,
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        let (set, cv) = &*self.busy;
        lock(set).remove(&self.name);
        cv.notify_all();
    }
}

/// QEMU's run state in a `query-status` answer.
fn status_of(v: &Value) -> &str {
    v.get("status").and_then(Value::as_str).unwrap_or("")
}

fn qmp_error(name: &str, e: crate::qmp::QmpError) -> HypervisorError {
    HypervisorError::Qmp {
        instance: name.to_string(),
        source: e,
    }
}

fn find_in_path(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
}

impl Hypervisor for KvmHypervisor {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn start(
        &self,
        instance: &InstanceSpec,
        disks: &[AttachedDisk],
        startup_paused: bool,
    ) -> Result<()> {
        Self::check_name(&instance.name)?;
        let _guard = self.instance_lock(&instance.name);
        if self.live_pid(&instance.name).is_some() {
            return Err(HypervisorError::AlreadyRunning(instance.name.clone()));
        }
        let memory = self.startup_memory(instance)?;
        let mut launch = LaunchSpec::new(instance, disks);
        let params = KvmParams::parse(&launch.hvparams)?;
        launch.ram_pad_kib = self
            .versions
            .ram_pad_kib(&Self::kvm_binary(&params)?, &params);
        let mode = LaunchMode {
            paused: startup_paused,
            incoming: None,
        };
        self.launch(&launch, &mode, memory)?;
        if memory < launch.maxmem {
            let name = &instance.name;
            if let Err(e) = self.qmp_command(name, "balloon", Some(json!({"value": memory << 20})))
            {
                let _ = self.kill_and_clean(name);
                return Err(e);
            }
        }
        Ok(())
    }

    fn stop(&self, instance_name: &str, hvparams: &HvParams, opts: StopOptions) -> Result<()> {
        let name = instance_name;
        let pid = self.running_pid(name)?;
        let hvparams = KvmRuntime::load(&self.dirs, name)
            .ok()
            .flatten()
            .map(|rt| rt.launch.hvparams)
            .unwrap_or_else(|| hvparams.clone());
        let params = KvmParams::parse(&hvparams)?;
        if opts.force {
            info!(instance = name, pid, "killing QEMU");
            let qmp = self.dirs.qmp_socket(name);
            if params.user_shutdown {
                // With -no-shutdown QEMU pauses on SIGTERM instead of
                // exiting: ask it to quit first.
                let quit = self.with_qmp(name, QMP_QUERY_TIMEOUT, |q| q.execute("quit", None));
                if quit.is_ok() && process::wait_gone(pid, &qmp, KILL_GRACE) {
                    let _guard = self.instance_lock(name);
                    return self.remove_leftovers(name);
                }
            }
            process::kill_qemu(name, pid, &qmp, KILL_GRACE)?;
        } else {
            self.end_reset_guard(name, &params);
            let status = self.qmp_command(name, "query-status", None)?;
            if reset_guard::is_dead(status_of(&status)) {
                // A guest already stopped (by a reset guard): nothing
                // would answer the power button.
                info!(
                    instance = name,
                    pid, "the guest is stopped already: quitting QEMU"
                );
                let qmp = self.dirs.qmp_socket(name);
                let _ = self.qmp_command(name, "quit", None);
                if !process::wait_gone(pid, &qmp, KILL_GRACE) {
                    process::kill_qemu(name, pid, &qmp, KILL_GRACE)?;
                }
            } else {
                info!(instance = name, pid, timeout = ?opts.timeout, "asking the guest to power off");
                self.soft_stop(name, pid, &params, opts.timeout)?;
            }
        }
        let _guard = self.instance_lock(name);
        self.remove_leftovers(name)
    }

    fn cleanup(&self, instance_name: &str) -> Result<()> {
        Self::check_name(instance_name)?;
        let _guard = self.instance_lock(instance_name);
        if self.live_pid(instance_name).is_some() {
            warn!(
                instance = instance_name,
                "not cleaning up a running instance"
            );
            return Ok(());
        }
        self.remove_leftovers(instance_name)
    }

    fn reboot(&self, instance: &InstanceSpec) -> Result<()> {
        self.running_pid(&instance.name)?;
        let params = KvmRuntime::load(&self.dirs, &instance.name)
            .ok()
            .flatten()
            .map_or_else(
                || KvmParams::parse(&instance.hvparams),
                |rt| KvmParams::parse(&rt.launch.hvparams),
            )?;
        self.end_reset_guard(&instance.name, &params);
        info!(instance = %instance.name, "resetting the guest");
        self.qmp_command(&instance.name, "system_reset", None)?;
        Ok(())
    }

    fn instance_info(
        &self,
        instance_name: &str,
        _hvparams: &HvParams,
    ) -> Result<Option<InstanceRuntimeInfo>> {
        self.info_of(instance_name, QMP_QUERY_TIMEOUT)
    }

    fn list_instances(&self, _hvparams: &HvParams) -> Result<Vec<String>> {
        Ok(self
            .dirs
            .names()?
            .into_iter()
            .filter(|name| {
                self.live_pid(name).is_some()
                    && !KvmRuntime::load(&self.dirs, name)
                        .ok()
                        .flatten()
                        .is_some_and(|rt| rt.incoming)
            })
            .collect())
    }

    fn all_instances_info(&self, _hvparams: &HvParams) -> Result<Vec<InstanceRuntimeInfo>> {
        let names: Vec<String> = self
            .dirs
            .names()?
            .into_iter()
            .filter(|n| Self::check_name(n).is_ok())
            .collect();
        // One QMP session per instance: a few of them at a time.
        let workers = names.len().clamp(1, ALL_INFO_WORKERS);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<Vec<(usize, Result<Option<InstanceRuntimeInfo>>)>> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..workers)
                    .map(|_| {
                        scope.spawn(|| {
                            let mut got = Vec::new();
                            loop {
                                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let Some(name) = names.get(i) else { break };
                                got.push((i, self.info_of(name, QMP_QUERY_TIMEOUT)));
                            }
                            got
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            });
        let mut results: Vec<_> = results.into_iter().flatten().collect();
        results.sort_by_key(|(i, _)| *i);
        let mut out = Vec::new();
        for (_, r) in results {
            if let Some(info) = r? {
                out.push(info);
            }
        }
        Ok(out)
    }

    fn node_info(&self, hvparams: &HvParams) -> Result<HvNodeInfo> {
        let mut info = host_node_info()?;
        let used: u64 = self
            .all_instances_info(hvparams)?
            .iter()
            .map(|i| i.memory)
            .sum();
        // The host's available memory already lacks what the guests
        // touched; the rest of the used memory is the node's own.
        info.memory_instances = used;
        info.memory_dom0 = info
            .memory_total
            .saturating_sub(info.memory_free)
            .saturating_sub(used);
        Ok(info)
    }

    fn verify(&self, hvparams: &HvParams) -> Result<Option<String>> {
        let params = match KvmParams::parse(hvparams) {
            Ok(p) => p,
            Err(e) => return Ok(Some(e.to_string())),
        };
        let binary = match Self::kvm_binary(&params) {
            Ok(b) => b,
            Err(e) => return Ok(Some(e.to_string())),
        };
        use std::os::unix::fs::PermissionsExt;
        match fs::metadata(&binary) {
            Ok(m) if m.permissions().mode() & 0o111 != 0 => Ok(None),
            Ok(_) => Ok(Some(format!(
                "the KVM binary '{}' is not executable",
                binary.display()
            ))),
            Err(e) => Ok(Some(format!(
                "cannot read the KVM binary '{}': {e}",
                binary.display()
            ))),
        }
    }

    fn balloon_memory(&self, instance: &InstanceSpec, memory_mib: u64) -> Result<()> {
        let name = &instance.name;
        self.running_pid(name)?;
        self.qmp_command(name, "balloon", Some(json!({"value": memory_mib << 20})))?;
        let _guard = self.instance_lock(name);
        if let Some(mut rt) = KvmRuntime::load(&self.dirs, name)? {
            rt.memory = memory_mib;
            rt.save(&self.dirs)?;
        }
        Ok(())
    }

    /// QMP `block_resize` of the disk's drive (`disk<N>`, the id the
    /// paravirtual and scsi disk types give it); the guest's virtio
    /// device then reports the new capacity. A disk served over NBD (a
    /// `drbd` disk) cannot grow under a running QEMU.
    fn resize_disk(&self, instance: &InstanceSpec, index: usize, size_mib: u64) -> Result<()> {
        let name = &instance.name;
        self.running_pid(name)?;
        let params = KvmParams::parse(&instance.hvparams)?;
        if !matches!(params.disk_type.as_str(), "paravirtual" | "scsi") {
            return Err(HypervisorError::Failed(format!(
                "instance '{name}': disks of type '{}' cannot be resized while it runs",
                params.disk_type
            )));
        }
        // A hotplugged disk has an id of its own, its drive maybe a node.
        let dev = KvmRuntime::load(&self.dirs, name)?.and_then(|rt| {
            let pos = rt.launch.disks.iter().position(|d| d.index == index)?;
            Some(rt.launch.disk_dev(pos))
        });
        let drive = match dev {
            Some(d) if d.blockdev => json!({"node-name": format!("disk{}", d.suffix)}),
            Some(d) => json!({"device": format!("disk{}", d.suffix)}),
            None => json!({"device": format!("disk{index}")}),
        };
        let mut args = drive;
        args["size"] = json!(size_mib << 20);
        self.qmp_command(name, "block_resize", Some(args))?;
        Ok(())
    }

    fn hotplug_supported(&self, instance: &InstanceSpec) -> Result<()> {
        self.hotplug_supported_impl(instance)
    }

    fn hotplug_device(
        &self,
        instance: &InstanceSpec,
        action: HotplugAction,
        device: &HotplugDevice,
        seq: usize,
    ) -> Result<()> {
        self.hotplug_device_impl(instance, action, device, seq)
    }

    fn console(&self, instance: &InstanceSpec, primary_node: &str) -> Result<ConsoleInfo> {
        let name = &instance.name;
        Self::check_name(name)?;
        let params = KvmParams::parse(&instance.hvparams)?;
        if params.serial_console {
            let sock = self.dirs.serial_socket(name);
            return Ok(ConsoleInfo::Ssh {
                instance: name.clone(),
                host: primary_node.to_string(),
                user: "root".into(),
                command: vec![
                    "socat".into(),
                    "STDIO,raw,echo=0,escape=0x1d".into(),
                    format!("UNIX-CONNECT:{}", sock.display()),
                ],
            });
        }
        let bind = params.vnc_bind_address.as_str();
        if !bind.is_empty() && !bind.starts_with('/') {
            self.running_pid(name)?;
            let vnc = self.qmp_command(name, "query-vnc", None)?;
            let port = vnc
                .get("service")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| {
                    HypervisorError::Failed(format!(
                        "QEMU of instance '{name}' reports no VNC port: {vnc}"
                    ))
                })?;
            let host = if bind == "0.0.0.0" || bind == "::" {
                primary_node.to_string()
            } else {
                bind.to_string()
            };
            return Ok(ConsoleInfo::Vnc {
                instance: name.clone(),
                host,
                port,
                display: port.saturating_sub(5900),
            });
        }
        Ok(ConsoleInfo::Message {
            instance: name.clone(),
            message: format!("No serial shell for instance {name}"),
        })
    }

    fn can_migrate(&self) -> bool {
        true
    }

    fn migration_info(&self, instance: &InstanceSpec) -> Result<String> {
        self.migration_info_impl(instance)
    }

    fn accept_instance(&self, instance: &InstanceSpec, info: &str, target: &str) -> Result<()> {
        self.accept_instance_impl(instance, info, target, None)
    }

    fn accept_instance_with_disks(
        &self,
        instance: &InstanceSpec,
        info: &str,
        target: &str,
        disks: &[AttachedDisk],
    ) -> Result<()> {
        self.accept_instance_impl(instance, info, target, Some(disks))
    }

    fn migrate_instance(
        &self,
        _cluster_name: &str,
        instance: &InstanceSpec,
        target: &str,
        live: bool,
    ) -> Result<()> {
        self.migrate_instance_impl(instance, target, live)
    }

    fn finalize_migration_dst(
        &self,
        instance: &InstanceSpec,
        info: &str,
        success: bool,
    ) -> Result<()> {
        self.finalize_migration_dst_impl(instance, info, success)
    }

    fn finalize_migration_src(
        &self,
        instance: &InstanceSpec,
        success: bool,
        live: bool,
    ) -> Result<()> {
        self.finalize_migration_src_impl(instance, success, live)
    }

    fn migration_status(&self, instance: &InstanceSpec) -> Result<MigrationStatus> {
        self.migration_status_impl(instance)
    }
}
