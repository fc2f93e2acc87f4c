//! `ganeti-noded`: the node daemon. Serves node RPC over HTTPS with client
//! certificates; every path derives from `GANETI_ROOTDIR`.

mod crypto;
mod exports;
mod extstorage;
mod handlers;
mod hooks_runner;
mod logfile;
mod master_role;
mod node_storage;
mod oob;
mod os;
mod process;
mod restricted;
mod server;
mod test_hooks;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use objects::paths::{Paths, HOSTNAME_ENV, NODED_PORT};
use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::handlers::State;
use crate::logfile::LogFile;
use crate::test_hooks::TestHooks;

/// The software version reported by `version`.
pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Ganeti node daemon.
#[derive(Debug, Parser)]
#[command(name = "ganeti-noded", version)]
struct Args {
    /// Address to listen on.
    #[arg(short = 'b', long, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// TCP port to listen on.
    #[arg(short = 'p', long, default_value_t = NODED_PORT)]
    port: u16,
    /// Stay in the foreground and log to stderr.
    #[arg(short = 'f', long)]
    foreground: bool,
    /// Log debug messages.
    #[arg(short = 'd', long)]
    debug: bool,
    /// Accept `test_set_failure` (failure injection for tests).
    #[arg(long)]
    enable_test_hooks: bool,
}

