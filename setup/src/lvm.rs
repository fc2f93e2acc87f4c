//! The one LVM question `gnt-cluster init` asks of this machine before
//! there is a node daemon: does the volume group exist, and is it big
//! enough. (The node daemon's storage driver answers every later one.)

use std::process::Command;

use objects::paths::Paths;

/// `Err` with Ganeti's message when this node has no volume group `vg`
/// of at least `min_mib` MiB. A node tree with its own `etc/lvm/lvm.conf`
/// is asked with it, as its node daemon will be.
pub fn check_volume_group(paths: &Paths, vg: &str, min_mib: u64) -> Result<(), String> {
    let mut cmd = Command::new("vgs");
    cmd.args([
        "--config",
        "global {activation=0}",
        "--noheadings",
        "--nosuffix",
        "--units",
        "m",
        "-o",
        "vg_name,vg_size",
    ])
    .env("LVM_SUPPRESS_FD_WARNINGS", "1");
    let conf = paths.root().join("etc/lvm");
    if paths.root() != std::path::Path::new("/") && conf.join("lvm.conf").is_file() {
        cmd.env("LVM_SYSTEM_DIR", &conf);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("Error: cannot run vgs to look for volume group '{vg}': {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "Error: vgs failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let size = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.parse::<f64>().ok()?))
        })
        .find(|(name, _)| name == vg)
        .map(|(_, size)| size as u64);
    match size {
        None => Err(format!("Error: volume group '{vg}' missing")),
        Some(s) if s < min_mib => Err(format!(
            "Error: volume group '{vg}' too small ({min_mib} MiB required, {s} MiB found)"
        )),
        Some(_) => Ok(()),
    }
}
