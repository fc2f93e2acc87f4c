//! Copying a disk from one node to another (`gnt-instance move`, Ganeti's
//! disk transfers), and an export's dump likewise (`gnt-backup`): the
//! source node serves the disk or file read-only over NBD, with mutual
//! TLS and only the target node allowed to connect, from a
//! `qemu-storage-daemon` of its own; the target node copies it with
//! `qemu-img convert`, into its own disk or into a new file.
//!
//! The transfer uses the nodes' replication addresses and a port of the
//! cluster's pool, as `drbd` links do; its runtime files live beside those
//! of the `drbd` disks, named `<disk>.out` (the supervisor of `drbd`
//! disks does not look at them).

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use tracing::info;

use crate::drbd::layout::host_port;
use crate::drbd::tls::{node_identity, write_creds};
use crate::drbd::{daemon, DrbdDirs, Link};
use crate::error::{Result, StorageError};
use crate::{DiskSpec, StorageContext};

/// The name of a disk's export (its runtime files and its NBD export):
/// short, as its QMP socket's path must fit where a `drbd` disk's do.
pub fn export_name(disk: &str) -> String {
    format!("{disk}.out")
}

fn fail(disk: &str, reason: String) -> StorageError {
    StorageError::Transfer {
        disk: disk.to_string(),
        reason,
    }
}

/// The disk's data on this node, as a path.
fn local_path(ctx: &StorageContext, instance: &str, disk: &DiskSpec) -> Result<PathBuf> {
    crate::open(ctx, instance, disk)?
        .assemble()?
        .ok_or_else(|| fail(&disk.uuid, "the disk has no local path".into()))
}

/// Starts serving `disk` (of `instance`) read-only to the peer of `link`;
/// an export of the disk left from an earlier try is replaced.
pub fn start_export(
    ctx: &StorageContext,
    instance: &str,
    disk: &DiskSpec,
    link: &Link,
) -> Result<()> {
    let path = local_path(ctx, instance, disk)?;
    serve(ctx, &disk.uuid, &path, link)?;
    info!(disk = %disk.uuid, instance, peer = %link.peer.node,
          address = %host_port(&link.local.ip, link.port), "disk exported");
    Ok(())
}

/// Starts serving the file or device `path` read-only to the peer of
/// `link`, as the export of `id` (a disk's UUID, or the name of an export's
/// dump); [`stop_export`] with the same `id` stops it.
pub fn serve(ctx: &StorageContext, id: &str, path: &std::path::Path, link: &Link) -> Result<()> {
    let name = export_name(id);
    crate::drbd::layout::check_disk_id(&name)?;
    let dirs = DrbdDirs::new(ctx.paths());
    dirs.prepare_for(&name, &[dirs.qmp_socket(&name)])?;
    write_creds(ctx.paths(), &dirs.tls_dir())?;
    stop_export(ctx, id)?;
    let o = |v: Value| v.to_string();
    let args: Vec<String> = [
        (
            "--object",
            o(json!({"qom-type": "tls-creds-x509", "id": "tls-server",
                     "dir": dirs.tls_dir(), "endpoint": "server", "verify-peer": true})),
        ),
        (
            "--object",
            o(
                json!({"qom-type": "authz-list", "id": "authz", "policy": "deny",
                     "rules": [{"match": node_identity(&link.peer.node), "policy": "allow"}]}),
            ),
        ),
        (
            "--blockdev",
            o(
                json!({"driver": daemon::driver(path), "node-name": "file", "filename": path,
                     "read-only": true}),
            ),
        ),
        (
            "--blockdev",
            o(json!({"driver": "raw", "node-name": "src", "file": "file", "read-only": true})),
        ),
        (
            "--nbd-server",
            o(json!({"addr": {"type": "inet", "host": link.local.ip,
                              "port": link.port.to_string()},
                     "tls-creds": "tls-server", "tls-authz": "authz"})),
        ),
        (
            "--export",
            o(
                json!({"type": "nbd", "id": "export", "node-name": "src", "name": name,
                     "writable": false}),
            ),
        ),
        (
            "--chardev",
            format!(
                "socket,id=qmp,path={},server=on,wait=off",
                dirs.qmp_socket(&name)
                    .display()
                    .to_string()
                    .replace(',', ",,")
            ),
        ),
        ("--monitor", "chardev=qmp".into()),
        ("--pidfile", dirs.pid_file(&name).display().to_string()),
    ]
    .into_iter()
    .flat_map(|(flag, v)| [flag.to_string(), v])
    .chain(std::iter::once("--daemonize".to_string()))
    .collect();
    daemon::start(
        &name,
        &args,
        &dirs.log_file(&name),
        &dirs.pid_file(&name),
        &dirs.qmp_socket(&name),
    )?;
    Ok(())
}

/// Stops serving disk `disk` (nothing to do when it is not served).
pub fn stop_export(ctx: &StorageContext, disk: &str) -> Result<()> {
    let name = export_name(disk);
    crate::drbd::layout::check_disk_id(&name)?;
    let dirs = DrbdDirs::new(ctx.paths());
    let (pid, qmp) = (dirs.pid_file(&name), dirs.qmp_socket(&name));
    if let Some(p) = daemon::live_pid(&pid, &qmp) {
        daemon::stop(&name, p, &qmp)?;
    }
    for f in [pid, qmp] {
        match std::fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("remove", &f, e)),
        }
    }
    Ok(())
}

/// Copies disk `src` (its UUID), served by the peer of `link`, into
/// `dst` (of `instance`) on this node.
pub fn import(
    ctx: &StorageContext,
    instance: &str,
    dst: &DiskSpec,
    link: &Link,
    src: &str,
) -> Result<()> {
    let path = local_path(ctx, instance, dst)?;
    fetch(ctx, src, link, &path, true)?;
    info!(disk = %dst.uuid, instance, from = %link.peer.node, "disk imported");
    Ok(())
}

/// Copies what the peer of `link` serves as the export of `src` into
/// `path`: over its data when `existing` (a disk as large), else into a new
/// raw file (whose size QEMU rounds up to whole 512-byte sectors).
pub fn fetch(
    ctx: &StorageContext,
    src: &str,
    link: &Link,
    path: &std::path::Path,
    existing: bool,
) -> Result<()> {
    let name = export_name(src);
    crate::drbd::layout::check_disk_id(&name)?;
    let dirs = DrbdDirs::new(ctx.paths());
    dirs.prepare_for(&name, &[])?;
    write_creds(ctx.paths(), &dirs.tls_dir())?;
    let mut cmd = Command::new("qemu-img");
    cmd.arg("convert");
    if existing {
        cmd.arg("-n");
    }
    let out = cmd
        .args(["-O", "raw", "--object"])
        .arg(format!(
            "tls-creds-x509,id=tls0,dir={},endpoint=client",
            dirs.tls_dir().display()
        ))
        .arg("--image-opts")
        .arg(format!(
            "driver=nbd,server.type=inet,server.host={},server.port={},export={name},\
             tls-creds=tls0,tls-hostname={}",
            link.peer.ip, link.port, link.peer.node
        ))
        .arg(path)
        .output()
        .map_err(|e| fail(src, format!("cannot run qemu-img: {e}")))?;
    if !out.status.success() {
        return Err(fail(
            src,
            format!(
                "copying from node {} failed ({}): {}",
                link.peer.node,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}
