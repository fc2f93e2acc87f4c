//! `ganeti-masterd`: the master daemon.

use anyhow::Context;
use clap::Parser;
use masterd::config::ConfigStore;
use masterd::executor::Executor;
use masterd::jobqueue::{JobQueue, QueueOptions};
use masterd::master::Master;
use masterd::rpc::Rpc;
use objects::paths::{Paths, NODED_PORT};

/// The Ganeti-compatible master daemon of ganeti-rs.
#[derive(Parser, Debug)]
#[command(name = "ganeti-masterd", version)]
struct Args {
    /// Stay in the foreground and log to standard error.
    #[arg(short = 'f', long)]
    foreground: bool,
    /// Log debug messages.
    #[arg(short = 'd', long)]
    debug: bool,
    /// How many jobs may run at once.
    #[arg(long, default_value_t = 20)]
    max_running_jobs: usize,
    /// TCP port of the node daemons.
    #[arg(long, env = "GANETI_NODED_PORT", default_value_t = NODED_PORT)]
    noded_port: u16,
    /// Store the cluster's first configuration, read as JSON from standard
    /// input (gnt-cluster init runs this), and exit.
    #[arg(long)]
    init: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let paths = Paths::from_env();
    if args.init {
        init(&paths);
    }
    // Bad settings are reported before the daemon leaves the terminal.
    let watcher =
        masterd::watcher::Options::from_env().context("reading the watcher's settings")?;
    std::fs::create_dir_all(paths.log_dir()).context("creating the log directory")?;
    if !args.foreground {
        nix::unistd::daemon(true, false).context("detaching from the terminal")?;
    }
    let level = if args.debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    if args.foreground {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(paths.log_dir().join("master-daemon.log"))
            .context("opening the log file")?;
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(log))
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(run(args, paths, watcher))
}

/// `--init`: stores the first configuration and exits, 0 on success,
/// 1 with the reason on standard error otherwise.
fn init(paths: &Paths) -> ! {
    match masterd::bootstrap::init_config(&paths.config_db(), std::io::stdin().lock()) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("{}", objects::error_chain(&e));
            std::process::exit(1)
        }
    }
}

async fn run(
    args: Args,
    paths: Paths,
    watcher: Option<masterd::watcher::Options>,
) -> anyhow::Result<()> {
    let config = ConfigStore::open(&paths.config_db())
        .with_context(|| format!("opening the configuration {}", paths.config_db().display()))?;
    let listener = masterd::luxi_server::bind(&paths.luxi_socket())
        .with_context(|| format!("binding {}", paths.luxi_socket().display()))?;
    let master = Master::new(
        paths.clone(),
        config,
        Rpc::new(paths.clone(), args.noded_port),
    );
    let queue = JobQueue::open(
        &paths.queue_db(),
        QueueOptions {
            max_running_jobs: args.max_running_jobs.max(1),
            ..QueueOptions::default()
        },
        Executor::new(&master),
    )
    .context("opening the job queue")?;
    master.set_queue(queue.clone());
    // Clients find the master through the local ssconf files: they are
    // written before the first LUXI answer, the other nodes' copies after.
    master
        .write_local_ssconf()
        .context("writing the local ssconf files")?;
    queue.start();
    std::fs::write(paths.masterd_pid(), format!("{}\n", std::process::id()))
        .context("writing the pid file")?;
    tracing::info!(
        "ganeti-masterd {} serving {}",
        masterd::VERSION,
        paths.luxi_socket().display()
    );
    let m = master.clone();
    tokio::spawn(async move { m.distribute_ssconf().await });
    match watcher {
        Some(opts) => {
            masterd::watcher::start(&master, opts);
        }
        None => tracing::info!("the watcher is off (GANETI_WATCHER=off)"),
    }
    let server = tokio::spawn(masterd::luxi_server::serve(master.clone(), listener));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("terminating on SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("terminating on SIGINT"),
        _ = server => {},
    }
    // Running opcodes are abandoned here; their jobs are marked error at the
    // next start.
    let _ = std::fs::remove_file(paths.luxi_socket());
    let _ = std::fs::remove_file(paths.masterd_pid());
    Ok(())
}