/// Polling interval while waiting for the node certificate.
const CERT_POLL: Duration = Duration::from_millis(500);
/// Interval of the supervision of `drbd` disks (their storage daemons,
/// reconnections and resyncs).
const DRBD_SUPERVISION: Duration = Duration::from_secs(1);

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let paths = absolute_paths();
    use_node_lvm_config(&paths);
    // Fail where the caller sees it when the address cannot be used; the
    // real listener is opened once the TLS files exist.
    if let Err(e) = check_bindable(args.bind, args.port) {
        eprintln!("ganeti-noded: cannot bind {}:{}: {e}", args.bind, args.port);
        return std::process::ExitCode::FAILURE;
    }
    if let Err(e) = ensure_dirs(&paths) {
        eprintln!("ganeti-noded: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    let mut pid_file = match take_pid_file(&paths) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ganeti-noded: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if !args.foreground {
        // The lock on the pid file passes to the daemon process.
        if let Err(e) = nix::unistd::daemon(true, false) {
            eprintln!("ganeti-noded: cannot daemonize: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    if let Err(e) = pid_file.write_pid() {
        eprintln!("ganeti-noded: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    let log_file = match init_logging(&args, &paths) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ganeti-noded: cannot set up logging: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(log) = log_file {
        runtime.spawn(reopen_on_hangup(log));
    }
    match runtime.block_on(run(args, paths.clone())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A node whose tree has its own `etc/lvm/lvm.conf` runs lvm with it
/// (`LVM_SYSTEM_DIR`): on a virtual cluster, each node's device filter
/// then shows it its own physical volumes only, as separate machines
/// would. Called before any thread starts.
fn use_node_lvm_config(paths: &Paths) {
    let dir = paths.root().join("etc/lvm");
    if paths.root() != std::path::Path::new("/")
        && dir.join("lvm.conf").is_file()
        && std::env::var_os("LVM_SYSTEM_DIR").is_none()
    {
        std::env::set_var("LVM_SYSTEM_DIR", &dir);
    }
}

/// Binds (without listening, so that nobody can connect) and releases.
fn check_bindable(ip: IpAddr, port: u16) -> std::io::Result<()> {
    let socket = match ip {
        IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(std::net::SocketAddr::new(ip, port))
}

/// The node's tree, with a relative `GANETI_ROOTDIR` made absolute (the
/// daemon may change directory).
fn absolute_paths() -> Paths {
    let paths = Paths::from_env();
    if paths.root().is_absolute() {
        return paths;
    }
    match std::env::current_dir() {
        Ok(cwd) => Paths::new(cwd.join(paths.root())),
        Err(_) => paths,
    }
}

/// Logs to stderr (foreground) or to the log file, which is returned so
/// that SIGHUP can reopen it.
fn init_logging(args: &Args, paths: &Paths) -> Result<Option<LogFile>> {
    let level = if args.debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANETI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if args.foreground {
        builder.with_writer(std::io::stderr).init();
        return Ok(None);
    }
    let dir = paths.log_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file_path = dir.join("node-daemon.log");
    let log =
        LogFile::open(&file_path).with_context(|| format!("opening {}", file_path.display()))?;
    builder.with_ansi(false).with_writer(log.clone()).init();
    Ok(Some(log))
}

/// Reopens the log file on every SIGHUP.
async fn reopen_on_hangup(log: LogFile) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        warn!("cannot catch SIGHUP: the log file will not be reopened");
        return;
    };
    while hup.recv().await.is_some() {
        match log.reopen() {
            Ok(()) => info!("log file reopened"),
            Err(e) => eprintln!("ganeti-noded: cannot reopen the log file: {e}"),
        }
    }
}

fn node_name() -> String {
    if let Ok(name) = std::env::var(HOSTNAME_ENV) {
        if !name.trim().is_empty() {
            return name.trim().to_string();
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

fn ensure_dirs(paths: &Paths) -> Result<()> {
    let dirs: Vec<PathBuf> = vec![
        paths.data_dir(),
        paths.run_dir(),
        paths.log_dir(),
        paths.os_log_dir(),
        paths.hypervisor_run_dir("fake"),
        paths.file_storage_dir(),
        paths.shared_file_storage_dir(),
    ];
    for dir in dirs {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

/// Waits until the node certificate and the cluster CA are present and
/// usable (a node not yet part of a cluster has neither).
async fn wait_for_tls(paths: &Paths) -> Arc<rustls::ServerConfig> {
    let mut reported = None::<String>;
    loop {
        match rpc::tls::server_config(paths) {
            Ok(config) => {
                if reported.is_some() {
                    info!("TLS files present, starting");
                }
                return config;
            }
            Err(e) => {
                let msg = objects::error_chain(&e);
                if reported.as_deref() != Some(msg.as_str()) {
                    info!(
                        "waiting for the node certificate {} and the cluster CA {}: {msg}",
                        paths.node_cert().display(),
                        paths.cluster_ca_cert().display()
                    );
                    reported = Some(msg);
                }
                tokio::time::sleep(CERT_POLL).await;
            }
        }
    }
}

/// The pid file, locked while the daemon runs and removed when it stops.
struct PidFile {
    path: PathBuf,
    lock: nix::fcntl::Flock<std::fs::File>,
}

impl PidFile {
    /// Writes this process's id.
    fn write_pid(&mut self) -> Result<()> {
        use std::io::{Seek, Write};
        let f = &mut *self.lock;
        f.set_len(0)
            .and_then(|()| f.rewind())
            .and_then(|()| writeln!(f, "{}", std::process::id()))
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing the pid file {}", self.path.display()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes the pid file: locked for the life of the process, so that a
/// second daemon on the same root refuses to start.
fn take_pid_file(paths: &Paths) -> Result<PidFile> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let path = paths.noded_pid();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .with_context(|| format!("opening the pid file {}", path.display()))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(PidFile { path, lock }),
        Err((mut file, _)) => {
            let mut other = String::new();
            let _ = file.read_to_string(&mut other);
            anyhow::bail!(
                "another ganeti-noded (pid {}) runs with the root {}",
                other.trim(),
                paths.root().display()
            )
        }
    }
}

async fn run(args: Args, paths: Paths) -> Result<()> {
    let node_name = node_name();
    info!(
        node = %node_name,
        root = %paths.root().display(),
        test_hooks = args.enable_test_hooks,
        "ganeti-noded {} starting",
        SOFTWARE_VERSION
    );
    if args.enable_test_hooks {
        warn!("test hooks are enabled: failures can be injected over RPC");
    }
    let state = Arc::new(State::new(
        paths.clone(),
        node_name,
        args.enable_test_hooks.then(TestHooks::default),
    ));

    start_drbd_supervisor(state.clone());

    loop {
        let tls = tokio::select! {
            tls = wait_for_tls(&paths) => tls,
            _ = shutdown_signal() => break,
        };
        let listener = TcpListener::bind((args.bind, args.port))
            .await
            .with_context(|| format!("binding {}:{}", args.bind, args.port))?;
        info!("listening on {}:{}", args.bind, args.port);
        state.tls.set(tls);
        tokio::select! {
            _ = server::serve(listener, state.clone()) => {}
            _ = state.left.notified() => {
                // Calls in progress finish on their own connections.
                info!("stopped listening after leaving the cluster");
                continue;
            }
            _ = shutdown_signal() => {
                info!("terminating");
                break;
            }
        }
    }
    Ok(())
}

/// Supervises the node's `drbd` disks in a thread of its own: the disks
/// whose storage daemons run are found from their runtime files, so a
/// restarted node daemon takes over those of its predecessor.
fn start_drbd_supervisor(state: Arc<State>) {
    if let Ok(ctx) = state.storage() {
        let dirs = storage::drbd::DrbdDirs::new(ctx.paths());
        for disk in dirs.disks() {
            let running = storage::drbd::daemon_running(&dirs, &disk);
            info!(disk, running, "found an assembled drbd disk");
        }
    }
    let spawned = std::thread::Builder::new()
        .name("drbd-supervisor".into())
        .spawn(move || loop {
            match state.storage() {
                Ok(ctx) => storage::drbd::supervise(&ctx),
                Err(e) => warn!(error = %e, "cannot supervise the drbd disks"),
            }
            std::thread::sleep(DRBD_SUPERVISION);
        });
    if let Err(e) = spawned {
        error!("cannot start the supervision of drbd disks: {e}");
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the default action (exit) still applies.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
