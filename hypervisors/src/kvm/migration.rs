//! Live (and non-live) migration between two QEMUs: the source's runtime
//! goes to the target, which starts the same device set waiting on
//! `-incoming tcp:<ip>:<migration_port>`; the source sends itself there
//! and the two sides are finalized by the outcome. A failed migration
//! leaves the instance running on the source and nothing on the target.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::{debug, info, warn};

use super::cmdline::LaunchMode;
use super::params::KvmParams;
use super::reset_guard;
use super::runtime::KvmRuntime;
use super::{lock, process, status_of, KvmHypervisor, KILL_GRACE, QMP_TIMEOUT};
use crate::error::{HypervisorError, Result};
use crate::{AttachedDisk, InstanceSpec, MigrationStatus};

/// How often the source asks QEMU how the migration goes.
const POLL: Duration = Duration::from_millis(10);
/// How long the target may take to finish loading after the source is done.
const TARGET_SETTLE: Duration = Duration::from_secs(60);

fn tcp_uri(target: &str, port: u16) -> String {
    if target.contains(':') && !target.starts_with('[') {
        format!("tcp:[{target}]:{port}")
    } else {
        format!("tcp:{target}:{port}")
    }
}

impl KvmHypervisor {
    fn failed(instance: &str, reason: impl Into<String>) -> HypervisorError {
        HypervisorError::Migration {
            instance: instance.to_string(),
            reason: reason.into(),
        }
    }

    pub(super) fn migration_info_impl(&self, instance: &InstanceSpec) -> Result<String> {
        let name = &instance.name;
        self.running_pid(name)?;
        let mut rt = KvmRuntime::load(&self.dirs, name)?
            .ok_or_else(|| Self::failed(name, "its runtime file is missing on the source node"))?;
        let status = self.qmp_command(name, "query-status", None)?;
        rt.was_running = Some(status_of(&status) == "running");
        Ok(rt.to_json())
    }

    pub(super) fn accept_instance_impl(
        &self,
        instance: &InstanceSpec,
        info: &str,
        target: &str,
        local_disks: Option<&[AttachedDisk]>,
    ) -> Result<()> {
        let name = &instance.name;
        Self::check_name(name)?;
        let mut rt = KvmRuntime::parse(info)
            .map_err(|e| Self::failed(name, format!("bad migration info from the source: {e}")))?;
        if rt.launch.name != *name {
            return Err(Self::failed(
                name,
                format!("the migration info is for instance '{}'", rt.launch.name),
            ));
        }
        if let Some(disks) = local_disks {
            // The same devices, at this node's paths.
            let mut disks = disks.to_vec();
            disks.sort_by_key(|d| d.index);
            let indexes = |d: &[AttachedDisk]| d.iter().map(|d| d.index).collect::<Vec<_>>();
            if indexes(&disks) != indexes(&rt.launch.disks) {
                return Err(Self::failed(
                    name,
                    format!(
                        "the target has disks {:?}, the source {:?}",
                        indexes(&disks),
                        indexes(&rt.launch.disks)
                    ),
                ));
            }
            rt.launch.disks = disks;
        }
        let port = KvmParams::parse(&instance.hvparams)?.migration_port;
        let _guard = self.instance_lock(name);
        if self.live_pid(name).is_some() {
            return Err(Self::failed(name, "it already runs on the target node"));
        }
        let mode = LaunchMode {
            paused: false,
            incoming: Some(tcp_uri(target, port)),
        };
        self.launch(&rt.launch, &mode, rt.memory)?;
        if let Err(e) = self.reset_guard(name).arm() {
            warn!(instance = %name, error = %e, "cannot guard the target against guest resets");
        }
        info!(instance = %name, target, port, "waiting for the incoming migration");
        Ok(())
    }

    pub(super) fn migrate_instance_impl(
        &self,
        instance: &InstanceSpec,
        target: &str,
        live: bool,
    ) -> Result<()> {
        let name = &instance.name;
        let pid = self.running_pid(name)?;
        let params = KvmParams::parse(&instance.hvparams)?;
        if !live {
            let status = self.qmp_command(name, "query-status", None)?;
            if status_of(&status) == "running" {
                self.qmp_command(name, "stop", None)?;
                lock(&self.stopped_for_migration).insert(name.clone(), true);
            }
        }
        let uri = tcp_uri(target, params.migration_port);
        let guard = self.reset_guard(name);
        self.with_qmp(name, QMP_TIMEOUT, |q| {
            // In the same session as the migration (one QMP connection).
            if let Err(e) = guard.arm_in(q) {
                warn!(instance = %name, error = %e, "cannot guard the source against guest resets");
            }
            q.execute(
                "migrate-set-parameters",
                Some(json!({
                    "max-bandwidth": params.migration_bandwidth << 20,
                    "downtime-limit": params.migration_downtime,
                })),
            )?;
            q.execute("migrate", Some(json!({"uri": uri})))
        })?;
        info!(instance = %name, %uri, live, "migration started");
        let started = Instant::now();
        let mut qmp_failures = 0;
        loop {
            std::thread::sleep(POLL);
            let status = match self.qmp_command(name, "query-migrate", None) {
                Ok(s) => {
                    qmp_failures = 0;
                    s
                }
                Err(e) => {
                    if !process::is_our_qemu(pid, &self.dirs.qmp_socket(name)) {
                        return Err(Self::failed(name, "the source QEMU died"));
                    }
                    qmp_failures += 1;
                    if qmp_failures >= 5 {
                        return Err(e);
                    }
                    continue;
                }
            };
            match status_of(&status) {
                "completed" => {
                    info!(
                        instance = %name,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        total_time_ms = ?status.get("total-time"),
                        downtime_ms = ?status.get("downtime"),
                        "migration completed"
                    );
                    return Ok(());
                }
                "failed" | "cancelled" => {
                    let desc = status
                        .get("error-desc")
                        .and_then(Value::as_str)
                        .unwrap_or("QEMU gave no reason");
                    return Err(Self::failed(
                        name,
                        format!("QEMU reports '{}': {desc}", status_of(&status)),
                    ));
                }
                other => debug!(instance = %name, status = other, "migration in progress"),
            }
        }
    }

