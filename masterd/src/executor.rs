//! The job queue's executor: runs each parsed opcode as its logical unit.

use std::sync::{Arc, Weak};

use luxi::opcodes::Input;
use luxi::GanetiError;
use serde_json::Value;

use crate::jobqueue::{OpContext, OpExecutor, OpFuture};
use crate::master::Master;

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
    type Op = Input;

    fn parse(&self, op: &Value) -> Result<Input, GanetiError> {
        luxi::opcodes::parse(op)
    }

    fn execute(&self, ctx: OpContext, op: Arc<Input>) -> OpFuture {
        let master = self.master.upgrade();
        Box::pin(async move {
            let master =
                master.ok_or_else(|| GanetiError::exec("The master daemon is shutting down"))?;
            // The queue logs the failure with this message: the whole chain.
            crate::lu::run(master, ctx, Arc::unwrap_or_clone(op))
                .await
                .map_err(|e| e.encode())
        })
    }
}
