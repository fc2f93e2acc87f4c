//! The types of Ganeti's parameters (`BES_PARAMETER_TYPES`,
//! `HVS_PARAMETER_TYPES`, ...), one table that the CLI (to convert what a
//! user typed) and the master (to check what a client sent) both read.

use serde_json::Value;

use super::{be, default_hvparams, ParamDict};

/// Value types of parameters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VType {
    Str,
    MaybeStr,
    Bool,
    Size,
    Int,
    Float,
}

/// Types of the backend parameters (`BES_PARAMETER_COMPAT`).
pub fn be_type(key: &str) -> Option<VType> {
    Some(match key {
        be::ALWAYS_FAILOVER | be::AUTO_BALANCE => VType::Bool,
        be::MAXMEM | be::MEMORY | be::MINMEM => VType::Size,
        be::SPINDLE_USE | be::VCPUS => VType::Int,
        _ => return None,
    })
}

/// Types of the node parameters (`NDS_PARAMETER_TYPES`).
pub fn nd_type(key: &str) -> Option<VType> {
    Some(match key {
        "cpu_speed" => VType::Float,
        "exclusive_storage" | "ovs" => VType::Bool,
        "oob_program" => VType::Str,
        "ovs_link" | "ovs_name" => VType::MaybeStr,
        "spindle_count" | "ssh_port" => VType::Int,
        _ => return None,
    })
}

/// Types of the NIC parameters (`NICS_PARAMETER_TYPES`).
pub fn nic_type(key: &str) -> Option<VType> {
    matches!(key, "link" | "mode" | "vlan").then_some(VType::Str)
}

/// Types of the disk template parameters (`DISK_DT_TYPES`).
pub fn disk_dt_type(key: &str) -> Option<VType> {
    Some(match key {
        "access" | "disk-barriers" | "disk-custom" | "host" | "metavg" | "net-custom" | "pool"
        | "protocol" | "volume" => VType::Str,
        "c-delay-target" | "c-fill-target" | "c-max-rate" | "c-min-rate" | "c-plan-ahead"
        | "data-stripes" | "meta-stripes" | "port" | "resync-rate" | "stripes" => VType::Int,
        "dynamic-resync" | "meta-barriers" => VType::Bool,
        _ => return None,
    })
}

/// Types of the hypervisor parameters (`HVS_PARAMETER_TYPES`).
pub fn hv_type(key: &str) -> Option<VType> {
    Some(match key {
        "acpi"
        | "pae"
        | "serial_console"
        | "spice_playback_compression"
        | "spice_use_tls"
        | "spice_use_vdagent"
        | "use_bootloader"
        | "use_chroot"
        | "use_guest_agent"
        | "use_localtime"
        | "user_shutdown"
        | "vhost_net"
        | "viridian"
        | "vnc_tls"
        | "vnc_x509_verify"
        | "vnet_hdr" => VType::Bool,
        "cpu_cap"
        | "cpu_cores"
        | "cpu_sockets"
        | "cpu_threads"
        | "cpu_weight"
        | "kvm_pci_reservations"
        | "migration_bandwidth"
        | "migration_downtime"
        | "migration_port"
        | "num_ttys"
        | "serial_speed"
        | "spice_ip_version"
        | "startup_timeout"
        | "virtio_net_queues" => VType::Int,
        "root_path" => VType::MaybeStr,
        "blockdev_prefix"
        | "boot_order"
        | "bootloader_args"
        | "bootloader_path"
        | "cdrom2_image_path"
        | "cdrom_disk_type"
        | "cdrom_image_path"
        | "cpu_mask"
        | "cpu_type"
        | "cpuid"
        | "device_model"
        | "devices"
        | "disk_aio"
        | "disk_cache"
        | "disk_discard"
        | "disk_type"
        | "drop_capabilities"
        | "extra_cgroups"
        | "extra_config"
        | "floppy_image_path"
        | "init_script"
        | "initrd_path"
        | "kernel_args"
        | "kernel_path"
        | "keymap"
        | "kvm_extra"
        | "kvm_flag"
        | "kvm_path"
        | "machine_version"
        | "mem_path"
        | "migration_caps"
        | "migration_mode"
        | "nic_type"
        | "pci_pass"
        | "reboot_behavior"
        | "scsi_controller_type"
        | "security_domain"
        | "security_model"
        | "soundhw"
        | "spice_bind"
        | "spice_image_compression"
        | "spice_jpeg_wan_compression"
        | "spice_password_file"
        | "spice_streaming_video"
        | "spice_tls_ciphers"
        | "spice_zlib_glz_wan_compression"
        | "usb_devices"
        | "usb_mouse"
        | "vga"
        | "vif_script"
        | "vif_type"
        | "vnc_bind_address"
        | "vnc_password_file"
        | "vnc_x509_path"
        | "xen_cmd" => VType::Str,
        _ => return None,
    })
}

