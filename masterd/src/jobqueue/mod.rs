//! The master daemon's persistent job queue.
//!
//! Jobs (lists of opcodes) are kept in memory and in SQLite ([`store`]); a job
//! is committed before its id is returned. A scheduler task starts queued jobs
//! by priority, then id, up to `max_running_jobs` at once, and only when the
//! jobs they depend on are no longer queued or running (as Ganeti 3.0's
//! scheduler: such a job stays "queued" meanwhile). Each job runs as a task
//! that hands its opcodes one after the other to the [`OpExecutor`].
//!
//! Before an opcode is handed over, its start is committed; so after a crash a
//! job either shows which opcode may have run (and is marked failed) or none
//! did (and it runs again), never an opcode run twice.

#[cfg(test)]
mod bench;
mod context;
mod control;
mod executor;
pub mod filters;
pub mod job;
mod store;
mod submit;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use luxi::opcodes::{PRIORITY_HIGHEST, PRIORITY_LOWEST};
use luxi::{ErrorCode, GanetiError};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

pub use context::OpContext;
use executor::{AnyOp, DynExecutor, Erased, Parsed};
pub use executor::{OpExecutor, OpFuture, QueueOp};
use job::{Dependency, Job, JobStatus, OpStatus, QueuedOp, Timestamp};
pub use store::Outbox;
use store::Store;

pub type JobId = u64;

/// Tunables of the queue.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// How many jobs may run at once (Ganeti's default: 20).
    pub max_running_jobs: usize,
    /// How many unfinished jobs the queue accepts (Ganeti's hard limit: 5000).
    pub max_queued_jobs: usize,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            max_running_jobs: 20,
            max_queued_jobs: 5000,
        }
    }
}

/// Failures of the queue's storage.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The job queue database failed.
    #[error("job queue database {path}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The writer thread could not be started.
    #[error("starting the job queue writer thread")]
    Thread {
        #[source]
        source: std::io::Error,
    },
    /// The writer thread is gone, nothing can be committed.
    #[error("the job queue writer thread has stopped")]
    WriterStopped,
    /// A commit failed.
    #[error("committing to the job queue database {path} failed: {message}")]
    Commit { path: PathBuf, message: String },
    /// A job's stored state could not be read.
    #[error("job {id} in the queue database is unreadable: {message}")]
    Corrupt { id: JobId, message: String },
}

impl From<QueueError> for GanetiError {
    fn from(e: QueueError) -> Self {
        GanetiError::new("JobQueueError", vec![json!(objects::error_chain(&e))])
    }
}

/// The longest a `WaitForJobChange` call waits (Ganeti's `LUXI_WFJC_TIMEOUT`).
pub const WFJC_MAX_TIMEOUT: Duration = Duration::from_secs(29);

/// A live (not archived) job and what the queue keeps beside it.
pub(crate) struct Entry {
    pub(crate) job: Job,
    /// The highest log serial handed out.
    pub(crate) log_serial: u64,
    /// Bumped on every change, for `WaitForJobChange` and dependents.
    changed: watch::Sender<()>,
    /// The sequence number of the newest write of this job.
    last_write: u64,
    /// Set when a cancel is asked for while the job waits for locks.
    cancel: Arc<AtomicBool>,
    /// Stops the running opcode's task (a cancel with `kill`).
    abort: Option<tokio::task::AbortHandle>,
    /// The parsed opcodes, `None` for those that will not run.
    parsed: Vec<Option<AnyOp>>,
}

impl Entry {
    /// Whether jobs depending on this one must wait: it is not finished, or
    /// its final status is not committed yet.
    fn blocks(&self, committed: u64) -> bool {
        !self.job.is_finalized() || self.last_write > committed
    }

    fn new(job: Job, parsed: Vec<Option<AnyOp>>) -> Entry {
        let log_serial = job.log_serial();
        Entry {
            parsed,
            job,
            log_serial,
            changed: watch::Sender::new(()),
            last_write: 0,
            cancel: Arc::new(AtomicBool::new(false)),
            abort: None,
        }
    }
}

