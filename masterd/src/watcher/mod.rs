//! The watcher: a reconciler inside the master that repairs the cluster
//! as Ganeti's `ganeti-watcher` does, within seconds instead of a 5-minute
//! cron.
//!
//! What starts a pass:
//! - the end of any job (the queue's [`JobQueue::finished_jobs`]), after a
//!   short settling delay that coalesces bursts;
//! - a poll of the instances' states every [`Options::poll`] (5 s): a
//!   node cannot call the master, so a guest that dies is seen at the next
//!   poll;
//! - a full pass every [`Options::interval`] (60 s), which also archives
//!   old jobs, checks the nodes' boot ids and verifies the disks;
//! - the end of a backoff or of the rate window ([`Notepad::next_wakeup`]).
//!
//! What a pass does (nothing while the watcher is paused, see [`pause`]):
//! - asks every online node which instances run, computes each instance's
//!   status as queries do, and lets [`policy`] decide; a restart is an
//!   `OP_INSTANCE_STARTUP` job;
//! - on a full pass: for nodes whose boot id changed, `OP_INSTANCE_ACTIVATE_DISKS`
//!   for the instances with active disks that have a secondary there; per
//!   node group with such instances (drbd or plain), an
//!   `OP_GROUP_VERIFY_DISKS` job (archived once read, as Ganeti's watcher
//!   does) and `OP_INSTANCE_ACTIVATE_DISKS` for the instances it names;
//!   `AutoArchiveJobs` of the jobs older than [`Options::job_age`].
//!
//! Every repair is an ordinary job whose opcodes carry the reason
//! `gnt:watcher`. An instance is not touched while an opcode holds its
//! lock, nor when its configuration changed while the nodes were asked.
//! What the watcher remembers is written to `watcher.data` in the data
//! directory after each pass, and read back when the master starts.

pub mod pause;
pub mod policy;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use luxi::query::Cell;
use objects::{AdminState, DiskTemplate};
use serde_json::{json, Value};

use crate::jobqueue::JobQueue;
use crate::locking::{Level, LockRequest, Mode};
use crate::master::Master;
use crate::query::instance::InstRow;
use crate::query::live::{Live, NodeAnswer};
pub use policy::{Limits, Notepad, Verdict};

/// The reason source of the watcher's opcodes (Ganeti's
/// `OPCODE_REASON_SRC_WATCHER`).
pub const REASON_SOURCE: &str = "gnt:watcher";

/// How the watcher runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Between full passes.
    pub interval: Duration,
    /// Between polls of the instances' states.
    pub poll: Duration,
    /// After a job ends, before the pass it triggers.
    pub settle: Duration,
    /// Jobs that ended this many seconds ago are archived (Ganeti's
    /// `--job-age`, 6 hours).
    pub job_age: i64,
    pub limits: Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            interval: Duration::from_secs(60),
            poll: Duration::from_secs(5),
            settle: Duration::from_millis(500),
            job_age: 6 * 3600,
            limits: Limits::default(),
        }
    }
}

/// A watcher setting in the environment is not what it should be.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value}: expected {expected}")]
pub struct OptionError {
    name: &'static str,
    value: String,
    expected: &'static str,
}

