//! `ganeti-rapi`: the RAPI daemon. Runs on the master node, serves HTTPS
//! on port 5080 with `var/lib/ganeti/rapi.pem` and speaks to the master
//! daemon over LUXI; every path derives from `GANETI_ROOTDIR`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use clap::Parser;
use objects::paths::{Paths, HOSTNAME_ENV, RAPI_PORT};
use rapi::state::{Options, State};
use tracing::{error, info, warn};

/// Exit status of a daemon started on a node that is not the master
/// (Ganeti's `EXIT_NOTMASTER`).
const EXIT_NOTMASTER: u8 = 11;

/// Ganeti Remote API daemon.
#[derive(Debug, Parser)]
#[command(name = "ganeti-rapi", version)]
struct Args {
    /// Address to listen on.
    #[arg(short = 'b', long = "bind", default_value = "0.0.0.0")]
    bind: IpAddr,
    /// TCP port to listen on.
    #[arg(short = 'p', long, default_value_t = RAPI_PORT)]
    port: u16,
    /// Stay in the foreground and log to stderr.
    #[arg(short = 'f', long)]
    foreground: bool,
    /// Log debug messages.
    #[arg(short = 'd', long)]
    debug: bool,
    /// Require credentials for reads too.
    #[arg(long = "require-authentication")]
    require_authentication: bool,
    /// Requests served at once (more wait their turn); up to 16 times as
    /// many connections (at least 64) are open at once.
    #[arg(long = "max-clients", default_value_t = 20)]
    max_clients: usize,
    /// Serve plain HTTP.
    #[arg(long = "no-ssl")]
    no_ssl: bool,
    /// The certificate (default: var/lib/ganeti/rapi.pem).
    #[arg(short = 'C', long = "ssl-cert")]
    ssl_cert: Option<PathBuf>,
    /// The private key (default: var/lib/ganeti/rapi.pem).
    #[arg(short = 'K', long = "ssl-key")]
    ssl_key: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let paths = absolute_paths();
    if args.max_clients < 1 {
        eprintln!("ganeti-rapi: --max-clients argument must be >= 1");
        return std::process::ExitCode::FAILURE;
    }
    if let Err(e) = check_master(&paths) {
        eprintln!("ganeti-rapi: {e:#}");
        return std::process::ExitCode::from(EXIT_NOTMASTER);
    }
    let tls = if args.no_ssl {
        None
    } else {
        let cert = args.ssl_cert.clone().unwrap_or_else(|| paths.rapi_cert());
        let key = args.ssl_key.clone().unwrap_or_else(|| cert.clone());
        match rapi::server::tls_config(&cert, &key) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("ganeti-rapi: {}", objects::error_chain(&e));
                return std::process::ExitCode::FAILURE;
            }
        }
    };
    // Fail where the caller sees it when the address cannot be used.
    let listener = match std::net::TcpListener::bind((args.bind, args.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ganeti-rapi: cannot bind {}:{}: {e}", args.bind, args.port);
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut pid_file = match PidFile::take(&paths) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ganeti-rapi: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if !args.foreground {
        if let Err(e) = nix::unistd::daemon(true, false) {
            eprintln!("ganeti-rapi: cannot daemonize: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    if let Err(e) = pid_file.write_pid() {
        eprintln!("ganeti-rapi: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    let log = match init_logging(&args, &paths) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ganeti-rapi: cannot set up logging: {e:#}");
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
    if let Some(log) = log {
        runtime.spawn(reopen_on_hangup(log));
    }
    match runtime.block_on(run(args, paths, listener, tls)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(
    args: Args,
    paths: Paths,
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<()> {
    info!(
        root = %paths.root().display(),
        bind = %args.bind,
        port = args.port,
        ssl = tls.is_some(),
        require_authentication = args.require_authentication,
        max_clients = args.max_clients,
        "ganeti-rapi {} starting",
        env!("CARGO_PKG_VERSION")
    );
    listener
        .set_nonblocking(true)
        .context("setting the listening socket non-blocking")?;
    let listener =
        tokio::net::TcpListener::from_std(listener).context("registering the listening socket")?;
    let state = Arc::new(State::new(
        &paths,
        Options {
            require_auth: args.require_authentication,
            max_clients: args.max_clients,
            ..Options::default()
        },
    ));
    let app = rapi::app(state);
    tokio::select! {
        _ = rapi::server::serve(listener, tls, app, rapi::server::max_connections(args.max_clients)) => {}
        _ = shutdown_signal() => info!("terminating"),
    }
    Ok(())
}

/// The node's tree, with a relative `GANETI_ROOTDIR` made absolute (the
/// daemon changes directory).
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

/// RAPI runs on the master only, as in Ganeti.
fn check_master(paths: &Paths) -> Result<()> {
    let file = paths.ssconf("master_node");
    let master = std::fs::read_to_string(&file)
        .with_context(|| format!("this node is not part of a cluster ({})", file.display()))?;
    let me = node_name();
    let master = master.trim();
    if master != me {
        anyhow::bail!("this node ({me}) is not the master node ({master})");
    }
    Ok(())
}

/// The pid file, locked while the daemon runs and removed when it stops.
struct PidFile {
    path: PathBuf,
    lock: nix::fcntl::Flock<File>,
}

impl PidFile {
    /// Takes the pid file: a second daemon on the same tree refuses to
    /// start.
    fn take(paths: &Paths) -> Result<PidFile> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let path = paths.rapi_pid();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = OpenOptions::new()
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
                    "another ganeti-rapi (pid {}) runs with the root {}",
                    other.trim(),
                    paths.root().display()
                )
            }
        }
    }

    fn write_pid(&mut self) -> Result<()> {
        use std::io::Seek;
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

/// The log file, reopened on SIGHUP (after log rotation).
#[derive(Clone)]
struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogFile {
    fn reopen(&self) -> std::io::Result<()> {
        let new = open_log(&self.path)?;
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = new;
        Ok(())
    }
}

struct LogWriter(Arc<Mutex<File>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFile {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter(self.file.clone())
    }
}

/// Logs to stderr (foreground) or to `var/log/ganeti/rapi-daemon.log`.
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
    let path = dir.join("rapi-daemon.log");
    let log = LogFile {
        file: Arc::new(Mutex::new(
            open_log(&path).with_context(|| format!("opening {}", path.display()))?,
        )),
        path,
    };
    builder.with_ansi(false).with_writer(log.clone()).init();
    Ok(Some(log))
}

async fn reopen_on_hangup(log: LogFile) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        warn!("cannot catch SIGHUP: the log file will not be reopened");
        return;
    };
    while hup.recv().await.is_some() {
        match log.reopen() {
            Ok(()) => info!("log file reopened"),
            Err(e) => eprintln!("ganeti-rapi: cannot reopen the log file: {e}"),
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
