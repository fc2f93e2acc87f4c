//! `qemu-storage-daemon` processes: the storage daemon of a `drbd` disk
//! on a node, and the short-lived helper that gives the disk a path
//! through FUSE.
//!
//! A daemon daemonizes once it is set up (so a start either fails with
//! QEMU's message or leaves a working daemon), writes its pid file and is
//! driven over its QMP socket. It is recognised by its pid file and its
//! command line, which names its QMP socket (different per node root, so
//! the daemons of two nodes on one machine are told apart).

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use tracing::{debug, warn};

use super::layout::{exports, DrbdDirs, Link};
use super::tls::node_identity;
use crate::error::{Result, StorageError};
use crate::qmp::Qmp;

/// The program.
pub const BINARY: &str = "qemu-storage-daemon";
/// How long a daemon may take to set itself up.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one QMP command may take (a cancel waits for in-flight I/O).
pub const QMP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a daemon has to quit before it is signalled.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The program on `PATH`.
pub fn binary() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(BINARY))
        .find(|p| p.is_file())
        .ok_or_else(|| StorageError::Daemon {
            disk: String::new(),
            reason: format!("{BINARY} is not on PATH (Debian package qemu-system-common)"),
        })
}

/// A QEMU option value (`key=value,...` syntax): commas doubled.
fn opt(value: &Path) -> String {
    value.display().to_string().replace(',', ",,")
}

/// The `--chardev` of a daemon's QMP socket; also how its process is
/// recognised.
fn qmp_chardev(qmp: &Path) -> String {
    format!("socket,id=qmp,path={},server=on,wait=off", opt(qmp))
}

/// The block driver for a volume: `host_device` for block devices
/// (logical volumes), `file` for files.
pub(crate) fn driver(path: &Path) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    match fs::metadata(path) {
        Ok(m) if m.file_type().is_block_device() => "host_device",
        _ => "file",
    }
}

/// What a disk's storage daemon serves.
#[derive(Debug, Clone)]
pub struct DaemonSpec<'a> {
    pub disk: &'a str,
    pub data: &'a Path,
    pub meta: &'a Path,
    pub link: &'a Link,
    pub dirs: &'a DrbdDirs,
}

/// The storage daemon's arguments: the volumes, the disk as local users
/// see it (`top`), the NBD server on the replication address with mutual
/// TLS (only this node and its peer may connect), its three exports, QMP.
pub fn args(spec: &DaemonSpec<'_>) -> Vec<String> {
    let d = spec.dirs;
    let tls = d.tls_dir();
    let o = |v: Value| v.to_string();
    let mut a: Vec<String> = Vec::new();
    let mut push = |flag: &str, v: String| {
        a.push(flag.to_string());
        a.push(v);
    };
    push(
        "--object",
        o(json!({"qom-type": "tls-creds-x509", "id": "tls-server",
                 "dir": tls, "endpoint": "server", "verify-peer": true})),
    );
    push(
        "--object",
        o(json!({"qom-type": "tls-creds-x509", "id": "tls-client",
                 "dir": tls, "endpoint": "client"})),
    );
    push(
        "--object",
        o(
            json!({"qom-type": "authz-list", "id": "authz", "policy": "deny",
            "rules": [
                {"match": node_identity(&spec.link.local.node), "policy": "allow"},
                {"match": node_identity(&spec.link.peer.node), "policy": "allow"},
            ]}),
        ),
    );
    for (file, node, path) in [
        ("data-file", "vol", spec.data),
        ("meta-file", "meta", spec.meta),
    ] {
        push(
            "--blockdev",
            o(json!({"driver": driver(path), "node-name": file,
                     "filename": path, "cache": {"direct": false}})),
        );
        push(
            "--blockdev",
            o(json!({"driver": "raw", "node-name": node, "file": file})),
        );
    }
    // What the local users write to: the replication's mirror sits on it.
    push(
        "--blockdev",
        o(json!({"driver": "raw", "node-name": "top", "file": "vol"})),
    );
    push(
        "--nbd-server",
        o(json!({"addr": {"type": "inet", "host": spec.link.local.ip,
                          "port": spec.link.port.to_string()},
                 "tls-creds": "tls-server", "tls-authz": "authz"})),
    );
    for (id, node, name) in [
        ("disk", "top", exports::disk(spec.disk)),
        ("data", "vol", exports::data(spec.disk)),
        ("meta", "meta", exports::meta(spec.disk)),
    ] {
        push(
            "--export",
            o(
                json!({"type": "nbd", "id": id, "node-name": node, "name": name,
                     "writable": true}),
            ),
        );
    }
    push("--chardev", qmp_chardev(&d.qmp_socket(spec.disk)));
    push("--monitor", "chardev=qmp".into());
    push("--pidfile", d.pid_file(spec.disk).display().to_string());
    a.push("--daemonize".into());
    a
}