impl Options {
    /// The options from the environment: `GANETI_WATCHER=off` disables the
    /// watcher (`None`); `GANETI_WATCHER_INTERVAL`, `_POLL`, `_SETTLE`,
    /// `_BACKOFF`, `_BACKOFF_MAX`, `_STABLE` (seconds, fractions allowed),
    /// `_JOB_AGE` (seconds) and `_MAX_REPAIRS` (per minute) override the
    /// defaults.
    pub fn from_env() -> Result<Option<Options>, OptionError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Options>, OptionError> {
        if let Some(v) = get("GANETI_WATCHER") {
            match v.as_str() {
                "off" | "no" | "0" | "false" => return Ok(None),
                "on" | "yes" | "1" | "true" | "" => {}
                _ => {
                    return Err(OptionError {
                        name: "GANETI_WATCHER",
                        value: v,
                        expected: "on or off",
                    })
                }
            }
        }
        let secs = |name: &'static str| -> Result<Option<f64>, OptionError> {
            let Some(v) = get(name) else { return Ok(None) };
            match v.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && s >= 0.0 => Ok(Some(s)),
                _ => Err(OptionError {
                    name,
                    value: v,
                    expected: "a number of seconds",
                }),
            }
        };
        let dur = |name| -> Result<Option<Duration>, OptionError> {
            Ok(secs(name)?.map(Duration::from_secs_f64))
        };
        let mut o = Options::default();
        if let Some(d) = dur("GANETI_WATCHER_INTERVAL")? {
            o.interval = d;
        }
        if let Some(d) = dur("GANETI_WATCHER_POLL")? {
            o.poll = d;
        }
        if let Some(d) = dur("GANETI_WATCHER_SETTLE")? {
            o.settle = d;
        }
        if let Some(s) = secs("GANETI_WATCHER_BACKOFF")? {
            o.limits.backoff = s;
        }
        if let Some(s) = secs("GANETI_WATCHER_BACKOFF_MAX")? {
            o.limits.backoff_max = s;
        }
        if let Some(s) = secs("GANETI_WATCHER_STABLE")? {
            o.limits.stable = s;
        }
        if let Some(s) = secs("GANETI_WATCHER_JOB_AGE")? {
            o.job_age = s as i64;
        }
        if let Some(v) = get("GANETI_WATCHER_MAX_REPAIRS") {
            o.limits.max_repairs_per_minute = v.trim().parse().map_err(|_| OptionError {
                name: "GANETI_WATCHER_MAX_REPAIRS",
                value: v,
                expected: "a whole number of repairs per minute",
            })?;
        }
        Ok(Some(o))
    }
}

/// The running watcher.
pub struct Watcher {
    master: Arc<Master>,
    opts: Options,
    pad: Mutex<Notepad>,
    /// A disk verification is under way (they run beside the passes).
    verifying: AtomicBool,
}

/// Starts the watcher of `master` (whose queue is attached) as a task.
pub fn start(master: &Arc<Master>, opts: Options) -> Arc<Watcher> {
    let w = Watcher::new(master, opts);
    tracing::info!(
        poll = ?w.opts.poll,
        interval = ?w.opts.interval,
        "watcher started"
    );
    tokio::spawn(w.clone().run());
    w
}

/// The state file.
fn state_file(master: &Master) -> std::path::PathBuf {
    master.paths.data_dir().join("watcher.data")
}

fn load(master: &Master) -> Notepad {
    let path = state_file(master);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Notepad::default();
    };
    match serde_json::from_str::<Notepad>(&text) {
        Ok(mut pad) => {
            pad.passes = 0;
            pad
        }
        Err(e) => {
            tracing::warn!(
                "ignoring the unreadable watcher state {}: {e}",
                path.display()
            );
            Notepad::default()
        }
    }
}

/// A status cell's text.
fn cell_text(c: &Cell) -> Option<&str> {
    c.value.as_ref().and_then(Value::as_str)
}

/// Ganeti's `EpochNano`: the reason trail's timestamp.
fn epoch_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A reason trail marking an opcode as the watcher's.
fn reason(text: String) -> Value {
    json!([[REASON_SOURCE, text, epoch_nanos()]])
}

/// One instance as a pass sees it.
struct Seen {
    name: String,
    uuid: String,
    status: String,
}

impl Watcher {
    /// The watcher of `master`, with what it remembered before; it makes
    /// passes when [`start`]ed or when told ([`Watcher::pass`]).
    pub fn new(master: &Arc<Master>, opts: Options) -> Arc<Watcher> {
        Arc::new(Watcher {
            master: master.clone(),
            pad: Mutex::new(load(master)),
            opts,
            verifying: AtomicBool::new(false),
        })
    }

    /// What it remembers now.
    pub fn notepad(&self) -> Notepad {
        self.pad().clone()
    }

    fn pad(&self) -> MutexGuard<'_, Notepad> {
        self.pad.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queue(&self) -> &Arc<JobQueue> {
        self.master.queue()
    }

    async fn run(self: Arc<Self>) {
        let mut finished = self.queue().finished_jobs();
        let start = tokio::time::Instant::now();
        let mut next_full = start;
        loop {
            let now = tokio::time::Instant::now();
            let full = now >= next_full;
            if full {
                next_full = now + self.opts.interval;
            }
            self.pass(full).await;
            let mut wake = next_full;
            if !self.opts.poll.is_zero() {
                wake = wake.min(tokio::time::Instant::now() + self.opts.poll);
            }
            if let Some(t) = self.pad().next_wakeup(&self.opts.limits) {
                let from_now = (t - pause::now()).max(0.0);
                wake = wake.min(tokio::time::Instant::now() + Duration::from_secs_f64(from_now));
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                r = finished.changed() => {
                    if r.is_err() {
                        return;
                    }
                    // Let a burst of job ends settle into one pass.
                    tokio::time::sleep(self.opts.settle).await;
                    finished.borrow_and_update();
                }
            }
        }
    }

