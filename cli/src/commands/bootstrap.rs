//! `gnt-cluster init`, `gnt-cluster destroy` and the node setup of
//! `gnt-node add`: the steps that happen before (or after) there is a
//! master to talk to. The cluster's files are made by the master's
//! bootstrap library; this module starts and stops the daemons, as
//! Ganeti's `daemon-util` does.
//!
//! Node setup works on a virtual cluster, where every node's tree lives
//! under one base directory and `GANETI_ROOTDIR` is `<base>/<node name>`
//! (Ganeti's vcluster convention): the new node's certificates are written
//! into its tree and its node daemon is started there.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Args;
use luxi::error::{ErrorCode, GanetiError};
use masterd::bootstrap::{destroy_cluster, init_cluster, InitParams};
use objects::paths::{Paths, HOSTNAME_ENV};
use serde_json::Value;

use crate::error::{exit, CliError};
use crate::output;
use crate::params::split_key_val;

/// Options of `gnt-cluster init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Comma-separated list of hypervisors to enable (the first is the default)
    #[arg(long = "enabled-hypervisors")]
    pub enabled_hypervisors: Option<String>,
    /// Comma-separated list of disk templates to enable
    #[arg(long = "enabled-disk-templates")]
    pub enabled_disk_templates: Option<String>,
    /// Hypervisor parameters: hypervisor:option=value,...
    #[arg(short = 'H', long = "hypervisor-parameters")]
    pub hvparams: Vec<String>,
    /// Backend parameters: option=value,...
    #[arg(short = 'B', long = "backend-parameters")]
    pub beparams: Option<String>,
    /// NIC parameters: option=value,...
    #[arg(short = 'N', long = "nic-parameters")]
    pub nicparams: Option<String>,
    /// Size of the master candidate pool
    #[arg(short = 'C', long = "candidate-pool-size")]
    pub candidate_pool_size: Option<u32>,
    /// Prefix of the MAC addresses of instances (three bytes, aa:00:00)
    #[arg(long = "mac-prefix")]
    pub mac_prefix: Option<String>,
    /// Network device of the master IP
    #[arg(long = "master-netdev")]
    pub master_netdev: Option<String>,
    /// Default iallocator plugin (default: hail, when installed)
    #[arg(short = 'I', long = "default-iallocator")]
    pub default_iallocator: Option<String>,
    /// Directory of file-based disks
    #[arg(long = "file-storage-dir")]
    pub file_storage_dir: Option<String>,
    /// Directory of shared file-based disks
    #[arg(long = "shared-file-storage-dir")]
    pub shared_file_storage_dir: Option<String>,
    /// Secondary IP of the master (accepted; the primary IP is used)
    #[arg(short = 's', long = "secondary-ip")]
    pub secondary_ip: Option<String>,
    /// Volume group name (accepted; LVM is not used yet)
    #[arg(long = "vg-name")]
    pub vg_name: Option<String>,
    /// Do not modify /etc/hosts (ganeti-rs never does)
    #[arg(long = "no-etc-hosts")]
    pub no_etc_hosts: bool,
    /// Do not install an SSH key (ganeti-rs does not use SSH)
    #[arg(long = "no-ssh-init")]
    pub no_ssh_init: bool,
    /// The cluster's name
    pub name: String,
}

fn prereq(msg: impl Into<String>) -> CliError {
    CliError::Ganeti(GanetiError::prereq(msg, ErrorCode::Inval))
}

fn exec_err(msg: impl Into<String>) -> CliError {
    CliError::Ganeti(GanetiError::exec(msg))
}

