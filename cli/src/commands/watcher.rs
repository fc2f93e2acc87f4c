//! `ganeti-watcher`, for the crontabs and scripts that run Ganeti's: the
//! repairs themselves are made by the watcher inside the master, within
//! seconds (see masterd's `watcher` module). A run of this command:
//! - does nothing when the watcher is paused (the node's `watcher.pause`
//!   file, as `gnt-cluster watcher pause` writes it), unless
//!   `--ignore-pause`;
//! - does nothing on a node that is not the master;
//! - archives the jobs older than `--job-age` (default 6 hours), as
//!   Ganeti's watcher;
//! - checks that the master's watcher made a pass in the last
//!   [`STALE_AFTER`] seconds (its `watcher.data` file), and fails saying
//!   so otherwise (the master runs with `GANETI_WATCHER=off`, or it hangs).
//!
//! Ganeti's other options are accepted and have no effect here.

use clap::Parser;
use serde_json::{json, Value};

use crate::commands::job::parse_timespec;
use crate::ctx::{connect, my_hostname};
use crate::error::{exit, CliError};
use crate::output;

/// How old the master watcher's last pass may be before this command
/// reports it (five of its full passes).
pub const STALE_AFTER: f64 = 300.0;

/// Ganeti cluster watcher
#[derive(Parser, Debug)]
#[command(name = "ganeti-watcher", disable_version_flag = true)]
struct Args {
    /// Print debugging messages
    #[arg(short = 'd', long = "debug")]
    debug: bool,
    /// Autoarchive jobs older than this age (default 6 hours)
    #[arg(short = 'A', long = "job-age", default_value = "21600")]
    job_age: String,
    /// Ignore cluster pause setting
    #[arg(long)]
    ignore_pause: bool,
    /// Accepted for compatibility (the master verifies disks itself)
    #[arg(long)]
    no_verify_disks: bool,
    /// Accepted for compatibility
    #[arg(long)]
    wait_children: bool,
    /// Accepted for compatibility
    #[arg(long)]
    no_wait_children: bool,
    /// Accepted for compatibility
    #[arg(long)]
    nodegroup: Option<String>,
    /// Accepted for compatibility
    #[arg(long)]
    rapi_ip: Option<String>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The end of the pause in force, from the node's pause file.
fn paused_until(paths: &objects::paths::Paths) -> Option<i64> {
    let text = std::fs::read_to_string(paths.data_dir().join("watcher.pause")).ok()?;
    let until: i64 = text.trim().parse().ok()?;
    (now() <= until as f64).then_some(until)
}

pub fn main() -> i32 {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp => exit::SUCCESS,
                _ => exit::FAILURE,
            };
        }
    };
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            output::err(&format!("ganeti-watcher: {e}"));
            exit::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<i32, CliError> {
    let debug = |msg: &str| {
        if args.debug {
            output::err(msg);
        }
    };
    let paths = objects::paths::Paths::from_env();
    if let Some(until) = paused_until(&paths) {
        if !args.ignore_pause {
            debug(&format!("Pause has been set until {until}, exiting"));
            return Ok(exit::SUCCESS);
        }
    }
    let master = std::fs::read_to_string(paths.ssconf("master_node")).unwrap_or_default();
    if master.trim() != my_hostname() {
        debug("Not on the master node, nothing to do");
        return Ok(exit::SUCCESS);
    }
    let age = parse_timespec(&args.job_age)?;
    let mut client = connect()?;
    let res: Value = client.call("AutoArchiveJobs", json!([age, 89]))?;
    debug(&format!(
        "Archived {} jobs, left {}",
        res[0].as_u64().unwrap_or(0),
        res[1].as_u64().unwrap_or(0)
    ));
    let state: Value = std::fs::read_to_string(paths.data_dir().join("watcher.data"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    match state["last_pass"].as_f64() {
        Some(t) if now() - t <= STALE_AFTER => {
            debug(&format!(
                "The master's watcher made its last pass {:.0} s ago",
                now() - t
            ));
            Ok(exit::SUCCESS)
        }
        Some(t) => Err(CliError::invalid(format!(
            "the master's watcher has made no pass for {:.0} s",
            now() - t
        ))),
        None => Err(CliError::invalid(
            "the master's watcher has never run (is the master started with GANETI_WATCHER=off?)",
        )),
    }
}
