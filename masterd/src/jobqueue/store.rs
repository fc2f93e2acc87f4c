//! The queue's SQLite database and its writer thread.
//!
//! All writes go through one thread that takes every write pending at the
//! moment, puts them in one transaction (keeping only the newest state of each
//! job) and commits it: group commit. Each write has a sequence number; a
//! caller that needs its write durable waits until the committed sequence
//! number reaches it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::watch;

use super::job::Job;
use super::{JobId, QueueError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    archived INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// The meta key of the drain flag.
pub const META_DRAINED: &str = "drained";
/// The meta key of the highest job id handed out, when a master's queue
/// copy says more than the jobs kept here (archived ones it had before).
pub const META_LAST_ID: &str = "last_job_id";
/// The meta key of the job filter rules (a JSON list).
pub const META_FILTERS: &str = "filters";

/// One pending write.
enum Write {
    /// The whole state of a job.
    Job {
        id: JobId,
        archived: bool,
        data: String,
    },
    /// A meta value; `None` deletes it.
    Meta { key: String, value: Option<String> },
}

/// The jobs committed since the replicator last took them, newest state
/// of each, for the master candidates' copies of the queue. Filled only
/// once enabled (a queue without candidates to feed keeps nothing).
#[derive(Default)]
pub struct Outbox {
    enabled: std::sync::atomic::AtomicBool,
    jobs: Mutex<BTreeMap<JobId, (bool, String)>>,
    /// Signalled after a commit that added jobs.
    pub notify: tokio::sync::Notify,
}

impl Outbox {
    /// Starts keeping committed jobs.
    pub fn enable(&self) {
        self.enabled
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Takes the jobs kept so far (by id: archived flag, JSON).
    pub fn take(&self) -> BTreeMap<JobId, (bool, String)> {
        std::mem::take(&mut *self.jobs.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn add(&self, jobs: &HashMap<JobId, (bool, String)>) {
        if jobs.is_empty() || !self.enabled.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut kept = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, v) in jobs {
            kept.insert(*id, v.clone());
        }
        drop(kept);
        self.notify.notify_one();
    }
}

struct Sender {
    next_seq: u64,
    tx: mpsc::Sender<(u64, Write)>,
}

/// The writing side of the store, shared by the queue.
pub struct Store {
    path: PathBuf,
    sender: Mutex<Sender>,
    committed: watch::Receiver<u64>,
    /// Failed batches, by last sequence number: (first sequence number, error).
    failures: Arc<Mutex<BTreeMap<u64, (u64, String)>>>,
    /// A connection for reading what is not kept in memory (archived jobs).
    reader: Mutex<Connection>,
    /// The committed sequence number for blocking waiters, and whether the
    /// writer has stopped.
    blocking: Arc<Blocking>,
    /// Committed jobs for the candidates' copies.
    pub outbox: Arc<Outbox>,
}

/// What blocking (non-async) waiters for a commit wait on.
#[derive(Default)]
struct Blocking {
    state: Mutex<(u64, bool)>,
    cond: Condvar,
}

impl Blocking {
    fn set(&self, committed: u64, stopped: bool) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *s = (committed.max(s.0), stopped || s.1);
        self.cond.notify_all();
    }
}

fn open_conn(path: &Path) -> Result<Connection, QueueError> {
    let ctx = |e| QueueError::Sqlite {
        path: path.to_path_buf(),
        source: e,
    };
    let conn = Connection::open(path).map_err(ctx)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(ctx)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(ctx)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(ctx)?;
    Ok(conn)
}

/// What is read from the database when the queue opens.
pub struct Loaded {
    pub jobs: Vec<Job>,
    pub max_id: JobId,
    pub drained: bool,
    /// The stored job filter rules.
    pub filters: Option<String>,
}

impl Store {
    /// Opens (creating if needed) the database and starts the writer thread.
    pub fn open(path: &Path) -> Result<(Store, Loaded), QueueError> {
        let writer = open_conn(path)?;
        let ctx = |e| QueueError::Sqlite {
            path: path.to_path_buf(),
            source: e,
        };
        writer.execute_batch(SCHEMA).map_err(ctx)?;
        // Checkpoints (copying the WAL into the database, with their own
        // fsyncs) run in a thread of their own, not in the commit path.
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(ctx)?;
        let checkpointer = open_conn(path)?;
        let (ckpt_tx, ckpt_rx) = mpsc::sync_channel::<()>(1);
        let ckpt_path = path.to_path_buf();
        thread::Builder::new()
            .name("jobqueue-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, &ckpt_path, ckpt_rx))
            .map_err(|e| QueueError::Thread { source: e })?;
        let loaded = load(&writer, path)?;
        let reader = open_conn(path)?;

        let (tx, rx) = mpsc::channel::<(u64, Write)>();
        let (committed_tx, committed) = watch::channel(0u64);
        let failures = Arc::new(Mutex::new(BTreeMap::new()));
        let thread_failures = Arc::clone(&failures);
        let blocking = Arc::new(Blocking::default());
        let thread_blocking = Arc::clone(&blocking);
        let thread_path = path.to_path_buf();
        let outbox = Arc::new(Outbox::default());
        let thread_outbox = Arc::clone(&outbox);
        thread::Builder::new()
            .name("jobqueue-writer".into())
            .spawn(move || {
                writer_loop(
                    writer,
                    &thread_path,
                    rx,
                    committed_tx,
                    thread_failures,
                    &thread_blocking,
                    ckpt_tx,
                    &thread_outbox,
                )
            })
            .map_err(|e| QueueError::Thread { source: e })?;
        Ok((
            Store {
                path: path.to_path_buf(),
                sender: Mutex::new(Sender { next_seq: 1, tx }),
                committed,
                failures,
                reader: Mutex::new(reader),
                blocking,
                outbox,
            },
            loaded,
        ))
    }

    fn push(&self, w: Write) -> u64 {
        let mut s = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = s.next_seq;
        s.next_seq += 1;
        if s.tx.send((seq, w)).is_err() {
            // The writer thread is gone; report the write as failed.
            self.failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(seq, (seq, "the job queue writer thread has stopped".into()));
        }
        seq
    }

    /// Queues a write of the whole job; returns its sequence number.
    pub fn write_job(&self, job: &Job) -> u64 {
        // A job is plain data with string keys: it always serializes.
        #[allow(clippy::expect_used)]
        let data = serde_json::to_string(job).expect("a job always serializes to JSON");
        self.push(Write::Job {
            id: job.id,
            archived: job.archived,
            data,
        })
    }

    /// Queues a write of a meta value; returns its sequence number.
    pub fn write_meta(&self, key: &str, value: Option<String>) -> u64 {
        self.push(Write::Meta {
            key: key.to_string(),
            value,
        })
    }

    /// Waits until the write with sequence number `seq` is committed.
    /// The highest committed sequence number.
    pub fn committed(&self) -> u64 {
        *self.committed.borrow()
    }

    pub async fn wait_durable(&self, seq: u64) -> Result<(), QueueError> {
        let mut rx = self.committed.clone();
        if rx.wait_for(|c| *c >= seq).await.is_err() && *rx.borrow() < seq {
            return Err(QueueError::WriterStopped);
        }
        self.check_failed(seq)
    }

    /// Blocking variant of [`Store::wait_durable`], for callers outside the runtime.
    pub fn wait_durable_blocking(&self, seq: u64) -> Result<(), QueueError> {
        let mut s = self
            .blocking
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if s.0 >= seq {
                drop(s);
                return self.check_failed(seq);
            }
            if s.1 {
                return Err(QueueError::WriterStopped);
            }
            s = self
                .blocking
                .cond
                .wait(s)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn check_failed(&self, seq: u64) -> Result<(), QueueError> {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((hi, (lo, msg))) = failures.range(seq..).next() {
            if *lo <= seq && seq <= *hi {
                return Err(QueueError::Commit {
                    path: self.path.clone(),
                    message: msg.clone(),
                });
            }
        }
        Ok(())
    }

    /// Reads a job from the database (used for archived jobs).
    pub fn read_job(&self, id: JobId) -> Result<Option<Job>, QueueError> {
        let conn = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let data: Option<String> = conn
            .query_row("SELECT data FROM jobs WHERE id = ?1", [id as i64], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| QueueError::Sqlite {
                path: self.path.clone(),
                source: e,
            })?;
        match data {
            None => Ok(None),
            Some(d) => serde_json::from_str(&d)
                .map(Some)
                .map_err(|e| QueueError::Corrupt {
                    id,
                    message: e.to_string(),
                }),
        }
    }

    /// The ids of the archived jobs.
    pub fn archived_ids(&self) -> Result<Vec<JobId>, QueueError> {
        let conn = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let ctx = |e| QueueError::Sqlite {
            path: self.path.clone(),
            source: e,
        };
        let mut stmt = conn
            .prepare_cached("SELECT id FROM jobs WHERE archived != 0 ORDER BY id")
            .map_err(ctx)?;
        let ids = stmt
            .query_map([], |r| r.get::<_, i64>(0))
            .map_err(ctx)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(ctx)?;
        Ok(ids.into_iter().map(|i| i as JobId).collect())
    }
}

/// Upserts `jobs` (id, archived, JSON) into the database at `path`, and
/// `last_id` as the highest id handed out, in one transaction; returns
/// how many jobs.
pub fn import(
    path: &Path,
    jobs: &[(JobId, bool, String)],
    last_id: JobId,
) -> Result<usize, QueueError> {
    let ctx = |e| QueueError::Sqlite {
        path: path.to_path_buf(),
        source: e,
    };
    let mut conn = open_conn(path)?;
    conn.execute_batch(SCHEMA).map_err(ctx)?;
    let map: HashMap<JobId, (bool, String)> = jobs
        .iter()
        .map(|(id, a, d)| (*id, (*a, d.clone())))
        .collect();
    let metas = [(META_LAST_ID.to_string(), Some(last_id.to_string()))];
    commit_batch(&mut conn, &map, &metas).map_err(ctx)?;
    Ok(map.len())
}

fn load(conn: &Connection, path: &Path) -> Result<Loaded, QueueError> {
    let ctx = |e| QueueError::Sqlite {
        path: path.to_path_buf(),
        source: e,
    };
    let max_id: Option<i64> = conn
        .query_row("SELECT MAX(id) FROM jobs", [], |r| r.get(0))
        .map_err(ctx)?;
    let drained = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [META_DRAINED],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(ctx)?
        .is_some_and(|v| v == "1");
    let last_id = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [META_LAST_ID],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(ctx)?
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    let filters = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [META_FILTERS],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(ctx)?;
    let mut stmt = conn
        .prepare("SELECT id, data FROM jobs WHERE archived = 0 ORDER BY id")
        .map_err(ctx)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(ctx)?;
    let mut jobs = Vec::new();
    for row in rows {
        let (id, data) = row.map_err(ctx)?;
        match serde_json::from_str::<Job>(&data) {
            Ok(job) => jobs.push(job),
            Err(e) => {
                // One unreadable job must not keep the master from starting.
                tracing::error!(job = id, error = %e, "skipping unreadable job in the queue database");
            }
        }
    }
    Ok(Loaded {
        jobs,
        max_id: max_id.unwrap_or(0).max(last_id).max(0) as JobId,
        drained,
        filters,
    })
}

fn writer_loop(
    mut conn: Connection,
    path: &Path,
    rx: mpsc::Receiver<(u64, Write)>,
    committed: watch::Sender<u64>,
    failures: Arc<Mutex<BTreeMap<u64, (u64, String)>>>,
    blocking: &Blocking,
    checkpoint: mpsc::SyncSender<()>,
    outbox: &Outbox,
) {
    let mut until_checkpoint = CHECKPOINT_EVERY;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let lo = batch.first().map_or(0, |w| w.0);
        let hi = batch.last().map_or(0, |w| w.0);
        let (jobs, metas) = newest(batch);
        if let Err(e) = commit_batch(&mut conn, &jobs, &metas) {
            tracing::error!(path = %path.display(), error = %e, first_seq = lo, last_seq = hi,
                "committing job queue writes failed");
            let mut f = failures.lock().unwrap_or_else(PoisonError::into_inner);
            f.insert(hi, (lo, e.to_string()));
            while f.len() > 1024 {
                f.pop_first();
            }
        } else {
            outbox.add(&jobs);
        }
        committed.send_replace(hi);
        blocking.set(hi, false);
        until_checkpoint -= 1;
        if until_checkpoint == 0 {
            until_checkpoint = CHECKPOINT_EVERY;
            // A checkpoint already asked for is enough.
            let _ = checkpoint.try_send(());
        }
    }
    blocking.set(0, true);
    tracing::debug!(path = %path.display(), "job queue writer thread exits");
}

/// Commits between two checkpoints of the WAL.
const CHECKPOINT_EVERY: u64 = 200;

fn checkpoint_loop(conn: Connection, path: &Path, rx: mpsc::Receiver<()>) {
    while rx.recv().is_ok() {
        let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match r {
            Ok((log, done)) => tracing::trace!(log, done, "job queue WAL checkpoint"),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "job queue WAL checkpoint failed")
            }
        }
    }
}

/// The newest state of each job of `batch`, and its meta writes (few).
type Batch = (
    HashMap<JobId, (bool, String)>,
    Vec<(String, Option<String>)>,
);

fn newest(batch: Vec<(u64, Write)>) -> Batch {
    let mut jobs: HashMap<JobId, (bool, String)> = HashMap::new();
    let mut metas: Vec<(String, Option<String>)> = Vec::new();
    for (_, w) in batch {
        match w {
            Write::Job { id, archived, data } => {
                jobs.insert(id, (archived, data));
            }
            Write::Meta { key, value } => metas.push((key, value)),
        }
    }
    (jobs, metas)
}

fn commit_batch(
    conn: &mut Connection,
    jobs: &HashMap<JobId, (bool, String)>,
    metas: &[(String, Option<String>)],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO jobs (id, archived, data) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET archived = excluded.archived, data = excluded.data",
        )?;
        for (id, (archived, data)) in jobs {
            stmt.execute(params![*id as i64, i64::from(*archived), data])?;
        }
        for (key, value) in metas {
            match value {
                Some(v) => tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![key, v],
                )?,
                None => tx.execute("DELETE FROM meta WHERE key = ?1", params![key])?,
            };
        }
    }
    tx.commit()
}