    /// Whether a pause is in force.
    pub fn paused(&self) -> bool {
        pause::until(&self.master.paths, pause::now()).is_some()
    }

    /// One pass; `full` adds the boot ids, the disks and the archive.
    pub async fn pass(self: &Arc<Self>, full: bool) {
        if self.paused() {
            tracing::debug!("watcher paused, skipping a pass");
            self.end_pass();
            return;
        }
        let queue = self.queue().clone();
        self.pad().jobs_finished(|id| {
            queue
                .job_field(id, "status")
                .and_then(|s| s.as_str().map(str::to_string))
                .is_none_or(|s| ["success", "error", "canceled"].contains(&s.as_str()))
        });
        let (seen, changed_nodes) = self.observe(full).await;
        let started = self.restart(&seen).await;
        if full {
            self.activate_after_reboot(&changed_nodes, &started).await;
            self.verify_disks(&seen);
            match self.queue().auto_archive(self.opts.job_age, 30).await {
                Ok((n, _)) if n > 0 => tracing::info!("watcher archived {n} old jobs"),
                Ok(_) => {}
                Err(e) => tracing::warn!("watcher could not archive old jobs: {}", e.message()),
            }
        }
        self.end_pass();
    }

    /// Counts the pass (paused ones too) and saves the notepad.
    fn end_pass(&self) {
        let snapshot = {
            let mut pad = self.pad();
            pad.passes += 1;
            pad.last_pass = pause::now();
            pad.clone()
        };
        self.save(&snapshot);
    }

    /// Asks the nodes; returns the instances whose configuration did not
    /// change meanwhile, with their status, and (full pass) the UUIDs of
    /// the nodes whose boot id changed.
    async fn observe(&self, full: bool) -> (Vec<Seen>, Vec<String>) {
        let (nodes, before): (Vec<objects::Node>, BTreeMap<String, u64>) = {
            let cfg = self.master.config.read();
            (
                cfg.nodes.values().cloned().collect(),
                cfg.instances
                    .values()
                    .map(|i| (i.uuid.clone(), i.serial_no))
                    .collect(),
            )
        };
        let live = Live::fetch(&self.master, nodes, full, true).await;
        let cfg = self.master.config.read();
        let mut seen = Vec::new();
        for inst in cfg.instances.values() {
            if before.get(&inst.uuid) != Some(&inst.serial_no) {
                continue;
            }
            let row = InstRow::new(&cfg, inst, Some(&live));
            if let Some(s) = cell_text(&row.status()) {
                seen.push(Seen {
                    name: inst.name.clone(),
                    uuid: inst.uuid.clone(),
                    status: s.to_string(),
                });
            }
        }
        let mut changed = Vec::new();
        {
            let mut pad = self.pad();
            let names: HashSet<&str> = cfg.instances.values().map(|i| i.name.as_str()).collect();
            pad.maintain(&self.opts.limits, &|n| names.contains(n), pause::now());
            for (uuid, a) in &live.node_info {
                if let (NodeAnswer::Data(info), Some(node)) = (a, cfg.nodes.get(uuid)) {
                    if pad.boot_id_changed(&node.name, &info.bootid) {
                        tracing::info!("node {} rebooted (its boot id changed)", node.name);
                        changed.push(node.uuid.clone());
                    }
                }
            }
        }
        (seen, changed)
    }