#[derive(Default)]
struct State {
    jobs: BTreeMap<JobId, Entry>,
    /// Jobs waiting to be started, by (priority, id).
    queued: BTreeSet<(i32, JobId)>,
    running: usize,
    /// Jobs accepted and not finished (the `max_queued_jobs` count).
    unfinished: usize,
    next_id: JobId,
    drained: bool,
    /// The job filter rules.
    filters: filters::FilterRules,
}

/// The job queue.
pub struct JobQueue {
    opts: QueueOptions,
    executor: Arc<dyn DynExecutor>,
    store: Store,
    state: Mutex<State>,
    schedule: Notify,
    started: AtomicBool,
    /// Counts the jobs that ended (for the watcher, which looks at the
    /// cluster after each).
    finished: watch::Sender<u64>,
    /// The queue itself, to spawn job tasks from `&self` methods.
    me: Weak<JobQueue>,
}

/// What the dependencies of an opcode say.
enum DepCheck {
    Continue,
    Wait(watch::Receiver<()>),
    Cancel,
    Fail(String),
}

/// What a job's task does next.
enum Step {
    Run {
        idx: usize,
        input: Option<AnyOp>,
        seq: u64,
        cancel: Arc<AtomicBool>,
    },
    WaitDeps(watch::Receiver<()>, watch::Receiver<()>),
    Done,
}

fn encode_exec_error(msg: &str) -> Value {
    GanetiError::exec(msg).encode()
}

/// Fails the unfinished opcodes of a job found unfinished at start-up: the
/// first with `msg`, the others as following a failed one.
fn fail_unfinished(job: &mut Job, msg: &str, now: Timestamp) {
    let mut first = true;
    for op in job.ops.iter_mut().filter(|o| !o.status.is_finalized()) {
        op.status = OpStatus::Error;
        op.result = encode_exec_error(if first { msg } else { job::PRECEDING_FAILED });
        op.end = Some(now);
        first = false;
    }
    job.end = Some(now);
}

/// Marks opcode `idx` as started (waiting for its locks).
fn mark_started(job: &mut Job, idx: usize, now: Timestamp) {
    let op = &mut job.ops[idx];
    op.status = OpStatus::Waiting;
    op.start = Some(now);
    if job.start.is_none() {
        job.start = Some(now);
    }
}

fn not_found(id: JobId) -> String {
    format!("Job {id} not found")
}

/// Rate-limiting slots taken: by rule UUID (the `RATE_LIMIT` rule that
/// applies to a job) and by ad-hoc bucket.
struct Slots {
    rules: std::collections::HashMap<String, u64>,
    buckets: std::collections::HashMap<String, u64>,
}

impl Slots {
    /// The slots the started, unfinished jobs take (those the scheduler
    /// picked, even before their task marked them started).
    fn running(st: &State) -> Slots {
        let mut slots = Slots {
            rules: Default::default(),
            buckets: Default::default(),
        };
        let started = st.jobs.values().filter(|e| {
            !e.job.is_finalized() && !st.queued.contains(&(e.job.priority(), e.job.id))
        });
        for e in started {
            if let Some(r) = st.filters.applying(&e.job) {
                if let filters::Action::RateLimit(_) = r.action {
                    *slots.rules.entry(r.uuid.clone()).or_insert(0) += 1;
                }
            }
            for (b, _) in filters::rate_limit_buckets(&e.job) {
                *slots.buckets.entry(b).or_insert(0) += 1;
            }
        }
        slots
    }
}

