//! `ganeti-noded`: the node daemon. Serves node RPC over HTTPS with client
//! certificates; every path derives from `GANETI_ROOTDIR`.

mod handlers;
mod hooks;
mod os;
mod server;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use hypervisors::Registry;
use objects::paths::{Paths, HOSTNAME_ENV, NODED_PORT};
use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::handlers::State;
use crate::hooks::TestHooks;

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

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let paths = absolute_paths();
    if !args.foreground {
        if let Err(e) = nix::unistd::daemon(true, false) {
            eprintln!("ganeti-noded: cannot daemonize: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    if let Err(e) = init_logging(&args, &paths) {
        eprintln!("ganeti-noded: cannot set up logging: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
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
    match runtime.block_on(run(args, paths.clone())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            let _ = std::fs::remove_file(paths.noded_pid());
            std::process::ExitCode::FAILURE
        }
    }
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

fn init_logging(args: &Args, paths: &Paths) -> Result<()> {
    let level = if args.debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANETI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if args.foreground {
        builder.with_writer(std::io::stderr).init();
    } else {
        let dir = paths.log_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let file_path = dir.join("node-daemon.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file_path)
            .with_context(|| format!("opening {}", file_path.display()))?;
        builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init();
    }
    Ok(())
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
        match noded::tls::server_config(paths) {
            Ok(config) => {
                if reported.is_some() {
                    info!("TLS files present, starting");
                }
                return config;
            }
            Err(e) => {
                let msg = handlers::chain(&e);
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

fn write_pid_file(paths: &Paths) -> Result<()> {
    let pid_file = paths.noded_pid();
    noded::tls::write_file_atomically(
        &pid_file,
        format!("{}\n", std::process::id()).as_bytes(),
        0o644,
    )
    .with_context(|| format!("writing the pid file {}", pid_file.display()))
}

async fn run(args: Args, paths: Paths) -> Result<()> {
    ensure_dirs(&paths)?;
    write_pid_file(&paths)?;
    let node_name = node_name();
    info!(
        node = %node_name,
        root = %paths.root().display(),
        test_hooks = args.enable_test_hooks,
        "ganeti-noded {} starting",
        noded::SOFTWARE_VERSION
    );
    if args.enable_test_hooks {
        warn!("test hooks are enabled: failures can be injected over RPC");
    }
    let state = Arc::new(State {
        registry: Registry::new(&paths),
        paths: paths.clone(),
        node_name,
        hooks: args.enable_test_hooks.then(TestHooks::default),
    });

    let tls = tokio::select! {
        tls = wait_for_tls(&paths) => tls,
        _ = shutdown_signal() => {
            let _ = std::fs::remove_file(paths.noded_pid());
            return Ok(());
        }
    };
    let listener = TcpListener::bind((args.bind, args.port))
        .await
        .with_context(|| format!("binding {}:{}", args.bind, args.port))?;
    info!("listening on {}:{}", args.bind, args.port);

    tokio::select! {
        _ = server::serve(listener, tls, state) => {}
        _ = shutdown_signal() => info!("terminating"),
    }
    let _ = std::fs::remove_file(paths.noded_pid());
    Ok(())
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