    /// Decides about each instance seen and submits the restarts; the
    /// names of the instances restarted.
    async fn restart(&self, seen: &[Seen]) -> HashSet<String> {
        let limits = &self.opts.limits;
        let mut started = HashSet::new();
        if self.queue().drained() {
            // The operator stopped new jobs; decide nothing meanwhile.
            tracing::debug!("the job queue is drained, the watcher restarts nothing");
            return started;
        }
        for s in seen {
            let verdict = self.pad().observe(limits, &s.name, &s.status, pause::now());
            match verdict {
                Verdict::Restart(attempt) => {
                    // An opcode holds the instance: it is being changed,
                    // look again at the next pass.
                    let probe = LockRequest::new().some(
                        Level::Instance,
                        vec![s.uuid.clone()],
                        Mode::Exclusive,
                    );
                    let Some(_guard) = self.master.locks.try_acquire(probe) else {
                        tracing::debug!("instance {} is locked, not restarting it now", s.name);
                        continue;
                    };
                    let op = json!({
                        "OP_ID": "OP_INSTANCE_STARTUP",
                        "instance_name": s.name,
                        "force": false,
                        "reason": reason(format!("Restarting instance {}", s.name)),
                    });
                    match self.queue().submit(vec![op]).await {
                        Ok(id) => {
                            tracing::info!(
                                "restarting instance '{}' (attempt #{attempt}), job {id}",
                                s.name
                            );
                            self.pad().restarted(&s.name, id, pause::now());
                            started.insert(s.name.clone());
                        }
                        Err(e) => tracing::warn!(
                            "cannot submit the restart of instance '{}': {}",
                            s.name,
                            e.message()
                        ),
                    }
                }
                Verdict::GiveUp => tracing::error!(
                    "could not restart instance '{}' after {} attempts, giving up",
                    s.name,
                    limits.max_tries
                ),
                Verdict::GivenUp => {
                    tracing::debug!("not restarting instance '{}', retries exhausted", s.name)
                }
                Verdict::Recovered => {
                    tracing::info!("restart of instance '{}' succeeded", s.name)
                }
                Verdict::RateLimited => tracing::info!(
                    "not restarting instance '{}' yet: {} repairs in the last minute",
                    s.name,
                    limits.max_repairs_per_minute
                ),
                Verdict::Backoff(_) | Verdict::Pending(_) | Verdict::Leave => {}
            }
        }
        started
    }

    /// Submits `OP_INSTANCE_ACTIVATE_DISKS` for `name`, within the rate
    /// cap and one at a time per instance.
    async fn activate_disks(&self, name: &str) {
        let now = pause::now();
        if !self.pad().may_activate_disks(&self.opts.limits, name, now) {
            return;
        }
        let op = json!({
            "OP_ID": "OP_INSTANCE_ACTIVATE_DISKS",
            "instance_name": name,
            "reason": reason(format!("Activating disks for instance {name}")),
        });
        match self.queue().submit(vec![op]).await {
            Ok(id) => {
                tracing::info!("activating the disks of instance '{name}', job {id}");
                self.pad().disks_activated(name, id, now);
            }
            Err(e) => tracing::warn!(
                "cannot submit the disk activation of instance '{name}': {}",
                e.message()
            ),
        }
    }

    /// Ganeti's secondary check: the instances with active disks that have
    /// a secondary on a rebooted node get their disks activated again,
    /// unless they were just restarted (which activates them).
    async fn activate_after_reboot(&self, nodes: &[String], started: &HashSet<String>) {
        if nodes.is_empty() {
            return;
        }
        let names: Vec<String> = {
            let cfg = self.master.config.read();
            cfg.instances
                .values()
                .filter(|i| {
                    i.disks_active
                        && !started.contains(&i.name)
                        && i.secondary_nodes().iter().any(|n| nodes.contains(n))
                })
                .map(|i| i.name.clone())
                .collect()
        };
        for name in names {
            self.activate_disks(&name).await;
        }
    }

    /// Runs `OP_GROUP_VERIFY_DISKS` for each group that has instances
    /// with active drbd or plain disks, then activates the disks it
    /// names, in a task of its own (one at a time).
    fn verify_disks(self: &Arc<Self>, seen: &[Seen]) {
        let groups: Vec<String> = {
            let cfg = self.master.config.read();
            let mut g: Vec<String> = cfg
                .instances
                .values()
                .filter(|i| {
                    i.disks_active
                        && matches!(i.disk_template, DiskTemplate::Drbd | DiskTemplate::Plain)
                })
                .filter_map(|i| cfg.nodes.get(&i.primary_node).map(|n| n.group.clone()))
                .collect();
            g.sort();
            g.dedup();
            g
        };
        if groups.is_empty() || self.verifying.swap(true, Ordering::AcqRel) {
            return;
        }
        let status: BTreeMap<String, String> = seen
            .iter()
            .map(|s| (s.name.clone(), s.status.clone()))
            .collect();
        let me = self.clone();
        tokio::spawn(async move {
            for g in groups {
                me.verify_group(&g, &status).await;
            }
            me.verifying.store(false, Ordering::Release);
        });
    }

