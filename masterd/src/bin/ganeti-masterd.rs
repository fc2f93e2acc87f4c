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
    /// Make this node the master (gnt-cluster master-failover runs this
    /// on the new master's node): vote, stop the old master, make this
    /// node's configuration and queue from its copies; prints the outcome
    /// as JSON and exits. The daemons are started afterwards.
    #[arg(long)]
    master_failover: bool,
    /// With --master-failover: skip the vote.
    #[arg(long, requires = "master_failover")]
    no_voting: bool,
    /// With --master-failover: ask only the online nodes.
    #[arg(long, requires = "master_failover")]
    ignore_offline_nodes: bool,
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
    if args.master_failover {
        master_failover(&args, &paths);
    }
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

/// This node's name: `GANETI_HOSTNAME` (virtual cluster) or the kernel's.
fn my_hostname() -> String {
    match std::env::var(objects::paths::HOSTNAME_ENV) {
        Ok(h) if !h.is_empty() => h,
        _ => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

/// `--master-failover`: logs to the master daemon's log, prints the
/// outcome as one JSON object and exits, 0 when the configuration and
/// queue were taken over, 1 otherwise.
fn master_failover(args: &Args, paths: &Paths) -> ! {
    if let Ok(log) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.log_dir().join("master-daemon.log"))
    {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(log))
            .init();
    }
    let me = my_hostname();
    let opts = masterd::failover::Options {
        no_voting: args.no_voting,
        ignore_offline_nodes: args.ignore_offline_nodes,
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            masterd::failover::FailoverError::Ganeti(luxi::GanetiError::exec(e.to_string()))
        })
        .and_then(|rt| {
            rt.block_on(masterd::failover::master_failover(
                paths,
                &me,
                opts,
                args.noded_port,
            ))
        });
    let (json, code) = match result {
        Ok(o) => (
            serde_json::json!({
                "rcode": o.rcode,
                "warnings": o.warnings,
                "rapi": o.rapi,
                "old_master": o.old_master,
            }),
            0,
        ),
        Err(masterd::failover::FailoverError::Ganeti(g)) => {
            tracing::error!("master-failover refused: {}", g.message());
            (serde_json::json!({ "error": g.encode() }), 1)
        }
        Err(e) => {
            tracing::error!("master-failover refused: {e}");
            (serde_json::json!({ "message": e.to_string() }), 1)
        }
    };
    println!("{json}");
    std::process::exit(code)
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
    tokio::spawn(async move {
        m.activate_master_ip().await;
        m.distribute_ssconf().await
    });
    master.start_replication();
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
    // No more clients; the candidates get the last changes (a planned
    // failover starts the new master from them). Running opcodes are
    // abandoned here; their jobs are marked error at the next start, here
    // or on the new master.
    let _ = std::fs::remove_file(paths.luxi_socket());
    master.flush_replication().await;
    let _ = std::fs::remove_file(paths.masterd_pid());
    Ok(())
}