/// The FUSE helper's arguments: a client of the local daemon's `disk`
/// export, served as the regular file `mount`.
pub fn fuse_args(disk: &str, link: &Link, dirs: &DrbdDirs) -> Vec<String> {
    let o = |v: Value| v.to_string();
    vec![
        "--object".into(),
        o(json!({"qom-type": "tls-creds-x509", "id": "tls-client",
                 "dir": dirs.tls_dir(), "endpoint": "client"})),
        "--blockdev".into(),
        o(json!({"driver": "nbd", "node-name": "disk",
                 "server": {"type": "inet", "host": link.local.ip,
                            "port": link.port.to_string()},
                 "export": exports::disk(disk), "tls-creds": "tls-client",
                 "tls-hostname": link.local.node})),
        "--export".into(),
        o(json!({"type": "fuse", "id": "fuse", "node-name": "disk",
                 "mountpoint": dirs.fuse_mount(disk), "writable": true})),
        "--chardev".into(),
        qmp_chardev(&dirs.fuse_qmp_socket(disk)),
        "--monitor".into(),
        "chardev=qmp".into(),
        "--pidfile".into(),
        dirs.fuse_pid_file(disk).display().to_string(),
        "--daemonize".into(),
    ]
}

/// Marks every file descriptor of this process but the standard ones
/// close-on-exec, so that a daemon started from here holds none of them
/// for its whole life (a lock its caller inherited, a listening socket).
fn close_on_exec_all() {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let Ok(entries) = fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if fd > 2 {
            let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        }
    }
}

/// Runs a daemon with `args`, its setup messages going to `log`; returns
/// once it has daemonized (or failed, with QEMU's message).
pub fn start(disk: &str, args: &[String], log: &Path, pidfile: &Path, qmp: &Path) -> Result<i32> {
    let fail = |reason: String| StorageError::Daemon {
        disk: disk.to_string(),
        reason,
    };
    let binary = binary().map_err(|_| fail(format!("{BINARY} is not on PATH")))?;
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| StorageError::io("open", log, e))?;
    let err = out
        .try_clone()
        .map_err(|e| StorageError::io("open", log, e))?;
    let start_of_log = fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    debug!(disk, ?args, "starting {BINARY}");
    close_on_exec_all();
    let mut child = Command::new(&binary)
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| StorageError::io("run", &binary, e))?;
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "did not finish starting within {}s",
                    START_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(StorageError::io("wait for", &binary, e)),
        }
    };
    let messages = || {
        let text = fs::read(log)
            .map(|b| {
                String::from_utf8_lossy(&b[(start_of_log as usize).min(b.len())..]).into_owned()
            })
            .unwrap_or_default();
        let text = text.trim().to_string();
        if text.is_empty() {
            "no message".to_string()
        } else {
            text
        }
    };
    if !status.success() {
        return Err(fail(format!("failed to start ({status}): {}", messages())));
    }
    live_pid(pidfile, qmp)
        .ok_or_else(|| fail(format!("exited right after starting: {}", messages())))
}