impl JobQueue {
    /// Opens (or creates) the queue database at `path` (WAL,
    /// synchronous=FULL) and recovers it: jobs that were running, waiting or
    /// canceling are marked failed, queued jobs are queued again.
    pub fn open<E: OpExecutor>(
        path: &Path,
        opts: QueueOptions,
        executor: Arc<E>,
    ) -> Result<Arc<JobQueue>, QueueError> {
        let executor: Arc<dyn DynExecutor> = Arc::new(Erased(executor));
        let (store, loaded) = Store::open(path)?;
        let mut state = State {
            next_id: loaded.max_id + 1,
            drained: loaded.drained,
            filters: loaded
                .filters
                .as_deref()
                .map(filters::FilterRules::from_stored)
                .unwrap_or_default(),
            ..State::default()
        };
        let now = Timestamp::now();
        let mut last_seq = 0;
        for mut job in loaded.jobs {
            let mut parsed = Vec::new();
            match job.status() {
                JobStatus::Queued => match Self::reparse(executor.as_ref(), &job) {
                    Ok(ops) => {
                        parsed = ops;
                        state.queued.insert((job.priority(), job.id));
                        state.unfinished += 1;
                    }
                    Err(e) => {
                        tracing::warn!(job = job.id, error = %e, "queued job no longer parses; marking it failed");
                        let msg = format!("Job could not be read back: {}", e.message());
                        fail_unfinished(&mut job, &msg, now);
                        last_seq = store.write_job(&job);
                    }
                },
                JobStatus::Waiting | JobStatus::Running | JobStatus::Canceling => {
                    tracing::warn!(
                        job = job.id,
                        "job was unfinished when the queue stopped; marking it failed"
                    );
                    fail_unfinished(&mut job, job::INTERRUPTED_MSG, now);
                    last_seq = store.write_job(&job);
                }
                _ => {}
            }
            state.jobs.insert(job.id, Entry::new(job, parsed));
        }
        if last_seq > 0 {
            store.wait_durable_blocking(last_seq)?;
        }
        tracing::info!(
            path = %path.display(),
            jobs = state.jobs.len(),
            queued = state.queued.len(),
            drained = state.drained,
            "job queue opened"
        );
        Ok(Arc::new_cyclic(|me| JobQueue {
            me: me.clone(),
            opts,
            executor,
            store,
            state: Mutex::new(state),
            schedule: Notify::new(),
            started: AtomicBool::new(false),
            finished: watch::Sender::new(0),
        }))
    }

