//! Tap devices of an instance's NICs, made with `ip tuntap` before QEMU
//! starts (QEMU opens them by name, `script=no`) and deleted after it
//! stops.
//!
//! A tap's name is a hash of the node root, the instance and the NIC
//! index, so the two QEMUs of a migration between two roots on one host
//! get different taps. Bridged NICs join the bridge named by `link`;
//! routed NICs are brought up with a route to the NIC's IP (in table
//! `link` when set).

use std::path::Path;
use std::process::Command;

use tracing::{debug, warn};

use crate::error::{HypervisorError, Result};
use crate::{NicMode, NicSpec};

/// The tap of NIC `index` of `instance` on the node rooted at `root`
/// (at most 15 characters, the kernel's limit).
pub fn tap_name(root: &Path, instance: &str, index: usize) -> String {
    // FNV-1a: small and stable across builds.
    let mut h: u32 = 0x811c_9dc5;
    let key = format!("{}\0{instance}", root.display());
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("gnt{h:08x}.{index}")
}

fn ip(args: &[&str]) -> std::result::Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run 'ip': {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "'ip {}' failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Creates and connects the tap `tap` for `nic`.
pub fn setup_tap(instance: &str, index: usize, nic: &NicSpec, tap: &str) -> Result<()> {
    let fail = |msg: String| {
        HypervisorError::Failed(format!("NIC {index} of instance '{instance}': {msg}"))
    };
    if nic.mode == NicMode::Openvswitch {
        return Err(fail(
            "openvswitch mode is not supported by the kvm hypervisor yet".into(),
        ));
    }
    if nic.mode == NicMode::Bridged
        && !Path::new("/sys/class/net")
            .join(&nic.link)
            .join("bridge")
            .is_dir()
    {
        return Err(fail(format!("bridge '{}' does not exist", nic.link)));
    }
    if link_exists(tap) {
        // Left by an earlier run of this very instance (the name says so).
        warn!(instance, tap, "removing a leftover tap device");
        remove_tap(tap);
    }
    ip(&["tuntap", "add", "dev", tap, "mode", "tap"]).map_err(fail)?;
    let configured = (|| {
        match nic.mode {
            NicMode::Bridged => {
                ip(&["link", "set", "dev", tap, "master", &nic.link])?;
                ip(&["link", "set", "dev", tap, "up"])?;
            }
            NicMode::Routed => {
                ip(&["link", "set", "dev", tap, "up"])?;
                if let Some(addr) = nic.ip.as_deref().filter(|a| !a.is_empty()) {
                    let prefix = if addr.contains(':') { "128" } else { "32" };
                    let dst = format!("{addr}/{prefix}");
                    let mut args = vec!["route", "replace", &dst, "dev", tap];
                    if !nic.link.is_empty() {
                        args.extend(["table", nic.link.as_str()]);
                    }
                    ip(&args)?;
                }
            }
            NicMode::Openvswitch => {}
        }
        Ok(())
    })();
    if let Err(e) = configured {
        remove_tap(tap);
        return Err(fail(e));
    }
    debug!(instance, index, tap, mode = nic.mode.as_str(), link = %nic.link, "tap ready");
    Ok(())
}

/// Creates the taps of every NIC; on failure removes those made.
pub fn setup_taps(instance: &str, nics: &[NicSpec], taps: &[String]) -> Result<()> {
    for (i, (nic, tap)) in nics.iter().zip(taps).enumerate() {
        if let Err(e) = setup_tap(instance, i, nic, tap) {
            remove_taps(&taps[..i]);
            return Err(e);
        }
    }
    Ok(())
}

/// Deletes `tap` (routes through it go with it); a missing tap is fine.
pub fn remove_tap(tap: &str) {
    if !link_exists(tap) {
        return;
    }
    if let Err(e) = ip(&["link", "del", "dev", tap]) {
        warn!(tap, error = %e, "cannot delete tap device");
    }
}

pub fn remove_taps(taps: &[String]) {
    for tap in taps {
        remove_tap(tap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_names_fit_and_differ_per_root() {
        let a = tap_name(Path::new("/tmp/node1"), "inst1.example.com", 0);
        let b = tap_name(Path::new("/tmp/node2"), "inst1.example.com", 0);
        let c = tap_name(Path::new("/tmp/node1"), "inst1.example.com", 1);
        assert_ne!(a, b);
        assert_eq!(&a[..a.len() - 1], &c[..c.len() - 1]);
        assert!(a.len() <= 15, "{a}");
        assert!(tap_name(Path::new("/"), "x", 999).len() <= 15);
        assert_eq!(a, tap_name(Path::new("/tmp/node1"), "inst1.example.com", 0));
    }
}