    async fn verify_group(&self, group: &str, status: &BTreeMap<String, String>) {
        let op = json!({
            "OP_ID": "OP_GROUP_VERIFY_DISKS",
            "group_name": group,
            "priority": 10,
            "reason": reason(format!("Verifying disks of group {group}")),
        });
        let id = match self.queue().submit(vec![op]).await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!("cannot submit the disk verification: {}", e.message());
                return;
            }
        };
        let Some(result) = self.wait_result(id).await else {
            return;
        };
        if let Err(e) = self.queue().archive(id).await {
            tracing::debug!("cannot archive job {id}: {}", e.message());
        }
        // [{node: error}, [instance], {instance: [[node, volume]]}]
        let offline: Vec<String> = result
            .get(1)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for name in offline {
            let helpless = status
                .get(&name)
                .is_some_and(|s| s == "ERROR_nodedown" || s == "ERROR_nodeoffline");
            let offline_secondary = {
                let cfg = self.master.config.read();
                cfg.instances
                    .values()
                    .find(|i| i.name == name)
                    .is_none_or(|i| {
                        i.admin_state == AdminState::Offline
                            || i.secondary_nodes()
                                .iter()
                                .any(|n| cfg.nodes.get(n).is_none_or(|n| n.offline))
                    })
            };
            if helpless || offline_secondary {
                tracing::info!(
                    "not activating the disks of instance '{name}': its node is down or a secondary offline"
                );
                continue;
            }
            self.activate_disks(&name).await;
        }
    }

    /// The result of the single opcode of job `id`, once it succeeded.
    async fn wait_result(&self, id: u64) -> Option<Value> {
        let fields = vec!["status".to_string()];
        let mut prev = Value::Null;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        while tokio::time::Instant::now() < deadline {
            match self
                .queue()
                .wait_for_job_change(
                    id,
                    &fields,
                    prev.clone(),
                    Value::Null,
                    Duration::from_secs(20),
                )
                .await
            {
                Ok(Value::String(_)) => continue,
                Ok(v) => {
                    let status = v[0][0].as_str().unwrap_or_default().to_string();
                    match status.as_str() {
                        "success" => {
                            return self
                                .queue()
                                .job_field(id, "opresult")
                                .and_then(|r| r.get(0).cloned())
                        }
                        "error" | "canceled" => {
                            tracing::warn!("watcher job {id} ended with status {status}");
                            return None;
                        }
                        _ => prev = json!([status]),
                    }
                }
                Err(e) => {
                    tracing::warn!("cannot follow job {id}: {}", e.message());
                    return None;
                }
            }
        }
        None
    }

    /// Writes the notepad to `watcher.data` (best effort).
    fn save(&self, pad: &Notepad) {
        let path = state_file(&self.master);
        let tmp = path.with_extension("data.tmp");
        let res = serde_json::to_vec_pretty(pad)
            .map_err(std::io::Error::other)
            .and_then(|b| std::fs::write(&tmp, b))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = res {
            tracing::warn!("cannot write the watcher state {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn options_default_to_ganetis_and_come_from_the_environment() {
        let o = Options::from_vars(vars(&[])).unwrap().unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.job_age, 6 * 3600);
        assert_eq!(o.limits.max_tries, 5);
        let o = Options::from_vars(vars(&[
            ("GANETI_WATCHER_INTERVAL", "2"),
            ("GANETI_WATCHER_POLL", "0.5"),
            ("GANETI_WATCHER_BACKOFF", "1.5"),
            ("GANETI_WATCHER_MAX_REPAIRS", "7"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.interval, Duration::from_secs(2));
        assert_eq!(o.poll, Duration::from_millis(500));
        assert_eq!(o.limits.backoff, 1.5);
        assert_eq!(o.limits.max_repairs_per_minute, 7);
    }

    #[test]
    fn the_watcher_can_be_turned_off_and_bad_values_are_named() {
        assert!(Options::from_vars(vars(&[("GANETI_WATCHER", "off")]))
            .unwrap()
            .is_none());
        let e = Options::from_vars(vars(&[("GANETI_WATCHER_POLL", "soon")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "GANETI_WATCHER_POLL=soon: expected a number of seconds"
        );
        assert!(Options::from_vars(vars(&[("GANETI_WATCHER", "maybe")])).is_err());
    }
}
