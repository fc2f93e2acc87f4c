//! Parameter dictionaries, their defaults and their inheritance: the cluster
//! sets a value, a node group or an instance may override it.

use std::collections::BTreeMap;

use serde_json::{json, Value};

pub mod types;

/// A parameter dictionary (`hvparams`, `beparams`, ...).
pub type ParamDict = BTreeMap<String, Value>;

/// Backend parameter names (Ganeti's `BES_*`).
pub mod be {
    pub const MAXMEM: &str = "maxmem";
    pub const MINMEM: &str = "minmem";
    pub const MEMORY: &str = "memory";
    pub const VCPUS: &str = "vcpus";
    pub const AUTO_BALANCE: &str = "auto_balance";
    pub const ALWAYS_FAILOVER: &str = "always_failover";
    pub const SPINDLE_USE: &str = "spindle_use";
}

/// Ganeti's default backend parameters.
pub fn default_beparams() -> ParamDict {
    dict(&[
        (be::MAXMEM, json!(128)),
        (be::MINMEM, json!(128)),
        (be::VCPUS, json!(1)),
        (be::AUTO_BALANCE, json!(true)),
        (be::ALWAYS_FAILOVER, json!(false)),
        (be::SPINDLE_USE, json!(1)),
    ])
}

/// Ganeti's default NIC parameters.
pub fn default_nicparams() -> ParamDict {
    dict(&[
        ("mode", json!("bridged")),
        ("link", json!("xen-br0")),
        ("vlan", json!("")),
    ])
}

/// Ganeti's default node parameters.
pub fn default_ndparams() -> ParamDict {
    dict(&[
        ("oob_program", json!("")),
        ("spindle_count", json!(1)),
        ("exclusive_storage", json!(false)),
        ("ovs", json!(false)),
        ("ovs_name", json!("switch1")),
        ("ovs_link", json!("")),
        ("ssh_port", json!(22)),
        // (an integer, as Ganeti writes its default: `cpu_speed: 1`)
        ("cpu_speed", json!(1)),
    ])
}

/// Ganeti's default disk parameters, by disk template
/// (`DISK_DT_DEFAULTS`).
pub fn default_diskparams() -> BTreeMap<String, ParamDict> {
    let kernelspace = || ("access", json!("kernelspace"));
    [
        ("blockdev", dict(&[])),
        ("diskless", dict(&[])),
        (
            "drbd",
            dict(&[
                ("c-delay-target", json!(1)),
                ("c-fill-target", json!(0)),
                ("c-max-rate", json!(61440)),
                ("c-min-rate", json!(4096)),
                ("c-plan-ahead", json!(20)),
                ("data-stripes", json!(1)),
                ("disk-barriers", json!("n")),
                ("disk-custom", json!("")),
                ("dynamic-resync", json!(false)),
                ("meta-barriers", json!(false)),
                ("meta-stripes", json!(1)),
                ("metavg", json!("xenvg")),
                ("net-custom", json!("")),
                ("protocol", json!("C")),
                ("resync-rate", json!(61440)),
            ]),
        ),
        ("ext", dict(&[kernelspace()])),
        ("file", dict(&[])),
        (
            "gluster",
            dict(&[
                kernelspace(),
                ("host", json!("127.0.0.1")),
                ("port", json!(24007)),
                ("volume", json!("gv0")),
            ]),
        ),
        ("plain", dict(&[("stripes", json!(1))])),
        ("rbd", dict(&[kernelspace(), ("pool", json!("rbd"))])),
        ("sharedfile", dict(&[])),
    ]
    .into_iter()
    .map(|(t, d)| (t.to_string(), d))
    .collect()
}

/// Disk parameters `base` overridden by `overrides`, template by template.
pub fn fill_diskparams(
    base: &BTreeMap<String, ParamDict>,
    overrides: &BTreeMap<String, ParamDict>,
) -> BTreeMap<String, ParamDict> {
    let mut out = base.clone();
    for (t, own) in overrides {
        let filled = fill(out.get(t).unwrap_or(&ParamDict::new()), own);
        out.insert(t.clone(), filled);
    }
    out
}

