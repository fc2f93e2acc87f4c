//! The QEMU process of an instance: found by its pid file, recognised by
//! its command line (the instance's own QMP socket path, which differs per
//! node root, so the two QEMUs of a migration on one host are told apart),
//! measured from `/proc`, signalled with care.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::debug;

use crate::error::{HypervisorError, Result};

/// The `-qmp` argument of an instance whose QMP socket is `qmp`.
pub fn qmp_arg(qmp: &Path) -> String {
    socket_arg(qmp)
}

/// A server `unix:` chardev on `path` that does not wait for a client
/// (commas in the path doubled, as QEMU's option syntax wants).
pub fn socket_arg(path: &Path) -> String {
    format!(
        "unix:{},server=on,wait=off",
        path.display().to_string().replace(',', ",,")
    )
}

/// The pid in `pidfile`, if it holds one.
pub fn read_pid(pidfile: &Path) -> Option<i32> {
    std::fs::read_to_string(pidfile)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// Whether `pid` is a live (not zombie) process whose command line has
/// the QMP socket `qmp`: our QEMU for that instance on that node.
pub fn is_our_qemu(pid: i32, qmp: &Path) -> bool {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    let want = qmp_arg(qmp);
    let ours = cmdline.split(|b| *b == 0).any(|arg| arg == want.as_bytes());
    ours && !matches!(proc_state(pid), Some('Z') | Some('X') | None)
}

/// The live QEMU of the instance with this pid file and QMP socket.
pub fn live_pid(pidfile: &Path, qmp: &Path) -> Option<i32> {
    read_pid(pidfile).filter(|pid| is_our_qemu(*pid, qmp))
}

/// Fields of `/proc/<pid>/stat` after the command name.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn proc_state(pid: i32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// CPU time (user + system) used by `pid`, seconds.
pub fn cpu_time(pid: i32) -> f64 {
    let Some(fields) = stat_fields(pid) else {
        return 0.0;
    };
    // After the name: state is field 3, utime 14, stime 15 (1-based).
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ticks = tick(11) + tick(12);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|hz| *hz > 0)
        .unwrap_or(100);
    ticks as f64 / hz as f64
}

/// Waits until the QEMU `pid` (with QMP socket `qmp`) is gone, at most
/// `timeout`; true when it is.
pub fn wait_gone(pid: i32, qmp: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !is_our_qemu(pid, qmp) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills our QEMU `pid`: SIGTERM, then SIGKILL when it has not exited
/// after `grace`. Does nothing when `pid` is not our QEMU (any more).
pub fn kill_qemu(instance: &str, pid: i32, qmp: &Path, grace: Duration) -> Result<()> {
    for (signal, wait) in [
        (Signal::SIGTERM, grace),
        (Signal::SIGKILL, Duration::from_secs(10)),
    ] {
        // Checked right before each signal: never signal a recycled pid.
        if !is_our_qemu(pid, qmp) {
            return Ok(());
        }
        debug!(instance, pid, ?signal, "signalling QEMU");
        match kill(Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(HypervisorError::Failed(format!(
                    "cannot send {signal} to QEMU of instance '{instance}' (pid {pid}): {e}"
                )))
            }
        }
        if wait_gone(pid, qmp, wait) {
            return Ok(());
        }
    }
    Err(HypervisorError::Failed(format!(
        "QEMU of instance '{instance}' (pid {pid}) survived SIGKILL"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_not_a_qemu() {
        let me = std::process::id() as i32;
        assert!(!is_our_qemu(me, Path::new("/nonexistent.qmp")));
        assert!(cpu_time(me) >= 0.0);
        assert!(proc_state(me).is_some());
    }

    #[test]
    fn pid_files_are_parsed_strictly() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("pid");
        std::fs::write(&f, "1234\n").unwrap();
        assert_eq!(read_pid(&f), Some(1234));
        std::fs::write(&f, "garbage").unwrap();
        assert_eq!(read_pid(&f), None);
        assert_eq!(read_pid(&tmp.path().join("none")), None);
    }
}