/// The pid in `pidfile`, if it holds one.
fn read_pid(pidfile: &Path) -> Option<i32> {
    fs::read_to_string(pidfile)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// Whether `pid` is a live (not zombie) daemon whose QMP socket is `qmp`.
fn is_ours(pid: i32, qmp: &Path) -> bool {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let Ok(cmdline) = fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    let want = qmp_chardev(qmp);
    if !cmdline.split(|b| *b == 0).any(|arg| arg == want.as_bytes()) {
        return false;
    }
    let Ok(stat) = fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// The pid of the live daemon with this pid file and QMP socket.
pub fn live_pid(pidfile: &Path, qmp: &Path) -> Option<i32> {
    read_pid(pidfile).filter(|pid| is_ours(*pid, qmp))
}

fn wait_gone(pid: i32, qmp: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !is_ours(pid, qmp) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops the daemon `pid` (QMP `quit`, then SIGTERM, then SIGKILL); a
/// daemon already gone is fine.
pub fn stop(disk: &str, pid: i32, qmp: &Path) -> Result<()> {
    if let Ok(mut q) = Qmp::connect(qmp, Duration::from_secs(5)) {
        if let Err(e) = q.execute("quit", None) {
            debug!(disk, error = %e, "quit over QMP failed");
        }
    }
    if wait_gone(pid, qmp, STOP_GRACE) {
        return Ok(());
    }
    for (signal, wait) in [
        (Signal::SIGTERM, STOP_GRACE),
        (Signal::SIGKILL, Duration::from_secs(10)),
    ] {
        // Checked right before each signal: never signal a recycled pid.
        if !is_ours(pid, qmp) {
            return Ok(());
        }
        warn!(
            disk,
            pid,
            ?signal,
            "storage daemon did not quit, signalling it"
        );
        match kill(Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(StorageError::Daemon {
                    disk: disk.to_string(),
                    reason: format!("cannot send {signal} to pid {pid}: {e}"),
                })
            }
        }
        if wait_gone(pid, qmp, wait) {
            return Ok(());
        }
    }
    Err(StorageError::Daemon {
        disk: disk.to_string(),
        reason: format!("pid {pid} survived SIGKILL"),
    })
}

/// A QMP session with the daemon whose socket is `qmp`.
pub fn qmp(disk: &str, qmp: &Path) -> Result<Qmp> {
    Qmp::connect(qmp, QMP_TIMEOUT).map_err(|source| StorageError::Qmp {
        disk: disk.to_string(),
        source,
    })
}

/// Whether `path` is a mount point (`/proc/self/mountinfo`).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    // The mount point is the fifth field, with spaces and the like
    // escaped as octal.
    let want = path
        .display()
        .to_string()
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012");
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// Detaches a mount left at `path` (a FUSE export whose daemon died).
pub fn unmount(disk: &str, path: &Path) -> Result<()> {
    if !is_mounted(path) {
        return Ok(());
    }
    warn!(disk, path = %path.display(), "unmounting a FUSE export left by a dead daemon");
    nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| StorageError::io("unmount", path, std::io::Error::from_raw_os_error(e as i32)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpc::storage::DrbdEndpoint;

    #[test]
    fn the_daemon_serves_three_exports_to_the_two_nodes_only() {
        let dirs = DrbdDirs::new(&objects::paths::Paths::new("/r"));
        let link = Link {
            local: DrbdEndpoint {
                node: "node1".into(),
                ip: "127.0.0.1".into(),
            },
            peer: DrbdEndpoint {
                node: "node2".into(),
                ip: "127.0.0.2".into(),
            },
            port: 11000,
        };
        let spec = DaemonSpec {
            disk: "d1",
            data: Path::new("/srv/d1_data"),
            meta: Path::new("/srv/d1_meta"),
            link: &link,
            dirs: &dirs,
        };
        let a = args(&spec);
        let text = a.join(" ");
        for want in [
            r#""match":"O=ganeti-rs,CN=node1""#,
            r#""match":"O=ganeti-rs,CN=node2""#,
            r#""addr":{"host":"127.0.0.1","port":"11000","type":"inet"}"#,
            r#""name":"d1","node-name":"top""#,
            r#""name":"d1.data","node-name":"vol""#,
            r#""name":"d1.meta","node-name":"meta""#,
            "socket,id=qmp,path=/r/var/run/ganeti/drbd/d1.qmp,server=on,wait=off",
            "--pidfile /r/var/run/ganeti/drbd/d1.pid --daemonize",
        ] {
            assert!(text.contains(want), "{want} missing in {text}");
        }
        let f = fuse_args("d1", &link, &dirs).join(" ");
        assert!(f.contains(r#""tls-hostname":"node1""#), "{f}");
        assert!(
            f.contains(r#""mountpoint":"/r/var/run/ganeti/drbd/d1.disk""#),
            "{f}"
        );
    }

    #[test]
    fn option_values_double_commas() {
        assert_eq!(opt(Path::new("/a,b")), "/a,,b");
        assert_eq!(
            qmp_chardev(Path::new("/x,y.qmp")),
            "socket,id=qmp,path=/x,,y.qmp,server=on,wait=off"
        );
    }
}
