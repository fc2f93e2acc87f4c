//! The KVM hypervisor parameters, typed: Ganeti's names and defaults
//! (`objects::params::default_hvparams("kvm")`) with the instance's values
//! laid over them.

use std::path::PathBuf;

use objects::params::{default_hvparams, fill, get_bool, get_u64};
use serde_json::Value;

use crate::error::{HypervisorError, Result};
use crate::HvParams;

/// Ganeti's default `kvm_path`; the only one that may fall back to
/// `qemu-system-x86_64` on `PATH`.
pub const DEFAULT_KVM_PATH: &str = "/usr/bin/kvm";

/// What `kvm_flag` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvmFlag {
    /// Hardware virtualisation (`-enable-kvm`); also the default.
    Enabled,
    /// Software emulation (TCG).
    Disabled,
}

/// The typed KVM parameters of one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct KvmParams {
    pub kvm_path: PathBuf,
    pub kvm_flag: KvmFlag,
    pub kernel_path: String,
    pub initrd_path: String,
    pub kernel_args: String,
    pub root_path: String,
    pub boot_order: String,
    pub machine_version: String,
    pub cpu_type: String,
    pub cpu_cores: u64,
    pub cpu_threads: u64,
    pub cpu_sockets: u64,
    pub disk_type: String,
    pub disk_cache: String,
    pub nic_type: String,
    pub serial_console: bool,
    pub serial_speed: u64,
    pub vnc_bind_address: String,
    pub migration_port: u16,
    /// MiB/s.
    pub migration_bandwidth: u64,
    /// Milliseconds.
    pub migration_downtime: u64,
    pub migration_live: bool,
    pub acpi: bool,
    /// `reboot_behavior` is `exit`.
    pub reboot_exits: bool,
    pub user_shutdown: bool,
    pub kvm_extra: String,
}

fn invalid(name: &str, reason: impl Into<String>) -> HypervisorError {
    HypervisorError::InvalidParameter {
        name: name.to_string(),
        reason: reason.into(),
    }
}

impl KvmParams {
    /// Parses `hvparams` over Ganeti's defaults; a value of the wrong type
    /// or outside its set is an error naming the parameter.
    pub fn parse(hvparams: &HvParams) -> Result<Self> {
        let p = fill(&default_hvparams("kvm"), hvparams);
        let string = |name: &str| -> Result<String> {
            match p.get(name) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                Some(other) => Err(invalid(name, format!("expected a string, got {other}"))),
            }
        };
        let number = |name: &str| -> Result<u64> {
            match p.get(name) {
                None | Some(Value::Null) => Ok(0),
                Some(Value::String(s)) if s.is_empty() => Ok(0),
                Some(v) => get_u64(&p, name).ok_or_else(|| {
                    invalid(name, format!("expected a non-negative integer, got {v}"))
                }),
            }
        };
        let boolean = |name: &str| -> Result<bool> {
            get_bool(&p, name).ok_or_else(|| {
                invalid(
                    name,
                    format!(
                        "expected a boolean, got {}",
                        p.get(name).unwrap_or(&Value::Null)
                    ),
                )
            })
        };
        let one_of = |name: &str, allowed: &[&str]| -> Result<String> {
            let v = string(name)?;
            if allowed.contains(&v.as_str()) {
                Ok(v)
            } else {
                Err(invalid(
                    name,
                    format!("'{v}' is not one of {}", allowed.join(", ")),
                ))
            }
        };

        let kvm_flag = match string("kvm_flag")?.as_str() {
            "" | "enabled" => KvmFlag::Enabled,
            "disabled" => KvmFlag::Disabled,
            other => {
                return Err(invalid(
                    "kvm_flag",
                    format!("'{other}' is not one of enabled, disabled or empty"),
                ))
            }
        };
        let migration_port = number("migration_port")?;
        let migration_port = u16::try_from(migration_port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                invalid(
                    "migration_port",
                    format!("{migration_port} is not a TCP port"),
                )
            })?;
        let kvm_path = string("kvm_path")?;
        if kvm_path.is_empty() {
            return Err(invalid("kvm_path", "must not be empty"));
        }
        Ok(KvmParams {
            kvm_path: PathBuf::from(kvm_path),
            kvm_flag,
            kernel_path: string("kernel_path")?,
            initrd_path: string("initrd_path")?,
            kernel_args: string("kernel_args")?,
            root_path: string("root_path")?,
            boot_order: one_of("boot_order", &["disk", "cdrom", "network", "floppy"])?,
            machine_version: string("machine_version")?,
            cpu_type: string("cpu_type")?,
            cpu_cores: number("cpu_cores")?,
            cpu_threads: number("cpu_threads")?,
            cpu_sockets: number("cpu_sockets")?,
            disk_type: one_of(
                "disk_type",
                &["paravirtual", "ide", "scsi", "sd", "mtd", "pflash"],
            )?,
            disk_cache: one_of(
                "disk_cache",
                &["default", "none", "writethrough", "writeback"],
            )?,
            nic_type: one_of(
                "nic_type",
                &[
                    "paravirtual",
                    "e1000",
                    "rtl8139",
                    "i82551",
                    "i82557b",
                    "i82559er",
                    "pcnet",
                    "ne2k_pci",
                    "ne2k_isa",
                ],
            )?,
            serial_console: boolean("serial_console")?,
            serial_speed: number("serial_speed")?,
            vnc_bind_address: string("vnc_bind_address")?,
            migration_port,
            migration_bandwidth: number("migration_bandwidth")?,
            migration_downtime: number("migration_downtime")?,
            migration_live: one_of("migration_mode", &["live", "non-live"])? == "live",
            acpi: boolean("acpi")?,
            reboot_exits: one_of("reboot_behavior", &["reboot", "exit"])? == "exit",
            user_shutdown: boolean("user_shutdown")?,
            kvm_extra: string("kvm_extra")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_are_ganetis() {
        let p = KvmParams::parse(&HvParams::new()).unwrap();
        assert_eq!(p.kvm_path, PathBuf::from(DEFAULT_KVM_PATH));
        assert_eq!(p.kvm_flag, KvmFlag::Enabled);
        assert_eq!(p.migration_port, 8102);
        assert_eq!(p.migration_bandwidth, 32);
        assert!(p.serial_console && p.acpi && !p.reboot_exits && p.migration_live);
        assert_eq!(p.disk_type, "paravirtual");
    }

    #[test]
    fn values_override_defaults_and_bad_ones_are_named() {
        let mut hv = HvParams::new();
        hv.insert("kvm_flag".into(), json!("disabled"));
        hv.insert("migration_port".into(), json!("9000"));
        hv.insert("acpi".into(), json!(false));
        let p = KvmParams::parse(&hv).unwrap();
        assert_eq!(p.kvm_flag, KvmFlag::Disabled);
        assert_eq!(p.migration_port, 9000);
        assert!(!p.acpi);

        for (name, value) in [
            ("kvm_flag", json!("maybe")),
            ("migration_port", json!(70000)),
            ("acpi", json!("perhaps")),
            ("disk_type", json!("floppy")),
            ("cpu_cores", json!([1])),
        ] {
            let mut hv = HvParams::new();
            hv.insert(name.into(), value);
            let err = KvmParams::parse(&hv).unwrap_err().to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
    }
}
