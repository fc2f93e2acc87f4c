//! Hypervisors: the [`Hypervisor`] trait, the `kvm` and `fake` drivers and the
//! registry that finds a driver by name.
//!
//! Drivers are synchronous; the node daemon calls them from blocking
//! threads. The trait is shaped after what a QEMU/KVM driver needs (runtime
//! state replayed on restart and migration, a migration handshake in four
//! steps, a console command, ballooning).

pub mod error;
pub mod fake;
pub mod kvm;
pub mod linux;
pub mod qmp;
pub mod registry;

use std::time::Duration;

pub use error::{HypervisorError, Result};
pub use objects::NicMode;
pub use registry::Registry;
pub use rpc::hypervisor::{
    ConsoleInfo, HotplugAction, HotplugDevice, HvNodeInfo, InstanceRuntimeInfo, InstanceState,
    MigrationStatus,
};
pub use rpc::instance::{AttachedDisk, BeParams, DiskTls, HvParams, InstanceSpec, NicSpec};

/// How to stop an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopOptions {
    /// Kill instead of asking the guest to shut down.
    pub force: bool,
    /// Give the guest this long to shut down cleanly before failing.
    pub timeout: Duration,
    /// A second attempt (after a first one that timed out).
    pub retry: bool,
}

/// A virtualisation technology on one node.
pub trait Hypervisor: Send + Sync {
    /// The name the cluster configuration uses (`fake`, `kvm`).
    fn name(&self) -> &'static str;

    /// Starts `instance` with its disks already assembled.
    fn start(
        &self,
        instance: &InstanceSpec,
        disks: &[AttachedDisk],
        startup_paused: bool,
    ) -> Result<()>;

    /// Stops `instance` (by name: the instance may be gone from the config).
    fn stop(&self, instance_name: &str, hvparams: &HvParams, opts: StopOptions) -> Result<()>;

    /// Removes what a stopped instance left behind (runtime files,
    /// sockets); called after a successful stop.
    fn cleanup(&self, _instance_name: &str) -> Result<()> {
        Ok(())
    }

    /// Reboots a running instance from inside the guest.
    fn reboot(&self, instance: &InstanceSpec) -> Result<()>;

    /// Information on one instance; `None` if it does not run here.
    fn instance_info(
        &self,
        instance_name: &str,
        hvparams: &HvParams,
    ) -> Result<Option<InstanceRuntimeInfo>>;

    /// Names of the instances that run here.
    fn list_instances(&self, hvparams: &HvParams) -> Result<Vec<String>>;

    /// Information on every instance that runs here.
    fn all_instances_info(&self, hvparams: &HvParams) -> Result<Vec<InstanceRuntimeInfo>>;

    /// Node memory and CPUs as seen by this hypervisor.
    fn node_info(&self, hvparams: &HvParams) -> Result<HvNodeInfo>;

    /// Checks the hypervisor is usable; `Some(problem)` when it is not.
    fn verify(&self, hvparams: &HvParams) -> Result<Option<String>>;

    /// Changes the memory of a running instance to `memory_mib`.
    fn balloon_memory(&self, instance: &InstanceSpec, memory_mib: u64) -> Result<()>;

    /// Tells the running `instance` that its disk `index` now holds
    /// `size_mib` MiB, so that the guest sees it.
    fn resize_disk(&self, _instance: &InstanceSpec, _index: usize, _size_mib: u64) -> Result<()> {
        Err(self.unsupported("disk resize of a running instance"))
    }

    /// Checks that devices can be hotplugged into the running `instance`
    /// (Ganeti's `HotplugSupported`).
    fn hotplug_supported(&self, _instance: &InstanceSpec) -> Result<()> {
        Err(HypervisorError::Hotplug(
            "Hotplug is not supported by this hypervisor".into(),
        ))
    }

    /// Adds, removes or re-plugs `device` of the running `instance`;
    /// `seq` is the device's position among the instance's disks or NICs.
    fn hotplug_device(
        &self,
        _instance: &InstanceSpec,
        _action: HotplugAction,
        _device: &HotplugDevice,
        _seq: usize,
    ) -> Result<()> {
        Err(HypervisorError::Hotplug(
            "Hotplug is not supported by this hypervisor".into(),
        ))
    }

    /// How to reach the console of `instance`.
    fn console(&self, instance: &InstanceSpec, primary_node: &str) -> Result<ConsoleInfo>;

    /// Whether this hypervisor can live-migrate.
    fn can_migrate(&self) -> bool {
        false
    }

    /// Source side, before anything else: opaque data for the target
    /// (e.g. the runtime description of a QEMU process).
    fn migration_info(&self, _instance: &InstanceSpec) -> Result<String> {
        Err(self.unsupported("migration"))
    }

    /// Target side: prepares to receive `instance` on `target` (an address
    /// of this node).
    fn accept_instance(&self, _instance: &InstanceSpec, _info: &str, _target: &str) -> Result<()> {
        Err(self.unsupported("migration"))
    }

    /// Target side, as [`Hypervisor::accept_instance`], given the disks as
    /// assembled on this node: their paths may differ from the source's
    /// (every node of a virtual cluster has its own root).
    fn accept_instance_with_disks(
        &self,
        instance: &InstanceSpec,
        info: &str,
        target: &str,
        disks: &[AttachedDisk],
    ) -> Result<()> {
        let _ = disks;
        self.accept_instance(instance, info, target)
    }

    /// Source side: sends `instance` to `target`.
    fn migrate_instance(
        &self,
        _cluster_name: &str,
        _instance: &InstanceSpec,
        _target: &str,
        _live: bool,
    ) -> Result<()> {
        Err(self.unsupported("migration"))
    }

    /// Target side, after the transfer: keeps the instance running on
    /// success, cleans up otherwise.
    fn finalize_migration_dst(
        &self,
        _instance: &InstanceSpec,
        _info: &str,
        _success: bool,
    ) -> Result<()> {
        Err(self.unsupported("migration"))
    }

    /// Source side, after the transfer: stops the source on success, keeps
    /// it running otherwise.
    fn finalize_migration_src(
        &self,
        _instance: &InstanceSpec,
        _success: bool,
        _live: bool,
    ) -> Result<()> {
        Err(self.unsupported("migration"))
    }

    /// Progress of the running migration of `instance`.
    fn migration_status(&self, _instance: &InstanceSpec) -> Result<MigrationStatus> {
        Err(self.unsupported("migration"))
    }

    /// The "not supported" error of this hypervisor for `operation`.
    fn unsupported(&self, operation: &'static str) -> HypervisorError {
        HypervisorError::Unsupported {
            hypervisor: self.name(),
            operation,
        }
    }
}