/// This node's name: `GANETI_HOSTNAME`, else the host name.
pub fn my_name() -> String {
    if let Ok(n) = std::env::var(HOSTNAME_ENV) {
        if !n.is_empty() {
            return n;
        }
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// A daemon binary: next to this program, else on the PATH.
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

fn pid_alive(pidfile: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    alive.then_some(pid)
}

/// Starts `binary` with `args` in the tree `root` unless its pid file
/// names a live process.
fn start_daemon(
    binary: &str,
    root: &Path,
    node: &str,
    pidfile: &Path,
    args: &[&str],
) -> Result<(), CliError> {
    if pid_alive(pidfile).is_some() {
        return Ok(());
    }
    let status = Command::new(daemon_binary(binary))
        .args(args)
        .env("GANETI_ROOTDIR", root)
        .env(HOSTNAME_ENV, node)
        .status()
        .map_err(|e| exec_err(format!("Cannot start {binary}: {e}")))?;
    if !status.success() {
        return Err(exec_err(format!("{binary} failed to start ({status})")));
    }
    Ok(())
}

/// Stops the daemon named by `pidfile` and waits for it to exit.
fn stop_daemon(pidfile: &Path) {
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

/// Waits until the master answers on its socket.
fn wait_for_master(paths: &Paths) -> Result<(), CliError> {
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
            return Err(exec_err(format!(
                "The master daemon did not start; see {}",
                paths.log_dir().join("master-daemon.log").display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn list(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .map(|v| {
            v.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn dict(opt: &str, s: &Option<String>) -> Result<objects::ParamDict, CliError> {
    Ok(match s {
        Some(v) => split_key_val(opt, v)?.into_iter().collect(),
        None => objects::ParamDict::new(),
    })
}

/// `gnt-cluster init`.
pub fn init(a: InitArgs) -> Result<i32, CliError> {
    let paths = Paths::from_env();
    let master = my_name();
    let ip = objects::resolver::resolve(&paths, &master).ok_or_else(|| {
        CliError::Ganeti(GanetiError::prereq(
            format!("Cannot resolve this node's name '{master}' to an address"),
            ErrorCode::Resolver,
        ))
    })?;
    let mut hvparams = Vec::new();
    for h in &a.hvparams {
        let (hv, rest) = h.split_once(':').unwrap_or((h.as_str(), ""));
        let params: objects::ParamDict = if rest.is_empty() {
            objects::ParamDict::new()
        } else {
            split_key_val("-H", rest)?.into_iter().collect()
        };
        hvparams.push((hv.to_string(), params));
    }
    let beparams: objects::ParamDict = dict("-B", &a.beparams)?
        .into_iter()
        .map(|(k, v)| {
            let v = match v.as_str().and_then(|s| crate::units::parse_unit(s).ok()) {
                Some(n) if k.contains("mem") => Value::from(n),
                _ => v,
            };
            (k, v)
        })
        .collect();
    let params = InitParams {
        cluster_name: a.name.clone(),
        master_name: master.clone(),
        master_ip: ip.to_string(),
        enabled_hypervisors: list(&a.enabled_hypervisors),
        enabled_disk_templates: list(&a.enabled_disk_templates),
        file_storage_dir: a.file_storage_dir.clone(),
        shared_file_storage_dir: a.shared_file_storage_dir.clone(),
        hvparams,
        beparams,
        nicparams: dict("-N", &a.nicparams)?,
        candidate_pool_size: a.candidate_pool_size,
        mac_prefix: a.mac_prefix.clone(),
        master_netdev: a.master_netdev.clone(),
        default_iallocator: a.default_iallocator.clone(),
    };
    init_cluster(&paths, &params).map_err(|e| prereq(objects::error_chain(&e)))?;
    start_node_daemon(&paths, &master, ip)?;
    start_daemon(
        "ganeti-masterd",
        paths.root(),
        &master,
        &paths.masterd_pid(),
        &[],
    )?;
    wait_for_master(&paths)?;
    Ok(exit::SUCCESS)
}

/// Starts the node daemon of the tree `paths` on `ip` and waits until it
/// accepts connections.
fn start_node_daemon(paths: &Paths, node: &str, ip: IpAddr) -> Result<(), CliError> {
    let port: u16 = std::env::var("GANETI_NODED_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(objects::paths::NODED_PORT);
    let ip_s = ip.to_string();
    let port_s = port.to_string();
    start_daemon(
        "ganeti-noded",
        paths.root(),
        node,
        &paths.noded_pid(),
        &["--bind", &ip_s, "--port", &port_s],
    )?;
    let addr = std::net::SocketAddr::new(ip, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        if Instant::now() > deadline {
            return Err(exec_err(format!(
                "The node daemon of {} does not accept connections on {addr}; see {}",
                paths.root().display(),
                paths.log_dir().join("node-daemon.log").display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The tree of `node` on a virtual cluster whose master tree is `master`.
fn vcluster_root(master: &Paths, master_name: &str, node: &str) -> Option<PathBuf> {
    let root = master.root();
    let last = root.file_name()?.to_str()?;
    (last == master_name).then(|| root.with_file_name(node))
}

/// Installs the cluster certificates on a new node and starts its node
/// daemon (Ganeti does this over SSH).
pub fn node_setup(node: &str) -> Result<(), CliError> {
    let paths = Paths::from_env();
    let me = my_name();
    let Some(root) = vcluster_root(&paths, &me, node) else {
        return Err(prereq(format!(
            "Cannot set up node {node}: ganeti-rs installs certificates only on a virtual \
             cluster (GANETI_ROOTDIR=<base>/<node name>). Copy {} and a node certificate \
             signed by the cluster CA to the node, start ganeti-noded there, and use \
             --no-node-setup",
            paths.cluster_ca_cert().display()
        )));
    };
    let node_paths = Paths::new(&root);
    let ip = objects::resolver::resolve(&paths, node)
        .or_else(|| objects::resolver::resolve(&node_paths, node))
        .ok_or_else(|| {
            CliError::Ganeti(GanetiError::prereq(
                format!("Node name '{node}' cannot be resolved to an address"),
                ErrorCode::Resolver,
            ))
        })?;
    let ca = rpc::tls::read_cluster_ca(&paths).map_err(|e| {
        exec_err(format!(
            "Cannot read the cluster CA: {}",
            objects::error_chain(&e)
        ))
    })?;
    let cert = rpc::tls::create_node_cert(&ca, node, ip).map_err(|e| {
        exec_err(format!(
            "Cannot create a certificate for {node}: {}",
            objects::error_chain(&e)
        ))
    })?;
    for d in [
        node_paths.data_dir(),
        node_paths.log_dir(),
        node_paths.run_dir(),
    ] {
        std::fs::create_dir_all(&d)
            .map_err(|e| exec_err(format!("Cannot create {}: {e}", d.display())))?;
    }
    rpc::tls::write_cluster_ca(&node_paths, &ca, false).map_err(|e| {
        exec_err(format!(
            "Cannot install the cluster CA on {node}: {}",
            objects::error_chain(&e)
        ))
    })?;
    rpc::tls::write_node_cert(&node_paths, &cert).map_err(|e| {
        exec_err(format!(
            "Cannot install the certificate on {node}: {}",
            objects::error_chain(&e)
        ))
    })?;
    start_node_daemon(&node_paths, node, ip)
}

/// `gnt-cluster destroy --yes-do-it`.
pub fn destroy(yes_do_it: bool) -> Result<i32, CliError> {
    if !yes_do_it {
        output::err(
            "Destroying a cluster is irreversible. If you really want to destroy this cluster, \
             supply the --yes-do-it option.",
        );
        return Ok(exit::FAILURE);
    }
    let paths = Paths::from_env();
    let me = my_name();
    // On a virtual cluster, stop the other nodes' daemons too.
    let nodes: Vec<String> = std::fs::read_to_string(paths.ssconf("node_list"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .filter(|n| !n.is_empty() && *n != me)
        .collect();
    stop_daemon(&paths.masterd_pid());
    for n in nodes {
        if let Some(root) = vcluster_root(&paths, &me, &n) {
            let np = Paths::new(root);
            stop_daemon(&np.noded_pid());
            let _ = destroy_cluster(&np);
        }
    }
    stop_daemon(&paths.noded_pid());
    destroy_cluster(&paths)
        .map_err(|e| exec_err(format!("Cannot remove the cluster files: {e}")))?;
    Ok(exit::SUCCESS)
}
