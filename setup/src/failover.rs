//! `gnt-cluster master-failover` on the node that is to become the master:
//! `ganeti-masterd --master-failover` does the vote, stops the old master
//! and makes this node's configuration and queue from its copies (the
//! format of both is private to `masterd`, as for `--init`); then the
//! master daemon, and the RAPI daemon if the old master ran one, are
//! started here. The new master daemon brings the master IP up and sends
//! every node the ssconf files that name it.

use std::net::IpAddr;
use std::path::Path;

use luxi::GanetiError;
use objects::paths::Paths;

use crate::daemons::{self, DaemonError};

/// What `master-failover` was asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub no_voting: bool,
    pub ignore_offline_nodes: bool,
}

/// Why the failover did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// The master daemon's refusal, as Ganeti reports it.
    #[error("{}", .0.message())]
    Ganeti(GanetiError),
    /// A refusal that Ganeti prints as is (no majority).
    #[error("{0}")]
    Refused(String),
    #[error("cannot run {binary} --master-failover")]
    Run {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{binary} --master-failover gave no outcome (exit status {status}); see {}", log.display())]
    NoOutcome {
        binary: String,
        status: std::process::ExitStatus,
        log: std::path::PathBuf,
    },
}

/// What the failover did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// 0, or 1 when something needs the operator's attention.
    pub rcode: i32,
    /// Warnings for the operator, in Ganeti's words.
    pub warnings: Vec<String>,
    pub old_master: String,
}

/// Makes this node (`me`, tree `paths`) the master.
pub fn master_failover(paths: &Paths, me: &str, opts: Options) -> Result<Outcome, FailoverError> {
    let mut cmd = daemons::command(daemons::MASTERD, paths.root(), me);
    cmd.arg("--master-failover");
    if opts.no_voting {
        cmd.arg("--no-voting");
    }
    if opts.ignore_offline_nodes {
        cmd.arg("--ignore-offline-nodes");
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|source| FailoverError::Run {
            binary: daemons::MASTERD.into(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let answer: Option<serde_json::Value> = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l.trim()).ok());
    let Some(answer) = answer else {
        return Err(FailoverError::NoOutcome {
            binary: daemons::MASTERD.into(),
            status: out.status,
            log: paths.log_dir().join("master-daemon.log"),
        });
    };
    if let Some(e) = answer.get("error") {
        return Err(FailoverError::Ganeti(GanetiError::decode(e)));
    }
    if let Some(m) = answer.get("message").and_then(|m| m.as_str()) {
        return Err(FailoverError::Refused(m.to_string()));
    }
    let mut outcome = Outcome {
        rcode: answer["rcode"].as_i64().unwrap_or(0) as i32,
        warnings: answer["warnings"]
            .as_array()
            .map(|w| {
                w.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        old_master: answer["old_master"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    let rapi = answer["rapi"].as_bool().unwrap_or(false);
    if let Err(e) = start_master_daemons(paths, me, rapi) {
        outcome.rcode = 1;
        outcome.warnings.push(format!(
            "Could not start the master role on the new master {me}, please check: {e}"
        ));
    }
    Ok(outcome)
}

/// Starts the master daemon here, then the RAPI daemon on the master IP
/// (which the new master's ssconf names) when `rapi`.
fn start_master_daemons(paths: &Paths, me: &str, rapi: bool) -> Result<(), DaemonError> {
    daemons::start_masterd(paths, me)?;
    if rapi {
        if let Some(ip) = master_ip(&paths.ssconf("master_ip")) {
            daemons::start_rapi(paths, me, ip)?;
        }
    }
    Ok(())
}

fn master_ip(path: &Path) -> Option<IpAddr> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
