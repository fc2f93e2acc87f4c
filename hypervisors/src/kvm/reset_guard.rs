//! No silent reboot across a migration.
//!
//! From the moment a migration starts until [`WATCH`] after the guest runs
//! on the target, QEMU is told (`set-action`) to turn a guest reset or
//! power-off into a pause in state `shutdown`, on both sides. A guest that
//! resets then (a crash that reboots it, a triple fault) stays stopped
//! with its memory and console for inspection, instead of booting again
//! under a migration that reports success:
//!
//! - during the migration, the paused state travels to the target, whose
//!   finalization fails the job (see `finalize_migration_dst`);
//! - right after it, the instance shows as `ERROR_down` (QEMU runs, the
//!   guest does not) and the node daemon logs why.
//!
//! After the window the instance's own actions come back (`-no-reboot` for
//! `reboot_behavior=exit`, `-no-shutdown` for `user_shutdown`). Whatever
//! acts on the instance itself (reboot, stop, the next migration) ends or
//! replaces the guard first, so that a reboot asked for is a reboot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::{error, info, warn};

use super::params::KvmParams;
use super::{lock, QmpLocks, QMP_QUERY_TIMEOUT};
use crate::qmp::{Qmp, QmpError};

/// How long after a migration a reset still stops the guest.
pub const WATCH: Duration = Duration::from_secs(10);
/// How often the watch asks QEMU for the guest's state.
const POLL: Duration = Duration::from_millis(200);

/// QEMU's run states in which the guest is stopped for good (until a
/// reset): what a guarded reset or power-off leaves.
pub fn is_dead(status: &str) -> bool {
    matches!(status, "shutdown" | "guest-panicked" | "internal-error")
}

/// The `set-action` arguments of the instance's own configuration.
fn own_actions(params: &KvmParams) -> Value {
    json!({
        "reboot": if params.reboot_exits { "shutdown" } else { "reset" },
        "shutdown": if params.user_shutdown { "pause" } else { "poweroff" },
    })
}

/// The `set-action` arguments while guarded.
fn guarded_actions() -> Value {
    json!({"reboot": "shutdown", "shutdown": "pause"})
}

/// The guards of one node's instances. Each guard has a generation: a
/// watch ends its guard only if no newer one replaced it.
#[derive(Debug, Default, Clone)]
pub struct Guards {
    generations: Arc<Mutex<HashMap<String, u64>>>,
}

impl Guards {
    fn bump(&self, name: &str) -> u64 {
        let mut g = lock(&self.generations);
        let n = g.entry(name.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    fn is_current(&self, name: &str, generation: u64) -> bool {
        lock(&self.generations).get(name) == Some(&generation)
    }
}

/// One QMP command on `sock`, one session at a time per socket.
fn qmp(
    locks: &QmpLocks,
    sock: &Path,
    command: &str,
    args: Option<Value>,
) -> Result<Value, QmpError> {
    let sock_lock = lock(locks).entry(sock.to_path_buf()).or_default().clone();
    let _session = lock(&sock_lock);
    Qmp::connect(sock, QMP_QUERY_TIMEOUT)?.execute(command, args)
}

/// What guards one instance's QEMU.
#[derive(Debug, Clone)]
pub struct ResetGuard {
    pub guards: Guards,
    pub locks: QmpLocks,
    pub sock: PathBuf,
    pub name: String,
}

impl ResetGuard {
    /// Guards the instance from now on (replacing any watch still going).
    pub fn arm(&self) -> Result<(), QmpError> {
        self.guards.bump(&self.name);
        qmp(
            &self.locks,
            &self.sock,
            "set-action",
            Some(guarded_actions()),
        )?;
        Ok(())
    }

    /// [`ResetGuard::arm`] in a QMP session already open.
    pub fn arm_in(&self, q: &mut Qmp) -> Result<(), QmpError> {
        self.guards.bump(&self.name);
        q.execute("set-action", Some(guarded_actions()))?;
        Ok(())
    }

    /// Ends any guard now: the instance's own actions again.
    pub fn disarm(&self, params: &KvmParams) -> Result<(), QmpError> {
        self.guards.bump(&self.name);
        qmp(
            &self.locks,
            &self.sock,
            "set-action",
            Some(own_actions(params)),
        )?;
        Ok(())
    }

    /// Keeps the guard for [`WATCH`] more (in a thread of its own), then
    /// ends it, unless something replaced it meanwhile. A guest that
    /// resets meanwhile is reported and left stopped.
    pub fn watch(self, params: &KvmParams) {
        let generation = self.guards.bump(&self.name);
        let own = own_actions(params);
        let spawned = std::thread::Builder::new()
            .name(format!("reset-watch-{}", self.name))
            .spawn(move || {
                let start = Instant::now();
                while start.elapsed() < WATCH {
                    std::thread::sleep(POLL);
                    if !self.guards.is_current(&self.name, generation) {
                        return;
                    }
                    let status = match qmp(&self.locks, &self.sock, "query-status", None) {
                        Ok(s) => s,
                        // QEMU went (stopped, migrated away): nothing to watch.
                        Err(_) => return,
                    };
                    let s = status.get("status").and_then(Value::as_str).unwrap_or("");
                    if is_dead(s) {
                        error!(
                            instance = %self.name,
                            after_ms = start.elapsed().as_millis() as u64,
                            status = s,
                            "the guest reset or powered off right after its migration; \
                             QEMU keeps it stopped for inspection (its console is in the \
                             instance's serial log)"
                        );
                        return;
                    }
                }
                if self.guards.is_current(&self.name, generation) {
                    match qmp(&self.locks, &self.sock, "set-action", Some(own)) {
                        Ok(_) => info!(instance = %self.name, "post-migration watch over"),
                        Err(e) => warn!(instance = %self.name, error = %e, "cannot restore the instance's reset actions"),
                    }
                }
            });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start the post-migration watch");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_actions_follow_the_hvparams() {
        let params = |kv: &[(&str, Value)]| {
            let hv = kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            KvmParams::parse(&hv).unwrap()
        };
        assert_eq!(
            own_actions(&params(&[])),
            json!({"reboot": "reset", "shutdown": "poweroff"})
        );
        assert_eq!(
            own_actions(&params(&[
                ("reboot_behavior", json!("exit")),
                ("user_shutdown", json!(true))
            ])),
            json!({"reboot": "shutdown", "shutdown": "pause"})
        );
    }

    #[test]
    fn a_newer_guard_replaces_an_older_one() {
        let g = Guards::default();
        let first = g.bump("a");
        assert!(g.is_current("a", first));
        let second = g.bump("a");
        assert!(!g.is_current("a", first));
        assert!(g.is_current("a", second));
        assert!(!g.is_current("b", second));
    }
}
