//! Finding, starting and stopping the daemons of a node's tree, as
//! Ganeti's `daemon-util` does: `ganeti-masterd` and `ganeti-noded` are
//! looked up next to the running program, else on the `PATH`; each runs
//! with `GANETI_ROOTDIR` and `GANETI_HOSTNAME` set to its node's tree and
//! name, and says it runs with its pid file.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use objects::paths::{Paths, HOSTNAME_ENV, ROOTDIR_ENV};

/// The master daemon's program.
pub const MASTERD: &str = "ganeti-masterd";
/// The node daemon's program.
pub const NODED: &str = "ganeti-noded";
/// The RAPI daemon's program.
pub const RAPI: &str = "ganeti-rapi";

/// Why a daemon did not come up.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("Cannot start {binary}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{binary} failed to start ({status})")]
    Failed { binary: String, status: ExitStatus },
    #[error("The node daemon of {} does not accept connections on {addr}; see {}", root.display(), log.display())]
    NodedNotListening {
        root: PathBuf,
        addr: SocketAddr,
        log: PathBuf,
    },
    #[error("The master daemon did not start; see {}", log.display())]
    MasterNotServing { log: PathBuf },
    #[error("The RAPI daemon does not accept connections on {addr}; see {}", log.display())]
    RapiNotListening { addr: SocketAddr, log: PathBuf },
}

/// A daemon's program: next to this program, else on the PATH.
pub fn daemon_binary(name: &str) -> PathBuf {
    if let Ok(me) = std::env::current_exe() {
        if let Some(dir) = me.parent() {
            let p = dir.join(name);
            if p.exists() {
                return p;
            }
        }
    }
    PathBuf::from(name)
}

/// The command that runs daemon program `binary` in the tree `root` as
/// node `node`.
pub fn command(binary: &str, root: &Path, node: &str) -> Command {
    let mut c = Command::new(daemon_binary(binary));
    c.env(ROOTDIR_ENV, root).env(HOSTNAME_ENV, node);
    c
}

fn pid_alive(pidfile: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    alive.then_some(pid)
}

/// Starts `binary` with `args` in the tree `root` unless its pid file
/// names a live process. The daemon detaches itself: this returns once
/// the program has.
pub fn start(
    binary: &str,
    root: &Path,
    node: &str,
    pidfile: &Path,
    args: &[&str],
) -> Result<(), DaemonError> {
    if pid_alive(pidfile).is_some() {
        return Ok(());
    }
    let status = command(binary, root, node)
        .args(args)
        .status()
        .map_err(|source| DaemonError::Spawn {
            binary: binary.to_string(),
            source,
        })?;
    if !status.success() {
        return Err(DaemonError::Failed {
            binary: binary.to_string(),
            status,
        });
    }
    Ok(())
}

/// Stops the daemon named by `pidfile` (SIGTERM, SIGKILL after 10 s) and
/// waits for it to exit; removes the pid file.
pub fn stop(pidfile: &Path) {
    let Some(pid) = pid_alive(pidfile) else {
        let _ = std::fs::remove_file(pidfile);
        return;
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while nix::sys::signal::kill(pid, None).is_ok() {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(pidfile);
}

/// The node daemons' TCP port: `GANETI_NODED_PORT`, else the default.
fn noded_port() -> u16 {
    std::env::var("GANETI_NODED_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(objects::paths::NODED_PORT)
}

/// The RAPI daemon's TCP port: `GANETI_RAPI_PORT`, else the default.
fn rapi_port() -> u16 {
    std::env::var("GANETI_RAPI_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(objects::paths::RAPI_PORT)
}

/// Whether `addr` accepts connections within 30 s.
fn wait_listening(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Starts the node daemon of the tree `paths` on `ip` and waits until it
/// accepts connections.
pub fn start_noded(paths: &Paths, node: &str, ip: IpAddr) -> Result<(), DaemonError> {
    let port = noded_port();
    let ip_s = ip.to_string();
    let port_s = port.to_string();
    start(
        NODED,
        paths.root(),
        node,
        &paths.noded_pid(),
        &["--bind", &ip_s, "--port", &port_s],
    )?;
    let addr = SocketAddr::new(ip, port);
    if !wait_listening(addr) {
        return Err(DaemonError::NodedNotListening {
            root: paths.root().to_path_buf(),
            addr,
            log: paths.log_dir().join("node-daemon.log"),
        });
    }
    Ok(())
}

/// Starts the RAPI daemon of the master's tree `paths` on `ip` and waits
/// until it accepts connections.
pub fn start_rapi(paths: &Paths, node: &str, ip: IpAddr) -> Result<(), DaemonError> {
    let port = rapi_port();
    let ip_s = ip.to_string();
    let port_s = port.to_string();
    start(
        RAPI,
        paths.root(),
        node,
        &paths.rapi_pid(),
        &["--bind", &ip_s, "--port", &port_s],
    )?;
    let addr = SocketAddr::new(ip, port);
    if !wait_listening(addr) {
        return Err(DaemonError::RapiNotListening {
            addr,
            log: paths.log_dir().join("rapi-daemon.log"),
        });
    }
    Ok(())
}

/// Starts the master daemon of the tree `paths` and waits until it
/// answers on its socket.
pub fn start_masterd(paths: &Paths, node: &str) -> Result<(), DaemonError> {
    start(MASTERD, paths.root(), node, &paths.masterd_pid(), &[])?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = luxi::client::Client::connect(&paths.luxi_socket()) {
            if c.call("QueryConfigValues", serde_json::json!([["cluster_name"]]))
                .is_ok()
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(DaemonError::MasterNotServing {
                log: paths.log_dir().join("master-daemon.log"),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_pid_file_names_no_daemon() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(pid_alive(&dir.path().join("x.pid")), None);
    }

    #[test]
    fn a_pid_file_of_a_live_process_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("me.pid");
        std::fs::write(&f, format!("{}\n", std::process::id())).unwrap();
        assert_eq!(pid_alive(&f), Some(std::process::id() as i32));
    }

    #[test]
    fn stopping_a_daemon_that_is_not_running_removes_its_pid_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("gone.pid");
        std::fs::write(&f, "not a pid\n").unwrap();
        stop(&f);
        assert!(!f.exists());
    }

    #[test]
    fn a_program_that_is_not_next_to_us_is_looked_up_on_the_path() {
        assert_eq!(
            daemon_binary("no-such-ganeti-daemon"),
            PathBuf::from("no-such-ganeti-daemon")
        );
    }
}
