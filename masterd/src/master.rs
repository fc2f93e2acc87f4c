//! The master daemon's state: configuration, job queue, locks and node RPC,
//! and the executor that runs opcodes for the job queue.

use std::sync::{Arc, OnceLock, Weak};

use luxi::error::GanetiError;
use objects::paths::Paths;
use serde_json::Value;

use crate::config::ConfigStore;
use crate::jobqueue::{JobQueue, OpContext, OpExecutor, OpFuture};
use crate::locking::LockManager;
use crate::rpc::Rpc;

/// Everything the master daemon holds.
pub struct Master {
    pub paths: Paths,
    pub config: ConfigStore,
    pub locks: Arc<LockManager>,
    pub rpc: Arc<Rpc>,
    queue: OnceLock<Arc<JobQueue>>,
    /// Watcher pause, as Ganeti's `SetWatcherPause` sets it.
    pub watcher_pause: std::sync::Mutex<Option<f64>>,
}

impl Master {
    pub fn new(paths: Paths, config: ConfigStore, rpc: Rpc) -> Arc<Self> {
        Arc::new(Master {
            paths,
            config,
            locks: LockManager::new(),
            rpc: Arc::new(rpc),
            queue: OnceLock::new(),
            watcher_pause: std::sync::Mutex::new(None),
        })
    }

    /// Attaches the job queue (once, at start-up).
    pub fn set_queue(&self, q: Arc<JobQueue>) {
        let _ = self.queue.set(q);
    }

    /// The job queue.
    pub fn queue(&self) -> &Arc<JobQueue> {
        self.queue
            .get()
            .expect("the job queue is attached before the master serves")
    }
}

/// Runs opcodes for the job queue. Holds the master weakly: the queue is
/// owned by the master.
pub struct Executor {
    master: Weak<Master>,
}

impl Executor {
    pub fn new(master: &Arc<Master>) -> Arc<Self> {
        Arc::new(Executor {
            master: Arc::downgrade(master),
        })
    }
}

impl OpExecutor for Executor {
    fn validate(&self, op: &Value) -> Result<(), GanetiError> {
        luxi::opcodes::parse(op).map(|_| ())
    }

    fn summary(&self, op: &Value) -> String {
        match luxi::opcodes::parse(op) {
            Ok(i) => i.op.summary(),
            Err(_) => op
                .get("OP_ID")
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN")
                .trim_start_matches("OP_")
                .to_string(),
        }
    }

    fn execute(&self, ctx: OpContext, op: Value) -> OpFuture {
        let master = self.master.upgrade();
        Box::pin(async move {
            let master =
                master.ok_or_else(|| GanetiError::exec("The master daemon is shutting down"))?;
            let input = luxi::opcodes::parse(&op)?;
            crate::lu::run(master, ctx, input).await
        })
    }
}