/// Ganeti's default hypervisor parameters for `hv`.
pub fn default_hvparams(hv: &str) -> ParamDict {
    match hv {
        "fake" => dict(&[("migration_mode", json!("live"))]),
        "kvm" => dict(&[
            ("kvm_path", json!("/usr/bin/kvm")),
            ("kvm_flag", json!("")),
            ("kernel_path", json!("/boot/vmlinuz-3-kvmU")),
            ("initrd_path", json!("")),
            ("kernel_args", json!("ro")),
            ("root_path", json!("/dev/vda1")),
            ("boot_order", json!("disk")),
            ("machine_version", json!("")),
            ("cpu_type", json!("")),
            ("cpu_cores", json!(0)),
            ("cpu_threads", json!(0)),
            ("cpu_sockets", json!(0)),
            ("disk_type", json!("paravirtual")),
            ("disk_cache", json!("default")),
            ("nic_type", json!("paravirtual")),
            ("serial_console", json!(true)),
            ("serial_speed", json!(38400)),
            ("vnc_bind_address", json!("")),
            ("migration_port", json!(8102)),
            ("migration_bandwidth", json!(32)),
            ("migration_downtime", json!(30)),
            ("migration_mode", json!("live")),
            ("acpi", json!(true)),
            ("reboot_behavior", json!("reboot")),
            ("user_shutdown", json!(false)),
            ("kvm_extra", json!("")),
        ]),
        _ => ParamDict::new(),
    }
}

/// The default instance policy (Ganeti's `IPOLICY_DEFAULTS`).
pub fn default_ipolicy() -> ParamDict {
    let minmax = json!([{
        "min": {"memory-size": 128, "cpu-count": 1, "disk-count": 1, "disk-size": 1024,
                 "nic-count": 1, "spindle-use": 1},
        "max": {"memory-size": 32768, "cpu-count": 8, "disk-count": 16, "disk-size": 1048576,
                 "nic-count": 8, "spindle-use": 12}
    }]);
    dict(&[
        ("minmax", minmax),
        (
            "std",
            json!({"memory-size": 128, "cpu-count": 1, "disk-count": 1, "disk-size": 1024,
                   "nic-count": 1, "spindle-use": 1}),
        ),
        (
            "disk-templates",
            json!([
                "drbd",
                "plain",
                "sharedfile",
                "diskless",
                "file",
                "blockdev",
                "rbd",
                "ext",
                "gluster"
            ]),
        ),
        ("vcpu-ratio", json!(4)),
        ("spindle-ratio", json!(32)),
    ])
}

/// Builds a dictionary from pairs.
pub fn dict(pairs: &[(&str, Value)]) -> ParamDict {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// `base` with `overrides` laid over it (Ganeti's `FillDict`).
pub fn fill(base: &ParamDict, overrides: &ParamDict) -> ParamDict {
    let mut out = base.clone();
    for (k, v) in overrides {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// Applies an update to a parameter dict as Ganeti's `_GetUpdatedParams`:
/// the value `"default"` (or `null`) removes an override.
pub fn update(old: &ParamDict, changes: &ParamDict) -> ParamDict {
    let mut out = old.clone();
    for (k, v) in changes {
        if v.is_null() || v.as_str() == Some("default") {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Reads an integer parameter.
pub fn get_u64(d: &ParamDict, key: &str) -> Option<u64> {
    match d.get(key)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Reads a boolean parameter.
pub fn get_bool(d: &ParamDict, key: &str) -> Option<bool> {
    match d.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_lays_overrides_over_base() {
        let base = dict(&[("a", json!(1)), ("b", json!(2))]);
        let over = dict(&[("b", json!(3))]);
        let f = fill(&base, &over);
        assert_eq!(f["a"], json!(1));
        assert_eq!(f["b"], json!(3));
    }

    #[test]
    fn update_with_default_removes_override() {
        let old = dict(&[("a", json!(1)), ("b", json!(2))]);
        let ch = dict(&[("a", json!("default")), ("c", json!(5))]);
        let u = update(&old, &ch);
        assert!(!u.contains_key("a"));
        assert_eq!(u["c"], json!(5));
    }

    #[test]
    fn typed_getters_accept_strings() {
        let d = dict(&[("m", json!("512")), ("x", json!("yes"))]);
        assert_eq!(get_u64(&d, "m"), Some(512));
        assert_eq!(get_bool(&d, "x"), Some(true));
    }
}