    fn me(&self) -> Option<Arc<JobQueue>> {
        self.me.upgrade()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change under this lock leaves the state whole before code
        // that could panic runs, so a poisoned lock still holds it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The jobs committed since last taken, for the master candidates'
    /// copies of the queue (enable it first).
    pub fn outbox(&self) -> Arc<Outbox> {
        Arc::clone(&self.store.outbox)
    }

    /// Every job the queue holds in memory (all but the archived ones), as
    /// stored: `(id, archived, JSON)`; what a new candidate's copy starts
    /// from.
    pub fn snapshot(&self) -> Vec<(JobId, bool, String)> {
        let st = self.lock();
        st.jobs
            .values()
            .filter_map(|e| {
                serde_json::to_string(&e.job)
                    .ok()
                    .map(|d| (e.job.id, e.job.archived, d))
            })
            .collect()
    }

    /// The highest job id handed out.
    pub fn last_id(&self) -> JobId {
        self.lock().next_id.saturating_sub(1)
    }

    /// Stores the jobs of a candidate's copy of the queue in the queue
    /// database at `path` (created if needed), each replacing the row of
    /// the same id, and `last_id` as the highest id handed out: what
    /// `master-failover` does before the new master opens its queue. Rows
    /// that do not decode as jobs are refused.
    pub fn import(
        path: &Path,
        jobs: &[(JobId, bool, String)],
        last_id: JobId,
    ) -> Result<usize, QueueError> {
        for (id, _, data) in jobs {
            serde_json::from_str::<Job>(data).map_err(|e| QueueError::Corrupt {
                id: *id,
                message: e.to_string(),
            })?;
        }
        store::import(path, jobs, last_id)
    }

    /// Starts the scheduler task (call once from within a tokio runtime).
    pub fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::AcqRel) {
            tracing::warn!("job queue scheduler already started");
            return;
        }
        let queue = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let picked = queue.pick_jobs();
                for id in picked {
                    let q = Arc::clone(&queue);
                    tokio::spawn(async move { q.run_job(id).await });
                }
                queue.schedule.notified().await;
            }
        });
    }

    /// Chooses the jobs to start now and counts them as running: by
    /// priority and id, those whose dependencies are done, that fit their
    /// ad-hoc rate-limit buckets, and that the filter rules let start.
    /// Queued jobs a `REJECT` rule applies to are canceled.
    fn pick_jobs(&self) -> Vec<JobId> {
        let mut st = self.lock();
        if st.queued.is_empty() {
            return Vec::new();
        }
        if !st.filters.is_empty() {
            self.cancel_rejected(&mut st);
        }
        let free = self.opts.max_running_jobs.saturating_sub(st.running);
        if free == 0 {
            return Vec::new();
        }
        let mut picked = Vec::new();
        let committed = self.store.committed();
        // Slots taken in rate-limiting rules and buckets, counted from the
        // running jobs when first needed.
        let mut slots: Option<Slots> = None;
        for &(prio, id) in &st.queued {
            if picked.len() >= free {
                break;
            }
            let Some(entry) = st.jobs.get(&id) else {
                continue;
            };
            // Ganeti 3.0: a job is eligible when none of the jobs it depends
            // on is queued or running.
            let blocked = entry
                .job
                .dependencies()
                .any(|dep| dep != id && st.jobs.get(&dep).is_some_and(|d| d.blocks(committed)));
            if blocked {
                continue;
            }
            let buckets = filters::rate_limit_buckets(&entry.job);
            let rule = st.filters.applying(&entry.job);
            if buckets.is_empty() && rule.is_none() {
                picked.push((prio, id));
                continue;
            }
            let slots = slots.get_or_insert_with(|| Slots::running(&st));
            if buckets
                .iter()
                .any(|(b, limit)| slots.buckets.get(b).copied().unwrap_or(0) >= *limit)
            {
                continue;
            }
            match rule.map(|r| (r.action, r.uuid.as_str())) {
                Some((filters::Action::Pause | filters::Action::Reject, _)) => continue,
                Some((filters::Action::RateLimit(n), uuid)) => {
                    let used = slots.rules.entry(uuid.to_string()).or_insert(0);
                    if *used >= n {
                        continue;
                    }
                    *used += 1;
                }
                _ => {}
            }
            for (b, _) in buckets {
                *slots.buckets.entry(b).or_insert(0) += 1;
            }
            picked.push((prio, id));
        }
        for key in &picked {
            st.queued.remove(key);
        }
        st.running += picked.len();
        picked.into_iter().map(|(_, id)| id).collect()
    }

    /// Cancels the queued jobs that a `REJECT` rule applies to.
    fn cancel_rejected(&self, st: &mut State) {
        let rejected: Vec<(i32, JobId, String)> = st
            .queued
            .iter()
            .filter_map(|&(prio, id)| {
                let rule = st.filters.applying(&st.jobs.get(&id)?.job)?;
                (rule.action == filters::Action::Reject).then(|| (prio, id, rule.uuid.clone()))
            })
            .collect();
        let now = Timestamp::now();
        for (prio, id, uuid) in rejected {
            tracing::info!(job = id, filter = %uuid, "canceling job: a REJECT filter rule applies to it");
            self.cancel_queued(st, id, prio, now);
        }
    }

    /// Applies `f` to an entry, persists and announces the change if `f` says so.
    fn modify<R>(&self, id: JobId, f: impl FnOnce(&mut Entry) -> (bool, R)) -> Option<R> {
        let mut st = self.lock();
        let entry = st.jobs.get_mut(&id)?;
        let (changed, r) = f(entry);
        if changed {
            entry.last_write = self.store.write_job(&entry.job);
            entry.changed.send_replace(());
        }
        Some(r)
    }

    pub(crate) fn with_op<R>(
        &self,
        id: JobId,
        idx: usize,
        f: impl FnOnce(&Job, &QueuedOp) -> R,
    ) -> Option<R> {
        let st = self.lock();
        let entry = st.jobs.get(&id)?;
        let op = entry.job.ops.get(idx)?;
        Some(f(&entry.job, op))
    }

    pub(crate) fn update_op(
        &self,
        id: JobId,
        idx: usize,
        f: impl FnOnce(&mut Entry, usize) -> bool,
    ) {
        self.modify(id, |entry| {
            if idx >= entry.job.ops.len() {
                return (false, ());
            }
            (f(entry, idx), ())
        });
    }

    /// Checks the dependencies of one opcode of job `id`.
    fn check_deps(&self, st: &State, id: JobId, deps: &[Dependency]) -> DepCheck {
        for dep in deps {
            if dep.job == id {
                return DepCheck::Fail("Job can't depend on itself".into());
            }
            let status = match st.jobs.get(&dep.job) {
                Some(e) => {
                    let s = e.job.status();
                    if !s.is_finalized() {
                        return DepCheck::Wait(e.changed.subscribe());
                    }
                    s
                }
                None => match self.store.read_job(dep.job) {
                    Ok(Some(j)) => j.status(),
                    Ok(None) => {
                        return DepCheck::Fail(format!("Dependency error: {}", not_found(dep.job)))
                    }
                    Err(e) => return DepCheck::Fail(format!("Dependency error: {e}")),
                },
            };
            if status == JobStatus::Canceled && !dep.statuses.contains(&JobStatus::Canceled) {
                return DepCheck::Cancel;
            }
            if !dep.statuses.is_empty() && !dep.statuses.contains(&status) {
                let wanted: Vec<&str> = dep.statuses.iter().map(|s| s.as_str()).collect();
                return DepCheck::Fail(format!(
                    "Dependency job {} finished with status '{}', not one of '{}' as required",
                    dep.job,
                    status.as_str(),
                    wanted.join(", ")
                ));
            }
        }
        DepCheck::Continue
    }

    /// Decides the next step of job `id` and prepares it.
    fn next_step(&self, id: JobId) -> Step {
        let mut st = self.lock();
        let Some(entry) = st.jobs.get(&id) else {
            return Step::Done;
        };
        if entry.job.is_finalized() {
            return Step::Done;
        }
        let Some(idx) = entry.job.ops.iter().position(|o| !o.status.is_finalized()) else {
            return Step::Done;
        };
        let now = Timestamp::now();
        let check = if entry.job.ops[idx].status == OpStatus::Canceling {
            DepCheck::Cancel
        } else {
            let deps = entry.job.ops[idx].depends.clone();
            self.check_deps(&st, id, &deps)
        };
        let own_rx = entry.changed.subscribe();
        let Some(entry) = st.jobs.get_mut(&id) else {
            return Step::Done;
        };
        let job = &mut entry.job;
        let step = match check {
            DepCheck::Continue => {
                // An opcode already marked waiting (at submit or at the end of
                // the previous opcode) had its start written then.
                if job.ops[idx].status == OpStatus::Queued {
                    mark_started(job, idx, now);
                    entry.last_write = self.store.write_job(job);
                }
                // Each opcode runs once: the queue lets go of its parsed value.
                let input = entry.parsed.get_mut(idx).and_then(Option::take);
                Step::Run {
                    idx,
                    input,
                    seq: entry.last_write,
                    cancel: Arc::clone(&entry.cancel),
                }
            }
            DepCheck::Wait(dep_rx) => {
                if job.ops[idx].status == OpStatus::Queued {
                    mark_started(job, idx, now);
                    entry.last_write = self.store.write_job(job);
                    entry.changed.send_replace(());
                }
                return Step::WaitDeps(dep_rx, own_rx);
            }
            DepCheck::Cancel => {
                job.mark_unfinished(OpStatus::Canceled, json!(job::CANCELED_RESULT), now);
                job.end = Some(now);
                entry.last_write = self.store.write_job(job);
                Step::Done
            }
            DepCheck::Fail(msg) => {
                tracing::info!(job = id, "{msg}");
                let op = &mut job.ops[idx];
                op.status = OpStatus::Error;
                op.result = encode_exec_error(&msg);
                if op.start.is_none() {
                    op.start = Some(now);
                }
                op.end = Some(now);
                job.mark_unfinished(
                    OpStatus::Error,
                    encode_exec_error(job::PRECEDING_FAILED),
                    now,
                );
                job.end = Some(now);
                entry.last_write = self.store.write_job(job);
                Step::Done
            }
        };
        entry.changed.send_replace(());
        step
    }

    /// Records the outcome of opcode `idx` of job `id`.
    fn finish_op(&self, id: JobId, idx: usize, result: Result<Value, GanetiError>) {
        self.modify(id, |entry| {
            let now = Timestamp::now();
            let job = &mut entry.job;
            let Some(op) = job.ops.get_mut(idx) else {
                return (false, ());
            };
            let canceling = op.status == OpStatus::Canceling;
            op.end = Some(now);
            match result {
                Ok(v) => {
                    op.status = OpStatus::Success;
                    op.result = v;
                    if canceling {
                        // The opcode finished all the same; the rest is canceled.
                        job.mark_unfinished(OpStatus::Canceled, json!(job::CANCELED_RESULT), now);
                    } else if job.ops.get(idx + 1).is_some_and(|next| {
                        next.status == OpStatus::Queued && next.depends.is_empty()
                    }) {
                        // Record the next opcode's start in the same commit.
                        mark_started(job, idx + 1, now);
                    }
                }
                Err(e) if canceling => {
                    tracing::info!(job = id, op = idx, error = %e, "opcode stopped after cancel");
                    job.mark_unfinished(OpStatus::Canceled, json!(job::CANCELED_RESULT), now);
                }
                Err(e) => {
                    tracing::info!(job = id, op = idx, error = %e, "opcode failed");
                    op.status = OpStatus::Error;
                    op.result = e.encode();
                    job.mark_unfinished(
                        OpStatus::Error,
                        encode_exec_error(job::PRECEDING_FAILED),
                        now,
                    );
                }
            }
            if job.is_finalized() {
                job.end = Some(now);
            }
            (true, ())
        });
    }

    /// Runs job `id` (counted as running by the scheduler) to its end.
    async fn run_job(self: Arc<Self>, id: JobId) {
        loop {
            match self.next_step(id) {
                Step::Done => break,
                Step::WaitDeps(mut dep_rx, mut own_rx) => {
                    tokio::select! {
                        _ = dep_rx.changed() => {}
                        _ = own_rx.changed() => {}
                    }
                }
                Step::Run {
                    idx,
                    input,
                    seq,
                    cancel,
                } => {
                    // The start of an opcode is durable before it runs: after a
                    // crash it is reported as interrupted, never run again.
                    if let Err(e) = self.store.wait_durable(seq).await {
                        tracing::error!(job = id, error = %e, "cannot record opcode start");
                        self.finish_op(
                            id,
                            idx,
                            Err(GanetiError::exec(format!(
                                "Cannot record the opcode start: {e}"
                            ))),
                        );
                        continue;
                    }
                    let Some(input) = input else {
                        self.finish_op(
                            id,
                            idx,
                            Err(GanetiError::programmer(format!(
                                "Opcode {idx} of job {id} was never parsed"
                            ))),
                        );
                        continue;
                    };
                    let ctx = OpContext {
                        queue: Arc::clone(&self),
                        job_id: id,
                        op_index: idx,
                        cancel,
                    };
                    let fut = self.executor.execute(ctx, input);
                    // Run it as its own task so that a panic fails the opcode
                    // instead of losing the job.
                    let task = tokio::spawn(fut);
                    if let Some(e) = self.lock().jobs.get_mut(&id) {
                        e.abort = Some(task.abort_handle());
                    }
                    let result = match task.await {
                        Ok(r) => r,
                        Err(e) if e.is_cancelled() => {
                            Err(GanetiError::exec(format!("Job {id} was killed by request")))
                        }
                        Err(e) => Err(GanetiError::exec(format!(
                            "Opcode execution ended abnormally: {e}"
                        ))),
                    };
                    if let Some(e) = self.lock().jobs.get_mut(&id) {
                        e.abort = None;
                    }
                    self.finish_op(id, idx, result);
                }
            }
        }
        let last_write = {
            let mut st = self.lock();
            st.running = st.running.saturating_sub(1);
            st.unfinished = st.unfinished.saturating_sub(1);
            st.jobs.get(&id).map_or(0, |e| e.last_write)
        };
        tracing::debug!(job = id, "job finished");
        self.schedule.notify_one();
        // Its dependents start once the final status is committed.
        if let Err(e) = self.store.wait_durable(last_write).await {
            tracing::error!(job = id, error = %e, "final job status not committed");
        }
        self.schedule.notify_one();
        self.finished.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes whenever a job that ran ends (its final status committed).
    pub fn finished_jobs(&self) -> watch::Receiver<u64> {
        self.finished.subscribe()
    }
}