    pub(super) fn migration_status_impl(&self, instance: &InstanceSpec) -> Result<MigrationStatus> {
        let name = &instance.name;
        self.running_pid(name)?;
        let m = self.qmp_command(name, "query-migrate", None)?;
        let ram = |k: &str| m.get("ram").and_then(|r| r.get(k)).and_then(Value::as_u64);
        let status = match status_of(&m) {
            "" => "none",
            s => s,
        };
        Ok(MigrationStatus {
            status: status.to_string(),
            transferred_ram: ram("transferred"),
            total_ram: ram("total"),
            total_time_ms: m.get("total-time").and_then(Value::as_u64),
            downtime_ms: m.get("downtime").and_then(Value::as_u64),
        })
    }

    pub(super) fn finalize_migration_dst_impl(
        &self,
        instance: &InstanceSpec,
        info: &str,
        success: bool,
    ) -> Result<()> {
        let name = &instance.name;
        Self::check_name(name)?;
        if !success {
            info!(instance = %name, "migration failed: removing the target QEMU");
            let _guard = self.instance_lock(name);
            return self.kill_and_clean(name);
        }
        let was_running = KvmRuntime::parse(info)
            .ok()
            .and_then(|rt| rt.was_running)
            .unwrap_or(true);
        self.running_pid(name)
            .map_err(|_| Self::failed(name, "the target QEMU is not running"))?;
        let deadline = Instant::now() + TARGET_SETTLE;
        let status = loop {
            let status = self.qmp_command(name, "query-status", None)?;
            if status_of(&status) != "inmigrate" {
                break status;
            }
            if Instant::now() >= deadline {
                return Err(Self::failed(
                    name,
                    format!(
                        "the target still waits for data after {}s",
                        TARGET_SETTLE.as_secs()
                    ),
                ));
            }
            std::thread::sleep(POLL);
        };
        let _guard = self.instance_lock(name);
        let mut rt = KvmRuntime::load(&self.dirs, name)?
            .ok_or_else(|| Self::failed(name, "the target's runtime file is missing"))?;
        rt.incoming = false;
        rt.was_running = None;
        rt.save(&self.dirs)?;
        let s = status_of(&status);
        if reset_guard::is_dead(s) {
            // The guest reset or powered off while it moved; the guard
            // stopped it (see `reset_guard`).
            return Err(Self::failed(
                name,
                format!(
                    "the guest reset or powered off during the migration (QEMU state '{s}'); \
                     it is kept stopped on the target for inspection, its console is in {}",
                    self.dirs.serial_log(name).display()
                ),
            ));
        }
        if was_running && s != "running" {
            self.qmp_command(name, "cont", None)?;
        }
        self.reset_guard(name)
            .watch(&KvmParams::parse(&rt.launch.hvparams)?);
        info!(instance = %name, "migration finalized on the target");
        Ok(())
    }

    pub(super) fn finalize_migration_src_impl(
        &self,
        instance: &InstanceSpec,
        success: bool,
        live: bool,
    ) -> Result<()> {
        let name = &instance.name;
        Self::check_name(name)?;
        let stopped_by_us = lock(&self.stopped_for_migration)
            .remove(name)
            .unwrap_or(false);
        if success {
            if let Some(pid) = self.live_pid(name) {
                let qmp = self.dirs.qmp_socket(name);
                if let Err(e) = self.qmp_command(name, "quit", None) {
                    debug!(instance = %name, error = %e, "quit failed, killing");
                }
                if !process::wait_gone(pid, &qmp, KILL_GRACE) {
                    process::kill_qemu(name, pid, &qmp, KILL_GRACE)?;
                }
            }
            let _guard = self.instance_lock(name);
            self.remove_leftovers(name)?;
            info!(instance = %name, "migration finalized on the source");
            return Ok(());
        }
        self.running_pid(name)
            .map_err(|_| Self::failed(name, "the source QEMU is gone after a failed migration"))?;
        let m = self.qmp_command(name, "query-migrate", None)?;
        if matches!(
            status_of(&m),
            "setup" | "active" | "pre-switchover" | "device"
        ) {
            warn!(instance = %name, "cancelling the migration still in progress");
            self.qmp_command(name, "migrate_cancel", None)?;
        }
        let status = self.qmp_command(name, "query-status", None)?;
        let s = status_of(&status);
        let params = KvmRuntime::load(&self.dirs, name)?.map_or_else(
            || KvmParams::parse(&instance.hvparams),
            |rt| KvmParams::parse(&rt.launch.hvparams),
        )?;
        self.end_reset_guard(name, &params);
        if reset_guard::is_dead(s) {
            return Err(Self::failed(
                name,
                format!(
                    "the guest reset or powered off during the failed migration (QEMU state \
                     '{s}'); it is kept stopped on the source for inspection, its console is in {}",
                    self.dirs.serial_log(name).display()
                ),
            ));
        }
        if s != "running"
            && (stopped_by_us || !live || matches!(s, "postmigrate" | "finish-migrate"))
        {
            info!(instance = %name, status = s, "resuming the source after a failed migration");
            self.qmp_command(name, "cont", None)?;
        }
        Ok(())
    }
}