/// A parameter that is not known or has a value of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("Unknown backend parameter '{0}'")]
    UnknownBackend(String),
    #[error("Invalid value {value} for backend parameter '{key}'")]
    BadBackend { key: String, value: String },
    #[error("Unknown parameter '{key}' for hypervisor {hv}")]
    UnknownHypervisor { hv: String, key: String },
}

/// Whether `v` is acceptable on the wire for a parameter of type `t`:
/// `null` and `"default"` reset it; numbers may come as strings of digits,
/// as Ganeti's clients send them.
fn wire_value_fits(t: VType, v: &Value) -> bool {
    if v.is_null() || v.as_str() == Some("default") {
        return true;
    }
    match t {
        VType::Size | VType::Int => {
            v.as_u64().is_some() || v.as_str().is_some_and(|s| s.parse::<u64>().is_ok())
        }
        VType::Float => v.is_number() || v.as_str().is_some_and(|s| s.parse::<f64>().is_ok()),
        VType::Bool => v.is_boolean() || v.is_string(),
        VType::Str | VType::MaybeStr => v.is_string(),
    }
}

/// Checks backend parameter names and value types.
pub fn check_beparams(p: &ParamDict) -> Result<(), ParamError> {
    for (k, v) in p {
        let t = be_type(k).ok_or_else(|| ParamError::UnknownBackend(k.clone()))?;
        if !wire_value_fits(t, v) {
            return Err(ParamError::BadBackend {
                key: k.clone(),
                value: v.to_string(),
            });
        }
    }
    Ok(())
}

/// Checks hypervisor parameter names against hypervisor `hv`'s.
pub fn check_hvparams(hv: &str, p: &ParamDict) -> Result<(), ParamError> {
    let known = default_hvparams(hv);
    match p.keys().find(|k| !known.contains_key(*k)) {
        Some(k) => Err(ParamError::UnknownHypervisor {
            hv: hv.to_string(),
            key: k.clone(),
        }),
        None => Ok(()),
    }
}

/// Backend parameters with numbers sent as strings turned into numbers.
pub fn normalize_beparams(p: &ParamDict) -> ParamDict {
    p.iter()
        .map(|(k, v)| {
            let v = match v.as_str().and_then(|s| s.parse::<u64>().ok()) {
                Some(n) => Value::from(n),
                None => v.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn backend_values_are_checked_against_their_types() {
        let ok: ParamDict = [
            ("maxmem", json!("512")),
            ("vcpus", json!(2)),
            ("auto_balance", json!(false)),
            ("minmem", json!("default")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        check_beparams(&ok).unwrap();
        let bad: ParamDict = [("vcpus".to_string(), json!("many"))].into();
        assert_eq!(
            check_beparams(&bad),
            Err(ParamError::BadBackend {
                key: "vcpus".into(),
                value: "\"many\"".into()
            })
        );
        let unknown: ParamDict = [("colour".to_string(), json!("red"))].into();
        assert_eq!(
            check_beparams(&unknown).unwrap_err().to_string(),
            "Unknown backend parameter 'colour'"
        );
    }

    #[test]
    fn hypervisor_parameters_must_be_the_hypervisors() {
        let p: ParamDict = [("kernel_path".to_string(), json!("/k"))].into();
        check_hvparams("kvm", &p).unwrap();
        assert!(check_hvparams("fake", &p).is_err());
    }

    #[test]
    fn every_backend_parameter_has_a_type() {
        for k in super::super::default_beparams().keys() {
            assert!(be_type(k).is_some(), "{k}");
        }
    }
}
