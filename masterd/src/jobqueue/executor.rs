//! What runs the opcodes, and how the queue holds their parsed form.
//!
//! An opcode is parsed once, when its job is submitted (and again when a
//! queued job is read back at start-up). The queue keeps the parsed value
//! beside the submitted dict, which the job's `ops` field shows, and hands
//! the parsed value to [`OpExecutor::execute`].

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use luxi::opcodes::Common;
use luxi::GanetiError;
use serde_json::Value;

use super::OpContext;

/// The future an [`OpExecutor`] returns for one opcode.
pub type OpFuture = Pin<Box<dyn Future<Output = Result<Value, GanetiError>> + Send>>;

/// A parsed opcode as the queue needs to see it.
pub trait QueueOp: Send + Sync + 'static {
    /// Its common fields (priority, dependencies).
    fn common(&self) -> &Common;
    /// A short summary for the job's `summary` field, e.g.
    /// `"INSTANCE_CREATE(inst1.example.com)"`.
    fn summary(&self) -> String;
}

impl QueueOp for luxi::opcodes::Input {
    fn common(&self) -> &Common {
        &self.common
    }

    fn summary(&self) -> String {
        self.op.summary()
    }
}

/// What runs the opcodes: supplied by the master.
pub trait OpExecutor: Send + Sync + 'static {
    type Op: QueueOp;

    /// Parses an opcode dict at submit time (unknown `OP_ID`, bad fields);
    /// an `Err` refuses the whole job.
    fn parse(&self, op: &Value) -> Result<Self::Op, GanetiError>;

    /// Runs one opcode. The opcode starts as "waiting"; the future calls
    /// `ctx.set_running()` once it holds its locks (and `ctx.set_waiting()`
    /// if it has to wait again).
    fn execute(&self, ctx: OpContext, op: Arc<Self::Op>) -> OpFuture;
}

/// A parsed opcode whose type only its executor knows.
pub(crate) type AnyOp = Arc<dyn Any + Send + Sync>;

/// What the queue takes from a parsed opcode.
pub(crate) struct Parsed {
    pub(crate) op: AnyOp,
    pub(crate) summary: String,
    pub(crate) common: Common,
}

/// [`OpExecutor`] with its opcode type erased, so that the queue is not
/// generic over it.
pub(crate) trait DynExecutor: Send + Sync {
    fn parse(&self, op: &Value) -> Result<Parsed, GanetiError>;
    fn execute(&self, ctx: OpContext, op: AnyOp) -> OpFuture;
}

pub(crate) struct Erased<E>(pub(crate) Arc<E>);

impl<E: OpExecutor> DynExecutor for Erased<E> {
    fn parse(&self, op: &Value) -> Result<Parsed, GanetiError> {
        let op = self.0.parse(op)?;
        Ok(Parsed {
            summary: op.summary(),
            common: op.common().clone(),
            op: Arc::new(op),
        })
    }

    fn execute(&self, ctx: OpContext, op: AnyOp) -> OpFuture {
        match op.downcast::<E::Op>() {
            Ok(op) => self.0.execute(ctx, op),
            // Only this executor's `parse` makes the values it is given.
            Err(_) => Box::pin(async {
                Err(GanetiError::programmer(
                    "the job queue handed an opcode of another type to its executor",
                ))
            }),
        }
    }
}
