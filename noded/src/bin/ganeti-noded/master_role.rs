//! The calls about the master role: a master candidate's copies of the
//! configuration and of the job queue, the vote of `master-failover`,
//! stopping the master daemons, and the master IP.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use objects::error_chain;
use rpc::api::{
    ErrorKind, JobqueueUpdate, MasterNetworkParams, MasterNodeName, NodeActivateMasterIp,
    NodeDeactivateMasterIp, NodeStopMaster, RpcError, WriteConfig,
};
use tracing::info;

use crate::handlers::{CallResult, State};

/// Serialises the compare-and-write of the configuration copy.
static CONFIG_COPY: Mutex<()> = Mutex::new(());

fn failed(msg: impl Into<String>) -> RpcError {
    RpcError::new(ErrorKind::Failed, msg)
}

fn bad(msg: impl Into<String>) -> RpcError {
    RpcError::new(ErrorKind::BadRequest, msg)
}

fn write(path: &Path, content: &[u8]) -> CallResult<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(format!("cannot create '{}': {e}", dir.display())))?;
    }
    rpc::tls::write_file_atomically(path, content, 0o600).map_err(|e| failed(error_chain(&e)))
}

/// The `serial_no` of the configuration copy this node holds (0: none).
pub fn copy_serial(paths: &objects::paths::Paths) -> u64 {
    std::fs::read_to_string(paths.config_copy_serial())
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

pub fn write_config(s: &State, r: WriteConfig) -> CallResult<u64> {
    // The copy must at least be a JSON object naming the same serial: a
    // truncated push never replaces a good copy.
    let v: serde_json::Value = serde_json::from_str(&r.data)
        .map_err(|e| bad(format!("the configuration is not JSON: {e}")))?;
    let serial = v
        .pointer("/cluster/serial_no")
        .and_then(serde_json::Value::as_u64);
    if serial != Some(r.serial_no) {
        return Err(bad(format!(
            "the configuration's serial_no ({serial:?}) is not the one announced ({})",
            r.serial_no
        )));
    }
    let _guard = CONFIG_COPY.lock().unwrap_or_else(|e| e.into_inner());
    let held = copy_serial(&s.paths);
    if r.serial_no <= held && s.paths.config_copy().exists() {
        return Ok(held);
    }
    // The data first, then its serial: a crash in between leaves a serial
    // older than the data, which the next push corrects.
    write(&s.paths.config_copy(), r.data.as_bytes())?;
    write(
        &s.paths.config_copy_serial(),
        format!("{}\n", r.serial_no).as_bytes(),
    )?;
    Ok(r.serial_no)
}

/// The highest job id recorded in the queue copy (0: none).
fn copy_last_id(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("serial"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

pub fn jobqueue_update(s: &State, r: JobqueueUpdate) -> CallResult<()> {
    let dir = s.paths.queue_copy_dir();
    {
        let _guard = CONFIG_COPY.lock().unwrap_or_else(|e| e.into_inner());
        if r.last_id > copy_last_id(&dir) {
            write(&dir.join("serial"), format!("{}\n", r.last_id).as_bytes())?;
        }
    }
    for job in &r.jobs {
        let text = serde_json::json!({
            "id": job.id,
            "archived": job.archived,
            "data": job.data,
        })
        .to_string();
        write(&dir.join(format!("job-{}", job.id)), text.as_bytes())?;
    }
    Ok(())
}

pub fn master_node_name(s: &State, _r: MasterNodeName) -> CallResult<Option<String>> {
    match std::fs::read_to_string(s.paths.ssconf("master_node")) {
        Ok(m) if !m.trim().is_empty() => Ok(Some(m.trim().to_string())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(failed(format!("cannot read ssconf_master_node: {e}"))),
    }
}

/// How long a master daemon gets to push its last changes and exit.
const STOP_GRACE: Duration = Duration::from_secs(60);

/// Stops the daemon of `pidfile`, if one runs: SIGTERM, SIGKILL after
/// [`STOP_GRACE`]. Whether one ran.
fn stop_daemon(pidfile: &Path) -> bool {
    use nix::sys::signal::{kill, Signal};
    let pid = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|p| *p > 0)
        .map(nix::unistd::Pid::from_raw);
    let Some(pid) = pid.filter(|p| kill(*p, None).is_ok()) else {
        let _ = std::fs::remove_file(pidfile);
        return false;
    };
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while kill(pid, None).is_ok() {
        if Instant::now() > deadline {
            let _ = kill(pid, Signal::SIGKILL);
        }
        // Our daemons are not our children: polling is the only way to
        // see them gone.
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(pidfile);
    true
}

pub fn node_stop_master(s: &State, _r: NodeStopMaster) -> CallResult<Vec<String>> {
    let mut stopped = Vec::new();
    if stop_daemon(&s.paths.masterd_pid()) {
        info!("stopped ganeti-masterd");
        stopped.push("ganeti-masterd".to_string());
    }
    if stop_daemon(&s.paths.rapi_pid()) {
        info!("stopped ganeti-rapi");
        stopped.push("ganeti-rapi".to_string());
    }
    let _ = std::fs::remove_file(s.paths.luxi_socket());
    Ok(stopped)
}

fn check_params(p: &MasterNetworkParams) -> CallResult<std::net::IpAddr> {
    let ip: std::net::IpAddr =
        p.ip.parse()
            .map_err(|_| bad(format!("invalid master IP '{}'", p.ip)))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if p.netmask == 0 || p.netmask > max {
        return Err(bad(format!("invalid master netmask {}", p.netmask)));
    }
    if p.netdev.is_empty()
        || !p
            .netdev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c))
    {
        return Err(bad(format!("invalid master netdev '{}'", p.netdev)));
    }
    Ok(ip)
}

/// Whether the master IP is a loopback address on `lo`, which the
/// loopback device serves already (the virtual cluster's case).
fn on_loopback(ip: std::net::IpAddr, p: &MasterNetworkParams) -> bool {
    ip.is_loopback() && p.netdev == "lo"
}

fn run_ip(args: &[&str]) -> CallResult<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| failed(format!("cannot run ip: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failed(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

pub fn node_activate_master_ip(s: &State, r: NodeActivateMasterIp) -> CallResult<()> {
    let p = &r.params;
    let ip = check_params(p)?;
    if !on_loopback(ip, p) {
        let cidr = format!("{}/{}", p.ip, p.netmask);
        let label = format!("{}:0", p.netdev);
        run_ip(&["address", "add", &cidr, "dev", &p.netdev, "label", &label])?;
    }
    write(
        &s.paths.master_ip_state(),
        format!("{}/{} {}\n", p.ip, p.netmask, p.netdev).as_bytes(),
    )?;
    info!(ip = %p.ip, netdev = %p.netdev, "master IP activated");
    Ok(())
}

pub fn node_deactivate_master_ip(s: &State, r: NodeDeactivateMasterIp) -> CallResult<()> {
    let p = &r.params;
    let ip = check_params(p)?;
    if !on_loopback(ip, p) {
        let cidr = format!("{}/{}", p.ip, p.netmask);
        // Already gone is what was asked for.
        let _ = run_ip(&["address", "del", &cidr, "dev", &p.netdev]);
    }
    match std::fs::remove_file(s.paths.master_ip_state()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed(format!("cannot remove the master IP record: {e}"))),
    }
    info!(ip = %p.ip, netdev = %p.netdev, "master IP deactivated");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(dir: &Path) -> State {
        State::new(objects::paths::Paths::new(dir), "node2".into(), None)
    }

    fn config(serial: u64, marker: &str) -> WriteConfig {
        WriteConfig {
            serial_no: serial,
            data: serde_json::json!({"cluster": {"serial_no": serial}, "marker": marker})
                .to_string(),
        }
    }

    fn copy(s: &State) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(s.paths.config_copy()).unwrap()).unwrap()
    }

    #[test]
    fn a_newer_configuration_replaces_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        assert_eq!(write_config(&s, config(5, "a")).unwrap(), 5);
        assert_eq!(write_config(&s, config(7, "b")).unwrap(), 7);
        assert_eq!(copy(&s)["marker"], "b");
        assert_eq!(copy_serial(&s.paths), 7);
    }

    #[test]
    fn an_older_or_equal_configuration_never_replaces_a_newer_copy() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        write_config(&s, config(7, "new")).unwrap();
        // A push that arrives late, or from a master that was failed over.
        assert_eq!(write_config(&s, config(6, "old")).unwrap(), 7);
        assert_eq!(write_config(&s, config(7, "same")).unwrap(), 7);
        assert_eq!(copy(&s)["marker"], "new");
    }

    #[test]
    fn a_configuration_whose_serial_is_not_the_announced_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        let mut c = config(7, "x");
        c.serial_no = 9;
        let e = write_config(&s, c).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let e = write_config(
            &s,
            WriteConfig {
                serial_no: 1,
                data: "{trunc".into(),
            },
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(!s.paths.config_copy().exists());
    }

    #[test]
    fn a_job_update_replaces_that_jobs_copy() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        let job = |data: &str| rpc::api::ReplicatedJob {
            id: 4,
            archived: false,
            data: data.into(),
        };
        let update = |data: &str, last_id: u64| JobqueueUpdate {
            jobs: vec![job(data)],
            last_id,
        };
        jobqueue_update(&s, update("queued", 4)).unwrap();
        jobqueue_update(&s, update("success", 9)).unwrap();
        // A late push never lowers the highest id handed out.
        jobqueue_update(&s, update("success", 5)).unwrap();
        assert_eq!(copy_last_id(&s.paths.queue_copy_dir()), 9);
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(s.paths.queue_copy_dir().join("job-4")).unwrap())
                .unwrap();
        assert_eq!(v["data"], "success");
        assert_eq!(v["id"], 4);
    }

    #[test]
    fn the_vote_is_the_nodes_ssconf_master() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        assert_eq!(master_node_name(&s, MasterNodeName {}).unwrap(), None);
        std::fs::create_dir_all(s.paths.data_dir()).unwrap();
        std::fs::write(s.paths.ssconf("master_node"), "node1\n").unwrap();
        assert_eq!(
            master_node_name(&s, MasterNodeName {}).unwrap().as_deref(),
            Some("node1")
        );
    }

    #[test]
    fn a_loopback_master_ip_is_recorded_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        let params = MasterNetworkParams {
            ip: "127.0.130.1".into(),
            netmask: 32,
            netdev: "lo".into(),
        };
        node_activate_master_ip(
            &s,
            NodeActivateMasterIp {
                params: params.clone(),
            },
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(s.paths.master_ip_state()).unwrap(),
            "127.0.130.1/32 lo\n"
        );
        node_deactivate_master_ip(&s, NodeDeactivateMasterIp { params }).unwrap();
        assert!(!s.paths.master_ip_state().exists());
    }
}
